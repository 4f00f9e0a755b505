//! `gatehouse demo`: the whole product on an embedded SQLite store — sample workflows, generated
//! requests, simulated approvers, in-process workers provisioning into a real SQLite target.

pub mod generator;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use clap::Args;

use crate::engine::flow::{FlowOptions, registry_with};
use crate::engine::scheduler::{builtin_periodics, run_scheduler};
use crate::engine::worker::{WorkerConfig, run_worker};
use crate::failure::{CliError, Context};
use crate::store::api::*;
use crate::store::{OpenOptions, Store};

/// The sample documents, compiled in: (file name, TOML).
pub const DEMO_CONFIGS: &[(&str, &str)] = &[
    (
        "demo-directory.toml",
        include_str!("configs/demo-directory.toml"),
    ),
    ("demo-target.toml", include_str!("configs/demo-target.toml")),
    (
        "role-employee.toml",
        include_str!("configs/role-employee.toml"),
    ),
    (
        "role-developer.toml",
        include_str!("configs/role-developer.toml"),
    ),
    (
        "engineering-joiner.toml",
        include_str!("configs/engineering-joiner.toml"),
    ),
    (
        "sales-joiner.toml",
        include_str!("configs/sales-joiner.toml"),
    ),
    (
        "finance-joiner.toml",
        include_str!("configs/finance-joiner.toml"),
    ),
];

/// The simulated approvers; the operator running the demo is added as an admin.
const SIMULATED_APPROVERS: &[&str] = &["alice", "bob", "carol", "dave", "erin"];

/// Away during the demo: erin has delegated her approvals to bob, who decides her stages
/// "acting for" her.
const DEMO_DELEGATION: (&str, &str) = ("erin", "bob");
/// Why, as `:delegations` shows it.
const DEMO_DELEGATION_REASON: &str = "erin is away during the demo";

/// Each simulated inbox and who works through it.
const INBOXES: &[(&str, &str)] = &[
    ("alice", "alice"),
    ("bob", "bob"),
    ("carol", "carol"),
    ("dave", "dave"),
    (DEMO_DELEGATION.0, DEMO_DELEGATION.1),
];

/// How often the demo runs the stage timers (the engine's default is every 30s).
const DEMO_TIMER_PERIOD: Duration = Duration::from_secs(5);

/// One provisioning step attempt in twenty (5%) fails transiently so retries show.
const DEMO_FAIL_EVERY_NTH_STEP: u64 = 20;

/// Where the demo keeps its files, and whether to remove them at the end.
struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo store in this directory (default: a temporary one, removed at exit).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print a summary line per second instead of opening the console.
    #[arg(long)]
    pub headless: bool,
    /// Stop after this long, e.g. `30s`, `2m` (headless default: run until ctrl-c).
    #[arg(long = "for", value_parser = crate::domain::duration::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Requests generated per second.
    #[arg(long, default_value_t = 2.0)]
    pub rate: f64,
    /// Seed for the request generator (same seed, same people).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Run the demo until `--for` elapses, ctrl-c, or the console is closed.
pub async fn run(args: &DemoArgs, log_filter: &str, log_file: &Path) -> Result<ExitCode, CliError> {
    // The in-process worker's events go to the log file and to the store's execution log.
    let mut config = WorkerConfig::new(4);
    config.lease = Duration::from_secs(15);
    let (log_layer, log_lines) = crate::engine::logsink::log_channel(Some(config.id.clone()));
    let _log_guard = crate::logging::init_logging(log_filter, log_file, Some(log_layer))?;
    let data = match &args.data {
        Some(dir) => DataDir {
            path: dir.clone(),
            temporary: false,
        },
        None => DataDir {
            path: std::env::temp_dir().join(format!("gatehouse-demo-{}", std::process::id())),
            temporary: true,
        },
    };
    std::fs::create_dir_all(&data.path).context(|| format!("creating {}", data.path.display()))?;
    let url = format!("sqlite:{}", data.path.join("gatehouse.db").display());
    let target = data.path.join("target.db");
    let store = Store::open(&url, OpenOptions::default())
        .await
        .context(|| format!("opening the demo store {url}"))?;
    store
        .migrate()
        .await
        .context(|| "migrating the demo store".into())?;
    let operator = crate::identity::current_actor("demo");
    seed(&store, &operator, &target).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(crate::engine::shutdown_on_signal(stop_tx.clone()));
    let registry = registry_with(FlowOptions {
        fail_every_nth_step: DEMO_FAIL_EVERY_NTH_STEP,
    });
    let flusher = tokio::spawn(crate::engine::logsink::run_flusher(
        store.clone(),
        log_lines,
    ));
    let worker = tokio::spawn(run_worker(store.clone(), registry, config, stop_rx.clone()));
    let periodics = builtin_periodics(crate::engine::maintenance::JOB_RETENTION)
        .into_iter()
        .map(|mut p| {
            if p.kind == "approvals.timers" {
                p.every = DEMO_TIMER_PERIOD;
            }
            p
        })
        .collect();
    let scheduler = tokio::spawn(run_scheduler(store.clone(), periodics, stop_rx.clone()));
    let generator = tokio::spawn(generate(
        store.clone(),
        args.rate,
        args.seed.unwrap_or(42),
        stop_rx.clone(),
    ));
    let approvers = tokio::spawn(simulate_approvers(store.clone(), stop_rx.clone()));

    let started = Instant::now();
    let outcome = if args.headless {
        headless(&store, args.duration, stop_rx.clone(), started).await
    } else {
        // The demo's operator is its admin.
        let options = crate::tui::TuiOptions {
            operator: operator.clone(),
            role: "admin".to_string(),
            read_only: false,
            theme: "default".to_string(),
            config_dir: crate::tui::config_dir(),
            log_file: Some(log_file.display().to_string()),
        };
        let console = crate::tui::run(store.clone(), options);
        let stop_after = args.duration;
        tokio::select! {
            r = console => r.context(|| "running the console".into()),
            _ = async { match stop_after { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => Ok(()),
        }
    };
    let _ = stop_tx.send(true);
    let _ = generator.await;
    let _ = approvers.await;
    let _ = scheduler.await;
    let _ = worker.await;
    // Let the last batch of log lines reach the store before it closes.
    tokio::time::sleep(Duration::from_millis(250)).await;
    flusher.abort();
    outcome?;
    if args.headless {
        final_summary(&store, &data.path, args.data.is_some()).await?;
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// An unscoped operator without e-mail.
fn operator_row(name: &str, role: &str) -> crate::store::api::OperatorRow {
    crate::store::api::OperatorRow {
        name: name.to_string(),
        role: role.to_string(),
        scopes: Vec::new(),
        email: None,
    }
}

/// Import the sample documents (pointing the target connector at `target`) and operators.
pub(crate) async fn seed(store: &Store, operator: &Actor, target: &Path) -> Result<(), CliError> {
    let system = Actor::system("demo", "demo");
    for (file, text) in DEMO_CONFIGS {
        let body = text.replace(
            "url = \"sqlite://\"",
            &format!("url = \"sqlite://{}\"", target.display()),
        );
        let doc = crate::domain::config::check_document(file, &body).map_err(|ds| {
            CliError::msg(
                format!("demo config {file}"),
                ds.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let head = store
            .config_head(doc.name())
            .await
            .context(|| format!("reading {}", doc.name()))?;
        if head.as_ref().is_some_and(|h| h.body == body) {
            continue;
        }
        store
            .save_config(
                &system,
                doc.kind().name(),
                doc.name(),
                &body,
                "demo sample",
                head.map(|h| h.version).unwrap_or(0),
            )
            .await
            .context(|| format!("saving demo config {}", doc.name()))?;
    }
    for name in SIMULATED_APPROVERS {
        store
            .set_operator(&system, &operator_row(name, "approver"))
            .await
            .context(|| format!("adding operator {name}"))?;
    }
    store
        .set_operator(&system, &operator_row(&operator.user, "admin"))
        .await
        .context(|| format!("adding operator {}", operator.user))?;
    let now = chrono::Utc::now().timestamp_millis();
    let (from, to) = DEMO_DELEGATION;
    let held = store
        .delegations(Some(now))
        .await
        .context(|| "reading delegations".into())?;
    if !held.iter().any(|d| d.from == from && d.to == to) {
        let new = NewDelegation {
            from: from.to_string(),
            to: to.to_string(),
            until: now + 30 * 86_400_000,
            reason: Some(DEMO_DELEGATION_REASON.to_string()),
        };
        store
            .add_delegation(operator, new)
            .await
            .context(|| format!("delegating {from}'s approvals to {to}"))?;
    }
    crate::connectors::sql::prepare_demo_target(target)
        .await
        .context(|| format!("creating the demo target {}", target.display()))?;
    Ok(())
}

async fn generate(store: Store, rate: f64, seed: u64, mut stop: watch::Receiver<bool>) {
    let mut generator = generator::Generator::new(seed);
    let pause = Duration::from_secs_f64(1.0 / rate.clamp(0.05, 1000.0));
    let actor = Actor::system("demo-generator", "demo");
    loop {
        let request = generator.next_request(chrono::Utc::now().date_naive());
        if let Err(e) = store.create_request(&actor, request).await {
            warn!(error = %e, "demo generator could not create a request");
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Decide some approvals after a delay, each simulated approver from their own inbox (bob
/// also works through erin's, acting for her): most approved, some rejected with a reason;
/// every fourth request is left for the operator.
async fn simulate_approvers(store: Store, mut stop: watch::Receiver<bool>) {
    let mut rng = fastrand::Rng::with_seed(7);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(700)) => {}
            _ = stop.changed() => return,
        }
        for (approver, acting) in INBOXES {
            let page = match store.pending_approvals(approver, None, None, 50).await {
                Ok(p) => p,
                Err(e) => {
                    warn!(approver, error = %e, "simulated approver could not read the inbox");
                    continue;
                }
            };
            let now = chrono::Utc::now().timestamp_millis();
            for approval in page.rows {
                let left_for_operator = approval.request_id % 4 == 0;
                let old_enough = now - approval.created_at > 1_500 + (approval.id % 5) * 700;
                let already = approval.decisions.iter().any(|d| d.approver == *approver);
                if left_for_operator
                    || !old_enough
                    || already
                    || !approval.approvers.iter().any(|a| a == approver)
                {
                    continue;
                }
                let actor = Actor::operator(acting.to_string(), "demo:simulated");
                let (decision, reason) = if rng.u32(0..10) == 0 {
                    (
                        Decision::Reject,
                        Some("budget for this role is not approved yet".to_string()),
                    )
                } else {
                    (Decision::Approve, None)
                };
                match store
                    .decide_approval(&actor, approval.id, approval.version, decision, reason)
                    .await
                {
                    Ok(_) | Err(crate::store::error::StoreError::Conflict { .. }) => {}
                    Err(e) => {
                        warn!(approval = approval.id, error = %e, "simulated decision failed")
                    }
                }
            }
        }
    }
}

async fn counts(
    store: &Store,
) -> Result<std::collections::BTreeMap<String, i64>, crate::store::error::StoreError> {
    let overview = store.overview().await?;
    Ok(overview.requests_by_state.into_iter().collect())
}

async fn headless(
    store: &Store,
    duration: Option<Duration>,
    mut stop: watch::Receiver<bool>,
    started: Instant,
) -> Result<(), CliError> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(()),
        }
        match store.overview().await {
            Ok(o) => {
                let by: std::collections::BTreeMap<_, _> =
                    o.requests_by_state.iter().cloned().collect();
                let get = |k: &str| by.get(k).copied().unwrap_or(0);
                let jobs_per_min = o.completed_per_minute.last().copied().unwrap_or(0);
                println!(
                    "[{:>4}s] requests {:>4} | awaiting approval {:>3} | completed {:>4} | rejected {:>3} | failed {:>2} | triage {:>3} | jobs done this minute {:>5}",
                    started.elapsed().as_secs(),
                    by.values().sum::<i64>(),
                    get("awaiting_approval"),
                    get("completed"),
                    get("rejected"),
                    get("failed"),
                    get("needs_triage"),
                    jobs_per_min
                );
            }
            Err(e) => warn!(error = %e, "demo summary could not read the overview"),
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            return Ok(());
        }
    }
}

async fn final_summary(store: &Store, data: &Path, kept: bool) -> Result<(), CliError> {
    let by = counts(store)
        .await
        .context(|| "reading the final overview".into())?;
    let mut retried = 0;
    let mut after = None;
    loop {
        let page = store
            .list_jobs(
                &JobFilter {
                    state: Some(JobState::Completed),
                    ..Default::default()
                },
                after,
                500,
            )
            .await
            .context(|| "reading jobs".into())?;
        retried += page
            .rows
            .iter()
            .filter(|j| j.attempts > 1 && j.request_id.is_some())
            .count();
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    println!("demo finished:");
    for (state, n) in &by {
        println!("  {state:<18} {n}");
    }
    println!("  failed-then-retried jobs that completed: {retried}");
    match store
        .verify_audit()
        .await
        .context(|| "verifying the audit trail".into())?
    {
        AuditVerdict::Intact { rows } => println!("  audit verify: intact ({rows} rows)"),
        AuditVerdict::Broken { id, reason } => {
            return Err(CliError::msg(
                "audit verify",
                format!("broken at row {id}: {reason}"),
            ));
        }
    }
    if kept {
        println!(
            "  store kept in {} (gatehouse --database-url sqlite:{}/gatehouse.db tui)",
            data.display(),
            data.display()
        );
    }
    info!("demo finished");
    Ok(())
}
