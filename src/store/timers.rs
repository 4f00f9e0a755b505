//! Stage timers in the store: the open stages with what their timers already did, and
//! [`Store::apply_timer`], which does one timer action (a reminder, an escalation, an expiry)
//! at most once per stage, whichever worker gets there first: the action's row in
//! `approval_timer_events` is written in the same transaction as its effect.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;

use crate::domain::request::{RequestEvent, RequestState};
use crate::domain::timers::{TimerAction, TimerState};
use crate::store::Store;
use crate::store::api::{Actor, Millis, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::require_system;
use crate::store::command::command_job;
use crate::store::command::finish;
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::apply_event;
use crate::store::queue::{QUEUE_NOTIFY, enqueue_one};
use crate::store::requests::{
    event_name, load_request_for_update, record_step_in_tx, set_request_state,
};

/// An open stage of a request awaiting it, with what its timers did so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenStage {
    /// Approval id.
    pub approval_id: i64,
    /// Request id.
    pub request_id: i64,
    /// Zero-based stage index.
    pub stage: u32,
    /// Stage name.
    pub stage_name: String,
    /// When it opened.
    pub opened_at: Millis,
    /// Its approvers now.
    pub approvers: Vec<String>,
    /// Reminders sent and whether it escalated.
    pub reminders: u32,
    /// Escalated already.
    pub escalated: bool,
}

impl OpenStage {
    /// What the pure timer rules need.
    pub fn timer_state(&self) -> TimerState {
        TimerState {
            reminders: self.reminders,
            escalated: self.escalated,
        }
    }
}

#[derive(Debug, FromRow)]
struct DbOpen {
    id: i64,
    request_id: i64,
    stage: i64,
    stage_name: String,
    created_at: i64,
    approvers: String,
}

fn action_key(action: &TimerAction) -> String {
    match action {
        TimerAction::Remind { n } => format!("remind:{n}"),
        TimerAction::Escalate => "escalate".into(),
        TimerAction::Expire { .. } => "expire".into(),
    }
}

impl Store {
    /// Every pending stage of a request waiting on it, oldest first.
    pub async fn open_stages(&self) -> StoreResult<Vec<OpenStage>> {
        let rows: Vec<DbOpen> = self
            .read_all(
                "SELECT a.id, a.request_id, a.stage, a.stage_name, a.created_at, a.approvers FROM approvals a JOIN requests r ON r.id = a.request_id \
                 WHERE a.status = 'pending' AND r.state = 'awaiting_approval' AND r.stage = a.stage ORDER BY a.id",
                args![],
            )
            .await?;
        let events: Vec<(i64, String)> = self
            .read_all(
                "SELECT e.approval_id, e.action FROM approval_timer_events e JOIN approvals a ON a.id = e.approval_id WHERE a.status = 'pending'",
                args![],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                let mine = events.iter().filter(|(id, _)| *id == r.id);
                let reminders = mine
                    .clone()
                    .filter_map(|(_, a)| a.strip_prefix("remind:")?.parse::<u32>().ok())
                    .max()
                    .unwrap_or(0);
                let escalated = mine.clone().any(|(_, a)| a == "escalate");
                Ok(OpenStage {
                    approval_id: r.id,
                    request_id: r.request_id,
                    stage: u32::try_from(r.stage)
                        .map_err(|_| StoreError::Corrupt(format!("approval {} stage", r.id)))?,
                    stage_name: r.stage_name,
                    opened_at: r.created_at,
                    approvers: serde_json::from_str(&r.approvers).map_err(|e| {
                        StoreError::Corrupt(format!("approval {} approvers: {e}", r.id))
                    })?,
                    reminders,
                    escalated,
                })
            })
            .collect()
    }

    /// Do `action` on the pending stage `approval_id` unless it was done already (answers
    /// false then, and when the stage is no longer pending). `escalate_to` are the people an
    /// escalation adds; `next_due` is the next timer deadline after this one (shown as the
    /// time to escalation). Engine only.
    pub async fn apply_timer(
        &self,
        actor: &Actor,
        approval_id: i64,
        action: &TimerAction,
        escalate_to: &[String],
        next_due: Option<Millis>,
        now: Millis,
    ) -> StoreResult<bool> {
        require_system(actor, "apply an approval timer")?;
        self.check_writable()?;
        let key = action_key(action);
        let done = write_tx!(self, |tx| {
            let sql = tx.pick(
                "SELECT id, request_id, stage, stage_name, created_at, approvers FROM approvals WHERE id = $1 AND status = 'pending'",
                "SELECT id, request_id, stage, stage_name, created_at, approvers FROM approvals WHERE id = $1 AND status = 'pending' FOR UPDATE",
            );
            let Some(a): Option<DbOpen> = tx.opt(sql, args![approval_id]).await? else {
                return Ok(false);
            };
            let inserted = tx
                .exec(
                    "INSERT INTO approval_timer_events (approval_id, action, at, worker, detail) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    args![approval_id, &key, now, &actor.source, serde_json::to_string(action).unwrap_or_default()],
                )
                .await?;
            if inserted == 0 {
                return Ok(false);
            }
            let mut approvers: Vec<String> = serde_json::from_str(&a.approvers)
                .map_err(|e| StoreError::Corrupt(format!("approval {} approvers: {e}", a.id)))?;
            let decided: Vec<(String,)> = tx
                .all(
                    "SELECT approver FROM approval_decisions WHERE approval_id = $1",
                    args![approval_id],
                )
                .await?;
            let waiting: Vec<String> = approvers
                .iter()
                .filter(|p| !decided.iter().any(|(d,)| d == *p))
                .cloned()
                .collect();
            let stage_label = format!("stage {} ({})", a.stage + 1, a.stage_name);
            let (step, error, notify) = match action {
                TimerAction::Remind { n } => (
                    format!(
                        "reminder {n} for {stage_label}: waiting on {}",
                        waiting.join(", ")
                    ),
                    None,
                    Some(("notify.reminder", format!("reminder:{approval_id}:{n}"))),
                ),
                TimerAction::Escalate => {
                    let added: Vec<String> = escalate_to
                        .iter()
                        .filter(|p| !approvers.contains(p))
                        .cloned()
                        .collect();
                    for name in &added {
                        let position = i64::try_from(approvers.len()).unwrap_or(i64::MAX);
                        tx.exec(
                            "INSERT INTO approval_approvers (approval_id, position, approver) VALUES ($1, $2, $3)",
                            args![approval_id, position, name],
                        )
                        .await?;
                        approvers.push(name.clone());
                    }
                    tx.exec(
                        "UPDATE approvals SET approvers = $2, version = version + 1, updated_at = $3 WHERE id = $1",
                        args![approval_id, serde_json::Value::from(approvers.clone()).to_string(), now],
                    )
                    .await?;
                    let error = added.is_empty().then(|| {
                        format!("{stage_label}: the escalation target added nobody new; an admin decides")
                    });
                    (
                        format!(
                            "escalated {stage_label} to {}",
                            if added.is_empty() {
                                "nobody new".to_string()
                            } else {
                                added.join(", ")
                            }
                        ),
                        error,
                        Some(("notify.escalation", format!("escalation:{approval_id}"))),
                    )
                }
                TimerAction::Expire { reason } => {
                    tx.exec(
                        "UPDATE approvals SET status = 'rejected', version = version + 1, updated_by = $2, updated_at = $3 WHERE id = $1",
                        args![approval_id, &actor.user, now],
                    )
                    .await?;
                    let before = load_request_for_update(&mut tx, a.request_id).await?;
                    let next = apply_event(before.state, RequestEvent::StageRejected).ok_or_else(
                        || StoreError::InvalidState {
                            id: before.id,
                            state: before.state,
                            action: event_name(RequestEvent::StageRejected),
                        },
                    )?;
                    debug_assert_eq!(next, RequestState::Rejected);
                    let why = format!("{stage_label} {reason}");
                    set_request_state(&mut tx, &before, next, Some(why.clone())).await?;
                    (
                        why,
                        None,
                        Some((
                            "notify.rejected",
                            format!("rejected:{}:{}", a.request_id, a.stage),
                        )),
                    )
                }
            };
            tx.exec(
                "UPDATE approvals SET escalate_at = $2 WHERE id = $1",
                args![approval_id, next_due],
            )
            .await?;
            record_step_in_tx(
                &mut tx,
                a.request_id,
                None,
                &step,
                Some(&json!({"approval_id": approval_id, "timer": action})),
                Some(&json!({"approvers": approvers, "waiting": waiting})),
                error.as_deref(),
            )
            .await?;
            let mut jobs = false;
            if let Some((kind, unique)) = notify {
                jobs = enqueue_one(
                    &mut tx,
                    &command_job(
                        QUEUE_NOTIFY,
                        kind,
                        json!({"request_id": a.request_id, "stage": a.stage, "approval_id": approval_id, "waiting": waiting, "reason": step}),
                        unique,
                        a.request_id,
                    ),
                )
                .await?
                .is_some();
            }
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: match action {
                        TimerAction::Remind { .. } => "approval.remind",
                        TimerAction::Escalate => "approval.escalate",
                        TimerAction::Expire { .. } => "approval.expire",
                    },
                    entity: "approval",
                    entity_id: approval_id.to_string(),
                    before: None,
                    after: Some(
                        json!({"request_id": a.request_id, "stage": a.stage, "timer": action, "approvers": approvers, "step": step}),
                    ),
                },
            );
            finish(&mut tx, jobs).await?;
            Ok(true)
        })?;
        if done {
            self.signal_local(true);
        }
        Ok(done)
    }
}
