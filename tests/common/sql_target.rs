//! A SQL target for end-to-end tests: an empty SQLite file, PostgreSQL or MariaDB database
//! with the test's tables, and literal-SQL helpers to look at what provisioning did.

use sqlx::Connection;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum TargetKind {
    Sqlite,
    Postgres,
    Mariadb,
}

pub struct Target {
    pub kind: TargetKind,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<crate::support::PgDb>,
    _my: Option<crate::support::MysqlDb>,
}

impl Target {
    /// A target at `url` that this test neither created nor opens (to render documents).
    pub fn at(kind: TargetKind, url: String) -> Target {
        Target {
            kind,
            url,
            _dir: None,
            _pg: None,
            _my: None,
        }
    }

    /// A new empty database of `kind` (named after `name` on the servers) holding `tables`.
    pub async fn new(kind: TargetKind, name: &str, tables: &str) -> Option<Target> {
        let mut t = Target {
            kind,
            url: String::new(),
            _dir: None,
            _pg: None,
            _my: None,
        };
        match kind {
            TargetKind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                t.url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
                t._dir = Some(dir);
            }
            TargetKind::Postgres => {
                let pg = crate::support::PgDb::create(name).await?;
                t.url = pg.url.clone();
                t._pg = Some(pg);
            }
            TargetKind::Mariadb => {
                let my = crate::support::MysqlDb::create(name).await?;
                t.url = my.url.clone();
                t._my = Some(my);
            }
        }
        t.exec(tables).await;
        Some(t)
    }

    /// The connector document's `dialect` for this target.
    pub fn dialect(&self) -> &'static str {
        match self.kind {
            TargetKind::Sqlite => "sqlite",
            TargetKind::Postgres => "postgres",
            TargetKind::Mariadb => "mysql",
        }
    }

    /// Run literal SQL (test-only) on the target.
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self.kind {
            TargetKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
            TargetKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
            TargetKind::Mariadb => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
        }
    }

    /// One text column of every row of a query (test-only literal SQL).
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self.kind {
            TargetKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
            TargetKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
            TargetKind::Mariadb => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
        }
    }

    /// The roles granted to `user` in the target's grants table.
    pub async fn roles(&self, user: &str) -> Vec<String> {
        self.texts(&format!(
            "SELECT role FROM account_roles WHERE username = '{user}' ORDER BY role"
        ))
        .await
    }
}
