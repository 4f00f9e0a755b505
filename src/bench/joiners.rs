//! `gatehouse bench joiners`: a CSV file of N joiners imported into a workflow approved
//! automatically (no approval stage) whose one step creates each account in a PostgreSQL
//! target; a worker with the default settings runs until every request is completed. Prints
//! the import time and the end-to-end rate, then checks the target holds exactly one account
//! per row and every request completed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::args::BenchJoinersArgs;
use super::csv::{DEFAULT_CONCURRENCY, PATIENCE, import_file, write_file};
use super::{DEFAULT_PG, create_database, drop_database, scratch};
use crate::engine::worker::{WorkerConfig, run_worker};
use crate::failure::{CliError, Context};
use crate::store::Store;
use crate::store::api::{Actor, CommandApi, ReadApi};

/// The workflow: fields checked, no approval stage, one step creating the account.
const WORKFLOW: &str = r#"kind = "workflow"
name = "bench-auto"
team = "bench"

[intake]
sources = ["csv"]
kinds = ["joiner"]

[validation]
required_fields = ["subject_email", "start_date"]
email_domains = ["example.com"]

[[steps]]
name = "account"
connector = "bench-target"
action = "create_account"
params = { full_name = "{subject_name}", email = "{subject_email}" }
"#;

/// Run the benchmark.
pub async fn run(
    args: &BenchJoinersArgs,
    database_url: Option<&str>,
    logs: tokio::sync::mpsc::Receiver<crate::store::api::NewLog>,
) -> Result<ExitCode, CliError> {
    let admin_url = match args.backend {
        super::args::BenchBackend::Postgres => database_url.unwrap_or(DEFAULT_PG),
        super::args::BenchBackend::Sqlite => args.target_server.as_deref().unwrap_or(DEFAULT_PG),
    }
    .to_string();
    let target_name = format!(
        "gatehouse_bench_target_{}_{:04x}",
        std::process::id(),
        fastrand::u16(..)
    );
    let target_url = create_database(&admin_url, &target_name)
        .await
        .context(|| format!("creating the target database {target_name}"))?;
    let scratch = match scratch(args.backend, database_url).await {
        Ok(scratch) => scratch,
        Err(e) => {
            drop_database(&admin_url, &target_name).await;
            return Err(e);
        }
    };
    let execution_log = super::ExecutionLog::start(&scratch.store, logs);
    let result = measure(&scratch.store, &target_url, args.rows.max(1)).await;
    drop(execution_log);
    scratch.remove().await;
    drop_database(&admin_url, &target_name).await;
    result
}

async fn measure(store: &Store, target_url: &str, n: u32) -> Result<ExitCode, CliError> {
    let target = sqlx::PgPool::connect(target_url)
        .await
        .context(|| "connecting to the target".into())?;
    sqlx::raw_sql(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, email TEXT, \
         disabled BOOLEAN NOT NULL DEFAULT false)",
    )
    .execute(&target)
    .await
    .context(|| "creating the target's account table".into())?;
    let admin = Actor::operator("bench", "bench");
    store
        .bootstrap_admin(&Actor::operator("bench-setup", "bench"), "bench", None)
        .await
        .context(|| "creating the bench admin".into())?;
    let connector = format!(
        "kind = \"connector\"\nname = \"bench-target\"\nbackend = \"sql\"\n\n[sql]\n\
         dialect = \"postgres\"\nurl = \"{target_url}\"\ntable = \"accounts\"\n\
         disabled_column = \"disabled\"\n\n[sql.columns]\nusername = \"username\"\n\
         full_name = \"full_name\"\nemail = \"email\"\n"
    );
    store
        .save_config(&admin, "connector", "bench-target", &connector, "bench", 0)
        .await
        .context(|| "saving the bench connector".into())?;
    store
        .save_config(&admin, "workflow", "bench-auto", WORKFLOW, "bench", 0)
        .await
        .context(|| "saving the bench workflow".into())?;
    let (dir, path) = write_file(n)?;
    let config = WorkerConfig::new(DEFAULT_CONCURRENCY);
    println!(
        "bench joiners: {n} joiners approved automatically, one account each in a PostgreSQL \
         target; worker concurrency {} (the default), batch {}, with the execution log",
        config.concurrency, config.batch
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let first: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("  load average at start: {}", first.join(" "));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(run_worker(
        store.clone(),
        crate::engine::flow::registry(),
        config,
        stop_rx,
    ));
    let started = Instant::now();
    let outcome = import_file(store, &admin, "bench-auto", &path).await?;
    let imported = started.elapsed();
    let mut completed = 0;
    while started.elapsed() < PATIENCE {
        completed = completed_requests(store).await?;
        if completed >= i64::from(n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = worker.await;
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "  import (read + parse + one transaction): {:.2} s",
        imported.as_secs_f64()
    );
    println!(
        "  every request completed after {:.2} s ({:.0} joiners/s end to end)",
        done.as_secs_f64(),
        f64::from(n) / done.as_secs_f64()
    );
    let overview = store
        .overview()
        .await
        .context(|| "reading the result".into())?;
    let states: Vec<String> = overview
        .requests_by_state
        .iter()
        .map(|(s, c)| format!("{c} {s}"))
        .collect();
    println!("  states: {}", states.join(", "));
    let (accounts, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT username) FROM accounts")
            .fetch_one(&target)
            .await
            .context(|| "counting the target's accounts".into())?;
    target.close().await;
    let total: i64 = overview.requests_by_state.iter().map(|(_, c)| c).sum();
    let n = i64::from(n);
    if outcome.created.len() as i64 == n
        && total == n
        && completed == n
        && accounts == n
        && distinct == n
    {
        println!("  check: {n} rows → {n} completed requests → {n} accounts (exactly once)");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "  check FAILED: {} created, {total} requests, {completed} completed, \
             {accounts} accounts ({distinct} distinct)",
            outcome.created.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn completed_requests(store: &Store) -> Result<i64, CliError> {
    let overview = store
        .overview()
        .await
        .context(|| "reading progress".into())?;
    Ok(overview
        .requests_by_state
        .iter()
        .filter(|(state, _)| state == "completed")
        .map(|(_, count)| *count)
        .sum())
}
