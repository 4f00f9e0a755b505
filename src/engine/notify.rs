//! Notification jobs: find the notifier serving the request's workflow, work out the
//! recipients (approvers by the operators' e-mail or the directory, the requester, the new
//! person), render the workflow's template strictly, send through SMTP and record one timeline
//! step per attempt with every recipient's outcome. Transient SMTP failures retry through the
//! queue; 5xx replies fail the job with the server's reason. Without a notifier the job records
//! "not sent". With approval by reply, each approver's mail carries their own reply token
//! (see `reply_mail`), and refused replies are answered (`notify.reply_refused`).

mod chat;
pub(crate) mod content;
mod reply_mail;

pub use chat::txn_id;

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::json;
use tracing::{info, warn};

use crate::domain::config::{ConfigDocument, Notifier, is_address};
use crate::domain::notification::{render_template, template_for};
use crate::domain::timezone::{local_hour_on, parse_zone};
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::documents;
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::engine::provision::parse_workflow;
use crate::notify::{ChatMessage, Mailer, OutgoingMail, RecipientFailure};
use crate::store::QUEUE_NOTIFY;
use crate::store::Store;
use crate::store::api::*;
use content::{address_of, admins_of, audience, chain_and_plan, values_of};

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
    r.register("notify.failed", |ctx| {
        handle(ctx, "failed", "failure notice to the admins")
    });
    r.register("notify.cancelled", |ctx| {
        handle(ctx, "cancelled", "cancellation notice")
    });
    r.register("notify.reply_refused", reply_mail::answer_refused_reply);
}

/// Enqueues the approval request mail of a stage that just opened (nothing without a notifier:
/// there was never a "not sent" record for it).
pub async fn enqueue_approval_request(
    store: &Store,
    approval: &ApprovalRow,
) -> Result<(), JobError> {
    enqueue_approval_requests(store, std::slice::from_ref(approval)).await
}

/// [`enqueue_approval_request`] for many stages at once: each workflow's notifier looked up
/// once, the jobs enqueued together.
pub async fn enqueue_approval_requests(
    store: &Store,
    approvals: &[ApprovalRow],
) -> Result<(), JobError> {
    let mut served: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    let mut jobs = Vec::new();
    for approval in approvals {
        if approval.approvers.is_empty() {
            continue;
        }
        let has = match served.get(approval.workflow.as_str()) {
            Some(has) => *has,
            None => {
                let has = has_notifier(store, &approval.workflow).await?;
                served.insert(&approval.workflow, has);
                has
            }
        };
        if has {
            jobs.push(job(
                "notify.approval_request",
                json!({"request_id": approval.request_id, "stage": approval.stage, "approval_id": approval.id}),
                format!("approval_request:{}", approval.id),
                approval.request_id,
                store.now(),
            ));
        }
    }
    if !jobs.is_empty() {
        store.enqueue(&jobs).await?;
    }
    Ok(())
}

/// When the welcome mail of a request starting on `start_date` goes out (milliseconds):
/// [`WELCOME_HOUR`] local time in `zone` that day, or `now` when that moment has passed or
/// there is no date.
pub fn welcome_at(start_date: Option<&str>, zone: Tz, now: Millis) -> Millis {
    start_date
        .and_then(|text| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok())
        .and_then(|date| local_hour_on(date, WELCOME_HOUR, zone))
        .map_or(now, |at| at.max(now))
}

/// The zone the welcome mail follows: the request's `time_zone` field, else the workflow's,
/// else UTC. An unknown name is skipped with a warning naming it.
fn welcome_zone(request: &RequestRow, workflow: Option<&Workflow>) -> Tz {
    let own = request.payload.get("time_zone").and_then(|v| v.as_str());
    let theirs = workflow.and_then(|w| w.time_zone.as_deref());
    for (whose, name) in [("request", own), ("workflow", theirs)] {
        let Some(name) = name else { continue };
        match parse_zone(name) {
            Ok(zone) => return zone,
            Err(why) => warn!(
                request_id = request.id,
                "welcome mail: the {whose}'s time_zone is not used: {why}"
            ),
        }
    }
    Tz::UTC
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
        let workflow = match store.config_head(&request.workflow).await? {
            Some(doc) => parse_workflow(&doc).ok(),
            None => None,
        };
        let zone = welcome_zone(request, workflow.as_ref());
        let run_at = welcome_at(start, zone, now);
        jobs.push(job(
            "notify.welcome",
            json!({"request_id": request.id, "start_date": start, "time_zone": zone.name()}),
            format!("welcome:{}", request.id),
            request.id,
            run_at,
        ));
    }
    store.enqueue(&jobs).await?;
    Ok(())
}

/// Enqueues the failure notice to the request's admins (nothing when no notifier serves the
/// workflow); one per failure (the key carries the request's version).
pub async fn enqueue_failure_notice(
    store: &Store,
    request: &RequestRow,
    error: &str,
) -> Result<(), JobError> {
    if !has_notifier(store, &request.workflow).await? {
        return Ok(());
    }
    store
        .enqueue(&[job(
            "notify.failed",
            json!({"request_id": request.id, "error": error}),
            format!("failed:{}:{}", request.id, request.version),
            request.id,
            store.now(),
        )])
        .await?;
    Ok(())
}

/// A notification job for `request_id`, unique by `unique_key` while pending.
pub(crate) fn job(
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
pub(crate) async fn has_notifier(store: &Store, workflow: &str) -> Result<bool, JobError> {
    Ok(!matches!(notifier_for(store, workflow).await, Ok(None)))
}

/// The notifier document `name`, with its text (`None` when there is none or it is not a
/// notifier that passes the check).
async fn notifier_named(store: &Store, name: &str) -> Result<Option<(Notifier, String)>, JobError> {
    Ok(store.config_head(name).await?.and_then(|head| {
        match documents::check(&head.name, &head.body) {
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
        match documents::check(&head.name, &head.body) {
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
    // An operator's retry of the job (audited as `job.retry`) asks for every recipient again:
    // only refusals after the latest one count.
    let job_id = ctx.job.id.to_string();
    let retried_at = detail
        .timeline
        .iter()
        .filter(|e| e.kind == "audit")
        .filter(|e| e.detail.get("action").and_then(|a| a.as_str()) == Some("job.retry"))
        .filter(|e| e.detail.get("entity_id").and_then(|a| a.as_str()) == Some(job_id.as_str()))
        .map(|e| e.at)
        .max()
        .unwrap_or(i64::MIN);
    let mut refused: Vec<RecipientFailure> = Vec::new();
    for failure in detail
        .timeline
        .iter()
        .filter(|e| e.kind == "step" && e.detail.get("job_id") == Some(&json!(ctx.job.id)))
        .filter(|e| e.at > retried_at)
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

/// Sends the notification `event` of the job's request (`what` names it in the timeline).
pub(crate) async fn handle(
    ctx: JobContext,
    event: &'static str,
    what: &'static str,
) -> Result<(), JobError> {
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
    let operators = ctx.store.operators().await?;
    let (mut people, mut extra) = audience(event, &ctx, &detail);
    if event == "failed" {
        people = admins_of(&detail.request, &operators);
    }
    if matches!(
        event,
        "approval_request" | "reminder" | "escalation" | "completed"
    ) {
        extra.extend(chain_and_plan(&ctx, &detail).await?);
    }
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
                    html: message.html,
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
        use chrono::TimeZone;
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, 3, 0, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        let eight = chrono::Utc
            .with_ymd_and_hms(2026, 12, 14, 8, 0, 0)
            .single()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(welcome_at(Some("2026-12-14"), Tz::UTC, now), eight);
        assert_eq!(welcome_at(Some(" 2026-12-14 "), Tz::UTC, now), eight);
        // A past start date, a bad one or none: at once.
        assert_eq!(welcome_at(Some("2026-11-02"), Tz::UTC, now), now);
        assert_eq!(welcome_at(Some("14/12/2026"), Tz::UTC, now), now);
        assert_eq!(welcome_at(None, Tz::UTC, now), now);
        // Today after 08:00: at once; today before 08:00: at 08:00.
        let today_eight = eight - 13 * 86_400_000;
        assert_eq!(welcome_at(Some("2026-12-01"), Tz::UTC, now), today_eight);
        assert_eq!(
            welcome_at(Some("2026-12-01"), Tz::UTC, today_eight + 1),
            today_eight + 1
        );
    }

    fn sample_request() -> RequestRow {
        RequestRow {
            id: 1,
            workflow: "w".into(),
            kind: "joiner".into(),
            subject_name: "Ann".into(),
            subject_email: None,
            username: None,
            state: crate::domain::request::RequestState::Completed,
            requester: "hr".into(),
            source: "cli".into(),
            payload: json!({}),
            last_error: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn failure_notices_go_to_the_admins_of_the_request() {
        let op = |name: &str, role: &str, scopes: &[&str]| OperatorRow {
            name: name.into(),
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            email: None,
        };
        let operators = vec![
            op("root", "admin", &[]),
            op("fin", "admin", &["team:finance"]),
            op("sales", "admin", &["team:sales"]),
            op("flow", "admin", &["workflow:w"]),
            op("ann", "approver", &[]),
            op("vic", "viewer", &[]),
        ];
        let request = RequestRow {
            payload: json!({"team": "sales"}),
            ..sample_request()
        };
        assert_eq!(
            admins_of(&request, &operators),
            vec!["root", "sales", "flow"]
        );
        let teamless = sample_request();
        assert_eq!(admins_of(&teamless, &operators), vec!["root", "flow"]);
    }

    #[test]
    fn welcome_follows_the_request_then_the_workflow_zone() {
        let now = 1_796_000_000_000; // 2026-11-30
        // 08:00 in Berlin on 2026-12-14 is 07:00Z; in New York 13:00Z.
        let berlin = welcome_at(Some("2026-12-14"), chrono_tz::Europe::Berlin, now);
        assert_eq!(berlin, 1_797_231_600_000);
        let york = welcome_at(Some("2026-12-14"), chrono_tz::America::New_York, now);
        assert_eq!(york, 1_797_253_200_000);
        let request = |zone: Option<&str>| RequestRow {
            payload: match zone {
                Some(zone) => json!({"time_zone": zone}),
                None => json!({}),
            },
            ..sample_request()
        };
        let mut workflow: Workflow =
            toml::from_str("name = \"w\"\nteam = \"t\"\ntime_zone = \"America/New_York\"\n[intake]\nsources = [\"cli\"]\nkinds = [\"joiner\"]\n")
                .expect("workflow");
        assert_eq!(
            welcome_zone(&request(Some("Europe/Berlin")), Some(&workflow)),
            chrono_tz::Europe::Berlin
        );
        assert_eq!(
            welcome_zone(&request(Some("Nowhere/Else")), Some(&workflow)),
            chrono_tz::America::New_York
        );
        assert_eq!(
            welcome_zone(&request(None), Some(&workflow)),
            chrono_tz::America::New_York
        );
        workflow.time_zone = None;
        assert_eq!(welcome_zone(&request(None), Some(&workflow)), Tz::UTC);
        assert_eq!(welcome_zone(&request(None), None), Tz::UTC);
    }
}
