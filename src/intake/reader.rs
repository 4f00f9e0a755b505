//! The mailbox reader: for each saved mailbox document, take the mailbox's reading lease, read
//! what lies above the recorded position in batches (fetch, classify with a concurrency limit,
//! record the batch and its requests in one store transaction, then flag or move it), renew
//! the lease, and wait for new mail with IDLE or polling. Connection failures are retried with
//! exponential backoff and jitter; every error is logged and kept in the mailbox's state.
//!
//! Exactly once: the position only moves in the transaction that records the batch (and over
//! the batch's approval replies once it is recorded), so a crash re-reads at most the batch in
//! flight, and the store skips what it has already recorded (by UID) or seen (by Message-ID). The classifier is passed in as an
//! [`MailClassifier`] so this module does not depend on how messages are understood; approval
//! replies are recognised before classification by a [`ReplyReader`] (the engine's), which
//! records each one in its own transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::domain::config::{ConfigDocument, Mailbox, check_document};
use crate::domain::intake::Classified;
use crate::intake::imap::{ImapConnection, ImapError, ImapSettings};
use crate::store::Store;
use crate::store::api::{Actor, ConfigVersion, ReadApi};
use crate::store::error::StoreError;
use crate::store::intake::{IncomingMessage, LeaseRef};
use crate::store::replies::ReplyAt;

/// Understands one raw message of `mailbox` (its settings choose the rules and the model).
/// The product's classifier is [`crate::intake::configured::MailboxClassifiers`]; the reader
/// only needs this seam.
pub trait MailClassifier: Send + Sync {
    /// Classify one raw RFC 5322 message (any bytes; never panics).
    fn classify<'a>(&'a self, mailbox: &'a Mailbox, raw: &'a [u8]) -> BoxFuture<'a, Classified>;

    /// A name for logs and benchmark output.
    fn name(&self) -> &str {
        "classifier"
    }
}

/// Recognises approval replies before classification. The engine supplies the product's
/// implementation; intake depends only on this seam, never on the engine.
pub trait ReplyReader: Send + Sync + std::fmt::Debug {
    /// When `raw` (read from `mailbox` at `at`) is an approval reply, decides or refuses it and
    /// records it in the store (which records the message processed) and answers true; false
    /// leaves the message to the classifier. An error leaves the message unrecorded.
    fn read_reply<'a>(
        &'a self,
        mailbox: &'a Mailbox,
        at: ReplyAt<'a>,
        raw: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// How readers run.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Lease holder id (the worker's id).
    pub owner: String,
    /// Reading lease length; renewed after every batch and at least every third of it.
    pub lease: Duration,
    /// Messages classified at once.
    pub classify_concurrency: usize,
    /// Polling interval when a document sets none (and IDLE is off or missing).
    pub poll: Duration,
    /// How often the saved mailbox documents are read again.
    pub rescan: Duration,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// Approval replies are handed to this before classification (none: every message is
    /// classified).
    pub replies: Option<Arc<dyn ReplyReader>>,
}

impl ReaderOptions {
    /// Defaults for a reader run by worker `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            lease: Duration::from_secs(30),
            classify_concurrency: 8,
            poll: Duration::from_secs(30),
            rescan: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            replies: None,
        }
    }
}

/// Why a reading session ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The IMAP side failed.
    #[error("{0}")]
    Imap(#[from] ImapError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// How a reading session ended without an error.
enum SessionEnd {
    Stopped,
    LeaseLost,
}

/// Exponential backoff with jitter: 1 s doubling up to `max`, each pause between half and
/// all of that.
pub fn reconnect_backoff(failures: u32, max: Duration) -> Duration {
    let full = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(max);
    let half = full / 2;
    half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
}

/// Sleep `pause`; true when `stop` turned true meanwhile.
async fn pause_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Classified messages to record as a batch, and the UIDs of approval replies already recorded.
type Understood = (Vec<IncomingMessage>, Vec<u32>);

/// What became of one fetched message.
enum Read {
    /// Classified, to be recorded with the batch (boxed: it is large, a reply is a UID).
    Classified(Box<IncomingMessage>),
    /// An approval reply the reply reader recorded (its UID).
    Replied(u32),
}

/// Classify fetched messages, at most `limit` at once, keeping their order; approval replies
/// go to `replies` first (recorded there, left out of the batch). A reply that could not be
/// recorded fails the whole batch, so nothing after it is recorded before it.
async fn classify_all(
    classifier: &dyn MailClassifier,
    replies: Option<(&dyn ReplyReader, LeaseRef<'_>, u32)>,
    fetched: Vec<(u32, Vec<u8>)>,
    limit: usize,
    mailbox: &Mailbox,
) -> Result<Understood, StoreError> {
    let results: Vec<Result<Read, StoreError>> = futures::stream::iter(fetched)
        .map(|(uid, raw)| async move {
            if let Some((desk, lease, uidvalidity)) = replies {
                let at = ReplyAt {
                    lease,
                    uidvalidity,
                    uid,
                };
                if desk.read_reply(mailbox, at, &raw).await? {
                    return Ok(Read::Replied(uid));
                }
            }
            let classified = classifier.classify(mailbox, &raw).await;
            Ok(Read::Classified(Box::new(IncomingMessage {
                uid,
                classified,
                workflow: mailbox.workflow.clone(),
                source: format!("imap:{}", mailbox.name),
            })))
        })
        .buffered(limit.max(1))
        .collect()
        .await;
    let mut messages = Vec::with_capacity(results.len());
    let mut replied = Vec::new();
    for result in results {
        match result? {
            Read::Classified(message) => messages.push(*message),
            Read::Replied(uid) => replied.push(uid),
        }
    }
    Ok((messages, replied))
}

/// Read one mailbox until `stop` turns true: lease, connect, read, wait, reconnect.
pub async fn run_mailbox(
    store: Store,
    mailbox: Mailbox,
    classifier: Arc<dyn MailClassifier>,
    options: ReaderOptions,
    mut stop: watch::Receiver<bool>,
) {
    let name = mailbox.name.clone();
    let owner = options.owner.clone();
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        match store
            .acquire_mailbox_lease(&name, &owner, options.lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                debug!(mailbox = %name, "another reader holds the lease");
                if pause_or_stop(options.lease / 3, &mut stop).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                failures += 1;
                warn!(mailbox = %name, error = %e, "cannot take the reading lease");
                if pause_or_stop(reconnect_backoff(failures, options.max_backoff), &mut stop).await
                {
                    break;
                }
                continue;
            }
        }
        match read_session(
            &store,
            &mailbox,
            &classifier,
            &options,
            &mut failures,
            &mut stop,
        )
        .await
        {
            Ok(SessionEnd::Stopped) => break,
            Ok(SessionEnd::LeaseLost) => {
                info!(mailbox = %name, "the reading lease was taken over; stepping back");
                if pause_or_stop(options.lease / 3, &mut stop).await {
                    break;
                }
            }
            Err(e) => {
                failures += 1;
                let pause = reconnect_backoff(failures, options.max_backoff);
                warn!(mailbox = %name, error = %e, retry_in_ms = pause.as_millis() as u64, "mailbox reading failed; reconnecting");
                let message = e.to_string();
                if let Err(e) = store
                    .set_mailbox_status(&name, &owner, false, None, Some(&message))
                    .await
                {
                    debug!(mailbox = %name, error = %e, "could not record the mailbox error");
                }
                // Keep the lease through the pause, so another worker does not race in
                // against the same failing server.
                let _ = store
                    .renew_mailbox_lease(&name, &owner, options.lease + pause)
                    .await;
                if pause_or_stop(pause, &mut stop).await {
                    break;
                }
            }
        }
    }
    match store.release_mailbox_lease(&name, &owner).await {
        Ok(_) => info!(mailbox = %name, "mailbox reader stopped"),
        Err(e) => {
            warn!(mailbox = %name, error = %e, "could not release the reading lease; it expires")
        }
    }
}

/// How reading the backlog ended.
enum BacklogEnd {
    /// Everything above the position was recorded; this many messages.
    Done(usize),
    /// `stop` turned true between batches.
    Stopped,
    /// Another reader holds the lease now.
    LeaseLost,
}

/// What one reading session works with.
struct Session<'a> {
    store: &'a Store,
    mailbox: &'a Mailbox,
    classifier: &'a Arc<dyn MailClassifier>,
    options: &'a ReaderOptions,
    actor: Actor,
}

type Recording = tokio::task::JoinHandle<Result<Vec<u32>, StoreError>>;

impl Session<'_> {
    /// Record one classified batch in a task of its own (so the next batch is fetched and
    /// classified meanwhile); answers the UIDs recorded (with `replied`, the approval replies
    /// of the batch, recorded already).
    fn record(
        &self,
        uidvalidity: u32,
        messages: Vec<IncomingMessage>,
        replied: Vec<u32>,
    ) -> Recording {
        let (store, actor) = (self.store.clone(), self.actor.clone());
        let (name, owner) = (self.mailbox.name.clone(), self.options.owner.clone());
        tokio::spawn(async move {
            let mut uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
            let lease = LeaseRef {
                mailbox: &name,
                owner: &owner,
            };
            store
                .record_intake(&actor, lease, uidvalidity, messages)
                .await?;
            // The batch is recorded and so are its replies (each in its own transaction,
            // before): the position may move over the replies too.
            if let Some(last) = replied.iter().copied().max() {
                store
                    .advance_over_replies(lease, uidvalidity, last, replied.len())
                    .await?;
            }
            uids.extend(replied);
            uids.sort_unstable();
            Ok(uids)
        })
    }

    /// Wait for a recording; flag or move what it recorded; renew the lease. False when the
    /// lease was lost.
    async fn settle(
        &self,
        conn: &mut ImapConnection,
        recording: Recording,
    ) -> Result<bool, ReaderError> {
        let uids = match recording.await {
            Ok(Ok(uids)) => uids,
            Ok(Err(StoreError::Conflict { .. })) => return Ok(false),
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => {
                return Err(ReaderError::Store(StoreError::Corrupt(format!(
                    "recording task failed: {e}"
                ))));
            }
        };
        conn.mark_processed(
            &uids,
            self.mailbox.processed,
            self.mailbox.flag.as_deref(),
            self.mailbox.move_to.as_deref(),
        )
        .await?;
        Ok(self
            .store
            .renew_mailbox_lease(&self.mailbox.name, &self.options.owner, self.options.lease)
            .await?)
    }

    /// Renew the lease every third of its length; returns (Ok) only when it was lost.
    async fn keep_lease(&self) -> Result<(), ReaderError> {
        loop {
            tokio::time::sleep(self.options.lease / 3).await;
            if !self
                .store
                .renew_mailbox_lease(&self.mailbox.name, &self.options.owner, self.options.lease)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Read everything above `*last` in batches: fetch, classify, record (one transaction per
    /// batch, overlapping the next fetch), then flag or move.
    async fn read_backlog(
        &self,
        conn: &mut ImapConnection,
        uidvalidity: u32,
        last: &mut u32,
        stop: &watch::Receiver<bool>,
    ) -> Result<BacklogEnd, ReaderError> {
        let (name, owner) = (self.mailbox.name.as_str(), self.options.owner.as_str());
        let uids = conn.uids_above(*last).await?;
        let total = uids.len();
        let mut backlog = total;
        self.store
            .set_mailbox_status(name, owner, true, Some(backlog as i64), None)
            .await?;
        let mut pending: Option<Recording> = None;
        for chunk in uids.chunks(self.mailbox.batch() as usize) {
            if *stop.borrow() {
                break;
            }
            let fetched = conn.fetch(chunk).await?;
            // A slow classifier (a model) may take longer than the lease: keep renewing it.
            let lease = LeaseRef {
                mailbox: name,
                owner,
            };
            let replies = self
                .options
                .replies
                .as_deref()
                .map(|desk| (desk, lease, uidvalidity));
            let classify = classify_all(
                self.classifier.as_ref(),
                replies,
                fetched,
                self.options.classify_concurrency,
                self.mailbox,
            );
            let (messages, replied) = tokio::select! {
                understood = classify => understood?,
                held = self.keep_lease() => {
                    held?;
                    return Ok(BacklogEnd::LeaseLost);
                }
            };
            if let Some(recording) = pending.take() {
                if !self.settle(conn, recording).await? {
                    return Ok(BacklogEnd::LeaseLost);
                }
                self.store
                    .set_mailbox_status(name, owner, true, Some(backlog as i64), None)
                    .await?;
            }
            pending = Some(self.record(uidvalidity, messages, replied));
            *last = chunk.iter().copied().max().unwrap_or(*last);
            backlog = backlog.saturating_sub(chunk.len());
        }
        if let Some(recording) = pending.take() {
            if !self.settle(conn, recording).await? {
                return Ok(BacklogEnd::LeaseLost);
            }
            self.store
                .set_mailbox_status(name, owner, true, Some(backlog as i64), None)
                .await?;
        }
        if *stop.borrow() {
            return Ok(BacklogEnd::Stopped);
        }
        Ok(BacklogEnd::Done(total))
    }
}

/// Connect and select; where to start reading (0 after a UIDVALIDITY change).
async fn open_folder(
    store: &Store,
    mailbox: &Mailbox,
    settings: &ImapSettings,
) -> Result<(ImapConnection, u32, u32), ReaderError> {
    let mut conn = ImapConnection::connect(settings).await?;
    let folder = conn.select(&mailbox.folder).await?;
    let state = store.mailbox_state(&mailbox.name).await?;
    let validity = i64::from(folder.uidvalidity);
    let last = match &state {
        Some(s) if s.uidvalidity == Some(validity) => u32::try_from(s.last_uid).unwrap_or(0),
        Some(s) if s.uidvalidity.is_some() => {
            info!(mailbox = %mailbox.name, old = s.uidvalidity, new = validity, "UIDVALIDITY changed: reading the folder again (Message-IDs keep it from duplicating)");
            0
        }
        _ => 0,
    };
    Ok((conn, folder.uidvalidity, last))
}

/// One connection's worth of reading.
async fn read_session(
    store: &Store,
    mailbox: &Mailbox,
    classifier: &Arc<dyn MailClassifier>,
    options: &ReaderOptions,
    failures: &mut u32,
    stop: &mut watch::Receiver<bool>,
) -> Result<SessionEnd, ReaderError> {
    let (name, owner) = (mailbox.name.as_str(), options.owner.as_str());
    let settings = ImapSettings::from_mailbox(mailbox)?;
    let (mut conn, uidvalidity, mut last) = open_folder(store, mailbox, &settings).await?;
    store
        .set_mailbox_status(name, owner, true, None, None)
        .await?;
    *failures = 0;
    info!(mailbox = %name, folder = %mailbox.folder, uidvalidity, last_uid = last, idle = conn.supports_idle(), "mailbox connected");
    let session = Session {
        store,
        mailbox,
        classifier,
        options,
        actor: Actor::system("intake", format!("worker:{owner}")),
    };
    let wait = mailbox
        .poll_interval
        .map(|d| d.duration())
        .unwrap_or(options.poll)
        .min(options.lease / 3)
        .max(Duration::from_millis(100));
    loop {
        match session
            .read_backlog(&mut conn, uidvalidity, &mut last, stop)
            .await?
        {
            BacklogEnd::Done(_) => {}
            BacklogEnd::Stopped => {
                conn.logout().await;
                return Ok(SessionEnd::Stopped);
            }
            BacklogEnd::LeaseLost => {
                conn.logout().await;
                return Ok(SessionEnd::LeaseLost);
            }
        }
        if !store
            .renew_mailbox_lease(name, owner, options.lease)
            .await?
        {
            conn.logout().await;
            return Ok(SessionEnd::LeaseLost);
        }
        tokio::select! {
            woke = conn.wait_for_mail(wait, mailbox.idle) => { woke?; }
            _ = stop.changed() => {
                conn.logout().await;
                return Ok(SessionEnd::Stopped);
            }
        }
        if *stop.borrow() {
            conn.logout().await;
            return Ok(SessionEnd::Stopped);
        }
    }
}

/// Read what a folder holds above the recorded position once, then return how many messages
/// were read (the benchmark's path; the worker's readers use the same batches). Takes the
/// mailbox's lease for `options.owner` and hands it back; `settings` gives the connection
/// (its password need not come from the document).
pub async fn drain_mailbox(
    store: &Store,
    mailbox: &Mailbox,
    settings: &ImapSettings,
    classifier: &Arc<dyn MailClassifier>,
    options: &ReaderOptions,
) -> Result<usize, ReaderError> {
    let (name, owner) = (mailbox.name.as_str(), options.owner.as_str());
    if !store
        .acquire_mailbox_lease(name, owner, options.lease)
        .await?
    {
        return Err(ReaderError::Store(StoreError::Conflict {
            entity: "mailbox",
            id: name.to_string(),
            changed_by: "another reader".into(),
            changed_at: String::new(),
            what: "the reading lease is held by another reader".into(),
        }));
    }
    let result = async {
        let (mut conn, uidvalidity, mut last) = open_folder(store, mailbox, settings).await?;
        let session = Session {
            store,
            mailbox,
            classifier,
            options,
            actor: Actor::system("intake", format!("bench:{owner}")),
        };
        let (_tx, rx) = watch::channel(false);
        let end = session
            .read_backlog(&mut conn, uidvalidity, &mut last, &rx)
            .await;
        conn.logout().await;
        match end? {
            BacklogEnd::Done(n) => Ok(n),
            _ => Err(ReaderError::Store(StoreError::Conflict {
                entity: "mailbox",
                id: name.to_string(),
                changed_by: "another reader".into(),
                changed_at: String::new(),
                what: "the reading lease was taken over while reading".into(),
            })),
        }
    }
    .await;
    let _ = store.release_mailbox_lease(name, owner).await;
    result
}

/// One running reader.
struct Running {
    version: i64,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A saved mailbox document that does not parse: name, version and its first problem.
pub type UnreadableMailbox = (String, i64, String);

/// The mailbox documents among `heads` (newest versions of saved documents) that parse, with
/// their versions, and those that do not.
pub fn mailbox_documents_of(
    heads: Vec<ConfigVersion>,
) -> (Vec<(Mailbox, i64)>, Vec<UnreadableMailbox>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for head in heads {
        if head.kind != "mailbox" {
            continue;
        }
        match check_document(&head.name, &head.body) {
            Ok(ConfigDocument::Mailbox(m)) => good.push((m, head.version)),
            Ok(_) => {}
            Err(d) => {
                let first = d.first().map(ToString::to_string).unwrap_or_default();
                bad.push((head.name, head.version, first));
            }
        }
    }
    (good, bad)
}

/// The saved mailbox documents (newest versions) that parse; the others are logged.
async fn mailbox_documents(store: &Store) -> Result<Vec<(Mailbox, i64)>, StoreError> {
    let (good, bad) = mailbox_documents_of(store.config_heads().await?);
    for (name, version, error) in bad {
        warn!(mailbox = %name, version, error = %error, "stored mailbox document does not parse; not reading it");
    }
    Ok(good)
}

/// Run a reader for every saved mailbox document until `stop` turns true; documents are read
/// again every `options.rescan`, so new, changed and removed mailboxes are picked up. Each
/// reader competes for its mailbox's lease, so any number of workers can run this.
pub async fn run_readers(
    store: Store,
    classifier: Arc<dyn MailClassifier>,
    options: ReaderOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        match mailbox_documents(&store).await {
            Ok(documents) => {
                let names: Vec<String> = documents.iter().map(|(m, _)| m.name.clone()).collect();
                let gone: Vec<String> = running
                    .keys()
                    .filter(|n| !names.contains(n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(r) = running.remove(&name) {
                        let _ = r.stop.send(true);
                        let _ = r.task.await;
                    }
                }
                for (mailbox, version) in documents {
                    if let Some(r) = running.get(&mailbox.name) {
                        if r.version == version && !r.task.is_finished() {
                            continue;
                        }
                        if let Some(r) = running.remove(&mailbox.name) {
                            let _ = r.stop.send(true);
                            let _ = r.task.await;
                        }
                    }
                    let (tx, rx) = watch::channel(false);
                    let name = mailbox.name.clone();
                    info!(mailbox = %name, version, "starting mailbox reader");
                    let task = tokio::spawn(run_mailbox(
                        store.clone(),
                        mailbox,
                        classifier.clone(),
                        options.clone(),
                        rx,
                    ));
                    running.insert(
                        name,
                        Running {
                            version,
                            stop: tx,
                            task,
                        },
                    );
                }
            }
            Err(e) => warn!(error = %e, "cannot read the mailbox documents"),
        }
        if pause_or_stop(options.rescan, &mut stop).await {
            break;
        }
    }
    for (_, r) in running.drain() {
        let _ = r.stop.send(true);
        let _ = r.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let max = Duration::from_secs(60);
        for failures in 1..40 {
            let d = reconnect_backoff(failures, max);
            assert!(d <= max, "{d:?}");
            assert!(d >= Duration::from_millis(500), "{d:?}");
        }
        assert!(reconnect_backoff(1, max) <= Duration::from_secs(1));
        assert!(reconnect_backoff(8, max) >= Duration::from_secs(30));
    }
}
