//! Opening an approval stage with its timeline step, and carrying earlier approvals into it:
//! with the stage's `carry_forward`, each of its approvers who approved an earlier stage of
//! the request themselves gets that approval recorded here ("carried forward from stage N"),
//! in the transaction that opens the stage, audited as `approval.carry_forward`, and counted
//! by the stage's policy — a stage the carried approvals satisfy is approved at once and the
//! request advances as after any other approval.

use std::collections::BTreeMap;

use serde_json::json;

use crate::domain::authz::Parties;
use crate::domain::carry_forward::{Carried, EarlierDecision, carried_forward};
use crate::store::Store;
use crate::store::api::{Actor, ApprovalRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::operator_in_tx;
use crate::store::command::{command_job, finish};
use crate::store::db::{Tx, args, write_tx};
use crate::store::lifecycle::evaluate_stage;
use crate::store::queue::{QUEUE_DEFAULT, enqueue_one};
use crate::store::requests::{
    StageOpening, StepRecord, load_approval, load_request, lock_request_in_tx,
    open_approval_locked_in_tx, record_step_in_tx,
};
use crate::store::rows::now_ms;
use crate::store::watch::CHANGES_CHANNEL;

/// Where carried approvals say they came from (the decisions' `source`).
const CARRIED_SOURCE: &str = "carry_forward";

impl Store {
    /// Record the timeline step that explains a stage's approvers and open the stage, in one
    /// transaction (see [`Store::open_approval`] and [`Store::record_step`]); with
    /// `carry_forward`, earlier approvals of its approvers are recorded in it too.
    pub async fn open_approval_recorded(
        &self,
        actor: &Actor,
        step: StepRecord<'_>,
        stage: StageOpening<'_>,
    ) -> StoreResult<ApprovalRow> {
        crate::store::authz::require_system(actor, "open an approval stage")?;
        let row = write_tx!(self, |tx| {
            open_recorded_in_tx(&mut tx, actor, step, stage, false).await
        })?;
        self.signal_local(true);
        Ok(row)
    }
}

/// [`Store::open_approval_recorded`] inside the caller's transaction.
/// `locked`: this transaction has already loaded the request for update.
pub(crate) async fn open_recorded_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    step: StepRecord<'_>,
    stage: StageOpening<'_>,
    locked: bool,
) -> StoreResult<ApprovalRow> {
    record_step_in_tx(
        tx,
        stage.request_id,
        step.job_id,
        step.name,
        step.input,
        step.output,
        step.error,
    )
    .await?;
    if !locked {
        lock_request_in_tx(tx, stage.request_id).await?;
    }
    let row = open_approval_locked_in_tx(
        tx,
        actor,
        stage.request_id,
        stage.stage,
        stage.name,
        stage.policy,
        stage.approvers,
        stage.escalate_at,
    )
    .await?;
    if stage.carry_forward {
        carry_forward_in_tx(tx, actor, row).await
    } else {
        Ok(row)
    }
}

/// Records on the pending stage `approval` (under the request's lock, taken when it was
/// opened) the approvals its approvers gave on earlier stages, skipping anyone who already
/// has a decision on it, so running it again changes nothing.
async fn carry_forward_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    approval: ApprovalRow,
) -> StoreResult<ApprovalRow> {
    if approval.status != "pending" {
        return Ok(approval);
    }
    let request = load_request(tx, approval.request_id).await?;
    let (created_by,): (Option<String>,) = tx
        .one(
            "SELECT created_by FROM requests WHERE id = $1",
            args![approval.request_id],
        )
        .await?;
    // Only approved stages of this round count: a superseded round's stages are numbered
    // past every live stage and are not approved.
    let rows: Vec<(i64, String, String, i64, Option<String>)> = tx
        .all(
            "SELECT a.stage, d.approver, d.decision, d.overridden, d.decided_by FROM approval_decisions d \
             JOIN approvals a ON a.id = d.approval_id \
             WHERE a.request_id = $1 AND a.stage < $2 AND a.status = 'approved' ORDER BY a.stage, d.id",
            args![approval.request_id, i64::from(approval.stage)],
        )
        .await?;
    let earlier: Vec<EarlierDecision> = rows
        .into_iter()
        .filter_map(|(stage, approver, decision, overridden, decided_by)| {
            Some(EarlierDecision {
                stage: u32::try_from(stage).ok()?,
                approver,
                approved: decision == "approve",
                overridden: overridden != 0,
                decided_by,
            })
        })
        .collect();
    let mut emails = BTreeMap::new();
    for approver in &approval.approvers {
        if let Some(email) = operator_in_tx(tx, approver).await?.and_then(|o| o.email) {
            emails.insert(approver.clone(), email);
        }
    }
    let parties = Parties {
        request: request.id,
        requester: &request.requester,
        creator: created_by.as_deref(),
        subject_username: request.username.as_deref(),
        subject_email: request.subject_email.as_deref(),
    };
    let carried: Vec<Carried> = carried_forward(
        approval.stage,
        &approval.approvers,
        &earlier,
        &parties,
        &emails,
    )
    .into_iter()
    .filter(|c| !approval.decisions.iter().any(|d| d.approver == c.approver))
    .collect();
    if carried.is_empty() {
        return Ok(approval);
    }
    let now = now_ms();
    for c in &carried {
        tx.exec(
            "INSERT INTO approval_decisions (approval_id, approver, decision, reason, overridden, source, decided_at, decided_by, carried_from) VALUES ($1, $2, 'approve', NULL, 0, $3, $4, NULL, $5)",
            args![approval.id, &c.approver, CARRIED_SOURCE, now, i64::from(c.from_stage)],
        )
        .await?;
    }
    let decided: Vec<(String, String)> = tx
        .all(
            "SELECT approver, decision FROM approval_decisions WHERE approval_id = $1 AND overridden = 0 ORDER BY id",
            args![approval.id],
        )
        .await?;
    let decided: Vec<(String, bool)> = decided
        .into_iter()
        .map(|(name, decision)| (name, decision == "approve"))
        .collect();
    let status = evaluate_stage(&approval.policy, &approval.approvers, &decided)?;
    tx.exec(
        "UPDATE approvals SET version = version + 1, status = $2, updated_by = $3, updated_at = $4 WHERE id = $1",
        args![approval.id, status, &actor.user, now],
    )
    .await?;
    let mut jobs = false;
    if status == "approved" {
        jobs = enqueue_one(
            tx,
            &command_job(
                QUEUE_DEFAULT,
                "request.advance",
                json!({"request_id": approval.request_id, "stage": approval.stage}),
                format!("advance:{}:{}", approval.request_id, approval.stage),
                approval.request_id,
            ),
        )
        .await?
        .is_some();
    }
    for c in &carried {
        audit::append(
            tx,
            actor,
            AuditEntry {
                action: "approval.carry_forward",
                entity: "approval",
                entity_id: approval.id.to_string(),
                before: Some(json!({"status": approval.status, "version": approval.version})),
                after: Some(json!({
                    "request_id": approval.request_id,
                    "stage": approval.stage,
                    "approver": c.approver,
                    "decision": "approve",
                    "carried_from": c.from_stage,
                    "note": c.note(),
                    "status": status,
                    "version": approval.version + 1,
                })),
            },
        );
    }
    tx.notify(CHANGES_CHANNEL).await?;
    finish(tx, jobs).await?;
    load_approval(tx, approval.id).await
}
