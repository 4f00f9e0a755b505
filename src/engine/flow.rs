//! The request flow as job handlers: process (validate, derive the username, open the first
//! approval stage), advance (next stage or schedule), provision (run the workflow's steps),
//! plus notification, maintenance and diagnostic jobs.
//!
//! Every handler is idempotent: it reads the request's current state and does only what is
//! still missing, so a retried or rescued job never repeats finished work.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{info, warn};

use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::request::{RequestEvent, RequestState};
use crate::domain::workflow::{DryRun, SampleRequest, Workflow, dry_run};
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::store::Store;
use crate::store::api::*;

/// Knobs for the flow; the demo injects transient provisioning failures so retries show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowOptions {
    /// When non-zero, every n-th step attempt (the 3rd, then every n-th after it) fails with
    /// a simulated transient error: deterministic, so even a short demo shows a retry.
    pub fail_every_nth_step: u64,
}

/// Counts step attempts to decide which ones the demo fails.
#[derive(Debug, Default)]
struct FailureInjector {
    every: u64,
    attempts: std::sync::atomic::AtomicU64,
}

impl FailureInjector {
    fn should_fail(&self) -> bool {
        if self.every == 0 {
            return false;
        }
        let n = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        n % self.every == 3 % self.every
    }
}

/// The standard handlers.
pub fn registry() -> Registry {
    registry_with(FlowOptions::default())
}

/// The standard handlers with options.
pub fn registry_with(options: FlowOptions) -> Registry {
    let mut r = Registry::new();
    r.register("request.process", process);
    r.register("request.advance", advance);
    let injector = std::sync::Arc::new(FailureInjector {
        every: options.fail_every_nth_step,
        ..Default::default()
    });
    r.register("request.provision", move |ctx| {
        provision(ctx, injector.clone())
    });
    r.register("notify.rejected", |ctx| {
        not_sent(ctx, "rejection notice to the requester")
    });
    r.register("notify.completed", |ctx| {
        not_sent(ctx, "completion notice to the requester")
    });
    r.register("maintenance.rescue", rescue);
    r.register("maintenance.prune", prune);
    r.register("noop", |_ctx| async { Ok(()) });
    r.register("probe", probe);
    r
}

/// Record a step of this job in the request's timeline.
async fn step(
    ctx: &JobContext,
    request_id: i64,
    name: &str,
    input: &serde_json::Value,
    output: &serde_json::Value,
    error: Option<&str>,
) -> Result<(), JobError> {
    ctx.store
        .record_step(
            request_id,
            Some(ctx.job.id),
            name,
            Some(input),
            Some(output),
            error,
        )
        .await?;
    Ok(())
}

/// Apply `event` when the request is still in `from`; otherwise return it unchanged, since a
/// retried or rescued job finds that step already done.
async fn move_from(
    ctx: &JobContext,
    actor: &Actor,
    request: RequestRow,
    from: RequestState,
    event: RequestEvent,
) -> Result<RequestRow, JobError> {
    if request.state != from {
        return Ok(request);
    }
    Ok(ctx
        .store
        .transition_request(actor, request.id, event, None)
        .await?)
}

fn system_actor(ctx: &JobContext) -> Actor {
    Actor::system("engine", format!("worker:{}", ctx.worker_id))
}

/// The newest parsed workflow named `name`.
async fn load_workflow(store: &Store, name: &str) -> Result<Result<Workflow, String>, JobError> {
    let Some(head) = store.config_head(name).await? else {
        return Ok(Err(format!("workflow `{name}` does not exist")));
    };
    match check_document(&format!("{name} (version {})", head.version), &head.body) {
        Ok(ConfigDocument::Workflow(wf)) => Ok(Ok(wf)),
        Ok(other) => Ok(Err(format!(
            "`{name}` is a {} document, not a workflow",
            other.kind()
        ))),
        Err(diagnostics) => Ok(Err(diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))),
    }
}

/// Line managers and group members from every static directory document.
async fn directory(
    store: &Store,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, Vec<String>>), JobError> {
    let mut managers = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for head in store.config_heads().await? {
        if head.kind != "directory" {
            continue;
        }
        if let Ok(ConfigDocument::Directory(dir)) = check_document(&head.name, &head.body) {
            for person in &dir.people {
                if let Some(manager) = &person.manager {
                    managers.insert(person.login.clone(), manager.clone());
                    managers.insert(person.email.clone(), manager.clone());
                }
            }
            for (group, members) in dir.group_members() {
                groups.entry(group).or_default().extend(members);
            }
        }
    }
    Ok((managers, groups))
}

fn payload_fields(payload: &serde_json::Value) -> BTreeMap<String, String> {
    payload
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
        .unwrap_or_default()
}

/// The request as the pure workflow rules see it.
async fn sample_of(store: &Store, request: &RequestRow) -> Result<SampleRequest, JobError> {
    let (managers, groups) = directory(store).await?;
    let fields = payload_fields(&request.payload);
    let line_manager = fields
        .get("manager")
        .cloned()
        .or_else(|| {
            request
                .username
                .as_ref()
                .and_then(|u| managers.get(u).cloned())
        })
        .or_else(|| {
            request
                .subject_email
                .as_ref()
                .and_then(|e| managers.get(e).cloned())
        })
        .or_else(|| managers.get(&request.requester).cloned());
    Ok(SampleRequest {
        subject_name: request.subject_name.clone(),
        subject_email: request.subject_email.clone(),
        username: request.username.clone(),
        requester: request.requester.clone(),
        fields,
        line_manager,
        groups,
        today: Some(chrono::Utc::now().date_naive()),
    })
}

async fn to_triage(ctx: &JobContext, request: &RequestRow, why: String) -> Result<(), JobError> {
    warn!(request_id = request.id, reason = %why, "request needs triage");
    step(
        ctx,
        request.id,
        "validate",
        &serde_json::json!({}),
        &serde_json::json!({}),
        Some(&why),
    )
    .await?;
    let event = if matches!(request.state, RequestState::Validating) {
        RequestEvent::ValidationFailed
    } else {
        RequestEvent::NeedsTriage
    };
    ctx.store
        .transition_request(&system_actor(ctx), request.id, event, Some(why))
        .await?;
    Ok(())
}

fn provision_job(request_id: i64, version: i64) -> NewJob {
    NewJob {
        queue: "provision".into(),
        kind: "request.provision".into(),
        payload: serde_json::json!({ "request_id": request_id }),
        priority: 0,
        run_at: chrono::Utc::now().timestamp_millis(),
        max_attempts: 4,
        unique_key: Some(format!("provision:{request_id}:{version}")),
        request_id: Some(request_id),
    }
}

async fn open_stage(
    ctx: &JobContext,
    request: &RequestRow,
    plan: &DryRun,
    wf: &Workflow,
    stage: usize,
) -> Result<(), JobError> {
    let (Some(planned), Some(def)) = (plan.chain.get(stage), wf.stages.get(stage)) else {
        return Err(JobError::Permanent(format!(
            "workflow {} has no stage {}",
            wf.name,
            stage + 1
        )));
    };
    let escalate_at = def
        .escalate_after
        .or(def.remind_after)
        .map(|d| chrono::Utc::now().timestamp_millis() + d.duration().as_millis() as i64);
    ctx.store
        .open_approval(
            &system_actor(ctx),
            request.id,
            stage as u32,
            &planned.name,
            &planned.policy.to_string(),
            &planned.approvers,
            escalate_at,
        )
        .await?;
    info!(request_id = request.id, stage = stage + 1, approvers = %planned.approvers.join(","), "approval stage opened");
    Ok(())
}

/// Received → classified → validating → first approval stage (or scheduled), or triage.
async fn process(ctx: JobContext) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    // Structured sources (CLI, console, demo) arrive with their fields: classification is
    // the deterministic rule "fields present"; the LLM path lands with e-mail intake.
    request = move_from(
        &ctx,
        &actor,
        request,
        RequestState::Received,
        RequestEvent::Classified,
    )
    .await?;
    request = move_from(
        &ctx,
        &actor,
        request,
        RequestState::Classified,
        RequestEvent::ValidationStarted,
    )
    .await?;
    if request.state != RequestState::Validating {
        return Ok(());
    }
    let wf = match load_workflow(&ctx.store, &request.workflow).await? {
        Ok(wf) => wf,
        Err(why) => return to_triage(&ctx, &request, why).await,
    };
    let mut sample = sample_of(&ctx.store, &request).await?;
    if sample.username.is_none() {
        match derive_free_username(&ctx.store, &request).await? {
            Ok(name) => {
                request = ctx
                    .store
                    .update_request_fields(&actor, id, Some(&name), None)
                    .await?;
                sample.username = Some(name);
            }
            Err(why) => return to_triage(&ctx, &request, format!("username: {why}")).await,
        }
    }
    let violations = wf.validation.check(&sample);
    if !violations.is_empty() {
        let why = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return to_triage(&ctx, &request, why).await;
    }
    let plan = dry_run(&wf, &sample);
    if let Some(stage) = plan
        .chain
        .iter()
        .find(|s| !s.feasible || s.approvers.is_empty())
    {
        let why = format!(
            "stage {} ({}) cannot be approved: {}",
            stage.index + 1,
            stage.name,
            if stage.unresolved.is_empty() {
                "no eligible approvers".to_string()
            } else {
                stage.unresolved.join("; ")
            }
        );
        return to_triage(&ctx, &request, why).await;
    }
    let input = serde_json::json!({
        "subject_name": sample.subject_name,
        "subject_email": sample.subject_email,
        "fields": sample.fields,
        "line_manager": sample.line_manager,
    });
    let output =
        serde_json::json!({ "username": plan.username, "stages": plan.chain, "steps": plan.steps });
    step(&ctx, id, "validate", &input, &output, None).await?;
    let stages = wf.stages.len() as u32;
    let request = ctx
        .store
        .transition_request(&actor, id, RequestEvent::ValidationPassed { stages }, None)
        .await?;
    if stages == 0 {
        ctx.store
            .enqueue(&[provision_job(id, request.version)])
            .await?;
    } else {
        open_stage(&ctx, &request, &plan, &wf, 0).await?;
    }
    Ok(())
}

/// The first free username for this request (derived from the name, or the e-mail's local part).
async fn derive_free_username(
    store: &Store,
    request: &RequestRow,
) -> Result<Result<String, String>, JobError> {
    let base = match crate::domain::username::base_username(
        &request.subject_name,
        request.subject_email.as_deref(),
    ) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let taken: std::collections::BTreeSet<String> = store
        .usernames_with_prefix(&base, request.id)
        .await?
        .into_iter()
        .collect();
    Ok(crate::domain::username::derive_unique(
        &request.subject_name,
        request.subject_email.as_deref(),
        &taken,
    )
    .map_err(|e| e.to_string()))
}

/// A stage approved: open the next one, or schedule provisioning after the last.
async fn advance(ctx: JobContext) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let stage = ctx.payload_i64("stage")? as u32;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    let wf = match load_workflow(&ctx.store, &request.workflow).await? {
        Ok(wf) => wf,
        Err(why) => return Err(JobError::Permanent(why)),
    };
    let stages = wf.stages.len() as u32;
    request = move_from(
        &ctx,
        &actor,
        request,
        RequestState::AwaitingApproval { stage },
        RequestEvent::StageApproved { stages },
    )
    .await?;
    match request.state {
        RequestState::AwaitingApproval { stage: next } if next == stage + 1 => {
            let detail = ctx.store.request_detail(id).await?;
            if detail.approvals.iter().any(|a| a.stage == next) {
                return Ok(());
            }
            let sample = sample_of(&ctx.store, &request).await?;
            let plan = dry_run(&wf, &sample);
            open_stage(&ctx, &request, &plan, &wf, next as usize).await
        }
        RequestState::Scheduled => {
            ctx.store
                .enqueue(&[provision_job(id, request.version)])
                .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Run the workflow's steps against their connectors.
async fn provision(
    ctx: JobContext,
    injector: std::sync::Arc<FailureInjector>,
) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    request = move_from(
        &ctx,
        &actor,
        request,
        RequestState::Scheduled,
        RequestEvent::ProvisioningStarted,
    )
    .await?;
    if request.state != RequestState::Provisioning {
        return Ok(());
    }
    let result = run_steps(&ctx, &request, &injector).await;
    match result {
        Ok(()) => {
            ctx.store
                .transition_request(&actor, id, RequestEvent::ProvisioningSucceeded, None)
                .await?;
            info!(request_id = id, "provisioning completed");
            Ok(())
        }
        Err(JobError::Transient(why)) if !ctx.is_last_attempt() => Err(JobError::Transient(why)),
        Err(err) => {
            let why = err.to_string();
            ctx.store
                .transition_request(
                    &actor,
                    id,
                    RequestEvent::ProvisioningFailed,
                    Some(why.clone()),
                )
                .await?;
            Err(JobError::Permanent(why))
        }
    }
}

async fn run_steps(
    ctx: &JobContext,
    request: &RequestRow,
    injector: &FailureInjector,
) -> Result<(), JobError> {
    let wf = load_workflow(&ctx.store, &request.workflow)
        .await?
        .map_err(JobError::Permanent)?;
    let sample = sample_of(&ctx.store, request).await?;
    let plan = dry_run(&wf, &sample);
    for planned in &plan.steps {
        let input = serde_json::json!({ "connector": planned.connector, "action": planned.action.name(), "params": planned.params });
        if injector.should_fail() {
            let why = format!("step {}: simulated transient failure (demo)", planned.name);
            step(
                ctx,
                request.id,
                &planned.name,
                &input,
                &serde_json::Value::Null,
                Some(&why),
            )
            .await?;
            return Err(JobError::Transient(why));
        }
        let Some(head) = ctx.store.config_head(&planned.connector).await? else {
            let why = format!(
                "step {}: connector `{}` does not exist",
                planned.name, planned.connector
            );
            step(
                ctx,
                request.id,
                &planned.name,
                &input,
                &serde_json::Value::Null,
                Some(&why),
            )
            .await?;
            return Err(JobError::Permanent(why));
        };
        let outcome = crate::connectors::apply_step(&head, planned, &sample).await;
        match outcome {
            Ok(output) => {
                step(ctx, request.id, &planned.name, &input, &output, None).await?;
            }
            Err(e) => {
                let why = format!("step {}: {e}", planned.name);
                step(
                    ctx,
                    request.id,
                    &planned.name,
                    &input,
                    &serde_json::Value::Null,
                    Some(&why),
                )
                .await?;
                return Err(if e.is_transient() {
                    JobError::Transient(why)
                } else {
                    JobError::Permanent(why)
                });
            }
        }
    }
    Ok(())
}

/// Notification jobs are recorded honestly as not sent until the SMTP notifier exists.
async fn not_sent(ctx: JobContext, what: &'static str) -> Result<(), JobError> {
    if let Some(request_id) = ctx.job.request_id {
        let why = format!("{what} not sent: no notifier configured (SMTP is not implemented yet)");
        step(
            &ctx,
            request_id,
            &ctx.job.kind,
            &ctx.job.payload,
            &serde_json::json!({ "sent": false }),
            Some(&why),
        )
        .await?;
    }
    Ok(())
}

async fn rescue(ctx: JobContext) -> Result<(), JobError> {
    let n = ctx.store.rescue_expired().await?;
    if n > 0 {
        info!(jobs = n, "rescued jobs whose lease expired");
    }
    Ok(())
}

async fn prune(ctx: JobContext) -> Result<(), JobError> {
    let week = Duration::from_secs(7 * 86_400).as_millis() as i64;
    let cutoff = chrono::Utc::now().timestamp_millis() - week;
    let lines = ctx.store.prune_logs(cutoff).await?;
    let periods = ctx.store.prune_periodic(cutoff).await?;
    info!(
        lines,
        periods, "pruned execution log lines and periodic keys older than a week"
    );
    Ok(())
}

/// Diagnostic job for tests: sleeps `sleep_ms`, then records that it ran, once per run.
async fn probe(ctx: JobContext) -> Result<(), JobError> {
    let sleep = ctx
        .job
        .payload
        .get("sleep_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if sleep > 0 {
        tokio::time::sleep(Duration::from_millis(sleep)).await;
    }
    ctx.store.record_probe(ctx.job.id, &ctx.worker_id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_fails_the_third_then_every_nth() {
        let injector = FailureInjector {
            every: 20,
            ..Default::default()
        };
        let failed: Vec<u64> = (1..=60).filter(|_| injector.should_fail()).collect();
        assert_eq!(failed, vec![3, 23, 43]);
    }

    #[test]
    fn no_injection_by_default() {
        let injector = FailureInjector::default();
        assert!((0..100).all(|_| !injector.should_fail()));
    }
}
