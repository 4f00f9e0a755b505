//! Step control and manual steps: an operator retries a failed provisioning step, re-runs the
//! pinned plan from step N, skips a step with a justification, or marks a manual step done;
//! the engine records manual steps waiting for a person and their verification.
//!
//! Each operator command runs in one write transaction that checks the operator's role and
//! scope on the request (`Action::ControlSteps`: an admin, scoped admins within their scope),
//! changes the provisioning ledger of the request's active pin, enqueues the provisioning job
//! and appends one audit row with what was asked and why. A refused command changes nothing and
//! leaves a `….refused` audit row.
//!
//! Ledger statuses (`provision_ledger.status`, free text): `intended` and `applied` (written by
//! provisioning), `skipped` (an operator skipped it), `waiting_manual` (a manual step waits for
//! a person), `manual_reported` (a person said it is done; the engine verifies it next),
//! `manual_done` (accepted) and `superseded` (cleared by a re-run: the step runs again).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::domain::request::{RequestEvent, RequestState};
use crate::store::Store;
use crate::store::api::{Actor, Millis, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, target_of};
use crate::store::command::{command_job, invalid, limited};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::apply_event;
use crate::store::pins::{PinRow, active_pin_in_tx, engine_only};
use crate::store::queue::{QUEUE_PROVISION, enqueue_one};
use crate::store::requests::{
    load_request, load_request_for_update, record_step_in_tx, set_request_state,
};
use crate::store::rows::now_ms;
use crate::store::watch::{CHANGES_CHANNEL, JOBS_CHANNEL};

/// Ledger status of a step an operator skipped.
pub const SKIPPED: &str = "skipped";
/// Ledger status of a manual step waiting for a person.
pub const WAITING_MANUAL: &str = "waiting_manual";
/// Ledger status of a manual step a person marked done, not yet verified by the engine.
pub const MANUAL_REPORTED: &str = "manual_reported";
/// Ledger status of an accepted manual step.
pub const MANUAL_DONE: &str = "manual_done";
/// Ledger status of a step cleared by a re-run.
pub const SUPERSEDED: &str = "superseded";

/// True when provisioning passes a step with this ledger status without running it.
pub fn passes(status: &str) -> bool {
    matches!(status, "applied" | SKIPPED | MANUAL_DONE)
}

/// A manual step waiting for a person (the console's manual-task list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualTask {
    /// The request.
    pub request_id: i64,
    /// Its workflow.
    pub workflow: String,
    /// The person the request is for.
    pub subject_name: String,
    /// Step name.
    pub step: String,
    /// What the operator must do.
    pub instruction: String,
    /// The connector completion is verified against (empty: none).
    pub connector: String,
    /// The account the step is about.
    pub account: String,
    /// Why an earlier completion was not accepted, if one was not.
    pub problem: Option<String>,
    /// Since when it waits.
    pub since: Millis,
}

/// One step of a request's active pinned plan with its ledger status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    /// 1 for the first step of the plan.
    pub number: usize,
    /// Step name.
    pub name: String,
    /// The step's action (`create_account`, `manual`, …).
    pub action: String,
    /// Ledger status (`None`: not run under this pin).
    pub status: Option<String>,
}

/// One manual step's state as the engine records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualRecord<'a> {
    /// The request.
    pub request_id: i64,
    /// The job recording it.
    pub job_id: Option<i64>,
    /// The pin it belongs to.
    pub pin_id: i64,
    /// Step name.
    pub step: &'a str,
    /// Connector named by the step (empty: none).
    pub connector: &'a str,
    /// Its pinned version (0: none).
    pub connector_version: i64,
    /// The account the step is about.
    pub target_key: &'a str,
    /// The pinned `writes` of the step (instruction and account).
    pub intent: &'a serde_json::Value,
    /// New ledger status ([`WAITING_MANUAL`] or [`MANUAL_DONE`]).
    pub status: &'a str,
    /// What to keep with it (verification, note).
    pub result: &'a serde_json::Value,
    /// Timeline error (a verification that failed).
    pub error: Option<&'a str>,
}

/// One step of a pinned plan as the store reads it.
struct PlanStep {
    name: String,
    action: String,
    connector: String,
    connector_version: i64,
    writes: serde_json::Value,
}

fn plan_steps(pin: &PinRow) -> Vec<PlanStep> {
    let steps = pin.plan.get("steps").and_then(|s| s.as_array());
    steps
        .map(|steps| {
            steps
                .iter()
                .map(|s| PlanStep {
                    name: text(s, "name"),
                    action: text(s, "action"),
                    connector: text(s, "connector"),
                    connector_version: s
                        .get("connector_version")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0),
                    writes: s.get("writes").cloned().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &serde_json::Value, key: &str) -> String {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

fn account_of(request: &RequestRow, step: &PlanStep) -> String {
    step.writes
        .get("username")
        .or_else(|| step.writes.get("account"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| request.username.clone())
        .unwrap_or_default()
}

/// What every step command starts with: the request (locked), the operator's authority on it,
/// and its active pin.
async fn begin(tx: &mut Tx, actor: &Actor, request_id: i64) -> StoreResult<(RequestRow, PinRow)> {
    let request = load_request_for_update(tx, request_id).await?;
    authorize(tx, actor, Action::ControlSteps, Some(&target_of(&request))).await?;
    let pin = active_pin_in_tx(tx, request_id).await?.ok_or_else(|| {
        invalid(
            "request",
            format!("request {request_id} has no pinned plan (it was never approved)"),
        )
    })?;
    Ok((request, pin))
}

fn find_step(pin: &PinRow, name: &str) -> StoreResult<(usize, PlanStep)> {
    let steps = plan_steps(pin);
    let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
    steps
        .into_iter()
        .enumerate()
        .find(|(_, s)| s.name == name)
        .ok_or_else(|| {
            invalid(
                "step",
                format!(
                    "request {} has no step {name:?}; its steps are: {}",
                    pin.request_id,
                    names.join(", ")
                ),
            )
        })
}

async fn ledger_status(tx: &mut Tx, pin_id: i64, step: &str) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = tx
        .opt(
            "SELECT status FROM provision_ledger WHERE pin_id = $1 AND step = $2",
            args![pin_id, step],
        )
        .await?;
    Ok(row.map(|(s,)| s))
}

async fn waiting_manual(tx: &mut Tx, pin_id: i64) -> StoreResult<bool> {
    let row: Option<(i64,)> = tx
        .opt(
            "SELECT id FROM provision_ledger WHERE pin_id = $1 AND status = $2 LIMIT 1",
            args![pin_id, WAITING_MANUAL],
        )
        .await?;
    Ok(row.is_some())
}

/// From `failed`, the request goes back to `scheduled` (`retry`); a request waiting on a manual
/// step stays `provisioning`. Answers the state after and the provisioning job's unique key.
async fn resume(
    tx: &mut Tx,
    request: &RequestRow,
    pin: &PinRow,
    what: &str,
) -> StoreResult<(RequestState, Option<i64>)> {
    let id = request.id;
    let next = match request.state {
        RequestState::Failed => {
            let next = apply_event(request.state, RequestEvent::Retry).ok_or_else(|| {
                StoreError::InvalidState {
                    id,
                    state: request.state,
                    action: what.into(),
                }
            })?;
            set_request_state(tx, request, next, None).await?;
            next
        }
        RequestState::Provisioning if waiting_manual(tx, pin.id).await? => request.state,
        state => {
            return Err(StoreError::InvalidState {
                id,
                state,
                action: format!("{what} (only a failed request or one waiting on a manual step)"),
            });
        }
    };
    let key = format!(
        "provision:{id}:{}:step-control:{}",
        request.version + 1,
        now_ms()
    );
    let job = enqueue_one(
        tx,
        &command_job(
            QUEUE_PROVISION,
            "request.provision",
            json!({"request_id": id}),
            key,
            id,
        ),
    )
    .await?;
    Ok((next, job))
}

async fn audit_step(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    request: &RequestRow,
    next: RequestState,
    after: serde_json::Value,
) -> StoreResult<()> {
    let mut after = after;
    if let Some(map) = after.as_object_mut() {
        map.insert("state".into(), json!(next.to_string()));
    }
    audit::append(
        tx,
        actor,
        AuditEntry {
            action,
            entity: "request",
            entity_id: request.id.to_string(),
            before: Some(json!({
                "state": request.state.to_string(), "version": request.version,
                "last_error": request.last_error,
            })),
            after: Some(after),
        },
    );
    tx.notify(JOBS_CHANNEL).await?;
    tx.notify(CHANGES_CHANNEL).await?;
    Ok(())
}

impl Store {
    /// Retry the failed step `step` of a failed request: the step must be the one whose last
    /// timeline entry failed and must not be applied or skipped; the request goes back to
    /// `scheduled` and provisioning is enqueued (steps already applied are not run again).
    pub async fn retry_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        let result = write_tx!(self, |tx| {
            let (request, pin) = begin(&mut tx, actor, request_id).await?;
            let (index, _) = find_step(&pin, step)?;
            if request.state != RequestState::Failed {
                return Err(StoreError::InvalidState {
                    id: request_id,
                    state: request.state,
                    action: format!("retry step {step:?} (only a failed request's failed step)"),
                });
            }
            let last: Option<(Option<String>,)> = tx
                .opt(
                    "SELECT error FROM request_steps WHERE request_id = $1 AND name = $2 ORDER BY id DESC LIMIT 1",
                    args![request_id, step],
                )
                .await?;
            let status = ledger_status(&mut tx, pin.id, step).await?;
            let failed = matches!(last, Some((Some(_),)));
            if !failed || status.as_deref().is_some_and(passes) {
                return Err(invalid(
                    "step",
                    format!("step {step:?} of request {request_id} did not fail; nothing to retry"),
                ));
            }
            let (next, job) = resume(&mut tx, &request, &pin, "retry a step").await?;
            audit_step(
                &mut tx,
                actor,
                "request.retry_step",
                &request,
                next,
                json!({"step": step, "step_number": index + 1, "job_id": job}),
            )
            .await?;
            load_request(&mut tx, request_id).await
        });
        let row = self
            .audit_step_refusal(actor, "request.retry_step", request_id, result)
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    /// Re-run the active plan from step `from` (1 for the first): the ledger entries of that
    /// step and every later one are marked `superseded`, so provisioning runs them again (a
    /// create finds the account it made and does not make another). Only a failed request or
    /// one waiting on a manual step; a completed request is not re-run.
    pub async fn rerun_from(
        &self,
        actor: &Actor,
        request_id: i64,
        from: usize,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        let result = write_tx!(self, |tx| {
            let (request, pin) = begin(&mut tx, actor, request_id).await?;
            let steps = plan_steps(&pin);
            if from == 0 || from > steps.len() {
                return Err(invalid(
                    "from",
                    format!(
                        "request {request_id}'s plan has {} steps: --from must be 1 to {}, not {from}",
                        steps.len(),
                        steps.len()
                    ),
                ));
            }
            // Resumed first: clearing a waiting manual step must not hide that it waited.
            let (next, job) = resume(&mut tx, &request, &pin, "re-run steps").await?;
            let now = now_ms();
            let mut cleared = Vec::new();
            for s in &steps[from - 1..] {
                let n = tx
                    .exec(
                        "UPDATE provision_ledger SET status = $3, updated_at = $4 WHERE pin_id = $1 AND step = $2",
                        args![pin.id, &s.name, SUPERSEDED, now],
                    )
                    .await?;
                if n > 0 {
                    cleared.push(s.name.clone());
                }
            }
            audit_step(
                &mut tx,
                actor,
                "request.rerun_from",
                &request,
                next,
                json!({"from": from, "from_step": steps[from - 1].name, "cleared": cleared, "job_id": job}),
            )
            .await?;
            load_request(&mut tx, request_id).await
        });
        let row = self
            .audit_step_refusal(actor, "request.rerun_from", request_id, result)
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    /// Skip step `step` with a justification (required): its ledger entry becomes `skipped`,
    /// the timeline shows who skipped it and why, and provisioning continues past it. Only a
    /// failed request or one waiting on a manual step, and only a step not applied yet.
    pub async fn skip_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        justification: &str,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        let justification = justification.trim().to_string();
        let checked = if justification.is_empty() {
            Err(invalid(
                "justification",
                "a skipped step needs a justification (--reason TEXT)",
            ))
        } else {
            limited(limits::check_reason(Some(&justification)))
        };
        let result = match checked {
            Err(e) => Err(e),
            Ok(()) => write_tx!(self, |tx| {
                let (request, pin) = begin(&mut tx, actor, request_id).await?;
                let (index, planned) = find_step(&pin, step)?;
                if let Some(status) = ledger_status(&mut tx, pin.id, step).await?
                    && passes(&status)
                {
                    return Err(invalid(
                        "step",
                        format!("step {step:?} of request {request_id} is already {status}"),
                    ));
                }
                let (next, job) = resume(&mut tx, &request, &pin, "skip a step").await?;
                let now = now_ms();
                let result = json!({
                    "skipped_by": actor.user, "justification": justification, "at": now,
                });
                tx.exec(
                    "INSERT INTO provision_ledger (request_id, pin_id, step, connector, connector_version, target_key, intent, status, result, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (pin_id, step) DO UPDATE SET status = excluded.status, result = excluded.result, updated_at = excluded.updated_at",
                    args![request_id, pin.id, step, &planned.connector, planned.connector_version, account_of(&request, &planned), planned.writes.to_string(), SKIPPED, result.to_string(), now],
                )
                .await?;
                record_step_in_tx(
                    &mut tx,
                    request_id,
                    None,
                    step,
                    Some(&json!({"step_control": "skip", "by": actor.user})),
                    Some(&json!({"outcome": SKIPPED, "justification": justification})),
                    None,
                )
                .await?;
                audit_step(
                    &mut tx,
                    actor,
                    "request.skip_step",
                    &request,
                    next,
                    json!({"step": step, "step_number": index + 1, "justification": justification, "job_id": job}),
                )
                .await?;
                load_request(&mut tx, request_id).await
            }),
        };
        let row = self
            .audit_step_refusal(actor, "request.skip_step", request_id, result)
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    /// Mark the manual step `step`, which waits for a person, done (with an optional note):
    /// its ledger entry becomes `manual_reported` and provisioning is enqueued; the engine then
    /// verifies it by reading the account back when the step names a connector (a read-back
    /// that finds no account puts it back to waiting) and continues with the next step.
    pub async fn complete_manual_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        note: Option<&str>,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let result = match limited(limits::check_reason(note)) {
            Err(e) => Err(e),
            Ok(()) => write_tx!(self, |tx| {
                let (request, pin) = begin(&mut tx, actor, request_id).await?;
                let (index, planned) = find_step(&pin, step)?;
                if planned.action != "manual" {
                    return Err(invalid(
                        "step",
                        format!(
                            "step {step:?} of request {request_id} is a {} step, not a manual one",
                            planned.action
                        ),
                    ));
                }
                let status = ledger_status(&mut tx, pin.id, step).await?;
                if status.as_deref() != Some(WAITING_MANUAL) {
                    return Err(invalid(
                        "step",
                        format!(
                            "manual step {step:?} of request {request_id} is not waiting for an operator (it is {})",
                            status.as_deref().unwrap_or("not reached yet")
                        ),
                    ));
                }
                let (next, job) = resume(&mut tx, &request, &pin, "complete a manual step").await?;
                let now = now_ms();
                let result = json!({"reported_by": actor.user, "note": note, "at": now});
                tx.exec(
                    "UPDATE provision_ledger SET status = $3, result = $4, updated_at = $5 WHERE pin_id = $1 AND step = $2",
                    args![pin.id, step, MANUAL_REPORTED, result.to_string(), now],
                )
                .await?;
                record_step_in_tx(
                    &mut tx,
                    request_id,
                    None,
                    step,
                    Some(&json!({"step_control": "done", "by": actor.user})),
                    Some(&json!({"outcome": "reported done", "note": note})),
                    None,
                )
                .await?;
                audit_step(
                    &mut tx,
                    actor,
                    "request.manual_step_done",
                    &request,
                    next,
                    json!({"step": step, "step_number": index + 1, "note": note, "job_id": job}),
                )
                .await?;
                load_request(&mut tx, request_id).await
            }),
        };
        let row = self
            .audit_step_refusal(actor, "request.manual_step_done", request_id, result)
            .await?;
        self.signal_local(true);
        Ok(row)
    }

    /// The engine records a manual step's state: waiting for a person (with the instruction
    /// in the timeline) or accepted (with its verification), in one transaction with its
    /// timeline row and audit row.
    pub async fn record_manual_step(
        &self,
        actor: &Actor,
        record: &ManualRecord<'_>,
        input: &serde_json::Value,
        output: &serde_json::Value,
    ) -> StoreResult<()> {
        engine_only(actor, "record a manual step")?;
        let r = record;
        write_tx!(self, |tx| {
            let now = now_ms();
            tx.exec(
                "INSERT INTO provision_ledger (request_id, pin_id, step, connector, connector_version, target_key, intent, status, result, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (pin_id, step) DO UPDATE SET status = excluded.status, result = excluded.result, updated_at = excluded.updated_at",
                args![r.request_id, r.pin_id, r.step, r.connector, r.connector_version, r.target_key, r.intent.to_string(), r.status, r.result.to_string(), now],
            )
            .await?;
            record_step_in_tx(
                &mut tx,
                r.request_id,
                r.job_id,
                r.step,
                Some(input),
                Some(output),
                r.error,
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "provision.manual",
                    entity: "request",
                    entity_id: r.request_id.to_string(),
                    before: None,
                    after: Some(json!({
                        "step": r.step, "status": r.status, "connector": r.connector,
                        "account": r.target_key, "pin_id": r.pin_id, "result": r.result,
                    })),
                },
            );
            Ok(())
        })?;
        self.signal_local(false);
        Ok(())
    }

    /// Manual steps waiting for a person under active pins of requests still provisioning (a
    /// cancelled request's are not), oldest first (at most `limit`).
    pub async fn manual_tasks(&self, limit: i64) -> StoreResult<Vec<ManualTask>> {
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = self
            .read_all(
                "SELECT l.request_id, r.workflow, r.subject_name, l.step, l.intent, l.connector, l.target_key, l.result, l.updated_at \
                 FROM provision_ledger l JOIN request_pins p ON p.id = l.pin_id JOIN requests r ON r.id = l.request_id \
                 WHERE l.status = $1 AND p.status = 'active' AND r.state = 'provisioning' ORDER BY l.updated_at, l.id LIMIT $2",
                args![WAITING_MANUAL, limit],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    request_id,
                    workflow,
                    subject_name,
                    step,
                    intent,
                    connector,
                    account,
                    result,
                    since,
                )| {
                    let intent: serde_json::Value =
                        serde_json::from_str(&intent).unwrap_or_default();
                    let result: serde_json::Value = result
                        .and_then(|r| serde_json::from_str(&r).ok())
                        .unwrap_or_default();
                    ManualTask {
                        request_id,
                        workflow,
                        subject_name,
                        step,
                        instruction: text(&intent, "manual"),
                        connector,
                        account,
                        problem: result
                            .get("problem")
                            .and_then(|p| p.as_str())
                            .map(str::to_string),
                        since,
                    }
                },
            )
            .collect())
    }

    /// The steps of a request's active plan with their ledger status (empty: no pin).
    pub async fn step_statuses(&self, request_id: i64) -> StoreResult<Vec<StepStatus>> {
        let Some(pin) = self.active_pin(request_id).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(String, String)> = self
            .read_all(
                "SELECT step, status FROM provision_ledger WHERE pin_id = $1",
                args![pin.id],
            )
            .await?;
        let statuses: std::collections::BTreeMap<String, String> = rows.into_iter().collect();
        Ok(plan_steps(&pin)
            .into_iter()
            .enumerate()
            .map(|(i, s)| StepStatus {
                number: i + 1,
                status: statuses.get(&s.name).cloned(),
                name: s.name,
                action: s.action,
            })
            .collect())
    }

    /// Audit a refused step command: a `Forbidden` as every command does, and a refusal of
    /// the request's state or of the input (`….refused` with the reason) as well.
    async fn audit_step_refusal<T>(
        &self,
        actor: &Actor,
        action: &str,
        request_id: i64,
        result: StoreResult<T>,
    ) -> StoreResult<T> {
        let why = match &result {
            Err(e @ (StoreError::Invalid { .. } | StoreError::InvalidState { .. })) => {
                e.to_string()
            }
            _ => {
                return self
                    .audit_refusal(actor, action, "request", request_id.to_string(), result)
                    .await;
            }
        };
        let refused = format!("{action}.refused");
        let written: StoreResult<()> = write_tx!(self, |tx| {
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: &refused,
                    entity: "request",
                    entity_id: request_id.to_string(),
                    before: None,
                    after: Some(json!({"refused": action, "why": why, "operator": actor.user})),
                },
            );
            Ok(())
        });
        match written {
            Ok(_) => self.signal_local(false),
            Err(e) => tracing::warn!(error = %e, action, "could not audit a refused command"),
        }
        result
    }
}
