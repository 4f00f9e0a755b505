//! The durable job queue: enqueue (single, bulk, periodic), claim, lease, complete, fail,
//! release, rescue and prune. Workers and logs live in `workers.rs`, request transitions,
//! approval stages and steps in `requests.rs`.
//!
//! Claim and complete are one statement each (claim: `UPDATE … WHERE id IN (SELECT … FOR
//! UPDATE SKIP LOCKED) RETURNING` on PostgreSQL, the same `UPDATE … RETURNING` as a single
//! write-locked statement on the SQLite writer), so a batch costs one round trip.

use std::time::Duration;

use crate::store::api::{FailOutcome, JobRow, Millis, NewJob, StoreResult};
use crate::store::db::{Conn, Tx, Val, args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::{DbJob, jobs_into_api, now_ms};
use crate::store::watch::JOBS_CHANNEL;
use crate::store::{Backend, Pools, Store};

/// Queue of request-lifecycle jobs (`request.process`, `request.advance`).
pub const QUEUE_DEFAULT: &str = "default";
/// Queue of provisioning jobs (`request.provision`).
pub const QUEUE_PROVISION: &str = "provision";
/// Queue of notification jobs (`notify.rejected` …).
pub const QUEUE_NOTIFY: &str = "notify";

/// Rows per multi-row INSERT on SQLite (11 parameters each, well under the 32,766 limit).
const SQLITE_ENQUEUE_CHUNK: usize = 500;
/// Rows per UNNEST INSERT on PostgreSQL.
const PG_ENQUEUE_CHUNK: usize = 5000;

const INSERT_JOB: &str = "INSERT INTO jobs (queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, request_id, created_at) \
     VALUES ($1, $2, $3, $4, 'available', 0, $5, $6, $7, $8, $9) \
     ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retrying') DO NOTHING \
     RETURNING id";

fn validate_job(job: &NewJob) -> StoreResult<()> {
    if job.queue.trim().is_empty() {
        return Err(StoreError::Invalid {
            field: "queue".into(),
            message: format!("job {:?} has an empty queue name", job.kind),
        });
    }
    if job.kind.trim().is_empty() {
        return Err(StoreError::Invalid {
            field: "kind".into(),
            message: "job kind is empty".into(),
        });
    }
    if job.max_attempts < 1 {
        return Err(StoreError::Invalid {
            field: "max_attempts".into(),
            message: format!("job {:?}: max_attempts must be at least 1", job.kind),
        });
    }
    Ok(())
}

/// Insert one job inside `tx`; `None` when its unique key already has an unfinished job.
pub(crate) async fn enqueue_one(tx: &mut Tx, job: &NewJob) -> StoreResult<Option<i64>> {
    validate_job(job)?;
    let row: Option<(i64,)> = tx
        .opt(
            INSERT_JOB,
            args![
                &job.queue,
                &job.kind,
                job.payload.to_string(),
                job.priority,
                job.max_attempts,
                job.run_at,
                &job.unique_key,
                job.request_id,
                now_ms()
            ],
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Match ids returned by a multi-row insert (ascending = input order) back to the input rows.
fn map_inserted(
    jobs: &[NewJob],
    mut returned: Vec<(i64, Option<String>)>,
) -> StoreResult<Vec<Option<i64>>> {
    returned.sort_by_key(|(id, _)| *id);
    let inserted_keys: std::collections::HashSet<&str> =
        returned.iter().filter_map(|(_, k)| k.as_deref()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut ids = returned.iter().map(|(id, _)| *id);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let inserted = match job.unique_key.as_deref() {
            None => true,
            Some(k) => inserted_keys.contains(k) && seen.insert(k),
        };
        out.push(if inserted {
            Some(ids.next().ok_or_else(|| {
                StoreError::Corrupt("enqueue returned fewer ids than rows inserted".into())
            })?)
        } else {
            None
        });
    }
    Ok(out)
}

/// Multi-row INSERT for SQLite. Positional `?` placeholders on purpose: SQLite looks numbered
/// parameter names up by a linear scan, which made binding thousands of `$N` quadratic.
fn sqlite_bulk_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO jobs (queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, request_id, created_at) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?, ?, ?, ?, 'available', 0, ?, ?, ?, ?, ?)");
    }
    sql.push_str(
        " ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retrying') DO NOTHING RETURNING id, unique_key",
    );
    sql
}

const PG_BULK_INSERT: &str = "INSERT INTO jobs (queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, request_id, created_at) \
     SELECT q, k, p, pr, 'available', 0, ma, ra, uk, rid, $9 \
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::text[], $8::int8[]) \
          WITH ORDINALITY AS t(q, k, p, pr, ma, ra, uk, rid, ord) \
     ORDER BY ord \
     ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retrying') DO NOTHING \
     RETURNING id, unique_key";

const CLAIM_SET: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, started_at = $3";

const RETURN_JOB: &str = "RETURNING id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, lease_owner, lease_expires_at, last_error, request_id, created_at, started_at, finished_at";

/// Claim on PostgreSQL: per queue, the index `jobs_claim (queue, priority DESC, run_at, id)`
/// yields candidates already ordered (a LATERAL top-N each, no sort of the backlog); the best
/// `$4` of those are locked with SKIP LOCKED and leased in the same statement.
const CLAIM_PG: &str = "WITH picked AS ( \
       SELECT c.id FROM unnest($5::text[]) AS q(name) \
       CROSS JOIN LATERAL ( \
         SELECT j.id, j.priority, j.run_at FROM jobs j \
         WHERE j.state IN ('available', 'retrying') AND j.queue = q.name AND j.run_at <= $3 \
         ORDER BY j.priority DESC, j.run_at, j.id LIMIT $4 FOR UPDATE SKIP LOCKED) c \
       WHERE q.name NOT IN (SELECT name FROM queues WHERE paused <> 0) \
       ORDER BY c.priority DESC, c.run_at, c.id LIMIT $4) \
     UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, attempts = jobs.attempts + 1, started_at = $3 \
     FROM picked WHERE jobs.id = picked.id \
     RETURNING jobs.id, jobs.queue, jobs.kind, jobs.payload, jobs.priority, jobs.state, jobs.attempts, jobs.max_attempts, jobs.run_at, jobs.unique_key, jobs.lease_owner, jobs.lease_expires_at, jobs.last_error, jobs.request_id, jobs.created_at, jobs.started_at, jobs.finished_at";

/// Claim on SQLite for `queues` queues: one ordered top-N per queue (served by the
/// `jobs_claim` index without sorting the backlog), merged, the best `$4` leased. Runs as one
/// statement on the single writer connection, so it holds the write lock from its start.
fn claim_sqlite_sql(queues: usize) -> String {
    let mut sql = format!("{CLAIM_SET} WHERE id IN (SELECT id FROM (");
    for i in 0..queues {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        let p = 5 + i;
        sql.push_str(&format!(
            "SELECT id, priority, run_at FROM (SELECT id, priority, run_at FROM jobs \
             WHERE state IN ('available', 'retrying') AND queue = ${p} AND run_at <= $3 \
             AND ${p} NOT IN (SELECT name FROM queues WHERE paused <> 0) \
             ORDER BY priority DESC, run_at, id LIMIT $4)"
        ));
    }
    sql.push_str(&format!(
        ") ORDER BY priority DESC, run_at, id LIMIT $4) {RETURN_JOB}"
    ));
    sql
}

const COMPLETE_SQLITE: &str = "UPDATE jobs SET state = 'completed', finished_at = $3, lease_expires_at = NULL WHERE id IN (SELECT value FROM json_each($1)) AND lease_owner = $2 AND state = 'running'";
const COMPLETE_PG: &str = "UPDATE jobs SET state = 'completed', finished_at = $3, lease_expires_at = NULL WHERE id = ANY($1) AND lease_owner = $2 AND state = 'running'";

/// Complete jobs held by `worker_id` inside `tx`.
pub(crate) async fn complete_in_tx(tx: &mut Tx, worker_id: &str, ids: &[i64]) -> StoreResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = tx.pick(COMPLETE_SQLITE, COMPLETE_PG);
    tx.exec(sql, args![ids, worker_id, now_ms()]).await
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Store {
    /// Enqueue jobs in bulk (PostgreSQL: UNNEST in chunks of 5,000; SQLite: multi-row INSERT in
    /// chunks of 500), all in one transaction. Answers one entry per input: the new id, or
    /// `None` when its unique key already has an unfinished job (or an earlier row of this
    /// batch has the same key).
    pub async fn enqueue(&self, jobs: &[NewJob]) -> StoreResult<Vec<Option<i64>>> {
        self.check_writable()?;
        for job in jobs {
            validate_job(job)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let result = write_tx!(self, |tx| {
            let now = now_ms();
            let mut out = Vec::with_capacity(jobs.len());
            match &mut tx.conn {
                Conn::Sqlite(t) => {
                    for chunk in jobs.chunks(SQLITE_ENQUEUE_CHUNK) {
                        let sql = sqlite_bulk_sql(chunk.len());
                        let mut q =
                            sqlx::query_as::<_, (i64, Option<String>)>(sqlx::AssertSqlSafe(sql));
                        for j in chunk {
                            q = q
                                .bind(j.queue.clone())
                                .bind(j.kind.clone())
                                .bind(j.payload.to_string())
                                .bind(i64::from(j.priority))
                                .bind(i64::from(j.max_attempts))
                                .bind(j.run_at)
                                .bind(j.unique_key.clone())
                                .bind(j.request_id)
                                .bind(now);
                        }
                        let returned = q.fetch_all(&mut **t).await?;
                        out.extend(map_inserted(chunk, returned)?);
                    }
                }
                Conn::Postgres(t) => {
                    for chunk in jobs.chunks(PG_ENQUEUE_CHUNK) {
                        let returned = sqlx::query_as::<_, (i64, Option<String>)>(PG_BULK_INSERT)
                            .bind(chunk.iter().map(|j| j.queue.clone()).collect::<Vec<_>>())
                            .bind(chunk.iter().map(|j| j.kind.clone()).collect::<Vec<_>>())
                            .bind(
                                chunk
                                    .iter()
                                    .map(|j| j.payload.to_string())
                                    .collect::<Vec<_>>(),
                            )
                            .bind(
                                chunk
                                    .iter()
                                    .map(|j| i64::from(j.priority))
                                    .collect::<Vec<_>>(),
                            )
                            .bind(
                                chunk
                                    .iter()
                                    .map(|j| i64::from(j.max_attempts))
                                    .collect::<Vec<_>>(),
                            )
                            .bind(chunk.iter().map(|j| j.run_at).collect::<Vec<_>>())
                            .bind(
                                chunk
                                    .iter()
                                    .map(|j| j.unique_key.clone())
                                    .collect::<Vec<_>>(),
                            )
                            .bind(chunk.iter().map(|j| j.request_id).collect::<Vec<_>>())
                            .bind(now)
                            .fetch_all(&mut **t)
                            .await?;
                        out.extend(map_inserted(chunk, returned)?);
                    }
                }
            }
            tx.notify(JOBS_CHANNEL).await?;
            Ok(out)
        })?;
        self.signal_local(true);
        Ok(result)
    }

    /// Enqueue a periodic job at most once for its unique key (`periodic:KIND:PERIOD`): the
    /// key is recorded in `periodic_runs` in the same transaction, so however many hosts
    /// propose the same period, and whenever (even after the first run finished), it runs
    /// once. `None` when the period was already scheduled.
    pub async fn enqueue_periodic(&self, job: &NewJob) -> StoreResult<Option<i64>> {
        self.check_writable()?;
        validate_job(job)?;
        let key = job.unique_key.clone().ok_or_else(|| StoreError::Invalid {
            field: "unique_key".into(),
            message: "a periodic job needs a unique key".into(),
        })?;
        let id = write_tx!(self, |tx| {
            let fresh = tx
                .exec(
                    "INSERT INTO periodic_runs (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    args![key.clone(), now_ms()],
                )
                .await?;
            if fresh == 0 {
                Ok(None)
            } else {
                let id = enqueue_one(&mut tx, job).await?;
                if id.is_some() {
                    tx.notify(JOBS_CHANNEL).await?;
                }
                Ok(id)
            }
        })?;
        if id.is_some() {
            self.signal_local(true);
        }
        Ok(id)
    }

    /// Forget periodic keys recorded before `older_than` (their periods are long past).
    pub async fn prune_periodic(&self, older_than: Millis) -> StoreResult<u64> {
        self.check_writable()?;
        self.write_exec("DELETE FROM periodic_runs WHERE at < $1", args![older_than])
            .await
    }

    /// Lease up to `limit` due jobs from `queues` (paused queues skipped), highest priority
    /// first, then oldest `run_at`, then id. Each claimed job is `running`, leased to
    /// `worker_id` until now + `lease`, with `attempts` incremented. Returned in claim order.
    pub async fn claim(
        &self,
        worker_id: &str,
        queues: &[String],
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<JobRow>> {
        if limit == 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let rows: Vec<DbJob> = match self.backend() {
            Backend::Postgres => {
                self.write_all(
                    CLAIM_PG,
                    args![
                        worker_id,
                        now + lease_ms(lease),
                        now,
                        i64::from(limit),
                        queues
                    ],
                )
                .await?
            }
            Backend::Sqlite => {
                let mut vals = args![worker_id, now + lease_ms(lease), now, i64::from(limit)];
                vals.extend(queues.iter().map(Val::from));
                self.write_all(sqlx::AssertSqlSafe(claim_sqlite_sql(queues.len())), vals)
                    .await?
            }
        };
        let mut jobs = jobs_into_api(rows)?;
        jobs.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok(jobs)
    }

    /// Extend the leases of jobs this worker still holds; answers how many were extended.
    pub async fn extend_leases(
        &self,
        worker_id: &str,
        ids: &[i64],
        lease: Duration,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write_exec(
            self.pick(
                "UPDATE jobs SET lease_expires_at = $3 WHERE id IN (SELECT value FROM json_each($1)) AND lease_owner = $2 AND state = 'running'",
                "UPDATE jobs SET lease_expires_at = $3 WHERE id = ANY($1) AND lease_owner = $2 AND state = 'running'",
            ),
            args![ids, worker_id, now_ms() + lease_ms(lease)],
        )
        .await
    }

    /// Tell consoles that job progress changed. Claims and completions do not notify on their
    /// own (a notification per commit would slow the queue); a worker calls this after
    /// flushing completions, at most a few times a second. SQLite needs nothing: consoles
    /// see every commit through `data_version`.
    pub async fn announce_job_progress(&self) -> StoreResult<()> {
        if self.backend() == Backend::Postgres {
            self.write_exec(
                "SELECT pg_notify($1, '')",
                args![crate::store::watch::CHANGES_CHANNEL],
            )
            .await?;
        }
        Ok(())
    }

    /// Mark jobs completed — only those still `running` under this worker's lease, so a job
    /// whose lease expired and was claimed again is never completed twice. Answers how many.
    pub async fn complete_jobs(&self, worker_id: &str, ids: &[i64]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write_exec(
            self.pick(COMPLETE_SQLITE, COMPLETE_PG),
            args![ids, worker_id, now_ms()],
        )
        .await
    }

    /// Record a failed attempt of a job this worker holds: `retrying` at the given time, or
    /// `dead` (also when the job has used all its attempts). Answers false when the worker no
    /// longer holds the job.
    pub async fn fail_job(
        &self,
        worker_id: &str,
        id: i64,
        error: &str,
        outcome: FailOutcome,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let n = match outcome {
            FailOutcome::RetryAt(at) => {
                self.write_exec(
                    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'retrying' END, \
                     finished_at = CASE WHEN attempts >= max_attempts THEN $4 ELSE NULL END, \
                     run_at = $5, last_error = $3, failed_at = $4, lease_expires_at = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    args![id, worker_id, error, now, at],
                )
                .await?
            }
            FailOutcome::Dead => {
                self.write_exec(
                    "UPDATE jobs SET state = 'dead', finished_at = $4, last_error = $3, failed_at = $4, lease_expires_at = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    args![id, worker_id, error, now],
                )
                .await?
            }
        };
        Ok(n > 0)
    }

    /// Give jobs back (graceful shutdown): `available` again without counting the attempt.
    pub async fn release_jobs(&self, worker_id: &str, ids: &[i64]) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = write_tx!(self, |tx| {
            let sql = tx.pick(
                "UPDATE jobs SET state = 'available', attempts = MAX(attempts - 1, 0), lease_owner = NULL, lease_expires_at = NULL, started_at = NULL \
                 WHERE id IN (SELECT value FROM json_each($1)) AND lease_owner = $2 AND state = 'running'",
                "UPDATE jobs SET state = 'available', attempts = GREATEST(attempts - 1, 0), lease_owner = NULL, lease_expires_at = NULL, started_at = NULL \
                 WHERE id = ANY($1) AND lease_owner = $2 AND state = 'running'",
            );
            let n = tx.exec(sql, args![ids, worker_id]).await?;
            tx.notify(JOBS_CHANNEL).await?;
            Ok(n)
        })?;
        self.signal_local(true);
        Ok(n)
    }

    /// Return running jobs whose lease expired (their worker died) to the queue, or mark them
    /// dead when they have no attempts left. Answers how many were rescued.
    pub async fn rescue_expired(&self) -> StoreResult<u64> {
        let now = now_ms();
        let n = write_tx!(self, |tx| {
            let n = tx
                .exec(
                    "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'available' END, \
                     finished_at = CASE WHEN attempts >= max_attempts THEN $1 ELSE NULL END, \
                     last_error = 'lease held by ' || COALESCE(lease_owner, '?') || ' expired', \
                     failed_at = $1, lease_owner = NULL, lease_expires_at = NULL \
                     WHERE state = 'running' AND lease_expires_at < $1",
                    args![now],
                )
                .await?;
            if n > 0 {
                tx.notify(JOBS_CHANNEL).await?;
            }
            Ok(n)
        })?;
        if n > 0 {
            tracing::info!(
                rescued = n,
                "returned jobs with expired leases to their queues"
            );
            self.signal_local(true);
        }
        Ok(n)
    }

    /// Delete finished jobs (completed, cancelled or dead) that finished before `older_than`
    /// (Unix ms); answers how many. Run from maintenance so the table stays small.
    pub async fn prune_jobs(&self, older_than: Millis) -> StoreResult<u64> {
        self.write_exec(
            "DELETE FROM jobs WHERE state IN ('completed', 'cancelled', 'dead') AND finished_at < $1",
            args![older_than],
        )
        .await
    }

    /// Reclaim space left by claimed and completed jobs so claims do not step over dead
    /// index entries: `VACUUM (ANALYZE) jobs` on PostgreSQL (autovacuum does the same, later),
    /// `PRAGMA optimize` on SQLite. Run from maintenance, e.g. every few minutes.
    pub async fn vacuum_jobs(&self) -> StoreResult<()> {
        self.check_writable()?;
        match &self.inner.pools {
            Pools::Sqlite { writer, .. } => {
                sqlx::query("PRAGMA optimize").execute(writer).await?;
            }
            Pools::Postgres { pool } => {
                sqlx::query("VACUUM (ANALYZE) jobs").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// How the jobs of one queue ended: (completed, sum of their attempts, not yet finished).
    /// A benchmark's check that every job ran to completion exactly once.
    pub async fn queue_outcome(&self, queue: &str) -> StoreResult<(i64, i64, i64)> {
        self.read_one(
            "SELECT COUNT(*) FILTER (WHERE state = 'completed'), \
                    CAST(COALESCE(SUM(attempts) FILTER (WHERE state = 'completed'), 0) AS BIGINT), \
                    COUNT(*) FILTER (WHERE state IN ('available', 'running', 'retrying')) \
             FROM jobs WHERE queue = $1",
            args![queue],
        )
        .await
    }

    /// One job by id.
    pub async fn job(&self, id: i64) -> StoreResult<JobRow> {
        let row: Option<DbJob> = self
            .read_opt(
                "SELECT id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, lease_owner, lease_expires_at, last_error, request_id, created_at, started_at, finished_at FROM jobs WHERE id = $1",
                args![id],
            )
            .await?;
        row.ok_or(StoreError::NotFound {
            entity: "job",
            id: id.to_string(),
        })?
        .into_api()
    }

    /// Hint for pool users: the SQLite writer is a single connection, so a [`StoreTx`] held
    /// open blocks every other write of this process until it ends.
    pub fn single_writer(&self) -> bool {
        matches!(self.inner.pools, Pools::Sqlite { .. })
    }

    /// Milliseconds since the epoch as the store sees it (the clock used for `run_at`).
    pub fn now(&self) -> Millis {
        now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(key: Option<&str>) -> NewJob {
        NewJob {
            queue: "q".into(),
            kind: "k".into(),
            payload: json!({}),
            priority: 0,
            run_at: 0,
            max_attempts: 3,
            unique_key: key.map(str::to_string),
            request_id: None,
        }
    }

    #[test]
    fn inserted_ids_map_back_in_input_order() {
        let jobs = vec![
            job(None),
            job(Some("a")),
            job(Some("a")),
            job(Some("b")),
            job(None),
        ];
        // "b" already had an unfinished job; ids come back unordered.
        let returned = vec![(12, None), (10, None), (11, Some("a".to_string()))];
        assert_eq!(
            map_inserted(&jobs, returned).unwrap(),
            vec![Some(10), Some(11), None, None, Some(12)]
        );
    }

    #[test]
    fn sqlite_bulk_sql_has_one_tuple_per_row() {
        let sql = sqlite_bulk_sql(3);
        assert_eq!(sql.matches("(?, ?, ?, ?, 'available'").count(), 3);
        assert_eq!(sql.matches('?').count(), 27);
    }
}
