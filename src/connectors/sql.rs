//! SQL provisioning targets: read the current row, plan the exact statements that turn it into
//! the desired one, then apply them. Identifiers come from configuration, are validated and
//! quoted per dialect; every value is bound, never formatted into SQL.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sqlx::Row;

use crate::domain::config::{SqlDialect, SqlIdent, quote_ident};

/// What an SQL target needs to know: where, which table, which key column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTargetSpec {
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
}

impl SqlTargetError {
    /// Lost connections and busy databases are worth a retry; bad configuration is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
                ) || e.to_string().contains("locked")
            }
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

enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

async fn connect(spec: &SqlTargetSpec) -> Result<Pool, SqlTargetError> {
    match spec.dialect {
        SqlDialect::Sqlite => {
            let opts: sqlx::sqlite::SqliteConnectOptions = spec.url.parse()?;
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.busy_timeout(std::time::Duration::from_secs(5)))
                .await?;
            Ok(Pool::Sqlite(pool))
        }
        SqlDialect::Postgres => Ok(Pool::Postgres(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&spec.url)
                .await?,
        )),
        SqlDialect::Mysql => Err(SqlTargetError::Unsupported("mysql")),
    }
}

/// Read the current row for `key` (the given columns, as text).
async fn read_current(
    pool: &Pool,
    spec: &SqlTargetSpec,
    key: &str,
    columns: &[SqlIdent],
) -> Result<Option<BTreeMap<String, String>>, SqlTargetError> {
    let d = spec.dialect;
    let mut all = vec![spec.key_column.clone()];
    all.extend(columns.iter().filter(|c| **c != spec.key_column).cloned());
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = {}",
        all.iter()
            .map(|c| format!("CAST({} AS TEXT)", quote_ident(d, c)))
            .collect::<Vec<_>>()
            .join(", "),
        table_name(spec),
        quote_ident(d, &spec.key_column),
        placeholder(d, 1)
    );
    let values: Option<Vec<Option<String>>> = match pool {
        Pool::Sqlite(p) => match sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(key)
            .fetch_optional(p)
            .await?
        {
            Some(row) => Some(
                (0..all.len())
                    .map(|i| row.try_get(i))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        },
        Pool::Postgres(p) => match sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(key)
            .fetch_optional(p)
            .await?
        {
            Some(row) => Some(
                (0..all.len())
                    .map(|i| row.try_get(i))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        },
    };
    Ok(values.map(|vals| {
        all.iter()
            .map(|c| c.as_str().to_string())
            .zip(vals.into_iter().map(Option::unwrap_or_default))
            .collect()
    }))
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut q = $query;
        for v in $params {
            q = match v {
                SqlValue::Text(t) => q.bind(t.clone()),
                SqlValue::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}

async fn run_plan(pool: &Pool, plan: &SqlPlan) -> Result<(), SqlTargetError> {
    for st in &plan.statements {
        match pool {
            Pool::Sqlite(p) => {
                bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(st.sql.as_str())),
                    &st.params
                )
                .execute(p)
                .await?;
            }
            Pool::Postgres(p) => {
                bind_all!(
                    sqlx::query(sqlx::AssertSqlSafe(st.sql.as_str())),
                    &st.params
                )
                .execute(p)
                .await?;
            }
        }
    }
    Ok(())
}

/// An open connection to an SQL target: read the row for a key, run a plan, close.
pub struct Target {
    spec: SqlTargetSpec,
    pool: Pool,
}

impl Target {
    /// Connect to the target described by `spec`.
    pub async fn open(spec: &SqlTargetSpec) -> Result<Self, SqlTargetError> {
        Ok(Self {
            spec: spec.clone(),
            pool: connect(spec).await?,
        })
    }

    /// The row for `key` (the key column and `columns`, as text), or `None`.
    pub async fn read(
        &self,
        key: &str,
        columns: &[SqlIdent],
    ) -> Result<Option<BTreeMap<String, String>>, SqlTargetError> {
        read_current(&self.pool, &self.spec, key, columns).await
    }

    /// Run the statements of `plan`, in order (each bound, never formatted).
    pub async fn run(&self, plan: &SqlPlan) -> Result<(), SqlTargetError> {
        run_plan(&self.pool, plan).await
    }

    /// Close the connection.
    pub async fn close(self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The target's description.
    pub fn spec(&self) -> &SqlTargetSpec {
        &self.spec
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
/// [`Target`] and `crate::connectors` instead, which refuse to take over an existing account.
pub async fn converge(
    spec: &SqlTargetSpec,
    key: &str,
    desired: Option<BTreeMap<SqlIdent, SqlValue>>,
    partial: bool,
) -> Result<SqlPlan, SqlTargetError> {
    let target = Target::open(spec).await?;
    let columns: Vec<SqlIdent> = desired
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    let result = async {
        let current = target.read(key, &columns).await?;
        let desired = if partial && current.is_none() {
            None
        } else {
            desired
        };
        let plan = plan(spec, key, current, desired);
        target.run(&plan).await.map(|()| plan)
    }
    .await;
    target.close().await;
    result
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
            dialect,
            url: "sqlite::memory:".into(),
            schema: None,
            table: ident("accounts"),
            key_column: ident("username"),
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
