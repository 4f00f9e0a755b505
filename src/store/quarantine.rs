//! Quarantined mail: messages intake held because they looked like an attempt to instruct the
//! model (or were otherwise suspicious). They are never acted on until an unscoped admin
//! releases one — it becomes a `needs_triage` request whose fields a person fills in — or
//! discards it. Both need a reason and leave an audit row; a refused attempt leaves one too.

use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, NewRequest, Page, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::authorize;
use crate::store::command::{finish, insert_request, invalid, limited, non_empty};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::mailboxes::{DbRecord, IntakeRecord};
use crate::store::rows::{now_ms, rfc3339};

/// The columns of [`DbRecord`], in its order.
macro_rules! record_columns {
    () => {
        "id, mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, decided_by, decided_at, decision_reason, received_at"
    };
}

impl Store {
    /// Held messages, newest first, `after` = id cursor; scoped viewers see none.
    pub(crate) async fn held_page(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<IntakeRecord>> {
        let limit = i64::from(limit.clamp(1, 500));
        // A held message belongs to no team yet: only unscoped viewers see it.
        let rows: Vec<DbRecord> = self
            .read_all(
                concat!(
                    "SELECT ",
                    record_columns!(),
                    " FROM intake_messages WHERE status = 'held' AND ($2 IS NULL OR id < $2)",
                    " AND ($1 IS NULL OR NOT EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = $1))",
                    " ORDER BY id DESC LIMIT $3"
                ),
                args![self.viewer(), after, limit + 1],
            )
            .await?;
        let mut rows: Vec<IntakeRecord> = rows
            .into_iter()
            .map(DbRecord::into_api)
            .collect::<StoreResult<_>>()?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    /// Releases held message `id`: it becomes a `needs_triage` request of its mailbox's
    /// workflow, from its sender, whose fields a person fills in. Unscoped admins only; the
    /// reason is kept in the audit row and on the request.
    pub(crate) async fn release_held(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
    ) -> StoreResult<RequestRow> {
        self.check_writable()?;
        check_reason(reason)?;
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::ReviewQuarantine, None).await?;
            let message = load_held(&mut tx, id).await?;
            let workflow = mailbox_workflow(&mut tx, &message.mailbox).await?;
            let sender = message.summary.from.clone().unwrap_or_default();
            let subject_name = message
                .summary
                .from_name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| {
                    if sender.is_empty() {
                        "unknown sender".to_string()
                    } else {
                        sender.clone()
                    }
                });
            let request = NewRequest {
                workflow,
                kind: "joiner".into(),
                subject_name,
                subject_email: None,
                username: None,
                requester: if sender.is_empty() {
                    "unknown-sender".into()
                } else {
                    sender
                },
                source: format!("imap:{}", message.mailbox),
                payload: json!({}),
            };
            let why = format!(
                "released from quarantine by {}: {reason} — the fields were not extracted; check and fill every field (held because: {})",
                actor.user,
                message.reason.as_deref().unwrap_or("no reason recorded")
            );
            let row = insert_request(&mut tx, actor, &request, Some(&why)).await?;
            decide(&mut tx, actor, &message, "released", reason, Some(row.id)).await?;
            finish(&mut tx, false).await?;
            Ok(row)
        });
        let row = self
            .audit_refusal(
                actor,
                "intake.release",
                "intake_message",
                id.to_string(),
                result,
            )
            .await?;
        self.signal_local(false);
        Ok(row)
    }

    /// Discards held message `id` for good (it stays recorded, so it is never read again).
    /// Unscoped admins only, with a reason.
    pub(crate) async fn discard_held(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
    ) -> StoreResult<()> {
        self.check_writable()?;
        check_reason(reason)?;
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::ReviewQuarantine, None).await?;
            let message = load_held(&mut tx, id).await?;
            decide(&mut tx, actor, &message, "discarded", reason, None).await?;
            finish(&mut tx, false).await?;
            Ok(())
        });
        self.audit_refusal(
            actor,
            "intake.discard",
            "intake_message",
            id.to_string(),
            result,
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }
}

fn check_reason(reason: &str) -> StoreResult<()> {
    non_empty("reason", reason)?;
    limited(limits::check_reason(Some(reason)))
}

/// The message, still held; a decided one is a conflict naming who decided and when.
async fn load_held(tx: &mut Tx, id: i64) -> StoreResult<IntakeRecord> {
    let row: Option<DbRecord> = tx
        .opt(
            concat!(
                "SELECT ",
                record_columns!(),
                " FROM intake_messages WHERE id = $1"
            ),
            args![id],
        )
        .await?;
    let message = row
        .map(DbRecord::into_api)
        .transpose()?
        .ok_or(StoreError::NotFound {
            entity: "quarantined message",
            id: id.to_string(),
        })?;
    if message.status == "held" {
        return Ok(message);
    }
    Err(StoreError::Conflict {
        entity: "quarantined message",
        id: id.to_string(),
        changed_by: message.decided_by.unwrap_or_else(|| "intake".into()),
        changed_at: rfc3339(message.decided_at.unwrap_or(message.received_at)),
        what: format!("already {}", message.status),
    })
}

/// The workflow the mailbox's document binds its mail to.
async fn mailbox_workflow(tx: &mut Tx, mailbox: &str) -> StoreResult<String> {
    let head: Option<(String,)> = tx
        .opt(
            "SELECT body FROM configs WHERE name = $1 AND kind = 'mailbox' ORDER BY version DESC LIMIT 1",
            args![mailbox],
        )
        .await?;
    let Some((body,)) = head else {
        return Err(invalid(
            "mailbox",
            format!(
                "no mailbox document named {mailbox:?} is saved, so the message has no workflow"
            ),
        ));
    };
    match check_document(mailbox, &body) {
        Ok(ConfigDocument::Mailbox(m)) => Ok(m.workflow),
        _ => Err(invalid(
            "mailbox",
            format!("the saved mailbox document {mailbox:?} is not valid"),
        )),
    }
}

async fn decide(
    tx: &mut Tx,
    actor: &Actor,
    message: &IntakeRecord,
    status: &str,
    reason: &str,
    request_id: Option<i64>,
) -> StoreResult<()> {
    let now = now_ms();
    tx.exec(
        "UPDATE intake_messages SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4, request_id = COALESCE($5, request_id) WHERE id = $6 AND status = 'held'",
        args![status, &actor.user, now, reason, request_id, message.id],
    )
    .await?;
    let action = if status == "released" {
        "intake.release"
    } else {
        "intake.discard"
    };
    audit::append(
        tx,
        actor,
        AuditEntry {
            action,
            entity: "intake_message",
            entity_id: message.id.to_string(),
            before: Some(json!({
                "status": "held",
                "mailbox": message.mailbox,
                "uid": message.uid,
                "message_id": message.summary.message_id,
                "from": message.summary.from,
                "subject": message.summary.subject,
                "held_because": message.reason,
                "verdict": message.verdict,
            })),
            after: Some(json!({
                "status": status,
                "reason": reason,
                "request_id": request_id,
            })),
        },
    );
    Ok(())
}
