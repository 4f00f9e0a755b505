//! One SQLite file, two processes, 60 seconds: the demo's workers and generator in one, the
//! console's access pattern (frequent small reads, occasional decisions) in this one. No
//! "database is locked" may reach a caller in either.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use gatehouse::store::api::{Actor, CommandApi, Decision, LogFilter, ReadApi, RequestFilter};
use gatehouse::store::error::StoreError;
use gatehouse::store::{OpenOptions, Store};
use support::*;

fn is_locked(e: &StoreError) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("locked") || text.contains("busy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_console_share_one_sqlite_file_for_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let log = dir.path().join("demo.log");
    let mut demo = Proc(
        std::process::Command::new(bin())
            .args([
                "demo",
                "--headless",
                "--for",
                "75s",
                "--rate",
                "20",
                "--data",
            ])
            .arg(&data)
            .env("GATEHOUSE_LOG_FILE", &log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn demo"),
    );
    let url = sqlite_url(&data);
    let db_file = data.join("gatehouse.db");
    let ready = eventually(Duration::from_secs(30), || {
        let db_file = db_file.clone();
        async move { db_file.exists() }
    })
    .await;
    assert!(ready, "the demo did not create its store");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let store = Store::open(&url, OpenOptions::default())
        .await
        .expect("open shared store");
    // The demo makes the login user an admin; this process is that same operator.
    let actor: Actor = gatehouse::identity::current_actor("test");

    let start = Instant::now();
    let mut reads = 0u64;
    let mut decisions = 0u64;
    let mut conflicts = 0u64;
    let mut last_decision = Instant::now();
    let mut cursor = 0i64;
    while start.elapsed() < Duration::from_secs(60) {
        let results = [
            store.overview().await.map(|_| ()),
            store
                .list_requests(&RequestFilter::default(), None, 50)
                .await
                .map(|_| ()),
            store
                .tail_log(cursor, &LogFilter::default(), 200)
                .await
                .map(|rows| {
                    if let Some(last) = rows.last() {
                        cursor = last.id;
                    }
                }),
        ];
        for r in results {
            match r {
                Ok(()) => reads += 1,
                Err(e) => panic!("a read failed: {e}"),
            }
        }
        if last_decision.elapsed() > Duration::from_millis(500) {
            last_decision = Instant::now();
            let page = store
                .pending_approvals(&actor.user, None, None, 5)
                .await
                .expect("inbox read");
            if let Some(a) = page.rows.first() {
                match store
                    .decide_approval(&actor, a.id, a.version, Decision::Approve, None)
                    .await
                {
                    Ok(_) => decisions += 1,
                    Err(e @ StoreError::Conflict { .. }) => {
                        assert!(!is_locked(&e));
                        conflicts += 1;
                    }
                    Err(e) => panic!("a decision failed: {e}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert!(reads > 1_000, "the console pattern ran ({reads} reads)");
    assert!(
        decisions > 10,
        "decisions were made ({decisions}, {conflicts} conflicts)"
    );

    let status = demo.wait_for(Duration::from_secs(60)).expect("demo ends");
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut out) = demo.0.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = demo.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(status.success(), "demo failed: {stderr}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("log", &log_text)] {
        assert!(
            !text.contains("database is locked"),
            "the demo's {what} shows a locked database"
        );
    }
    // The demo's final summary: completed, still pending, and failed-then-retried work, and an
    // intact audit chain; then `audit verify` on its store agrees.
    let count_of = |label: &str| -> i64 {
        stdout
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(label)
                    .map(|rest| rest.trim().parse::<i64>().unwrap_or(-1))
            })
            .unwrap_or(0)
    };
    assert!(count_of("completed") > 0, "completed requests in: {stdout}");
    assert!(
        count_of("awaiting_approval") > 0,
        "pending requests in: {stdout}"
    );
    assert!(
        count_of("failed-then-retried jobs that completed:") > 0,
        "retried work in: {stdout}"
    );
    assert!(stdout.contains("audit verify: intact"), "{stdout}");
    let verify = gatehouse(&url, &dir.path().join("verify.log"))
        .args(["audit", "verify"])
        .output()
        .expect("audit verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let completed = store
        .list_requests(
            &RequestFilter {
                state: Some("completed".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .expect("list");
    assert!(
        !completed.rows.is_empty(),
        "requests completed while we read"
    );
}
