//! A leaver's grace period, engine side: the plan says which steps wait and until when; the
//! disabling steps run when the plan is approved, the revoking ones from a job scheduled at the
//! due time (exactly once: the provisioning ledger skips what already ran), with a warning mail
//! ahead of it when a notifier serves the workflow. Cancelling the request while it waits
//! cancels the pending revocation.

use serde_json::json;
use tracing::info;

use crate::domain::dry_run::SampleRequest;
use crate::domain::grace::{is_deferred, warning_recipients};
use crate::domain::request::{RequestEvent, RequestState};
use crate::domain::workflow::Workflow;
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::engine::notify;
use crate::engine::provision::{PinnedStep, run_pinned_steps};
use crate::engine::steps::StepsOutcome;
use crate::store::api::{Actor, Millis, NewJob, ReadApi, RequestRow};
use crate::store::pins::PinRow;

/// Name of the timeline step that says the request waits for its grace period.
pub const WAITING_STEP: &str = "grace period";

/// Job kind of the deferred revocation.
pub const REVOKE_JOB: &str = "request.grace_revoke";

/// What became of a provisioning run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every step ran: the request is complete.
    Done,
    /// The revoking steps wait for the grace period.
    Waiting,
    /// A manual step waits for a person to mark it done.
    WaitingManual,
}

/// Registers the deferred revocation and the warning mail handlers.
pub fn register(r: &mut Registry) {
    r.register(REVOKE_JOB, revoke_job);
    r.register("notify.grace_warning", warning_job);
}

/// The plan's `grace` entry for `steps` of `wf` (none without `[leaver]`): the period, the
/// steps that wait, the warning settings, and the revocation date if approved at `now`.
pub fn plan_note(wf: &Workflow, steps: &[PinnedStep], now: Millis) -> Option<serde_json::Value> {
    let leaver = wf.leaver.as_ref()?;
    let deferred: Vec<&str> = steps
        .iter()
        .filter(|s| is_deferred(s.action))
        .map(|s| s.name.as_str())
        .collect();
    if deferred.is_empty() {
        return None;
    }
    let period_ms = duration_ms(leaver.grace.duration());
    Some(json!({
        "period": leaver.grace.to_string(),
        "period_ms": period_ms,
        "steps": deferred,
        "warn_before": leaver.warn_before.map(|w| w.to_string()),
        "warn_before_ms": leaver.warn_before.map(|w| duration_ms(w.duration())),
        "warn_to": leaver.warn_to,
        "shown": format!(
            "{} run {} after the other steps: revoke at {} if approved now",
            deferred.join(", "),
            leaver.grace,
            fmt_utc(now.saturating_add(period_ms))
        ),
    }))
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A moment as `YYYY-MM-DD HH:MM UTC`.
pub fn fmt_utc(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// `pin` with only the steps `keep` selects (same id: the ledger is shared).
fn with_steps(pin: &PinRow, keep: impl Fn(&serde_json::Value) -> bool) -> PinRow {
    let mut part = pin.clone();
    if let Some(steps) = part.plan.get_mut("steps").and_then(|s| s.as_array_mut()) {
        steps.retain(|s| keep(s));
    }
    part
}

fn deferred_names(pin: &PinRow) -> Vec<String> {
    pin.plan
        .pointer("/grace/steps")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn step_name(step: &serde_json::Value) -> &str {
    step.get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
}

/// Runs the approved plan: every step when it has no grace period; otherwise the steps that do
/// not wait, then schedules the rest (and the warning) and answers [`Phase::Waiting`].
pub async fn run_provisioning(
    ctx: &JobContext,
    actor: &Actor,
    request: &RequestRow,
    pin: &PinRow,
    sample: &SampleRequest,
    should_fail: &(dyn Fn() -> bool + Send + Sync),
) -> Result<Phase, JobError> {
    let deferred = deferred_names(pin);
    if deferred.is_empty() {
        return Ok(
            match run_pinned_steps(ctx, actor, request, pin, sample, should_fail).await? {
                StepsOutcome::Completed => Phase::Done,
                StepsOutcome::WaitingManual => Phase::WaitingManual,
            },
        );
    }
    let now_part = with_steps(pin, |s| !deferred.iter().any(|d| d == step_name(s)));
    if run_pinned_steps(ctx, actor, request, &now_part, sample, should_fail).await?
        == StepsOutcome::WaitingManual
    {
        return Ok(Phase::WaitingManual);
    }
    schedule(ctx, request, pin, sample, &deferred).await?;
    Ok(Phase::Waiting)
}

/// The revocation time already recorded for `pin`, if any (a retried job keeps it).
async fn recorded_due(
    ctx: &JobContext,
    request_id: i64,
    pin_id: i64,
) -> Result<Option<Millis>, JobError> {
    let detail = ctx.store.request_detail(request_id).await?;
    Ok(detail
        .timeline
        .iter()
        .filter(|e| e.kind == "step")
        .filter_map(|e| e.detail.get("output"))
        .filter(|o| o.get("grace_pin") == Some(&json!(pin_id)))
        .find_map(|o| o.get("revoke_at_ms").and_then(|v| v.as_i64())))
}

async fn schedule(
    ctx: &JobContext,
    request: &RequestRow,
    pin: &PinRow,
    sample: &SampleRequest,
    deferred: &[String],
) -> Result<(), JobError> {
    let grace = pin.plan.get("grace").cloned().unwrap_or_default();
    let now = ctx.store.now();
    let first = recorded_due(ctx, request.id, pin.id).await?;
    let due = first.unwrap_or_else(|| {
        let period = grace.get("period_ms").and_then(|v| v.as_i64()).unwrap_or(0);
        now.saturating_add(period)
    });
    ctx.store
        .enqueue(&[NewJob {
            queue: "provision".into(),
            kind: REVOKE_JOB.into(),
            payload: json!({ "request_id": request.id, "pin_id": pin.id }),
            priority: 0,
            run_at: due,
            max_attempts: 4,
            unique_key: Some(format!("grace:{}", pin.id)),
            request_id: Some(request.id),
        }])
        .await?;
    if first.is_some() {
        return Ok(());
    }
    let mut output = json!({
        "grace_pin": pin.id,
        "period": grace.get("period"),
        "steps": deferred,
        "revoke_at": fmt_utc(due),
        "revoke_at_ms": due,
        "cancel": format!("gatehouse cancel {} cancels the pending revocation", request.id),
    });
    if let Some(warn_ms) = grace.get("warn_before_ms").and_then(|v| v.as_i64()) {
        let warn_to: Vec<String> = grace
            .get("warn_to")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let to = warning_recipients(&warn_to, sample.line_manager.as_deref(), &request.requester);
        let at = due.saturating_sub(warn_ms).max(now);
        if notify::has_notifier(&ctx.store, &request.workflow).await? {
            ctx.store
                .enqueue(&[notify::job(
                    "notify.grace_warning",
                    json!({"request_id": request.id, "pin_id": pin.id, "revoke_at": fmt_utc(due), "to": to}),
                    format!("grace_warning:{}", pin.id),
                    request.id,
                    at,
                )])
                .await?;
            output["warning"] = json!({ "at": fmt_utc(at), "at_ms": at, "to": to });
        } else {
            output["warning"] = json!({
                "sent": false,
                "why": format!("no notifier configured for workflow \"{}\": no warning mail", request.workflow),
            });
        }
    }
    let warning = match output.pointer("/warning/at").and_then(|v| v.as_str()) {
        Some(at) => format!("; warning mail at {at}"),
        None if output.get("warning").is_some() => {
            "; no warning mail: no notifier configured".into()
        }
        None => String::new(),
    };
    let summary = format!(
        "{WAITING_STEP}: {} scheduled for {}{warning}",
        deferred.join(", "),
        fmt_utc(due)
    );
    ctx.store
        .record_step(
            request.id,
            Some(ctx.job.id),
            &summary,
            Some(&json!({ "pin_id": pin.id })),
            Some(&output),
            None,
        )
        .await?;
    info!(
        request_id = request.id,
        revoke_at = due,
        "revoking steps wait for the grace period"
    );
    Ok(())
}

fn system_actor(ctx: &JobContext) -> Actor {
    Actor::system("engine", format!("worker:{}", ctx.worker_id))
}

/// The request and its active pin when the request still waits for the revocation of the
/// job's `pin_id`; otherwise `None`, with a timeline step saying why the job does nothing.
async fn still_waiting(
    ctx: &JobContext,
    what: &str,
) -> Result<Option<(RequestRow, PinRow)>, JobError> {
    let id = ctx.payload_i64("request_id")?;
    let pin_id = ctx.payload_i64("pin_id")?;
    let request = ctx.store.request(id).await?;
    let pin = ctx.store.active_pin(id).await?;
    let why = match (&request.state, &pin) {
        (RequestState::Provisioning, Some(pin)) if pin.id == pin_id => None,
        (RequestState::Cancelled, _) => Some(format!("{what} not run: request {id} was cancelled")),
        (RequestState::Provisioning, _) => Some(format!(
            "{what} not run: the plan it belongs to is no longer active"
        )),
        (state, _) => Some(format!("{what} not run: request {id} is {state}")),
    };
    match (why, pin) {
        (None, Some(pin)) => Ok(Some((request, pin))),
        (why, _) => {
            ctx.store
                .record_step(
                    id,
                    Some(ctx.job.id),
                    &format!("{what}: nothing to do"),
                    Some(&ctx.job.payload),
                    Some(&json!({ "ran": false })),
                    why.as_deref(),
                )
                .await?;
            Ok(None)
        }
    }
}

/// The job at the end of the grace period: runs the revoking steps of the pinned plan (those
/// already applied are skipped by the ledger) and completes the request.
async fn revoke_job(ctx: JobContext) -> Result<(), JobError> {
    let Some((request, pin)) = still_waiting(&ctx, "revocation after the grace period").await?
    else {
        return Ok(());
    };
    let actor = system_actor(&ctx);
    let deferred = deferred_names(&pin);
    let later = with_steps(&pin, |s| deferred.iter().any(|d| d == step_name(s)));
    let sample = sample_of(&request);
    let never = || false;
    let result = run_pinned_steps(&ctx, &actor, &request, &later, &sample, &never).await;
    match result {
        Ok(StepsOutcome::WaitingManual) => {
            info!(
                request_id = request.id,
                "revocation waits for a manual step"
            );
            Ok(())
        }
        Ok(StepsOutcome::Completed) => {
            let done = ctx
                .store
                .transition_request(
                    &actor,
                    request.id,
                    RequestEvent::ProvisioningSucceeded,
                    None,
                )
                .await?;
            notify::enqueue_after_provisioning(&ctx.store, &done).await?;
            info!(
                request_id = request.id,
                "revoked after the grace period; completed"
            );
            Ok(())
        }
        Err(JobError::Transient(why)) if !ctx.is_last_attempt() => Err(JobError::Transient(why)),
        Err(err) => {
            let why = err.to_string();
            let failed = ctx
                .store
                .transition_request(
                    &actor,
                    request.id,
                    RequestEvent::ProvisioningFailed,
                    Some(why.clone()),
                )
                .await?;
            notify::enqueue_failure_notice(&ctx.store, &failed, &why).await?;
            Err(JobError::Permanent(why))
        }
    }
}

/// The request's values as the pinned steps render them (the pin fixes what they write, so
/// the directory is not asked again).
fn sample_of(request: &RequestRow) -> SampleRequest {
    let fields = request
        .payload
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                    serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                    serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    SampleRequest {
        subject_name: request.subject_name.clone(),
        subject_email: request.subject_email.clone(),
        username: request.username.clone(),
        requester: request.requester.clone(),
        fields,
        today: Some(chrono::Utc::now().date_naive()),
        ..SampleRequest::default()
    }
}

/// The warning mail: sent only while the revocation is still pending.
async fn warning_job(ctx: JobContext) -> Result<(), JobError> {
    if still_waiting(&ctx, "grace warning mail").await?.is_none() {
        return Ok(());
    }
    notify::handle(
        ctx,
        "grace_warning",
        "warning of the revocation after the grace period",
    )
    .await
}
