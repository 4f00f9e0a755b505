//! Overview: request counts by state and workflow, queue depths, throughput and failure
//! sparklines, the oldest pending approval, failure rate and worker health.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

use crate::store::api::Overview;
use crate::tui::app::{AppState, role_for_state};
use crate::tui::theme::{Role, Theme};
use crate::tui::views::{age, fit};
use crate::tui::widgets::table::pane;

/// Overview state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverviewView {
    /// The last overview read.
    pub data: Option<Overview>,
    /// The last error.
    pub error: Option<String>,
    /// A load is in flight.
    pub loading: bool,
    /// When the pending load was asked for.
    pub requested_at: Option<crate::store::api::Millis>,
    /// When a load last answered successfully.
    pub refreshed_at: Option<crate::store::api::Millis>,
}

/// Draws the overview.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let Some(o) = &state.overview.data else {
        let inner = pane(buf, area, theme, "overview", true);
        let (text, role) = match &state.overview.error {
            Some(e) => (
                format!("error: {}", crate::domain::inert::inert(e)),
                Role::FlashErr,
            ),
            None => ("loading…".to_string(), Role::Dim),
        };
        Paragraph::new(Line::styled(text, theme.style(role))).render(inner, buf);
        return;
    };
    let spark_height = if area.height >= 18 { 4 } else { 0 };
    let [top, sparks] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(spark_height)]).areas(area);
    if area.width >= 120 {
        let [main, workflows] =
            Layout::vertical([Constraint::Length(13.min(top.height)), Constraint::Min(0)])
                .areas(top);
        let [states, queues, health] = Layout::horizontal([
            Constraint::Percentage(28),
            Constraint::Percentage(40),
            Constraint::Percentage(32),
        ])
        .areas(main);
        render_states(buf, states, theme, o);
        render_queues(buf, queues, theme, o);
        render_health(buf, health, state, o);
        if workflows.height >= 3 {
            render_workflows(buf, workflows, theme, o);
        }
    } else {
        let [health, rest] =
            Layout::vertical([Constraint::Length(6), Constraint::Min(0)]).areas(top);
        render_health(buf, health, state, o);
        let [states, queues] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(rest);
        render_states(buf, states, theme, o);
        render_queues(buf, queues, theme, o);
    }
    if spark_height > 0 {
        let [done, failed] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(sparks);
        let total_done: u64 = o.completed_per_minute.iter().sum();
        let total_failed: u64 = o.failed_per_minute.iter().sum();
        let inner = pane(
            buf,
            done,
            theme,
            &format!("jobs done per min · 1h: {total_done}"),
            false,
        );
        spark(
            buf,
            inner,
            &o.completed_per_minute,
            theme,
            Role::SparklineOk,
        );
        let inner = pane(
            buf,
            failed,
            theme,
            &format!("jobs failed per min · 1h: {total_failed}"),
            false,
        );
        spark(buf, inner, &o.failed_per_minute, theme, Role::SparklineErr);
    }
}

fn spark(buf: &mut Buffer, area: Rect, data: &[u64], theme: &Theme, role: Role) {
    let stretched = stretch(data, usize::from(area.width));
    Sparkline::default()
        .data(&stretched)
        .style(theme.style(role))
        .render(area, buf);
}

/// Per-minute counts fitted to `width` columns: the newest minutes when there are more than
/// fit, each minute widened when there are fewer, so the line always spans the pane and an
/// empty column means a minute with nothing in it, never a missing one.
pub fn stretch(data: &[u64], width: usize) -> Vec<u64> {
    if data.is_empty() || width == 0 {
        return Vec::new();
    }
    if data.len() >= width {
        return data[data.len() - width..].to_vec();
    }
    (0..width).map(|x| data[x * data.len() / width]).collect()
}

fn render_states(buf: &mut Buffer, area: Rect, theme: &Theme, o: &Overview) {
    let inner = pane(buf, area, theme, "requests by state", false);
    let total: i64 = o.requests_by_state.iter().map(|(_, n)| n).sum();
    let width = usize::from(inner.width).saturating_sub(10);
    let mut lines: Vec<Line> = o
        .requests_by_state
        .iter()
        .map(|(state, n)| {
            Line::from(vec![
                Span::styled(
                    format!("{:<width$}", fit(state, width)),
                    theme.style(role_for_state(state)),
                ),
                Span::styled(format!("{n:>9}"), theme.style(Role::Base)),
            ])
        })
        .collect();
    lines.push(Line::from(vec![
        Span::styled(format!("{:<width$}", "total"), theme.style(Role::Header)),
        Span::styled(format!("{total:>9}"), theme.style(Role::Header)),
    ]));
    Paragraph::new(lines).render(inner, buf);
}

fn render_queues(buf: &mut Buffer, area: Rect, theme: &Theme, o: &Overview) {
    let inner = pane(buf, area, theme, "queues (jobs)", false);
    let name_w = usize::from(inner.width).saturating_sub(29).max(4);
    let mut lines = vec![Line::styled(
        format!(
            "{:<name_w$} {:>6} {:>6} {:>6} {:>6}",
            "queue", "ready", "run", "retry", "dead"
        ),
        theme.style(Role::Header),
    )];
    for q in &o.queues {
        let name = if q.paused {
            format!("{} (paused)", q.queue)
        } else {
            q.queue.clone()
        };
        let name_role = if q.paused { Role::Paused } else { Role::Base };
        let dead_role = if q.dead > 0 { Role::Failed } else { Role::Base };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<name_w$}", fit(&name, name_w)),
                theme.style(name_role),
            ),
            Span::styled(
                format!(" {:>6} {:>6} {:>6}", q.ready, q.running, q.retrying),
                theme.style(Role::Base),
            ),
            Span::styled(format!(" {:>6}", q.dead), theme.style(dead_role)),
        ]));
    }
    Paragraph::new(lines).render(inner, buf);
}

fn render_health(buf: &mut Buffer, area: Rect, state: &AppState, o: &Overview) {
    let theme = &state.theme;
    let title = match state.view_freshness(state.now) {
        Some(fresh) => format!("health · {fresh}"),
        None => "health".to_string(),
    };
    let inner = pane(buf, area, theme, &title, false);
    let oldest = match o.oldest_pending_approval {
        Some((_, request, opened)) => {
            format!("oldest: request {request}, {} old", age(state.now, opened))
        }
        None => "none waiting".to_string(),
    };
    let rate_role = if o.failure_rate > 0.05 {
        Role::Failed
    } else {
        Role::Completed
    };
    let stale_role = if o.workers_stale > 0 {
        Role::Stale
    } else {
        Role::Base
    };
    let alive_role = if o.workers_alive == 0 {
        Role::Failed
    } else {
        Role::Completed
    };
    let lines = vec![
        Line::from(vec![
            Span::styled("approvals ", theme.style(Role::Dim)),
            Span::styled(
                format!("{} stages pending", o.pending_approvals),
                theme.style(Role::Pending),
            ),
            Span::styled(format!(" · {oldest}"), theme.style(Role::Base)),
        ]),
        Line::from(vec![
            Span::styled("failures  ", theme.style(Role::Dim)),
            Span::styled(
                format!("{:.1}% of jobs in the last hour", o.failure_rate * 100.0),
                theme.style(rate_role),
            ),
        ]),
        Line::from(vec![
            Span::styled("workers   ", theme.style(Role::Dim)),
            Span::styled(
                format!("{} alive", o.workers_alive),
                theme.style(alive_role),
            ),
            Span::styled(" · ", theme.style(Role::Dim)),
            Span::styled(
                format!("{} stale", o.workers_stale),
                theme.style(stale_role),
            ),
        ]),
        Line::styled(
            format!(
                "read at {}",
                crate::tui::views::logs::local_clock(o.read_at, state.tz)
            ),
            theme.style(Role::Dim),
        ),
    ];
    Paragraph::new(lines).render(inner, buf);
}

fn render_workflows(buf: &mut Buffer, area: Rect, theme: &Theme, o: &Overview) {
    let inner = pane(buf, area, theme, "requests by workflow", false);
    let rows = usize::from(inner.height);
    let col_width = 52usize;
    let columns = (usize::from(inner.width) / col_width).max(1);
    let mut lines: Vec<Vec<Span>> = vec![Vec::new(); rows];
    for (i, (workflow, state, n)) in o
        .requests_by_workflow
        .iter()
        .enumerate()
        .take(rows * columns)
    {
        let row = i % rows;
        lines[row].push(Span::styled(
            format!("{:<22}", fit(workflow, 21)),
            theme.style(Role::Base),
        ));
        lines[row].push(Span::styled(
            format!("{:<20}", fit(state, 19)),
            theme.style(role_for_state(state)),
        ));
        lines[row].push(Span::styled(format!("{n:>8}  "), theme.style(Role::Base)));
    }
    Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>()).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_fill_their_width() {
        assert_eq!(stretch(&[1, 2], 4), vec![1, 1, 2, 2]);
        assert_eq!(stretch(&[1, 2, 3, 4, 5], 3), vec![3, 4, 5]);
        assert_eq!(stretch(&[], 3), Vec::<u64>::new());
        assert_eq!(stretch(&[7; 60], 75).len(), 75);
    }
}
