//! `gatehouse bench tui`: render time and bytes per frame of every console view over a large store.

use std::process::ExitCode;

use crate::cli::CliError;
use crate::cli::args::BenchTuiArgs;

/// Run the console benchmark.
pub async fn run(_args: &BenchTuiArgs) -> Result<ExitCode, CliError> {
    Err(CliError::msg("bench tui", "not implemented yet"))
}
