//! A workflow applied to a request without doing anything: the request as the rules see it
//! ([`SampleRequest`]), the validation rules' verdicts, each approval stage resolved from the
//! directory facts given, and the provisioning steps with their parameters rendered ([`dry_run`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::approval::{self, Policy};
use super::placeholder::render;
use super::username;
use super::workflow::{
    ApproverSource, REQUEST_FIELDS, Stage, StepAction, ValidationRules, Workflow,
};

/// A request as the workflow sees it, for rule checks and dry runs, plus the directory facts a
/// dry run needs (line manager, group members) and the date to check start dates against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleRequest {
    /// Full name of the person.
    pub subject_name: String,
    /// Their e-mail.
    pub subject_email: Option<String>,
    /// Given username; derived when `None`.
    pub username: Option<String>,
    /// Who asks (login or e-mail).
    pub requester: String,
    /// Payload fields: team, start_date (YYYY-MM-DD), manager, title, …
    pub fields: BTreeMap<String, String>,
    /// The subject's line manager (login), as the directory would answer.
    pub line_manager: Option<String>,
    /// Group name → member logins, as the directory would answer.
    pub groups: BTreeMap<String, Vec<String>>,
    /// "Today" for start date rules; without it those rules are not checked.
    pub today: Option<NaiveDate>,
}

impl SampleRequest {
    /// The value of a request field, from the columns or the payload; empty counts as absent.
    pub fn field(&self, name: &str) -> Option<&str> {
        let value = match name {
            "subject_name" => Some(self.subject_name.as_str()),
            "subject_email" => self.subject_email.as_deref(),
            "username" => self.username.as_deref(),
            "requester" => Some(self.requester.as_str()),
            other => self.fields.get(other).map(String::as_str),
        };
        value.filter(|value| !value.trim().is_empty())
    }

    /// Values for every placeholder this request can fill.
    pub fn placeholder_values(&self, workflow: &Workflow) -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for name in REQUEST_FIELDS {
            if let Some(value) = self.field(name) {
                values.insert((*name).to_string(), value.to_string());
            }
        }
        let tokens: Vec<&str> = self.subject_name.split_whitespace().collect();
        if let Some(first) = tokens.first() {
            values.insert("first_name".into(), (*first).to_string());
        }
        if tokens.len() > 1
            && let Some(last) = tokens.last()
        {
            values.insert("last_name".into(), (*last).to_string());
        }
        values.insert("full_name".into(), tokens.join(" "));
        if let Some(email) = self.field("subject_email") {
            values.insert("email".into(), email.to_string());
        }
        values.insert("workflow".into(), workflow.name.clone());
        values
    }
}

/// A rule a request breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleViolation {
    /// The request field concerned.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl ValidationRules {
    /// Checks a request against these rules; an empty list means it passes.
    pub fn check(&self, request: &SampleRequest) -> Vec<RuleViolation> {
        let mut violations = Vec::new();
        for field in &self.required_fields {
            if request.field(field).is_none() {
                violations.push(RuleViolation {
                    field: field.clone(),
                    message: "is required".into(),
                });
            }
        }
        if !self.email_domains.is_empty()
            && let Some(email) = request.field("subject_email")
        {
            let domain = email.rsplit_once('@').map(|(_, domain)| domain.trim());
            let allowed = domain.is_some_and(|domain| {
                self.email_domains
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(domain))
            });
            if !allowed {
                violations.push(RuleViolation {
                    field: "subject_email".into(),
                    message: format!(
                        "\"{email}\" is not in an allowed domain ({})",
                        self.email_domains.join(", ")
                    ),
                });
            }
        }
        let date_rules = self.start_date_not_in_past || self.max_days_ahead.is_some();
        if date_rules && let Some(text) = request.field("start_date") {
            match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
                Err(_) => violations.push(RuleViolation {
                    field: "start_date".into(),
                    message: format!("\"{text}\" is not a date like 2026-03-01"),
                }),
                Ok(start) => {
                    if let Some(today) = request.today {
                        if self.start_date_not_in_past && start < today {
                            violations.push(RuleViolation {
                                field: "start_date".into(),
                                message: format!("{start} is in the past (today is {today})"),
                            });
                        }
                        if let Some(days) = self.max_days_ahead {
                            let ahead = (start - today).num_days();
                            if ahead > i64::from(days) {
                                violations.push(RuleViolation {
                                    field: "start_date".into(),
                                    message: format!(
                                        "{start} is {ahead} days ahead; at most {days} allowed"
                                    ),
                                });
                            }
                        }
                    }
                }
            }
        }
        violations
    }
}

/// One stage of a dry run's approval chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunStage {
    /// Zero-based index.
    pub index: usize,
    /// Stage name.
    pub name: String,
    /// Its policy.
    pub policy: Policy,
    /// Resolved eligible approvers, in order, without duplicates or conflicts of interest.
    pub approvers: Vec<String>,
    /// Approvers removed by separation of duties (requester or subject).
    pub excluded: Vec<String>,
    /// Sources that resolved to nobody, with why.
    pub unresolved: Vec<String>,
    /// False when the policy can never be met by `approvers`.
    pub feasible: bool,
    /// Escalation target as written, if any.
    pub escalate_to: Option<String>,
}

/// One planned provisioning step with its parameters rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Step name.
    pub name: String,
    /// Connector name.
    pub connector: String,
    /// Action.
    pub action: StepAction,
    /// Parameters with placeholders filled (unknown ones left as `{name}`).
    pub params: BTreeMap<String, String>,
}

/// What a workflow would do with a sample request, without doing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRun {
    /// Workflow name.
    pub workflow: String,
    /// The username that would be used (given or derived, ignoring collisions).
    pub username: Option<String>,
    /// Rule violations and other problems that would stop the request.
    pub problems: Vec<String>,
    /// The approval chain.
    pub chain: Vec<DryRunStage>,
    /// The provisioning plan.
    pub steps: Vec<PlannedStep>,
}

impl DryRun {
    /// True when the request would pass validation and every stage can be decided.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
            && self
                .chain
                .iter()
                .all(|stage| stage.feasible && stage.unresolved.is_empty())
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "workflow {}", self.workflow)?;
        writeln!(
            f,
            "username {}",
            self.username.as_deref().unwrap_or("(none)")
        )?;
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        if self.chain.is_empty() {
            writeln!(f, "approval: none (scheduled on validation)")?;
        }
        for stage in &self.chain {
            write!(
                f,
                "stage {} {} [{}]: {}",
                stage.index + 1,
                stage.name,
                stage.policy,
                if stage.approvers.is_empty() {
                    "(nobody)".to_string()
                } else {
                    stage.approvers.join(", ")
                }
            )?;
            if !stage.excluded.is_empty() {
                write!(f, "; excluded {}", stage.excluded.join(", "))?;
            }
            for unresolved in &stage.unresolved {
                write!(f, "; {unresolved}")?;
            }
            if !stage.feasible {
                write!(f, "; CANNOT BE APPROVED")?;
            }
            if let Some(target) = &stage.escalate_to {
                write!(f, "; escalates to {target}")?;
            }
            writeln!(f)?;
        }
        for step in &self.steps {
            let params: Vec<String> = step
                .params
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            writeln!(
                f,
                "step {} {} on {} {}",
                step.name,
                step.action,
                step.connector,
                params.join(" ")
            )?;
        }
        Ok(())
    }
}

fn render_value(value: &toml::Value, values: &BTreeMap<String, String>) -> String {
    match value {
        toml::Value::String(text) => render(text, values),
        toml::Value::Array(items) => {
            let rendered: Vec<String> = items
                .iter()
                .map(|item| render_value(item, values))
                .collect();
            format!("[{}]", rendered.join(", "))
        }
        other => other.to_string(),
    }
}

/// A stage's approvers after resolution against directory facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedApprovers {
    /// Eligible approvers, in order, without duplicates or conflicts of interest.
    pub approvers: Vec<String>,
    /// Removed by separation of duties (the requester or the subject).
    pub excluded: Vec<String>,
    /// Sources that resolved to nobody, with why.
    pub unresolved: Vec<String>,
}

impl Stage {
    /// Resolves this stage's approvers: named people, then the line manager, then group members
    /// (from `groups`: group name → member logins), without duplicates; the requester and the
    /// subject are excluded (separation of duties). Pure: the caller looks the facts up.
    pub fn resolve_approvers(
        &self,
        line_manager: Option<&str>,
        groups: &BTreeMap<String, Vec<String>>,
        requester: &str,
        subject: Option<&str>,
    ) -> ResolvedApprovers {
        let mut candidates: Vec<String> = self.people.clone();
        let mut unresolved = Vec::new();
        for source in &self.approvers {
            match source {
                ApproverSource::LineManager => match line_manager {
                    Some(manager) => candidates.push(manager.to_string()),
                    None => unresolved.push("line_manager: no line manager known".to_string()),
                },
                ApproverSource::Group(group) => match groups.get(group) {
                    Some(members) if !members.is_empty() => {
                        candidates.extend(members.iter().cloned())
                    }
                    Some(_) => unresolved.push(format!("group:{group}: has no members")),
                    None => unresolved.push(format!("group:{group}: unknown group")),
                },
                ApproverSource::Person(login) => candidates.push(login.clone()),
                ApproverSource::ManagersManager | ApproverSource::GroupOwners(_) => unresolved
                    .push(format!(
                        "{source}: looked up in the directory when the request is validated"
                    )),
            }
        }
        let mut seen = BTreeSet::new();
        candidates.retain(|candidate| seen.insert(candidate.clone()));
        let approvers = approval::without_conflicts(&candidates, requester, subject);
        let excluded = candidates
            .iter()
            .filter(|candidate| !approvers.contains(candidate))
            .cloned()
            .collect();
        ResolvedApprovers {
            approvers,
            excluded,
            unresolved,
        }
    }

    /// Who takes over on escalation, parsed from `escalate_to` (a bare name is a person).
    pub fn escalation_target(&self) -> Option<ApproverSource> {
        self.escalate_to
            .as_deref()
            .and_then(|target| ApproverSource::parse(target, true).ok())
    }
}

fn resolve_stage(
    index: usize,
    stage: &Stage,
    request: &SampleRequest,
    subject: Option<&str>,
) -> DryRunStage {
    let resolved = stage.resolve_approvers(
        request.line_manager.as_deref(),
        &request.groups,
        &request.requester,
        subject,
    );
    DryRunStage {
        index,
        name: stage.name.clone(),
        policy: stage.policy,
        feasible: approval::is_feasible(stage.policy, resolved.approvers.len()),
        approvers: resolved.approvers,
        excluded: resolved.excluded,
        unresolved: resolved.unresolved,
        escalate_to: stage.escalate_to.clone(),
    }
}

/// What `workflow` would do with `request`: rule violations, the approval chain with approvers
/// resolved, and the planned steps with parameters rendered. Pure; nothing is looked up.
pub fn dry_run(workflow: &Workflow, request: &SampleRequest) -> DryRun {
    let mut problems: Vec<String> = workflow
        .validation
        .check(request)
        .iter()
        .map(ToString::to_string)
        .collect();
    let username = match request.field("username") {
        Some(given) => Some(given.to_string()),
        None => match username::derive_username(
            &request.subject_name,
            request.field("subject_email"),
            &|_| false,
        ) {
            Ok(derived) => Some(derived),
            Err(error) => {
                problems.push(format!("username: {error}"));
                None
            }
        },
    };
    let subject = username.as_deref();
    let chain = workflow
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| resolve_stage(index, stage, request, subject))
        .collect();
    let mut values = request.placeholder_values(workflow);
    if let Some(name) = &username {
        values.insert("username".into(), name.clone());
    }
    let steps = workflow
        .steps
        .iter()
        .map(|step| PlannedStep {
            name: step.name.clone(),
            connector: step.connector.clone(),
            action: step.action,
            params: step
                .params
                .iter()
                .map(|(key, value)| (key.clone(), render_value(value, &values)))
                .collect(),
        })
        .collect();
    DryRun {
        workflow: workflow.name.clone(),
        username,
        problems,
        chain,
        steps,
    }
}
