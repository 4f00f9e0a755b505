//! Approval by reply in the store: a reply read from a mailbox is recorded exactly once, in the
//! transaction of its outcome. An accepted reply decides its approval through the same checks
//! as any decision (as the approver, source `mail:<message-id>`), uses its token (a second
//! reply with it is refused) and records the message, all in one transaction; a refused reply
//! records the message, appends an `approval.reply.refused` audit row naming why, and queues
//! the answer to its sender, also in one transaction. Either way the message is never read
//! again.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::intake::{Evidence, MailSummary, RuleVerdict};
use crate::store::Store;
use crate::store::api::{Actor, ApprovalRow, Decision, NewJob, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::command::finish;
use crate::store::db::{Tx, args, write_tx};
use crate::store::decide::{check_decision_input, decide_in_tx};
use crate::store::error::StoreError;
use crate::store::intake::LeaseRef;
use crate::store::queue::{QUEUE_NOTIFY, enqueue_one};
use crate::store::rows::{now_ms, rfc3339};

/// Where a reply was read: the mailbox (with its reading lease) and the message's UID.
#[derive(Debug, Clone, Copy)]
pub struct ReplyAt<'a> {
    /// The mailbox and the reader holding its lease.
    pub lease: LeaseRef<'a>,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The message's UID.
    pub uid: u32,
}

/// A reply whose token verified for its sender: what it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedReply {
    /// The token (any case; kept in lower case).
    pub token: String,
    /// The approval it decides.
    pub approval_id: i64,
    /// The approver the token was issued to (and who sent the reply).
    pub approver: String,
    /// Approve or reject.
    pub decision: Decision,
    /// The reason written in the reply.
    pub reason: Option<String>,
    /// The reply's `Authentication-Results` header(s), kept as evidence.
    pub auth_results: Option<String>,
}

/// The answer mail to the sender of a refused reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyAnswer {
    /// The sender's address.
    pub to: String,
    /// The notifier that sends it (the one whose reply address was written to).
    pub notifier: String,
    /// The subject of the refused reply (the answer says `Re:` it).
    pub subject: String,
}

/// A reply that decides nothing, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedReply {
    /// Why (shown to the sender and in the audit row).
    pub why: String,
    /// The approval its token names, when it names one.
    pub approval_id: Option<i64>,
}

/// What recording a reply did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyOutcome {
    /// The approval was decided (the approval after the decision).
    Decided(Box<ApprovalRow>),
    /// Refused (why), recorded, audited and (when it can be) answered.
    Refused(String),
    /// This message was recorded before: nothing done.
    AlreadyRecorded,
    /// Its Message-ID was taken by an earlier message: recorded as `duplicate`.
    Duplicate,
}

/// The verdict stored for an accepted reply.
pub const VERDICT_DECIDED: &str = "approval_reply";
/// The verdict stored for a refused reply.
pub const VERDICT_REFUSED: &str = "approval_reply_refused";

/// Errors that are about this reply (refused by a rule, conflicting, gone), as opposed to the
/// store being unreachable: they refuse the reply instead of failing the reading.
fn refuses(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Forbidden { .. }
            | StoreError::Conflict { .. }
            | StoreError::Invalid { .. }
            | StoreError::InvalidState { .. }
            | StoreError::NotFound { .. }
    )
}

/// The actor source of a reply: `mail:<message-id>`, or the mailbox position without one.
pub fn mail_source(message_id: Option<&str>, at: &ReplyAt<'_>) -> String {
    match message_id.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => format!("mail:{}", id.chars().take(300).collect::<String>()),
        None => format!(
            "mail:imap:{}/{}/{}",
            at.lease.mailbox, at.uidvalidity, at.uid
        ),
    }
}

/// Before anything else in a reply's transaction: the reader still holds the lease, and the
/// message is new. `Some(outcome)` when there is nothing to do.
async fn already(
    tx: &mut Tx,
    at: &ReplyAt<'_>,
    mail: &MailSummary,
    evidence: &Evidence,
) -> StoreResult<Option<ReplyOutcome>> {
    let owner: Option<(Option<String>,)> = tx
        .opt(
            tx.pick(
                "SELECT lease_owner FROM mailbox_state WHERE mailbox = $1",
                "SELECT lease_owner FROM mailbox_state WHERE mailbox = $1 FOR UPDATE",
            ),
            args![at.lease.mailbox],
        )
        .await?;
    let holder = owner.and_then(|(o,)| o);
    if holder.as_deref() != Some(at.lease.owner) {
        let holder = holder.unwrap_or_else(|| "nobody".into());
        return Err(StoreError::Conflict {
            entity: "mailbox",
            id: at.lease.mailbox.to_string(),
            changed_by: holder.clone(),
            changed_at: rfc3339(now_ms()),
            what: format!(
                "the reading lease is held by {holder}, not {}: the reply was not recorded",
                at.lease.owner
            ),
        });
    }
    let recorded: Option<(i64,)> = tx
        .opt(
            "SELECT id FROM intake_messages WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3",
            args![
                at.lease.mailbox,
                i64::from(at.uidvalidity),
                i64::from(at.uid)
            ],
        )
        .await?;
    if recorded.is_some() {
        return Ok(Some(ReplyOutcome::AlreadyRecorded));
    }
    if let Some(id) = message_id(mail) {
        let taken: Option<(i64,)> = tx
            .opt(
                "SELECT id FROM intake_messages WHERE message_id = $1 AND verdict <> 'duplicate'",
                args![&id],
            )
            .await?;
        if taken.is_some() {
            insert_message(
                tx,
                at,
                mail,
                evidence,
                (
                    "duplicate",
                    "a message with this Message-ID was recorded before",
                ),
                None,
            )
            .await?;
            return Ok(Some(ReplyOutcome::Duplicate));
        }
    }
    Ok(None)
}

fn message_id(mail: &MailSummary) -> Option<String> {
    let id = mail.message_id.as_deref()?.trim();
    (!id.is_empty()).then(|| id.chars().take(998).collect())
}

/// The intake row of a reply (`verdict`, `reason`), linked to the approval's request.
async fn insert_message(
    tx: &mut Tx,
    at: &ReplyAt<'_>,
    mail: &MailSummary,
    evidence: &Evidence,
    (verdict, reason): (&str, &str),
    request_id: Option<i64>,
) -> StoreResult<()> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let summary = serde_json::to_string(mail).map_err(corrupt)?;
    let evidence = serde_json::to_string(evidence).map_err(corrupt)?;
    let message_id = message_id(mail);
    tx.exec(
        "INSERT INTO intake_messages (mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'done', $10)",
        args![
            at.lease.mailbox,
            i64::from(at.uidvalidity),
            i64::from(at.uid),
            message_id,
            verdict,
            reason,
            request_id,
            summary,
            evidence,
            now_ms()
        ],
    )
    .await?;
    Ok(())
}

/// Evidence of a reply: how it was read, and the token check's outcome.
fn evidence_of(outcome: &str, detail: &str) -> Evidence {
    Evidence {
        mode: "reply".into(),
        intent: Some("approval_reply".into()),
        rules: vec![RuleVerdict {
            rule: "reply_token".into(),
            outcome: outcome.into(),
            detail: detail.into(),
        }],
        ..Evidence::default()
    }
}

impl Store {
    /// Records a reply read at `at`: an accepted one decides its approval (as the approver,
    /// with every rule of a decision) and uses its token in the same transaction as the
    /// message's record; when the store refuses the decision (token used, not eligible,
    /// already decided, ...) or `verdict` is already a refusal, the message is recorded as
    /// refused, audited, and `answer` queued, in one transaction. `actor` is the reader.
    pub async fn record_reply(
        &self,
        actor: &Actor,
        at: ReplyAt<'_>,
        mail: &MailSummary,
        answer: Option<&ReplyAnswer>,
        verdict: Result<AcceptedReply, RefusedReply>,
    ) -> StoreResult<ReplyOutcome> {
        self.check_writable()?;
        let source = mail_source(mail.message_id.as_deref(), &at);
        let refused = match verdict {
            Ok(accepted) => match self.decide_by_reply(&at, mail, &accepted, &source).await {
                Ok(Ok(outcome)) => {
                    self.signal_local(true);
                    return Ok(outcome);
                }
                Ok(Err(why)) => RefusedReply {
                    why,
                    approval_id: Some(accepted.approval_id),
                },
                Err(e) if refuses(&e) => RefusedReply {
                    why: match e {
                        StoreError::Forbidden { why, .. } => format!(
                            "{} may not decide approval {}: {why}",
                            accepted.approver, accepted.approval_id
                        ),
                        other => other.to_string(),
                    },
                    approval_id: Some(accepted.approval_id),
                },
                Err(e) => return Err(e),
            },
            Err(refused) => refused,
        };
        let outcome = self
            .refuse_reply(actor, &at, mail, answer, &refused, &source)
            .await?;
        self.signal_local(true);
        Ok(outcome)
    }

    /// The accepted reply's transaction; `Ok(Err(why))` when its token was used before
    /// (nothing written).
    async fn decide_by_reply(
        &self,
        at: &ReplyAt<'_>,
        mail: &MailSummary,
        accepted: &AcceptedReply,
        source: &str,
    ) -> StoreResult<Result<ReplyOutcome, String>> {
        let reason = check_decision_input(accepted.decision, accepted.reason.clone())?;
        let token = accepted.token.trim().to_lowercase();
        let decider = Actor::operator(accepted.approver.clone(), source);
        let evidence = evidence_of(
            "pass",
            &format!(
                "token for approval {} issued to {} verified",
                accepted.approval_id, accepted.approver
            ),
        );
        let proof = json!({
            "by": "reply",
            "message_id": message_id(mail),
            "from": mail.from,
            "authentication_results": accepted.auth_results,
        });
        write_tx!(self, |tx| {
            if let Some(outcome) = already(&mut tx, at, mail, &evidence).await? {
                return Ok(Ok(outcome));
            }
            let used: Option<(String, i64)> = tx
                .opt(
                    "SELECT COALESCE(message_id, ''), used_at FROM reply_tokens WHERE token = $1",
                    args![&token],
                )
                .await?;
            if let Some((by, when)) = used {
                return Ok(Err(format!(
                    "the reply's token was already used (by message {by} at {}): each token decides once",
                    rfc3339(when)
                )));
            }
            let version: Option<(i64,)> = tx
                .opt(
                    "SELECT version FROM approvals WHERE id = $1",
                    args![accepted.approval_id],
                )
                .await?;
            let (version,) = version.ok_or(StoreError::NotFound {
                entity: "approval",
                id: accepted.approval_id.to_string(),
            })?;
            let (row, jobs) = decide_in_tx(
                &mut tx,
                &decider,
                accepted.approval_id,
                version,
                accepted.decision,
                reason.clone(),
                Some(proof.clone()),
            )
            .await?;
            tx.exec(
                "INSERT INTO reply_tokens (token, approval_id, approver, message_id, auth_results, used_at) VALUES ($1, $2, $3, $4, $5, $6)",
                args![&token, accepted.approval_id, &accepted.approver, message_id(mail), &accepted.auth_results, now_ms()],
            )
            .await?;
            let what = format!(
                "{} {} approval {} by reply",
                accepted.approver,
                match accepted.decision {
                    Decision::Approve => "approved",
                    Decision::Reject => "rejected",
                },
                accepted.approval_id
            );
            insert_message(
                &mut tx,
                at,
                mail,
                &evidence,
                (VERDICT_DECIDED, &what),
                Some(row.request_id),
            )
            .await?;
            finish(&mut tx, jobs).await?;
            Ok(Ok(ReplyOutcome::Decided(Box::new(row))))
        })
    }

    async fn refuse_reply(
        &self,
        actor: &Actor,
        at: &ReplyAt<'_>,
        mail: &MailSummary,
        answer: Option<&ReplyAnswer>,
        refused: &RefusedReply,
        source: &str,
    ) -> StoreResult<ReplyOutcome> {
        let evidence = evidence_of("fail", &refused.why);
        let reader = Actor {
            source: source.to_string(),
            ..actor.clone()
        };
        write_tx!(self, |tx| {
            if let Some(outcome) = already(&mut tx, at, mail, &evidence).await? {
                return Ok(outcome);
            }
            let request_id: Option<i64> = match refused.approval_id {
                Some(id) => tx
                    .opt::<(i64,)>("SELECT request_id FROM approvals WHERE id = $1", args![id])
                    .await?
                    .map(|(r,)| r),
                None => None,
            };
            insert_message(
                &mut tx,
                at,
                mail,
                &evidence,
                (VERDICT_REFUSED, &refused.why),
                request_id,
            )
            .await?;
            let (entity, entity_id) = match (request_id, refused.approval_id) {
                (Some(_), Some(id)) => ("approval", id.to_string()),
                _ => (
                    "mail",
                    format!("{}/{}/{}", at.lease.mailbox, at.uidvalidity, at.uid),
                ),
            };
            audit::append(
                &mut tx,
                &reader,
                AuditEntry {
                    action: "approval.reply.refused",
                    entity,
                    entity_id,
                    before: None,
                    after: Some(json!({
                        "why": refused.why,
                        "from": mail.from,
                        "subject": mail.subject,
                        "message_id": message_id(mail),
                        "mailbox": at.lease.mailbox,
                        "uid": at.uid,
                        "approval_id": refused.approval_id,
                        "answered": answer.map(|a| &a.to),
                        "authentication_results": mail
                            .headers
                            .iter()
                            .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
                            .map(|(_, value)| value.as_str())
                            .collect::<Vec<_>>(),
                    })),
                },
            );
            let mut jobs = false;
            if let Some(answer) = answer {
                let job = NewJob {
                    queue: QUEUE_NOTIFY.to_string(),
                    kind: "notify.reply_refused".into(),
                    payload: json!({
                        "to": answer.to,
                        "notifier": answer.notifier,
                        "subject": answer.subject,
                        "why": refused.why,
                        "message_id": message_id(mail),
                    }),
                    priority: 0,
                    run_at: now_ms(),
                    max_attempts: 8,
                    unique_key: Some(format!(
                        "reply_refused:{}:{}:{}",
                        at.lease.mailbox, at.uidvalidity, at.uid
                    )),
                    request_id,
                };
                jobs = enqueue_one(&mut tx, &job).await?.is_some();
            }
            finish(&mut tx, jobs).await?;
            Ok(ReplyOutcome::Refused(refused.why.clone()))
        })
    }
}

impl Store {
    /// Moves `lease.mailbox`'s reading position over approval replies recorded on their own:
    /// to `last_uid` under `uidvalidity` when that is further, counting `replies` as
    /// processed. Called once the batch they came with is recorded (a folder of replies only
    /// records no batch, and would otherwise be read from the start after every reconnect).
    /// Refused with `Conflict` unless `lease.owner` holds the reading lease.
    pub async fn advance_over_replies(
        &self,
        lease: LeaseRef<'_>,
        uidvalidity: u32,
        last_uid: u32,
        replies: usize,
    ) -> StoreResult<()> {
        let moved = self
            .write_exec(
                "UPDATE mailbox_state SET \
                     last_uid = CASE WHEN uidvalidity IS NULL OR uidvalidity <> $2 OR last_uid < $3 THEN $3 ELSE last_uid END, \
                     uidvalidity = $2, processed = processed + $4, updated_at = $5 \
                 WHERE mailbox = $1 AND lease_owner = $6",
                args![
                    lease.mailbox,
                    i64::from(uidvalidity),
                    i64::from(last_uid),
                    i64::try_from(replies).unwrap_or(i64::MAX),
                    now_ms(),
                    lease.owner
                ],
            )
            .await?;
        if moved == 0 {
            return Err(StoreError::Conflict {
                entity: "mailbox",
                id: lease.mailbox.to_string(),
                changed_by: "another reader".into(),
                changed_at: rfc3339(now_ms()),
                what: format!(
                    "the reading lease is not held by {}: the position was not moved",
                    lease.owner
                ),
            });
        }
        Ok(())
    }

    /// One approval stage by id, without its decisions (`None` when there is none): what a
    /// reply's token names, read to check the sender against its approvers.
    pub async fn approval_by_id(&self, id: i64) -> StoreResult<Option<ApprovalRow>> {
        let rows: Vec<crate::store::rows::DbApproval> = self
            .read_all(
                "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
                 FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.id = $1",
                args![id],
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|row| row.into_api(Vec::new()))
            .transpose()
    }
}
