//! Command-line interface: clap definitions, logging set-up and dispatch to each verb.
//!
//! Exit codes: 0 ok, 2 usage (clap's own), 1 a failure with a message naming what failed.

pub use crate::failure::{CliError, Context};

pub mod args;
pub mod audit;
pub mod commands;
pub mod console;
pub mod directory;
pub mod dormant;
pub mod import;
pub mod mailbox;
mod operators;
pub mod reconcile;
mod requests;
pub mod serve;
mod steps;

pub use args::Cli;

use std::path::PathBuf;
use std::process::ExitCode;

/// Run the parsed command line and map the outcome to an exit code.
pub fn main(cli: Cli) -> ExitCode {
    if is_console(&cli) {
        limit_malloc_arenas();
    }
    if prints_a_listing(&cli) {
        die_quietly_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote stored names and reasons: shown inert, never interpreted.
            eprintln!(
                "gatehouse: {}",
                crate::domain::inert::inert_multiline(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// True for the processes whose memory is a console's: `tui`, and `bench tui` measuring one.
fn is_console(cli: &Cli) -> bool {
    use crate::bench::args::BenchCommand;
    use args::Command;
    match &cli.command {
        Command::Tui(_) => true,
        Command::Bench(BenchCommand::Tui(b)) => b.measure_store.is_some(),
        _ => false,
    }
}

/// Verbs that only print and exit, so `gatehouse request list | head` is normal use.
fn prints_a_listing(cli: &Cli) -> bool {
    use args::{AuditCommand, Command, ConfigCommand, OperatorCommand, RequestCommand};
    matches!(
        &cli.command,
        Command::Request(RequestCommand::List(_) | RequestCommand::Show(_))
            | Command::Audit(AuditCommand::Export(_))
            | Command::Config(ConfigCommand::History { .. })
            | Command::Operator(OperatorCommand::List)
            | Command::Operator(OperatorCommand::Key(args::KeyCommand::List))
            | Command::Reconcile(_)
            | Command::Dormant(_)
            | Command::Role(_)
            | Command::Directory(_)
            | Command::Mailbox(args::MailboxCommand::List)
            | Command::Delegation(args::DelegationCommand::List { .. })
    )
}

/// Rust ignores SIGPIPE, so printing into a closed pipe panics; a listing verb instead ends
/// silently when its reader goes away, as Unix tools do. Only these verbs: a worker or the
/// console must survive a peer closing a socket.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// glibc gives every thread that allocates its own arena; for a console that mostly waits,
/// two arenas keep the resident set a third smaller at no visible cost.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Where log files go: `$XDG_STATE_HOME/gatehouse` or the data directory.
pub fn default_log_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("gatehouse")
}
