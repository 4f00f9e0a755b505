//! Real worker processes against real stores: SIGKILL recovery, three workers on one
//! PostgreSQL, exactly-once handler runs.

mod support;

use std::time::Duration;

use gatehouse::store::api::{NewJob, ReadApi};
use gatehouse::store::{OpenOptions, Store};
use support::*;

fn probe_jobs(count: usize, sleep_ms: u64) -> Vec<NewJob> {
    let now = chrono::Utc::now().timestamp_millis();
    (0..count)
        .map(|i| NewJob {
            queue: "default".into(),
            kind: "probe".into(),
            payload: serde_json::json!({ "i": i, "sleep_ms": sleep_ms }),
            priority: 0,
            run_at: now,
            max_attempts: 5,
            unique_key: None,
            request_id: None,
        })
        .collect()
}

async fn open(url: &str) -> Store {
    let store = Store::open(url, OpenOptions::default())
        .await
        .expect("open store");
    store.migrate().await.expect("migrate");
    store
}

/// A worker killed with SIGKILL while holding leases: after the leases expire another worker
/// completes every one of those jobs, each exactly once.
async fn sigkill_then_rescue(url: &str, dir: &std::path::Path) {
    let store = open(url).await;
    let ids = store
        .enqueue(&probe_jobs(12, 4_000))
        .await
        .expect("enqueue");
    assert_eq!(ids.iter().flatten().count(), 12);

    let mut victim = spawn_worker(
        url,
        &dir.join("victim.log"),
        &["--concurrency", "12", "--lease-secs", "3"],
    );
    let leased = eventually(Duration::from_secs(20), || async {
        let stats = store.queue_stats().await.expect("stats");
        stats
            .iter()
            .any(|q| q.queue == "default" && q.running == 12)
    })
    .await;
    assert!(leased, "the first worker never leased all 12 jobs");
    victim.signal(libc::SIGKILL);
    victim
        .wait_for(Duration::from_secs(5))
        .expect("victim exits on SIGKILL");
    let (runs, _) = store.probe_counts().await.expect("probe counts");
    assert_eq!(runs, 0, "the killed worker finished nothing");

    let _rescuer = spawn_worker(
        url,
        &dir.join("rescuer.log"),
        &["--concurrency", "12", "--lease-secs", "3"],
    );
    let done = eventually(Duration::from_secs(60), || async {
        store.probe_counts().await.expect("probe counts").0 >= 12
    })
    .await;
    assert!(done, "the jobs were not completed after the leases expired");
    // Give a double run the chance to show before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, distinct) = store.probe_counts().await.expect("probe counts");
    assert_eq!((runs, distinct), (12, 12), "every job ran exactly once");
    let completed = eventually(Duration::from_secs(10), || async {
        let stats = store.queue_stats().await.expect("stats");
        stats
            .iter()
            .any(|q| q.queue == "default" && q.completed == 12 && q.running == 0)
    })
    .await;
    assert!(completed, "all 12 jobs end completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_jobs_complete_once_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    sigkill_then_rescue(&sqlite_url(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_jobs_complete_once_postgres() {
    let Some(db) = PgDb::create("kill").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    sigkill_then_rescue(&db.url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_process_ten_thousand_jobs_exactly_once() {
    let Some(db) = PgDb::create("three").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&db.url).await;
    store
        .enqueue(&probe_jobs(10_000, 0))
        .await
        .expect("enqueue");
    let workers: Vec<Proc> = (0..3)
        .map(|i| {
            spawn_worker(
                &db.url,
                &dir.path().join(format!("w{i}.log")),
                &["--concurrency", "16"],
            )
        })
        .collect();
    let done = eventually(Duration::from_secs(180), || async {
        store.probe_counts().await.expect("probe counts").0 >= 10_000
    })
    .await;
    assert!(done, "10,000 jobs were not processed in time");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, distinct) = store.probe_counts().await.expect("probe counts");
    assert_eq!(runs, 10_000, "no handler ran twice");
    assert_eq!(distinct, 10_000, "every job ran");
    let workers_seen = store.probe_workers().await.expect("probe workers");
    assert_eq!(workers_seen, 3, "all three processes took part");
    for w in &workers {
        w.signal(libc::SIGTERM);
    }
    for mut w in workers {
        let status = w
            .wait_for(Duration::from_secs(20))
            .expect("worker stops on SIGTERM");
        assert!(status.success(), "graceful shutdown exits 0");
    }
}

/// SIGTERM with jobs still running past the grace period: the worker exits 0 and hands the
/// leases back at once (no waiting for expiry), and nothing is recorded as done.
async fn sigterm_releases_unfinished_leases(url: &str, dir: &std::path::Path) {
    let store = open(url).await;
    store
        .enqueue(&probe_jobs(4, 60_000))
        .await
        .expect("enqueue");
    let mut worker = spawn_worker(
        url,
        &dir.join("w.log"),
        &[
            "--concurrency",
            "4",
            "--lease-secs",
            "120",
            "--grace-secs",
            "1",
        ],
    );
    let leased = eventually(Duration::from_secs(20), || async {
        let stats = store.queue_stats().await.expect("stats");
        stats.iter().any(|q| q.queue == "default" && q.running == 4)
    })
    .await;
    assert!(leased, "the worker leased the jobs");
    worker.signal(libc::SIGTERM);
    let status = worker
        .wait_for(Duration::from_secs(15))
        .expect("worker exits after its grace period");
    assert!(status.success(), "graceful shutdown exits 0");
    let stats = store.queue_stats().await.expect("stats");
    let default = stats
        .iter()
        .find(|q| q.queue == "default")
        .expect("default queue");
    assert_eq!(default.running, 0, "no lease is left behind");
    assert_eq!(default.ready, 4, "the jobs are claimable again at once");
    assert_eq!(
        store.probe_counts().await.expect("counts").0,
        0,
        "none ran to completion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_unfinished_leases_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    sigterm_releases_unfinished_leases(&sqlite_url(dir.path()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_unfinished_leases_postgres() {
    let Some(db) = PgDb::create("term").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    sigterm_releases_unfinished_leases(&db.url, dir.path()).await;
}
