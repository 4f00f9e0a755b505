//! The effect runner: performs [`Effect`]s' store calls in tokio tasks — at most one read in
//! flight per kind, the newest request queued behind it — and sends every result back as an
//! `Action`. The event loop never awaits the database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedSender;

use crate::store::api::{Actor, CommandApi, Page, ReadApi};
use crate::tui::action::{Action, CommandError, Done, Loaded, Outcome};
use crate::tui::effects::{Effect, Load, LoadKind, StoreCmd};
use crate::tui::theme::{self, ColorDepth};

/// Most manual tasks `:manual` lists.
const MANUAL_SHOWN: i64 = 500;
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
        Load::ManualTasks => Loaded::ManualTasks(text(store.manual_tasks(MANUAL_SHOWN).await)),
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
        StoreCmd::RetryStep { request_id, step } => {
            Done::Request(store.retry_step(actor, *request_id, step).await?)
        }
        StoreCmd::SkipStep {
            request_id,
            step,
            reason,
        } => Done::Request(store.skip_step(actor, *request_id, step, reason).await?),
        StoreCmd::DoneStep {
            request_id,
            step,
            note,
        } => Done::Request(
            store
                .complete_manual_step(actor, *request_id, step, note.as_deref())
                .await?,
        ),
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
