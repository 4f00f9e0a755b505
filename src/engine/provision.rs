//! What is provisioned is what was approved: the engine side of pins. Building the pin when
//! the approval chain opens (workflow, connector and role versions, the plan with what each
//! step writes and a preview of its statements), detecting a pinned document that moved, and
//! running exactly the pinned steps with the pinned connector versions, each write recorded in
//! the provisioning ledger before it happens and audited after.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracing::info;

use crate::connectors::{self, ConnectorError};
use crate::domain::config::ConfigDocument;
use crate::domain::dry_run::{DryRun, PlannedStep, SampleRequest};
use crate::domain::pinning::{Drift, PinnedDocument, drift};
use crate::domain::role::Role;
use crate::domain::workflow::{StepAction, Workflow};
use crate::engine::documents;
use crate::engine::handler::{JobContext, JobError};
use crate::engine::steps::{StepsOutcome, manual_step};
use crate::store::Store;
use crate::store::api::{Actor, ConfigVersion, RequestRow};
use crate::store::pins::{AppliedStep, NewPin, PinRow};
use crate::store::steps::passes;

/// One step of a pinned plan: what approvers were shown and what provisioning runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedStep {
    /// Step name.
    pub name: String,
    /// Connector name.
    pub connector: String,
    /// Connector version pinned.
    pub connector_version: i64,
    /// What the step does.
    pub action: StepAction,
    /// Parameters as rendered for this request.
    pub params: BTreeMap<String, String>,
    /// What it writes (account, values), or why that could not be worked out.
    pub writes: serde_json::Value,
    /// The statements it would run against the target as it was when pinned (or why they
    /// could not be planned); the target may change before provisioning, the values do not.
    pub preview: serde_json::Value,
}

impl PinnedStep {
    fn planned(&self) -> PlannedStep {
        PlannedStep {
            name: self.name.clone(),
            connector: self.connector.clone(),
            action: self.action,
            params: self.params.clone(),
        }
    }
}

/// Parse a stored document as a workflow, or say why it is not one.
pub fn parse_workflow(doc: &ConfigVersion) -> Result<Workflow, String> {
    match documents::check(
        &format!("{} (version {})", doc.name, doc.version),
        &doc.body,
    ) {
        Ok(ConfigDocument::Workflow(wf)) => Ok(*wf),
        Ok(other) => Err(format!(
            "`{}` is a {} document, not a workflow",
            doc.name,
            other.kind()
        )),
        Err(diagnostics) => Err(diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Build the pin for `plan` (approval chain already filtered for separation of duties):
/// pins the workflow version, the newest version of every connector its steps use and of every
/// role it names, and records per step what it writes and a preview of its statements.
/// `Ok(Err(why))` when a step's connector does not exist (the request needs triage).
pub async fn build_pin(
    store: &Store,
    wf_doc: &ConfigVersion,
    wf: &Workflow,
    plan: &DryRun,
    sample: &SampleRequest,
) -> Result<Result<NewPin, String>, JobError> {
    let mut documents = vec![PinnedDocument {
        kind: "workflow".into(),
        name: wf_doc.name.clone(),
        version: wf_doc.version,
    }];
    let mut connectors: BTreeMap<String, ConfigVersion> = BTreeMap::new();
    for step in &plan.steps {
        if connectors.contains_key(&step.connector)
            || (step.action == StepAction::Manual && step.connector.is_empty())
        {
            continue;
        }
        match store.config_head(&step.connector).await? {
            Some(doc) => {
                documents.push(PinnedDocument {
                    kind: doc.kind.clone(),
                    name: doc.name.clone(),
                    version: doc.version,
                });
                connectors.insert(step.connector.clone(), doc);
            }
            None => {
                return Ok(Err(format!(
                    "step {}: connector `{}` does not exist",
                    step.name, step.connector
                )));
            }
        }
    }
    let mut wanted: Vec<String> = wf.referenced_roles().into_iter().map(|(_, r)| r).collect();
    for step in &plan.steps {
        if matches!(step.action, StepAction::GrantRole | StepAction::RevokeRole) {
            for key in ["role", "previous_role"] {
                if let Some(role) = step.params.get(key).filter(|r| !r.contains('{')) {
                    wanted.push(role.clone());
                }
            }
        }
    }
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    while let Some(name) = wanted.pop() {
        if roles.contains_key(&name) || documents.iter().any(|d| d.name == name) {
            continue;
        }
        let Some(doc) = store.config_head(&name).await? else {
            continue;
        };
        if let Ok(ConfigDocument::Role(role)) = documents::check(&doc.name, &doc.body) {
            wanted.extend(role.inherits.iter().cloned());
            roles.insert(name.clone(), role);
        }
        documents.push(PinnedDocument {
            kind: doc.kind.clone(),
            name: doc.name.clone(),
            version: doc.version,
        });
    }
    let mut steps = Vec::new();
    for step in &plan.steps {
        if step.action == StepAction::Manual {
            steps.push(manual_pinned(step, connectors.get(&step.connector), sample));
            continue;
        }
        let Some(doc) = connectors.get(&step.connector) else {
            continue;
        };
        let (writes, preview) = match connectors::intent(doc, step, sample, &roles) {
            Ok(intent) => {
                let preview = connectors::preview(doc, &intent).await;
                (serde_json::to_value(&intent).unwrap_or_default(), preview)
            }
            Err(e) => (
                serde_json::json!({ "error": e.to_string() }),
                serde_json::Value::Null,
            ),
        };
        steps.push(PinnedStep {
            name: step.name.clone(),
            connector: step.connector.clone(),
            connector_version: doc.version,
            action: step.action,
            params: step.params.clone(),
            writes,
            preview,
        });
    }
    let mut plan_json = serde_json::json!({
        "workflow": wf_doc.name,
        "workflow_version": wf_doc.version,
        "username": sample.username,
        "chain": plan.chain,
        "steps": steps,
    });
    if let Some(grace) = crate::engine::grace::plan_note(wf, &steps, store.now()) {
        plan_json["grace"] = grace;
    }
    Ok(Ok(NewPin {
        workflow: wf_doc.name.clone(),
        workflow_version: wf_doc.version,
        documents,
        plan: plan_json,
        stages: u32::try_from(wf.stages.len()).unwrap_or(u32::MAX),
    }))
}

/// A manual step as pinned: what it writes is the instruction and the account it is about.
fn manual_pinned(
    step: &PlannedStep,
    doc: Option<&ConfigVersion>,
    sample: &SampleRequest,
) -> PinnedStep {
    PinnedStep {
        name: step.name.clone(),
        connector: step.connector.clone(),
        connector_version: doc.map_or(0, |d| d.version),
        action: step.action,
        params: step.params.clone(),
        writes: serde_json::json!({
            "manual": step.params.get("instruction").cloned().unwrap_or_default(),
            "account": sample.username,
        }),
        preview: serde_json::Value::Null,
    }
}

/// The pinned documents whose head moved since `pin`.
pub async fn drift_of(store: &Store, pin: &PinRow) -> Result<Vec<Drift>, JobError> {
    let mut heads = BTreeMap::new();
    for doc in &pin.documents {
        let head = store.config_head(&doc.name).await?.map(|h| h.version);
        heads.insert(doc.name.clone(), head);
    }
    Ok(drift(&pin.documents, |name| {
        heads.get(name).copied().flatten()
    }))
}

/// The pinned workflow version.
pub async fn pinned_workflow(store: &Store, pin: &PinRow) -> Result<Workflow, JobError> {
    let doc = store
        .config_at(&pin.workflow, pin.workflow_version)
        .await?
        .ok_or_else(|| {
            JobError::Permanent(format!(
                "pinned workflow {} v{} no longer exists",
                pin.workflow, pin.workflow_version
            ))
        })?;
    parse_workflow(&doc).map_err(JobError::Permanent)
}

/// The role documents pinned with `pin`, at their pinned versions.
pub async fn pinned_roles(store: &Store, pin: &PinRow) -> Result<BTreeMap<String, Role>, JobError> {
    let mut roles = BTreeMap::new();
    for doc in pin.documents.iter().filter(|d| d.kind == "role") {
        let Some(version) = store.config_at(&doc.name, doc.version).await? else {
            return Err(JobError::Permanent(format!(
                "pinned role {} v{} no longer exists",
                doc.name, doc.version
            )));
        };
        match documents::check(&version.name, &version.body) {
            Ok(ConfigDocument::Role(role)) => {
                roles.insert(role.name.clone(), role);
            }
            _ => {
                return Err(JobError::Permanent(format!(
                    "pinned role {} v{} is not a valid role document",
                    doc.name, doc.version
                )));
            }
        }
    }
    Ok(roles)
}

/// The pinned plan's steps.
pub fn pinned_steps(pin: &PinRow) -> Result<Vec<PinnedStep>, JobError> {
    serde_json::from_value(pin.plan.get("steps").cloned().unwrap_or_default()).map_err(|e| {
        JobError::Permanent(format!(
            "pin {} of request {}: steps: {e}",
            pin.id, pin.request_id
        ))
    })
}

async fn failed_step(
    ctx: &JobContext,
    request_id: i64,
    name: &str,
    input: &serde_json::Value,
    why: String,
    transient: bool,
) -> Result<(), JobError> {
    ctx.store
        .record_step(
            request_id,
            Some(ctx.job.id),
            name,
            Some(input),
            Some(&serde_json::Value::Null),
            Some(&why),
        )
        .await?;
    Err(if transient {
        JobError::Transient(why)
    } else {
        JobError::Permanent(why)
    })
}

/// Run the pinned steps of `pin` with the pinned connector versions. Each step's values are
/// derived again from those versions and must equal the pinned ones; a create records its
/// intent in the ledger before writing; every applied step is recorded with its audit row.
/// Steps already applied, skipped or done under this pin (an earlier attempt) are not run
/// again; a manual step not done yet stops the run ([`StepsOutcome::WaitingManual`]).
pub async fn run_pinned_steps(
    ctx: &JobContext,
    actor: &Actor,
    request: &RequestRow,
    pin: &PinRow,
    sample: &SampleRequest,
    should_fail: &(dyn Fn() -> bool + Send + Sync),
) -> Result<StepsOutcome, JobError> {
    let roles = pinned_roles(&ctx.store, pin).await?;
    for pinned in pinned_steps(pin)? {
        let input = serde_json::json!({
            "connector": pinned.connector, "connector_version": pinned.connector_version,
            "action": pinned.action.name(), "params": pinned.params, "pin_round": pin.round,
        });
        if should_fail() {
            let why = format!("step {}: simulated transient failure (demo)", pinned.name);
            return failed_step(ctx, request.id, &pinned.name, &input, why, true)
                .await
                .map(|()| StepsOutcome::Completed);
        }
        if let Some(entry) = ctx.store.ledger_entry(pin.id, &pinned.name).await?
            && passes(&entry.status)
        {
            info!(request_id = request.id, step = %pinned.name, status = %entry.status, "step already done under this pin");
            continue;
        }
        if pinned.action == StepAction::Manual {
            if manual_step(ctx, actor, request, pin, &pinned, &input).await? {
                continue;
            }
            return Ok(StepsOutcome::WaitingManual);
        }
        let Some(doc) = ctx
            .store
            .config_at(&pinned.connector, pinned.connector_version)
            .await?
        else {
            let why = format!(
                "step {}: connector {} v{} does not exist",
                pinned.name, pinned.connector, pinned.connector_version
            );
            return failed_step(ctx, request.id, &pinned.name, &input, why, false)
                .await
                .map(|()| StepsOutcome::Completed);
        };
        let intent = match connectors::intent(&doc, &pinned.planned(), sample, &roles) {
            Ok(intent) => intent,
            Err(e) => {
                let why = format!("step {}: {e}", pinned.name);
                return failed_step(ctx, request.id, &pinned.name, &input, why, false)
                    .await
                    .map(|()| StepsOutcome::Completed);
            }
        };
        let intent_json = serde_json::to_value(&intent).unwrap_or_default();
        if intent_json != pinned.writes {
            let why = format!(
                "step {}: what it would write differs from the approved plan (approved {}, now {}); not applied",
                pinned.name, pinned.writes, intent_json
            );
            return failed_step(ctx, request.id, &pinned.name, &input, why, false)
                .await
                .map(|()| StepsOutcome::Completed);
        }
        let ours = ctx
            .store
            .has_provision_intent(
                request.id,
                &pinned.name,
                &pinned.connector,
                &intent.username,
            )
            .await?;
        let prepared = match connectors::prepare(&doc, &intent, ours).await {
            Ok(p) => p,
            Err(e) => {
                return connector_failed(ctx, request.id, &pinned.name, &input, e)
                    .await
                    .map(|()| StepsOutcome::Completed);
            }
        };
        if prepared.creates() {
            ctx.store
                .record_provision_intent(
                    request.id,
                    pin.id,
                    &pinned.name,
                    &pinned.connector,
                    pinned.connector_version,
                    &intent.username,
                    &intent_json,
                )
                .await?;
        }
        let applied = match prepared.apply().await {
            Ok(a) => a,
            Err(e) => {
                return connector_failed(ctx, request.id, &pinned.name, &input, e)
                    .await
                    .map(|()| StepsOutcome::Completed);
            }
        };
        let output = serde_json::json!({
            "outcome": applied.outcome,
            "connector": pinned.connector,
            "connector_version": pinned.connector_version,
            "account": intent.username,
            "change": applied.plan.change,
            "statements": applied.plan.statements,
            "current": applied.plan.current,
            "desired": applied.plan.desired,
            "read_back": applied.read_back,
            "grants_read_back": applied.grants_read_back,
            "state": applied.state,
        });
        ctx.store
            .record_provision_applied(
                actor,
                &AppliedStep {
                    request_id: request.id,
                    job_id: Some(ctx.job.id),
                    pin_id: pin.id,
                    step: &pinned.name,
                    connector: &pinned.connector,
                    connector_version: pinned.connector_version,
                    target_key: &intent.username,
                    intent: &intent_json,
                    input: &input,
                    output: &output,
                },
            )
            .await?;
        info!(request_id = request.id, step = %pinned.name, outcome = %applied.outcome, "step applied");
    }
    Ok(StepsOutcome::Completed)
}

async fn connector_failed(
    ctx: &JobContext,
    request_id: i64,
    name: &str,
    input: &serde_json::Value,
    e: ConnectorError,
) -> Result<(), JobError> {
    let transient = e.is_transient();
    failed_step(
        ctx,
        request_id,
        name,
        input,
        format!("step {name}: {e}"),
        transient,
    )
    .await
}
