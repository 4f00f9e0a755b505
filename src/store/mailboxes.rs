//! Mailbox reading state: the reading lease (one reader per mailbox across every worker and
//! host), where reading stands and how it went, and the recorded messages as the console
//! reads them (a request's message and evidence, the quarantine list).
//!
//! The lease is taken by one conditional upsert — `INSERT … ON CONFLICT DO UPDATE … WHERE`
//! the lease is free, expired or already ours — which both SQLite and PostgreSQL apply
//! atomically, so two readers can never both win it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::intake::{Evidence, MailSummary};
use crate::store::Store;
use crate::store::api::{Millis, StoreResult};
use crate::store::db::args;
use crate::store::error::StoreError;
use crate::store::rows::{now_ms, parse_json};

/// Where reading a mailbox stands, as `:mailboxes` and `gatehouse mailbox list` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxStateRow {
    /// Mailbox document name.
    pub mailbox: String,
    /// UIDVALIDITY of the folder when last read.
    pub uidvalidity: Option<i64>,
    /// Highest UID recorded under that UIDVALIDITY.
    pub last_uid: i64,
    /// The reader holding the lease, if any.
    pub lease_owner: Option<String>,
    /// When that lease runs out.
    pub lease_until: Option<Millis>,
    /// True while the lease holder is connected to the server.
    pub connected: bool,
    /// Messages above `last_uid` when last counted.
    pub backlog: Option<i64>,
    /// Messages recorded so far.
    pub processed: i64,
    /// The last error met while reading (kept after recovery; see `last_error_at`).
    pub last_error: Option<String>,
    /// When that error happened.
    pub last_error_at: Option<Millis>,
    /// Last change.
    pub updated_at: Millis,
}

/// One recorded message with its summary and evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntakeRecord {
    /// Row id (the cursor of `held_messages`).
    pub id: i64,
    /// Mailbox document name.
    pub mailbox: String,
    /// UIDVALIDITY it was read under.
    pub uidvalidity: i64,
    /// Its UID.
    pub uid: i64,
    /// Its Message-ID, if it had one.
    pub message_id: Option<String>,
    /// `request`, `triage`, `ignored`, `quarantined`, `duplicate` or `invalid`.
    pub verdict: String,
    /// Why (triage, ignore, quarantine or refusal reason).
    pub reason: Option<String>,
    /// The request created from it, if any.
    pub request_id: Option<i64>,
    /// The message as read.
    pub summary: MailSummary,
    /// The evidence behind the verdict.
    pub evidence: Evidence,
    /// `done`, or `held` until an admin releases or discards it.
    pub status: String,
    /// Who released or discarded it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Millis>,
    /// Why.
    pub decision_reason: Option<String>,
    /// When it was recorded.
    pub received_at: Millis,
}

type DbState = (
    String,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    i64,
);

#[derive(sqlx::FromRow)]
pub(crate) struct DbRecord {
    id: i64,
    mailbox: String,
    uidvalidity: i64,
    uid: i64,
    message_id: Option<String>,
    verdict: String,
    reason: Option<String>,
    request_id: Option<i64>,
    summary: String,
    evidence: String,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    decision_reason: Option<String>,
    received_at: i64,
}

impl DbRecord {
    pub(crate) fn into_api(self) -> StoreResult<IntakeRecord> {
        let summary = serde_json::from_value(parse_json(&self.summary, "intake summary")?)
            .map_err(|e| StoreError::Corrupt(format!("intake summary: {e}")))?;
        let evidence = serde_json::from_value(parse_json(&self.evidence, "intake evidence")?)
            .map_err(|e| StoreError::Corrupt(format!("intake evidence: {e}")))?;
        Ok(IntakeRecord {
            id: self.id,
            mailbox: self.mailbox,
            uidvalidity: self.uidvalidity,
            uid: self.uid,
            message_id: self.message_id,
            verdict: self.verdict,
            reason: self.reason,
            request_id: self.request_id,
            summary,
            evidence,
            status: self.status,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            decision_reason: self.decision_reason,
            received_at: self.received_at,
        })
    }
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Store {
    /// Take the reading lease of `mailbox` for `owner` until `ttl` from now. True when
    /// `owner` holds it afterwards (it was free, expired, or already `owner`'s); false when
    /// another reader holds an unexpired lease. One conditional statement: race-free on both
    /// backends.
    pub async fn acquire_mailbox_lease(
        &self,
        mailbox: &str,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let rows: Vec<(String,)> = self
            .write_all(
                "INSERT INTO mailbox_state (mailbox, lease_owner, lease_until, connected, updated_at) VALUES ($1, $2, $3, 0, $4) \
                 ON CONFLICT (mailbox) DO UPDATE SET lease_owner = excluded.lease_owner, lease_until = excluded.lease_until, updated_at = excluded.updated_at \
                 WHERE mailbox_state.lease_owner IS NULL OR mailbox_state.lease_owner = excluded.lease_owner OR mailbox_state.lease_until < excluded.updated_at \
                 RETURNING mailbox",
                args![mailbox, owner, now.saturating_add(ttl_ms(ttl)), now],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Extend `owner`'s lease on `mailbox` to `ttl` from now. False when `owner` no longer
    /// holds it (another reader took it over after it expired).
    pub async fn renew_mailbox_lease(
        &self,
        mailbox: &str,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let n = self
            .write_exec(
                "UPDATE mailbox_state SET lease_until = $3, updated_at = $4 WHERE mailbox = $1 AND lease_owner = $2",
                args![mailbox, owner, now.saturating_add(ttl_ms(ttl)), now],
            )
            .await?;
        Ok(n == 1)
    }

    /// Give `owner`'s lease on `mailbox` back (and mark the mailbox disconnected). False when
    /// `owner` did not hold it.
    pub async fn release_mailbox_lease(&self, mailbox: &str, owner: &str) -> StoreResult<bool> {
        let n = self
            .write_exec(
                "UPDATE mailbox_state SET lease_owner = NULL, lease_until = NULL, connected = 0, updated_at = $3 WHERE mailbox = $1 AND lease_owner = $2",
                args![mailbox, owner, now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Record how reading goes, as the lease holder sees it: connected or not, the backlog
    /// when known, and an error when one happened (`None` keeps the last error, which
    /// `last_error_at` dates). Ignored (false) when `owner` does not hold the lease.
    pub async fn set_mailbox_status(
        &self,
        mailbox: &str,
        owner: &str,
        connected: bool,
        backlog: Option<i64>,
        error: Option<&str>,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let error: Option<String> = error.map(|e| e.chars().take(2000).collect());
        let n = self
            .write_exec(
                "UPDATE mailbox_state SET connected = $3, backlog = COALESCE($4, backlog), \
                 last_error = COALESCE($5, last_error), last_error_at = CASE WHEN $5 IS NULL THEN last_error_at ELSE $6 END, updated_at = $6 \
                 WHERE mailbox = $1 AND lease_owner = $2",
                args![mailbox, owner, connected, backlog, error, now],
            )
            .await?;
        Ok(n == 1)
    }

    /// Every mailbox's reading state, by name (the `ReadApi` method).
    pub(crate) async fn mailbox_state_rows(&self) -> StoreResult<Vec<MailboxStateRow>> {
        let rows: Vec<DbState> = self
            .read_all(
                "SELECT mailbox, uidvalidity, last_uid, lease_owner, lease_until, connected, backlog, processed, last_error, last_error_at, updated_at FROM mailbox_state ORDER BY mailbox",
                Vec::new(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| MailboxStateRow {
                mailbox: r.0,
                uidvalidity: r.1,
                last_uid: r.2,
                lease_owner: r.3,
                lease_until: r.4,
                connected: r.5 != 0,
                backlog: r.6,
                processed: r.7,
                last_error: r.8,
                last_error_at: r.9,
                updated_at: r.10,
            })
            .collect())
    }

    /// One mailbox's reading state, if it was ever read.
    pub async fn mailbox_state(&self, mailbox: &str) -> StoreResult<Option<MailboxStateRow>> {
        Ok(self
            .mailbox_state_rows()
            .await?
            .into_iter()
            .find(|s| s.mailbox == mailbox))
    }

    /// The recorded message a request was created from, with its summary and evidence.
    pub async fn intake_for_request(&self, request_id: i64) -> StoreResult<Option<IntakeRecord>> {
        let row: Option<DbRecord> = self
            .read_opt(
                "SELECT id, mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, decided_by, decided_at, decision_reason, received_at \
                 FROM intake_messages WHERE request_id = $1 ORDER BY id LIMIT 1",
                args![request_id],
            )
            .await?;
        row.map(DbRecord::into_api).transpose()
    }

    /// Recorded messages of one mailbox, oldest first, after the row id `after`.
    pub async fn intake_messages(
        &self,
        mailbox: &str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<IntakeRecord>> {
        let rows: Vec<DbRecord> = self
            .read_all(
                "SELECT id, mailbox, uidvalidity, uid, message_id, verdict, reason, request_id, summary, evidence, status, decided_by, decided_at, decision_reason, received_at \
                 FROM intake_messages WHERE mailbox = $1 AND id > $2 ORDER BY id LIMIT $3",
                args![mailbox, after.unwrap_or(0), i64::from(limit.clamp(1, 10_000))],
            )
            .await?;
        rows.into_iter().map(DbRecord::into_api).collect()
    }

    /// How many messages of `mailbox` were recorded, per verdict (by verdict name).
    pub async fn intake_counts(&self, mailbox: &str) -> StoreResult<Vec<(String, i64)>> {
        self.read_all(
            "SELECT verdict, COUNT(*) FROM intake_messages WHERE mailbox = $1 GROUP BY verdict ORDER BY verdict",
            args![mailbox],
        )
        .await
    }

    /// How many distinct (UIDVALIDITY, UID) pairs of `mailbox` were recorded.
    pub async fn intake_distinct_uids(&self, mailbox: &str) -> StoreResult<i64> {
        let (n,): (i64,) = self
            .read_one(
                "SELECT COUNT(*) FROM (SELECT DISTINCT uidvalidity, uid FROM intake_messages WHERE mailbox = $1) d",
                args![mailbox],
            )
            .await?;
        Ok(n)
    }
}
