//! The whole screen: breadcrumbs and identity on top, the current view, a key-hint line, the
//! flash or prompt line at the bottom, and the open popup over everything.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use crate::domain::inert::inert_string;
use crate::tui::app::{AppState, Popup};
use crate::tui::command::Command;
use crate::tui::theme::Role;
use crate::tui::views::{self, ViewId};
use crate::tui::widgets::{breadcrumbs, centered, confirm, diff, flash, help, prompt, table::pane};

/// Draws the whole state into `buf` over `area`.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    if area.width < 20 || area.height < 6 {
        let line = Line::styled("terminal too small", state.theme.style(Role::FlashErr));
        buf.set_line(area.x, area.y, &line, area.width);
        return;
    }
    let [top, body, hints, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    breadcrumbs::render(buf, top, &state.theme, &crumbs(state), &status(state));
    match state.view() {
        ViewId::Overview => views::overview::render(state, body, buf),
        ViewId::Approvals => views::approvals::render(state, body, buf),
        ViewId::Requests => views::requests::render(state, body, buf),
        ViewId::Detail => views::detail::render(state, body, buf),
        ViewId::Queues => views::queues::render(state, body, buf),
        ViewId::Logs => views::logs::render(state, body, buf),
        ViewId::Workers => views::workers::render(state, body, buf),
        ViewId::Operators => views::operators::render(state, body, buf),
        ViewId::Quarantine => views::quarantine::render(state, body, buf),
        ViewId::Mailboxes => views::mailboxes::render(state, body, buf),
        ViewId::Delegations => views::delegations::render(state, body, buf),
        ViewId::Configs => views::configs::render(state, body, buf),
        ViewId::Editor => views::editor::render(state, body, buf),
        ViewId::Audit => views::audit::render(state, body, buf),
    }
    render_hints(state, hints, buf);
    match &state.popup {
        Some(Popup::Prompt(p)) => prompt::render(buf, bottom, &state.theme, p),
        _ => {
            let fallback = match &state.log_file {
                Some(path) => format!("logs: {path}"),
                None => String::new(),
            };
            flash::render(buf, bottom, &state.theme, state.flash.as_ref(), &fallback);
        }
    }
    match &state.popup {
        None | Some(Popup::Prompt(_)) => {}
        Some(Popup::Confirm { text, .. }) => confirm::render(buf, body, &state.theme, text),
        Some(Popup::Discard { name, quit }) => confirm::render(
            buf,
            body,
            &state.theme,
            &if *quit {
                format!("quit and discard unsaved changes to {name}? (y/n)")
            } else {
                format!("discard unsaved changes to {name}? (y/n)")
            },
        ),
        Some(Popup::Help { scroll }) => help::render(
            buf,
            body,
            &state.theme,
            &state.keymap,
            state.view().layer(),
            *scroll,
            &|c| state.applies(c).is_ok(),
        ),
        Some(Popup::Diff(d)) => diff::render(buf, body, &state.theme, d),
        Some(Popup::Triage(t)) => {
            crate::tui::widgets::form::render(buf, body, &state.theme, &t.form)
        }
        Some(Popup::Delegation(form)) => {
            crate::tui::widgets::form::render(buf, body, &state.theme, form)
        }
        Some(Popup::Reason {
            title,
            input,
            error,
            target: _,
        }) => {
            let rect = centered(body, 70, 6);
            Clear.render(rect, buf);
            let inner = pane(buf, rect, &state.theme, title, true);
            let [field, msg] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
            (&**input).render(field, buf);
            let line = match error {
                Some(e) => Line::styled(inert_string(e), state.theme.style(Role::FlashErr)),
                None => Line::styled("Enter submits · Esc cancels", state.theme.style(Role::Dim)),
            };
            Paragraph::new(line).render(msg, buf);
        }
        Some(Popup::Text {
            title,
            lines,
            scroll,
        }) => {
            let rect = centered(body, 110, body.height.saturating_sub(2).max(5));
            Clear.render(rect, buf);
            let inner = pane(buf, rect, &state.theme, title, true);
            let height = usize::from(inner.height);
            let scroll = (*scroll).min(lines.len().saturating_sub(height));
            let shown: Vec<Line> = lines
                .iter()
                .skip(scroll)
                .take(height)
                .map(|l| Line::styled(inert_string(l), state.theme.style(Role::Base)))
                .collect();
            Paragraph::new(shown)
                .wrap(ratatui::widgets::Wrap { trim: false })
                .render(inner, buf);
        }
    }
    inert_cells(buf, area);
}

/// The last line of defence: no cell leaves the frame holding a control character. Views make
/// stored text inert where they build it (so it shows as `␛[2J`); this catches what a widget
/// draws from raw text (the editor's document, a text input). A cell whose symbol is only
/// control characters shows the first one's one-column picture (`␛`), or `�` when it has none;
/// a control appended to a visible character (a zero-width grapheme) is dropped, so columns
/// stay aligned.
pub fn inert_cells(buf: &mut Buffer, area: Rect) {
    use crate::domain::inert::{is_unsafe, visible};
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            let symbol = cell.symbol();
            let Some(first) = symbol.chars().find(|c| is_unsafe(*c)) else {
                continue;
            };
            let kept: String = symbol.chars().filter(|c| !is_unsafe(*c)).collect();
            if kept.is_empty() {
                let shown = visible(first);
                let one = if shown.chars().count() == 1 {
                    shown.into_owned()
                } else {
                    "\u{fffd}".to_string()
                };
                cell.set_symbol(&one);
            } else {
                cell.set_symbol(&kept);
            }
        }
    }
}

fn crumbs(state: &AppState) -> Vec<String> {
    state
        .stack
        .iter()
        .map(|v| match v {
            ViewId::Detail => format!("request {}", state.detail.id.unwrap_or_default()),
            ViewId::Editor => match &state.editor {
                Some(e) => format!("edit {}", e.name),
                None => "editor".to_string(),
            },
            other => other.label().to_string(),
        })
        .collect()
}

/// Who is operating. No wall clock here: an idle console must not redraw every minute.
fn status(state: &AppState) -> String {
    let ro = if state.read_only { " · READ-ONLY" } else { "" };
    format!(
        "{} ({}){ro} · {}",
        state.operator.user, state.operator.source, state.role
    )
}

/// The view's own keys that apply to the selected row first, then the universal ones; hints
/// that do not fit are left out whole (help `?` is kept last), never cut mid-word.
fn render_hints(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let layer = state.view().layer();
    let mut items: Vec<(String, &'static str)> = Vec::new();
    for (k, c) in state.keymap.own(layer) {
        if matches!(c, Command::Quit | Command::Suspend)
            || state.applies(c).is_err()
            || items.iter().any(|(_, n)| *n == c.hint())
        {
            continue;
        }
        items.push((k.to_string(), c.hint()));
    }
    for c in [
        Command::Mark,
        Command::Open,
        Command::FocusNext,
        Command::CommandMode,
        Command::Filter,
        Command::Back,
    ] {
        if has_use(state, c)
            && state.applies(c).is_ok()
            && !items.iter().any(|(_, n)| *n == c.hint())
            && let Some(k) = state.keymap.key_for(layer, c)
        {
            items.push((k.to_string(), c.hint()));
        }
    }
    let help = state
        .keymap
        .key_for(layer, Command::Help)
        .map(|k| (k.to_string(), Command::Help.hint()));
    let width = |(k, n): &(String, &str)| k.chars().count() + n.chars().count() + 3;
    let mut room = usize::from(area.width).saturating_sub(1);
    if let Some(h) = &help {
        room = room.saturating_sub(width(h));
    }
    let mut shown = Vec::new();
    for item in items {
        let w = width(&item);
        if w > room {
            continue;
        }
        room -= w;
        shown.push(item);
    }
    shown.extend(help);
    let mut spans = vec![Span::raw(" ")];
    for (key, name) in shown {
        spans.push(Span::styled(key, theme.style(Role::Key)));
        spans.push(Span::styled(format!(" {name}  "), theme.style(Role::Dim)));
    }
    buf.set_line(area.x, area.y, &Line::from(spans), area.width);
}

fn has_use(state: &AppState, c: Command) -> bool {
    match c {
        Command::Mark => matches!(
            state.view(),
            ViewId::Approvals | ViewId::Requests | ViewId::Queues
        ),
        Command::Open => !matches!(state.view(), ViewId::Workers | ViewId::Editor),
        Command::FocusNext => matches!(
            state.view(),
            ViewId::Queues | ViewId::Configs | ViewId::Detail
        ),
        Command::Filter => !matches!(
            state.view(),
            ViewId::Overview | ViewId::Detail | ViewId::Editor
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inert::is_unsafe;

    fn unsafe_cells(buf: &Buffer) -> usize {
        buf.content()
            .iter()
            .filter(|c| c.symbol().contains(is_unsafe))
            .count()
    }

    #[test]
    fn no_control_character_survives_the_frame() {
        let area = Rect::new(0, 0, 24, 3);
        let mut buf = Buffer::empty(area);
        Paragraph::new(vec![
            Line::raw("a\x1b[2Jb\x07c\u{9b}d"),
            Line::raw("\x1b"),
            Line::raw("x\u{202e}y"),
        ])
        .render(area, &mut buf);
        assert!(unsafe_cells(&buf) > 0, "raw text puts controls into cells");
        inert_cells(&mut buf, area);
        assert_eq!(unsafe_cells(&buf), 0);
        let first: String = (0..8).map(|x| buf[(x, 0)].symbol()).collect();
        assert!(first.starts_with('a'), "{first:?}");
        assert!(first.contains("[2J"), "{first:?}");
    }

    #[test]
    fn a_lone_control_cell_shows_a_picture() {
        let area = Rect::new(0, 0, 3, 1);
        let mut buf = Buffer::empty(area);
        buf[(0, 0)].set_symbol("\x1b");
        buf[(1, 0)].set_symbol("\u{202e}");
        buf[(2, 0)].set_symbol("b\x07");
        inert_cells(&mut buf, area);
        assert_eq!(buf[(0, 0)].symbol(), "␛");
        assert_eq!(buf[(1, 0)].symbol(), "\u{fffd}");
        assert_eq!(buf[(2, 0)].symbol(), "b");
    }
}
