//! The IMAP client of intake (async-imap over tokio, TLS by tokio-rustls): connect with
//! implicit TLS, STARTTLS or (loopback only) no TLS, log in, select a folder, list the UIDs
//! above a position, fetch messages in batches without setting `\Seen`, flag or move what was
//! recorded, and wait for new mail with IDLE (or a plain timeout where IDLE is missing).
//!
//! async-imap has no connect or TLS helper: the TCP stream is opened here, the server's
//! greeting read before logging in, and for STARTTLS the plain stream is taken back from the
//! client after `STARTTLS`, wrapped in TLS and given to a new client (no second greeting).
//! Every server round trip runs under a timeout, so a dead connection surfaces as an error.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use crate::domain::config::{Mailbox, ProcessedAction, TlsMode, is_loopback};
use crate::domain::secret::SecretValue;

/// Longest wait for one server round trip (connect, login, a command).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong talking to an IMAP server; every message names the server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// `tls = "none"` towards a host that is not loopback.
    #[error(
        "{host}:{port}: tls = \"none\" would send the password unencrypted; refused for a host that is not loopback"
    )]
    PlainRefused {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
    },
    /// The password reference could not be resolved.
    #[error("mailbox {mailbox}: password: {message}")]
    Secret {
        /// Mailbox document name.
        mailbox: String,
        /// What failed (never the secret).
        message: String,
    },
    /// TCP connection failed.
    #[error("{host}:{port}: cannot connect: {source}")]
    Connect {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS setup or handshake failed.
    #[error("{host}:{port}: TLS: {message}")]
    Tls {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// What failed.
        message: String,
    },
    /// The CA file could not be read.
    #[error("CA file {path}: {message}")]
    CaFile {
        /// The path.
        path: String,
        /// What failed.
        message: String,
    },
    /// The server refused the login.
    #[error("{host}:{port}: login as {user} refused: {message}")]
    Login {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// Login user.
        user: String,
        /// The server's answer.
        message: String,
    },
    /// A command failed or the connection broke.
    #[error("{host}:{port}: {what}: {message}")]
    Command {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// The command (`SELECT Requests`, `UID FETCH`, ...).
        what: String,
        /// What failed.
        message: String,
    },
    /// The server did not answer in time.
    #[error("{host}:{port}: {what}: no answer within {secs}s")]
    Timeout {
        /// Server host.
        host: String,
        /// Server port.
        port: u16,
        /// What was waited for.
        what: String,
        /// The limit.
        secs: u64,
    },
}

/// How to reach one folder.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection security.
    pub tls: TlsMode,
    /// Login user.
    pub user: String,
    /// Password (prints as `***`).
    pub password: SecretValue,
    /// Folder to read.
    pub folder: String,
    /// CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Limit for each round trip.
    pub timeout: Duration,
}

impl ImapSettings {
    /// Settings from a mailbox document (resolves the password reference).
    pub fn from_mailbox(mailbox: &Mailbox) -> Result<Self, ImapError> {
        let password = mailbox.password.resolve().map_err(|e| ImapError::Secret {
            mailbox: mailbox.name.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            host: mailbox.host.clone(),
            port: mailbox.port,
            tls: mailbox.tls,
            user: mailbox.user.clone(),
            password,
            folder: mailbox.folder.clone(),
            ca_file: mailbox.ca_file.as_ref().map(PathBuf::from),
            timeout: COMMAND_TIMEOUT,
        })
    }
}

/// A plain or TLS stream under the IMAP client.
#[derive(Debug)]
pub enum MailStream {
    /// Unencrypted (loopback only).
    Plain(TcpStream),
    /// TLS (implicit or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A folder's counts as `SELECT` or `STATUS` report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    /// Messages in the folder.
    pub messages: u32,
    /// Messages without `\Seen` (when reported).
    pub unseen: Option<u32>,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The next UID the server will assign (when reported).
    pub uidnext: Option<u32>,
}

/// Which server a connection talks to, for error messages and time limits.
#[derive(Debug, Clone)]
struct Ctx {
    host: String,
    port: u16,
    timeout: Duration,
}

impl Ctx {
    fn err(&self, what: &str, e: impl std::fmt::Display) -> ImapError {
        ImapError::Command {
            host: self.host.clone(),
            port: self.port,
            what: what.to_string(),
            message: e.to_string(),
        }
    }

    /// Runs `fut` under the time limit, naming `what` when it runs out.
    async fn limited<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, ImapError>>,
    ) -> Result<T, ImapError> {
        limited(&self.host, self.port, self.timeout, what, fut).await
    }
}

fn live<'a>(
    session: &'a mut Option<Session<MailStream>>,
    ctx: &Ctx,
    what: &str,
) -> Result<&'a mut Session<MailStream>, ImapError> {
    session
        .as_mut()
        .ok_or_else(|| ctx.err(what, "the connection was lost during IDLE"))
}

/// A logged-in IMAP session.
pub struct ImapConnection {
    session: Option<Session<MailStream>>,
    ctx: Ctx,
    idle: bool,
    moves: bool,
}

impl std::fmt::Debug for ImapConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnection")
            .field("host", &self.ctx.host)
            .field("port", &self.ctx.port)
            .finish()
    }
}

fn tls_config(settings: &ImapSettings) -> Result<Arc<rustls::ClientConfig>, ImapError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let shown = path.display().to_string();
            let ca_err = |message: String| ImapError::CaFile {
                path: shown.clone(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_err(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_err("no certificate in the file".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system root rustls cannot parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls {
            host: settings.host.clone(),
            port: settings.port,
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs `fut` under `limit`, naming `what` when it runs out.
async fn limited<T>(
    host: &str,
    port: u16,
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ImapError::Timeout {
            host: host.to_string(),
            port,
            what: what.to_string(),
            secs: limit.as_secs(),
        }),
    }
}

/// A UID set (`1:5,7,9:12`) from sorted UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

async fn tls_wrap(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ImapError> {
    let config = tls_config(settings)?;
    let tls_err = |message: String| ImapError::Tls {
        host: settings.host.clone(),
        port: settings.port,
        message,
    };
    let name = rustls_pki_types::ServerName::try_from(settings.host.clone())
        .map_err(|e| tls_err(format!("not a valid server name: {e}")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(e.to_string()))
}

/// Read the server's greeting (the first untagged response).
async fn greeting(
    client: &mut Client<MailStream>,
    settings: &ImapSettings,
) -> Result<(), ImapError> {
    let message = match client.read_response().await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => "the server closed the connection".to_string(),
        Err(e) => e.to_string(),
    };
    Err(ImapError::Command {
        host: settings.host.clone(),
        port: settings.port,
        what: "greeting".into(),
        message,
    })
}

impl ImapConnection {
    /// Connect, secure the connection as `settings.tls` says, and log in.
    pub async fn connect(settings: &ImapSettings) -> Result<ImapConnection, ImapError> {
        let (host, port) = (settings.host.as_str(), settings.port);
        if settings.tls == TlsMode::None && !is_loopback(host) {
            return Err(ImapError::PlainRefused {
                host: host.to_string(),
                port,
            });
        }
        let ctx = Ctx {
            host: host.to_string(),
            port,
            timeout: settings.timeout,
        };
        ctx.limited("connect and log in", async {
            let tcp =
                TcpStream::connect((host, port))
                    .await
                    .map_err(|source| ImapError::Connect {
                        host: host.to_string(),
                        port,
                        source,
                    })?;
            let _ = tcp.set_nodelay(true);
            let client = match settings.tls {
                TlsMode::Implicit => {
                    let tls = tls_wrap(settings, tcp).await?;
                    let mut client = Client::new(MailStream::Tls(Box::new(tls)));
                    greeting(&mut client, settings).await?;
                    client
                }
                TlsMode::None => {
                    let mut client = Client::new(MailStream::Plain(tcp));
                    greeting(&mut client, settings).await?;
                    client
                }
                TlsMode::Starttls => {
                    let mut client = Client::new(MailStream::Plain(tcp));
                    greeting(&mut client, settings).await?;
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| ctx.err("STARTTLS", e))?;
                    let MailStream::Plain(tcp) = client.into_inner() else {
                        return Err(ctx.err("STARTTLS", "the connection is already secured"));
                    };
                    let tls = tls_wrap(settings, tcp).await?;
                    Client::new(MailStream::Tls(Box::new(tls)))
                }
            };
            let mut session = client
                .login(&settings.user, settings.password.expose())
                .await
                .map_err(|(e, _)| ImapError::Login {
                    host: host.to_string(),
                    port,
                    user: settings.user.clone(),
                    message: e.to_string(),
                })?;
            let caps = session
                .capabilities()
                .await
                .map_err(|e| ctx.err("CAPABILITY", e))?;
            Ok((caps.has_str("IDLE"), caps.has_str("MOVE"), session))
        })
        .await
        .map(|(idle, moves, session)| ImapConnection {
            session: Some(session),
            ctx: ctx.clone(),
            idle,
            moves,
        })
    }

    /// True when the server offers IDLE.
    pub fn supports_idle(&self) -> bool {
        self.idle
    }

    /// `SELECT` the folder (read-write, so flags and moves work); its counts.
    pub async fn select(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        let what = format!("SELECT {folder}");
        let Self { session, ctx, .. } = self;
        let mailbox = ctx
            .limited(&what, async {
                live(session, ctx, &what)?
                    .select(folder)
                    .await
                    .map_err(|e| ctx.err(&what, e))
            })
            .await?;
        Ok(FolderStatus {
            messages: mailbox.exists,
            unseen: mailbox.unseen,
            uidvalidity: mailbox.uid_validity.ok_or_else(|| {
                ctx.err(&what, "the server reported no UIDVALIDITY for the folder")
            })?,
            uidnext: mailbox.uid_next,
        })
    }

    /// `STATUS` of a folder: messages, unseen, UIDVALIDITY, UIDNEXT.
    pub async fn status(&mut self, folder: &str) -> Result<FolderStatus, ImapError> {
        let what = format!("STATUS {folder}");
        let Self { session, ctx, .. } = self;
        let mailbox = ctx
            .limited(&what, async {
                live(session, ctx, &what)?
                    .status(folder, "(MESSAGES UNSEEN UIDVALIDITY UIDNEXT)")
                    .await
                    .map_err(|e| ctx.err(&what, e))
            })
            .await?;
        Ok(FolderStatus {
            messages: mailbox.exists,
            unseen: mailbox.unseen,
            uidvalidity: mailbox
                .uid_validity
                .ok_or_else(|| ctx.err(&what, "the server reported no UIDVALIDITY"))?,
            uidnext: mailbox.uid_next,
        })
    }

    /// UIDs above `last_uid` in the selected folder, ascending.
    pub async fn uids_above(&mut self, last_uid: u32) -> Result<Vec<u32>, ImapError> {
        let what = "UID SEARCH";
        let Self { session, ctx, .. } = self;
        let found = ctx
            .limited(what, async {
                live(session, ctx, what)?
                    .uid_search(format!("UID {}:*", last_uid.saturating_add(1)))
                    .await
                    .map_err(|e| ctx.err(what, e))
            })
            .await?;
        // `n:*` always matches the highest UID, even when it is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last_uid).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Fetch the raw messages of `uids` (`BODY.PEEK[]`: `\Seen` is not set), by UID. A UID
    /// the server no longer has (expunged meanwhile) is simply absent from the answer.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("UID FETCH of {} messages", uids.len());
        let set = uid_set(uids);
        let Self { session, ctx, .. } = self;
        let mut out = ctx
            .limited(&what, async {
                let stream = live(session, ctx, &what)?
                    .uid_fetch(&set, "(UID BODY.PEEK[])")
                    .await
                    .map_err(|e| ctx.err(&what, e))?;
                let fetched: Vec<_> = stream.try_collect().await.map_err(|e| ctx.err(&what, e))?;
                let mut out = Vec::with_capacity(fetched.len());
                for f in fetched {
                    if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                        out.push((uid, body.to_vec()));
                    }
                }
                Ok(out)
            })
            .await?;
        out.sort_by_key(|(uid, _)| *uid);
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// After the store committed them: set `flag` on `uids`, or move them to `move_to`
    /// (`MOVE` when offered, else `COPY` + `\Deleted` + `UID EXPUNGE`), or nothing for `keep`.
    pub async fn mark_processed(
        &mut self,
        uids: &[u32],
        action: ProcessedAction,
        flag: Option<&str>,
        move_to: Option<&str>,
    ) -> Result<(), ImapError> {
        if uids.is_empty() || action == ProcessedAction::Keep {
            return Ok(());
        }
        let set = uid_set(uids);
        let moves = self.moves;
        let Self { session, ctx, .. } = self;
        match action {
            ProcessedAction::Keep => Ok(()),
            ProcessedAction::Flag => {
                let flag = flag.unwrap_or("\\Seen");
                let what = format!("UID STORE {flag}");
                ctx.limited(&what, async {
                    let stream = live(session, ctx, &what)?
                        .uid_store(&set, format!("+FLAGS.SILENT ({flag})"))
                        .await
                        .map_err(|e| ctx.err(&what, e))?;
                    let _: Vec<_> = stream.try_collect().await.map_err(|e| ctx.err(&what, e))?;
                    Ok(())
                })
                .await
            }
            ProcessedAction::Move => {
                let target = move_to.ok_or_else(|| ctx.err("UID MOVE", "no move_to folder"))?;
                let what = format!("UID MOVE to {target}");
                ctx.limited(&what, async {
                    let s = live(session, ctx, &what)?;
                    if moves {
                        s.uid_mv(&set, target)
                            .await
                            .map_err(|e| ctx.err(&what, e))?;
                        return Ok(());
                    }
                    s.uid_copy(&set, target)
                        .await
                        .map_err(|e| ctx.err(&what, e))?;
                    let stream = s
                        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                        .await
                        .map_err(|e| ctx.err(&what, e))?;
                    let _: Vec<_> = stream.try_collect().await.map_err(|e| ctx.err(&what, e))?;
                    let stream = s.uid_expunge(&set).await.map_err(|e| ctx.err(&what, e))?;
                    let _: Vec<_> = stream.try_collect().await.map_err(|e| ctx.err(&what, e))?;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Wait up to `wait` for new mail: IDLE when the server offers it and `idle` is true
    /// (true when the server reported a change), else a `NOOP` after the wait (true: check
    /// again).
    pub async fn wait_for_mail(&mut self, wait: Duration, idle: bool) -> Result<bool, ImapError> {
        if !(self.idle && idle) {
            tokio::time::sleep(wait).await;
            let Self { session, ctx, .. } = self;
            ctx.limited("NOOP", async {
                live(session, ctx, "NOOP")?
                    .noop()
                    .await
                    .map_err(|e| ctx.err("NOOP", e))
            })
            .await?;
            return Ok(true);
        }
        let ctx = self.ctx.clone();
        let session = self
            .session
            .take()
            .ok_or_else(|| ctx.err("IDLE", "the connection was lost during IDLE"))?;
        let mut handle = session.idle();
        ctx.limited("IDLE", async {
            handle.init().await.map_err(|e| ctx.err("IDLE", e))
        })
        .await?;
        let woke = {
            let (idle_wait, _stop) = handle.wait_with_timeout(wait);
            match idle_wait.await {
                Ok(async_imap::extensions::idle::IdleResponse::NewData(_)) => true,
                Ok(_) => false,
                Err(e) => return Err(ctx.err("IDLE", e)),
            }
        };
        let session = ctx
            .limited("IDLE DONE", async {
                handle.done().await.map_err(|e| ctx.err("IDLE DONE", e))
            })
            .await?;
        while session.unsolicited_responses.try_recv().is_ok() {}
        self.session = Some(session);
        Ok(woke)
    }

    /// Log out (best effort, bounded).
    pub async fn logout(mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[9]), "9");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(
            uid_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }
}
