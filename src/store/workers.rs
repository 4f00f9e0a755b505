//! Workers, the execution log and probe runs as the store keeps them: registration,
//! heartbeats and drain status, log lines in batches, pruning.

use crate::store::Store;
use crate::store::api::{Millis, NewLog, StoreResult, WorkerRow};
use crate::store::db::{Conn, args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::{level_no, now_ms};
use crate::store::watch::CHANGES_CHANNEL;

/// Log lines per multi-row INSERT on SQLite.
const SQLITE_LOG_CHUNK: usize = 500;

impl Store {
    /// Forget workers whose last heartbeat is older than `older_than` (stopped, or gone without
    /// saying so); answers how many.
    pub async fn prune_workers(&self, older_than: Millis) -> StoreResult<u64> {
        self.write_exec(
            "DELETE FROM workers WHERE heartbeat_at < $1",
            args![older_than],
        )
        .await
    }

    /// Register (or re-register) a worker process.
    pub async fn register_worker(&self, worker: &WorkerRow) -> StoreResult<()> {
        self.write_exec(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, current_job, processed, failed, concurrency, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, \
               heartbeat_at = excluded.heartbeat_at, current_job = excluded.current_job, processed = excluded.processed, \
               failed = excluded.failed, concurrency = excluded.concurrency, status = excluded.status",
            args![
                &worker.id,
                &worker.host,
                worker.pid,
                worker.started_at,
                worker.heartbeat_at,
                worker.current_job,
                worker.processed,
                worker.failed,
                worker.concurrency,
                &worker.status
            ],
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }

    /// Record a heartbeat with the worker's counters; answers its status (`running`, or
    /// `draining` when an operator asked it to stop claiming).
    pub async fn worker_heartbeat(
        &self,
        id: &str,
        current_job: Option<i64>,
        processed: i64,
        failed: i64,
    ) -> StoreResult<String> {
        let rows: Vec<(String,)> = self
            .write_all(
                "UPDATE workers SET heartbeat_at = $2, current_job = $3, processed = $4, failed = $5 WHERE id = $1 RETURNING status",
                args![id, now_ms(), current_job, processed, failed],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|(s,)| s)
            .ok_or_else(|| StoreError::NotFound {
                entity: "worker",
                id: id.to_string(),
            })
    }

    /// Mark a worker stopped (clean shutdown).
    pub async fn worker_stopped(&self, id: &str) -> StoreResult<()> {
        self.write_exec(
            "UPDATE workers SET status = 'stopped', current_job = NULL, heartbeat_at = $2 WHERE id = $1",
            args![id, now_ms()],
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }

    /// Persist execution-log lines in one transaction (one multi-row statement per 500 lines
    /// on SQLite, one UNNEST statement on PostgreSQL), in order.
    pub async fn append_logs(&self, logs: &[NewLog]) -> StoreResult<()> {
        if logs.is_empty() {
            return Ok(());
        }
        write_tx!(self, |tx| {
            match &mut tx.conn {
                Conn::Sqlite(t) => {
                    for chunk in logs.chunks(SQLITE_LOG_CHUNK) {
                        let mut sql = String::from(
                            "INSERT INTO logs (at, level, level_no, target, message, request_id, job_id, worker) VALUES ",
                        );
                        for i in 0..chunk.len() {
                            if i > 0 {
                                sql.push(',');
                            }
                            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?)");
                        }
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for l in chunk {
                            q = q
                                .bind(l.at)
                                .bind(l.level.to_ascii_uppercase())
                                .bind(level_no(&l.level))
                                .bind(l.target.clone())
                                .bind(l.message.clone())
                                .bind(l.request_id)
                                .bind(l.job_id)
                                .bind(l.worker.clone());
                        }
                        q.execute(&mut **t).await?;
                    }
                }
                Conn::Postgres(t) => {
                    sqlx::query(
                        "INSERT INTO logs (at, level, level_no, target, message, request_id, job_id, worker) \
                         SELECT a, l, n, t, m, r, j, w \
                         FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::text[]) \
                              WITH ORDINALITY AS u(a, l, n, t, m, r, j, w, ord) \
                         ORDER BY ord",
                    )
                    .bind(logs.iter().map(|l| l.at).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.level.to_ascii_uppercase()).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| level_no(&l.level)).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.target.clone()).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.message.clone()).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.request_id).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.job_id).collect::<Vec<_>>())
                    .bind(logs.iter().map(|l| l.worker.clone()).collect::<Vec<_>>())
                    .execute(&mut **t)
                    .await?;
                }
            }
            tx.notify(CHANGES_CHANNEL).await?;
            Ok(())
        })?;
        self.signal_local(false);
        Ok(())
    }

    /// Delete log lines older than `older_than` (Unix ms); answers how many.
    pub async fn prune_logs(&self, older_than: Millis) -> StoreResult<u64> {
        self.write_exec("DELETE FROM logs WHERE at < $1", args![older_than])
            .await
    }

    /// Record that a handler ran for `job_id` (multi-process exactly-once tests count these).
    pub async fn record_probe(&self, job_id: i64, worker: &str) -> StoreResult<()> {
        self.write_exec(
            "INSERT INTO probe_runs (job_id, worker, at) VALUES ($1, $2, $3)",
            args![job_id, worker, now_ms()],
        )
        .await?;
        Ok(())
    }

    /// (probe rows in all, distinct job ids among them).
    pub async fn probe_counts(&self) -> StoreResult<(i64, i64)> {
        self.read_one(
            "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM probe_runs",
            vec![],
        )
        .await
    }

    /// How many distinct workers recorded probe runs (multi-process tests).
    pub async fn probe_workers(&self) -> StoreResult<i64> {
        let (n,): (i64,) = self
            .read_one("SELECT COUNT(DISTINCT worker) FROM probe_runs", vec![])
            .await?;
        Ok(n)
    }
}
