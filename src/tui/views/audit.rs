//! Audit: browse and filter the hash-chained audit trail; shows the `verify_audit` verdict.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use crate::domain::inert::inert;
use crate::store::api::{AuditFilter, AuditRow, AuditVerdict};
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::views::stamp;
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for AuditRow {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// Audit view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditView {
    /// Loaded rows, newest first.
    pub list: Listing<AuditRow>,
    /// Store filter.
    pub filter: AuditFilter,
    /// The `/` filter text.
    pub filter_text: String,
    /// The last verification.
    pub verdict: Option<Result<AuditVerdict, String>>,
    /// A verification is running.
    pub verifying: bool,
    /// Where the last intact verification ended: the next refresh verifies only newer rows.
    pub head: Option<crate::domain::checkpoint::ChainHead>,
}

const COLUMNS: &[Column] = &[
    Column::new("#", Constraint::Length(7)),
    Column::new("at", Constraint::Length(11)),
    Column::new("actor", Constraint::Min(14)),
    Column::from("source", Constraint::Length(20), 120),
    Column::new("action", Constraint::Length(25)),
    Column::from("entity", Constraint::Length(9), 90),
    Column::new("id", Constraint::Length(8)),
];

/// Draws the verdict line and the table.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let a = &state.audit;
    let [status, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let (text, role) = match (&a.verdict, a.verifying) {
        (_, true) => ("verifying the hash chain…".to_string(), Role::Dim),
        (None, false) => (
            "hash chain not verified yet (v verifies)".to_string(),
            Role::Dim,
        ),
        (Some(Ok(AuditVerdict::Intact { rows })), false) => (
            format!("✓ hash chain intact: {rows} rows verified"),
            Role::Completed,
        ),
        (Some(Ok(AuditVerdict::Broken { id, reason })), false) => (
            format!("✗ hash chain BROKEN at #{id}: {}", inert(reason)),
            Role::Failed,
        ),
        (Some(Err(e)), false) => (format!("verification failed: {}", inert(e)), Role::FlashErr),
    };
    buf.set_line(
        status.x + 1,
        status.y,
        &Line::from(Span::styled(text, theme.style(role))),
        status.width.saturating_sub(1),
    );
    let title = if a.filter_text.is_empty() {
        "audit".to_string()
    } else {
        format!("audit /{}", a.filter_text)
    };
    render_listing(
        buf,
        table,
        theme,
        &title,
        true,
        &a.list,
        state.now,
        COLUMNS,
        |r| {
            (
                vec![
                    r.id.to_string(),
                    stamp(r.at, state.tz),
                    r.actor.clone(),
                    r.source.clone(),
                    action_text(r),
                    r.entity.clone(),
                    r.entity_id.clone(),
                ],
                if r.action.contains("reject") || r.action.contains("fail") {
                    Role::Rejected
                } else {
                    Role::Base
                },
            )
        },
    );
}

/// The action as listed: a decision recorded as an override says so.
pub fn action_text(r: &AuditRow) -> String {
    let overridden = r
        .after
        .as_ref()
        .and_then(|a| a.get("overridden"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if overridden {
        format!("{} OVERRIDE", r.action)
    } else {
        r.action.clone()
    }
}
