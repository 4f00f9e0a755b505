//! The confirm popup: one question ("3 selected — confirm approve (y/n)"), y or n.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::domain::inert::inert;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{centered, table::pane};

/// Draws the question centred over `area` (shown inert: it may quote stored names).
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, text: &str) {
    let text = inert(text);
    let width = u16::try_from(text.chars().count() + 6)
        .unwrap_or(u16::MAX)
        .max(30);
    let rect = centered(area, width, 5);
    Clear.render(rect, buf);
    let title = if text.contains("OVERRIDE") {
        "confirm an OVERRIDE"
    } else {
        "confirm"
    };
    let inner = pane(buf, rect, theme, title, true);
    Paragraph::new(vec![
        Line::from(Span::styled(text.into_owned(), theme.style(Role::Accent))),
        Line::from(vec![
            Span::styled("y", theme.style(Role::Key)),
            Span::styled(" yes   ", theme.style(Role::Base)),
            Span::styled("n", theme.style(Role::Key)),
            Span::styled("/", theme.style(Role::Dim)),
            Span::styled("esc", theme.style(Role::Key)),
            Span::styled(" no", theme.style(Role::Base)),
        ]),
    ])
    .wrap(Wrap { trim: true })
    .render(inner, buf);
}
