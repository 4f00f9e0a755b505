//! Mailboxes (`:mailboxes`): each mailbox intake reads — connected or not, which worker holds
//! its reading lease, where reading stands (UIDVALIDITY, last UID), the backlog, how many
//! messages were recorded, and the last error with its age.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};

use crate::store::api::Millis;
use crate::store::mailboxes::MailboxStateRow;
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::views::age;
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for MailboxStateRow {
    fn key(&self) -> String {
        self.mailbox.clone()
    }
}

/// Mailboxes view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailboxesView {
    /// Shown mailboxes (after the text filter).
    pub list: Listing<MailboxStateRow>,
    /// Every mailbox from the last load.
    pub all: Vec<MailboxStateRow>,
    /// The `/` filter text (matches name, reader or error).
    pub filter_text: String,
}

impl MailboxesView {
    /// Rebuilds the shown list from `all` and the filter.
    pub fn apply_filter(&mut self) {
        let needle = self.filter_text.to_lowercase();
        let rows = self
            .all
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || m.mailbox.to_lowercase().contains(&needle)
                    || m.lease_owner
                        .as_deref()
                        .is_some_and(|o| o.to_lowercase().contains(&needle))
                    || m.last_error
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        self.list.replace(rows, None);
    }
}

const COLUMNS: &[Column] = &[
    Column::new("mailbox", Constraint::Length(14)),
    Column::new("state", Constraint::Length(12)),
    Column::from("reader", Constraint::Length(22), 100),
    Column::new("last uid", Constraint::Length(9)),
    Column::from("validity", Constraint::Length(11), 120),
    Column::new("backlog", Constraint::Length(7)),
    Column::new("read", Constraint::Length(8)),
    Column::new("last error", Constraint::Min(16)),
];

/// How reading stands: `reading` (connected, lease held), `idle`, `unread` (no live lease),
/// or `error`.
pub fn status(now: Millis, m: &MailboxStateRow) -> (&'static str, Role) {
    let leased = m.lease_until.is_some_and(|until| until > now);
    let recent_error = m
        .last_error_at
        .is_some_and(|at| at >= m.updated_at.saturating_sub(1));
    match (leased, m.connected) {
        (true, true) if m.backlog.unwrap_or(0) > 0 => ("reading", Role::Running),
        (true, true) => ("connected", Role::Completed),
        (true, false) if m.last_error.is_some() && recent_error => ("error", Role::Failed),
        (true, false) => ("connecting", Role::Pending),
        (false, _) => ("no reader", Role::Stale),
    }
}

/// Draws the mailboxes table.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let now = state.now;
    let view = &state.mailboxes;
    let title = if view.filter_text.is_empty() {
        "mailboxes".to_string()
    } else {
        format!("mailboxes /{}", view.filter_text)
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
        |m| {
            let (state_name, role) = status(now, m);
            let reader = match (&m.lease_owner, m.lease_until) {
                (Some(owner), Some(until)) if until > now => owner.clone(),
                _ => "-".into(),
            };
            let error = match (&m.last_error, m.last_error_at) {
                (Some(e), Some(at)) => format!("{} ago: {e}", age(now, at)),
                (Some(e), None) => e.clone(),
                _ => String::new(),
            };
            (
                vec![
                    m.mailbox.clone(),
                    state_name.to_string(),
                    reader,
                    m.last_uid.to_string(),
                    m.uidvalidity.map(|v| v.to_string()).unwrap_or_default(),
                    m.backlog
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.processed.to_string(),
                    error,
                ],
                role,
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(connected: bool, lease_until: Option<Millis>, error: Option<&str>) -> MailboxStateRow {
        MailboxStateRow {
            mailbox: "hr-inbox".into(),
            uidvalidity: Some(7),
            last_uid: 42,
            lease_owner: Some("host:1:ab".into()),
            lease_until,
            connected,
            backlog: Some(0),
            processed: 42,
            last_error: error.map(str::to_string),
            last_error_at: error.map(|_| 1_000),
            updated_at: 1_000,
        }
    }

    #[test]
    fn the_state_says_whether_anyone_reads_it() {
        assert_eq!(status(500, &row(true, Some(900), None)).0, "connected");
        let mut busy = row(true, Some(900), None);
        busy.backlog = Some(12);
        assert_eq!(status(500, &busy).0, "reading");
        assert_eq!(
            status(500, &row(false, Some(900), Some("login refused"))).0,
            "error"
        );
        assert_eq!(status(500, &row(false, Some(900), None)).0, "connecting");
        assert_eq!(status(1_500, &row(true, Some(900), None)).0, "no reader");
    }
}
