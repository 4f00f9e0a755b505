//! The stage-timer job (`approvals.timers`, proposed by the scheduler every period): for every
//! open stage, what its pinned workflow's timers say is due now — a reminder, an escalation to
//! the stage's `escalate_to` (resolved from the directory at that moment, without the
//! requester or the subject), or expiry. The store does each action at most once per stage,
//! so any number of workers may run the job at once.
//!
//! With the workflow's `[calendar]`, every duration counts business hours only.
//!
//! The job evaluates at the time in its payload's `now` when there is one (tests drive the
//! clock that way), else at the store's clock.

use std::collections::BTreeMap;

use tracing::{info, warn};

use crate::domain::chain::resolve_source;
use crate::domain::separation::identities;
use crate::domain::timers::{self, StageTimers, TimerAction, TimerState};
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::handler::{JobContext, JobError};
use crate::engine::provision::pinned_workflow;
use crate::store::api::Actor;
use crate::store::timers::OpenStage;

/// Run every due timer of every open stage.
pub async fn run(ctx: JobContext) -> Result<(), JobError> {
    let now = ctx
        .job
        .payload
        .get("now")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(|| ctx.store.now());
    let actor = Actor::system("timers", format!("worker:{}", ctx.worker_id));
    let mut workflows: BTreeMap<i64, Workflow> = BTreeMap::new();
    let mut failures = Vec::new();
    for stage in ctx.store.open_stages().await? {
        if let Err(e) = one(&ctx, &actor, &stage, now, &mut workflows).await {
            warn!(request_id = stage.request_id, approval_id = stage.approval_id, error = %e, "stage timer failed");
            failures.push(format!("approval {}: {e}", stage.approval_id));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(JobError::Transient(failures.join("; ")))
    }
}

async fn one(
    ctx: &JobContext,
    actor: &Actor,
    stage: &OpenStage,
    now: i64,
    workflows: &mut BTreeMap<i64, Workflow>,
) -> Result<(), JobError> {
    let Some(pin) = ctx.store.active_pin(stage.request_id).await? else {
        return Ok(());
    };
    if let std::collections::btree_map::Entry::Vacant(slot) = workflows.entry(pin.id) {
        slot.insert(pinned_workflow(&ctx.store, &pin).await?);
    }
    let Some((def, calendar)) = workflows.get(&pin.id).and_then(|wf| {
        let def = wf.stages.get(stage.stage as usize)?.clone();
        Some((def, wf.business_calendar()))
    }) else {
        return Ok(());
    };
    let settings = StageTimers::of(&def);
    let mut state = stage.timer_state();
    for action in timers::due_in(calendar.as_ref(), &settings, stage.opened_at, now, state) {
        let escalate_to = match &action {
            TimerAction::Escalate => escalation_targets(ctx, stage, &def).await?,
            _ => Vec::new(),
        };
        let after = match &action {
            TimerAction::Remind { n } => TimerState {
                reminders: *n,
                ..state
            },
            TimerAction::Escalate => TimerState {
                escalated: true,
                ..state
            },
            TimerAction::Expire { .. } => state,
        };
        let next = match &action {
            TimerAction::Expire { .. } => None,
            _ => timers::next_due_in(calendar.as_ref(), &settings, stage.opened_at, after),
        };
        let done = ctx
            .store
            .apply_timer(actor, stage.approval_id, &action, &escalate_to, next, now)
            .await?;
        if done {
            info!(
                request_id = stage.request_id,
                approval_id = stage.approval_id,
                ?action,
                "stage timer"
            );
        }
        state = after;
    }
    Ok(())
}

/// The people `escalate_to` names now, without the requester and the subject.
async fn escalation_targets(
    ctx: &JobContext,
    stage: &OpenStage,
    def: &crate::domain::workflow::Stage,
) -> Result<Vec<String>, JobError> {
    let Some(target) = def.escalation_target() else {
        return Ok(Vec::new());
    };
    let request = ctx.store.request(stage.request_id).await?;
    let (facts, people) =
        match approvers::gather(&ctx.store, &request, std::slice::from_ref(def)).await? {
            Ok(found) => found,
            Err(why) => return Err(JobError::Transient(why)),
        };
    let names = [
        Some(request.requester.as_str()),
        request.username.as_deref(),
        request.subject_email.as_deref(),
    ];
    let parties = identities(names.into_iter().flatten(), &people);
    Ok(resolve_source(&target, &facts)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !parties.contains(&p.to_lowercase()))
        .collect())
}
