//! The audit anchoring verbs (`audit verify`, `audit checkpoint`, `audit keygen`) and the
//! worker's checkpoint options: argument handling and printing around `engine::checkpoint`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::{AuditCheckpointArgs, AuditKeygenArgs, AuditVerifyArgs, WorkerArgs};
use super::{CliError, Context};
use crate::domain::checkpoint::{PublicKey, mark};
use crate::engine::checkpoint::{
    CheckpointSchedule, Verification, Written, check_locations, default_checkpoints, keygen,
    load_key, load_public_key, public_key_file, verify, write_checkpoint,
};
use crate::store::Store;

/// `audit verify`: the chain, and every checkpoint when a checkpoint file is known.
pub async fn audit_verify(store: &Store, args: AuditVerifyArgs) -> Result<ExitCode, CliError> {
    let what = || "verifying the audit trail".to_string();
    // With --key and no --checkpoints, the key's default checkpoint file is used if present.
    let mut absent_default = None;
    let checkpoints = match (&args.checkpoints, &args.key) {
        (Some(file), _) => Some(file.clone()),
        (None, Some(key)) => {
            let file = default_checkpoints(key);
            if file.exists() {
                Some(file)
            } else {
                absent_default = Some(file);
                None
            }
        }
        (None, None) => None,
    };
    check_locations(store, args.key.as_deref(), checkpoints.as_deref()).context(what)?;
    let mut trusted: Vec<PublicKey> = Vec::new();
    if let Some(key) = &args.key {
        trusted.push(load_key(key).context(what)?.public());
    }
    for value in &args.public_keys {
        trusted.push(load_public_key(value).context(what)?);
    }
    let outcome = verify(store, checkpoints.as_deref(), &trusted)
        .await
        .context(what)?;
    let file = checkpoints
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    match outcome {
        Verification::Intact { rows, anchors } => {
            println!("audit trail intact: {rows} rows verified");
            match anchors.and_then(|a| a.newest.map(|n| (a.checkpoints, n))) {
                Some((count, (at, signed, newest_id, signer))) => {
                    println!(
                        "anchored by {count} checkpoint(s) in {file}: the newest, {at}, signed {signed} rows ending at {newest_id} (key {signer})"
                    );
                    let unanchored = rows - signed;
                    if unanchored > 0 {
                        println!("{unanchored} newer row(s) are not anchored by a checkpoint yet");
                    }
                }
                None => {
                    let why = match (&checkpoints, &absent_default) {
                        (Some(_), _) => format!("{file} holds no checkpoint"),
                        (None, Some(d)) => format!("no checkpoint file at {}", d.display()),
                        (None, None) => "no checkpoint file given".to_string(),
                    };
                    println!(
                        "no checkpoint anchors it ({why}): deleting the newest rows or recomputing the chain would go unnoticed; see `gatehouse audit checkpoint`"
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Verification::Forged { line, message } => {
            let message = crate::domain::inert::inert(&message);
            eprintln!("audit checkpoint FORGED: {file} line {line}: {message}");
            Ok(ExitCode::FAILURE)
        }
        Verification::Broken { row, message } => {
            let message = crate::domain::inert::inert(&message);
            if message.starts_with(&format!("row {row} ")) {
                eprintln!("audit trail BROKEN: {message}");
            } else {
                eprintln!("audit trail BROKEN at row {row}: {message}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `audit checkpoint`: sign the head and append it.
pub async fn audit_checkpoint(
    store: &Store,
    args: AuditCheckpointArgs,
) -> Result<ExitCode, CliError> {
    let file = args
        .checkpoints
        .clone()
        .unwrap_or_else(|| default_checkpoints(&args.key));
    let what = || format!("writing an audit checkpoint to {}", file.display());
    check_locations(store, Some(&args.key), Some(&file)).context(what)?;
    let key = load_key(&args.key).context(what)?;
    let cp = match write_checkpoint(store, &key, &file, false)
        .await
        .context(what)?
    {
        Written::Appended(cp) | Written::Unchanged(cp) => cp,
    };
    println!(
        "checkpoint appended to {}: {} rows ending at row {}, head {}…, signed by {}",
        file.display(),
        cp.rows,
        cp.newest_id,
        mark(&cp.head_hash),
        key.public().fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}

/// `audit keygen`: a new key file and its public key; the public key is printed.
pub fn audit_keygen(store: &Store, args: AuditKeygenArgs) -> Result<ExitCode, CliError> {
    let what = || format!("creating the audit key {}", args.key.display());
    check_locations(store, Some(&args.key), None).context(what)?;
    let public = keygen(&args.key).context(what)?;
    println!("{public}");
    eprintln!(
        "secret key written to {} (mode 0600; keep it where the store's writers cannot read or write it), public key to {}",
        args.key.display(),
        public_key_file(&args.key).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The worker's checkpoint schedule from its options (`None` without `--audit-key`). The key
/// is loaded now, so a worker with a bad key fails at start, not ten minutes later.
pub fn worker_schedule(
    store: &Store,
    args: &WorkerArgs,
) -> Result<Option<CheckpointSchedule>, CliError> {
    let Some(key_path) = &args.audit_key else {
        if let Some(file) = &args.audit_checkpoints {
            eprintln!(
                "warning: no --audit-key, so no audit checkpoints are written to {}",
                file.display()
            );
        }
        return Ok(None);
    };
    let what = || "audit checkpoints".to_string();
    if args.audit_checkpoint_every < std::time::Duration::from_secs(1) {
        return Err(CliError::msg(
            "--audit-checkpoint-every",
            "must be at least 1s",
        ));
    }
    let file: PathBuf = args
        .audit_checkpoints
        .clone()
        .unwrap_or_else(|| default_checkpoints(key_path));
    check_locations(store, Some(key_path), Some(&file)).context(what)?;
    let key = load_key(key_path).context(what)?;
    Ok(Some(CheckpointSchedule {
        key,
        file,
        every: args.audit_checkpoint_every,
    }))
}
