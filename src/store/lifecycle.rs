//! The two pure domain rules the store applies inside its transactions, adapted to the
//! store's stored forms: the request state machine and approval-stage evaluation.

use std::str::FromStr;

use crate::domain::approval::{Policy, evaluate};
use crate::domain::request::{RequestEvent, RequestState, transition};
use crate::store::api::StoreResult;
use crate::store::error::StoreError;

/// The state `event` leads to from `state`, or `None` when the transition is not allowed.
pub(crate) fn apply_event(state: RequestState, event: RequestEvent) -> Option<RequestState> {
    transition(state, event).ok()
}

/// Parse a stored or requested policy; `Invalid { field: "policy" }` names what is wrong.
pub(crate) fn parse_policy(policy: &str) -> StoreResult<Policy> {
    Policy::from_str(policy).map_err(|e| StoreError::Invalid {
        field: "policy".into(),
        message: e.to_string(),
    })
}

/// Evaluate a stored stage: `"pending"`, `"approved"` or `"rejected"`.
pub(crate) fn evaluate_stage(
    policy: &str,
    approvers: &[String],
    decisions: &[(String, bool)],
) -> StoreResult<&'static str> {
    let parsed = Policy::from_str(policy)
        .map_err(|e| StoreError::Corrupt(format!("stored approval policy: {e}")))?;
    Ok(evaluate(parsed, approvers, decisions).name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stored_policies_evaluate() {
        let a = names(&["ann", "bob", "cid"]);
        let d = |n: &str, ok: bool| (n.to_string(), ok);
        assert_eq!(evaluate_stage("any", &a, &[]).unwrap(), "pending");
        assert_eq!(
            evaluate_stage("all", &a, &[d("ann", false)]).unwrap(),
            "rejected"
        );
        assert_eq!(
            evaluate_stage("quorum(2)", &a, &[d("ann", false), d("bob", false)]).unwrap(),
            "rejected"
        );
        assert!(matches!(
            evaluate_stage("most", &a, &[]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn policies_parse_with_field_errors() {
        assert!(parse_policy("quorum(2)").is_ok());
        assert!(matches!(
            parse_policy("sometimes"),
            Err(StoreError::Invalid { field, .. }) if field == "policy"
        ));
    }

    #[test]
    fn transitions_follow_the_domain() {
        assert_eq!(
            apply_event(RequestState::Failed, RequestEvent::Retry),
            Some(RequestState::Scheduled)
        );
        assert_eq!(
            apply_event(RequestState::Completed, RequestEvent::Cancel),
            None
        );
    }
}
