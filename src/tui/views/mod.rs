//! The views: one module per screen with its state, key hints and pure render, plus the
//! frame around them (breadcrumbs, hints, flash/prompt line, popups).

pub mod approvals;
pub mod audit;
pub mod configs;
pub mod delegations;
pub mod detail;
pub mod editor;
pub mod frame;
pub mod logs;
pub mod mailboxes;
pub mod manual;
pub mod operators;
pub mod overview;
pub mod quarantine;
pub mod queues;
pub mod requests;
pub mod workers;

use crate::store::api::Millis;
use crate::tui::keymap::Layer;

/// A screen on the view stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewId {
    /// Overview dashboard.
    Overview,
    /// Approvals inbox.
    Approvals,
    /// Requests list.
    Requests,
    /// One request (id in `AppState::detail`).
    Detail,
    /// Queues and jobs.
    Queues,
    /// Log tail.
    Logs,
    /// Workers.
    Workers,
    /// Configuration documents.
    Configs,
    /// The configuration editor.
    Editor,
    /// Audit trail.
    Audit,
    /// Operators and their SSH keys.
    Operators,
    /// Mail held by intake.
    Quarantine,
    /// Mailboxes intake reads.
    Mailboxes,
    /// Approval delegations.
    Delegations,
}

impl ViewId {
    /// The key-map layer of this view.
    pub fn layer(self) -> Layer {
        match self {
            ViewId::Overview => Layer::Overview,
            ViewId::Approvals => Layer::Approvals,
            ViewId::Requests => Layer::Requests,
            ViewId::Detail => Layer::Detail,
            ViewId::Queues => Layer::Queues,
            ViewId::Logs => Layer::Logs,
            ViewId::Workers => Layer::Workers,
            ViewId::Configs => Layer::Configs,
            ViewId::Editor => Layer::Editor,
            ViewId::Audit => Layer::Audit,
            ViewId::Operators => Layer::Operators,
            ViewId::Quarantine => Layer::Quarantine,
            ViewId::Mailboxes => Layer::Mailboxes,
            ViewId::Delegations => Layer::Delegations,
        }
    }

    /// The breadcrumb label.
    pub fn label(self) -> &'static str {
        match self {
            ViewId::Overview => "overview",
            ViewId::Approvals => "approvals",
            ViewId::Requests => "requests",
            ViewId::Detail => "request",
            ViewId::Queues => "queues",
            ViewId::Logs => "logs",
            ViewId::Workers => "workers",
            ViewId::Configs => "configs",
            ViewId::Editor => "editor",
            ViewId::Audit => "audit",
            ViewId::Operators => "operators",
            ViewId::Quarantine => "quarantine",
            ViewId::Mailboxes => "mailboxes",
            ViewId::Delegations => "delegations",
        }
    }
}

/// The 1-based stage number shown to people. Stages of superseded approval rounds are stored
/// offset by a million per round (their names already say "(superseded, round R)"); the
/// offset is never shown.
pub fn stage_number(stage: u32) -> i64 {
    i64::from(stage) % crate::store::pins::SUPERSEDED_STAGE_OFFSET + 1
}

/// A short age: `<1m`, `5m`, `3h`, `2d` (minute granularity so idle screens stay unchanged).
pub fn age(now: Millis, then: Millis) -> String {
    let secs = (now - then).max(0) / 1000;
    match secs {
        s if s < 60 => "<1m".to_string(),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// An age in seconds when short (`42s`), for heartbeats.
pub fn age_secs(now: Millis, then: Millis) -> String {
    let secs = (now - then).max(0) / 1000;
    if secs < 120 {
        format!("{secs}s")
    } else {
        age(now, then)
    }
}

/// A signed time until `then`: `in 5m`, `overdue 2h`.
pub fn until(now: Millis, then: Millis) -> String {
    if then >= now {
        format!("in {}", age(then, now))
    } else {
        format!("overdue {}", age(now, then))
    }
}

/// Local time (the console's zone) as `MM-DD HH:MM`.
pub fn stamp(at: Millis, tz: crate::tui::widgets::describe::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.with_timezone(&tz).format("%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// Cuts `text` to `width` characters, ending with `…` when cut; control characters are made
/// visible first (see [`crate::domain::inert`]).
pub fn fit(text: &str, width: usize) -> String {
    let text = crate::domain::inert::inert(text);
    if text.chars().count() <= width {
        text.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = text.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(120_000, 100_000), "<1m");
        assert_eq!(age(10 * 60_000, 0), "10m");
        assert_eq!(age(5 * 3_600_000, 0), "5h");
        assert_eq!(age(3 * 86_400_000, 0), "3d");
        assert_eq!(age_secs(42_000, 0), "42s");
        assert_eq!(until(0, 120_000), "in 2m");
        assert_eq!(until(120_000, 0), "overdue 2m");
        assert_eq!(
            stamp(0, chrono::FixedOffset::east_opt(0).expect("UTC")),
            "01-01 00:00"
        );
        assert_eq!(
            stamp(0, chrono::FixedOffset::east_opt(3600).expect("UTC+1")),
            "01-01 01:00"
        );
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(stage_number(0), 1);
        assert_eq!(stage_number(1_000_001), 2);
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("a\x1b[2J", 3), "a␛…");
    }
}
