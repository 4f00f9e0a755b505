//! Maintenance job handlers: rescue expired leases, prune what has outlived its retention, and
//! the diagnostic probe the tests run.

use std::time::Duration;

use tracing::info;

use crate::engine::handler::{JobContext, JobError};

/// Return jobs whose lease expired to their queues (kept for `maintenance.rescue` jobs
/// already enqueued; the scheduler now rescues directly).
pub(crate) async fn rescue(ctx: JobContext) -> Result<(), JobError> {
    let n = ctx.store.rescue_expired().await?;
    if n > 0 {
        info!(jobs = n, "rescued jobs whose lease expired");
    }
    Ok(())
}

/// How long finished jobs (completed, cancelled, dead) stay in the jobs table unless the
/// worker says otherwise (`gatehouse worker --job-retention`). Requests keep their steps and
/// audit rows for good; only the job rows go.
pub const JOB_RETENTION: Duration = Duration::from_secs(3 * 86_400);

/// Delete what has outlived its retention: log lines and periodic keys after a week,
/// finished jobs after the retention the scheduler put in the job (else [`JOB_RETENTION`]),
/// workers silent for a day.
pub(crate) async fn prune(ctx: JobContext) -> Result<(), JobError> {
    let now = ctx.store.now();
    let retention = ctx
        .job
        .payload
        .get("job_retention_ms")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(JOB_RETENTION.as_millis() as i64);
    let week = Duration::from_secs(7 * 86_400).as_millis() as i64;
    let cutoff = now - week;
    let lines = ctx.store.prune_logs(cutoff).await?;
    let periods = ctx.store.prune_periodic(cutoff).await?;
    let jobs = ctx.store.prune_jobs(now.saturating_sub(retention)).await?;
    // The jobs table takes a claim, a completion and (here) a delete per job: vacuum it now
    // rather than trust the server's autovacuum (off on some servers, and at most once a
    // minute where on), so claims never step over a growing pile of dead index entries.
    if jobs > 0
        && let Err(e) = ctx.store.vacuum_jobs().await
    {
        tracing::warn!(error = %e, "could not vacuum the jobs table after pruning it");
    }
    let day = Duration::from_secs(86_400).as_millis() as i64;
    let workers = ctx.store.prune_workers(now - day).await?;
    info!(
        lines,
        periods,
        jobs,
        workers,
        job_retention_ms = retention,
        "pruned execution log lines and periodic keys older than a week, finished jobs past their retention, workers silent for a day"
    );
    Ok(())
}

/// Diagnostic job for tests: sleeps `sleep_ms`, then records that it ran, once per run.
pub(crate) async fn probe(ctx: JobContext) -> Result<(), JobError> {
    let sleep = ctx
        .job
        .payload
        .get("sleep_ms")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if sleep > 0 {
        tokio::time::sleep(Duration::from_millis(sleep)).await;
    }
    ctx.store.record_probe(ctx.job.id, &ctx.worker_id).await?;
    Ok(())
}
