//! Approvals inbox: pending approvals for this operator (all for admins), oldest first, with a
//! detail pane (person, access, requester, chain and who else must decide, planned jobs).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::domain::inert::{inert, inert_string};
use crate::store::api::{ApprovalRow, RequestDetail};
use crate::tui::app::{AppState, role_for_state};
use crate::tui::theme::{Role, Theme};
use crate::tui::views::{age, fit, stage_number, stamp};
use crate::tui::widgets::table::{Column, Keyed, Listing, pane, render_listing};

impl Keyed for ApprovalRow {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// Approvals inbox state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApprovalsView {
    /// Loaded pending approvals.
    pub list: Listing<ApprovalRow>,
    /// The `/` filter text.
    pub filter_text: String,
    /// Sort by time to escalation (soonest first) instead of age (oldest first).
    pub by_escalation: bool,
    /// `field:value` pairs of the filter, applied to the rows the store returns.
    pub fields: Vec<(String, String)>,
    /// The free text of the filter, sent to the store.
    pub text: Option<String>,
}

impl ApprovalsView {
    /// True when the row matches every `field:value` of the filter (ids exactly, names by
    /// case-insensitive substring).
    pub fn matches(&self, a: &ApprovalRow) -> bool {
        let has = |text: &str, value: &str| text.to_lowercase().contains(&value.to_lowercase());
        self.fields
            .iter()
            .all(|(field, value)| match field.as_str() {
                "request" | "id" => value.parse::<i64>().is_ok_and(|id| id == a.request_id),
                "workflow" => has(&a.workflow, value),
                "stage" => has(&a.stage_name, value) || value == &stage_number(a.stage).to_string(),
                "subject" => has(&a.subject_name, value),
                "requester" => has(&a.requester, value),
                "policy" => has(&a.policy, value),
                _ => true,
            })
    }

    /// Orders the loaded rows: by age (the store's order, oldest first) or by escalation time
    /// (soonest first, stages without one last); the selection stays on the same row.
    pub fn apply_sort(&mut self) {
        let selected = self.list.current().map(|a| a.id);
        if self.by_escalation {
            self.list
                .rows
                .sort_by_key(|a| (a.escalate_at.unwrap_or(i64::MAX), a.created_at, a.id));
        } else {
            self.list.rows.sort_by_key(|a| (a.created_at, a.id));
        }
        if let Some(id) = selected
            && let Some(i) = self.list.rows.iter().position(|a| a.id == id)
        {
            self.list.selected = i;
        }
    }
}

const COLUMNS: &[Column] = &[
    Column::new("req", Constraint::Length(6)),
    Column::new("subject", Constraint::Min(14)),
    Column::new("workflow", Constraint::Length(18)),
    Column::new("stage", Constraint::Length(16)),
    Column::from("policy", Constraint::Length(9), 100),
    Column::from("requester", Constraint::Length(18), 140),
    Column::new("age", Constraint::Length(4)),
    Column::from("deadline", Constraint::Length(11), 90),
];

/// Draws the inbox, with the detail pane beside it (wide) or below it (tall), or not at all.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let (list_area, detail_area) = if area.width >= 120 {
        let [l, d] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
            .areas(area);
        (l, Some(d))
    } else if area.height >= 30 {
        let [l, d] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        (l, Some(d))
    } else {
        (area, None)
    };
    let whose = if state.role == "admin" {
        "approvals: all pending (admin)".to_string()
    } else {
        format!("approvals for {}", state.operator.user)
    };
    let whose = if state.approvals.by_escalation {
        format!("{whose} by deadline")
    } else {
        whose
    };
    let title = if state.approvals.filter_text.is_empty() {
        whose
    } else {
        format!("{whose} /{}", state.approvals.filter_text)
    };
    let now = state.now;
    render_listing(
        buf,
        list_area,
        theme,
        &title,
        true,
        &state.approvals.list,
        state.now,
        COLUMNS,
        |a| {
            (
                vec![
                    a.request_id.to_string(),
                    a.subject_name.clone(),
                    a.workflow.clone(),
                    format!("{} {}", stage_number(a.stage), a.stage_name),
                    a.policy.clone(),
                    a.requester.clone(),
                    age(now, a.created_at),
                    // When the stage's next timer (reminder, escalation, expiry) fires, local time.
                    a.escalate_at
                        .map(|t| stamp(t, state.tz))
                        .unwrap_or_else(|| "-".into()),
                ],
                if a.escalate_at.is_some_and(|t| t < now) {
                    Role::Failed
                } else {
                    Role::Pending
                },
            )
        },
    );
    if let Some(detail_area) = detail_area {
        let selected = state.approvals.list.current();
        let detail = state
            .detail
            .data
            .as_ref()
            .filter(|d| selected.is_some_and(|a| a.request_id == d.request.id));
        render_detail(buf, detail_area, state, selected, detail);
    }
}

fn render_detail(
    buf: &mut Buffer,
    area: Rect,
    state: &AppState,
    approval: Option<&ApprovalRow>,
    detail: Option<&RequestDetail>,
) {
    let theme = &state.theme;
    let Some(a) = approval else {
        pane(buf, area, theme, "detail", false);
        return;
    };
    let inner = pane(
        buf,
        area,
        theme,
        &format!("request {}", a.request_id),
        false,
    );
    let mut lines = vec![
        kv(theme, "person", &a.subject_name),
        kv(theme, "requester", &a.requester),
        kv(theme, "workflow", &a.workflow),
        kv(
            theme,
            "opened",
            &format!(
                "{} ({} ago)",
                stamp(a.created_at, state.tz),
                age(state.now, a.created_at)
            ),
        ),
    ];
    match detail {
        None => lines.push(Line::styled("loading detail…", theme.style(Role::Dim))),
        Some(d) => {
            let r = &d.request;
            if let Some(email) = &r.subject_email {
                lines.push(kv(theme, "email", email));
            }
            if let Some(user) = &r.username {
                lines.push(kv(theme, "username", user));
            }
            lines.push(kv(theme, "kind", &r.kind));
            lines.extend(payload_lines(theme, &r.payload, usize::from(inner.width)));
            if let Some(err) = &r.last_error {
                lines.push(Line::styled(
                    format!("validation: {}", inert(err)),
                    theme.style(Role::Failed),
                ));
            }
            lines.push(Line::styled("approval chain", theme.style(Role::Header)));
            lines.extend(chain_lines(theme, &d.approvals, a.id));
            // The plan pinned when the chain opened is exactly what approval applies.
            if let Some(pin) = d
                .timeline
                .iter()
                .rev()
                .find(|e| e.summary.starts_with("plan pinned"))
            {
                lines.push(Line::styled(
                    "plan to be applied",
                    theme.style(Role::Header),
                ));
                lines.push(Line::styled(
                    format!("  {}", inert(&pin.summary)),
                    theme.style(Role::Base),
                ));
                // A leaver's grace period: which steps wait and until when.
                if let Some(grace) = pin
                    .detail
                    .pointer("/output/grace/shown")
                    .and_then(|v| v.as_str())
                {
                    // Wrapped, not cut: the date is what the approver needs.
                    lines.push(Line::styled(
                        format!("  grace period: {}", inert(grace)),
                        theme.style(Role::Pending),
                    ));
                }
                for l in crate::tui::widgets::describe::value_lines(&pin.detail, 2, state.tz)
                    .iter()
                    .take(12)
                {
                    lines.push(Line::styled(
                        fit(l, usize::from(inner.width)),
                        theme.style(Role::Dim),
                    ));
                }
            }
            if !d.jobs.is_empty() {
                lines.push(Line::styled(
                    "planned / run jobs",
                    theme.style(Role::Header),
                ));
                for j in d.jobs.iter().take(6) {
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!("  {:<24}", fit(&j.kind, 24)),
                            theme.style(Role::Base),
                        ),
                        Span::styled(
                            j.state.name().to_string(),
                            theme.style(role_for_state(j.state.name())),
                        ),
                    ]));
                }
            }
        }
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

/// A `key: value` line; both are shown inert (control characters made visible).
pub fn kv<'a>(theme: &Theme, key: &str, value: &str) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{:<10} ", inert(key)), theme.style(Role::Dim)),
        Span::styled(inert_string(value), theme.style(Role::Base)),
    ])
}

/// The payload's fields as `key: value` lines (requested access, team, start date, email …).
pub fn payload_lines<'a>(
    theme: &Theme,
    payload: &serde_json::Value,
    width: usize,
) -> Vec<Line<'a>> {
    let Some(map) = payload.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let text = text.replace('\n', " ⏎ ");
            kv(
                theme,
                &fit(k, 10),
                &fit(&text, width.saturating_sub(11).max(8) * 3),
            )
        })
        .collect()
}

/// The approval chain: each stage with its policy, status and who decided or must decide
/// (stored names and reasons shown inert).
pub fn chain_lines<'a>(theme: &Theme, approvals: &[ApprovalRow], current: i64) -> Vec<Line<'a>> {
    approvals
        .iter()
        .map(|s| {
            let decided: Vec<String> = s
                .decisions
                .iter()
                .map(|d| {
                    let over = if d.overridden {
                        " (admin override)"
                    } else {
                        ""
                    };
                    let why = d
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    // A decision by mail reply says so, with the message it came in.
                    let carried = d.carried_note();
                    let via = d
                        .source
                        .as_deref()
                        .filter(|source| source.starts_with("mail:"))
                        .map(|source| format!(" (by reply, {source})"))
                        .unwrap_or_default();
                    match &d.decided_by {
                        Some(delegate) => {
                            format!(
                                "{delegate} acting for {}{over}{carried}{via}{why}",
                                d.approver
                            )
                        }
                        None => format!("{}{over}{carried}{via}{why}", d.approver),
                    }
                })
                .collect();
            let waiting: Vec<&str> = s
                .approvers
                .iter()
                .filter(|ap| !s.decisions.iter().any(|d| &d.approver == *ap))
                .map(String::as_str)
                .collect();
            let who = if s.status == "pending" {
                let so_far = if decided.is_empty() {
                    String::new()
                } else {
                    format!(" (approved by {})", decided.join(", "))
                };
                format!("waiting on {}{so_far}", waiting.join(", "))
            } else {
                format!("by {}", decided.join(", "))
            };
            let marker = if s.id == current { "▶" } else { " " };
            Line::from(vec![
                Span::styled(
                    format!(
                        "{marker}{}. {} ({}) ",
                        stage_number(s.stage),
                        inert(&s.stage_name),
                        inert(&s.policy)
                    ),
                    theme.style(Role::Base),
                ),
                Span::styled(
                    inert_string(&s.status),
                    theme.style(role_for_state(&s.status)),
                ),
                Span::styled(format!(" {}", inert(&who)), theme.style(Role::Dim)),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::api::{Decision, DecisionRow};

    #[test]
    fn the_chain_names_who_acted_for_whom() {
        let theme = Theme::builtin("mono");
        let stage = ApprovalRow {
            id: 7,
            request_id: 1,
            stage: 1,
            stage_name: "security".into(),
            policy: "quorum(2)".into(),
            approvers: vec!["ann".into(), "bob".into(), "cid".into()],
            decisions: vec![DecisionRow {
                approver: "ann".into(),
                decision: Decision::Approve,
                reason: None,
                decided_at: 0,
                overridden: false,
                decided_by: Some("dan".into()),
                source: None,
                carried_from: None,
            }],
            status: "pending".into(),
            version: 2,
            created_at: 0,
            escalate_at: None,
            subject_name: "Gina".into(),
            workflow: "chain".into(),
            requester: "hr".into(),
        };
        let shown = |stage: &ApprovalRow| -> String {
            chain_lines(&theme, std::slice::from_ref(stage), 7)
                .iter()
                .flat_map(|line| line.spans.iter().map(|s| s.content.to_string()))
                .collect()
        };
        let text = shown(&stage);
        assert!(
            text.contains("waiting on bob, cid (approved by dan acting for ann)"),
            "{text}"
        );
        // A decision by mail reply names the mail it came in.
        let mut by_mail = stage.clone();
        by_mail.decisions[0].decided_by = None;
        by_mail.decisions[0].source = Some("mail:r1@example.com".into());
        let text = shown(&by_mail);
        assert!(
            text.contains("(approved by ann (by reply, mail:r1@example.com))"),
            "{text}"
        );
        // An approval carried forward from an earlier stage says so.
        let mut carried = stage.clone();
        carried.decisions[0].decided_by = None;
        carried.decisions[0].carried_from = Some(0);
        let text = shown(&carried);
        assert!(
            text.contains("waiting on bob, cid (approved by ann (carried forward from stage 1))"),
            "{text}"
        );
    }
}
