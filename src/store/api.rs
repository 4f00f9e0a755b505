//! The store's contract: the read model the console and CLI show, and the commands they send.
//!
//! Every backend (SQLite, PostgreSQL) implements these traits with identical behaviour; the
//! conformance suite in `tests/store_conformance.rs` is the definition of "identical".
//! Timestamps are Unix milliseconds (UTC) everywhere, so both backends store them alike.

use serde::{Deserialize, Serialize};

use crate::domain::request::RequestState;
use crate::store::error::StoreError;

mod command_api;
mod read_api;

pub use command_api::CommandApi;
pub use read_api::ReadApi;

/// Result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Which kind of caller an [`Actor`] is: a person with a role in the operators table, or a
/// part of the engine. Only engine code builds system actors ([`Actor::system`]); the CLI, the
/// console and the SSH endpoint build operators from an identity the caller cannot set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person: every command checks their role and scopes in the operators table.
    #[default]
    Operator,
    /// The engine (workers, scheduler, intake, demo generator): never an operator.
    System,
}

/// Who did something, and from where: recorded on every audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Operator login (from the uid or the SSH key), or `system:<component>` for the engine.
    pub user: String,
    /// Where the actor came from: `cli`, `tui`, `ssh-key:<fingerprint>@<addr>`, `worker:<id>`.
    pub source: String,
    /// Operator or system.
    #[serde(default)]
    pub kind: ActorKind,
}

impl Actor {
    /// A person acting through the CLI, the console or the SSH endpoint.
    pub fn operator(user: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            source: source.into(),
            kind: ActorKind::Operator,
        }
    }

    /// A part of the engine; its name is recorded as `system:<component>`.
    pub fn system(component: &str, source: impl Into<String>) -> Self {
        Self {
            user: format!("system:{component}"),
            source: source.into(),
            kind: ActorKind::System,
        }
    }

    /// True for engine actors.
    pub fn is_system(&self) -> bool {
        self.kind == ActorKind::System
    }
}

/// A request as listed and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    /// Primary key.
    pub id: i64,
    /// Workflow name (a config document of kind `workflow`).
    pub workflow: String,
    /// `joiner`, `mover` or `leaver`.
    pub kind: String,
    /// Full name of the person the request is about.
    pub subject_name: String,
    /// E-mail of that person, if known.
    pub subject_email: Option<String>,
    /// Derived or given account name.
    pub username: Option<String>,
    /// Lifecycle state.
    pub state: RequestState,
    /// Who asked (an e-mail address or login).
    pub requester: String,
    /// Intake source: `email`, `csv`, `cli`, `console`, `demo`.
    pub source: String,
    /// Free-form JSON with the extracted fields (team, start date, access …).
    pub payload: serde_json::Value,
    /// Last error, shown for `failed` and `needs_triage`.
    pub last_error: Option<String>,
    /// Optimistic-lock version; bumped on every change.
    pub version: i64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change time.
    pub updated_at: Millis,
}

/// Input for creating a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRequest {
    /// Workflow to run (must exist as a saved config document).
    pub workflow: String,
    /// `joiner`, `mover` or `leaver`.
    pub kind: String,
    /// Full name of the person.
    pub subject_name: String,
    /// E-mail of the person.
    pub subject_email: Option<String>,
    /// Account name; derived from the name when `None`.
    pub username: Option<String>,
    /// Who asked.
    pub requester: String,
    /// Intake source.
    pub source: String,
    /// Extracted fields.
    pub payload: serde_json::Value,
}

/// Filter for request lists; every field narrows, `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFilter {
    /// Only this state name (`awaiting_approval` matches every stage).
    pub state: Option<String>,
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Case-insensitive substring of subject name, e-mail, username or requester.
    pub text: Option<String>,
}

/// One page of a keyset-paginated list, newest first unless stated otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub rows: Vec<T>,
    /// Cursor for the next page (pass as `after`), `None` at the end.
    pub next: Option<i64>,
}

/// How a stage decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Approve.
    Approve,
    /// Reject (a reason is required).
    Reject,
}

/// A pending or decided approval: one row per request stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRow {
    /// Primary key.
    pub id: i64,
    /// The request this stage belongs to.
    pub request_id: i64,
    /// Zero-based stage index.
    pub stage: u32,
    /// Stage name from the workflow.
    pub stage_name: String,
    /// Policy as written in the workflow: `any`, `all`, `quorum(2)`.
    pub policy: String,
    /// Login names allowed to decide this stage.
    pub approvers: Vec<String>,
    /// Decisions taken so far.
    pub decisions: Vec<DecisionRow>,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Optimistic-lock version.
    pub version: i64,
    /// When the stage opened.
    pub created_at: Millis,
    /// When a reminder or escalation is due, if the workflow sets one.
    pub escalate_at: Option<Millis>,
    /// Denormalised for the inbox: the request's subject, workflow and requester.
    pub subject_name: String,
    /// Workflow name.
    pub workflow: String,
    /// Who asked.
    pub requester: String,
}

/// One approver's decision on a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    /// Who decided.
    pub approver: String,
    /// What.
    pub decision: Decision,
    /// Why (required for rejections).
    pub reason: Option<String>,
    /// When.
    pub decided_at: Millis,
    /// True when an admin decided on someone else's behalf.
    pub overridden: bool,
    /// Who decided when it was a delegate acting for `approver` (`None`: `approver` did).
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Where the decision came from (`tui`, `cli`, `mail:<message-id>` for a reply, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// The earlier stage index this approval was carried forward from (`None`: decided here).
    #[serde(default)]
    pub carried_from: Option<u32>,
}

impl DecisionRow {
    /// " (carried forward from stage N)" for a carried approval (1-based), else nothing.
    pub fn carried_note(&self) -> String {
        self.carried_from
            .map(|stage| format!(" (carried forward from stage {})", stage + 1))
            .unwrap_or_default()
    }
}

/// One entry in a request's timeline: state changes, steps, log lines and audit rows merged by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at: Millis,
    /// `state`, `step`, `approval`, `log`, `audit`, `evidence`.
    pub kind: String,
    /// One-line summary.
    pub summary: String,
    /// Structured detail (inputs, outputs, error, before/after).
    pub detail: serde_json::Value,
}

/// Everything the console shows about one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDetail {
    /// The request.
    pub request: RequestRow,
    /// Its approval stages, in order.
    pub approvals: Vec<ApprovalRow>,
    /// Its jobs, newest first.
    pub jobs: Vec<JobRow>,
    /// Merged timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The e-mail the request was read from, with the evidence behind its verdict.
    #[serde(default)]
    pub intake: Option<Box<crate::store::mailboxes::IntakeRecord>>,
}

/// Job lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Ready to run at `run_at`.
    Available,
    /// Leased by a worker.
    Running,
    /// Failed, waiting for its backoff to run again.
    Retrying,
    /// Done.
    Completed,
    /// Out of attempts.
    Dead,
    /// Cancelled by an operator.
    Cancelled,
}

impl JobState {
    /// Stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Running => "running",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Queue name (`default`, `provision`, `notify`, `maintenance` …).
    pub queue: String,
    /// Handler name.
    pub kind: String,
    /// Handler input.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i32,
    /// Not before this time.
    pub run_at: Millis,
    /// Attempts before the job is dead.
    pub max_attempts: i32,
    /// When set, a second enqueue with the same key while the first is not finished is a no-op.
    pub unique_key: Option<String>,
    /// The request this job works for, if any.
    pub request_id: Option<i64>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    /// Primary key.
    pub id: i64,
    /// Queue name.
    pub queue: String,
    /// Handler name.
    pub kind: String,
    /// Handler input.
    pub payload: serde_json::Value,
    /// Higher runs first.
    pub priority: i32,
    /// Lifecycle state.
    pub state: JobState,
    /// Attempts made so far (incremented at claim).
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Earliest start.
    pub run_at: Millis,
    /// Unique key, if any.
    pub unique_key: Option<String>,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// When the lease runs out.
    pub lease_expires_at: Option<Millis>,
    /// Last error message.
    pub last_error: Option<String>,
    /// Request this job works for.
    pub request_id: Option<i64>,
    /// Enqueue time.
    pub created_at: Millis,
    /// When the current (or last) attempt started.
    pub started_at: Option<Millis>,
    /// When it finished.
    pub finished_at: Option<Millis>,
}

/// Filter for job lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<JobState>,
    /// Only jobs of this request.
    pub request_id: Option<i64>,
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailOutcome {
    /// Run again at this time.
    RetryAt(Millis),
    /// No more attempts.
    Dead,
}

/// Per-queue counts for the queues view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Queue name.
    pub queue: String,
    /// Available and due.
    pub ready: i64,
    /// Available but scheduled for later.
    pub scheduled: i64,
    /// Leased.
    pub running: i64,
    /// Waiting for backoff.
    pub retrying: i64,
    /// Out of attempts.
    pub dead: i64,
    /// Completed (all time).
    pub completed: i64,
    /// Paused queues are not claimed from.
    pub paused: bool,
}

/// The overview dashboard in one read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// Request counts per state name.
    pub requests_by_state: Vec<(String, i64)>,
    /// Request counts per (workflow, state name).
    pub requests_by_workflow: Vec<(String, String, i64)>,
    /// Per-queue job counts.
    pub queues: Vec<QueueStats>,
    /// Jobs completed per minute over the last 60 minutes, oldest first (60 entries).
    pub completed_per_minute: Vec<u64>,
    /// Jobs failed per minute over the last 60 minutes, oldest first (60 entries).
    pub failed_per_minute: Vec<u64>,
    /// Oldest pending approval: (approval id, request id, opened at).
    pub oldest_pending_approval: Option<(i64, i64, Millis)>,
    /// Pending approvals in all.
    pub pending_approvals: i64,
    /// Workers with a heartbeat in the last 30 s.
    pub workers_alive: i64,
    /// Registered workers whose heartbeat is older.
    pub workers_stale: i64,
    /// Failed attempts / all finished attempts over the last hour (0.0–1.0).
    pub failure_rate: f64,
    /// When this overview was read.
    pub read_at: Millis,
}

/// A registered worker process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// `host:pid:random`.
    pub id: String,
    /// Host name.
    pub host: String,
    /// OS process id.
    pub pid: i64,
    /// Start time.
    pub started_at: Millis,
    /// Last heartbeat.
    pub heartbeat_at: Millis,
    /// Job being run (one of them, when several).
    pub current_job: Option<i64>,
    /// Jobs completed.
    pub processed: i64,
    /// Jobs failed.
    pub failed: i64,
    /// Concurrency.
    pub concurrency: i64,
    /// `running`, `draining`, `stopped`.
    pub status: String,
}

/// One line of the execution log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Monotonic id, the tail cursor.
    pub id: i64,
    /// When.
    pub at: Millis,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`.
    pub level: String,
    /// tracing target.
    pub target: String,
    /// Rendered message with fields.
    pub message: String,
    /// Request id, when the event carried one.
    pub request_id: Option<i64>,
    /// Job id, when the event carried one.
    pub job_id: Option<i64>,
    /// Worker id, when the event came from a worker.
    pub worker: Option<String>,
}

/// A log line to persist (the id is assigned by the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLog {
    /// When.
    pub at: Millis,
    /// Level name.
    pub level: String,
    /// tracing target.
    pub target: String,
    /// Message with fields.
    pub message: String,
    /// Request id.
    pub request_id: Option<i64>,
    /// Job id.
    pub job_id: Option<i64>,
    /// Worker id.
    pub worker: Option<String>,
}

/// Filter for the log tail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Minimum level (`ERROR` < `WARN` < `INFO` < `DEBUG` < `TRACE`).
    pub min_level: Option<String>,
    /// Only this request.
    pub request_id: Option<i64>,
    /// Only this worker.
    pub worker: Option<String>,
    /// Case-insensitive substring of the message.
    pub text: Option<String>,
}

/// One saved version of a configuration document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// Document name (unique across kinds).
    pub name: String,
    /// `workflow`, `mailbox`, `directory`, `connector`, `role`.
    pub kind: String,
    /// 1, 2, 3 … per name.
    pub version: i64,
    /// The TOML text.
    pub body: String,
    /// Who saved it.
    pub author: String,
    /// Why.
    pub comment: String,
    /// When.
    pub created_at: Millis,
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Position in the chain.
    pub id: i64,
    /// When.
    pub at: Millis,
    /// Who.
    pub actor: String,
    /// From where.
    pub source: String,
    /// What (`request.create`, `approval.decide`, `job.retry`, `config.save` …).
    pub action: String,
    /// Entity type (`request`, `approval`, `job`, `config`, `queue`, `worker`, `operator`).
    pub entity: String,
    /// Entity key.
    pub entity_id: String,
    /// Value before, if any.
    pub before: Option<serde_json::Value>,
    /// Value after, if any.
    pub after: Option<serde_json::Value>,
    /// Hash of the previous row (hex), all zeros for the first.
    pub prev_hash: String,
    /// SHA-256 over prev_hash and this row's canonical content (hex).
    pub hash: String,
}

/// Filter for the audit view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this entity type.
    pub entity: Option<String>,
    /// Only this entity key.
    pub entity_id: Option<String>,
    /// Substring of the action.
    pub action: Option<String>,
}

/// Result of `audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditVerdict {
    /// Every row's hash matches and links to its predecessor.
    Intact {
        /// Rows checked.
        rows: i64,
    },
    /// The first row whose hash or link does not match.
    Broken {
        /// Its id.
        id: i64,
        /// What does not match.
        reason: String,
    },
}

/// An operator of the console, their role and scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRow {
    /// Login name.
    pub name: String,
    /// `viewer`, `approver` or `admin`.
    pub role: String,
    /// `team:NAME` / `workflow:NAME`; empty means every request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// E-mail, so separation of duties knows the operator by it too.
    #[serde(default)]
    pub email: Option<String>,
}

/// An operator's SSH public key, as `gatehouse serve` matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorKeyRow {
    /// `SHA256:…`, as `ssh-keygen -l` prints it; the key's identity.
    pub fingerprint: String,
    /// The operator the key logs in as.
    pub operator: String,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` …
    pub algorithm: String,
    /// The comment of the `.pub` line, if any.
    pub comment: Option<String>,
    /// When it was added.
    pub added_at: Millis,
    /// Who added it.
    pub added_by: String,
    /// When it last opened a session (`None`: never).
    pub last_used_at: Option<Millis>,
    /// The peer address of that session.
    pub last_used_from: Option<String>,
}

/// A change the store signals so consoles refresh (LISTEN/NOTIFY or `data_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSignal;

/// A delegation to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDelegation {
    /// Who delegates (an approver).
    pub from: String,
    /// Who decides in their place (an approver).
    pub to: String,
    /// End (epoch ms, exclusive).
    pub until: Millis,
    /// Why (optional).
    pub reason: Option<String>,
}
