//! Notification events and their templates (minijinja: `{{ first_name }}`, `{% if team %}`):
//! the config-time check (syntax with its line and column, unknown variables, variables an event
//! never has) and strict rendering (a missing value is an error naming it, never an empty
//! string). The HTML part is rendered with HTML escaping; subject and text are not escaped.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};

use super::diagnostic::{FieldError, line_col};
use super::placeholder::is_placeholder;

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
    /// Sent to the requester and the approvers still waiting when a request is cancelled
    /// (`cancelled_by`, and `reason` when one was given).
    #[serde(default)]
    pub cancelled: Option<Template>,
    /// Sent `leaver.warn_before` ahead of a leaver's revocation after the grace period
    /// (`revoke_at` is available).
    #[serde(default)]
    pub grace_warning: Option<Template>,
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
            ("cancelled", &self.cancelled),
            ("grace_warning", &self.grace_warning),
        ]
        .into_iter()
        .filter_map(|(name, template)| template.as_ref().map(|template| (name, template)))
    }
}

/// A subject, a plain-text body and optionally an HTML body, each a minijinja template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML body (values are HTML-escaped); the mail is sent as multipart/alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl Template {
    /// The parts that are set, with their TOML names.
    pub fn parts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("subject", Some(self.subject.as_str())),
            ("body", Some(self.body.as_str())),
            ("html", self.html.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, text)| text.map(|text| (name, text)))
    }
}

/// Variables that only some events fill, with the events that fill them.
const EVENT_ONLY: &[(&str, &[&str])] = &[
    ("reason", &["rejected", "cancelled"]),
    ("cancelled_by", &["cancelled"]),
    ("error", &["failed"]),
    ("revoke_at", &["grace_warning"]),
    (
        "stage",
        &["approval_request", "reminder", "escalation", "rejected"],
    ),
    (
        "approver",
        &["approval_request", "reminder", "escalation", "rejected"],
    ),
    ("chain", &["approval_request", "reminder", "escalation"]),
    (
        "plan",
        &["approval_request", "reminder", "escalation", "completed"],
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

/// Variables no notification can fill yet.
const NEVER: &[(&str, &str)] = &[(
    "link",
    "no console link is configured for notifications yet",
)];

/// The template environment: strict about missing values (a test such as `{% if team %}` is
/// allowed), HTML escaping for `*.html` parts only, trailing newlines kept.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_keep_trailing_newline(true);
    env
}

/// The template name of a part (the extension picks the escaping).
fn part_name(part: &str) -> &'static str {
    match part {
        "html" => "part.html",
        "subject" => "part.subject",
        _ => "part.txt",
    }
}

/// A minijinja error in words, without the template name minijinja appends.
fn describe(error: &minijinja::Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// `{name}` written with single braces (the old placeholder form, which minijinja prints
/// as it is): the names and their byte offsets.
fn single_brace_names(text: &str) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && (i == 0 || bytes[i - 1] != b'{') {
            let name_end = bytes[i + 1..]
                .iter()
                .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_'))
                .map_or(bytes.len(), |n| i + 1 + n);
            if name_end > i + 1
                && bytes.get(name_end) == Some(&b'}')
                && bytes.get(name_end + 1) != Some(&b'}')
            {
                found.push((text[i + 1..name_end].to_string(), i));
            }
        }
        i += 1;
    }
    found
}

/// Checks every template of `notifications`: syntax (with the line and column inside the
/// template), variables no request has, variables the event never fills, and the old
/// single-brace form.
pub fn check_templates(notifications: &Notifications) -> Vec<FieldError> {
    let env = environment();
    let mut errors = Vec::new();
    for (event, template) in notifications.iter() {
        for (part, text) in template.parts() {
            let field = format!("notifications.{event}.{part}");
            let compiled = match env.template_from_named_str(part_name(part), text) {
                Ok(compiled) => compiled,
                Err(error) => {
                    let (line, column) = match error.range() {
                        Some(range) => line_col(text, range.start),
                        None => (error.line().unwrap_or(1), 1),
                    };
                    errors.push(FieldError::within(field, describe(&error), line, column));
                    continue;
                }
            };
            for (name, offset) in single_brace_names(text) {
                let (line, column) = line_col(text, offset);
                errors.push(FieldError::within(
                    field.clone(),
                    format!("{{{name}}} is printed as it is: templates write {{{{ {name} }}}}"),
                    line,
                    column,
                ));
            }
            let used: BTreeSet<String> = compiled.undeclared_variables(false).into_iter().collect();
            for name in used {
                let event_only = EVENT_ONLY.iter().any(|(n, _)| *n == name);
                if !is_placeholder(&name) && !event_only {
                    errors.push(FieldError::new(
                        field.clone(),
                        format!("unknown variable {name}"),
                    ));
                    continue;
                }
                if let Some((_, events)) = EVENT_ONLY.iter().find(|(n, _)| *n == name)
                    && !events.contains(&event)
                {
                    errors.push(FieldError::new(
                        field.clone(),
                        format!(
                            "{name} has no value in the {event} notification (only in: {})",
                            events.join(", ")
                        ),
                    ));
                }
                if let Some((_, why)) = NEVER.iter().find(|(n, _)| *n == name) {
                    errors.push(FieldError::new(field.clone(), format!("{name}: {why}")));
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
    /// HTML body, when the template has one.
    pub html: Option<String>,
}

/// Renders one part strictly: a value that is missing or blank is an error naming it.
fn render_part(
    env: &Environment<'_>,
    part: &str,
    text: &str,
    values: &BTreeMap<String, String>,
) -> Result<String, String> {
    let compiled = env
        .template_from_named_str(part_name(part), text)
        .map_err(|error| describe(&error))?;
    let present: BTreeMap<&str, &str> = values
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    compiled.render(&present).map_err(|error| {
        if error.kind() == ErrorKind::UndefinedError {
            let missing: Vec<String> = compiled
                .undeclared_variables(false)
                .into_iter()
                .filter(|name| !present.contains_key(name.as_str()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if !missing.is_empty() {
                return format!("no value for {}", missing.join(", "));
            }
        }
        describe(&error)
    })
}

/// Renders a template's parts; the error names the part and what is missing. Line breaks in
/// the subject become spaces.
pub fn render_template(
    event: &str,
    template: &Template,
    values: &BTreeMap<String, String>,
) -> Result<RenderedMessage, String> {
    let env = environment();
    let part = |name: &str, text: &str| {
        render_part(&env, name, text, values)
            .map_err(|why| format!("notifications.{event}.{name}: {why}"))
    };
    let subject = part("subject", &template.subject)?;
    let body = part("body", &template.body)?;
    let html = match &template.html {
        Some(text) => Some(part("html", text)?),
        None => None,
    };
    Ok(RenderedMessage {
        subject: subject
            .split(['\r', '\n'])
            .filter(|line| !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        body,
        html,
    })
}

/// The built-in template of an event, used when the workflow has none.
pub fn default_template(event: &str) -> Option<Template> {
    let (subject, body) = match event {
        "approval_request" => (
            "Approval needed: {{ kind }} request for {{ subject_name }}",
            "{{ requester }} asks for a {{ kind }} request for {{ subject_name }} (workflow {{ workflow }}, request {{ request_id }}).\nStage: {{ stage }}. Approvers: {{ approver }}.\n{% if chain %}\nApproval chain:\n{{ chain }}\n{% endif %}{% if plan %}\nWhat will be provisioned:\n{{ plan }}\n{% endif %}\nDecide in the Gatehouse console.",
        ),
        "reminder" => (
            "Reminder: approval needed for {{ subject_name }}",
            "The {{ kind }} request {{ request_id }} for {{ subject_name }} is still waiting for a decision at stage {{ stage }}.\nDecide in the Gatehouse console.",
        ),
        "escalation" => (
            "Escalated: approval needed for {{ subject_name }}",
            "The {{ kind }} request {{ request_id }} for {{ subject_name }} was escalated to you at stage {{ stage }}.\nDecide in the Gatehouse console.",
        ),
        "rejected" => (
            "Request for {{ subject_name }} rejected",
            "Your {{ kind }} request {{ request_id }} for {{ subject_name }} was rejected at stage {{ stage }} by {{ approver }}.\nReason: {{ reason }}",
        ),
        "completed" => (
            "Request for {{ subject_name }} completed",
            "Your {{ kind }} request {{ request_id }} for {{ subject_name }} is provisioned.{% if plan %}\n\nWhat was provisioned:\n{{ plan }}{% endif %}",
        ),
        "failed" => (
            "Provisioning failed: {{ kind }} request {{ request_id }} for {{ subject_name }}",
            "Provisioning the {{ kind }} request {{ request_id }} for {{ subject_name }} (workflow {{ workflow }}) failed:\n{{ error }}\n\nRetry it with R in the request's view of the Gatehouse console once the cause is fixed.",
        ),
        "cancelled" => (
            "Request for {{ subject_name }} cancelled",
            "The {{ kind }} request {{ request_id }} for {{ subject_name }} was cancelled by {{ cancelled_by }}.{% if reason %}\nReason: {{ reason }}{% endif %}\nNothing more is needed from you.",
        ),
        "grace_warning" => (
            "Access of {{ subject_name }} will be revoked on {{ revoke_at }}",
            "The leaver request {{ request_id }} for {{ subject_name }} (workflow {{ workflow }}) disabled their accounts; their access will be revoked on {{ revoke_at }} when the grace period ends.\nIf they stay or are rehired, ask an admin to cancel request {{ request_id }} before then.",
        ),
        "welcome" => (
            "Welcome, {{ first_name }}",
            "Welcome, {{ first_name }}! Your login is {{ username }}.",
        ),
        _ => return None,
    };
    Some(Template {
        subject: subject.to_string(),
        body: body.to_string(),
        html: None,
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

    fn template(subject: &str, body: &str) -> Template {
        Template {
            subject: subject.into(),
            body: body.into(),
            html: None,
        }
    }

    fn welcome(t: Template) -> Notifications {
        Notifications {
            welcome: Some(t),
            ..Notifications::default()
        }
    }

    #[test]
    fn strict_rendering_names_every_missing_value() {
        let v = values(&[("first_name", "Ann"), ("team", " ")]);
        let t = template(
            "Hi {{ first_name }}",
            "{{ team }} {{ username }} {{ username }}",
        );
        assert_eq!(
            render_template("welcome", &t, &v),
            Err("notifications.welcome.body: no value for team, username".into())
        );
        let t = template(
            "Hi {{ first_name }}",
            "{% if team %}in {{ team }}{% endif %}done",
        );
        let rendered = render_template("welcome", &t, &v).expect("renders");
        assert_eq!(rendered.subject, "Hi Ann");
        assert_eq!(rendered.body, "done");
        assert_eq!(rendered.html, None);
    }

    #[test]
    fn html_parts_escape_values_and_text_parts_do_not() {
        let v = values(&[("first_name", "<b>Ann</b> & co")]);
        let t = Template {
            html: Some("<p>Hi {{ first_name }}</p>".into()),
            ..template("Hi {{ first_name }}", "Hi {{ first_name }}\n")
        };
        let rendered = render_template("welcome", &t, &v).expect("renders");
        assert_eq!(rendered.body, "Hi <b>Ann</b> & co\n");
        assert_eq!(
            rendered.html.as_deref(),
            Some("<p>Hi &lt;b&gt;Ann&lt;&#x2f;b&gt; &amp; co</p>")
        );
    }

    #[test]
    fn syntax_errors_carry_their_line_and_column() {
        let errors = check_templates(&welcome(template(
            "Hi",
            "line one\nline two {{ first_name | }}\nline three",
        )));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "notifications.welcome.body");
        assert!(errors[0].message.contains("syntax error"), "{errors:?}");
        assert_eq!(errors[0].within.map(|(line, _)| line), Some(2));
        let errors = check_templates(&welcome(template("{% if %}", "b")));
        assert_eq!(errors[0].field, "notifications.welcome.subject");
        assert_eq!(errors[0].within.map(|(line, _)| line), Some(1));
    }

    #[test]
    fn unknown_event_only_and_single_brace_variables_are_config_errors() {
        let notifications = Notifications {
            welcome: Some(Template {
                html: Some("<p>{{ nonsense }}</p>".into()),
                ..template("Hi {{ first_name }}", "{{ reason }} {{ link }}\n{username}")
            }),
            rejected: Some(template("{{ stage }}", "{{ reason }} by {{ approver }}")),
            ..Notifications::default()
        };
        let errors = check_templates(&notifications);
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 4, "{shown:?}");
        assert!(shown.iter().any(|s| s
            == "notifications.welcome.body: reason has no value in the welcome notification (only in: rejected, cancelled)"));
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("notifications.welcome.body: link:"))
        );
        assert!(shown.iter().any(|s| s
            == "notifications.welcome.body: {username} is printed as it is: templates write {{ username }}"));
        assert!(
            shown
                .iter()
                .any(|s| s == "notifications.welcome.html: unknown variable nonsense")
        );
        let single = errors
            .iter()
            .find(|e| e.message.contains("printed as it is"))
            .expect("single brace");
        assert_eq!(single.within, Some((2, 1)));
    }

    #[test]
    fn single_brace_detection_leaves_jinja_alone() {
        assert_eq!(
            single_brace_names("{{ a }} {{a}} {% if a %}{a}{% endif %}"),
            vec![("a".to_string(), 24)]
        );
        assert!(single_brace_names("{A} {a b} { a } {}").is_empty());
    }

    #[test]
    fn defaults_exist_check_clean_and_workflow_templates_win() {
        for event in [
            "approval_request",
            "reminder",
            "escalation",
            "rejected",
            "completed",
            "welcome",
            "cancelled",
            "failed",
            "grace_warning",
        ] {
            let template = default_template(event).expect("a default");
            let notifications = Notifications {
                approval_request: (event == "approval_request").then(|| template.clone()),
                reminder: (event == "reminder").then(|| template.clone()),
                escalation: (event == "escalation").then(|| template.clone()),
                rejected: (event == "rejected").then(|| template.clone()),
                completed: (event == "completed").then(|| template.clone()),
                welcome: (event == "welcome").then(|| template.clone()),
                cancelled: (event == "cancelled").then(|| template.clone()),
                failed: (event == "failed").then(|| template.clone()),
                grace_warning: (event == "grace_warning").then(|| template.clone()),
            };
            assert_eq!(check_templates(&notifications), vec![], "{event}");
        }
        let own = template("S", "B");
        assert_eq!(template_for(&welcome(own.clone()), "welcome"), Some(own));
        assert_eq!(
            template_for(&welcome(template("S", "B")), "rejected"),
            default_template("rejected")
        );
        assert_eq!(template_for(&Notifications::default(), "nonsense"), None);
    }

    #[test]
    fn subjects_stay_on_one_line() {
        let t = template("a\r\n{{ first_name }}\n", "b");
        let message =
            render_template("welcome", &t, &values(&[("first_name", "Ann")])).expect("renders");
        assert_eq!(message.subject, "a Ann");
        let error = render_template("welcome", &t, &values(&[])).expect_err("missing");
        assert_eq!(
            error,
            "notifications.welcome.subject: no value for first_name"
        );
    }
}
