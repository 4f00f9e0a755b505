//! Taking a request out of triage: a person corrects its fields under the version they saw,
//! and the engine processes it again.

use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::domain::request::RequestEvent;
use crate::store::Store;
use crate::store::api::{Actor, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, target_of, team_of};
use crate::store::command::{command_job, limited, non_empty};
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::lifecycle::apply_event;
use crate::store::queue::{QUEUE_DEFAULT, enqueue_one};
use crate::store::requests::{load_request, load_request_for_update, set_request_state};
use crate::store::rows::now_ms;
use crate::store::watch::{CHANGES_CHANNEL, JOBS_CHANNEL};

/// Corrected fields for a request a person takes out of triage; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriageFix {
    /// Full name of the person.
    pub subject_name: Option<String>,
    /// E-mail of the person.
    pub subject_email: Option<String>,
    /// Account name (derived again when left empty and the name changed).
    pub username: Option<String>,
    /// Payload fields to set (merged into the existing payload).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Store {
    /// Take a `needs_triage` request out of triage with corrected fields: one transaction
    /// updates the fields (checked against `expected_version`, the version the operator
    /// saw), moves the request to `classified`, enqueues its processing again, and appends
    /// one audit row with the fields before and after.
    pub(crate) async fn resolve_triage_checked(
        &self,
        actor: &Actor,
        request_id: i64,
        expected_version: i64,
        fix: TriageFix,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        if let Some(name) = &fix.subject_name {
            non_empty("subject_name", name)?;
        }
        limited(limits::check_request_fields(
            fix.subject_name.as_deref(),
            fix.subject_email.as_deref(),
            fix.username.as_deref(),
            &fix.fields,
        ))?;
        let result = write_tx!(self, |tx| {
            let before = load_request_for_update(&mut tx, request_id).await?;
            authorize(
                &mut tx,
                actor,
                Action::FixRequest,
                Some(&target_of(&before)),
            )
            .await?;
            if before.version != expected_version {
                return Err(crate::store::requests::request_moved(
                    &mut tx,
                    request_id,
                    expected_version,
                )
                .await);
            }
            let next =
                apply_event(before.state, RequestEvent::TriageResolved).ok_or_else(|| {
                    StoreError::InvalidState {
                        id: request_id,
                        state: before.state,
                        action: "resolve triage".into(),
                    }
                })?;
            let name = fix
                .subject_name
                .clone()
                .unwrap_or_else(|| before.subject_name.clone());
            let email = fix
                .subject_email
                .clone()
                .or_else(|| before.subject_email.clone());
            // A corrected name means a new username unless one is given.
            let username = match (&fix.username, &fix.subject_name) {
                (Some(u), _) => Some(u.clone()),
                (None, Some(_)) => None,
                (None, None) => before.username.clone(),
            };
            let mut payload = before.payload.as_object().cloned().unwrap_or_default();
            payload.extend(fix.fields.clone());
            let payload = serde_json::Value::Object(payload);
            limited(limits::check_payload(&payload))?;
            let n = tx
                .exec(
                    "UPDATE requests SET subject_name = $3, subject_email = $4, username = $5, payload = $6, version = version + 1, updated_at = $7, team = $8 WHERE id = $1 AND version = $2",
                    args![request_id, before.version, name.clone(), email.clone(), username.clone(), payload.to_string(), now_ms(), team_of(&payload).map(str::to_string)],
                )
                .await?;
            if n == 0 {
                return Err(crate::store::requests::request_moved(
                    &mut tx,
                    request_id,
                    before.version,
                )
                .await);
            }
            let updated = load_request(&mut tx, request_id).await?;
            set_request_state(&mut tx, &updated, next, None).await?;
            enqueue_one(
                &mut tx,
                &command_job(
                    QUEUE_DEFAULT,
                    "request.process",
                    json!({"request_id": request_id}),
                    format!("process:{request_id}:{}", updated.version + 1),
                    request_id,
                ),
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "request.triage_resolved",
                    entity: "request",
                    entity_id: request_id.to_string(),
                    before: Some(json!({
                        "state": before.state.to_string(),
                        "subject_name": before.subject_name,
                        "subject_email": before.subject_email,
                        "username": before.username,
                        "payload": before.payload,
                        "last_error": before.last_error,
                    })),
                    after: Some(json!({
                        "state": next.to_string(),
                        "subject_name": name,
                        "subject_email": email,
                        "username": username,
                        "payload": payload,
                    })),
                },
            );
            tx.notify(JOBS_CHANNEL).await?;
            tx.notify(CHANGES_CHANNEL).await?;
            load_request(&mut tx, request_id).await
        });
        let row = self
            .audit_refusal(
                actor,
                "request.triage_resolved",
                "request",
                request_id.to_string(),
                result,
            )
            .await?;
        self.signal_local(true);
        Ok(row)
    }
}
