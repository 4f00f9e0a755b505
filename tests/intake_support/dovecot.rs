//! The Dovecot test server (started by `tests/servers.sh`): its address from the env file, a
//! fresh folder per test created over IMAP, APPEND, and a TCP proxy that can cut or slow the
//! connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_imap::Client;
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::in_ci;

/// Where the test Dovecot listens.
#[derive(Debug, Clone)]
pub struct Dovecot {
    /// Host (loopback).
    pub host: String,
    /// Plain / STARTTLS port.
    pub port: u16,
    /// Implicit TLS port.
    pub tls_port: u16,
    /// Password of every test user.
    pub password: String,
    /// The test CA's PEM file.
    pub ca: String,
}

/// The test Dovecot, or `None` (skip) outside CI when it is not running.
pub async fn dovecot() -> Option<Dovecot> {
    let env = |k: &str| std::env::var(k).ok();
    let found = match (
        env("GATEHOUSE_TEST_IMAP_HOST"),
        env("GATEHOUSE_TEST_IMAP_PORT").and_then(|p| p.parse().ok()),
        env("GATEHOUSE_TEST_IMAPS_PORT").and_then(|p| p.parse().ok()),
        env("GATEHOUSE_TEST_IMAP_PASSWORD"),
        env("GATEHOUSE_TEST_IMAP_CA"),
    ) {
        (Some(host), Some(port), Some(tls_port), Some(password), Some(ca)) => Some(Dovecot {
            host,
            port,
            tls_port,
            password,
            ca,
        }),
        _ => None,
    };
    let reachable = match &found {
        Some(d) => TcpStream::connect((d.host.as_str(), d.port)).await.is_ok(),
        None => false,
    };
    if reachable {
        return found;
    }
    if in_ci() {
        panic!(
            "Dovecot is not running under CI: run `bash tests/servers.sh start` and source /tmp/gatehouse-test-servers/env"
        );
    }
    eprintln!(
        "SKIPPED: no Dovecot (run `bash tests/servers.sh start`, then source /tmp/gatehouse-test-servers/env)"
    );
    None
}

/// A logged-in plain IMAP session for setting folders up.
pub type Admin = async_imap::Session<TcpStream>;

impl Dovecot {
    /// Log in as `user` over plain IMAP (loopback).
    pub async fn admin(&self, user: &str) -> Admin {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .expect("connect to Dovecot");
        let mut client = Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(user, &self.password)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// A fresh empty folder of `user`, named after `tag`.
    pub async fn fresh_folder(&self, user: &str, tag: &str) -> String {
        let name = format!(
            "t{tag}{}x{:06x}",
            std::process::id(),
            fastrand::u32(..0xffffff)
        );
        let mut s = self.admin(user).await;
        s.create(&name).await.expect("create folder");
        s.logout().await.expect("logout");
        name
    }
}

/// Append each message to `folder`.
pub async fn append_all(session: &mut Admin, folder: &str, messages: &[Vec<u8>]) {
    for m in messages {
        session.append(folder, None, None, m).await.expect("append");
    }
}

/// UIDs in `folder` (selected read-only).
pub async fn count(session: &mut Admin, folder: &str) -> u32 {
    session.examine(folder).await.expect("examine").exists
}

/// Flags of every message in `folder`.
pub async fn flags(session: &mut Admin, folder: &str) -> Vec<String> {
    session.examine(folder).await.expect("examine");
    let fetched: Vec<_> = session
        .fetch("1:*", "FLAGS")
        .await
        .expect("fetch")
        .try_collect()
        .await
        .expect("flags");
    fetched
        .iter()
        .map(|f| {
            f.flags()
                .map(|fl| format!("{fl:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// How a [`Proxy`] treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ProxyMode {
    /// The first this many connections are cut after `cut_after` bytes from the server.
    pub cut_connections: usize,
    /// Bytes passed from the server before a cut.
    pub cut_after: usize,
    /// Pause after each chunk from the server (slows reading down).
    pub delay_per_chunk: Duration,
}

/// A TCP proxy on loopback in front of Dovecot.
pub struct Proxy {
    /// Its port.
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a proxy to `target_port` on loopback.
pub async fn proxy(target_port: u16, mode: ProxyMode) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let cut = (n < mode.cut_connections).then_some(mode.cut_after);
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                };
                let down = async {
                    let mut buf = vec![0u8; 4096];
                    let mut passed = 0usize;
                    while let Ok(k) = sr.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                        let k = match cut {
                            Some(limit) if passed + k >= limit => {
                                let _ = cw.write_all(&buf[..limit.saturating_sub(passed)]).await;
                                break;
                            }
                            _ => k,
                        };
                        if cw.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                        passed += k;
                        if !mode.delay_per_chunk.is_zero() {
                            tokio::time::sleep(mode.delay_per_chunk).await;
                        }
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    Proxy {
        port,
        connections,
        task,
    }
}
