//! `CommandApi` for [`Store`]: every command validates its input, runs in one write
//! transaction with an optimistic version check where the operator saw a version, appends one
//! audit row in that transaction, and signals the change.

use serde_json::json;

use crate::domain::authz::{Action, Target};
use crate::domain::limits::{self, LimitError};
use crate::domain::request::RequestEvent;
use crate::store::Store;
use crate::store::api::{
    Actor, ApprovalRow, CommandApi, ConfigVersion, Decision, JobRow, NewJob, NewRequest,
    OperatorRow, RequestRow, StoreResult,
};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, target_of, team_of};
use crate::store::db::{Tx, args, write_tx};
use crate::store::decide::{check_decision_input, decide_in_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::apply_event;
use crate::store::queue::{QUEUE_DEFAULT, QUEUE_NOTIFY, QUEUE_PROVISION, enqueue_one};
use crate::store::requests::{load_request, load_request_for_update, set_request_state};
use crate::store::rows::{now_ms, state_columns};
use crate::store::watch::{CHANGES_CHANNEL, JOBS_CHANNEL};

/// Attempts given to jobs the commands enqueue.
const COMMAND_JOB_ATTEMPTS: i32 = 10;

/// Config document kinds the store accepts.
pub const CONFIG_KINDS: [&str; 6] = [
    "workflow",
    "mailbox",
    "directory",
    "connector",
    "role",
    "notifier",
];
/// Operator roles.
pub const OPERATOR_ROLES: [&str; 3] = ["viewer", "approver", "admin"];

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

pub(crate) fn command_job(
    queue: &str,
    kind: &str,
    payload: serde_json::Value,
    unique_key: String,
    request_id: i64,
) -> NewJob {
    NewJob {
        queue: queue.to_string(),
        kind: kind.to_string(),
        payload,
        priority: 0,
        run_at: now_ms(),
        max_attempts: COMMAND_JOB_ATTEMPTS,
        unique_key: Some(unique_key),
        request_id: Some(request_id),
    }
}

/// The `request.process` job of a new request (one per request: its unique key is the id).
pub fn process_job(request_id: i64) -> NewJob {
    command_job(
        QUEUE_DEFAULT,
        "request.process",
        json!({"request_id": request_id}),
        format!("process:{request_id}"),
        request_id,
    )
}

/// A limit or NUL refusal from [`crate::domain::limits`], as the store's `Invalid`.
pub(crate) fn limited(result: Result<(), LimitError>) -> StoreResult<()> {
    result.map_err(|e| invalid(e.field(), e.to_string()))
}

pub(crate) fn non_empty(field: &str, value: &str) -> StoreResult<()> {
    if value.trim().is_empty() {
        Err(invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Checks a new request's input before any transaction: labels, limits, kind, non-empty names.
pub(crate) fn check_new_request(request: &NewRequest) -> StoreResult<()> {
    for (field, value) in [
        ("workflow", &request.workflow),
        ("kind", &request.kind),
        ("source", &request.source),
    ] {
        limited(limits::check_label(field, value))?;
    }
    limited(limits::check_operator_name("requester", &request.requester))?;
    limited(limits::check_request_fields(
        Some(&request.subject_name),
        request.subject_email.as_deref(),
        request.username.as_deref(),
        &serde_json::Map::new(),
    ))?;
    limited(limits::check_payload(&request.payload))?;
    non_empty("workflow", &request.workflow)?;
    non_empty("subject_name", &request.subject_name)?;
    non_empty("requester", &request.requester)?;
    non_empty("source", &request.source)?;
    if !matches!(request.kind.as_str(), "joiner" | "mover" | "leaver") {
        return Err(invalid(
            "kind",
            format!("{:?} is not joiner, mover or leaver", request.kind),
        ));
    }
    Ok(())
}

/// Inserts a request inside the caller's transaction (input already passed
/// [`check_new_request`]): checks the actor may create it and the workflow exists, appends the
/// `request.create` audit row, and either enqueues its processing or, when `triage` gives a
/// reason, leaves it in `needs_triage` for a person. The caller commits with [`finish`].
pub(crate) async fn insert_request(
    tx: &mut Tx,
    actor: &Actor,
    request: &NewRequest,
    triage: Option<&str>,
) -> StoreResult<RequestRow> {
    let team = team_of(&request.payload).map(str::to_string);
    let target = Target {
        workflow: &request.workflow,
        team: team.as_deref(),
    };
    authorize(tx, actor, Action::CreateRequest, Some(&target)).await?;
    let workflow: Option<(String,)> = tx
        .opt(
            "SELECT kind FROM configs WHERE name = $1 ORDER BY version DESC LIMIT 1",
            args![&request.workflow],
        )
        .await?;
    match workflow {
        Some((kind,)) if kind == "workflow" => {}
        Some((kind,)) => {
            return Err(invalid(
                "workflow",
                format!(
                    "{:?} is a {kind} document, not a workflow",
                    request.workflow
                ),
            ));
        }
        None => {
            return Err(invalid(
                "workflow",
                format!("no workflow named {:?} is saved", request.workflow),
            ));
        }
    }
    let now = now_ms();
    let initial = if triage.is_some() {
        crate::domain::request::RequestState::NeedsTriage
    } else {
        crate::domain::request::RequestState::Received
    };
    let (state, stage) = state_columns(initial);
    let (id,): (i64,) = tx
        .one(
            "INSERT INTO requests (workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at, team, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13, $14) RETURNING id",
            args![
                &request.workflow,
                &request.kind,
                request.subject_name.trim(),
                &request.subject_email,
                &request.username,
                state,
                stage,
                &request.requester,
                &request.source,
                request.payload.to_string(),
                triage,
                now,
                &team,
                &actor.user
            ],
        )
        .await?;
    if triage.is_none() {
        enqueue_one(tx, &process_job(id)).await?;
    }
    let row = load_request(tx, id).await?;
    audit::append(
        tx,
        actor,
        AuditEntry {
            action: "request.create",
            entity: "request",
            entity_id: id.to_string(),
            before: None,
            after: Some(
                serde_json::to_value(&row).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
        },
    );
    Ok(row)
}

pub(crate) async fn finish(tx: &mut Tx, jobs: bool) -> StoreResult<()> {
    if jobs {
        tx.notify(JOBS_CHANNEL).await?;
    }
    tx.notify(CHANGES_CHANNEL).await
}

impl CommandApi for Store {
    async fn create_request(&self, actor: &Actor, request: NewRequest) -> StoreResult<RequestRow> {
        self.check_writable()?;
        check_new_request(&request)?;
        let result = write_tx!(self, |tx| {
            let row = insert_request(&mut tx, actor, &request, None).await?;
            finish(&mut tx, true).await?;
            Ok(row)
        });
        let row = self
            .audit_refusal(actor, "request.create", "request", String::new(), result)
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    async fn release_message(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
    ) -> StoreResult<RequestRow> {
        self.release_held(actor, id, reason).await
    }

    async fn discard_message(&self, actor: &Actor, id: i64, reason: &str) -> StoreResult<()> {
        self.discard_held(actor, id, reason).await
    }

    async fn resolve_triage(
        &self,
        actor: &Actor,
        request_id: i64,
        expected_version: i64,
        fix: crate::store::TriageFix,
    ) -> StoreResult<RequestRow> {
        self.resolve_triage_checked(actor, request_id, expected_version, fix)
            .await
    }

    async fn add_delegation(
        &self,
        actor: &Actor,
        new: crate::store::api::NewDelegation,
    ) -> StoreResult<crate::store::delegation::DelegationRow> {
        self.delegate_checked(actor, &new).await
    }

    async fn retry_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
    ) -> StoreResult<RequestRow> {
        Store::retry_step(self, actor, request_id, step).await
    }

    async fn skip_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        justification: &str,
    ) -> StoreResult<RequestRow> {
        Store::skip_step(self, actor, request_id, step, justification).await
    }

    async fn complete_manual_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        note: Option<&str>,
    ) -> StoreResult<RequestRow> {
        Store::complete_manual_step(self, actor, request_id, step, note).await
    }

    async fn revoke_delegation(
        &self,
        actor: &Actor,
        id: i64,
    ) -> StoreResult<crate::store::delegation::DelegationRow> {
        self.revoke_delegation_checked(actor, id).await
    }

    async fn decide_approval(
        &self,
        actor: &Actor,
        approval_id: i64,
        expected_version: i64,
        decision: Decision,
        reason: Option<String>,
    ) -> StoreResult<ApprovalRow> {
        self.check_writable()?;
        let reason = check_decision_input(decision, reason)?;
        let result = write_tx!(self, |tx| {
            let (row, jobs) = decide_in_tx(
                &mut tx,
                actor,
                approval_id,
                expected_version,
                decision,
                reason.clone(),
                None,
            )
            .await?;
            finish(&mut tx, jobs).await?;
            Ok(row)
        });
        let row = self
            .audit_refusal(
                actor,
                "approval.decide",
                "approval",
                approval_id.to_string(),
                result,
            )
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    async fn retry_request(&self, actor: &Actor, request_id: i64) -> StoreResult<RequestRow> {
        self.check_writable()?;
        let result = write_tx!(self, |tx| {
            let before = load_request_for_update(&mut tx, request_id).await?;
            authorize(
                &mut tx,
                actor,
                Action::RetryRequest,
                Some(&target_of(&before)),
            )
            .await?;
            let next = apply_event(before.state, RequestEvent::Retry).ok_or_else(|| {
                StoreError::InvalidState {
                    id: request_id,
                    state: before.state,
                    action: "retry".into(),
                }
            })?;
            set_request_state(&mut tx, &before, next, None).await?;
            let job = enqueue_one(
                &mut tx,
                &command_job(
                    QUEUE_PROVISION,
                    "request.provision",
                    json!({"request_id": request_id}),
                    format!("provision:{request_id}:{}", before.version + 1),
                    request_id,
                ),
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.retry",
                    entity: "request",
                    entity_id: request_id.to_string(),
                    before: Some(
                        json!({"state": before.state.to_string(), "version": before.version, "last_error": before.last_error}),
                    ),
                    after: Some(
                        json!({"state": next.to_string(), "version": before.version + 1, "job_id": job}),
                    ),
                },
            );
            finish(&mut tx, true).await?;
            load_request(&mut tx, request_id).await
        });
        let row = self
            .audit_refusal(
                actor,
                "request.retry",
                "request",
                request_id.to_string(),
                result,
            )
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    async fn retry_job(&self, actor: &Actor, job_id: i64) -> StoreResult<JobRow> {
        crate::store::operations::retry_job(self, actor, job_id).await
    }

    async fn cancel_request(
        &self,
        actor: &Actor,
        request_id: i64,
        reason: Option<String>,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        limited(limits::check_reason(reason.as_deref()))?;
        let reason = reason
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        let result = write_tx!(self, |tx| {
            let before = load_request_for_update(&mut tx, request_id).await?;
            authorize(
                &mut tx,
                actor,
                Action::CancelRequest,
                Some(&target_of(&before)),
            )
            .await?;
            let next = apply_event(before.state, RequestEvent::Cancel).ok_or_else(|| {
                StoreError::InvalidState {
                    id: request_id,
                    state: before.state,
                    action: "cancel".into(),
                }
            })?;
            set_request_state(&mut tx, &before, next, None).await?;
            let now = now_ms();
            let jobs = tx
                .exec(
                    "UPDATE jobs SET state = 'cancelled', finished_at = $2 WHERE request_id = $1 AND state IN ('available', 'retrying')",
                    args![request_id, now],
                )
                .await?;
            // Whoever could still act on the request hears it is cancelled: the approvers of
            // the stages that were waiting (and the requester, by the notifier).
            let waiting: Vec<(i64, String)> = tx
                .all(
                    "SELECT id, approvers FROM approvals WHERE request_id = $1 AND status = 'pending'",
                    args![request_id],
                )
                .await?;
            let mut told: Vec<String> = Vec::new();
            for (id, approvers) in waiting {
                let approvers: Vec<String> = serde_json::from_str(&approvers)
                    .map_err(|e| StoreError::Corrupt(format!("approvers of approval {id}: {e}")))?;
                for who in approvers {
                    if !told.contains(&who) {
                        told.push(who);
                    }
                }
            }
            let approvals = tx
                .exec(
                    "UPDATE approvals SET status = 'cancelled', version = version + 1, updated_by = $2, updated_at = $3 WHERE request_id = $1 AND status = 'pending'",
                    args![request_id, &actor.user, now],
                )
                .await?;
            let notice = enqueue_one(
                &mut tx,
                &command_job(
                    QUEUE_NOTIFY,
                    "notify.cancelled",
                    json!({"request_id": request_id, "cancelled_by": actor.user, "reason": reason, "approvers": told}),
                    format!("cancelled:{request_id}"),
                    request_id,
                ),
            )
            .await?
            .is_some();
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.cancel",
                    entity: "request",
                    entity_id: request_id.to_string(),
                    before: Some(
                        json!({"state": before.state.to_string(), "version": before.version}),
                    ),
                    after: Some(json!({
                        "state": next.to_string(), "version": before.version + 1, "reason": reason,
                        "jobs_cancelled": jobs, "approvals_cancelled": approvals
                    })),
                },
            );
            finish(&mut tx, notice).await?;
            load_request(&mut tx, request_id).await
        });
        let row = self
            .audit_refusal(
                actor,
                "request.cancel",
                "request",
                request_id.to_string(),
                result,
            )
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    async fn save_config(
        &self,
        actor: &Actor,
        kind: &str,
        name: &str,
        body: &str,
        comment: &str,
        expected_version: i64,
    ) -> StoreResult<ConfigVersion> {
        crate::store::configs::save_config(self, actor, kind, name, body, comment, expected_version)
            .await
    }

    async fn set_queue_paused(&self, actor: &Actor, queue: &str, paused: bool) -> StoreResult<()> {
        crate::store::operations::set_queue_paused(self, actor, queue, paused).await
    }

    async fn drain_worker(&self, actor: &Actor, worker_id: &str) -> StoreResult<()> {
        crate::store::operations::drain_worker(self, actor, worker_id).await
    }

    async fn set_operator(&self, actor: &Actor, operator: &OperatorRow) -> StoreResult<()> {
        crate::store::operators::set_operator(self, actor, operator).await
    }
}
