//! Helpers for the console end-to-end tests: a private tmux server per test (sessions killed on
//! drop), screen polling with a timeout, and a fixture that prepares a store with the demo
//! workflows, an admin operator, requests and a running worker, and reads the store back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatehouse::store::api::{AuditFilter, AuditRow, ConfigVersion, ReadApi, RequestDetail};
use gatehouse::store::{OpenOptions, Store};

use crate::support::{Proc, bin, in_ci, spawn_worker};

/// The login name every console in these tests runs as (an admin in the store).
pub const OPERATOR: &str = "root";

/// Who asks for the requests the tests enter (a person in the demo directory).
pub const REQUESTER: &str = "carol";

/// The approvals list title an admin sees.
pub const INBOX: &str = "approvals: all pending (admin)";

/// How long a screen or the store may take to show an expected change.
pub const WAIT: Duration = Duration::from_secs(15);

/// True when `tool` runs; outside CI a missing tool prints a note and the caller skips,
/// under CI (env `CI` set) it fails the test.
pub fn require_tool(tool: &str, version_flag: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if in_ci() {
            panic!("{tool} is required under CI (tests/servers.sh installs it)");
        }
        eprintln!("SKIPPED: {tool} is not installed (run tests/servers.sh)");
    }
    ok
}

/// Quote `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A tmux server on its own socket; every session on it dies with it.
pub struct Tmux {
    socket: String,
    /// Each session's shell writes its program's exit status here (`NAME.status`).
    statuses: tempfile::TempDir,
}

impl Tmux {
    /// A fresh server name for `tag` (nothing runs until the first session).
    pub fn new(tag: &str) -> Tmux {
        Tmux {
            socket: format!(
                "gh-e2e-{tag}-{}-{:06x}",
                std::process::id(),
                fastrand::u32(..0xffffff)
            ),
            statuses: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        // `-u`: UTF-8 whatever the locale, so box drawing survives capture-pane.
        c.arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null");
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts a detached session `name` of `width`×`height` running `shell_command`; the pane
    /// stays after the program exits so its last screen can still be read, and the program's exit
    /// status is kept for [`Tmux::exit_status`].
    pub fn start(&self, name: &str, width: u16, height: u16, shell_command: &str) {
        // tmux sometimes leaves a finished pane process unreaped for a long while, so it cannot
        // be asked for the status; a wrapping shell records it instead.
        let status = self.statuses.path().join(format!("{name}.status"));
        let wrapped = format!(
            "{shell_command}; echo $? > {}",
            sh_quote(&status.display().to_string())
        );
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            &wrapped,
            ";",
            "set-option",
            "-t",
            name,
            "remain-on-exit",
            "on",
        ]);
    }

    /// Sends tmux key names (`Enter`, `Escape`, `C-s`, `a`, `Space` …), one after another.
    pub fn keys(&self, session: &str, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", session, key]);
        }
    }

    /// Types `text` literally.
    pub fn type_text(&self, session: &str, text: &str) {
        self.run(&["send-keys", "-t", session, "-l", text]);
    }

    /// The visible screen, one string per row (trailing blanks trimmed by tmux).
    pub fn capture(&self, session: &str) -> Vec<String> {
        let out = self.run(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Resizes the session's window.
    pub fn resize(&self, session: &str, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// The pid of the shell running in the session's pane.
    pub fn pane_pid(&self, session: &str) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", session, "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("tmux pane_pid")
    }

    /// The exit status of the session's program, once it has ended.
    pub fn exit_status(&self, session: &str) -> Option<String> {
        let status = self.statuses.path().join(format!("{session}.status"));
        let text = std::fs::read_to_string(status).ok()?;
        // The shell writes the line in one go; a half-written file reads as empty.
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// True while the session's program is still running.
    pub fn alive(&self, session: &str) -> bool {
        self.exit_status(session).is_none()
    }

    /// Polls the screen until `check` holds; panics with `what` and the last screen after `limit`.
    pub fn wait_for(
        &self,
        session: &str,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        self.wait_ok(session, limit, |s| {
            if check(s) {
                Ok(())
            } else {
                Err(format!("did not show {what}"))
            }
        })
    }

    /// Polls the screen until `check` answers `Ok`; panics with its last answer and the last
    /// screen after `limit`.
    pub fn wait_ok(
        &self,
        session: &str,
        limit: Duration,
        mut check: impl FnMut(&[String]) -> Result<(), String>,
    ) -> Vec<String> {
        let start = Instant::now();
        loop {
            let screen = self.capture(session);
            let verdict = check(&screen);
            match verdict {
                Ok(()) => return screen,
                Err(problem) if start.elapsed() > limit => panic!(
                    "screen of {session} after {limit:?}: {problem}\n{}",
                    screen.join("\n")
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(40)),
            }
        }
    }

    /// Polls until some row contains `text`.
    pub fn wait_text(&self, session: &str, text: &str) -> Vec<String> {
        self.wait_for(session, &format!("{text:?}"), WAIT, |s| {
            s.iter().any(|l| l.contains(text))
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Types `/text` + Enter on the current view (checking the prompt line shows what was typed),
/// then waits until the list titled `title` shows the filter with `count` rows.
pub fn filter(tmux: &Tmux, session: &str, title: &str, text: &str, count: usize) -> Vec<String> {
    let on_prompt = |s: &[String], typed: &str| {
        s.last()
            .is_some_and(|l| l.starts_with(&format!("/{typed}▏")))
    };
    tmux.keys(session, &["/"]);
    tmux.wait_for(session, "the filter prompt", WAIT, |s| on_prompt(s, ""));
    tmux.type_text(session, text);
    tmux.wait_for(session, "the typed filter", WAIT, |s| on_prompt(s, text));
    tmux.keys(session, &["Enter"]);
    tmux.wait_text(session, &format!("{title} /{text} [{count}]"))
}

/// The whole screen as one string, for messages.
pub fn dump(screen: &[String]) -> String {
    screen.join("\n")
}

/// A prepared store: demo workflows (the provisioning target a file in the test directory),
/// `root` an admin, a worker once [`Fixture::start_worker`] ran, and a read-only handle for
/// checks.
pub struct Fixture {
    /// Keeps the test directory alive.
    pub dir: tempfile::TempDir,
    /// Store URL.
    pub url: String,
    /// Log file of every process started here.
    pub log: PathBuf,
    /// The provisioning target's SQLite file (absent until [`Fixture::prepare_target`]).
    pub target: PathBuf,
    /// Runs the store reads.
    pub rt: tokio::runtime::Runtime,
    /// Read-only handle on the store.
    pub store: Store,
    worker: Option<Proc>,
}

impl Fixture {
    /// A fixture on `url` (None: a SQLite file in a fresh directory).
    pub fn new(url: Option<String>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        // sshd sessions and tmux panes read these paths; keep the directory traversable.
        set_mode(dir.path(), 0o755);
        let url = url.unwrap_or_else(|| crate::support::sqlite_url(dir.path()));
        let log = dir.path().join("gatehouse.log");
        let target = dir.path().join("target.db");
        let configs = dir.path().join("configs");
        std::fs::create_dir(&configs).expect("configs dir");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/demo/configs");
        for entry in std::fs::read_dir(&source).expect("demo configs") {
            let path = entry.expect("entry").path();
            let original = std::fs::read_to_string(&path).expect("read demo config");
            let body = original.replace(
                "url = \"sqlite://\"",
                &format!("url = \"sqlite:{}\"", target.display()),
            );
            assert!(
                !original.contains("backend = \"sql\"") || body != original,
                "{}: the sql connector's url = \"sqlite://\" line moved; update the fixture",
                path.display()
            );
            std::fs::write(configs.join(path.file_name().expect("file name")), body)
                .expect("write config");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let configs_arg = configs.to_str().expect("utf-8 path");
        // The test runs as OPERATOR's uid and owns the store file: it creates the first admin.
        cli_ok(
            &url,
            &log,
            &["operator", "add", OPERATOR, "--role", "admin"],
        );
        cli_ok(&url, &log, &["config", "import", configs_arg]);
        let opts = OpenOptions {
            read_only: true,
            max_connections: 2,
            create: false,
        };
        let store = rt
            .block_on(Store::open(&url, opts))
            .expect("open the store read-only");
        Fixture {
            dir,
            url,
            log,
            target,
            rt,
            store,
            worker: None,
        }
    }

    /// Starts the worker (4 jobs at once).
    pub fn start_worker(&mut self) {
        self.worker = Some(spawn_worker(&self.url, &self.log, &["--concurrency", "4"]));
    }

    /// Creates the provisioning target's tables so `create-account` steps succeed.
    pub fn prepare_target(&self) {
        self.rt
            .block_on(gatehouse::connectors::sql::prepare_demo_target(
                &self.target,
            ))
            .expect("prepare the target database");
    }

    /// Runs the CLI as the operator.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.url, &self.log, args)
    }

    /// Runs the CLI and returns stdout; panics (with the output) unless it succeeded.
    pub fn ok(&self, args: &[&str]) -> String {
        cli_ok(&self.url, &self.log, args)
    }

    /// Creates a sales-joiner request for `name`, as the e-mail intake would (the operator
    /// who decides it must not be its requester or creator); returns its id.
    pub fn new_request(&self, name: &str, username: &str) -> i64 {
        use gatehouse::store::api::{Actor, CommandApi, NewRequest};
        let request = NewRequest {
            workflow: "sales-joiner".into(),
            kind: "joiner".into(),
            subject_name: name.into(),
            subject_email: Some(format!("{username}@example.com")),
            username: Some(username.into()),
            requester: REQUESTER.into(),
            source: "email".into(),
            payload: serde_json::json!({
                "team": "sales",
                "start_date": "2099-01-05",
                "manager": "bob",
            }),
        };
        self.rt.block_on(async {
            let store = Store::open(&self.url, OpenOptions::default())
                .await
                .expect("open the store to enter a request");
            let row = store
                .create_request(&Actor::system("intake", "e2e"), request)
                .await
                .expect("enter a request");
            store.close().await;
            row.id
        })
    }

    /// The request with its approvals, jobs and timeline.
    pub fn detail(&self, id: i64) -> RequestDetail {
        self.rt
            .block_on(self.store.request_detail(id))
            .unwrap_or_else(|e| panic!("reading request {id}: {e}"))
    }

    /// The request's state name (`awaiting_approval`, `failed` …).
    pub fn state(&self, id: i64) -> String {
        self.detail(id).request.state.name().to_string()
    }

    /// Waits until request `id` is in `state`; panics with the detail otherwise.
    pub fn wait_state(&self, id: i64, state: &str) {
        let start = Instant::now();
        loop {
            let detail = self.detail(id);
            if detail.request.state.name() == state {
                return;
            }
            if start.elapsed() > WAIT {
                panic!(
                    "request {id} is {} after {WAIT:?}, expected {state}; last error {:?}",
                    detail.request.state, detail.request.last_error
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until request `id` awaits approval with its stage open (the stage opens in a
    /// transaction of its own, just after the state changes); returns the pending stage's id.
    pub fn wait_approval(&self, id: i64) -> i64 {
        self.wait_state(id, "awaiting_approval");
        let start = Instant::now();
        loop {
            let detail = self.detail(id);
            if let Some(a) = detail.approvals.iter().find(|a| a.status == "pending") {
                return a.id;
            }
            if start.elapsed() > WAIT {
                panic!("request {id} awaits approval but no stage opened within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Audit rows matching `filter`, newest first.
    pub fn audit(&self, filter: AuditFilter) -> Vec<AuditRow> {
        self.rt
            .block_on(self.store.list_audit(&filter, None, 500))
            .expect("read audit")
            .rows
    }

    /// Every audit row deciding approval `approval_id`.
    pub fn decisions(&self, approval_id: i64) -> Vec<AuditRow> {
        self.audit(AuditFilter {
            action: Some("approval.decide".into()),
            entity: Some("approval".into()),
            entity_id: Some(approval_id.to_string()),
            ..Default::default()
        })
    }

    /// Versions of a config document, newest first.
    pub fn versions(&self, name: &str) -> Vec<ConfigVersion> {
        self.rt
            .block_on(self.store.config_versions(name))
            .expect("read config versions")
    }

    /// The shell command that opens the console as the operator, with `extra` flags.
    pub fn tui_command(&self, extra: &str) -> String {
        format!(
            "env -u SUDO_USER USER={OPERATOR} XDG_CONFIG_HOME={} GATEHOUSE_DATABASE_URL={} GATEHOUSE_LOG_FILE={} {} tui {extra}",
            sh_quote(&self.dir.path().join("xdg").display().to_string()),
            sh_quote(&self.url),
            sh_quote(&self.log.display().to_string()),
            sh_quote(&bin().display().to_string()),
        )
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Runs the CLI against `url` as the operator.
pub fn cli(url: &str, log: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .env("GATEHOUSE_DATABASE_URL", url)
        .env("GATEHOUSE_LOG_FILE", log)
        .env("USER", OPERATOR)
        .env_remove("SUDO_USER")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run gatehouse")
}

/// Runs the CLI and returns stdout; panics (with the output) unless it succeeded.
pub fn cli_ok(url: &str, log: &Path, args: &[&str]) -> String {
    let out = cli(url, log, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "gatehouse {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The id of request `id`'s pending (or only) approval stage.
pub fn approval_id(detail: &RequestDetail) -> i64 {
    detail
        .approvals
        .iter()
        .find(|a| a.status == "pending")
        .or(detail.approvals.last())
        .map(|a| a.id)
        .unwrap_or_else(|| panic!("request {} has no approval stage", detail.request.id))
}

/// The list row (the left pane, before a `││` pane boundary) that shows request `id` with
/// `name`, if the screen has one.
pub fn row_of<'a>(screen: &'a [String], id: i64, name: &str) -> Option<&'a str> {
    let id = id.to_string();
    screen
        .iter()
        .map(|l| l.split("││").next().unwrap_or_default())
        .find(|l| l.contains(name) && l.split_whitespace().nth(1) == Some(id.as_str()))
}

/// Answers the console's question after a decision key when deciding `request` is an override
/// (the operator is not named on its open stage, as the store sees it): waits for the
/// "… as OVERRIDE — …? (y/n)" confirmation and presses `y`. Returns whether it was one.
pub fn confirm_if_override(tmux: &Tmux, session: &str, fx: &Fixture, request: i64) -> bool {
    let stage = fx
        .detail(request)
        .approvals
        .into_iter()
        .find(|a| a.status == "pending")
        .unwrap_or_else(|| panic!("request {request} has no pending stage"));
    if stage.approvers.iter().any(|a| a == OPERATOR) {
        return false;
    }
    tmux.wait_text(
        session,
        &format!("{request} as OVERRIDE — {}:", stage.policy),
    );
    tmux.keys(session, &["y"]);
    true
}
