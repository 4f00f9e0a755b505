//! Validation against the directory, per workflow: the requester is the subject's line
//! manager (`off`, `warn` or `required`), the subject is in the required groups. Pure: the
//! engine looks the evidence up and records it with the request; a failed `required` check
//! sends the request to triage with the reason, a failed `warn` check is recorded and the
//! request goes on.

use serde::{Deserialize, Serialize};

/// How strictly a directory check applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    /// Not checked.
    #[default]
    Off,
    /// Checked; a failure is recorded and the request goes on.
    Warn,
    /// Checked; a failure sends the request to triage.
    Required,
}

/// What the directory said, kept with the request as evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The subject as the directory knows them (login), if it does.
    pub subject: Option<String>,
    /// The requester as the directory knows them (login), if it does.
    pub requester: Option<String>,
    /// The subject's line manager (login).
    pub line_manager: Option<String>,
    /// The subject's groups (transitive); `None` when not looked up.
    pub subject_groups: Option<Vec<String>>,
}

/// The outcome: problems that stop the request, warnings that do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Failed `required` checks.
    pub problems: Vec<String>,
    /// Failed `warn` checks.
    pub warnings: Vec<String>,
}

/// Checks `evidence` against the workflow's settings. `requester` and `subject` are the
/// names as the request gives them (for the messages).
pub fn check(
    requester_is_line_manager: CheckLevel,
    required_groups: &[String],
    evidence: &Evidence,
    requester: &str,
    subject: &str,
) -> Outcome {
    let mut out = Outcome::default();
    if requester_is_line_manager != CheckLevel::Off {
        let failure = match (&evidence.line_manager, &evidence.requester) {
            (None, _) => Some(format!(
                "requester: the directory knows no line manager of {subject}, so {requester} cannot be confirmed as it"
            )),
            (Some(manager), Some(login)) if login.eq_ignore_ascii_case(manager) => None,
            (Some(manager), _) => Some(format!(
                "requester: {requester} is not {subject}'s line manager (the directory says {manager})"
            )),
        };
        if let Some(message) = failure {
            match requester_is_line_manager {
                CheckLevel::Required => out.problems.push(message),
                _ => out.warnings.push(message),
            }
        }
    }
    for group in required_groups {
        let member = evidence
            .subject_groups
            .as_ref()
            .is_some_and(|groups| groups.iter().any(|g| g == group));
        if !member {
            out.problems.push(match &evidence.subject {
                Some(login) => format!("groups: {login} is not in the required group {group}"),
                None => format!(
                    "groups: no directory knows {subject}, so membership of {group} cannot be checked"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(requester: Option<&str>, manager: Option<&str>, groups: &[&str]) -> Evidence {
        Evidence {
            subject: Some("gina".into()),
            requester: requester.map(str::to_string),
            line_manager: manager.map(str::to_string),
            subject_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        }
    }

    #[test]
    fn the_requester_must_be_the_line_manager_when_required() {
        let ok = check(
            CheckLevel::Required,
            &[],
            &evidence(Some("ann"), Some("ann"), &[]),
            "ann@example.com",
            "gina",
        );
        assert_eq!(ok, Outcome::default());
        let bad = check(
            CheckLevel::Required,
            &[],
            &evidence(None, Some("ann"), &[]),
            "hr@example.com",
            "gina",
        );
        assert_eq!(
            bad.problems,
            vec!["requester: hr@example.com is not gina's line manager (the directory says ann)"]
        );
        let warned = check(
            CheckLevel::Warn,
            &[],
            &evidence(Some("bob"), Some("ann"), &[]),
            "bob",
            "gina",
        );
        assert!(warned.problems.is_empty());
        assert_eq!(warned.warnings.len(), 1);
        let off = check(
            CheckLevel::Off,
            &[],
            &evidence(Some("bob"), None, &[]),
            "bob",
            "gina",
        );
        assert_eq!(off, Outcome::default());
    }

    #[test]
    fn required_groups_name_what_is_missing() {
        let groups = vec!["security".to_string(), "staff".to_string()];
        let out = check(
            CheckLevel::Off,
            &groups,
            &evidence(None, None, &["staff"]),
            "hr",
            "gina",
        );
        assert_eq!(
            out.problems,
            vec!["groups: gina is not in the required group security"]
        );
        let unknown = Evidence::default();
        let out = check(
            CheckLevel::Off,
            &groups[..1],
            &unknown,
            "hr",
            "newbie@example.com",
        );
        assert_eq!(
            out.problems,
            vec![
                "groups: no directory knows newbie@example.com, so membership of security cannot be checked"
            ]
        );
    }
}
