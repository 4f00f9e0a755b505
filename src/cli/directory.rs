//! `gatehouse directory show|test` and `gatehouse delegate` / `delegation list|revoke`: look a
//! person up in the directories the store holds, check that a directory answers, and manage
//! approval delegations (checked by the store).

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::args::{DelegateArgs, DirectoryShowArgs};
use super::{CliError, Context};
use crate::directory::{DirectoryClient, manager_chain};
use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::delegation::parse_until;
use crate::domain::inert::inert;
use crate::store::Store;
use crate::store::api::{Actor, CommandApi, NewDelegation, ReadApi};

/// Most managers `directory show` follows up the chain.
const CHAIN_LIMIT: usize = 10;

/// Clients for the store's directory documents (only `only`, when given), in name order.
async fn clients(store: &Store, only: Option<&str>) -> Result<Vec<DirectoryClient>, CliError> {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for head in store
        .config_heads()
        .await
        .context(|| "reading configuration".into())?
    {
        if head.kind != "directory" {
            continue;
        }
        names.push(head.name.clone());
        if only.is_some_and(|name| name != head.name) {
            continue;
        }
        let document = match check_document(&head.name, &head.body) {
            Ok(ConfigDocument::Directory(d)) => d,
            Ok(_) => continue,
            Err(diagnostics) => {
                let first = diagnostics
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                return Err(CliError::msg(
                    format!("directory {} v{}", head.name, head.version),
                    format!("the stored document does not parse: {first}"),
                ));
            }
        };
        out.push(
            DirectoryClient::from_document(&document)
                .map_err(|e| CliError::msg("directory", e.to_string()))?,
        );
    }
    if out.is_empty() {
        let why = match only {
            Some(name) if names.is_empty() => {
                format!("no directory named {name:?}: the store holds no directory document")
            }
            Some(name) => format!(
                "no directory named {name:?} (the store holds: {})",
                names.join(", ")
            ),
            None => "the store holds no directory document (import one with `gatehouse config import DIR`)".into(),
        };
        return Err(CliError::msg("directory", why));
    }
    Ok(out)
}

/// `directory show LOGIN_OR_EMAIL [--directory NAME] [--json]`.
pub async fn show(store: &Store, args: DirectoryShowArgs) -> Result<ExitCode, CliError> {
    let dirs = clients(store, args.directory.as_deref()).await?;
    let what = format!("looking up {:?}", args.who);
    for dir in &dirs {
        let Some(person) = dir.person(&args.who).await.context(|| what.clone())? else {
            continue;
        };
        let chain = manager_chain(dir, &person.login, CHAIN_LIMIT)
            .await
            .context(|| what.clone())?;
        let groups = dir
            .groups_of(&person.login)
            .await
            .context(|| what.clone())?;
        let away = dir
            .out_of_office(&person.login)
            .await
            .context(|| what.clone())?;
        if args.json {
            let value = serde_json::json!({
                "directory": dir.name(),
                "person": person,
                "manager_chain": chain,
                "groups": groups,
                "out_of_office": away,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{} — {} <{}> (directory {})",
            inert(&person.login),
            inert(&person.name),
            inert(person.email.as_deref().unwrap_or("no e-mail")),
            inert(dir.name())
        );
        let managers: Vec<String> = chain
            .iter()
            .map(|m| format!("{} ({})", inert(&m.login), inert(&m.name)))
            .collect();
        println!(
            "manager chain: {}",
            if managers.is_empty() {
                "(no line manager)".to_string()
            } else {
                managers.join(" → ")
            }
        );
        println!(
            "groups: {}",
            if groups.is_empty() {
                "(none)".to_string()
            } else {
                groups
                    .iter()
                    .map(|g| inert(g))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        println!("out of office: {}", if away { "yes" } else { "no" });
        return Ok(ExitCode::SUCCESS);
    }
    let searched: Vec<&str> = dirs.iter().map(DirectoryClient::name).collect();
    Err(CliError::msg(
        what,
        format!(
            "no directory knows them (searched: {})",
            searched.join(", ")
        ),
    ))
}

/// `directory test NAME`.
pub async fn test(store: &Store, name: &str) -> Result<ExitCode, CliError> {
    let dirs = clients(store, Some(name)).await?;
    for dir in dirs {
        let said = dir
            .test()
            .await
            .context(|| format!("testing directory {name}"))?;
        println!("ok: {}", inert(&said));
    }
    Ok(ExitCode::SUCCESS)
}

/// `delegate FROM TO --until …`.
pub async fn delegate(
    store: &Store,
    actor: &Actor,
    args: DelegateArgs,
) -> Result<ExitCode, CliError> {
    let until = parse_until(&args.until, Utc::now()).map_err(|e| CliError::msg("--until", e))?;
    let new = NewDelegation {
        from: args.from.clone(),
        to: args.to.clone(),
        until,
        reason: args.reason.clone(),
    };
    let row = store
        .add_delegation(actor, new)
        .await
        .context(|| format!("delegating {}'s approvals to {}", args.from, args.to))?;
    println!(
        "delegation {}: {} decides for {} until {}",
        row.id,
        inert(&row.to),
        inert(&row.from),
        rfc3339(row.until)
    );
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// `delegation list [--all]`.
pub async fn list(store: &Store, all: bool) -> Result<ExitCode, CliError> {
    let now = Utc::now().timestamp_millis();
    let rows = store
        .delegations(if all { None } else { Some(now) })
        .await
        .context(|| "listing delegations".into())?;
    if rows.is_empty() {
        println!("no delegations in force");
    }
    for row in rows {
        let state = match row.revoked_at {
            Some(at) => format!("revoked {}", rfc3339(at)),
            None => row.state(now).to_string(),
        };
        let reason = row
            .reason
            .as_deref()
            .map(|r| format!(": {}", inert(r)))
            .unwrap_or_default();
        println!(
            "{}  {} → {}  until {}  ({state}; by {}){reason}",
            row.id,
            inert(&row.from),
            inert(&row.to),
            rfc3339(row.until),
            inert(&row.created_by)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `delegation revoke ID`.
pub async fn revoke(store: &Store, actor: &Actor, id: i64) -> Result<ExitCode, CliError> {
    let row = store
        .revoke_delegation(actor, id)
        .await
        .context(|| format!("revoking delegation {id}"))?;
    println!(
        "delegation {} ({} → {}) revoked",
        row.id,
        inert(&row.from),
        inert(&row.to)
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_times_dates_and_durations() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        let at = |s: &str| parse_until(s, now).map(rfc3339);
        assert_eq!(at("2026-12-24").as_deref(), Ok("2026-12-25T00:00:00Z"));
        assert_eq!(
            at("2026-12-02T09:30:00Z").as_deref(),
            Ok("2026-12-02T09:30:00Z")
        );
        assert_eq!(at("12h").as_deref(), Ok("2026-12-01T22:00:00Z"));
        assert_eq!(at("2w").as_deref(), Ok("2026-12-15T10:00:00Z"));
        assert!(at("soon").unwrap_err().contains("is not a time"));
        assert!(at("3y").unwrap_err().contains("unknown unit"));
    }
}
