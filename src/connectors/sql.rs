//! SQL provisioning targets: read the current row, plan the exact statements that turn it into
//! the desired one, then apply them. Identifiers come from configuration, are validated and
//! quoted per dialect; every value is bound, never formatted into SQL.

mod connector;
pub mod dormant;
pub mod driver;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use connector::SqlConnector;

use crate::domain::config::{SqlDialect, SqlGrants, SqlIdent, SqlLimits, quote_ident};

/// What an SQL target needs to know: where, which tables, which columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlTargetSpec {
    /// Connector name (messages, the breaker's key).
    pub name: String,
    /// SQL dialect of the target.
    pub dialect: SqlDialect,
    /// Connection URL with any secret already resolved (never logged).
    pub url: String,
    /// Schema (PostgreSQL) holding the table, if not the default.
    pub schema: Option<SqlIdent>,
    /// The table.
    pub table: SqlIdent,
    /// Column holding the row key (the username).
    pub key_column: SqlIdent,
    /// Every mapped column (read by `list` and `read`), the key column included.
    pub columns: Vec<SqlIdent>,
    /// Boolean column holding "disabled", if any.
    pub disabled_column: Option<SqlIdent>,
    /// The grants table, if any.
    pub grants: Option<SqlGrants>,
    /// Time limits and breaker.
    pub limits: SqlLimits,
}

/// A value written to a target column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    /// Text.
    Text(String),
    /// A boolean (bound as a boolean on PostgreSQL, 0/1 on SQLite).
    Bool(bool),
}

impl SqlValue {
    /// The value as `CAST(column AS TEXT)` reads it back in `dialect`.
    pub fn as_read_back(&self, dialect: SqlDialect) -> String {
        match (self, dialect) {
            (Self::Text(t), _) => t.clone(),
            (Self::Bool(b), SqlDialect::Postgres) => b.to_string(),
            (Self::Bool(b), _) => {
                if *b {
                    "1".into()
                } else {
                    "0".into()
                }
            }
        }
    }
}

/// One statement of a plan, with the values it binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStatement {
    /// The SQL text with placeholders.
    pub sql: String,
    /// Bound values in order.
    pub params: Vec<SqlValue>,
}

/// What applying a step would change, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SqlPlan {
    /// `create`, `update`, `delete` or `none`.
    pub change: String,
    /// Current values of the row (None when it does not exist).
    pub current: Option<BTreeMap<String, String>>,
    /// Desired values of the row (None for a delete).
    pub desired: Option<BTreeMap<String, SqlValue>>,
    /// The exact statements apply will run.
    pub statements: Vec<PlannedStatement>,
}

/// Why an SQL step failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlTargetError {
    /// The target could not be reached or refused a statement.
    #[error("target database: {0}")]
    Database(#[from] sqlx::Error),
    /// The dialect has no driver compiled in.
    #[error("the {0} dialect is not supported by this build")]
    Unsupported(&'static str),
    /// The target did not answer in time (down, overloaded or stuck on a lock).
    #[error("target database did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Recent calls failed; calls are refused until the cooldown passes.
    #[error(
        "target database is failing ({failures} failures in a row); not tried again for {} s",
        .retry_in.as_secs().max(1)
    )]
    CircuitOpen {
        /// Consecutive failures.
        failures: u32,
        /// Until the next try.
        retry_in: Duration,
    },
}

impl SqlTargetError {
    /// Lost connections and busy databases are worth a retry; bad configuration is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => {
                let text = e.to_string();
                matches!(
                    e,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
                ) || text.contains("locked")
                    || text.contains("timeout")
                    || text.contains("Lock wait")
                    || text.contains("canceling statement")
            }
            Self::Timeout(_) | Self::CircuitOpen { .. } => true,
            Self::Unsupported(_) => false,
        }
    }
}

fn table_name(spec: &SqlTargetSpec) -> String {
    match &spec.schema {
        Some(schema) => format!(
            "{}.{}",
            quote_ident(spec.dialect, schema),
            quote_ident(spec.dialect, &spec.table)
        ),
        None => quote_ident(spec.dialect, &spec.table),
    }
}

fn placeholder(dialect: SqlDialect, n: usize) -> String {
    match dialect {
        SqlDialect::Mysql => "?".to_string(),
        _ => format!("${n}"),
    }
}

/// Plan the statements turning `current` into `desired` (pure). Columns are validated
/// identifiers; `None` desired deletes the row.
pub fn plan(
    spec: &SqlTargetSpec,
    key: &str,
    current: Option<BTreeMap<String, String>>,
    desired: Option<BTreeMap<SqlIdent, SqlValue>>,
) -> SqlPlan {
    let d = spec.dialect;
    let table = table_name(spec);
    let key_col = quote_ident(d, &spec.key_column);
    let key_value = SqlValue::Text(key.to_string());
    let mut statements = Vec::new();
    let change = match (&current, &desired) {
        (None, None) => "none",
        (Some(_), None) => {
            statements.push(PlannedStatement {
                sql: format!(
                    "DELETE FROM {table} WHERE {key_col} = {}",
                    placeholder(d, 1)
                ),
                params: vec![key_value],
            });
            "delete"
        }
        (None, Some(want)) => {
            let mut cols = vec![key_col.clone()];
            let mut params = vec![key_value];
            for (col, value) in want.iter().filter(|(c, _)| **c != spec.key_column) {
                cols.push(quote_ident(d, col));
                params.push(value.clone());
            }
            let marks: Vec<String> = (1..=params.len()).map(|i| placeholder(d, i)).collect();
            statements.push(PlannedStatement {
                sql: format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                ),
                params,
            });
            "create"
        }
        (Some(have), Some(want)) => {
            let changed: Vec<(&SqlIdent, &SqlValue)> = want
                .iter()
                .filter(|(c, v)| {
                    **c != spec.key_column && have.get(c.as_str()) != Some(&v.as_read_back(d))
                })
                .collect();
            if changed.is_empty() {
                "none"
            } else {
                let mut sets = Vec::new();
                let mut params = Vec::new();
                for (i, (col, value)) in changed.iter().enumerate() {
                    sets.push(format!(
                        "{} = {}",
                        quote_ident(d, col),
                        placeholder(d, i + 1)
                    ));
                    params.push((*value).clone());
                }
                params.push(key_value);
                statements.push(PlannedStatement {
                    sql: format!(
                        "UPDATE {table} SET {} WHERE {key_col} = {}",
                        sets.join(", "),
                        placeholder(d, params.len())
                    ),
                    params,
                });
                "update"
            }
        }
    };
    SqlPlan {
        change: change.to_string(),
        current,
        desired: desired.map(|m| {
            m.into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect()
        }),
        statements,
    }
}

fn cast_text(dialect: SqlDialect, column: &SqlIdent) -> String {
    let ty = match dialect {
        SqlDialect::Mysql => "CHAR",
        _ => "TEXT",
    };
    format!("CAST({} AS {ty})", quote_ident(dialect, column))
}

fn qualified(spec: &SqlTargetSpec, table: &SqlIdent) -> String {
    match &spec.schema {
        Some(schema) => format!(
            "{}.{}",
            quote_ident(spec.dialect, schema),
            quote_ident(spec.dialect, table)
        ),
        None => quote_ident(spec.dialect, table),
    }
}

/// The columns `read` and `list` select: the key, the mapped columns, the disabled column.
fn read_columns(spec: &SqlTargetSpec, extra: &[SqlIdent]) -> Vec<SqlIdent> {
    let mut all = vec![spec.key_column.clone()];
    for c in spec
        .columns
        .iter()
        .chain(spec.disabled_column.iter())
        .chain(extra)
    {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    all
}

/// `SELECT` of the account columns; with `by_key`, for one key.
fn select_accounts(spec: &SqlTargetSpec, all: &[SqlIdent], by_key: bool) -> String {
    let d = spec.dialect;
    let cols: Vec<String> = all.iter().map(|c| cast_text(d, c)).collect();
    let mut sql = format!("SELECT {} FROM {}", cols.join(", "), table_name(spec));
    if by_key {
        sql.push_str(&format!(
            " WHERE {} = {}",
            quote_ident(d, &spec.key_column),
            placeholder(d, 1)
        ));
    }
    sql
}

/// `SELECT` of grants; with `by_key`, for one account.
fn select_grants(spec: &SqlTargetSpec, grants: &SqlGrants, by_key: bool) -> String {
    let d = spec.dialect;
    let mut sql = format!(
        "SELECT {}, {} FROM {}",
        cast_text(d, &grants.username_column),
        cast_text(d, &grants.role_column),
        qualified(spec, &grants.table)
    );
    if by_key {
        sql.push_str(&format!(
            " WHERE {} = {}",
            quote_ident(d, &grants.username_column),
            placeholder(d, 1)
        ));
    }
    sql
}

/// Rows read from a target: key → column → text, and key → granted roles.
pub type ReadRows = (
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, BTreeSet<String>>,
);

/// Read accounts (one key, or all when `key` is `None`) and their grants, within the
/// target's statement timeout and breaker.
pub async fn read_rows(
    spec: &SqlTargetSpec,
    key: Option<&str>,
    extra: &[SqlIdent],
) -> Result<ReadRows, SqlTargetError> {
    let all = read_columns(spec, extra);
    let accounts_sql = select_accounts(spec, &all, key.is_some());
    let grants_sql = spec
        .grants
        .as_ref()
        .map(|g| select_grants(spec, g, key.is_some()));
    let binds: Vec<String> = key.map(str::to_string).into_iter().collect();
    driver::guarded(spec, spec.limits.statement_timeout(), |pool| async move {
        let rows = driver::fetch_text(&pool, &accounts_sql, &binds, all.len()).await?;
        let accounts = rows
            .into_iter()
            .filter_map(|vals| {
                let row: BTreeMap<String, String> = all
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .zip(vals.into_iter().map(Option::unwrap_or_default))
                    .collect();
                row.get(spec.key_column.as_str()).cloned().map(|k| (k, row))
            })
            .collect();
        let grants = match &grants_sql {
            Some(sql) => driver::group_grants(driver::fetch_text(&pool, sql, &binds, 2).await?),
            None => BTreeMap::new(),
        };
        Ok((accounts, grants))
    })
    .await
}

/// Run planned statements in one transaction within the target's limits.
pub async fn run_statements(
    spec: &SqlTargetSpec,
    statements: &[PlannedStatement],
) -> Result<(), SqlTargetError> {
    if statements.is_empty() {
        return Ok(());
    }
    let owned: Vec<(String, Vec<SqlValue>)> = statements
        .iter()
        .map(|s| (s.sql.clone(), s.params.clone()))
        .collect();
    let n = u32::try_from(owned.len()).unwrap_or(u32::MAX);
    let timeout = spec.limits.statement_timeout().saturating_mul(n);
    driver::guarded(spec, timeout, |pool| async move {
        driver::execute_all(&pool, &owned).await
    })
    .await
}

/// Statements granting and revoking roles for `key` (pure): inserts that ignore a row
/// already there (per-dialect upsert) and deletes; values bound.
pub fn plan_grants(
    spec: &SqlTargetSpec,
    grants: &SqlGrants,
    key: &str,
    add: &BTreeSet<String>,
    remove: &BTreeSet<String>,
) -> Vec<PlannedStatement> {
    let d = spec.dialect;
    let table = qualified(spec, &grants.table);
    let (u, r) = (
        quote_ident(d, &grants.username_column),
        quote_ident(d, &grants.role_column),
    );
    let (p1, p2) = (placeholder(d, 1), placeholder(d, 2));
    let pair = |role: &String| {
        vec![
            SqlValue::Text(key.to_string()),
            SqlValue::Text(role.clone()),
        ]
    };
    let mut out = Vec::new();
    for role in remove {
        out.push(PlannedStatement {
            sql: format!("DELETE FROM {table} WHERE {u} = {p1} AND {r} = {p2}"),
            params: pair(role),
        });
    }
    for role in add {
        let sql = match d {
            SqlDialect::Mysql => format!("INSERT IGNORE INTO {table} ({u}, {r}) VALUES (?, ?)"),
            _ => format!("INSERT INTO {table} ({u}, {r}) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
        };
        out.push(PlannedStatement {
            sql,
            params: pair(role),
        });
    }
    out
}

/// The statement removing every grant of `key` (used when the account is deleted).
pub fn plan_drop_grants(spec: &SqlTargetSpec, grants: &SqlGrants, key: &str) -> PlannedStatement {
    let d = spec.dialect;
    PlannedStatement {
        sql: format!(
            "DELETE FROM {} WHERE {} = {}",
            qualified(spec, &grants.table),
            quote_ident(d, &grants.username_column),
            placeholder(d, 1)
        ),
        params: vec![SqlValue::Text(key.to_string())],
    }
}

/// True when every desired value reads back as written from `row`.
pub fn matches(
    dialect: SqlDialect,
    row: &BTreeMap<String, String>,
    desired: &BTreeMap<SqlIdent, SqlValue>,
) -> bool {
    desired
        .iter()
        .all(|(column, value)| row.get(column.as_str()) == Some(&value.as_read_back(dialect)))
}

/// Plan and apply: bring the row for `key` to `desired` (None deletes it). With `partial`,
/// a missing row is left missing (disable or update of nobody changes nothing). Idempotent:
/// a second run finds nothing to change and plans no statement. Provisioning goes through
/// [`SqlConnector`] and `crate::connectors` instead, which refuse to take over an existing
/// account.
pub async fn converge(
    spec: &SqlTargetSpec,
    key: &str,
    desired: Option<BTreeMap<SqlIdent, SqlValue>>,
    partial: bool,
) -> Result<SqlPlan, SqlTargetError> {
    let extra: Vec<SqlIdent> = desired
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    let (mut rows, _) = read_rows(spec, Some(key), &extra).await?;
    let current = rows.remove(key);
    let desired = if partial && current.is_none() {
        None
    } else {
        desired
    };
    let plan = plan(spec, key, current, desired);
    run_statements(spec, &plan.statements).await?;
    Ok(plan)
}

/// Create the demo's target database file with its `accounts` table.
pub async fn prepare_demo_target(path: &Path) -> Result<(), SqlTargetError> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS accounts (\
            username TEXT PRIMARY KEY, full_name TEXT, email TEXT, team TEXT, title TEXT, \
            disabled INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS grants (username TEXT NOT NULL, role TEXT NOT NULL, \
            PRIMARY KEY (username, role))",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(s: &str) -> SqlIdent {
        SqlIdent::new(s).expect("valid identifier")
    }

    fn spec(dialect: SqlDialect) -> SqlTargetSpec {
        SqlTargetSpec {
            name: "t".into(),
            dialect,
            url: "sqlite::memory:".into(),
            schema: None,
            table: ident("accounts"),
            key_column: ident("username"),
            columns: vec![ident("username")],
            disabled_column: None,
            grants: None,
            limits: SqlLimits::default(),
        }
    }

    fn want(pairs: &[(&str, SqlValue)]) -> BTreeMap<SqlIdent, SqlValue> {
        pairs.iter().map(|(k, v)| (ident(k), v.clone())).collect()
    }

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.to_string())
    }

    #[test]
    fn create_binds_every_value() {
        let p = plan(
            &spec(SqlDialect::Postgres),
            "jgross",
            None,
            Some(want(&[("full_name", text("Jürgen Groß'; DROP TABLE x"))])),
        );
        assert_eq!(p.change, "create");
        assert_eq!(
            p.statements[0].sql,
            "INSERT INTO \"accounts\" (\"username\", \"full_name\") VALUES ($1, $2)"
        );
        assert_eq!(
            p.statements[0].params,
            vec![text("jgross"), text("Jürgen Groß'; DROP TABLE x")]
        );
    }

    #[test]
    fn unchanged_row_plans_nothing() {
        let have: BTreeMap<String, String> = [("username", "a"), ("team", "x"), ("disabled", "0")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = plan(
            &spec(SqlDialect::Sqlite),
            "a",
            Some(have),
            Some(want(&[
                ("team", text("x")),
                ("disabled", SqlValue::Bool(false)),
            ])),
        );
        assert_eq!(p.change, "none");
        assert!(p.statements.is_empty());
    }

    #[test]
    fn update_names_only_changed_columns_mysql_quoting() {
        let have: BTreeMap<String, String> = [("username", "a"), ("team", "x"), ("disabled", "0")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = plan(
            &spec(SqlDialect::Mysql),
            "a",
            Some(have),
            Some(want(&[
                ("team", text("x")),
                ("disabled", SqlValue::Bool(true)),
            ])),
        );
        assert_eq!(p.change, "update");
        assert_eq!(
            p.statements[0].sql,
            "UPDATE `accounts` SET `disabled` = ? WHERE `username` = ?"
        );
        assert_eq!(
            p.statements[0].params,
            vec![SqlValue::Bool(true), text("a")]
        );
    }

    #[test]
    fn delete_when_nothing_is_desired() {
        let have: BTreeMap<String, String> = [("username".to_string(), "a".to_string())].into();
        let p = plan(&spec(SqlDialect::Sqlite), "a", Some(have), None);
        assert_eq!(p.change, "delete");
        assert_eq!(
            p.statements[0].sql,
            "DELETE FROM \"accounts\" WHERE \"username\" = $1"
        );
    }

    #[tokio::test]
    async fn converge_is_idempotent_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t.db");
        prepare_demo_target(&file).await.expect("target");
        let mut s = spec(SqlDialect::Sqlite);
        s.url = format!("sqlite://{}", file.display());
        let row = want(&[
            ("full_name", text("Zoë Ångström")),
            ("team", text("sales")),
            ("disabled", SqlValue::Bool(false)),
        ]);
        let first = converge(&s, "zangstrom", Some(row.clone()), false)
            .await
            .expect("first");
        assert_eq!(first.change, "create");
        let second = converge(&s, "zangstrom", Some(row), false)
            .await
            .expect("second");
        assert_eq!(second.change, "none");
        let off = converge(
            &s,
            "zangstrom",
            Some(want(&[("disabled", SqlValue::Bool(true))])),
            true,
        )
        .await
        .expect("disable");
        assert_eq!(off.change, "update");
        let missing = converge(
            &s,
            "nobody",
            Some(want(&[("disabled", SqlValue::Bool(true))])),
            true,
        )
        .await
        .expect("missing");
        assert_eq!(missing.change, "none");
    }
}
