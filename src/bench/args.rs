//! The clap definitions of `gatehouse bench …`: which benchmark, on which store, how large.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Enqueue and process N no-op jobs; print jobs/s and enqueue-to-start latency.
    Queue(BenchQueueArgs),
    /// Render every console view over a large store; print per-frame time and bytes.
    Tui(BenchTuiArgs),
    /// Reconcile a PostgreSQL target of N accounts against a PostgreSQL store; print the time.
    Reconcile(BenchReconcileArgs),
    /// Import a CSV file of N joiners and process it with a default worker until every request
    /// awaits approval; print the times.
    Csv(BenchCsvArgs),
    /// Import a CSV file of N joiners into a workflow approved automatically whose step creates
    /// each account in a PostgreSQL target; print the end-to-end rate.
    Joiners(BenchJoinersArgs),
    /// Run N no-op jobs through `gatehouse worker` processes on PostgreSQL with a short job
    /// retention; print the first and last 100,000 jobs' rates, the table size and worker RSS.
    Soak(BenchSoakArgs),
    /// Ingest what an IMAP folder holds into a fresh store on --database-url's server; print
    /// msgs/s from connect to the last committed batch.
    Imap(BenchImapArgs),
}

/// Arguments of `bench csv`.
#[derive(Debug, Args)]
pub struct BenchCsvArgs {
    /// Store to measure.
    #[arg(long, value_enum)]
    pub backend: BenchBackend,
    /// Rows in the file.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
}

/// Arguments of `bench joiners` (the target is a throwaway database on the PostgreSQL of
/// `--database-url`, or of `--target-server` with a SQLite store).
#[derive(Debug, Args)]
pub struct BenchJoinersArgs {
    /// Store to measure.
    #[arg(long, value_enum, default_value = "postgres")]
    pub backend: BenchBackend,
    /// Joiners in the file.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u32,
    /// PostgreSQL server for the target database when the store is SQLite.
    #[arg(long)]
    pub target_server: Option<String>,
}

/// Arguments of `bench imap` (the store is a fresh database on the server of the global
/// `--database-url`: PostgreSQL, or a temporary SQLite file for a `sqlite:` URL).
#[derive(Debug, Args)]
pub struct BenchImapArgs {
    /// IMAP host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// IMAP port.
    #[arg(long, default_value_t = 143)]
    pub port: u16,
    /// Connection security: tls, starttls or none (none: loopback only).
    #[arg(long, default_value = "none")]
    pub tls: String,
    /// CA file to trust (PEM) for tls / starttls.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Login user.
    #[arg(long)]
    pub user: String,
    /// Login password.
    #[arg(long, env = "GATEHOUSE_BENCH_IMAP_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Folder to ingest.
    #[arg(long, default_value = "INBOX")]
    pub folder: String,
    /// Messages per fetch and per transaction.
    #[arg(long, default_value_t = 200)]
    pub batch: u32,
    /// Keep the benchmark database afterwards (its URL is printed).
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `bench soak` (a throwaway database on the PostgreSQL of `--database-url`).
#[derive(Debug, Args)]
pub struct BenchSoakArgs {
    /// Jobs to run (at least 200,000).
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: u32,
    /// `gatehouse worker` processes.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// The workers' `--job-retention`.
    #[arg(long, default_value = "10s", value_parser = crate::domain::duration::parse_duration)]
    pub retention: std::time::Duration,
    /// Most unfinished jobs at once (the feeder waits above it).
    #[arg(long, default_value_t = 50_000)]
    pub backlog: u32,
    /// Give up after this long.
    #[arg(long, default_value = "15m", value_parser = crate::domain::duration::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Arguments of `bench reconcile`.
#[derive(Debug, Args)]
pub struct BenchReconcileArgs {
    /// Accounts in the target.
    #[arg(long, default_value_t = 100_000)]
    pub accounts: u32,
}

/// Which store to benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// A temporary SQLite file.
    Sqlite,
    /// A temporary database on the PostgreSQL named by --database-url (default 127.0.0.1).
    Postgres,
}

/// Arguments of `bench queue`.
#[derive(Debug, Args)]
pub struct BenchQueueArgs {
    /// Store to measure.
    #[arg(long, value_enum)]
    pub backend: BenchBackend,
    /// Jobs to enqueue and process.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u32,
    /// Workers (claim loops) in this process.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Skip the pgbench reference run.
    #[arg(long)]
    pub no_reference: bool,
}

/// Arguments of `bench tui`.
#[derive(Debug, Args)]
pub struct BenchTuiArgs {
    /// Requests in the store.
    #[arg(long, default_value_t = 100_000)]
    pub requests: u32,
    /// Frames rendered per view.
    #[arg(long, default_value_t = 200)]
    pub frames: u32,
    /// Seconds to watch for idle redraws.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Measure against this already seeded store (used by the bench's own child process, so
    /// the peak memory figure is the console's, not the seeding's).
    #[arg(long, hide = true)]
    pub measure_store: Option<String>,
}
