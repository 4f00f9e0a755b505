//! Requests as the engine moves them: lifecycle transitions, derived fields, approval stages
//! and timeline steps, and the in-transaction helpers the commands share.

use serde_json::json;

use crate::domain::request::{RequestEvent, RequestState};
use crate::store::Store;
use crate::store::api::{Actor, ApprovalRow, ConfigVersion, Millis, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::{apply_event, parse_policy};
use crate::store::rows::{DbApproval, DbConfig, DbRequest, now_ms, state_columns};
use crate::store::watch::CHANGES_CHANNEL;

impl Store {
    /// Usernames held by other live requests that start with `prefix`, so a derived username
    /// gets a numeric suffix instead of colliding. Rejected and cancelled requests free theirs.
    pub async fn usernames_with_prefix(
        &self,
        prefix: &str,
        except_request: i64,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = self
            .read_all(
                "SELECT username FROM requests WHERE username IS NOT NULL \
                 AND substr(username, 1, length($1)) = $1 AND id <> $2 \
                 AND state NOT IN ('rejected', 'cancelled')",
                args![prefix, except_request],
            )
            .await?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    /// Apply a lifecycle event to a request (version bump, audit row, change notification).
    /// `error` is stored as the request's last error when given; a `Retry` or
    /// `TriageResolved` clears it otherwise. A disallowed event answers `InvalidState`.
    pub async fn transition_request(
        &self,
        actor: &Actor,
        id: i64,
        event: RequestEvent,
        error: Option<String>,
    ) -> StoreResult<RequestRow> {
        crate::store::authz::require_system(actor, "move a request through its lifecycle")?;
        let row = write_tx!(self, |tx| {
            transition_in_tx(
                &mut tx,
                actor,
                id,
                event,
                error.clone(),
                "request.transition",
            )
            .await
        })?;
        self.signal_local(false);
        Ok(row)
    }

    /// Apply each `(from, event)` whose `from` is the request's state at that point, in one
    /// transaction (each applied event still gets its own version bump and audit row); a
    /// request in none of the states is returned unchanged. The engine takes a request from
    /// `received` to `validating` this way in one commit instead of two.
    pub async fn transition_chain(
        &self,
        actor: &Actor,
        id: i64,
        steps: &[(RequestState, RequestEvent)],
    ) -> StoreResult<RequestRow> {
        crate::store::authz::require_system(actor, "move a request through its lifecycle")?;
        let row = write_tx!(self, |tx| {
            let row = load_request_for_update(&mut tx, id).await?;
            transition_chain_in_tx(&mut tx, actor, row, steps).await
        })?;
        self.signal_local(false);
        Ok(row)
    }

    /// True when request `request_id` has an approval row for `stage` (cheaper than its
    /// detail when only that is asked).
    pub async fn has_stage(&self, request_id: i64, stage: u32) -> StoreResult<bool> {
        let row: Option<(i64,)> = self
            .read_opt(
                "SELECT id FROM approvals WHERE request_id = $1 AND stage = $2 LIMIT 1",
                args![request_id, i64::from(stage)],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Set the derived username and/or the extracted fields of a request (version bump, audit).
    pub async fn update_request_fields(
        &self,
        actor: &Actor,
        id: i64,
        username: Option<&str>,
        payload: Option<&serde_json::Value>,
    ) -> StoreResult<RequestRow> {
        crate::store::authz::require_system(actor, "update a request's derived fields")?;
        let row = write_tx!(self, |tx| {
            let before = load_request_for_update(&mut tx, id).await?;
            let new_username = username.map(str::to_string).or(before.username.clone());
            let new_payload = payload.cloned().unwrap_or_else(|| before.payload.clone());
            let now = now_ms();
            let n = tx
                .exec(
                    "UPDATE requests SET username = $3, payload = $4, version = version + 1, updated_at = $5, team = $6 WHERE id = $1 AND version = $2",
                    args![id, before.version, new_username.clone(), new_payload.to_string(), now, crate::store::authz::team_of(&new_payload).map(str::to_string)],
                )
                .await?;
            if n == 0 {
                return Err(request_moved(&mut tx, id, before.version).await);
            }
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.update",
                    entity: "request",
                    entity_id: id.to_string(),
                    before: Some(json!({"username": before.username, "payload": before.payload})),
                    after: Some(json!({"username": new_username, "payload": new_payload})),
                },
            );
            tx.notify(CHANGES_CHANNEL).await?;
            load_request(&mut tx, id).await
        })?;
        self.signal_local(false);
        Ok(row)
    }

    /// Open an approval stage for a request (idempotent: an existing stage is returned as is).
    #[allow(clippy::too_many_arguments)]
    pub async fn open_approval(
        &self,
        actor: &Actor,
        request_id: i64,
        stage: u32,
        stage_name: &str,
        policy: &str,
        approvers: &[String],
        escalate_at: Option<Millis>,
    ) -> StoreResult<ApprovalRow> {
        crate::store::authz::require_system(actor, "open an approval stage")?;
        let row = write_tx!(self, |tx| {
            open_approval_in_tx(
                &mut tx,
                actor,
                request_id,
                stage,
                stage_name,
                policy,
                approvers,
                escalate_at,
            )
            .await
        })?;
        self.signal_local(false);
        Ok(row)
    }

    /// Record one step of a request's timeline (a provisioning or validation step and its
    /// input, output or error); answers the step id.
    pub async fn record_step(
        &self,
        request_id: i64,
        job_id: Option<i64>,
        name: &str,
        input: Option<&serde_json::Value>,
        output: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> StoreResult<i64> {
        let id = write_tx!(self, |tx| {
            record_step_in_tx(&mut tx, request_id, job_id, name, input, output, error).await
        })?;
        self.signal_local(false);
        Ok(id)
    }

    /// The newest version of one config document.
    pub async fn config_head(&self, name: &str) -> StoreResult<Option<ConfigVersion>> {
        let row: Option<DbConfig> = self
            .read_opt(
                "SELECT name, kind, version, body, author, comment, created_at FROM configs WHERE name = $1 ORDER BY version DESC LIMIT 1",
                args![name],
            )
            .await?;
        Ok(row.map(ConfigVersion::from))
    }

    /// One request by id (for the engine; the console uses `request_detail`).
    pub async fn request(&self, id: i64) -> StoreResult<RequestRow> {
        let row: Option<DbRequest> = self
            .read_opt(
                concat!(
                    "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at FROM requests r WHERE id = $1 AND ",
                    crate::store::authz::in_scope!("$2")
                ),
                args![id, self.viewer()],
            )
            .await?;
        row.ok_or(StoreError::NotFound {
            entity: "request",
            id: id.to_string(),
        })?
        .into_api()
    }
}

/// One timeline step to record with another change.
#[derive(Debug, Clone, Copy)]
pub struct StepRecord<'a> {
    /// The job recording it.
    pub job_id: Option<i64>,
    /// Step name.
    pub name: &'a str,
    /// What it was given.
    pub input: Option<&'a serde_json::Value>,
    /// What it found.
    pub output: Option<&'a serde_json::Value>,
    /// What went wrong, if anything.
    pub error: Option<&'a str>,
}

/// An approval stage to open.
#[derive(Debug, Clone, Copy)]
pub struct StageOpening<'a> {
    /// The request.
    pub request_id: i64,
    /// Stage index.
    pub stage: u32,
    /// Stage name.
    pub name: &'a str,
    /// Policy (`any`, `all`, `quorum(N)`).
    pub policy: &'a str,
    /// Who may decide.
    pub approvers: &'a [String],
    /// When the first timer fires.
    pub escalate_at: Option<Millis>,
    /// Record earlier approvals of this stage's approvers (the stage's `carry_forward`).
    pub carry_forward: bool,
}

/// Open an approval stage inside `tx` (idempotent per request and stage).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_approval_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    request_id: i64,
    stage: u32,
    stage_name: &str,
    policy: &str,
    approvers: &[String],
    escalate_at: Option<Millis>,
) -> StoreResult<ApprovalRow> {
    lock_request_in_tx(tx, request_id).await?;
    open_approval_locked_in_tx(
        tx,
        actor,
        request_id,
        stage,
        stage_name,
        policy,
        approvers,
        escalate_at,
    )
    .await
}

/// Lock request `request_id` for this transaction (PostgreSQL: `FOR UPDATE`; SQLite's write
/// transaction already serialises), or `NotFound`. Taken before opening a stage so two
/// workers opening the same stage serialise and the second finds the first one's row
/// instead of violating the unique key.
pub(crate) async fn lock_request_in_tx(tx: &mut Tx, request_id: i64) -> StoreResult<()> {
    let sql = tx.pick(
        "SELECT id FROM requests WHERE id = $1",
        "SELECT id FROM requests WHERE id = $1 FOR UPDATE",
    );
    let request: Option<(i64,)> = tx.opt(sql, args![request_id]).await?;
    if request.is_none() {
        return Err(StoreError::NotFound {
            entity: "request",
            id: request_id.to_string(),
        });
    }
    Ok(())
}

/// [`open_approval_in_tx`] for a request this transaction has already loaded for update.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_approval_locked_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    request_id: i64,
    stage: u32,
    stage_name: &str,
    policy: &str,
    approvers: &[String],
    escalate_at: Option<Millis>,
) -> StoreResult<ApprovalRow> {
    // Only the syntax is checked: a stage nobody can satisfy (no eligible approvers, a quorum
    // larger than the pool) still opens, so it shows in admins' inboxes and escalation or an
    // admin override can decide it instead of the request hanging without a stage.
    parse_policy(policy)?;
    let existing: Option<(i64,)> = tx
        .opt(
            "SELECT id FROM approvals WHERE request_id = $1 AND stage = $2",
            args![request_id, stage],
        )
        .await?;
    if let Some((id,)) = existing {
        return load_approval(tx, id).await;
    }
    let now = now_ms();
    let (id,): (i64,) = tx
            .one(
                "INSERT INTO approvals (request_id, stage, stage_name, policy, approvers, status, version, created_at, escalate_at, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 1, $6, $7, $8, $6) RETURNING id",
                args![
                    request_id,
                    stage,
                    stage_name,
                    policy,
                    serde_json::Value::from(approvers.to_vec()).to_string(),
                    now,
                    escalate_at,
                    &actor.user
                ],
            )
            .await?;
    if !approvers.is_empty() {
        // One statement for the stage's approvers, positions in list order.
        tx.exec(
            tx.pick(
                "INSERT INTO approval_approvers (approval_id, position, approver) SELECT $1, key, value FROM json_each($2) ORDER BY key",
                "INSERT INTO approval_approvers (approval_id, position, approver) \
                 SELECT $1, n - 1, name FROM json_array_elements_text($2::json) WITH ORDINALITY AS t(name, n) ORDER BY n",
            ),
            args![id, serde_json::Value::from(approvers.to_vec()).to_string()],
        )
        .await?;
    }
    audit::append(
        tx,
        actor,
        AuditEntry {
            action: "approval.open",
            entity: "approval",
            entity_id: id.to_string(),
            before: None,
            after: Some(json!({
                "request_id": request_id, "stage": stage, "stage_name": stage_name,
                "policy": policy, "approvers": approvers, "escalate_at": escalate_at
            })),
        },
    );
    tx.notify(CHANGES_CHANNEL).await?;
    // Just inserted: it has no decisions yet.
    approval_row(tx, id).await?.into_api(Vec::new())
}

/// Insert one timeline step inside `tx`.
pub(crate) async fn record_step_in_tx(
    tx: &mut Tx,
    request_id: i64,
    job_id: Option<i64>,
    name: &str,
    input: Option<&serde_json::Value>,
    output: Option<&serde_json::Value>,
    error: Option<&str>,
) -> StoreResult<i64> {
    let (id,): (i64,) = tx
        .one(
            "INSERT INTO request_steps (request_id, job_id, name, input, output, error, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            args![
                request_id,
                job_id,
                name,
                input.map(|v| v.to_string()),
                output.map(|v| v.to_string()),
                error,
                now_ms()
            ],
        )
        .await?;
    tx.notify(CHANGES_CHANNEL).await?;
    Ok(id)
}

/// Load a request inside a write transaction, locking its row on PostgreSQL.
pub(crate) async fn load_request_for_update(tx: &mut Tx, id: i64) -> StoreResult<RequestRow> {
    let sql = tx.pick(
        "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at FROM requests WHERE id = $1",
        "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at FROM requests WHERE id = $1 FOR UPDATE",
    );
    let row: Option<DbRequest> = tx.opt(sql, args![id]).await?;
    row.ok_or(StoreError::NotFound {
        entity: "request",
        id: id.to_string(),
    })?
    .into_api()
}

pub(crate) async fn load_request(tx: &mut Tx, id: i64) -> StoreResult<RequestRow> {
    let row: Option<DbRequest> = tx
        .opt(
            "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at FROM requests WHERE id = $1",
            args![id],
        )
        .await?;
    row.ok_or(StoreError::NotFound {
        entity: "request",
        id: id.to_string(),
    })?
    .into_api()
}

/// The Conflict for a request whose version moved under us: who changed it last and when.
pub(crate) async fn request_moved(tx: &mut Tx, id: i64, expected: i64) -> StoreError {
    // The rows this transaction appended are part of the history asked about.
    if let Err(e) = crate::store::audit::flush(tx).await {
        return e;
    }
    let last: Result<Option<(String, i64)>, StoreError> = tx
        .opt(
            "SELECT actor, at FROM audit WHERE entity = 'request' AND entity_id = $1 ORDER BY id DESC LIMIT 1",
            args![id.to_string()],
        )
        .await;
    let current: Result<Option<(i64,)>, StoreError> = tx
        .opt("SELECT version FROM requests WHERE id = $1", args![id])
        .await;
    let (who, at) = last.ok().flatten().unwrap_or(("unknown".into(), 0));
    let now_version = current.ok().flatten().map(|(v,)| v).unwrap_or(expected);
    StoreError::Conflict {
        entity: "request",
        id: id.to_string(),
        changed_by: who,
        changed_at: crate::store::rows::rfc3339(at),
        what: format!("version {expected} is now {now_version}"),
    }
}

/// Apply `event` to request `id` inside `tx`, with version check and one audit row.
pub(crate) async fn transition_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    id: i64,
    event: RequestEvent,
    error: Option<String>,
    action: &str,
) -> StoreResult<RequestRow> {
    let before = load_request_for_update(tx, id).await?;
    transition_from_in_tx(tx, actor, before, event, error, action).await
}

/// [`Store::transition_chain`] for a request this transaction has already loaded for update
/// (`row`, unchanged since): answers the row as the applied events left it.
pub(crate) async fn transition_chain_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    mut row: RequestRow,
    steps: &[(RequestState, RequestEvent)],
) -> StoreResult<RequestRow> {
    for (from, event) in steps {
        if row.state == *from {
            row = transition_from_in_tx(tx, actor, row, *event, None, "request.transition").await?;
        }
    }
    Ok(row)
}

/// [`transition_in_tx`] for a request this transaction has already loaded for update
/// (`before`, unchanged since): answers the row as it now is, without reading it again.
pub(crate) async fn transition_from_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    before: RequestRow,
    event: RequestEvent,
    error: Option<String>,
    action: &str,
) -> StoreResult<RequestRow> {
    let id = before.id;
    let next = apply_event(before.state, event).ok_or_else(|| StoreError::InvalidState {
        id,
        state: before.state,
        action: event_name(event),
    })?;
    let after = set_request_state(tx, &before, next, error).await?;
    audit::append(
        tx,
        actor,
        AuditEntry {
            action,
            entity: "request",
            entity_id: id.to_string(),
            before: Some(
                json!({"state": before.state.to_string(), "version": before.version, "last_error": before.last_error}),
            ),
            after: Some(
                json!({"state": next.to_string(), "event": event_name(event), "version": before.version + 1}),
            ),
        },
    );
    tx.notify(CHANGES_CHANNEL).await?;
    Ok(after)
}

/// Write a new state with the optimistic version check (no audit).
pub(crate) async fn set_request_state(
    tx: &mut Tx,
    before: &RequestRow,
    next: RequestState,
    error: Option<String>,
) -> StoreResult<RequestRow> {
    let (state, stage) = state_columns(next);
    let clears = matches!(next, RequestState::Scheduled | RequestState::Classified)
        && matches!(
            before.state,
            RequestState::Failed | RequestState::NeedsTriage
        );
    let last_error = match error {
        Some(e) => Some(e),
        None if clears => None,
        None => before.last_error.clone(),
    };
    let now = now_ms();
    let n = tx
        .exec(
            "UPDATE requests SET state = $3, stage = $4, last_error = $5, version = version + 1, updated_at = $6 WHERE id = $1 AND version = $2",
            args![before.id, before.version, state, stage, last_error.clone(), now],
        )
        .await?;
    if n == 0 {
        return Err(request_moved(tx, before.id, before.version).await);
    }
    Ok(RequestRow {
        state: next,
        last_error,
        version: before.version + 1,
        updated_at: now,
        ..before.clone()
    })
}

/// Snake-case name of an event for messages and audit rows.
pub(crate) fn event_name(event: RequestEvent) -> String {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Object(m)) => m.keys().next().cloned().unwrap_or_default(),
        _ => format!("{event:?}"),
    }
}

/// Load one approval with its decisions and the request's denormalised fields.
pub(crate) async fn load_approval(tx: &mut Tx, id: i64) -> StoreResult<ApprovalRow> {
    let row = approval_row(tx, id).await?;
    let decisions: Vec<crate::store::rows::DbDecision> = tx
        .all(
            "SELECT approval_id, approver, decision, reason, overridden, decided_at, decided_by, source, carried_from FROM approval_decisions WHERE approval_id = $1 ORDER BY id",
            args![id],
        )
        .await?;
    let decisions = decisions
        .into_iter()
        .map(crate::store::rows::DbDecision::into_api)
        .collect::<StoreResult<Vec<_>>>()?;
    row.into_api(decisions)
}

/// The stored row of approval `id` with its request's name, workflow and requester.
async fn approval_row(tx: &mut Tx, id: i64) -> StoreResult<DbApproval> {
    let row: Option<DbApproval> = tx
        .opt(
            "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
             FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.id = $1",
            args![id],
        )
        .await?;
    row.ok_or(StoreError::NotFound {
        entity: "approval",
        id: id.to_string(),
    })
}
