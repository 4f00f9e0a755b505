//! Logging set-up: always to a file (the console owns the terminal), optionally also into the
//! store's execution log.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::engine::logsink;
use crate::failure::{CliError, Context};

/// Logging: always to a file (the console owns the terminal), optionally into the store.
pub fn init_logging(
    filter: &str,
    file: &Path,
    store_layer: Option<logsink::StoreLogLayer>,
) -> Result<tracing_appender::non_blocking::WorkerGuard, CliError> {
    let dir = file.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).context(|| format!("creating log directory {}", dir.display()))?;
    let name = file
        .file_name()
        .ok_or_else(|| CliError::msg("log file", format!("{} has no file name", file.display())))?;
    let appender = tracing_appender::rolling::never(dir, name);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let env_filter = EnvFilter::try_new(filter)
        .map_err(|e| CliError::new(format!("log filter `{filter}`"), e))?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true);
    // A second init (tests, nested calls) keeps the first subscriber: not an error worth dying for.
    let _ = tracing_subscriber::registry()
        .with(env_filter)
        .with(file_layer)
        .with(store_layer)
        .try_init();
    Ok(guard)
}
