//! Audit anchoring outside the database: the key file, the checkpoint file, writing one signed
//! checkpoint, verifying the chain against every checkpoint, and the worker's periodic task.
//!
//! The key file holds one line `ed25519-secret:<hex>` (mode 0600, made by [`keygen`]); next to
//! it `KEY.pub` holds the public key. The checkpoint file is append-only JSON lines
//! (`domain::checkpoint`); its default is the key path with [`CHECKPOINTS_SUFFIX`] appended.
//! Writers lock the checkpoint file (an advisory exclusive lock) while they read its last line
//! and append, so two processes sharing a file never interleave. A checkpoint is not an audit
//! row: writing one is logged, never appended to the chain.

use std::convert::Infallible;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, error, info};
use zeroize::Zeroizing;

use crate::domain::checkpoint::{
    AnchorSummary, Anchors, AuditKey, ChainWalk, Checkpoint, PublicKey, mark, parse_file,
};
use crate::store::error::StoreError;
use crate::store::{GENESIS_HASH, Store};

/// Appended to the key path to name the default checkpoint file.
pub const CHECKPOINTS_SUFFIX: &str = ".checkpoints.jsonl";

/// Why a key or checkpoint file could not be used, or a checkpoint was not written.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The secret key file.
    #[error("key file {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A `--public-key` value or file.
    #[error("public key {what}: {message}")]
    PublicKey {
        /// The value or file given.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The checkpoint file (the message names the line when one is at fault).
    #[error("checkpoint file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Not signed: the chain does not extend the last checkpoint, or is broken.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key_error(path: &Path, message: impl Into<String>) -> AnchorError {
    AnchorError::Key {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn file_error(path: &Path, message: impl Into<String>) -> AnchorError {
    AnchorError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The default checkpoint file of a key: `KEY.checkpoints.jsonl`.
pub fn default_checkpoints(key: &Path) -> PathBuf {
    with_suffix(key, CHECKPOINTS_SUFFIX)
}

/// The public key file written next to a key: `KEY.pub`.
pub fn public_key_file(key: &Path) -> PathBuf {
    with_suffix(key, ".pub")
}

/// The absolute form of a path that may not exist yet (its directory resolved).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuse a key or checkpoint file that is the store's own file (or its journal), or a
/// checkpoint file that is the key: the store's writers must not be able to hold the key.
pub fn check_locations(
    store: &Store,
    key: Option<&Path>,
    checkpoints: Option<&Path>,
) -> Result<(), AnchorError> {
    let store_files: Vec<PathBuf> = store
        .sqlite_file()
        .map(|f| {
            let f = resolved(&f);
            ["", "-wal", "-shm", "-journal"]
                .iter()
                .map(|s| with_suffix(&f, s))
                .collect()
        })
        .unwrap_or_default();
    if let Some(key) = key
        && store_files.contains(&resolved(key))
    {
        return Err(key_error(
            key,
            "is the store's own file: the key must live outside the database, where the store's writers cannot read or write it",
        ));
    }
    if let Some(cps) = checkpoints {
        if store_files.contains(&resolved(cps)) {
            return Err(file_error(
                cps,
                "is the store's own file: checkpoints must live outside the database",
            ));
        }
        if key.is_some_and(|k| resolved(k) == resolved(cps)) {
            return Err(file_error(cps, "is the key file itself"));
        }
    }
    Ok(())
}

/// Create a new key at `path` (mode 0600) and its public key at `path.pub`; refuse to
/// overwrite either. Returns the public key.
pub fn keygen(path: &Path) -> Result<PublicKey, AnchorError> {
    let pub_path = public_key_file(path);
    if path.symlink_metadata().is_ok() {
        return Err(key_error(path, "already exists; refusing to overwrite it"));
    }
    if pub_path.symlink_metadata().is_ok() {
        return Err(key_error(
            path,
            format!(
                "{} already exists; refusing to overwrite it",
                pub_path.display()
            ),
        ));
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| key_error(path, format!("no randomness from the OS: {e}")))?;
    let key = AuditKey::from_seed(&seed);
    let create = |p: &Path, mode: u32, text: &str| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    create(path, 0o600, &key.to_file_text()).map_err(|e| key_error(path, e.to_string()))?;
    let public = key.public();
    if let Err(e) = create(&pub_path, 0o644, &format!("{public}\n")) {
        // Change nothing: the key without its public half is removed again.
        let _ = std::fs::remove_file(path);
        return Err(key_error(
            path,
            format!("writing {}: {e}", pub_path.display()),
        ));
    }
    Ok(public)
}

/// Load a secret key file; refuse one that group or others may read or write.
pub fn load_key(path: &Path) -> Result<AuditKey, AnchorError> {
    let meta = std::fs::metadata(path).map_err(|e| key_error(path, e.to_string()))?;
    if !meta.is_file() {
        return Err(key_error(path, "is not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "group or others may access it (mode {mode:04o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    let mut text = Zeroizing::new(String::new());
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| key_error(path, e.to_string()))?;
    AuditKey::parse(&text).map_err(|e| key_error(path, e.0))
}

/// How to name a `--public-key` argument in a message: a path as given, but never text that
/// looks like key material (a secret pasted by mistake must not be echoed).
fn describe_argument(value: &str) -> String {
    let keyish = value.starts_with("ed25519")
        || (value.len() >= 32 && value.bytes().all(|b| b.is_ascii_hexdigit()));
    if keyish {
        "(the value given)".to_string()
    } else {
        value.to_string()
    }
}

/// A public key given as `ed25519:<hex>` (or bare hex), or as a file holding one.
pub fn load_public_key(value: &str) -> Result<PublicKey, AnchorError> {
    let inline = match PublicKey::parse(value) {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    if value.starts_with("ed25519") {
        return Err(AnchorError::PublicKey {
            what: describe_argument(value),
            message: inline.0,
        });
    }
    let path = Path::new(value);
    let text = std::fs::read_to_string(path).map_err(|e| AnchorError::PublicKey {
        what: describe_argument(value),
        message: format!("neither `ed25519:<64 hex digits>` nor a readable file ({e})"),
    })?;
    let (line, first) = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or_else(|| AnchorError::PublicKey {
            what: value.to_string(),
            message: "the file is empty".into(),
        })?;
    PublicKey::parse(first).map_err(|e| AnchorError::PublicKey {
        what: value.to_string(),
        message: format!("line {}: {e}", line + 1),
    })
}

/// Open (creating it) and exclusively lock the checkpoint file; return it and its text.
fn open_locked(path: &Path) -> Result<(File, String), AnchorError> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    file.lock()
        .map_err(|e| file_error(path, format!("cannot lock: {e}")))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    Ok((file, text))
}

/// Read and parse a checkpoint file (shared lock, so a line being appended is never half read).
pub fn read_checkpoints(path: &Path) -> Result<Vec<(usize, Checkpoint)>, AnchorError> {
    let mut file = File::open(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    file.lock_shared()
        .map_err(|e| file_error(path, format!("cannot lock: {e}")))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    parse_file(&text).map_err(|e| file_error(path, e.to_string()))
}

/// What [`write_checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A new line was appended.
    Appended(Checkpoint),
    /// The chain has not grown since the last checkpoint; nothing was written.
    Unchanged(Checkpoint),
}

async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, AnchorError> + Send + 'static,
) -> Result<T, AnchorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| file_error(path, format!("file task failed: {e}")))?
}

/// Sign the chain's head and append it to `path`. The chain is checked from the file's last
/// checkpoint (which this key must have signed, and whose newest row must still have its
/// signed hash) to the head first: a broken or rewritten chain is never signed. With
/// `skip_unchanged`, nothing is written when no row was added since the last checkpoint.
pub async fn write_checkpoint(
    store: &Store,
    key: &AuditKey,
    path: &Path,
    skip_unchanged: bool,
) -> Result<Written, AnchorError> {
    let owned = path.to_path_buf();
    let (file, text) = blocking(path, move || open_locked(&owned)).await?;
    let lines = parse_file(&text).map_err(|e| {
        file_error(
            path,
            format!("{e}; nothing appended (fix or move the file)"),
        )
    })?;
    let last = lines.last().cloned();
    let (start_id, start_hash, rows_before) = match &last {
        None => (0, GENESIS_HASH.to_string(), 0),
        Some((line, cp)) => {
            cp.verify(&[key.public()]).map_err(|e| {
                file_error(
                    path,
                    format!(
                        "line {line}: {e}; this key appends only after its own checkpoints (use another file for another key)"
                    ),
                )
            })?;
            if cp.newest_id > 0 {
                let now = store.audit_row_hash(cp.newest_id).await?;
                if now.as_deref() != Some(cp.head_hash.as_str()) {
                    let what = if now.is_some() {
                        "changed"
                    } else {
                        "is missing"
                    };
                    return Err(AnchorError::Refused(format!(
                        "row {} {what} since the last checkpoint ({} line {line}, {}): not signing; run `gatehouse audit verify`",
                        cp.newest_id,
                        path.display(),
                        cp.at
                    )));
                }
            }
            (cp.newest_id, cp.head_hash.clone(), cp.rows)
        }
    };
    let mut marks = String::new();
    let walk = store
        .walk_audit_chain(start_id, &start_hash, rows_before, |_, hash| {
            marks.push_str(mark(hash));
            None::<Infallible>
        })
        .await?;
    let head = match walk {
        ChainWalk::Complete(head) => head,
        ChainWalk::Broken { id, reason } => {
            return Err(AnchorError::Refused(format!(
                "the audit chain is broken at row {id}: {reason}; not signing it"
            )));
        }
        ChainWalk::Stopped(never) => match never {},
    };
    if skip_unchanged
        && let Some((_, cp)) = &last
        && cp.newest_id == head.newest_id
    {
        return Ok(Written::Unchanged(cp.clone()));
    }
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cp = Checkpoint::sign(key, &head, start_id + 1, marks, at);
    let mut line = cp.to_line();
    line.push('\n');
    if !text.is_empty() && !text.ends_with('\n') {
        line.insert(0, '\n');
    }
    let owned = path.to_path_buf();
    blocking(path, move || {
        let mut file = file;
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| file_error(&owned, format!("cannot append: {e}")))
    })
    .await?;
    Ok(Written::Appended(cp))
}

/// The outcome of verifying the chain against its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The chain is intact and matches every checkpoint.
    Intact {
        /// Rows verified.
        rows: i64,
        /// What the checkpoints anchor (`None`: no checkpoint file was given).
        anchors: Option<AnchorSummary>,
    },
    /// A checkpoint line is not signed by a trusted key.
    Forged {
        /// Its line number.
        line: usize,
        /// Why.
        message: String,
    },
    /// The chain is broken, or contradicts a checkpoint.
    Broken {
        /// The first missing or changed row.
        row: i64,
        /// What is wrong.
        message: String,
    },
}

/// Check the whole chain, and with a checkpoint file every checkpoint in it: each must be
/// signed by one of `trusted`, and the chain must still hold the rows, count and hashes it
/// signed.
pub async fn verify(
    store: &Store,
    checkpoints: Option<&Path>,
    trusted: &[PublicKey],
) -> Result<Verification, AnchorError> {
    let mut anchors = match checkpoints {
        None => None,
        Some(path) => {
            if trusted.is_empty() {
                return Err(file_error(
                    path,
                    "verifying checkpoints needs the trusted public key (--public-key, or --key for the key file)",
                ));
            }
            let owned = path.to_path_buf();
            let lines = blocking(path, move || read_checkpoints(&owned)).await?;
            match Anchors::new(lines, trusted) {
                Ok(a) => Some(a),
                Err(e) => {
                    return Ok(Verification::Forged {
                        line: e.line,
                        message: e.message,
                    });
                }
            }
        }
    };
    let walk = store
        .walk_audit_chain(0, GENESIS_HASH, 0, |id, hash| {
            anchors.as_mut().and_then(|a| a.observe(id, hash))
        })
        .await?;
    Ok(match walk {
        ChainWalk::Broken { id, reason } => Verification::Broken {
            row: id,
            message: reason,
        },
        ChainWalk::Stopped(finding) => Verification::Broken {
            row: finding.row(),
            message: finding.to_string(),
        },
        ChainWalk::Complete(head) => match anchors.as_ref().and_then(Anchors::finish) {
            Some(finding) => Verification::Broken {
                row: finding.row(),
                message: finding.to_string(),
            },
            None => Verification::Intact {
                rows: head.rows,
                anchors: anchors.map(|a| a.summary()),
            },
        },
    })
}

/// Where and how often the worker checkpoints.
#[derive(Debug)]
pub struct CheckpointSchedule {
    /// The signing key.
    pub key: AuditKey,
    /// The checkpoint file.
    pub file: PathBuf,
    /// Interval between checkpoints.
    pub every: Duration,
}

/// Write one checkpoint (skipping it when nothing changed) and log the outcome.
pub async fn checkpoint_once(store: &Store, schedule: &CheckpointSchedule) {
    let file = schedule.file.display().to_string();
    match write_checkpoint(store, &schedule.key, &schedule.file, true).await {
        Ok(Written::Appended(cp)) => info!(
            file,
            rows = cp.rows,
            newest_id = cp.newest_id,
            head = mark(&cp.head_hash),
            key = %schedule.key.public().fingerprint(),
            "audit checkpoint written"
        ),
        Ok(Written::Unchanged(cp)) => debug!(
            file,
            newest_id = cp.newest_id,
            "audit checkpoint skipped: no new rows"
        ),
        Err(e) => error!(file, error = %e, "audit checkpoint failed"),
    }
}

/// Checkpoint at start, then every `schedule.every` until `stop` turns true.
pub async fn run_checkpointer(
    store: &Store,
    schedule: &CheckpointSchedule,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(schedule.every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => checkpoint_once(store, schedule).await,
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_makes_a_private_key_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        let public = keygen(&path).expect("keygen");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_key(&path).expect("load").public(), public);
        let pub_file = public_key_file(&path);
        assert_eq!(
            load_public_key(pub_file.to_str().expect("path")).expect("pub"),
            public
        );
        let before = std::fs::read(&path).expect("read");
        let err = keygen(&path).unwrap_err().to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn a_loose_key_is_refused_and_secrets_are_never_echoed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        keygen(&path).expect("keygen");
        let secret = std::fs::read_to_string(&path).expect("read");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = load_key(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        let hex_part = secret.trim().trim_start_matches("ed25519-secret:");
        for given in [secret.trim(), path.to_str().expect("path")] {
            let err = load_public_key(given).unwrap_err().to_string();
            assert!(!err.contains(&hex_part[..12]), "{err}");
        }
        // The bare seed is 64 hex digits, which is also the form of a public key: about half
        // of all seeds decode to a curve point and are accepted (as a key nobody trusts). When
        // refused, the refusal must not echo it either.
        if let Err(err) = load_public_key(hex_part) {
            assert!(!err.to_string().contains(&hex_part[..12]), "{err}");
        }
    }

    #[test]
    fn default_files_sit_next_to_the_key() {
        let key = Path::new("/etc/gatehouse/audit.key");
        assert_eq!(
            default_checkpoints(key),
            Path::new("/etc/gatehouse/audit.key.checkpoints.jsonl")
        );
        assert_eq!(
            public_key_file(key),
            Path::new("/etc/gatehouse/audit.key.pub")
        );
    }
}
