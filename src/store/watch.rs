//! Change detection across processes: LISTEN/NOTIFY on PostgreSQL, `PRAGMA data_version` on
//! SQLite. One background task per store feeds two watch channels (changes, job wake-ups)
//! and reconnects with backoff when its connection drops.

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqliteConnectOptions;

use crate::store::{Pools, Store};

/// PostgreSQL channel notified when jobs become claimable.
pub(crate) const JOBS_CHANNEL: &str = "gatehouse_jobs";
/// PostgreSQL channel notified by every command and state change.
pub(crate) const CHANGES_CHANNEL: &str = "gatehouse_changes";

/// How often SQLite's `data_version` is polled when no file event wakes the watcher first
/// (on Linux an inotify watch on the store's directory wakes it at once; see `wal_watch.rs`).
const SQLITE_POLL: Duration = Duration::from_millis(50);
/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Sender = std::sync::Arc<tokio::sync::watch::Sender<u64>>;

fn bump(tx: &Sender) {
    tx.send_modify(|v| *v = v.wrapping_add(1));
}

impl Store {
    /// Start the watcher task once (needs a Tokio runtime; without one, only this process's
    /// own commits are signalled).
    pub(crate) fn ensure_watcher(&self) {
        let Ok(mut guard) = self.inner.watcher.lock() else {
            return;
        };
        if guard.is_some() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime: change watcher not started");
            return;
        };
        let changes = self.inner.changes.clone();
        let jobs = self.inner.jobs.clone();
        let task = match &self.inner.pools {
            Pools::Sqlite { options, .. } => {
                handle.spawn(watch_sqlite((**options).clone(), changes, jobs))
            }
            Pools::Postgres { pool } => handle.spawn(watch_postgres(pool.clone(), changes, jobs)),
        };
        *guard = Some(task.abort_handle());
    }

    /// A receiver whose value changes whenever jobs may have become claimable (an enqueue,
    /// retry or release committed anywhere). Workers wait on it between empty claims.
    pub fn job_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ensure_watcher();
        self.inner.jobs.subscribe()
    }

    pub(crate) fn change_receiver(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ensure_watcher();
        self.inner.changes.subscribe()
    }
}

async fn watch_sqlite(options: SqliteConnectOptions, changes: Sender, jobs: Sender) {
    let mut failures = 0u32;
    let mut files = crate::store::wal_watch::WalWatch::new(options.get_filename());
    if files.is_none() {
        tracing::debug!("no inotify watch on the store's directory: polling data_version only");
    }
    loop {
        match options.connect().await {
            Ok(mut conn) => {
                failures = 0;
                let mut last: Option<i64> = None;
                loop {
                    let version: Result<(i64,), sqlx::Error> =
                        sqlx::query_as("PRAGMA data_version")
                            .fetch_one(&mut conn)
                            .await;
                    match version {
                        Ok((v,)) => {
                            if last.is_some_and(|l| l != v) {
                                bump(&changes);
                                bump(&jobs);
                            }
                            last = Some(v);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "data_version watcher lost its connection");
                            break;
                        }
                    }
                    match &files {
                        Some(watch) => {
                            tokio::select! {
                                alive = watch.changed() => if !alive {
                                    tracing::warn!("inotify watch on the store's directory failed; polling data_version only");
                                    files = None;
                                },
                                () = tokio::time::sleep(SQLITE_POLL) => {}
                            }
                        }
                        None => tokio::time::sleep(SQLITE_POLL).await,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "data_version watcher cannot connect"),
        }
        failures += 1;
        tokio::time::sleep(reconnect_delay(failures)).await;
    }
}

async fn watch_postgres(pool: PgPool, changes: Sender, jobs: Sender) {
    let mut failures = 0u32;
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen_all([JOBS_CHANNEL, CHANGES_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match listener {
            Ok(mut listener) => {
                if failures > 0 {
                    // Notifications sent while we were away are lost: make everyone look.
                    bump(&changes);
                    bump(&jobs);
                }
                failures = 0;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if n.channel() == JOBS_CHANNEL {
                                bump(&jobs);
                            }
                            bump(&changes);
                        }
                        Ok(None) => {
                            tracing::warn!("LISTEN connection lost; reconnecting");
                            bump(&changes);
                            bump(&jobs);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot LISTEN for changes"),
        }
        failures += 1;
        tokio::time::sleep(reconnect_delay(failures)).await;
    }
}

fn reconnect_delay(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << failures.min(6));
    Duration::from_millis(ms).min(MAX_BACKOFF)
}
