//! The operators' door: a built-in SSH endpoint. A connection authenticates with a public key
//! kept in the store (nothing else is accepted), acts as that key's operator with the role and
//! scopes the store holds, and gets its own console on the pty it asked for. Only this
//! process holds the store's credentials; there is no shell and no command to run.
//!
//! The SSH user name is ignored: the key alone says who connects (it is logged).

mod handler;
pub mod hostkey;
pub mod input;
mod registry;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::MethodKind;
use russh::server::Config;
use tokio::net::TcpListener;

use crate::store::Store;

pub use registry::Counts;

/// How the endpoint runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The host key file (created when missing).
    pub host_key: PathBuf,
    /// Most connections at once, all keys together (counted from TCP accept).
    pub max_connections: usize,
    /// Most authenticated connections at once per key.
    pub max_per_key: usize,
    /// A connection with no input from its client for this long is closed.
    pub idle_timeout: Duration,
    /// Authentication attempts allowed per connection.
    pub max_auth_attempts: usize,
    /// Theme name for every session.
    pub theme: String,
    /// Where user themes and `keymap.toml` are read from (the service account's).
    pub config_dir: Option<PathBuf>,
}

/// Why the endpoint could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The host key file is missing, unreadable, not private or not a key.
    #[error("host key {}: {message}", path.display())]
    HostKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's answer.
        #[source]
        source: std::io::Error,
    },
    /// An SSH protocol failure on one connection.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    /// A store failure while authenticating.
    #[error("store: {0}")]
    Store(#[from] crate::store::error::StoreError),
}

/// The text a console shows as it is closed because the server stops.
pub const STOPPING_MESSAGE: &str =
    "gatehouse: the server is stopping; this console is closed. Reconnect when it is back.\r\n";

/// How long consoles get to close after a stop before connections are cut.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long cut connections get to send their last bytes before the process ends.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// The server's part of every connection: store, limits, the sessions now open.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) options: ServeOptions,
    pub(crate) registry: registry::Registry,
}

/// The running endpoint's listening address and counters (for tests and benchmarks).
#[derive(Clone)]
pub struct Endpoint {
    shared: Arc<Shared>,
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
}

impl Endpoint {
    /// Connections and consoles open now.
    pub fn counts(&self) -> Counts {
        self.shared.registry.counts()
    }
}

/// Loads or creates the host key and binds the listening socket: every user-caused failure
/// (unreadable key, address in use) is reported here, before anything is served.
pub async fn bind(
    store: Store,
    options: ServeOptions,
) -> Result<(Endpoint, TcpListener, Arc<Config>), ServeError> {
    let (key, created) = hostkey::load_or_create(&options.host_key)?;
    if created {
        tracing::info!(path = %options.host_key.display(), "created the SSH host key");
    }
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.addr,
        source,
    })?;
    let config = Config {
        server_id: russh::SshId::Standard(std::borrow::Cow::Borrowed(concat!(
            "SSH-2.0-gatehouse_",
            env!("CARGO_PKG_VERSION")
        ))),
        methods: russh::MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key],
        max_auth_attempts: options.max_auth_attempts,
        inactivity_timeout: Some(options.idle_timeout),
        keepalive_interval: None,
        nodelay: true,
        ..Default::default()
    };
    let shared = Arc::new(Shared {
        store,
        registry: registry::Registry::new(options.max_connections, options.max_per_key),
        options,
    });
    Ok((Endpoint { shared, local_addr }, listener, Arc::new(config)))
}

/// Serves connections until `stop` completes; then every console is told the server is
/// stopping and closed, and the remaining connections are cut.
pub async fn run(
    endpoint: Endpoint,
    listener: TcpListener,
    config: Arc<Config>,
    stop: impl Future<Output = ()>,
) {
    let shared = endpoint.shared.clone();
    tracing::info!(addr = %endpoint.local_addr, "serving the console over SSH");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(slot) = shared.registry.connection_slot() else {
                    tracing::warn!(peer = %peer, limit = shared.options.max_connections, "connection refused: too many connections");
                    drop(socket);
                    continue;
                };
                let shared = shared.clone();
                let config = config.clone();
                tokio::spawn(async move {
                    let handler = handler::ConnectionHandler::new(shared.clone(), peer);
                    match russh::server::run_stream(config, socket, handler).await {
                        Ok(session) => {
                            let id = shared.registry.add_connection(session.handle());
                            if let Err(e) = session.await {
                                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                            }
                            shared.registry.remove_connection(id);
                        }
                        Err(e) => tracing::debug!(peer = %peer, error = %e, "connection setup failed"),
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let open = shared.registry.stop_consoles(STOPPING_MESSAGE);
    tracing::info!(consoles = open, "stopping: consoles told to close");
    // Consoles close their channels after the farewell, and clients then close their
    // connections. Disconnecting earlier could overtake the farewell still queued in a session
    // (russh serves its handle's messages and channel data from separate queues), so wait for
    // the connections themselves to end, within the grace; then cut what is left.
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    while tokio::time::Instant::now() < deadline {
        let open = shared.registry.counts();
        if open.consoles == 0 && open.connections == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.registry.disconnect_all().await;
    // Each session writes what it still holds (the farewell, the channel close, the
    // disconnect) from its own task: returning now would end the runtime, and those tasks,
    // before the bytes left. Wait for the sessions to end, within a bound.
    let deadline = tokio::time::Instant::now() + DISCONNECT_GRACE;
    while shared.registry.counts().connections > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!("stopped serving");
}
