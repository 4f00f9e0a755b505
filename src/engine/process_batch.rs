//! `request.process_batch`: the `request.process` job for many requests at once (a CSV
//! import's rows). The same checks and decisions as the per-request handler, with the
//! directories, delegations and workflows read once per batch and the writes made in two
//! transactions per batch (`classify_and_reserve`, `pass_validation_batch`). A request the
//! batch does not settle — it needs triage, directory checks with their evidence step, or
//! anything unusual — gets its own `request.process` job, which decides it exactly as
//! before; so does every request of a batch whose writes fail.

use std::collections::HashMap;

use tracing::{info, warn};

use crate::domain::dry_run::DryRunStage;
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::flow::{
    Planned, has_directory_checks, load_workflow, plan_validated, sample_from, system_actor,
};
use crate::engine::handler::{JobContext, JobError};
use crate::engine::stage_opening::{StageText, resolve_fresh, settle};
use crate::store::api::{ConfigVersion, NewJob, ReadApi, RequestRow};
use crate::store::pins::{NewPin, Reservation};
use crate::store::{PassedValidation, StageOpening, StepRecord, process_job};

/// A request whose validation passed in this batch, with everything its writes need.
struct Passed {
    request_id: i64,
    pin: NewPin,
    input: serde_json::Value,
    then: Option<NewJob>,
    stage: Option<Opening>,
}

/// The first stage of a passed request, computed before the write transaction.
struct Opening {
    text: StageText,
    error: Option<String>,
    name: String,
    policy: String,
    approvers: Vec<String>,
    carry_forward: bool,
}

/// The job: settle what the batch can, hand the rest to per-request jobs.
pub async fn process_batch(ctx: JobContext) -> Result<(), JobError> {
    let ids: Vec<i64> = ctx
        .job
        .payload
        .get("request_ids")
        .and_then(serde_json::Value::as_array)
        .map(|ids| ids.iter().filter_map(serde_json::Value::as_i64).collect())
        .ok_or_else(|| {
            JobError::Permanent(format!(
                "job {}: payload field `request_ids` missing or not a list",
                ctx.job.id
            ))
        })?;
    let rest = match settle_batch(&ctx, &ids).await {
        Ok(rest) => rest,
        Err(e) => {
            warn!(job_id = ctx.job.id, error = %e, "batch not settled together; each request gets its own job");
            ids
        }
    };
    hand_over(&ctx, &rest).await
}

/// One `request.process` job per request in `ids` (none when one is already waiting).
async fn hand_over(ctx: &JobContext, ids: &[i64]) -> Result<(), JobError> {
    if ids.is_empty() {
        return Ok(());
    }
    let jobs: Vec<NewJob> = ids.iter().map(|&id| process_job(id)).collect();
    ctx.store.enqueue(&jobs).await?;
    Ok(())
}

/// Validate the batch's requests together; answers the ids left to per-request jobs.
async fn settle_batch(ctx: &JobContext, ids: &[i64]) -> Result<Vec<i64>, JobError> {
    let actor = system_actor(ctx);
    let reserved = ctx.store.classify_and_reserve(&actor, ids).await?;
    let dirs = match approvers::directories(&ctx.store).await? {
        Ok(dirs) => dirs,
        Err(_) => return Ok(reserved.into_iter().map(|(id, _)| id).collect()),
    };
    let delegations = ctx.store.delegations(Some(ctx.store.now())).await?;
    let mut workflows: HashMap<String, Option<(ConfigVersion, Workflow)>> = HashMap::new();
    let mut rest = Vec::new();
    let mut passed = Vec::new();
    for (id, reservation) in reserved {
        let Reservation::Reserved(request) = reservation else {
            rest.push(id);
            continue;
        };
        if !workflows.contains_key(&request.workflow) {
            let found = load_workflow(&ctx.store, &request.workflow).await?.ok();
            workflows.insert(request.workflow.clone(), found);
        }
        let Some(Some((doc, wf))) = workflows.get(&request.workflow) else {
            rest.push(id);
            continue;
        };
        match validate(ctx, &dirs, &delegations, &request, doc, wf).await? {
            Some(done) => passed.push(done),
            None => rest.push(id),
        }
    }
    if passed.is_empty() {
        return Ok(rest);
    }
    let items: Vec<PassedValidation<'_>> = passed
        .iter()
        .map(|p| PassedValidation {
            request_id: p.request_id,
            pin: &p.pin,
            input: &p.input,
            then: p.then.as_ref(),
            first_stage: p.stage.as_ref().map(|o| {
                (
                    StepRecord {
                        job_id: Some(ctx.job.id),
                        name: &o.text.step_name,
                        input: Some(&o.text.step_input),
                        output: Some(&o.text.step_output),
                        error: o.error.as_deref(),
                    },
                    StageOpening {
                        request_id: p.request_id,
                        stage: 0,
                        name: &o.name,
                        policy: &o.policy,
                        approvers: &o.approvers,
                        escalate_at: o.text.escalate_at,
                        carry_forward: o.carry_forward,
                    },
                )
            }),
        })
        .collect();
    let opened = ctx
        .store
        .pass_validation_batch(&actor, Some(ctx.job.id), &items)
        .await?;
    info!(
        job_id = ctx.job.id,
        passed = passed.len(),
        handed_over = rest.len(),
        "batch validated; plans pinned, first stages opened"
    );
    let pending: Vec<_> = opened
        .into_iter()
        .filter(|a| a.status == "pending")
        .collect();
    crate::engine::notify::enqueue_approval_requests(&ctx.store, &pending).await?;
    Ok(rest)
}

/// The per-request handler's decisions for one request whose username is reserved:
/// `Some` when its validation passes here, `None` when it is left to its own job (triage,
/// directory checks, anything a directory cannot answer now).
async fn validate(
    ctx: &JobContext,
    dirs: &[std::sync::Arc<crate::directory::DirectoryClient>],
    delegations: &[crate::store::delegation::DelegationRow],
    request: &RequestRow,
    doc: &ConfigVersion,
    wf: &Workflow,
) -> Result<Option<Passed>, JobError> {
    // Directory checks record their evidence as a step of their own: the per-request job.
    if has_directory_checks(wf) {
        return Ok(None);
    }
    let Ok((facts, people)) = approvers::gather_with(dirs, request, &wf.stages).await else {
        return Ok(None);
    };
    let sample = sample_from(request, &facts);
    if !wf.validation.check(&sample).is_empty() {
        return Ok(None);
    }
    let Ok(Planned {
        pin,
        input,
        then,
        chain,
    }) = plan_validated(ctx, request, doc, wf, &sample, &facts, &people).await?
    else {
        return Ok(None);
    };
    let stage = match (chain.first(), wf.stages.first()) {
        (Some(pinned), Some(def)) if pin.stages > 0 => Some(
            opening(
                ctx,
                dirs,
                delegations,
                pinned,
                def,
                wf,
                &sample,
                &facts,
                &people,
            )
            .await,
        ),
        _ => None,
    };
    Ok(Some(Passed {
        request_id: request.id,
        pin,
        input,
        then,
        stage,
    }))
}

/// The first stage as `open_stage` would open it now, from the facts already gathered.
#[allow(clippy::too_many_arguments)]
async fn opening(
    ctx: &JobContext,
    dirs: &[std::sync::Arc<crate::directory::DirectoryClient>],
    delegations: &[crate::store::delegation::DelegationRow],
    pinned: &DryRunStage,
    def: &crate::domain::workflow::Stage,
    wf: &Workflow,
    sample: &crate::domain::dry_run::SampleRequest,
    facts: &crate::domain::chain::ChainFacts,
    people: &[crate::domain::separation::Person],
) -> Opening {
    let (mut fresh, parties) = resolve_fresh(0, def, sample, facts, people);
    let routing =
        match approvers::route_with(dirs, delegations, &mut fresh.approvers, &parties).await {
            Ok(notes) => notes,
            Err(why) => vec![format!("out of office not checked: {why}")],
        };
    let error = settle(&mut fresh);
    let text = StageText::of(wf, def, 0, pinned, &fresh, &routing, ctx.store.now());
    Opening {
        text,
        error,
        name: fresh.name.clone(),
        policy: fresh.policy.to_string(),
        approvers: fresh.approvers,
        carry_forward: def.carry_forward,
    }
}
