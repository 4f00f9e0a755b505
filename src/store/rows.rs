//! Rows as the database returns them, and their conversion into the API types.

use sqlx::FromRow;

use crate::domain::request::RequestState;
use crate::store::api::{
    ApprovalRow, AuditRow, ConfigVersion, Decision, DecisionRow, JobRow, JobState, LogRow,
    RequestRow, StoreResult, WorkerRow,
};
use crate::store::error::StoreError;

/// Stored name and stage column of a request state.
pub(crate) fn state_columns(state: RequestState) -> (&'static str, Option<i64>) {
    match state {
        RequestState::AwaitingApproval { stage } => ("awaiting_approval", Some(i64::from(stage))),
        other => (other.name(), None),
    }
}

/// Parse a stored state name (and stage) back.
pub(crate) fn parse_state(name: &str, stage: Option<i64>) -> StoreResult<RequestState> {
    Ok(match name {
        "received" => RequestState::Received,
        "classified" => RequestState::Classified,
        "validating" => RequestState::Validating,
        "awaiting_approval" => RequestState::AwaitingApproval {
            stage: u32::try_from(stage.unwrap_or(0)).map_err(|_| {
                StoreError::Corrupt(format!("approval stage {stage:?} out of range"))
            })?,
        },
        "scheduled" => RequestState::Scheduled,
        "provisioning" => RequestState::Provisioning,
        "completed" => RequestState::Completed,
        "rejected" => RequestState::Rejected,
        "failed" => RequestState::Failed,
        "cancelled" => RequestState::Cancelled,
        "needs_triage" => RequestState::NeedsTriage,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown request state {other:?}"
            )));
        }
    })
}

pub(crate) fn parse_json(text: &str, what: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn parse_opt_json(
    text: Option<String>,
    what: &str,
) -> StoreResult<Option<serde_json::Value>> {
    text.map(|t| parse_json(&t, what)).transpose()
}

#[derive(Debug, FromRow)]
pub(crate) struct DbRequest {
    pub id: i64,
    pub workflow: String,
    pub kind: String,
    pub subject_name: String,
    pub subject_email: Option<String>,
    pub username: Option<String>,
    pub state: String,
    pub stage: Option<i64>,
    pub requester: String,
    pub source: String,
    pub payload: String,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl DbRequest {
    pub(crate) fn into_api(self) -> StoreResult<RequestRow> {
        Ok(RequestRow {
            state: parse_state(&self.state, self.stage)?,
            payload: parse_json(&self.payload, "request payload")?,
            id: self.id,
            workflow: self.workflow,
            kind: self.kind,
            subject_name: self.subject_name,
            subject_email: self.subject_email,
            username: self.username,
            requester: self.requester,
            source: self.source,
            last_error: self.last_error,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbApproval {
    pub id: i64,
    pub request_id: i64,
    pub stage: i64,
    pub stage_name: String,
    pub policy: String,
    pub approvers: String,
    pub status: String,
    pub version: i64,
    pub created_at: i64,
    pub escalate_at: Option<i64>,
    pub updated_by: String,
    pub updated_at: i64,
    pub subject_name: String,
    pub workflow: String,
    pub requester: String,
}

impl DbApproval {
    pub(crate) fn approver_list(&self) -> StoreResult<Vec<String>> {
        serde_json::from_str(&self.approvers)
            .map_err(|e| StoreError::Corrupt(format!("approvers of approval {}: {e}", self.id)))
    }

    pub(crate) fn into_api(self, decisions: Vec<DecisionRow>) -> StoreResult<ApprovalRow> {
        Ok(ApprovalRow {
            approvers: self.approver_list()?,
            stage: u32::try_from(self.stage)
                .map_err(|_| StoreError::Corrupt(format!("approval {} stage", self.id)))?,
            id: self.id,
            request_id: self.request_id,
            stage_name: self.stage_name,
            policy: self.policy,
            decisions,
            status: self.status,
            version: self.version,
            created_at: self.created_at,
            escalate_at: self.escalate_at,
            subject_name: self.subject_name,
            workflow: self.workflow,
            requester: self.requester,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbDecision {
    pub approval_id: i64,
    pub approver: String,
    pub decision: String,
    pub reason: Option<String>,
    pub overridden: i64,
    pub decided_at: i64,
    pub decided_by: Option<String>,
    pub source: Option<String>,
    pub carried_from: Option<i64>,
}

impl DbDecision {
    pub(crate) fn into_api(self) -> StoreResult<DecisionRow> {
        Ok(DecisionRow {
            decision: match self.decision.as_str() {
                "approve" => Decision::Approve,
                "reject" => Decision::Reject,
                other => return Err(StoreError::Corrupt(format!("unknown decision {other:?}"))),
            },
            approver: self.approver,
            reason: self.reason,
            decided_at: self.decided_at,
            overridden: self.overridden != 0,
            decided_by: self.decided_by,
            source: self.source,
            carried_from: self
                .carried_from
                .map(|stage| {
                    u32::try_from(stage).map_err(|_| {
                        StoreError::Corrupt(format!("decision carried from stage {stage}"))
                    })
                })
                .transpose()?,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbJob {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub priority: i64,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub unique_key: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub request_id: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

pub(crate) fn parse_job_state(s: &str) -> StoreResult<JobState> {
    Ok(match s {
        "available" => JobState::Available,
        "running" => JobState::Running,
        "retrying" => JobState::Retrying,
        "completed" => JobState::Completed,
        "dead" => JobState::Dead,
        "cancelled" => JobState::Cancelled,
        other => return Err(StoreError::Corrupt(format!("unknown job state {other:?}"))),
    })
}

fn to_i32(v: i64, what: &str) -> StoreResult<i32> {
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

impl DbJob {
    pub(crate) fn into_api(self) -> StoreResult<JobRow> {
        Ok(JobRow {
            payload: parse_json(&self.payload, "job payload")?,
            state: parse_job_state(&self.state)?,
            priority: to_i32(self.priority, "job priority")?,
            attempts: to_i32(self.attempts, "job attempts")?,
            max_attempts: to_i32(self.max_attempts, "job max_attempts")?,
            id: self.id,
            queue: self.queue,
            kind: self.kind,
            run_at: self.run_at,
            unique_key: self.unique_key,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            last_error: self.last_error,
            request_id: self.request_id,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

pub(crate) fn jobs_into_api(rows: Vec<DbJob>) -> StoreResult<Vec<JobRow>> {
    rows.into_iter().map(DbJob::into_api).collect()
}

#[derive(Debug, FromRow)]
pub(crate) struct DbWorker {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub current_job: Option<i64>,
    pub processed: i64,
    pub failed: i64,
    pub concurrency: i64,
    pub status: String,
}

impl From<DbWorker> for WorkerRow {
    fn from(w: DbWorker) -> Self {
        WorkerRow {
            id: w.id,
            host: w.host,
            pid: w.pid,
            started_at: w.started_at,
            heartbeat_at: w.heartbeat_at,
            current_job: w.current_job,
            processed: w.processed,
            failed: w.failed,
            concurrency: w.concurrency,
            status: w.status,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbLog {
    pub id: i64,
    pub at: i64,
    pub level: String,
    pub target: String,
    pub message: String,
    pub request_id: Option<i64>,
    pub job_id: Option<i64>,
    pub worker: Option<String>,
}

impl From<DbLog> for LogRow {
    fn from(l: DbLog) -> Self {
        LogRow {
            id: l.id,
            at: l.at,
            level: l.level,
            target: l.target,
            message: l.message,
            request_id: l.request_id,
            job_id: l.job_id,
            worker: l.worker,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbConfig {
    pub name: String,
    pub kind: String,
    pub version: i64,
    pub body: String,
    pub author: String,
    pub comment: String,
    pub created_at: i64,
}

impl From<DbConfig> for ConfigVersion {
    fn from(c: DbConfig) -> Self {
        ConfigVersion {
            name: c.name,
            kind: c.kind,
            version: c.version,
            body: c.body,
            author: c.author,
            comment: c.comment,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct DbAudit {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl DbAudit {
    pub(crate) fn into_api(self) -> StoreResult<AuditRow> {
        Ok(AuditRow {
            before: parse_opt_json(self.before, "audit before")?,
            after: parse_opt_json(self.after, "audit after")?,
            id: self.id,
            at: self.at,
            actor: self.actor,
            source: self.source,
            action: self.action,
            entity: self.entity,
            entity_id: self.entity_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Level name → number for the log filter (`ERROR` = 1 … `TRACE` = 5).
pub(crate) fn level_no(level: &str) -> i64 {
    match level.to_ascii_uppercase().as_str() {
        "ERROR" => 1,
        "WARN" | "WARNING" => 2,
        "INFO" => 3,
        "DEBUG" => 4,
        _ => 5,
    }
}

/// How far [`shift_clock`] moved this process's store clock, in milliseconds.
static CLOCK_SHIFT_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Current time in Unix milliseconds, as the store sees it (the wall clock plus any
/// [`shift_clock`]).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now()
        .timestamp_millis()
        .saturating_add(CLOCK_SHIFT_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Moves this process's store clock forward by `by_ms` (cumulative): every timestamp, lease
/// and `run_at` comparison of every store in the process follows. A controllable clock for
/// tests that must see a date arrive (a welcome mail on the start date); nothing in the product
/// calls it, and nothing outside Rust code (no option, no environment variable) can.
pub fn shift_clock(by_ms: i64) {
    CLOCK_SHIFT_MS.fetch_add(by_ms, std::sync::atomic::Ordering::Relaxed);
}

/// Unix milliseconds as RFC 3339 UTC (for messages).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Escape `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern and wrap it as a substring match,
/// lower-cased (callers compare against `LOWER(column)`).
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
