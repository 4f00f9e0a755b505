//! Backend-neutral statement execution: bound values, write transactions and the retry loop.
//!
//! Store logic is written once against [`Tx`] (a write transaction) and [`Store::read_all`] and
//! friends (the read pool); these dispatch the same SQL text and the same bound values to
//! SQLite or PostgreSQL. Values are bound, never formatted into SQL.

use std::time::Duration;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow, Postgres, SqlSafeStr, SqlStr, Sqlite, Transaction};

use crate::domain::request::RequestEvent;
use crate::store::api::{Actor, ApprovalRow, Millis, NewJob, RequestRow, StoreResult};
use crate::store::error::StoreError;
use crate::store::{Backend, Pools, Store};

/// How often a write transaction is retried after `SQLITE_BUSY` or a PostgreSQL
/// serialization failure / deadlock before the error reaches the caller.
pub(crate) const WRITE_RETRIES: u32 = 8;

/// A value bound to a statement parameter.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    /// A list of integers: an `int8[]` on PostgreSQL (`= ANY($n)`), a JSON array text on
    /// SQLite (`IN (SELECT value FROM json_each($n))`).
    IntList(Vec<i64>),
    /// A list of strings, bound like [`Val::IntList`].
    TextList(Vec<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(i64::from(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OptInt(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OptText(v)
    }
}
impl From<Vec<i64>> for Val {
    fn from(v: Vec<i64>) -> Self {
        Val::IntList(v)
    }
}
impl From<&[i64]> for Val {
    fn from(v: &[i64]) -> Self {
        Val::IntList(v.to_vec())
    }
}
impl From<&[String]> for Val {
    fn from(v: &[String]) -> Self {
        Val::TextList(v.to_vec())
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::OptText(v.map(str::to_string))
    }
}
impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Self {
        Val::OptText(v.clone())
    }
}

/// Build a `Vec<Val>` from values of mixed types.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::store::db::Val::from($v)),*] };
}
pub(crate) use args;

fn sqlite_args(vals: Vec<Val>) -> Result<SqliteArguments, sqlx::Error> {
    let mut a = SqliteArguments::default();
    for v in vals {
        match v {
            Val::Int(i) => a.add(i),
            Val::OptInt(i) => a.add(i),
            Val::Text(t) => a.add(t),
            Val::OptText(t) => a.add(t),
            Val::IntList(l) => a.add(serde_json::Value::from(l).to_string()),
            Val::TextList(l) => a.add(serde_json::Value::from(l).to_string()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(a)
}

fn pg_args(vals: Vec<Val>) -> Result<PgArguments, sqlx::Error> {
    let mut a = PgArguments::default();
    for v in vals {
        match v {
            Val::Int(i) => a.add(i),
            Val::OptInt(i) => a.add(i),
            Val::Text(t) => a.add(t),
            Val::OptText(t) => a.add(t),
            Val::IntList(l) => a.add(l),
            Val::TextList(l) => a.add(l),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(a)
}

/// A row type decodable from both backends (derive `FromRow`, or a tuple).
pub(crate) trait DbRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}
impl<T> DbRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

/// The connection of a write transaction, per backend.
pub(crate) enum Conn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A write transaction on either backend, with what it defers to its commit: the audit rows
/// it appends (chained and written in one statement when it commits, so the audit chain is
/// locked only for the commit) and the wake-up channels it has already notified.
pub(crate) struct Tx {
    pub(crate) conn: Conn,
    pub(crate) audit: Vec<crate::store::audit::PendingAudit>,
    notified: Vec<&'static str>,
}

impl Tx {
    fn new(conn: Conn) -> Self {
        Self {
            conn,
            audit: Vec::new(),
            notified: Vec::new(),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Pick the SQL text for this backend.
    pub(crate) fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.conn {
            Conn::Sqlite(_) => sqlite,
            Conn::Postgres(_) => postgres,
        }
    }

    pub(crate) async fn exec(&mut self, sql: &'static str, vals: Vec<Val>) -> StoreResult<u64> {
        Ok(match &mut self.conn {
            Conn::Sqlite(t) => sqlx::query_with(sql, sqlite_args(vals)?)
                .execute(&mut **t)
                .await?
                .rows_affected(),
            Conn::Postgres(t) => sqlx::query_with(sql, pg_args(vals)?)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn all<T: DbRow>(
        &mut self,
        sql: &'static str,
        vals: Vec<Val>,
    ) -> StoreResult<Vec<T>> {
        Ok(match &mut self.conn {
            Conn::Sqlite(t) => {
                sqlx::query_as_with::<_, T, _>(sql, sqlite_args(vals)?)
                    .fetch_all(&mut **t)
                    .await?
            }
            Conn::Postgres(t) => {
                sqlx::query_as_with::<_, T, _>(sql, pg_args(vals)?)
                    .fetch_all(&mut **t)
                    .await?
            }
        })
    }

    /// At most one row (the first) of a statement in this transaction.
    pub(crate) async fn opt<T: DbRow>(
        &mut self,
        sql: &'static str,
        vals: Vec<Val>,
    ) -> StoreResult<Option<T>> {
        Ok(self.all(sql, vals).await?.into_iter().next())
    }

    /// Exactly one row of a statement in this transaction.
    pub(crate) async fn one<T: DbRow>(
        &mut self,
        sql: &'static str,
        vals: Vec<Val>,
    ) -> StoreResult<T> {
        self.opt(sql, vals)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// On PostgreSQL, queue a NOTIFY that is delivered when this transaction commits (once
    /// per channel and transaction: listeners are woken, not counted).
    pub(crate) async fn notify(&mut self, channel: &'static str) -> StoreResult<()> {
        if self.notified.contains(&channel) {
            return Ok(());
        }
        if let Conn::Postgres(t) = &mut self.conn {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel)
                .execute(&mut **t)
                .await?;
        }
        self.notified.push(channel);
        Ok(())
    }

    /// Write the audit rows appended so far (chained after the newest row), then commit.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        crate::store::audit::flush(&mut self).await?;
        match self.conn {
            Conn::Sqlite(t) => t.commit().await?,
            Conn::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> StoreResult<()> {
        match self.conn {
            Conn::Sqlite(t) => t.rollback().await?,
            Conn::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// True for errors after which the whole write transaction may safely run again: nothing of it
/// was committed (SQLite busy/locked; PostgreSQL serialization failure or deadlock).
pub(crate) fn is_retryable(e: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    let postgres = db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some();
    retryable_code(postgres, &code)
}

/// Whether an error code means "try the transaction again". PostgreSQL answers SQLSTATEs
/// (five characters, often all digits: `40001` must not be read as a SQLite code); SQLite
/// answers numeric (extended) result codes whose low byte is the primary code.
fn retryable_code(postgres: bool, code: &str) -> bool {
    if postgres {
        // serialization_failure, deadlock_detected
        return matches!(code, "40001" | "40P01");
    }
    // 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED (and their extended codes).
    code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

/// True when a statement violated a unique constraint.
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => db.is_unique_violation(),
        _ => false,
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    Duration::from_millis(base + fastrand::u64(0..=base))
}

/// Run `statement` again, with [`backoff`], while the database answers busy or a
/// serialization failure (at most [`WRITE_RETRIES`] times); any other outcome is returned.
async fn retry_busy<T, F, Fut>(mut statement: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0;
    loop {
        match statement().await {
            Err(e) if is_retryable(&e) && attempt < WRITE_RETRIES => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Run `body` in a write transaction (`BEGIN IMMEDIATE` on SQLite), commit it, and retry the
/// whole transaction on busy/serialization errors. `body` is a block that may use `?`.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:block) => {{
        let store: &$crate::store::Store = $store;
        let mut attempt: u32 = 0;
        loop {
            let mut $tx = match store.begin_write().await {
                Ok(t) => t,
                Err(e)
                    if $crate::store::db::is_retryable(&e)
                        && attempt < $crate::store::db::WRITE_RETRIES =>
                {
                    tokio::time::sleep($crate::store::db::backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => break Err(e),
            };
            let result: $crate::store::api::StoreResult<_> = async { $body }.await;
            match result {
                Ok(value) => match $tx.commit().await {
                    Ok(()) => break Ok(value),
                    Err(e)
                        if $crate::store::db::is_retryable(&e)
                            && attempt < $crate::store::db::WRITE_RETRIES => {}
                    Err(e) => break Err(e),
                },
                Err(e) => {
                    // Rolling back can only fail when the connection is gone, which ends the
                    // transaction anyway; the body's error is the one worth reporting.
                    let _ = $tx.rollback().await;
                    if !($crate::store::db::is_retryable(&e)
                        && attempt < $crate::store::db::WRITE_RETRIES)
                    {
                        break Err(e);
                    }
                }
            }
            tracing::debug!(attempt, "write transaction busy; retrying");
            tokio::time::sleep($crate::store::db::backoff(attempt)).await;
            attempt += 1;
        }
    }};
}
pub(crate) use write_tx;

impl Store {
    /// Begin a write transaction: `BEGIN IMMEDIATE` on the SQLite writer, a plain transaction
    /// on PostgreSQL.
    pub(crate) async fn begin_write(&self) -> StoreResult<Tx> {
        self.check_writable()?;
        Ok(match &self.inner.pools {
            Pools::Sqlite { writer, .. } => {
                Tx::new(Conn::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?))
            }
            Pools::Postgres { pool } => Tx::new(Conn::Postgres(pool.begin().await?)),
        })
    }

    /// Pick the SQL text for this store's backend.
    pub(crate) fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// A single autocommit write statement on the writer (SQLite) or the pool (PostgreSQL).
    /// A single SQLite write statement takes its write lock when it starts, so it cannot hit
    /// a lock upgrade; busy errors are retried.
    pub(crate) async fn write_exec(
        &self,
        sql: impl SqlSafeStr,
        vals: Vec<Val>,
    ) -> StoreResult<u64> {
        self.check_writable()?;
        let sql = sql.into_sql_str();
        let (sql, vals) = (&sql, &vals);
        retry_busy(|| async move {
            match &self.inner.pools {
                Pools::Sqlite { writer, .. } => {
                    sqlx::query_with(sql.clone(), sqlite_args(vals.clone())?)
                        .execute(writer)
                        .await
                        .map(|r| r.rows_affected())
                }
                Pools::Postgres { pool } => sqlx::query_with(sql.clone(), pg_args(vals.clone())?)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()),
            }
            .map_err(StoreError::from)
        })
        .await
    }

    /// A single autocommit write statement returning rows (`… RETURNING`).
    pub(crate) async fn write_all<T: DbRow>(
        &self,
        sql: impl SqlSafeStr,
        vals: Vec<Val>,
    ) -> StoreResult<Vec<T>> {
        self.check_writable()?;
        self.fetch_rows(true, sql.into_sql_str(), vals).await
    }

    /// Rows from the read pool. (A WAL reader is only ever busy during recovery or a
    /// checkpoint restart; that is retried like a busy writer.)
    pub(crate) async fn read_all<T: DbRow>(
        &self,
        sql: impl SqlSafeStr,
        vals: Vec<Val>,
    ) -> StoreResult<Vec<T>> {
        self.fetch_rows(false, sql.into_sql_str(), vals).await
    }

    /// Rows from the SQLite writer (`on_writer`) or reader pool, or the PostgreSQL pool.
    async fn fetch_rows<T: DbRow>(
        &self,
        on_writer: bool,
        sql: SqlStr,
        vals: Vec<Val>,
    ) -> StoreResult<Vec<T>> {
        let (sql, vals) = (&sql, &vals);
        retry_busy(|| async move {
            match &self.inner.pools {
                Pools::Sqlite { writer, reader, .. } => {
                    let pool = if on_writer { writer } else { reader };
                    sqlx::query_as_with::<_, T, _>(sql.clone(), sqlite_args(vals.clone())?)
                        .fetch_all(pool)
                        .await
                }
                Pools::Postgres { pool } => {
                    sqlx::query_as_with::<_, T, _>(sql.clone(), pg_args(vals.clone())?)
                        .fetch_all(pool)
                        .await
                }
            }
            .map_err(StoreError::from)
        })
        .await
    }

    /// At most one row from the read pool.
    pub(crate) async fn read_opt<T: DbRow>(
        &self,
        sql: &'static str,
        vals: Vec<Val>,
    ) -> StoreResult<Option<T>> {
        Ok(self.read_all(sql, vals).await?.into_iter().next())
    }

    /// Exactly one row from the read pool.
    pub(crate) async fn read_one<T: DbRow>(
        &self,
        sql: &'static str,
        vals: Vec<Val>,
    ) -> StoreResult<T> {
        self.read_opt(sql, vals)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Begin a transaction the caller drives: enqueue jobs in it with [`StoreTx::enqueue`]
    /// and make them visible with [`StoreTx::commit`]; dropping it rolls back.
    pub async fn begin(&self) -> StoreResult<StoreTx> {
        Ok(StoreTx {
            tx: self.begin_write().await?,
            store: self.clone(),
            enqueued: false,
        })
    }
}

/// A write transaction owned by the caller (e.g. the engine recording a step, moving the
/// request on and enqueueing the next job atomically). Dropping it without
/// [`StoreTx::commit`] rolls everything back. On SQLite it holds the only writer connection:
/// do not call other writing `Store` methods while it is open (they would wait for it).
pub struct StoreTx {
    pub(crate) tx: Tx,
    pub(crate) store: Store,
    pub(crate) enqueued: bool,
}

impl StoreTx {
    /// Enqueue one job inside this transaction. `None` when its unique key already has an
    /// unfinished job.
    pub async fn enqueue(&mut self, job: &NewJob) -> StoreResult<Option<i64>> {
        let id = crate::store::queue::enqueue_one(&mut self.tx, job).await?;
        if id.is_some() {
            self.enqueued = true;
        }
        Ok(id)
    }

    /// Apply a lifecycle event to a request inside this transaction (version check, audit row),
    /// e.g. together with the job that carries the request on.
    pub async fn transition_request(
        &mut self,
        actor: &Actor,
        id: i64,
        event: RequestEvent,
        error: Option<String>,
    ) -> StoreResult<RequestRow> {
        crate::store::requests::transition_in_tx(
            &mut self.tx,
            actor,
            id,
            event,
            error,
            "request.transition",
        )
        .await
    }

    /// Open an approval stage inside this transaction (idempotent per request and stage).
    #[allow(clippy::too_many_arguments)]
    pub async fn open_approval(
        &mut self,
        actor: &Actor,
        request_id: i64,
        stage: u32,
        stage_name: &str,
        policy: &str,
        approvers: &[String],
        escalate_at: Option<Millis>,
    ) -> StoreResult<ApprovalRow> {
        crate::store::requests::open_approval_in_tx(
            &mut self.tx,
            actor,
            request_id,
            stage,
            stage_name,
            policy,
            approvers,
            escalate_at,
        )
        .await
    }

    /// Record a timeline step inside this transaction.
    pub async fn record_step(
        &mut self,
        request_id: i64,
        job_id: Option<i64>,
        name: &str,
        input: Option<&serde_json::Value>,
        output: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> StoreResult<i64> {
        crate::store::requests::record_step_in_tx(
            &mut self.tx,
            request_id,
            job_id,
            name,
            input,
            output,
            error,
        )
        .await
    }

    /// Complete jobs held by `worker_id` inside this transaction (so a handler's effects and
    /// its completion commit together). Answers how many were completed.
    pub async fn complete_jobs(&mut self, worker_id: &str, ids: &[i64]) -> StoreResult<u64> {
        crate::store::queue::complete_in_tx(&mut self.tx, worker_id, ids).await
    }

    /// Commit; jobs enqueued here become claimable and workers are woken.
    pub async fn commit(mut self) -> StoreResult<()> {
        if self.enqueued {
            self.tx.notify(crate::store::watch::JOBS_CHANNEL).await?;
        }
        self.tx.notify(crate::store::watch::CHANGES_CHANNEL).await?;
        self.tx.commit().await?;
        self.store.signal_local(self.enqueued);
        Ok(())
    }

    /// Roll back explicitly (dropping does the same).
    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await
    }

    /// Which backend this transaction runs on.
    pub fn backend(&self) -> Backend {
        self.tx.backend()
    }
}

#[cfg(test)]
mod retry_tests {
    use super::retryable_code;

    #[test]
    fn sqlstates_are_read_as_postgres_codes() {
        assert!(retryable_code(true, "40001"));
        assert!(retryable_code(true, "40P01"));
        // insufficient_privilege: its digits have a low byte of 5, yet it is never retried.
        assert!(!retryable_code(true, "42501"));
        assert!(!retryable_code(true, "23505"));
        assert!(!retryable_code(true, "5"));
    }

    #[test]
    fn sqlite_codes_by_their_primary_byte() {
        assert!(retryable_code(false, "5"));
        assert!(retryable_code(false, "6"));
        assert!(retryable_code(false, "517")); // SQLITE_BUSY_SNAPSHOT
        assert!(retryable_code(false, "262")); // SQLITE_LOCKED_SHAREDCACHE
        assert!(!retryable_code(false, "19")); // SQLITE_CONSTRAINT
        assert!(!retryable_code(false, "2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(!retryable_code(false, "40001"));
    }
}
