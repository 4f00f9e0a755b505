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
    /// A configuration document the approvals were pinned to changed before provisioning:
    /// the approvals are superseded and the request is validated, planned and approved again.
    ConfigChanged,
}

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Someone new gets accounts and access.
    Joiner,
    /// Someone changes team or role: access is the difference of two role bundles.
    Mover,
    /// Someone leaves: access is revoked or disabled.
    Leaver,
}

impl RequestKind {
    /// `joiner`, `mover` or `leaver`, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Joiner => "joiner",
            Self::Mover => "mover",
            Self::Leaver => "leaver",
        }
    }

    /// Parses the stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "joiner" => Some(Self::Joiner),
            "mover" => Some(Self::Mover),
            "leaver" => Some(Self::Leaver),
            _ => None,
        }
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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

impl RequestState {
    /// True for states no event leaves: completed, rejected, cancelled. `failed` is not terminal
    /// because it can be retried or cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Rejected | Self::Cancelled)
    }

    /// Rebuilds a state from its stored name and stage column (zero-based, only for
    /// `awaiting_approval`).
    pub fn from_stored(name: &str, stage: Option<i64>) -> Result<Self, StoredStateError> {
        let simple = match name {
            "received" => Self::Received,
            "classified" => Self::Classified,
            "validating" => Self::Validating,
            "scheduled" => Self::Scheduled,
            "provisioning" => Self::Provisioning,
            "completed" => Self::Completed,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "needs_triage" => Self::NeedsTriage,
            "awaiting_approval" => {
                let stage = stage.ok_or(StoredStateError::MissingStage)?;
                let stage =
                    u32::try_from(stage).map_err(|_| StoredStateError::InvalidStage { stage })?;
                return Ok(Self::AwaitingApproval { stage });
            }
            other => {
                return Err(StoredStateError::UnknownState {
                    name: other.to_string(),
                });
            }
        };
        match stage {
            None => Ok(simple),
            Some(stage) => Err(StoredStateError::UnexpectedStage {
                name: simple.name(),
                stage,
            }),
        }
    }

    /// The stage column to store with this state (`Some` only for `awaiting_approval`).
    pub fn stored_stage(&self) -> Option<i64> {
        match self {
            Self::AwaitingApproval { stage } => Some(i64::from(*stage)),
            _ => None,
        }
    }
}

impl RequestEvent {
    /// The event's name for messages and logs (`validation_passed`, `stage_approved`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Classified => "classified",
            Self::NeedsTriage => "needs_triage",
            Self::TriageResolved => "triage_resolved",
            Self::ValidationStarted => "validation_started",
            Self::ValidationPassed { .. } => "validation_passed",
            Self::ValidationFailed => "validation_failed",
            Self::StageApproved { .. } => "stage_approved",
            Self::StageRejected => "stage_rejected",
            Self::ProvisioningStarted => "provisioning_started",
            Self::ProvisioningSucceeded => "provisioning_succeeded",
            Self::ProvisioningFailed => "provisioning_failed",
            Self::Retry => "retry",
            Self::Cancel => "cancel",
            Self::ConfigChanged => "config_changed",
        }
    }
}

impl fmt::Display for RequestEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValidationPassed { stages } | Self::StageApproved { stages } => {
                write!(f, "{}(stages={stages})", self.name())
            }
            other => f.write_str(other.name()),
        }
    }
}

/// An event that does not apply to the request's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The lifecycle has no transition for this pair.
    #[error("event {event} is not allowed in state {state}")]
    NotAllowed {
        /// The current state.
        state: RequestState,
        /// The event that was refused.
        event: RequestEvent,
    },
    /// A stage decision names a workflow with fewer stages than the request is waiting on.
    #[error("state {state} is beyond the workflow's {stages} approval stage(s)")]
    StageOutOfRange {
        /// The current state.
        state: RequestState,
        /// The stage count the event carried.
        stages: u32,
    },
}

/// A stored state name or stage column that does not describe a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoredStateError {
    /// The name is not a state.
    #[error("unknown request state \"{name}\"")]
    UnknownState {
        /// The stored name.
        name: String,
    },
    /// `awaiting_approval` without a stage.
    #[error("state awaiting_approval has no stage")]
    MissingStage,
    /// A negative or too large stage.
    #[error("invalid approval stage {stage}")]
    InvalidStage {
        /// The stored stage.
        stage: i64,
    },
    /// A stage stored with a state that has none.
    #[error("state {name} cannot have a stage (found {stage})")]
    UnexpectedStage {
        /// The state name.
        name: &'static str,
        /// The stored stage.
        stage: i64,
    },
}

/// Applies `event` to `state`: the whole request lifecycle in one pure function.
///
/// Allowed transitions:
/// - received --classified--> classified; received/classified/validating --needs_triage--> needs_triage
/// - classified --validation_started--> validating
/// - validating --validation_passed(0)--> scheduled; --validation_passed(n>0)--> awaiting_approval(stage 0)
/// - validating --validation_failed--> needs_triage (a person must look at it)
/// - needs_triage --triage_resolved--> classified
/// - awaiting_approval(s) --stage_approved(n)--> awaiting_approval(s+1) while s+1 < n, else scheduled
/// - awaiting_approval --stage_rejected--> rejected
/// - scheduled --provisioning_started--> provisioning
/// - provisioning --provisioning_succeeded--> completed; --provisioning_failed--> failed
/// - failed --retry--> scheduled
/// - awaiting_approval/scheduled --config_changed--> validating (approved configuration moved:
///   validate, plan, pin and approve again)
/// - every non-terminal state --cancel--> cancelled
pub fn transition(
    state: RequestState,
    event: RequestEvent,
) -> Result<RequestState, TransitionError> {
    use RequestEvent as E;
    use RequestState as S;
    let next = match (state, event) {
        (S::Received, E::Classified) => S::Classified,
        (S::Received | S::Classified | S::Validating, E::NeedsTriage) => S::NeedsTriage,
        (S::Classified, E::ValidationStarted) => S::Validating,
        (S::Validating, E::ValidationPassed { stages: 0 }) => S::Scheduled,
        (S::Validating, E::ValidationPassed { .. }) => S::AwaitingApproval { stage: 0 },
        (S::Validating, E::ValidationFailed) => S::NeedsTriage,
        (S::NeedsTriage, E::TriageResolved) => S::Classified,
        (S::AwaitingApproval { stage }, E::StageApproved { stages }) => {
            if stage >= stages {
                return Err(TransitionError::StageOutOfRange { state, stages });
            }
            // stage < stages <= u32::MAX, so stage + 1 cannot overflow.
            if stage + 1 < stages {
                S::AwaitingApproval { stage: stage + 1 }
            } else {
                S::Scheduled
            }
        }
        (S::AwaitingApproval { .. }, E::StageRejected) => S::Rejected,
        (S::Scheduled, E::ProvisioningStarted) => S::Provisioning,
        (S::Provisioning, E::ProvisioningSucceeded) => S::Completed,
        (S::Provisioning, E::ProvisioningFailed) => S::Failed,
        (S::Failed, E::Retry) => S::Scheduled,
        (S::AwaitingApproval { .. } | S::Scheduled, E::ConfigChanged) => S::Validating,
        (current, E::Cancel) if !current.is_terminal() => S::Cancelled,
        _ => return Err(TransitionError::NotAllowed { state, event }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestEvent as E;
    use RequestState as S;

    fn all_states() -> Vec<RequestState> {
        vec![
            S::Received,
            S::Classified,
            S::Validating,
            S::AwaitingApproval { stage: 0 },
            S::AwaitingApproval { stage: 1 },
            S::AwaitingApproval { stage: 2 },
            S::Scheduled,
            S::Provisioning,
            S::Completed,
            S::Rejected,
            S::Failed,
            S::Cancelled,
            S::NeedsTriage,
        ]
    }

    fn all_events() -> Vec<RequestEvent> {
        vec![
            E::Classified,
            E::NeedsTriage,
            E::TriageResolved,
            E::ValidationStarted,
            E::ValidationPassed { stages: 0 },
            E::ValidationPassed { stages: 1 },
            E::ValidationPassed { stages: 3 },
            E::ValidationFailed,
            E::StageApproved { stages: 0 },
            E::StageApproved { stages: 1 },
            E::StageApproved { stages: 2 },
            E::StageApproved { stages: 3 },
            E::StageRejected,
            E::ProvisioningStarted,
            E::ProvisioningSucceeded,
            E::ProvisioningFailed,
            E::Retry,
            E::Cancel,
            E::ConfigChanged,
        ]
    }

    /// The expected table, written independently of `transition`: every allowed pair and its
    /// target. Every pair not listed must be refused.
    fn expected(state: RequestState, event: RequestEvent) -> Option<RequestState> {
        let allowed: &[(RequestState, RequestEvent, RequestState)] = &[
            (S::Received, E::Classified, S::Classified),
            (S::Received, E::NeedsTriage, S::NeedsTriage),
            (S::Classified, E::NeedsTriage, S::NeedsTriage),
            (S::Validating, E::NeedsTriage, S::NeedsTriage),
            (S::Classified, E::ValidationStarted, S::Validating),
            (
                S::Validating,
                E::ValidationPassed { stages: 0 },
                S::Scheduled,
            ),
            (
                S::Validating,
                E::ValidationPassed { stages: 1 },
                S::AwaitingApproval { stage: 0 },
            ),
            (
                S::Validating,
                E::ValidationPassed { stages: 3 },
                S::AwaitingApproval { stage: 0 },
            ),
            (S::Validating, E::ValidationFailed, S::NeedsTriage),
            (S::NeedsTriage, E::TriageResolved, S::Classified),
            (
                S::AwaitingApproval { stage: 0 },
                E::StageApproved { stages: 1 },
                S::Scheduled,
            ),
            (
                S::AwaitingApproval { stage: 0 },
                E::StageApproved { stages: 2 },
                S::AwaitingApproval { stage: 1 },
            ),
            (
                S::AwaitingApproval { stage: 0 },
                E::StageApproved { stages: 3 },
                S::AwaitingApproval { stage: 1 },
            ),
            (
                S::AwaitingApproval { stage: 1 },
                E::StageApproved { stages: 2 },
                S::Scheduled,
            ),
            (
                S::AwaitingApproval { stage: 1 },
                E::StageApproved { stages: 3 },
                S::AwaitingApproval { stage: 2 },
            ),
            (
                S::AwaitingApproval { stage: 2 },
                E::StageApproved { stages: 3 },
                S::Scheduled,
            ),
            (
                S::AwaitingApproval { stage: 0 },
                E::StageRejected,
                S::Rejected,
            ),
            (
                S::AwaitingApproval { stage: 1 },
                E::StageRejected,
                S::Rejected,
            ),
            (
                S::AwaitingApproval { stage: 2 },
                E::StageRejected,
                S::Rejected,
            ),
            (S::Scheduled, E::ProvisioningStarted, S::Provisioning),
            (S::Provisioning, E::ProvisioningSucceeded, S::Completed),
            (S::Provisioning, E::ProvisioningFailed, S::Failed),
            (S::Failed, E::Retry, S::Scheduled),
            (
                S::AwaitingApproval { stage: 0 },
                E::ConfigChanged,
                S::Validating,
            ),
            (
                S::AwaitingApproval { stage: 1 },
                E::ConfigChanged,
                S::Validating,
            ),
            (
                S::AwaitingApproval { stage: 2 },
                E::ConfigChanged,
                S::Validating,
            ),
            (S::Scheduled, E::ConfigChanged, S::Validating),
            (S::Received, E::Cancel, S::Cancelled),
            (S::Classified, E::Cancel, S::Cancelled),
            (S::Validating, E::Cancel, S::Cancelled),
            (S::AwaitingApproval { stage: 0 }, E::Cancel, S::Cancelled),
            (S::AwaitingApproval { stage: 1 }, E::Cancel, S::Cancelled),
            (S::AwaitingApproval { stage: 2 }, E::Cancel, S::Cancelled),
            (S::Scheduled, E::Cancel, S::Cancelled),
            (S::Provisioning, E::Cancel, S::Cancelled),
            (S::Failed, E::Cancel, S::Cancelled),
            (S::NeedsTriage, E::Cancel, S::Cancelled),
        ];
        allowed
            .iter()
            .find(|(from, on, _)| *from == state && *on == event)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_state_event_pair() {
        let mut allowed = 0;
        for state in all_states() {
            for event in all_events() {
                let result = transition(state, event);
                match expected(state, event) {
                    Some(next) => {
                        allowed += 1;
                        assert_eq!(result, Ok(next), "{state} + {event}");
                    }
                    None => {
                        let error =
                            result.expect_err(&format!("{state} + {event} must be refused"));
                        let stage_overrun = matches!(
                            (state, event),
                            (S::AwaitingApproval { stage }, E::StageApproved { stages }) if stage >= stages
                        );
                        if stage_overrun {
                            assert_eq!(
                                error,
                                TransitionError::StageOutOfRange {
                                    state,
                                    stages: match event {
                                        E::StageApproved { stages } => stages,
                                        _ => unreachable!(),
                                    }
                                }
                            );
                        } else {
                            assert_eq!(error, TransitionError::NotAllowed { state, event });
                        }
                    }
                }
            }
        }
        assert_eq!(allowed, 37);
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for state in all_states().into_iter().filter(RequestState::is_terminal) {
            for event in all_events() {
                assert!(transition(state, event).is_err(), "{state} + {event}");
            }
        }
        let terminal: Vec<_> = all_states()
            .into_iter()
            .filter(RequestState::is_terminal)
            .collect();
        assert_eq!(terminal, vec![S::Completed, S::Rejected, S::Cancelled]);
    }

    #[test]
    fn a_whole_two_stage_lifecycle() {
        let events = [
            E::Classified,
            E::ValidationStarted,
            E::ValidationPassed { stages: 2 },
            E::StageApproved { stages: 2 },
            E::StageApproved { stages: 2 },
            E::ProvisioningStarted,
            E::ProvisioningFailed,
            E::Retry,
            E::ProvisioningStarted,
            E::ProvisioningSucceeded,
        ];
        let mut state = S::Received;
        let mut seen = vec![state.to_string()];
        for event in events {
            state = transition(state, event).expect("allowed");
            seen.push(state.to_string());
        }
        assert_eq!(
            seen,
            [
                "received",
                "classified",
                "validating",
                "awaiting_approval(1)",
                "awaiting_approval(2)",
                "scheduled",
                "provisioning",
                "failed",
                "scheduled",
                "provisioning",
                "completed"
            ]
        );
    }

    #[test]
    fn a_config_change_after_approval_sends_the_request_round_again() {
        let events = [
            E::Classified,
            E::ValidationStarted,
            E::ValidationPassed { stages: 1 },
            E::StageApproved { stages: 1 },
            E::ConfigChanged,
            E::ValidationPassed { stages: 1 },
            E::StageApproved { stages: 1 },
            E::ProvisioningStarted,
            E::ProvisioningSucceeded,
        ];
        let mut state = S::Received;
        let mut seen = vec![state.to_string()];
        for event in events {
            state = transition(state, event).expect("allowed");
            seen.push(state.to_string());
        }
        assert_eq!(
            seen,
            [
                "received",
                "classified",
                "validating",
                "awaiting_approval(1)",
                "scheduled",
                "validating",
                "awaiting_approval(1)",
                "scheduled",
                "provisioning",
                "completed"
            ]
        );
        // Once provisioning runs, or after it, a configuration change is not an event.
        for state in [S::Provisioning, S::Completed, S::Failed, S::Validating] {
            assert!(transition(state, E::ConfigChanged).is_err(), "{state}");
        }
    }

    #[test]
    fn large_stage_numbers_do_not_overflow() {
        let last = S::AwaitingApproval {
            stage: u32::MAX - 1,
        };
        assert_eq!(
            transition(last, E::StageApproved { stages: u32::MAX }),
            Ok(S::Scheduled)
        );
        let beyond = S::AwaitingApproval { stage: u32::MAX };
        assert!(matches!(
            transition(beyond, E::StageApproved { stages: u32::MAX }),
            Err(TransitionError::StageOutOfRange { .. })
        ));
    }

    #[test]
    fn error_messages_name_state_and_event() {
        let error = transition(S::Completed, E::Retry).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "event retry is not allowed in state completed"
        );
        let error = transition(
            S::AwaitingApproval { stage: 1 },
            E::StageApproved { stages: 1 },
        )
        .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "state awaiting_approval(2) is beyond the workflow's 1 approval stage(s)"
        );
        let error =
            transition(S::Received, E::ValidationPassed { stages: 2 }).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "event validation_passed(stages=2) is not allowed in state received"
        );
    }

    #[test]
    fn stored_round_trip() {
        for state in all_states() {
            assert_eq!(
                RequestState::from_stored(state.name(), state.stored_stage()),
                Ok(state)
            );
        }
    }

    #[test]
    fn stored_errors() {
        assert_eq!(
            RequestState::from_stored("bogus", None),
            Err(StoredStateError::UnknownState {
                name: "bogus".into()
            })
        );
        assert_eq!(
            RequestState::from_stored("awaiting_approval", None),
            Err(StoredStateError::MissingStage)
        );
        assert_eq!(
            RequestState::from_stored("awaiting_approval", Some(-1)),
            Err(StoredStateError::InvalidStage { stage: -1 })
        );
        assert_eq!(
            RequestState::from_stored("awaiting_approval", Some(i64::from(u32::MAX) + 1)),
            Err(StoredStateError::InvalidStage {
                stage: i64::from(u32::MAX) + 1
            })
        );
        assert_eq!(
            RequestState::from_stored("completed", Some(0)),
            Err(StoredStateError::UnexpectedStage {
                name: "completed",
                stage: 0
            })
        );
    }

    #[test]
    fn request_kinds() {
        for kind in [RequestKind::Joiner, RequestKind::Mover, RequestKind::Leaver] {
            assert_eq!(RequestKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(RequestKind::from_name("visitor"), None);
    }

    #[test]
    fn event_names() {
        for event in all_events() {
            assert!(event.to_string().starts_with(event.name()));
        }
    }
}
