//! Fresh databases for store tests: a temporary SQLite file, or a throwaway PostgreSQL
//! database on the shared server (created per test, dropped afterwards).

use gatehouse::store::api::Actor;
use gatehouse::store::{OpenOptions, Store};

/// Server the PostgreSQL tests use (override with `GATEHOUSE_TEST_PG`).
pub fn pg_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

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
    pg_name: Option<String>,
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

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let store = self.store.clone();
        // Dropping needs async I/O; do it on a private runtime in a thread so this works
        // from inside the test's runtime too.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                // FORCE ends whatever connections are still open (other handles, listeners).
                drop(store);
                use sqlx::Connection;
                let dropped = tokio::time::timeout(std::time::Duration::from_secs(20), async {
                    let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await
                })
                .await;
                if !matches!(dropped, Ok(Ok(_))) {
                    eprintln!("note: could not drop test database {name}: {dropped:?}");
                }
            });
        })
        .join();
    }
}

/// A fresh, migrated store; `None` (with a note) when PostgreSQL is unreachable and `CI` is
/// unset. With `CI` set an unreachable PostgreSQL fails the test.
pub async fn fresh(kind: Kind) -> Option<TestDb> {
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
                pg_name: None,
            })
        }
        Kind::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let conn = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                sqlx::PgConnection::connect(&admin),
            )
            .await;
            let mut conn = match conn {
                Ok(Ok(c)) => c,
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_string(),
                    };
                    if std::env::var_os("CI").is_some() {
                        panic!("PostgreSQL at {admin} is unreachable and CI is set: {why}");
                    }
                    eprintln!("note: skipping PostgreSQL test, {admin} unreachable: {why}");
                    return None;
                }
            };
            let name = format!("gh_test_{:016x}", fastrand::u64(..));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            let url = format!("{base}/{name}");
            let store = Store::open(&url, OpenOptions::default())
                .await
                .expect("open pg");
            store.migrate().await.expect("migrate pg");
            Some(TestDb {
                store,
                url,
                kind,
                _dir: None,
                pg_name: Some(name),
            })
        }
    }
}

/// An actor for tests.
pub fn actor(user: &str) -> Actor {
    Actor {
        user: user.to_string(),
        source: "test".to_string(),
    }
}
