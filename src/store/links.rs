//! Account links for reconciliation: which target accounts Gatehouse provisioned or an operator
//! adopted (with the state expected of them), which are ignored on purpose, and the operators'
//! reconcile decisions (adopt, ignore, revoke) — each authorized and audited in the command's
//! own transaction; a revoke becomes a job the engine carries out.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::authz::Action;
use crate::store::Store;
use crate::store::api::{Actor, Millis, NewJob, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, require_system};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::queue::enqueue_one;
use crate::store::rows::now_ms;

/// One account link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkRow {
    /// Connector name.
    pub connector: String,
    /// Account key in the target.
    pub account: String,
    /// `linked`, `ignored`, `revoking` or `revoked`.
    pub status: String,
    /// `provisioned` (by a request) or `operator`.
    pub source: String,
    /// The state expected of the account (the connector model's account), when linked.
    pub expected: Value,
    /// Who decided (operators' decisions).
    pub decided_by: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Last change.
    pub updated_at: Millis,
}

type DbLink = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

fn link_from_db(row: DbLink) -> StoreResult<LinkRow> {
    Ok(LinkRow {
        connector: row.0,
        account: row.1,
        status: row.2,
        source: row.3,
        expected: serde_json::from_str(&row.4)
            .map_err(|e| StoreError::Corrupt(format!("account_links.expected: {e}")))?,
        decided_by: row.5,
        reason: row.6,
        updated_at: row.7,
    })
}

/// What an operator decided about one target account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileDecision {
    /// Link the account as it is now (an orphan becomes linked; drift becomes expected).
    Adopt,
    /// Leave it alone and stop reporting it.
    Ignore,
    /// Remove it from the target (the engine does, in a job).
    Revoke,
}

impl ReconcileDecision {
    /// As written in commands and audit rows.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adopt => "adopt",
            Self::Ignore => "ignore",
            Self::Revoke => "revoke",
        }
    }
}

/// Insert or replace a link in `tx`.
#[allow(clippy::too_many_arguments)] // one column each
pub(crate) async fn upsert_link_in_tx(
    tx: &mut Tx,
    connector: &str,
    account: &str,
    status: &str,
    source: &str,
    expected: &Value,
    decided_by: Option<&str>,
    reason: Option<&str>,
) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO account_links (connector, account, status, source, expected, decided_by, reason, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (connector, account) DO UPDATE SET status = excluded.status, source = excluded.source, \
         expected = excluded.expected, decided_by = excluded.decided_by, reason = excluded.reason, updated_at = excluded.updated_at",
        args![
            connector,
            account,
            status,
            source,
            expected.to_string(),
            &decided_by.map(str::to_string),
            &reason.map(str::to_string),
            now_ms()
        ],
    )
    .await?;
    Ok(())
}

/// After a provisioning step: the account's read-back state becomes what is expected of it
/// (`Null`: the account was deleted, the link goes).
pub(crate) async fn provisioned_in_tx(
    tx: &mut Tx,
    connector: &str,
    account: &str,
    state: &Value,
) -> StoreResult<()> {
    if state.is_null() {
        tx.exec(
            "DELETE FROM account_links WHERE connector = $1 AND account = $2",
            args![connector, account],
        )
        .await?;
        return Ok(());
    }
    upsert_link_in_tx(
        tx,
        connector,
        account,
        "linked",
        "provisioned",
        state,
        None,
        None,
    )
    .await
}

impl Store {
    /// Every link of `connector`.
    pub async fn account_links(&self, connector: &str) -> StoreResult<Vec<LinkRow>> {
        let rows: Vec<DbLink> = self
            .read_all(
                "SELECT connector, account, status, source, expected, decided_by, reason, updated_at FROM account_links WHERE connector = $1 ORDER BY account",
                args![connector],
            )
            .await?;
        rows.into_iter().map(link_from_db).collect()
    }

    /// An operator's reconcile decision on `account` of `connector`, with a justification.
    /// `state` is the account as the operator saw it (adopt makes it the expected state).
    /// Authorized (unscoped admins) and audited as `reconcile.<decision>`; a revoke enqueues
    /// the engine's `reconcile.revoke` job in the same transaction.
    pub async fn reconcile_decide(
        &self,
        actor: &Actor,
        connector: &str,
        account: &str,
        decision: ReconcileDecision,
        state: &Value,
        reason: &str,
    ) -> StoreResult<()> {
        self.check_writable()?;
        let entity_id = format!("{connector}/{account}");
        let action = format!("reconcile.{}", decision.name());
        let reason = reason.trim().to_string();
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::Reconcile, None).await?;
            if reason.is_empty() {
                return Err(StoreError::Invalid {
                    field: "reason".into(),
                    message: "a justification is required".into(),
                });
            }
            let before: Option<DbLink> = tx
                .opt(
                    "SELECT connector, account, status, source, expected, decided_by, reason, updated_at FROM account_links WHERE connector = $1 AND account = $2",
                    args![connector, account],
                )
                .await?;
            let status = match decision {
                ReconcileDecision::Adopt => "linked",
                ReconcileDecision::Ignore => "ignored",
                ReconcileDecision::Revoke => "revoking",
            };
            upsert_link_in_tx(
                &mut tx,
                connector,
                account,
                status,
                "operator",
                state,
                Some(&actor.user),
                Some(&reason),
            )
            .await?;
            if decision == ReconcileDecision::Revoke {
                enqueue_one(
                    &mut tx,
                    &NewJob {
                        queue: "provision".into(),
                        kind: "reconcile.revoke".into(),
                        payload: json!({ "connector": connector, "account": account }),
                        priority: 0,
                        run_at: now_ms(),
                        max_attempts: 5,
                        unique_key: Some(format!("reconcile.revoke:{entity_id}")),
                        request_id: None,
                    },
                )
                .await?;
            }
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: &action,
                    entity: "account",
                    entity_id: entity_id.clone(),
                    before: before.map(|b| json!({ "status": b.2, "expected": b.4 })),
                    after: Some(json!({ "status": status, "state": state, "reason": reason })),
                },
            );
            Ok(())
        });
        self.audit_refusal(actor, &action, "account", entity_id, result)
            .await?;
        self.signal_local(decision == ReconcileDecision::Revoke);
        Ok(())
    }

    /// The engine removed a revoked account: the link says so, with an audit row of what ran.
    pub async fn record_reconcile_revoked(
        &self,
        actor: &Actor,
        connector: &str,
        account: &str,
        written: &Value,
    ) -> StoreResult<()> {
        require_system(actor, "record a reconcile revoke")?;
        write_tx!(self, |tx| {
            tx.exec(
                "UPDATE account_links SET status = 'revoked', updated_at = $3 WHERE connector = $1 AND account = $2",
                args![connector, account, now_ms()],
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "reconcile.revoked",
                    entity: "account",
                    entity_id: format!("{connector}/{account}"),
                    before: None,
                    after: Some(json!({ "written": written })),
                },
            );
            Ok(())
        })?;
        self.signal_local(false);
        Ok(())
    }
}
