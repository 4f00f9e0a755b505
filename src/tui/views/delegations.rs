//! Delegations (`:delegations`): who lets whom decide their approvals, until when, why, who
//! made it and whether it is still in force. `a` opens a small form (from, to, until, reason)
//! and `x` revokes the selected delegation — both through the store's delegation commands,
//! which check who may delegate for whom (the person delegating, or an unscoped admin).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};

use crate::store::api::Millis;
use crate::store::delegation::DelegationRow;
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::widgets::describe::Tz;
use crate::tui::widgets::form::{Form, FormField};
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for DelegationRow {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// Delegations view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelegationsView {
    /// Shown delegations (after the text filter), newest first.
    pub list: Listing<DelegationRow>,
    /// Every delegation from the last load.
    pub all: Vec<DelegationRow>,
    /// The `/` filter text (matches from, to, creator, reason or state).
    pub filter_text: String,
}

impl DelegationsView {
    /// Rebuilds the shown list from `all` and the filter, newest first.
    pub fn apply_filter(&mut self, now: Millis) {
        let needle = self.filter_text.to_lowercase();
        let mut rows: Vec<DelegationRow> = self
            .all
            .iter()
            .filter(|d| {
                needle.is_empty()
                    || [
                        d.from.as_str(),
                        d.to.as_str(),
                        d.created_by.as_str(),
                        d.state(now),
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
                    || d.reason
                        .as_deref()
                        .is_some_and(|r| r.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        rows.sort_by_key(|d| std::cmp::Reverse(d.id));
        self.list.replace(rows, None);
    }
}

const COLUMNS: &[Column] = &[
    Column::new("id", Constraint::Length(5)),
    Column::new("from", Constraint::Length(10)),
    Column::new("to", Constraint::Length(10)),
    Column::new("until", Constraint::Length(16)),
    Column::new("state", Constraint::Length(8)),
    Column::from("by", Constraint::Length(10), 100),
    Column::new("reason", Constraint::Min(12)),
];

/// A time as local `YYYY-MM-DD HH:MM`.
fn minute(at: Millis, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// Draws the delegations table.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let now = state.now;
    let view = &state.delegations;
    let title = if view.filter_text.is_empty() {
        "delegations".to_string()
    } else {
        format!("delegations /{}", view.filter_text)
    };
    render_listing(
        buf,
        area,
        &state.theme,
        &title,
        true,
        &view.list,
        now,
        COLUMNS,
        |d| {
            let state_name = d.state(now);
            let role = match state_name {
                "in force" => Role::Completed,
                "revoked" => Role::Cancelled,
                _ => Role::Stale,
            };
            (
                vec![
                    d.id.to_string(),
                    d.from.clone(),
                    d.to.clone(),
                    minute(d.until, state.tz),
                    state_name.to_string(),
                    d.created_by.clone(),
                    d.reason.clone().unwrap_or_default(),
                ],
                role,
            )
        },
    );
}

/// The form `a` opens: from (the operator by default), to, until, reason.
pub fn new_form(operator: &str) -> Form {
    Form {
        title: "new delegation".into(),
        note: vec![
            "until: a date (2026-12-24, to the end of that day UTC), a time (2026-12-24T17:00:00Z) or 12h / 7d / 2w from now".into(),
        ],
        fields: vec![
            FormField::new("from", "from", operator),
            FormField::new("to", "to", ""),
            FormField::new("until", "until", "7d"),
            FormField::new("reason", "reason", ""),
        ],
        focus: 1,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, from: &str, until: Millis, revoked: bool) -> DelegationRow {
        DelegationRow {
            id,
            from: from.into(),
            to: "dan".into(),
            until,
            created_by: from.into(),
            created_at: 0,
            revoked_at: revoked.then_some(10),
            reason: Some("holiday".into()),
        }
    }

    #[test]
    fn newest_first_and_filtered_by_any_column() {
        let mut view = DelegationsView {
            all: vec![
                row(1, "ann", 100, false),
                row(2, "bob", 1_000, false),
                row(3, "cid", 1_000, true),
            ],
            ..DelegationsView::default()
        };
        view.apply_filter(500);
        let ids: Vec<i64> = view.list.rows.iter().map(|d| d.id).collect();
        assert_eq!(ids, [3, 2, 1]);
        view.filter_text = "ended".into();
        view.apply_filter(500);
        assert_eq!(view.list.rows.len(), 1);
        assert_eq!(view.list.rows[0].from, "ann");
        view.filter_text = "HOLI".into();
        view.apply_filter(500);
        assert_eq!(view.list.rows.len(), 3);
    }
}
