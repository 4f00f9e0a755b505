//! `gatehouse serve`: reads the command line's options, then runs the SSH endpoint until
//! SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::args::ServeArgs;
use super::{CliError, Context};
use crate::serve::{ServeOptions, bind, hostkey};
use crate::store::Store;

/// Run the SSH endpoint until SIGTERM or SIGINT.
pub async fn run(store: Store, args: ServeArgs) -> Result<ExitCode, CliError> {
    let addr: SocketAddr = args.ssh.parse().map_err(|_| {
        CliError::msg(
            format!("--ssh {}", args.ssh),
            "not an address and port such as 127.0.0.1:2222 or [::1]:2222",
        )
    })?;
    for (flag, value) in [
        ("--max-sessions", args.max_sessions),
        ("--max-sessions-per-key", args.max_sessions_per_key),
        ("--max-auth-attempts", args.max_auth_attempts),
    ] {
        if value == 0 {
            return Err(CliError::msg(flag, "must be at least 1"));
        }
    }
    let options = ServeOptions {
        addr,
        host_key: args.host_key.unwrap_or_else(hostkey::default_path),
        max_connections: args.max_sessions,
        max_per_key: args.max_sessions_per_key,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
        max_auth_attempts: args.max_auth_attempts,
        theme: args.theme,
        config_dir: crate::tui::config_dir(),
    };
    let (endpoint, listener, config) = bind(store, options)
        .await
        .context(|| "starting the SSH endpoint".into())?;
    eprintln!(
        "gatehouse: serving the console over SSH on {}",
        endpoint.local_addr
    );
    let stop = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    crate::serve::run(endpoint, listener, config, stop).await;
    Ok(ExitCode::SUCCESS)
}
