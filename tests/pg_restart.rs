//! PostgreSQL restarted under running workers: they reconnect with backoff and finish; no job
//! is lost or run twice. Uses a throwaway cluster this test creates (initdb + pg_ctl on its own
//! port), never the shared server.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gatehouse::store::api::NewJob;
use gatehouse::store::{OpenOptions, Store};
use support::*;

fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("GATEHOUSE_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Run a PostgreSQL tool as the `postgres` user when we are root (the server refuses root).
fn pg_tool(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(tool);
    let is_root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args).output().expect("run PostgreSQL tool")
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// A cluster of its own: `slot` keeps two tests of this file apart (its directory).
    fn create(slot: u16) -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            if in_ci() {
                panic!("no PostgreSQL binaries (initdb) found under CI");
            }
            eprintln!("SKIPPED: no initdb found");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("gh-pg-restart-{}-{slot}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = dir.join("data");
        let out = pg_tool(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port the kernel says is free now (a fixed one can be taken by another test's
        // outbound connection, as ephemeral ports overlap any high range); a start that still
        // loses the race tries another.
        let mut cluster = Cluster { bin, dir, port: 0 };
        for _ in 0..3 {
            cluster.port = free_port();
            if cluster.try_pg_ctl(&["start"]).status.success() {
                return Some(cluster);
            }
        }
        cluster.start();
        Some(cluster)
    }

    fn try_pg_ctl(&self, args: &[&str]) -> std::process::Output {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut all = vec![
            "-D",
            data.to_str().expect("utf-8"),
            "-l",
            log.to_str().expect("utf-8"),
            "-o",
            &opts,
            "-w",
        ];
        all.extend_from_slice(args);
        pg_tool(&self.bin, "pg_ctl", &all)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = self.try_pg_ctl(args);
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        self.pg_ctl(&["start"]);
    }

    fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = pg_tool(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or("."),
                "stop",
                "-m",
                "immediate",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_postgres_restart() {
    let Some(cluster) = Cluster::create(0) else {
        return;
    };
    let url = cluster.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&url, OpenOptions::default())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let now = chrono::Utc::now().timestamp_millis();
    let jobs: Vec<NewJob> = (0..3_000)
        .map(|i| NewJob {
            queue: "default".into(),
            kind: "probe".into(),
            payload: serde_json::json!({ "i": i, "sleep_ms": 5 }),
            priority: 0,
            run_at: now,
            max_attempts: 10,
            unique_key: None,
            request_id: None,
        })
        .collect();
    store.enqueue(&jobs).await.expect("enqueue");
    let workers: Vec<Proc> = (0..2)
        .map(|i| {
            spawn_worker(
                &url,
                &dir.path().join(format!("w{i}.log")),
                &["--concurrency", "8"],
            )
        })
        .collect();
    let started = eventually(Duration::from_secs(30), || async {
        store
            .probe_counts()
            .await
            .map(|c| c.0 >= 300)
            .unwrap_or(false)
    })
    .await;
    assert!(started, "workers did not start processing");
    store.close().await;

    cluster.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.start();

    let store = Store::open(&url, OpenOptions::default())
        .await
        .expect("reopen");
    let done = eventually(Duration::from_secs(120), || async {
        store
            .probe_counts()
            .await
            .map(|c| c.0 >= 3_000)
            .unwrap_or(false)
    })
    .await;
    assert!(done, "workers did not finish after the restart");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, distinct) = store.probe_counts().await.expect("counts");
    assert_eq!(distinct, 3_000, "no job lost");
    assert_eq!(runs, 3_000, "no job run twice");
    for w in &workers {
        assert!(w.0.id() > 0);
        w.signal(libc::SIGTERM);
    }
    for mut w in workers {
        assert!(
            w.wait_for(Duration::from_secs(20)).is_some(),
            "worker stops on SIGTERM"
        );
    }
}

/// A worker stopped with SIGTERM while PostgreSQL is down still exits: its grace period for
/// running jobs, then a bounded wait for each last write; unrecorded jobs return with their
/// leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_is_down_exits_within_the_grace_period() {
    let Some(cluster) = Cluster::create(1) else {
        return;
    };
    let url = cluster.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&url, OpenOptions::default())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let now = chrono::Utc::now().timestamp_millis();
    let jobs: Vec<NewJob> = (0..2_000)
        .map(|i| NewJob {
            queue: "default".into(),
            kind: "probe".into(),
            payload: serde_json::json!({ "i": i, "sleep_ms": 20 }),
            priority: 0,
            run_at: now,
            max_attempts: 10,
            unique_key: None,
            request_id: None,
        })
        .collect();
    store.enqueue(&jobs).await.expect("enqueue");
    let mut worker = spawn_worker(
        &url,
        &dir.path().join("w.log"),
        &["--concurrency", "8", "--grace-secs", "3"],
    );
    let started = eventually(Duration::from_secs(30), || async {
        store
            .probe_counts()
            .await
            .map(|c| c.0 >= 50)
            .unwrap_or(false)
    })
    .await;
    assert!(started, "the worker did not start processing");
    store.close().await;
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = std::time::Instant::now();
    worker.signal(libc::SIGTERM);
    // Grace 3 s, then at most 2 s for each of three last writes, plus process start-up slack.
    let limit = Duration::from_secs(12);
    let exited = worker.wait_for(limit).is_some();
    assert!(
        exited,
        "the worker did not exit within {limit:?} of SIGTERM with the database down; its log:\n{}",
        std::fs::read_to_string(dir.path().join("w.log")).unwrap_or_default()
    );
    assert!(asked.elapsed() <= limit);
}
