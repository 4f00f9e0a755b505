//! Workflow definitions (TOML): intake binding, validation rules, approval stages, provisioning
//! steps and notification templates; their validation by field path; and a pure dry run.
//!
//! A workflow document looks like:
//!
//! ```toml
//! kind = "workflow"
//! name = "engineering-joiner"
//! team = "engineering"
//!
//! [intake]
//! sources = ["email", "csv", "cli", "console"]
//! mailbox = "hr-inbox"
//! kinds = ["joiner"]
//!
//! [validation]
//! required_fields = ["subject_email", "start_date"]
//! email_domains = ["example.com"]
//! start_date_not_in_past = true
//!
//! [[stages]]
//! name = "manager"
//! policy = "any"
//! approvers = ["line_manager"]
//! remind_after = "4h"
//! escalate_after = "1d"
//! escalate_to = "group:it-leads"
//!
//! [[steps]]
//! name = "account"
//! connector = "demo-target"
//! action = "create_account"
//! params = { team = "{team}" }
//!
//! [notifications.welcome]
//! subject = "Welcome, {{ first_name }}"
//! body = "Your login is {{ username }}."
//! ```

use super::approval::Policy;
use super::diagnostic::{self, Diagnostic, FieldError};
use super::notification::{Notifications, check_templates};
use super::placeholder::placeholders;
use super::request::RequestKind;
use super::timezone::parse_zone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use super::placeholder::{EXTRA_PLACEHOLDERS, REQUEST_FIELDS, is_placeholder};

/// A complete workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Unique document name, e.g. `engineering-joiner`.
    pub name: String,
    /// What the workflow is for.
    #[serde(default)]
    pub description: String,
    /// The team that owns it.
    pub team: String,
    /// Where its requests come from.
    pub intake: IntakeBinding,
    /// Rules checked before approval.
    #[serde(default)]
    pub validation: ValidationRules,
    /// Ordered approval stages (none: approved on validation).
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Ordered provisioning steps.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Message templates.
    #[serde(default)]
    pub notifications: Notifications,
    /// The workflow's time zone (IANA name), for mail scheduled at a local hour such as the
    /// welcome mail; a request's own `time_zone` field wins. UTC when unset.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Business hours: when set, stage timers count only working time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<super::calendar::CalendarSpec>,
    /// A leaver's grace period: revoking steps wait, with an optional warning mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaver: Option<super::grace::LeaverSettings>,
}

/// How requests reach a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeBinding {
    /// Accepted intake channels.
    pub sources: Vec<IntakeSource>,
    /// The mailbox document whose mail feeds this workflow (needs the `email` source).
    #[serde(default)]
    pub mailbox: Option<String>,
    /// Which request kinds it handles.
    pub kinds: Vec<RequestKind>,
}

/// An intake channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeSource {
    /// An IMAP mailbox.
    Email,
    /// A CSV import.
    Csv,
    /// The command line.
    Cli,
    /// The operator console.
    Console,
}

/// Rules a request must satisfy before it goes to approval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRules {
    /// Fields that must be present and non-empty (names from [`REQUEST_FIELDS`]).
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// When not empty, the subject's e-mail domain must be one of these (case-insensitive).
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Refuse a `start_date` before today.
    #[serde(default)]
    pub start_date_not_in_past: bool,
    /// Refuse a `start_date` more than this many days ahead.
    #[serde(default)]
    pub max_days_ahead: Option<u32>,
    /// The requester must be the subject's line manager per the directory: `off` (default),
    /// `warn` or `required` (see [`super::directory_checks`]).
    #[serde(default)]
    pub requester_is_line_manager: super::directory_checks::CheckLevel,
    /// A joiner must not already have an account in a target its `create_account` steps write
    /// to (asked of each connector when the request is validated): `off` (default), `warn` or
    /// `required`.
    #[serde(default)]
    pub not_in_targets: super::directory_checks::CheckLevel,
    /// Groups the subject must be in, per the directory.
    #[serde(default)]
    pub required_groups: Vec<String>,
}

/// One approval stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Unique within the workflow.
    pub name: String,
    /// `any`, `all` or `quorum(n)`.
    pub policy: Policy,
    /// Dynamic approver sources: `line_manager`, `managers_manager`, `group:NAME`, `owners:NAME`.
    #[serde(default)]
    pub approvers: Vec<ApproverSource>,
    /// Named approvers (login names).
    #[serde(default)]
    pub people: Vec<String>,
    /// Remind undecided approvers after this long.
    #[serde(default)]
    pub remind_after: Option<DurationSpec>,
    /// Escalate after this long (needs `escalate_to`).
    #[serde(default)]
    pub escalate_after: Option<DurationSpec>,
    /// Reject as expired after this long.
    #[serde(default)]
    pub expire_after: Option<DurationSpec>,
    /// Who takes over on escalation: a login, `line_manager`, `managers_manager`, `group:NAME`
    /// or `owners:NAME` (added to the stage's approvers).
    #[serde(default)]
    pub escalate_to: Option<String>,
    /// When the stage opens, an approver who approved an earlier stage of the same request
    /// has that approval recorded here too ("carried forward from stage N").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carry_forward: bool,
}

/// A dynamic source of approvers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApproverSource {
    /// The subject's line manager from the directory.
    LineManager,
    /// The line manager's own line manager.
    ManagersManager,
    /// Members of a directory group.
    Group(String),
    /// Owners of a directory group (`owners:NAME`).
    GroupOwners(String),
    /// One named person (used for `escalate_to`).
    Person(String),
}

impl ApproverSource {
    /// Parses `line_manager` or `group:NAME`; with `allow_person`, any other login name is a
    /// person (as `escalate_to` accepts), otherwise it is an error.
    pub fn parse(text: &str, allow_person: bool) -> Result<Self, String> {
        let text = text.trim();
        if text == "line_manager" {
            return Ok(Self::LineManager);
        }
        if text == "managers_manager" {
            return Ok(Self::ManagersManager);
        }
        if let Some(group) = text.strip_prefix("owners:") {
            let group = group.trim();
            if group.is_empty() {
                return Err("owners: needs a group name".to_string());
            }
            return Ok(Self::GroupOwners(group.to_string()));
        }
        if let Some(group) = text.strip_prefix("group:") {
            let group = group.trim();
            if group.is_empty() {
                return Err("group: needs a group name".to_string());
            }
            return Ok(Self::Group(group.to_string()));
        }
        if allow_person && is_login(text) {
            return Ok(Self::Person(text.to_string()));
        }
        if allow_person {
            return Err(format!(
                "\"{text}\" is not a login name, line_manager or group:NAME"
            ));
        }
        Err(format!(
            "unknown approver source \"{text}\": expected line_manager, managers_manager, group:NAME or owners:NAME (list named approvers in `people`)"
        ))
    }
}

impl fmt::Display for ApproverSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineManager => f.write_str("line_manager"),
            Self::ManagersManager => f.write_str("managers_manager"),
            Self::Group(group) => write!(f, "group:{group}"),
            Self::GroupOwners(group) => write!(f, "owners:{group}"),
            Self::Person(login) => f.write_str(login),
        }
    }
}

impl Serialize for ApproverSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApproverSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        diagnostic::deserialize_from_str(
            deserializer,
            "line_manager, managers_manager, group:NAME or owners:NAME",
        )
    }
}

/// True for a plausible login name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn is_login(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// A duration written as a whole number and a unit: `90s`, `30m`, `2h`, `3d`, `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationSpec(Duration);

impl DurationSpec {
    /// The duration.
    pub fn duration(&self) -> Duration {
        self.0
    }
}

impl FromStr for ApproverSource {
    type Err = String;

    /// Strict form, as in `approvers`: `line_manager` or `group:NAME`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, false)
    }
}

impl FromStr for DurationSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let unit_seconds: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(format!(
                    "invalid duration \"{text}\": expected a number and a unit s, m, h, d or w (e.g. \"2h\")"
                ));
            }
        };
        let amount: u64 = digits.parse().map_err(|_| {
            format!("invalid duration \"{text}\": expected a whole number before the unit")
        })?;
        if amount == 0 {
            return Err(format!(
                "invalid duration \"{text}\": must be longer than zero"
            ));
        }
        let seconds = amount
            .checked_mul(unit_seconds)
            .filter(|seconds| *seconds <= 10 * 365 * 86_400)
            .ok_or_else(|| format!("invalid duration \"{text}\": longer than ten years"))?;
        Ok(Self(Duration::from_secs(seconds)))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if seconds.is_multiple_of(size) {
                return write!(f, "{}{unit}", seconds / size);
            }
        }
        write!(f, "{seconds}s")
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        diagnostic::deserialize_from_str(deserializer, "a duration such as \"2h\" or \"3d\"")
    }
}

/// One provisioning step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique within the workflow.
    pub name: String,
    /// Name of a connector document (optional for a `manual` step: the connector that
    /// completion is verified against by reading the account back).
    #[serde(default)]
    pub connector: String,
    /// What to do in the target.
    pub action: StepAction,
    /// Action parameters; string values may contain `{placeholders}`.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// What a provisioning step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Create the account.
    CreateAccount,
    /// Update account attributes.
    UpdateAccount,
    /// Disable the account (leaver).
    DisableAccount,
    /// Re-enable a disabled account.
    EnableAccount,
    /// Delete the account.
    DeleteAccount,
    /// Grant `params.role`.
    GrantRole,
    /// Revoke `params.role`.
    RevokeRole,
    /// A task for a person (`params.instruction`), for a system without an API: provisioning
    /// waits until an operator marks it done.
    Manual,
}

impl StepAction {
    /// The action's name as written in TOML.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateAccount => "create_account",
            Self::UpdateAccount => "update_account",
            Self::DisableAccount => "disable_account",
            Self::EnableAccount => "enable_account",
            Self::DeleteAccount => "delete_account",
            Self::GrantRole => "grant_role",
            Self::RevokeRole => "revoke_role",
            Self::Manual => "manual",
        }
    }

    fn needs_role(&self) -> bool {
        matches!(self, Self::GrantRole | Self::RevokeRole)
    }
}

impl fmt::Display for StepAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn check_template_text(field: String, text: &str, errors: &mut Vec<FieldError>) {
    match placeholders(text) {
        Err(message) => errors.push(FieldError::new(field, message)),
        Ok(names) => {
            for name in names {
                if !is_placeholder(&name) {
                    errors.push(FieldError::new(
                        field.clone(),
                        format!("unknown placeholder {{{name}}}"),
                    ));
                }
            }
        }
    }
}

fn check_params_value(field: String, value: &toml::Value, errors: &mut Vec<FieldError>) {
    match value {
        toml::Value::String(text) => check_template_text(field, text, errors),
        toml::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_params_value(format!("{field}[{index}]"), item, errors);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table {
                check_params_value(format!("{field}.{key}"), item, errors);
            }
        }
        _ => {}
    }
}

/// True for a document name: 1–64 of lower-case letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit.
pub fn is_document_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

pub(crate) fn check_document_name(name: &str, errors: &mut Vec<FieldError>) {
    if !is_document_name(name) {
        errors.push(FieldError::new(
            "name",
            format!(
                "\"{name}\" is not a valid name: use 1-64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ));
    }
}

fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(usize, &'a str)> {
    let mut seen = BTreeSet::new();
    names
        .enumerate()
        .filter(|(_, name)| !seen.insert(*name))
        .collect()
}

impl Workflow {
    /// Parses and validates a workflow document (`kind = "workflow"` may be present or not).
    pub fn parse(file: &str, text: &str) -> Result<Self, Vec<Diagnostic>> {
        let workflow: Self = diagnostic::deserialize_document(file, text, "workflow", false)?;
        let errors = workflow.validate();
        if errors.is_empty() {
            Ok(workflow)
        } else {
            Err(diagnostic::locate(file, text, &errors))
        }
    }

    /// Every problem within this document, by field path. References to other documents
    /// (connectors, mailboxes) are checked by [`Workflow::check_connectors`] and the config set check.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        if self.team.trim().is_empty() {
            errors.push(FieldError::new("team", "must not be empty"));
        }
        self.validate_intake(&mut errors);
        self.validate_rules(&mut errors);
        self.validate_stages(&mut errors);
        self.validate_steps(&mut errors);
        errors.extend(check_templates(&self.notifications));
        if let Some(zone) = &self.time_zone
            && let Err(why) = parse_zone(zone)
        {
            errors.push(FieldError::new("time_zone", why));
        }
        if let Some(calendar) = &self.calendar {
            errors.extend(calendar.validate());
        }
        if let Some(leaver) = &self.leaver {
            errors.extend(leaver.validate(self));
        }
        errors
    }

    /// The checked business-hours calendar, when the workflow has one that is valid.
    pub fn business_calendar(&self) -> Option<super::calendar::Calendar> {
        self.calendar.as_ref().and_then(|spec| spec.compile().ok())
    }

    fn validate_intake(&self, errors: &mut Vec<FieldError>) {
        let intake = &self.intake;
        if intake.sources.is_empty() {
            errors.push(FieldError::new(
                "intake.sources",
                "needs at least one source",
            ));
        }
        for (index, source) in intake.sources.iter().enumerate() {
            if intake.sources[..index].contains(source) {
                errors.push(FieldError::new(
                    format!("intake.sources[{index}]"),
                    "listed twice",
                ));
            }
        }
        if let Some(mailbox) = &intake.mailbox {
            if !is_document_name(mailbox) {
                errors.push(FieldError::new(
                    "intake.mailbox",
                    format!("\"{mailbox}\" is not a valid mailbox document name"),
                ));
            }
            if !intake.sources.contains(&IntakeSource::Email) {
                errors.push(FieldError::new(
                    "intake.mailbox",
                    "a mailbox is set but \"email\" is not among intake.sources",
                ));
            }
        }
        if intake.kinds.is_empty() {
            errors.push(FieldError::new(
                "intake.kinds",
                "needs at least one of joiner, mover, leaver",
            ));
        }
        for (index, kind) in intake.kinds.iter().enumerate() {
            if intake.kinds[..index].contains(kind) {
                errors.push(FieldError::new(
                    format!("intake.kinds[{index}]"),
                    "listed twice",
                ));
            }
        }
    }

    fn validate_rules(&self, errors: &mut Vec<FieldError>) {
        let rules = &self.validation;
        for (index, field) in rules.required_fields.iter().enumerate() {
            if !REQUEST_FIELDS.contains(&field.as_str()) {
                errors.push(FieldError::new(
                    format!("validation.required_fields[{index}]"),
                    format!(
                        "unknown field \"{field}\": expected one of {}",
                        REQUEST_FIELDS.join(", ")
                    ),
                ));
            } else if rules.required_fields[..index].contains(field) {
                errors.push(FieldError::new(
                    format!("validation.required_fields[{index}]"),
                    "listed twice",
                ));
            }
        }
        for (index, domain) in rules.email_domains.iter().enumerate() {
            let valid = !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid {
                errors.push(FieldError::new(
                    format!("validation.email_domains[{index}]"),
                    format!("\"{domain}\" is not a domain name like example.com"),
                ));
            }
        }
    }

    fn validate_stages(&self, errors: &mut Vec<FieldError>) {
        for (index, name) in duplicates(self.stages.iter().map(|stage| stage.name.as_str())) {
            errors.push(FieldError::new(
                format!("stages[{index}].name"),
                format!("duplicate stage name \"{name}\""),
            ));
        }
        for (index, stage) in self.stages.iter().enumerate() {
            let at = |field: &str| format!("stages[{index}].{field}");
            if stage.name.trim().is_empty() {
                errors.push(FieldError::new(at("name"), "must not be empty"));
            }
            if stage.approvers.is_empty() && stage.people.is_empty() {
                errors.push(FieldError::new(
                    at("approvers"),
                    "stage has no approvers: set `approvers` (line_manager, group:NAME) or `people`",
                ));
            }
            for (person_index, person) in stage.people.iter().enumerate() {
                let field = format!("stages[{index}].people[{person_index}]");
                if !is_login(person) {
                    errors.push(FieldError::new(
                        field,
                        format!("\"{person}\" is not a login name (letters, digits, . _ - @)"),
                    ));
                } else if stage.people[..person_index].contains(person) {
                    errors.push(FieldError::new(field, format!("\"{person}\" listed twice")));
                }
            }
            for (source_index, source) in stage.approvers.iter().enumerate() {
                if stage.approvers[..source_index].contains(source) {
                    errors.push(FieldError::new(
                        format!("stages[{index}].approvers[{source_index}]"),
                        format!("\"{source}\" listed twice"),
                    ));
                }
            }
            self.validate_stage_policy(index, stage, errors);
            self.validate_stage_timers(index, stage, errors);
        }
        let carry: Vec<bool> = self.stages.iter().map(|s| s.carry_forward).collect();
        errors.extend(super::carry_forward::check_stages(&carry));
    }

    fn validate_stage_policy(&self, index: usize, stage: &Stage, errors: &mut Vec<FieldError>) {
        let Policy::Quorum(needed) = stage.policy else {
            return;
        };
        // Only a purely static list can be counted now; groups and managers resolve later.
        if stage.approvers.is_empty() && !stage.people.is_empty() {
            let distinct: BTreeSet<&str> = stage.people.iter().map(String::as_str).collect();
            if usize::try_from(needed).unwrap_or(usize::MAX) > distinct.len() {
                errors.push(FieldError::new(
                    format!("stages[{index}].policy"),
                    format!(
                        "quorum({needed}) needs more approvals than the {} approver(s) listed in `people`",
                        distinct.len()
                    ),
                ));
            }
        }
    }

    fn validate_stage_timers(&self, index: usize, stage: &Stage, errors: &mut Vec<FieldError>) {
        let at = |field: &str| format!("stages[{index}].{field}");
        match (&stage.escalate_after, &stage.escalate_to) {
            (Some(_), None) => errors.push(FieldError::new(
                at("escalate_after"),
                "escalate_after needs escalate_to (a login, line_manager, managers_manager, group:NAME or owners:NAME)",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                at("escalate_to"),
                "escalate_to needs escalate_after",
            )),
            _ => {}
        }
        if let Some(target) = &stage.escalate_to
            && let Err(message) = ApproverSource::parse(target, true)
        {
            errors.push(FieldError::new(at("escalate_to"), message));
        }
        if let (Some(remind), Some(expire)) = (&stage.remind_after, &stage.expire_after)
            && remind >= expire
        {
            errors.push(FieldError::new(
                at("remind_after"),
                format!("remind_after ({remind}) must be shorter than expire_after ({expire})"),
            ));
        }
        if let (Some(escalate), Some(expire)) = (&stage.escalate_after, &stage.expire_after)
            && escalate >= expire
        {
            errors.push(FieldError::new(
                at("escalate_after"),
                format!("escalate_after ({escalate}) must be shorter than expire_after ({expire})"),
            ));
        }
    }

    fn validate_steps(&self, errors: &mut Vec<FieldError>) {
        for (index, name) in duplicates(self.steps.iter().map(|step| step.name.as_str())) {
            errors.push(FieldError::new(
                format!("steps[{index}].name"),
                format!("duplicate step name \"{name}\""),
            ));
        }
        for (index, step) in self.steps.iter().enumerate() {
            if step.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("steps[{index}].name"),
                    "must not be empty",
                ));
            }
            let manual = step.action == StepAction::Manual;
            let optional = manual && step.connector.is_empty();
            if !optional && !is_document_name(&step.connector) {
                errors.push(FieldError::new(
                    format!("steps[{index}].connector"),
                    format!("\"{}\" is not a valid connector name", step.connector),
                ));
            }
            if step.action.needs_role() {
                match step.params.get("role") {
                    Some(toml::Value::String(role)) if !role.trim().is_empty() => {}
                    Some(_) => errors.push(FieldError::new(
                        format!("steps[{index}].params.role"),
                        "must be a non-empty string",
                    )),
                    None => errors.push(FieldError::new(
                        format!("steps[{index}].params"),
                        format!("{} needs params.role", step.action),
                    )),
                }
            }
            if manual {
                match step.params.get("instruction") {
                    Some(toml::Value::String(text)) if !text.trim().is_empty() => {}
                    Some(_) => errors.push(FieldError::new(
                        format!("steps[{index}].params.instruction"),
                        "must be a non-empty string",
                    )),
                    None => errors.push(FieldError::new(
                        format!("steps[{index}].params"),
                        "manual needs params.instruction (what the operator must do)",
                    )),
                }
            }
            for (key, value) in &step.params {
                check_params_value(format!("steps[{index}].params.{key}"), value, errors);
            }
        }
    }

    /// Steps whose connector is not among the known connector names.
    pub fn check_connectors(&self, known: &dyn Fn(&str) -> bool) -> Vec<FieldError> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, step)| !(step.action == StepAction::Manual && step.connector.is_empty()))
            .filter(|(_, step)| !known(&step.connector))
            .map(|(index, step)| {
                FieldError::new(
                    format!("steps[{index}].connector"),
                    format!("unknown connector \"{}\"", step.connector),
                )
            })
            .collect()
    }

    /// The role names that `grant_role`/`revoke_role` steps name literally (no placeholders),
    /// with the field path of each.
    pub fn referenced_roles(&self) -> Vec<(String, String)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, step)| step.action.needs_role())
            .filter_map(|(index, step)| match step.params.get("role") {
                Some(toml::Value::String(role)) if !role.contains('{') => {
                    Some((format!("steps[{index}].params.role"), role.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "workflow_tests.rs"]
mod tests;
