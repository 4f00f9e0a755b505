//! Errors every store call can return; `Conflict` carries who moved the row and when.

use crate::domain::request::RequestState;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row changed since the caller read it (optimistic lock), or was already decided.
    #[error("{entity} {id} was changed by {changed_by} at {changed_at}: {what}")]
    Conflict {
        /// Entity type (`approval`, `request`, `config`).
        entity: &'static str,
        /// Entity key.
        id: String,
        /// Who changed it last.
        changed_by: String,
        /// When, as RFC 3339 UTC.
        changed_at: String,
        /// What changed (`already approved`, `version 3 is now 4`).
        what: String,
    },
    /// No such row.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Entity type.
        entity: &'static str,
        /// Entity key.
        id: String,
    },
    /// The request's state does not allow this.
    #[error("request {id} is {state}: cannot {action}")]
    InvalidState {
        /// Request id.
        id: i64,
        /// Its current state.
        state: RequestState,
        /// What was attempted.
        action: String,
    },
    /// The operator may not do this.
    #[error("{operator} may not {action}: {why}")]
    Forbidden {
        /// Who tried.
        operator: String,
        /// What.
        action: String,
        /// Why not.
        why: String,
    },
    /// Input the store refuses (bad role name, missing reason …).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The connection is read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// The database URL could not be understood.
    #[error("database URL {url}: {message}")]
    Url {
        /// The URL with any password masked.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database answered with an error or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored JSON value could not be decoded.
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True for errors worth retrying after a short pause: a lost or refused connection, a
    /// server shutting down or restarting, a busy SQLite file, a serialization conflict.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                ) || crate::store::db::is_retryable(self)
                    || server_going_away(e)
                    || e.to_string().contains("database is locked")
            }
            _ => false,
        }
    }
}

/// PostgreSQL shutting down, restarting or refusing connections (SQLSTATE 57P01–57P03 and
/// class 08, connection exceptions).
fn server_going_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}
