//! Approval by reply, the engine's part: the [`ReplyDesk`] the mailbox readers hand every
//! message to before classification. A message sent to a notifier's reply address (plain or
//! `local+TOKEN@domain`), with a `[TOKEN]` in its subject, or read from a notifier's
//! `reply_mailbox` is a reply: its token is verified with the notifier's key for the sender
//! (the From address must be the address of the approver the token was issued to: the
//! operator's e-mail or the directory's), its new text must open with APPROVE or REJECT, and
//! the store then decides as that approver — or records the refusal, audits it and queues the
//! answer to the sender.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use mail_parser::MessageParser;
use tracing::{info, warn};

use crate::directory::DirectoryClient;
use crate::domain::config::{ConfigDocument, Mailbox, check_sender};
use crate::domain::intake::MailSummary;
use crate::domain::reply::{Verb, parse_decision, recognise};
use crate::domain::reply_token::{ReplyKey, TokenError, approval_of};
use crate::engine::approvers;
use crate::engine::documents;
use crate::engine::notify::content::address_of;
use crate::intake::parse::parse;
use crate::intake::reader::ReplyReader;
use crate::intake::rules::{auto_reply, no_reply_sender};
use crate::store::Store;
use crate::store::api::{Actor, ApprovalRow, Decision, OperatorRow, ReadApi};
use crate::store::error::StoreError;
use crate::store::replies::{AcceptedReply, RefusedReply, ReplyAnswer, ReplyAt, ReplyOutcome};

/// How long the notifiers' reply settings are reused before they are read again.
const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// Headers whose addresses can carry the plus-addressed token.
const RECIPIENT_HEADERS: &[&str] = &["Delivered-To", "X-Original-To", "Envelope-To"];

/// A notifier that takes replies.
struct ReplyNotifier {
    name: String,
    address: String,
    mailbox: String,
    /// The notifier's own sender address (never answered: no mail loops).
    from: Option<String>,
    key: Result<ReplyKey, String>,
}

type Settings = Arc<Vec<ReplyNotifier>>;

/// Reads approval replies for the mailbox readers (see the module docs).
pub struct ReplyDesk {
    store: Store,
    actor: Actor,
    cache: Mutex<Option<(Instant, Settings)>>,
}

impl std::fmt::Debug for ReplyDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyDesk").finish_non_exhaustive()
    }
}

/// The first line of what the sender is told, and the approval the token names.
fn refusal(why: impl Into<String>, approval_id: Option<i64>) -> RefusedReply {
    RefusedReply {
        why: why.into(),
        approval_id,
    }
}

impl ReplyDesk {
    /// A desk recording through `store` as the reader of worker `owner`.
    pub fn new(store: Store, owner: &str) -> Self {
        Self {
            store,
            actor: Actor::system("intake", format!("worker:{owner}")),
            cache: Mutex::new(None),
        }
    }

    /// The notifiers with approval by reply, read again every [`SETTINGS_TTL`].
    async fn settings(&self) -> Result<Settings, StoreError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, settings)) = cache.as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(settings.clone());
        }
        let mut out = Vec::new();
        for head in self.store.config_heads().await? {
            if head.kind != "notifier" {
                continue;
            }
            let Ok(ConfigDocument::Notifier(notifier)) = documents::check(&head.name, &head.body)
            else {
                continue;
            };
            let Some(reply) = notifier.reply() else {
                continue;
            };
            let key = reply
                .key
                .resolve()
                .map_err(|e| format!("reply_key: {e}"))
                .and_then(|secret| {
                    ReplyKey::from_secret(&secret).map_err(|e| format!("reply_key: {e}"))
                });
            out.push(ReplyNotifier {
                name: notifier.name.clone(),
                address: reply.address.to_string(),
                mailbox: reply.mailbox.to_string(),
                from: check_sender(&notifier.from).ok().map(str::to_lowercase),
                key,
            });
        }
        let settings = Arc::new(out);
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), settings.clone()));
        }
        Ok(settings)
    }

    async fn read(
        &self,
        mailbox: &Mailbox,
        at: ReplyAt<'_>,
        raw: &[u8],
    ) -> Result<bool, StoreError> {
        let settings = self.settings().await?;
        if settings.is_empty() {
            return Ok(false);
        }
        let (recipients, subject) = envelope(raw);
        let Some((notifier, token)) = settings.iter().find_map(|n| {
            recognise(&n.address, &recipients, &subject, n.mailbox == mailbox.name)
                .map(|found| (n, found.token))
        }) else {
            return Ok(false);
        };
        let mail = parse(raw);
        let people = self.people().await?;
        // Only people Gatehouse knows are answered: a forged sender gets no mail.
        let answer = match answer_to(&mail, notifier) {
            Some(answer) if people.knows(&answer.to).await => Some(answer),
            _ => None,
        };
        let verdict = self
            .judge(notifier, token.as_deref(), &mail, &people)
            .await?;
        let outcome = self
            .store
            .record_reply(&self.actor, at, &mail, answer.as_ref(), verdict)
            .await?;
        match &outcome {
            ReplyOutcome::Decided(approval) => {
                info!(mailbox = %mailbox.name, uid = at.uid, approval = approval.id, status = %approval.status, "approval decided by reply")
            }
            ReplyOutcome::Refused(why) => {
                info!(mailbox = %mailbox.name, uid = at.uid, %why, answered = answer.is_some(), "approval reply refused")
            }
            ReplyOutcome::AlreadyRecorded | ReplyOutcome::Duplicate => {}
        }
        Ok(true)
    }

    /// What a reply decides, or why it decides nothing (the store's own checks come after).
    async fn judge(
        &self,
        notifier: &ReplyNotifier,
        token: Option<&str>,
        mail: &MailSummary,
        people: &People,
    ) -> Result<Result<AcceptedReply, RefusedReply>, StoreError> {
        let Some(from) = mail.from.as_deref() else {
            return Ok(Err(refusal("the reply has no sender address", None)));
        };
        let Some(token) = token else {
            return Ok(Err(refusal(
                "the reply carries no approval token: reply to the approval mail itself (its reply address and the [token] in its subject carry it)",
                None,
            )));
        };
        let key = match &notifier.key {
            Ok(key) => key,
            Err(why) => {
                return Ok(Err(refusal(
                    format!(
                        "notifier \"{}\" cannot check reply tokens: {why}",
                        notifier.name
                    ),
                    None,
                )));
            }
        };
        let Ok(approval_id) = approval_of(token) else {
            return Ok(Err(refusal(
                "the reply's token is not a Gatehouse approval token (damaged or made up)",
                None,
            )));
        };
        let not_valid = || {
            refusal(
                "the reply's token is not valid (altered, or not issued by this Gatehouse)",
                Some(approval_id),
            )
        };
        let Some(approval) = self.store.approval_by_id(approval_id).await? else {
            return Ok(Err(not_valid()));
        };
        let sender = people.approver_of(&approval, from).await;
        let claims = match key.verify(
            token,
            sender.as_deref().unwrap_or(from),
            &approval.approvers,
            self.store.now(),
        ) {
            Ok(claims) => claims,
            Err(TokenError::NotYours { issued_to }) => {
                return Ok(Err(refusal(
                    format!(
                        "the reply's token was issued to {issued_to}, not to the sender {from}: only the approver it was sent to can use it"
                    ),
                    Some(approval_id),
                )));
            }
            Err(TokenError::Expired) => {
                return Ok(Err(refusal(
                    "the reply's token expired: decide in the Gatehouse console, or reply to a newer reminder",
                    Some(approval_id),
                )));
            }
            Err(TokenError::Malformed) => {
                return Ok(Err(refusal(
                    "the reply's token is not a Gatehouse approval token (damaged or made up)",
                    None,
                )));
            }
            Err(TokenError::BadSignature | TokenError::WeakKey) => return Ok(Err(not_valid())),
        };
        let decision = match parse_decision(&mail.new_text) {
            Ok(decision) => decision,
            Err(why) => return Ok(Err(refusal(why.to_string(), Some(approval_id)))),
        };
        let auth_results: Vec<&str> = mail
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
            .map(|(_, value)| value.as_str())
            .collect();
        Ok(Ok(AcceptedReply {
            token: token.to_string(),
            approval_id,
            approver: claims.approver,
            decision: match decision.verb {
                Verb::Approve => Decision::Approve,
                Verb::Reject => Decision::Reject,
            },
            reason: decision.reason,
            auth_results: (!auth_results.is_empty()).then(|| auth_results.join(" | ")),
        }))
    }

    /// The operators and directories, to match senders with people.
    async fn people(&self) -> Result<People, StoreError> {
        let operators = self.store.operators().await?;
        let dirs = match approvers::directories(&self.store).await {
            Ok(Ok(dirs)) => dirs,
            Ok(Err(why)) => {
                warn!(%why, "directories unavailable while reading a reply");
                Vec::new()
            }
            Err(e) => {
                warn!(error = %e, "directories unavailable while reading a reply");
                Vec::new()
            }
        };
        Ok(People { operators, dirs })
    }
}

/// The people a reply's sender is matched with.
struct People {
    operators: Vec<OperatorRow>,
    dirs: Vec<Arc<DirectoryClient>>,
}

impl People {
    /// The approver of `approval` whose address (the name itself, the operator's e-mail or
    /// the directory's) is `from`.
    async fn approver_of(&self, approval: &ApprovalRow, from: &str) -> Option<String> {
        for approver in &approval.approvers {
            if let Ok(address) = address_of(approver, &self.operators, &self.dirs).await
                && address.eq_ignore_ascii_case(from)
            {
                return Some(approver.clone());
            }
        }
        None
    }

    /// True when `address` is an operator's e-mail or a person in a directory.
    async fn knows(&self, address: &str) -> bool {
        self.operators.iter().any(|o| {
            o.email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(address))
        }) || matches!(
            approvers::find_person(&self.dirs, address).await,
            Ok(Some(_))
        )
    }
}

/// The answer to a refused reply, unless the sender is automatic or the notifier itself.
fn answer_to(mail: &MailSummary, notifier: &ReplyNotifier) -> Option<ReplyAnswer> {
    let from = mail.from.as_deref()?;
    let own = |address: &str| {
        let address = address.to_lowercase();
        let (local, domain) = address.split_once('@').unwrap_or((&address, ""));
        from.split_once('@')
            .is_some_and(|(their_local, their_domain)| {
                their_domain == domain
                    && (their_local == local || their_local.starts_with(&format!("{local}+")))
            })
    };
    if auto_reply(mail).is_some()
        || no_reply_sender(mail).is_some()
        || own(&notifier.address)
        || notifier.from.as_deref().is_some_and(own)
    {
        return None;
    }
    Some(ReplyAnswer {
        to: from.to_string(),
        notifier: notifier.name.clone(),
        subject: mail.subject.clone(),
    })
}

/// The recipient addresses (To, Cc, Delivered-To, X-Original-To) and the subject, from the
/// headers only.
fn envelope(raw: &[u8]) -> (Vec<String>, String) {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return (Vec::new(), String::new());
    };
    let mut recipients: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|list| list.iter())
        .filter_map(|addr| addr.address())
        .map(str::to_string)
        .collect();
    for header in message.headers() {
        if !RECIPIENT_HEADERS
            .iter()
            .any(|name| name.eq_ignore_ascii_case(header.name()))
        {
            continue;
        }
        let start = header.offset_start() as usize;
        let end = (header.offset_end() as usize).min(raw.len());
        if let Some(bytes) = raw.get(start..end) {
            let text = String::from_utf8_lossy(bytes);
            recipients.extend(
                text.split([',', ' ', '\t', '\r', '\n'])
                    .map(|part| part.trim().trim_matches(|c| c == '<' || c == '>'))
                    .filter(|part| part.contains('@'))
                    .map(str::to_string),
            );
        }
    }
    let subject = message.subject().unwrap_or_default().to_string();
    (recipients, subject)
}

impl ReplyReader for ReplyDesk {
    fn read_reply<'a>(
        &'a self,
        mailbox: &'a Mailbox,
        at: ReplyAt<'a>,
        raw: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.read(mailbox, at, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_has_every_recipient_header() {
        let raw = b"From: ann@example.com\r\nTo: Approvals <approvals+gh1-1@example.com>\r\nCc: x@example.com\r\nDelivered-To: approvals+gh1-2@example.com\r\nSubject: Re: Approval needed [gh1-3]\r\n\r\nAPPROVE\r\n";
        let (recipients, subject) = envelope(raw);
        assert_eq!(
            recipients,
            vec![
                "approvals+gh1-1@example.com".to_string(),
                "x@example.com".into(),
                "approvals+gh1-2@example.com".into()
            ]
        );
        assert_eq!(subject, "Re: Approval needed [gh1-3]");
        assert_eq!(envelope(b""), (Vec::new(), String::new()));
    }

    #[test]
    fn automatic_senders_and_the_notifier_itself_get_no_answer() {
        let notifier = ReplyNotifier {
            name: "n".into(),
            address: "approvals@example.com".into(),
            mailbox: "m".into(),
            from: Some("gatehouse@example.com".into()),
            key: Err("none".into()),
        };
        let mail = |from: &str, headers: Vec<(String, String)>| MailSummary {
            from: Some(from.into()),
            subject: "Re: x".into(),
            headers,
            ..MailSummary::default()
        };
        assert!(answer_to(&mail("ann@example.com", vec![]), &notifier).is_some());
        for from in [
            "approvals@example.com",
            "approvals+gh1-1@example.com",
            "gatehouse@example.com",
            "noreply@example.com",
        ] {
            assert_eq!(answer_to(&mail(from, vec![]), &notifier), None, "{from}");
        }
        let auto = vec![("Auto-Submitted".to_string(), "auto-replied".to_string())];
        assert_eq!(answer_to(&mail("ann@example.com", auto), &notifier), None);
    }
}
