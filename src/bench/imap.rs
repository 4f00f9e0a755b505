//! `gatehouse bench imap`: ingest what an IMAP folder holds into a fresh store, through the
//! same batches the worker's mailbox readers use (fetch, classify, record one transaction per
//! batch), and print msgs/s timed from the IMAP connect to the last committed batch; then
//! check that exactly one intake row exists per message.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{BenchBackend, BenchImapArgs};
use super::scratch;
use crate::domain::config::{Mailbox, ProcessedAction, TlsMode};
use crate::domain::secret::{SecretRef, SecretValue};
use crate::failure::{CliError, Context};
use crate::intake::configured::MailboxClassifiers;
use crate::intake::imap::{COMMAND_TIMEOUT, ImapConnection, ImapSettings};
use crate::intake::reader::{MailClassifier, ReaderOptions, drain_mailbox};
use crate::store::api::{Actor, CommandApi};

const WORKFLOW: &str = r#"kind = "workflow"
name = "bench-joiner"
description = "Joiners read from the benchmark mailbox"

[intake]
sources = ["email"]
kinds = ["joiner"]
"#;

fn tls_mode(text: &str) -> Result<TlsMode, CliError> {
    match text {
        "tls" | "implicit" => Ok(TlsMode::Implicit),
        "starttls" => Ok(TlsMode::Starttls),
        "none" => Ok(TlsMode::None),
        other => Err(CliError::msg(
            "--tls",
            format!("{other:?} is not tls, starttls or none"),
        )),
    }
}

/// Run the benchmark.
pub async fn run(args: &BenchImapArgs, database_url: Option<&str>) -> Result<ExitCode, CliError> {
    let backend = match database_url {
        Some(url) if url.starts_with("sqlite:") => BenchBackend::Sqlite,
        _ => BenchBackend::Postgres,
    };
    let mailbox = Mailbox {
        name: "bench".into(),
        host: args.host.clone(),
        port: args.port,
        tls: tls_mode(&args.tls)?,
        user: args.user.clone(),
        // Never resolved: the benchmark passes the password it was given in `settings`.
        password: SecretRef::Env("GATEHOUSE_BENCH_IMAP_PASSWORD".into()),
        folder: args.folder.clone(),
        workflow: "bench-joiner".into(),
        poll_interval: None,
        batch_size: Some(args.batch),
        processed: ProcessedAction::Keep,
        flag: None,
        move_to: None,
        idle: false,
        ca_file: args.ca_file.as_ref().map(|p| p.display().to_string()),
        llm: None,
        rules: Default::default(),
    };
    if let Some(e) = mailbox.validate().first() {
        return Err(CliError::msg(
            format!("bench imap: {}", e.field),
            e.message.clone(),
        ));
    }
    let settings = ImapSettings {
        host: args.host.clone(),
        port: args.port,
        tls: mailbox.tls,
        user: args.user.clone(),
        password: SecretValue::new(args.password.clone()),
        folder: args.folder.clone(),
        ca_file: args.ca_file.clone(),
        timeout: COMMAND_TIMEOUT,
    };
    // The folder's size, read before the timed region.
    let mut probe = ImapConnection::connect(&settings)
        .await
        .context(|| format!("connecting to {}:{}", args.host, args.port))?;
    let folder = probe
        .status(&args.folder)
        .await
        .context(|| format!("STATUS {}", args.folder))?;
    probe.logout().await;

    let scratch = scratch(backend, database_url).await?;
    let system = Actor::system("bench", "bench");
    scratch
        .store
        .save_config(
            &system,
            "workflow",
            "bench-joiner",
            WORKFLOW,
            "bench imap",
            0,
        )
        .await
        .context(|| "saving the benchmark workflow".into())?;
    let classifier: Arc<dyn MailClassifier> = Arc::new(MailboxClassifiers::default());
    println!(
        "bench imap: {} messages in {}:{}/{} into a fresh {} store ({})",
        folder.messages,
        args.host,
        args.port,
        args.folder,
        backend_name(backend),
        scratch.store.masked_url()
    );
    println!(
        "  classifier: {} — the rules + LLM classifier is not wired into intake yet",
        classifier.name()
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let first: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("  load average at start: {}", first.join(" "));
    }
    let mut options = ReaderOptions::new(format!("bench:{}", std::process::id()));
    options.lease = Duration::from_secs(300);
    let started = Instant::now();
    let read = drain_mailbox(&scratch.store, &mailbox, &settings, &classifier, &options).await;
    let elapsed = started.elapsed();
    let result = report(&scratch.store, read, elapsed, folder.messages).await;
    if args.keep {
        println!("  kept the benchmark store: {}", scratch.store.masked_url());
    } else {
        scratch.remove().await;
    }
    result
}

fn backend_name(backend: BenchBackend) -> &'static str {
    match backend {
        BenchBackend::Sqlite => "SQLite",
        BenchBackend::Postgres => "PostgreSQL",
    }
}

async fn report(
    store: &crate::store::Store,
    read: Result<usize, crate::intake::reader::ReaderError>,
    elapsed: Duration,
    in_folder: u32,
) -> Result<ExitCode, CliError> {
    let n = read.context(|| "ingesting the folder".into())?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "  ingested {n} messages in {secs:.2} s = {:.0} msgs/s (IMAP connect to last commit)",
        n as f64 / secs
    );
    let counts = store
        .intake_counts("bench")
        .await
        .context(|| "counting intake rows".into())?;
    let rows: i64 = counts.iter().map(|(_, c)| c).sum();
    let verdicts: Vec<String> = counts.iter().map(|(v, c)| format!("{v} {c}")).collect();
    println!("  verdicts: {}", verdicts.join(", "));
    let distinct = store
        .intake_distinct_uids("bench")
        .await
        .context(|| "counting intake rows".into())?;
    if rows == n as i64 && distinct == rows && n as u32 == in_folder {
        println!("  check: {rows} intake rows, one per message: ok");
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "  check FAILED: {rows} intake rows ({distinct} distinct UIDs) for {n} messages read, {in_folder} in the folder"
        );
        Ok(ExitCode::FAILURE)
    }
}
