//! `gatehouse bench`: throughput and latency figures measured on a throwaway store, printed.

pub mod args;
mod csv;
mod imap;
mod joiners;
mod reconcile;
mod soak;
pub mod tui;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::engine::handler::{JobContext, Registry};
use crate::engine::logsink::run_flusher;
use crate::engine::worker::{WorkerConfig, run_worker};
use crate::failure::{CliError, Context};
use crate::store::api::{NewJob, NewLog};
use crate::store::{OpenOptions, Store};
use args::{BenchBackend, BenchCommand, BenchQueueArgs};

/// Run one benchmark. `logs` receives the lines of the execution-log layer the caller
/// installed: the benchmarks that run workers persist them into their store, as
/// `gatehouse worker` does.
pub async fn run(
    cmd: &BenchCommand,
    database_url: Option<&str>,
    logs: mpsc::Receiver<NewLog>,
) -> Result<ExitCode, CliError> {
    match cmd {
        BenchCommand::Queue(args) => bench_queue(args, database_url, logs).await,
        BenchCommand::Tui(args) => tui::run(args).await,
        BenchCommand::Reconcile(args) => reconcile::run(args, database_url).await,
        BenchCommand::Csv(args) => csv::run(args, database_url, logs).await,
        BenchCommand::Joiners(args) => joiners::run(args, database_url, logs).await,
        BenchCommand::Imap(args) => imap::run(args, database_url).await,
        BenchCommand::Soak(args) => soak::run(args, database_url).await,
    }
}

/// The execution log as `gatehouse worker` runs it: log lines carrying request or job ids
/// written to the bench's store in batches, until this is dropped.
struct ExecutionLog(tokio::task::JoinHandle<()>);

impl ExecutionLog {
    fn start(store: &Store, logs: mpsc::Receiver<NewLog>) -> Self {
        Self(tokio::spawn(run_flusher(store.clone(), logs)))
    }
}

impl Drop for ExecutionLog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A store that exists for one benchmark and is removed afterwards.
struct Scratch {
    store: Store,
    /// Its URL, to open more handles as other processes would.
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    PgDatabase { admin_url: String, name: String },
}

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn scratch(backend: BenchBackend, database_url: Option<&str>) -> Result<Scratch, CliError> {
    let tag = format!("{}_{:04x}", std::process::id(), fastrand::u16(..));
    let (url, cleanup) = match backend {
        BenchBackend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("gatehouse-bench-{tag}"));
            std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
            (
                format!("sqlite:{}", dir.join("bench.db").display()),
                Cleanup::File(dir),
            )
        }
        BenchBackend::Postgres => {
            let admin = database_url.unwrap_or(DEFAULT_PG).to_string();
            let name = format!("gatehouse_bench_{tag}");
            let url = create_database(&admin, &name).await.context(|| {
                format!(
                    "creating database {name} on {}",
                    crate::store::mask_url(&admin)
                )
            })?;
            (
                url,
                Cleanup::PgDatabase {
                    admin_url: admin,
                    name,
                },
            )
        }
    };
    let store = Store::open(&url, OpenOptions::default())
        .await
        .context(|| "opening the benchmark store".into())?;
    store
        .migrate()
        .await
        .context(|| "migrating the benchmark store".into())?;
    Ok(Scratch {
        store,
        url,
        cleanup,
    })
}

/// Create database `name` on the server of `admin_url`; answers the new database's URL.
/// `name` is always generated here from a fixed prefix, digits and hex: a safe identifier.
async fn create_database(admin_url: &str, name: &str) -> Result<String, sqlx::Error> {
    let pool = sqlx::PgPool::connect(admin_url).await?;
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await;
    pool.close().await;
    created.map(|_| replace_database(admin_url, name))
}

/// Drop a database made by [`create_database`], ending its sessions; best effort.
async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(admin_url).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        pool.close().await;
    }
}

/// `postgres://u@h:5432/postgres?x` with the database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rsplit_once('/') {
        Some((p, _))
            if p.contains("://") && p.split("://").nth(1).is_some_and(|h| !h.is_empty()) =>
        {
            p.to_string()
        }
        _ => base.trim_end_matches('/').to_string(),
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

impl Scratch {
    async fn remove(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PgDatabase { admin_url, name } => drop_database(&admin_url, &name).await,
        }
    }
}

fn noop_jobs(count: usize, tag: &str) -> Vec<NewJob> {
    let now = chrono::Utc::now().timestamp_millis();
    (0..count)
        .map(|i| NewJob {
            queue: "bench".into(),
            kind: tag.into(),
            payload: serde_json::json!({ "i": i }),
            priority: 0,
            run_at: now,
            max_attempts: 3,
            unique_key: None,
            request_id: None,
        })
        .collect()
}

/// The worker settings a phase runs with: `gatehouse worker`'s defaults
/// ([`WorkerConfig::new`]) with only the concurrency (and so the claim size) set.
fn bench_config(concurrency: usize) -> WorkerConfig {
    let mut config = WorkerConfig::new(concurrency);
    config.queues = vec!["bench".into()];
    config
}

fn describe(config: &WorkerConfig) -> String {
    format!(
        "concurrency {}, claims up to {}, completions flushed in batches of up to {}, poll {:?}, lease {:?}",
        config.concurrency, config.batch, config.completion_batch, config.poll, config.lease
    )
}

/// Run `workers` worker loops (each with `config`) until every one of the `target` jobs of
/// queue `bench` is durably completed; returns the elapsed time, after checking that each job
/// ran exactly once (handler count, completed rows and their attempts all equal `target`).
async fn process(
    store: &Store,
    workers: usize,
    config: &WorkerConfig,
    target: u64,
    counter: Arc<AtomicU64>,
    registry: Registry,
) -> Result<Duration, CliError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let mut config = config.clone();
        config.id = crate::engine::worker::new_worker_id();
        handles.push(tokio::spawn(run_worker(
            store.clone(),
            registry.clone(),
            config,
            stop_rx.clone(),
        )));
    }
    while counter.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Handlers have run; the clock stops when their completions are committed.
    let target_i = i64::try_from(target).unwrap_or(i64::MAX);
    let outcome = loop {
        let outcome = store
            .queue_outcome("bench")
            .await
            .context(|| "reading the bench queue".into())?;
        if outcome.0 >= target_i {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let elapsed = start.elapsed();
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    exactly_once(target, counter.load(Ordering::Relaxed), outcome)
        .map_err(|why| CliError::msg("bench check", why))?;
    Ok(elapsed)
}

/// The bench's verdict: `target` jobs ran their handler `ran` times in all, and the queue holds
/// (completed, their attempts, unfinished); each job must have completed exactly once.
fn exactly_once(
    target: u64,
    ran: u64,
    (completed, attempts, unfinished): (i64, i64, i64),
) -> Result<(), String> {
    let target_i = i64::try_from(target).unwrap_or(i64::MAX);
    if ran == target && completed == target_i && attempts == target_i && unfinished == 0 {
        Ok(())
    } else {
        Err(format!(
            "expected {target} jobs each completed exactly once; handlers ran {ran}, completed rows {completed}, attempts {attempts}, unfinished {unfinished}"
        ))
    }
}

/// A `kB` figure of `/proc/PID/status` (`field` such as `VmRSS` or `VmHWM`; `pid` may be
/// `self`), in KiB.
fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The `p` quantile (0..=1) of an ascending slice; NaN when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn bench_queue(
    args: &BenchQueueArgs,
    database_url: Option<&str>,
    logs: mpsc::Receiver<NewLog>,
) -> Result<ExitCode, CliError> {
    let jobs = args.jobs.max(1) as usize;
    let workers = args.workers.max(1);
    let scratch = scratch(args.backend, database_url).await?;
    let store = scratch.store.clone();
    let execution_log = ExecutionLog::start(&store, logs);
    let backend = format!("{:?}", args.backend).to_lowercase();
    println!(
        "bench queue: backend={backend} jobs={jobs} workers={workers} (with the execution log, as `gatehouse worker` runs)"
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // The machine is shared: the load at the start says how much to trust the figures.
        println!(
            "  load average at start: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    // 1. Enqueue throughput: bulk enqueue in chunks.
    let batch = noop_jobs(jobs, "noop");
    let start = Instant::now();
    for chunk in batch.chunks(5_000) {
        store.enqueue(chunk).await.context(|| "enqueueing".into())?;
    }
    let enqueue_rate = jobs as f64 / start.elapsed().as_secs_f64();
    println!("  enqueue            {enqueue_rate:>10.0} jobs/s  (chunks of 5,000)");

    // 2. Processing in batches of 100 with a no-op handler.
    let done = Arc::new(AtomicU64::new(0));
    let mut registry = Registry::new();
    let counter = done.clone();
    registry.register("noop", move |_ctx: JobContext| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    });
    let many = bench_config(100);
    println!("  settings (claims of many): {}", describe(&many));
    let elapsed = process(
        &store,
        workers,
        &many,
        jobs as u64,
        done.clone(),
        registry.clone(),
    )
    .await?;
    let batch_rate = jobs as f64 / elapsed.as_secs_f64();
    println!(
        "  process (batch 100){batch_rate:>10.0} jobs/s  (until every completion is committed; each job checked completed exactly once)"
    );

    // Dead rows from the batch phase would slow the next one until autovacuum catches up.
    store
        .vacuum_jobs()
        .await
        .context(|| "vacuuming jobs".into())?;

    // 3. One job per claim. The batch phase's rows are counted too by the check, so it runs on
    // a queue of its own.
    let single = (jobs / 5).clamp(1, 20_000);
    store
        .prune_jobs(i64::MAX)
        .await
        .context(|| "removing the batch phase's jobs".into())?;
    store
        .enqueue(&noop_jobs(single, "noop"))
        .await
        .context(|| "enqueueing".into())?;
    done.store(0, Ordering::Relaxed);
    // `gatehouse worker`'s default concurrency, each claim taking a single job.
    let mut one = bench_config(8);
    one.batch = 1;
    println!("  settings (one per claim): {}", describe(&one));
    let elapsed = process(
        &store,
        workers,
        &one,
        single as u64,
        done.clone(),
        registry.clone(),
    )
    .await?;
    let single_rate = single as f64 / elapsed.as_secs_f64();
    println!("  process (one/claim){single_rate:>10.0} jobs/s  ({single} jobs)");

    store
        .vacuum_jobs()
        .await
        .context(|| "vacuuming jobs".into())?;

    // 4. Latency from enqueue to start, with idle workers woken by the store's signal.
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<f64>();
    let mut registry = Registry::new();
    registry.register("latency", move |ctx: JobContext| {
        let lat_tx = lat_tx.clone();
        async move {
            let sent = ctx
                .job
                .payload
                .get("sent_us")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            let now = chrono::Utc::now().timestamp_micros();
            let _ = lat_tx.send((now - sent) as f64 / 1000.0);
            Ok(())
        }
    });
    let samples = 1_000usize;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let mut config = WorkerConfig::new(4);
        config.queues = vec!["bench".into()];
        config.poll = Duration::from_secs(1);
        handles.push(tokio::spawn(run_worker(
            store.clone(),
            registry.clone(),
            config,
            stop_rx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Enqueue through a second handle, as another process would: the workers' handle gets no
    // in-process signal, so what is measured is the cross-process wake-up (LISTEN/NOTIFY on
    // PostgreSQL, `data_version` polling on SQLite).
    let producer = Store::open(&scratch.url, OpenOptions::default())
        .await
        .context(|| "opening a second handle for the latency phase".into())?;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let mut job = noop_jobs(1, "latency").remove(0);
        job.payload = serde_json::json!({ "sent_us": chrono::Utc::now().timestamp_micros() });
        producer
            .enqueue(&[job])
            .await
            .context(|| "enqueueing".into())?;
        match tokio::time::timeout(Duration::from_secs(5), lat_rx.recv()).await {
            Ok(Some(ms)) => latencies.push(ms),
            _ => {
                return Err(CliError::msg(
                    "latency phase",
                    "a job did not start within 5 s",
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    producer.close().await;
    latencies.sort_by(f64::total_cmp);
    println!(
        "  enqueue→start      p50 {:.2} ms  p99 {:.2} ms  ({samples} jobs, one at a time, enqueued through a second store handle)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    drop(execution_log);
    scratch.remove().await;

    if args.backend == BenchBackend::Postgres && !args.no_reference {
        match pgbench_reference(database_url.unwrap_or(DEFAULT_PG)).await {
            Ok(reference) => println!(
                "  reference: minimal pgbench queue (lease 100 + complete by index, 8 clients): {reference:.0} jobs/s → batch ratio {:.2}",
                batch_rate / reference
            ),
            Err(e) => println!("  reference: pgbench not run: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same-run reference: pgbench's lease-100-and-complete loop on a scratch table.
async fn pgbench_reference(admin_url: &str) -> Result<f64, String> {
    let pgbench = [
        "/usr/lib/postgresql/17/bin/pgbench",
        "/usr/lib/postgresql/16/bin/pgbench",
        "/usr/lib/postgresql/15/bin/pgbench",
        "pgbench",
    ]
    .into_iter()
    .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
    .ok_or("pgbench not found")?;
    let name = format!("gatehouse_ref_{}", std::process::id());
    let url = create_database(admin_url, &name)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let db = sqlx::PgPool::connect(&url).await.map_err(|e| e.to_string())?;
        // The minimal queue of ../shared/peers/queue/pgbench-queue.sh: two indexes, a claim
        // through the fetch index and a completion through the running-owner index.
        for sql in [
            "CREATE TABLE ref_jobs (id bigserial PRIMARY KEY, queue text NOT NULL DEFAULT 'default', state text NOT NULL DEFAULT 'available', \
             priority smallint NOT NULL DEFAULT 0, run_at timestamptz NOT NULL DEFAULT now(), attempts int NOT NULL DEFAULT 0, \
             locked_by int, lease_until timestamptz, finished_at timestamptz, payload jsonb NOT NULL DEFAULT '{}')",
            "CREATE INDEX ref_fetch ON ref_jobs (queue, priority, run_at, id) WHERE state = 'available'",
            "CREATE INDEX ref_running ON ref_jobs (locked_by) WHERE state = 'running'",
            "INSERT INTO ref_jobs (payload, run_at) SELECT jsonb_build_object('i', g), now() - interval '1 minute' FROM generate_series(1, 400000) g",
            "VACUUM ANALYZE ref_jobs",
        ] {
            sqlx::query(sql).execute(&db).await.map_err(|e| e.to_string())?;
        }
        db.close().await;
        let script = std::env::temp_dir().join(format!("{name}.sql"));
        std::fs::write(
            &script,
            "WITH c AS (SELECT id FROM ref_jobs WHERE queue = 'default' AND state = 'available' AND run_at <= now() \
             ORDER BY priority, run_at, id LIMIT 100 FOR UPDATE SKIP LOCKED) \
             UPDATE ref_jobs j SET state = 'running', locked_by = :client_id, lease_until = now() + interval '30 seconds', attempts = attempts + 1 FROM c WHERE j.id = c.id;\n\
             UPDATE ref_jobs SET state = 'done', finished_at = now(), locked_by = NULL, lease_until = NULL WHERE state = 'running' AND locked_by = :client_id;\n",
        )
        .map_err(|e| e.to_string())?;
        let out = tokio::process::Command::new(pgbench)
            .args(["-n", "-M", "prepared", "-c", "8", "-j", "2", "-T", "5", "-f"])
            .arg(&script)
            .arg(&url)
            .output()
            .await
            .map_err(|e| format!("{pgbench}: {e}"))?;
        let _ = std::fs::remove_file(&script);
        let text = String::from_utf8_lossy(&out.stdout);
        let tps = text
            .lines()
            .find(|l| l.starts_with("tps"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("pgbench printed no tps: {}", String::from_utf8_lossy(&out.stderr)))?;
        Ok(tps * 100.0)
    }
    .await;
    drop_database(admin_url, &name).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_figures_are_read_by_field() {
        assert!(proc_status_kib("self", "VmRSS").is_some_and(|kib| kib > 0));
        assert!(proc_status_kib("self", "VmHWM").is_some_and(|kib| kib > 0));
        assert_eq!(proc_status_kib("self", "NoSuchField"), None);
        assert_eq!(proc_status_kib("no-such-pid", "VmRSS"), None);
    }

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn every_job_must_complete_exactly_once() {
        assert!(exactly_once(10, 10, (10, 10, 0)).is_ok());
        // A handler that ran twice, a retried job, a job left behind, a completion lost.
        assert!(exactly_once(10, 11, (10, 10, 0)).is_err());
        assert!(exactly_once(10, 10, (10, 11, 0)).is_err());
        assert!(exactly_once(10, 10, (10, 10, 1)).is_err());
        assert!(exactly_once(10, 10, (9, 9, 0)).is_err());
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.99), 5.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
