//! The command half of the store's contract: the intents the console and CLI send, each
//! authorized, applied and audited in its own transaction.

use std::future::Future;

use super::*;

/// The intents the console and CLI send. Each checks the actor's role and scopes in the
/// operators table inside its own transaction (see `crate::domain::authz` for the rules) and
/// appends an audit row in that transaction; a refused command (`StoreError::Forbidden`)
/// changes nothing and is audited as `<action>.refused`.
pub trait CommandApi: Clone + Send + Sync + 'static {
    /// Create a request (state `received`) and enqueue its `request.process` job (queue
    /// `default`, unique key `process:{id}`, payload `{"request_id"}`) in the same transaction.
    /// The workflow must be a saved `workflow` document (`Invalid { field: "workflow" }`).
    fn create_request(
        &self,
        actor: &Actor,
        request: NewRequest,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send;
    /// Decide an approval stage. `expected_version` is the version the operator saw; a moved
    /// version (or an already decided stage) answers `StoreError::Conflict` naming who changed
    /// it and when. A rejection needs a non-empty reason (`Invalid { field: "reason" }`). Only
    /// the stage's approvers may decide; an admin may decide for them (recorded as
    /// `overridden`, and the override decides the stage). When the stage is approved a
    /// `request.advance` job (queue `default`, unique key `advance:{request}:{stage}`, payload
    /// `{"request_id", "stage"}`) is enqueued; when rejected the request becomes `rejected` and
    /// a `notify.rejected` job (queue `notify`) is enqueued. One audit row per decision.
    fn decide_approval(
        &self,
        actor: &Actor,
        approval_id: i64,
        expected_version: i64,
        decision: Decision,
        reason: Option<String>,
    ) -> impl Future<Output = StoreResult<ApprovalRow>> + Send;
    /// Retry a failed request: it goes back to `scheduled` and its `request.provision` job
    /// (queue `provision`, unique key `provision:{id}:{new version}`) is enqueued again.
    fn retry_request(
        &self,
        actor: &Actor,
        request_id: i64,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send;
    /// Retry one dead or retrying job now.
    fn retry_job(
        &self,
        actor: &Actor,
        job_id: i64,
    ) -> impl Future<Output = StoreResult<JobRow>> + Send;
    /// Cancel a request that has not reached a terminal state; its waiting jobs are cancelled
    /// and its pending approval stages closed (`cancelled`).
    fn cancel_request(
        &self,
        actor: &Actor,
        request_id: i64,
        reason: Option<String>,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send;
    /// Save a new version of a config document; `expected_version` is the head the editor
    /// started from (0 for a new document). The body must already be validated by the caller.
    fn save_config(
        &self,
        actor: &Actor,
        kind: &str,
        name: &str,
        body: &str,
        comment: &str,
        expected_version: i64,
    ) -> impl Future<Output = StoreResult<ConfigVersion>> + Send;
    /// Pause or resume a queue.
    fn set_queue_paused(
        &self,
        actor: &Actor,
        queue: &str,
        paused: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Ask a worker to finish its current jobs and stop claiming.
    fn drain_worker(
        &self,
        actor: &Actor,
        worker_id: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Add an operator or replace their role (`viewer`, `approver`, `admin`), scopes and
    /// e-mail. Only unscoped admins may; the last unscoped admin cannot be demoted or scoped.
    fn set_operator(
        &self,
        actor: &Actor,
        operator: &OperatorRow,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Release a held message: it becomes a `needs_triage` request of its mailbox's workflow.
    /// Unscoped admins only, with a reason.
    fn release_message(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send;
    /// Discard a held message for good. Unscoped admins only, with a reason.
    fn discard_message(
        &self,
        actor: &Actor,
        id: i64,
        reason: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Take a `needs_triage` request out of triage with corrected fields, under the version
    /// the operator saw; the engine processes it again. Admins (within their scopes) only.
    fn resolve_triage(
        &self,
        actor: &Actor,
        request_id: i64,
        expected_version: i64,
        fix: crate::store::TriageFix,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send;
    /// Let `new.to` decide `new.from`'s approvals until `new.until`: allowed to `from`
    /// themselves (an approver or admin) and to unscoped admins; refused when it would loop,
    /// chain past the bound, or end in the past. Audited; refusals too (`gatehouse delegate`
    /// and the console's delegation form).
    fn add_delegation(
        &self,
        actor: &Actor,
        new: NewDelegation,
    ) -> impl Future<Output = StoreResult<crate::store::delegation::DelegationRow>> + Send;
    /// Retry the failed provisioning step `step` of a failed request (admins, within their
    /// scopes). Audited; refusals too. See `crate::store::steps`.
    fn retry_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send {
        let _ = (actor, request_id, step);
        async { Err(steps_unsupported()) }
    }
    /// Skip step `step` with a non-empty justification; provisioning continues past it.
    /// Audited; refusals too. See `crate::store::steps`.
    fn skip_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        justification: &str,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send {
        let _ = (actor, request_id, step, justification);
        async { Err(steps_unsupported()) }
    }
    /// Mark the waiting manual step `step` done (the engine verifies it by read-back where
    /// the step's connector can read). Audited; refusals too. See `crate::store::steps`.
    fn complete_manual_step(
        &self,
        actor: &Actor,
        request_id: i64,
        step: &str,
        note: Option<&str>,
    ) -> impl Future<Output = StoreResult<RequestRow>> + Send {
        let _ = (actor, request_id, step, note);
        async { Err(steps_unsupported()) }
    }
    /// End a delegation now (by its `from`, or an unscoped admin). Audited; refusals too.
    fn revoke_delegation(
        &self,
        actor: &Actor,
        id: i64,
    ) -> impl Future<Output = StoreResult<crate::store::delegation::DelegationRow>> + Send;
}

/// What a store without step control answers (the database-backed store has it).
fn steps_unsupported() -> StoreError {
    StoreError::Invalid {
        field: "store".into(),
        message: "this store does not control provisioning steps".into(),
    }
}
