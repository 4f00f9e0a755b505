//! A failure at the binary's edge: what was being done, and why it failed. The CLI, the demo
//! and the benchmarks report through it; the library's own errors are `thiserror` types.

/// A failure at the binary's edge: what was being done, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct CliError {
    context: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl CliError {
    /// Wrap `source` with what was being done.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A failure with only a message.
    pub fn msg(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(context, message.into())
    }
}

/// Attach context to any error.
pub trait Context<T> {
    /// Name what was being done when this failed.
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, what: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|e| CliError::new(what(), e))
    }
}
