//! Manual steps in provisioning: a step done by a person, for a system without an API.
//! Reaching one records it as waiting (its instruction in the timeline) and stops the run
//! without failing; once an operator marks it done, the next run verifies it by reading the
//! account back when the step names a connector, then continues with the next step.

use serde_json::json;
use tracing::info;

use crate::connectors::{AnyConnector, ConnectorError};
use crate::engine::handler::{JobContext, JobError};
use crate::engine::provision::PinnedStep;
use crate::store::api::{Actor, RequestRow};
use crate::store::pins::PinRow;
use crate::store::steps::{MANUAL_DONE, MANUAL_REPORTED, ManualRecord, WAITING_MANUAL};

/// How a provisioning run ended when no step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepsOutcome {
    /// Every step is applied, skipped or done.
    Completed,
    /// A manual step waits for a person; the request stays `provisioning`.
    WaitingManual,
}

/// The text recorded when a manual step names no connector that could verify it.
pub const NOT_VERIFIED: &str = "not verified: connector cannot read";

/// Handle manual step `pinned` of `pin`: `Ok(true)` when it is done (verified or accepted
/// unverified) and the run goes on, `Ok(false)` when it waits for a person.
pub async fn manual_step(
    ctx: &JobContext,
    actor: &Actor,
    request: &RequestRow,
    pin: &PinRow,
    pinned: &PinnedStep,
    input: &serde_json::Value,
) -> Result<bool, JobError> {
    let entry = ctx.store.ledger_entry(pin.id, &pinned.name).await?;
    let account = pinned
        .writes
        .get("account")
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .or_else(|| request.username.clone())
        .unwrap_or_default();
    let instruction = pinned
        .writes
        .get("manual")
        .and_then(|i| i.as_str())
        .unwrap_or_default()
        .to_string();
    let record = |status, result: serde_json::Value, error: Option<String>| {
        let account = account.clone();
        let instruction = instruction.clone();
        async move {
            let output = json!({
                "outcome": status, "instruction": instruction, "account": account, "result": result,
            });
            ctx.store
                .record_manual_step(
                    actor,
                    &ManualRecord {
                        request_id: request.id,
                        job_id: Some(ctx.job.id),
                        pin_id: pin.id,
                        step: &pinned.name,
                        connector: &pinned.connector,
                        connector_version: pinned.connector_version,
                        target_key: &account,
                        intent: &pinned.writes,
                        status,
                        result: &result,
                        error: error.as_deref(),
                    },
                    input,
                    &output,
                )
                .await
        }
    };
    let status = entry.as_ref().map(|e| e.status.as_str());
    if status == Some(WAITING_MANUAL) {
        return Ok(false);
    }
    if status != Some(MANUAL_REPORTED) {
        record(
            WAITING_MANUAL,
            json!({"waiting_since_job": ctx.job.id}),
            None,
        )
        .await?;
        info!(request_id = request.id, step = %pinned.name, "manual step waiting for an operator");
        return Ok(false);
    }
    let reported = entry
        .and_then(|e| e.result)
        .unwrap_or(serde_json::Value::Null);
    let unverified =
        |why: String| json!({"verified": false, "verification": why, "reported": reported.clone()});
    if pinned.connector.is_empty() {
        record(MANUAL_DONE, unverified(NOT_VERIFIED.to_string()), None).await?;
        return Ok(true);
    }
    let Some(doc) = ctx
        .store
        .config_at(&pinned.connector, pinned.connector_version)
        .await?
    else {
        let why = format!(
            "{NOT_VERIFIED} ({} v{} does not exist)",
            pinned.connector, pinned.connector_version
        );
        record(MANUAL_DONE, unverified(why), None).await?;
        return Ok(true);
    };
    let connector = match AnyConnector::from_doc(&doc) {
        Ok(c) => c,
        Err(e) => {
            record(
                MANUAL_DONE,
                unverified(format!("{NOT_VERIFIED} ({e})")),
                None,
            )
            .await?;
            return Ok(true);
        }
    };
    match connector.read(&account).await {
        Ok(Some(found)) => {
            let result = json!({
                "verified": true, "verification": format!("account {account} read back from {}", pinned.connector),
                "read_back": found.attributes, "reported": reported,
            });
            record(MANUAL_DONE, result, None).await?;
            info!(request_id = request.id, step = %pinned.name, "manual step verified by read-back");
            Ok(true)
        }
        Ok(None) => {
            let problem = format!(
                "read-back found no account {account} in {}: the manual step is not done",
                pinned.connector
            );
            let result = json!({"verified": false, "problem": problem, "reported": reported});
            record(WAITING_MANUAL, result, Some(problem)).await?;
            Ok(false)
        }
        Err(e) => Err(read_failed(&pinned.name, e)),
    }
}

fn read_failed(step: &str, e: ConnectorError) -> JobError {
    let why = format!("step {step}: verifying the manual step: {e}");
    if e.is_transient() {
        JobError::Transient(why)
    } else {
        JobError::Permanent(why)
    }
}
