//! Glue between the editor and the domain: `domain::config::check_document` for validation and
//! `domain::workflow::dry_run` on a sample request, turned into the editor's `Problem`s and lines.

use std::collections::BTreeMap;

use crate::domain::config::{ConfigDocument, ConnectorBackend, check_document};
use crate::domain::diagnostic::Diagnostic;
use crate::domain::dry_run::{SampleRequest, dry_run as plan};
use crate::store::api::ConfigVersion;
use crate::tui::views::editor::Problem;

fn problem(d: &Diagnostic) -> Problem {
    Problem {
        line: d.line,
        column: d.column,
        field: d.field.clone(),
        message: d.message.clone(),
    }
}

/// Validates a document with the domain's rules (syntax, types, fields, references within it).
pub fn check(file_label: &str, text: &str) -> Result<(), Vec<Problem>> {
    check_document(file_label, text)
        .map(|_| ())
        .map_err(|diagnostics| diagnostics.iter().map(problem).collect())
}

/// The sample request dry-runs use: a joiner with the usual fields and a line manager.
pub fn sample_request() -> SampleRequest {
    let fields: BTreeMap<String, String> = [
        ("team", "Platform"),
        ("title", "Engineer"),
        ("start_date", "2026-12-01"),
        ("manager", "bob"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    SampleRequest {
        subject_name: "Ada Lovelace".into(),
        subject_email: Some("ada.lovelace@example.com".into()),
        username: None,
        requester: "hr@example.com".into(),
        fields,
        line_manager: Some("bob".into()),
        groups: BTreeMap::new(),
        today: None,
    }
}

/// Dry-runs a workflow document on the sample request: the approval chain and planned steps.
pub fn dry_run(file_label: &str, text: &str) -> Result<Vec<String>, Vec<Problem>> {
    match check_document(file_label, text) {
        Err(diagnostics) => Err(diagnostics.iter().map(problem).collect()),
        Ok(ConfigDocument::Workflow(workflow)) => {
            let sample = sample_request();
            let run = plan(&workflow, &sample);
            let mut lines = vec![
                format!(
                    "sample: {} <{}>, requested by {}, line manager bob, team Platform",
                    sample.subject_name,
                    sample.subject_email.as_deref().unwrap_or("-"),
                    sample.requester
                ),
                if run.is_clean() {
                    "verdict: would pass validation and every stage can be decided".to_string()
                } else {
                    "verdict: PROBLEMS — see below".to_string()
                },
                String::new(),
            ];
            lines.extend(run.to_string().lines().map(str::to_string));
            Ok(lines)
        }
        Ok(other) => Err(vec![Problem {
            line: 1,
            column: 1,
            field: "kind".into(),
            message: format!(
                "dry-run needs a workflow; this is a {:?} document",
                other.kind()
            )
            .to_lowercase(),
        }]),
    }
}

/// Steps of a workflow that would fail because of their connector, judged from the saved
/// configuration heads: a connector that does not exist, a document that is not a connector,
/// or an HTTP connector without the operation the step needs. Empty when `text` is not a workflow.
pub fn unavailable_steps(file_label: &str, text: &str, heads: &[ConfigVersion]) -> Vec<String> {
    let Ok(ConfigDocument::Workflow(workflow)) = check_document(file_label, text) else {
        return Vec::new();
    };
    workflow
        .steps
        .iter()
        // A manual step without a connector is done by a person and needs none.
        .filter(|step| {
            !(step.action == crate::domain::workflow::StepAction::Manual
                && step.connector.is_empty())
        })
        .filter_map(|step| {
            let why = match heads.iter().find(|h| h.name == step.connector) {
                None => format!("connector `{}` does not exist", step.connector),
                Some(head) => match check_document(&head.name, &head.body) {
                    Ok(ConfigDocument::Connector(c))
                        if c.backend == ConnectorBackend::Http
                            && c.http
                                .as_ref()
                                .is_some_and(|h| !h.missing_for(step.action).is_empty()) =>
                    {
                        let missing = c
                            .http
                            .as_ref()
                            .map(|h| h.missing_for(step.action).join(", "))
                            .unwrap_or_default();
                        format!(
                            "HTTP connector `{}` has no http.operations.{missing}",
                            step.connector
                        )
                    }
                    Ok(ConfigDocument::Connector(_)) => return None,
                    Ok(other) => format!(
                        "`{}` is a {} document, not a connector",
                        step.connector,
                        other.kind().name()
                    ),
                    Err(_) => format!("connector `{}` does not pass config check", step.connector),
                },
            };
            Some(format!(
                "step {} ({}) would fail: {why}",
                step.name, step.action
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(name: &str, kind: &str, body: &str) -> ConfigVersion {
        ConfigVersion {
            name: name.into(),
            kind: kind.into(),
            version: 1,
            body: body.into(),
            author: "admin".into(),
            comment: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn steps_on_missing_or_unimplemented_connectors_are_flagged() {
        let workflow = "kind = \"workflow\"\nname = \"w\"\nkind_of_request = \"joiner\"\n";
        // Not a parseable workflow: nothing to judge (the dry-run reports the diagnostics).
        assert!(unavailable_steps("w.toml", workflow, &[]).is_empty());
        let lines = unavailable_steps("onboarding.toml", WORKFLOW, &[]);
        assert!(!lines.is_empty(), "the sample workflow has steps");
        assert!(
            lines.iter().all(|l| l.contains("does not exist")),
            "{lines:?}"
        );
        let hr_db = include_str!("../../tests/good_configs/hr-db.toml");
        let sql = head("hr-db", "connector", hr_db);
        assert!(unavailable_steps("onboarding.toml", WORKFLOW, &[sql]).is_empty());
        // The same connector declared as HTTP (with [sql] settings): it fails config check.
        let http_body = hr_db.replacen("backend = \"sql\"", "backend = \"http\"", 1);
        assert_ne!(http_body, hr_db, "the fixture names its backend");
        let http = head("hr-db", "connector", &http_body);
        let lines = unavailable_steps("onboarding.toml", WORKFLOW, &[http]);
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.contains("config check")),
            "{lines:?}"
        );
        // An HTTP connector that cannot create accounts (the Graph recipe): that step is
        // flagged, the grant step is not.
        let graph = crate::connectors::http::RECIPES
            .iter()
            .find(|(f, _)| *f == "microsoft-graph.toml")
            .map(|(_, t)| t.replace("name = \"microsoft-graph\"", "name = \"hr-db\""))
            .expect("recipe");
        let lines = unavailable_steps(
            "onboarding.toml",
            WORKFLOW,
            &[head("hr-db", "connector", &graph)],
        );
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("create_account")
                && lines[0]
                    .ends_with("HTTP connector `hr-db` has no http.operations.create_account"),
            "{lines:?}"
        );
        let role = head("hr-db", "role", "kind = \"role\"\nname = \"hr-db\"\n");
        let lines = unavailable_steps("onboarding.toml", WORKFLOW, &[role]);
        assert!(!lines.is_empty(), "{lines:?}");
    }

    const WORKFLOW: &str = include_str!("../../tests/good_configs/onboarding.toml");

    #[test]
    fn valid_workflow_checks_and_dry_runs() {
        assert_eq!(check("onboarding.toml", WORKFLOW), Ok(()));
        let lines = dry_run("onboarding.toml", WORKFLOW).expect("dry run");
        let text = lines.join("\n");
        assert!(text.contains("stage 1 manager"), "{text}");
        assert!(text.contains("bob"), "{text}");
        assert!(text.contains("step account"), "{text}");
    }

    #[test]
    fn errors_carry_line_column_and_field() {
        let broken = WORKFLOW.replace("policy = \"any\"", "policy = \"sometimes\"");
        let problems = check("onboarding.toml", &broken).expect_err("invalid");
        let p = &problems[0];
        let line = broken
            .lines()
            .position(|l| l.contains("sometimes"))
            .expect("line")
            + 1;
        assert_eq!(p.line, line);
        assert!(p.field.contains("policy"), "{p:?}");
        assert!(dry_run("onboarding.toml", &broken).is_err());
        let syntax = check("x.toml", "kind = \n").expect_err("syntax");
        assert_eq!(syntax[0].line, 1);
    }
}
