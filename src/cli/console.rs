//! Opening the console from the CLI: resolve the operator's role, then hand over to `tui::run`.

use std::path::Path;
use std::process::ExitCode;

use super::args::TuiArgs;
use super::{CliError, Context};
use crate::store::Store;
use crate::store::api::{Actor, ReadApi};
use crate::tui::{TuiOptions, run};

/// `gatehouse tui`: the operator's role comes from the store; unknown logins are viewers.
pub async fn open(
    store: Store,
    actor: Actor,
    args: TuiArgs,
    log_file: &Path,
) -> Result<ExitCode, CliError> {
    let role = store
        .operator_role(&actor.user)
        .await
        .context(|| format!("reading the role of {}", actor.user))?
        .unwrap_or_else(|| "viewer".to_string());
    open_with(store, actor, role, args.read_only, args.theme, log_file).await?;
    Ok(ExitCode::SUCCESS)
}

/// Run the console with an explicit role (the demo makes its operator an admin).
pub async fn open_with(
    store: Store,
    operator: Actor,
    role: String,
    read_only: bool,
    theme: String,
    log_file: &Path,
) -> Result<(), CliError> {
    let options = TuiOptions {
        operator,
        role,
        read_only,
        theme,
        config_dir: crate::tui::config_dir(),
        log_file: Some(log_file.display().to_string()),
    };
    run(store, options)
        .await
        .context(|| "running the console".into())
}
