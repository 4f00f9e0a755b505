//! The clap definitions of every verb and flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Gatehouse: onboarding and access provisioning with a console for operators.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, propagate_version = true)]
pub struct Cli {
    /// Store URL: `sqlite:PATH` (default: a file in the user's data directory) or `postgres://…`.
    /// Its value is never shown in help; wherever it is printed, passwords are masked.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log file (default: gatehouse.log in the user's state directory).
    #[arg(long, global = true, env = "GATEHOUSE_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// Log filter, e.g. `info` or `gatehouse=debug`.
    #[arg(long, global = true, env = "GATEHOUSE_LOG", default_value = "info")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list and show requests.
    #[command(subcommand)]
    Request(RequestCommand),
    /// Approve the pending approval stage of a request.
    Approve(DecideArgs),
    /// Reject the pending approval stage of a request (a reason is required).
    Reject(RejectArgs),
    /// Retry a failed request.
    Retry(IdArg),
    /// Cancel a request that has not completed.
    Cancel(CancelArgs),
    /// Pause a queue: workers stop claiming from it (admins only).
    Pause(QueueArg),
    /// Resume a paused queue (admins only).
    Resume(QueueArg),
    /// Ask a worker to finish its current jobs and stop (admins only).
    Drain(WorkerIdArg),
    /// Run the engine: scheduler and worker pool.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Run the whole product on an embedded store with sample workflows and generated requests.
    Demo(crate::demo::DemoArgs),
    /// Benchmarks that print their figures.
    #[command(subcommand)]
    Bench(crate::bench::args::BenchCommand),
    /// Audit trail: verify the hash chain or export it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Configuration documents: check, import, export, history, rollback.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Console operators and their roles.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Open the console.
    Tui(TuiArgs),
    /// Serve the console over SSH: operators log in with their registered keys.
    Serve(ServeArgs),
    /// Read a connector's target back: linked, drifted, orphan, unmatched, ignored accounts;
    /// adopt, ignore or revoke one with a justification (admins).
    Reconcile(super::reconcile::ReconcileArgs),
    /// Accounts of an SQL target not seen for N days; --revoke creates leaver requests for
    /// them (approved like any request).
    Dormant(super::dormant::DormantArgs),
    /// Roles: the resolved tree of a role and where each entitlement comes from.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Directories: show a person, test a connection.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Mailboxes: list them with their reading state, test a connection.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Let TO decide FROM's approvals until a time (FROM themselves or an unscoped admin).
    Delegate(DelegateArgs),
    /// Approval delegations: list, revoke.
    #[command(subcommand)]
    Delegation(DelegationCommand),
    /// Import requests from a CSV file or a watched directory.
    #[command(subcommand)]
    Import(super::import::ImportCommand),
}

/// Mailbox verbs.
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Every mailbox document with where reading it stands (connected, UIDVALIDITY, last UID,
    /// backlog, processed, last error).
    List,
    /// Connect, log in and report the folder's counts (messages, unseen, UIDVALIDITY, UIDNEXT).
    Test {
        /// Mailbox document name.
        name: String,
    },
}

/// Directory verbs.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Print a person, their manager chain and groups (from the first directory that knows them).
    Show(DirectoryShowArgs),
    /// Check that a directory answers: connect, authenticate, search.
    Test {
        /// Directory document name.
        name: String,
    },
}

/// Arguments of `directory show`.
#[derive(Debug, Args)]
pub struct DirectoryShowArgs {
    /// Login or e-mail address.
    #[arg(value_name = "LOGIN_OR_EMAIL")]
    pub who: String,
    /// Ask only this directory.
    #[arg(long)]
    pub directory: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `delegate`.
#[derive(Debug, Args)]
pub struct DelegateArgs {
    /// Who delegates (an approver).
    pub from: String,
    /// Who decides in their place (an approver).
    pub to: String,
    /// End: a time (2026-12-24T17:00:00Z), a date (until the end of that day, UTC) or a
    /// duration from now (12h, 7d, 2w).
    #[arg(long)]
    pub until: String,
    /// Why (shown with the delegation and kept in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Delegation verbs.
#[derive(Debug, Subcommand)]
pub enum DelegationCommand {
    /// Delegations in force (`--all`: every one ever made).
    List {
        /// Include ended and revoked ones.
        #[arg(long)]
        all: bool,
    },
    /// End a delegation now.
    Revoke {
        /// Delegation id.
        id: i64,
    },
}

/// Request verbs.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Create a request.
    New(NewRequestArgs),
    /// List requests, newest first.
    List(ListArgs),
    /// Show one request with its approvals, jobs and timeline.
    Show(IdArg),
    /// Correct the fields of a request in triage and send it through validation again.
    Fix(FixArgs),
    /// Retry the failed provisioning step STEP of a failed request.
    RetryStep {
        /// Request id.
        id: i64,
        /// Step name, as in the workflow.
        step: String,
    },
    /// Run a failed (or waiting) request's pinned steps again from step N (1 = the first).
    Rerun {
        /// Request id.
        id: i64,
        /// First step to run again, counted from 1.
        #[arg(long)]
        from: usize,
    },
    /// Skip provisioning step STEP with a justification; provisioning continues past it.
    SkipStep {
        /// Request id.
        id: i64,
        /// Step name, as in the workflow.
        step: String,
        /// Why it is skipped (required, kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Mark manual step STEP, which waits for an operator, done.
    DoneStep {
        /// Request id.
        id: i64,
        /// Step name, as in the workflow.
        step: String,
        /// What was done (kept with the step and in the audit trail).
        #[arg(long)]
        note: Option<String>,
    },
}

/// A step-control verb of `request`, as [`super::steps::run`] takes it.
#[derive(Debug)]
pub enum StepCommand {
    /// `request retry-step`.
    Retry {
        /// Request id.
        id: i64,
        /// Step name.
        step: String,
    },
    /// `request rerun --from N`.
    Rerun {
        /// Request id.
        id: i64,
        /// First step, from 1.
        from: usize,
    },
    /// `request skip-step --reason`.
    Skip {
        /// Request id.
        id: i64,
        /// Step name.
        step: String,
        /// Justification.
        reason: String,
    },
    /// `request done-step [--note]`.
    Done {
        /// Request id.
        id: i64,
        /// Step name.
        step: String,
        /// Note.
        note: Option<String>,
    },
}

/// Arguments of `request fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Request id (must be `needs_triage`).
    pub id: i64,
    /// Corrected full name.
    #[arg(long)]
    pub name: Option<String>,
    /// Corrected e-mail.
    #[arg(long)]
    pub email: Option<String>,
    /// Account name to use.
    #[arg(long)]
    pub username: Option<String>,
    /// Fields to set as key=value (repeatable), e.g. `--field start_date=2027-01-04`.
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
}

/// Arguments of `request new`.
#[derive(Debug, Args)]
pub struct NewRequestArgs {
    /// Workflow name (a saved workflow document).
    #[arg(long)]
    pub workflow: String,
    /// Full name of the person.
    #[arg(long)]
    pub name: String,
    /// E-mail of the person.
    #[arg(long)]
    pub email: Option<String>,
    /// Account name (derived from the name when absent).
    #[arg(long)]
    pub username: Option<String>,
    /// joiner, mover or leaver.
    #[arg(long, default_value = "joiner")]
    pub kind: String,
    /// Who asks (default: the login user).
    #[arg(long)]
    pub requester: Option<String>,
    /// Extra fields as key=value (repeatable), e.g. `--field team=sales`.
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
}

/// Arguments of `request list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this state (e.g. failed, awaiting_approval).
    #[arg(long)]
    pub state: Option<String>,
    /// Only this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Substring of name, e-mail, username or requester.
    #[arg(long)]
    pub text: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Cursor: show requests older than this id.
    #[arg(long)]
    pub after: Option<i64>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A single id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Request id.
    pub id: i64,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// Request id.
    pub id: i64,
}

/// Arguments of `reject`.
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// Request id.
    pub id: i64,
    /// Why (sent to the requester).
    #[arg(long)]
    pub reason: String,
}

/// A queue name.
#[derive(Debug, Args)]
pub struct QueueArg {
    /// Queue name (`default`, `provision`, `notify` …).
    pub queue: String,
}

/// A worker id, as `gatehouse` lists workers in the console.
#[derive(Debug, Args)]
pub struct WorkerIdArg {
    /// Worker id (`host:pid:random`).
    pub worker: String,
}

/// Arguments of `cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Request id.
    pub id: i64,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// Arguments of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs run at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Queues to claim from (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,provision,notify,maintenance"
    )]
    pub queues: Vec<String>,
    /// Lease length in seconds.
    #[arg(long, default_value_t = 30)]
    pub lease_secs: u64,
    /// Do not run the periodic scheduler in this process.
    #[arg(long)]
    pub no_scheduler: bool,
    /// Do not read the saved mailboxes in this process.
    #[arg(long)]
    pub no_mailboxes: bool,
    /// Mailbox reading lease in seconds (a crashed worker's mailboxes are read by another
    /// worker after this long).
    #[arg(long, default_value_t = 30)]
    pub mailbox_lease_secs: u64,
    /// On SIGTERM / ctrl-c, wait this long for running jobs, then hand their leases back.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// Signing key for audit checkpoints (made by `audit keygen`): with it the worker appends
    /// a signed checkpoint at start, every --audit-checkpoint-every and when it stops.
    #[arg(long, env = "GATEHOUSE_AUDIT_KEY", value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// Checkpoint file (default: the key path + `.checkpoints.jsonl`).
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINTS", value_name = "FILE")]
    pub audit_checkpoints: Option<PathBuf>,
    /// Interval between audit checkpoints, e.g. `10m`, `1h` (at least 1s).
    #[arg(
        long,
        env = "GATEHOUSE_AUDIT_CHECKPOINT_EVERY",
        default_value = "10m",
        value_parser = crate::domain::duration::parse_duration
    )]
    pub audit_checkpoint_every: std::time::Duration,
    /// How long finished jobs stay in the jobs table before the hourly prune deletes them
    /// (at least 10s; the scheduler of this worker hands it to the prune it enqueues, and prunes
    /// every half retention, at most hourly).
    #[arg(
        long,
        default_value = "72h",
        value_parser = parse_retention
    )]
    pub job_retention: std::time::Duration,
}

/// A job retention: a duration of at least ten seconds.
fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let retention = crate::domain::duration::parse_duration(text)?;
    if retention < std::time::Duration::from_secs(10) {
        return Err(format!(
            "{text}: a job retention under 10 seconds would delete jobs before a console shows them"
        ));
    }
    Ok(retention)
}

/// Audit verbs.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check it against every signed checkpoint; exit 1 naming
    /// the first missing or changed row.
    Verify(AuditVerifyArgs),
    /// Export the trail.
    Export(AuditExportArgs),
    /// Sign the chain's head (rows, newest id, head hash, time) and append it to a checkpoint file.
    Checkpoint(AuditCheckpointArgs),
    /// Create a checkpoint signing key (mode 0600) and KEY.pub; print the public key.
    Keygen(AuditKeygenArgs),
}

/// Arguments of `audit verify`.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// Checkpoint file to check the chain against (default with --key: KEY.checkpoints.jsonl;
    /// without one, only the chain is checked and nothing anchors it).
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINTS", value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
    /// Trusted public key, `ed25519:<hex>` or a file holding it such as KEY.pub (repeatable,
    /// e.g. an old and a new key). The key named in a checkpoint line is never trusted alone.
    #[arg(long = "public-key", value_name = "KEY|FILE")]
    pub public_keys: Vec<String>,
    /// Trust the public key of this signing key file.
    #[arg(long, env = "GATEHOUSE_AUDIT_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Arguments of `audit checkpoint`.
#[derive(Debug, Args)]
pub struct AuditCheckpointArgs {
    /// Signing key file (made by `audit keygen`); it must live outside the store.
    #[arg(long, env = "GATEHOUSE_AUDIT_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Checkpoint file to append to (default: KEY.checkpoints.jsonl).
    #[arg(long, env = "GATEHOUSE_AUDIT_CHECKPOINTS", value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
}

/// Arguments of `audit keygen`.
#[derive(Debug, Args)]
pub struct AuditKeygenArgs {
    /// Where to create the key (refused when it, or KEY.pub, exists).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

/// Arguments of `audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Configuration verbs.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate files; errors as file:line:col: field: message.
    Check {
        /// TOML documents.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate every *.toml in a directory, then save each as a new version (all or none).
    Import {
        /// Directory of documents.
        dir: PathBuf,
        /// Why (kept with each version).
        #[arg(long, default_value = "imported")]
        comment: String,
    },
    /// Write the newest version of every document into a directory.
    Export {
        /// Target directory (created).
        dir: PathBuf,
    },
    /// Versions of one document, newest first.
    History {
        /// Document name.
        name: String,
    },
    /// Save an old version's body as the new head.
    Rollback {
        /// Document name.
        name: String,
        /// Version to restore.
        #[arg(value_name = "VERSION", id = "restore_version")]
        version: i64,
    },
}

/// Operator verbs.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Add an operator or replace their role, scopes and e-mail (admins only; the first admin
    /// is created by root or the OS owner of the store file while no admin exists).
    Add {
        /// Login name (the OS account, or the name SSH keys map to).
        name: String,
        /// viewer, approver or admin.
        #[arg(long, value_parser = ["viewer", "approver", "admin"])]
        role: String,
        /// Limit the role to some requests: `team:NAME` or `workflow:NAME` (repeatable).
        #[arg(long = "scope", value_name = "KIND:NAME")]
        scopes: Vec<String>,
        /// The operator's e-mail, so separation of duties knows them by it too.
        #[arg(long)]
        email: Option<String>,
    },
    /// Remove an operator (admins only; never the last unscoped admin).
    Remove {
        /// Login name.
        name: String,
    },
    /// List operators.
    List,
    /// Operators' SSH public keys, which `gatehouse serve` logs in as their operator.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// Operator key verbs.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add an SSH public key to an operator (admins only): ed25519, ecdsa, or rsa of at least
    /// 3072 bits, from a `.pub` file (`-` reads standard input).
    Add {
        /// The operator the key logs in as.
        name: String,
        /// The public key file, e.g. `~/.ssh/id_ed25519.pub`.
        file: PathBuf,
    },
    /// List every operator's keys with fingerprints and last use.
    List,
    /// Remove an operator's key by its fingerprint (admins only).
    Remove {
        /// The operator.
        name: String,
        /// `SHA256:…`, as `operator key list` or `ssh-keygen -l -f KEY.pub` prints it.
        fingerprint: String,
    },
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on for SSH, e.g. `127.0.0.1:2222`.
    #[arg(long, value_name = "ADDR:PORT", env = "GATEHOUSE_SSH_ADDR")]
    pub ssh: String,
    /// The server's host key (created on first start, mode 0600; default `ssh_host_ed25519_key`
    /// in the data directory).
    #[arg(long, value_name = "FILE", env = "GATEHOUSE_HOST_KEY")]
    pub host_key: Option<PathBuf>,
    /// Most sessions open at once, all keys together.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Most sessions open at once with one key.
    #[arg(long, default_value_t = 4)]
    pub max_sessions_per_key: usize,
    /// Close a connection after this many seconds without input from its client.
    #[arg(long, default_value_t = 1800)]
    pub idle_timeout_secs: u64,
    /// Authentication attempts allowed per connection.
    #[arg(long, default_value_t = 6)]
    pub max_auth_attempts: usize,
    /// Theme of every session (`NO_COLOR` sent by a client still gives `mono`).
    #[arg(long, default_value = "default")]
    pub theme: String,
}

/// Arguments of `tui`.
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Never register dangerous commands; open the store read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Theme name (default, light, high-contrast, mono or a user theme).
    #[arg(long, default_value = "default")]
    pub theme: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_default_parses() {
        // Defaults go through the value parsers too: a default they refuse stops the verb.
        use clap::Parser;
        for verb in [vec!["worker"], vec!["serve", "--ssh", "127.0.0.1:2222"]] {
            let args = std::iter::once("gatehouse").chain(verb.iter().copied());
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{verb:?} with its defaults: {e}");
            }
        }
        let Ok(cli) = Cli::try_parse_from(["gatehouse", "worker"]) else {
            panic!("worker parses");
        };
        let Command::Worker(args) = cli.command else {
            panic!("the worker verb");
        };
        assert_eq!(
            args.job_retention,
            std::time::Duration::from_secs(3 * 86_400)
        );
    }
}

/// `role` subcommands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Print a role's inheritance tree and its resolved bundle.
    Tree(super::reconcile::RoleTreeArgs),
}
