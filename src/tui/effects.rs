//! Effects: what `update` asks the outside world to do. The runner performs store calls in
//! tokio tasks — at most one read in flight per kind, the newest request queued behind it —
//! and sends every result back as an `Action`. The event loop never awaits the database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedSender;

use crate::domain::inert::inert;
use crate::store::api::{
    Actor, AuditFilter, CommandApi, Decision, JobFilter, LogFilter, Page, ReadApi, RequestFilter,
};
use crate::tui::action::{Action, CommandError, Done, Loaded, Outcome};
use crate::tui::theme::{self, ColorDepth};

/// Something `update` wants done outside the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read from the store.
    Load(Load),
    /// Run commands in order (one, or a bulk action) and report one `Outcome`.
    Run(Vec<StoreCmd>),
    /// Load a theme by name (`:theme`).
    LoadTheme(String),
    /// Suspend the process (ctrl-z).
    Suspend,
    /// Leave the console.
    Quit,
}

/// Kinds of reads; one of each may be in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadKind {
    /// Overview.
    Overview,
    /// Approvals inbox.
    Approvals,
    /// Requests list.
    Requests,
    /// Request detail.
    Detail,
    /// Queue counts.
    Queues,
    /// Jobs list.
    Jobs,
    /// Log tail.
    Logs,
    /// Workers.
    Workers,
    /// Operators and their keys.
    Operators,
    /// Held mail.
    Quarantine,
    /// Mailboxes.
    Mailboxes,
    /// Delegations.
    Delegations,
    /// Config heads.
    ConfigHeads,
    /// Versions of one config.
    ConfigVersions,
    /// Audit list.
    Audit,
    /// Audit verification.
    Verify,
}

/// A read.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// `overview()`.
    Overview,
    /// `pending_approvals(operator, text, after, limit)`.
    Approvals {
        /// Text filter.
        text: Option<String>,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `list_requests(filter, after, limit)`.
    Requests {
        /// Filter.
        filter: RequestFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `request_detail(id)`.
    Detail(i64),
    /// `queue_stats()`.
    Queues,
    /// `list_jobs(filter, after, limit)`.
    Jobs {
        /// Filter.
        filter: JobFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `tail_log(after_id, …)`, or `last_log` when `after_id` is `None`.
    Logs {
        /// Last id already shown.
        after_id: Option<i64>,
        /// Filter.
        filter: LogFilter,
        /// Most lines.
        limit: u32,
    },
    /// `workers()`.
    Workers,
    /// `operators()` and `operator_keys()`.
    Operators,
    /// `held_messages(None, 500)`.
    Quarantine,
    /// `mailbox_states()`.
    Mailboxes,
    /// `delegations(None)`: every delegation ever made.
    Delegations,
    /// `config_heads()`.
    ConfigHeads,
    /// `config_versions(name)`.
    ConfigVersions(String),
    /// `list_audit(filter, after, limit)`.
    Audit {
        /// Filter.
        filter: AuditFilter,
        /// Keyset cursor.
        after: Option<i64>,
        /// Page size.
        limit: u32,
    },
    /// `verify_audit_since(head)`: the rows after a head verified before, or all of them.
    Verify(Option<crate::domain::checkpoint::ChainHead>),
}

impl Load {
    /// The kind, for the one-in-flight rule.
    pub fn kind(&self) -> LoadKind {
        match self {
            Load::Overview => LoadKind::Overview,
            Load::Approvals { .. } => LoadKind::Approvals,
            Load::Requests { .. } => LoadKind::Requests,
            Load::Detail(_) => LoadKind::Detail,
            Load::Queues => LoadKind::Queues,
            Load::Jobs { .. } => LoadKind::Jobs,
            Load::Logs { .. } => LoadKind::Logs,
            Load::Workers => LoadKind::Workers,
            Load::Operators => LoadKind::Operators,
            Load::Quarantine => LoadKind::Quarantine,
            Load::Mailboxes => LoadKind::Mailboxes,
            Load::Delegations => LoadKind::Delegations,
            Load::ConfigHeads => LoadKind::ConfigHeads,
            Load::ConfigVersions(_) => LoadKind::ConfigVersions,
            Load::Audit { .. } => LoadKind::Audit,
            Load::Verify(_) => LoadKind::Verify,
        }
    }
}

/// A write intent.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreCmd {
    /// Decide an approval stage.
    Decide {
        /// Approval id.
        approval_id: i64,
        /// Its request (for the flash).
        request_id: i64,
        /// Version the operator saw.
        expected_version: i64,
        /// Approve or reject.
        decision: Decision,
        /// Reason (required for rejections).
        reason: Option<String>,
    },
    /// Retry a failed request.
    RetryRequest {
        /// Request id.
        request_id: i64,
    },
    /// Retry a dead or retrying job.
    RetryJob {
        /// Job id.
        job_id: i64,
    },
    /// Cancel a request.
    CancelRequest {
        /// Request id.
        request_id: i64,
        /// Why.
        reason: Option<String>,
    },
    /// Save a config version.
    SaveConfig {
        /// Document kind.
        kind: String,
        /// Document name.
        name: String,
        /// TOML body (validated).
        body: String,
        /// Why.
        comment: String,
        /// Head version the editor started from.
        expected_version: i64,
    },
    /// Pause or resume a queue.
    SetQueuePaused {
        /// Queue name.
        queue: String,
        /// Pause (true) or resume.
        paused: bool,
    },
    /// Drain a worker.
    DrainWorker {
        /// Worker id.
        worker_id: String,
    },
    /// Release a held message.
    ReleaseMessage {
        /// Message id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Discard a held message.
    DiscardMessage {
        /// Message id.
        id: i64,
        /// Why.
        reason: String,
    },
    /// Take a request out of triage with corrected fields.
    ResolveTriage {
        /// Request id.
        request_id: i64,
        /// Version the operator saw.
        expected_version: i64,
        /// The corrections.
        fix: crate::store::TriageFix,
    },
    /// Create a delegation (the store checks who may).
    AddDelegation {
        /// From, to, until, reason.
        new: crate::store::api::NewDelegation,
    },
    /// Revoke a delegation.
    RevokeDelegation {
        /// Delegation id.
        id: i64,
        /// Who delegated (for the flash).
        from: String,
        /// To whom (for the flash).
        to: String,
    },
}

impl StoreCmd {
    /// What the flash says when it worked, e.g. `approved request 12`.
    pub fn success_text(&self) -> String {
        match self {
            StoreCmd::Decide {
                request_id,
                decision: Decision::Approve,
                ..
            } => format!("approved request {request_id}"),
            StoreCmd::Decide {
                request_id, reason, ..
            } => format!(
                "rejected request {request_id}: {}",
                reason.as_deref().unwrap_or("")
            ),
            StoreCmd::RetryRequest { request_id } => {
                format!("retry queued for request {request_id}")
            }
            StoreCmd::RetryJob { job_id } => format!("retry queued for job {job_id}"),
            StoreCmd::CancelRequest { request_id, .. } => format!("cancelled request {request_id}"),
            StoreCmd::SaveConfig { name, .. } => format!("saved {name}"),
            StoreCmd::SetQueuePaused {
                queue,
                paused: true,
            } => format!("paused queue {queue}"),
            StoreCmd::SetQueuePaused {
                queue,
                paused: false,
            } => format!("resumed queue {queue}"),
            StoreCmd::DrainWorker { worker_id } => format!("draining worker {worker_id}"),
            StoreCmd::ResolveTriage { request_id, .. } => {
                format!("request {request_id} sent on with its corrected fields")
            }
            StoreCmd::ReleaseMessage { id, .. } => {
                format!("released held message {id}: it is a request to triage now")
            }
            StoreCmd::DiscardMessage { id, .. } => format!("discarded held message {id}"),
            StoreCmd::AddDelegation { new } => format!(
                "delegation added: {} decides for {}",
                inert(&new.to),
                inert(&new.from)
            ),
            StoreCmd::RevokeDelegation { id, from, to } => {
                format!("delegation {id} ({} → {}) revoked", inert(from), inert(to))
            }
        }
    }

    /// The verb for bulk summaries (`approved 3 of 3`).
    pub fn verb(&self) -> &'static str {
        match self {
            StoreCmd::Decide {
                decision: Decision::Approve,
                ..
            } => "approved",
            StoreCmd::Decide { .. } => "rejected",
            StoreCmd::RetryRequest { .. } | StoreCmd::RetryJob { .. } => "retried",
            StoreCmd::CancelRequest { .. } => "cancelled",
            StoreCmd::SaveConfig { .. } => "saved",
            StoreCmd::SetQueuePaused { paused: true, .. } => "paused",
            StoreCmd::SetQueuePaused { paused: false, .. } => "resumed",
            StoreCmd::DrainWorker { .. } => "drained",
            StoreCmd::ResolveTriage { .. } => "sent on",
            StoreCmd::ReleaseMessage { .. } => "released",
            StoreCmd::DiscardMessage { .. } => "discarded",
            StoreCmd::AddDelegation { .. } => "delegated",
            StoreCmd::RevokeDelegation { .. } => "revoked",
        }
    }

    /// What the command acts on, for failure messages (`request 12`).
    pub fn subject(&self) -> String {
        match self {
            StoreCmd::Decide { request_id, .. }
            | StoreCmd::RetryRequest { request_id }
            | StoreCmd::CancelRequest { request_id, .. }
            | StoreCmd::ResolveTriage { request_id, .. } => format!("request {request_id}"),
            StoreCmd::RetryJob { job_id } => format!("job {job_id}"),
            StoreCmd::SaveConfig { name, .. } => format!("config {name}"),
            StoreCmd::SetQueuePaused { queue, .. } => format!("queue {queue}"),
            StoreCmd::DrainWorker { worker_id } => format!("worker {worker_id}"),
            StoreCmd::ReleaseMessage { id, .. } | StoreCmd::DiscardMessage { id, .. } => {
                format!("held message {id}")
            }
            StoreCmd::AddDelegation { new } => {
                format!("delegation {} → {}", inert(&new.from), inert(&new.to))
            }
            StoreCmd::RevokeDelegation { id, .. } => format!("delegation {id}"),
        }
    }
}

/// Most held messages the quarantine view loads at once.
const HELD_SHOWN: u32 = 500;

/// Runs effects against a store and reports back on the action channel.
pub struct EffectRunner<S> {
    store: S,
    actor: Actor,
    operator: String,
    config_dir: Option<PathBuf>,
    depth: ColorDepth,
    tx: UnboundedSender<Action>,
    in_flight: HashSet<LoadKind>,
    queued: HashMap<LoadKind, Load>,
}

/// Rows per page for keyset-paginated lists.
pub const PAGE: u32 = 200;

fn text<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

impl<S: ReadApi + CommandApi> EffectRunner<S> {
    /// A runner for `store`, acting as `actor`; results go to `tx`.
    pub fn new(
        store: S,
        actor: Actor,
        config_dir: Option<PathBuf>,
        depth: ColorDepth,
        tx: UnboundedSender<Action>,
    ) -> Self {
        let operator = actor.user.clone();
        EffectRunner {
            store,
            actor,
            operator,
            config_dir,
            depth,
            tx,
            in_flight: HashSet::new(),
            queued: HashMap::new(),
        }
    }

    /// True when no read is in flight or queued (used by tests and the benchmark).
    pub fn idle(&self) -> bool {
        self.in_flight.is_empty() && self.queued.is_empty()
    }

    /// Starts an effect. `Quit` and `Suspend` belong to the event loop and are ignored here.
    pub fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Load(load) => self.load(load),
            Effect::Run(cmds) => self.commands(cmds),
            Effect::LoadTheme(name) => {
                let tx = self.tx.clone();
                let dir = self.config_dir.clone();
                let depth = self.depth;
                tokio::task::spawn_blocking(move || {
                    let (theme, warnings) = theme::load(&name, dir.as_deref(), depth);
                    let _ = tx.send(Action::ThemeLoaded(theme, warnings));
                });
            }
            Effect::Suspend | Effect::Quit => {}
        }
    }

    /// Called by the loop when a read of `kind` came back: starts the queued one, if any.
    pub fn finished(&mut self, kind: LoadKind) {
        self.in_flight.remove(&kind);
        if let Some(next) = self.queued.remove(&kind) {
            self.load(next);
        }
    }

    fn load(&mut self, load: Load) {
        let kind = load.kind();
        if self.in_flight.contains(&kind) {
            // Newest wins: an older queued read of this kind is obsolete.
            self.queued.insert(kind, load);
            return;
        }
        self.in_flight.insert(kind);
        let store = self.store.clone();
        let operator = self.operator.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let loaded = perform_load(&store, &operator, load).await;
            let _ = tx.send(Action::Loaded(loaded));
        });
    }

    fn commands(&mut self, cmds: Vec<StoreCmd>) {
        let store = self.store.clone();
        let actor = self.actor.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut results = Vec::with_capacity(cmds.len());
            for cmd in cmds {
                let result = perform_command(&store, &actor, &cmd).await;
                results.push((cmd, result));
            }
            let _ = tx.send(Action::Outcome(Outcome { results }));
        });
    }
}

/// Performs one read (public so the benchmark and tests can load without a terminal).
pub async fn perform_load<S: ReadApi>(store: &S, operator: &str, load: Load) -> Loaded {
    match load {
        Load::Overview => Loaded::Overview(text(store.overview().await)),
        Load::Approvals {
            text: t,
            after,
            limit,
        } => Loaded::Approvals {
            append: after.is_some(),
            result: text(
                store
                    .pending_approvals(operator, t.as_deref(), after, limit)
                    .await,
            ),
        },
        Load::Requests {
            filter,
            after,
            limit,
        } => Loaded::Requests {
            append: after.is_some(),
            result: text(store.list_requests(&filter, after, limit).await),
        },
        Load::Detail(id) => Loaded::Detail {
            id,
            result: text(store.request_detail(id).await),
        },
        Load::Queues => Loaded::Queues(text(store.queue_stats().await)),
        Load::Jobs {
            filter,
            after,
            limit,
        } => Loaded::Jobs {
            append: after.is_some(),
            result: text(store.list_jobs(&filter, after, limit).await),
        },
        Load::Logs {
            after_id,
            filter,
            limit,
        } => match after_id {
            Some(after) => Loaded::Logs {
                reset: false,
                result: text(store.tail_log(after, &filter, limit).await),
            },
            None => Loaded::Logs {
                reset: true,
                result: text(store.last_log(&filter, limit).await),
            },
        },
        Load::Workers => Loaded::Workers(text(store.workers().await)),
        Load::Operators => Loaded::Operators(text(
            futures::future::try_join(store.operators(), store.operator_keys()).await,
        )),
        Load::Mailboxes => Loaded::Mailboxes(text(store.mailbox_states().await)),
        Load::Delegations => Loaded::Delegations(text(store.delegations(None).await)),
        Load::Quarantine => Loaded::Quarantine(text(
            store
                .held_messages(None, HELD_SHOWN)
                .await
                .map(|page| page.rows),
        )),
        Load::ConfigHeads => Loaded::ConfigHeads(text(store.config_heads().await)),
        Load::ConfigVersions(name) => {
            let result = text(store.config_versions(&name).await);
            Loaded::ConfigVersions { name, result }
        }
        Load::Audit {
            filter,
            after,
            limit,
        } => Loaded::Audit {
            append: after.is_some(),
            result: text(store.list_audit(&filter, after, limit).await),
        },
        Load::Verify(from) => Loaded::Verdict(text(store.verify_audit_since(from).await)),
    }
}

/// Performs one command.
pub async fn perform_command<S: CommandApi>(
    store: &S,
    actor: &Actor,
    cmd: &StoreCmd,
) -> Result<Done, CommandError> {
    let done = match cmd {
        StoreCmd::Decide {
            approval_id,
            expected_version,
            decision,
            reason,
            ..
        } => Done::Approval(
            store
                .decide_approval(
                    actor,
                    *approval_id,
                    *expected_version,
                    *decision,
                    reason.clone(),
                )
                .await?,
        ),
        StoreCmd::RetryRequest { request_id } => {
            Done::Request(store.retry_request(actor, *request_id).await?)
        }
        StoreCmd::RetryJob { job_id } => Done::Job(store.retry_job(actor, *job_id).await?),
        StoreCmd::CancelRequest { request_id, reason } => Done::Request(
            store
                .cancel_request(actor, *request_id, reason.clone())
                .await?,
        ),
        StoreCmd::SaveConfig {
            kind,
            name,
            body,
            comment,
            expected_version,
        } => Done::Config(
            store
                .save_config(actor, kind, name, body, comment, *expected_version)
                .await?,
        ),
        StoreCmd::SetQueuePaused { queue, paused } => {
            store.set_queue_paused(actor, queue, *paused).await?;
            Done::Unit
        }
        StoreCmd::DrainWorker { worker_id } => {
            store.drain_worker(actor, worker_id).await?;
            Done::Unit
        }
        StoreCmd::ReleaseMessage { id, reason } => {
            Done::Request(store.release_message(actor, *id, reason).await?)
        }
        StoreCmd::DiscardMessage { id, reason } => {
            store.discard_message(actor, *id, reason).await?;
            Done::Unit
        }
        StoreCmd::ResolveTriage {
            request_id,
            expected_version,
            fix,
        } => Done::Request(
            store
                .resolve_triage(actor, *request_id, *expected_version, fix.clone())
                .await?,
        ),
        StoreCmd::AddDelegation { new } => {
            store.add_delegation(actor, new.clone()).await?;
            Done::Unit
        }
        StoreCmd::RevokeDelegation { id, .. } => {
            store.revoke_delegation(actor, *id).await?;
            Done::Unit
        }
    };
    Ok(done)
}

/// An empty page (for views that have not loaded yet).
pub fn empty_page<T>() -> Page<T> {
    Page {
        rows: Vec::new(),
        next: None,
    }
}
