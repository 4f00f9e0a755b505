//! SQL target connections: one pool per target (SQLite, PostgreSQL, MySQL/MariaDB), connect
//! and statement timeouts enforced by the server where it can and by the client always, and a
//! circuit breaker per target so a dead or stuck target fails fast instead of holding workers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use sqlx::Row;

use super::{SqlTargetError, SqlTargetSpec, SqlValue};
use crate::domain::config::{SqlDialect, SqlLimits};

/// A pool of one of the three drivers (cheap to clone).
#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    Mysql(sqlx::MySqlPool),
}

struct Entry {
    pool: Pool,
    failures: u32,
    open_until: Option<Instant>,
}

type Key = (String, SqlDialect, String, SqlLimits);

static TARGETS: LazyLock<Mutex<HashMap<Key, Entry>>> = LazyLock::new(Default::default);

fn key(spec: &SqlTargetSpec) -> Key {
    (
        spec.name.clone(),
        spec.dialect,
        spec.url.clone(),
        spec.limits,
    )
}

fn lock_targets() -> std::sync::MutexGuard<'static, HashMap<Key, Entry>> {
    // A panic while holding this lock leaves only counters behind: keep using them.
    TARGETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_pool(spec: &SqlTargetSpec) -> Result<Pool, SqlTargetError> {
    let limits = spec.limits;
    let statement_ms = limits.statement_timeout().as_millis().to_string();
    let lock_secs = limits.statement_timeout().as_secs().max(1).to_string();
    let idle = Some(Duration::from_secs(60));
    Ok(match spec.dialect {
        SqlDialect::Sqlite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = spec.url.parse()?;
            Pool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(limits.max_connections())
                    .acquire_timeout(limits.connect_timeout())
                    .idle_timeout(idle)
                    .connect_lazy_with(opts.busy_timeout(limits.statement_timeout())),
            )
        }
        SqlDialect::Postgres => {
            let opts: sqlx::postgres::PgConnectOptions = spec.url.parse()?;
            let opts = opts.options([
                ("statement_timeout", statement_ms.as_str()),
                ("lock_timeout", statement_ms.as_str()),
            ]);
            Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(limits.max_connections())
                    .acquire_timeout(limits.connect_timeout())
                    .idle_timeout(idle)
                    .connect_lazy_with(opts),
            )
        }
        SqlDialect::Mysql => {
            let opts: sqlx::mysql::MySqlConnectOptions = spec.url.parse()?;
            let set = format!(
                "SET SESSION innodb_lock_wait_timeout = {lock_secs}, lock_wait_timeout = {lock_secs}"
            );
            Pool::Mysql(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(limits.max_connections())
                    .acquire_timeout(limits.connect_timeout())
                    .idle_timeout(idle)
                    .after_connect(move |conn, _| {
                        let set = set.clone();
                        Box::pin(async move {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(set))
                                .execute(conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_lazy_with(opts),
            )
        }
    })
}

/// Run `work` on the target's pool under its breaker and `timeout`. Transient failures
/// (timeouts, lost connections) count towards opening the circuit; a success closes it.
pub(super) async fn guarded<T, F, Fut>(
    spec: &SqlTargetSpec,
    timeout: Duration,
    work: F,
) -> Result<T, SqlTargetError>
where
    F: FnOnce(Pool) -> Fut,
    Fut: Future<Output = Result<T, SqlTargetError>>,
{
    let pool = {
        let mut targets = lock_targets();
        let k = key(spec);
        if !targets.contains_key(&k) {
            let pool = new_pool(spec)?;
            targets.insert(
                k.clone(),
                Entry {
                    pool,
                    failures: 0,
                    open_until: None,
                },
            );
        }
        let Some(entry) = targets.get_mut(&k) else {
            return Err(SqlTargetError::Unsupported("target registry"));
        };
        if let Some(until) = entry.open_until {
            let now = Instant::now();
            if until > now {
                return Err(SqlTargetError::CircuitOpen {
                    failures: entry.failures,
                    retry_in: until - now,
                });
            }
        }
        entry.pool.clone()
    };
    let result = match tokio::time::timeout(timeout, work(pool)).await {
        Ok(result) => result,
        Err(_) => Err(SqlTargetError::Timeout(timeout)),
    };
    let mut targets = lock_targets();
    if let Some(entry) = targets.get_mut(&key(spec)) {
        match &result {
            Ok(_) => {
                entry.failures = 0;
                entry.open_until = None;
            }
            Err(e) if e.is_transient() => {
                entry.failures += 1;
                if entry.failures >= spec.limits.breaker_failures() {
                    entry.open_until = Some(Instant::now() + spec.limits.breaker_cooldown());
                    tracing::warn!(connector = %spec.name, failures = entry.failures, "SQL target circuit opened");
                }
            }
            Err(_) => {}
        }
    }
    result
}

/// Close and forget every pool (tests, shutdown).
pub async fn close_all() {
    let pools: Vec<Pool> = lock_targets().drain().map(|(_, e)| e.pool).collect();
    for pool in pools {
        match pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::Mysql(p) => p.close().await,
        }
    }
}

/// Rows of text columns.
type TextRows = Vec<Vec<Option<String>>>;

/// Run a query with text bindings and read every column as text.
pub(super) async fn fetch_text(
    pool: &Pool,
    sql: &str,
    binds: &[String],
    width: usize,
) -> Result<TextRows, SqlTargetError> {
    macro_rules! fetch {
        ($p:expr) => {{
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(b.clone());
            }
            let rows = q.fetch_all($p).await?;
            rows.iter()
                .map(|row| {
                    (0..width)
                        .map(|i| row.try_get::<Option<String>, _>(i))
                        .collect()
                })
                .collect::<Result<TextRows, sqlx::Error>>()?
        }};
    }
    Ok(match pool {
        Pool::Sqlite(p) => fetch!(p),
        Pool::Postgres(p) => fetch!(p),
        Pool::Mysql(p) => fetch!(p),
    })
}

/// Run statements in one transaction, each with its bound values.
pub(super) async fn execute_all(
    pool: &Pool,
    statements: &[(String, Vec<SqlValue>)],
) -> Result<(), SqlTargetError> {
    macro_rules! run {
        ($p:expr) => {{
            let mut tx = $p.begin().await?;
            for (sql, params) in statements {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for v in params {
                    q = match v {
                        SqlValue::Text(t) => q.bind(t.clone()),
                        SqlValue::Bool(b) => q.bind(*b),
                    };
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }};
    }
    match pool {
        Pool::Sqlite(p) => run!(p),
        Pool::Postgres(p) => run!(p),
        Pool::Mysql(p) => run!(p),
    }
    Ok(())
}

/// Group (key, role) rows into key → roles.
pub(super) fn group_grants(rows: TextRows) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        if let [Some(user), Some(role)] = row.as_slice() {
            out.entry(user.clone()).or_default().insert(role.clone());
        }
    }
    out
}
