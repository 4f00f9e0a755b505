//! Each verb: open the store, call the command or read API, print the outcome.

use std::io::Write as _;
use std::process::ExitCode;

use tokio::sync::watch;

use super::args::*;
use super::{CliError, Context};
use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::diagnostic::locate;
use crate::domain::inert::{inert, inert_json};
use crate::engine::logsink;
use crate::identity::current_actor;
use crate::store::api::*;
use crate::store::{OpenOptions, Store};

/// Run one parsed command.
pub async fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let log_file = cli
        .log_file
        .clone()
        .unwrap_or_else(|| super::default_log_dir().join("gatehouse.log"));
    match cli.command {
        Command::Config(ConfigCommand::Check { ref files }) => {
            return Ok(config_check(files));
        }
        Command::Demo(ref args) => {
            return crate::demo::run(args, &cli.log, &log_file).await;
        }
        Command::Bench(ref bench) => {
            // The execution-log layer `gatehouse worker` installs: benchmarks that run workers
            // persist its lines into their store, so they measure what a worker does.
            let (layer, logs) = logsink::log_channel(Some("bench".into()));
            let _guard = crate::logging::init_logging(&cli.log, &log_file, Some(layer))?;
            return crate::bench::run(bench, cli.database_url.as_deref(), logs).await;
        }
        _ => {}
    }
    let read_only = matches!(&cli.command, Command::Tui(t) if t.read_only);
    let is_worker = matches!(cli.command, Command::Worker(_));
    let url = cli
        .database_url
        .clone()
        .unwrap_or_else(Store::default_sqlite_url);
    // The console needs few connections: fewer page caches keep its memory small.
    let max_connections = if matches!(cli.command, Command::Tui(_)) {
        crate::tui::CONSOLE_CONNECTIONS
    } else {
        8
    };
    let store = Store::open(
        &url,
        OpenOptions {
            read_only,
            max_connections,
            ..Default::default()
        },
    )
    .await
    .context(|| format!("opening the store at {}", crate::store::mask_url(&url)))?;
    if !read_only {
        store
            .migrate()
            .await
            .context(|| "applying migrations".to_string())?;
    }
    let worker_config = match &cli.command {
        Command::Worker(args) => {
            let mut config = crate::engine::worker::WorkerConfig::new(args.concurrency);
            config.queues = args.queues.clone();
            config.lease = std::time::Duration::from_secs(args.lease_secs.max(3));
            config.grace = std::time::Duration::from_secs(args.grace_secs);
            Some(config)
        }
        _ => None,
    };
    let (_guard, flusher) = if is_worker {
        let worker_id = worker_config.as_ref().map(|c| c.id.clone());
        let (layer, rx) = logsink::log_channel(worker_id);
        let guard = crate::logging::init_logging(&cli.log, &log_file, Some(layer))?;
        (
            guard,
            Some(tokio::spawn(logsink::run_flusher(store.clone(), rx))),
        )
    } else {
        (
            crate::logging::init_logging(&cli.log, &log_file, None)?,
            None,
        )
    };
    let source = if matches!(cli.command, Command::Tui(_)) {
        "tui"
    } else {
        "cli"
    };
    let actor = current_actor(source);
    // Reads show what this operator's scopes reach; commands check role and scopes in the
    // store whatever handle they go through.
    let store = if is_worker {
        store
    } else {
        store.viewing_as(&actor.user)
    };
    let code = match cli.command {
        Command::Request(RequestCommand::New(args)) => {
            super::requests::request_new(&store, &actor, args).await?
        }
        Command::Request(RequestCommand::List(args)) => {
            super::requests::request_list(&store, args).await?
        }
        Command::Request(RequestCommand::Show(IdArg { id })) => {
            super::requests::request_show(&store, id).await?
        }
        Command::Request(RequestCommand::Fix(args)) => {
            super::requests::request_fix(&store, &actor, args).await?
        }
        Command::Request(RequestCommand::RetryStep { id, step }) => {
            super::steps::run(&store, &actor, StepCommand::Retry { id, step }).await?
        }
        Command::Request(RequestCommand::Rerun { id, from }) => {
            super::steps::run(&store, &actor, StepCommand::Rerun { id, from }).await?
        }
        Command::Request(RequestCommand::SkipStep { id, step, reason }) => {
            let cmd = StepCommand::Skip { id, step, reason };
            super::steps::run(&store, &actor, cmd).await?
        }
        Command::Request(RequestCommand::DoneStep { id, step, note }) => {
            super::steps::run(&store, &actor, StepCommand::Done { id, step, note }).await?
        }
        Command::Approve(DecideArgs { id }) => {
            super::requests::decide(&store, &actor, id, Decision::Approve, None).await?
        }
        Command::Reject(RejectArgs { id, reason }) => {
            super::requests::decide(&store, &actor, id, Decision::Reject, Some(reason)).await?
        }
        Command::Retry(IdArg { id }) => {
            let row = store
                .retry_request(&actor, id)
                .await
                .context(|| format!("retrying request {id}"))?;
            println!("request {} is {} again", row.id, row.state);
            ExitCode::SUCCESS
        }
        Command::Cancel(CancelArgs { id, reason }) => {
            let row = store
                .cancel_request(&actor, id, reason)
                .await
                .context(|| format!("cancelling request {id}"))?;
            println!("request {} is {}", row.id, row.state);
            ExitCode::SUCCESS
        }
        Command::Pause(QueueArg { queue }) => pause_queue(&store, &actor, queue, true).await?,
        Command::Resume(QueueArg { queue }) => pause_queue(&store, &actor, queue, false).await?,
        Command::Reconcile(args) => super::reconcile::run(&store, &actor, args).await?,
        Command::Dormant(args) => super::dormant::run(&store, &actor, args).await?,
        Command::Import(command) => super::import::run(&store, &actor, command).await?,
        Command::Role(RoleCommand::Tree(args)) => super::reconcile::tree(&store, args).await?,
        Command::Drain(WorkerIdArg { worker }) => {
            store
                .drain_worker(&actor, &worker)
                .await
                .context(|| format!("draining worker {worker}"))?;
            println!("worker {worker} is draining");
            ExitCode::SUCCESS
        }
        Command::Worker(args) => {
            let config =
                worker_config.ok_or_else(|| CliError::msg("worker", "no configuration"))?;
            let checkpoints = super::audit::worker_schedule(&store, &args)?;
            let reading = (!args.no_mailboxes).then(|| super::mailbox::reading(&args));
            run_worker_process(
                store.clone(),
                config,
                (!args.no_scheduler).then_some(args.job_retention),
                checkpoints,
                reading,
            )
            .await?
        }
        Command::Migrate => {
            println!("migrations applied to {}", crate::store::mask_url(&url));
            ExitCode::SUCCESS
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            super::audit::audit_verify(&store, args).await?
        }
        Command::Audit(AuditCommand::Export(args)) => audit_export(&store, args).await?,
        Command::Audit(AuditCommand::Checkpoint(args)) => {
            super::audit::audit_checkpoint(&store, args).await?
        }
        Command::Audit(AuditCommand::Keygen(args)) => super::audit::audit_keygen(&store, args)?,
        Command::Config(cmd) => config_command(&store, &actor, cmd).await?,
        Command::Directory(DirectoryCommand::Show(args)) => {
            super::directory::show(&store, args).await?
        }
        Command::Directory(DirectoryCommand::Test { name }) => {
            super::directory::test(&store, &name).await?
        }
        Command::Mailbox(MailboxCommand::List) => super::mailbox::list(&store).await?,
        Command::Mailbox(MailboxCommand::Test { name }) => {
            super::mailbox::test(&store, &name).await?
        }
        Command::Delegate(args) => super::directory::delegate(&store, &actor, args).await?,
        Command::Delegation(DelegationCommand::List { all }) => {
            super::directory::list(&store, all).await?
        }
        Command::Delegation(DelegationCommand::Revoke { id }) => {
            super::directory::revoke(&store, &actor, id).await?
        }
        Command::Operator(OperatorCommand::Add {
            name,
            role,
            scopes,
            email,
        }) => {
            super::operators::operator_add(&store, &url, &actor, name, role, scopes, email).await?
        }
        Command::Operator(OperatorCommand::Remove { name }) => {
            store
                .remove_operator(&actor, &name)
                .await
                .context(|| format!("removing operator {name}"))?;
            println!("operator {name} removed");
            ExitCode::SUCCESS
        }
        Command::Operator(OperatorCommand::List) => {
            for op in store
                .operators()
                .await
                .context(|| "listing operators".into())?
            {
                let scopes = if op.scopes.is_empty() {
                    "all".to_string()
                } else {
                    op.scopes.join(",")
                };
                println!(
                    "{:<24} {:<9} {:<24} {}",
                    inert(&op.name),
                    op.role,
                    inert(&scopes),
                    inert(op.email.as_deref().unwrap_or("-"))
                );
            }
            ExitCode::SUCCESS
        }
        Command::Operator(OperatorCommand::Key(cmd)) => {
            super::operators::operator_key(&store, &actor, cmd).await?
        }
        Command::Tui(args) => {
            crate::cli::console::open(store.clone(), actor, args, &log_file).await?
        }
        Command::Serve(args) => crate::cli::serve::run(store, args).await?,
        Command::Demo(_) | Command::Bench(_) => unreachable_verb(),
    };
    if let Some(flusher) = flusher {
        // The sender lives in the global subscriber; give the flusher a moment to drain.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        flusher.abort();
    }
    Ok(code)
}

async fn pause_queue(
    store: &Store,
    actor: &Actor,
    queue: String,
    pause: bool,
) -> Result<ExitCode, CliError> {
    let verb = if pause { "paused" } else { "resumed" };
    store
        .set_queue_paused(actor, &queue, pause)
        .await
        .context(|| format!("setting queue {queue} {verb}"))?;
    println!("queue {queue} {verb}");
    Ok(ExitCode::SUCCESS)
}

/// Verbs handled before the store is opened never reach the second match.
fn unreachable_verb() -> ExitCode {
    ExitCode::FAILURE
}

async fn run_worker_process(
    store: Store,
    config: crate::engine::worker::WorkerConfig,
    // The scheduler runs when set, with this retention for finished jobs.
    scheduler_retention: Option<std::time::Duration>,
    checkpoints: Option<crate::engine::checkpoint::CheckpointSchedule>,
    reading: Option<crate::engine::intake::MailboxReading>,
) -> Result<ExitCode, CliError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(crate::engine::shutdown_on_signal(stop_tx));
    let readers = reading.map(|reading| {
        crate::engine::intake::spawn_mailbox_readers(
            store.clone(),
            reading,
            &config.id,
            stop_rx.clone(),
        )
    });
    let registry = crate::engine::flow::registry();
    let scheduler = scheduler_retention.map(|retention| {
        tokio::spawn(crate::engine::scheduler::run_scheduler(
            store.clone(),
            crate::engine::scheduler::builtin_periodics(retention),
            stop_rx.clone(),
        ))
    });
    // The checkpoint task gets the schedule back when it stops, for a last checkpoint
    // once the workers have written their final audit rows.
    let checkpointer = checkpoints.map(|schedule| {
        let (store, stop) = (store.clone(), stop_rx.clone());
        tokio::spawn(async move {
            crate::engine::checkpoint::run_checkpointer(&store, &schedule, stop).await;
            schedule
        })
    });
    let summary = crate::engine::worker::run_worker(store.clone(), registry, config, stop_rx).await;
    if let Some(s) = scheduler {
        s.abort();
    }
    if let Some(readers) = readers {
        // Readers stop with the same signal and hand their leases back; bounded.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), readers).await;
    }
    if let Some(task) = checkpointer
        && let Ok(schedule) = task.await
    {
        crate::engine::checkpoint::checkpoint_once(&store, &schedule).await;
    }
    eprintln!(
        "worker stopped: {} processed, {} failed attempts, {} leases released",
        summary.processed, summary.failed, summary.released
    );
    Ok(ExitCode::SUCCESS)
}

async fn audit_export(store: &Store, args: AuditExportArgs) -> Result<ExitCode, CliError> {
    let mut out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // Oldest first in the export: page newest-first and reverse would load everything, so
    // collect ids page by page and write each page reversed at the end of a bounded buffer.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditFilter::default(), after, 1000)
            .await
            .context(|| "reading the audit trail".into())?;
        after = page.next;
        pages.push(page.rows);
        if after.is_none() {
            break;
        }
    }
    let mut written = 0u64;
    for row in pages.iter().rev().flat_map(|p| p.iter().rev()) {
        let line = serde_json::to_string(row).context(|| "encoding an audit row".into())?;
        // Same JSON value, with terminal controls that JSON allows raw escaped as \uXXXX.
        writeln!(out, "{}", inert_json(&line)).context(|| "writing the export".into())?;
        written += 1;
    }
    out.flush().context(|| "writing the export".into())?;
    eprintln!("{written} audit rows exported");
    Ok(ExitCode::SUCCESS)
}

/// Checks what a valid document names on this machine: a directory's `ca_file` must exist
/// and hold usable PEM certificates (reported at the field's line and column).
fn check_files(
    label: &str,
    text: &str,
    doc: crate::domain::config::ConfigDocument,
) -> Result<crate::domain::config::ConfigDocument, Vec<crate::domain::diagnostic::Diagnostic>> {
    if let crate::domain::config::ConfigDocument::Directory(directory) = &doc
        && let Some((field, path)) = directory.ca_file()
        && let Err(message) = crate::directory::tls::read_ca_file(path)
    {
        let error = crate::domain::diagnostic::FieldError::new(field, message);
        return Err(crate::domain::diagnostic::locate(label, text, &[error]));
    }
    Ok(doc)
}

fn config_check(files: &[std::path::PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        let label = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{label}: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        // The reply key is the one secret the check reads: its length is part of the check.
        let key_problem = match check_document(&label, &text) {
            Ok(ConfigDocument::Notifier(notifier)) => notifier
                .check_reply_key()
                .map(|problem| locate(&label, &text, &[problem])),
            _ => None,
        };
        match key_problem.map_or_else(
            || check_document(&label, &text).and_then(|doc| check_files(&label, &text, doc)),
            Err,
        ) {
            Ok(doc) => println!(
                "{}: ok ({} {})",
                inert(&label),
                doc.kind().name(),
                inert(doc.name())
            ),
            Err(diagnostics) => {
                failed = true;
                // A message may quote a decoded TOML string ("\u001b" is a valid escape).
                for d in diagnostics {
                    eprintln!("{}", inert(&d.to_string()));
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn config_command(
    store: &Store,
    actor: &Actor,
    cmd: ConfigCommand,
) -> Result<ExitCode, CliError> {
    match cmd {
        ConfigCommand::Check { files } => Ok(config_check(&files)),
        ConfigCommand::Import { dir, comment } => {
            let mut docs = Vec::new();
            let mut failed = false;
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .context(|| format!("reading {}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            entries.sort();
            for path in entries {
                let label = path.display().to_string();
                let text = std::fs::read_to_string(&path).context(|| format!("reading {label}"))?;
                match check_document(&label, &text) {
                    Ok(doc) => docs.push((doc, text)),
                    Err(ds) => {
                        failed = true;
                        for d in ds {
                            eprintln!("{}", inert(&d.to_string()));
                        }
                    }
                }
            }
            if failed {
                eprintln!("nothing imported: fix the errors above");
                return Ok(ExitCode::FAILURE);
            }
            for (doc, text) in docs {
                let head = store
                    .config_head(doc.name())
                    .await
                    .context(|| format!("reading {}", doc.name()))?;
                if head.as_ref().is_some_and(|h| h.body == text) {
                    println!(
                        "{} unchanged (version {})",
                        inert(doc.name()),
                        head.map(|h| h.version).unwrap_or(0)
                    );
                    continue;
                }
                let saved = store
                    .save_config(
                        actor,
                        doc.kind().name(),
                        doc.name(),
                        &text,
                        &comment,
                        head.map(|h| h.version).unwrap_or(0),
                    )
                    .await
                    .context(|| format!("saving {}", doc.name()))?;
                println!("{} saved as version {}", inert(&saved.name), saved.version);
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Export { dir } => {
            std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
            for head in store
                .config_heads()
                .await
                .context(|| "reading configs".into())?
            {
                let path = dir.join(format!("{}.toml", head.name));
                std::fs::write(&path, &head.body)
                    .context(|| format!("writing {}", path.display()))?;
                println!(
                    "{} (version {}) → {}",
                    inert(&head.name),
                    head.version,
                    inert(&path.display().to_string())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::History { name } => {
            let versions = store
                .config_versions(&name)
                .await
                .context(|| format!("reading history of {name}"))?;
            if versions.is_empty() {
                return Err(CliError::msg(format!("config {name}"), "no such document"));
            }
            for v in versions {
                println!(
                    "{:>4}  {}  {:<12} {}",
                    v.version,
                    super::requests::fmt_time(v.created_at),
                    inert(&v.author),
                    inert(&v.comment)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ConfigCommand::Rollback { name, version } => {
            let versions = store
                .config_versions(&name)
                .await
                .context(|| format!("reading history of {name}"))?;
            let head = versions
                .first()
                .ok_or_else(|| CliError::msg(format!("config {name}"), "no such document"))?;
            let old = versions
                .iter()
                .find(|v| v.version == version)
                .ok_or_else(|| {
                    CliError::msg(format!("config {name}"), format!("no version {version}"))
                })?;
            let saved = store
                .save_config(
                    actor,
                    &old.kind,
                    &name,
                    &old.body,
                    &format!("rollback to version {version}"),
                    head.version,
                )
                .await
                .context(|| format!("rolling back {name}"))?;
            println!(
                "{name}: version {version} restored as version {}",
                saved.version
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
