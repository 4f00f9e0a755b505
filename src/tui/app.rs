//! The console state and its one update function: `update(action) -> effects`. Pure: no I/O,
//! no clock, no awaits — the event loop feeds it actions and runs the effects it returns.

use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_textarea::{CursorMove, TextArea};

use crate::store::api::{
    Actor, ApprovalRow, AuditFilter, ConfigVersion, Decision, JobFilter, JobState, LogFilter,
    Millis, RequestFilter,
};
use crate::tui::action::{Action, CommandError, Done, Loaded, Outcome};
use crate::tui::command::{self, Command};
use crate::tui::effects::{Effect, Load, PAGE, StoreCmd};
use crate::tui::keymap::{KeyChord, Keymap, Lookup};
use crate::tui::theme::{Role, Theme};
use crate::tui::views::ViewId;
use crate::tui::views::approvals::ApprovalsView;
use crate::tui::views::audit::AuditView;
use crate::tui::views::configs::ConfigsView;
use crate::tui::views::delegations::DelegationsView;
use crate::tui::views::detail::DetailView;
use crate::tui::views::editor::{ConfigTools, EditorView};
use crate::tui::views::logs::{LOG_CAP, LogsView};
use crate::tui::views::mailboxes::MailboxesView;
use crate::tui::views::operators::OperatorsView;
use crate::tui::views::overview::OverviewView;
use crate::tui::views::quarantine::QuarantineView;
use crate::tui::views::queues::QueuesView;
use crate::tui::views::requests::RequestsView;
use crate::tui::views::workers::WorkersView;
use crate::tui::widgets::diff::{DiffPopup, line_diff};
use crate::tui::widgets::flash::{Flash, FlashLevel};
use crate::tui::widgets::prompt::{Prompt, PromptMode};
use crate::tui::widgets::table::{Keyed, freshness};

mod applies;
mod delegation_form;
mod filter;
mod loads;
mod nav;
mod popups;
mod rows;
pub mod steps;
mod triage;

pub use applies::ROW_ACTIONS;
pub use filter::{ParsedFilter, parse_filter};
pub use loads::failure_text;
pub use rows::pending_list;
pub use triage::TriageForm;

/// Rows from the end of a list at which the next page is requested.
const MORE_MARGIN: usize = 20;
/// Flash messages disappear after this long.
const FLASH_MS: Millis = 8_000;

/// A popup over the current view; it takes every key while open.
#[derive(Debug, Clone)]
pub enum Popup {
    /// The `:` or `/` prompt.
    Prompt(Prompt),
    /// "N selected — confirm (y/n)".
    Confirm {
        /// The question.
        text: String,
        /// What `y` runs.
        cmds: Vec<StoreCmd>,
    },
    /// A required reason (reject), typed in a text area.
    Reason {
        /// Title, e.g. `reject request 12`.
        title: String,
        /// The input.
        input: Box<TextArea<'static>>,
        /// Shown when Enter is pressed with no reason.
        error: Option<String>,
        /// What the reason is for.
        target: ReasonFor,
    },
    /// Keys of the current view.
    Help {
        /// First line shown.
        scroll: usize,
    },
    /// Diff before saving a config.
    Diff(DiffPopup),
    /// Leaving the editor (or the console) with unsaved changes: `y` discards them.
    Discard {
        /// Document name.
        name: String,
        /// `y` quits the console (ctrl-c) instead of leaving the editor (Esc).
        quit: bool,
    },
    /// The triage editor on a `needs_triage` request.
    Triage(Box<TriageForm>),
    /// The new-delegation form.
    Delegation(Box<crate::tui::widgets::form::Form>),
    /// Read-only text (dry-run results, an audit row).
    Text {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
        /// First line shown.
        scroll: usize,
    },
}

/// What a reason prompt decides when Enter is pressed.
#[derive(Debug, Clone)]
pub enum ReasonFor {
    /// Reject these approvals.
    Reject(Vec<ApprovalRow>),
    /// Cancel these requests.
    Cancel(Vec<i64>),
    /// Release this held message.
    Release(i64),
    /// Discard this held message.
    Discard(i64),
    /// Skip this step of this request.
    SkipStep(i64, String),
    /// Mark this manual step of this request done (the note may be empty).
    DoneStep(i64, String),
}

/// Everything the console shows; `render` is a pure function of it.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The current time (from ticks; render never reads the clock).
    pub now: Millis,
    /// Who is operating.
    pub operator: Actor,
    /// Their role (`viewer`, `approver`, `admin`).
    pub role: String,
    /// Dangerous commands are not registered.
    pub read_only: bool,
    /// Where logs go, for the status line.
    pub log_file: Option<String>,
    /// Styles.
    pub theme: Theme,
    /// Key bindings.
    pub keymap: Keymap,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
    /// The view stack; the last one is shown, the rest are the breadcrumbs.
    pub stack: Vec<ViewId>,
    /// The open popup.
    pub popup: Option<Popup>,
    /// The last outcome.
    pub flash: Option<Flash>,
    /// Something changed since the last draw.
    pub dirty: bool,
    /// Overview data.
    pub overview: OverviewView,
    /// Approvals inbox.
    pub approvals: ApprovalsView,
    /// Requests list.
    pub requests: RequestsView,
    /// Request detail.
    pub detail: DetailView,
    /// Queues and jobs.
    pub queues: QueuesView,
    /// Log tail.
    pub logs: LogsView,
    /// Workers.
    pub workers: WorkersView,
    /// Operators and their keys.
    pub operators: OperatorsView,
    /// Held mail.
    pub quarantine: QuarantineView,
    /// Mailboxes intake reads.
    pub mailboxes: MailboxesView,
    /// Approval delegations.
    pub delegations: DelegationsView,
    /// Config documents.
    pub configs: ConfigsView,
    /// The open editor.
    pub editor: Option<EditorView>,
    /// Audit trail.
    pub audit: AuditView,
    /// Config validation and dry-run.
    pub tools: ConfigTools,
    /// The time zone times are shown in (the local offset at start-up; render never reads
    /// the zone, so tests can fix it).
    pub tz: crate::tui::widgets::describe::Tz,
    /// Submitted `:` lines, oldest first.
    pub history_cmd: Vec<String>,
    /// Submitted `/` filters, oldest first.
    pub history_filter: Vec<String>,
}

impl AppState {
    /// A fresh state on the overview.
    pub fn new(
        operator: Actor,
        role: String,
        read_only: bool,
        theme: Theme,
        keymap: Keymap,
        now: Millis,
    ) -> AppState {
        AppState {
            now,
            operator,
            role,
            read_only,
            log_file: None,
            theme,
            keymap,
            size: (80, 24),
            stack: vec![ViewId::Overview],
            popup: None,
            flash: None,
            dirty: true,
            overview: OverviewView::default(),
            approvals: ApprovalsView::default(),
            requests: RequestsView::default(),
            detail: DetailView::default(),
            queues: QueuesView::default(),
            logs: LogsView::default(),
            workers: WorkersView::default(),
            operators: OperatorsView::default(),
            quarantine: QuarantineView::default(),
            mailboxes: MailboxesView::default(),
            delegations: DelegationsView::default(),
            configs: ConfigsView::default(),
            editor: None,
            audit: AuditView::default(),
            tools: ConfigTools::default(),
            tz: crate::tui::widgets::describe::local_tz(),
            history_cmd: Vec::new(),
            history_filter: Vec::new(),
        }
    }

    /// The view on top of the stack.
    pub fn view(&self) -> ViewId {
        self.stack.last().copied().unwrap_or(ViewId::Overview)
    }

    /// Effects to run at start-up.
    pub fn init(&mut self) -> Vec<Effect> {
        self.load_view(self.view())
    }

    /// Shows a flash message.
    pub fn flash(&mut self, level: FlashLevel, text: impl Into<String>) {
        self.flash = Some(Flash {
            level,
            text: text.into(),
            at: self.now,
        });
        self.dirty = true;
    }

    /// Applies one action; returns what must be done outside.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(key) => {
                if key.kind == KeyEventKind::Release {
                    return Vec::new();
                }
                self.dirty = true;
                self.on_key(key)
            }
            Action::Paste(text) => {
                self.dirty = true;
                self.on_paste(&text);
                Vec::new()
            }
            Action::Resize(w, h) => {
                self.size = (w, h);
                self.dirty = true;
                Vec::new()
            }
            Action::Tick(now) => {
                let minute_changed = now / 60_000 != self.now / 60_000;
                let was_stale = self.view_freshness(self.now).is_some();
                self.now = now;
                let stale = was_stale || self.view_freshness(now).is_some();
                if minute_changed || stale || self.view() == ViewId::Workers {
                    self.dirty = true;
                }
                if self.flash.as_ref().is_some_and(|f| now - f.at > FLASH_MS) {
                    self.flash = None;
                    self.dirty = true;
                }
                Vec::new()
            }
            Action::StoreChanged => self.refresh_view(self.view()),
            Action::Loaded(loaded) => {
                self.dirty = true;
                self.on_loaded(loaded)
            }
            Action::Outcome(outcome) => {
                self.dirty = true;
                self.on_outcome(outcome)
            }
            Action::ThemeLoaded(theme, warnings) => {
                self.dirty = true;
                let name = theme.name.clone();
                self.theme = theme;
                match warnings.first() {
                    Some(w) => self.flash(FlashLevel::Err, format!("theme {name}: {w}")),
                    None => self.flash(FlashLevel::Ok, format!("theme {name}")),
                }
                Vec::new()
            }
            Action::Terminate => vec![Effect::Quit],
        }
    }

    // ----- keys -------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(popup) = self.popup.take() {
            return self.popup_key(popup, key);
        }
        let chord = KeyChord::from_event(&key);
        let layer = self.view().layer();
        match self.keymap.lookup(layer, chord) {
            Lookup::Command(c) => self.exec(c),
            Lookup::Refused(c) => {
                let text = if self.read_only {
                    format!("read-only: {} is not available", c.name())
                } else {
                    format!("{}: {} is not allowed for this role", self.role, c.name())
                };
                self.flash(FlashLevel::Err, text);
                Vec::new()
            }
            Lookup::Unbound => {
                if self.view() == ViewId::Editor {
                    self.editor_input(key);
                }
                Vec::new()
            }
        }
    }

    /// What the current view's lists would say about their freshness at `now` (late or
    /// failing refreshes), so ticks redraw while it changes and never otherwise.
    pub fn view_freshness(&self, now: Millis) -> Option<String> {
        match self.view() {
            ViewId::Approvals => self.approvals.list.freshness(now),
            ViewId::Requests => self.requests.list.freshness(now),
            ViewId::Queues => self
                .queues
                .stats
                .freshness(now)
                .or_else(|| self.queues.jobs.freshness(now)),
            ViewId::Workers => self.workers.list.freshness(now),
            ViewId::Operators => self.operators.list.freshness(now),
            ViewId::Quarantine => self.quarantine.list.freshness(now),
            ViewId::Mailboxes => self.mailboxes.list.freshness(now),
            ViewId::Delegations => self.delegations.list.freshness(now),
            ViewId::Configs => self.configs.heads.freshness(now),
            ViewId::Audit => self.audit.list.freshness(now),
            ViewId::Overview => {
                let o = &self.overview;
                freshness(
                    o.loading,
                    o.requested_at,
                    o.refreshed_at,
                    o.error.is_some() && o.data.is_some(),
                    now,
                )
            }
            ViewId::Detail => {
                let d = &self.detail;
                freshness(
                    d.loading,
                    d.requested_at,
                    d.refreshed_at,
                    d.error.is_some() && d.data.is_some(),
                    now,
                )
            }
            _ => None,
        }
    }

    /// Rows of the current view's table body on screen (the layouts of the views, mirrored;
    /// the table clamps its offset anyway, this only keeps the stored one close).
    fn list_height(&self) -> usize {
        let (w, h) = self.size;
        // breadcrumbs, hints, flash line; borders and header of the table
        let body = usize::from(h).saturating_sub(3);
        let table = match self.view() {
            ViewId::Approvals if w < 120 && h >= 30 => body / 2,
            ViewId::Audit => body.saturating_sub(1),
            _ => body,
        };
        table.saturating_sub(3).max(1)
    }

    fn page(&self) -> isize {
        isize::try_from(self.size.1.saturating_sub(8).max(1)).unwrap_or(10)
    }

    /// Runs a bound command.
    pub fn exec(&mut self, command: Command) -> Vec<Effect> {
        if ROW_ACTIONS.contains(&command)
            && let Err(why) = self.applies(command)
        {
            self.flash(FlashLevel::Err, why);
            return Vec::new();
        }
        match command {
            Command::Quit => match self.unsaved_editor() {
                Some(name) => {
                    self.popup = Some(Popup::Discard { name, quit: true });
                    Vec::new()
                }
                None => vec![Effect::Quit],
            },
            Command::Suspend => vec![Effect::Suspend],
            Command::Back => self.back(),
            Command::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            Command::CommandMode => {
                self.open_prompt(PromptMode::Command);
                Vec::new()
            }
            Command::Filter => {
                if matches!(
                    self.view(),
                    ViewId::Overview | ViewId::Detail | ViewId::Editor
                ) {
                    self.flash(FlashLevel::Info, "this view has no filter");
                    return Vec::new();
                }
                self.open_prompt(PromptMode::Filter);
                Vec::new()
            }
            Command::Refresh => {
                self.flash(
                    FlashLevel::Info,
                    format!("reloading {}…", self.view().label()),
                );
                self.load_view(self.view())
            }
            Command::Up => self.nav(-1),
            Command::Down => self.nav(1),
            Command::PageUp => self.nav(-self.page()),
            Command::PageDown => self.nav(self.page()),
            Command::Top => self.nav(isize::MIN),
            Command::ShowNew => {
                let new = match self.view() {
                    ViewId::Approvals => self.approvals.list.new_above,
                    ViewId::Requests => self.requests.list.new_above,
                    ViewId::Queues if self.queues.focus_jobs => self.queues.jobs.new_above,
                    ViewId::Audit => self.audit.list.new_above,
                    _ => return Vec::new(),
                };
                if new == 0 {
                    self.flash(FlashLevel::Info, "no new rows above the screen");
                }
                self.nav(isize::MIN)
            }
            Command::Bottom => self.nav(isize::MAX),
            Command::Mark => {
                let marked = match self.view() {
                    ViewId::Approvals => self.approvals.list.toggle_mark(),
                    ViewId::Requests => self.requests.list.toggle_mark(),
                    ViewId::Queues if self.queues.focus_jobs => self.queues.jobs.toggle_mark(),
                    _ => None,
                };
                if marked.is_some() {
                    return self.nav(1);
                }
                Vec::new()
            }
            Command::MarkAll => {
                match self.view() {
                    ViewId::Approvals => self.approvals.list.mark_all(),
                    ViewId::Requests => self.requests.list.mark_all(),
                    ViewId::Queues if self.queues.focus_jobs => self.queues.jobs.mark_all(),
                    _ => {}
                }
                Vec::new()
            }
            Command::ClearMarks => {
                self.approvals.list.marks.clear();
                self.requests.list.marks.clear();
                self.queues.jobs.marks.clear();
                Vec::new()
            }
            Command::Open => self.open(),
            Command::FocusNext => {
                match self.view() {
                    ViewId::Queues => self.queues.focus_jobs = !self.queues.focus_jobs,
                    ViewId::Configs => self.configs.focus_versions = !self.configs.focus_versions,
                    ViewId::Detail => self.detail.focus_info = !self.detail.focus_info,
                    _ => {}
                }
                Vec::new()
            }
            Command::Approve => self.approve(),
            Command::Reject => self.reject(),
            Command::Retry => self.retry(),
            Command::Cancel => self.cancel(),
            Command::Edit => self.edit(),
            Command::TogglePause => self.toggle_pause(),
            Command::Drain => self.drain(),
            Command::Release => self.review_held(true),
            Command::RetryStep => self.step_control(steps::StepKey::Retry),
            Command::SkipStep => self.step_control(steps::StepKey::Skip),
            Command::DoneStep => self.step_control(steps::StepKey::Done),
            Command::Discard => self.review_held(false),
            Command::Delegate => self.open_delegation_form(),
            Command::Revoke => self.revoke_selected_delegation(),
            Command::Follow => {
                self.logs.follow = !self.logs.follow;
                if self.logs.follow {
                    self.logs.scroll_back = 0;
                }
                let on = if self.logs.follow { "on" } else { "off" };
                self.flash(FlashLevel::Info, format!("follow {on}"));
                Vec::new()
            }
            Command::Wrap => {
                self.logs.wrap = !self.logs.wrap;
                let on = if self.logs.wrap { "on" } else { "off" };
                self.flash(FlashLevel::Info, format!("wrap {on}"));
                Vec::new()
            }
            Command::CycleLevel => {
                // From the most verbose to the least, then all again.
                let next = match self.logs.filter.min_level.as_deref() {
                    None | Some("TRACE") => Some("DEBUG"),
                    Some("DEBUG") => Some("INFO"),
                    Some("INFO") => Some("WARN"),
                    Some("WARN") => Some("ERROR"),
                    _ => None,
                };
                self.logs.filter.min_level = next.map(str::to_string);
                self.flash(
                    FlashLevel::Info,
                    format!("log level ≥ {}", next.unwrap_or("TRACE (all)")),
                );
                self.reset_logs()
            }
            Command::Rollback => self.rollback(),
            Command::DryRun => self.dry_run(),
            Command::Save => self.editor_save(),
            Command::RequestLogs => {
                match self.detail.id.filter(|_| self.view() == ViewId::Detail) {
                    Some(id) => {
                        // The global filter comes back when this scoped view is left.
                        if self.logs.saved.is_none() {
                            self.logs.saved =
                                Some((self.logs.filter.clone(), self.logs.filter_text.clone()));
                        }
                        self.logs.filter = LogFilter {
                            request_id: Some(id),
                            min_level: self.logs.filter.min_level.clone(),
                            ..LogFilter::default()
                        };
                        self.logs.filter_text = format!("request:{id}");
                        self.logs.rows.clear();
                        self.push(ViewId::Logs)
                    }
                    None => Vec::new(),
                }
            }
            Command::Sort => {
                self.approvals.by_escalation = !self.approvals.by_escalation;
                self.approvals.apply_sort();
                let by = if self.approvals.by_escalation {
                    "deadline"
                } else {
                    "age"
                };
                self.flash(FlashLevel::Info, format!("sorted by {by}"));
                Vec::new()
            }
            Command::Verify => {
                self.audit.verifying = true;
                vec![Effect::Load(Load::Verify(None))]
            }
            Command::GoOverview => self.go(ViewId::Overview),
            Command::GoApprovals => self.go(ViewId::Approvals),
            Command::GoRequests => self.go(ViewId::Requests),
            Command::GoQueues => self.go(ViewId::Queues),
            Command::GoLogs => self.go(ViewId::Logs),
            Command::GoWorkers => self.go(ViewId::Workers),
            Command::GoConfigs => self.go(ViewId::Configs),
            Command::GoAudit => self.go(ViewId::Audit),
        }
    }
}

/// The role a request or job state is drawn with.
pub fn role_for_state(state: &str) -> Role {
    match state {
        "failed" | "dead" => Role::Failed,
        "rejected" => Role::Rejected,
        "cancelled" => Role::Cancelled,
        "completed" => Role::Completed,
        "needs_triage" => Role::Triage,
        "awaiting_approval" | "scheduled" | "pending" | "available" | "retrying" => Role::Pending,
        "provisioning" | "validating" | "running" | "classified" | "received" => Role::Running,
        _ => Role::Base,
    }
}

/// Moves a text area's cursor to a 1-based line and column.
pub fn jump_to(textarea: &mut TextArea<'_>, line: usize, column: usize) {
    let row = u16::try_from(line.saturating_sub(1)).unwrap_or(u16::MAX);
    let col = u16::try_from(column.saturating_sub(1)).unwrap_or(u16::MAX);
    textarea.move_cursor(CursorMove::Jump(row, col));
}
