//! `gatehouse mailbox list | test NAME`: the saved mailbox documents with their reading state,
//! and a connection check that logs in and reports the folder's counts. Also builds the
//! mailbox reading a worker runs.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::args::WorkerArgs;
use super::{CliError, Context};
use crate::domain::config::{Mailbox, TlsMode};
use crate::domain::inert::inert;
use crate::engine::intake::MailboxReading;
use crate::intake::configured::MailboxClassifiers;
use crate::intake::imap::{ImapConnection, ImapSettings};
use crate::intake::reader::mailbox_documents_of;
use crate::store::Store;
use crate::store::api::ReadApi;

/// The mailbox reading of `gatehouse worker`: each mailbox's messages are understood with its
/// own `[rules]` and `[llm]` settings.
pub fn reading(args: &WorkerArgs) -> MailboxReading {
    MailboxReading {
        classifier: Arc::new(MailboxClassifiers::default()),
        lease: Duration::from_secs(args.mailbox_lease_secs.max(3)),
        classify_concurrency: 8,
    }
}

/// The saved mailbox documents, by name, with the version of each.
async fn documents(store: &Store) -> Result<Vec<(Mailbox, i64)>, CliError> {
    let heads = store
        .config_heads()
        .await
        .context(|| "reading configuration".into())?;
    let (good, bad) = mailbox_documents_of(heads);
    if let Some((name, version, error)) = bad.into_iter().next() {
        return Err(CliError::msg(
            format!("mailbox {name} v{version}"),
            format!("the stored document does not parse: {error}"),
        ));
    }
    Ok(good)
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// `mailbox list`: every mailbox document and where reading it stands.
pub async fn list(store: &Store) -> Result<ExitCode, CliError> {
    let docs = documents(store).await?;
    let states = store
        .mailbox_states()
        .await
        .context(|| "reading mailbox states".into())?;
    if docs.is_empty() && states.is_empty() {
        println!("no mailbox documents (import one with `gatehouse config import DIR`)");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<34} {:<12} {:<9} {:>10} {:>8} {:>8} {:>9}  last error",
        "NAME",
        "SERVER / FOLDER",
        "WORKFLOW",
        "STATE",
        "UIDVALID",
        "LASTUID",
        "BACKLOG",
        "PROCESSED"
    );
    let mut names: Vec<String> = docs.iter().map(|(m, _)| m.name.clone()).collect();
    for s in &states {
        if !names.contains(&s.mailbox) {
            names.push(s.mailbox.clone());
        }
    }
    for name in names {
        let doc = docs.iter().find(|(m, _)| m.name == name).map(|(m, _)| m);
        let state = states.iter().find(|s| s.mailbox == name);
        let server = doc.map_or_else(
            || "(document removed)".to_string(),
            |m| format!("{}:{}/{}", m.host, m.port, m.folder),
        );
        let (status, validity, last, backlog, processed, error) = match state {
            None => (
                "never",
                "-".into(),
                "-".into(),
                "-".into(),
                "0".into(),
                String::new(),
            ),
            Some(s) => (
                if s.connected {
                    "connected"
                } else if s.lease_owner.is_some() {
                    "leased"
                } else {
                    "idle"
                },
                s.uidvalidity.map_or("-".into(), |v| v.to_string()),
                s.last_uid.to_string(),
                s.backlog.map_or("-".into(), |b| b.to_string()),
                s.processed.to_string(),
                s.last_error
                    .as_ref()
                    .map(|e| format!("{} at {}", e, time(s.last_error_at)))
                    .unwrap_or_default(),
            ),
        };
        println!(
            "{:<20} {:<34} {:<12} {:<9} {:>10} {:>8} {:>8} {:>9}  {}",
            inert(&name),
            inert(&server),
            inert(doc.map_or("-", |m| m.workflow.as_str())),
            status,
            validity,
            last,
            backlog,
            processed,
            inert(&error)
        );
        if let Some(owner) = state.and_then(|s| s.lease_owner.as_deref()) {
            println!(
                "{:<20} read by {} (lease until {})",
                "",
                inert(owner),
                time(state.and_then(|s| s.lease_until))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mailbox test NAME`: connect, log in, report the folder's counts.
pub async fn test(store: &Store, name: &str) -> Result<ExitCode, CliError> {
    let docs = documents(store).await?;
    let Some((mailbox, version)) = docs.iter().find(|(m, _)| m.name == name) else {
        let known: Vec<&str> = docs.iter().map(|(m, _)| m.name.as_str()).collect();
        return Err(CliError::msg(
            format!("mailbox {name:?}"),
            if known.is_empty() {
                "no such mailbox document: the store holds none".to_string()
            } else {
                format!(
                    "no such mailbox document (the store holds: {})",
                    known.join(", ")
                )
            },
        ));
    };
    let tls = match mailbox.tls {
        TlsMode::Implicit => "tls",
        TlsMode::Starttls => "starttls",
        TlsMode::None => "no tls",
    };
    let what = format!(
        "mailbox {name} v{version} ({}:{}, {tls})",
        mailbox.host, mailbox.port
    );
    let settings = ImapSettings::from_mailbox(mailbox).context(|| what.clone())?;
    let mut conn = ImapConnection::connect(&settings)
        .await
        .context(|| what.clone())?;
    println!(
        "connected to {}:{} and logged in as {}",
        mailbox.host,
        mailbox.port,
        inert(&mailbox.user)
    );
    let status = conn
        .status(&mailbox.folder)
        .await
        .context(|| what.clone())?;
    println!(
        "folder {}: {} messages, {} unseen, UIDVALIDITY {}, UIDNEXT {}; IDLE {}",
        inert(&mailbox.folder),
        status.messages,
        status
            .unseen
            .map_or_else(|| "?".to_string(), |u| u.to_string()),
        status.uidvalidity,
        status
            .uidnext
            .map_or_else(|| "?".to_string(), |u| u.to_string()),
        if conn.supports_idle() {
            "offered"
        } else {
            "not offered (polling)"
        }
    );
    conn.logout().await;
    Ok(ExitCode::SUCCESS)
}
