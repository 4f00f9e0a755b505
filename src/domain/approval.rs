//! Approval stage policies and their evaluation, plus separation of duties.
//!
//! Semantics (the engine and the console rely on these):
//! - Only decisions by eligible approvers count; others are ignored.
//! - An approver's first decision counts; later decisions by the same approver are ignored
//!   (the store refuses them, this keeps evaluation safe if one slips through).
//! - `any`: the first counted decision decides the stage, approve or reject.
//! - `all`: any rejection rejects; the stage approves when every eligible approver approved.
//! - `quorum(n)`: approves once `n` approvers approved; rejects as soon as `n` approvals can no
//!   longer be reached (including a pool of fewer than `n` eligible approvers, so such a request
//!   never waits forever; [`is_feasible`] lets callers flag that before the stage opens).
//! - With no eligible approvers, `any` and `all` stay pending (escalation or expiry decides);
//!   `all` is never approved vacuously.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// How a stage reaches its decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// One approval approves; one rejection rejects (whichever comes first).
    Any,
    /// Every eligible approver must approve; one rejection rejects.
    All,
    /// This many approvals approve (at least 1).
    Quorum(u32),
}

/// Why a policy string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyParseError {
    /// Not `any`, `all` or `quorum(n)`.
    #[error("unknown policy \"{0}\": expected any, all or quorum(n)")]
    Unknown(String),
    /// `quorum(...)` without a positive whole number inside.
    #[error("invalid quorum \"{0}\": expected quorum(n) with n a whole number of at least 1")]
    BadQuorum(String),
    /// `quorum(0)` could never be decided meaningfully.
    #[error("quorum(0) is not allowed: a quorum needs at least 1 approval")]
    ZeroQuorum,
}

impl FromStr for Policy {
    type Err = PolicyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        match trimmed {
            "any" => return Ok(Self::Any),
            "all" => return Ok(Self::All),
            _ => {}
        }
        let Some(inner) = trimmed
            .strip_prefix("quorum(")
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            return Err(PolicyParseError::Unknown(trimmed.to_string()));
        };
        let inner = inner.trim();
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PolicyParseError::BadQuorum(trimmed.to_string()));
        }
        match inner.parse::<u32>() {
            Ok(0) => Err(PolicyParseError::ZeroQuorum),
            Ok(n) => Ok(Self::Quorum(n)),
            Err(_) => Err(PolicyParseError::BadQuorum(trimmed.to_string())),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::All => f.write_str("all"),
            Self::Quorum(n) => write!(f, "quorum({n})"),
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::diagnostic::deserialize_from_str(deserializer, "a policy: any, all or quorum(n)")
    }
}

impl Policy {
    /// How many approvals approve a stage with `eligible` distinct approvers.
    pub fn approvals_needed(&self, eligible: usize) -> usize {
        match self {
            Self::Any => 1,
            Self::All => eligible,
            Self::Quorum(n) => usize::try_from(*n).unwrap_or(usize::MAX),
        }
    }
}

/// The state of one approval stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageOutcome {
    /// Not decided yet.
    Pending,
    /// The stage approved.
    Approved,
    /// The stage rejected.
    Rejected,
}

impl StageOutcome {
    /// `pending`, `approved` or `rejected`, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for StageOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// True when a stage with this many distinct eligible approvers can ever be approved.
pub fn is_feasible(policy: Policy, eligible: usize) -> bool {
    eligible > 0 && policy.approvals_needed(eligible) <= eligible
}

/// Evaluates a stage. `decisions` are `(approver, approved)` in the order they were taken.
pub fn evaluate(policy: Policy, eligible: &[String], decisions: &[(String, bool)]) -> StageOutcome {
    let pool: BTreeSet<&str> = eligible.iter().map(String::as_str).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let counted: Vec<bool> = decisions
        .iter()
        .filter(|(approver, _)| pool.contains(approver.as_str()))
        .filter(|(approver, _)| seen.insert(approver.as_str()))
        .map(|(_, approved)| *approved)
        .collect();
    let approvals = counted.iter().filter(|approved| **approved).count();
    let rejections = counted.len() - approvals;
    match policy {
        Policy::Any => match counted.first() {
            Some(true) => StageOutcome::Approved,
            Some(false) => StageOutcome::Rejected,
            None => StageOutcome::Pending,
        },
        Policy::All => {
            if rejections > 0 {
                StageOutcome::Rejected
            } else if !pool.is_empty() && approvals == pool.len() {
                StageOutcome::Approved
            } else {
                StageOutcome::Pending
            }
        }
        Policy::Quorum(_) => {
            let needed = policy.approvals_needed(pool.len());
            let undecided = pool.len() - counted.len();
            if approvals >= needed {
                StageOutcome::Approved
            } else if approvals + undecided < needed {
                StageOutcome::Rejected
            } else {
                StageOutcome::Pending
            }
        }
    }
}

/// Why a person may not decide a stage.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecisionError {
    /// Not among the stage's eligible approvers.
    #[error("{approver} is not an approver of this stage")]
    NotEligible {
        /// Who tried.
        approver: String,
    },
    /// The approver asked for this request.
    #[error("{approver} requested this access and cannot approve it (separation of duties)")]
    OwnRequest {
        /// Who tried.
        approver: String,
    },
    /// The approver is the person who would receive the access.
    #[error("{approver} would receive this access and cannot approve it (separation of duties)")]
    OwnAccess {
        /// Who tried.
        approver: String,
    },
}

/// Separation of duties: `approver` is the requester or the subject. Login names are compared
/// case-insensitively here, so `Alice` cannot approve `alice`'s request.
pub fn conflicts_of_interest(
    approver: &str,
    requester: &str,
    subject: Option<&str>,
) -> Option<DecisionError> {
    if approver.eq_ignore_ascii_case(requester) {
        return Some(DecisionError::OwnRequest {
            approver: approver.to_string(),
        });
    }
    if subject.is_some_and(|subject| approver.eq_ignore_ascii_case(subject)) {
        return Some(DecisionError::OwnAccess {
            approver: approver.to_string(),
        });
    }
    None
}

/// Removes the requester and the subject from a resolved approver list (separation of duties),
/// keeping order and dropping duplicates.
pub fn without_conflicts(
    eligible: &[String],
    requester: &str,
    subject: Option<&str>,
) -> Vec<String> {
    let mut seen = BTreeSet::new();
    eligible
        .iter()
        .filter(|approver| conflicts_of_interest(approver, requester, subject).is_none())
        .filter(|approver| seen.insert(approver.as_str()))
        .cloned()
        .collect()
}

/// Checks that `approver` may decide a stage: eligible and no conflict of interest.
pub fn may_decide(
    approver: &str,
    eligible: &[String],
    requester: &str,
    subject: Option<&str>,
) -> Result<(), DecisionError> {
    if let Some(conflict) = conflicts_of_interest(approver, requester, subject) {
        return Err(conflict);
    }
    if !eligible.iter().any(|candidate| candidate == approver) {
        return Err(DecisionError::NotEligible {
            approver: approver.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use StageOutcome::{Approved, Pending, Rejected};

    fn people(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn decided(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter()
            .map(|(who, ok)| (who.to_string(), *ok))
            .collect()
    }

    #[test]
    fn policy_parse_and_display_round_trip() {
        for (text, policy) in [
            ("any", Policy::Any),
            ("all", Policy::All),
            ("quorum(1)", Policy::Quorum(1)),
            ("quorum(2)", Policy::Quorum(2)),
            ("quorum(4294967295)", Policy::Quorum(u32::MAX)),
        ] {
            assert_eq!(text.parse::<Policy>(), Ok(policy));
            assert_eq!(policy.to_string(), text);
        }
        assert_eq!(" any ".parse::<Policy>(), Ok(Policy::Any));
        assert_eq!("quorum( 3 )".parse::<Policy>(), Ok(Policy::Quorum(3)));
    }

    #[test]
    fn policy_parse_errors() {
        assert_eq!(
            "quorum(0)".parse::<Policy>(),
            Err(PolicyParseError::ZeroQuorum)
        );
        for bad in [
            "quorum()",
            "quorum(-1)",
            "quorum(x)",
            "quorum(1.5)",
            "quorum(99999999999)",
        ] {
            assert_eq!(
                bad.parse::<Policy>(),
                Err(PolicyParseError::BadQuorum(bad.to_string())),
                "{bad}"
            );
        }
        for bad in ["", "ANY", "majority", "quorum(2", "quorum 2"] {
            assert!(
                matches!(bad.parse::<Policy>(), Err(PolicyParseError::Unknown(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn policy_serde_uses_the_string_form() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Holder {
            policy: Policy,
        }
        let holder: Holder = toml::from_str("policy = \"quorum(2)\"").expect("parses");
        assert_eq!(holder.policy, Policy::Quorum(2));
        assert_eq!(
            toml::to_string(&holder).expect("serialises"),
            "policy = \"quorum(2)\"\n"
        );
        assert!(toml::from_str::<Holder>("policy = \"quorum(0)\"").is_err());
        assert!(toml::from_str::<Holder>("policy = 2").is_err());
    }

    #[test]
    fn any_first_counted_decision_decides() {
        let pool = people(&["alice", "bob"]);
        let cases: &[(&[(&str, bool)], StageOutcome)] = &[
            (&[], Pending),
            (&[("alice", true)], Approved),
            (&[("alice", false)], Rejected),
            (&[("alice", true), ("bob", false)], Approved),
            (&[("bob", false), ("alice", true)], Rejected),
            (&[("mallory", true)], Pending),
            (&[("mallory", false), ("bob", true)], Approved),
            (&[("alice", false), ("alice", true)], Rejected),
        ];
        for (decisions, expected) in cases {
            assert_eq!(
                evaluate(Policy::Any, &pool, &decided(decisions)),
                *expected,
                "{decisions:?}"
            );
        }
        assert_eq!(
            evaluate(Policy::Any, &[], &decided(&[("alice", true)])),
            Pending
        );
    }

    #[test]
    fn all_needs_everyone_and_any_rejection_rejects() {
        let pool = people(&["alice", "bob", "carol"]);
        let cases: &[(&[(&str, bool)], StageOutcome)] = &[
            (&[], Pending),
            (&[("alice", true)], Pending),
            (&[("alice", true), ("bob", true)], Pending),
            (&[("alice", true), ("bob", true), ("carol", true)], Approved),
            (&[("carol", true), ("alice", true), ("bob", true)], Approved),
            (&[("alice", true), ("bob", false)], Rejected),
            (&[("alice", false)], Rejected),
            (&[("alice", true), ("alice", true), ("bob", true)], Pending),
            (
                &[("alice", true), ("bob", true), ("mallory", true)],
                Pending,
            ),
            (
                &[
                    ("alice", true),
                    ("bob", true),
                    ("carol", true),
                    ("mallory", false),
                ],
                Approved,
            ),
            (
                &[
                    ("alice", true),
                    ("alice", false),
                    ("bob", true),
                    ("carol", true),
                ],
                Approved,
            ),
        ];
        for (decisions, expected) in cases {
            assert_eq!(
                evaluate(Policy::All, &pool, &decided(decisions)),
                *expected,
                "{decisions:?}"
            );
        }
        assert_eq!(evaluate(Policy::All, &[], &[]), Pending);
        let duplicated = people(&["alice", "alice"]);
        assert_eq!(
            evaluate(Policy::All, &duplicated, &decided(&[("alice", true)])),
            Approved
        );
    }

    #[test]
    fn quorum_approves_at_n_and_rejects_when_unreachable() {
        let pool = people(&["alice", "bob", "carol", "dave"]);
        let q2 = Policy::Quorum(2);
        let cases: &[(&[(&str, bool)], StageOutcome)] = &[
            (&[], Pending),
            (&[("alice", true)], Pending),
            (&[("alice", true), ("bob", true)], Approved),
            (&[("alice", false)], Pending),
            (&[("alice", false), ("bob", false)], Pending),
            (
                &[("alice", false), ("bob", false), ("carol", false)],
                Rejected,
            ),
            (
                &[("alice", false), ("bob", false), ("carol", true)],
                Pending,
            ),
            (
                &[
                    ("alice", false),
                    ("bob", false),
                    ("carol", true),
                    ("dave", true),
                ],
                Approved,
            ),
            (&[("alice", true), ("alice", true)], Pending),
            (&[("alice", true), ("mallory", true)], Pending),
            (
                &[
                    ("alice", false),
                    ("alice", true),
                    ("bob", false),
                    ("carol", false),
                ],
                Rejected,
            ),
        ];
        for (decisions, expected) in cases {
            assert_eq!(
                evaluate(q2, &pool, &decided(decisions)),
                *expected,
                "{decisions:?}"
            );
        }
        let small = people(&["alice"]);
        assert_eq!(evaluate(q2, &small, &[]), Rejected);
        assert_eq!(evaluate(Policy::Quorum(1), &small, &[]), Pending);
        assert_eq!(
            evaluate(Policy::Quorum(1), &small, &decided(&[("alice", true)])),
            Approved
        );
        assert_eq!(evaluate(Policy::Quorum(1), &[], &[]), Rejected);
    }

    #[test]
    fn feasibility() {
        assert!(is_feasible(Policy::Any, 1));
        assert!(!is_feasible(Policy::Any, 0));
        assert!(is_feasible(Policy::All, 3));
        assert!(!is_feasible(Policy::All, 0));
        assert!(is_feasible(Policy::Quorum(2), 2));
        assert!(!is_feasible(Policy::Quorum(3), 2));
    }

    #[test]
    fn outcome_names() {
        assert_eq!(Pending.to_string(), "pending");
        assert_eq!(Approved.to_string(), "approved");
        assert_eq!(Rejected.to_string(), "rejected");
    }

    #[test]
    fn separation_of_duties() {
        let pool = people(&["alice", "bob", "carol"]);
        assert_eq!(may_decide("alice", &pool, "bob", Some("erin")), Ok(()));
        assert_eq!(
            may_decide("bob", &pool, "bob", Some("erin")),
            Err(DecisionError::OwnRequest {
                approver: "bob".into()
            })
        );
        assert_eq!(
            may_decide("Bob", &pool, "bob", None),
            Err(DecisionError::OwnRequest {
                approver: "Bob".into()
            })
        );
        assert_eq!(
            may_decide("carol", &pool, "bob", Some("CAROL")),
            Err(DecisionError::OwnAccess {
                approver: "carol".into()
            })
        );
        assert_eq!(
            may_decide("mallory", &pool, "bob", None),
            Err(DecisionError::NotEligible {
                approver: "mallory".into()
            })
        );
        assert_eq!(
            without_conflicts(
                &people(&["alice", "bob", "alice", "carol"]),
                "bob",
                Some("carol")
            ),
            people(&["alice"])
        );
        assert!(
            DecisionError::OwnRequest {
                approver: "bob".into()
            }
            .to_string()
            .contains("separation of duties")
        );
    }
}
