//! The top line: where you are (`overview › requests › request 12`) and who you are.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::domain::inert::{inert, inert_string};
use crate::tui::theme::{Role, Theme};

/// Draws `crumbs` left (the last one highlighted) and `status` right-aligned; the status is
/// dropped when both do not fit. Both carry stored names and are shown inert.
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, crumbs: &[String], status: &str) {
    let mut spans = vec![Span::styled(" ", theme.style(Role::Crumb))];
    for (i, crumb) in crumbs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" › ", theme.style(Role::Dim)));
        }
        let role = if i + 1 == crumbs.len() {
            Role::CrumbCurrent
        } else {
            Role::Crumb
        };
        spans.push(Span::styled(inert_string(crumb), theme.style(role)));
    }
    let left = Line::from(spans);
    let left_width = u16::try_from(left.width()).unwrap_or(u16::MAX);
    buf.set_line(area.x, area.y, &left, area.width);
    let status = inert(status);
    let status_width = u16::try_from(status.chars().count()).unwrap_or(u16::MAX);
    if left_width + status_width + 2 <= area.width {
        let x = area.x + area.width - status_width - 1;
        buf.set_line(
            x,
            area.y,
            &Line::from(Span::styled(status.into_owned(), theme.style(Role::Header))),
            status_width,
        );
    }
}
