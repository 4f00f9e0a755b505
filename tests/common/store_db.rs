//! Fresh databases for store tests: a temporary SQLite file, or a throwaway PostgreSQL
//! database on the shared server (created per test, dropped afterwards).

use gatehouse::store::api::Actor;
use gatehouse::store::{OpenOptions, Store};

/// Server the PostgreSQL tests use (override with `GATEHOUSE_TEST_PG`).
use crate::support::PgDb;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite file in a temporary directory.
    Sqlite,
    /// Fresh database on the PostgreSQL server.
    Postgres,
}

/// A migrated store on a fresh database; drops the PostgreSQL database when dropped.
pub struct TestDb {
    /// The store.
    pub store: Store,
    /// Its URL (to open more handles, or raw connections).
    pub url: String,
    /// Backend.
    pub kind: Kind,
    _dir: Option<tempfile::TempDir>,
    // Declared after `store`, so the database is dropped after the store handle.
    _pg: Option<PgDb>,
}

impl TestDb {
    /// Another handle on the same database, as a second process would open it.
    pub async fn reopen(&self, read_only: bool) -> Store {
        Store::open(
            &self.url,
            OpenOptions {
                read_only,
                ..OpenOptions::default()
            },
        )
        .await
        .expect("reopen store")
    }

    /// Run one raw SQL statement outside the store (used to tamper with rows).
    pub async fn raw_exec(&self, sql: &str) {
        use sqlx::Connection;
        match self.kind {
            Kind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("raw sqlite");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("raw sql");
            }
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("raw pg");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("raw sql");
            }
        }
    }
}

impl TestDb {
    /// One integer from a raw query outside the store.
    pub async fn raw_i64(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        match self.kind {
            Kind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("raw sqlite");
                let (v,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_one(&mut c)
                    .await
                    .expect("raw query");
                v
            }
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("raw pg");
                let (v,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_one(&mut c)
                    .await
                    .expect("raw query");
                v
            }
        }
    }
}

/// Operators every store test starts with: `admin` (unscoped admin) and the approvers the
/// cases name. Commands are checked against these roles in the store.
pub const TEST_APPROVERS: [&str; 5] = ["ann", "bob", "cid", "dan", "eve"];

/// A migrated store with the test operators ([`TEST_APPROVERS`] and `admin`).
pub async fn fresh(kind: Kind) -> Option<TestDb> {
    let db = empty(kind).await?;
    staff(&db.store).await;
    Some(db)
}

/// Create `admin` (the first admin) and the approvers of [`TEST_APPROVERS`].
pub async fn staff(store: &Store) {
    use gatehouse::store::api::{CommandApi, OperatorRow};
    store
        .bootstrap_admin(&Actor::operator("setup", "test"), "admin", None)
        .await
        .expect("bootstrap admin");
    for name in TEST_APPROVERS {
        store
            .set_operator(
                &actor("admin"),
                &OperatorRow {
                    name: name.into(),
                    role: "approver".into(),
                    scopes: Vec::new(),
                    email: None,
                },
            )
            .await
            .expect("add approver");
    }
}

/// A migrated store with no operators.
pub async fn empty(kind: Kind) -> Option<TestDb> {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite:{}", dir.path().join("gh.db").display());
            let store = Store::open(&url, OpenOptions::default())
                .await
                .expect("open sqlite");
            store.migrate().await.expect("migrate sqlite");
            Some(TestDb {
                store,
                url,
                kind,
                _dir: Some(dir),
                _pg: None,
            })
        }
        Kind::Postgres => {
            let pg = PgDb::create("test").await?;
            let url = pg.url.clone();
            let store = Store::open(&url, OpenOptions::default())
                .await
                .expect("open pg");
            store.migrate().await.expect("migrate pg");
            Some(TestDb {
                store,
                url,
                kind,
                _dir: None,
                _pg: Some(pg),
            })
        }
    }
}

/// An actor for tests.
pub fn actor(user: &str) -> Actor {
    match user.strip_prefix("system:") {
        Some(component) => Actor::system(component, "test"),
        None => Actor::operator(user, "test"),
    }
}
