//! One console over one SSH channel: input bytes → parser → console actions; frames → a
//! bounded outbox → the channel, honouring the client's window. A client that reads slowly
//! or not at all never holds up the console or anyone else: when its outbox is full the
//! frames are dropped, and once it catches up the console repaints the whole screen.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use russh::server::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::Notify;
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::serve::Shared;
use crate::serve::input::InputDecoder;
use crate::store::Store;
use crate::store::api::Actor;
use crate::tui::action::Action;
use crate::tui::screen::{Screen, WriterScreen};
use crate::tui::{TermEnv, TuiOptions, run_on};

/// Most output bytes waiting for one client; more and frames are dropped until it catches up.
pub(crate) const OUTBOX_LIMIT: usize = 256 * 1024;

/// How long the last bytes of a session may take to leave before the sender is dropped.
const SENDER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What a console starts with.
pub(crate) struct ConsoleStart {
    /// The store, reading with the operator's scopes.
    pub store: Store,
    /// The operator and the key and address they came from.
    pub actor: Actor,
    /// Their role.
    pub role: String,
    /// The client's terminal type and colour variables.
    pub env: TermEnv,
    /// The pty size.
    pub size: (u16, u16),
}

#[derive(Default)]
struct OutboxState {
    pending: Vec<u8>,
    dropped: bool,
    finishing: bool,
    closed: bool,
    size: (u16, u16),
}

/// Output waiting for one client, bounded by [`OUTBOX_LIMIT`].
#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    ready: Notify,
}

/// What the sending task takes from the outbox.
struct Batch {
    bytes: Vec<u8>,
    /// Frames were dropped and the outbox is empty again: repaint everything.
    repaint: Option<(u16, u16)>,
    closed: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // Only byte-vector updates happen under this lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one frame, or drops it (and everything waiting) when the client is too far behind.
    pub(crate) fn push(&self, frame: &[u8]) {
        let mut s = self.lock();
        if s.finishing {
            s.pending.extend_from_slice(frame);
        } else if s.dropped {
            return;
        } else if s.pending.len() + frame.len() > OUTBOX_LIMIT {
            s.pending = Vec::new();
            s.dropped = true;
            tracing::debug!("client too slow: frames dropped");
        } else {
            s.pending.extend_from_slice(frame);
        }
        drop(s);
        self.ready.notify_one();
    }

    /// From now on every frame is kept whatever the limit (the last bytes of a session:
    /// leaving the alternate screen, a farewell); what was dropped stays dropped.
    fn finishing(&self) {
        let mut s = self.lock();
        if s.dropped {
            s.pending.clear();
            s.dropped = false;
        }
        s.finishing = true;
    }

    /// No more bytes will come: the sender ends the channel once it sent what is queued.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    fn set_size(&self, size: (u16, u16)) {
        self.lock().size = size;
    }

    async fn next(&self) -> Batch {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.lock();
                let bytes = std::mem::take(&mut s.pending);
                let repaint = (s.dropped && bytes.is_empty()).then_some(s.size);
                if repaint.is_some() {
                    s.dropped = false;
                }
                if !bytes.is_empty() || repaint.is_some() || s.closed {
                    return Batch {
                        bytes,
                        repaint,
                        closed: s.closed,
                    };
                }
            }
            notified.await;
        }
    }
}

/// The console's writer: collects one frame, hands it to the outbox on flush.
struct OutboxWriter {
    outbox: Arc<Outbox>,
    frame: Vec<u8>,
}

impl Write for OutboxWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.frame.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.frame.is_empty() {
            self.outbox.push(&self.frame);
            self.frame.clear();
        }
        Ok(())
    }
}

/// Starts the console on `read`/`write`: three tasks (input, console, sender) that end
/// together.
pub(crate) fn start(
    shared: Arc<Shared>,
    console: ConsoleStart,
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
) {
    let outbox = Arc::new(Outbox::default());
    outbox.set_size(console.size);
    let (tx, rx) = mpsc::unbounded_channel::<Action>();
    let slot = shared.registry.add_console(tx.clone());
    let input = tokio::spawn(read_input(read, tx.clone(), outbox.clone()));
    let sender = tokio::spawn(send_output(write, outbox.clone(), tx.clone()));
    let options = TuiOptions {
        operator: console.actor.clone(),
        role: console.role.clone(),
        read_only: false,
        theme: shared.options.theme.clone(),
        config_dir: shared.options.config_dir.clone(),
        log_file: None,
    };
    tokio::spawn(async move {
        let operator = console.actor.user.clone();
        let source = console.actor.source.clone();
        tracing::info!(operator, source, "console started");
        let writer = OutboxWriter {
            outbox: outbox.clone(),
            frame: Vec::new(),
        };
        let (w, h) = console.size;
        match WriterScreen::enter(writer, w, h) {
            Ok(mut screen) => {
                let result = run_on(
                    console.store,
                    options,
                    &console.env,
                    &mut screen,
                    console.size,
                    tx,
                    rx,
                )
                .await;
                if let Err(e) = &result {
                    tracing::warn!(operator, error = %e, "console failed");
                }
                outbox.finishing();
                let _ = screen.leave();
                if let Some(message) = slot.farewell() {
                    let _ = screen.write_raw(&message);
                }
            }
            Err(e) => tracing::warn!(operator, error = %e, "console could not start"),
        }
        outbox.close();
        input.abort();
        // The sender ends itself once the outbox is empty and closed (or the client left); a
        // client that stopped reading gets a few seconds, then its connection's own timeout.
        let abort = sender.abort_handle();
        if tokio::time::timeout(SENDER_GRACE, sender).await.is_err() {
            abort.abort();
        }
        // The console counts as open until its last bytes left: a stopping server waits for
        // that before it cuts connections, so the farewell is not lost to the disconnect.
        drop(slot);
        tracing::info!(operator, source, "console ended");
    });
}

async fn read_input(mut read: ChannelReadHalf, tx: UnboundedSender<Action>, outbox: Arc<Outbox>) {
    let mut decoder = InputDecoder::default();
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                for action in decoder.feed(&data) {
                    if tx.send(action).is_err() {
                        return;
                    }
                }
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                ..
            } => {
                let size = (
                    u16::try_from(col_width).unwrap_or(u16::MAX).max(1),
                    u16::try_from(row_height).unwrap_or(u16::MAX).max(1),
                );
                outbox.set_size(size);
                if tx.send(Action::Resize(size.0, size.1)).is_err() {
                    return;
                }
            }
            ChannelMsg::Eof | ChannelMsg::Close => break,
            _ => {}
        }
    }
    // The client went away: end the console.
    let _ = tx.send(Action::Terminate);
}

async fn send_output(
    write: ChannelWriteHalf<Msg>,
    outbox: Arc<Outbox>,
    tx: UnboundedSender<Action>,
) {
    loop {
        let batch = outbox.next().await;
        if !batch.bytes.is_empty() && write.data_bytes(batch.bytes).await.is_err() {
            // The client is gone; the input side ends the console.
            let _ = tx.send(Action::Terminate);
            return;
        }
        if let Some((w, h)) = batch.repaint {
            // A resize to the same size clears the screen and draws every cell again.
            let _ = tx.send(Action::Resize(w, h));
        }
        if batch.closed && outbox.lock().pending.is_empty() {
            let _ = write.exit_status(0).await;
            let _ = write.eof().await;
            let _ = write.close().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_outbox_drops_frames_then_asks_for_a_repaint() {
        let outbox = Outbox::default();
        outbox.set_size((80, 24));
        outbox.push(&vec![b'a'; OUTBOX_LIMIT - 10]);
        outbox.push(&[b'b'; 20]);
        outbox.push(b"c");
        let batch = outbox.next().await;
        assert!(
            batch.bytes.is_empty(),
            "frames were dropped, nothing queued"
        );
        assert_eq!(batch.repaint, Some((80, 24)));
        outbox.push(b"full frame");
        let batch = outbox.next().await;
        assert_eq!(batch.bytes, b"full frame");
        assert_eq!(batch.repaint, None);
    }

    #[tokio::test]
    async fn closing_keeps_the_last_bytes() {
        let outbox = Outbox::default();
        outbox.push(&vec![b'a'; OUTBOX_LIMIT + 1]);
        outbox.finishing();
        outbox.push(b"bye");
        outbox.close();
        let batch = outbox.next().await;
        assert_eq!(batch.bytes, b"bye");
        assert!(batch.closed);
    }
}
