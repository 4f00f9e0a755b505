//! `gatehouse reconcile CONNECTOR` (report, or an operator's adopt / ignore / revoke with a
//! justification) and `gatehouse role tree NAME` (a role's resolved bundle and where each
//! entitlement comes from).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Context};
use crate::connectors::reconcile::{Known, reconcile};
use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::inert::inert;
use crate::domain::role::{Role, role_tree};
use crate::store::Store;
use crate::store::api::Actor;
use crate::store::links::ReconcileDecision;

/// `reconcile` arguments.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Connector name.
    pub connector: String,
    /// Print the report as JSON (the export).
    #[arg(long)]
    pub json: bool,
    /// Link this account as it is now (admins; needs --reason).
    #[arg(long, value_name = "ACCOUNT", conflicts_with_all = ["ignore", "revoke"])]
    pub adopt: Option<String>,
    /// Stop reporting this account (admins; needs --reason).
    #[arg(long, value_name = "ACCOUNT", conflicts_with = "revoke")]
    pub ignore: Option<String>,
    /// Remove this account from the target; a worker carries it out (admins; needs --reason).
    #[arg(long, value_name = "ACCOUNT")]
    pub revoke: Option<String>,
    /// Justification, recorded in the audit trail.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `role tree NAME`.
#[derive(Debug, Args)]
pub struct RoleTreeArgs {
    /// Role name.
    pub name: String,
}

/// Run `reconcile`.
pub async fn run(store: &Store, actor: &Actor, args: ReconcileArgs) -> Result<ExitCode, CliError> {
    let name = args.connector.clone();
    let doc = store
        .config_head(&name)
        .await
        .context(|| format!("reading connector {name}"))?
        .ok_or_else(|| CliError::msg("reconcile", format!("no connector named {name}")))?;
    let links = store
        .account_links(&name)
        .await
        .context(|| format!("reading the account links of {name}"))?;
    let known: Vec<Known> = links
        .iter()
        .map(|l| Known {
            account: l.account.clone(),
            status: l.status.clone(),
            expected: l.expected.clone(),
        })
        .collect();
    let report = reconcile(&doc, &known)
        .await
        .context(|| format!("reading the accounts of {name}"))?;
    let decision = [
        (ReconcileDecision::Adopt, &args.adopt),
        (ReconcileDecision::Ignore, &args.ignore),
        (ReconcileDecision::Revoke, &args.revoke),
    ]
    .into_iter()
    .find_map(|(d, account)| account.clone().map(|a| (d, a)));
    if let Some((decision, account)) = decision {
        let reason = args.reason.clone().unwrap_or_default();
        let state = report
            .findings
            .iter()
            .find(|f| f.account == account)
            .and_then(|f| f.current.as_ref())
            .map(|a| serde_json::to_value(a).unwrap_or_default())
            .ok_or_else(|| {
                CliError::msg(
                    "reconcile",
                    format!("{name} has no account {}", inert(&account)),
                )
            })?;
        store
            .reconcile_decide(actor, &name, &account, decision, &state, &reason)
            .await
            .context(|| format!("{} {} in {name}", decision.name(), inert(&account)))?;
        println!(
            "{} {} in {name}{}",
            decision.name(),
            inert(&account),
            if decision == ReconcileDecision::Revoke {
                ": a worker removes it"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!("{name}: {}", counts.join(", "));
    for f in report.findings.iter().filter(|f| f.status != "linked") {
        println!(
            "  {:<9} {}{}",
            f.status,
            inert(&f.account),
            f.detail
                .as_ref()
                .map(|d| format!("  ({})", inert(d)))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `role tree`.
pub async fn tree(store: &Store, args: RoleTreeArgs) -> Result<ExitCode, CliError> {
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    let mut wanted = vec![args.name.clone()];
    while let Some(name) = wanted.pop() {
        if roles.contains_key(&name) {
            continue;
        }
        let doc = store
            .config_head(&name)
            .await
            .context(|| format!("reading role {name}"))?
            .ok_or_else(|| CliError::msg("role tree", format!("no role named {name}")))?;
        match check_document(&doc.name, &doc.body) {
            Ok(ConfigDocument::Role(role)) => {
                wanted.extend(role.inherits.iter().cloned());
                roles.insert(name, role);
            }
            _ => {
                return Err(CliError::msg(
                    "role tree",
                    format!("{name} is not a valid role document"),
                ));
            }
        }
    }
    let lines = role_tree(&roles, &args.name).context(|| format!("resolving {}", args.name))?;
    for line in lines {
        println!("{}", inert(&line));
    }
    Ok(ExitCode::SUCCESS)
}
