//! `gatehouse serve` with the real OpenSSH client: keys registered in the store open consoles
//! that act as their operators (audited with the key's fingerprint and the peer address);
//! unknown, removed and password logins are refused; sessions follow resizes, see each
//! other's decisions, end when their client dies, and a viewer cannot decide.

mod e2e_support;
mod serve_support;
mod support;

use std::time::{Duration, Instant};

use e2e_support::*;
use gatehouse::store::api::{AuditFilter, Decision};
use serve_support::*;

const A: &str = "a";
const B: &str = "b";

/// Waits until the console in `session` shows its header with `operator` and `role`.
fn wait_console(tmux: &Tmux, session: &str, operator: &str, fingerprint: &str, role: &str) {
    let source = format!("{operator} (ssh-key:{fingerprint}@127.0.0.1:");
    tmux.wait_for(session, "the console header", WAIT, |s| {
        s[0].starts_with(" overview")
            && s[0].contains(&source)
            && s[0].ends_with(&format!("· {role}"))
    });
}

/// Requests waiting for bob's approval (the sales-joiner stage), each with its approval id.
fn pending(fx: &mut Fixture, names: &[(&str, &str)]) -> Vec<(i64, i64)> {
    let ids: Vec<i64> = names.iter().map(|(n, u)| fx.new_request(n, u)).collect();
    fx.start_worker();
    ids.iter().map(|&id| (id, fx.wait_approval(id))).collect()
}

#[test]
fn a_registered_key_opens_a_console_and_decides_as_its_operator() {
    if tools_present() {
        registered_key_decides(None, "serve-one");
    }
}

#[test]
fn a_registered_key_decides_on_postgresql_too() {
    if !tools_present() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(pg) = rt.block_on(support::PgDb::create("serve")) else {
        return;
    };
    registered_key_decides(Some(pg.url.clone()), "serve-pg");
}

fn registered_key_decides(url: Option<String>, tag: &str) {
    let mut sf = ServeFixture::new(url);
    sf.operator("bob", "approver");
    let key = sf.key_for("bob", "bob");
    let fp = sf.fingerprint("bob");
    let reqs = pending(&mut sf.fx, &[("Sam Serve", "sserve")]);
    let (request, approval) = reqs[0];
    sf.start();

    let tmux = Tmux::new(tag);
    // The SSH user name is ignored: the key says who connects.
    tmux.start(A, 120, 40, &sf.ssh_console(&key, "anyone"));
    wait_console(&tmux, A, "bob", &fp, "approver");
    sf.wait_consoles(1);

    tmux.keys(A, &["2"]);
    let inbox = "approvals for bob";
    tmux.wait_text(A, &format!("┌ {inbox} ["));
    let screen = filter(&tmux, A, inbox, "Sam Serve", 1);
    assert!(
        row_of(&screen, request, "Sam Serve").is_some(),
        "{}",
        dump(&screen)
    );
    tmux.keys(A, &["a"]);
    tmux.wait_text(A, &format!("approved request {request}"));

    let detail = sf.fx.detail(request);
    assert_eq!(detail.approvals[0].decisions[0].approver, "bob");
    assert_eq!(detail.approvals[0].decisions[0].decision, Decision::Approve);
    let audit = sf.fx.decisions(approval);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, "bob");
    assert!(
        audit[0]
            .source
            .starts_with(&format!("ssh-key:{fp}@127.0.0.1:")),
        "audit source names the key and the peer: {}",
        audit[0].source
    );
    // The key's last use is recorded.
    let keys = sf.fx.ok(&["operator", "key", "list"]);
    assert!(
        keys.contains(&fp) && keys.contains("from 127.0.0.1:"),
        "{keys}"
    );

    // `:q` ends the session cleanly: the client exits 0 and the server's console is gone.
    tmux.keys(A, &[":", "q", "Enter"]);
    let start = Instant::now();
    while tmux.alive(A) {
        assert!(start.elapsed() < WAIT, "ssh did not exit after :q");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tmux.exit_status(A).as_deref(), Some("0"));
    sf.wait_consoles(0);
}

#[test]
fn unknown_removed_and_password_logins_are_refused() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("cid", "approver");
    let cid = sf.key_for("cid", "cid");
    let cid_fp = sf.fingerprint("cid");
    let stranger = sf.keygen("stranger");
    sf.start();
    let host = "cid@127.0.0.1";
    let key = |k: &std::path::Path| k.display().to_string();

    // A registered key authenticates; a command is refused with a message, exit status 1.
    let out = sf.ssh_batch(&["-i", &key(&cid), host, "echo", "hi"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("commands are not available"), "{stdout}");
    // A shell without a terminal is refused too.
    let out = sf.ssh_batch(&["-T", "-i", &key(&cid), host]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("needs a terminal"),
        "{out:?}"
    );

    // An unknown key.
    let out = sf.ssh_batch(&["-i", &key(&stranger), host, "true"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"),
        "{out:?}"
    );
    // A password (and keyboard-interactive): only publickey is offered, so both are refused.
    let out = sf.ssh_batch(&[
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        host,
        "true",
    ]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)"),
        "{out:?}"
    );
    // A removed key stops working for new connections.
    sf.fx.ok(&["operator", "key", "remove", "cid", &cid_fp]);
    let out = sf.ssh_batch(&["-i", &key(&cid), host, "true"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    let log = sf.log_text();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication refused") && l.contains("peer=127.0.0.1:"))
        .collect();
    assert!(
        refused
            .iter()
            .any(|l| l.contains(&sf.fingerprint("stranger")))
            && refused.iter().any(|l| l.contains(&cid_fp)),
        "failed logins are logged with the peer and key:\n{log}"
    );
}

#[test]
fn a_console_follows_the_clients_window_size() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("bob", "approver");
    let key = sf.key_for("bob", "bob");
    let fp = sf.fingerprint("bob");
    sf.start();
    let tmux = Tmux::new("serve-resize");
    tmux.start(A, 120, 40, &sf.ssh_console(&key, "bob"));
    wait_console(&tmux, A, "bob", &fp, "approver");
    tmux.wait_ok(A, WAIT, |s| frame_is(s, 120, 40));
    for (w, h) in [(80, 24), (160, 48)] {
        tmux.resize(A, w, h);
        tmux.wait_ok(A, WAIT, |s| frame_is(s, usize::from(w), usize::from(h)));
    }
}

#[test]
fn two_sessions_are_two_operators_and_see_each_others_decisions() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("bob", "approver");
    let root_key = sf.key_for("root", "root");
    let bob_key = sf.key_for("bob", "bob");
    let (root_fp, bob_fp) = (sf.fingerprint("root"), sf.fingerprint("bob"));
    let reqs = pending(
        &mut sf.fx,
        &[("Xena Twin", "xtwin"), ("Yuri Twin", "ytwin")],
    );
    let ((x, x_approval), (y, y_approval)) = (reqs[0], reqs[1]);
    sf.start();

    let tmux = Tmux::new("serve-two");
    tmux.start(A, 120, 40, &sf.ssh_console(&root_key, "root"));
    tmux.start(B, 120, 40, &sf.ssh_console(&bob_key, "bob"));
    wait_console(&tmux, A, "root", &root_fp, "admin");
    wait_console(&tmux, B, "bob", &bob_fp, "approver");
    sf.wait_consoles(2);
    tmux.keys(A, &["2"]);
    tmux.keys(B, &["2"]);
    let both =
        |s: &[String]| row_of(s, x, "Xena Twin").is_some() && row_of(s, y, "Yuri Twin").is_some();
    tmux.wait_for(A, "both requests", WAIT, both);
    tmux.wait_for(B, "both requests", WAIT, both);

    // root approves X; bob's inbox drops it within a second.
    filter(&tmux, A, INBOX, "Xena", 1);
    tmux.keys(A, &["a"]);
    // root is an admin outside the stage's approvers: the console asks to confirm the override.
    assert!(confirm_if_override(&tmux, A, &sf.fx, x));
    tmux.wait_text(A, &format!("approved request {x}"));
    let seen = Instant::now();
    tmux.wait_for(B, "X leaving bob's inbox", Duration::from_secs(1), |s| {
        row_of(s, x, "Xena Twin").is_none() && row_of(s, y, "Yuri Twin").is_some()
    });
    let first = seen.elapsed();

    // bob approves Y; root's inbox (filter cleared) drops it within a second.
    tmux.keys(A, &["Escape"]);
    tmux.wait_text(A, &format!("┌ {INBOX} ["));
    tmux.wait_for(A, "Y in root's inbox", WAIT, |s| {
        row_of(s, y, "Yuri Twin").is_some()
    });
    filter(&tmux, B, "approvals for bob", "Yuri", 1);
    tmux.keys(B, &["a"]);
    tmux.wait_text(B, &format!("approved request {y}"));
    let seen = Instant::now();
    tmux.wait_for(A, "Y leaving root's inbox", Duration::from_secs(1), |s| {
        row_of(s, y, "Yuri Twin").is_none()
    });
    eprintln!(
        "decisions seen by the other session after {first:?} and {:?}",
        seen.elapsed()
    );

    let (ax, ay) = (sf.fx.decisions(x_approval), sf.fx.decisions(y_approval));
    assert_eq!(ax[0].actor, "root");
    assert!(
        ax[0]
            .source
            .starts_with(&format!("ssh-key:{root_fp}@127.0.0.1:")),
        "{ax:?}"
    );
    assert_eq!(ay[0].actor, "bob");
    assert!(
        ay[0]
            .source
            .starts_with(&format!("ssh-key:{bob_fp}@127.0.0.1:")),
        "{ay:?}"
    );
}

#[test]
fn a_killed_client_frees_its_session() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("bob", "approver");
    let key = sf.key_for("bob", "bob");
    let fp = sf.fingerprint("bob");
    sf.start();
    let tmux = Tmux::new("serve-kill");
    tmux.start(A, 140, 30, &sf.ssh_console(&key, "bob"));
    tmux.start(B, 140, 30, &sf.ssh_console(&key, "bob"));
    wait_console(&tmux, A, "bob", &fp, "approver");
    wait_console(&tmux, B, "bob", &fp, "approver");
    sf.wait_consoles(2);

    let shell = tmux.pane_pid(A);
    let ssh = children_of(shell);
    assert_eq!(
        ssh.len(),
        1,
        "one ssh client under the pane's shell: {ssh:?}"
    );
    // SAFETY: kill(2) on the ssh client this test started.
    unsafe {
        libc::kill(ssh[0] as i32, libc::SIGKILL);
    }
    sf.wait_consoles(1);
    // The other session still works.
    tmux.keys(B, &["3"]);
    tmux.wait_text(B, "┌ requests");
}

#[test]
fn a_viewers_key_cannot_decide() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("vic", "viewer");
    sf.operator("eve", "admin");
    let vic = sf.key_for("vic", "vic");
    let eve = sf.key_for("eve", "eve");
    let (vic_fp, eve_fp) = (sf.fingerprint("vic"), sf.fingerprint("eve"));
    let reqs = pending(&mut sf.fx, &[("Vera View", "vview")]);
    let (request, approval) = reqs[0];
    sf.start();
    let tmux = Tmux::new("serve-viewer");

    // A viewer's console has no approve key: nothing is decided.
    tmux.start(A, 120, 40, &sf.ssh_console(&vic, "vic"));
    wait_console(&tmux, A, "vic", &vic_fp, "viewer");
    tmux.keys(A, &["2"]);
    tmux.wait_text(A, "┌ approvals for vic [");
    tmux.keys(A, &["a"]);
    tmux.wait_text(A, "viewer: approve is not allowed for this role");

    // An admin's console demoted to viewer while open on the request: the store refuses the
    // decision and audits the refusal with the key and the address.
    tmux.start(B, 120, 40, &sf.ssh_console(&eve, "eve"));
    wait_console(&tmux, B, "eve", &eve_fp, "admin");
    tmux.keys(B, &["3"]);
    tmux.wait_text(B, "┌ requests [");
    filter(&tmux, B, "requests", "Vera", 1);
    tmux.keys(B, &["Enter"]);
    tmux.wait_for(B, "the request's detail", WAIT, |s| {
        s[0].contains(&format!("› request {request}")) && s.iter().any(|l| l.contains("Vera View"))
    });
    sf.fx.ok(&["operator", "add", "eve", "--role", "viewer"]);
    tmux.keys(B, &["a"]);
    // The console still believes eve is an admin and asks to confirm an override; the store
    // knows better.
    tmux.wait_text(B, &format!("{request} as OVERRIDE"));
    tmux.keys(B, &["y"]);
    tmux.wait_text(B, &format!("request {request} failed: eve may not"));

    assert_eq!(sf.fx.state(request), "awaiting_approval");
    let stage = &sf.fx.detail(request).approvals[0];
    assert_eq!((stage.id, stage.status.as_str()), (approval, "pending"));
    assert!(stage.decisions.is_empty(), "{stage:?}");
    let refused = sf.fx.audit(AuditFilter {
        action: Some("approval.decide.refused".into()),
        ..Default::default()
    });
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].actor, "eve");
    assert!(
        refused[0]
            .source
            .starts_with(&format!("ssh-key:{eve_fp}@127.0.0.1:")),
        "{refused:?}"
    );
}

#[test]
fn stopping_the_server_tells_consoles_then_closes_them() {
    if !tools_present() {
        return;
    }
    let mut sf = ServeFixture::new(None);
    sf.operator("bob", "approver");
    let key = sf.key_for("bob", "bob");
    let fp = sf.fingerprint("bob");
    sf.start();
    let tmux = Tmux::new("serve-stop");
    // ssh runs under a shell that stays after it: tmux may drop what a pane's process wrote
    // just before it exited, so the pane outlives ssh and says how ssh ended.
    let command = format!(
        "sh -c {}",
        sh_quote(&format!(
            "{}; echo \"[ssh exited $?]\"; sleep 60",
            sf.ssh_console(&key, "bob")
        ))
    );
    tmux.start(A, 120, 40, &command);
    wait_console(&tmux, A, "bob", &fp, "approver");
    sf.server().signal(libc::SIGTERM);
    let waiting = Instant::now();
    loop {
        let screen = tmux.capture(A);
        let text = screen.join("\n");
        if text.contains("gatehouse: the server is stopping; this console is closed.")
            && text.contains("[ssh exited 0]")
        {
            break;
        }
        assert!(
            waiting.elapsed() < WAIT,
            "no farewell, or ssh did not end with status 0:\n{}\nthe server's log:\n{}",
            dump(&screen),
            sf.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = sf.server().wait_for(WAIT).expect("the server exits");
    assert!(status.success(), "{status:?}");
}
