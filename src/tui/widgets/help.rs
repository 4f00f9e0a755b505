//! Help generated from the live key map of the current view (read-only maps have no dangerous
//! commands, so they are never listed).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use crate::tui::app::ROW_ACTIONS;
use crate::tui::command::Command;
use crate::tui::keymap::{Keymap, Layer};
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{centered, table::pane};

/// Which commands a help section lists.
type Belongs<'a> = Box<dyn Fn(Command) -> bool + 'a>;

/// One help entry: the keys bound to a command (`j/down`) and what it does; a section
/// heading has no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Keys, `/`-separated; empty for a heading.
    pub keys: String,
    /// What the command does, or the heading.
    pub text: String,
}

/// The help for a layer by section — row actions (only those that `applies` to the selected
/// row), this view, global — each command once with all its keys.
pub fn lines(keymap: &Keymap, layer: Layer, applies: &dyn Fn(Command) -> bool) -> Vec<Entry> {
    let own: Vec<Command> = keymap.own(layer).into_iter().map(|(_, c)| c).collect();
    let mut grouped: Vec<(Command, Vec<String>)> = Vec::new();
    for (chord, command) in keymap.bindings(layer) {
        match grouped.iter_mut().find(|(c, _)| *c == command) {
            Some((_, keys)) => keys.push(chord.to_string()),
            None => grouped.push((command, vec![chord.to_string()])),
        }
    }
    let sections: [(&str, Belongs); 3] = [
        ("row actions", Box::new(|c| ROW_ACTIONS.contains(&c))),
        (
            "this view",
            Box::new(|c| !ROW_ACTIONS.contains(&c) && own.contains(&c)),
        ),
        (
            "global",
            Box::new(|c| !ROW_ACTIONS.contains(&c) && !own.contains(&c)),
        ),
    ];
    let mut out = Vec::new();
    for (heading, belongs) in sections {
        let entries: Vec<Entry> = grouped
            .iter()
            .filter(|(c, _)| belongs(*c) && applies(*c))
            .map(|(c, keys)| Entry {
                keys: keys.join("/"),
                text: c.describe().to_string(),
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        out.push(Entry {
            keys: String::new(),
            text: heading.to_string(),
        });
        out.extend(entries);
    }
    out
}

/// Draws the help popup, scrolled by `scroll` lines; two columns when wide enough.
pub fn render(
    buf: &mut Buffer,
    area: Rect,
    theme: &Theme,
    keymap: &Keymap,
    layer: Layer,
    scroll: usize,
    applies: &dyn Fn(Command) -> bool,
) {
    let entries = lines(keymap, layer, applies);
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
            if let Some(Entry { keys, text }) = entries.get(col * rows_needed + row) {
                if keys.is_empty() {
                    spans.push(Span::styled(
                        format!("{:<col_width$}", crate::tui::views::fit(text, col_width)),
                        theme.style(Role::Header),
                    ));
                    continue;
                }
                let key_text = format!("{:>10} ", crate::tui::views::fit(keys, 10));
                let describe = text;
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
