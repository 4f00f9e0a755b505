//! A line diff (longest common subsequence) and the popup that shows it before a save.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use crate::tui::effects::StoreCmd;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{centered, table::pane};

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    /// In both.
    Same(String),
    /// Only in the new text.
    Added(String),
    /// Only in the old text.
    Removed(String),
}

/// Above this many line pairs the LCS table is skipped and the diff is "all removed, all added".
const LCS_LIMIT: usize = 4_000_000;

/// The line diff from `old` to `new`.
pub fn line_diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > LCS_LIMIT {
        return a
            .iter()
            .map(|l| DiffLine::Removed((*l).to_string()))
            .chain(b.iter().map(|l| DiffLine::Added((*l).to_string())))
            .collect();
    }
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(DiffLine::Same(a[i].to_string()));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(DiffLine::Removed(a[i].to_string()));
            i += 1;
        } else {
            out.push(DiffLine::Added(b[j].to_string()));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|l| DiffLine::Removed((*l).to_string())));
    out.extend(b[j..].iter().map(|l| DiffLine::Added((*l).to_string())));
    out
}

/// Changed lines with `context` unchanged lines around them; gaps become `…`.
pub fn with_context(lines: &[DiffLine], context: usize) -> Vec<Option<&DiffLine>> {
    let changed: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !matches!(l, DiffLine::Same(_)))
        .map(|(i, _)| i)
        .collect();
    let keep = |i: usize| {
        changed
            .iter()
            .any(|c| i + context >= *c && i <= c + context)
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (i, line) in lines.iter().enumerate() {
        if keep(i) {
            if skipped {
                out.push(None);
                skipped = false;
            }
            out.push(Some(line));
        } else {
            skipped = true;
        }
    }
    if skipped {
        out.push(None);
    }
    out
}

/// The diff shown before saving, with the save it confirms.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffPopup {
    /// Document name.
    pub name: String,
    /// Title with the question.
    pub title: String,
    /// The diff.
    pub lines: Vec<DiffLine>,
    /// First line shown.
    pub scroll: usize,
    /// What `y` runs.
    pub cmds: Vec<StoreCmd>,
}

/// A document line for display: tabs expanded to four spaces (as the editor shows them), every
/// other control character made visible.
fn shown_line(text: &str) -> String {
    crate::domain::inert::inert(&text.replace('\t', "    ")).into_owned()
}

/// Draws the diff popup (document lines shown inert).
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, popup: &DiffPopup) {
    let rect = centered(area, 120, area.height.saturating_sub(2).max(5));
    Clear.render(rect, buf);
    let inner = pane(buf, rect, theme, &popup.title, true);
    let shown = with_context(&popup.lines, 3);
    let added = popup
        .lines
        .iter()
        .filter(|l| matches!(l, DiffLine::Added(_)))
        .count();
    let removed = popup
        .lines
        .iter()
        .filter(|l| matches!(l, DiffLine::Removed(_)))
        .count();
    let mut out = vec![Line::from(vec![
        Span::styled(format!("+{added} "), theme.style(Role::DiffAdd)),
        Span::styled(format!("-{removed}  "), theme.style(Role::DiffDel)),
        Span::styled(
            "y saves · n/esc cancels · j/k scroll",
            theme.style(Role::Dim),
        ),
    ])];
    let body = usize::from(inner.height.saturating_sub(1));
    let scroll = popup.scroll.min(shown.len().saturating_sub(body));
    for line in shown.iter().skip(scroll).take(body) {
        out.push(match line {
            None => Line::styled("  …", theme.style(Role::Dim)),
            Some(DiffLine::Same(t)) => {
                Line::styled(format!("  {}", shown_line(t)), theme.style(Role::Base))
            }
            Some(DiffLine::Added(t)) => {
                Line::styled(format!("+ {}", shown_line(t)), theme.style(Role::DiffAdd))
            }
            Some(DiffLine::Removed(t)) => {
                Line::styled(format!("- {}", shown_line(t)), theme.style(Role::DiffDel))
            }
        });
    }
    Paragraph::new(out).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_changes() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(
            d,
            vec![
                DiffLine::Same("a".into()),
                DiffLine::Removed("b".into()),
                DiffLine::Added("B".into()),
                DiffLine::Same("c".into()),
                DiffLine::Added("d".into()),
            ]
        );
        assert!(
            line_diff("x\n", "x\n")
                .iter()
                .all(|l| matches!(l, DiffLine::Same(_)))
        );
        assert_eq!(line_diff("", "a"), vec![DiffLine::Added("a".into())]);
    }

    #[test]
    fn context_collapses_unchanged_runs() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("10\n", "ten\n");
        let d = line_diff(&old, &new);
        let shown = with_context(&d, 2);
        assert_eq!(shown.first(), Some(&None));
        assert_eq!(shown.last(), Some(&None));
        assert_eq!(shown.iter().filter(|l| l.is_some()).count(), 6);
    }
}
