//! Shared helpers for integration tests that run the real binary against real databases.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The PostgreSQL server the tests use (`GATEHOUSE_TEST_PG` or the local default).
pub fn pg_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// True when running under CI, where a missing server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A fresh PostgreSQL database for one test, dropped when the guard goes.
pub struct PgDb {
    /// URL of the fresh database.
    pub url: String,
    name: String,
}

impl PgDb {
    /// Create one; `None` (skip) only outside CI when PostgreSQL is unreachable.
    pub async fn create(tag: &str) -> Option<PgDb> {
        let admin = pg_admin_url();
        let pool = match sqlx::PgPool::connect(&admin).await {
            Ok(p) => p,
            Err(e) => {
                if in_ci() {
                    panic!("PostgreSQL at {admin} is unreachable under CI: {e}");
                }
                eprintln!("SKIPPED: PostgreSQL at {admin} unreachable: {e}");
                return None;
            }
        };
        let name = format!(
            "gh_{tag}_{}_{:06x}",
            std::process::id(),
            fastrand::u32(..0xffffff)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(PgDb {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = pg_admin_url();
        let name = self.name.clone();
        // Drop from a fresh thread with its own runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&pool)
                .await
                .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"))
}

/// The login of this test process's real uid: who the binary acts as.
pub fn os_login() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Make this process's login the store's first admin (it owns the store file).
pub fn become_admin(url: &str, log: &Path) {
    let out = gatehouse(url, log)
        .args(["operator", "add", &os_login(), "--role", "admin"])
        .output()
        .expect("operator add");
    assert!(
        out.status.success(),
        "operator add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `gatehouse` command against `url`, logging into `log`.
pub fn gatehouse(url: &str, log: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env("GATEHOUSE_DATABASE_URL", url)
        .env("GATEHOUSE_LOG_FILE", log)
        .stdin(Stdio::null());
    cmd
}

/// A spawned worker process, killed (SIGKILL) when dropped if still running.
pub struct Proc(pub Child);

impl Proc {
    /// Send a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.0.id() as i32, sig);
        }
    }

    /// Wait for exit up to `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `gatehouse worker` with extra args.
pub fn spawn_worker(url: &str, log: &Path, args: &[&str]) -> Proc {
    let child = gatehouse(url, log)
        .arg("worker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gatehouse worker");
    Proc(child)
}

/// Poll `check` until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A fresh temporary SQLite URL inside `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("gatehouse.db").display())
}

/// The MariaDB/MySQL server the tests use (`GATEHOUSE_TEST_MYSQL` or the local default).
pub fn mysql_admin_url() -> String {
    std::env::var("GATEHOUSE_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string())
}

/// A fresh MariaDB/MySQL database for one test, dropped when the guard goes.
pub struct MysqlDb {
    /// URL of the fresh database.
    pub url: String,
    name: String,
}

impl MysqlDb {
    /// Create one; `None` (skip) only outside CI when MariaDB is unreachable.
    pub async fn create(tag: &str) -> Option<MysqlDb> {
        let admin = mysql_admin_url();
        let pool = match sqlx::MySqlPool::connect(&admin).await {
            Ok(p) => p,
            Err(e) => {
                if in_ci() {
                    panic!("MariaDB at {admin} is unreachable under CI: {e}");
                }
                eprintln!("SKIPPED: MariaDB at {admin} unreachable: {e}");
                return None;
            }
        };
        let name = format!(
            "gh_{tag}_{}_{:06x}",
            std::process::id(),
            fastrand::u32(..0xffffff)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create test database");
        pool.close().await;
        Some(MysqlDb {
            url: format!("{}/{name}", admin.trim_end_matches('/')),
            name,
        })
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        let admin = mysql_admin_url();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::MySqlPool::connect(&admin).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name}"
                )))
                .execute(&pool)
                .await
                .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// The SCIM 2.0 server started by `tests/servers.sh` (URL and token file from its env file);
/// `None` (skip) only outside CI when it is not running.
pub async fn scim_server() -> Option<(String, String)> {
    let url = std::env::var("GATEHOUSE_TEST_SCIM_URL").ok();
    let token = std::env::var("GATEHOUSE_TEST_SCIM_TOKEN_FILE").ok();
    let reachable = match (&url, &token) {
        (Some(url), Some(token)) => match std::fs::read_to_string(token) {
            Ok(t) => match reqwest::Client::new()
                .get(format!("{url}/ServiceProviderConfig"))
                .bearer_auth(t.trim())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => true,
                Ok(r) => {
                    eprintln!("SCIM server at {url} answered {}", r.status());
                    false
                }
                Err(e) => {
                    eprintln!("SCIM server at {url}: {e}");
                    false
                }
            },
            Err(e) => {
                eprintln!("SCIM token file {token}: {e}");
                false
            }
        },
        _ => false,
    };
    if reachable {
        return url.zip(token);
    }
    if in_ci() {
        panic!(
            "the SCIM server is not running under CI: run `bash tests/servers.sh start` and source its env file"
        );
    }
    eprintln!(
        "SKIPPED: no SCIM server (run `bash tests/servers.sh start`, then source /tmp/gatehouse-test-servers/env)"
    );
    None
}
