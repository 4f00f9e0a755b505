//! The server's host key: created (ed25519, mode 0600) on first start and kept, so clients
//! see the same host from one start to the next; an existing key others may read is refused.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey};

use crate::serve::ServeError;

/// Where the host key lives when no path is given: `ssh_host_ed25519_key` in the data directory.
pub fn default_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("gatehouse")
        .join("ssh_host_ed25519_key")
}

fn error(path: &Path, message: impl Into<String>) -> ServeError {
    ServeError::HostKey {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Load the host key at `path`, or create it when the file does not exist. Returns the key and
/// whether it was created.
pub fn load_or_create(path: &Path) -> Result<(PrivateKey, bool), ServeError> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(error(path, "is not a regular file"));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(error(
                    path,
                    format!(
                        "is readable by other users (mode {mode:04o}); a host key must be private: chmod 600 {}",
                        path.display()
                    ),
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| error(path, format!("cannot be read: {e}")))?;
            let key = PrivateKey::from_openssh(text.as_bytes())
                .map_err(|e| error(path, format!("is not an OpenSSH private key: {e}")))?;
            if key.is_encrypted() {
                return Err(error(
                    path,
                    "is encrypted; the server needs a key without a passphrase",
                ));
            }
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((create(path)?, true)),
        Err(e) => Err(error(path, format!("cannot be read: {e}"))),
    }
}

fn create(path: &Path) -> Result<PrivateKey, ServeError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            error(
                path,
                format!("its directory {} cannot be created: {e}", dir.display()),
            )
        })?;
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| {
            error(
                path,
                format!("no randomness for a new key (/dev/urandom): {e}"),
            )
        })?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| error(path, format!("cannot encode the new key: {e}")))?;
    // create_new: never overwrite a key another process wrote in the meantime.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| error(path, format!("cannot be created: {e}")))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| error(path, format!("cannot be written: {e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("host_key");
        let (first, created) = load_or_create(&path).expect("create");
        assert!(created);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = load_or_create(&path).expect("load");
        assert!(!created);
        assert_eq!(first.public_key(), second.public_key());
    }

    #[test]
    fn readable_by_others_or_garbage_is_refused_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("host_key");
        load_or_create(&path).expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&path)
            .expect_err("world-readable")
            .to_string();
        assert!(err.contains("host_key") && err.contains("0644"), "{err}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello").expect("write");
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let err = load_or_create(&junk).expect_err("garbage").to_string();
        assert!(
            err.contains("junk") && err.contains("not an OpenSSH private key"),
            "{err}"
        );
    }
}
