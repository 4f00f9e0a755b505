//! The real `gatehouse tui` binary driven in tmux (send-keys, capture-pane) over a SQLite store
//! with a worker running: approve, reject with a reason, bulk-approve three with the
//! confirmation, retry a failed request, edit a workflow (a TOML error shows line:col and saves
//! nothing; the fix saves a new version), and `--read-only` refusing `a`. Every step is checked
//! in the store, not only on screen, and every console must exit with status 0 leaving the
//! terminal restored. A second test runs the console through a real `ssh -tt` session to the
//! loopback sshd of `tests/servers.sh`, approves, resizes the window (80×24, 160×48, 100×40) and
//! checks the layout each time and the audit row's actor (the SSH login user) and source (`ssh:`).
//! A third runs the console from an interactive bash: ctrl-z suspends it (the tty is as before),
//! `fg` redraws it, and SIGTERM ends it with status 0 and the tty restored.
//! Without tmux, ssh or the sshd the tests print a note and skip; under CI (env `CI`) they fail.

mod e2e_support;
mod support;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use e2e_support::*;
use gatehouse::store::api::{AuditFilter, Decision};
use serde_json::json;
use support::in_ci;

const S: &str = "console";

/// Esc until the list of `title` shows no filter.
fn clear_filter(tmux: &Tmux, session: &str, title: &str) {
    tmux.keys(session, &["Escape"]);
    tmux.wait_text(session, &format!("┌ {title} ["));
}

/// Waits for the console in `session` to exit, then checks it exited with status 0 and the
/// terminal shows the normal screen again (the alternate screen was left): no console header or
/// pane border remains.
fn wait_exit_restored(tmux: &Tmux, session: &str) {
    tmux.wait_for(session, "the console to exit", WAIT, |_| {
        !tmux.alive(session)
    });
    assert_eq!(
        tmux.exit_status(session).as_deref(),
        Some("0"),
        "exit status of {session}"
    );
    let screen = tmux.capture(session);
    assert!(
        !screen
            .iter()
            .any(|l| l.starts_with(" overview") || l.starts_with('┌') || l.starts_with('│')),
        "the console left its screen behind:\n{}",
        dump(&screen)
    );
}

/// The last screen row (flash line).
fn last(screen: &[String]) -> &str {
    screen.last().map(String::as_str).unwrap_or_default()
}

#[test]
fn console_in_tmux_changes_the_store() {
    if !require_tool("tmux", "-V") {
        return;
    }
    let mut fx = Fixture::new(None);
    let fiona = fx.new_request("Fiona Failing", "ffailing");
    let ada = fx.new_request("Ada Approve", "aapprove");
    let rita = fx.new_request("Rita Reject", "rreject");
    let bulk = [
        fx.new_request("Bulk Alpha", "balpha"),
        fx.new_request("Bulk Beta", "bbeta"),
        fx.new_request("Bulk Gamma", "bgamma"),
    ];
    let rosa = fx.new_request("Rosa Readonly", "rreadonly");
    fx.start_worker();
    for id in [fiona, ada, rita, bulk[0], bulk[1], bulk[2], rosa] {
        fx.wait_state(id, "awaiting_approval");
    }
    // Something to retry: approved while the provisioning target does not exist yet, so
    // `create-account` fails; then the target is created so the retry can succeed.
    fx.ok(&["approve", &fiona.to_string()]);
    fx.wait_state(fiona, "failed");
    fx.prepare_target();

    let tmux = Tmux::new("local");
    tmux.start(S, 120, 40, &fx.tui_command(""));
    tmux.wait_for(S, "the overview with the operator", WAIT, |s| {
        s[0].starts_with(" overview") && s[0].contains("root (tui) · admin")
    });

    // ---- approve one with `a` ----
    tmux.keys(S, &["2"]);
    tmux.wait_text(S, &format!("┌ {INBOX} ["));
    let screen = filter(&tmux, S, INBOX, "Ada Approve", 1);
    assert!(
        row_of(&screen, ada, "Ada Approve").is_some(),
        "{}",
        dump(&screen)
    );
    tmux.keys(S, &["a"]);
    let over = confirm_if_override(&tmux, S, &fx, ada);
    let screen = tmux.wait_text(S, &format!("approved request {ada}"));
    assert_eq!(
        last(&screen).contains("OVERRIDE"),
        over,
        "the flash says OVERRIDE exactly when it was one: {}",
        last(&screen)
    );
    let detail = fx.detail(ada);
    let stage = &detail.approvals[0];
    assert_eq!(stage.status, "approved");
    assert_eq!(stage.decisions.len(), 1);
    assert_eq!(stage.decisions[0].approver, OPERATOR);
    assert_eq!(stage.decisions[0].decision, Decision::Approve);
    let audit = fx.decisions(stage.id);
    assert_eq!(audit.len(), 1, "one audit row for the decision: {audit:?}");
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].source.as_str()),
        (OPERATOR, "tui")
    );
    fx.wait_state(ada, "completed");
    // The decided row leaves the inbox.
    tmux.wait_text(S, &format!("{INBOX} /Ada Approve [0]"));

    // ---- reject one with a reason ----
    clear_filter(&tmux, S, INBOX);
    filter(&tmux, S, INBOX, "Rita Reject", 1);
    tmux.keys(S, &["r"]);
    // An override says so in the prompt's title ("reject request 3 as OVERRIDE — reason …").
    tmux.wait_text(S, &format!("reject request {rita}"));
    tmux.wait_text(S, "— reason (required)");
    tmux.keys(S, &["Enter"]);
    tmux.wait_text(S, "a reason is required");
    assert_eq!(
        fx.detail(rita).approvals[0].status,
        "pending",
        "an empty reason rejects nothing"
    );
    tmux.type_text(S, "no budget for this role");
    tmux.keys(S, &["Enter"]);
    confirm_if_override(&tmux, S, &fx, rita);
    let screen = tmux.wait_text(
        S,
        &format!("rejected request {rita}: no budget for this role"),
    );
    assert!(
        !screen.iter().any(|l| l.contains("reason (required)")),
        "prompt closed"
    );
    fx.wait_state(rita, "rejected");
    let stage = &fx.detail(rita).approvals[0];
    assert_eq!(stage.status, "rejected");
    assert_eq!(stage.decisions[0].approver, OPERATOR);
    assert_eq!(stage.decisions[0].decision, Decision::Reject);
    assert_eq!(
        stage.decisions[0].reason.as_deref(),
        Some("no budget for this role")
    );
    let audit = fx.decisions(stage.id);
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].after.as_ref().and_then(|a| a.get("reason")),
        Some(&json!("no budget for this role"))
    );

    // ---- mark three and bulk-approve with the confirmation ----
    clear_filter(&tmux, S, INBOX);
    let screen = filter(&tmux, S, INBOX, "Bulk", 3);
    for (id, name) in bulk.iter().zip(["Bulk Alpha", "Bulk Beta", "Bulk Gamma"]) {
        assert!(
            row_of(&screen, *id, name).is_some(),
            "{name}: {}",
            dump(&screen)
        );
    }
    tmux.keys(S, &["Space", "Space", "Space"]);
    tmux.wait_text(S, &format!("{INBOX} /Bulk [3, 3 marked]"));
    tmux.keys(S, &["a"]);
    tmux.wait_text(S, "3 selected");
    tmux.wait_text(S, "confirm approve (y/n)");
    for id in bulk {
        let d = fx.detail(id);
        assert_eq!(
            d.approvals[0].status, "pending",
            "nothing decided before confirming"
        );
        assert!(d.approvals[0].decisions.is_empty());
    }
    tmux.keys(S, &["y"]);
    tmux.wait_text(S, "approved 3 of 3 selected");
    for id in bulk {
        let stage = &fx.detail(id).approvals[0];
        assert_eq!(stage.status, "approved", "request {id}");
        assert_eq!(stage.decisions[0].approver, OPERATOR);
        assert_eq!(fx.decisions(stage.id).len(), 1);
    }
    for id in bulk {
        fx.wait_state(id, "completed");
    }
    tmux.wait_text(S, &format!("{INBOX} /Bulk [0]"));

    // ---- retry a failed request with `R` ----
    tmux.keys(S, &["3"]);
    tmux.wait_text(S, "┌ requests [");
    let screen = filter(&tmux, S, "requests", "Fiona Failing", 1);
    let row = row_of(&screen, fiona, "Fiona Failing").expect("Fiona's row");
    assert!(row.contains("failed"), "{row}");
    assert_eq!(fx.state(fiona), "failed");
    tmux.keys(S, &["R"]);
    tmux.wait_text(S, &format!("retry queued for request {fiona}"));
    let retries = fx.audit(AuditFilter {
        action: Some("request.retry".into()),
        entity_id: Some(fiona.to_string()),
        ..Default::default()
    });
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0].actor, OPERATOR);
    fx.wait_state(fiona, "completed");
    // The list follows the store: the row now shows the new state.
    tmux.wait_for(S, "Fiona completed", WAIT, |s| {
        row_of(s, fiona, "Fiona Failing").is_some_and(|r| r.contains("completed"))
    });

    // ---- edit a workflow: a TOML error saves nothing, the fix saves version 2 ----
    let before = fx.versions("sales-joiner");
    assert_eq!(before.len(), 1);
    tmux.keys(S, &["7"]);
    tmux.wait_text(S, "┌ configs [");
    filter(&tmux, S, "configs", "sales-joiner", 1);
    tmux.keys(S, &["e"]);
    tmux.wait_text(S, "sales-joiner (workflow) v1");
    tmux.type_text(S, "oops = ");
    tmux.keys(S, &["Enter", "C-s"]);
    let screen = tmux.wait_text(S, "nothing saved");
    assert!(
        last(&screen).starts_with("1:8 oops:") && last(&screen).ends_with("— nothing saved"),
        "flash names line:col and field: {}",
        dump(&screen)
    );
    assert!(
        screen.iter().any(|l| l.starts_with("│1:8 oops:")),
        "the editor shows the problem: {}",
        dump(&screen)
    );
    assert_eq!(fx.versions("sales-joiner").len(), 1, "nothing saved");
    let history = fx.ok(&["config", "history", "sales-joiner"]);
    assert_eq!(history.lines().count(), 1, "{history}");
    assert!(history.trim_start().starts_with("1 "), "{history}");
    // Back to the end of line 1, delete `oops = `, join the next line, add a comment.
    tmux.keys(S, &["Up", "Up", "Up", "End"]);
    for _ in 0.."oops = ".len() {
        tmux.keys(S, &["BSpace"]);
    }
    tmux.keys(S, &["DC"]);
    tmux.type_text(S, "# edited by e2e");
    tmux.keys(S, &["Enter", "C-s"]);
    tmux.wait_text(S, "save sales-joiner as version 2 — confirm (y/n)");
    assert_eq!(
        fx.versions("sales-joiner").len(),
        1,
        "nothing saved before confirming"
    );
    tmux.keys(S, &["y"]);
    tmux.wait_text(S, "saved workflow sales-joiner version 2");
    let after = fx.versions("sales-joiner");
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].version, 2);
    assert_eq!(
        after[0].body.trim_end(),
        format!("# edited by e2e\n{}", before[0].body).trim_end(),
        "the saved body is the old one with the comment on top"
    );
    let history = fx.ok(&["config", "history", "sales-joiner"]);
    let newest = history.lines().next().unwrap_or_default();
    assert!(
        newest.trim_start().starts_with("2 ") && newest.contains(OPERATOR),
        "{history}"
    );
    tmux.keys(S, &["C-c"]);
    wait_exit_restored(&tmux, S);

    // ---- --read-only refuses `a` ----
    const RO: &str = "readonly";
    tmux.start(RO, 120, 40, &fx.tui_command("--read-only"));
    tmux.wait_for(RO, "the READ-ONLY header", WAIT, |s| {
        s[0].contains("READ-ONLY")
    });
    tmux.keys(RO, &["2"]);
    tmux.wait_text(RO, &format!("┌ {INBOX} ["));
    let screen = filter(&tmux, RO, INBOX, "Rosa Readonly", 1);
    let hints = &screen[screen.len() - 2];
    assert!(
        !hints.contains("approve") && !hints.contains("reject"),
        "read-only hints list no dangerous keys: {hints}"
    );
    let stage_before = fx.detail(rosa).approvals[0].clone();
    tmux.keys(RO, &["a"]);
    let screen = tmux.wait_text(RO, "read-only: approve is not available");
    assert!(screen[0].contains("READ-ONLY"));
    let stage_after = fx.detail(rosa).approvals[0].clone();
    assert_eq!(stage_after, stage_before, "the approval is untouched");
    assert_eq!(stage_after.status, "pending");
    assert!(fx.decisions(stage_after.id).is_empty());
    assert_eq!(fx.state(rosa), "awaiting_approval");
    tmux.keys(RO, &["C-c"]);
    wait_exit_restored(&tmux, RO);
}

/// Port and key of the test sshd (`tests/servers.sh`); `None` = skip (outside CI).
fn ssh_server() -> Option<(u16, PathBuf)> {
    let from_env = || {
        let port = std::env::var("GATEHOUSE_TEST_SSH_PORT")
            .ok()?
            .parse()
            .ok()?;
        let key = std::env::var("GATEHOUSE_TEST_SSH_KEY").ok()?;
        Some((port, PathBuf::from(key)))
    };
    let from_script = || {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("env")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let value = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(&format!("export {name}="))
                    .map(str::to_string)
            })
        };
        Some((
            value("GATEHOUSE_TEST_SSH_PORT")?.parse().ok()?,
            PathBuf::from(value("GATEHOUSE_TEST_SSH_KEY")?),
        ))
    };
    let found = from_env().or_else(from_script);
    let problem = match &found {
        None => "GATEHOUSE_TEST_SSH_PORT/KEY are not set".to_string(),
        Some((_, key)) if !key.exists() => format!("ssh key {} is missing", key.display()),
        Some((port, _)) => match TcpStream::connect_timeout(
            &([127, 0, 0, 1], *port).into(),
            Duration::from_secs(2),
        ) {
            Ok(_) => return found,
            Err(e) => format!("no sshd on 127.0.0.1:{port}: {e}"),
        },
    };
    if in_ci() {
        panic!("the test sshd is required under CI: {problem} (run tests/servers.sh)");
    }
    eprintln!("SKIPPED: {problem} (run tests/servers.sh)");
    None
}

/// Checks the approvals view fills a `width`×`height` screen: breadcrumbs and status on the first
/// row, pane borders on both edges of every body row, the detail pane beside the list (wide) or
/// below it (tall), key hints and the flash line at the bottom. Returns what is wrong, if anything.
fn layout_problem(screen: &[String], width: usize, height: usize) -> Option<String> {
    if screen.len() != height {
        return Some(format!("{} rows, expected {height}", screen.len()));
    }
    let w = |l: &str| l.chars().count();
    let top = &screen[0];
    if !top.starts_with(" overview › approvals")
        || !top.ends_with(" · admin")
        || w(top) != width - 1
    {
        return Some(format!("header row is {top:?}"));
    }
    for (i, row) in screen.iter().enumerate().take(height - 2).skip(1) {
        let first = row.chars().next();
        let end = row.chars().last();
        let framed = matches!(first, Some('│' | '┌' | '└')) && matches!(end, Some('│' | '┐' | '┘'));
        if !framed || w(row) != width {
            return Some(format!("row {i} is not framed at width {width}: {row:?}"));
        }
    }
    if !screen[1].starts_with(&format!("┌ {INBOX}")) {
        return Some(format!("row 1 is {:?}", screen[1]));
    }
    if width >= 120 && !screen[1].contains("┐┌ request ") {
        return Some(format!(
            "no detail pane beside the list at width {width}: {:?}",
            screen[1]
        ));
    }
    if width < 120 && height >= 30 && !screen.iter().any(|l| l.starts_with("┌ request ")) {
        return Some(format!("no detail pane below the list at {width}x{height}"));
    }
    if !screen[height - 3].starts_with('└') {
        return Some(format!("row {} is not the bottom border", height - 3));
    }
    let hints = &screen[height - 2];
    // Hints that do not fit are left out whole; help is always the last one.
    let complete = hints.ends_with("? help");
    if !hints.starts_with(" a approve") || w(hints) > width || !complete {
        return Some(format!("hint row is {hints:?}"));
    }
    let bottom = &screen[height - 1];
    if !(bottom.starts_with("logs: ") || bottom.starts_with("approved request")) {
        return Some(format!("last row is {bottom:?}"));
    }
    None
}

#[test]
fn console_over_ssh_follows_resizes_and_audits_the_login_user() {
    if !require_tool("tmux", "-V") || !require_tool("ssh", "-V") {
        return;
    }
    let Some((port, key)) = ssh_server() else {
        return;
    };
    // The login user of the SSH session: the one the test sshd (started by this user) accepts.
    let login = std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string());
    let mut fx = Fixture::new(None);
    fx.ok(&["operator", "add", &login, "--role", "admin"]);
    fx.prepare_target();
    let sam = fx.new_request("Sam Secure", "ssecure");
    let olga = fx.new_request("Olga Other", "oother");
    fx.start_worker();
    fx.wait_state(sam, "awaiting_approval");
    fx.wait_state(olga, "awaiting_approval");

    let remote = format!(
        "env GATEHOUSE_DATABASE_URL={} GATEHOUSE_LOG_FILE={} XDG_CONFIG_HOME={} {} tui",
        sh_quote(&fx.url),
        sh_quote(&fx.log.display().to_string()),
        sh_quote(&fx.dir.path().join("xdg").display().to_string()),
        sh_quote(&support::bin().display().to_string()),
    );
    let command = format!(
        "ssh -tt -i {} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p {port} {login}@127.0.0.1 {}",
        sh_quote(&key.display().to_string()),
        sh_quote(&remote)
    );
    let tmux = Tmux::new("ssh");
    const SSH: &str = "ssh";
    tmux.start(SSH, 120, 40, &command);
    let screen = tmux.wait_for(SSH, "the console over ssh", WAIT, |s| {
        s[0].starts_with(" overview")
            && s[0].contains(&format!("{login} (tui (ssh claim 127.0.0.1:"))
    });
    assert!(screen[0].ends_with(" · admin"), "{}", screen[0]);

    tmux.keys(SSH, &["2"]);
    tmux.wait_text(SSH, &format!("┌ {INBOX} ["));
    filter(&tmux, SSH, INBOX, "Sam Secure", 1);
    tmux.keys(SSH, &["a"]);
    confirm_if_override(&tmux, SSH, &fx, sam);
    tmux.wait_text(SSH, &format!("approved request {sam}"));
    let stage = &fx.detail(sam).approvals[0];
    assert_eq!(stage.status, "approved");
    assert_eq!(stage.decisions[0].approver, login);
    let audit = fx.decisions(stage.id);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, login, "the SSH login user decided");
    assert!(
        audit[0].source.starts_with("tui (ssh claim 127.0.0.1:"),
        "the SSH client is recorded as a claim: {}",
        audit[0].source
    );
    // Olga stays in the inbox for the layout checks.
    clear_filter(&tmux, SSH, INBOX);
    tmux.wait_for(SSH, "Olga's row", WAIT, |s| {
        row_of(s, olga, "Olga Other").is_some()
    });

    for (width, height) in [(120, 40), (80, 24), (160, 48), (100, 40), (120, 40)] {
        tmux.resize(SSH, width, height);
        tmux.wait_ok(SSH, WAIT, |s| {
            if let Some(problem) = layout_problem(s, usize::from(width), usize::from(height)) {
                return Err(format!("{width}x{height}: {problem}"));
            }
            match row_of(s, olga, "Olga Other") {
                Some(_) => Ok(()),
                None => Err(format!("{width}x{height}: Olga's row is missing")),
            }
        });
    }
    assert!(tmux.alive(SSH), "the session survived the resizes");
    tmux.keys(SSH, &["C-c"]);
    wait_exit_restored(&tmux, SSH);
}

/// Waits until a screen row is exactly `text` (output, not the typed command line).
fn wait_line(tmux: &Tmux, session: &str, text: &str) -> Vec<String> {
    tmux.wait_for(session, &format!("a row {text:?}"), WAIT, |s| {
        s.iter().any(|l| l.trim_end() == text)
    })
}

#[test]
fn console_suspends_with_ctrl_z_and_restores_the_terminal_on_sigterm() {
    if !require_tool("tmux", "-V") || !require_tool("bash", "--version") {
        return;
    }
    let fx = Fixture::new(None);
    let dir = fx.dir.path();
    let pid_file = dir.join("tui.pid");
    let tty_before = dir.join("tty.before");
    // The script records the console's pid (exec keeps it) so the test can signal it.
    let script = dir.join("run-tui.sh");
    std::fs::write(
        &script,
        format!(
            "echo $$ > {}\nexec {}\n",
            sh_quote(&pid_file.display().to_string()),
            fx.tui_command("")
        ),
    )
    .expect("write script");
    let shell = format!(
        "env -i PATH={} HOME={} TERM=screen PS1='$ ' bash --norc --noprofile -i",
        sh_quote(&std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())),
        sh_quote(&dir.display().to_string())
    );
    let tmux = Tmux::new("jobs");
    const SH: &str = "shell";
    tmux.start(SH, 80, 24, &shell);
    tmux.wait_for(SH, "the shell prompt", WAIT, |s| s[0].starts_with("$"));
    let sane = |tag: &str| {
        format!(
            "[ \"$(stty -g)\" = \"$(cat {})\" ] && echo {tag}",
            sh_quote(&tty_before.display().to_string())
        )
    };
    tmux.type_text(
        SH,
        &format!(
            "stty -g > {}; sh {}",
            sh_quote(&tty_before.display().to_string()),
            sh_quote(&script.display().to_string())
        ),
    );
    tmux.keys(SH, &["Enter"]);
    tmux.wait_for(SH, "the console", WAIT, |s| {
        s[0].starts_with(" overview") && s[23].starts_with("logs: ")
    });

    // ctrl-z: the shell is back with the terminal as it was; `fg` redraws and keys work again.
    tmux.keys(SH, &["C-z"]);
    let screen = tmux.wait_text(SH, "Stopped");
    assert!(
        !screen
            .iter()
            .any(|l| l.starts_with(" overview") || l.starts_with('┌')),
        "suspended console left its screen:\n{}",
        dump(&screen)
    );
    tmux.type_text(SH, &sane("TTY-SANE-SUSPENDED"));
    tmux.keys(SH, &["Enter"]);
    wait_line(&tmux, SH, "TTY-SANE-SUSPENDED");
    tmux.type_text(SH, "fg");
    tmux.keys(SH, &["Enter"]);
    tmux.wait_for(SH, "the console redrawn after fg", WAIT, |s| {
        s[0].starts_with(" overview") && s[1].starts_with('┌') && s[23].starts_with("logs: ")
    });
    tmux.keys(SH, &["3"]);
    tmux.wait_text(SH, "┌ requests [");

    // SIGTERM: the console leaves raw mode and the alternate screen before it exits.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // SAFETY: kill(2) on the console this test started (its pid recorded by the script).
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM to the console {pid}");
    let screen = tmux.wait_for(SH, "the shell prompt after SIGTERM", WAIT, |s| {
        !s.iter().any(|l| l.starts_with(" overview")) && s.iter().any(|l| l.trim_end() == "$")
    });
    assert!(
        !screen
            .iter()
            .any(|l| l.starts_with('┌') || l.starts_with('│')),
        "the console left its screen behind:\n{}",
        dump(&screen)
    );
    tmux.type_text(SH, &format!("echo \"exit=$?\"; {}", sane("TTY-SANE-AFTER")));
    tmux.keys(SH, &["Enter"]);
    wait_line(&tmux, SH, "exit=0");
    wait_line(&tmux, SH, "TTY-SANE-AFTER");
}
