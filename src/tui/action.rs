//! What flows into the app state: input, ticks, store change signals, loaded data and the
//! outcomes of commands. Everything that happens reaches `AppState::update` as an `Action`.

use crossterm::event::KeyEvent;

use crate::store::api::{
    ApprovalRow, AuditRow, AuditVerdict, ConfigVersion, JobRow, LogRow, Millis, OperatorKeyRow,
    OperatorRow, Overview, Page, QueueStats, RequestDetail, RequestRow, WorkerRow,
};
use crate::store::error::StoreError;
use crate::tui::effects::{LoadKind, StoreCmd};
use crate::tui::theme::Theme;

/// One input to `AppState::update`.
// Loaded pages are moved once through a channel; boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// Bracketed paste.
    Paste(String),
    /// The terminal was resized.
    Resize(u16, u16),
    /// The slow clock tick, with the current time.
    Tick(Millis),
    /// Another connection or process committed a change.
    StoreChanged,
    /// A read finished.
    Loaded(Loaded),
    /// Commands finished.
    Outcome(Outcome),
    /// A `:theme` switch was loaded.
    ThemeLoaded(Theme, Vec<String>),
    /// SIGTERM or SIGHUP: leave cleanly.
    Terminate,
}

/// A finished read. Errors are already rendered to text.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// The overview dashboard.
    Overview(Result<Overview, String>),
    /// A page of pending approvals.
    Approvals {
        /// Append to the loaded rows (next page) instead of replacing them.
        append: bool,
        /// The page.
        result: Result<Page<ApprovalRow>, String>,
    },
    /// A page of requests.
    Requests {
        /// Append instead of replace.
        append: bool,
        /// The page.
        result: Result<Page<RequestRow>, String>,
    },
    /// One request's detail.
    Detail {
        /// Request id.
        id: i64,
        /// The detail.
        result: Result<RequestDetail, String>,
    },
    /// Per-queue counts.
    Queues(Result<Vec<QueueStats>, String>),
    /// A page of jobs.
    Jobs {
        /// Append instead of replace.
        append: bool,
        /// The page.
        result: Result<Page<JobRow>, String>,
    },
    /// Log lines.
    Logs {
        /// Replace the tail (a fresh `last_log`) instead of appending.
        reset: bool,
        /// The lines, oldest first.
        result: Result<Vec<LogRow>, String>,
    },
    /// Workers.
    Workers(Result<Vec<WorkerRow>, String>),
    /// Operators and every operator's keys.
    Operators(Result<(Vec<OperatorRow>, Vec<OperatorKeyRow>), String>),
    /// Mailboxes' reading state.
    Mailboxes(Result<Vec<crate::store::mailboxes::MailboxStateRow>, String>),
    /// Held mail, newest first.
    Quarantine(Result<Vec<crate::store::mailboxes::IntakeRecord>, String>),
    /// Manual steps waiting for a person, oldest first.
    ManualTasks(Result<Vec<crate::store::steps::ManualTask>, String>),
    /// Every delegation ever made.
    Delegations(Result<Vec<crate::store::delegation::DelegationRow>, String>),
    /// Heads of every config document.
    ConfigHeads(Result<Vec<ConfigVersion>, String>),
    /// Versions of one document.
    ConfigVersions {
        /// Document name.
        name: String,
        /// Newest first.
        result: Result<Vec<ConfigVersion>, String>,
    },
    /// A page of audit rows.
    Audit {
        /// Append instead of replace.
        append: bool,
        /// The page.
        result: Result<Page<AuditRow>, String>,
    },
    /// The audit chain verdict.
    Verdict(Result<(AuditVerdict, Option<crate::domain::checkpoint::ChainHead>), String>),
}

impl Loaded {
    /// Which load kind finished (so the runner can start the next queued one).
    pub fn kind(&self) -> LoadKind {
        match self {
            Loaded::Overview(_) => LoadKind::Overview,
            Loaded::Approvals { .. } => LoadKind::Approvals,
            Loaded::Requests { .. } => LoadKind::Requests,
            Loaded::Detail { .. } => LoadKind::Detail,
            Loaded::Queues(_) => LoadKind::Queues,
            Loaded::Jobs { .. } => LoadKind::Jobs,
            Loaded::Logs { .. } => LoadKind::Logs,
            Loaded::Workers(_) => LoadKind::Workers,
            Loaded::Operators(_) => LoadKind::Operators,
            Loaded::Quarantine(_) => LoadKind::Quarantine,
            Loaded::ManualTasks(_) => LoadKind::ManualTasks,
            Loaded::Delegations(_) => LoadKind::Delegations,
            Loaded::Mailboxes(_) => LoadKind::Mailboxes,
            Loaded::ConfigHeads(_) => LoadKind::ConfigHeads,
            Loaded::ConfigVersions { .. } => LoadKind::ConfigVersions,
            Loaded::Audit { .. } => LoadKind::Audit,
            Loaded::Verdict(_) => LoadKind::Verify,
        }
    }
}

/// What a successful command returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// The decided approval stage.
    Approval(ApprovalRow),
    /// The changed request.
    Request(RequestRow),
    /// The retried job.
    Job(JobRow),
    /// The saved config version.
    Config(ConfigVersion),
    /// Nothing to show (pause, drain).
    Unit,
}

/// Why a command failed, kept structured so the flash can say "already decided by X at T".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Someone else changed the row first.
    Conflict {
        /// Entity type.
        entity: String,
        /// Entity key.
        id: String,
        /// Who changed it.
        changed_by: String,
        /// When (RFC 3339).
        changed_at: String,
        /// What changed.
        what: String,
    },
    /// The store is read-only.
    ReadOnly,
    /// Anything else, as the store worded it.
    Other(String),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                entity,
                id,
                changed_by,
                changed_at,
                what,
            } => CommandError::Conflict {
                entity: entity.to_string(),
                id,
                changed_by,
                changed_at,
                what,
            },
            StoreError::ReadOnly => CommandError::ReadOnly,
            other => CommandError::Other(other.to_string()),
        }
    }
}

/// The results of one batch of commands (one, or the marked rows of a bulk action).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Each command with its result, in the order run.
    pub results: Vec<(StoreCmd, Result<Done, CommandError>)>,
}
