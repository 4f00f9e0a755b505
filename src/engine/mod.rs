//! The engine: worker pool, job handlers, periodic scheduler and the execution log.

pub mod approvers;
pub mod checkpoint;
pub mod documents;
pub mod dormant;
pub mod flow;
pub mod grace;
pub mod handler;
pub mod intake;
pub mod logsink;
pub mod maintenance;
pub mod notify;
mod process_batch;
pub mod provision;
pub mod reconcile;
pub mod replies;
pub mod scheduler;
mod stage_opening;
pub mod steps;
mod target_checks;
pub mod timers;
pub mod worker;

use tokio::sync::watch;
use tracing::info;

/// Turn `stop` true on SIGTERM, SIGINT (ctrl-c) or SIGHUP; a second signal is left to the OS.
pub async fn shutdown_on_signal(stop: watch::Sender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        );
        if let (Ok(mut term), Ok(mut int), Ok(mut hup)) = streams {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => "SIGHUP",
            };
            info!(signal = name, "shutting down gracefully");
            let _ = stop.send(true);
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        info!("ctrl-c: shutting down gracefully");
        let _ = stop.send(true);
    }
}
