//! Opening an approval stage: its approvers resolved from the directory's facts now, the
//! requester and the subject removed (separation of duties), whether it can be approved, and
//! the timeline step that explains it. Shared by the per-request flow and the batch.

use std::collections::BTreeSet;

use crate::domain::chain::{ChainFacts, blocking, resolve_stage};
use crate::domain::dry_run::{DryRunStage, SampleRequest};
use crate::domain::separation::{Person, exclude_parties, identities, why_not_approvable};
use crate::domain::timers::{self, StageTimers, TimerState};
use crate::domain::workflow::{Stage, Workflow};

/// Remove the requester and the subject, under every name the directory knows them by, from
/// every stage's approvers (separation of duties).
pub fn enforce_separation(chain: &mut [DryRunStage], sample: &SampleRequest, people: &[Person]) {
    let names = [
        Some(sample.requester.as_str()),
        sample.username.as_deref(),
        sample.subject_email.as_deref(),
    ];
    let parties = identities(names.into_iter().flatten(), people);
    for stage in chain {
        exclude_parties(stage, &parties);
    }
}

/// Stage `stage` (`def`) resolved from the directory's facts now, with the requester and
/// the subject removed (separation of duties); also answers those parties' names.
pub fn resolve_fresh(
    stage: usize,
    def: &Stage,
    sample: &SampleRequest,
    facts: &ChainFacts,
    people: &[Person],
) -> (DryRunStage, BTreeSet<String>) {
    let mut fresh = vec![resolve_stage(stage, def, facts)];
    enforce_separation(&mut fresh, sample, people);
    let mut fresh = fresh.remove(0);
    fresh.index = stage;
    let parties = identities(
        [
            Some(sample.requester.as_str()),
            sample.username.as_deref(),
            sample.subject_email.as_deref(),
        ]
        .into_iter()
        .flatten(),
        people,
    );
    (fresh, parties)
}

/// Decide whether the stage, its approvers routed, can be approved; answers why not (the
/// stage opens all the same, for an admin, escalation or expiry to decide).
pub fn settle(fresh: &mut DryRunStage) -> Option<String> {
    fresh.feasible = crate::domain::approval::is_feasible(fresh.policy, fresh.approvers.len());
    blocking(fresh).then(|| {
        format!(
            "{}; the stage stays open for an admin, escalation or expiry to decide",
            why_not_approvable(fresh)
        )
    })
}

/// The timeline step that explains an opening stage, and its first timer.
pub struct StageText {
    /// The step's name.
    pub step_name: String,
    /// What the stage was built from.
    pub step_input: serde_json::Value,
    /// The approvers found, excluded and routed, and the timers.
    pub step_output: serde_json::Value,
    /// When the first timer fires.
    pub escalate_at: Option<i64>,
}

impl StageText {
    /// The step for stage `stage` (`def`) of `wf` opened at `opened` with `planned`'s
    /// approvers (`pinned` was the preview) and the out-of-office `routing` notes.
    pub fn of(
        wf: &Workflow,
        def: &Stage,
        stage: usize,
        pinned: &DryRunStage,
        planned: &DryRunStage,
        routing: &[String],
        opened: i64,
    ) -> Self {
        let timers = StageTimers::of(def);
        let calendar = wf.business_calendar();
        let escalate_at =
            timers::next_due_in(calendar.as_ref(), &timers, opened, TimerState::default());
        Self {
            step_name: format!(
                "stage {} ({}) approvers from the directory",
                stage + 1,
                def.name
            ),
            step_input: serde_json::json!({"sources": def.approvers, "people": def.people, "preview": pinned.approvers}),
            step_output: serde_json::json!({
                "approvers": planned.approvers,
                "excluded": planned.excluded,
                "unresolved": planned.unresolved,
                "out_of_office": routing,
                "timers": timers,
            }),
            escalate_at,
        }
    }
}
