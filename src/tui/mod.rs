//! The console: a k9s-style ratatui dashboard over the store. It reads through `ReadApi` and
//! writes intents through `CommandApi`; one task owns the state, `update` returns effects, the
//! effects runner performs store calls in tasks, and the screen is redrawn only when dirty.

/// Where user themes and the key map live: `$XDG_CONFIG_HOME/gatehouse`.
pub fn config_dir() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("gatehouse"))
}

/// Reader connections a console opens on the store.
pub const CONSOLE_CONNECTIONS: u32 = 2;

pub mod action;
pub mod app;
pub mod command;
pub mod config_tools;
pub mod effects;
pub mod event;
pub mod keymap;
pub mod runner;
pub mod screen;
pub mod terminal;
pub mod theme;
pub mod views;
pub mod widgets;

use std::path::PathBuf;
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::store::api::{Actor, CommandApi, ReadApi};
use crate::tui::action::Action;
use crate::tui::app::AppState;
use crate::tui::effects::Effect;
use crate::tui::runner::{EffectRunner, perform_load};
use crate::tui::theme::ColorDepth;
use crate::tui::widgets::flash::FlashLevel;

/// How the console is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuiOptions {
    /// Who operates (login user and source); recorded on every audit row.
    pub operator: Actor,
    /// The operator's role (`viewer`, `approver`, `admin`).
    pub role: String,
    /// Never register dangerous commands.
    pub read_only: bool,
    /// Theme name (`NO_COLOR` overrides it with `mono`).
    pub theme: String,
    /// Where user themes (`themes/NAME.toml`) and `keymap.toml` live.
    pub config_dir: Option<PathBuf>,
    /// Where the log file is, shown on the status line.
    pub log_file: Option<String>,
}

/// Why the console stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up, drawn to or restored.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// What a console knows of the terminal it draws on: the variables that pick its colours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermEnv {
    /// `TERM` (e.g. `xterm-256color`).
    pub term: Option<String>,
    /// `COLORTERM` (`truecolor`, `24bit`).
    pub colorterm: Option<String>,
    /// `NO_COLOR` (set and non-empty: the `mono` theme).
    pub no_color: Option<String>,
}

impl TermEnv {
    /// This process's environment (a local console).
    pub fn from_process() -> TermEnv {
        TermEnv {
            term: std::env::var("TERM").ok(),
            colorterm: std::env::var("COLORTERM").ok(),
            no_color: std::env::var("NO_COLOR").ok(),
        }
    }
}

/// Builds the initial state from options and the environment (`NO_COLOR`, `COLORTERM`, `TERM`);
/// theme and key-map problems come back as warnings.
pub fn initial_state(options: &TuiOptions, now: i64) -> (AppState, Vec<String>) {
    initial_state_in(options, &TermEnv::from_process(), now)
}

/// Builds the initial state for a terminal described by `env` (a remote session's pty).
pub fn initial_state_in(options: &TuiOptions, env: &TermEnv, now: i64) -> (AppState, Vec<String>) {
    let theme_name = theme::effective_theme_name(&options.theme, env.no_color.as_deref());
    let depth = ColorDepth::detect(env.colorterm.as_deref(), env.term.as_deref());
    let (theme, mut warnings) = theme::load(&theme_name, options.config_dir.as_deref(), depth);
    let (keymap, key_warnings) = keymap::load_for(
        options.config_dir.as_deref(),
        &options.role,
        options.read_only,
    );
    warnings.extend(key_warnings);
    let mut state = AppState::new(
        options.operator.clone(),
        options.role.clone(),
        options.read_only,
        theme,
        keymap,
        now,
    );
    state.log_file = options.log_file.clone();
    (state, warnings)
}

/// Draws the state into a fresh buffer of `area` (tests and `gatehouse bench tui`).
pub fn render_to_buffer(state: &AppState, area: Rect) -> Buffer {
    let mut buf = Buffer::empty(area);
    views::frame::render(state, area, &mut buf);
    buf
}

/// Performs the reads `effects` asks for directly (no terminal, no tasks), feeding the results
/// back into the state until no reads are left; commands are not run. For tests and benchmarks.
pub async fn settle<S: ReadApi>(state: &mut AppState, store: &S, effects: Vec<Effect>) {
    let mut pending = effects;
    // Each round answers the loads of the previous; views need at most a few rounds.
    for _ in 0..8 {
        let mut next = Vec::new();
        for effect in pending {
            if let Effect::Load(load) = effect {
                let loaded = perform_load(store, &state.operator.user, load).await;
                next.extend(state.update(Action::Loaded(loaded)));
            }
        }
        if next.is_empty() {
            break;
        }
        pending = next;
    }
}

/// Runs the console on this terminal until the operator quits or SIGTERM arrives.
pub async fn run<S: ReadApi + CommandApi>(store: S, options: TuiOptions) -> Result<(), TuiError> {
    let (state, warnings) = initial_state(&options, event::now_millis());
    let (tx, rx) = mpsc::unbounded_channel::<Action>();
    let mut tui = terminal::Tui::enter()?;
    let size = tui.size()?;
    let mut tasks = vec![
        event::spawn_input(tx.clone()),
        event::spawn_signals(tx.clone())?,
    ];
    let result = drive(
        store, &options, state, warnings, &mut tui, size, tx, rx, &mut tasks,
    )
    .await;
    for task in tasks {
        task.abort();
    }
    tui.leave()?;
    result
}

/// A console drawn on `screen` (already entered, of `size`) whose input the caller sends as
/// actions (`Key`, `Paste`, `Resize`, `Terminate`) on `tx`. Returns when the operator quits,
/// `Terminate` arrives, or every sender is gone; the caller then leaves the screen. Nothing
/// here touches the process's terminal or signals, so many run at once in one process, each
/// with its own state, theme and key map.
pub async fn run_on<S: ReadApi + CommandApi, D: screen::Screen>(
    store: S,
    options: TuiOptions,
    env: &TermEnv,
    screen: &mut D,
    size: (u16, u16),
    tx: mpsc::UnboundedSender<Action>,
    rx: mpsc::UnboundedReceiver<Action>,
) -> Result<(), TuiError> {
    let (state, warnings) = initial_state_in(&options, env, event::now_millis());
    let mut tasks = Vec::new();
    let result = drive(
        store, &options, state, warnings, screen, size, tx, rx, &mut tasks,
    )
    .await;
    for task in tasks {
        task.abort();
    }
    result
}

/// The loop both consoles share: ticks, store changes, effects, drawing.
#[allow(clippy::too_many_arguments)]
async fn drive<S: ReadApi + CommandApi, D: screen::Screen>(
    store: S,
    options: &TuiOptions,
    mut state: AppState,
    warnings: Vec<String>,
    screen: &mut D,
    size: (u16, u16),
    tx: mpsc::UnboundedSender<Action>,
    mut rx: mpsc::UnboundedReceiver<Action>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), TuiError> {
    for w in &warnings {
        tracing::warn!(warning = %w, "console configuration");
    }
    if let Some(first) = warnings.first() {
        let more = if warnings.len() > 1 {
            format!(" (+{} more in the log)", warnings.len() - 1)
        } else {
            String::new()
        };
        state.flash(FlashLevel::Err, format!("{first}{more}"));
    }
    let depth = state.theme.depth;
    let mut runner = EffectRunner::new(
        store.clone(),
        options.operator.clone(),
        options.config_dir.clone(),
        depth,
        tx.clone(),
    );
    state.size = size;
    tasks.push(event::spawn_ticks(tx.clone(), Duration::from_secs(1)));
    tasks.push(event::spawn_changes(
        store.changes(),
        tx.clone(),
        Duration::from_millis(150),
    ));
    drop(tx);
    for effect in state.init() {
        runner.run(effect);
    }
    event_loop(screen, &mut state, &mut runner, &mut rx).await
}

async fn event_loop<S: ReadApi + CommandApi, D: screen::Screen>(
    screen: &mut D,
    state: &mut AppState,
    runner: &mut EffectRunner<S>,
    rx: &mut mpsc::UnboundedReceiver<Action>,
) -> Result<(), TuiError> {
    loop {
        if state.dirty {
            screen.draw(state)?;
            state.dirty = false;
        }
        let Some(first) = rx.recv().await else {
            return Ok(());
        };
        // Apply everything already queued before drawing again.
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        for action in batch {
            if let Action::Loaded(loaded) = &action {
                runner.finished(loaded.kind());
            }
            if let Action::Resize(w, h) = action {
                screen.resize(w, h)?;
            }
            for effect in state.update(action) {
                match effect {
                    Effect::Quit => return Ok(()),
                    Effect::Suspend => {
                        if let Some(size) = screen.suspend()? {
                            state.size = size;
                            state.dirty = true;
                        }
                    }
                    other => runner.run(other),
                }
            }
        }
    }
}
