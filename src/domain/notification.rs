//! Notification events and their templates: which `{placeholders}` each event can fill, the
//! config-time check for placeholders an event never has, and strict rendering (a missing value
//! is an error naming it, never an empty string).

use std::collections::BTreeMap;

use super::diagnostic::FieldError;
use serde::{Deserialize, Serialize};

/// Message templates; any left out falls back to the built-in text of the notifier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Sent to approvers when a stage opens.
    #[serde(default)]
    pub approval_request: Option<Template>,
    /// Sent to undecided approvers after `remind_after`.
    #[serde(default)]
    pub reminder: Option<Template>,
    /// Sent to `escalate_to` after `escalate_after`.
    #[serde(default)]
    pub escalation: Option<Template>,
    /// Sent to the requester on rejection (`{reason}` is available).
    #[serde(default)]
    pub rejected: Option<Template>,
    /// Sent to the requester when provisioning completed.
    #[serde(default)]
    pub completed: Option<Template>,
    /// Sent to operators when provisioning failed (`{error}` is available).
    #[serde(default)]
    pub failed: Option<Template>,
    /// Sent to the new person on the start date.
    #[serde(default)]
    pub welcome: Option<Template>,
}

impl Notifications {
    /// The templates that are set, with their TOML names.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Template)> {
        [
            ("approval_request", &self.approval_request),
            ("reminder", &self.reminder),
            ("escalation", &self.escalation),
            ("rejected", &self.rejected),
            ("completed", &self.completed),
            ("failed", &self.failed),
            ("welcome", &self.welcome),
        ]
        .into_iter()
        .filter_map(|(name, template)| template.as_ref().map(|template| (name, template)))
    }
}

/// A subject and body with `{placeholders}`; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
}

/// The placeholder names in `text`, or a message for an unbalanced brace.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().enumerate().peekable();
    while let Some((position, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, next)| *next) == Some('{') => {
                chars.next();
            }
            '}' if chars.peek().map(|(_, next)| *next) == Some('}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, inner) in chars.by_ref() {
                    if inner == '}' {
                        closed = true;
                        break;
                    }
                    name.push(inner);
                }
                if !closed {
                    return Err(format!("unclosed '{{' at character {}", position + 1));
                }
                names.push(name);
            }
            '}' => {
                return Err(format!(
                    "'}}' without '{{' at character {} (write '}}}}' for a literal brace)",
                    position + 1
                ));
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Replaces `{name}` with `values[name]`; unknown names stay as written, so a preview shows
/// what is missing. `{{`/`}}` become literal braces. Unbalanced braces are copied as they are.
pub fn render(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for inner in chars.by_ref() {
                    if inner == '}' {
                        closed = true;
                        break;
                    }
                    name.push(inner);
                }
                match values.get(&name) {
                    Some(value) if closed => out.push_str(value),
                    _ => {
                        out.push('{');
                        out.push_str(&name);
                        if closed {
                            out.push('}');
                        }
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Placeholders that only some events fill, with the events that fill them.
const EVENT_ONLY: &[(&str, &[&str])] = &[
    ("reason", &["rejected"]),
    ("error", &["failed"]),
    (
        "stage",
        &["approval_request", "reminder", "escalation", "rejected"],
    ),
    (
        "approver",
        &["approval_request", "reminder", "escalation", "rejected"],
    ),
    // Approval by reply (filled when the notifier has reply settings).
    ("reply_to", &["approval_request", "reminder", "escalation"]),
    (
        "reply_token",
        &["approval_request", "reminder", "escalation"],
    ),
    (
        "reply_instructions",
        &["approval_request", "reminder", "escalation"],
    ),
];

/// Placeholders no notification can fill yet.
const NEVER: &[(&str, &str)] = &[(
    "link",
    "no console link is configured for notifications yet",
)];

/// Reports placeholders a template uses that its event never fills (e.g. `{reason}` in a
/// welcome mail). Unknown names and brace errors are reported by the workflow check itself.
pub fn check_event_placeholders(notifications: &Notifications) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (event, template) in notifications.iter() {
        for (part, text) in [("subject", &template.subject), ("body", &template.body)] {
            let Ok(names) = placeholders(text) else {
                continue;
            };
            for name in names {
                if let Some((_, events)) = EVENT_ONLY.iter().find(|(n, _)| *n == name)
                    && !events.contains(&event)
                {
                    errors.push(FieldError::new(
                        format!("notifications.{event}.{part}"),
                        format!(
                            "{{{name}}} has no value in the {event} notification (only in: {})",
                            events.join(", ")
                        ),
                    ));
                }
                if let Some((_, why)) = NEVER.iter().find(|(n, _)| *n == name) {
                    errors.push(FieldError::new(
                        format!("notifications.{event}.{part}"),
                        format!("{{{name}}}: {why}"),
                    ));
                }
            }
        }
    }
    errors
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    /// Subject line (one line).
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Renders `text`, replacing `{name}` with `values[name]`; `{{`/`}}` are literal braces.
/// Every placeholder without a value is named in the error.
pub fn render_strict(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let names = placeholders(text)?;
    let mut missing: Vec<String> = names
        .into_iter()
        .filter(|name| values.get(name).is_none_or(|v| v.trim().is_empty()))
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        return Err(format!(
            "no value for {}",
            missing
                .iter()
                .map(|name| format!("{{{name}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(render(text, values))
}

/// Renders a template's subject and body; the error names the part and the missing values.
/// Line breaks in the subject become spaces.
pub fn render_template(
    event: &str,
    template: &Template,
    values: &BTreeMap<String, String>,
) -> Result<RenderedMessage, String> {
    let subject = render_strict(&template.subject, values)
        .map_err(|why| format!("notifications.{event}.subject: {why}"))?;
    let body = render_strict(&template.body, values)
        .map_err(|why| format!("notifications.{event}.body: {why}"))?;
    Ok(RenderedMessage {
        subject: subject
            .split(['\r', '\n'])
            .filter(|line| !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        body,
    })
}

/// The built-in template of an event, used when the workflow has none.
pub fn default_template(event: &str) -> Option<Template> {
    let (subject, body) = match event {
        "approval_request" => (
            "Approval needed: {kind} request for {subject_name}",
            "{requester} asks for a {kind} request for {subject_name} (workflow {workflow}, request {request_id}).\nStage: {stage}. Approvers: {approver}.\nDecide in the Gatehouse console.",
        ),
        "reminder" => (
            "Reminder: approval needed for {subject_name}",
            "The {kind} request {request_id} for {subject_name} is still waiting for a decision at stage {stage}.\nDecide in the Gatehouse console.",
        ),
        "escalation" => (
            "Escalated: approval needed for {subject_name}",
            "The {kind} request {request_id} for {subject_name} was escalated to you at stage {stage}.\nDecide in the Gatehouse console.",
        ),
        "rejected" => (
            "Request for {subject_name} rejected",
            "Your {kind} request {request_id} for {subject_name} was rejected at stage {stage} by {approver}.\nReason: {reason}",
        ),
        "completed" => (
            "Request for {subject_name} completed",
            "Your {kind} request {request_id} for {subject_name} is provisioned.",
        ),
        "welcome" => (
            "Welcome, {first_name}",
            "Welcome, {first_name}! Your login is {username}.",
        ),
        _ => return None,
    };
    Some(Template {
        subject: subject.to_string(),
        body: body.to_string(),
    })
}

/// The workflow's template of an event, else the built-in one.
pub fn template_for(notifications: &Notifications, event: &str) -> Option<Template> {
    notifications
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, template)| template.clone())
        .or_else(|| default_template(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn strict_rendering_names_every_missing_value() {
        let v = values(&[("first_name", "Ann"), ("team", " ")]);
        assert_eq!(
            render_strict("Hi {first_name} {{x}}", &v),
            Ok("Hi Ann {x}".into())
        );
        assert_eq!(
            render_strict("{team} {username} {username}", &v),
            Err("no value for {team}, {username}".into())
        );
        assert!(render_strict("{open", &v).is_err());
    }

    #[test]
    fn event_only_placeholders_are_config_errors() {
        let notifications = Notifications {
            welcome: Some(Template {
                subject: "Hi {first_name}".into(),
                body: "{reason} {link}".into(),
            }),
            rejected: Some(Template {
                subject: "{stage}".into(),
                body: "{reason} by {approver}".into(),
            }),
            ..Notifications::default()
        };
        let errors = check_event_placeholders(&notifications);
        let shown: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(errors.len(), 2, "{shown:?}");
        assert!(
            shown
                .iter()
                .all(|s| s.contains("notifications.welcome.body"))
        );
        assert!(shown.iter().any(|s| s.contains("{reason} has no value")));
        assert!(shown.iter().any(|s| s.contains("{link}")));
    }

    #[test]
    fn defaults_exist_and_workflow_templates_win() {
        for event in [
            "approval_request",
            "reminder",
            "escalation",
            "rejected",
            "completed",
            "welcome",
        ] {
            let template = default_template(event).expect("a default");
            assert!(
                check_event_placeholders(&Notifications {
                    approval_request: (event == "approval_request").then(|| template.clone()),
                    reminder: (event == "reminder").then(|| template.clone()),
                    escalation: (event == "escalation").then(|| template.clone()),
                    rejected: (event == "rejected").then(|| template.clone()),
                    completed: (event == "completed").then(|| template.clone()),
                    welcome: (event == "welcome").then(|| template.clone()),
                    failed: None,
                })
                .is_empty(),
                "{event}"
            );
        }
        let own = Template {
            subject: "S".into(),
            body: "B".into(),
        };
        let notifications = Notifications {
            welcome: Some(own.clone()),
            ..Notifications::default()
        };
        assert_eq!(template_for(&notifications, "welcome"), Some(own));
        assert_eq!(
            template_for(&notifications, "rejected"),
            default_template("rejected")
        );
        assert_eq!(template_for(&notifications, "nonsense"), None);
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let template = Template {
            subject: "a\r\n{first_name}\n".into(),
            body: "b".into(),
        };
        let message = render_template("welcome", &template, &values(&[("first_name", "Ann")]))
            .expect("renders");
        assert_eq!(message.subject, "a Ann");
        let error = render_template("welcome", &template, &values(&[])).expect_err("missing");
        assert_eq!(
            error,
            "notifications.welcome.subject: no value for {first_name}"
        );
    }
}
