//! `gatehouse request retry-step | rerun | skip-step | done-step`: step control from the CLI.

use std::process::ExitCode;

use super::args::StepCommand;
use super::{CliError, Context};
use crate::store::Store;
use crate::store::api::{Actor, RequestRow};

/// Run one step-control verb as `actor` (the OS user, as every CLI command).
pub async fn run(store: &Store, actor: &Actor, cmd: StepCommand) -> Result<ExitCode, CliError> {
    let (row, what) = match cmd {
        StepCommand::Retry { id, step } => (
            store
                .retry_step(actor, id, &step)
                .await
                .context(|| format!("retrying step {step:?} of request {id}"))?,
            format!("step {step} will be retried"),
        ),
        StepCommand::Rerun { id, from } => (
            store
                .rerun_from(actor, id, from)
                .await
                .context(|| format!("re-running request {id} from step {from}"))?,
            format!("steps from {from} on will run again"),
        ),
        StepCommand::Skip { id, step, reason } => (
            store
                .skip_step(actor, id, &step, &reason)
                .await
                .context(|| format!("skipping step {step:?} of request {id}"))?,
            format!("step {step} skipped"),
        ),
        StepCommand::Done { id, step, note } => (
            store
                .complete_manual_step(actor, id, &step, note.as_deref())
                .await
                .context(|| format!("marking manual step {step:?} of request {id} done"))?,
            format!("manual step {step} marked done; a worker verifies it and continues"),
        ),
    };
    print_outcome(&row, &what);
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(row: &RequestRow, what: &str) {
    println!("request {}: {what} (request is {})", row.id, row.state);
}
