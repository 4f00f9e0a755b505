//! `gatehouse dormant CONNECTOR --days N [--json] [--revoke --workflow W]`: the accounts of an
//! SQL target not seen for N days, and, with `--revoke`, a leaver request for each one that
//! goes through approval like any other change (nothing is revoked directly).

use std::process::ExitCode;

use clap::Args;

use super::{CliError, Context};
use crate::connectors::dormant::dormant;
use crate::domain::inert::inert;
use crate::engine::dormant::request_leavers;
use crate::engine::grace::fmt_utc;
use crate::store::Store;
use crate::store::api::Actor;

/// `dormant` arguments.
#[derive(Debug, Args)]
pub struct DormantArgs {
    /// Connector name (an SQL connector with `[sql.accounts] last_seen`).
    pub connector: String,
    /// Accounts not seen for at least this many days.
    #[arg(long)]
    pub days: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Create a leaver request in --workflow for each dormant account without an open one
    /// (each is validated, pinned and approved like any request).
    #[arg(long, requires = "workflow")]
    pub revoke: bool,
    /// The leaver workflow the --revoke requests go to.
    #[arg(long)]
    pub workflow: Option<String>,
}

/// Run `dormant`.
pub async fn run(store: &Store, actor: &Actor, args: DormantArgs) -> Result<ExitCode, CliError> {
    let name = args.connector.clone();
    let doc = store
        .config_head(&name)
        .await
        .context(|| format!("reading connector {name}"))?
        .ok_or_else(|| CliError::msg("dormant", format!("no connector named {name}")))?;
    let report = dormant(&doc, args.days, store.now())
        .await
        .map_err(|e| CliError::msg("dormant", e.to_string()))?;
    let created = match (&args.workflow, args.revoke) {
        (Some(workflow), true) => request_leavers(store, actor, workflow, &report)
            .await
            .context(|| format!("creating leaver requests in workflow {workflow}"))?,
        _ => Vec::new(),
    };
    if args.json {
        let out = serde_json::json!({ "report": report, "requests": created });
        println!("{}", crate::domain::inert::inert_json(&out.to_string()));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} account(s) of {} not seen for {} days (since {})",
        report.dormant.len(),
        inert(&report.connector),
        report.days,
        fmt_utc(report.cutoff)
    );
    for a in &report.dormant {
        println!(
            "  {:<24} last seen {}  ({} days)",
            inert(&a.username),
            fmt_utc(a.last_seen),
            a.idle_days
        );
    }
    if !report.never_seen.is_empty() {
        println!(
            "never seen (not counted): {}",
            inert(&report.never_seen.join(", "))
        );
    }
    for (user, raw) in &report.unreadable {
        println!(
            "unreadable last-seen value for {}: {}",
            inert(user),
            inert(raw)
        );
    }
    for c in &created {
        let account = c["account"].as_str().unwrap_or_default();
        let id = c["request_id"].as_i64().unwrap_or_default();
        let state = c["state"].as_str().unwrap_or_default();
        match c["created"].as_bool() {
            Some(true) => println!(
                "request {id} created for {} ({state}): revoked only once approved",
                inert(account)
            ),
            _ => println!(
                "request {id} for {} is already open ({state}): none added",
                inert(account)
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
