//! How a mailbox document's mail is read: batch size, what happens to processed mail (kept,
//! flagged or moved), IDLE or polling, and a CA file for a server with a private certificate.

use serde::{Deserialize, Serialize};

use crate::domain::diagnostic::FieldError;

/// Default messages per `UID FETCH` and per store transaction.
pub const DEFAULT_BATCH_SIZE: u32 = 200;
/// Largest accepted `batch_size`.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// What the reader does to a message after the store recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessedAction {
    /// Leave it as it is (the store remembers what was read).
    #[default]
    Keep,
    /// Set a flag: `flag` (default `\Seen`) or a keyword.
    Flag,
    /// Move it to the folder `move_to`.
    Move,
}

/// A flag or keyword IMAP accepts in `STORE`: a system flag (`\Seen`, `\Flagged`, ...) or an
/// atom of printable ASCII without specials.
pub fn is_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom.len() <= 64
        && atom.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

/// Checks the reading settings of a mailbox document (`batch_size`, `processed`, `flag`,
/// `move_to`, `folder`, `ca_file`).
pub fn check_reading(
    folder: &str,
    batch_size: Option<u32>,
    processed: ProcessedAction,
    flag: Option<&str>,
    move_to: Option<&str>,
    ca_file: Option<&str>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(size) = batch_size
        && !(1..=MAX_BATCH_SIZE).contains(&size)
    {
        errors.push(FieldError::new(
            "batch_size",
            format!("must be between 1 and {MAX_BATCH_SIZE}"),
        ));
    }
    if folder.chars().any(|c| c.is_control() || c == '"') {
        errors.push(FieldError::new(
            "folder",
            "must not contain control characters or double quotes",
        ));
    }
    if let Some(flag) = flag
        && !is_flag(flag)
    {
        errors.push(FieldError::new(
            "flag",
            format!(
                "\"{}\" is not an IMAP flag or keyword (e.g. \\Seen or Gatehouse)",
                flag.escape_default()
            ),
        ));
    }
    if flag.is_some() && processed != ProcessedAction::Flag {
        errors.push(FieldError::new(
            "flag",
            "is only used with processed = \"flag\"",
        ));
    }
    match (processed, move_to) {
        (ProcessedAction::Move, None) => errors.push(FieldError::new(
            "move_to",
            "processed = \"move\" needs the folder to move processed mail to",
        )),
        (ProcessedAction::Move, Some(target)) if target.trim().is_empty() || target == folder => {
            errors.push(FieldError::new(
                "move_to",
                "must name a folder other than the one being read",
            ))
        }
        (ProcessedAction::Move, Some(target))
            if target.chars().any(|c| c.is_control() || c == '"') =>
        {
            errors.push(FieldError::new(
                "move_to",
                "must not contain control characters or double quotes",
            ))
        }
        (ProcessedAction::Keep | ProcessedAction::Flag, Some(_)) => errors.push(FieldError::new(
            "move_to",
            "is only used with processed = \"move\"",
        )),
        _ => {}
    }
    if let Some(path) = ca_file
        && !path.starts_with('/')
    {
        errors.push(FieldError::new(
            "ca_file",
            "must be an absolute path to a PEM file",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_keywords() {
        assert!(is_flag("\\Seen"));
        assert!(is_flag("Gatehouse"));
        assert!(!is_flag(""));
        assert!(!is_flag("a b"));
        assert!(!is_flag("x)"));
    }

    #[test]
    fn tls_spellings_and_reading_fields_parse() {
        use crate::domain::config::{ConfigDocument, TlsMode, check_document};
        let doc = |extra: &str| {
            format!(
                "kind = \"mailbox\"\nname = \"m\"\nhost = \"imap.example.com\"\nuser = \"u\"\npassword = \"env:P\"\nworkflow = \"w\"\n{extra}"
            )
        };
        for spelling in ["tls", "implicit"] {
            let Ok(ConfigDocument::Mailbox(m)) =
                check_document("m", &doc(&format!("tls = \"{spelling}\"\n")))
            else {
                panic!("{spelling} must parse");
            };
            assert_eq!(m.tls, TlsMode::Implicit);
            assert!(m.idle);
            assert_eq!(m.batch(), DEFAULT_BATCH_SIZE);
        }
        let Ok(ConfigDocument::Mailbox(m)) = check_document(
            "m",
            &doc(
                "batch_size = 50\nprocessed = \"move\"\nmove_to = \"Done\"\nidle = false\nca_file = \"/etc/ca.pem\"\n",
            ),
        ) else {
            panic!("reading fields must parse");
        };
        assert_eq!(
            (m.batch(), m.processed, m.idle),
            (50, ProcessedAction::Move, false)
        );
        let errors = check_document("m", &doc("processed = \"move\"\n")).expect_err("no move_to");
        assert!(errors[0].to_string().contains("move_to"), "{}", errors[0]);
        let errors = check_document("m", &doc("tls = \"none\"\n")).expect_err("not loopback");
        assert!(errors[0].to_string().contains("loopback"), "{}", errors[0]);
    }

    #[test]
    fn reading_settings() {
        let none = |e: Vec<FieldError>| e.is_empty();
        assert!(none(check_reading(
            "INBOX",
            Some(200),
            ProcessedAction::Keep,
            None,
            None,
            None
        )));
        let e = check_reading(
            "INBOX",
            Some(0),
            ProcessedAction::Move,
            None,
            None,
            Some("ca.pem"),
        );
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["batch_size", "move_to", "ca_file"]);
        let e = check_reading(
            "INBOX",
            None,
            ProcessedAction::Move,
            None,
            Some("INBOX"),
            None,
        );
        assert_eq!(e[0].field, "move_to");
        let e = check_reading(
            "INBOX",
            None,
            ProcessedAction::Keep,
            Some("\\Seen"),
            None,
            None,
        );
        assert_eq!(e[0].field, "flag");
    }
}
