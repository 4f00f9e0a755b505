//! Operators (`:operators`): each operator's role and scopes, and their SSH keys with
//! fingerprints and last use; an operator without keys has one row with none.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};

use crate::store::api::{Millis, OperatorKeyRow, OperatorRow};
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::views::age;
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

/// One row: an operator with one of their keys (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorLine {
    /// The operator.
    pub operator: OperatorRow,
    /// One of their keys.
    pub key: Option<OperatorKeyRow>,
}

impl Keyed for OperatorLine {
    fn key(&self) -> String {
        match &self.key {
            Some(k) => format!("{} {}", self.operator.name, k.fingerprint),
            None => self.operator.name.clone(),
        }
    }
}

/// Operators view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorsView {
    /// Shown rows (after the text filter).
    pub list: Listing<OperatorLine>,
    /// Every row from the last load.
    pub all: Vec<OperatorLine>,
    /// The `/` filter text (matches name, role, scopes, fingerprint or key comment).
    pub filter_text: String,
}

impl OperatorsView {
    /// Replaces the rows with `operators` and their `keys`.
    pub fn load(&mut self, operators: Vec<OperatorRow>, keys: Vec<OperatorKeyRow>) {
        let mut rows = Vec::new();
        for op in operators {
            let mut theirs: Vec<_> = keys.iter().filter(|k| k.operator == op.name).collect();
            theirs.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
            if theirs.is_empty() {
                rows.push(OperatorLine {
                    operator: op,
                    key: None,
                });
            } else {
                for k in theirs {
                    rows.push(OperatorLine {
                        operator: op.clone(),
                        key: Some(k.clone()),
                    });
                }
            }
        }
        self.all = rows;
        self.apply_filter();
    }

    /// Rebuilds the shown list from `all` and the filter.
    pub fn apply_filter(&mut self) {
        let needle = self.filter_text.to_lowercase();
        let rows = self
            .all
            .iter()
            .filter(|l| {
                needle.is_empty()
                    || l.operator.name.to_lowercase().contains(&needle)
                    || l.operator.role.contains(&needle)
                    || l.operator
                        .scopes
                        .iter()
                        .any(|s| s.to_lowercase().contains(&needle))
                    || l.key.as_ref().is_some_and(|k| {
                        k.fingerprint.to_lowercase().contains(&needle)
                            || k.comment
                                .as_deref()
                                .is_some_and(|c| c.to_lowercase().contains(&needle))
                    })
            })
            .cloned()
            .collect();
        self.list.replace(rows, None);
    }
}

const COLUMNS: &[Column] = &[
    Column::new("operator", Constraint::Length(14)),
    Column::new("role", Constraint::Length(8)),
    Column::from("scopes", Constraint::Length(16), 100),
    Column::new("key", Constraint::Min(20)),
    Column::from("type", Constraint::Length(19), 120),
    Column::from("comment", Constraint::Length(16), 140),
    Column::new("used", Constraint::Length(5)),
    Column::from("from", Constraint::Length(21), 100),
];

fn last_use(now: Millis, key: &OperatorKeyRow) -> (String, String) {
    match key.last_used_at {
        Some(at) => (
            age(now, at),
            key.last_used_from.clone().unwrap_or_else(|| "-".into()),
        ),
        None => ("never".into(), "-".into()),
    }
}

/// Draws the operators table.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let now = state.now;
    let title = if state.operators.filter_text.is_empty() {
        "operators".to_string()
    } else {
        format!("operators /{}", state.operators.filter_text)
    };
    render_listing(
        buf,
        area,
        &state.theme,
        &title,
        true,
        &state.operators.list,
        now,
        COLUMNS,
        |l| {
            let scopes = if l.operator.scopes.is_empty() {
                "all".to_string()
            } else {
                l.operator.scopes.join(",")
            };
            let (key, kind, comment, used, from) = match &l.key {
                Some(k) => {
                    let (used, from) = last_use(now, k);
                    (
                        k.fingerprint.clone(),
                        k.algorithm.clone(),
                        k.comment.clone().unwrap_or_default(),
                        used,
                        from,
                    )
                }
                None => (
                    "no key".into(),
                    "-".into(),
                    String::new(),
                    "-".into(),
                    "-".into(),
                ),
            };
            (
                vec![
                    l.operator.name.clone(),
                    l.operator.role.clone(),
                    scopes,
                    key,
                    kind,
                    comment,
                    used,
                    from,
                ],
                if l.key.is_none() {
                    Role::Dim
                } else {
                    Role::Base
                },
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> OperatorRow {
        OperatorRow {
            name: name.into(),
            role: "approver".into(),
            scopes: vec![],
            email: None,
        }
    }

    fn key(operator: &str, fp: &str) -> OperatorKeyRow {
        OperatorKeyRow {
            fingerprint: fp.into(),
            operator: operator.into(),
            algorithm: "ssh-ed25519".into(),
            comment: None,
            added_at: 0,
            added_by: "root".into(),
            last_used_at: None,
            last_used_from: None,
        }
    }

    #[test]
    fn one_row_per_key_and_one_for_an_operator_without_keys() {
        let mut v = OperatorsView::default();
        v.load(
            vec![op("ann"), op("bob")],
            vec![key("ann", "SHA256:b"), key("ann", "SHA256:a")],
        );
        let keys: Vec<String> = v.all.iter().map(Keyed::key).collect();
        assert_eq!(keys, ["ann SHA256:a", "ann SHA256:b", "bob"]);
        v.filter_text = "sha256:b".into();
        v.apply_filter();
        assert_eq!(v.list.rows.len(), 1);
    }
}
