//! Step control from the request detail: retry the failed step, skip the step the request is
//! stopped at (with a justification), mark the manual step it waits on done.

use super::*;
use crate::domain::request::RequestState;
use crate::store::api::RequestDetail;

/// Which step-control key was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKey {
    /// Retry the failed step.
    Retry,
    /// Skip the stopped step.
    Skip,
    /// Mark the waiting manual step done.
    Done,
}

/// Where a request's provisioning stopped, read from its timeline: the step of its last step
/// entry, and whether that step waits for a person (else it failed). `None`: it did not stop.
pub fn stopped_step(detail: &RequestDetail) -> Option<(String, bool)> {
    let stopped = matches!(
        detail.request.state,
        RequestState::Failed | RequestState::Provisioning
    );
    if !stopped {
        return None;
    }
    let last = detail.timeline.iter().rev().find(|t| t.kind == "step")?;
    let name = last.detail.get("name")?.as_str()?.to_string();
    let output = last.detail.get("output");
    let waiting = output
        .and_then(|o| o.get("outcome"))
        .and_then(|o| o.as_str())
        == Some("waiting_manual");
    let failed = last.detail.get("error").is_some_and(|e| !e.is_null());
    match (waiting, failed) {
        (true, _) => Some((name, true)),
        (false, true) if detail.request.state == RequestState::Failed => Some((name, false)),
        // A manual step whose read-back found no account waits again, with that error.
        (false, true) => Some((name, true)),
        (false, false) => None,
    }
}

impl AppState {
    /// Acts on the step the request shown is stopped at.
    pub(super) fn step_control(&mut self, key: StepKey) -> Vec<Effect> {
        if self.view() != ViewId::Detail {
            self.flash(FlashLevel::Info, "step keys work in a request's detail");
            return Vec::new();
        }
        let Some(detail) = self.detail.data.as_ref() else {
            self.flash(FlashLevel::Info, "no request loaded");
            return Vec::new();
        };
        let id = detail.request.id;
        let Some((step, waiting)) = stopped_step(detail) else {
            self.flash(
                FlashLevel::Info,
                format!("request {id} is not stopped at a step"),
            );
            return Vec::new();
        };
        match key {
            StepKey::Retry if waiting => {
                self.flash(
                    FlashLevel::Info,
                    format!("step {step} waits for a person: D marks it done, S skips it"),
                );
                Vec::new()
            }
            StepKey::Retry => vec![Effect::Run(vec![StoreCmd::RetryStep {
                request_id: id,
                step,
            }])],
            StepKey::Done if !waiting => {
                self.flash(
                    FlashLevel::Info,
                    format!("step {step} is not a manual step waiting for a person"),
                );
                Vec::new()
            }
            StepKey::Skip | StepKey::Done => {
                let (title, target) = if key == StepKey::Skip {
                    (
                        format!("skip step {step} of request {id} — justification (required)"),
                        ReasonFor::SkipStep(id, step),
                    )
                } else {
                    (
                        format!("manual step {step} of request {id} done — note (optional)"),
                        ReasonFor::DoneStep(id, step),
                    )
                };
                self.popup = Some(Popup::Reason {
                    title,
                    input: Box::new(super::rows::reason_input()),
                    error: None,
                    target,
                });
                Vec::new()
            }
        }
    }
}
