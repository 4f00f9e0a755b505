//! `gatehouse bench reconcile`: reconcile a PostgreSQL target of N accounts (two grants each)
//! against N account links in a PostgreSQL store; prints the time to read the links, to read
//! the target and to classify, and the verdicts.

use std::process::ExitCode;
use std::time::Instant;

use super::args::{BenchBackend, BenchReconcileArgs};
use super::{Cleanup, DEFAULT_PG, create_database, drop_database, replace_database, scratch};
use crate::connectors::AnyConnector;
use crate::connectors::reconcile::{Known, classify};
use crate::failure::{CliError, Context};
use crate::store::api::ConfigVersion;

/// Run the benchmark.
pub async fn run(
    args: &BenchReconcileArgs,
    database_url: Option<&str>,
) -> Result<ExitCode, CliError> {
    let n = i64::from(args.accounts.max(10));
    let admin = database_url.unwrap_or(DEFAULT_PG).to_string();
    let scratch = scratch(BenchBackend::Postgres, Some(&admin)).await?;
    let name = format!(
        "gatehouse_bench_target_{}_{:04x}",
        std::process::id(),
        fastrand::u16(..)
    );
    let target_url = create_database(&admin, &name)
        .await
        .context(|| format!("creating database {name}"))?;
    let store_url = match &scratch.cleanup {
        Cleanup::PgDatabase { admin_url, name } => replace_database(admin_url, name),
        Cleanup::File(_) => String::new(),
    };
    let result = measure(&scratch.store, &store_url, &target_url, n).await;
    drop_database(&admin, &name).await;
    scratch.remove().await;
    result
}

async fn measure(
    store: &crate::store::Store,
    store_url: &str,
    target_url: &str,
    n: i64,
) -> Result<ExitCode, CliError> {
    println!("bench reconcile: postgres target, {n} accounts, 2 grants each");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let first: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("  load average at start: {}", first.join(" "));
    }
    let target = sqlx::PgPool::connect(target_url)
        .await
        .context(|| "connecting to the target".into())?;
    // Every 20th account was changed out of band, every 50th is unknown to the store, and
    // the store expects 1% more accounts than the target has.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, email TEXT, disabled BOOLEAN NOT NULL DEFAULT false); \
         CREATE TABLE account_roles (username TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (username, role)); \
         INSERT INTO accounts SELECT 'u' || i, CASE WHEN i % 20 = 0 THEN 'Changed' ELSE 'User ' || i END, 'u' || i || '@example.com', false FROM generate_series(1, {n}) i; \
         INSERT INTO account_roles SELECT 'u' || i, r FROM generate_series(1, {n}) i, (VALUES ('employee'), ('developer')) v(r);"
    )))
    .execute(&target)
    .await
    .context(|| "filling the target".into())?;
    target.close().await;
    let raw = sqlx::PgPool::connect(store_url)
        .await
        .context(|| "connecting to the bench store".into())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO account_links (connector, account, status, source, expected, updated_at) \
             SELECT 'bench', 'u' || i, 'linked', 'provisioned', json_build_object('key', 'u' || i, \
               'attributes', json_build_object('username', 'u' || i, 'full_name', 'User ' || i, 'email', 'u' || i || '@example.com'), \
               'disabled', false, 'grants', json_build_array('developer', 'employee'))::text, 0 \
             FROM generate_series(1, {}) i WHERE i % 50 <> 0",
        n + n / 100
    )))
    .execute(&raw)
    .await
    .context(|| "writing the account links".into())?;
    raw.close().await;
    let doc = ConfigVersion {
        name: "bench".into(),
        kind: "connector".into(),
        version: 1,
        body: format!(
            "kind = \"connector\"\nname = \"bench\"\nbackend = \"sql\"\n\n[sql]\ndialect = \"postgres\"\nurl = \"{target_url}\"\ntable = \"accounts\"\ndisabled_column = \"disabled\"\n\n[sql.columns]\nusername = \"username\"\nfull_name = \"full_name\"\nemail = \"email\"\n\n[sql.grants]\ntable = \"account_roles\"\nusername_column = \"username\"\nrole_column = \"role\"\n\n[sql.limits]\nstatement_timeout = \"60s\"\n"
        ),
        author: "bench".into(),
        comment: String::new(),
        created_at: 0,
    };
    let connector = AnyConnector::from_doc(&doc).context(|| "the bench connector".into())?;

    let started = Instant::now();
    let links = store
        .account_links("bench")
        .await
        .context(|| "reading the links".into())?;
    let links_at = started.elapsed();
    let accounts = connector
        .list()
        .await
        .context(|| "reading the target".into())?;
    let target_at = started.elapsed();
    let known: Vec<Known> = links
        .into_iter()
        .map(|l| Known {
            account: l.account,
            status: l.status,
            expected: l.expected,
        })
        .collect();
    let report = classify("bench", accounts, &known);
    let total = started.elapsed();
    println!(
        "  read links {:.2} s, read target {:.2} s, classify {:.2} s, total {:.2} s ({:.0} accounts/s)",
        links_at.as_secs_f64(),
        (target_at - links_at).as_secs_f64(),
        (total - target_at).as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    println!("  verdicts: {}", counts.join(", "));
    Ok(ExitCode::SUCCESS)
}
