//! Effects: what `update` asks the outside world to do (reads, store commands, theme and key
//! map changes), as data. [`crate::tui::runner`] performs them.

use crate::domain::inert::inert;
use crate::store::api::{AuditFilter, Decision, JobFilter, LogFilter, RequestFilter};

/// Something `update` wants done outside the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read from the store.
    Load(Load),
    /// Run commands in order (one, or a bulk action) and report one `Outcome`.
    Run(Vec<StoreCmd>),
    /// Load a theme by name (`:theme`).
    LoadTheme(String),
    /// Suspend the process (ctrl-z).
    Suspend,
    /// Leave the console.
    Quit,
}

/// Kinds of reads; one of each may be in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadKind {
    /// Overview.
    Overview,
    /// Approvals inbox.
    Approvals,
    /// Requests list.
    Requests,
    /// Request detail.
    Detail,
    /// Queue counts.
    Queues,
    /// Jobs list.
    Jobs,
    /// Log tail.
    Logs,
    /// Workers.
    Workers,
    /// Operators and their keys.
    Operators,
    /// Held mail.
    Quarantine,
    /// Manual steps waiting for a person.
    ManualTasks,
    /// Mailboxes.
    Mailboxes,
    /// Delegations.
    Delegations,
    /// Config heads.
    ConfigHeads,
    /// Versions of one config.
    ConfigVersions,
    /// Audit list.
    Audit,
    /// Audit verification.
    Verify,
}

/// A read.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// `overview()`.
    Overview,
    /// `pending_approvals(operator, text, after, limit)`.
    Approvals {
        /// Text filter.
        text: Option<String>,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `list_requests(filter, after, limit)`.
    Requests {
        /// Filter.
        filter: RequestFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `request_detail(id)`.
    Detail(i64),
    /// `queue_stats()`.
    Queues,
    /// `list_jobs(filter, after, limit)`.
    Jobs {
        /// Filter.
        filter: JobFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `tail_log(after_id, …)`, or `last_log` when `after_id` is `None`.
    Logs {
        /// Last id already shown.
        after_id: Option<i64>,
        /// Filter.
        filter: LogFilter,
        /// Most lines.
        limit: u32,
    },
    /// `workers()`.
    Workers,
    /// `operators()` and `operator_keys()`.
    Operators,
    /// `held_messages(None, 500)`.
    Quarantine,
    /// `manual_tasks(500)`.
    ManualTasks,
    /// `mailbox_states()`.
    Mailboxes,
    /// `delegations(None)`: every delegation ever made.
    Delegations,
    /// `config_heads()`.
    ConfigHeads,
    /// `config_versions(name)`.
    ConfigVersions(String),
    /// `list_audit(filter, after, limit)`.
    Audit {
        /// Filter.
        filter: AuditFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `verify_audit_since(head)`: the rows after a head verified before, or all of them.
    Verify(Option<crate::domain::checkpoint::ChainHead>),
}

impl Load {
    /// The kind, for the one-in-flight rule.
    pub fn kind(&self) -> LoadKind {
        match self {
            Load::Overview => LoadKind::Overview,
            Load::Approvals { .. } => LoadKind::Approvals,
            Load::Requests { .. } => LoadKind::Requests,
            Load::Detail(_) => LoadKind::Detail,
            Load::Queues => LoadKind::Queues,
            Load::Jobs { .. } => LoadKind::Jobs,
            Load::Logs { .. } => LoadKind::Logs,
            Load::Workers => LoadKind::Workers,
            Load::Operators => LoadKind::Operators,
            Load::Quarantine => LoadKind::Quarantine,
            Load::ManualTasks => LoadKind::ManualTasks,
            Load::Mailboxes => LoadKind::Mailboxes,
            Load::Delegations => LoadKind::Delegations,
            Load::ConfigHeads => LoadKind::ConfigHeads,
            Load::ConfigVersions(_) => LoadKind::ConfigVersions,
            Load::Audit { .. } => LoadKind::Audit,
            Load::Verify(_) => LoadKind::Verify,
        }
    }
}

/// A write intent.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreCmd {
    /// Decide an approval stage.
    Decide {
        /// Approval id.
        approval_id: i64,
        /// Its request (for the flash).
        request_id: i64,
        /// Version the operator saw.
        expected_version: i64,
        /// Approve or reject.
        decision: Decision,
        /// Reason (required for rejections).
        reason: Option<String>,
    },
    /// Retry a failed request.
    RetryRequest {
        /// Request id.
        request_id: i64,
    },
    /// Retry the failed step `step` of a failed request.
    RetryStep {
        /// Request id.
        request_id: i64,
        /// Step name.
        step: String,
    },
    /// Skip step `step` with a justification.
    SkipStep {
        /// Request id.
        request_id: i64,
        /// Step name.
        step: String,
        /// Justification.
        reason: String,
    },
    /// Mark the waiting manual step `step` done.
    DoneStep {
        /// Request id.
        request_id: i64,
        /// Step name.
        step: String,
        /// What was done.
        note: Option<String>,
    },
    /// Retry a dead or retrying job.
    RetryJob {
        /// Job id.
        job_id: i64,
    },
    /// Cancel a request.
    CancelRequest {
        /// Request id.
        request_id: i64,
        /// Why.
        reason: Option<String>,
    },
    /// Save a config version.
    SaveConfig {
        /// Document kind.
        kind: String,
        /// Document name.
        name: String,
        /// TOML body (validated).
        body: String,
        /// Why.
        comment: String,
        /// Head version the editor started from.
        expected_version: i64,
    },
    /// Pause or resume a queue.
    SetQueuePaused {
        /// Queue name.
        queue: String,
        /// Pause (true) or resume.
        paused: bool,
    },
    /// Drain a worker.
    DrainWorker {
        /// Worker id.
        worker_id: String,
    },
    /// Release a held message.
    ReleaseMessage {
        /// Message id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Discard a held message.
    DiscardMessage {
        /// Message id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Take a request out of triage with corrected fields.
    ResolveTriage {
        /// Request id.
        request_id: i64,
        /// Version the operator saw.
        expected_version: i64,
        /// The corrections.
        fix: crate::store::TriageFix,
    },
    /// Create a delegation (the store checks who may).
    AddDelegation {
        /// From, to, until, reason.
        new: crate::store::api::NewDelegation,
    },
    /// Revoke a delegation.
    RevokeDelegation {
        /// Delegation id.
        id: i64,
        /// Who delegated (for the flash).
        from: String,
        /// To whom (for the flash).
        to: String,
    },
}

impl StoreCmd {
    /// What the flash says when it worked, e.g. `approved request 12`.
    pub fn success_text(&self) -> String {
        match self {
            StoreCmd::Decide {
                request_id,
                decision: Decision::Approve,
                ..
            } => format!("approved request {request_id}"),
            StoreCmd::Decide {
                request_id, reason, ..
            } => format!(
                "rejected request {request_id}: {}",
                reason.as_deref().unwrap_or("")
            ),
            StoreCmd::RetryRequest { request_id } => {
                format!("retry queued for request {request_id}")
            }
            StoreCmd::RetryJob { job_id } => format!("retry queued for job {job_id}"),
            StoreCmd::CancelRequest { request_id, .. } => format!("cancelled request {request_id}"),
            StoreCmd::SaveConfig { name, .. } => format!("saved {name}"),
            StoreCmd::SetQueuePaused {
                queue,
                paused: true,
            } => format!("paused queue {queue}"),
            StoreCmd::SetQueuePaused {
                queue,
                paused: false,
            } => format!("resumed queue {queue}"),
            StoreCmd::DrainWorker { worker_id } => format!("draining worker {worker_id}"),
            StoreCmd::ResolveTriage { request_id, .. } => {
                format!("request {request_id} sent on with its corrected fields")
            }
            StoreCmd::ReleaseMessage { id, .. } => {
                format!("released held message {id}: it is a request to triage now")
            }
            StoreCmd::DiscardMessage { id, .. } => format!("discarded held message {id}"),
            StoreCmd::RetryStep { request_id, step } => {
                format!("step {step} of request {request_id} will be retried")
            }
            StoreCmd::SkipStep {
                request_id, step, ..
            } => format!("skipped step {step} of request {request_id}"),
            StoreCmd::DoneStep {
                request_id, step, ..
            } => format!(
                "manual step {step} of request {request_id} marked done; a worker verifies it"
            ),
            StoreCmd::AddDelegation { new } => format!(
                "delegation added: {} decides for {}",
                inert(&new.to),
                inert(&new.from)
            ),
            StoreCmd::RevokeDelegation { id, from, to } => {
                format!("delegation {id} ({} → {}) revoked", inert(from), inert(to))
            }
        }
    }

    /// The verb for bulk summaries (`approved 3 of 3`).
    pub fn verb(&self) -> &'static str {
        match self {
            StoreCmd::Decide {
                decision: Decision::Approve,
                ..
            } => "approved",
            StoreCmd::Decide { .. } => "rejected",
            StoreCmd::RetryRequest { .. } | StoreCmd::RetryJob { .. } => "retried",
            StoreCmd::CancelRequest { .. } => "cancelled",
            StoreCmd::SaveConfig { .. } => "saved",
            StoreCmd::SetQueuePaused { paused: true, .. } => "paused",
            StoreCmd::SetQueuePaused { paused: false, .. } => "resumed",
            StoreCmd::DrainWorker { .. } => "drained",
            StoreCmd::ResolveTriage { .. } => "sent on",
            StoreCmd::ReleaseMessage { .. } => "released",
            StoreCmd::DiscardMessage { .. } => "discarded",
            StoreCmd::RetryStep { .. } => "retried",
            StoreCmd::SkipStep { .. } => "skipped",
            StoreCmd::DoneStep { .. } => "marked done",
            StoreCmd::AddDelegation { .. } => "delegated",
            StoreCmd::RevokeDelegation { .. } => "revoked",
        }
    }

    /// What the command acts on, for failure messages (`request 12`).
    pub fn subject(&self) -> String {
        match self {
            StoreCmd::Decide { request_id, .. }
            | StoreCmd::RetryRequest { request_id }
            | StoreCmd::CancelRequest { request_id, .. }
            | StoreCmd::ResolveTriage { request_id, .. } => format!("request {request_id}"),
            StoreCmd::RetryStep { request_id, step }
            | StoreCmd::SkipStep {
                request_id, step, ..
            }
            | StoreCmd::DoneStep {
                request_id, step, ..
            } => format!("step {step} of request {request_id}"),
            StoreCmd::RetryJob { job_id } => format!("job {job_id}"),
            StoreCmd::SaveConfig { name, .. } => format!("config {name}"),
            StoreCmd::SetQueuePaused { queue, .. } => format!("queue {queue}"),
            StoreCmd::DrainWorker { worker_id } => format!("worker {worker_id}"),
            StoreCmd::ReleaseMessage { id, .. } | StoreCmd::DiscardMessage { id, .. } => {
                format!("held message {id}")
            }
            StoreCmd::AddDelegation { new } => {
                format!("delegation {} → {}", inert(&new.from), inert(&new.to))
            }
            StoreCmd::RevokeDelegation { id, .. } => format!("delegation {id}"),
        }
    }
}

/// Rows per page for keyset-paginated lists.
pub const PAGE: u32 = 200;
