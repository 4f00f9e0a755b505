//! SMTP sending with lettre: one pooled transport per notifier document (a changed document
//! gets a new pool), one message per recipient so each recipient's outcome is known, and the
//! SMTP reply classified as transient (4xx, connection, timeout) or permanent (5xx, bad
//! address).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::domain::config::{Notifier, TlsMode};

/// Why a notifier cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The document's values cannot build a transport (sender, TLS parameters).
    #[error("notifier \"{notifier}\": {message}")]
    Config {
        /// The notifier document.
        notifier: String,
        /// What is wrong.
        message: String,
    },
    /// The password reference cannot be read.
    #[error("notifier \"{notifier}\": password: {message}")]
    Secret {
        /// The notifier document.
        notifier: String,
        /// Why the reference did not resolve (never the secret).
        message: String,
    },
}

/// One message to send, the same text to every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient addresses (`a@example.com`); each gets its own message.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML body; when set the message is multipart/alternative (text first, then HTML).
    pub html: Option<String>,
    /// `Reply-To` address (approval mails: the plus-addressed reply address with the token).
    pub reply_to: Option<String>,
    /// The Message-ID (without angle brackets) this message answers: `In-Reply-To` and
    /// `References` (ignored unless it is one plain word).
    pub in_reply_to: Option<String>,
}

/// A recipient the message did not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientFailure {
    /// The address.
    pub recipient: String,
    /// True when retrying cannot help (5xx reply, invalid address).
    pub permanent: bool,
    /// What the server or the client said.
    pub reason: String,
}

/// What happened to each recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReport {
    /// Recipients the server accepted the message for.
    pub delivered: Vec<String>,
    /// Recipients it did not reach.
    pub failed: Vec<RecipientFailure>,
}

/// A pooled SMTP transport for one notifier document.
pub struct Mailer {
    name: String,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("name", &self.name)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Mailers by notifier name, with the document text they were built from.
type Cache = Mutex<HashMap<String, (String, Arc<Mailer>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Mailer {
    /// Builds the transport for `notifier` (resolving its password reference now).
    pub fn new(notifier: &Notifier) -> Result<Self, NotifyError> {
        let config = |message: String| NotifyError::Config {
            notifier: notifier.name.clone(),
            message,
        };
        let from: Mailbox = notifier
            .from
            .parse()
            .map_err(|e| config(format!("from: {e}")))?;
        let tls_params = || {
            let mut builder = TlsParameters::builder(notifier.host.clone());
            if let Some(path) = &notifier.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| config(format!("ca_file {path}: cannot read: {e}")))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| config(format!("ca_file {path}: {e}")))?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| config(format!("TLS parameters for {}: {e}", notifier.host)))
        };
        let tls = match notifier.tls {
            TlsMode::Implicit => Tls::Wrapper(tls_params()?),
            TlsMode::Starttls => Tls::Required(tls_params()?),
            TlsMode::None => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(notifier.host.clone())
                .port(notifier.port())
                .tls(tls)
                .timeout(Some(notifier.timeout()))
                .pool_config(PoolConfig::new().max_size(4));
        if let (Some(user), Some(password)) = (&notifier.user, &notifier.password) {
            let secret = password.resolve().map_err(|e| NotifyError::Secret {
                notifier: notifier.name.clone(),
                message: e.to_string(),
            })?;
            builder =
                builder.credentials(Credentials::new(user.clone(), secret.expose().to_string()));
        }
        Ok(Self {
            name: notifier.name.clone(),
            from,
            transport: builder.build(),
        })
    }

    /// The shared mailer of a notifier document: built once per document text, so its
    /// connection pool is reused by every job of this process until the document changes.
    pub fn shared(notifier: &Notifier, document_text: &str) -> Result<Arc<Self>, NotifyError> {
        if let Ok(map) = cache().lock()
            && let Some((text, mailer)) = map.get(&notifier.name)
            && text == document_text
        {
            return Ok(mailer.clone());
        }
        let mailer = Arc::new(Self::new(notifier)?);
        if let Ok(mut map) = cache().lock() {
            map.insert(
                notifier.name.clone(),
                (document_text.to_string(), mailer.clone()),
            );
        }
        Ok(mailer)
    }

    /// The notifier document's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `mail` to each recipient in turn and reports each one's outcome.
    pub async fn send(&self, mail: &OutgoingMail) -> SendReport {
        let mut report = SendReport::default();
        for recipient in &mail.to {
            match self.send_one(recipient, mail).await {
                Ok(()) => {
                    debug!(notifier = %self.name, %recipient, "mail accepted");
                    report.delivered.push(recipient.clone());
                }
                Err(failure) => {
                    warn!(notifier = %self.name, %recipient, reason = %failure.reason, permanent = failure.permanent, "mail not accepted");
                    report.failed.push(failure);
                }
            }
        }
        report
    }

    async fn send_one(&self, recipient: &str, mail: &OutgoingMail) -> Result<(), RecipientFailure> {
        let failure = |permanent: bool, reason: String| RecipientFailure {
            recipient: recipient.to_string(),
            permanent,
            reason,
        };
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| failure(true, format!("invalid address: {e}")))?;
        let domain = self.from.email.domain().to_string();
        let message = Message::builder()
            .message_id(Some(format!(
                "<gatehouse.{:016x}{:016x}@{domain}>",
                fastrand::u64(..),
                fastrand::u64(..)
            )))
            .from(self.from.clone())
            .to(to);
        let message = match &mail.reply_to {
            Some(address) => message.reply_to(
                address
                    .parse::<Mailbox>()
                    .map_err(|e| failure(true, format!("invalid Reply-To {address}: {e}")))?,
            ),
            None => message,
        };
        let message = match mail.in_reply_to.as_deref().filter(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
        }) {
            Some(id) => message
                .in_reply_to(format!("<{id}>"))
                .references(format!("<{id}>")),
            None => message,
        };
        let message = message.subject(mail.subject.clone());
        let built = match &mail.html {
            Some(html) => message.multipart(MultiPart::alternative_plain_html(
                mail.body.clone(),
                html.clone(),
            )),
            None => message
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone()),
        };
        let message = built.map_err(|e| failure(true, format!("cannot build the message: {e}")))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            let permanent = e.is_permanent() || e.is_client();
            let reason = match e.status() {
                Some(code) => format!("SMTP {code}: {e}"),
                None => e.to_string(),
            };
            failure(permanent, reason)
        })
    }
}
