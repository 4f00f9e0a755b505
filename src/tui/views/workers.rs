//! Workers: host, pid, uptime, heartbeat age (stale ones stand out), current job, rate; drain.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};

use crate::store::api::{Millis, WorkerRow};
use crate::tui::app::AppState;
use crate::tui::theme::Role;
use crate::tui::views::{age, age_secs};
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

/// A heartbeat older than this is stale.
pub const STALE_MS: Millis = 30_000;

impl Keyed for WorkerRow {
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// Workers view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkersView {
    /// Shown workers (after the text filter).
    pub list: Listing<WorkerRow>,
    /// Every worker from the last load.
    pub all: Vec<WorkerRow>,
    /// The `/` filter text (matches id, host or status).
    pub filter_text: String,
}

impl WorkersView {
    /// Rebuilds the shown list from `all` and the filter.
    pub fn apply_filter(&mut self) {
        let needle = self.filter_text.to_lowercase();
        let rows = self
            .all
            .iter()
            .filter(|w| {
                needle.is_empty()
                    || w.id.to_lowercase().contains(&needle)
                    || w.host.to_lowercase().contains(&needle)
                    || w.status.contains(&needle)
            })
            .cloned()
            .collect();
        self.list.replace(rows, None);
    }
}

const COLUMNS: &[Column] = &[
    Column::new("id", Constraint::Min(16)),
    Column::from("host", Constraint::Length(14), 100),
    Column::from("pid", Constraint::Length(7), 100),
    Column::new("up", Constraint::Length(4)),
    Column::new("beat", Constraint::Length(5)),
    Column::new("status", Constraint::Length(9)),
    Column::new("job", Constraint::Length(7)),
    Column::from("done", Constraint::Length(8), 90),
    Column::from("failed", Constraint::Length(7), 90),
    Column::new("/min", Constraint::Length(6)),
    Column::from("conc", Constraint::Length(5), 120),
];

/// Draws the workers table.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let now = state.now;
    let title = if state.workers.filter_text.is_empty() {
        "workers".to_string()
    } else {
        format!("workers /{}", state.workers.filter_text)
    };
    render_listing(
        buf,
        area,
        &state.theme,
        &title,
        true,
        &state.workers.list,
        state.now,
        COLUMNS,
        |w| {
            let stale = now - w.heartbeat_at > STALE_MS && w.status != "stopped";
            let minutes = ((now - w.started_at).max(60_000) / 60_000) as f64;
            let rate = w.processed as f64 / minutes;
            (
                vec![
                    w.id.clone(),
                    w.host.clone(),
                    w.pid.to_string(),
                    age(now, w.started_at),
                    age_secs(now, w.heartbeat_at),
                    if stale {
                        "STALE".to_string()
                    } else {
                        w.status.clone()
                    },
                    w.current_job
                        .map(|j| j.to_string())
                        .unwrap_or_else(|| "-".into()),
                    w.processed.to_string(),
                    w.failed.to_string(),
                    format!("{rate:.1}"),
                    w.concurrency.to_string(),
                ],
                if stale {
                    Role::Stale
                } else if w.status == "draining" {
                    Role::Paused
                } else if w.status == "stopped" {
                    Role::Cancelled
                } else {
                    Role::Base
                },
            )
        },
    );
}
