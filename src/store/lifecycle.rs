//! Interim copies of two pure domain rules the store applies inside its transactions: the
//! request state machine and approval-stage evaluation. Both move to `crate::domain` (being
//! written on the domain branch); the store then calls those instead.

use crate::domain::request::{RequestEvent, RequestState};

/// The state `event` leads to from `state`, or `None` when the transition is not allowed.
// TODO(lead): switch to domain::request::transition
pub(crate) fn apply_event(state: RequestState, event: RequestEvent) -> Option<RequestState> {
    use RequestEvent as E;
    use RequestState as S;
    let terminal = matches!(state, S::Completed | S::Rejected | S::Cancelled);
    Some(match (state, event) {
        (_, E::Cancel) if !terminal => S::Cancelled,
        (S::Received, E::Classified) => S::Classified,
        (S::Received | S::Classified | S::Validating, E::NeedsTriage) => S::NeedsTriage,
        (S::NeedsTriage, E::TriageResolved) => S::Classified,
        (S::Classified, E::ValidationStarted) => S::Validating,
        (S::Validating, E::ValidationPassed { stages: 0 }) => S::Scheduled,
        (S::Validating, E::ValidationPassed { .. }) => S::AwaitingApproval { stage: 0 },
        (S::Validating, E::ValidationFailed) => S::NeedsTriage,
        (S::AwaitingApproval { stage }, E::StageApproved { stages }) => {
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
        _ => return None,
    })
}

/// Parse `quorum(n)`.
pub(crate) fn quorum_size(policy: &str) -> Option<usize> {
    policy
        .strip_prefix("quorum(")?
        .strip_suffix(')')?
        .trim()
        .parse()
        .ok()
}

/// Evaluate a stage: `"pending"`, `"approved"` or `"rejected"`. `decisions` are
/// (approver, approved?) of eligible approvers, at most one each.
/// any: one approval approves, one rejection rejects. all: every approver approves, any
/// rejection rejects. quorum(n): n approvals approve; rejected once n can no longer be reached.
// TODO(lead): switch to domain::approval::evaluate
pub(crate) fn evaluate_stage(
    policy: &str,
    approvers: &[String],
    decisions: &[(String, bool)],
) -> &'static str {
    let eligible = |name: &String| approvers.contains(name);
    let approvals = decisions
        .iter()
        .filter(|(n, ok)| *ok && eligible(n))
        .count();
    let rejections = decisions
        .iter()
        .filter(|(n, ok)| !*ok && eligible(n))
        .count();
    match policy.trim() {
        "any" if rejections > 0 => "rejected",
        "any" if approvals > 0 => "approved",
        "all" if rejections > 0 => "rejected",
        "all" if !approvers.is_empty() && approvals >= approvers.len() => "approved",
        "any" | "all" => "pending",
        other => match quorum_size(other) {
            Some(n) if approvals >= n.max(1) => "approved",
            Some(n) if approvers.len().saturating_sub(rejections) < n.max(1) => "rejected",
            _ => "pending",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }
    fn d(n: &str, ok: bool) -> (String, bool) {
        (n.to_string(), ok)
    }

    #[test]
    fn any_policy() {
        let a = names(&["ann", "bob"]);
        assert_eq!(evaluate_stage("any", &a, &[]), "pending");
        assert_eq!(evaluate_stage("any", &a, &[d("bob", true)]), "approved");
        assert_eq!(evaluate_stage("any", &a, &[d("bob", false)]), "rejected");
        assert_eq!(evaluate_stage("any", &a, &[d("eve", true)]), "pending");
    }

    #[test]
    fn all_policy() {
        let a = names(&["ann", "bob"]);
        assert_eq!(evaluate_stage("all", &a, &[d("ann", true)]), "pending");
        assert_eq!(
            evaluate_stage("all", &a, &[d("ann", true), d("bob", true)]),
            "approved"
        );
        assert_eq!(
            evaluate_stage("all", &a, &[d("ann", true), d("bob", false)]),
            "rejected"
        );
    }

    #[test]
    fn quorum_policy() {
        let a = names(&["ann", "bob", "cid"]);
        assert_eq!(
            evaluate_stage("quorum(2)", &a, &[d("ann", true)]),
            "pending"
        );
        assert_eq!(
            evaluate_stage("quorum(2)", &a, &[d("ann", true), d("cid", true)]),
            "approved"
        );
        assert_eq!(
            evaluate_stage("quorum(2)", &a, &[d("ann", false)]),
            "pending"
        );
        assert_eq!(
            evaluate_stage("quorum(2)", &a, &[d("ann", false), d("bob", false)]),
            "rejected"
        );
        assert_eq!(
            evaluate_stage(
                "quorum(2)",
                &a,
                &[d("ann", false), d("bob", true), d("cid", true)]
            ),
            "approved"
        );
    }

    #[test]
    fn transitions() {
        use RequestEvent as E;
        use RequestState as S;
        assert_eq!(apply_event(S::Received, E::Classified), Some(S::Classified));
        assert_eq!(
            apply_event(S::Validating, E::ValidationPassed { stages: 2 }),
            Some(S::AwaitingApproval { stage: 0 })
        );
        assert_eq!(
            apply_event(
                S::AwaitingApproval { stage: 0 },
                E::StageApproved { stages: 2 }
            ),
            Some(S::AwaitingApproval { stage: 1 })
        );
        assert_eq!(
            apply_event(
                S::AwaitingApproval { stage: 1 },
                E::StageApproved { stages: 2 }
            ),
            Some(S::Scheduled)
        );
        assert_eq!(apply_event(S::Failed, E::Retry), Some(S::Scheduled));
        assert_eq!(apply_event(S::Completed, E::Cancel), None);
        assert_eq!(apply_event(S::Received, E::ProvisioningStarted), None);
    }
}
