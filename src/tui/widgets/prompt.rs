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
    /// Completion candidates for the typed verb.
    pub candidates: Vec<&'static str>,
}

impl Prompt {
    /// A prompt with initial text.
    pub fn new(mode: PromptMode, input: &str) -> Prompt {
        let mut p = Prompt {
            mode,
            input: input.to_string(),
            candidates: Vec::new(),
        };
        p.refresh_candidates();
        p
    }

    /// Recomputes completion candidates after an edit.
    pub fn refresh_candidates(&mut self) {
        self.candidates = if self.mode == PromptMode::Command && !self.input.contains(' ') {
            command::complete_verb(self.input.trim())
        } else {
            Vec::new()
        };
    }

    /// Completes the verb: the only candidate, or the candidates' longest common prefix.
    pub fn complete(&mut self) {
        if self.input.contains(' ') {
            return;
        }
        match self.candidates.as_slice() {
            [] => {}
            [only] => self.input = format!("{only} "),
            many => {
                let first = many[0];
                let common = many.iter().fold(first.len(), |len, c| {
                    first
                        .chars()
                        .zip(c.chars())
                        .take(len)
                        .take_while(|(a, b)| a == b)
                        .count()
                });
                if common > self.input.len() {
                    self.input = first[..common].to_string();
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
        PromptMode::Filter => "   text or field:value · Enter applies · empty clears".to_string(),
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
        assert_eq!(p.candidates, vec!["queues", "quit"]);
    }
}
