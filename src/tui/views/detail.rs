//! One request: its fields, approval chain, jobs and the merged timeline (state changes, steps
//! with inputs/outputs/errors, extraction evidence, audit rows), and for a request read from a
//! mailbox the message with the rules' and the model's verdicts.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::domain::inert::{inert, inert_string};
use crate::store::api::{RequestDetail, TimelineEntry};
use crate::tui::app::{AppState, role_for_state};
use crate::tui::theme::{Role, Theme};
use crate::tui::views::approvals::{chain_lines, kv, payload_lines};
use crate::tui::views::{age, fit, stamp};
use crate::tui::widgets::table::pane;

/// Request detail state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailView {
    /// The request shown (also the approvals inbox's detail pane).
    pub id: Option<i64>,
    /// Its detail, once loaded.
    pub data: Option<RequestDetail>,
    /// The last error.
    pub error: Option<String>,
    /// A load is in flight.
    pub loading: bool,
    /// When the pending load was asked for.
    pub requested_at: Option<crate::store::api::Millis>,
    /// When a load last answered successfully.
    pub refreshed_at: Option<crate::store::api::Millis>,
    /// First timeline entry shown (the selected one; Enter describes it).
    pub scroll: usize,
    /// The request pane has the focus (Tab): j/k scroll it instead of the timeline.
    pub focus_info: bool,
    /// First line of the request pane shown.
    pub info_scroll: usize,
}

/// Draws the request.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let Some(d) = &state.detail.data else {
        let inner = pane(
            buf,
            area,
            theme,
            &format!("request {}", state.detail.id.unwrap_or_default()),
            true,
        );
        let (text, role) = match &state.detail.error {
            Some(e) => (format!("error: {}", inert(e)), Role::FlashErr),
            None => ("loading…".to_string(), Role::Dim),
        };
        Paragraph::new(Line::styled(text, theme.style(role))).render(inner, buf);
        return;
    };
    let (info, timeline) = if area.width >= 120 {
        let [i, t] = Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)])
            .areas(area);
        (i, t)
    } else {
        let info_h = (area.height / 2).clamp(6, 12);
        let [i, t] = Layout::vertical([Constraint::Length(info_h), Constraint::Min(3)]).areas(area);
        (i, t)
    };
    render_info(buf, info, state, d);
    render_timeline(
        buf,
        timeline,
        theme,
        &d.timeline,
        state.detail.scroll,
        !state.detail.focus_info,
        state.tz,
    );
}

fn render_info(buf: &mut Buffer, area: Rect, state: &AppState, d: &RequestDetail) {
    let theme = &state.theme;
    let r = &d.request;
    let inner = pane(
        buf,
        area,
        theme,
        &match state.view_freshness(state.now) {
            Some(fresh) => format!("request {} · {} · {fresh}", r.id, r.subject_name),
            None => format!("request {} · {}", r.id, r.subject_name),
        },
        state.detail.focus_info,
    );
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<10} ", "state"), theme.style(Role::Dim)),
            Span::styled(
                r.state.to_string(),
                theme.style(role_for_state(r.state.name())),
            ),
            Span::styled(format!("  v{}", r.version), theme.style(Role::Dim)),
        ]),
        kv(theme, "workflow", &format!("{} ({})", r.workflow, r.kind)),
        kv(
            theme,
            "requester",
            &format!("{} via {}", r.requester, r.source),
        ),
    ];
    if let Some(e) = &r.last_error {
        lines.push(Line::styled(
            format!("error      {}", inert(e)),
            theme.style(Role::Failed),
        ));
    }
    if !d.approvals.is_empty() {
        lines.push(Line::styled("approval chain", theme.style(Role::Header)));
        lines.extend(chain_lines(theme, &d.approvals, -1));
    }
    if !d.jobs.is_empty() {
        lines.push(Line::styled("jobs", theme.style(Role::Header)));
        for j in &d.jobs {
            let err = j
                .last_error
                .as_deref()
                .map(|e| format!(" {}", inert(e)))
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  #{} {} ", j.id, inert(&j.kind)),
                    theme.style(Role::Base),
                ),
                Span::styled(
                    j.state.name().to_string(),
                    theme.style(role_for_state(j.state.name())),
                ),
                Span::styled(
                    format!(" {}/{}{err}", j.attempts, j.max_attempts),
                    theme.style(Role::Dim),
                ),
            ]));
        }
    }
    lines.push(kv(
        theme,
        "created",
        &format!(
            "{} ({} ago)",
            stamp(r.created_at, state.tz),
            age(state.now, r.created_at)
        ),
    ));
    if let Some(email) = &r.subject_email {
        lines.push(kv(theme, "email", email));
    }
    if let Some(u) = &r.username {
        lines.push(kv(theme, "username", u));
    }
    lines.extend(payload_lines(theme, &r.payload, usize::from(inner.width)));
    if let Some(record) = &d.intake {
        // The message it came from and the evidence behind its verdict (Tab, then j/k, scrolls).
        lines.push(Line::styled(
            format!("e-mail · {} · {}", inert(&record.mailbox), record.verdict),
            theme.style(Role::Header),
        ));
        for line in crate::tui::views::quarantine::message_lines(record) {
            lines.push(Line::styled(
                inert(&line).into_owned(),
                theme.style(Role::Base),
            ));
        }
    }
    let scroll = u16::try_from(state.detail.info_scroll).unwrap_or(u16::MAX);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .render(inner, buf);
}

fn kind_role(kind: &str) -> Role {
    match kind {
        "state" => Role::Accent,
        "approval" => Role::Pending,
        "step" => Role::Running,
        "audit" => Role::Dim,
        "evidence" => Role::Triage,
        _ => Role::Base,
    }
}

fn render_timeline(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    entries: &[TimelineEntry],
    scroll: usize,
    focused: bool,
    tz: crate::tui::widgets::describe::Tz,
) {
    let inner = pane(
        buf,
        area,
        theme,
        &format!("timeline [{}] · enter describes", entries.len()),
        focused,
    );
    let width = usize::from(inner.width);
    let mut lines = Vec::new();
    for (i, e) in entries.iter().enumerate().skip(scroll) {
        if lines.len() >= usize::from(inner.height) {
            break;
        }
        let selected = i == scroll;
        let mut summary_style = theme.style(Role::Base);
        if e.kind == "step" && e.detail.get("error").is_some_and(|v| !v.is_null()) {
            summary_style = theme.style(Role::Failed);
        }
        let mut head = Line::from(vec![
            Span::styled(
                format!("{} ", crate::tui::views::logs::local_clock(e.at, tz)),
                theme.style(Role::Dim),
            ),
            Span::styled(
                format!("{:<8} ", fit(&e.kind, 8)),
                theme.style(kind_role(&e.kind)),
            ),
            Span::styled(
                inert_string(
                    &crate::tui::widgets::describe::step_summary(e)
                        .map(|did| format!("{}: {did}", e.summary.trim_end_matches(" done")))
                        .unwrap_or_else(|| e.summary.clone()),
                ),
                summary_style,
            ),
        ]);
        if selected {
            head = head.patch_style(theme.style(Role::Selected));
        }
        lines.push(head);
        // The selected entry shows the start of its description (Enter shows all of it).
        if selected && !e.detail.is_null() {
            let text = crate::tui::widgets::describe::value_lines(&e.detail, 4, tz);
            let more = text.len().saturating_sub(6);
            for line in text.iter().take(6) {
                lines.push(Line::styled(fit(line, width), theme.style(Role::Dim)));
            }
            if more > 0 {
                lines.push(Line::styled(
                    format!("    … {more} more lines (enter)"),
                    theme.style(Role::Dim),
                ));
            }
        }
    }
    if entries.is_empty() {
        lines.push(Line::styled("no events yet", theme.style(Role::Dim)));
    }
    Paragraph::new(lines).render(inner, buf);
}
