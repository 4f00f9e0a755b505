//! A remote session's input: the client's pty sends bytes; a maintained terminal-input parser
//! (`termina`, derived from crossterm's own Unix parser) turns them into events, which are
//! mapped onto the crossterm key events the local console receives, so keys, paste, function
//! keys and ctrl-combinations behave alike over SSH and on the local terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use termina::event::{
    KeyCode as TKeyCode, KeyEvent as TKeyEvent, KeyEventKind as TKind, Modifiers,
};

use crate::tui::action::Action;

/// The longest paste accepted from a client; anything longer is cut here.
pub const MAX_PASTE_BYTES: usize = 64 * 1024;

/// Turns one session's input bytes into console actions.
#[derive(Debug, Default)]
pub struct InputDecoder {
    parser: termina::Parser,
}

impl InputDecoder {
    /// Feeds the bytes of one data packet and returns the actions they complete. A packet is
    /// treated as complete input (a lone ESC at its end is the Escape key), as a terminal sends
    /// each key press in one write.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        self.parser.parse(bytes, false);
        let mut out = Vec::new();
        while let Some(event) = self.parser.pop() {
            if let Some(action) = convert(event) {
                out.push(action);
            }
        }
        out
    }
}

fn convert(event: termina::Event) -> Option<Action> {
    match event {
        termina::Event::Key(key) => convert_key(key).map(Action::Key),
        termina::Event::Paste(mut text) => {
            if text.len() > MAX_PASTE_BYTES {
                let mut cut = MAX_PASTE_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            Some(Action::Paste(text))
        }
        // Sizes come from the SSH window-change request, never from in-band bytes; mouse,
        // focus and terminal replies are not used by the console.
        _ => None,
    }
}

fn convert_key(key: TKeyEvent) -> Option<KeyEvent> {
    let code = match key.code {
        TKeyCode::Char(c) => KeyCode::Char(c),
        TKeyCode::Enter => KeyCode::Enter,
        TKeyCode::Backspace => KeyCode::Backspace,
        TKeyCode::Tab => KeyCode::Tab,
        TKeyCode::BackTab => KeyCode::BackTab,
        TKeyCode::Escape => KeyCode::Esc,
        TKeyCode::Left => KeyCode::Left,
        TKeyCode::Right => KeyCode::Right,
        TKeyCode::Up => KeyCode::Up,
        TKeyCode::Down => KeyCode::Down,
        TKeyCode::Home => KeyCode::Home,
        TKeyCode::End => KeyCode::End,
        TKeyCode::PageUp => KeyCode::PageUp,
        TKeyCode::PageDown => KeyCode::PageDown,
        TKeyCode::Insert => KeyCode::Insert,
        TKeyCode::Delete => KeyCode::Delete,
        TKeyCode::Function(n) => KeyCode::F(n),
        TKeyCode::Null => KeyCode::Null,
        _ => return None,
    };
    let kind = match key.kind {
        TKind::Press => KeyEventKind::Press,
        TKind::Repeat => KeyEventKind::Repeat,
        TKind::Release => KeyEventKind::Release,
    };
    let mut modifiers = KeyModifiers::NONE;
    for (from, to) in [
        (Modifiers::SHIFT, KeyModifiers::SHIFT),
        (Modifiers::CONTROL, KeyModifiers::CONTROL),
        (Modifiers::ALT, KeyModifiers::ALT),
        (Modifiers::SUPER, KeyModifiers::SUPER),
        (Modifiers::HYPER, KeyModifiers::HYPER),
        (Modifiers::META, KeyModifiers::META),
    ] {
        if key.modifiers.contains(from) {
            modifiers |= to;
        }
    }
    Some(KeyEvent {
        code,
        modifiers,
        kind,
        state: KeyEventState::NONE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<KeyEvent> {
        InputDecoder::default()
            .feed(bytes)
            .into_iter()
            .filter_map(|a| match a {
                Action::Key(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn plain_keys_enter_escape_and_colon_commands() {
        assert_eq!(
            keys(b":q\r"),
            vec![
                key(KeyCode::Char(':'), KeyModifiers::NONE),
                key(KeyCode::Char('q'), KeyModifiers::NONE),
                key(KeyCode::Enter, KeyModifiers::NONE),
            ]
        );
        assert_eq!(keys(b"\x1b"), vec![key(KeyCode::Esc, KeyModifiers::NONE)]);
        assert_eq!(
            keys(b"\x7f"),
            vec![key(KeyCode::Backspace, KeyModifiers::NONE)]
        );
    }

    #[test]
    fn ctrl_arrows_function_keys() {
        assert_eq!(
            keys(b"\x13"),
            vec![key(KeyCode::Char('s'), KeyModifiers::CONTROL)]
        );
        assert_eq!(keys(b"\x1b[A"), vec![key(KeyCode::Up, KeyModifiers::NONE)]);
        assert_eq!(
            keys(b"\x1bOP"),
            vec![key(KeyCode::F(1), KeyModifiers::NONE)]
        );
        assert_eq!(
            keys(b"\x1b[15~"),
            vec![key(KeyCode::F(5), KeyModifiers::NONE)]
        );
        assert_eq!(
            keys(b"\x1b[1;5C"),
            vec![key(KeyCode::Right, KeyModifiers::CONTROL)]
        );
        assert_eq!(
            keys(b"\x1b[Z"),
            vec![key(KeyCode::BackTab, KeyModifiers::SHIFT)]
        );
    }

    #[test]
    fn bracketed_paste_is_one_action() {
        let actions = InputDecoder::default().feed(b"\x1b[200~team:sales\nx\x1b[201~");
        assert!(
            matches!(actions.as_slice(), [Action::Paste(t)] if t == "team:sales\nx"),
            "{actions:?}"
        );
    }

    #[test]
    fn a_sequence_split_across_packets_is_whole() {
        let mut d = InputDecoder::default();
        // A packet ending in the middle of CSI keeps the start for the next packet.
        let first = d.feed(b"\x1b[1;");
        let second = d.feed(b"5C");
        let all: Vec<_> = first.into_iter().chain(second).collect();
        assert!(
            all.iter()
                .any(|a| matches!(a, Action::Key(k) if k.code == KeyCode::Right)),
            "{all:?}"
        );
    }
}
