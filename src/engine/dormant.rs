//! Dormant accounts to leaver requests: one request per account not seen for N days (none
//! when an open request for it exists), validated, pinned and approved like any other change;
//! from `gatehouse dormant --revoke` or the hourly `dormant.scan` job for the SQL connectors
//! with `[sql.accounts] revoke_after_days` and `revoke_workflow`.

use tracing::{info, warn};

use crate::connectors::dormant::{DormantReport, dormant};
use crate::domain::config::ConfigDocument;
use crate::engine::documents;
use crate::engine::grace::fmt_utc;
use crate::engine::handler::{JobContext, JobError};
use crate::store::Store;
use crate::store::api::{Actor, CommandApi, NewRequest, ReadApi, RequestFilter};
use crate::store::error::StoreError;

/// One leaver request per dormant account of `report` that has no open request in `workflow`
/// yet; answers per account the request made or found (`created`).
pub async fn request_leavers(
    store: &Store,
    actor: &Actor,
    workflow: &str,
    report: &DormantReport,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut out = Vec::new();
    for account in &report.dormant {
        let filter = RequestFilter {
            workflow: Some(workflow.to_string()),
            text: Some(account.username.clone()),
            ..RequestFilter::default()
        };
        let open = store
            .list_requests(&filter, None, 1000)
            .await?
            .rows
            .into_iter()
            .find(|r| {
                r.username.as_deref() == Some(account.username.as_str())
                    && !matches!(r.state.name(), "completed" | "rejected" | "cancelled")
            });
        if let Some(r) = open {
            out.push(serde_json::json!({
                "account": account.username, "request_id": r.id, "created": false,
                "state": r.state.to_string(),
            }));
            continue;
        }
        let row = store
            .create_request(
                actor,
                NewRequest {
                    workflow: workflow.to_string(),
                    kind: "leaver".into(),
                    subject_name: account.username.clone(),
                    subject_email: None,
                    username: Some(account.username.clone()),
                    requester: actor.user.clone(),
                    source: "cli".into(),
                    payload: serde_json::json!({
                        "dormant_connector": report.connector,
                        "last_seen": fmt_utc(account.last_seen),
                        "idle_days": account.idle_days,
                    }),
                },
            )
            .await?;
        out.push(serde_json::json!({
            "account": account.username, "request_id": row.id, "created": true,
            "state": row.state.to_string(),
        }));
    }
    Ok(out)
}

/// The periodic scan: for each SQL connector with a scheduled dormant-account run, a leaver
/// request per account not seen for `revoke_after_days` (a connector that cannot be read is
/// logged and skipped; the others still run).
pub async fn scan(ctx: JobContext) -> Result<(), JobError> {
    let actor = Actor::system("dormant", format!("worker:{}", ctx.worker_id));
    for head in ctx.store.config_heads().await? {
        if head.kind != "connector" {
            continue;
        }
        let Ok(ConfigDocument::Connector(connector)) = documents::check(&head.name, &head.body)
        else {
            continue;
        };
        let Some((days, workflow)) = connector
            .sql
            .as_ref()
            .and_then(|sql| sql.accounts.as_ref())
            .and_then(|a| Some((a.revoke_after_days?, a.revoke_workflow.clone()?)))
        else {
            continue;
        };
        let report = match dormant(&head, days, ctx.store.now()).await {
            Ok(report) => report,
            Err(e) => {
                warn!(connector = %head.name, error = %e, "dormant scan: connector skipped");
                continue;
            }
        };
        let made = request_leavers(&ctx.store, &actor, &workflow, &report).await?;
        let created = made.iter().filter(|m| m["created"] == true).count();
        info!(connector = %head.name, dormant = report.dormant.len(), created, "dormant scan");
    }
    Ok(())
}
