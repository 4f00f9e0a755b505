//! Deciding an approval stage inside a transaction: the body of `decide_approval`, shared with
//! the decision by mail reply (which records the reply and its token in the same
//! transaction). Every rule (eligibility, delegation, separation of duties, version) is checked
//! here, so a decision by any channel passes the same checks.

use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::domain::request::RequestEvent;
use crate::store::api::{Actor, ApprovalRow, Decision, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, check_duties, target_of};
use crate::store::command::{command_job, invalid, limited};
use crate::store::db::{Tx, args};
use crate::store::delegation::counted_decision;
use crate::store::error::StoreError;
use crate::store::lifecycle::{apply_event, evaluate_stage};
use crate::store::queue::{QUEUE_DEFAULT, QUEUE_NOTIFY, enqueue_one};
use crate::store::requests::{
    event_name, load_approval, load_request, load_request_for_update, set_request_state,
};
use crate::store::rows::{DbApproval, now_ms, rfc3339};

/// Checks a decision's reason before any transaction: within limits, trimmed, required for a
/// rejection. Answers the reason to record.
pub(crate) fn check_decision_input(
    decision: Decision,
    reason: Option<String>,
) -> StoreResult<Option<String>> {
    limited(limits::check_reason(reason.as_deref()))?;
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if decision == Decision::Reject && reason.is_none() {
        return Err(invalid("reason", "a rejection needs a reason"));
    }
    Ok(reason)
}

/// Decides approval `approval_id` as `actor` inside `tx` (input already passed
/// [`check_decision_input`]); `evidence` is kept on the audit row. Answers the approval and
/// whether jobs were enqueued; the caller commits with `finish`.
pub(crate) async fn decide_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    approval_id: i64,
    expected_version: i64,
    decision: Decision,
    reason: Option<String>,
    evidence: Option<serde_json::Value>,
) -> StoreResult<(ApprovalRow, bool)> {
    let sql = tx.pick(
            "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
             FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.id = $1",
            "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
             FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.id = $1 FOR UPDATE OF a",
        );
    let a: DbApproval = tx
        .opt(sql, args![approval_id])
        .await?
        .ok_or(StoreError::NotFound {
            entity: "approval",
            id: approval_id.to_string(),
        })?;
    let request = load_request(tx, a.request_id).await?;
    let operator = authorize(tx, actor, Action::Decide, Some(&target_of(&request))).await?;
    let (created_by,): (Option<String>,) = tx
        .one(
            "SELECT created_by FROM requests WHERE id = $1",
            args![a.request_id],
        )
        .await?;
    check_duties(actor, operator.as_ref(), &request, created_by.as_deref())?;
    if a.version != expected_version || a.status != "pending" {
        return Err(approval_conflict(tx, &a, expected_version).await);
    }
    let approvers = a.approver_list()?;
    // A delegate decides for the approver they act for: the decision counts as that
    // approver's, and separation of duties applies to both.
    let acting = if approvers.contains(&actor.user) {
        None
    } else {
        let decided: Vec<(String, String)> = tx
                .all(
                    "SELECT approver, COALESCE(decided_by, approver) FROM approval_decisions WHERE approval_id = $1 AND overridden = 0",
                    args![approval_id],
                )
                .await?;
        counted_decision(
            tx,
            actor,
            &approvers,
            &decided,
            &request,
            created_by.as_deref(),
            &format!("decide approval {approval_id}"),
        )
        .await?
    };
    let approver = acting
        .as_ref()
        .map_or(actor.user.clone(), |c| c.approver.clone());
    let overridden = if approvers.contains(&actor.user) || acting.is_some() {
        false
    } else {
        let is_admin = operator
            .as_ref()
            .is_some_and(|o| o.grant.role == crate::domain::authz::Role::Admin);
        if is_admin {
            true
        } else {
            return Err(StoreError::Forbidden {
                operator: actor.user.clone(),
                action: format!("decide approval {approval_id}"),
                why: format!(
                    "not an approver of stage {:?} (approvers: {}) and not an admin",
                    a.stage_name,
                    approvers.join(", ")
                ),
            });
        }
    };
    let earlier: Option<(String, i64)> = tx
            .opt(
                "SELECT decision, decided_at FROM approval_decisions WHERE approval_id = $1 AND (approver = $2 OR decided_by = $3) AND overridden = 0",
                args![approval_id, &approver, &actor.user],
            )
            .await?;
    if let (Some((what, at)), false) = (earlier, overridden) {
        return Err(StoreError::Conflict {
            entity: "approval",
            id: approval_id.to_string(),
            changed_by: actor.user.clone(),
            changed_at: rfc3339(at),
            what: format!("{} already decided ({what})", actor.user),
        });
    }
    let now = now_ms();
    let decision_name = match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    tx.exec(
            "INSERT INTO approval_decisions (approval_id, approver, decision, reason, overridden, source, decided_at, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args![approval_id, &approver, decision_name, &reason, overridden, &actor.source, now, acting.as_ref().map(|_| actor.user.clone())],
        )
        .await?;
    let status: &'static str = if overridden {
        match decision {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        }
    } else {
        let decided: Vec<(String, String)> = tx
                .all(
                    "SELECT approver, decision FROM approval_decisions WHERE approval_id = $1 AND overridden = 0 ORDER BY id",
                    args![approval_id],
                )
                .await?;
        let decided: Vec<(String, bool)> = decided
            .into_iter()
            .map(|(n, d)| (n, d == "approve"))
            .collect();
        evaluate_stage(&a.policy, &approvers, &decided)?
    };
    let bumped = tx
            .exec(
                "UPDATE approvals SET version = version + 1, status = $3, updated_by = $4, updated_at = $5 WHERE id = $1 AND version = $2",
                args![approval_id, expected_version, status, &actor.user, now],
            )
            .await?;
    if bumped == 0 {
        let current: DbApproval = tx.one(sql, args![approval_id]).await?;
        return Err(approval_conflict(tx, &current, expected_version).await);
    }
    let mut request_state = None;
    let mut jobs = false;
    match status {
        "approved" => {
            jobs = enqueue_one(
                tx,
                &command_job(
                    QUEUE_DEFAULT,
                    "request.advance",
                    json!({"request_id": a.request_id, "stage": a.stage}),
                    format!("advance:{}:{}", a.request_id, a.stage),
                    a.request_id,
                ),
            )
            .await?
            .is_some();
        }
        "rejected" => {
            let before = load_request_for_update(tx, a.request_id).await?;
            let next = apply_event(before.state, RequestEvent::StageRejected).ok_or_else(|| {
                StoreError::InvalidState {
                    id: before.id,
                    state: before.state,
                    action: event_name(RequestEvent::StageRejected),
                }
            })?;
            let why = format!(
                "rejected by {} at stage {:?}: {}",
                actor.user,
                a.stage_name,
                reason.clone().unwrap_or_default()
            );
            set_request_state(tx, &before, next, Some(why)).await?;
            request_state = Some(json!({"from": before.state.to_string(), "to": next.to_string()}));
            jobs = enqueue_one(
                    tx,
                    &command_job(
                        QUEUE_NOTIFY,
                        "notify.rejected",
                        json!({"request_id": a.request_id, "stage": a.stage, "approver": actor.user, "reason": reason}),
                        format!("rejected:{}:{}", a.request_id, a.stage),
                        a.request_id,
                    ),
                )
                .await?
                .is_some();
        }
        _ => {}
    }
    audit::append(
        tx,
        actor,
        AuditEntry {
            action: "approval.decide",
            entity: "approval",
            entity_id: approval_id.to_string(),
            before: Some(json!({"status": a.status, "version": a.version})),
            after: Some(json!({
                "status": status,
                "version": a.version + 1,
                "request_id": a.request_id,
                "stage": a.stage,
                "decision": decision_name,
                "reason": reason,
                "overridden": overridden,
                "acting_for": acting.as_ref().map(|c| &c.approver),
                "delegation_chain": acting.as_ref().map(|c| &c.chain),
                "request_state": request_state,
            }))
            .map(|mut after| {
                if let (Some(object), Some(evidence)) = (after.as_object_mut(), evidence) {
                    object.insert("evidence".into(), evidence);
                }
                after
            }),
        },
    );
    let row = load_approval(tx, approval_id).await?;
    Ok((row, jobs))
}

/// The Conflict for an approval that moved or was already decided: names the last decider.
async fn approval_conflict(tx: &mut Tx, a: &DbApproval, expected: i64) -> StoreError {
    let last: Option<(String, String, i64)> = tx
        .opt(
            "SELECT approver, decision, decided_at FROM approval_decisions WHERE approval_id = $1 ORDER BY id DESC LIMIT 1",
            args![a.id],
        )
        .await
        .ok()
        .flatten();
    let (who, at, did) = match last {
        Some((who, decision, at)) if at >= a.updated_at => {
            let verb = if decision == "approve" {
                "approved"
            } else {
                "rejected"
            };
            (who.clone(), at, format!(" ({who} {verb})"))
        }
        _ => (a.updated_by.clone(), a.updated_at, String::new()),
    };
    let what = if a.status != "pending" {
        format!("already {}{did}", a.status)
    } else {
        format!("version {expected} is now {}{did}", a.version)
    };
    StoreError::Conflict {
        entity: "approval",
        id: a.id.to_string(),
        changed_by: who,
        changed_at: rfc3339(at),
        what,
    }
}
