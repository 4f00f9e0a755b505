//! What is provisioned is what was approved: approval-round pins, the provisioning ledger and
//! username reservations, each written in one transaction with its timeline step and audit row.
//!
//! - A **pin** records, when the engine opens a request's approval chain, the workflow version,
//!   every connector (and role) version its steps use and the exact plan shown to approvers.
//!   Provisioning loads exactly those versions. When a pinned document's head moves, the pin
//!   and the request's approvals are superseded and the request is validated, planned, pinned
//!   and approved again ([`Store::require_reapproval`]).
//!   Superseded approvals stay in the `approvals` table with status `superseded`; their stage
//!   number is moved out of the way (`stage + 1_000_000 × round`) because a request has one
//!   row per stage index, and their stage name says which round they belonged to.
//! - The **provisioning ledger** records the intent to write an account before the write and
//!   the result after it, so a create that was applied by an attempt that crashed before
//!   recording it is recognised as this request's own on retry, and nothing else is.
//! - **Username reservations**: a username belongs to the first request that reserved it, for
//!   good. Reservations are not released when a request is rejected, cancelled or fails: an
//!   access tool must never hand one person's name (and whatever still carries it in a target
//!   system) to somebody else, so a new request for the same person derives the next free name.
//!
//! The methods taking an actor are the engine's: an operator (not a system actor) is refused.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::pinning::{PinnedDocument, pin_summary};
use crate::domain::request::{RequestEvent, RequestState};
use crate::domain::username::{base_username, check_username, derive_unique};
use crate::store::Store;
use crate::store::api::{Actor, ConfigVersion, Millis, NewJob, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::apply_event;
use crate::store::queue::enqueue_one;
use crate::store::requests::{
    event_name, load_request, load_request_for_update, record_step_in_tx, set_request_state,
    transition_from_in_tx,
};
use crate::store::rows::{DbConfig, now_ms};
use crate::store::watch::{CHANGES_CHANNEL, JOBS_CHANNEL};

/// How far a superseded approval's stage number is moved per round (see the module docs).
pub const SUPERSEDED_STAGE_OFFSET: i64 = 1_000_000;

/// The configuration and plan one approval round of a request was opened with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinRow {
    /// Primary key.
    pub id: i64,
    /// The request.
    pub request_id: i64,
    /// Approval round, 1 for the first.
    pub round: i64,
    /// Workflow name.
    pub workflow: String,
    /// Workflow version approvers saw.
    pub workflow_version: i64,
    /// Every pinned document (the workflow first, then connectors and roles).
    pub documents: Vec<PinnedDocument>,
    /// The plan shown: approval chain, steps with parameters, and per step what it writes.
    pub plan: serde_json::Value,
    /// `active` or `superseded`.
    pub status: String,
    /// When it was pinned.
    pub created_at: Millis,
    /// When it was superseded.
    pub superseded_at: Option<Millis>,
    /// Why.
    pub superseded_reason: Option<String>,
}

/// A new pin, written with the request's `validation_passed` transition.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPin {
    /// Workflow name.
    pub workflow: String,
    /// Workflow version.
    pub workflow_version: i64,
    /// Every pinned document, the workflow first.
    pub documents: Vec<PinnedDocument>,
    /// The plan shown to approvers.
    pub plan: serde_json::Value,
    /// Approval stages of the pinned workflow.
    pub stages: u32,
}

/// The outcome of reserving a request's username.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The request holds this username (its row, with the username set).
    Reserved(Box<RequestRow>),
    /// No username could be reserved, and why (for triage).
    Refused(String),
}

/// One provisioning step of one pin in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Primary key.
    pub id: i64,
    /// The request.
    pub request_id: i64,
    /// The pin it provisions.
    pub pin_id: i64,
    /// Step name.
    pub step: String,
    /// Connector name.
    pub connector: String,
    /// Connector version used.
    pub connector_version: i64,
    /// The account key written (username).
    pub target_key: String,
    /// What the step meant to write.
    pub intent: serde_json::Value,
    /// `intended` (recorded before the write) or `applied`.
    pub status: String,
    /// What was written and read back, once applied.
    pub result: Option<serde_json::Value>,
}

/// One applied provisioning step, recorded with its timeline step and audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedStep<'a> {
    /// The request.
    pub request_id: i64,
    /// The job that applied it.
    pub job_id: Option<i64>,
    /// The pin it provisions.
    pub pin_id: i64,
    /// Step name.
    pub step: &'a str,
    /// Connector name.
    pub connector: &'a str,
    /// Connector version used.
    pub connector_version: i64,
    /// The account key written.
    pub target_key: &'a str,
    /// What the step meant to write.
    pub intent: &'a serde_json::Value,
    /// The step's input as shown in the timeline.
    pub input: &'a serde_json::Value,
    /// What was written (statements, values) and read back.
    pub output: &'a serde_json::Value,
}

type DbPin = (
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

fn pin_from_db(row: DbPin) -> StoreResult<PinRow> {
    let (id, request_id, round, workflow, workflow_version, documents, plan, status, at, sat, why) =
        row;
    Ok(PinRow {
        id,
        request_id,
        round,
        workflow,
        workflow_version,
        documents: serde_json::from_str(&documents)
            .map_err(|e| StoreError::Corrupt(format!("pin {id} documents: {e}")))?,
        plan: serde_json::from_str(&plan)
            .map_err(|e| StoreError::Corrupt(format!("pin {id} plan: {e}")))?,
        status,
        created_at: at,
        superseded_at: sat,
        superseded_reason: why,
    })
}

type DbLedger = (
    i64,
    i64,
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
);

fn ledger_from_db(row: DbLedger) -> StoreResult<LedgerRow> {
    let (id, request_id, pin_id, step, connector, connector_version, key, intent, status, result) =
        row;
    let parse = |text: &str, what: &str| {
        serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("ledger row {id} {what}: {e}")))
    };
    Ok(LedgerRow {
        id,
        request_id,
        pin_id,
        step,
        connector,
        connector_version,
        target_key: key,
        intent: parse(&intent, "intent")?,
        status,
        result: result.map(|r| parse(&r, "result")).transpose()?,
    })
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) async fn active_pin_in_tx(tx: &mut Tx, request_id: i64) -> StoreResult<Option<PinRow>> {
    let row: Option<DbPin> = tx
        .opt(
            "SELECT id, request_id, round, workflow, workflow_version, documents, plan, status, created_at, superseded_at, superseded_reason FROM request_pins WHERE request_id = $1 AND status = 'active' ORDER BY round DESC LIMIT 1",
            args![request_id],
        )
        .await?;
    row.map(pin_from_db).transpose()
}

/// Mark the request's active pins superseded; answers how many.
async fn supersede_pins(tx: &mut Tx, request_id: i64, reason: &str) -> StoreResult<u64> {
    tx.exec(
        "UPDATE request_pins SET status = 'superseded', superseded_at = $2, superseded_reason = $3 WHERE request_id = $1 AND status = 'active'",
        args![request_id, now_ms(), reason],
    )
    .await
}

impl Store {
    /// Version `version` of config document `name` (not necessarily the newest).
    pub async fn config_at(&self, name: &str, version: i64) -> StoreResult<Option<ConfigVersion>> {
        let row: Option<DbConfig> = self
            .read_opt(
                "SELECT name, kind, version, body, author, comment, created_at FROM configs WHERE name = $1 AND version = $2",
                args![name, version],
            )
            .await?;
        Ok(row.map(ConfigVersion::from))
    }

    /// The request's active pin (the configuration its current approval round was opened
    /// with), if any.
    pub async fn active_pin(&self, request_id: i64) -> StoreResult<Option<PinRow>> {
        let rows: Vec<DbPin> = self
            .read_all(
                "SELECT id, request_id, round, workflow, workflow_version, documents, plan, status, created_at, superseded_at, superseded_reason FROM request_pins WHERE request_id = $1 AND status = 'active' ORDER BY round DESC LIMIT 1",
                args![request_id],
            )
            .await?;
        rows.into_iter().next().map(pin_from_db).transpose()
    }

    /// Every pin of a request, oldest round first (the console's history of what was
    /// approved).
    pub async fn request_pins(&self, request_id: i64) -> StoreResult<Vec<PinRow>> {
        let rows: Vec<DbPin> = self
            .read_all(
                "SELECT id, request_id, round, workflow, workflow_version, documents, plan, status, created_at, superseded_at, superseded_reason FROM request_pins WHERE request_id = $1 ORDER BY round",
                args![request_id],
            )
            .await?;
        rows.into_iter().map(pin_from_db).collect()
    }

    /// Validation passed: in one transaction, pin `pin` as the request's new approval round
    /// (superseding an older active pin), record it in the timeline (a step named "plan
    /// pinned: workflow … v…, connector … v…" whose output is the plan), move the request from
    /// `validating` with `validation_passed`, append the audit rows, and enqueue `then` (the
    /// provisioning job when the workflow has no approval stage).
    pub async fn pin_and_pass_validation(
        &self,
        actor: &Actor,
        request_id: i64,
        job_id: Option<i64>,
        pin: &NewPin,
        input: &serde_json::Value,
        then: Option<&NewJob>,
    ) -> StoreResult<(RequestRow, PinRow)> {
        engine_only(actor, "pin a plan")?;
        let documents = to_json(&pin.documents)?;
        let plan = to_json(&pin.plan)?;
        let out = write_tx!(self, |tx| {
            pin_in_tx(
                &mut tx, actor, request_id, job_id, pin, &documents, &plan, input, then,
            )
            .await
        })?;
        self.signal_local(then.is_some());
        Ok(out)
    }

    /// A pinned document moved after approval: in one transaction, supersede the active pin and
    /// every approval of the request (kept, with status `superseded`), move the request back
    /// to `validating` (`config_changed`, `reason` as its last error), record `reason` as a
    /// failed "configuration check" step, enqueue `request.process` again (it re-plans,
    /// re-pins and opens stage 1), and append the audit row.
    pub async fn require_reapproval(
        &self,
        actor: &Actor,
        request_id: i64,
        job_id: Option<i64>,
        reason: &str,
    ) -> StoreResult<RequestRow> {
        engine_only(actor, "require re-approval")?;
        let row = write_tx!(self, |tx| {
            let before = load_request_for_update(&mut tx, request_id).await?;
            let event = RequestEvent::ConfigChanged;
            let next =
                apply_event(before.state, event).ok_or_else(|| StoreError::InvalidState {
                    id: request_id,
                    state: before.state,
                    action: event_name(event),
                })?;
            let pin = active_pin_in_tx(&mut tx, request_id).await?;
            let round = pin.as_ref().map_or(0, |p| p.round);
            supersede_pins(&mut tx, request_id, reason).await?;
            let now = now_ms();
            let offset = SUPERSEDED_STAGE_OFFSET * round.max(1);
            let suffix = format!(" (superseded, round {})", round.max(1));
            let approvals = tx
                .exec(
                    "UPDATE approvals SET status = 'superseded', stage = stage + $2, stage_name = stage_name || $3, version = version + 1, updated_by = $4, updated_at = $5 \
                     WHERE request_id = $1 AND stage < $6",
                    args![request_id, offset, suffix, &actor.user, now, SUPERSEDED_STAGE_OFFSET],
                )
                .await?;
            set_request_state(&mut tx, &before, next, Some(reason.to_string())).await?;
            record_step_in_tx(
                &mut tx,
                request_id,
                job_id,
                "configuration check",
                Some(
                    &json!({ "pin_round": round, "documents": pin.as_ref().map(|p| &p.documents) }),
                ),
                None,
                Some(reason),
            )
            .await?;
            enqueue_one(
                &mut tx,
                &NewJob {
                    queue: crate::store::QUEUE_DEFAULT.to_string(),
                    kind: "request.process".into(),
                    payload: json!({ "request_id": request_id }),
                    priority: 0,
                    run_at: now,
                    max_attempts: 10,
                    unique_key: Some(format!("process:{request_id}:{}", before.version + 1)),
                    request_id: Some(request_id),
                },
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.reapproval",
                    entity: "request",
                    entity_id: request_id.to_string(),
                    before: Some(json!({
                        "state": before.state.to_string(), "version": before.version, "pin_round": round,
                    })),
                    after: Some(json!({
                        "state": next.to_string(), "event": event_name(event), "version": before.version + 1,
                        "reason": reason, "approvals_superseded": approvals,
                    })),
                },
            );
            tx.notify(JOBS_CHANNEL).await?;
            tx.notify(CHANGES_CHANNEL).await?;
            load_request(&mut tx, request_id).await
        })?;
        self.signal_local(true);
        Ok(row)
    }

    /// Reserve the request's username in one transaction: a given username is checked
    /// (charset, length) and, for a joiner, must not be reserved by another request (a
    /// mover's or leaver's given username names an existing account and is only checked);
    /// without one, the first
    /// free name is derived from the subject's name (or e-mail), reserved and set on the
    /// request. The `username_reservations` table's unique key makes two requests racing for
    /// the same name end with different names on every backend. Reservations are never
    /// released (see the module docs).
    pub async fn reserve_username(
        &self,
        actor: &Actor,
        request_id: i64,
    ) -> StoreResult<Reservation> {
        engine_only(actor, "reserve a username")?;
        let out = write_tx!(self, |tx| {
            reserve_in_tx(&mut tx, actor, request_id).await
        })?;
        self.signal_local(false);
        Ok(out)
    }

    /// The request holding a username reservation, if any.
    pub async fn username_holder(&self, username: &str) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> = self
            .read_opt(
                "SELECT request_id FROM username_reservations WHERE username = $1",
                args![username],
            )
            .await?;
        Ok(row.map(|(id,)| id))
    }

    /// The ledger row of one step of one pin, if any.
    pub async fn ledger_entry(&self, pin_id: i64, step: &str) -> StoreResult<Option<LedgerRow>> {
        let row: Option<DbLedger> = self
            .read_opt(
                "SELECT id, request_id, pin_id, step, connector, connector_version, target_key, intent, status, result FROM provision_ledger WHERE pin_id = $1 AND step = $2",
                args![pin_id, step],
            )
            .await?;
        row.map(ledger_from_db).transpose()
    }

    /// True when this request recorded, in any round, the intent to write account `key` in
    /// step `step` of connector `connector` (so an account found there may be its own).
    pub async fn has_provision_intent(
        &self,
        request_id: i64,
        step: &str,
        connector: &str,
        key: &str,
    ) -> StoreResult<bool> {
        let row: Option<(i64,)> = self
            .read_opt(
                "SELECT id FROM provision_ledger WHERE request_id = $1 AND step = $2 AND connector = $3 AND target_key = $4 LIMIT 1",
                args![request_id, step, connector, key],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Record, before writing, that step `step` of pin `pin_id` is about to write `intent` to
    /// account `key` (kept as is when already recorded).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_provision_intent(
        &self,
        request_id: i64,
        pin_id: i64,
        step: &str,
        connector: &str,
        connector_version: i64,
        key: &str,
        intent: &serde_json::Value,
    ) -> StoreResult<()> {
        let now = now_ms();
        self.write_exec(
            "INSERT INTO provision_ledger (request_id, pin_id, step, connector, connector_version, target_key, intent, status, result, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'intended', NULL, $8, $8) ON CONFLICT (pin_id, step) DO NOTHING",
            args![request_id, pin_id, step, connector, connector_version, key, intent.to_string(), now],
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }

    /// A step was applied: in one transaction, mark it applied in the ledger with its result,
    /// record it in the request's timeline, and append a `provision.apply` audit row (entity
    /// `request`; after = connector, connector version, step, account, what was written and
    /// what was read back). Answers the timeline step id.
    pub async fn record_provision_applied(
        &self,
        actor: &Actor,
        applied: &AppliedStep<'_>,
    ) -> StoreResult<i64> {
        engine_only(actor, "record a provisioning step")?;
        let a = applied;
        let id = write_tx!(self, |tx| {
            let now = now_ms();
            tx.exec(
                "INSERT INTO provision_ledger (request_id, pin_id, step, connector, connector_version, target_key, intent, status, result, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'applied', $8, $9, $9) \
                 ON CONFLICT (pin_id, step) DO UPDATE SET status = 'applied', result = excluded.result, updated_at = excluded.updated_at",
                args![a.request_id, a.pin_id, a.step, a.connector, a.connector_version, a.target_key, a.intent.to_string(), a.output.to_string(), now],
            )
            .await?;
            if let Some(state) = a.output.get("state") {
                crate::store::links::provisioned_in_tx(&mut tx, a.connector, a.target_key, state)
                    .await?;
            }
            let step_id = record_step_in_tx(
                &mut tx,
                a.request_id,
                a.job_id,
                a.step,
                Some(a.input),
                Some(a.output),
                None,
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "provision.apply",
                    entity: "request",
                    entity_id: a.request_id.to_string(),
                    before: None,
                    after: Some(json!({
                        "step": a.step, "connector": a.connector, "connector_version": a.connector_version,
                        "account": a.target_key, "pin_id": a.pin_id, "written": a.output,
                    })),
                },
            );
            Ok(step_id)
        })?;
        self.signal_local(false);
        Ok(id)
    }
}

/// These methods carry out the engine's work; an operator never calls them directly.
pub(crate) fn engine_only(actor: &Actor, action: &str) -> StoreResult<()> {
    if actor.is_system() {
        Ok(())
    } else {
        Err(StoreError::Forbidden {
            operator: actor.user.clone(),
            action: action.to_string(),
            why: "only the engine does this".into(),
        })
    }
}

/// Reserve `name` for `request_id` unless another request holds it; answers that holder.
async fn claim_name(tx: &mut Tx, name: &str, request_id: i64) -> StoreResult<Option<i64>> {
    let inserted = tx
        .exec(
            "INSERT INTO username_reservations (username, request_id, reserved_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING",
            args![name, request_id, now_ms()],
        )
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let (holder,): (i64,) = tx
        .one(
            "SELECT request_id FROM username_reservations WHERE username = $1",
            args![name],
        )
        .await?;
    Ok((holder != request_id).then_some(holder))
}

/// [`Store::reserve_username`] inside the caller's transaction.
pub(crate) async fn reserve_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    request_id: i64,
) -> StoreResult<Reservation> {
    let before = load_request_for_update(tx, request_id).await?;
    reserve_row_in_tx(tx, actor, before).await
}

/// [`reserve_in_tx`] for a request this transaction has already loaded for update
/// (`before`, unchanged since).
pub(crate) async fn reserve_row_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    before: RequestRow,
) -> StoreResult<Reservation> {
    let request_id = before.id;
    if let Some(given) = before.username.clone() {
        if let Err(e) = check_username(&given) {
            return Ok(Reservation::Refused(e.to_string()));
        }
        // A mover's or leaver's username names an account that already exists; only
        // a joiner's new name is reserved.
        if before.kind != "joiner" {
            return Ok(Reservation::Reserved(Box::new(before)));
        }
        return match claim_name(tx, &given, request_id).await? {
            None => Ok(Reservation::Reserved(Box::new(before))),
            Some(holder) => Ok(Reservation::Refused(format!(
                "username {given} is already reserved by request {holder}"
            ))),
        };
    }
    let email = before.subject_email.as_deref();
    let base = match base_username(&before.subject_name, email) {
        Ok(base) => base,
        Err(e) => return Ok(Reservation::Refused(e.to_string())),
    };
    // Derived names are the base or the base and digits, so the names in use that can
    // matter lie in the byte range [base, base + ":") (':' follows '9'): an index range
    // scan (bytewise on both backends), not a scan of every request.
    let upper = format!("{base}:");
    let taken: Vec<(String,)> = tx
        .all(
            tx.pick(
                "SELECT username FROM username_reservations WHERE username >= $1 AND username < $3 AND request_id <> $2 \
                 UNION SELECT username FROM requests WHERE username IS NOT NULL AND username >= $1 AND username < $3 \
                 AND id <> $2 AND state NOT IN ('rejected', 'cancelled')",
                "SELECT username FROM username_reservations WHERE username COLLATE \"C\" >= $1 AND username COLLATE \"C\" < $3 AND request_id <> $2 \
                 UNION SELECT username FROM requests WHERE username IS NOT NULL AND username COLLATE \"C\" >= $1 \
                 AND username COLLATE \"C\" < $3 AND id <> $2 AND state NOT IN ('rejected', 'cancelled')",
            ),
            args![&base, request_id, &upper],
        )
        .await?;
    let mut taken: std::collections::BTreeSet<String> = taken.into_iter().map(|(u,)| u).collect();
    let name = loop {
        let candidate = match derive_unique(&before.subject_name, email, &taken) {
            Ok(name) => name,
            Err(e) => return Ok(Reservation::Refused(e.to_string())),
        };
        // Derived names pass by construction; checked all the same.
        if let Err(e) = check_username(&candidate) {
            return Ok(Reservation::Refused(e.to_string()));
        }
        match claim_name(tx, &candidate, request_id).await? {
            None => break candidate,
            // Another request reserved it since we read (PostgreSQL): try the next.
            Some(_) => {
                taken.insert(candidate);
            }
        }
    };
    let now = now_ms();
    let n = tx
        .exec(
            "UPDATE requests SET username = $3, version = version + 1, updated_at = $4 WHERE id = $1 AND version = $2",
            args![request_id, before.version, &name, now],
        )
        .await?;
    if n == 0 {
        return Err(crate::store::requests::request_moved(tx, request_id, before.version).await);
    }
    audit::append(
        tx,
        actor,
        AuditEntry {
            action: "request.username_reserved",
            entity: "request",
            entity_id: request_id.to_string(),
            before: Some(json!({"username": before.username, "version": before.version})),
            after: Some(json!({"username": name, "version": before.version + 1})),
        },
    );
    tx.notify(CHANGES_CHANNEL).await?;
    // The row as the update left it, without reading it again.
    Ok(Reservation::Reserved(Box::new(RequestRow {
        username: Some(name),
        version: before.version + 1,
        updated_at: now,
        ..before
    })))
}

/// [`Store::pin_and_pass_validation`] inside the caller's transaction (`documents` and `plan`
/// are the pin's as JSON text).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pin_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    request_id: i64,
    job_id: Option<i64>,
    pin: &NewPin,
    documents: &str,
    plan: &str,
    input: &serde_json::Value,
    then: Option<&NewJob>,
) -> StoreResult<(RequestRow, PinRow)> {
    let before = load_request_for_update(tx, request_id).await?;
    if before.state != RequestState::Validating {
        return Err(StoreError::InvalidState {
            id: request_id,
            state: before.state,
            action: "pin the plan".into(),
        });
    }
    let (last,): (Option<i64>,) = tx
        .one(
            "SELECT MAX(round) FROM request_pins WHERE request_id = $1",
            args![request_id],
        )
        .await?;
    let round = last.unwrap_or(0) + 1;
    if last.is_some() {
        supersede_pins(tx, request_id, &format!("replaced by round {round}")).await?;
    }
    let now = now_ms();
    let (pin_id,): (i64,) = tx
        .one(
            "INSERT INTO request_pins (request_id, round, workflow, workflow_version, documents, plan, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING id",
            args![request_id, round, &pin.workflow, pin.workflow_version, documents, plan, now],
        )
        .await?;
    record_step_in_tx(
        tx,
        request_id,
        job_id,
        &pin_summary(&pin.documents),
        Some(input),
        Some(&pin.plan),
        None,
    )
    .await?;
    audit::append(
        tx,
        actor,
        AuditEntry {
            action: "request.pin",
            entity: "request",
            entity_id: request_id.to_string(),
            before: None,
            after: Some(json!({
                "round": round, "pin_id": pin_id, "documents": pin.documents, "plan": pin.plan,
            })),
        },
    );
    // Nothing above changed the request row: `before` is still current.
    let row = transition_from_in_tx(
        tx,
        actor,
        before,
        RequestEvent::ValidationPassed { stages: pin.stages },
        None,
        "request.transition",
    )
    .await?;
    if let Some(job) = then {
        enqueue_one(tx, job).await?;
        tx.notify(JOBS_CHANNEL).await?;
    }
    // The pin as inserted above, without reading it back.
    let pin = PinRow {
        id: pin_id,
        request_id,
        round,
        workflow: pin.workflow.clone(),
        workflow_version: pin.workflow_version,
        documents: pin.documents.clone(),
        plan: pin.plan.clone(),
        status: "active".into(),
        created_at: now,
        superseded_at: None,
        superseded_reason: None,
    };
    Ok((row, pin))
}
