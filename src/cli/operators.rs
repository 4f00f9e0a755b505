//! Operator verbs that do more than one store call: `operator add` (with the first-admin
//! bootstrap) and `operator key add|list|remove`.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use super::args::KeyCommand;
use super::requests::fmt_time;
use super::{CliError, Context};
use crate::domain::inert::inert;
use crate::store::Store;
use crate::store::api::{Actor, CommandApi, OperatorRow, ReadApi};

/// `operator add`: through the store's admin check, or, while no admin exists, as the
/// bootstrap of the first admin by root or the OS owner of the store.
pub(super) async fn operator_add(
    store: &Store,
    url: &str,
    actor: &Actor,
    name: String,
    role: String,
    scopes: Vec<String>,
    email: Option<String>,
) -> Result<ExitCode, CliError> {
    let what = || format!("setting operator {name}");
    let has_admin = store.has_admin().await.context(what)?;
    if has_admin {
        store
            .set_operator(
                actor,
                &OperatorRow {
                    name: name.clone(),
                    role: role.clone(),
                    scopes,
                    email,
                },
            )
            .await
            .context(what)?;
        println!("operator {name} is {role}");
        return Ok(ExitCode::SUCCESS);
    }
    if role != "admin" || !scopes.is_empty() {
        return Err(CliError::msg(
            what(),
            "no admin exists yet: the first operator must be an unscoped admin (--role admin)",
        ));
    }
    if let Err(why) = may_bootstrap(store, url) {
        return Err(CliError::msg(what(), why));
    }
    store
        .bootstrap_admin(actor, &name, email)
        .await
        .context(what)?;
    println!("operator {name} is admin (first admin)");
    Ok(ExitCode::SUCCESS)
}

/// `operator key add|list|remove`.
pub(super) async fn operator_key(
    store: &Store,
    actor: &Actor,
    cmd: KeyCommand,
) -> Result<ExitCode, CliError> {
    match cmd {
        KeyCommand::Add { name, file } => {
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .take(64 * 1024)
                    .read_to_string(&mut text)
                    .context(|| "reading the public key from standard input".into())?;
                text
            } else {
                read_key_file(&file)?
            };
            let key = store
                .add_operator_key(actor, &name, &text)
                .await
                .context(|| format!("adding the key in {} to operator {name}", file.display()))?;
            println!(
                "key {} ({}) added to operator {name}",
                key.fingerprint, key.algorithm
            );
        }
        KeyCommand::List => {
            let keys = store
                .operator_keys()
                .await
                .context(|| "listing operator keys".into())?;
            for k in keys {
                let used = match (k.last_used_at, &k.last_used_from) {
                    (Some(at), Some(from)) => format!("{} from {}", fmt_time(at), inert(from)),
                    (Some(at), None) => fmt_time(at),
                    _ => "never used".to_string(),
                };
                println!(
                    "{:<24} {:<52} {:<20} {:<24} {}",
                    inert(&k.operator),
                    k.fingerprint,
                    k.algorithm,
                    inert(k.comment.as_deref().unwrap_or("-")),
                    used
                );
            }
        }
        KeyCommand::Remove { name, fingerprint } => {
            store
                .remove_operator_key(actor, &name, &fingerprint)
                .await
                .context(|| format!("removing key {fingerprint} of operator {name}"))?;
            println!("key {fingerprint} of operator {name} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of a `.pub` file, refusing directories and files too large to be one key.
fn read_key_file(file: &Path) -> Result<String, CliError> {
    let what = || format!("reading public key file {}", file.display());
    let meta = std::fs::metadata(file).context(what)?;
    if !meta.is_file() {
        return Err(CliError::msg(what(), "not a regular file"));
    }
    if meta.len() > 64 * 1024 {
        return Err(CliError::msg(
            what(),
            format!("{} bytes is too large for a public key file", meta.len()),
        ));
    }
    let bytes = std::fs::read(file).context(what)?;
    String::from_utf8(bytes).map_err(|_| CliError::msg(what(), "not UTF-8 text"))
}

/// Who may create the first admin: root, or the OS owner of the SQLite store file. On
/// PostgreSQL, holding the store's credentials is the proof of ownership.
fn may_bootstrap(store: &Store, url: &str) -> Result<(), String> {
    if store.backend() == crate::store::Backend::Postgres || crate::identity::is_root() {
        return Ok(());
    }
    let path = crate::store::sqlite_path(url);
    if crate::identity::owns_path(std::path::Path::new(path)) {
        Ok(())
    } else {
        Err(format!(
            "no admin exists yet, and only root or the owner of {path} may create the first one (this process runs as uid {})",
            crate::identity::real_uid()
        ))
    }
}
