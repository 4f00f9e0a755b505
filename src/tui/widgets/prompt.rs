//! The `:` command prompt (with alias completion) and the `/` filter prompt.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::domain::inert::inert_string;
use crate::tui::command;
use crate::tui::theme::{Role, Theme};

/// Which prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptMode {
    /// `:` commands.
    Command,
    /// `/` filter.
    Filter,
}

/// A one-line prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Which prompt.
    pub mode: PromptMode,
    /// What has been typed.
    pub input: String,
    /// Completion candidates for the typed verb or its argument.
    pub candidates: Vec<String>,
    /// Earlier entries of this prompt, oldest first (↑ recalls them).
    pub history: Vec<String>,
    /// Which history entry is shown, while browsing it.
    pub history_pos: Option<usize>,
    /// The view's filter in force, shown as a hint while `/` is empty.
    pub current: String,
}

impl Prompt {
    /// A prompt with initial text.
    pub fn new(mode: PromptMode, input: &str) -> Prompt {
        let mut p = Prompt {
            mode,
            input: input.to_string(),
            candidates: Vec::new(),
            history: Vec::new(),
            history_pos: None,
            current: String::new(),
        };
        p.refresh_candidates();
        p
    }

    /// Recomputes completion candidates after an edit: verbs, then the verb's argument values
    /// (theme names for `:theme`).
    pub fn refresh_candidates(&mut self) {
        self.candidates = match (self.mode, self.input.split_once(' ')) {
            (PromptMode::Command, None) => command::complete_verb(self.input.trim())
                .into_iter()
                .map(str::to_string)
                .collect(),
            (PromptMode::Command, Some((verb, arg))) if !arg.contains(' ') => {
                command::complete_arg(verb.trim(), arg)
            }
            _ => Vec::new(),
        };
    }

    /// ctrl-u: clears the line.
    pub fn clear(&mut self) {
        self.input.clear();
        self.history_pos = None;
        self.refresh_candidates();
    }

    /// ctrl-w: deletes the word before the cursor (and the spaces after it).
    pub fn delete_word(&mut self) {
        let kept = self.input.trim_end().len();
        let start = self.input[..kept]
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0);
        self.input.truncate(start);
        self.refresh_candidates();
    }

    /// ↑: the previous history entry; ↓: the next one, then an empty line.
    pub fn recall(&mut self, older: bool) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() - 1;
        self.history_pos = match (self.history_pos, older) {
            (None, true) => Some(last),
            (None, false) => None,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i < last => Some(i + 1),
            (Some(_), false) => None,
        };
        self.input = self
            .history_pos
            .and_then(|i| self.history.get(i))
            .cloned()
            .unwrap_or_default();
        self.refresh_candidates();
    }

    /// Completes the verb or its argument: the only candidate, or the candidates' longest
    /// common prefix.
    pub fn complete(&mut self) {
        let (head, word) = match self.input.split_once(' ') {
            Some((verb, arg)) if !arg.contains(' ') => (format!("{verb} "), arg.to_string()),
            Some(_) => return,
            None => (String::new(), self.input.clone()),
        };
        match self.candidates.as_slice() {
            [] => {}
            [only] => {
                self.input = if head.is_empty() {
                    format!("{only} ")
                } else {
                    format!("{head}{only}")
                }
            }
            many => {
                let first = many[0].as_str();
                let common = many.iter().fold(first.len(), |len, c| {
                    first
                        .chars()
                        .zip(c.chars())
                        .take(len)
                        .take_while(|(a, b)| a == b)
                        .count()
                });
                if common > word.len() {
                    self.input = format!("{head}{}", &first[..common]);
                }
            }
        }
        self.refresh_candidates();
    }
}

/// Draws the prompt on one line, with candidates or a hint after the input.
pub fn render(buf: &mut Buffer, area: Rect, theme: &Theme, prompt: &Prompt) {
    let sigil = match prompt.mode {
        PromptMode::Command => ":",
        PromptMode::Filter => "/",
    };
    let hint = match prompt.mode {
        PromptMode::Command if !prompt.candidates.is_empty() => {
            format!("   {}", prompt.candidates.join(" "))
        }
        PromptMode::Command => "   Tab completes · Enter runs · Esc cancels".to_string(),
        PromptMode::Filter if prompt.input.is_empty() && !prompt.current.is_empty() => format!(
            "   now /{} · ↑ recalls · Enter on empty clears",
            prompt.current
        ),
        PromptMode::Filter => {
            "   text or field:value · ↑ history · ctrl-u clears · Enter applies".to_string()
        }
    };
    let line = Line::from(vec![
        Span::styled(sigil, theme.style(Role::Key)),
        Span::styled(inert_string(&prompt.input), theme.style(Role::Base)),
        Span::styled("▏", theme.style(Role::Accent)),
        Span::styled(hint, theme.style(Role::Dim)),
    ]);
    buf.set_line(area.x, area.y, &line, area.width);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion() {
        let mut p = Prompt::new(PromptMode::Command, "ap");
        p.complete();
        assert_eq!(p.input, "approvals ");
        let mut p = Prompt::new(PromptMode::Command, "a");
        assert_eq!(p.candidates, vec!["approvals", "audit"]);
        p.complete();
        assert_eq!(p.input, "a");
        let mut p = Prompt::new(PromptMode::Command, "wor");
        p.complete();
        assert_eq!(p.input, "workers ");
        let mut p = Prompt::new(PromptMode::Command, "qu");
        p.complete();
        assert_eq!(p.input, "qu");
        assert_eq!(p.candidates, vec!["queues", "quarantine", "quit"]);
        let mut p = Prompt::new(PromptMode::Command, "theme l");
        assert_eq!(p.candidates, vec!["light"]);
        p.complete();
        assert_eq!(p.input, "theme light");
    }

    #[test]
    fn editing_and_history() {
        let mut p = Prompt::new(PromptMode::Filter, "state:failed workflow:x");
        p.delete_word();
        assert_eq!(p.input, "state:failed ");
        p.delete_word();
        assert_eq!(p.input, "");
        p.input = "abc".into();
        p.clear();
        assert_eq!(p.input, "");
        p.history = vec!["one".into(), "two".into()];
        p.recall(true);
        assert_eq!(p.input, "two");
        p.recall(true);
        p.recall(true);
        assert_eq!(p.input, "one");
        p.recall(false);
        assert_eq!(p.input, "two");
        p.recall(false);
        assert_eq!(p.input, "");
    }
}
