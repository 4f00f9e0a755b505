//! Operations on the queue and the workers: retrying a job, pausing a queue, draining a
//! worker. Unscoped admins only (checked in the store), each audited.

use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, JobRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::authorize;
use crate::store::command::{finish, invalid, limited, non_empty};
use crate::store::db::{args, is_unique_violation, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::{DbJob, now_ms};

pub(crate) async fn retry_job(store: &Store, actor: &Actor, job_id: i64) -> StoreResult<JobRow> {
    store.check_writable()?;
    let result = write_tx!(store, |tx| {
        authorize(&mut tx, actor, Action::RetryJob, None).await?;
        let select = "SELECT id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, lease_owner, lease_expires_at, last_error, request_id, created_at, started_at, finished_at FROM jobs WHERE id = $1";
        let before: DbJob = tx
            .opt(select, args![job_id])
            .await?
            .ok_or(StoreError::NotFound {
                entity: "job",
                id: job_id.to_string(),
            })?;
        if !matches!(before.state.as_str(), "dead" | "retrying" | "cancelled") {
            return Err(invalid(
                "job",
                format!(
                    "job {job_id} is {}: only dead, retrying or cancelled jobs can be retried",
                    before.state
                ),
            ));
        }
        let update = tx.pick(
            "UPDATE jobs SET state = 'available', run_at = $2, max_attempts = MAX(max_attempts, attempts + 1), finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
            "UPDATE jobs SET state = 'available', run_at = $2, max_attempts = GREATEST(max_attempts, attempts + 1), finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
        );
        if let Err(e) = tx.exec(update, args![job_id, now_ms()]).await {
            if is_unique_violation(&e) {
                return Err(invalid(
                    "job",
                    format!(
                        "job {job_id}: another unfinished job has unique key {:?}",
                        before.unique_key.unwrap_or_default()
                    ),
                ));
            }
            return Err(e);
        }
        let after: DbJob = tx.one(select, args![job_id]).await?;
        audit::append(
            &mut tx,
            actor,
            AuditEntry {
                action: "job.retry",
                entity: "job",
                entity_id: job_id.to_string(),
                before: Some(
                    json!({"state": before.state, "attempts": before.attempts, "max_attempts": before.max_attempts, "last_error": before.last_error}),
                ),
                after: Some(
                    json!({"state": after.state, "max_attempts": after.max_attempts, "run_at": after.run_at}),
                ),
            },
        );
        finish(&mut tx, true).await?;
        after.into_api()
    });
    let row = store
        .audit_refusal(actor, "job.retry", "job", job_id.to_string(), result)
        .await?;
    store.signal_local(true);
    Ok(row)
}

pub(crate) async fn set_queue_paused(
    store: &Store,
    actor: &Actor,
    queue: &str,
    paused: bool,
) -> StoreResult<()> {
    store.check_writable()?;
    non_empty("queue", queue)?;
    limited(limits::check_label("queue", queue))?;
    let result = write_tx!(store, |tx| {
        authorize(&mut tx, actor, Action::PauseQueue, None).await?;
        let before: Option<(i64,)> = tx
            .opt("SELECT paused FROM queues WHERE name = $1", args![queue])
            .await?;
        tx.exec(
            "INSERT INTO queues (name, paused, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            args![queue, paused, &actor.user, now_ms()],
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            AuditEntry {
                action: if paused {
                    "queue.pause"
                } else {
                    "queue.resume"
                },
                entity: "queue",
                entity_id: queue.to_string(),
                before: Some(json!({"paused": before.is_some_and(|(p,)| p != 0)})),
                after: Some(json!({"paused": paused})),
            },
        );
        finish(&mut tx, !paused).await
    });
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    store
        .audit_refusal(actor, action, "queue", queue.to_string(), result)
        .await?;
    store.signal_local(!paused);
    Ok(())
}

pub(crate) async fn drain_worker(store: &Store, actor: &Actor, worker_id: &str) -> StoreResult<()> {
    store.check_writable()?;
    limited(limits::check_label("worker", worker_id))?;
    let result = write_tx!(store, |tx| {
        authorize(&mut tx, actor, Action::DrainWorker, None).await?;
        let before: Option<(String,)> = tx
            .opt("SELECT status FROM workers WHERE id = $1", args![worker_id])
            .await?;
        let Some((status,)) = before else {
            return Err(StoreError::NotFound {
                entity: "worker",
                id: worker_id.to_string(),
            });
        };
        if status == "stopped" {
            return Err(invalid(
                "worker",
                format!("worker {worker_id} has already stopped"),
            ));
        }
        tx.exec(
            "UPDATE workers SET status = 'draining' WHERE id = $1",
            args![worker_id],
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            AuditEntry {
                action: "worker.drain",
                entity: "worker",
                entity_id: worker_id.to_string(),
                before: Some(json!({"status": status})),
                after: Some(json!({"status": "draining"})),
            },
        );
        finish(&mut tx, false).await
    });
    store
        .audit_refusal(
            actor,
            "worker.drain",
            "worker",
            worker_id.to_string(),
            result,
        )
        .await?;
    store.signal_local(false);
    Ok(())
}
