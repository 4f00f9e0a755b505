//! Creating the requests of one intake batch together: the same checks, rows, jobs and audit
//! entries as `command::insert_request` makes one by one (authorisation per request, the
//! workflow must be a saved workflow, a `request.process` job unless the request goes to
//! triage, one `request.create` audit row per request with the row as stored), written with
//! one statement per table instead of several per request. Each statement binds one JSON
//! array as text and expands it in SQL (`json_each` on SQLite, `json_to_recordset` on
//! PostgreSQL), so values are bound, never formatted into SQL.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::domain::authz::{Action, Target};
use crate::domain::request::RequestState;
use crate::store::api::{Actor, NewJob, NewRequest, RequestRow, StoreResult};
use crate::store::authz::{authorize, team_of};
use crate::store::command::{command_job, invalid, process_job};
use crate::store::db::{Tx, args};
use crate::store::error::StoreError;
use crate::store::queue::QUEUE_DEFAULT;
use crate::store::rows::{DbRequest, now_ms, state_columns};

const INSERT_REQUESTS_SQLITE: &str = "INSERT INTO requests (workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at, team, created_by) \
     SELECT json_extract(value, '$.workflow'), json_extract(value, '$.kind'), json_extract(value, '$.subject_name'), json_extract(value, '$.subject_email'), \
            json_extract(value, '$.username'), json_extract(value, '$.state'), json_extract(value, '$.stage'), json_extract(value, '$.requester'), \
            json_extract(value, '$.source'), json_extract(value, '$.payload'), json_extract(value, '$.last_error'), 1, json_extract(value, '$.at'), \
            json_extract(value, '$.at'), json_extract(value, '$.team'), json_extract(value, '$.created_by') \
     FROM json_each($1) ORDER BY key RETURNING id";
const INSERT_REQUESTS_PG: &str = "INSERT INTO requests (workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at, team, created_by) \
     SELECT workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, 1, at, at, team, created_by \
     FROM json_to_recordset($1::json) AS t(n bigint, workflow text, kind text, subject_name text, subject_email text, username text, state text, stage bigint, requester text, source text, payload text, last_error text, at bigint, team text, created_by text) \
     ORDER BY n RETURNING id";

const INSERT_JOBS_SQLITE: &str = "INSERT INTO jobs (queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, request_id, created_at) \
     SELECT json_extract(value, '$.queue'), json_extract(value, '$.kind'), json_extract(value, '$.payload'), json_extract(value, '$.priority'), 'available', 0, \
            json_extract(value, '$.max_attempts'), json_extract(value, '$.run_at'), json_extract(value, '$.unique_key'), json_extract(value, '$.request_id'), json_extract(value, '$.at') \
     FROM json_each($1) WHERE 1 ORDER BY key \
     ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retrying') DO NOTHING";
const INSERT_JOBS_PG: &str = "INSERT INTO jobs (queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, request_id, created_at) \
     SELECT queue, kind, payload, priority, 'available', 0, max_attempts, run_at, unique_key, request_id, at \
     FROM json_to_recordset($1::json) AS t(n bigint, queue text, kind text, payload text, priority bigint, max_attempts bigint, run_at bigint, unique_key text, request_id bigint, at bigint) \
     ORDER BY n \
     ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retrying') DO NOTHING";

const SELECT_REQUESTS_SQLITE: &str = "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at \
     FROM requests WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id";
const SELECT_REQUESTS_PG: &str = "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at \
     FROM requests WHERE id = ANY($1) ORDER BY id";

/// Requests per `request.process_batch` job.
pub(crate) const PROCESS_BATCH: usize = 100;

/// How the new requests are handed to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcessJobs {
    /// One `request.process` job per request (mail: each message on its own).
    PerRequest,
    /// One `request.process_batch` job per [`PROCESS_BATCH`] requests (a file's rows).
    Batched,
}

/// The jobs that process `ids`.
fn process_jobs(ids: &[i64], how: ProcessJobs) -> Vec<NewJob> {
    match how {
        ProcessJobs::PerRequest => ids.iter().map(|&id| process_job(id)).collect(),
        ProcessJobs::Batched => ids
            .chunks(PROCESS_BATCH)
            .filter_map(|chunk| {
                let (first, last) = (chunk.first()?, chunk.last()?);
                let mut job = command_job(
                    QUEUE_DEFAULT,
                    "request.process_batch",
                    json!({"request_ids": chunk}),
                    format!("process_batch:{first}:{last}"),
                    *first,
                );
                // A batch is no one request's job: it stays out of the request index.
                job.request_id = None;
                Some(job)
            })
            .collect(),
    }
}

/// One request to create: the checked input and, for triage, why.
pub(crate) struct Draft<'a> {
    pub request: &'a NewRequest,
    pub triage: Option<&'a str>,
}

/// Insert `drafts` inside the caller's transaction (each already passed
/// `check_new_request`), as `insert_request` would one by one; answers the new rows in the
/// order of `drafts`.
pub(crate) async fn insert_requests(
    tx: &mut Tx,
    actor: &Actor,
    drafts: &[Draft<'_>],
    jobs: ProcessJobs,
) -> StoreResult<Vec<RequestRow>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let mut workflows: HashMap<&str, Option<String>> = HashMap::new();
    // The answer depends on the workflow and the team only: asked once per pair.
    let mut authorized: HashSet<(&str, Option<&str>)> = HashSet::new();
    for d in drafts {
        let team = team_of(&d.request.payload);
        if authorized.insert((d.request.workflow.as_str(), team)) {
            let target = Target {
                workflow: &d.request.workflow,
                team,
            };
            authorize(tx, actor, Action::CreateRequest, Some(&target)).await?;
        }
        if !workflows.contains_key(d.request.workflow.as_str()) {
            let kind: Option<(String,)> = tx
                .opt(
                    "SELECT kind FROM configs WHERE name = $1 ORDER BY version DESC LIMIT 1",
                    args![&d.request.workflow],
                )
                .await?;
            workflows.insert(&d.request.workflow, kind.map(|(k,)| k));
        }
        match workflows
            .get(d.request.workflow.as_str())
            .and_then(Option::as_deref)
        {
            Some("workflow") => {}
            Some(kind) => {
                return Err(invalid(
                    "workflow",
                    format!(
                        "{:?} is a {kind} document, not a workflow",
                        d.request.workflow
                    ),
                ));
            }
            None => {
                return Err(invalid(
                    "workflow",
                    format!("no workflow named {:?} is saved", d.request.workflow),
                ));
            }
        }
    }
    let now = now_ms();
    let rows: Vec<serde_json::Value> = drafts
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let initial = if d.triage.is_some() {
                RequestState::NeedsTriage
            } else {
                RequestState::Received
            };
            let (state, stage) = state_columns(initial);
            json!({
                "n": n,
                "workflow": d.request.workflow,
                "kind": d.request.kind,
                "subject_name": d.request.subject_name.trim(),
                "subject_email": d.request.subject_email,
                "username": d.request.username,
                "state": state,
                "stage": stage,
                "requester": d.request.requester,
                "source": d.request.source,
                "payload": d.request.payload.to_string(),
                "last_error": d.triage,
                "at": now,
                "team": team_of(&d.request.payload),
                "created_by": actor.user,
            })
        })
        .collect();
    let mut ids: Vec<(i64,)> = tx
        .all(
            tx.pick(INSERT_REQUESTS_SQLITE, INSERT_REQUESTS_PG),
            args![serde_json::Value::Array(rows).to_string()],
        )
        .await?;
    if ids.len() != drafts.len() {
        return Err(StoreError::Corrupt(format!(
            "{} requests inserted for {} drafts",
            ids.len(),
            drafts.len()
        )));
    }
    // Ids are assigned in insertion order: ascending ids are the drafts' order.
    ids.sort_unstable();
    let ids: Vec<i64> = ids.into_iter().map(|(id,)| id).collect();
    let to_process: Vec<i64> = drafts
        .iter()
        .zip(&ids)
        .filter(|(d, _)| d.triage.is_none())
        .map(|(_, id)| *id)
        .collect();
    let jobs: Vec<serde_json::Value> = process_jobs(&to_process, jobs)
        .into_iter()
        .enumerate()
        .map(|(n, job)| {
            json!({
                "n": n,
                "queue": job.queue,
                "kind": job.kind,
                "payload": job.payload.to_string(),
                "priority": job.priority,
                "max_attempts": job.max_attempts,
                "run_at": job.run_at,
                "unique_key": job.unique_key,
                "request_id": job.request_id,
                "at": now,
            })
        })
        .collect();
    if !jobs.is_empty() {
        tx.exec(
            tx.pick(INSERT_JOBS_SQLITE, INSERT_JOBS_PG),
            args![serde_json::Value::Array(jobs).to_string()],
        )
        .await?;
    }
    let stored: Vec<DbRequest> = tx
        .all(
            tx.pick(SELECT_REQUESTS_SQLITE, SELECT_REQUESTS_PG),
            args![ids.clone()],
        )
        .await?;
    let stored = stored
        .into_iter()
        .map(DbRequest::into_api)
        .collect::<StoreResult<Vec<RequestRow>>>()?;
    append_creates(tx, actor, &stored)?;
    Ok(stored)
}

/// One `request.create` audit row per request, appended to the transaction's audit rows
/// (chained and written in one statement when it commits).
fn append_creates(tx: &mut Tx, actor: &Actor, rows: &[RequestRow]) -> StoreResult<()> {
    let at = now_ms();
    for row in rows {
        let after = serde_json::to_value(row).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        crate::store::audit::append_at(
            tx,
            actor,
            crate::store::audit::AuditEntry {
                action: "request.create",
                entity: "request",
                entity_id: row.id.to_string(),
                before: None,
                after: Some(after),
            },
            at,
        );
    }
    Ok(())
}
