//! Helpers for the SSH endpoint tests: operators with keys made by `ssh-keygen`, a running
//! `gatehouse serve` on a free loopback port, and the real OpenSSH client (in tmux for
//! consoles, directly for refusals).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::e2e_support::{Fixture, WAIT, require_tool, sh_quote};
use crate::support::{Proc, bin};

/// True when tmux, ssh and ssh-keygen are all there (a skip outside CI, a failure under CI).
pub fn tools_present() -> bool {
    require_tool("tmux", "-V") && require_tool("ssh", "-V") && keygen_present()
}

fn keygen_present() -> bool {
    // ssh-keygen has no version flag: it answers `-?` with a usage text and status 1.
    let ok = Command::new("ssh-keygen")
        .arg("-?")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            !crate::support::in_ci(),
            "ssh-keygen is required under CI (tests/servers.sh installs it)"
        );
        eprintln!("SKIPPED: ssh-keygen is not installed (run tests/servers.sh)");
    }
    ok
}

/// The common OpenSSH client options: no host-key prompts, only the given key, quiet.
pub const SSH_OPTS: &[&str] = &[
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "LogLevel=ERROR",
];

/// A store prepared like the console tests' (root an admin, demo workflows), a key directory
/// and, once started, `gatehouse serve` on a free port.
pub struct ServeFixture {
    /// The store, its log and the CLI.
    pub fx: Fixture,
    /// Client keys (`NAME`, `NAME.pub`) and the host key.
    pub keys: tempfile::TempDir,
    /// The SSH port.
    pub port: u16,
    server: Option<Proc>,
}

impl ServeFixture {
    /// A fixture on `url` (None: SQLite) with no server running yet.
    pub fn new(url: Option<String>) -> ServeFixture {
        let keys = tempfile::tempdir().expect("key dir");
        ServeFixture {
            fx: Fixture::new(url),
            keys,
            port: free_port(),
            server: None,
        }
    }

    /// Adds operator `name` with `role` (as root).
    pub fn operator(&self, name: &str, role: &str) {
        self.fx.ok(&["operator", "add", name, "--role", role]);
    }

    /// Makes an ed25519 key pair `NAME`/`NAME.pub`; returns the private key's path.
    pub fn keygen(&self, name: &str) -> PathBuf {
        let path = self.keys.path().join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        path
    }

    /// The SHA256 fingerprint of key `name`, as ssh-keygen prints it.
    pub fn fingerprint(&self, name: &str) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.keys.path().join(format!("{name}.pub")))
            .output()
            .expect("ssh-keygen -l");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
            .to_string()
    }

    /// Makes key `name` and registers it for operator `operator`; returns the key's path.
    pub fn key_for(&self, operator: &str, name: &str) -> PathBuf {
        let key = self.keygen(name);
        let public = format!("{}.pub", key.display());
        self.fx.ok(&["operator", "key", "add", operator, &public]);
        key
    }

    /// Starts `gatehouse serve` and waits until it accepts connections.
    pub fn start(&mut self) {
        let host_key = self.keys.path().join("host_key");
        let child = Command::new(bin())
            .env("GATEHOUSE_DATABASE_URL", &self.fx.url)
            .env("GATEHOUSE_LOG_FILE", &self.fx.log)
            .env("GATEHOUSE_LOG", "info,russh=warn")
            .args(["serve", "--ssh", &format!("127.0.0.1:{}", self.port)])
            .arg("--host-key")
            .arg(&host_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gatehouse serve");
        self.server = Some(Proc(child));
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < WAIT, "gatehouse serve did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server process.
    pub fn server(&mut self) -> &mut Proc {
        self.server.as_mut().expect("server started")
    }

    /// The shell command that opens a console with `key` as SSH user `user`.
    pub fn ssh_console(&self, key: &Path, user: &str) -> String {
        let opts: Vec<String> = SSH_OPTS.iter().map(|o| sh_quote(o)).collect();
        format!(
            "ssh -tt -i {} {} -p {} {}@127.0.0.1",
            sh_quote(&key.display().to_string()),
            opts.join(" "),
            self.port,
            user
        )
    }

    /// Runs the OpenSSH client without a terminal (`BatchMode`: no prompts) with `args`.
    pub fn ssh_batch(&self, args: &[&str]) -> Output {
        Command::new("ssh")
            .args(SSH_OPTS)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// The log of every process of this fixture.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.fx.log).unwrap_or_default()
    }

    /// The number of consoles the server last reported open (0 before any).
    pub fn consoles(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("gatehouse::serve::registry"))
            .filter_map(|l| l.split("consoles=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// Waits until the server reports `n` consoles open.
    pub fn wait_consoles(&self, n: usize) {
        let start = Instant::now();
        while self.consoles() != n {
            assert!(
                start.elapsed() < WAIT,
                "the server reports {} consoles, expected {n}",
                self.consoles()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// The pids of `parent`'s children (from /proc).
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// The frame drawn on `screen` is `width`×`height`: `height` rows were captured, the top
/// row's box closes in the last column, and the lowest box's bottom border spans the width
/// within the last three rows (below it only the hint and flash lines).
pub fn frame_is(screen: &[String], width: usize, height: usize) -> Result<(), String> {
    if screen.len() != height {
        return Err(format!("{} rows captured, expected {height}", screen.len()));
    }
    let top = screen.get(1).map(String::as_str).unwrap_or_default();
    if top.chars().count() != width || !top.ends_with('┐') {
        return Err(format!("row 1 is {} wide: {top:?}", top.chars().count()));
    }
    let Some(lowest) = screen.iter().rposition(|l| l.starts_with('└')) else {
        return Err("no box border".into());
    };
    let bottom = &screen[lowest];
    if lowest + 3 < height || bottom.chars().count() != width || !bottom.ends_with('┘') {
        return Err(format!(
            "lowest border at row {lowest} of {height}, {} wide: {bottom:?}",
            bottom.chars().count()
        ));
    }
    Ok(())
}
