//! Validating many requests with few transactions: the classification transitions and the
//! username reservations of a batch in one transaction, then the pins and the first approval
//! stages in another — the same rows, timeline steps and audit entries as the per-request
//! commands (`transition_chain`, `reserve_username`, `pin_and_pass_validation`,
//! `open_approval_recorded`), written with one commit per batch instead of four per request.

use crate::domain::request::{RequestEvent, RequestState};
use crate::store::Store;
use crate::store::api::{Actor, ApprovalRow, NewJob, StoreResult};
use crate::store::authz::require_system;
use crate::store::carry_forward::open_recorded_in_tx;
use crate::store::db::write_tx;
use crate::store::pins::{NewPin, Reservation, pin_in_tx, reserve_row_in_tx, to_json};
use crate::store::requests::{
    StageOpening, StepRecord, load_request_for_update, transition_chain_in_tx,
};

/// The classification a structured request goes through: received → classified → validating.
pub const TO_VALIDATING: [(RequestState, RequestEvent); 2] = [
    (RequestState::Received, RequestEvent::Classified),
    (RequestState::Classified, RequestEvent::ValidationStarted),
];

/// One request of a batch whose validation passed: its pin and, when the workflow has
/// approval stages, the first stage to open with the timeline step that explains it.
pub struct PassedValidation<'a> {
    /// The request.
    pub request_id: i64,
    /// The plan to pin.
    pub pin: &'a NewPin,
    /// The pin step's input (what validation saw).
    pub input: &'a serde_json::Value,
    /// The job to enqueue with the pin (provisioning, when there is no stage).
    pub then: Option<&'a NewJob>,
    /// The first stage and its timeline step.
    pub first_stage: Option<(StepRecord<'a>, StageOpening<'a>)>,
}

impl Store {
    /// For each of `ids` still received, classified or validating: move it to validating
    /// (`classified`, `validation_started`) and check or derive and reserve its username, all
    /// in one transaction. Answers the reservation of each request that is validating; the
    /// others (already past validation, or gone on) are left out.
    pub async fn classify_and_reserve(
        &self,
        actor: &Actor,
        ids: &[i64],
    ) -> StoreResult<Vec<(i64, Reservation)>> {
        require_system(actor, "validate requests")?;
        let out = write_tx!(self, |tx| {
            let mut out = Vec::with_capacity(ids.len());
            for &id in ids {
                let row = load_request_for_update(&mut tx, id).await?;
                let row = transition_chain_in_tx(&mut tx, actor, row, &TO_VALIDATING).await?;
                if row.state == RequestState::Validating {
                    out.push((id, reserve_row_in_tx(&mut tx, actor, row).await?));
                }
            }
            Ok(out)
        })?;
        self.signal_local(false);
        Ok(out)
    }

    /// For each item, in one transaction: pin its plan and pass validation (as
    /// `pin_and_pass_validation`), then open its first stage with its timeline step (as
    /// `open_approval_recorded`). Any failure rolls the whole batch back. Answers the stages
    /// opened.
    pub async fn pass_validation_batch(
        &self,
        actor: &Actor,
        job_id: Option<i64>,
        items: &[PassedValidation<'_>],
    ) -> StoreResult<Vec<ApprovalRow>> {
        require_system(actor, "pin plans and open approval stages")?;
        let mut texts = Vec::with_capacity(items.len());
        for item in items {
            texts.push((to_json(&item.pin.documents)?, to_json(&item.pin.plan)?));
        }
        let jobs = items.iter().any(|i| i.then.is_some());
        let out = write_tx!(self, |tx| {
            let mut opened = Vec::new();
            for (item, (documents, plan)) in items.iter().zip(&texts) {
                let (row, _) = pin_in_tx(
                    &mut tx,
                    actor,
                    item.request_id,
                    job_id,
                    item.pin,
                    documents,
                    plan,
                    item.input,
                    item.then,
                )
                .await?;
                let Some((step, stage)) = &item.first_stage else {
                    continue;
                };
                if row.state != (RequestState::AwaitingApproval { stage: stage.stage }) {
                    continue;
                }
                opened.push(open_recorded_in_tx(&mut tx, actor, *step, *stage, true).await?);
            }
            Ok(opened)
        })?;
        self.signal_local(jobs);
        Ok(out)
    }
}
