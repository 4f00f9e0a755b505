//! Validation against the targets: a joiner must not already have an account in a target its
//! `create_account` steps write to (`[validation] not_in_targets = "warn" | "required"`). Each
//! such connector is asked for the account by its key (the request's username); the answer is
//! kept as the timeline step "validate: target accounts".

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::connectors::AnyConnector;
use crate::domain::directory_checks::CheckLevel;
use crate::domain::request::RequestKind;
use crate::domain::workflow::{StepAction, Workflow};
use crate::engine::handler::{JobContext, JobError};
use crate::store::api::RequestRow;

/// How long one target may take to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the targets said.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TargetFindings {
    /// Connectors asked.
    pub checked: Vec<String>,
    /// `account NAME exists in CONNECTOR` for each hit.
    pub existing: Vec<String>,
    /// Connectors that could not answer, with why.
    pub unreadable: Vec<String>,
}

/// The triage reason when the check is required and fails, or `None`. A target that cannot
/// answer is a transient failure until the job's last attempt.
pub(crate) async fn not_in_targets(
    ctx: &JobContext,
    request: &RequestRow,
    wf: &Workflow,
) -> Result<Option<String>, JobError> {
    let level = wf.validation.not_in_targets;
    let joiner = request.kind == RequestKind::Joiner.name();
    let (Some(username), true, false) = (
        request.username.as_deref(),
        joiner,
        level == CheckLevel::Off,
    ) else {
        return Ok(None);
    };
    let connectors: BTreeSet<&str> = wf
        .steps
        .iter()
        .filter(|s| s.action == StepAction::CreateAccount)
        .map(|s| s.connector.as_str())
        .collect();
    let mut found = TargetFindings::default();
    for name in connectors {
        found.checked.push(name.to_string());
        match ask(ctx, name, username).await {
            Ok(true) => found
                .existing
                .push(format!("account {username} exists in {name}")),
            Ok(false) => {}
            Err(why) => found.unreadable.push(format!("{name}: {why}")),
        }
    }
    if !found.unreadable.is_empty() && level == CheckLevel::Required && !ctx.is_last_attempt() {
        return Err(JobError::Transient(format!(
            "target accounts not checked: {}",
            found.unreadable.join("; ")
        )));
    }
    let (reason, note) = verdict(level, &found);
    ctx.store
        .record_step(
            request.id,
            Some(ctx.job.id),
            "validate: target accounts",
            Some(&json!({"username": username, "connectors": found.checked, "level": level})),
            Some(&json!({"existing": found.existing, "unreadable": found.unreadable})),
            note.as_deref(),
        )
        .await?;
    Ok(reason)
}

/// (triage reason, step note) for what was found at `level` (pure).
fn verdict(level: CheckLevel, found: &TargetFindings) -> (Option<String>, Option<String>) {
    let mut problems = found.existing.clone();
    problems.extend(
        found
            .unreadable
            .iter()
            .map(|u| format!("could not check {u}")),
    );
    if problems.is_empty() {
        return (None, None);
    }
    let text = problems.join("; ");
    match level {
        CheckLevel::Required => (Some(format!("target accounts: {text}")), Some(text)),
        CheckLevel::Warn => (None, Some(format!("warning: {text}"))),
        CheckLevel::Off => (None, None),
    }
}

/// Whether `connector` holds an account keyed `username`.
async fn ask(ctx: &JobContext, connector: &str, username: &str) -> Result<bool, String> {
    let doc = ctx
        .store
        .config_head(connector)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("connector `{connector}` does not exist"))?;
    let target = AnyConnector::from_doc(&doc).map_err(|e| e.to_string())?;
    match tokio::time::timeout(READ_TIMEOUT, target.read(username)).await {
        Ok(Ok(account)) => Ok(account.is_some()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", READ_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(existing: &[&str], unreadable: &[&str]) -> TargetFindings {
        TargetFindings {
            checked: vec!["hr-db".into()],
            existing: existing.iter().map(|s| s.to_string()).collect(),
            unreadable: unreadable.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_found_account_sends_to_triage_only_when_required() {
        let hit = found(&["account gnunez exists in hr-db"], &[]);
        assert_eq!(
            verdict(CheckLevel::Required, &hit),
            (
                Some("target accounts: account gnunez exists in hr-db".into()),
                Some("account gnunez exists in hr-db".into())
            )
        );
        assert_eq!(
            verdict(CheckLevel::Warn, &hit),
            (None, Some("warning: account gnunez exists in hr-db".into()))
        );
        assert_eq!(verdict(CheckLevel::Off, &hit), (None, None));
        assert_eq!(
            verdict(CheckLevel::Required, &found(&[], &[])),
            (None, None)
        );
    }

    #[test]
    fn a_target_that_cannot_answer_is_named() {
        let (reason, _) = verdict(CheckLevel::Required, &found(&[], &["crm: timed out"]));
        assert_eq!(
            reason.as_deref(),
            Some("target accounts: could not check crm: timed out")
        );
    }
}
