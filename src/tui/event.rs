//! Input and timing tasks: terminal events (keys, paste, resize), the slow clock tick, store
//! change signals and termination signals, all turned into `Action`s on one channel.

use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::tui::action::Action;

/// Reads terminal events until the stream ends or the receiver is gone.
pub fn spawn_input(tx: UnboundedSender<Action>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(event) = events.next().await {
            let action = match event {
                Ok(Event::Key(key)) => Action::Key(key),
                Ok(Event::Paste(text)) => Action::Paste(text),
                Ok(Event::Resize(w, h)) => Action::Resize(w, h),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "terminal input failed");
                    let _ = tx.send(Action::Terminate);
                    break;
                }
            };
            if tx.send(action).is_err() {
                break;
            }
        }
    })
}

/// The current time in Unix milliseconds.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends `Tick(now)` every `period` (for clocks and ages only; data refresh is signal-driven).
pub fn spawn_ticks(tx: UnboundedSender<Action>, period: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if tx.send(Action::Tick(now_millis())).is_err() {
                break;
            }
        }
    })
}

/// Turns store change signals into `StoreChanged`, at most one per `coalesce` period.
pub fn spawn_changes(
    mut changes: watch::Receiver<u64>,
    tx: UnboundedSender<Action>,
    coalesce: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            changes.borrow_and_update();
            if tx.send(Action::StoreChanged).is_err() {
                break;
            }
            tokio::time::sleep(coalesce).await;
        }
    })
}

/// SIGTERM, SIGHUP (the SSH session went away) and SIGINT sent by `kill` become `Terminate`,
/// so the terminal is restored before exit.
pub fn spawn_signals(tx: UnboundedSender<Action>) -> std::io::Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(Action::Terminate);
    }))
}
