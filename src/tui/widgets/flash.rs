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

/// Fits a message into `width` columns keeping its ending ("— nothing saved", "(y/n)"): the
/// middle gives way, marked with `…`.
pub fn keep_ending(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len <= width || width < 8 {
        return text.chars().take(width).collect();
    }
    let tail_len = match text.rfind(" — ") {
        Some(i) if text[i..].chars().count() <= width / 2 => text[i..].chars().count(),
        _ => (width / 3).min(24),
    };
    let head: String = text.chars().take(width - tail_len - 1).collect();
    let tail: String = text.chars().skip(len - tail_len).collect();
    format!("{head}…{tail}")
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
            let text = keep_ending(&inert_string(&f.text), usize::from(area.width));
            Line::from(Span::styled(text, theme.style(role)))
        }
        None => Line::from(Span::styled(inert_string(fallback), theme.style(Role::Dim))),
    };
    buf.set_line(area.x, area.y, &line, area.width);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_their_ending() {
        let text = "3:14 steps[2].action: unknown action \"frobnicate\" for connector hr-db — nothing saved";
        let shown = keep_ending(text, 60);
        assert_eq!(shown.chars().count(), 60);
        assert!(shown.ends_with(" — nothing saved"), "{shown}");
        assert!(shown.starts_with("3:14 steps[2]"), "{shown}");
        assert!(shown.contains('…'));
        assert_eq!(keep_ending("short", 60), "short");
    }
}
