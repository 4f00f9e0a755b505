//! The terminal: enter and leave raw mode and the alternate screen, suspend on ctrl-z, restore
//! on drop and from a panic hook, so a crash or SIGTERM never leaves an SSH session garbled.

use std::io::{self, Stdout, Write};
use std::sync::Once;

use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::tui::app::AppState;
use crate::tui::views::frame;

static PANIC_HOOK: Once = Once::new();

/// Puts the terminal back the way the shell expects it (safe to call more than once).
pub fn restore() -> io::Result<()> {
    disable_raw_mode()?;
    let mut out = io::stdout();
    execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        cursor::Show
    )?;
    out.flush()
}

/// Installs (once) a panic hook that restores the terminal before the panic message prints,
/// then ends the process: a panic in any task (tokio would catch it and keep the loop running)
/// must not leave an operator in a console whose terminal was already handed back.
pub fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            previous(info);
            std::process::exit(101);
        }));
    });
}

/// The console's terminal while it is active.
pub struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    active: bool,
}

impl Tui {
    /// Enters raw mode and the alternate screen, with bracketed paste and a hidden cursor.
    pub fn enter() -> io::Result<Tui> {
        install_panic_hook();
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let mut tui = Tui {
            terminal,
            active: false,
        };
        tui.activate()?;
        Ok(tui)
    }

    fn activate(&mut self) -> io::Result<()> {
        enable_raw_mode()?;
        execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            cursor::Hide
        )?;
        self.active = true;
        // A fresh screen: the next draw writes every cell.
        self.terminal.clear()
    }

    /// The terminal size (columns, rows).
    pub fn size(&self) -> io::Result<(u16, u16)> {
        let s = self.terminal.size()?;
        Ok((s.width, s.height))
    }

    /// Leaves raw mode and the alternate screen.
    pub fn leave(&mut self) -> io::Result<()> {
        if self.active {
            self.active = false;
            restore()?;
        }
        Ok(())
    }

    /// ctrl-z: restore the terminal, stop the process (the shell's `fg` continues it), then
    /// take the terminal back and redraw everything.
    pub fn suspend(&mut self) -> io::Result<()> {
        self.leave()?;
        // SAFETY: raise() only sends a signal to this process; SIGTSTP's default action stops
        // it until SIGCONT, after which raise returns. No memory is touched.
        unsafe {
            libc::raise(libc::SIGTSTP);
        }
        self.activate()
    }

    /// Draws the state (ratatui writes only the cells that changed since the last frame).
    pub fn draw(&mut self, state: &AppState) -> io::Result<()> {
        self.terminal.draw(|f| {
            let area = f.area();
            frame::render(state, area, f.buffer_mut());
        })?;
        Ok(())
    }
}

impl crate::tui::screen::Screen for Tui {
    fn draw(&mut self, state: &AppState) -> io::Result<()> {
        Tui::draw(self, state)
    }

    fn resize(&mut self, _width: u16, _height: u16) -> io::Result<()> {
        // ratatui reads this terminal's size before each frame and repaints on a change.
        Ok(())
    }

    fn suspend(&mut self) -> io::Result<Option<(u16, u16)>> {
        Tui::suspend(self)?;
        self.size().map(Some)
    }

    fn leave(&mut self) -> io::Result<()> {
        Tui::leave(self)
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.leave();
    }
}
