//! Approval mails with reply tokens: when the notifier takes replies, each approver gets a
//! message of their own, signed for them — the token in a plus-addressed `Reply-To` and as
//! `[TOKEN]` at the end of the subject, and `reply_to`, `reply_token` and
//! `reply_instructions` among the template's values (the instructions are added below the
//! body when the template does not show them). And the answer to a refused reply
//! (`notify.reply_refused`).

use std::collections::BTreeMap;

use serde_json::json;
use tracing::info;

use super::{JobContext, JobError, notifier_named};
use crate::domain::config::ReplySettings;
use crate::domain::notification::{Template, render_template};
use crate::domain::reply::instructions;
use crate::domain::reply_token::{ReplyClaims, ReplyKey, reply_address, tag_subject};
use crate::notify::{Mailer, OutgoingMail, RecipientFailure, SendReport};

/// Events whose mails carry a reply token.
pub(super) const SIGNED_EVENTS: &[&str] = &["approval_request", "reminder", "escalation"];

/// Signs tokens for one approval stage.
pub(super) struct ReplySigner {
    key: ReplyKey,
    address: String,
    approval_id: i64,
    expires_at: i64,
}

impl ReplySigner {
    /// A signer for `approval_id` with the notifier's settings, tokens valid from `now`.
    pub(super) fn new(
        reply: &ReplySettings<'_>,
        approval_id: i64,
        now: i64,
    ) -> Result<Self, String> {
        let secret = reply.key.resolve().map_err(|e| format!("reply_key: {e}"))?;
        let key = ReplyKey::from_secret(&secret).map_err(|e| format!("reply_key: {e}"))?;
        let lifetime = i64::try_from(reply.lifetime.as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            key,
            address: reply.address.to_string(),
            approval_id,
            expires_at: now.saturating_add(lifetime),
        })
    }

    /// Values for rendering before the recipients are known (the chat message, the recorded
    /// subject): the reply address without a token.
    pub(super) fn preview_values(&self, values: &mut BTreeMap<String, String>) {
        values.insert("reply_to".into(), self.address.clone());
        values.insert("reply_token".into(), "(a token for each approver)".into());
        values.insert("reply_instructions".into(), instructions(&self.address));
    }

    /// Renders and sends one message per recipient (`to`: address and the approver's name as
    /// the store knows them), each with its own token.
    pub(super) async fn send(
        &self,
        mailer: &Mailer,
        event: &str,
        template: &Template,
        values: &BTreeMap<String, String>,
        to: &[(String, String)],
    ) -> SendReport {
        let mut report = SendReport::default();
        for (address, approver) in to {
            let token = self.key.sign(&ReplyClaims {
                approval_id: self.approval_id,
                approver: approver.clone(),
                expires_at: self.expires_at,
            });
            let Some(reply_to) = reply_address(&self.address, &token) else {
                report.failed.push(RecipientFailure {
                    recipient: address.clone(),
                    permanent: true,
                    reason: format!("reply_address {} cannot carry a token", self.address),
                });
                continue;
            };
            let mut values = values.clone();
            values.insert("reply_to".into(), reply_to.clone());
            values.insert("reply_token".into(), token.clone());
            let how = instructions(&reply_to);
            values.insert("reply_instructions".into(), how.clone());
            let message = match render_template(event, template, &values) {
                Ok(message) => message,
                Err(why) => {
                    report.failed.push(RecipientFailure {
                        recipient: address.clone(),
                        permanent: true,
                        reason: why,
                    });
                    continue;
                }
            };
            let body = if message.body.contains(&how) {
                message.body
            } else {
                format!("{}\n\n{how}\n", message.body.trim_end())
            };
            let html = message.html.map(|html| {
                if html.contains(&reply_to) {
                    html
                } else {
                    format!("{}\n<p>{}</p>\n", html.trim_end(), escape_html(&how))
                }
            });
            let sent = mailer
                .send(&OutgoingMail {
                    to: vec![address.clone()],
                    subject: tag_subject(&message.subject, &token),
                    body,
                    html,
                    reply_to: Some(reply_to),
                    in_reply_to: None,
                })
                .await;
            report.delivered.extend(sent.delivered);
            report.failed.extend(sent.failed);
        }
        report
    }
}

/// The answer to a refused approval reply: `Re:` its subject, why it was refused, and how to
/// decide instead. Recorded in the request's timeline when the reply named one.
pub(super) async fn answer_refused_reply(ctx: JobContext) -> Result<(), JobError> {
    let text = |field: &str| {
        ctx.job
            .payload
            .get(field)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| JobError::Permanent(format!("job {}: no {field}", ctx.job.id)))
    };
    let (to, name, why) = (text("to")?, text("notifier")?, text("why")?);
    let subject = text("subject").unwrap_or_default();
    let Some((notifier, document)) = notifier_named(&ctx.store, &name).await? else {
        return Err(JobError::Permanent(format!(
            "notifier \"{name}\" does not exist any more: the answer to {to} is not sent"
        )));
    };
    let mailer =
        Mailer::shared(&notifier, &document).map_err(|e| JobError::Permanent(e.to_string()))?;
    let subject = match subject.trim() {
        "" => "Your approval reply was not accepted".to_string(),
        s if s.to_lowercase().starts_with("re:") => s.to_string(),
        s => format!("Re: {s}"),
    };
    let body = format!(
        "Gatehouse did not accept your reply: {why}.\n\nNothing was decided. Reply to the approval mail itself with APPROVE or REJECT (and your reason) on the first line, or decide in the Gatehouse console.\n"
    );
    let report = mailer
        .send(&OutgoingMail {
            to: vec![to.clone()],
            subject: subject.clone(),
            body,
            reply_to: None,
            html: None,
            in_reply_to: text("message_id").ok(),
        })
        .await;
    let error = (!report.failed.is_empty()).then(|| {
        report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.recipient, f.reason))
            .collect::<Vec<_>>()
            .join("; ")
    });
    if let Some(request_id) = ctx.job.request_id {
        ctx.store
            .record_step(
                request_id,
                Some(ctx.job.id),
                &format!("notify.reply_refused mail to {to}"),
                Some(&ctx.job.payload),
                Some(&json!({
                    "sent": !report.delivered.is_empty(),
                    "notifier": name,
                    "subject": subject,
                    "delivered": report.delivered,
                    "failed": report.failed,
                })),
                error.as_deref(),
            )
            .await?;
    }
    info!(job = ctx.job.id, %to, delivered = report.delivered.len(), "answer to a refused reply");
    match error {
        None => Ok(()),
        Some(error) if report.failed.iter().any(|f| !f.permanent) && !ctx.is_last_attempt() => {
            Err(JobError::Transient(error))
        }
        Some(error) => Err(JobError::Permanent(error)),
    }
}

/// `text` safe inside HTML (the reply instructions added below a template's HTML part).
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out
}
