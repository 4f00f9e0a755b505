//! Where a console draws: the process's own terminal ([`crate::tui::terminal::Tui`]) or any
//! byte writer ([`WriterScreen`]), such as one remote session's channel. The event loop only
//! sees the [`Screen`] trait, so both run the same console.

use std::io::{self, Write};

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use crate::tui::app::AppState;
use crate::tui::views::frame;

/// A surface the console draws on.
pub trait Screen {
    /// Draws the state (only the cells that changed since the last frame are written).
    fn draw(&mut self, state: &AppState) -> io::Result<()>;
    /// The size is now `width`×`height`; the next draw repaints every cell.
    fn resize(&mut self, width: u16, height: u16) -> io::Result<()>;
    /// ctrl-z. Returns the size after resuming, or `None` when the screen cannot suspend.
    fn suspend(&mut self) -> io::Result<Option<(u16, u16)>>;
    /// Hands the terminal back (leave the alternate screen, show the cursor).
    fn leave(&mut self) -> io::Result<()>;
}

/// A console drawn as escape sequences into a writer whose far end is a terminal of a known
/// size (the size never comes from this process's terminal). Each frame is written and then
/// flushed once, so a writer that sends on flush sends one message per frame; a frame that
/// looks exactly like the last one sent writes nothing at all, so an idle console is silent.
pub struct WriterScreen<W: Write> {
    terminal: Terminal<CrosstermBackend<W>>,
    area: Rect,
    last: Option<Buffer>,
    active: bool,
}

impl<W: Write> WriterScreen<W> {
    /// Enters the alternate screen with bracketed paste and a hidden cursor on `out`, whose
    /// terminal is `width`×`height`.
    pub fn enter(out: W, width: u16, height: u16) -> io::Result<WriterScreen<W>> {
        let area = Rect::new(0, 0, width.max(1), height.max(1));
        let mut terminal = Terminal::with_options(
            CrosstermBackend::new(out),
            TerminalOptions {
                viewport: Viewport::Fixed(area),
            },
        )?;
        execute!(
            terminal.backend_mut(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        terminal.clear()?;
        terminal.backend_mut().flush()?;
        Ok(WriterScreen {
            terminal,
            area,
            last: None,
            active: true,
        })
    }

    /// Writes `text` as it is and flushes (a last message after [`Screen::leave`]).
    pub fn write_raw(&mut self, text: &str) -> io::Result<()> {
        let out = self.terminal.backend_mut();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

impl<W: Write> Screen for WriterScreen<W> {
    fn draw(&mut self, state: &AppState) -> io::Result<()> {
        let mut next = Buffer::empty(self.area);
        frame::render(state, self.area, &mut next);
        if self.last.as_ref() == Some(&next) {
            return Ok(());
        }
        self.terminal.draw(|f| {
            f.buffer_mut().content.clone_from(&next.content);
        })?;
        self.last = Some(next);
        Ok(())
    }

    fn resize(&mut self, width: u16, height: u16) -> io::Result<()> {
        self.area = Rect::new(0, 0, width.max(1), height.max(1));
        self.last = None;
        self.terminal.resize(self.area)?;
        self.terminal.backend_mut().flush()
    }

    fn suspend(&mut self) -> io::Result<Option<(u16, u16)>> {
        // A remote console has no process to stop: the key does nothing.
        Ok(None)
    }

    fn leave(&mut self) -> io::Result<()> {
        if self.active {
            self.active = false;
            let out = self.terminal.backend_mut();
            execute!(
                out,
                DisableBracketedPaste,
                LeaveAlternateScreen,
                cursor::Show
            )?;
            out.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn take(&self) -> String {
            String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().expect("lock"))).to_string()
        }
    }

    #[test]
    fn an_unchanged_frame_writes_nothing_and_a_resize_repaints() {
        let out = Shared::default();
        let mut screen = WriterScreen::enter(out.clone(), 40, 10).expect("enter");
        let (state, _) = crate::tui::initial_state_in(
            &crate::tui::TuiOptions {
                operator: crate::store::api::Actor::operator("ann", "test"),
                role: "viewer".into(),
                read_only: false,
                theme: "mono".into(),
                config_dir: None,
                log_file: None,
            },
            &crate::tui::TermEnv::default(),
            0,
        );
        screen.draw(&state).expect("draw");
        assert!(!out.take().is_empty(), "the first frame is drawn");
        screen.draw(&state).expect("draw again");
        assert_eq!(out.take(), "", "nothing changed, nothing written");
        screen.resize(30, 8).expect("resize");
        screen.draw(&state).expect("draw after resize");
        assert!(out.take().len() > 100, "a resize repaints");
    }

    #[test]
    fn enter_and_leave_write_the_mode_sequences() {
        let out = Shared::default();
        let mut screen = WriterScreen::enter(out.clone(), 20, 5).expect("enter");
        let entered = out.take();
        assert!(
            entered.contains("\u{1b}[?1049h"),
            "alternate screen: {entered:?}"
        );
        assert!(
            entered.contains("\u{1b}[?2004h"),
            "bracketed paste: {entered:?}"
        );
        screen.leave().expect("leave");
        screen.write_raw("bye").expect("message");
        let left = out.take();
        assert!(left.ends_with("bye"), "{left:?}");
        assert!(left.contains("\u{1b}[?1049l"), "{left:?}");
        assert!(left.contains("\u{1b}[?25h"), "cursor shown: {left:?}");
    }
}
