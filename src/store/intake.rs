//! Recording what intake read from a mailbox, exactly once: each batch of classified messages
//! is written in one transaction together with the requests it creates and the mailbox's new
//! reading position, so a crash before the commit re-reads the batch and a crash after it
//! never creates a request twice.
//!
//! Dedupe is on (mailbox, UIDVALIDITY, UID) — a message already recorded is skipped — and on
//! Message-ID across every mailbox: a later copy is recorded with the verdict `duplicate` and
//! creates nothing. A batch is only accepted from the holder of the mailbox's reading lease
//! (see `mailboxes.rs`), checked in the same transaction.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::intake::{Classified, RequestDraft, Verdict};
use crate::store::Store;
use crate::store::api::{Actor, NewRequest, StoreResult};
use crate::store::command::{check_new_request, finish};
use crate::store::db::{Tx, Val, args, write_tx};
use crate::store::error::StoreError;
use crate::store::intake_batch::{Draft, ProcessJobs, insert_requests};
use crate::store::rows::now_ms;

/// Longest Message-ID kept for dedupe (characters); a longer one is cut.
const MAX_MESSAGE_ID: usize = 998;

/// One message read from a mailbox, classified, ready to be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingMessage {
    /// The message's UID in the folder (under the batch's UIDVALIDITY).
    pub uid: u32,
    /// What intake decided about it.
    pub classified: Classified,
    /// Workflow a request drafted from it runs (the mailbox document's `workflow`).
    pub workflow: String,
    /// Request source, e.g. `imap:hr-inbox`.
    pub source: String,
}

/// What recording one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeResult {
    /// This (mailbox, UIDVALIDITY, UID) was recorded before: nothing done.
    AlreadyRecorded,
    /// Its Message-ID was taken by an earlier message: recorded as `duplicate`, no request.
    Duplicate,
    /// A request was created and its processing enqueued.
    Request,
    /// A request was created in `needs_triage`.
    Triage,
    /// Recorded as ignored.
    Ignored,
    /// Recorded as held (quarantined) for an admin.
    Quarantined,
    /// The drafted request was refused by the store (limits, missing workflow, ...): recorded
    /// as held with verdict `invalid` and the refusal as its reason.
    Invalid,
}

/// The outcome of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeOutcome {
    /// The message's UID.
    pub uid: u32,
    /// What was done.
    pub result: IntakeResult,
    /// The request created, if any.
    pub request_id: Option<i64>,
}

/// The reading lease of a mailbox: its name and the reader holding it.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRef<'a> {
    /// Mailbox document name.
    pub mailbox: &'a str,
    /// The lease holder (a reader id).
    pub owner: &'a str,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The Message-ID used for dedupe: trimmed, bounded, `None` when empty.
fn dedupe_id(classified: &Classified) -> Option<String> {
    let id = classified.mail.message_id.as_deref()?.trim();
    if id.is_empty() {
        return None;
    }
    Some(id.chars().take(MAX_MESSAGE_ID).collect())
}

/// The request a draft becomes. A triage draft gets placeholders where the machine found
/// nothing, so a person can correct it in the console.
fn new_request(message: &IncomingMessage, draft: &RequestDraft, triage: bool) -> NewRequest {
    let mail = &message.classified.mail;
    let mut kind = draft.kind.trim().to_string();
    let mut subject_name = draft.subject_name.trim().to_string();
    let mut requester = draft.requester.trim().to_string();
    if triage {
        if !matches!(kind.as_str(), "joiner" | "mover" | "leaver") {
            kind = "joiner".into();
        }
        if subject_name.is_empty() {
            subject_name = "(name not found in the message)".into();
        }
        if requester.is_empty() {
            requester = mail
                .from
                .clone()
                .unwrap_or_else(|| "(unknown sender)".into());
        }
    }
    NewRequest {
        workflow: message.workflow.clone(),
        kind,
        subject_name,
        subject_email: draft.subject_email.clone().filter(|e| !e.trim().is_empty()),
        username: draft.username.clone().filter(|u| !u.trim().is_empty()),
        requester,
        source: message.source.clone(),
        payload: serde_json::Value::Object(draft.fields.clone()),
    }
}

/// What the store will do with one message, decided before the transaction.
enum Plan {
    Request(NewRequest, Option<String>),
    Record(&'static str, Option<String>, &'static str),
}

/// Checks a message's drafted request: a request the store would refuse goes to triage with
/// the refusal as its reason; a triage draft it would refuse is held as `invalid`.
fn plan(message: &IncomingMessage) -> Plan {
    match &message.classified.verdict {
        Verdict::Request { draft } => {
            let request = new_request(message, draft, false);
            match check_new_request(&request) {
                Ok(()) => Plan::Request(request, None),
                Err(e) => {
                    let reason = format!("the drafted request was refused: {e}");
                    let request = new_request(message, draft, true);
                    match check_new_request(&request) {
                        Ok(()) => Plan::Request(request, Some(reason)),
                        Err(e) => Plan::Record(
                            "invalid",
                            Some(format!("the drafted request was refused: {e}")),
                            "held",
                        ),
                    }
                }
            }
        }
        Verdict::Triage { draft, reason } => {
            let request = new_request(message, draft, true);
            match check_new_request(&request) {
                Ok(()) => Plan::Request(request, Some(reason.clone())),
                Err(e) => Plan::Record(
                    "invalid",
                    Some(format!("{reason}; the drafted request was refused: {e}")),
                    "held",
                ),
            }
        }
        Verdict::Ignored { reason } => Plan::Record("ignored", Some(reason.clone()), "done"),
        Verdict::Quarantined { reason } => {
            Plan::Record("quarantined", Some(reason.clone()), "held")
        }
    }
}

/// The batch's intake rows in one statement, from one JSON array bound as text (the same
/// bound-value shape on both backends; one round trip instead of one per message).
const INSERT_INTAKE_SQLITE: &str = "INSERT INTO intake_messages (mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, received_at) \
     SELECT json_extract(value, '$.mailbox'), json_extract(value, '$.uidvalidity'), json_extract(value, '$.uid'), json_extract(value, '$.message_id'), \
            json_extract(value, '$.verdict'), json_extract(value, '$.reason'), json_extract(value, '$.request_id'), json_extract(value, '$.summary'), \
            json_extract(value, '$.evidence'), json_extract(value, '$.status'), json_extract(value, '$.received_at') \
     FROM json_each($1) ORDER BY key";
const INSERT_INTAKE_PG: &str = "INSERT INTO intake_messages (mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, received_at) \
     SELECT mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, received_at \
     FROM json_to_recordset($1::json) AS t(mailbox text, uidvalidity bigint, uid bigint, message_id text, verdict text, reason text, request_id bigint, summary text, evidence text, status text, received_at bigint)";

impl Store {
    /// Record one batch read from `lease.mailbox` under `uidvalidity`, in ONE transaction:
    /// messages already recorded under (mailbox, UIDVALIDITY, UID) are skipped; a Message-ID
    /// taken before (in any mailbox, or earlier in this batch) is recorded as `duplicate`; a
    /// `Request` verdict creates a request and enqueues its processing, a `Triage` verdict
    /// creates one in `needs_triage`, `Ignored` is recorded, `Quarantined` is recorded as
    /// `held`. The mailbox's reading position (UIDVALIDITY, last UID, processed count) moves
    /// in the same transaction; a new UIDVALIDITY replaces the old position.
    ///
    /// Refused with `Conflict` unless `lease.owner` holds the mailbox's reading lease. When the
    /// store refuses one message's request (a limit, a missing workflow), the batch is
    /// recorded one message per transaction and that message is held as `invalid`.
    pub async fn record_intake(
        &self,
        actor: &Actor,
        lease: LeaseRef<'_>,
        uidvalidity: u32,
        mut batch: Vec<IncomingMessage>,
    ) -> StoreResult<Vec<IntakeOutcome>> {
        self.check_writable()?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        batch.sort_by_key(|m| m.uid);
        batch.dedup_by_key(|m| m.uid);
        let plans: Vec<Plan> = batch.iter().map(plan).collect();
        let whole = write_tx!(self, |tx| {
            let out = record_in_tx(&mut tx, actor, lease, uidvalidity, &batch, &plans).await?;
            finish(&mut tx, true).await?;
            Ok(out)
        });
        let outcomes = match whole {
            Ok(out) => out,
            Err(e) if isolates(&e) => {
                tracing::warn!(mailbox = lease.mailbox, error = %e, "a message of the batch was refused; recording one by one");
                let mut out = Vec::with_capacity(batch.len());
                for (message, plan) in batch.iter().zip(&plans) {
                    out.extend(
                        self.record_one(actor, lease, uidvalidity, message, plan)
                            .await?,
                    );
                }
                out
            }
            Err(e) => return Err(e),
        };
        self.signal_local(true);
        Ok(outcomes)
    }

    /// One message in its own transaction; when the store refuses it, it is held as `invalid`.
    async fn record_one(
        &self,
        actor: &Actor,
        lease: LeaseRef<'_>,
        uidvalidity: u32,
        message: &IncomingMessage,
        plan: &Plan,
    ) -> StoreResult<Vec<IntakeOutcome>> {
        let one = std::slice::from_ref(message);
        let result = write_tx!(self, |tx| {
            let out = record_in_tx(
                &mut tx,
                actor,
                lease,
                uidvalidity,
                one,
                std::slice::from_ref(plan),
            )
            .await?;
            finish(&mut tx, true).await?;
            Ok(out)
        });
        match result {
            Err(e) if isolates(&e) => {
                let held = Plan::Record(
                    "invalid",
                    Some(format!("the store refused it: {e}")),
                    "held",
                );
                let held = std::slice::from_ref(&held);
                write_tx!(self, |tx| {
                    let out = record_in_tx(&mut tx, actor, lease, uidvalidity, one, held).await?;
                    finish(&mut tx, false).await?;
                    Ok(out)
                })
            }
            other => other,
        }
    }
}

/// Errors that one message can cause (a refusal, a constraint): worth isolating that message.
/// A lost lease, a read-only store or a lost connection is not.
fn isolates(e: &StoreError) -> bool {
    match e {
        StoreError::Invalid { .. } | StoreError::Forbidden { .. } => true,
        StoreError::Database(sqlx::Error::Database(_)) => !e.is_transient(),
        _ => false,
    }
}

/// The body of [`Store::record_intake`] inside `tx`; `plans[i]` belongs to `batch[i]`.
async fn record_in_tx(
    tx: &mut Tx,
    actor: &Actor,
    lease: LeaseRef<'_>,
    uidvalidity: u32,
    batch: &[IncomingMessage],
    plans: &[Plan],
) -> StoreResult<Vec<IntakeOutcome>> {
    let mailbox = lease.mailbox;
    let validity = i64::from(uidvalidity);
    let state: Option<(Option<String>,)> = tx
        .opt(
            tx.pick(
                "SELECT lease_owner FROM mailbox_state WHERE mailbox = $1",
                "SELECT lease_owner FROM mailbox_state WHERE mailbox = $1 FOR UPDATE",
            ),
            args![mailbox],
        )
        .await?;
    match state {
        Some((Some(owner),)) if owner == lease.owner => {}
        other => {
            let holder = other
                .and_then(|(o,)| o)
                .unwrap_or_else(|| "nobody".to_string());
            return Err(StoreError::Conflict {
                entity: "mailbox",
                id: mailbox.to_string(),
                changed_by: holder.clone(),
                changed_at: crate::store::rows::rfc3339(now_ms()),
                what: format!(
                    "the reading lease is held by {holder}, not {}: the batch was not recorded",
                    lease.owner
                ),
            });
        }
    }
    let uids: Vec<i64> = batch.iter().map(|m| i64::from(m.uid)).collect();
    let recorded: Vec<(i64,)> = tx
        .all(
            tx.pick(
                "SELECT uid FROM intake_messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid IN (SELECT value FROM json_each($3))",
                "SELECT uid FROM intake_messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid = ANY($3)",
            ),
            args![mailbox, validity, uids.clone()],
        )
        .await?;
    let recorded: HashSet<i64> = recorded.into_iter().map(|(u,)| u).collect();
    let ids: Vec<String> = batch
        .iter()
        .filter_map(|m| dedupe_id(&m.classified))
        .collect();
    let mut taken: HashSet<String> = if ids.is_empty() {
        HashSet::new()
    } else {
        let rows: Vec<(String,)> = tx
            .all(
                tx.pick(
                    "SELECT message_id FROM intake_messages WHERE message_id IN (SELECT value FROM json_each($1)) AND verdict <> 'duplicate'",
                    "SELECT message_id FROM intake_messages WHERE message_id = ANY($1) AND verdict <> 'duplicate'",
                ),
                vec![Val::TextList(ids)],
            )
            .await?;
        rows.into_iter().map(|(m,)| m).collect()
    };
    let now = now_ms();
    // First pass: what each message becomes; the requests are then created together.
    let mut decided: Vec<(&IncomingMessage, Option<String>, Option<&Plan>)> = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    for (message, plan) in batch.iter().zip(plans) {
        if recorded.contains(&i64::from(message.uid)) {
            out.push(IntakeOutcome {
                uid: message.uid,
                result: IntakeResult::AlreadyRecorded,
                request_id: None,
            });
            continue;
        }
        let message_id = dedupe_id(&message.classified);
        let duplicate = match &message_id {
            Some(id) => !taken.insert(id.clone()),
            None => false,
        };
        decided.push((message, message_id, (!duplicate).then_some(plan)));
    }
    let drafts: Vec<Draft<'_>> = decided
        .iter()
        .filter_map(|(_, _, plan)| match plan {
            Some(Plan::Request(request, triage)) => Some(Draft {
                request,
                triage: triage.as_deref(),
            }),
            _ => None,
        })
        .collect();
    let mut created = insert_requests(tx, actor, &drafts, ProcessJobs::PerRequest)
        .await?
        .into_iter();
    let mut rows: Vec<serde_json::Value> = Vec::with_capacity(decided.len());
    for (message, message_id, plan) in decided {
        let (verdict, reason, status, request_id, result) = match plan {
            None => (
                "duplicate",
                Some("a message with this Message-ID was recorded before".to_string()),
                "done",
                None,
                IntakeResult::Duplicate,
            ),
            Some(Plan::Request(_, triage)) => {
                let row = created.next().ok_or_else(|| {
                    StoreError::Corrupt("fewer requests created than drafted".into())
                })?;
                let (verdict, result) = if triage.is_some() {
                    ("triage", IntakeResult::Triage)
                } else {
                    ("request", IntakeResult::Request)
                };
                (verdict, triage.clone(), "done", Some(row.id), result)
            }
            Some(Plan::Record(verdict, reason, status)) => {
                let result = match *verdict {
                    "ignored" => IntakeResult::Ignored,
                    "quarantined" => IntakeResult::Quarantined,
                    _ => IntakeResult::Invalid,
                };
                (*verdict, reason.clone(), *status, None, result)
            }
        };
        let summary = serde_json::to_string(&message.classified.mail).map_err(corrupt)?;
        let evidence = serde_json::to_string(&message.classified.evidence).map_err(corrupt)?;
        rows.push(serde_json::json!({
            "mailbox": mailbox,
            "uidvalidity": validity,
            "uid": i64::from(message.uid),
            "message_id": message_id,
            "verdict": verdict,
            "reason": reason,
            "request_id": request_id,
            "summary": summary,
            "evidence": evidence,
            "status": status,
            "received_at": now,
        }));
        out.push(IntakeOutcome {
            uid: message.uid,
            result,
            request_id,
        });
    }
    out.sort_by_key(|o| o.uid);
    let written = rows.len() as i64;
    if !rows.is_empty() {
        tx.exec(
            tx.pick(INSERT_INTAKE_SQLITE, INSERT_INTAKE_PG),
            args![serde_json::Value::Array(rows).to_string()],
        )
        .await?;
    }
    let last = uids.iter().copied().max().unwrap_or(0);
    tx.exec(
        "UPDATE mailbox_state SET \
             last_uid = CASE WHEN uidvalidity IS NULL OR uidvalidity <> $2 OR last_uid < $3 THEN $3 ELSE last_uid END, \
             uidvalidity = $2, processed = processed + $4, updated_at = $5 \
         WHERE mailbox = $1",
        args![mailbox, validity, last, written, now],
    )
    .await?;
    Ok(out)
}
