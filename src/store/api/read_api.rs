//! The read half of the store's contract: what the console and CLI show.

use std::future::Future;

use super::*;

/// What the console and CLI read. Every method is a short read; none blocks on a write lock.
pub trait ReadApi: Clone + Send + Sync + 'static {
    /// The overview dashboard.
    fn overview(&self) -> impl Future<Output = StoreResult<Overview>> + Send;
    /// Requests, newest first, `after` = id cursor from the previous page.
    fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Page<RequestRow>>> + Send;
    /// One request with approvals, jobs and its merged timeline.
    fn request_detail(&self, id: i64) -> impl Future<Output = StoreResult<RequestDetail>> + Send;
    /// Pending approvals this operator may decide (all of them for admins), oldest first.
    fn pending_approvals(
        &self,
        operator: &str,
        text: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Page<ApprovalRow>>> + Send;
    /// Per-queue counts.
    fn queue_stats(&self) -> impl Future<Output = StoreResult<Vec<QueueStats>>> + Send;
    /// Jobs, newest first.
    fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Page<JobRow>>> + Send;
    /// Log lines with id > `after_id`, oldest first, at most `limit`.
    fn tail_log(
        &self,
        after_id: i64,
        filter: &LogFilter,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<LogRow>>> + Send;
    /// The last `limit` log lines matching `filter`, oldest first (to fill a fresh tail).
    fn last_log(
        &self,
        filter: &LogFilter,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<LogRow>>> + Send;
    /// Registered workers.
    fn workers(&self) -> impl Future<Output = StoreResult<Vec<WorkerRow>>> + Send;
    /// The newest version of every config document.
    fn config_heads(&self) -> impl Future<Output = StoreResult<Vec<ConfigVersion>>> + Send;
    /// Every version of one document, newest first.
    fn config_versions(
        &self,
        name: &str,
    ) -> impl Future<Output = StoreResult<Vec<ConfigVersion>>> + Send;
    /// Audit rows, newest first.
    fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Page<AuditRow>>> + Send;
    /// Mail intake holds (quarantined), newest first, `after` = id cursor; scoped viewers
    /// see none (a held message belongs to no team yet).
    fn held_messages(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Page<crate::store::mailboxes::IntakeRecord>>> + Send;
    /// Manual provisioning steps waiting for a person, oldest first (the console's
    /// `:manual`); a store without step control has none.
    fn manual_tasks(
        &self,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<crate::store::steps::ManualTask>>> + Send {
        let _ = limit;
        async { Ok(Vec::new()) }
    }
    /// Delegations still in force at `now` (`None`: every delegation ever made), oldest first.
    fn delegations(
        &self,
        now: Option<Millis>,
    ) -> impl Future<Output = StoreResult<Vec<crate::store::delegation::DelegationRow>>> + Send;
    /// Every mailbox's reading state, by name.
    fn mailbox_states(
        &self,
    ) -> impl Future<Output = StoreResult<Vec<crate::store::mailboxes::MailboxStateRow>>> + Send;
    /// Recompute the whole hash chain.
    fn verify_audit(&self) -> impl Future<Output = StoreResult<AuditVerdict>> + Send;
    /// Verify only the rows after `from` (the head an earlier verification answered; `None`:
    /// the whole chain); answers the verdict and the new head (none when broken).
    fn verify_audit_since(
        &self,
        from: Option<crate::domain::checkpoint::ChainHead>,
    ) -> impl Future<
        Output = StoreResult<(AuditVerdict, Option<crate::domain::checkpoint::ChainHead>)>,
    > + Send;
    /// Operators and roles.
    fn operators(&self) -> impl Future<Output = StoreResult<Vec<OperatorRow>>> + Send;
    /// Every operator's SSH keys, by operator then fingerprint.
    fn operator_keys(&self) -> impl Future<Output = StoreResult<Vec<OperatorKeyRow>>> + Send;
    /// Role of one operator (`None` when unknown).
    fn operator_role(&self, name: &str)
    -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// A receiver whose value changes whenever another connection or process committed a
    /// change (LISTEN/NOTIFY on PostgreSQL, `PRAGMA data_version` on SQLite). The console
    /// refreshes on change instead of polling tables.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}
