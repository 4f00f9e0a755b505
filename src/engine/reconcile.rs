//! The engine's side of reconciliation: carry out an operator's revoke (remove the account
//! from the target with a read-back) and record it with an audit row.

use serde::Deserialize;

use crate::connectors::reconcile::revoke;
use crate::engine::handler::{JobContext, JobError};
use crate::store::api::Actor;

#[derive(Deserialize)]
struct RevokeJob {
    connector: String,
    account: String,
}

/// `reconcile.revoke`: remove one account an operator revoked.
pub async fn revoke_job(ctx: JobContext) -> Result<(), JobError> {
    let job: RevokeJob = serde_json::from_value(ctx.job.payload.clone())
        .map_err(|e| JobError::Permanent(format!("reconcile.revoke payload: {e}")))?;
    let doc = ctx
        .store
        .config_head(&job.connector)
        .await?
        .ok_or_else(|| {
            JobError::Permanent(format!("connector {} does not exist", job.connector))
        })?;
    let written = revoke(&doc, &job.account).await.map_err(|e| {
        if e.is_transient() {
            JobError::Transient(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    })?;
    let actor = Actor::system("engine", format!("worker:{}", ctx.worker_id));
    ctx.store
        .record_reconcile_revoked(&actor, &job.connector, &job.account, &written)
        .await?;
    tracing::info!(connector = %job.connector, account = %job.account, "revoked by reconciliation");
    Ok(())
}
