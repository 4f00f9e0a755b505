//! What a notification says and to whom: the recipients of each event (approvers, the
//! requester, the new person, the request's admins), their addresses, and the template values
//! (the request's fields, the approval chain and the pinned plan).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::authz::{Grant, Role, Scope, Target};
use crate::domain::config::is_address;
use crate::domain::dry_run::{DryRunStage, SampleRequest};
use crate::domain::mail_summary::{OpenedStage, chain_text, plan_text};
use crate::domain::workflow::Workflow;
use crate::engine::approvers;
use crate::engine::handler::{JobContext, JobError};
use crate::engine::provision::PinnedStep;
use crate::store::api::*;

/// Who gets the mail (names as the workflow knows them) and the event's extra values.
/// The admins who look after `request`: unscoped admins and admins scoped to its team or
/// workflow (the `failed` notice goes to them).
pub(super) fn admins_of(request: &RequestRow, operators: &[OperatorRow]) -> Vec<String> {
    let target = Target {
        workflow: &request.workflow,
        team: request.payload.get("team").and_then(|v| v.as_str()),
    };
    operators
        .iter()
        .filter(|o| Role::parse(&o.role) == Some(Role::Admin))
        .filter(|o| {
            // A scope the rules cannot read reaches nothing (never "unscoped").
            let scopes: Option<Vec<Scope>> =
                o.scopes.iter().map(|s| Scope::parse(s).ok()).collect();
            scopes.is_some_and(|scopes| {
                Grant {
                    role: Role::Admin,
                    scopes,
                }
                .reaches(&target)
            })
        })
        .map(|o| o.name.clone())
        .collect()
}

pub(super) fn audience(
    event: &str,
    ctx: &JobContext,
    detail: &RequestDetail,
) -> (Vec<String>, BTreeMap<String, String>) {
    let payload = &ctx.job.payload;
    let request = &detail.request;
    let stage_index = payload.get("stage").and_then(|v| v.as_u64());
    let approval = detail
        .approvals
        .iter()
        .find(|a| Some(u64::from(a.stage)) == stage_index);
    let mut extra = BTreeMap::new();
    if let Some(approval) = approval {
        extra.insert("stage".to_string(), approval.stage_name.clone());
    }
    let undecided = |a: &ApprovalRow| -> Vec<String> {
        a.approvers
            .iter()
            .filter(|p| !a.decisions.iter().any(|d| &d.approver == *p))
            .cloned()
            .collect()
    };
    let people = match event {
        "approval_request" | "escalation" => approval.map(undecided).unwrap_or_default(),
        "reminder" => payload
            .get("waiting")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_else(|| approval.map(undecided).unwrap_or_default()),
        "welcome" => request.subject_email.iter().cloned().collect(),
        "grace_warning" => payload
            .get("to")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_default(),
        "cancelled" => {
            let mut people = vec![request.requester.clone()];
            for who in payload
                .get("approvers")
                .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
                .unwrap_or_default()
            {
                if !people.contains(&who) {
                    people.push(who);
                }
            }
            people
        }
        _ => vec![request.requester.clone()],
    };
    match event {
        "rejected" => {
            let approver = payload
                .get("approver")
                .and_then(|v| v.as_str())
                .unwrap_or("the stage's expiry timer");
            extra.insert("approver".into(), approver.to_string());
            let reason = payload
                .get("reason")
                .and_then(|v| v.as_str())
                .filter(|r| !r.trim().is_empty())
                .unwrap_or("(no reason given)");
            extra.insert("reason".into(), reason.to_string());
        }
        "approval_request" | "reminder" | "escalation" => {
            extra.insert("approver".into(), people.join(", "));
        }
        "grace_warning" => {
            let at = payload.get("revoke_at").and_then(|v| v.as_str());
            extra.insert("revoke_at".into(), at.unwrap_or("(unknown)").to_string());
        }
        "failed" => {
            let error = payload
                .get("error")
                .and_then(|v| v.as_str())
                .filter(|e| !e.trim().is_empty())
                .unwrap_or("(no reason recorded)");
            extra.insert("error".into(), error.to_string());
        }
        "cancelled" => {
            let text = |field: &str| {
                payload
                    .get(field)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.trim().is_empty())
                    .map(str::to_string)
            };
            extra.insert(
                "cancelled_by".into(),
                text("cancelled_by").unwrap_or_else(|| "an operator".into()),
            );
            if let Some(reason) = text("reason") {
                extra.insert("reason".into(), reason);
            }
        }
        _ => {}
    }
    (people, extra)
}

/// `chain` and `plan` for approval mail, from the plan pinned when the chain opened (none
/// before a request is pinned: the template's `{% if chain %}` leaves them out).
pub(super) async fn chain_and_plan(
    ctx: &JobContext,
    detail: &RequestDetail,
) -> Result<BTreeMap<String, String>, JobError> {
    let mut values = BTreeMap::new();
    let Some(pin) = ctx.store.active_pin(detail.request.id).await? else {
        return Ok(values);
    };
    let preview: Vec<DryRunStage> = pin
        .plan
        .get("chain")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let opened: Vec<OpenedStage> = detail
        .approvals
        .iter()
        .filter(|a| a.status != "superseded")
        .map(|a| OpenedStage {
            stage: a.stage,
            status: a.status.clone(),
            approvers: a.approvers.clone(),
            decided: a.decisions.iter().map(|d| d.approver.clone()).collect(),
        })
        .collect();
    let chain = chain_text(&preview, &opened);
    if !chain.is_empty() {
        values.insert("chain".to_string(), chain);
    }
    let steps: Vec<PinnedStep> = pin
        .plan
        .get("steps")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let plan = plan_text(steps.iter().map(|s| {
        (
            s.name.as_str(),
            s.connector.as_str(),
            s.action.name(),
            s.params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        )
    }));
    let mut plan = plan;
    if let Some(grace) = pin.plan.pointer("/grace/shown").and_then(|v| v.as_str()) {
        plan.push_str(&format!("\ngrace period: {grace}"));
    }
    if !plan.is_empty() {
        values.insert("plan".to_string(), plan);
    }
    Ok(values)
}

/// An address for `who`: itself when it is one, else the operator's e-mail, else the
/// directory's.
pub(crate) async fn address_of(
    who: &str,
    operators: &[OperatorRow],
    dirs: &[Arc<crate::directory::DirectoryClient>],
) -> Result<String, String> {
    if is_address(who) {
        return Ok(who.to_string());
    }
    if let Some(email) = operators
        .iter()
        .find(|o| o.name == who)
        .and_then(|o| o.email.clone())
        .filter(|e| is_address(e))
    {
        return Ok(email);
    }
    match approvers::find_person(dirs, who).await {
        Ok(Some((_, person))) => person
            .email
            .filter(|e| is_address(e))
            .ok_or_else(|| format!("{who}: the directory has no e-mail address")),
        Ok(None) => Err(format!(
            "{who}: no e-mail address (no operators.email, not in a directory)"
        )),
        Err(e) => Err(format!("{who}: directory lookup failed: {e}")),
    }
}

pub(super) fn values_of(
    request: &RequestRow,
    workflow: &Workflow,
    extra: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let fields = request
        .payload
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                    serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let sample = SampleRequest {
        subject_name: request.subject_name.clone(),
        subject_email: request.subject_email.clone(),
        username: request.username.clone(),
        requester: request.requester.clone(),
        fields,
        ..SampleRequest::default()
    };
    let mut values = sample.placeholder_values(workflow);
    values.insert("kind".into(), request.kind.clone());
    values.insert("request_id".into(), request.id.to_string());
    values.extend(extra);
    values
}
