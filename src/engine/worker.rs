//! The worker pool: claims jobs in batches, runs handlers, heartbeats leases, batches
//! completions, and shuts down gracefully (finish in-flight jobs or release their leases).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::domain::retry::{RetryDecision, RetryPolicy};
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::store::Store;
use crate::store::api::{FailOutcome, JobRow, WorkerRow};

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Stable id, `host:pid:random`.
    pub id: String,
    /// Queues to claim from.
    pub queues: Vec<String>,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Most jobs claimed in one statement.
    pub batch: u32,
    /// Lease length; heartbeats extend it every third of it.
    pub lease: Duration,
    /// Fallback poll when no wake-up arrives.
    pub poll: Duration,
    /// How long shutdown waits for running jobs before releasing their leases.
    pub grace: Duration,
    /// Most completions flushed in one statement.
    pub completion_batch: usize,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
}

impl WorkerConfig {
    /// Defaults for a worker with `concurrency` slots on the standard queues.
    pub fn new(concurrency: usize) -> Self {
        Self {
            id: new_worker_id(),
            queues: ["default", "provision", "notify", "maintenance"]
                .map(String::from)
                .to_vec(),
            concurrency: concurrency.max(1),
            batch: 100,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            completion_batch: 500,
            retry: RetryPolicy::default(),
        }
    }
}

/// A fresh worker id: host, pid and a random suffix so restarts never collide.
pub fn new_worker_id() -> String {
    format!(
        "{}:{}:{:04x}",
        host_name(),
        std::process::id(),
        fastrand::u16(..)
    )
}

/// This machine's host name (`unknown` when it cannot be read).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Counters a worker keeps and reports with its heartbeat.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Jobs completed.
    pub processed: AtomicI64,
    /// Attempts failed.
    pub failed: AtomicI64,
    /// Last job started.
    pub current_job: AtomicI64,
}

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs completed.
    pub processed: i64,
    /// Attempts failed.
    pub failed: i64,
    /// Leases handed back at shutdown.
    pub released: usize,
}

struct Shared {
    store: Store,
    registry: Registry,
    config: WorkerConfig,
    counters: Arc<WorkerCounters>,
    in_flight: Mutex<HashSet<i64>>,
    /// Jobs whose handler succeeded and whose completion is not committed yet: their leases
    /// are still extended by the heartbeat, so a slow flush never lets another worker rerun
    /// them.
    unflushed: Arc<Mutex<HashSet<i64>>>,
    draining: AtomicBool,
    /// Bounded: when completions cannot be written as fast as jobs finish, finished handlers
    /// wait here (holding their slot), so the worker claims less instead of piling up.
    completions: mpsc::Sender<i64>,
}

/// Completions that may wait to be flushed, per slot of completion batch.
const COMPLETION_BACKLOG_BATCHES: usize = 4;

/// Longest wait, at shutdown, for each last write (completions, lease release, worker row)
/// once the grace period is over: with the database down, the worker still exits.
const SHUTDOWN_WRITE_LIMIT: Duration = Duration::from_secs(2);

/// Run a worker until `shutdown` turns true or an operator drains it.
pub async fn run_worker(
    store: Store,
    registry: Registry,
    config: WorkerConfig,
    shutdown: watch::Receiver<bool>,
) -> WorkerSummary {
    let (completion_tx, completion_rx) =
        mpsc::channel(config.completion_batch.max(1) * COMPLETION_BACKLOG_BATCHES);
    let unflushed = Arc::new(Mutex::new(HashSet::new()));
    let shared = Arc::new(Shared {
        store: store.clone(),
        registry,
        config: config.clone(),
        counters: Arc::new(WorkerCounters::default()),
        in_flight: Mutex::new(HashSet::new()),
        unflushed: unflushed.clone(),
        draining: AtomicBool::new(false),
        completions: completion_tx,
    });
    register(&shared).await;
    info!(worker = %config.id, concurrency = config.concurrency, "worker started");

    let mut completer = tokio::spawn(flush_completions(
        store.clone(),
        config.id.clone(),
        config.completion_batch,
        shared.counters.clone(),
        unflushed,
        completion_rx,
    ));
    let (stop_beat_tx, stop_beat_rx) = watch::channel(false);
    let beater = tokio::spawn(heartbeat(shared.clone(), stop_beat_rx));

    let slots = Arc::new(Semaphore::new(config.concurrency));
    let tasks = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
    // Claims in flight at once: one when a claim can fill every slot; with small claims (one
    // job each) several, so slots are not refilled one round trip at a time.
    let claimers = config
        .concurrency
        .div_ceil(config.batch.max(1) as usize)
        .clamp(1, MAX_CLAIMERS);
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..claimers {
        loops.spawn(claim_loop(
            shared.clone(),
            slots.clone(),
            tasks.clone(),
            shutdown.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
    // Every claim loop has ended: the running handlers' set is this function's alone now.
    let mut tasks = match tasks.lock() {
        Ok(mut guard) => std::mem::take(&mut *guard),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };

    info!(worker = %config.id, "worker stopping: waiting for running jobs");
    let grace_end = tokio::time::Instant::now() + config.grace;
    let deadline = tokio::time::sleep_until(grace_end);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut deadline => break,
        }
    }
    tasks.abort_all();
    let leftover: Vec<i64> = shared.in_flight.lock().await.iter().copied().collect();
    let released = leftover.len();
    if !leftover.is_empty() {
        match tokio::time::timeout(
            SHUTDOWN_WRITE_LIMIT,
            shared.store.release_jobs(&config.id, &leftover),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(worker = %config.id, error = %e, "could not release leases; they return when they expire")
            }
            Err(_) => {
                warn!(worker = %config.id, "releasing leases timed out; they return when they expire")
            }
        }
    }
    let _ = stop_beat_tx.send(true);
    let mut beater = beater;
    if tokio::time::timeout(SHUTDOWN_WRITE_LIMIT, &mut beater)
        .await
        .is_err()
    {
        beater.abort();
    }
    // Dropping the last sender ends the completer after it flushed everything queued; with
    // the database unreachable it gets what is left of the grace period (at least a moment),
    // then its jobs' leases expire and they run again (handlers are idempotent).
    let counters = shared.counters.clone();
    drop(shared);
    let flush_until = grace_end.max(tokio::time::Instant::now() + SHUTDOWN_WRITE_LIMIT);
    if tokio::time::timeout_at(flush_until, &mut completer)
        .await
        .is_err()
    {
        completer.abort();
        warn!(worker = %config.id, "completions not recorded before shutdown; those jobs return when their leases expire");
    }
    let summary = WorkerSummary {
        processed: counters.processed.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        released,
    };
    match tokio::time::timeout(SHUTDOWN_WRITE_LIMIT, store.worker_stopped(&config.id)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(worker = %config.id, error = %e, "could not mark worker stopped"),
        Err(_) => warn!(worker = %config.id, "marking the worker stopped timed out"),
    }
    info!(worker = %config.id, processed = summary.processed, failed = summary.failed, released, "worker stopped");
    summary
}

/// Most claims one worker keeps in flight at once.
const MAX_CLAIMERS: usize = 4;

/// One claim loop: take free slots (up to a claim's size), lease that many jobs, start them;
/// wait for a wake-up (or the poll) when there was nothing to claim. Ends at shutdown or drain.
async fn claim_loop(
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tasks: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let mut wake = shared.store.job_wakeups();
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() || shared.draining.load(Ordering::Relaxed) {
            break;
        }
        if let Ok(mut set) = tasks.lock() {
            // Reap finished tasks so the set does not grow without bound.
            while set.try_join_next().is_some() {}
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let mut permits = vec![first];
        let want = (config.batch as usize).min(config.concurrency);
        while permits.len() < want {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        // With the database unreachable a claim waits for a connection (up to the pool's
        // acquire timeout); shutdown does not wait for it. A claim abandoned after the server
        // leased rows only delays those jobs until their leases expire.
        let claimed = tokio::select! {
            claimed = shared.store.claim(
                &config.id,
                &config.queues,
                permits.len() as u32,
                config.lease,
            ) => claimed,
            _ = shutdown.changed() => break,
        };
        match claimed {
            Ok(jobs) if !jobs.is_empty() => {
                failures = 0;
                {
                    let mut in_flight = shared.in_flight.lock().await;
                    in_flight.extend(jobs.iter().map(|j| j.id));
                }
                let Ok(mut set) = tasks.lock() else {
                    // Only a panic while holding this lock poisons it, and nothing that holds
                    // it can panic; stop claiming rather than lose track of handlers.
                    break;
                };
                for job in jobs {
                    // A permit per claimed job: the claim asked for at most permits.len().
                    let Some(permit) = permits.pop() else { break };
                    let shared = shared.clone();
                    set.spawn(async move {
                        run_one(&shared, job).await;
                        drop(permit);
                    });
                }
                // A non-empty batch means there may be more: fetch again at once.
            }
            Ok(_) => {
                failures = 0;
                drop(permits);
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                drop(permits);
                failures += 1;
                let pause = backoff(failures);
                warn!(worker = %config.id, error = %e, retry_in_ms = pause.as_millis() as u64, "claim failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

async fn register(shared: &Shared) {
    let now = chrono::Utc::now().timestamp_millis();
    let row = WorkerRow {
        id: shared.config.id.clone(),
        host: host_name(),
        pid: i64::from(std::process::id()),
        started_at: now,
        heartbeat_at: now,
        current_job: None,
        processed: 0,
        failed: 0,
        concurrency: shared.config.concurrency as i64,
        status: "running".into(),
    };
    let mut failures = 0;
    while let Err(e) = shared.store.register_worker(&row).await {
        failures += 1;
        warn!(worker = %row.id, error = %e, "could not register worker; retrying");
        tokio::time::sleep(backoff(failures)).await;
    }
}

/// Exponential backoff for reconnects: 100 ms doubling to 5 s.
fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.min(6)).min(5_000);
    Duration::from_millis(ms)
}

async fn run_one(shared: &Arc<Shared>, job: JobRow) {
    let id = job.id;
    shared.counters.current_job.store(id, Ordering::Relaxed);
    let span = info_span!("job", job_id = id, request_id = job.request_id, kind = %job.kind, attempt = job.attempts);
    let outcome = match shared.registry.get(&job.kind) {
        None => Err(JobError::Permanent(format!(
            "no handler registered for job kind `{}`",
            job.kind
        ))),
        Some(handler) => {
            let ctx = JobContext {
                store: shared.store.clone(),
                job: job.clone(),
                worker_id: shared.config.id.clone(),
            };
            // A panicking handler must not take the worker down: run it in its own task,
            // aborted with this one, so a job whose lease shutdown releases stops running.
            let mut task = AbortOnDrop(tokio::spawn(handler.run(ctx).instrument(span.clone())));
            match (&mut task.0).await {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(JobError::Transient("handler panicked".into())),
                Err(_) => Err(JobError::Transient("handler was cancelled".into())),
            }
        }
    };
    match outcome {
        Ok(()) => {
            // Out of the in-flight set (shutdown releases only jobs still running, never one
            // whose completion is waiting to be flushed) and into the unflushed set, whose
            // leases the heartbeat keeps extending until the completion is committed.
            shared.unflushed.lock().await.insert(id);
            shared.in_flight.lock().await.remove(&id);
            if shared.completions.send(id).await.is_err() {
                shared.unflushed.lock().await.remove(&id);
            }
        }
        Err(err) => {
            shared.counters.failed.fetch_add(1, Ordering::Relaxed);
            let fail = match (
                &err,
                shared
                    .config
                    .retry
                    .next(job.attempts.max(1) as u32, fastrand::f64()),
            ) {
                (JobError::Permanent(_), _) => FailOutcome::Dead,
                (_, _) if job.attempts >= job.max_attempts => FailOutcome::Dead,
                (_, RetryDecision::Dead) => FailOutcome::Dead,
                (_, RetryDecision::RetryAfter(d)) => FailOutcome::RetryAt(
                    chrono::Utc::now().timestamp_millis() + d.as_millis() as i64,
                ),
            };
            span.in_scope(|| match fail {
                FailOutcome::Dead => error!(error = %err, "job failed for good"),
                FailOutcome::RetryAt(at) => {
                    warn!(error = %err, retry_at = at, "job failed; will retry")
                }
            });
            let mut tries = 0;
            while let Err(e) = shared
                .store
                .fail_job(&shared.config.id, id, &err.to_string(), fail)
                .await
            {
                tries += 1;
                if tries > 5 {
                    warn!(job_id = id, error = %e, "could not record failure; the lease will expire and the job return");
                    break;
                }
                tokio::time::sleep(backoff(tries)).await;
            }
            shared.in_flight.lock().await.remove(&id);
        }
    }
}

/// Least time between two job-progress announcements to consoles.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(250);

/// Aborts the task when dropped (its owner was aborted or finished first).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Completions are flushed in batches: one statement for up to `completion_batch` jobs.
async fn flush_completions(
    store: Store,
    worker_id: String,
    batch_size: usize,
    counters: Arc<WorkerCounters>,
    unflushed: Arc<Mutex<HashSet<i64>>>,
    mut rx: mpsc::Receiver<i64>,
) {
    let mut buf = Vec::with_capacity(batch_size);
    // Consoles learn about job progress from at most four announcements a second; a skipped
    // one is sent when the stream of completions pauses, so the last state is never missed.
    let mut announcer = Announcer::default();
    loop {
        buf.clear();
        let received = match announcer.due_in() {
            None => rx.recv_many(&mut buf, batch_size).await,
            Some(wait) => {
                match tokio::time::timeout(wait, rx.recv_many(&mut buf, batch_size)).await {
                    Ok(n) => n,
                    Err(_) => {
                        announcer.announce(&store).await;
                        continue;
                    }
                }
            }
        };
        if received == 0 {
            if announcer.pending {
                announcer.announce(&store).await;
            }
            return;
        }
        let mut failures = 0;
        loop {
            match store.complete_jobs(&worker_id, &buf).await {
                Ok(done) => {
                    if (done as usize) < buf.len() {
                        debug!(worker = %worker_id, expected = buf.len(), done, "some completions lost their lease first");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    warn!(worker = %worker_id, error = %e, "could not record completions; retrying");
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
        {
            let mut waiting = unflushed.lock().await;
            for id in &buf {
                waiting.remove(id);
            }
        }
        counters
            .processed
            .fetch_add(buf.len() as i64, Ordering::Relaxed);
        announcer.pending = true;
        if announcer.due_in() == Some(Duration::ZERO) {
            announcer.announce(&store).await;
        }
    }
}

/// Throttles job-progress announcements to one per [`ANNOUNCE_EVERY`].
struct Announcer {
    last: std::time::Instant,
    pending: bool,
}

impl Default for Announcer {
    fn default() -> Self {
        Self {
            last: std::time::Instant::now() - ANNOUNCE_EVERY,
            pending: false,
        }
    }
}

impl Announcer {
    /// How long until a pending announcement may go out (`None` when none is pending).
    fn due_in(&self) -> Option<Duration> {
        self.pending
            .then(|| ANNOUNCE_EVERY.saturating_sub(self.last.elapsed()))
    }

    async fn announce(&mut self, store: &Store) {
        self.last = std::time::Instant::now();
        self.pending = false;
        if let Err(e) = store.announce_job_progress().await {
            debug!(error = %e, "could not announce job progress");
        }
    }
}

/// Extends leases of running jobs and reports liveness; notices a drain request.
async fn heartbeat(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = shared.config.lease / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let mut ids: Vec<i64> = shared.in_flight.lock().await.iter().copied().collect();
        ids.extend(shared.unflushed.lock().await.iter().copied());
        if !ids.is_empty()
            && let Err(e) = shared
                .store
                .extend_leases(&shared.config.id, &ids, shared.config.lease)
                .await
        {
            warn!(worker = %shared.config.id, error = %e, "lease heartbeat failed");
        }
        let current = shared.counters.current_job.load(Ordering::Relaxed);
        match shared
            .store
            .worker_heartbeat(
                &shared.config.id,
                (current > 0).then_some(current),
                shared.counters.processed.load(Ordering::Relaxed),
                shared.counters.failed.load(Ordering::Relaxed),
            )
            .await
        {
            Ok(status) if status == "draining" => {
                if !shared.draining.swap(true, Ordering::Relaxed) {
                    info!(worker = %shared.config.id, "drain requested: finishing running jobs");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(worker = %shared.config.id, error = %e, "worker heartbeat failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(30), Duration::from_millis(5_000));
    }

    #[test]
    fn worker_ids_differ() {
        assert_ne!(new_worker_id(), new_worker_id());
    }
}
