//! A leaver's grace period (`[leaver]` in a workflow): which steps wait, how long, and the
//! warning mail before they run; checked at config check, pure.
//!
//! ```toml
//! [leaver]
//! grace = "14d"               # revoke_role and delete_account steps run this long after the rest
//! warn_before = "3d"          # a warning mail this long before they run (needs a notifier)
//! warn_to = ["line_manager"]  # line_manager, requester, a login or an e-mail address
//! ```

use serde::{Deserialize, Serialize};

use super::diagnostic::FieldError;
use super::request::RequestKind;
use super::workflow::{DurationSpec, StepAction, Workflow, is_login};

/// The `[leaver]` table of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaverSettings {
    /// How long the revoking steps wait after the disabling ones ran.
    pub grace: DurationSpec,
    /// A warning mail goes out this long before the revoking steps run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_before: Option<DurationSpec>,
    /// Who gets the warning: `line_manager`, `requester`, a login or an e-mail address
    /// (default: the line manager).
    #[serde(default = "default_warn_to")]
    pub warn_to: Vec<String>,
}

fn default_warn_to() -> Vec<String> {
    vec!["line_manager".to_string()]
}

/// True for the actions that wait out the grace period (the revoking ones); every other step
/// of the plan runs as soon as it is approved.
pub fn is_deferred(action: StepAction) -> bool {
    matches!(action, StepAction::RevokeRole | StepAction::DeleteAccount)
}

impl LeaverSettings {
    /// Problems of the `[leaver]` table of `workflow`, by field path.
    pub fn validate(&self, workflow: &Workflow) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if workflow.intake.kinds != [RequestKind::Leaver] {
            errors.push(FieldError::new(
                "leaver.grace",
                "a grace period needs a leaver-only workflow (intake.kinds = [\"leaver\"])",
            ));
        }
        if !workflow.steps.iter().any(|s| is_deferred(s.action)) {
            errors.push(FieldError::new(
                "leaver.grace",
                "no revoke_role or delete_account step waits for the grace period",
            ));
        }
        if let Some(warn) = &self.warn_before
            && *warn >= self.grace
        {
            errors.push(FieldError::new(
                "leaver.warn_before",
                format!(
                    "warn_before ({warn}) must be shorter than the grace period ({})",
                    self.grace
                ),
            ));
        }
        if self.warn_before.is_some() && self.warn_to.is_empty() {
            errors.push(FieldError::new(
                "leaver.warn_to",
                "needs at least one recipient (line_manager, requester, a login or an address)",
            ));
        }
        for (index, who) in self.warn_to.iter().enumerate() {
            if !is_login(who.trim()) {
                errors.push(FieldError::new(
                    format!("leaver.warn_to[{index}]"),
                    format!(
                        "\"{who}\" is not line_manager, requester, a login or an e-mail address"
                    ),
                ));
            }
        }
        errors
    }
}

/// Who a warning goes to: `line_manager` and `requester` replaced by the request's, the rest as
/// written; duplicates and an unknown line manager left out.
pub fn warning_recipients(
    warn_to: &[String],
    line_manager: Option<&str>,
    requester: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for who in warn_to {
        let who = match who.trim() {
            "line_manager" => line_manager.map(str::to_string),
            "requester" => Some(requester.to_string()),
            other => Some(other.to_string()),
        };
        if let Some(who) = who
            && !out.contains(&who)
        {
            out.push(who);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_resolve_roles_and_drop_duplicates() {
        let to = vec![
            "line_manager".to_string(),
            "requester".to_string(),
            "hr@example.com".to_string(),
        ];
        assert_eq!(
            warning_recipients(&to, Some("alice"), "hr@example.com"),
            vec!["alice", "hr@example.com"]
        );
        assert_eq!(
            warning_recipients(&to[..1], None, "hr@example.com"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn only_revoking_actions_wait() {
        assert!(is_deferred(StepAction::RevokeRole));
        assert!(is_deferred(StepAction::DeleteAccount));
        assert!(!is_deferred(StepAction::DisableAccount));
        assert!(!is_deferred(StepAction::UpdateAccount));
    }
}
