//! The request flow as job handlers: process (validate, derive the username, open the first
//! approval stage), advance (next stage or schedule), provision (run the workflow's steps),
//! plus notification, maintenance and diagnostic jobs.
//!
//! Every handler is idempotent: it reads the request's current state and does only what is
//! still missing, so a retried or rescued job never repeats finished work.

use std::collections::BTreeMap;

use tracing::{info, warn};

use crate::domain::chain::{ChainFacts, blocking, resolve_stage};
use crate::domain::directory_checks::{CheckLevel, check as check_directory};
use crate::domain::dry_run::{DryRunStage, SampleRequest, dry_run};
use crate::domain::pinning::drift_message;
use crate::domain::request::{RequestEvent, RequestState};
use crate::domain::separation::{Person, why_not_approvable};
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::handler::{JobContext, JobError, Registry};
use crate::engine::provision::{build_pin, drift_of, parse_workflow, pinned_workflow};
use crate::engine::stage_opening::{StageText, enforce_separation, resolve_fresh, settle};
use crate::store::api::*;
use crate::store::pins::{NewPin, PinRow, Reservation};
use crate::store::{StageOpening, StepRecord, Store};

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
    r.register(
        "request.process_batch",
        crate::engine::process_batch::process_batch,
    );
    r.register("request.advance", advance);
    let injector = std::sync::Arc::new(FailureInjector {
        every: options.fail_every_nth_step,
        ..Default::default()
    });
    r.register("request.provision", move |ctx| {
        provision(ctx, injector.clone())
    });
    r.register("reconcile.revoke", crate::engine::reconcile::revoke_job);
    crate::engine::notify::register(&mut r);
    crate::engine::grace::register(&mut r);
    r.register("dormant.scan", crate::engine::dormant::scan);
    r.register("approvals.timers", crate::engine::timers::run);
    r.register("maintenance.rescue", crate::engine::maintenance::rescue);
    r.register("maintenance.prune", crate::engine::maintenance::prune);
    r.register("noop", |_ctx| async { Ok(()) });
    r.register("probe", crate::engine::maintenance::probe);
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

pub(super) fn system_actor(ctx: &JobContext) -> Actor {
    Actor::system("engine", format!("worker:{}", ctx.worker_id))
}

/// The newest version of the workflow named `name`, parsed.
pub(super) async fn load_workflow(
    store: &Store,
    name: &str,
) -> Result<Result<(ConfigVersion, Workflow), String>, JobError> {
    let Some(head) = store.config_head(name).await? else {
        return Ok(Err(format!("workflow `{name}` does not exist")));
    };
    Ok(parse_workflow(&head).map(|wf| (head, wf)))
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

/// The request as the pure workflow rules see it, with the line manager the directory knows.
pub(super) fn sample_from(request: &RequestRow, facts: &ChainFacts) -> SampleRequest {
    SampleRequest {
        subject_name: request.subject_name.clone(),
        subject_email: request.subject_email.clone(),
        username: request.username.clone(),
        requester: request.requester.clone(),
        fields: payload_fields(&request.payload),
        line_manager: facts.line_manager.clone(),
        groups: facts.members.clone(),
        today: Some(chrono::Utc::now().date_naive()),
    }
}

/// The request as the pure workflow rules see it, the chain facts for `stages` and the
/// directory's people; a directory that cannot answer is a transient failure until the last
/// attempt, then `Err(why)` for triage.
async fn sample_of(
    ctx: &JobContext,
    request: &RequestRow,
    stages: &[crate::domain::workflow::Stage],
) -> Result<Result<(SampleRequest, ChainFacts, Vec<Person>), String>, JobError> {
    match approvers::gather(&ctx.store, request, stages).await? {
        Ok((facts, people)) => Ok(Ok((sample_from(request, &facts), facts, people))),
        Err(why) if ctx.is_last_attempt() => Ok(Err(why)),
        Err(why) => Err(JobError::Transient(why)),
    }
}

/// True when the workflow asks the directory to check the requester or the subject's groups.
pub(super) fn has_directory_checks(wf: &Workflow) -> bool {
    wf.validation.requester_is_line_manager != CheckLevel::Off
        || !wf.validation.required_groups.is_empty()
}

/// The workflow's directory checks (requester is the line manager, required groups): the
/// evidence is recorded as a timeline step; answers the triage reason when a required check
/// fails (or the directory cannot answer on the last attempt).
pub(super) async fn directory_checks(
    ctx: &JobContext,
    request: &RequestRow,
    wf: &Workflow,
) -> Result<Option<String>, JobError> {
    let rules = &wf.validation;
    if !has_directory_checks(wf) {
        return Ok(None);
    }
    let evidence =
        match approvers::evidence(&ctx.store, request, !rules.required_groups.is_empty()).await? {
            Ok(evidence) => evidence,
            Err(why) if ctx.is_last_attempt() => return Ok(Some(why)),
            Err(why) => return Err(JobError::Transient(why)),
        };
    let subject = request
        .username
        .as_deref()
        .or(request.subject_email.as_deref())
        .unwrap_or(&request.subject_name);
    let outcome = check_directory(
        rules.requester_is_line_manager,
        &rules.required_groups,
        &evidence,
        &request.requester,
        subject,
    );
    let problems = outcome.problems.join("; ");
    step(
        ctx,
        request.id,
        "validate: directory checks",
        &serde_json::json!({
            "requester_is_line_manager": rules.requester_is_line_manager,
            "required_groups": rules.required_groups,
        }),
        &serde_json::json!({"evidence": evidence, "warnings": outcome.warnings, "problems": outcome.problems}),
        (!outcome.warnings.is_empty() && outcome.problems.is_empty())
            .then(|| outcome.warnings.join("; "))
            .as_deref(),
    )
    .await?;
    Ok((!outcome.problems.is_empty()).then_some(problems))
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

pub(super) fn provision_job(request_id: i64, version: i64) -> NewJob {
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
    chain: &[DryRunStage],
    wf: &Workflow,
    stage: usize,
) -> Result<(), JobError> {
    let (Some(pinned), Some(def)) = (chain.get(stage), wf.stages.get(stage)) else {
        return Err(JobError::Permanent(format!(
            "workflow {} has no stage {}",
            wf.name,
            stage + 1
        )));
    };
    // Approvers are resolved from the directory now, when the stage opens; the pinned chain
    // was the preview shown at validation.
    let (planned, error, routing) = match sample_of(ctx, request, std::slice::from_ref(def)).await?
    {
        Ok((sample, facts, people)) => {
            let (mut fresh, parties) = resolve_fresh(stage, def, &sample, &facts, &people);
            let routing =
                match approvers::route_out_of_office(&ctx.store, &mut fresh.approvers, &parties)
                    .await?
                {
                    Ok(notes) => notes,
                    Err(why) => vec![format!("out of office not checked: {why}")],
                };
            let error = settle(&mut fresh);
            (fresh, error, routing)
        }
        Err(why) => (
            pinned.clone(),
            Some(format!(
                "{why}; the stage opens with the approvers of the pinned preview"
            )),
            Vec::new(),
        ),
    };
    let opening = StageText::of(wf, def, stage, pinned, &planned, &routing, ctx.store.now());
    if let Some(why) = &error {
        warn!(request_id = request.id, stage = stage + 1, reason = %why, "stage opened with a problem");
    }
    let policy = planned.policy.to_string();
    let approval = ctx
        .store
        .open_approval_recorded(
            &system_actor(ctx),
            StepRecord {
                job_id: Some(ctx.job.id),
                name: &opening.step_name,
                input: Some(&opening.step_input),
                output: Some(&opening.step_output),
                error: error.as_deref(),
            },
            StageOpening {
                request_id: request.id,
                stage: stage as u32,
                name: &planned.name,
                policy: &policy,
                approvers: &planned.approvers,
                escalate_at: opening.escalate_at,
                carry_forward: def.carry_forward,
            },
        )
        .await?;
    // Approvals carried forward may have decided the stage already: then nobody is asked.
    if approval.status == "pending" {
        crate::engine::notify::enqueue_approval_request(&ctx.store, &approval).await?;
    }
    info!(request_id = request.id, stage = stage + 1, approvers = %planned.approvers.join(","), "approval stage opened");
    Ok(())
}

/// The approval chain of a pin.
fn pinned_chain(pin: &PinRow) -> Result<Vec<DryRunStage>, JobError> {
    serde_json::from_value(pin.plan.get("chain").cloned().unwrap_or_default()).map_err(|e| {
        JobError::Permanent(format!(
            "pin {} of request {}: chain: {e}",
            pin.id, pin.request_id
        ))
    })
}

/// The active pin, or a permanent error saying there is none.
async fn require_pin(ctx: &JobContext, request_id: i64) -> Result<PinRow, JobError> {
    ctx.store
        .active_pin(request_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("request {request_id} has no pinned plan")))
}

/// Open stage `stage` from the active pin unless it is already open.
async fn open_pinned_stage(
    ctx: &JobContext,
    request: &RequestRow,
    stage: u32,
) -> Result<(), JobError> {
    if ctx.store.has_stage(request.id, stage).await? {
        return Ok(());
    }
    let pin = require_pin(ctx, request.id).await?;
    let wf = pinned_workflow(&ctx.store, &pin).await?;
    let chain = pinned_chain(&pin)?;
    open_stage(ctx, request, &chain, &wf, stage as usize).await
}

/// The active pin; a request approved before plans were pinned has none and is sent round
/// again (answers `None`).
async fn pin_or_reapprove(
    ctx: &JobContext,
    request: &RequestRow,
) -> Result<Option<PinRow>, JobError> {
    if let Some(pin) = ctx.store.active_pin(request.id).await? {
        return Ok(Some(pin));
    }
    let why = "no pinned plan (approved before plans were pinned); re-approval needed";
    warn!(request_id = request.id, reason = why, "no pinned plan");
    ctx.store
        .require_reapproval(&system_actor(ctx), request.id, Some(ctx.job.id), why)
        .await?;
    Ok(None)
}

/// When a pinned document moved, send the request round again and answer true.
async fn reapprove_if_drifted(
    ctx: &JobContext,
    request: &RequestRow,
    pin: &PinRow,
) -> Result<bool, JobError> {
    let drifts = drift_of(&ctx.store, pin).await?;
    if drifts.is_empty() {
        return Ok(false);
    }
    let why = drift_message(&drifts);
    warn!(request_id = request.id, reason = %why, "pinned configuration moved");
    ctx.store
        .require_reapproval(&system_actor(ctx), request.id, Some(ctx.job.id), &why)
        .await?;
    Ok(true)
}

/// What validation pins for a request: the plan, what validation saw (the pin step's
/// input), the job that follows when the workflow has no stage, and the chain preview.
pub(super) struct Planned {
    pub(super) pin: NewPin,
    pub(super) input: serde_json::Value,
    pub(super) then: Option<NewJob>,
    pub(super) chain: Vec<DryRunStage>,
}

/// For a request whose rules and directory checks passed: the target check, the dry run
/// with the chain preview (every stage resolved from the directory now, separation of duties
/// applied, so a missing manager or an empty group sends the request to triage at once,
/// never a silent drop later) and the pin. `Err(why)` inside: the request needs triage.
#[allow(clippy::too_many_arguments)]
pub(super) async fn plan_validated(
    ctx: &JobContext,
    request: &RequestRow,
    wf_doc: &ConfigVersion,
    wf: &Workflow,
    sample: &SampleRequest,
    facts: &ChainFacts,
    people: &[Person],
) -> Result<Result<Planned, String>, JobError> {
    if let Some(why) = super::target_checks::not_in_targets(ctx, request, wf).await? {
        return Ok(Err(why));
    }
    let mut plan = dry_run(wf, sample);
    plan.chain = wf
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| resolve_stage(index, stage, facts))
        .collect();
    enforce_separation(&mut plan.chain, sample, people);
    if let Some(stage) = plan.chain.iter().find(|s| blocking(s)) {
        return Ok(Err(why_not_approvable(stage)));
    }
    let pin = match build_pin(&ctx.store, wf_doc, wf, &plan, sample).await? {
        Ok(pin) => pin,
        Err(why) => return Ok(Err(why)),
    };
    let input = serde_json::json!({
        "subject_name": sample.subject_name,
        "subject_email": sample.subject_email,
        "fields": sample.fields,
        "line_manager": sample.line_manager,
    });
    let then = (pin.stages == 0).then(|| provision_job(request.id, request.version + 1));
    Ok(Ok(Planned {
        pin,
        input,
        then,
        chain: plan.chain,
    }))
}

/// Received → classified → validating → first approval stage (or scheduled), or triage.
async fn process(ctx: JobContext) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    // Structured sources (CLI, console, demo) arrive with their fields: classification is
    // the deterministic rule "fields present"; the LLM path lands with e-mail intake.
    if matches!(
        request.state,
        RequestState::Received | RequestState::Classified
    ) {
        request = ctx
            .store
            .transition_chain(&actor, id, &crate::store::TO_VALIDATING)
            .await?;
    }
    if let RequestState::AwaitingApproval { stage } = request.state {
        // A retried job whose earlier attempt passed validation: make sure the stage is open.
        return open_pinned_stage(&ctx, &request, stage).await;
    }
    if request.state != RequestState::Validating {
        return Ok(());
    }
    let (wf_doc, wf) = match load_workflow(&ctx.store, &request.workflow).await? {
        Ok(found) => found,
        Err(why) => return to_triage(&ctx, &request, why).await,
    };
    // The username is checked (given) or derived, and reserved, in one store transaction.
    request = match ctx.store.reserve_username(&actor, id).await? {
        Reservation::Reserved(row) => *row,
        Reservation::Refused(why) => {
            return to_triage(&ctx, &request, format!("username: {why}")).await;
        }
    };
    let (sample, facts, people) = match sample_of(&ctx, &request, &wf.stages).await? {
        Ok(found) => found,
        Err(why) => return to_triage(&ctx, &request, why).await,
    };
    let violations = wf.validation.check(&sample);
    if !violations.is_empty() {
        let why = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return to_triage(&ctx, &request, why).await;
    }
    if let Some(why) = directory_checks(&ctx, &request, &wf).await? {
        return to_triage(&ctx, &request, why).await;
    }
    let Planned {
        pin, input, then, ..
    } = match plan_validated(&ctx, &request, &wf_doc, &wf, &sample, &facts, &people).await? {
        Ok(planned) => planned,
        Err(why) => return to_triage(&ctx, &request, why).await,
    };
    let (request, pin) = ctx
        .store
        .pin_and_pass_validation(&actor, id, Some(ctx.job.id), &pin, &input, then.as_ref())
        .await?;
    info!(
        request_id = id,
        round = pin.round,
        "plan pinned; validation passed"
    );
    if let RequestState::AwaitingApproval { stage } = request.state {
        open_pinned_stage(&ctx, &request, stage).await?;
    }
    Ok(())
}

/// A stage approved: open the next one from the pinned chain, or schedule provisioning after
/// the last. A pinned document that moved sends the request round again instead.
async fn advance(ctx: JobContext) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let stage = ctx.payload_i64("stage")? as u32;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    if request.state == (RequestState::AwaitingApproval { stage }) {
        // Only an approved stage of the current round moves the request on.
        let detail = ctx.store.request_detail(id).await?;
        if !detail
            .approvals
            .iter()
            .any(|a| a.stage == stage && a.status == "approved")
        {
            return Ok(());
        }
        let Some(pin) = pin_or_reapprove(&ctx, &request).await? else {
            return Ok(());
        };
        if reapprove_if_drifted(&ctx, &request, &pin).await? {
            return Ok(());
        }
        let wf = pinned_workflow(&ctx.store, &pin).await?;
        let stages = wf.stages.len() as u32;
        request = move_from(
            &ctx,
            &actor,
            request,
            RequestState::AwaitingApproval { stage },
            RequestEvent::StageApproved { stages },
        )
        .await?;
    }
    match request.state {
        RequestState::AwaitingApproval { stage: next } if next == stage + 1 => {
            open_pinned_stage(&ctx, &request, next).await
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

/// Run the pinned steps against the pinned connector versions. A pinned document that moved
/// since approval stops provisioning before anything runs and sends the request round again.
async fn provision(
    ctx: JobContext,
    injector: std::sync::Arc<FailureInjector>,
) -> Result<(), JobError> {
    let id = ctx.payload_i64("request_id")?;
    let actor = system_actor(&ctx);
    let mut request = ctx.store.request(id).await?;
    if request.state == RequestState::Scheduled {
        let Some(pin) = pin_or_reapprove(&ctx, &request).await? else {
            return Ok(());
        };
        if reapprove_if_drifted(&ctx, &request, &pin).await? {
            return Ok(());
        }
    }
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
    let result = async {
        let pin = require_pin(&ctx, id).await?;
        let (sample, _, _) = match sample_of(&ctx, &request, &[]).await? {
            Ok(found) => found,
            Err(why) => return Err(JobError::Permanent(why)),
        };
        let should_fail = || injector.should_fail();
        crate::engine::grace::run_provisioning(&ctx, &actor, &request, &pin, &sample, &should_fail)
            .await
    }
    .await;
    match result {
        Ok(crate::engine::grace::Phase::Waiting) => Ok(()),
        Ok(crate::engine::grace::Phase::WaitingManual) => {
            info!(request_id = id, "provisioning waits for a manual step");
            Ok(())
        }
        Ok(crate::engine::grace::Phase::Done) => {
            let done = ctx
                .store
                .transition_request(&actor, id, RequestEvent::ProvisioningSucceeded, None)
                .await?;
            crate::engine::notify::enqueue_after_provisioning(&ctx.store, &done).await?;
            info!(request_id = id, "provisioning completed");
            Ok(())
        }
        Err(JobError::Transient(why)) if !ctx.is_last_attempt() => Err(JobError::Transient(why)),
        Err(err) => {
            let why = err.to_string();
            let failed = ctx
                .store
                .transition_request(
                    &actor,
                    id,
                    RequestEvent::ProvisioningFailed,
                    Some(why.clone()),
                )
                .await?;
            crate::engine::notify::enqueue_failure_notice(&ctx.store, &failed, &why).await?;
            Err(JobError::Permanent(why))
        }
    }
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

    fn request(username: Option<&str>, email: Option<&str>, requester: &str) -> RequestRow {
        RequestRow {
            id: 1,
            workflow: "w".into(),
            kind: "joiner".into(),
            subject_name: "Ann Lee".into(),
            subject_email: email.map(str::to_string),
            username: username.map(str::to_string),
            state: RequestState::Validating,
            requester: requester.into(),
            source: "test".into(),
            payload: serde_json::json!({"manager": "mallory", "team": "sales"}),
            last_error: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_line_manager_comes_from_the_directory_only() {
        // The payload names mallory as manager: ignored.
        let by_login = request(Some("carol"), None, "hr@example.com");
        let facts = ChainFacts {
            line_manager: Some("alice".into()),
            ..ChainFacts::default()
        };
        assert_eq!(
            sample_from(&by_login, &facts).line_manager.as_deref(),
            Some("alice")
        );
        // A joiner unknown to the directory has no line manager, whatever the payload says.
        let joiner = request(Some("alee"), Some("ann@example.com"), "hr@example.com");
        assert_eq!(
            sample_from(&joiner, &ChainFacts::default()).line_manager,
            None
        );
    }

    #[test]
    fn requester_and_subject_never_stay_approvers() {
        use crate::domain::approval::Policy;
        let people = vec![
            Person {
                login: "alice".into(),
                email: "alice@example.com".into(),
            },
            Person {
                login: "bob".into(),
                email: "bob@example.com".into(),
            },
        ];
        let stage = |approvers: &[&str]| DryRunStage {
            index: 0,
            name: "s".into(),
            policy: Policy::Any,
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            excluded: vec![],
            unresolved: vec![],
            feasible: true,
            escalate_to: None,
        };
        let sample = SampleRequest {
            requester: "alice@example.com".into(),
            username: Some("bob".into()),
            ..SampleRequest::default()
        };
        let mut chain = vec![stage(&["alice", "bob", "carol"]), stage(&["bob"])];
        enforce_separation(&mut chain, &sample, &people);
        assert_eq!(chain[0].approvers, vec!["carol"]);
        assert_eq!(chain[0].excluded, vec!["alice", "bob"]);
        assert!(chain[1].approvers.is_empty());
        assert!(!chain[1].feasible);
    }

    #[test]
    fn no_injection_by_default() {
        let injector = FailureInjector::default();
        assert!((0..100).all(|_| !injector.should_fail()));
    }
}
