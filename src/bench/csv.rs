//! `gatehouse bench csv`: a CSV file of N joiners imported and processed by a worker with the
//! default settings until every request awaits its first approval; prints the import time, the
//! time until the last request awaits approval, and checks each row became exactly one request
//! with exactly one open stage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::args::BenchCsvArgs;
use super::scratch;
use crate::engine::worker::{WorkerConfig, run_worker};
use crate::failure::{CliError, Context};
use crate::intake::csv::{CsvOptions, parse_csv};
use crate::store::Store;
use crate::store::api::{Actor, CommandApi, NewRequest, OperatorRow, ReadApi};
use crate::store::import::{ImportOutcome, ImportRow};

/// The workflow the rows go to: fields checked, one stage with named approvers, no steps.
const WORKFLOW: &str = r#"kind = "workflow"
name = "bench-joiner"
team = "bench"

[intake]
sources = ["csv"]
kinds = ["joiner"]

[validation]
required_fields = ["subject_email", "start_date"]
email_domains = ["example.com"]

[[stages]]
name = "manager"
policy = "any"
people = ["ann", "bob"]
"#;

/// Concurrency of `gatehouse worker` when none is given.
pub(super) const DEFAULT_CONCURRENCY: usize = 8;
/// How long the bench waits for the engine before giving up.
pub(super) const PATIENCE: Duration = Duration::from_secs(600);

/// Run the benchmark.
pub async fn run(
    args: &BenchCsvArgs,
    database_url: Option<&str>,
    logs: tokio::sync::mpsc::Receiver<crate::store::api::NewLog>,
) -> Result<ExitCode, CliError> {
    let scratch = scratch(args.backend, database_url).await?;
    let execution_log = super::ExecutionLog::start(&scratch.store, logs);
    let result = measure(&scratch.store, args).await;
    drop(execution_log);
    scratch.remove().await;
    result
}

fn file_text(rows: u32) -> String {
    let mut text = String::from("firstname,lastname,email,start_date,team\n");
    for i in 0..rows {
        text.push_str(&format!(
            "Person,Number{i},person.{i}@example.com,2099-01-04,bench\n"
        ));
    }
    text
}

async fn measure(store: &Store, args: &BenchCsvArgs) -> Result<ExitCode, CliError> {
    let n = args.rows.max(1);
    let admin = Actor::operator("bench", "bench");
    store
        .bootstrap_admin(&Actor::operator("bench-setup", "bench"), "bench", None)
        .await
        .context(|| "creating the bench admin".into())?;
    for name in ["ann", "bob"] {
        store
            .set_operator(
                &admin,
                &OperatorRow {
                    name: name.into(),
                    role: "approver".into(),
                    scopes: Vec::new(),
                    email: None,
                },
            )
            .await
            .context(|| format!("adding approver {name}"))?;
    }
    store
        .save_config(&admin, "workflow", "bench-joiner", WORKFLOW, "bench", 0)
        .await
        .context(|| "saving the bench workflow".into())?;
    let (dir, path) = write_file(n)?;
    let config = WorkerConfig::new(DEFAULT_CONCURRENCY);
    println!(
        "bench csv: {n} joiners, worker concurrency {} (the default), batch {}, with the execution log",
        config.concurrency, config.batch
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(run_worker(
        store.clone(),
        crate::engine::flow::registry(),
        config,
        stop_rx,
    ));
    let started = Instant::now();
    let outcome = import_file(store, &admin, "bench-joiner", &path).await?;
    let imported = started.elapsed();
    let mut waiting = 0;
    while started.elapsed() < PATIENCE {
        // The queue counts are cheap: the requests are counted only once no job is left.
        if !queues_idle(store).await? {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let overview = store
            .overview()
            .await
            .context(|| "reading progress".into())?;
        waiting = overview
            .requests_by_state
            .iter()
            .filter(|(state, _)| state.starts_with("awaiting_approval"))
            .map(|(_, count)| *count)
            .sum::<i64>();
        if waiting >= i64::from(n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = worker.await;
    let _ = std::fs::remove_dir_all(&dir);

    let overview = store
        .overview()
        .await
        .context(|| "reading the result".into())?;
    let total: i64 = overview.requests_by_state.iter().map(|(_, c)| c).sum();
    println!(
        "  import (read + parse + one transaction): {:.2} s ({:.0} rows/s)",
        imported.as_secs_f64(),
        f64::from(n) / imported.as_secs_f64()
    );
    println!(
        "  every request awaiting approval after {:.2} s ({:.0} requests/s end to end)",
        done.as_secs_f64(),
        f64::from(n) / done.as_secs_f64()
    );
    let states: Vec<String> = overview
        .requests_by_state
        .iter()
        .map(|(s, c)| format!("{c} {s}"))
        .collect();
    println!("  states: {}", states.join(", "));
    let exact = outcome.created.len() == n as usize
        && total == i64::from(n)
        && waiting == i64::from(n)
        && overview.pending_approvals == i64::from(n);
    if exact {
        println!("  check: {n} rows → {n} requests, {n} open stages (exactly once)",);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "  check FAILED: {} created, {total} requests, {waiting} awaiting, {} open stages",
            outcome.created.len(),
            overview.pending_approvals
        );
        Ok(ExitCode::FAILURE)
    }
}

/// True when no job of the default queue is ready, running or waiting to be retried.
pub(super) async fn queues_idle(store: &Store) -> Result<bool, CliError> {
    let stats = store
        .queue_stats()
        .await
        .context(|| "reading the queues".into())?;
    Ok(stats
        .iter()
        .filter(|q| q.queue == crate::store::QUEUE_DEFAULT)
        .all(|q| q.ready == 0 && q.running == 0 && q.retrying == 0))
}

/// Writes a file of `rows` joiners to a new temporary directory: (directory, file).
pub(super) fn write_file(rows: u32) -> Result<(PathBuf, PathBuf), CliError> {
    let dir = tempfile_dir()?;
    let path = dir.join("joiners.csv");
    std::fs::write(&path, file_text(rows)).context(|| format!("writing {}", path.display()))?;
    Ok((dir, path))
}

/// Reads, parses and imports the file at `path` into `workflow` as `admin` (one transaction).
pub(super) async fn import_file(
    store: &Store,
    admin: &Actor,
    workflow: &str,
    path: &Path,
) -> Result<ImportOutcome, CliError> {
    let bytes = std::fs::read(path).context(|| format!("reading {}", path.display()))?;
    let options = CsvOptions {
        kind: "joiner".into(),
        requester: admin.user.clone(),
        map: Vec::new(),
    };
    let rows: Vec<ImportRow> = parse_csv(&bytes, &options)
        .context(|| "parsing the bench file".into())?
        .into_iter()
        .map(|row| ImportRow {
            line: row.line,
            key: row.key,
            request: NewRequest {
                workflow: workflow.into(),
                kind: row.draft.kind,
                subject_name: row.draft.subject_name,
                subject_email: row.draft.subject_email,
                username: row.draft.username,
                requester: row.draft.requester,
                source: "csv:joiners.csv".into(),
                payload: serde_json::Value::Object(row.draft.fields),
            },
        })
        .collect();
    store
        .import_requests(admin, workflow, "joiners.csv", rows)
        .await
        .context(|| "importing".into())
}

fn tempfile_dir() -> Result<PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-bench-csv-{}-{:04x}",
        std::process::id(),
        fastrand::u16(..)
    ));
    std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
