//! Secret references (`env:NAME`, `file:/path`) and resolved secret values that never print.
//!
//! Configuration stores only references. [`SecretRef::resolve`] is the one place that reads a
//! secret (an environment variable or a file); everything else handles references, which print
//! as the reference, and [`SecretValue`]s, which print as `***`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use thiserror::Error;

/// Where a secret lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    /// An environment variable of this name.
    Env(String),
    /// A file whose contents (without a trailing newline) are the secret.
    File(PathBuf),
}

/// Why a string is not a secret reference. Messages never contain the offending text, because
/// it may be the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretRefError {
    /// Not `env:` or `file:`: possibly the secret itself, which must not be in configuration.
    #[error("a secret must be given as a reference (env:NAME or file:/path), not in plain text")]
    PlainText,
    /// `env:` followed by something that is not a variable name.
    #[error(
        "env: reference needs a variable name of letters, digits and _ (not starting with a digit)"
    )]
    BadEnvName,
    /// `file:` with an empty path.
    #[error("file: reference needs a path")]
    EmptyPath,
    /// `env:` naming the variable that holds the store's own URL ([`STORE_URL_ENV`]).
    #[error(
        "env:{STORE_URL_ENV} is the store's own URL: a configuration may not reference the store's credentials"
    )]
    StoreUrl,
    /// `file:` naming the store's SQLite file (or its -wal, -shm or -journal file).
    #[error("file: reference names the store's own database file")]
    StoreFile,
}

/// The environment variable that holds the store's URL (`--database-url`). A secret reference
/// may never name it: a workflow or connector could otherwise read the store's credentials.
pub const STORE_URL_ENV: &str = "GATEHOUSE_DATABASE_URL";

/// Why a reference could not be resolved.
#[derive(Debug, Error)]
pub enum SecretResolveError {
    /// The environment variable is unset or not valid UTF-8.
    #[error("environment variable {name} is not set (or not UTF-8)")]
    EnvMissing {
        /// The variable name.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The variable or file is empty.
    #[error("secret {reference} is empty")]
    Empty {
        /// The reference, printed as `env:NAME` / `file:/path`.
        reference: String,
    },
    /// The reference names the store's own credentials (its URL variable or its file).
    #[error("secret {reference}: {source}")]
    Store {
        /// The reference, printed as `env:NAME` / `file:/path`.
        reference: String,
        /// Which of the store's credentials it names.
        source: SecretRefError,
    },
}

/// The store files this process opened: no secret reference may resolve to one of them (or
/// their -wal, -shm, -journal companions), even through a symbolic link or a relative path.
static STORE_FILES: std::sync::RwLock<Vec<PathBuf>> = std::sync::RwLock::new(Vec::new());

/// Record a store file this process opened (the store calls this when it opens a SQLite
/// file), so [`SecretRef::resolve`] refuses to read it.
pub fn protect_store_file(path: &Path) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(mut files) = STORE_FILES.write()
        && !files.contains(&path)
    {
        files.push(path);
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SecretRef {
    /// Parses `env:NAME` or `file:PATH`; anything else is [`SecretRefError::PlainText`].
    pub fn parse(text: &str) -> Result<Self, SecretRefError> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("env:") {
            if name == STORE_URL_ENV {
                return Err(SecretRefError::StoreUrl);
            }
            if is_env_name(name) {
                return Ok(Self::Env(name.to_string()));
            }
            return Err(SecretRefError::BadEnvName);
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SecretRefError::EmptyPath);
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        Err(SecretRefError::PlainText)
    }

    /// Refuses a `file:` reference to the store's SQLite file `store_file` or one of its
    /// `-wal`, `-shm` and `-journal` companions. Pure: relative paths are taken from `base_dir`
    /// (the process's working directory) and `.`/`..` are resolved lexically, without touching
    /// the file system; callers that want symbolic links followed canonicalize both paths first.
    /// `env:` references pass (they are checked by [`SecretRef::parse`]).
    pub fn check_not_store_file(
        &self,
        store_file: &Path,
        base_dir: &Path,
    ) -> Result<(), SecretRefError> {
        let Self::File(path) = self else {
            return Ok(());
        };
        let target = lexical_absolute(path, base_dir);
        let store = lexical_absolute(store_file, base_dir);
        let names_store = ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
            let mut companion = store.clone().into_os_string();
            companion.push(suffix);
            target == Path::new(&companion)
        });
        if names_store {
            Err(SecretRefError::StoreFile)
        } else {
            Ok(())
        }
    }

    /// True when `text` is written as a reference (`env:` or `file:` prefix), valid or not.
    pub fn looks_like_reference(text: &str) -> bool {
        let text = text.trim();
        text.starts_with("env:") || text.starts_with("file:")
    }

    /// Reads the secret. This is the only I/O in the domain: an environment variable lookup or
    /// a file read. A trailing newline (as editors write) is removed.
    pub fn resolve(&self) -> Result<SecretValue, SecretResolveError> {
        let store = |source| SecretResolveError::Store {
            reference: self.to_string(),
            source,
        };
        match self {
            Self::Env(name) if name == STORE_URL_ENV => {
                return Err(store(SecretRefError::StoreUrl));
            }
            Self::Env(_) => {}
            Self::File(path) => {
                let base = std::env::current_dir().unwrap_or_default();
                // Follow links when the file exists; a companion (-wal) may not, so its
                // directory is followed instead.
                let real = std::fs::canonicalize(path).unwrap_or_else(|_| {
                    match (path.parent(), path.file_name()) {
                        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
                            .map(|d| d.join(name))
                            .unwrap_or_else(|_| path.clone()),
                        _ => path.clone(),
                    }
                });
                let files = STORE_FILES.read().map(|f| f.clone()).unwrap_or_default();
                for file in &files {
                    Self::File(real.clone())
                        .check_not_store_file(file, &base)
                        .map_err(store)?;
                }
            }
        }
        let raw = match self {
            Self::Env(name) => std::env::var(name)
                .map_err(|_| SecretResolveError::EnvMissing { name: name.clone() })?,
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretResolveError::File {
                    path: path.display().to_string(),
                    source,
                })?
            }
        };
        let value = raw.strip_suffix('\n').unwrap_or(&raw);
        let value = value.strip_suffix('\r').unwrap_or(value);
        if value.is_empty() {
            return Err(SecretResolveError::Empty {
                reference: self.to_string(),
            });
        }
        Ok(SecretValue(value.to_string()))
    }
}

/// `path` made absolute against `base` with `.` and `..` resolved by name only.
fn lexical_absolute(path: &Path, base: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl FromStr for SecretRef {
    type Err = SecretRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({self})")
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::diagnostic::deserialize_from_str(
            deserializer,
            "a secret reference: env:NAME or file:/path",
        )
    }
}

/// A resolved secret. Prints as `***`; use [`SecretValue::expose`] only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a secret obtained elsewhere (e.g. from a test fixture).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one call that needs it (a login, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_references() {
        assert_eq!(
            SecretRef::parse("env:IMAP_PASSWORD"),
            Ok(SecretRef::Env("IMAP_PASSWORD".into()))
        );
        assert_eq!(
            SecretRef::parse(" env:_x1 "),
            Ok(SecretRef::Env("_x1".into()))
        );
        assert_eq!(
            SecretRef::parse("file:/run/secrets/db"),
            Ok(SecretRef::File("/run/secrets/db".into()))
        );
        assert_eq!(
            SecretRef::parse("file:relative/p"),
            Ok(SecretRef::File("relative/p".into()))
        );
    }

    #[test]
    fn rejects_plain_text_and_malformed_references() {
        for plain in ["hunter2", "", "ENV:X", "env", "https://x", "envX:1"] {
            assert_eq!(
                SecretRef::parse(plain),
                Err(SecretRefError::PlainText),
                "{plain}"
            );
        }
        for bad in ["env:", "env:1ABC", "env:A-B", "env:A B"] {
            assert_eq!(
                SecretRef::parse(bad),
                Err(SecretRefError::BadEnvName),
                "{bad}"
            );
        }
        assert_eq!(SecretRef::parse("file:"), Err(SecretRefError::EmptyPath));
        assert!(SecretRef::looks_like_reference("env:1"));
        assert!(SecretRef::looks_like_reference("file:"));
        assert!(!SecretRef::looks_like_reference("hunter2"));
    }

    #[test]
    fn errors_never_echo_the_text() {
        let error = SecretRef::parse("hunter2").expect_err("plain");
        assert!(!error.to_string().contains("hunter2"));
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)] // deserialised only
        struct Holder {
            password: SecretRef,
        }
        let error = toml::from_str::<Holder>("password = \"hunter2\"").expect_err("plain");
        assert!(!error.message().contains("hunter2"), "{}", error.message());
        assert!(error.message().contains("plain text"));
    }

    #[test]
    fn the_store_url_variable_cannot_be_referenced() {
        assert_eq!(
            SecretRef::parse("env:GATEHOUSE_DATABASE_URL"),
            Err(SecretRefError::StoreUrl)
        );
        assert_eq!(
            SecretRef::parse(" env:GATEHOUSE_DATABASE_URL "),
            Err(SecretRefError::StoreUrl)
        );
        // Other variables, including look-alikes, are fine.
        for ok in [
            "env:GATEHOUSE_DATABASE_URL_2",
            "env:TARGET_DATABASE_URL",
            "env:GATEHOUSE_LOG",
        ] {
            assert!(SecretRef::parse(ok).is_ok(), "{ok}");
        }
        let message = SecretRefError::StoreUrl.to_string();
        assert!(message.contains("env:GATEHOUSE_DATABASE_URL"), "{message}");
        assert!(message.contains("store"), "{message}");
    }

    #[test]
    fn the_store_file_cannot_be_referenced() {
        let store = Path::new("/var/lib/gatehouse/gatehouse.db");
        let base = Path::new("/var/lib/gatehouse");
        let refuse = |text: &str| {
            SecretRef::parse(text)
                .expect("parses")
                .check_not_store_file(store, base)
        };
        for bad in [
            "file:/var/lib/gatehouse/gatehouse.db",
            "file:/var/lib/gatehouse/./gatehouse.db",
            "file:/var/lib/other/../gatehouse/gatehouse.db",
            "file:gatehouse.db",
            "file:./gatehouse.db-wal",
            "file:/var/lib/gatehouse/gatehouse.db-shm",
            "file:/var/lib/gatehouse/gatehouse.db-journal",
        ] {
            assert_eq!(refuse(bad), Err(SecretRefError::StoreFile), "{bad}");
        }
        for ok in [
            "file:/run/secrets/db",
            "file:/var/lib/gatehouse/gatehouse.db.key",
            "file:/var/lib/gatehouse/other.db",
            "file:sub/gatehouse.db",
            "env:DB_PASSWORD",
        ] {
            assert_eq!(refuse(ok), Ok(()), "{ok}");
        }
        // A relative store path is resolved against the same base.
        let reference = SecretRef::File("/srv/gh/data.db".into());
        assert_eq!(
            reference.check_not_store_file(Path::new("data.db"), Path::new("/srv/gh")),
            Err(SecretRefError::StoreFile)
        );
        assert!(
            !SecretRefError::StoreFile
                .to_string()
                .contains("gatehouse.db")
        );
    }

    #[test]
    fn nothing_resolved_prints_the_secret() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(b"hunter2\n").expect("write");
        let reference = SecretRef::File(file.path().to_path_buf());
        let resolved = reference.resolve();
        for shown in [
            format!("{resolved:?}"),
            format!("{resolved:#?}"),
            format!("{:?}", resolved.as_ref().map(|v| v.clone())),
            format!("{reference:?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let value = resolved.expect("resolves");
        assert_eq!(value.expose(), "hunter2");
        assert_eq!(format!("{value:#?}"), "***");
        // Errors carry the reference, never a value.
        let empty = tempfile::NamedTempFile::new().expect("temp file");
        let error = SecretRef::File(empty.path().into())
            .resolve()
            .expect_err("empty");
        assert!(format!("{error:?}").contains("Empty"));
    }

    #[test]
    fn references_print_as_references() {
        let env = SecretRef::Env("DB_PASSWORD".into());
        assert_eq!(env.to_string(), "env:DB_PASSWORD");
        assert_eq!(format!("{env:?}"), "SecretRef(env:DB_PASSWORD)");
        let file = SecretRef::File("/s/db".into());
        assert_eq!(file.to_string(), "file:/s/db");
        assert_eq!(
            toml::to_string(
                &Some(file.clone())
                    .into_iter()
                    .map(|f| ("k", f))
                    .collect::<std::collections::BTreeMap<_, _>>()
            )
            .expect("ser"),
            "k = \"file:/s/db\"\n"
        );
    }

    #[test]
    fn values_are_redacted() {
        let value = SecretValue::new("hunter2");
        assert_eq!(value.to_string(), "***");
        assert_eq!(format!("{value:?}"), "***");
        assert_eq!(format!("{:?}", Some(&value)), "Some(***)");
        assert_eq!(value.expose(), "hunter2");
    }

    #[test]
    fn resolves_files() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(b"s3cret\n").expect("write");
        let reference = SecretRef::File(file.path().to_path_buf());
        assert_eq!(reference.resolve().expect("resolves").expose(), "s3cret");

        let mut crlf = tempfile::NamedTempFile::new().expect("temp file");
        crlf.write_all(b"abc\r\n").expect("write");
        assert_eq!(
            SecretRef::File(crlf.path().into())
                .resolve()
                .expect("ok")
                .expose(),
            "abc"
        );

        let empty = tempfile::NamedTempFile::new().expect("temp file");
        assert!(matches!(
            SecretRef::File(empty.path().into()).resolve(),
            Err(SecretResolveError::Empty { .. })
        ));
        let missing = SecretRef::File("/nonexistent/gatehouse/secret".into());
        let error = missing.resolve().expect_err("missing");
        assert!(error.to_string().contains("/nonexistent/gatehouse/secret"));
    }

    #[test]
    fn resolves_env() {
        // PATH is set in every test environment; reading it needs no unsafe set_var.
        let path = SecretRef::Env("PATH".into())
            .resolve()
            .expect("PATH is set");
        assert!(!path.expose().is_empty());
        let missing = SecretRef::Env("GATEHOUSE_SURELY_UNSET_VARIABLE_42".into());
        assert!(matches!(
            missing.resolve(),
            Err(SecretResolveError::EnvMissing { .. })
        ));
    }

    #[test]
    fn the_store_file_is_never_resolved_even_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("store.db");
        std::fs::write(&db, "sqlite bytes").expect("write");
        std::fs::write(dir.path().join("store.db-wal"), "wal bytes").expect("write");
        std::fs::write(dir.path().join("token"), "s3cret").expect("write");
        protect_store_file(&db);
        let link = dir.path().join("innocent");
        std::os::unix::fs::symlink(&db, &link).expect("symlink");
        for target in [
            db.clone(),
            dir.path().join("store.db-wal"),
            link,
            dir.path().join("./store.db"),
        ] {
            let got = SecretRef::File(target.clone()).resolve();
            assert!(
                matches!(
                    got,
                    Err(SecretResolveError::Store {
                        source: SecretRefError::StoreFile,
                        ..
                    })
                ),
                "{}: {got:?}",
                target.display()
            );
        }
        let ok = SecretRef::File(dir.path().join("token"))
            .resolve()
            .expect("other files resolve");
        assert_eq!(ok.expose(), "s3cret");
        assert!(matches!(
            SecretRef::Env(STORE_URL_ENV.into()).resolve(),
            Err(SecretResolveError::Store {
                source: SecretRefError::StoreUrl,
                ..
            })
        ));
    }
}
