//! The flash line: the outcome of the last thing the operator did, in words.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::domain::inert::inert_string;
use crate::store::api::Millis;
use crate::tui::theme::{Role, Theme};

/// How a flash message is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashLevel {
    /// It worked.
    Ok,
    /// It did not.
    Err,
    /// For information.
    Info,
}

/// A message on the flash line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Style.
    pub level: FlashLevel,
    /// Text.
    pub text: String,
    /// When it was shown (it disappears a few seconds later).
    pub at: Millis,
}

/// Draws the flash, or the `fallback` status text when there is none; both are shown inert
/// (a flash often quotes a stored name or a store error).
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, flash: Option<&Flash>, fallback: &str) {
    let line = match flash {
        Some(f) => {
            let role = match f.level {
                FlashLevel::Ok => Role::FlashOk,
                FlashLevel::Err => Role::FlashErr,
                FlashLevel::Info => Role::FlashInfo,
            };
            Line::from(Span::styled(inert_string(&f.text), theme.style(role)))
        }
        None => Line::from(Span::styled(inert_string(fallback), theme.style(Role::Dim))),
    };
    buf.set_line(area.x, area.y, &line, area.width);
}
