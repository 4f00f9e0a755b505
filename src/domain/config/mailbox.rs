//! `kind = "mailbox"` documents: an IMAP mailbox whose mail becomes requests of one
//! workflow, how it is reached and read, and its checks.

use super::*;

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (port 993): `tls` (also accepted: `implicit`).
    #[default]
    #[serde(rename = "tls", alias = "implicit")]
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No encryption: only allowed to a loopback host.
    None,
}

/// An IMAP mailbox whose mail becomes requests of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    /// Unique name.
    pub name: String,
    /// IMAP server host.
    pub host: String,
    /// IMAP port (default 993).
    #[serde(default = "default_imap_port")]
    pub port: u16,
    /// Connection security (default `implicit`).
    #[serde(default)]
    pub tls: TlsMode,
    /// Login user.
    pub user: String,
    /// Password reference (`env:NAME` or `file:/path`).
    pub password: SecretRef,
    /// Folder to watch (default `INBOX`).
    #[serde(default = "default_folder")]
    pub folder: String,
    /// Workflow the requests go to.
    pub workflow: String,
    /// Polling interval when IDLE is unavailable (default chosen by intake).
    #[serde(default)]
    pub poll_interval: Option<DurationSpec>,
    /// The local model that helps understand mail (`[llm]`); rules alone when absent.
    #[serde(default)]
    pub llm: Option<LlmSettings>,
    /// The deterministic rules (`[rules]`).
    #[serde(default)]
    pub rules: RuleSettings,
    /// Messages per `UID FETCH` and per store transaction (default 200, at most 1000).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// What happens to a message once recorded: `keep` (default), `flag` or `move`.
    #[serde(default)]
    pub processed: ProcessedAction,
    /// Flag or keyword set with `processed = "flag"` (default `\Seen`).
    #[serde(default)]
    pub flag: Option<String>,
    /// Folder processed mail is moved to with `processed = "move"`.
    #[serde(default)]
    pub move_to: Option<String>,
    /// Wait for new mail with IMAP IDLE when the server offers it (default true); else poll.
    #[serde(default = "default_idle")]
    pub idle: bool,
    /// PEM file of the CA certificates trusted for this server (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<String>,
}

fn default_idle() -> bool {
    true
}

impl Mailbox {
    /// Messages per fetch and per store transaction.
    pub fn batch(&self) -> u32 {
        self.batch_size
            .unwrap_or(DEFAULT_BATCH_SIZE)
            .clamp(1, MAX_BATCH_SIZE)
    }
}

fn default_imap_port() -> u16 {
    993
}

fn default_folder() -> String {
    "INBOX".to_string()
}

/// True for a loopback host (`localhost`, `127.x.x.x`, `::1`): the only hosts a mailbox may
/// reach without TLS.
/// Only a literal 127.0.0.0/8 address counts: `127.0.0.1.evil.com` is a name anyone can point
/// anywhere.
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "::1" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Mailbox {
    /// Problems within this document.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        if !is_host(&self.host) {
            errors.push(FieldError::new(
                "host",
                format!("\"{}\" is not a host name", self.host),
            ));
        }
        if self.port == 0 {
            errors.push(FieldError::new("port", "must be between 1 and 65535"));
        }
        if self.tls == TlsMode::None && !is_loopback(&self.host) {
            errors.push(FieldError::new(
                "tls",
                "tls = \"none\" would send the password unencrypted; it is only allowed for a loopback host",
            ));
        }
        if self.user.trim().is_empty() {
            errors.push(FieldError::new("user", "must not be empty"));
        }
        if self.folder.trim().is_empty() {
            errors.push(FieldError::new("folder", "must not be empty"));
        }
        errors.extend(mailbox_settings::check_reading(
            &self.folder,
            self.batch_size,
            self.processed,
            self.flag.as_deref(),
            self.move_to.as_deref(),
            self.ca_file.as_deref(),
        ));
        if !is_document_name(&self.workflow) {
            errors.push(FieldError::new(
                "workflow",
                format!("\"{}\" is not a valid workflow name", self.workflow),
            ));
        }
        if let Some(llm) = &self.llm {
            errors.extend(llm.validate());
        }
        errors.extend(self.rules.validate());
        errors
    }
}
