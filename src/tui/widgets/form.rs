//! A small form popup: labelled one-line fields, one focused, edited in place (the triage
//! editor uses it). Key handling is pure and returns what the form wants next.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::domain::inert::inert;
use crate::tui::theme::{Role, Theme};
use crate::tui::widgets::{centered, table::pane};

/// Longest value a field takes (characters); longer input is cut.
pub const MAX_VALUE: usize = 512;

/// One field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    /// What it sets (`subject_name`, `team`, ...).
    pub key: String,
    /// What the operator reads.
    pub label: String,
    /// The value now.
    pub value: String,
    /// The value the form opened with.
    pub original: String,
}

impl FormField {
    /// A field showing `value`.
    pub fn new(key: &str, label: &str, value: &str) -> Self {
        Self {
            key: key.to_string(),
            label: label.to_string(),
            value: value.to_string(),
            original: value.to_string(),
        }
    }

    /// Edited since the form opened.
    pub fn changed(&self) -> bool {
        self.value != self.original
    }
}

/// The form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Popup title.
    pub title: String,
    /// Lines shown above the fields (why the request is in triage).
    pub note: Vec<String>,
    /// The fields, in order.
    pub fields: Vec<FormField>,
    /// Index of the focused field.
    pub focus: usize,
    /// Shown under the fields (a refusal from the store, a missing value).
    pub error: Option<String>,
}

/// What a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKey {
    /// Still editing.
    Editing,
    /// Send the form.
    Submit,
    /// Close without sending.
    Cancel,
}

impl Form {
    /// Applies one key.
    pub fn key(&mut self, key: KeyEvent) -> FormKey {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let last = self.fields.len().saturating_sub(1);
        match key.code {
            KeyCode::Esc => return FormKey::Cancel,
            KeyCode::Char('c') if ctrl => return FormKey::Cancel,
            KeyCode::Char('s') if ctrl => return FormKey::Submit,
            KeyCode::Enter if self.focus >= last => return FormKey::Submit,
            KeyCode::Enter | KeyCode::Tab | KeyCode::Down => {
                self.focus = if self.focus >= last {
                    0
                } else {
                    self.focus + 1
                };
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.focus = if self.focus == 0 {
                    last
                } else {
                    self.focus - 1
                };
            }
            KeyCode::Char('u') if ctrl => {
                if let Some(f) = self.fields.get_mut(self.focus) {
                    f.value.clear();
                }
            }
            KeyCode::Char('r') if ctrl => {
                if let Some(f) = self.fields.get_mut(self.focus) {
                    f.value = f.original.clone();
                }
            }
            KeyCode::Backspace => {
                if let Some(f) = self.fields.get_mut(self.focus) {
                    f.value.pop();
                }
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => self.insert(&c.to_string()),
            _ => return FormKey::Editing,
        }
        self.error = None;
        FormKey::Editing
    }

    /// Pasted text goes into the focused field (line breaks become spaces, controls dropped).
    pub fn paste(&mut self, text: &str) {
        let clean: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        self.insert(&clean);
        self.error = None;
    }

    fn insert(&mut self, text: &str) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            let room = MAX_VALUE.saturating_sub(f.value.chars().count());
            f.value.extend(text.chars().take(room));
        }
    }

    /// Fields edited since the form opened.
    pub fn changed(&self) -> Vec<&FormField> {
        self.fields.iter().filter(|f| f.changed()).collect()
    }

    /// The value of the field `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.as_str())
    }
}

/// Draws the form centred over `area`.
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, form: &Form) {
    let fields = u16::try_from(form.fields.len()).unwrap_or(u16::MAX);
    let note = u16::try_from(form.note.len().min(3)).unwrap_or(3);
    let height = fields.saturating_add(note).saturating_add(5);
    let rect = centered(area, 76, height);
    Clear.render(rect, buf);
    let inner = pane(buf, rect, theme, &inert(&form.title), true);
    let label_width = form
        .fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let value_width = usize::from(inner.width)
        .saturating_sub(label_width + 2)
        .max(1);
    let mut lines: Vec<Line> = form
        .note
        .iter()
        .take(3)
        .map(|n| Line::styled(inert(n).into_owned(), theme.style(Role::Triage)))
        .collect();
    if !lines.is_empty() {
        lines.push(Line::raw(""));
    }
    for (index, field) in form.fields.iter().enumerate() {
        let focused = index == form.focus;
        let mark = if field.changed() { "*" } else { " " };
        let shown: String = inert(&field.value).into_owned();
        // The end of a long value stays visible while typing.
        let count = shown.chars().count() + usize::from(focused);
        let tail: String = shown
            .chars()
            .skip(count.saturating_sub(value_width))
            .collect();
        let mut spans = vec![
            Span::styled(
                format!("{:<label_width$}", field.label),
                theme.style(if focused { Role::Accent } else { Role::Dim }),
            ),
            Span::styled(mark, theme.style(Role::Accent)),
            Span::raw(" "),
            Span::styled(
                tail,
                theme.style(if focused { Role::Selected } else { Role::Base }),
            ),
        ];
        if focused {
            spans.push(Span::styled("▏", theme.style(Role::Accent)));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::raw(""));
    lines.push(match &form.error {
        Some(e) => Line::styled(inert(e).into_owned(), theme.style(Role::FlashErr)),
        None => Line::from(vec![
            Span::styled("tab", theme.style(Role::Key)),
            Span::styled(" next  ", theme.style(Role::Dim)),
            Span::styled("ctrl-s", theme.style(Role::Key)),
            Span::styled(" send on  ", theme.style(Role::Dim)),
            Span::styled("ctrl-r", theme.style(Role::Key)),
            Span::styled(" undo field  ", theme.style(Role::Dim)),
            Span::styled("esc", theme.style(Role::Key)),
            Span::styled(" cancel", theme.style(Role::Dim)),
        ]),
    });
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Form {
        Form {
            title: "fix".into(),
            note: vec!["why".into()],
            fields: vec![
                FormField::new("subject_name", "name", "Ada"),
                FormField::new("team", "team", ""),
            ],
            focus: 0,
            error: Some("old".into()),
        }
    }

    fn press(f: &mut Form, code: KeyCode) -> FormKey {
        f.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn ctrl(f: &mut Form, c: char) -> FormKey {
        f.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    #[test]
    fn typing_edits_the_focused_field_and_tracks_changes() {
        let mut f = form();
        assert_eq!(press(&mut f, KeyCode::Char('!')), FormKey::Editing);
        assert_eq!(f.error, None, "typing clears the error");
        assert_eq!(f.value("subject_name"), Some("Ada!"));
        press(&mut f, KeyCode::Backspace);
        assert!(f.changed().is_empty());
        press(&mut f, KeyCode::Tab);
        for c in "eng".chars() {
            press(&mut f, KeyCode::Char(c));
        }
        assert_eq!(f.value("team"), Some("eng"));
        assert_eq!(f.changed().len(), 1);
        ctrl(&mut f, 'r');
        assert_eq!(f.value("team"), Some(""));
        press(&mut f, KeyCode::Char('x'));
        ctrl(&mut f, 'u');
        assert_eq!(f.value("team"), Some(""));
    }

    #[test]
    fn focus_wraps_and_enter_on_the_last_field_submits() {
        let mut f = form();
        assert_eq!(press(&mut f, KeyCode::BackTab), FormKey::Editing);
        assert_eq!(f.focus, 1);
        press(&mut f, KeyCode::Down);
        assert_eq!(f.focus, 0);
        assert_eq!(press(&mut f, KeyCode::Enter), FormKey::Editing);
        assert_eq!(f.focus, 1);
        assert_eq!(press(&mut f, KeyCode::Enter), FormKey::Submit);
        assert_eq!(ctrl(&mut f, 's'), FormKey::Submit);
        assert_eq!(press(&mut f, KeyCode::Esc), FormKey::Cancel);
        assert_eq!(ctrl(&mut f, 'c'), FormKey::Cancel);
    }

    #[test]
    fn paste_is_one_line_without_controls_and_bounded() {
        let mut f = form();
        f.paste("\u{1b}[2J Love\r\nlace");
        assert_eq!(f.value("subject_name"), Some("Ada[2J Love  lace"));
        f.paste(&"x".repeat(MAX_VALUE * 2));
        assert_eq!(
            f.value("subject_name").map(|v| v.chars().count()),
            Some(MAX_VALUE)
        );
    }
}
