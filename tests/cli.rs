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
    assert!(text(&o).contains("3 rows"), "{}", text(&o));
    let o = run(&url, dir.path(), &["audit", "export", "--format", "jsonl"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);

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
