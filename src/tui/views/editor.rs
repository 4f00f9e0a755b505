//! The configuration editor: tui-textarea on the TOML document; ctrl-s validates (errors jump to
//! their line and column, nothing is saved), then shows a diff against the head and saves with the
//! expected version; ctrl-d dry-runs a workflow on a sample request.

use std::fmt;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use tui_textarea::TextArea;

use crate::store::api::ConfigVersion;
use crate::tui::app::{AppState, jump_to};
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::table::pane;

/// One validation problem, located for the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path, e.g. `stages[1].policy`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// `line:col field: message`.
    pub fn short(&self) -> String {
        format!(
            "{}:{} {}: {}",
            self.line, self.column, self.field, self.message
        )
    }
}

/// Validates a document: `Ok` or the problems, first one first.
pub type CheckFn = fn(file_label: &str, text: &str) -> Result<(), Vec<Problem>>;
/// Dry-runs a workflow document on a sample request: the lines to show, or the problems.
pub type DryRunFn = fn(file_label: &str, text: &str) -> Result<Vec<String>, Vec<Problem>>;

/// The validation and dry-run the editor uses (the domain's, injectable for tests).
#[derive(Clone, Copy)]
pub struct ConfigTools {
    /// Validation on save.
    pub check: CheckFn,
    /// Dry-run on ctrl-d.
    pub dry_run: DryRunFn,
}

impl fmt::Debug for ConfigTools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigTools")
    }
}

impl Default for ConfigTools {
    fn default() -> Self {
        ConfigTools {
            check: crate::tui::config_tools::check,
            dry_run: crate::tui::config_tools::dry_run,
        }
    }
}

/// The open editor.
#[derive(Debug, Clone)]
pub struct EditorView {
    /// Document name.
    pub name: String,
    /// Document kind.
    pub kind: String,
    /// Head version the edit started from (the save's expected version).
    pub base_version: i64,
    /// Body of that version (the diff's left side).
    pub base_body: String,
    /// The text being edited.
    pub textarea: TextArea<'static>,
    /// The validation problem being shown.
    pub problem: Option<Problem>,
    /// Viewing only.
    pub read_only: bool,
    /// Comment saved with the version.
    pub comment: String,
}

impl EditorView {
    /// An editor on `head`'s document, starting from `base_version`.
    pub fn new(
        head: &ConfigVersion,
        base_version: i64,
        read_only: bool,
        comment: String,
        theme: &Theme,
    ) -> EditorView {
        EditorView {
            name: head.name.clone(),
            kind: head.kind.clone(),
            base_version,
            base_body: head.body.clone(),
            textarea: Self::textarea_for(&head.body, theme),
            problem: None,
            read_only,
            comment,
        }
    }

    /// A styled text area holding `body`.
    pub fn textarea_for(body: &str, theme: &Theme) -> TextArea<'static> {
        let mut t = TextArea::new(body.lines().map(str::to_string).collect());
        t.set_style(theme.style(Role::Base));
        t.set_line_number_style(theme.style(Role::Dim));
        t.set_cursor_line_style(Style::default());
        t.set_cursor_style(Style::default().add_modifier(Modifier::REVERSED));
        t
    }

    /// The edited text, with the base's trailing newline convention.
    pub fn body(&self) -> String {
        let mut text = self.textarea.lines().join("\n");
        if self.base_body.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    /// Moves the cursor to the problem and highlights its line.
    pub fn show_problem(&mut self, problem: Problem, theme: &Theme) {
        jump_to(&mut self.textarea, problem.line, problem.column);
        self.textarea
            .set_cursor_line_style(theme.style(Role::EditorError));
        self.problem = Some(problem);
    }

    /// Clears the highlight after an edit.
    pub fn clear_problem(&mut self, _theme: &Theme) {
        if self.problem.take().is_some() {
            self.textarea.set_cursor_line_style(Style::default());
        }
    }
}

/// Draws the editor.
pub fn render(state: &AppState, area: Rect, buf: &mut Buffer) {
    let theme = &state.theme;
    let Some(ed) = &state.editor else {
        return;
    };
    let changed = if ed.body() != ed.base_body { " *" } else { "" };
    let ro = if ed.read_only { " [read-only]" } else { "" };
    let title = format!(
        "{} ({}) v{}{changed}{ro}",
        ed.name, ed.kind, ed.base_version
    );
    let inner = pane(buf, area, theme, &title, true);
    let [text_area, status] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    (&ed.textarea).render(text_area, buf);
    let (row, col) = ed.textarea.cursor();
    let line = match &ed.problem {
        Some(p) => Line::from(Span::styled(p.short(), theme.style(Role::EditorError))),
        None => Line::from(Span::styled(
            format!("{}:{}  {}", row + 1, col + 1, ed.comment),
            theme.style(Role::Dim),
        )),
    };
    buf.set_line(status.x, status.y, &line, status.width);
}
