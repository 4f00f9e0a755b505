//! Help generated from the live key map of the current view (read-only maps have no dangerous
//! commands, so they are never listed).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use crate::tui::keymap::{Keymap, Layer};
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{centered, table::pane};

/// The help lines for a layer: `key  description`, view keys first.
pub fn lines(keymap: &Keymap, layer: Layer) -> Vec<(String, String)> {
    keymap
        .bindings(layer)
        .into_iter()
        .map(|(chord, command)| (chord.to_string(), command.describe().to_string()))
        .collect()
}

/// Draws the help popup, scrolled by `scroll` lines; two columns when wide enough.
pub fn render(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    keymap: &Keymap,
    layer: Layer,
    scroll: usize,
) {
    let entries = lines(keymap, layer);
    let rect = centered(area, 100, area.height.saturating_sub(2).max(3));
    Clear.render(rect, buf);
    let title = format!("help: {} (esc closes, j/k scroll)", layer.name());
    let inner = pane(buf, rect, theme, &title, true);
    let columns = if inner.width >= 80 { 2 } else { 1 };
    let col_width = usize::from(inner.width) / columns;
    let rows_needed = entries.len().div_ceil(columns);
    let scroll = scroll.min(rows_needed.saturating_sub(usize::from(inner.height)));
    let mut out = Vec::new();
    for row in scroll..rows_needed {
        let mut spans = Vec::new();
        for col in 0..columns {
            if let Some((key, describe)) = entries.get(col * rows_needed + row) {
                let key_text = format!("{key:>8} ");
                let rest = col_width.saturating_sub(key_text.chars().count() + 1);
                spans.push(Span::styled(key_text, theme.style(Role::Key)));
                spans.push(Span::styled(
                    format!("{:<rest$} ", crate::tui::views::fit(describe, rest)),
                    theme.style(Role::Base),
                ));
            }
        }
        out.push(Line::from(spans));
    }
    Paragraph::new(out).render(inner, buf);
}
