//! Job handlers: the trait a handler implements, its context, its errors, and the registry.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::Store;
use crate::store::api::JobRow;

/// What a handler run returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'static>>;

/// Why a job attempt did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt after backoff (network, busy target, lost connection).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (bad input, missing configuration): the job is dead at once.
    #[error("{0}")]
    Permanent(String),
}

impl From<crate::store::error::StoreError> for JobError {
    fn from(e: crate::store::error::StoreError) -> Self {
        if e.is_transient() {
            Self::Transient(e.to_string())
        } else {
            Self::Permanent(e.to_string())
        }
    }
}

/// Everything a handler gets: the store, its job and the worker running it.
#[derive(Clone)]
pub struct JobContext {
    /// The shared store.
    pub store: Store,
    /// The claimed job (attempts already counts this attempt).
    pub job: JobRow,
    /// Id of the worker running it.
    pub worker_id: String,
}

impl JobContext {
    /// True when this attempt is the job's last one.
    pub fn is_last_attempt(&self) -> bool {
        self.job.attempts >= self.job.max_attempts
    }

    /// A required integer field of the payload, or a permanent error naming it.
    pub fn payload_i64(&self, field: &str) -> Result<i64, JobError> {
        self.job
            .payload
            .get(field)
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| {
                JobError::Permanent(format!(
                    "job {} ({}): payload field `{field}` missing or not an integer",
                    self.job.id, self.job.kind
                ))
            })
    }
}

/// A job handler. Implemented for every `Fn(JobContext) -> impl Future` closure.
pub trait Handler: Send + Sync + 'static {
    /// Run one attempt.
    fn run(&self, ctx: JobContext) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    fn run(&self, ctx: JobContext) -> HandlerFuture {
        Box::pin(self(ctx))
    }
}

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register (or replace) the handler for `kind`.
    pub fn register(&mut self, kind: &str, handler: impl Handler) -> &mut Self {
        self.handlers.insert(kind.to_string(), Arc::new(handler));
        self
    }

    /// The handler for `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(kind).cloned()
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        kinds
    }
}
