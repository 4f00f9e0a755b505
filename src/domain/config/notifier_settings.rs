//! The `kind = "notifier"` document: the SMTP server notifications go through, the sender
//! address, which workflows it serves, and approval by reply (`reply_key`, `reply_address`,
//! `reply_lifetime`, `reply_mailbox`).

use serde::{Deserialize, Serialize};

use super::{ChatTarget, TlsMode, is_host, is_loopback};
use crate::domain::diagnostic::FieldError;
use crate::domain::secret::SecretRef;
use crate::domain::workflow::{DurationSpec, check_document_name, is_document_name};

/// An SMTP server that sends a set of workflows' notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifier {
    /// Unique name.
    pub name: String,
    /// SMTP server host.
    pub host: String,
    /// SMTP port (default: 465 with `tls`, 587 with `starttls`, 25 with `none`).
    #[serde(default)]
    pub port: Option<u16>,
    /// Connection security: `tls` (implicit, the default), `starttls` or `none` (loopback only).
    #[serde(default)]
    pub tls: TlsMode,
    /// Login user (with `password`); no authentication when absent.
    #[serde(default)]
    pub user: Option<String>,
    /// Password reference (`env:NAME` or `file:/path`).
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Sender: `addr@example.com` or `Display Name <addr@example.com>`.
    pub from: String,
    /// The workflows it serves (default: every workflow).
    #[serde(default)]
    pub workflows: Option<Vec<String>>,
    /// Connect and command timeout (default 30s, at most 5m).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// PEM file of the CA certificates trusted for this server (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Chat targets (`[[chat]]`) that get the same notifications as the mail recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chat: Vec<ChatTarget>,
    /// Approval by reply: the reference (`env:NAME` or `file:/path`) of the key that signs the
    /// reply tokens (at least 32 bytes). With it, approval mails carry a token.
    #[serde(default)]
    pub reply_key: Option<SecretRef>,
    /// The address replies go to, `local@domain`; the token is added as `local+TOKEN@domain`.
    #[serde(default)]
    pub reply_address: Option<String>,
    /// How long a token accepts a reply (default 7d, between 10m and 30d).
    #[serde(default)]
    pub reply_lifetime: Option<DurationSpec>,
    /// The `kind = "mailbox"` document whose reader receives the replies.
    #[serde(default)]
    pub reply_mailbox: Option<String>,
}

/// Default lifetime of a reply token.
pub const DEFAULT_REPLY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// A notifier's approval-by-reply settings, when complete.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplySettings<'a> {
    /// The key reference.
    pub key: &'a SecretRef,
    /// `local@domain` replies go to.
    pub address: &'a str,
    /// Token lifetime.
    pub lifetime: std::time::Duration,
    /// The mailbox document that reads replies.
    pub mailbox: &'a str,
}

impl Notifier {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }

    /// Connect and command timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
            .map_or(std::time::Duration::from_secs(30), |d| d.duration())
    }

    /// True when this notifier sends `workflow`'s notifications.
    pub fn serves(&self, workflow: &str) -> bool {
        self.workflows
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == workflow))
    }

    /// The approval-by-reply settings, when `reply_key`, `reply_address` and `reply_mailbox`
    /// are all set (the check refuses a partial set).
    pub fn reply(&self) -> Option<ReplySettings<'_>> {
        Some(ReplySettings {
            key: self.reply_key.as_ref()?,
            address: self.reply_address.as_deref()?,
            lifetime: self
                .reply_lifetime
                .map_or(DEFAULT_REPLY_LIFETIME, |d| d.duration()),
            mailbox: self.reply_mailbox.as_deref()?,
        })
    }

    /// Reads the reply key and checks its length (the only check that reads a secret; run
    /// by `config check` and before tokens are signed). `None` without a key.
    pub fn check_reply_key(&self) -> Option<FieldError> {
        let reference = self.reply_key.as_ref()?;
        let problem = match reference.resolve() {
            Ok(value) => match crate::domain::reply_token::ReplyKey::from_secret(&value) {
                Ok(_) => return None,
                Err(e) => format!("{reference}: {e}"),
            },
            Err(e) => format!("cannot be read: {e}"),
        };
        Some(FieldError::new("reply_key", problem))
    }

    fn validate_reply(&self, errors: &mut Vec<FieldError>) {
        let set = [
            ("reply_key", self.reply_key.is_some()),
            ("reply_address", self.reply_address.is_some()),
            ("reply_mailbox", self.reply_mailbox.is_some()),
        ];
        if set.iter().any(|(_, on)| *on) {
            for (field, on) in set {
                if !on {
                    errors.push(FieldError::new(
                        field,
                        "approval by reply needs reply_key, reply_address and reply_mailbox together",
                    ));
                }
            }
        } else if self.reply_lifetime.is_some() {
            errors.push(FieldError::new(
                "reply_lifetime",
                "is only used with reply_key, reply_address and reply_mailbox",
            ));
        }
        if let Some(address) = &self.reply_address {
            if !is_address(address) {
                errors.push(FieldError::new(
                    "reply_address",
                    format!(
                        "\"{}\" is not an e-mail address (`approvals@example.com`)",
                        address.escape_default()
                    ),
                ));
            } else if address.contains('+') {
                errors.push(FieldError::new(
                    "reply_address",
                    "must not contain '+': the token is added as local+TOKEN@domain",
                ));
            }
        }
        if let Some(lifetime) = self.reply_lifetime {
            let d = lifetime.duration();
            if d < std::time::Duration::from_secs(600)
                || d > std::time::Duration::from_secs(30 * 86_400)
            {
                errors.push(FieldError::new(
                    "reply_lifetime",
                    "must be between 10m and 30d",
                ));
            }
        }
        if let Some(mailbox) = &self.reply_mailbox
            && !is_document_name(mailbox)
        {
            errors.push(FieldError::new(
                "reply_mailbox",
                format!(
                    "\"{}\" is not a valid mailbox document name",
                    mailbox.escape_default()
                ),
            ));
        }
    }

    /// Problems within this document.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        self.validate_reply(&mut errors);
        if !is_host(&self.host) {
            errors.push(FieldError::new(
                "host",
                format!("\"{}\" is not a host name", self.host.escape_default()),
            ));
        }
        if self.port == Some(0) {
            errors.push(FieldError::new("port", "must be between 1 and 65535"));
        }
        if self.tls == TlsMode::None && !is_loopback(&self.host) {
            errors.push(FieldError::new(
                "tls",
                "tls = \"none\" would send mail and the password unencrypted; it is only allowed for a loopback host",
            ));
        }
        match (&self.user, &self.password) {
            (Some(user), _) if user.trim().is_empty() => {
                errors.push(FieldError::new("user", "must not be empty"));
            }
            (Some(_), None) => errors.push(FieldError::new(
                "password",
                "`user` needs a password reference (env:NAME or file:/path)",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                "user",
                "`password` is set without a `user` to log in as",
            )),
            _ => {}
        }
        if let Err(why) = check_sender(&self.from) {
            errors.push(FieldError::new("from", why));
        }
        if let Some(names) = &self.workflows {
            if names.is_empty() {
                errors.push(FieldError::new(
                    "workflows",
                    "an empty list serves nothing; leave `workflows` out to serve every workflow",
                ));
            }
            for (index, name) in names.iter().enumerate() {
                if !is_document_name(name) {
                    errors.push(FieldError::new(
                        format!("workflows[{index}]"),
                        format!("\"{}\" is not a valid workflow name", name.escape_default()),
                    ));
                }
            }
        }
        if self
            .timeout
            .is_some_and(|d| d.duration() > std::time::Duration::from_secs(300))
        {
            errors.push(FieldError::new("timeout", "at most 5m"));
        }
        if let Some(path) = &self.ca_file {
            if !path.starts_with('/') {
                errors.push(FieldError::new(
                    "ca_file",
                    "must be an absolute path to a PEM file",
                ));
            } else if self.tls == TlsMode::None {
                errors.push(FieldError::new(
                    "ca_file",
                    "is only used with tls = \"tls\" or \"starttls\"",
                ));
            }
        }
        for (index, target) in self.chat.iter().enumerate() {
            target.validate(index, &mut errors);
        }
        errors
    }
}

/// Checks a sender or recipient: `addr@domain` or `Name <addr@domain>`; answers the address.
pub fn check_sender(text: &str) -> Result<&str, String> {
    let address = match (text.find('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close && close == text.trim_end().len() - 1 => {
            if text[..open].contains(['"', '<', '>']) {
                return Err(format!(
                    "\"{}\": the display name must not contain quotes or angle brackets",
                    text.escape_default()
                ));
            }
            &text[open + 1..close]
        }
        (None, None) => text.trim(),
        _ => {
            return Err(format!(
                "\"{}\" is not `addr@example.com` or `Name <addr@example.com>`",
                text.escape_default()
            ));
        }
    };
    if is_address(address) {
        Ok(address)
    } else {
        Err(format!(
            "\"{}\" is not an e-mail address",
            address.escape_default()
        ))
    }
}

/// True for a plain `local@domain` address without spaces, control characters or brackets.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && (domain.contains('.') || domain == "localhost")
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"' | '\\')
        })
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier(extra: &str) -> Result<Notifier, Vec<String>> {
        let text = format!(
            "kind = \"notifier\"\nname = \"n\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n{extra}"
        );
        match crate::domain::config::check_document("n.toml", &text) {
            Ok(crate::domain::config::ConfigDocument::Notifier(n)) => Ok(n),
            Ok(other) => Err(vec![format!("{other:?}")]),
            Err(errors) => Err(errors.iter().map(|e| e.to_string()).collect()),
        }
    }

    #[test]
    fn defaults_and_field_checks() {
        let n = notifier("").expect("minimal");
        assert_eq!(
            (n.tls, n.port(), n.timeout().as_secs()),
            (TlsMode::Implicit, 465, 30)
        );
        assert!(n.serves("anything"));
        assert_eq!(notifier("tls = \"starttls\"").map(|n| n.port()), Ok(587));
        let scoped = notifier("workflows = [\"a\"]").expect("scoped");
        assert!(scoped.serves("a") && !scoped.serves("b"));
        for (extra, field) in [
            ("port = 0", "port"),
            ("user = \"u\"", "password"),
            ("password = \"env:X\"", "user"),
            ("user = \" \"\npassword = \"env:X\"", "user"),
            ("workflows = []", "workflows"),
            ("workflows = [\"Bad Name\"]", "workflows[0]"),
            ("timeout = \"10m\"", "timeout"),
            ("ca_file = \"ca.pem\"", "ca_file"),
            ("tls = \"none\"", "tls"),
            ("password = \"hunter2\"", "password"),
        ] {
            let errors = notifier(extra).expect_err(extra);
            assert!(
                errors.iter().any(|e| e.contains(&format!(": {field}: "))),
                "{extra}: {errors:?}"
            );
        }
        let local = "kind = \"notifier\"\nname = \"n\"\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@example.com\"\nca_file = \"/ca.pem\"\n";
        let errors =
            crate::domain::config::check_document("n.toml", local).expect_err("ca_file with none");
        assert!(errors.iter().any(|e| e.field == "ca_file"), "{errors:?}");
    }

    #[test]
    fn reply_settings_come_together_and_are_checked() {
        let full = "reply_key = \"env:GH_REPLY_KEY\"\nreply_address = \"approvals@example.com\"\nreply_mailbox = \"approvals\"\n";
        let n = notifier(full).expect("reply settings");
        let reply = n.reply().expect("complete");
        assert_eq!(
            (reply.address, reply.mailbox, reply.lifetime),
            ("approvals@example.com", "approvals", DEFAULT_REPLY_LIFETIME)
        );
        assert_eq!(notifier("").map(|n| n.reply().is_none()), Ok(true));
        let with_lifetime = notifier(&format!("{full}reply_lifetime = \"2h\"\n")).expect("2h");
        assert_eq!(
            with_lifetime.reply().map(|r| r.lifetime.as_secs()),
            Some(7200)
        );
        for (extra, field) in [
            ("reply_key = \"env:K\"", "reply_address"),
            ("reply_key = \"env:K\"", "reply_mailbox"),
            ("reply_address = \"a@example.com\"", "reply_key"),
            ("reply_lifetime = \"1h\"", "reply_lifetime"),
            ("reply_key = \"plain text\"", "reply_key"),
        ] {
            let errors = notifier(extra).expect_err(extra);
            assert!(
                errors.iter().any(|e| e.contains(&format!(": {field}: "))),
                "{extra}: {errors:?}"
            );
        }
        for (from, to, field) in [
            (
                "approvals@example.com",
                "approvals+x@example.com",
                "reply_address",
            ),
            ("approvals@example.com", "nobody", "reply_address"),
            ("\"approvals\"\n", "\"Bad Name\"\n", "reply_mailbox"),
        ] {
            let errors = notifier(&full.replace(from, to)).expect_err(to);
            assert!(
                errors.iter().any(|e| e.contains(&format!(": {field}: "))),
                "{to}: {errors:?}"
            );
        }
        for lifetime in ["5m", "31d"] {
            let errors =
                notifier(&format!("{full}reply_lifetime = \"{lifetime}\"\n")).expect_err(lifetime);
            assert!(
                errors.iter().any(|e| e.contains(": reply_lifetime: ")),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn the_reply_key_is_read_and_must_be_long_enough() {
        let dir = tempfile::tempdir().expect("dir");
        let short = dir.path().join("short");
        let long = dir.path().join("long");
        std::fs::write(&short, "too short\n").expect("write");
        std::fs::write(&long, "0123456789abcdef0123456789abcdef\n").expect("write");
        let with_key = |path: &std::path::Path| {
            notifier(&format!(
                "reply_key = \"file:{}\"\nreply_address = \"approvals@example.com\"\nreply_mailbox = \"m\"\n",
                path.display()
            ))
            .expect("parses")
        };
        assert_eq!(with_key(&long).check_reply_key(), None);
        let weak = with_key(&short).check_reply_key().expect("too short");
        assert_eq!(weak.field, "reply_key");
        assert!(weak.message.contains("at least 32 bytes"), "{weak:?}");
        let missing = with_key(&dir.path().join("absent"))
            .check_reply_key()
            .expect("unreadable");
        assert!(missing.message.contains("cannot be read"), "{missing:?}");
        assert_eq!(notifier("").map(|n| n.check_reply_key()), Ok(None));
    }

    #[test]
    fn senders() {
        assert_eq!(check_sender("a@example.com"), Ok("a@example.com"));
        assert_eq!(
            check_sender("Gatehouse <gh@example.com>"),
            Ok("gh@example.com")
        );
        assert_eq!(check_sender("gh@localhost"), Ok("gh@localhost"));
        for bad in [
            "",
            "nobody",
            "a@b",
            "x <a@example.com",
            "a@@example.com",
            "\"q\" <a@example.com>",
            "a b@example.com",
            "a@example.com>",
            "<a@example.com> trailing",
        ] {
            assert!(check_sender(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
