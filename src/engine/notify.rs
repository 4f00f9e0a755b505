//! Notification jobs: find the notifier serving the request's workflow, work out the
//! recipients (approvers by the operators' e-mail or the directory, the requester, the new
//! person), render the workflow's template strictly, send through SMTP and record one timeline
//! step per attempt with every recipient's outcome. Transient SMTP failures retry through the
//! queue; 5xx replies fail the job with the server's reason. Without a notifier the job records
//! "not sent". With approval by reply, each approver's mail carries their own reply token
//! (see `reply_mail`), and refused replies are answered (`notify.reply_refused`).

mod chat;
mod reply_mail;

pub use chat::txn_id;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::json;
use tracing::info;

use crate::domain::config::{ConfigDocument, Notifier, check_document, is_address};
use crate::domain::dry_run::SampleRequest;
use crate::domain::notification::{render_template, template_for};
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::engine::provision::parse_workflow;
use crate::notify::{ChatMessage, Mailer, OutgoingMail, RecipientFailure};
use crate::store::QUEUE_NOTIFY;
use crate::store::Store;
use crate::store::api::*;

/// Attempts of a notification job (transient SMTP failures retry with the queue's backoff).
const NOTIFY_ATTEMPTS: i32 = 8;

/// Hour of the start date (in UTC: workflows have no time zone yet) the welcome mail goes out.
pub const WELCOME_HOUR: u32 = 8;

/// Registers the `notify.*` handlers.
pub fn register(r: &mut Registry) {
    r.register("notify.approval_request", |ctx| {
        handle(
            ctx,
            "approval_request",
            "approval request to the stage's approvers",
        )
    });
    r.register("notify.reminder", |ctx| {
        handle(
            ctx,
            "reminder",
            "approval reminder to the approvers still to decide",
        )
    });
    r.register("notify.escalation", |ctx| {
        handle(
            ctx,
            "escalation",
            "escalation notice to the stage's new approvers",
        )
    });
    r.register("notify.rejected", |ctx| {
        handle(ctx, "rejected", "rejection notice to the requester")
    });
    r.register("notify.completed", |ctx| {
        handle(ctx, "completed", "completion notice to the requester")
    });
    r.register("notify.welcome", |ctx| {
        handle(ctx, "welcome", "welcome mail to the new person")
    });
    r.register("notify.reply_refused", reply_mail::answer_refused_reply);
}

/// Enqueues the approval request mail of a stage that just opened (nothing without a notifier:
/// there was never a "not sent" record for it).
pub async fn enqueue_approval_request(
    store: &Store,
    approval: &ApprovalRow,
) -> Result<(), JobError> {
    if approval.approvers.is_empty() || !has_notifier(store, &approval.workflow).await? {
        return Ok(());
    }
    store
        .enqueue(&[job(
            "notify.approval_request",
            json!({"request_id": approval.request_id, "stage": approval.stage, "approval_id": approval.id}),
            format!("approval_request:{}", approval.id),
            approval.request_id,
            store.now(),
        )])
        .await?;
    Ok(())
}

/// When the welcome mail of a request starting on `start_date` goes out (milliseconds):
/// [`WELCOME_HOUR`] UTC that day, or `now` when that moment has passed or there is no date.
pub fn welcome_at(start_date: Option<&str>, now: Millis) -> Millis {
    start_date
        .and_then(|text| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok())
        .and_then(|date| {
            let time = NaiveTime::from_hms_opt(WELCOME_HOUR, 0, 0)?;
            Utc.from_local_datetime(&date.and_time(time)).single()
        })
        .map_or(now, |at| at.timestamp_millis().max(now))
}

/// Enqueues the completion notice and, for a joiner, the welcome mail for its start date
/// (nothing when no notifier serves the workflow).
pub async fn enqueue_after_provisioning(
    store: &Store,
    request: &RequestRow,
) -> Result<(), JobError> {
    if !has_notifier(store, &request.workflow).await? {
        return Ok(());
    }
    let now = store.now();
    let mut jobs = vec![job(
        "notify.completed",
        json!({"request_id": request.id}),
        format!("completed:{}", request.id),
        request.id,
        now,
    )];
    if request.kind == "joiner" {
        let start = request.payload.get("start_date").and_then(|v| v.as_str());
        let run_at = welcome_at(start, now);
        jobs.push(job(
            "notify.welcome",
            json!({"request_id": request.id, "start_date": start}),
            format!("welcome:{}", request.id),
            request.id,
            run_at,
        ));
    }
    store.enqueue(&jobs).await?;
    Ok(())
}

fn job(
    kind: &str,
    payload: serde_json::Value,
    unique_key: String,
    request_id: i64,
    run_at: Millis,
) -> NewJob {
    NewJob {
        queue: QUEUE_NOTIFY.to_string(),
        kind: kind.to_string(),
        payload,
        priority: 0,
        run_at,
        max_attempts: NOTIFY_ATTEMPTS,
        unique_key: Some(unique_key),
        request_id: Some(request_id),
    }
}

/// True when a notifier serves `workflow` (or a notifier document is broken, so the job
/// fails with the reason rather than the mail silently not being scheduled).
async fn has_notifier(store: &Store, workflow: &str) -> Result<bool, JobError> {
    Ok(!matches!(notifier_for(store, workflow).await, Ok(None)))
}

/// The notifier document `name`, with its text (`None` when there is none or it is not a
/// notifier that passes the check).
async fn notifier_named(store: &Store, name: &str) -> Result<Option<(Notifier, String)>, JobError> {
    Ok(store.config_head(name).await?.and_then(|head| {
        match check_document(&head.name, &head.body) {
            Ok(ConfigDocument::Notifier(notifier)) => Some((notifier, head.body)),
            _ => None,
        }
    }))
}

/// The notifier serving `workflow`, with its document text.
async fn notifier_for(
    store: &Store,
    workflow: &str,
) -> Result<Option<(Notifier, String)>, JobError> {
    for head in store.config_heads().await? {
        if head.kind != "notifier" {
            continue;
        }
        match check_document(&head.name, &head.body) {
            Ok(ConfigDocument::Notifier(notifier)) if notifier.serves(workflow) => {
                return Ok(Some((notifier, head.body)));
            }
            Ok(_) => {}
            Err(diagnostics) => {
                return Err(JobError::Permanent(format!(
                    "notifier document \"{}\" does not pass the check: {}",
                    head.name,
                    diagnostics
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
    }
    Ok(None)
}

async fn record(
    ctx: &JobContext,
    request_id: i64,
    name: &str,
    output: serde_json::Value,
    error: Option<&str>,
) -> Result<(), JobError> {
    ctx.store
        .record_step(
            request_id,
            Some(ctx.job.id),
            name,
            Some(&ctx.job.payload),
            Some(&output),
            error,
        )
        .await?;
    Ok(())
}

/// Who gets the mail (names as the workflow knows them) and the event's extra values.
fn audience(
    event: &str,
    ctx: &JobContext,
    detail: &RequestDetail,
) -> (Vec<String>, BTreeMap<String, String>) {
    let payload = &ctx.job.payload;
    let request = &detail.request;
    let stage_index = payload.get("stage").and_then(|v| v.as_u64());
    let approval = detail
        .approvals
        .iter()
        .find(|a| Some(u64::from(a.stage)) == stage_index);
    let mut extra = BTreeMap::new();
    if let Some(approval) = approval {
        extra.insert("stage".to_string(), approval.stage_name.clone());
    }
    let undecided = |a: &ApprovalRow| -> Vec<String> {
        a.approvers
            .iter()
            .filter(|p| !a.decisions.iter().any(|d| &d.approver == *p))
            .cloned()
            .collect()
    };
    let people = match event {
        "approval_request" | "escalation" => approval.map(undecided).unwrap_or_default(),
        "reminder" => payload
            .get("waiting")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_else(|| approval.map(undecided).unwrap_or_default()),
        "welcome" => request.subject_email.iter().cloned().collect(),
        _ => vec![request.requester.clone()],
    };
    match event {
        "rejected" => {
            let approver = payload
                .get("approver")
                .and_then(|v| v.as_str())
                .unwrap_or("the stage's expiry timer");
            extra.insert("approver".into(), approver.to_string());
            let reason = payload
                .get("reason")
                .and_then(|v| v.as_str())
                .filter(|r| !r.trim().is_empty())
                .unwrap_or("(no reason given)");
            extra.insert("reason".into(), reason.to_string());
        }
        "approval_request" | "reminder" | "escalation" => {
            extra.insert("approver".into(), people.join(", "));
        }
        _ => {}
    }
    (people, extra)
}

/// An address for `who`: itself when it is one, else the operator's e-mail, else the
/// directory's.
pub(crate) async fn address_of(
    who: &str,
    operators: &[OperatorRow],
    dirs: &[Arc<crate::directory::DirectoryClient>],
) -> Result<String, String> {
    if is_address(who) {
        return Ok(who.to_string());
    }
    if let Some(email) = operators
        .iter()
        .find(|o| o.name == who)
        .and_then(|o| o.email.clone())
        .filter(|e| is_address(e))
    {
        return Ok(email);
    }
    match approvers::find_person(dirs, who).await {
        Ok(Some((_, person))) => person
            .email
            .filter(|e| is_address(e))
            .ok_or_else(|| format!("{who}: the directory has no e-mail address")),
        Ok(None) => Err(format!(
            "{who}: no e-mail address (no operators.email, not in a directory)"
        )),
        Err(e) => Err(format!("{who}: directory lookup failed: {e}")),
    }
}

fn values_of(
    request: &RequestRow,
    workflow: &Workflow,
    extra: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let fields = request
        .payload
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                    serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let sample = SampleRequest {
        subject_name: request.subject_name.clone(),
        subject_email: request.subject_email.clone(),
        username: request.username.clone(),
        requester: request.requester.clone(),
        fields,
        ..SampleRequest::default()
    };
    let mut values = sample.placeholder_values(workflow);
    values.insert("kind".into(), request.kind.clone());
    values.insert("request_id".into(), request.id.to_string());
    values.extend(extra);
    values
}

/// A notification that cannot be sent at all: recorded, then the job fails permanently.
struct Failure<'a> {
    ctx: &'a JobContext,
    request_id: i64,
    notifier: String,
    why: String,
}

impl Failure<'_> {
    async fn record(self) -> Result<(), JobError> {
        record(
            self.ctx,
            self.request_id,
            &format!("{} mail", self.ctx.job.kind),
            json!({"sent": false, "notifier": self.notifier}),
            Some(&self.why),
        )
        .await?;
        Err(JobError::Permanent(self.why))
    }
}

/// Recipients an earlier attempt of this job already delivered to.
fn already_delivered(ctx: &JobContext, detail: &RequestDetail) -> Vec<String> {
    detail
        .timeline
        .iter()
        .filter(|e| e.kind == "step" && e.detail.get("job_id") == Some(&json!(ctx.job.id)))
        .filter_map(|e| e.detail.pointer("/output/delivered"))
        .filter_map(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        .flatten()
        .collect()
}

/// Recipients an earlier attempt of this job was refused for good (a 5xx reply): a retry
/// (for another recipient or a chat target) does not mail them again.
fn already_refused(ctx: &JobContext, detail: &RequestDetail) -> Vec<RecipientFailure> {
    let mut refused: Vec<RecipientFailure> = Vec::new();
    for failure in detail
        .timeline
        .iter()
        .filter(|e| e.kind == "step" && e.detail.get("job_id") == Some(&json!(ctx.job.id)))
        .filter_map(|e| e.detail.pointer("/output/failed"))
        .filter_map(|v| serde_json::from_value::<Vec<RecipientFailure>>(v.clone()).ok())
        .flatten()
        .filter(|f| f.permanent && is_address(&f.recipient))
    {
        if !refused.iter().any(|r| r.recipient == failure.recipient) {
            refused.push(failure);
        }
    }
    refused
}

async fn handle(ctx: JobContext, event: &'static str, what: &'static str) -> Result<(), JobError> {
    let Some(request_id) = ctx.job.request_id else {
        return Err(JobError::Permanent(format!(
            "job {} ({}): a notification needs a request",
            ctx.job.id, ctx.job.kind
        )));
    };
    let detail = ctx.store.request_detail(request_id).await?;
    let request = &detail.request;
    let Some((notifier, text)) = notifier_for(&ctx.store, &request.workflow).await? else {
        let why = format!(
            "{what} not sent: no notifier configured for workflow \"{}\"",
            request.workflow
        );
        record(
            &ctx,
            request_id,
            &ctx.job.kind,
            json!({"sent": false}),
            Some(&why),
        )
        .await?;
        return Ok(());
    };
    let fail = |why: String| Failure {
        ctx: &ctx,
        request_id,
        notifier: notifier.name.clone(),
        why,
    };
    let workflow = match ctx.store.config_head(&request.workflow).await? {
        Some(doc) => match parse_workflow(&doc) {
            Ok(workflow) => workflow,
            Err(why) => {
                return fail(format!("workflow \"{}\": {why}", request.workflow))
                    .record()
                    .await;
            }
        },
        None => {
            return fail(format!("workflow \"{}\" does not exist", request.workflow))
                .record()
                .await;
        }
    };
    let Some(template) = template_for(&workflow.notifications, event) else {
        return fail(format!("no template for the {event} notification"))
            .record()
            .await;
    };
    let (people, extra) = audience(event, &ctx, &detail);
    // Nobody to mail: fail at once, unless chat targets can still be told.
    if people.is_empty() && notifier.chat.is_empty() {
        return fail(format!("{what}: nobody to send it to")).record().await;
    }
    let approval_id = ctx
        .job
        .payload
        .get("approval_id")
        .and_then(|v| v.as_i64())
        .or_else(|| {
            let stage = ctx.job.payload.get("stage").and_then(|v| v.as_u64())?;
            detail
                .approvals
                .iter()
                .find(|a| u64::from(a.stage) == stage)
                .map(|a| a.id)
        });
    // Approval mails of a notifier that takes replies carry a token per approver.
    let signer = match (
        reply_mail::SIGNED_EVENTS.contains(&event),
        notifier.reply(),
        approval_id,
    ) {
        (true, Some(reply), Some(id)) => {
            match reply_mail::ReplySigner::new(&reply, id, ctx.store.now()) {
                Ok(signer) => Some(signer),
                Err(why) => {
                    return fail(format!("notifier \"{}\": {why}", notifier.name))
                        .record()
                        .await;
                }
            }
        }
        _ => None,
    };
    let mut values = values_of(request, &workflow, extra);
    if let Some(signer) = &signer {
        signer.preview_values(&mut values);
    }
    let message = match render_template(event, &template, &values) {
        Ok(message) => message,
        Err(why) => {
            return fail(format!("workflow \"{}\": {why}", workflow.name))
                .record()
                .await;
        }
    };
    let operators = ctx.store.operators().await?;
    // A directory that cannot answer only loses its addresses: those recipients fail below.
    let dirs: Vec<Arc<crate::directory::DirectoryClient>> = approvers::directories(&ctx.store)
        .await?
        .unwrap_or_default();
    let done = already_delivered(&ctx, &detail);
    let refused = already_refused(&ctx, &detail);
    let mut to = Vec::new();
    let mut named: Vec<(String, String)> = Vec::new();
    let mut failed: Vec<RecipientFailure> = Vec::new();
    for who in &people {
        match address_of(who, &operators, &dirs).await {
            Ok(address) if done.contains(&address) => {}
            Ok(address) if refused.iter().any(|f| f.recipient == address) => {
                if !failed.iter().any(|f| f.recipient == address) {
                    failed.extend(refused.iter().filter(|f| f.recipient == address).cloned());
                }
            }
            Ok(address) if !to.contains(&address) => {
                named.push((address.clone(), who.clone()));
                to.push(address);
            }
            Ok(_) => {}
            Err(reason) => failed.push(RecipientFailure {
                recipient: who.clone(),
                permanent: true,
                reason,
            }),
        }
    }
    let mailer = match Mailer::shared(&notifier, &text) {
        Ok(mailer) => mailer,
        Err(e) => return fail(e.to_string()).record().await,
    };
    let chat_message = ChatMessage {
        subject: message.subject.clone(),
        body: message.body.clone(),
    };
    let mut report = match &signer {
        Some(signer) => {
            signer
                .send(&mailer, event, &template, &values, &named)
                .await
        }
        None => {
            mailer
                .send(&OutgoingMail {
                    to: to.clone(),
                    subject: message.subject.clone(),
                    body: message.body,
                    reply_to: None,
                    in_reply_to: None,
                })
                .await
        }
    };
    report.failed.extend(failed);
    if people.is_empty() {
        report.failed.push(RecipientFailure {
            recipient: "(no recipient)".into(),
            permanent: true,
            reason: format!("{what}: nobody to send it to"),
        });
    }
    let mail_transient = report.failed.iter().any(|f| !f.permanent);
    let mail_error = (!report.failed.is_empty()).then(|| {
        report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.recipient, f.reason))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let last = ctx.is_last_attempt();
    let shown: Vec<&str> = match people.is_empty() {
        true => vec!["nobody"],
        false => people.iter().map(String::as_str).collect(),
    };
    record(
        &ctx,
        request_id,
        &format!("{} mail to {}", ctx.job.kind, shown.join(", ")),
        json!({
            "sent": !report.delivered.is_empty(),
            "notifier": notifier.name,
            "subject": message.subject,
            "delivered": report.delivered,
            "failed": report.failed,
            "already_delivered": done,
            "already_refused": refused.iter().map(|f| &f.recipient).collect::<Vec<_>>(),
            "retrying": mail_transient && !last,
            "reply_tokens": signer.is_some(),
        }),
        mail_error.as_deref(),
    )
    .await?;
    info!(request_id, kind = %ctx.job.kind, delivered = report.delivered.len(), failed = report.failed.len(), "notification sent");
    let unreached =
        chat::post_all(&ctx, request_id, &notifier, &detail, &chat_message, !last).await?;
    let transient = mail_transient || unreached.iter().any(|u| !u.failure.permanent);
    let errors: Vec<String> = mail_error
        .into_iter()
        .chain(
            unreached
                .iter()
                .map(|u| format!("{}: {}", u.target, u.failure.reason)),
        )
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false if transient && !last => Err(JobError::Transient(errors.join("; "))),
        false => Err(JobError::Permanent(errors.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_come_from_the_name_then_the_operators() {
        let operators = vec![
            OperatorRow {
                name: "ann".into(),
                role: "approver".into(),
                scopes: vec![],
                email: Some("ann.ops@example.com".into()),
            },
            OperatorRow {
                name: "bob".into(),
                role: "approver".into(),
                scopes: vec![],
                email: Some("not an address".into()),
            },
        ];
        assert_eq!(
            address_of("hr@example.com", &operators, &[]).await,
            Ok("hr@example.com".into())
        );
        assert_eq!(
            address_of("ann", &operators, &[]).await,
            Ok("ann.ops@example.com".into())
        );
        let bob = address_of("bob", &operators, &[])
            .await
            .expect_err("no address");
        assert!(bob.starts_with("bob: no e-mail address"), "{bob}");
        let nobody = address_of("zed", &operators, &[])
            .await
            .expect_err("unknown");
        assert!(nobody.contains("zed"), "{nobody}");
    }

    #[test]
    fn welcome_goes_out_at_eight_utc_on_the_start_date() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 1, 3, 0, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let eight = Utc
            .with_ymd_and_hms(2026, 12, 14, 8, 0, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(welcome_at(Some("2026-12-14"), now), eight);
        assert_eq!(welcome_at(Some(" 2026-12-14 "), now), eight);
        // A past start date, a bad one or none: at once.
        assert_eq!(welcome_at(Some("2026-11-02"), now), now);
        assert_eq!(welcome_at(Some("14/12/2026"), now), now);
        assert_eq!(welcome_at(None, now), now);
        // Today after 08:00: at once; today before 08:00: at 08:00.
        let today_eight = eight - 13 * 86_400_000;
        assert_eq!(welcome_at(Some("2026-12-01"), now), today_eight);
        assert_eq!(
            welcome_at(Some("2026-12-01"), today_eight + 1),
            today_eight + 1
        );
    }
}
