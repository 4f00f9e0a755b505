//! Queues and jobs: ready / scheduled / running / retrying / dead per queue (pause and resume),
//! and the jobs of the selected queue (retry dead ones).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::store::api::{JobFilter, JobRow, QueueStats};
use crate::tui::app::{AppState, role_for_state};
use crate::tui::theme::Role;
use crate::tui::views::{age, until};
use crate::tui::widgets::table::{Column, Keyed, Listing, render_listing};

impl Keyed for QueueStats {
    fn key(&self) -> String {
        self.queue.clone()
    }
}

impl Keyed for JobRow {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

/// Queues view state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuesView {
    /// Per-queue counts.
    pub stats: Listing<QueueStats>,
    /// Jobs of the selected queue.
    pub jobs: Listing<JobRow>,
    /// The jobs pane has the focus.
    pub focus_jobs: bool,
    /// Filter from `/` (queue, state, request).
    pub filter: JobFilter,
    /// The `/` filter text.
    pub filter_text: String,
}

const QUEUE_COLUMNS: &[Column] = &[
    Column::new("queue", Constraint::Length(16)),
    Column::new("ready", Constraint::Length(7)),
    Column::from("sched", Constraint::Length(7), 90),
    Column::new("run", Constraint::Length(7)),
    Column::new("retry", Constraint::Length(7)),
    Column::new("dead", Constraint::Length(7)),
    Column::from("done", Constraint::Length(9), 90),
    Column::new("state", Constraint::Length(7)),
];

const JOB_COLUMNS: &[Column] = &[
    Column::new("id", Constraint::Length(7)),
    Column::new("kind", Constraint::Length(18)),
    Column::new("state", Constraint::Length(10)),
    Column::new("try", Constraint::Length(5)),
    Column::from("run at", Constraint::Length(12), 100),
    Column::new("req", Constraint::Length(6)),
    Column::from("worker", Constraint::Length(22), 130),
    Column::new("error", Constraint::Min(8)),
];

/// Draws both panes.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let q = &state.queues;
    let stats_h = u16::try_from(q.stats.rows.len() + 3)
        .unwrap_or(u16::MAX)
        .clamp(4, (area.height / 2).max(4));
    let [top, bottom] =
        Layout::vertical([Constraint::Length(stats_h), Constraint::Min(3)]).areas(area);
    render_listing(
        buf,
        top,
        &state.theme,
        "queues",
        !q.focus_jobs,
        &q.stats,
        state.now,
        QUEUE_COLUMNS,
        |s| {
            (
                vec![
                    s.queue.clone(),
                    s.ready.to_string(),
                    s.scheduled.to_string(),
                    s.running.to_string(),
                    s.retrying.to_string(),
                    s.dead.to_string(),
                    s.completed.to_string(),
                    if s.paused {
                        "paused".into()
                    } else {
                        "active".into()
                    },
                ],
                if s.paused {
                    Role::Paused
                } else if s.dead > 0 {
                    Role::Failed
                } else {
                    Role::Base
                },
            )
        },
    );
    let queue = q
        .filter
        .queue
        .clone()
        .or_else(|| q.stats.current().map(|s| s.queue.clone()))
        .unwrap_or_default();
    let title = if q.filter_text.is_empty() {
        format!("jobs: {queue}")
    } else {
        format!("jobs: {queue} /{}", q.filter_text)
    };
    let now = state.now;
    render_listing(
        buf,
        bottom,
        &state.theme,
        &title,
        q.focus_jobs,
        &q.jobs,
        state.now,
        JOB_COLUMNS,
        |j| {
            (
                vec![
                    j.id.to_string(),
                    j.kind.clone(),
                    j.state.name().to_string(),
                    format!("{}/{}", j.attempts, j.max_attempts),
                    if j.run_at > now {
                        until(now, j.run_at)
                    } else {
                        format!("{} ago", age(now, j.run_at))
                    },
                    j.request_id.map(|r| r.to_string()).unwrap_or_default(),
                    j.lease_owner.clone().unwrap_or_default(),
                    j.last_error.clone().unwrap_or_default(),
                ],
                role_for_state(j.state.name()),
            )
        },
    );
}
