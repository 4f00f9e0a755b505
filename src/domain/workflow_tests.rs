//! Tests of `domain::workflow` (kept apart so the module itself stays readable).

use super::*;
use crate::domain::dry_run::*;
use chrono::NaiveDate;

const GOOD: &str = r#"kind = "workflow"
name = "engineering-joiner"
description = "New engineers"
team = "engineering"

[intake]
sources = ["email", "csv", "cli", "console"]
mailbox = "hr-inbox"
kinds = ["joiner"]

[validation]
required_fields = ["subject_email", "start_date", "team"]
email_domains = ["example.com"]
start_date_not_in_past = true
max_days_ahead = 90

[[stages]]
name = "manager"
policy = "any"
approvers = ["line_manager"]
remind_after = "4h"
escalate_after = "1d"
escalate_to = "group:eng-leads"
expire_after = "7d"

[[stages]]
name = "security"
policy = "quorum(2)"
people = ["carol", "dave", "erin"]

[[steps]]
name = "account"
connector = "demo-target"
action = "create_account"
params = { team = "{team}", full_name = "{subject_name}" }

[[steps]]
name = "developer-role"
connector = "demo-target"
action = "grant_role"
params = { role = "developer" }

[notifications.welcome]
subject = "Welcome, {{ first_name }}"
body = "Your login is {{ username }}."
"#;

fn parse(text: &str) -> Result<Workflow, Vec<Diagnostic>> {
    Workflow::parse("w.toml", text)
}

fn good() -> Workflow {
    parse(GOOD).expect("the sample is valid")
}

/// Parses GOOD with `from` replaced by `to` and returns the single diagnostic.
fn broken(from: &str, to: &str) -> Diagnostic {
    assert!(GOOD.contains(from), "sample lacks {from:?}");
    let text = GOOD.replacen(from, to, 1);
    let mut errors = parse(&text).expect_err("must fail");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

fn at(d: &Diagnostic) -> (usize, usize, &str) {
    (d.line, d.column, d.field.as_str())
}

#[test]
fn good_workflow_parses() {
    let workflow = good();
    assert_eq!(workflow.name, "engineering-joiner");
    assert_eq!(workflow.intake.sources.len(), 4);
    assert_eq!(workflow.intake.kinds, vec![RequestKind::Joiner]);
    assert_eq!(workflow.stages.len(), 2);
    assert_eq!(
        workflow.stages[0].approvers,
        vec![ApproverSource::LineManager]
    );
    assert_eq!(workflow.stages[1].policy, Policy::Quorum(2));
    assert_eq!(
        workflow.stages[0].remind_after.map(|d| d.duration()),
        Some(Duration::from_secs(4 * 3600))
    );
    assert_eq!(workflow.steps[1].action, StepAction::GrantRole);
    assert_eq!(
        workflow.referenced_roles(),
        vec![("steps[1].params.role".into(), "developer".into())]
    );
    assert!(workflow.validate().is_empty());
    // Without kind it parses too.
    assert!(parse(&GOOD.replacen("kind = \"workflow\"\n", "", 1)).is_ok());
}

#[test]
fn serialises_and_parses_back() {
    let workflow = good();
    let text = toml::to_string(&workflow).expect("serialises");
    assert_eq!(parse(&text).expect("round trip"), workflow);
}

#[test]
fn wrong_kind() {
    let d = broken("kind = \"workflow\"", "kind = \"mailbox\"");
    assert_eq!(at(&d), (1, 8, "kind"));
}

#[test]
fn type_errors_and_unknown_keys_are_located() {
    let d = broken("max_days_ahead = 90", "max_days_ahead = \"ninety\"");
    assert_eq!(at(&d), (15, 18, "validation.max_days_ahead"));
    let d = broken("remind_after = \"4h\"", "remind_after = \"4 hours\"");
    assert_eq!(at(&d), (21, 16, "stages[0].remind_after"));
    assert!(d.message.contains("invalid duration"), "{}", d.message);
    let d = broken("people = [\"carol\"", "peeple = [\"carol\"");
    assert_eq!(at(&d), (29, 1, "stages[1].peeple"));
    assert!(d.message.contains("unknown field `peeple`"));
    let d = broken("sources = [\"email\"", "sources = [\"fax\"");
    assert_eq!(at(&d), (7, 12, "intake.sources[0]"));
    let d = broken("action = \"grant_role\"", "action = \"grant\"");
    assert_eq!(at(&d), (40, 10, "steps[1].action"));
    let d = broken("approvers = [\"line_manager\"]", "approvers = [\"alice\"]");
    assert_eq!(at(&d), (20, 14, "stages[0].approvers[0]"));
    assert!(d.message.contains("people"), "{}", d.message);
    let d = broken("policy = \"quorum(2)\"", "policy = \"quorum(0)\"");
    assert_eq!(at(&d), (28, 10, "stages[1].policy"));
    let d = broken("kinds = [\"joiner\"]", "kinds = [\"visitor\"]");
    assert_eq!(at(&d), (9, 10, "intake.kinds[0]"));
    let d = broken("team = \"engineering\"", "");
    assert_eq!(at(&d), (1, 1, "team"));
    assert!(d.message.contains("missing field `team`"));
}

#[test]
fn quorum_larger_than_people() {
    let d = broken("policy = \"quorum(2)\"", "policy = \"quorum(4)\"");
    assert_eq!(at(&d), (28, 10, "stages[1].policy"));
    assert!(d.message.contains("3 approver(s)"), "{}", d.message);
    // Duplicates in people are counted once (and reported).
    let text = GOOD
        .replacen("policy = \"quorum(2)\"", "policy = \"quorum(3)\"", 1)
        .replacen(
            "people = [\"carol\", \"dave\", \"erin\"]",
            "people = [\"carol\", \"dave\", \"dave\"]",
            1,
        );
    let errors = parse(&text).expect_err("fails");
    let fields: Vec<&str> = errors.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, vec!["stages[1].people[2]", "stages[1].policy"]);
    // With a dynamic source the count is unknown until resolution: accepted.
    let text = GOOD.replacen(
        "policy = \"quorum(2)\"",
        "policy = \"quorum(5)\"\napprovers = [\"group:sec\"]",
        1,
    );
    assert!(parse(&text).is_ok());
}

#[test]
fn duplicate_stage_name() {
    let d = broken("name = \"security\"", "name = \"manager\"");
    assert_eq!(at(&d), (27, 8, "stages[1].name"));
    assert!(d.message.contains("duplicate stage name \"manager\""));
}

#[test]
fn stage_without_approvers() {
    let d = broken("people = [\"carol\", \"dave\", \"erin\"]", "");
    assert_eq!(at(&d), (26, 1, "stages[1].approvers"));
    assert!(d.message.contains("no approvers"));
}

#[test]
fn semantic_errors_each_name_their_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "name = \"engineering-joiner\"",
            "name = \"Engineering Joiner\"",
            "name",
        ),
        ("team = \"engineering\"", "team = \" \"", "team"),
        (
            "sources = [\"email\", \"csv\", \"cli\", \"console\"]",
            "sources = []",
            "intake.sources",
        ),
        (
            "sources = [\"email\", \"csv\"",
            "sources = [\"email\", \"email\"",
            "intake.sources[1]",
        ),
        ("sources = [\"email\", ", "sources = [", "intake.mailbox"),
        (
            "mailbox = \"hr-inbox\"",
            "mailbox = \"HR inbox\"",
            "intake.mailbox",
        ),
        ("kinds = [\"joiner\"]", "kinds = []", "intake.kinds"),
        (
            "kinds = [\"joiner\"]",
            "kinds = [\"joiner\", \"joiner\"]",
            "intake.kinds[1]",
        ),
        (
            "\"start_date\", \"team\"]",
            "\"start_date\", \"shoe_size\"]",
            "validation.required_fields[2]",
        ),
        (
            "\"start_date\", \"team\"]",
            "\"start_date\", \"start_date\"]",
            "validation.required_fields[2]",
        ),
        (
            "email_domains = [\"example.com\"]",
            "email_domains = [\"localhost\"]",
            "validation.email_domains[0]",
        ),
        ("name = \"manager\"", "name = \"\"", "stages[0].name"),
        (
            "people = [\"carol\",",
            "people = [\"car ol\",",
            "stages[1].people[0]",
        ),
        (
            "approvers = [\"line_manager\"]",
            "approvers = [\"line_manager\", \"line_manager\"]",
            "stages[0].approvers[1]",
        ),
        (
            "escalate_to = \"group:eng-leads\"\n",
            "",
            "stages[0].escalate_after",
        ),
        ("escalate_after = \"1d\"\n", "", "stages[0].escalate_to"),
        (
            "escalate_to = \"group:eng-leads\"",
            "escalate_to = \"group:\"",
            "stages[0].escalate_to",
        ),
        (
            "escalate_to = \"group:eng-leads\"",
            "escalate_to = \"two words\"",
            "stages[0].escalate_to",
        ),
        (
            "expire_after = \"7d\"",
            "expire_after = \"2d\"\nremind_after = \"3d\"",
            "",
        ),
        (
            "name = \"developer-role\"",
            "name = \"account\"",
            "steps[1].name",
        ),
        ("name = \"account\"", "name = \" \"", "steps[0].name"),
        (
            "connector = \"demo-target\"",
            "connector = \"Demo Target\"",
            "steps[0].connector",
        ),
        (
            "params = { role = \"developer\" }",
            "params = { }",
            "steps[1].params",
        ),
        (
            "params = { role = \"developer\" }",
            "params = { role = 3 }",
            "steps[1].params.role",
        ),
        (
            "team = \"{team}\"",
            "team = \"{teem}\"",
            "steps[0].params.team",
        ),
        (
            "team = \"{team}\"",
            "team = \"{team\"",
            "steps[0].params.team",
        ),
        (
            "subject = \"Welcome, {{ first_name }}\"",
            "subject = \"Welcome, {{ nick }}\"",
            "notifications.welcome.subject",
        ),
        (
            "body = \"Your login is {{ username }}.\"",
            "body = \"x {{ y\"",
            "notifications.welcome.body",
        ),
    ];
    for (from, to, field) in cases {
        assert!(GOOD.contains(from), "sample lacks {from:?}");
        let text = GOOD.replacen(from, to, 1);
        let errors = parse(&text).expect_err(&format!("{to:?} must fail"));
        if field.is_empty() {
            // Duplicate keys (remind_after twice) are a TOML error, located at the second key.
            assert_eq!(errors.len(), 1, "{errors:#?}");
            continue;
        }
        assert!(
            errors.iter().any(|d| d.field == *field),
            "{to:?}: expected {field}, got {errors:#?}"
        );
        for d in &errors {
            assert!(d.line >= 1 && d.column >= 1);
        }
    }
}

#[test]
fn timer_ordering() {
    let text = GOOD.replacen("expire_after = \"7d\"", "expire_after = \"4h\"", 1);
    let errors = parse(&text).expect_err("fails");
    let fields: Vec<&str> = errors.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["stages[0].remind_after", "stages[0].escalate_after"]
    );
}

#[test]
fn durations() {
    for (text, seconds, shown) in [
        ("90s", 90, "90s"),
        ("30m", 1800, "30m"),
        ("2h", 7200, "2h"),
        ("120m", 7200, "2h"),
        ("3d", 259_200, "3d"),
        ("1w", 604_800, "1w"),
        ("14d", 1_209_600, "2w"),
    ] {
        let spec: DurationSpec = text.parse().expect(text);
        assert_eq!(spec.duration(), Duration::from_secs(seconds));
        assert_eq!(spec.to_string(), shown);
    }
    for bad in [
        "",
        "h",
        "2",
        "2 h",
        "2x",
        "-1h",
        "0h",
        "1.5h",
        "99999999999999999999s",
        "600w",
    ] {
        assert!(bad.parse::<DurationSpec>().is_err(), "{bad}");
    }
}

#[test]
fn approver_sources() {
    assert_eq!(
        ApproverSource::parse("line_manager", false),
        Ok(ApproverSource::LineManager)
    );
    assert_eq!(
        ApproverSource::parse("group:it", false),
        Ok(ApproverSource::Group("it".into()))
    );
    assert!(ApproverSource::parse("group: ", false).is_err());
    assert!(ApproverSource::parse("alice", false).is_err());
    assert_eq!(
        ApproverSource::parse("alice", true),
        Ok(ApproverSource::Person("alice".into()))
    );
    assert!(ApproverSource::parse("a b", true).is_err());
    for source in [
        ApproverSource::LineManager,
        ApproverSource::Group("x".into()),
        ApproverSource::Person("bob".into()),
    ] {
        assert_eq!(ApproverSource::parse(&source.to_string(), true), Ok(source));
    }
}

#[test]
fn names_and_logins() {
    assert!(is_document_name("sales-joiner"));
    assert!(is_document_name("a.b_c-1"));
    assert!(!is_document_name(""));
    assert!(!is_document_name("-x"));
    assert!(!is_document_name("Sales"));
    assert!(!is_document_name(&"a".repeat(65)));
    assert!(is_login("alice"));
    assert!(is_login("a.b-c_d@corp"));
    assert!(!is_login(""));
    assert!(!is_login("a b"));
    assert!(!is_login(&"a".repeat(65)));
}

#[test]
fn connector_references() {
    let workflow = good();
    assert!(
        workflow
            .check_connectors(&|name| name == "demo-target")
            .is_empty()
    );
    let errors = workflow.check_connectors(&|_| false);
    assert_eq!(
        errors,
        vec![
            FieldError::new("steps[0].connector", "unknown connector \"demo-target\""),
            FieldError::new("steps[1].connector", "unknown connector \"demo-target\""),
        ]
    );
    let located = diagnostic::locate("w.toml", GOOD, &errors);
    assert_eq!((located[0].line, located[0].column), (33, 13));
    assert_eq!((located[1].line, located[1].column), (39, 13));
}

fn sample() -> SampleRequest {
    SampleRequest {
        subject_name: "Jürgen Groß".into(),
        subject_email: Some("juergen.gross@Example.com".into()),
        username: None,
        requester: "carol".into(),
        fields: [
            ("team".to_string(), "platform".to_string()),
            ("start_date".to_string(), "2026-12-01".to_string()),
        ]
        .into_iter()
        .collect(),
        line_manager: Some("bob".into()),
        groups: BTreeMap::new(),
        today: NaiveDate::from_ymd_opt(2026, 11, 22),
    }
}

#[test]
fn rules() {
    let rules = good().validation;
    assert!(rules.check(&sample()).is_empty());
    let mut request = sample();
    request.subject_email = Some("j@evil.test".into());
    request
        .fields
        .insert("start_date".into(), "2026-11-21".into());
    request.fields.remove("team");
    let violations = rules.check(&request);
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["team", "subject_email", "start_date"]);
    assert!(violations[2].message.contains("in the past"));

    request = sample();
    request
        .fields
        .insert("start_date".into(), "2027-06-01".into());
    assert_eq!(
        rules.check(&request)[0].message,
        "2027-06-01 is 191 days ahead; at most 90 allowed"
    );
    request
        .fields
        .insert("start_date".into(), "next monday".into());
    assert!(rules.check(&request)[0].message.contains("not a date"));
    request
        .fields
        .insert("start_date".into(), "2026-11-22".into());
    assert!(rules.check(&request).is_empty(), "today is allowed");
    request.today = None;
    request
        .fields
        .insert("start_date".into(), "2000-01-01".into());
    assert!(rules.check(&request).is_empty(), "no date, no date rules");
    request.subject_email = Some("no-at-sign".into());
    assert_eq!(rules.check(&request)[0].field, "subject_email");
    request.subject_email = Some("   ".into());
    assert_eq!(rules.check(&request)[0].message, "is required");
}

#[test]
fn dry_run_resolves_the_chain_and_plan() {
    let run = dry_run(&good(), &sample());
    assert_eq!(run.username.as_deref(), Some("jgross"));
    assert!(run.problems.is_empty(), "{:?}", run.problems);
    assert_eq!(run.chain.len(), 2);
    assert_eq!(run.chain[0].approvers, vec!["bob".to_string()]);
    assert!(run.chain[0].feasible);
    assert_eq!(run.chain[0].escalate_to.as_deref(), Some("group:eng-leads"));
    // carol is the requester: separation of duties removes her; dave and erin remain.
    assert_eq!(
        run.chain[1].approvers,
        vec!["dave".to_string(), "erin".to_string()]
    );
    assert_eq!(run.chain[1].excluded, vec!["carol".to_string()]);
    assert!(run.chain[1].feasible);
    assert_eq!(run.steps[0].params["team"], "platform");
    assert_eq!(run.steps[0].params["full_name"], "Jürgen Groß");
    assert_eq!(run.steps[1].params["role"], "developer");
    assert!(run.is_clean());
    let text = run.to_string();
    assert!(
        text.contains("stage 2 security [quorum(2)]: dave, erin; excluded carol"),
        "{text}"
    );
    assert!(
        text.contains("step account create_account on demo-target"),
        "{text}"
    );
}

#[test]
fn dry_run_reports_what_cannot_work() {
    let mut request = sample();
    request.line_manager = None;
    request.requester = "dave".into();
    request.username = Some("erin".into());
    let run = dry_run(&good(), &request);
    assert_eq!(run.username.as_deref(), Some("erin"));
    assert_eq!(
        run.chain[0].unresolved,
        vec!["line_manager: no line manager known".to_string()]
    );
    assert!(!run.chain[0].feasible);
    assert_eq!(run.chain[1].approvers, vec!["carol".to_string()]);
    assert!(!run.chain[1].feasible, "quorum(2) with one approver left");
    assert!(!run.is_clean());
    assert!(run.to_string().contains("CANNOT BE APPROVED"));

    let mut workflow = good();
    workflow.stages[0].approvers = vec![
        ApproverSource::Group("eng".into()),
        ApproverSource::Group("empty".into()),
        ApproverSource::Group("missing".into()),
    ];
    let mut request = sample();
    request.groups.insert(
        "eng".into(),
        vec!["alice".into(), "bob".into(), "alice".into()],
    );
    request.groups.insert("empty".into(), vec![]);
    request.subject_name = "李".into();
    request.subject_email = None;
    let run = dry_run(&workflow, &request);
    assert_eq!(
        run.chain[0].approvers,
        vec!["alice".to_string(), "bob".to_string()]
    );
    assert_eq!(
        run.chain[0].unresolved,
        vec![
            "group:empty: has no members".to_string(),
            "group:missing: unknown group".to_string()
        ]
    );
    assert!(run.username.is_none());
    assert!(run.problems.iter().any(|p| p.starts_with("username:")));
    assert!(run.problems.iter().any(|p| p.starts_with("subject_email:")));
}

#[test]
fn stage_resolution_and_escalation_target() {
    let workflow = good();
    let groups: BTreeMap<String, Vec<String>> =
        [("eng-leads".to_string(), vec!["alice".to_string()])]
            .into_iter()
            .collect();
    let resolved = workflow.stages[1].resolve_approvers(None, &groups, "dave", Some("erin"));
    assert_eq!(resolved.approvers, vec!["carol".to_string()]);
    assert_eq!(
        resolved.excluded,
        vec!["dave".to_string(), "erin".to_string()]
    );
    assert!(resolved.unresolved.is_empty());
    let resolved = workflow.stages[0].resolve_approvers(Some("bob"), &groups, "x", None);
    assert_eq!(resolved.approvers, vec!["bob".to_string()]);
    assert_eq!(
        workflow.stages[0].escalation_target(),
        Some(ApproverSource::Group("eng-leads".into()))
    );
    assert_eq!(workflow.stages[1].escalation_target(), None);
    let mut stage = workflow.stages[1].clone();
    stage.escalate_to = Some("bob".into());
    assert_eq!(
        stage.escalation_target(),
        Some(ApproverSource::Person("bob".into()))
    );
}

#[test]
fn workflow_without_stages_goes_straight_to_scheduling() {
    let text = r#"name = "x"
team = "t"
[intake]
sources = ["cli"]
kinds = ["leaver"]
"#;
    let workflow = parse(text).expect("minimal workflow");
    let run = dry_run(&workflow, &sample());
    assert!(run.chain.is_empty());
    assert!(run.to_string().contains("approval: none"));
}
