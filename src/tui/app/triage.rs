//! The triage editor: a `needs_triage` request's fields corrected in a form and sent on with
//! the version the operator saw (the store checks role, scope and version again).

use super::*;
use crate::domain::request::RequestState;
use crate::store::TriageFix;
use crate::store::api::RequestRow;
use crate::tui::widgets::form::{Form, FormField, FormKey};

/// Payload fields the form always offers, in this order (others the request has follow).
const COMMON_FIELDS: [(&str, &str); 4] = [
    ("team", "team"),
    ("role", "role"),
    ("start_date", "start date"),
    ("manager", "manager"),
];

/// The open triage form: which request, at which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriageForm {
    /// Request id.
    pub request_id: i64,
    /// The version the form opened on.
    pub version: i64,
    /// The fields.
    pub form: Form,
}

impl TriageForm {
    /// A form over `request`'s fields, with why it is in triage above them.
    pub fn new(request: &RequestRow) -> TriageForm {
        let mut fields = vec![
            FormField::new("subject_name", "name", &request.subject_name),
            FormField::new(
                "subject_email",
                "e-mail",
                request.subject_email.as_deref().unwrap_or(""),
            ),
            FormField::new(
                "username",
                "username",
                request.username.as_deref().unwrap_or(""),
            ),
        ];
        let payload = request.payload.as_object();
        let text = |key: &str| -> Option<String> {
            payload.and_then(|p| p.get(key)).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
        };
        for (key, label) in COMMON_FIELDS {
            fields.push(FormField::new(key, label, &text(key).unwrap_or_default()));
        }
        if let Some(p) = payload {
            for key in p.keys() {
                if COMMON_FIELDS.iter().any(|(k, _)| k == key) {
                    continue;
                }
                if let Some(value) = text(key) {
                    fields.push(FormField::new(key, key, &value));
                }
            }
        }
        let note = match &request.last_error {
            Some(why) => vec![format!("needs triage: {why}")],
            None => vec!["needs triage".to_string()],
        };
        TriageForm {
            request_id: request.id,
            version: request.version,
            form: Form {
                title: format!("fix request {} — {}", request.id, request.subject_name),
                note,
                fields,
                focus: 0,
                error: None,
            },
        }
    }

    /// The corrections: only the fields that were edited.
    pub fn fix(&self) -> TriageFix {
        let mut fix = TriageFix::default();
        for field in self.form.changed() {
            let value = field.value.trim().to_string();
            match field.key.as_str() {
                "subject_name" => fix.subject_name = Some(value),
                "subject_email" => fix.subject_email = Some(value),
                "username" => fix.username = Some(value),
                key => {
                    fix.fields
                        .insert(key.to_string(), serde_json::Value::String(value));
                }
            }
        }
        fix
    }
}

impl AppState {
    /// Opens the triage form on the selected request, or says why not.
    pub(super) fn open_triage(&mut self) -> Vec<Effect> {
        let request = match self.view() {
            ViewId::Requests => self.requests.list.current().cloned(),
            ViewId::Detail => self
                .detail
                .data
                .as_ref()
                .map(|d| d.request.clone())
                .filter(|r| Some(r.id) == self.detail.id),
            _ => None,
        };
        match request {
            Some(r) if r.state == RequestState::NeedsTriage => {
                self.popup = Some(Popup::Triage(Box::new(TriageForm::new(&r))));
            }
            Some(r) => self.flash(
                FlashLevel::Info,
                format!("{}: only needs_triage requests have fields to fix", r.state),
            ),
            None => self.flash(FlashLevel::Info, "no request selected"),
        }
        Vec::new()
    }

    /// A key while the triage form is open.
    pub(super) fn triage_key(&mut self, mut triage: Box<TriageForm>, key: KeyEvent) -> Vec<Effect> {
        match triage.form.key(key) {
            FormKey::Editing => {
                self.popup = Some(Popup::Triage(triage));
                Vec::new()
            }
            FormKey::Cancel => {
                self.flash(
                    FlashLevel::Info,
                    format!(
                        "fix of request {} abandoned, nothing changed",
                        triage.request_id
                    ),
                );
                Vec::new()
            }
            FormKey::Submit => {
                if triage
                    .form
                    .value("subject_name")
                    .is_some_and(|n| n.trim().is_empty())
                {
                    triage.form.error = Some("the name must not be empty".into());
                    self.popup = Some(Popup::Triage(triage));
                    return Vec::new();
                }
                vec![Effect::Run(vec![StoreCmd::ResolveTriage {
                    request_id: triage.request_id,
                    expected_version: triage.version,
                    fix: triage.fix(),
                }])]
            }
        }
    }
}
