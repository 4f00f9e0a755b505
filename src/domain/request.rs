//! The request lifecycle: states, events and the one pure transition function.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a request is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RequestState {
    /// Arrived from intake, not yet understood.
    Received,
    /// Intent and fields extracted.
    Classified,
    /// Being checked against rules and the directory.
    Validating,
    /// Waiting for the approval stage with this zero-based index.
    AwaitingApproval {
        /// Zero-based index of the stage being decided.
        stage: u32,
    },
    /// Approved; provisioning is queued.
    Scheduled,
    /// Provisioning steps are running.
    Provisioning,
    /// Every step succeeded.
    Completed,
    /// An approver rejected it.
    Rejected,
    /// A step failed; retryable.
    Failed,
    /// An operator or the requester withdrew it.
    Cancelled,
    /// The machine could not decide; a person must fix the fields.
    NeedsTriage,
}

/// Something that happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestEvent {
    /// Intake extracted intent and fields with enough confidence.
    Classified,
    /// Extraction was not confident; send to triage.
    NeedsTriage,
    /// A person fixed the fields of a triaged request.
    TriageResolved,
    /// Validation started.
    ValidationStarted,
    /// Validation passed and the workflow has `stages` approval stages.
    ValidationPassed {
        /// How many approval stages the workflow has (0 means none).
        stages: u32,
    },
    /// Validation found a problem a person must look at.
    ValidationFailed,
    /// The current stage approved; `stages` is the workflow's total.
    StageApproved {
        /// How many approval stages the workflow has.
        stages: u32,
    },
    /// The current stage rejected.
    StageRejected,
    /// A worker started provisioning.
    ProvisioningStarted,
    /// Every provisioning step succeeded.
    ProvisioningSucceeded,
    /// A provisioning step failed.
    ProvisioningFailed,
    /// An operator asked for a retry of a failed request.
    Retry,
    /// An operator or requester cancelled.
    Cancel,
}

impl RequestState {
    /// The state name as stored (`awaiting_approval` for every stage).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Classified => "classified",
            Self::Validating => "validating",
            Self::AwaitingApproval { .. } => "awaiting_approval",
            Self::Scheduled => "scheduled",
            Self::Provisioning => "provisioning",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::NeedsTriage => "needs_triage",
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AwaitingApproval { stage } => write!(f, "awaiting_approval({})", stage + 1),
            other => f.write_str(other.name()),
        }
    }
}
