//! The store: one API over SQLite (embedded default) and PostgreSQL (shared, multi-host).
//!
//! [`Store`] is a cheap handle (an `Arc` inside) over the connection pools of one backend.
//! It implements [`api::ReadApi`] and [`api::CommandApi`] for the console and CLI, and has
//! inherent queue and engine methods (see `queue.rs`). Every SQL text is shared by both backends
//! unless a dialect difference forces two (claim, array parameters, row locks, notify).
//!
//! SQLite runs in WAL mode with one writer connection (writes never contend inside a process)
//! and a pool of readers; multi-statement write transactions start with `BEGIN IMMEDIATE` so a
//! read lock is never upgraded (the source of "database is locked"), and a transaction that
//! still meets `SQLITE_BUSY` after the busy timeout is retried from the start.

#![warn(missing_docs)]

pub mod api;
mod audit;
mod authz;
mod carry_forward;
mod command;
mod configs;
mod db;
mod decide;
pub mod delegation;
pub mod error;
pub mod import;
pub mod intake;
mod intake_batch;
mod keys;
mod lifecycle;
pub mod links;
pub mod mailboxes;
mod operations;
mod operators;
pub mod pins;
pub mod quarantine;
mod queue;
mod read;
pub mod replies;
mod requests;
mod rows;
pub mod steps;
pub mod timers;
mod triage;
mod validation_batch;
#[cfg_attr(not(target_os = "linux"), path = "wal_poll.rs")]
mod wal_watch;
mod watch;
mod workers;

pub use audit::{GENESIS_HASH, audit_hash, canonical_json};
pub use command::{CONFIG_KINDS, OPERATOR_ROLES, process_job};
pub use db::StoreTx;
pub use keys::KeyOwner;
pub use operators::check_operator_name;
pub use queue::{QUEUE_DEFAULT, QUEUE_NOTIFY, QUEUE_PROVISION};
pub use requests::{StageOpening, StepRecord};
pub use rows::shift_clock;
pub use triage::TriageFix;
pub use validation_batch::{PassedValidation, TO_VALIDATING};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Executor};

use crate::store::api::StoreResult;
use crate::store::error::StoreError;

/// How long a SQLite connection waits for a lock before answering `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file (one host).
    Sqlite,
    /// A PostgreSQL server (many hosts).
    Postgres,
}

impl Backend {
    /// Lower-case name (`sqlite`, `postgres`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Refuse every command with [`StoreError::ReadOnly`]; the database itself is opened
    /// read-only too (`mode=ro` on SQLite, `default_transaction_read_only` on PostgreSQL).
    pub read_only: bool,
    /// Maximum connections of the read pool (SQLite) or of the only pool (PostgreSQL).
    pub max_connections: u32,
    /// Create the SQLite file and its directory when missing (ignored for PostgreSQL and for
    /// read-only stores).
    pub create: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            read_only: false,
            max_connections: 8,
            create: true,
        }
    }
}

pub(crate) enum Pools {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        options: Box<SqliteConnectOptions>,
    },
    Postgres {
        pool: PgPool,
    },
}

pub(crate) struct Inner {
    pub(crate) pools: Pools,
    pub(crate) read_only: bool,
    pub(crate) changes: Arc<tokio::sync::watch::Sender<u64>>,
    pub(crate) jobs: Arc<tokio::sync::watch::Sender<u64>>,
    pub(crate) watcher: Mutex<Option<tokio::task::AbortHandle>>,
    pub(crate) masked_url: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.watcher.lock()
            && let Some(handle) = guard.take()
        {
            handle.abort();
        }
    }
}

/// A handle on the Gatehouse database. Clone it freely: clones share the pools.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    /// The operator whose scopes filter this handle's request reads (`None`: the engine,
    /// which reads everything).
    pub(crate) viewer: Option<Arc<str>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.inner.masked_url)
            .field("read_only", &self.inner.read_only)
            .finish()
    }
}

/// Masks every password in a store or target URL with `***`, so it can be shown and logged:
///
/// - the user-info password, `scheme://user:secret@host` → `scheme://user:***@host`, also when
///   the password itself holds an unencoded `@`, `/`, `?` or `#`;
/// - query parameters whose name (in any case) ends in `password` (`password`, `sslpassword`,
///   `ssl-key-password`, …) or is `pass`, `passwd` or `pwd`, separated by `&` or `;`:
///   `?sslmode=require&password=secret` → `?sslmode=require&password=***`.
///
/// Any scheme is treated alike (`sqlite:`, `mysql://`, `postgres://`, …). When the shape is
/// ambiguous the function masks more rather than less.
pub fn mask_url(url: &str) -> String {
    let masked = mask_user_info(url);
    mask_query_passwords(&masked)
}

fn mask_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let head = &url[..scheme_end + 3];
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The usual shape: user:password@host within the authority (the last @ ends the password).
    if let Some(at) = authority.rfind('@') {
        return match authority[..at].find(':') {
            Some(colon) => format!("{head}{}:***{}", &authority[..colon], &rest[at..]),
            None => url.to_string(),
        };
    }
    // A password holding an unencoded /, ? or # ends the authority early: user:pa/ss@host.
    // Unless the authority is plainly host:port, mask from the first colon to the first @.
    let Some(colon) = authority.find(':') else {
        return url.to_string();
    };
    let after_colon = &authority[colon + 1..];
    let is_port = !after_colon.is_empty() && after_colon.bytes().all(|b| b.is_ascii_digit());
    match rest.find('@') {
        Some(at) if !is_port && at > colon => {
            format!("{head}{}:***{}", &rest[..colon], &rest[at..])
        }
        _ => url.to_string(),
    }
}

fn is_password_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key.ends_with("password") || matches!(key.as_str(), "pass" | "passwd" | "pwd")
}

fn mask_query_passwords(url: &str) -> String {
    let Some(query_start) = url.find('?') else {
        return url.to_string();
    };
    let (base, query) = url.split_at(query_start + 1);
    let (query, fragment) = match query.find('#') {
        Some(i) => query.split_at(i),
        None => (query, ""),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(base);
    let mut rest = query;
    loop {
        let end = rest.find(['&', ';']).unwrap_or(rest.len());
        let param = &rest[..end];
        match param.split_once('=') {
            Some((key, _)) if is_password_key(key) => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(param),
        }
        if end == rest.len() {
            break;
        }
        out.push_str(&rest[end..end + 1]);
        rest = &rest[end + 1..];
    }
    out.push_str(fragment);
    out
}

fn url_error(url: &str, message: impl Into<String>) -> StoreError {
    StoreError::Url {
        url: mask_url(url),
        message: message.into(),
    }
}

impl Store {
    /// The default database URL: `sqlite:<data dir>/gatehouse/gatehouse.db`.
    pub fn default_sqlite_url() -> String {
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        format!(
            "sqlite:{}",
            base.join("gatehouse").join("gatehouse.db").display()
        )
    }

    /// Open a store. `url` is `sqlite:PATH`, `sqlite://PATH` (query parameters as sqlx
    /// accepts them, e.g. `?mode=ro`), `postgres://…` or `postgresql://…`.
    /// Does not migrate; call [`Store::migrate`] for that.
    pub async fn open(url: &str, opts: OpenOptions) -> StoreResult<Store> {
        let masked_url = mask_url(url);
        let pools = if url.starts_with("sqlite:") {
            open_sqlite(url, &opts).await?
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            open_postgres(url, &opts).await?
        } else {
            return Err(url_error(
                url,
                "unknown scheme: expected sqlite:PATH, postgres://… or postgresql://…",
            ));
        };
        let (changes, _) = tokio::sync::watch::channel(0u64);
        let (jobs, _) = tokio::sync::watch::channel(0u64);
        Ok(Store {
            inner: Arc::new(Inner {
                pools,
                read_only: opts.read_only
                    || (url.starts_with("sqlite:") && url.contains("mode=ro")),
                changes: Arc::new(changes),
                jobs: Arc::new(jobs),
                watcher: Mutex::new(None),
                masked_url,
            }),
            viewer: None,
        })
    }

    /// Apply the backend's migrations (idempotent).
    pub async fn migrate(&self) -> StoreResult<()> {
        if self.inner.read_only {
            return Err(StoreError::ReadOnly);
        }
        match &self.inner.pools {
            Pools::Sqlite { writer, .. } => {
                sqlx::migrate!("src/store/migrations/sqlite")
                    .run(writer)
                    .await?
            }
            Pools::Postgres { pool } => {
                sqlx::migrate!("src/store/migrations/postgres")
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// A handle on the same store whose request reads (lists, details, approvals inbox,
    /// overview counts) show only what `operator`'s scopes reach, as the store reads them at
    /// each query. The CLI and the console read through such a handle.
    pub fn viewing_as(&self, operator: &str) -> Store {
        Store {
            inner: self.inner.clone(),
            viewer: Some(Arc::from(operator)),
        }
    }

    /// The operator this handle reads for, if any.
    pub(crate) fn viewer(&self) -> Option<String> {
        self.viewer.as_deref().map(str::to_string)
    }

    /// Which backend this store talks to.
    pub fn backend(&self) -> Backend {
        match self.inner.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// True when opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The URL this store was opened with, password masked.
    pub fn masked_url(&self) -> &str {
        &self.inner.masked_url
    }

    /// Stop the change watcher and close every pool (waits for connections in use to be
    /// returned). Other clones of this store stop working too.
    pub async fn close(&self) {
        if let Ok(mut guard) = self.inner.watcher.lock()
            && let Some(handle) = guard.take()
        {
            handle.abort();
        }
        match &self.inner.pools {
            Pools::Sqlite { writer, reader, .. } => {
                writer.close().await;
                reader.close().await;
            }
            Pools::Postgres { pool } => pool.close().await,
        }
    }

    pub(crate) fn check_writable(&self) -> StoreResult<()> {
        if self.inner.read_only {
            Err(StoreError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Tell local subscribers that this process committed something (the cross-process
    /// watchers also see it, later).
    pub(crate) fn signal_local(&self, jobs: bool) {
        self.inner.changes.send_modify(|v| *v = v.wrapping_add(1));
        if jobs {
            self.inner.jobs.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// The file path of a `sqlite:` URL (without query parameters).
pub fn sqlite_path(url: &str) -> &str {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split('?').next().unwrap_or(rest)
}

async fn open_sqlite(url: &str, opts: &OpenOptions) -> StoreResult<Pools> {
    let path = sqlite_path(url);
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return Err(url_error(
            url,
            "in-memory SQLite is not supported (readers and the writer must share one file); give a file path",
        ));
    }
    let parsed = SqliteConnectOptions::from_str(url).map_err(|e| url_error(url, e.to_string()))?;
    let read_only = opts.read_only || url.contains("mode=ro");
    if !read_only
        && opts.create
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            url_error(
                url,
                format!("cannot create directory {}: {e}", dir.display()),
            )
        })?;
    }
    let mut base = parsed
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("temp_store", "memory")
        .statement_cache_capacity(256)
        .disable_statement_logging();
    if read_only {
        // A read-only handle is a console: a small page cache per connection keeps its
        // memory low; its reads are short, index-driven pages.
        base = base
            .read_only(true)
            .create_if_missing(false)
            .pragma("cache_size", "-512");
    } else {
        base = base
            .journal_mode(SqliteJournalMode::Wal)
            .create_if_missing(opts.create);
    }
    // A local file needs no liveness ping before each use; the ping would cost a round trip
    // to the connection's worker thread on every statement.
    let writer_options = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30));
    // A read-only handle never writes: its writer connection is never opened (and its reader
    // pool below still proves the file can be opened).
    let writer = if read_only {
        writer_options.connect_lazy_with(base.clone())
    } else {
        writer_options
            .connect_with(base.clone())
            .await
            .map_err(|e| url_error(url, format!("cannot open: {e}")))?
    };
    // No configuration may read this file through a secret reference.
    crate::domain::secret::protect_store_file(Path::new(path));
    let reader = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(opts.max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(base.clone())
        .await
        .map_err(|e| url_error(url, format!("cannot open: {e}")))?;
    Ok(Pools::Sqlite {
        writer,
        reader,
        options: Box::new(base),
    })
}

async fn open_postgres(url: &str, opts: &OpenOptions) -> StoreResult<Pools> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| url_error(url, e.to_string()))?
        .application_name("gatehouse")
        .statement_cache_capacity(256)
        .disable_statement_logging();
    let read_only = opts.read_only;
    // No ping before each use: it doubles the round trips of a one-statement claim. A dead
    // connection fails its statement with an I/O error instead, which callers treat as
    // transient (`StoreError::is_transient`) and the pool replaces.
    let pool = PgPoolOptions::new()
        .test_before_acquire(false)
        .max_connections(opts.max_connections.max(3))
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if read_only {
                    conn.execute("SET default_transaction_read_only = on")
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| url_error(url, format!("cannot connect: {e}")))?;
    Ok(Pools::Postgres { pool })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_only() {
        assert_eq!(
            mask_url("postgres://gh:s3cret@db.example:5432/gh?sslmode=require"),
            "postgres://gh:***@db.example:5432/gh?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://gh@db.example/gh"),
            "postgres://gh@db.example/gh"
        );
        assert_eq!(mask_url("sqlite:/tmp/a.db"), "sqlite:/tmp/a.db");
        assert_eq!(
            mask_url("postgres://db.example:5432/gh?sslmode=require&application_name=a@b"),
            "postgres://db.example:5432/gh?sslmode=require&application_name=a@b"
        );
        assert_eq!(
            mask_url("sqlite:///home/x@y/data.db?mode=ro"),
            "sqlite:///home/x@y/data.db?mode=ro"
        );
    }

    #[test]
    fn masks_user_info_in_every_scheme() {
        for (url, masked) in [
            ("postgresql://u:hunter2@h/db", "postgresql://u:***@h/db"),
            (
                "mysql://root:hunter2@127.0.0.1:3306/t",
                "mysql://root:***@127.0.0.1:3306/t",
            ),
            ("sqlite://u:hunter2@/tmp/a.db", "sqlite://u:***@/tmp/a.db"),
            ("postgres://:hunter2@h/db", "postgres://:***@h/db"),
            // Unencoded @, /, ? and # inside the password.
            ("postgres://u:hun@ter2@h/db", "postgres://u:***@h/db"),
            ("postgres://u:hun/ter2@h/db", "postgres://u:***@h/db"),
            ("postgres://u:hun?ter2@h/db", "postgres://u:***@h/db"),
            ("mysql://u:hun#ter2@h/db", "mysql://u:***@h/db"),
        ] {
            assert_eq!(mask_url(url), masked, "{url}");
            assert!(!mask_url(url).contains("hunter2") && !mask_url(url).contains("ter2"));
        }
    }

    #[test]
    fn masks_password_query_parameters() {
        for (url, masked) in [
            (
                "postgres://u@h/db?password=hunter2",
                "postgres://u@h/db?password=***",
            ),
            (
                "postgres://h/db?sslmode=require&password=hunter2&x=1",
                "postgres://h/db?sslmode=require&password=***&x=1",
            ),
            (
                "postgres://h/db?PASSWORD=hunter2",
                "postgres://h/db?PASSWORD=***",
            ),
            (
                "postgres://h/db?Password=hunter2",
                "postgres://h/db?Password=***",
            ),
            (
                "postgres://h/db?sslpassword=hunter2",
                "postgres://h/db?sslpassword=***",
            ),
            (
                "mysql://h/db?ssl-key-password=hunter2",
                "mysql://h/db?ssl-key-password=***",
            ),
            (
                "mysql://h/db?user=u&pass=hunter2",
                "mysql://h/db?user=u&pass=***",
            ),
            ("mysql://h/db?pwd=hunter2", "mysql://h/db?pwd=***"),
            ("mysql://h/db?passwd=hunter2", "mysql://h/db?passwd=***"),
            (
                "sqlite:/tmp/a.db?mode=rwc;password=hunter2",
                "sqlite:/tmp/a.db?mode=rwc;password=***",
            ),
            (
                "sqlite:/tmp/a.db?password=hunter2#frag",
                "sqlite:/tmp/a.db?password=***#frag",
            ),
            (
                "postgres://u:hunter2@h/db?password=hunter2",
                "postgres://u:***@h/db?password=***",
            ),
        ] {
            assert_eq!(mask_url(url), masked, "{url}");
            assert!(!mask_url(url).contains("hunter2"), "{url}");
        }
        // Names that merely contain "pass" somewhere else are kept.
        assert_eq!(
            mask_url("postgres://h/db?passes=3&bypass_cache=1"),
            "postgres://h/db?passes=3&bypass_cache=1"
        );
        assert_eq!(mask_url("postgres://h/db?"), "postgres://h/db?");
        assert_eq!(
            mask_url("postgres://h/db?password"),
            "postgres://h/db?password"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite:/tmp/a.db"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite:///tmp/a.db?mode=ro"), "/tmp/a.db");
        assert_eq!(sqlite_path("sqlite://rel.db"), "rel.db");
    }

    #[test]
    fn default_url_is_sqlite_file() {
        let url = Store::default_sqlite_url();
        assert!(url.starts_with("sqlite:"));
        assert!(url.ends_with("gatehouse.db"));
    }
}
