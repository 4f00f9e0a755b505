//! The binary's contract: exit codes, messages naming what failed, config check output,
//! audit verify catching a tampered row, request commands end to end on SQLite.

mod support;

use std::process::Output;

use support::*;

fn run(url: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    gatehouse(url, &dir.join("cli.log"))
        .args(args)
        .output()
        .expect("run gatehouse")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let o = run(&url, dir.path(), &["approve"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&url, dir.path(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&url, dir.path(), &["approve", "not-a-number"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not-a-number"));
}

#[test]
fn a_job_retention_too_short_or_malformed_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let o = run(&url, dir.path(), &["worker", "--job-retention", "5s"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--job-retention"), "{}", text(&o));
    assert!(text(&o).contains("under 10 seconds"), "{}", text(&o));
    let o = run(
        &url,
        dir.path(),
        &["worker", "--job-retention", "three days"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("three days"), "{}", text(&o));
}

#[test]
fn help_is_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    for args in [
        &["--help"][..],
        &["request", "--help"],
        &["config", "check", "--help"],
        &["bench", "queue", "--help"],
        &["worker", "--help"],
    ] {
        let o = run(&url, dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(text(&o).contains("Usage"), "{args:?}");
    }
}

#[test]
fn failures_exit_1_naming_what_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let o = run(&url, dir.path(), &["request", "show", "4242"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("request 4242"), "{}", text(&o));
    let o = run(
        &url,
        dir.path(),
        &[
            "request",
            "new",
            "--workflow",
            "w",
            "--name",
            "A B",
            "--field",
            "oops",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--field #1 `oops`"), "{}", text(&o));
    let o = run(
        "postgres://nobody@127.0.0.1:1/x",
        dir.path(),
        &["request", "list"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("opening the store"), "{}", text(&o));
}

#[test]
fn config_check_reports_file_line_col_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/bad_configs/duplicate_stage.toml"
    );
    let o = run(&url, dir.path(), &["config", "check", bad]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("duplicate_stage.toml:"), "{out}");
    assert!(out.contains("stages["), "{out}");
}

#[test]
fn bad_configs_are_never_imported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let bad = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_configs");
    let o = run(&url, dir.path(), &["config", "import", bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("nothing imported"), "{}", text(&o));
    let out = dir.path().join("export");
    let o = run(
        &url,
        dir.path(),
        &["config", "export", out.to_str().expect("utf-8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(&out).expect("export dir").count(),
        0,
        "nothing was saved"
    );
}

#[test]
fn import_history_rollback_and_request_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/configs");
    let o = run(&url, dir.path(), &["config", "import", good]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&url, dir.path(), &["config", "history", "sales-joiner"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("imported"));
    let o = run(
        &url,
        dir.path(),
        &["config", "rollback", "sales-joiner", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("restored as version 2"), "{}", text(&o));
    let o = run(&url, dir.path(), &["config", "history", "nope"]);
    assert_eq!(o.status.code(), Some(1));

    let o = run(
        &url,
        dir.path(),
        &[
            "request",
            "new",
            "--workflow",
            "sales-joiner",
            "--name",
            "Jürgen Groß",
            "--email",
            "jurgen@example.com",
            "--field",
            "team=sales",
            "--field",
            "start_date=2099-01-05",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("request 1 created"), "{}", text(&o));
    let o = run(&url, dir.path(), &["request", "list", "--json"]);
    assert!(text(&o).contains("Jürgen Groß"));
    let o = run(&url, dir.path(), &["cancel", "1", "--reason", "duplicate"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&url, dir.path(), &["cancel", "1"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "cancelling twice fails: {}",
        text(&o)
    );
    let o = run(&url, dir.path(), &["approve", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no pending approval"), "{}", text(&o));
}

#[tokio::test]
async fn audit_verify_names_a_tampered_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    for name in ["ann", "ben", "cat"] {
        let o = run(
            &url,
            dir.path(),
            &["operator", "add", name, "--role", "approver"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = run(&url, dir.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("4 rows"), "{}", text(&o));
    let o = run(&url, dir.path(), &["audit", "export", "--format", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 4);

    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("open directly");
    // The table refuses UPDATE (migration 0006); tamper as an attacker with write access to
    // the file would: drop the trigger first, then edit the row.
    sqlx::query("DROP TRIGGER audit_no_update")
        .execute(&pool)
        .await
        .expect("drop the trigger");
    sqlx::query("UPDATE audit SET actor = 'mallory' WHERE id = 2")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let o = run(&url, dir.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("row 2"), "{}", text(&o));
}

/// A request that fails validation lands in triage; `request fix` corrects the field and the
/// worker takes it on to its approval stage.
#[test]
fn request_fix_takes_a_request_out_of_triage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/configs");
    assert_eq!(
        run(&url, dir.path(), &["config", "import", good])
            .status
            .code(),
        Some(0)
    );
    let o = run(
        &url,
        dir.path(),
        &[
            "request",
            "new",
            "--workflow",
            "sales-joiner",
            "--name",
            "Jürgen Groß",
            "--email",
            "jurgen@example.com",
            "--field",
            "team=sales",
            "--field",
            "manager=bob",
            "--field",
            "start_date=next monday-ish",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let _worker = spawn_worker(
        &url,
        &dir.path().join("worker.log"),
        &["--concurrency", "2"],
    );
    let state_is = |want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let o = run(&url, dir.path(), &["request", "show", "1"]);
            if text(&o).lines().next().is_some_and(|l| l.contains(want)) {
                return text(&o);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!(
            "request 1 never reached {want}: {}",
            text(&run(&url, dir.path(), &["request", "show", "1"]))
        );
    };
    let shown = state_is("needs_triage");
    assert!(
        shown.contains("start_date"),
        "the triage reason names the field: {shown}"
    );
    let o = run(
        &url,
        dir.path(),
        &["request", "fix", "1", "--field", "start_date=2099-01-05"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    state_is("awaiting_approval");
    let o = run(
        &url,
        dir.path(),
        &["request", "fix", "1", "--field", "team=x"],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "only a request in triage can be fixed: {}",
        text(&o)
    );
}

/// A listing piped into a reader that is already gone (the `| true` exits before the export
/// writes) ends quietly, never with a panic.
#[test]
fn listing_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    for name in ["ann", "ben", "cat"] {
        let o = run(
            &url,
            dir.path(),
            &["operator", "add", name, "--role", "approver"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let script = format!(
        "(sleep 0.5; GATEHOUSE_DATABASE_URL='{url}' GATEHOUSE_LOG_FILE='{}' '{}' operator list) | true",
        dir.path().join("cli.log").display(),
        bin().display()
    );
    let o = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A secret in the environment never reaches `--help`, on the top level or on any subcommand.
#[test]
fn help_never_shows_the_database_url_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["--help"][..],
        &["request", "--help"],
        &["request", "show", "--help"],
        &["approve", "--help"],
        &["worker", "--help"],
        &["config", "import", "--help"],
        &["operator", "add", "--help"],
        &["tui", "--help"],
        &["bench", "queue", "--help"],
    ] {
        let o = run(
            "postgres://u:hunter2@h/db?password=hunter3",
            dir.path(),
            args,
        );
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        let out = text(&o);
        assert!(out.contains("GATEHOUSE_DATABASE_URL"), "{args:?}: {out}");
        assert!(
            !out.contains("hunter2") && !out.contains("hunter3"),
            "{args:?}: {out}"
        );
    }
}

/// A failed open names the store with every form of its password masked.
#[test]
fn store_errors_mask_every_password_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(
        "postgres://u:hunter2@127.0.0.1:1/x?sslpassword=hunter3&Password=hunter4",
        dir.path(),
        &["request", "list"],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("opening the store"), "{out}");
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!out.contains(secret), "{out}");
    }
}

const HOSTILE_NAME: &str = "Eve\x1b[2J\x1b]0;pwned\x07 \rMallory\u{202e}gnp.exe\u{9b}31m\t\x7f";

/// Names with escape sequences and other controls are printed inert by `request show`,
/// `request list` (text and JSON) and `audit export`.
#[test]
fn stored_text_is_printed_inert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/configs");
    assert_eq!(
        run(&url, dir.path(), &["config", "import", good])
            .status
            .code(),
        Some(0)
    );
    let o = run(
        &url,
        dir.path(),
        &[
            "request",
            "new",
            "--workflow",
            "sales-joiner",
            "--name",
            HOSTILE_NAME,
            "--email",
            "eve\x1b[31m@example.com",
            "--field",
            "team=sales",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let is_control =
        |c: char| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
    for args in [
        &["request", "show", "1"][..],
        &["request", "list"],
        &["request", "list", "--json"],
        &["audit", "export"],
    ] {
        let o = run(&url, dir.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        let out = String::from_utf8(o.stdout.clone()).expect("UTF-8");
        assert!(
            !o.stdout.contains(&0x1b),
            "{args:?}: ESC reached the terminal: {out:?}"
        );
        assert!(!out.contains(is_control), "{args:?}: {out:?}");
    }
    let shown = text(&run(&url, dir.path(), &["request", "show", "1"]));
    assert!(
        shown.contains("Eve␛[2J␛]0;pwned␇ ␍Mallory\\u{202e}gnp.exe\\u{9b}31m␉␡"),
        "{shown}"
    );
    assert!(shown.contains("eve␛[31m@example.com"), "{shown}");
    // JSON output keeps the exact value (escaped), so scripts still read the real name.
    let json = run(&url, dir.path(), &["request", "list", "--json"]);
    let row: serde_json::Value =
        serde_json::from_slice(json.stdout.split(|b| *b == b'\n').next().expect("a line"))
            .expect("JSON");
    assert_eq!(row["subject_name"], HOSTILE_NAME);
}

/// `USER`, `LOGNAME` and a `SUDO_USER` that disagrees with `SUDO_UID` do not change who acts;
/// `SSH_CONNECTION` is recorded only as a claim.
#[test]
fn identity_comes_from_the_uid_not_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    become_admin(&url, &dir.path().join("cli.log"));
    let me = gatehouse::identity::name_of_uid(gatehouse::identity::real_uid())
        .expect("the test user has a passwd entry");
    let new_request = |envs: &[(&str, &str)]| {
        let mut cmd = gatehouse(&url, &dir.path().join("cli.log"));
        cmd.args([
            "request",
            "new",
            "--workflow",
            "sales-joiner",
            "--name",
            "Ann Lee",
            "--field",
            "team=sales",
        ]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().expect("run gatehouse")
    };
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/src/demo/configs");
    assert_eq!(
        run(&url, dir.path(), &["config", "import", good])
            .status
            .code(),
        Some(0)
    );
    let o = new_request(&[
        ("USER", "mallory"),
        ("LOGNAME", "mallory"),
        ("SUDO_USER", "mallory"),
        ("SUDO_UID", "0"),
        ("SSH_CONNECTION", "10.0.0.5 52311 10.0.0.1 22"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = text(&run(&url, dir.path(), &["request", "show", "1"]));
    assert!(shown.contains(&format!("requester  {me} via")), "{shown}");
    assert!(!shown.contains("mallory"), "{shown}");
    let audit = text(&run(&url, dir.path(), &["audit", "export"]));
    let created = audit
        .lines()
        .find(|l| l.contains("request.create"))
        .expect("an audit row for the request");
    let row: serde_json::Value = serde_json::from_str(created).expect("JSON");
    assert_eq!(row["actor"], me.as_str(), "{created}");
    assert_eq!(row["source"], "cli (ssh claim 10.0.0.5:52311)", "{created}");

    // Under root, a SUDO_USER that agrees with SUDO_UID is the person behind sudo.
    if gatehouse::identity::is_root()
        && let Some(uid) = gatehouse::identity::uid_of_name("nobody")
    {
        let o = run(
            &url,
            dir.path(),
            &["operator", "add", "nobody", "--role", "approver"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let o = new_request(&[("SUDO_USER", "nobody"), ("SUDO_UID", &uid.to_string())]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let shown = text(&run(&url, dir.path(), &["request", "show", "2"]));
        assert!(shown.contains("requester  nobody via"), "{shown}");
    }
}
