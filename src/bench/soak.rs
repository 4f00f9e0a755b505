//! `gatehouse bench soak`: N no-op jobs through real `gatehouse worker` processes on a
//! throwaway PostgreSQL database with a short job retention, fed so the backlog stays bounded.
//! Prints the rate of the first and of the last 100,000 jobs, the jobs table's largest and final
//! row counts (retention at work) and each worker's resident memory over the run.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::bench::args::{BenchBackend, BenchSoakArgs};
use crate::bench::{noop_jobs, scratch};
use crate::failure::{CliError, Context};

/// Jobs per enqueue.
const CHUNK: usize = 10_000;
/// Jobs per measured slice (first and last).
const SLICE: u64 = 100_000;

/// Run the soak.
pub async fn run(args: &BenchSoakArgs, database_url: Option<&str>) -> Result<ExitCode, CliError> {
    let total = u64::from(args.jobs);
    if total < 2 * SLICE {
        return Err(CliError::msg(
            "bench soak",
            format!(
                "--jobs {total}: a soak needs at least {} jobs (a first and a last {SLICE})",
                2 * SLICE
            ),
        ));
    }
    let scratch = scratch(BenchBackend::Postgres, database_url).await?;
    let result = soak(args, total, &scratch.url, &scratch.store).await;
    scratch.remove().await;
    result
}

async fn soak(
    args: &BenchSoakArgs,
    total: u64,
    url: &str,
    store: &crate::store::Store,
) -> Result<ExitCode, CliError> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .context(|| "connecting to the benchmark database".into())?;
    let (autovacuum,): (String,) = sqlx::query_as("SELECT current_setting('autovacuum')")
        .fetch_one(&pool)
        .await
        .context(|| "reading the server's autovacuum setting".into())?;
    let exe = std::env::current_exe().context(|| "finding this program's path".into())?;
    let retention = format!("{}s", args.retention.as_secs().max(1));
    println!(
        "bench soak: {total} no-op jobs through {} `gatehouse worker` processes (their defaults but --queues bench,maintenance --job-retention {retention}) on PostgreSQL, backlog kept under {}",
        args.workers, args.backlog
    );
    println!(
        "  server autovacuum: {autovacuum} (the prune vacuums the jobs table itself after deleting)"
    );
    let mut children = Vec::new();
    for _ in 0..args.workers {
        let child = tokio::process::Command::new(&exe)
            .args(["--database-url", url, "--log", "warn", "worker"])
            .args([
                "--queues",
                "bench,maintenance",
                "--job-retention",
                &retention,
            ])
            .env_remove("GATEHOUSE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context(|| format!("starting {}", exe.display()))?;
        children.push(child);
    }
    let pids: Vec<u32> = children.iter().filter_map(|c| c.id()).collect();
    let rss_start = rss_kib(&pids);

    let started = Instant::now();
    let mut enqueued: u64 = 0;
    let mut marks: Vec<(u64, Duration)> = Vec::new();
    let mut most_rows: i64 = 0;
    let mut rss_peak = rss_start.clone();
    let mut last_sample = Instant::now() - Duration::from_secs(10);
    let deadline = Duration::from_secs(args.timeout.as_secs().max(10));
    let done = loop {
        let unfinished: (i64,) = sqlx::query_as(
            "SELECT count(*) FROM jobs WHERE queue = 'bench' AND state IN ('available', 'running', 'retrying')",
        )
        .fetch_one(&pool)
        .await
        .context(|| "counting unfinished jobs".into())?;
        let done = enqueued.saturating_sub(u64::try_from(unfinished.0).unwrap_or(0));
        let next_mark = (marks.len() as u64 + 1) * SLICE;
        if done >= next_mark.min(total) && marks.last().is_none_or(|(d, _)| *d < done) {
            marks.push((done, started.elapsed()));
        }
        if done >= total {
            break done;
        }
        if started.elapsed() > deadline {
            break done;
        }
        if enqueued < total && unfinished.0 < i64::from(args.backlog) {
            let n = CHUNK.min(usize::try_from(total - enqueued).unwrap_or(CHUNK));
            store
                .enqueue(&noop_jobs(n, "noop"))
                .await
                .context(|| "enqueueing".into())?;
            enqueued += n as u64;
            continue;
        }
        if last_sample.elapsed() >= Duration::from_secs(2) {
            last_sample = Instant::now();
            let rows: (i64,) = sqlx::query_as("SELECT count(*) FROM jobs")
                .fetch_one(&pool)
                .await
                .context(|| "counting the jobs table".into())?;
            most_rows = most_rows.max(rows.0);
            for (peak, now) in rss_peak.iter_mut().zip(rss_kib(&pids)) {
                *peak = (*peak).max(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = started.elapsed();
    let rss_end = rss_kib(&pids);
    for pid in &pids {
        // SAFETY: signalling a child process this function started and still owns.
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGTERM);
        }
    }
    for child in &mut children {
        let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    }
    let dead: (i64,) =
        sqlx::query_as("SELECT count(*) FROM jobs WHERE queue = 'bench' AND state = 'dead'")
            .fetch_one(&pool)
            .await
            .context(|| "counting dead jobs".into())?;
    let rows: (i64,) = sqlx::query_as("SELECT count(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .context(|| "counting the jobs table".into())?;
    most_rows = most_rows.max(rows.0);
    pool.close().await;

    let rate = |from: u64, to: u64, t0: Duration, t1: Duration| {
        (to - from) as f64 / (t1.saturating_sub(t0)).as_secs_f64().max(1e-9)
    };
    let at = |jobs: u64| {
        marks
            .iter()
            .find(|(d, _)| *d >= jobs)
            .map(|(d, t)| (*d, *t))
    };
    println!(
        "  {done} of {total} jobs finished in {:.1} s ({:.0} jobs/s); dead: {}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        dead.0
    );
    let first = at(SLICE).map(|(d, t)| rate(0, d, Duration::ZERO, t));
    let last = match (at(total - SLICE), at(total)) {
        (Some((d0, t0)), Some((d1, t1))) if d1 > d0 => Some(rate(d0, d1, t0, t1)),
        _ => None,
    };
    if let (Some(first), Some(last)) = (first, last) {
        println!(
            "  first {SLICE}: {first:.0} jobs/s; last {SLICE}: {last:.0} jobs/s; last/first {:.2} (target ≥ 0.90)",
            last / first
        );
    }
    println!(
        "  jobs table: at most {most_rows} rows during the run, {} at the end (retention {retention})",
        rows.0
    );
    for (i, ((start, peak), end)) in rss_start.iter().zip(&rss_peak).zip(&rss_end).enumerate() {
        println!(
            "  worker {}: RSS {:.1} MB at the start, {:.1} MB at most, {:.1} MB at the end",
            i + 1,
            *start as f64 / 1024.0,
            *peak as f64 / 1024.0,
            *end as f64 / 1024.0
        );
    }
    let ok =
        done >= total && dead.0 == 0 && matches!((first, last), (Some(f), Some(l)) if l >= 0.9 * f);
    if !ok {
        println!("  NOT MET: see the figures above");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Resident memory of each process in KiB (0 when it cannot be read).
fn rss_kib(pids: &[u32]) -> Vec<u64> {
    pids.iter()
        .map(|pid| super::proc_status_kib(&pid.to_string(), "VmRSS").unwrap_or(0))
        .collect()
}
