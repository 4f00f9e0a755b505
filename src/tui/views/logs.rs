//! Logs: live tail of the execution log (`tail_log(after_id, …)`), follow on/off, level filter,
//! filter by request, worker or text, wrap toggle.

use std::collections::VecDeque;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::domain::inert::{inert, inert_string};
use crate::store::api::{LogFilter, LogRow};
use crate::tui::app::AppState;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::describe::Tz;
use crate::tui::widgets::table::pane;

/// Most lines kept in memory; older ones are dropped from the front.
pub const LOG_CAP: usize = 5_000;

/// Log tail state.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsView {
    /// Lines, oldest first.
    pub rows: VecDeque<LogRow>,
    /// Stay at the newest line.
    pub follow: bool,
    /// Wrap long lines.
    pub wrap: bool,
    /// Store filter.
    pub filter: LogFilter,
    /// The `/` filter text.
    pub filter_text: String,
    /// Lines scrolled back from the newest.
    pub scroll_back: usize,
    /// A load answered.
    pub loaded: bool,
    /// A load is in flight.
    pub loading: bool,
    /// The last error.
    pub error: Option<String>,
    /// The global filter (and its text) while a request-scoped view replaces it.
    pub saved: Option<(LogFilter, String)>,
}

impl Default for LogsView {
    fn default() -> Self {
        LogsView {
            rows: VecDeque::new(),
            follow: true,
            wrap: false,
            filter: LogFilter::default(),
            filter_text: String::new(),
            scroll_back: 0,
            loaded: false,
            loading: false,
            error: None,
            saved: None,
        }
    }
}

/// The last segment of a module path (`gatehouse::engine::worker` → `worker`).
pub fn short_target(target: &str) -> &str {
    target.rsplit("::").next().unwrap_or(target)
}

/// Local `HH:MM:SS`.
pub fn local_clock(at: crate::store::api::Millis, tz: Tz) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|t| t.with_timezone(&tz).format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// A message with `*_at=<epoch ms>` values shown as local times (`retry_at=13:05:07`).
pub fn readable_message(message: &str, tz: Tz) -> String {
    message
        .split(' ')
        .map(|word| match word.split_once('=') {
            Some((key, value)) if key.ends_with("_at") || key == "at" => {
                match value.parse::<i64>() {
                    Ok(ms) if ms > 1_000_000_000_000 => {
                        format!(
                            "{key}={}",
                            crate::tui::widgets::describe::local_time(ms, tz)
                        )
                    }
                    _ => word.to_string(),
                }
            }
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn level_role(level: &str) -> Role {
    match level {
        "ERROR" => Role::LogError,
        "WARN" => Role::LogWarn,
        "INFO" => Role::LogInfo,
        _ => Role::LogDebug,
    }
}

/// One log line; the stored target, message and worker are shown inert.
fn line_for<'a>(theme: &Theme, row: &LogRow, tz: Tz) -> Line<'a> {
    let mut tags = Vec::new();
    if let Some(r) = row.request_id {
        tags.push(format!("req={r}"));
    }
    if let Some(j) = row.job_id {
        tags.push(format!("job={j}"));
    }
    if let Some(w) = &row.worker {
        tags.push(format!("worker={}", inert(w)));
    }
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", tags.join(" "))
    };
    let role = level_role(&row.level);
    Line::from(vec![
        Span::styled(
            format!("{} ", local_clock(row.at, tz)),
            theme.style(Role::Dim),
        ),
        Span::styled(format!("{:<5} ", inert(&row.level)), theme.style(role)),
        Span::styled(
            format!("{}: ", inert(short_target(&row.target))),
            theme.style(Role::Dim),
        ),
        Span::styled(
            readable_message(&inert_string(&row.message), tz),
            theme.style(role),
        ),
        Span::styled(tags, theme.style(Role::Dim)),
    ])
}

/// Draws the tail: the newest lines that fit, or older ones when scrolled back.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let l = &state.logs;
    let level = l.filter.min_level.as_deref().unwrap_or("all");
    let filter = if l.filter_text.is_empty() {
        String::new()
    } else {
        format!(" /{}", l.filter_text)
    };
    let title = format!(
        "logs [{}] level {level} · follow {} · wrap {}{filter}",
        l.rows.len(),
        if l.follow { "on" } else { "off" },
        if l.wrap { "on" } else { "off" },
    );
    let inner = pane(buf, area, theme, &title, true);
    if l.rows.is_empty() {
        let (text, role) = match (&l.error, l.loaded) {
            (Some(e), _) => (format!("error: {}", inert(e)), Role::FlashErr),
            (None, false) => ("loading…".to_string(), Role::Dim),
            (None, true) => ("no log lines match".to_string(), Role::Dim),
        };
        Paragraph::new(Line::styled(text, theme.style(role))).render(inner, buf);
        return;
    }
    let height = usize::from(inner.height);
    let width = usize::from(inner.width).max(1);
    let end = l.rows.len().saturating_sub(l.scroll_back);
    // Walk back from the last visible line until the screen is full (wrapped lines take more rows).
    let mut start = end;
    let mut used = 0usize;
    while start > 0 {
        let row = &l.rows[start - 1];
        let rows_needed = if l.wrap {
            let len = 24 + short_target(&row.target).len() + inert(&row.message).chars().count();
            len.div_ceil(width).max(1)
        } else {
            1
        };
        if used + rows_needed > height {
            break;
        }
        used += rows_needed;
        start -= 1;
    }
    let lines: Vec<Line> = l
        .rows
        .range(start..end)
        .map(|r| line_for(theme, r, state.tz))
        .collect();
    let mut p = Paragraph::new(lines);
    if l.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    p.render(inner, buf);
    if let Some(e) = &l.error {
        let line = Line::styled(format!("error: {}", inert(e)), theme.style(Role::FlashErr));
        buf.set_line(
            inner.x,
            inner.y + inner.height.saturating_sub(1),
            &line,
            inner.width,
        );
    }
}
