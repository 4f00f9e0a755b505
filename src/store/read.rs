//! `ReadApi` for [`Store`]: short reads on the read pool, keyset pagination by id.

use std::collections::HashMap;

use serde_json::json;

use crate::store::Store;
use crate::store::api::{
    ApprovalRow, AuditFilter, AuditRow, AuditVerdict, ConfigVersion, JobFilter, JobRow, LogFilter,
    LogRow, OperatorKeyRow, OperatorRow, Overview, Page, QueueStats, ReadApi, RequestDetail,
    RequestFilter, RequestRow, StoreResult, TimelineEntry, WorkerRow,
};
use crate::store::authz::{audit_in_scope, in_scope, row_in_scope};
use crate::store::db::args;
use crate::store::error::StoreError;
use crate::store::rows::{
    DbApproval, DbAudit, DbConfig, DbDecision, DbJob, DbLog, DbRequest, DbWorker, jobs_into_api,
    level_no, like_pattern, now_ms, parse_opt_json,
};

/// (id, job_id, name, input, output, error, at) of a request step.
type StepRow = (
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// Largest page any list answers.
const MAX_PAGE: u32 = 1000;
/// Heartbeats older than this make a worker stale.
const ALIVE_WINDOW_MS: i64 = 30_000;

fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// Cut a fetched `limit + 1` rows to a page and compute the next cursor.
fn to_page<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(&id) } else { None };
    Page { rows, next }
}

fn per_minute(rows: Vec<(i64, i64)>) -> Vec<u64> {
    let mut out = vec![0u64; 60];
    for (bucket, n) in rows {
        // A row finished in the very last millisecond lands in bucket 60: count it as the
        // current minute.
        if let Ok(b) = usize::try_from(bucket) {
            out[b.min(59)] += u64::try_from(n).unwrap_or(0);
        }
    }
    out
}

impl Store {
    async fn decisions_for(
        &self,
        ids: &[i64],
    ) -> StoreResult<HashMap<i64, Vec<crate::store::api::DecisionRow>>> {
        let mut map: HashMap<i64, Vec<_>> = HashMap::new();
        if ids.is_empty() {
            return Ok(map);
        }
        let rows: Vec<DbDecision> = self
            .read_all(
                self.pick(
                    "SELECT approval_id, approver, decision, reason, overridden, decided_at, decided_by, source, carried_from FROM approval_decisions WHERE approval_id IN (SELECT value FROM json_each($1)) ORDER BY id",
                    "SELECT approval_id, approver, decision, reason, overridden, decided_at, decided_by, source, carried_from FROM approval_decisions WHERE approval_id = ANY($1) ORDER BY id",
                ),
                args![ids],
            )
            .await?;
        for d in rows {
            let id = d.approval_id;
            map.entry(id).or_default().push(d.into_api()?);
        }
        Ok(map)
    }

    async fn approvals_with_decisions(
        &self,
        rows: Vec<DbApproval>,
    ) -> StoreResult<Vec<ApprovalRow>> {
        let ids: Vec<i64> = rows.iter().map(|a| a.id).collect();
        let mut decisions = self.decisions_for(&ids).await?;
        rows.into_iter()
            .map(|a| {
                let d = decisions.remove(&a.id).unwrap_or_default();
                a.into_api(d)
            })
            .collect()
    }
}

impl ReadApi for Store {
    async fn overview(&self) -> StoreResult<Overview> {
        let now = now_ms();
        let hour_ago = now - 60 * 60_000;
        let by_state: Vec<(String, i64)> = self
            .read_all(
                concat!(
                    "SELECT state, COUNT(*) FROM requests r WHERE ",
                    in_scope!("$1"),
                    " GROUP BY state ORDER BY state"
                ),
                args![self.viewer()],
            )
            .await?;
        let by_workflow: Vec<(String, String, i64)> = self
            .read_all(
                concat!(
                    "SELECT workflow, state, COUNT(*) FROM requests r WHERE ",
                    in_scope!("$1"),
                    " GROUP BY workflow, state ORDER BY workflow, state"
                ),
                args![self.viewer()],
            )
            .await?;
        let completed: Vec<(i64, i64)> = self
            .read_all(
                "SELECT b, COUNT(*) FROM (SELECT (finished_at - $1) / 60000 AS b FROM jobs WHERE state = 'completed' AND finished_at >= $1) t GROUP BY b",
                args![hour_ago],
            )
            .await?;
        let failed: Vec<(i64, i64)> = self
            .read_all(
                "SELECT b, COUNT(*) FROM (SELECT (failed_at - $1) / 60000 AS b FROM jobs WHERE failed_at >= $1) t GROUP BY b",
                args![hour_ago],
            )
            .await?;
        let oldest: Option<(i64, i64, i64)> = self
            .read_opt(
                concat!(
                    "SELECT a.id, a.request_id, a.created_at FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.status = 'pending' AND ",
                    in_scope!("$1"),
                    " ORDER BY a.id LIMIT 1"
                ),
                args![self.viewer()],
            )
            .await?;
        let (pending,): (i64,) = self
            .read_one(
                concat!(
                    "SELECT COUNT(*) FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.status = 'pending' AND ",
                    in_scope!("$1")
                ),
                args![self.viewer()],
            )
            .await?;
        let (alive, stale): (i64, i64) = self
            .read_one(
                "SELECT COUNT(*) FILTER (WHERE heartbeat_at >= $1), COUNT(*) FILTER (WHERE heartbeat_at < $1) FROM workers WHERE status <> 'stopped'",
                args![now - ALIVE_WINDOW_MS],
            )
            .await?;
        let completed_per_minute = per_minute(completed);
        let failed_per_minute = per_minute(failed);
        let done: u64 = completed_per_minute.iter().sum();
        let fails: u64 = failed_per_minute.iter().sum();
        let failure_rate = if done + fails == 0 {
            0.0
        } else {
            fails as f64 / (done + fails) as f64
        };
        Ok(Overview {
            requests_by_state: by_state,
            requests_by_workflow: by_workflow,
            queues: self.queue_stats().await?,
            completed_per_minute,
            failed_per_minute,
            oldest_pending_approval: oldest,
            pending_approvals: pending,
            workers_alive: alive,
            workers_stale: stale,
            failure_rate,
            read_at: now,
        })
    }

    async fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<RequestRow>> {
        let limit = page_limit(limit);
        let rows: Vec<DbRequest> = self
            .read_all(
                concat!(
                    "SELECT id, workflow, kind, subject_name, subject_email, username, state, stage, requester, source, payload, last_error, version, created_at, updated_at FROM requests r \
                     WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR workflow = $2) \
                       AND ($3 IS NULL OR LOWER(subject_name) LIKE $3 ESCAPE '\\' OR LOWER(COALESCE(subject_email, '')) LIKE $3 ESCAPE '\\' \
                            OR LOWER(COALESCE(username, '')) LIKE $3 ESCAPE '\\' OR LOWER(requester) LIKE $3 ESCAPE '\\') \
                       AND ($4 IS NULL OR id < $4) AND ",
                    in_scope!("$6"),
                    " ORDER BY id DESC LIMIT $5"
                ),
                args![
                    filter.state.clone(),
                    filter.workflow.clone(),
                    filter.text.as_deref().map(like_pattern),
                    after,
                    limit + 1,
                    self.viewer()
                ],
            )
            .await?;
        let rows = rows
            .into_iter()
            .map(DbRequest::into_api)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(to_page(rows, limit, |r| r.id))
    }

    async fn request_detail(&self, id: i64) -> StoreResult<RequestDetail> {
        let request = self.request(id).await?;
        let approvals: Vec<DbApproval> = self
            .read_all(
                "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
                 FROM approvals a JOIN requests r ON r.id = a.request_id WHERE a.request_id = $1 ORDER BY a.stage",
                args![id],
            )
            .await?;
        let approvals = self.approvals_with_decisions(approvals).await?;
        let jobs: Vec<DbJob> = self
            .read_all(
                "SELECT id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, lease_owner, lease_expires_at, last_error, request_id, created_at, started_at, finished_at \
                 FROM jobs WHERE request_id = $1 ORDER BY id DESC LIMIT 200",
                args![id],
            )
            .await?;
        let jobs = jobs_into_api(jobs)?;

        let mut timeline = Vec::new();
        let steps: Vec<StepRow> = self
            .read_all(
                "SELECT id, job_id, name, input, output, error, at FROM request_steps WHERE request_id = $1 ORDER BY id",
                args![id],
            )
            .await?;
        for (step_id, job_id, name, input, output, error, at) in steps {
            let summary = match &error {
                Some(e) => format!("{name} failed: {e}"),
                None => format!("{name} done"),
            };
            timeline.push(TimelineEntry {
                at,
                kind: "step".into(),
                summary,
                detail: json!({
                    "step_id": step_id, "job_id": job_id, "name": name,
                    "input": parse_opt_json(input, "step input")?,
                    "output": parse_opt_json(output, "step output")?,
                    "error": error,
                }),
            });
        }
        for a in &approvals {
            for d in &a.decisions {
                timeline.push(TimelineEntry {
                    at: d.decided_at,
                    kind: "approval".into(),
                    summary: format!(
                        "{} {} stage {}{}{}{}{}",
                        d.approver,
                        match d.decision {
                            crate::store::api::Decision::Approve => "approved",
                            crate::store::api::Decision::Reject => "rejected",
                        },
                        a.stage_name,
                        d.carried_note(),
                        if d.overridden {
                            " (admin override)"
                        } else {
                            ""
                        },
                        d.source
                            .as_deref()
                            .filter(|source| source.starts_with("mail:"))
                            .map(|source| format!(" by reply ({source})"))
                            .unwrap_or_default(),
                        d.reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ),
                    detail: serde_json::to_value(d)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                });
            }
        }
        let approval_ids: Vec<String> = approvals.iter().map(|a| a.id.to_string()).collect();
        // The request's own rows, its approvals', and its jobs' (an operator's retry of one).
        let job_ids: Vec<String> = jobs.iter().map(|j| j.id.to_string()).collect();
        let audit: Vec<DbAudit> = self
            .read_all(
                self.pick(
                    "SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash FROM audit \
                     WHERE (entity = 'request' AND entity_id = $1) OR (entity = 'approval' AND entity_id IN (SELECT value FROM json_each($2))) \
                        OR (entity = 'job' AND entity_id IN (SELECT value FROM json_each($3))) ORDER BY id",
                    "SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash FROM audit \
                     WHERE (entity = 'request' AND entity_id = $1) OR (entity = 'approval' AND entity_id = ANY($2)) \
                        OR (entity = 'job' AND entity_id = ANY($3)) ORDER BY id",
                ),
                vec![
                    id.to_string().into(),
                    crate::store::db::Val::TextList(approval_ids),
                    crate::store::db::Val::TextList(job_ids),
                ],
            )
            .await?;
        for row in audit {
            let row = row.into_api()?;
            let kind = if row.action == "request.transition" {
                "state"
            } else {
                "audit"
            };
            let summary = match row
                .after
                .as_ref()
                .and_then(|a| a.get("state"))
                .and_then(|s| s.as_str())
            {
                Some(state) if row.entity == "request" => {
                    format!("{} by {} → {state}", row.action, row.actor)
                }
                _ => format!("{} by {}", row.action, row.actor),
            };
            timeline.push(TimelineEntry {
                at: row.at,
                kind: kind.into(),
                summary,
                detail: serde_json::to_value(&row)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            });
        }
        let logs = self
            .last_log(
                &LogFilter {
                    request_id: Some(id),
                    ..LogFilter::default()
                },
                200,
            )
            .await?;
        for l in logs {
            timeline.push(TimelineEntry {
                at: l.at,
                kind: "log".into(),
                summary: format!("{} {}", l.level, l.message),
                detail: serde_json::to_value(&l).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            });
        }
        timeline.sort_by_key(|e| e.at);
        let intake = self.intake_for_request(id).await?.map(Box::new);
        Ok(RequestDetail {
            request,
            approvals,
            jobs,
            timeline,
            intake,
        })
    }

    async fn pending_approvals(
        &self,
        operator: &str,
        text: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<ApprovalRow>> {
        let limit = page_limit(limit);
        let is_admin = self.operator_role(operator).await?.as_deref() == Some("admin");
        // Stages of the people this operator may act for (active delegation chains) are theirs
        // to decide too.
        let principals: Vec<String> = self.acting_for_whom(operator).await?;
        macro_rules! inbox_sql {
            ($member:literal) => {
                concat!(
                    "SELECT a.id, a.request_id, a.stage, a.stage_name, a.policy, a.approvers, a.status, a.version, a.created_at, a.escalate_at, a.updated_by, a.updated_at, r.subject_name, r.workflow, r.requester \
                     FROM approvals a JOIN requests r ON r.id = a.request_id \
                     WHERE a.status = 'pending' \
                       AND ($1 = 1 OR EXISTS (SELECT 1 FROM approval_approvers x WHERE x.approval_id = a.id AND (x.approver = $2 OR ",
                    $member,
                    "))) \
                       AND NOT EXISTS (SELECT 1 FROM approval_decisions d WHERE d.approval_id = a.id AND (d.approver = $2 OR d.decided_by = $2) AND d.overridden = 0) \
                       AND ($3 IS NULL OR LOWER(r.subject_name) LIKE $3 ESCAPE '\\' OR LOWER(r.workflow) LIKE $3 ESCAPE '\\' \
                            OR LOWER(r.requester) LIKE $3 ESCAPE '\\' OR LOWER(a.stage_name) LIKE $3 ESCAPE '\\') \
                       AND ($4 IS NULL OR a.id > $4) AND ",
                    in_scope!("$6"),
                    " ORDER BY a.id LIMIT $5"
                )
            };
        }
        let rows: Vec<DbApproval> = self
            .read_all(
                self.pick(
                    inbox_sql!("x.approver IN (SELECT value FROM json_each($7))"),
                    inbox_sql!("x.approver = ANY($7)"),
                ),
                args![
                    is_admin,
                    operator,
                    text.map(like_pattern),
                    after,
                    limit + 1,
                    // The inbox is always the operator's own: their scopes apply even on an
                    // engine handle.
                    Some(operator.to_string()),
                    principals.as_slice()
                ],
            )
            .await?;
        let page = to_page(rows, limit, |a| a.id);
        Ok(Page {
            rows: self.approvals_with_decisions(page.rows).await?,
            next: page.next,
        })
    }

    /// Dead jobs count until a later job of the same kind for the same request replaces them
    /// (a retried request): the counter says what still needs someone, not what once died.
    async fn queue_stats(&self) -> StoreResult<Vec<QueueStats>> {
        let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = self
            .read_all(
                "SELECT queue, \
                   COUNT(*) FILTER (WHERE state = 'available' AND run_at <= $1), \
                   COUNT(*) FILTER (WHERE state = 'available' AND run_at > $1), \
                   COUNT(*) FILTER (WHERE state = 'running'), \
                   COUNT(*) FILTER (WHERE state = 'retrying'), \
                   COUNT(*) FILTER (WHERE state = 'dead' AND NOT EXISTS ( \
                     SELECT 1 FROM jobs later WHERE later.request_id = jobs.request_id \
                       AND later.kind = jobs.kind AND later.id > jobs.id)), \
                   COUNT(*) FILTER (WHERE state = 'completed') \
                 FROM jobs GROUP BY queue ORDER BY queue",
                args![now_ms()],
            )
            .await?;
        let paused: Vec<(String, i64)> = self
            .read_all("SELECT name, paused FROM queues ORDER BY name", vec![])
            .await?;
        let paused: HashMap<String, bool> = paused.into_iter().map(|(n, p)| (n, p != 0)).collect();
        let mut out: Vec<QueueStats> = rows
            .into_iter()
            .map(
                |(queue, ready, scheduled, running, retrying, dead, completed)| QueueStats {
                    paused: paused.get(&queue).copied().unwrap_or(false),
                    queue,
                    ready,
                    scheduled,
                    running,
                    retrying,
                    dead,
                    completed,
                },
            )
            .collect();
        for (name, p) in paused {
            if !out.iter().any(|q| q.queue == name) {
                out.push(QueueStats {
                    queue: name,
                    paused: p,
                    ..QueueStats::default()
                });
            }
        }
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(out)
    }

    async fn list_jobs(
        &self,
        filter: &JobFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<JobRow>> {
        let limit = page_limit(limit);
        let rows: Vec<DbJob> = self
            .read_all(
                concat!(
                    "SELECT id, queue, kind, payload, priority, state, attempts, max_attempts, run_at, unique_key, lease_owner, lease_expires_at, last_error, request_id, created_at, started_at, finished_at FROM jobs \
                     WHERE ($1 IS NULL OR queue = $1) AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR request_id = $3) AND ($4 IS NULL OR id < $4) AND ",
                    row_in_scope!("$6", "jobs.request_id"),
                    " ORDER BY id DESC LIMIT $5"
                ),
                args![
                    filter.queue.clone(),
                    filter.state.map(|s| s.name()),
                    filter.request_id,
                    after,
                    limit + 1,
                    self.viewer()
                ],
            )
            .await?;
        Ok(to_page(jobs_into_api(rows)?, limit, |j| j.id))
    }

    async fn tail_log(
        &self,
        after_id: i64,
        filter: &LogFilter,
        limit: u32,
    ) -> StoreResult<Vec<LogRow>> {
        let rows: Vec<DbLog> = self
            .read_all(
                concat!(
                    "SELECT id, at, level, target, message, request_id, job_id, worker FROM logs \
                     WHERE id > $1 AND ($2 IS NULL OR level_no <= $2) AND ($3 IS NULL OR request_id = $3) \
                       AND ($4 IS NULL OR worker = $4) AND ($5 IS NULL OR LOWER(message) LIKE $5 ESCAPE '\\') AND ",
                    row_in_scope!("$7", "logs.request_id"),
                    " ORDER BY id LIMIT $6"
                ),
                args![
                    after_id,
                    filter.min_level.as_deref().map(level_no),
                    filter.request_id,
                    filter.worker.clone(),
                    filter.text.as_deref().map(like_pattern),
                    page_limit(limit),
                    self.viewer()
                ],
            )
            .await?;
        Ok(rows.into_iter().map(LogRow::from).collect())
    }

    async fn last_log(&self, filter: &LogFilter, limit: u32) -> StoreResult<Vec<LogRow>> {
        let rows: Vec<DbLog> = self
            .read_all(
                concat!(
                    "SELECT id, at, level, target, message, request_id, job_id, worker FROM logs \
                     WHERE ($1 IS NULL OR level_no <= $1) AND ($2 IS NULL OR request_id = $2) \
                       AND ($3 IS NULL OR worker = $3) AND ($4 IS NULL OR LOWER(message) LIKE $4 ESCAPE '\\') AND ",
                    row_in_scope!("$6", "logs.request_id"),
                    " ORDER BY id DESC LIMIT $5"
                ),
                args![
                    filter.min_level.as_deref().map(level_no),
                    filter.request_id,
                    filter.worker.clone(),
                    filter.text.as_deref().map(like_pattern),
                    page_limit(limit),
                    self.viewer()
                ],
            )
            .await?;
        let mut rows: Vec<LogRow> = rows.into_iter().map(LogRow::from).collect();
        rows.reverse();
        Ok(rows)
    }

    async fn workers(&self) -> StoreResult<Vec<WorkerRow>> {
        let rows: Vec<DbWorker> = self
            .read_all(
                "SELECT id, host, pid, started_at, heartbeat_at, current_job, processed, failed, concurrency, status FROM workers ORDER BY started_at DESC, id",
                vec![],
            )
            .await?;
        Ok(rows.into_iter().map(WorkerRow::from).collect())
    }

    async fn config_heads(&self) -> StoreResult<Vec<ConfigVersion>> {
        let rows: Vec<DbConfig> = self
            .read_all(
                "SELECT name, kind, version, body, author, comment, created_at FROM configs c \
                 WHERE version = (SELECT MAX(version) FROM configs x WHERE x.name = c.name) ORDER BY name",
                vec![],
            )
            .await?;
        Ok(rows.into_iter().map(ConfigVersion::from).collect())
    }

    async fn config_versions(&self, name: &str) -> StoreResult<Vec<ConfigVersion>> {
        let rows: Vec<DbConfig> = self
            .read_all(
                "SELECT name, kind, version, body, author, comment, created_at FROM configs WHERE name = $1 ORDER BY version DESC",
                args![name],
            )
            .await?;
        Ok(rows.into_iter().map(ConfigVersion::from).collect())
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<AuditRow>> {
        let limit = page_limit(limit);
        let rows: Vec<DbAudit> = self
            .read_all(
                concat!(
                    "SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash FROM audit \
                     WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR entity = $2) AND ($3 IS NULL OR entity_id = $3) \
                       AND ($4 IS NULL OR LOWER(action) LIKE $4 ESCAPE '\\') AND ($5 IS NULL OR id < $5) AND ",
                    audit_in_scope!("$7"),
                    " ORDER BY id DESC LIMIT $6"
                ),
                args![
                    filter.actor.clone(),
                    filter.entity.clone(),
                    filter.entity_id.clone(),
                    filter.action.as_deref().map(like_pattern),
                    after,
                    limit + 1,
                    self.viewer()
                ],
            )
            .await?;
        let rows = rows
            .into_iter()
            .map(DbAudit::into_api)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(to_page(rows, limit, |a| a.id))
    }

    async fn verify_audit(&self) -> StoreResult<AuditVerdict> {
        self.verify_audit_chain().await
    }

    async fn verify_audit_since(
        &self,
        from: Option<crate::domain::checkpoint::ChainHead>,
    ) -> StoreResult<(AuditVerdict, Option<crate::domain::checkpoint::ChainHead>)> {
        self.verify_audit_after(from.as_ref()).await
    }

    async fn mailbox_states(&self) -> StoreResult<Vec<crate::store::mailboxes::MailboxStateRow>> {
        self.mailbox_state_rows().await
    }

    async fn delegations(
        &self,
        now: Option<crate::store::api::Millis>,
    ) -> StoreResult<Vec<crate::store::delegation::DelegationRow>> {
        self.delegation_rows(now).await
    }

    async fn manual_tasks(&self, limit: i64) -> StoreResult<Vec<crate::store::steps::ManualTask>> {
        Store::manual_tasks(self, limit).await
    }

    async fn held_messages(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Page<crate::store::mailboxes::IntakeRecord>> {
        self.held_page(after, limit).await
    }

    async fn operators(&self) -> StoreResult<Vec<OperatorRow>> {
        let rows: Vec<(String, String, Option<String>)> = self
            .read_all(
                "SELECT name, role, email FROM operators ORDER BY name",
                vec![],
            )
            .await?;
        let scopes: Vec<(String, String, String)> = self
            .read_all(
                "SELECT operator, kind, value FROM operator_scopes ORDER BY operator, kind, value",
                vec![],
            )
            .await?;
        let mut by_operator: HashMap<String, Vec<String>> = HashMap::new();
        for (operator, kind, value) in scopes {
            by_operator
                .entry(operator)
                .or_default()
                .push(format!("{kind}:{value}"));
        }
        Ok(rows
            .into_iter()
            .map(|(name, role, email)| OperatorRow {
                scopes: by_operator.remove(&name).unwrap_or_default(),
                name,
                role,
                email,
            })
            .collect())
    }

    async fn operator_keys(&self) -> StoreResult<Vec<OperatorKeyRow>> {
        self.list_operator_keys().await
    }

    async fn operator_role(&self, name: &str) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = self
            .read_opt("SELECT role FROM operators WHERE name = $1", args![name])
            .await?;
        Ok(row.map(|(r,)| r))
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.change_receiver()
    }
}
