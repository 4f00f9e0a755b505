//! Mailbox reading as part of the engine: a worker runs a reader for every saved mailbox
//! document and competes with the other workers for each mailbox's reading lease, so exactly
//! one worker (on any host) reads a mailbox at a time. The classifier is handed in by the
//! caller (the CLI builds it), so the engine does not choose how mail is understood; approval
//! replies go to the engine's [`ReplyDesk`] first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::replies::ReplyDesk;
use crate::intake::reader::{MailClassifier, ReaderOptions, run_readers};
use crate::store::Store;

/// How a worker reads mailboxes.
#[derive(Clone)]
pub struct MailboxReading {
    /// Understands each message.
    pub classifier: Arc<dyn MailClassifier>,
    /// Reading lease length (renewed after each batch and at least every third of it).
    pub lease: Duration,
    /// Messages classified at once per mailbox.
    pub classify_concurrency: usize,
}

impl std::fmt::Debug for MailboxReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxReading")
            .field("classifier", &self.classifier.name())
            .field("lease", &self.lease)
            .field("classify_concurrency", &self.classify_concurrency)
            .finish()
    }
}

/// Start the mailbox readers of worker `worker_id`; they stop when `stop` turns true (each
/// hands its lease back).
pub fn spawn_mailbox_readers(
    store: Store,
    reading: MailboxReading,
    worker_id: &str,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut options = ReaderOptions::new(worker_id);
    options.lease = reading.lease;
    options.classify_concurrency = reading.classify_concurrency;
    options.replies = Some(Arc::new(ReplyDesk::new(store.clone(), worker_id)));
    tokio::spawn(run_readers(store, reading.classifier, options, stop))
}
