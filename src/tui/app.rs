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
use crate::tui::views::detail::DetailView;
use crate::tui::views::editor::{ConfigTools, EditorView};
use crate::tui::views::logs::{LOG_CAP, LogsView};
use crate::tui::views::operators::OperatorsView;
use crate::tui::views::overview::OverviewView;
use crate::tui::views::queues::QueuesView;
use crate::tui::views::requests::RequestsView;
use crate::tui::views::workers::WorkersView;
use crate::tui::widgets::diff::{DiffPopup, line_diff};
use crate::tui::widgets::flash::{Flash, FlashLevel};
use crate::tui::widgets::prompt::{Prompt, PromptMode};
use crate::tui::widgets::table::Keyed;

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
        /// The approvals to reject.
        targets: Vec<ApprovalRow>,
    },
    /// Keys of the current view.
    Help {
        /// First line shown.
        scroll: usize,
    },
    /// Diff before saving a config.
    Diff(DiffPopup),
    /// Leaving the editor with unsaved changes: `y` discards them.
    Discard {
        /// Document name.
        name: String,
    },
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
    /// Config documents.
    pub configs: ConfigsView,
    /// The open editor.
    pub editor: Option<EditorView>,
    /// Audit trail.
    pub audit: AuditView,
    /// Config validation and dry-run.
    pub tools: ConfigTools,
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
            configs: ConfigsView::default(),
            editor: None,
            audit: AuditView::default(),
            tools: ConfigTools::default(),
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
                self.now = now;
                if minute_changed || self.view() == ViewId::Workers {
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

    fn on_paste(&mut self, text: &str) {
        match &mut self.popup {
            Some(Popup::Prompt(p)) => p.input.push_str(&text.replace(['\n', '\r'], " ")),
            Some(Popup::Reason { input, .. }) => {
                input.insert_str(text.replace(['\n', '\r'], " "));
            }
            Some(_) => {}
            None => {
                if self.view() == ViewId::Editor
                    && let Some(ed) = self.editor.as_mut().filter(|e| !e.read_only)
                {
                    ed.textarea.insert_str(text);
                    ed.clear_problem(&self.theme);
                }
            }
        }
    }

    fn editor_input(&mut self, key: KeyEvent) {
        let Some(ed) = self.editor.as_mut() else {
            return;
        };
        if ed.read_only {
            let movement = matches!(
                key.code,
                KeyCode::Up
                    | KeyCode::Down
                    | KeyCode::Left
                    | KeyCode::Right
                    | KeyCode::PageUp
                    | KeyCode::PageDown
                    | KeyCode::Home
                    | KeyCode::End
            );
            if movement {
                ed.textarea.input(key);
            } else if key.code != KeyCode::Esc {
                self.flash(FlashLevel::Err, "read-only: the document cannot be edited");
            }
            return;
        }
        if ed.textarea.input(key) {
            ed.clear_problem(&self.theme);
        }
    }

    fn page(&self) -> isize {
        isize::try_from(self.size.1.saturating_sub(8).max(1)).unwrap_or(10)
    }

    /// Runs a bound command.
    pub fn exec(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Quit => vec![Effect::Quit],
            Command::Suspend => vec![Effect::Suspend],
            Command::Back => self.back(),
            Command::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            Command::CommandMode => {
                self.popup = Some(Popup::Prompt(Prompt::new(PromptMode::Command, "")));
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
                let current = self.filter_text().to_string();
                self.popup = Some(Popup::Prompt(Prompt::new(PromptMode::Filter, &current)));
                Vec::new()
            }
            Command::Refresh => self.load_view(self.view()),
            Command::Up => self.nav(-1),
            Command::Down => self.nav(1),
            Command::PageUp => self.nav(-self.page()),
            Command::PageDown => self.nav(self.page()),
            Command::Top => self.nav(isize::MIN),
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
                let next = match self.logs.filter.min_level.as_deref() {
                    None => Some("ERROR"),
                    Some("ERROR") => Some("WARN"),
                    Some("WARN") => Some("INFO"),
                    Some("INFO") => Some("DEBUG"),
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
                        self.logs.filter = LogFilter {
                            request_id: Some(id),
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
                    "time to escalation"
                } else {
                    "age"
                };
                self.flash(FlashLevel::Info, format!("sorted by {by}"));
                Vec::new()
            }
            Command::Verify => {
                self.audit.verifying = true;
                vec![Effect::Load(Load::Verify)]
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

    fn popup_key(&mut self, popup: Popup, key: KeyEvent) -> Vec<Effect> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match popup {
            Popup::Prompt(mut prompt) => match key.code {
                KeyCode::Esc => Vec::new(),
                _ if ctrl_c => Vec::new(),
                KeyCode::Enter => match prompt.mode {
                    PromptMode::Command => self.run_verb(prompt.input.trim()),
                    PromptMode::Filter => self.apply_filter(prompt.input.trim()),
                },
                KeyCode::Tab if prompt.mode == PromptMode::Command => {
                    prompt.complete();
                    self.popup = Some(Popup::Prompt(prompt));
                    Vec::new()
                }
                KeyCode::Backspace => {
                    prompt.input.pop();
                    prompt.refresh_candidates();
                    self.popup = Some(Popup::Prompt(prompt));
                    Vec::new()
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    prompt.input.push(c);
                    prompt.refresh_candidates();
                    self.popup = Some(Popup::Prompt(prompt));
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::Prompt(prompt));
                    Vec::new()
                }
            },
            Popup::Confirm { text, cmds } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(
                        FlashLevel::Info,
                        format!(
                            "{} …",
                            cmds.first().map(StoreCmd::verb).unwrap_or("working")
                        ),
                    );
                    vec![Effect::Run(cmds)]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.flash(FlashLevel::Info, "cancelled, nothing changed");
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                _ => {
                    self.popup = Some(Popup::Confirm { text, cmds });
                    Vec::new()
                }
            },
            Popup::Discard { name } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(
                        FlashLevel::Info,
                        format!("changes to {name} discarded, nothing saved"),
                    );
                    self.leave_view()
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Vec::new(),
                _ if ctrl_c => Vec::new(),
                _ => {
                    self.popup = Some(Popup::Discard { name });
                    Vec::new()
                }
            },
            Popup::Reason {
                title,
                mut input,
                error,
                targets,
            } => match key.code {
                KeyCode::Esc => {
                    self.flash(FlashLevel::Info, "reject cancelled, nothing changed");
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                KeyCode::Enter => {
                    let reason = input.lines().join(" ").trim().to_string();
                    if reason.is_empty() {
                        self.popup = Some(Popup::Reason {
                            title,
                            input,
                            error: Some("a reason is required".to_string()),
                            targets,
                        });
                        return Vec::new();
                    }
                    let cmds: Vec<StoreCmd> = targets
                        .iter()
                        .map(|a| StoreCmd::Decide {
                            approval_id: a.id,
                            request_id: a.request_id,
                            expected_version: a.version,
                            decision: Decision::Reject,
                            reason: Some(reason.clone()),
                        })
                        .collect();
                    if cmds.len() > 1 {
                        self.popup = Some(Popup::Confirm {
                            text: format!("{} selected — confirm reject (y/n)", cmds.len()),
                            cmds,
                        });
                        Vec::new()
                    } else {
                        vec![Effect::Run(cmds)]
                    }
                }
                _ => {
                    input.input(key);
                    self.popup = Some(Popup::Reason {
                        title,
                        input,
                        error,
                        targets,
                    });
                    Vec::new()
                }
            },
            Popup::Help { scroll } => {
                let scroll = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter => {
                        return Vec::new();
                    }
                    _ if ctrl_c => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => scroll,
                };
                self.popup = Some(Popup::Help { scroll });
                Vec::new()
            }
            Popup::Diff(mut diff) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(FlashLevel::Info, format!("saving {} …", diff.name));
                    vec![Effect::Run(diff.cmds)]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.flash(FlashLevel::Info, "save cancelled, nothing saved");
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                _ => {
                    match key.code {
                        KeyCode::Down | KeyCode::Char('j') => diff.scroll += 1,
                        KeyCode::Up | KeyCode::Char('k') => {
                            diff.scroll = diff.scroll.saturating_sub(1)
                        }
                        KeyCode::PageDown => diff.scroll += 10,
                        KeyCode::PageUp => diff.scroll = diff.scroll.saturating_sub(10),
                        _ => {}
                    }
                    self.popup = Some(Popup::Diff(diff));
                    Vec::new()
                }
            },
            Popup::Text {
                title,
                lines,
                scroll,
            } => {
                let scroll = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => return Vec::new(),
                    _ if ctrl_c => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => scroll,
                };
                self.popup = Some(Popup::Text {
                    title,
                    lines,
                    scroll,
                });
                Vec::new()
            }
        }
    }

    // ----- navigation -------------------------------------------------------------------

    fn go(&mut self, view: ViewId) -> Vec<Effect> {
        self.stack = if view == ViewId::Overview {
            vec![ViewId::Overview]
        } else {
            vec![ViewId::Overview, view]
        };
        self.load_view(view)
    }

    fn push(&mut self, view: ViewId) -> Vec<Effect> {
        if self.view() != view {
            self.stack.push(view);
        }
        self.load_view(view)
    }

    fn back(&mut self) -> Vec<Effect> {
        if !self.filter_text().is_empty() && self.view() != ViewId::Editor {
            return self.apply_filter("");
        }
        let marks = match self.view() {
            ViewId::Approvals => &mut self.approvals.list.marks,
            ViewId::Requests => &mut self.requests.list.marks,
            ViewId::Queues => &mut self.queues.jobs.marks,
            _ => &mut self.workers.list.marks,
        };
        if !marks.is_empty() {
            marks.clear();
            self.flash(FlashLevel::Info, "marks cleared");
            return Vec::new();
        }
        if let Some(ed) = self
            .editor
            .as_ref()
            .filter(|_| self.view() == ViewId::Editor)
            && !ed.read_only
            && ed.body() != ed.base_body
        {
            self.popup = Some(Popup::Discard {
                name: ed.name.clone(),
            });
            return Vec::new();
        }
        self.leave_view()
    }

    fn leave_view(&mut self) -> Vec<Effect> {
        if self.stack.len() > 1 {
            let left = self.stack.pop();
            if left == Some(ViewId::Editor) {
                self.editor = None;
            }
            return self.load_view(self.view());
        }
        Vec::new()
    }

    fn nav(&mut self, delta: isize) -> Vec<Effect> {
        let mut effects = Vec::new();
        fn step<T: Keyed>(list: &mut crate::tui::widgets::table::Listing<T>, delta: isize) {
            match delta {
                isize::MIN => list.top(),
                isize::MAX => list.bottom(),
                d => list.move_by(d),
            }
        }
        match self.view() {
            ViewId::Approvals => {
                let before = self.approvals.list.current().map(|a| a.request_id);
                step(&mut self.approvals.list, delta);
                if self.approvals.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.approvals_load(true));
                }
                let after = self.approvals.list.current().map(|a| a.request_id);
                if before != after {
                    effects.extend(self.approvals_detail());
                }
            }
            ViewId::Requests => {
                step(&mut self.requests.list, delta);
                if self.requests.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.requests_load(true));
                }
            }
            ViewId::Detail => {
                self.detail.scroll = match delta {
                    isize::MIN => 0,
                    isize::MAX => usize::MAX / 2,
                    d => self.detail.scroll.saturating_add_signed(d),
                };
                let max = self
                    .detail
                    .data
                    .as_ref()
                    .map(|d| d.timeline.len())
                    .unwrap_or(0);
                self.detail.scroll = self.detail.scroll.min(max.saturating_sub(1));
            }
            ViewId::Queues => {
                if self.queues.focus_jobs {
                    step(&mut self.queues.jobs, delta);
                    if self.queues.jobs.wants_more(MORE_MARGIN) {
                        effects.extend(self.jobs_load(true));
                    }
                } else {
                    let before = self.queues.stats.current().map(|q| q.queue.clone());
                    step(&mut self.queues.stats, delta);
                    if before != self.queues.stats.current().map(|q| q.queue.clone()) {
                        self.queues.jobs = Default::default();
                        effects.extend(self.jobs_load(false));
                    }
                }
            }
            ViewId::Logs => {
                let len = self.logs.rows.len();
                self.logs.scroll_back = match delta {
                    isize::MIN => len.saturating_sub(1),
                    isize::MAX => 0,
                    d => self
                        .logs
                        .scroll_back
                        .saturating_add_signed(-d)
                        .min(len.saturating_sub(1)),
                };
                if self.logs.scroll_back > 0 && self.logs.follow {
                    self.logs.follow = false;
                    self.flash(FlashLevel::Info, "follow off (f resumes)");
                }
            }
            ViewId::Workers => step(&mut self.workers.list, delta),
            ViewId::Operators => step(&mut self.operators.list, delta),
            ViewId::Configs => {
                if self.configs.focus_versions {
                    step(&mut self.configs.versions, delta);
                } else {
                    let before = self.configs.heads.current().map(|c| c.name.clone());
                    step(&mut self.configs.heads, delta);
                    if let Some(name) = self.configs.heads.current().map(|c| c.name.clone())
                        && before.as_ref() != Some(&name)
                    {
                        effects.push(Effect::Load(Load::ConfigVersions(name)));
                    }
                }
            }
            ViewId::Audit => {
                step(&mut self.audit.list, delta);
                if self.audit.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.audit_load(true));
                }
            }
            ViewId::Overview | ViewId::Editor => {}
        }
        effects
    }

    fn open(&mut self) -> Vec<Effect> {
        match self.view() {
            ViewId::Approvals => match self.approvals.list.current().map(|a| a.request_id) {
                Some(id) => self.open_detail(id),
                None => Vec::new(),
            },
            ViewId::Requests => match self.requests.list.current().map(|r| r.id) {
                Some(id) => self.open_detail(id),
                None => Vec::new(),
            },
            ViewId::Queues => {
                if self.queues.focus_jobs {
                    if let Some(id) = self.queues.jobs.current().and_then(|j| j.request_id) {
                        return self.open_detail(id);
                    }
                } else {
                    self.queues.focus_jobs = true;
                }
                Vec::new()
            }
            ViewId::Configs => self.edit_or_view(),
            ViewId::Audit => {
                if let Some(row) = self.audit.list.current() {
                    let mut lines = vec![
                        format!(
                            "#{}  {}  {} ({})",
                            row.id, row.action, row.actor, row.source
                        ),
                        format!("{} {}", row.entity, row.entity_id),
                        format!("at {}", crate::tui::views::stamp(row.at)),
                        format!("hash {}", row.hash),
                        format!("prev {}", row.prev_hash),
                        String::new(),
                        "before:".to_string(),
                    ];
                    lines.extend(json_lines(row.before.as_ref()));
                    lines.push("after:".to_string());
                    lines.extend(json_lines(row.after.as_ref()));
                    self.popup = Some(Popup::Text {
                        title: format!("audit #{}", row.id),
                        lines,
                        scroll: 0,
                    });
                }
                Vec::new()
            }
            ViewId::Overview => self.go(ViewId::Approvals),
            _ => Vec::new(),
        }
    }

    fn open_detail(&mut self, id: i64) -> Vec<Effect> {
        if self.detail.id != Some(id) {
            self.detail.data = None;
            self.detail.error = None;
        }
        self.detail.id = Some(id);
        self.detail.scroll = 0;
        self.push(ViewId::Detail)
    }

    // ----- commands on rows -------------------------------------------------------------

    fn approval_targets(&self) -> Vec<ApprovalRow> {
        match self.view() {
            ViewId::Approvals => self.approvals.list.targets().into_iter().cloned().collect(),
            ViewId::Detail => self
                .detail
                .data
                .as_ref()
                .and_then(|d| d.approvals.iter().find(|a| a.status == "pending"))
                .cloned()
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn confirm_or_run(
        &mut self,
        verb: &str,
        cmds: Vec<StoreCmd>,
        always_confirm: bool,
    ) -> Vec<Effect> {
        if cmds.len() > 1 {
            self.popup = Some(Popup::Confirm {
                text: format!("{} selected — confirm {verb} (y/n)", cmds.len()),
                cmds,
            });
            Vec::new()
        } else if always_confirm {
            let subject = cmds.first().map(StoreCmd::subject).unwrap_or_default();
            self.popup = Some(Popup::Confirm {
                text: format!("{verb} {subject} — confirm (y/n)"),
                cmds,
            });
            Vec::new()
        } else {
            vec![Effect::Run(cmds)]
        }
    }

    fn approve(&mut self) -> Vec<Effect> {
        let targets = self.approval_targets();
        if targets.is_empty() {
            self.flash(FlashLevel::Info, "nothing to approve here");
            return Vec::new();
        }
        let cmds = targets
            .iter()
            .map(|a| StoreCmd::Decide {
                approval_id: a.id,
                request_id: a.request_id,
                expected_version: a.version,
                decision: Decision::Approve,
                reason: None,
            })
            .collect();
        self.confirm_or_run("approve", cmds, false)
    }

    fn reject(&mut self) -> Vec<Effect> {
        let targets = self.approval_targets();
        if targets.is_empty() {
            self.flash(FlashLevel::Info, "nothing to reject here");
            return Vec::new();
        }
        let title = if targets.len() == 1 {
            format!(
                "reject request {} — reason (required)",
                targets[0].request_id
            )
        } else {
            format!("reject {} selected — reason (required)", targets.len())
        };
        let mut input = TextArea::default();
        input.set_cursor_line_style(ratatui::style::Style::default());
        input.set_placeholder_text("why? (Enter submits, Esc cancels)");
        self.popup = Some(Popup::Reason {
            title,
            input: Box::new(input),
            error: None,
            targets,
        });
        Vec::new()
    }

    fn retry(&mut self) -> Vec<Effect> {
        let cmds: Vec<StoreCmd> = match self.view() {
            ViewId::Requests => self
                .requests
                .list
                .targets()
                .into_iter()
                .map(|r| StoreCmd::RetryRequest { request_id: r.id })
                .collect(),
            ViewId::Detail => self
                .detail
                .id
                .map(|id| StoreCmd::RetryRequest { request_id: id })
                .into_iter()
                .collect(),
            ViewId::Queues if self.queues.focus_jobs => self
                .queues
                .jobs
                .targets()
                .into_iter()
                .map(|j| StoreCmd::RetryJob { job_id: j.id })
                .collect(),
            ViewId::Queues => {
                self.flash(FlashLevel::Info, "tab to the jobs pane to retry a job");
                return Vec::new();
            }
            _ => Vec::new(),
        };
        if cmds.is_empty() {
            self.flash(FlashLevel::Info, "nothing to retry here");
            return Vec::new();
        }
        self.confirm_or_run("retry", cmds, false)
    }

    fn cancel(&mut self) -> Vec<Effect> {
        let ids: Vec<i64> = match self.view() {
            ViewId::Requests => self
                .requests
                .list
                .targets()
                .into_iter()
                .map(|r| r.id)
                .collect(),
            ViewId::Detail => self.detail.id.into_iter().collect(),
            _ => Vec::new(),
        };
        if ids.is_empty() {
            self.flash(FlashLevel::Info, "nothing to cancel here");
            return Vec::new();
        }
        let reason = Some(format!(
            "cancelled in the console by {}",
            self.operator.user
        ));
        let cmds = ids
            .into_iter()
            .map(|id| StoreCmd::CancelRequest {
                request_id: id,
                reason: reason.clone(),
            })
            .collect();
        self.confirm_or_run("cancel", cmds, true)
    }

    fn toggle_pause(&mut self) -> Vec<Effect> {
        let Some(q) = self.queues.stats.current() else {
            self.flash(FlashLevel::Info, "no queue selected");
            return Vec::new();
        };
        vec![Effect::Run(vec![StoreCmd::SetQueuePaused {
            queue: q.queue.clone(),
            paused: !q.paused,
        }])]
    }

    fn drain(&mut self) -> Vec<Effect> {
        let Some(w) = self.workers.list.current() else {
            self.flash(FlashLevel::Info, "no worker selected");
            return Vec::new();
        };
        let cmds = vec![StoreCmd::DrainWorker {
            worker_id: w.id.clone(),
        }];
        self.confirm_or_run("drain", cmds, true)
    }

    // ----- configs and the editor ---------------------------------------------------------

    fn edit(&mut self) -> Vec<Effect> {
        if self.view() != ViewId::Configs {
            self.flash(
                FlashLevel::Info,
                "e edits configuration documents (:configs)",
            );
            return Vec::new();
        }
        self.edit_or_view()
    }

    fn edit_or_view(&mut self) -> Vec<Effect> {
        let Some(head) = self.configs.heads.current().cloned() else {
            self.flash(FlashLevel::Info, "no document selected");
            return Vec::new();
        };
        self.open_editor(
            &head,
            &head.body,
            head.version,
            format!("edited in the console by {}", self.operator.user),
        )
    }

    fn open_editor(
        &mut self,
        head: &ConfigVersion,
        body: &str,
        base_version: i64,
        comment: String,
    ) -> Vec<Effect> {
        let view_only = !Command::Save.allowed_for(&self.role, self.read_only);
        let mut ed = EditorView::new(head, base_version, view_only, comment, &self.theme);
        ed.textarea = EditorView::textarea_for(body, &self.theme);
        self.editor = Some(ed);
        self.stack.push(ViewId::Editor);
        Vec::new()
    }

    fn rollback(&mut self) -> Vec<Effect> {
        if !self.configs.focus_versions {
            self.flash(
                FlashLevel::Info,
                "tab to the versions pane and pick the version to roll back to",
            );
            return Vec::new();
        }
        let (Some(old), Some(head)) = (
            self.configs.versions.current().cloned(),
            self.configs.heads.current().cloned(),
        ) else {
            self.flash(FlashLevel::Info, "no version selected");
            return Vec::new();
        };
        if old.name != head.name {
            self.flash(FlashLevel::Info, "versions are still loading");
            return Vec::new();
        }
        let comment = format!(
            "rollback to version {} by {}",
            old.version, self.operator.user
        );
        let mut effects = self.open_editor(&head, &old.body, head.version, comment);
        effects.extend(self.editor_save());
        effects
    }

    fn editor_save(&mut self) -> Vec<Effect> {
        let theme = self.theme.clone();
        let check = self.tools.check;
        let Some(ed) = self.editor.as_mut() else {
            return Vec::new();
        };
        let body = ed.body();
        match check(&ed.name, &body) {
            Err(problems) => {
                let more = if problems.len() > 1 {
                    format!(" (+{} more)", problems.len() - 1)
                } else {
                    String::new()
                };
                let text = match problems.first() {
                    Some(p) => format!("{}{more} — nothing saved", p.short()),
                    None => "invalid document — nothing saved".to_string(),
                };
                if let Some(first) = problems.into_iter().next() {
                    ed.show_problem(first, &theme);
                }
                self.flash(FlashLevel::Err, text);
                Vec::new()
            }
            Ok(()) => {
                if body == ed.base_body {
                    self.flash(FlashLevel::Info, "no changes to save");
                    return Vec::new();
                }
                let lines = line_diff(&ed.base_body, &body);
                let cmds = vec![StoreCmd::SaveConfig {
                    kind: ed.kind.clone(),
                    name: ed.name.clone(),
                    body,
                    comment: ed.comment.clone(),
                    expected_version: ed.base_version,
                }];
                self.popup = Some(Popup::Diff(DiffPopup {
                    name: ed.name.clone(),
                    title: format!(
                        "save {} as version {} — confirm (y/n)",
                        ed.name,
                        ed.base_version + 1
                    ),
                    lines,
                    scroll: 0,
                    cmds,
                }));
                Vec::new()
            }
        }
    }

    fn dry_run(&mut self) -> Vec<Effect> {
        let Some(ed) = self.editor.as_ref() else {
            return Vec::new();
        };
        if ed.kind != "workflow" {
            self.flash(
                FlashLevel::Info,
                format!("dry-run works on workflows; {} is a {}", ed.name, ed.kind),
            );
            return Vec::new();
        }
        let body = ed.body();
        match (self.tools.dry_run)(&ed.name, &body) {
            Ok(lines) => {
                self.popup = Some(Popup::Text {
                    title: format!("dry-run of {} on a sample request", ed.name),
                    lines,
                    scroll: 0,
                });
            }
            Err(problems) => {
                let text = problems
                    .first()
                    .map(|p| format!("dry-run: {}", p.short()))
                    .unwrap_or_else(|| "dry-run failed".to_string());
                self.flash(FlashLevel::Err, text);
            }
        }
        Vec::new()
    }

    // ----- command mode and filters -------------------------------------------------------

    fn run_verb(&mut self, line: &str) -> Vec<Effect> {
        let line = line.trim_start_matches(':');
        let mut words = line.split_whitespace();
        let Some(word) = words.next() else {
            return Vec::new();
        };
        let Some(verb) = command::find_verb(word) else {
            self.flash(
                FlashLevel::Err,
                format!("unknown command :{word} (Tab completes, :help lists keys)"),
            );
            return Vec::new();
        };
        match verb.name {
            "overview" => self.go(ViewId::Overview),
            "approvals" => self.go(ViewId::Approvals),
            "requests" => self.go(ViewId::Requests),
            "queues" => self.go(ViewId::Queues),
            "logs" => self.go(ViewId::Logs),
            "workers" => self.go(ViewId::Workers),
            "configs" => self.go(ViewId::Configs),
            "audit" => self.go(ViewId::Audit),
            "operators" => self.go(ViewId::Operators),
            "help" => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            "quit" => vec![Effect::Quit],
            "theme" => match words.next() {
                Some(name) => vec![Effect::LoadTheme(name.to_string())],
                None => {
                    let names: Vec<&str> = crate::tui::theme::BUILTIN_THEMES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect();
                    self.flash(
                        FlashLevel::Info,
                        format!("theme {} (built-in: {})", self.theme.name, names.join(", ")),
                    );
                    Vec::new()
                }
            },
            other => {
                self.flash(FlashLevel::Err, format!("unknown command :{other}"));
                Vec::new()
            }
        }
    }

    fn filter_text(&self) -> &str {
        match self.view() {
            ViewId::Approvals => &self.approvals.filter_text,
            ViewId::Requests => &self.requests.filter_text,
            ViewId::Queues => &self.queues.filter_text,
            ViewId::Logs => &self.logs.filter_text,
            ViewId::Workers => &self.workers.filter_text,
            ViewId::Operators => &self.operators.filter_text,
            ViewId::Configs => &self.configs.filter_text,
            ViewId::Audit => &self.audit.filter_text,
            ViewId::Overview | ViewId::Detail | ViewId::Editor => "",
        }
    }

    /// Applies a `/` filter to the current view: plain words and `field:value` pairs.
    pub fn apply_filter(&mut self, text: &str) -> Vec<Effect> {
        let view = self.view();
        let fields: &[&str] = match view {
            ViewId::Requests => &["state", "workflow"],
            ViewId::Queues => &["queue", "state", "request"],
            ViewId::Logs => &["level", "request", "worker"],
            ViewId::Audit => &["actor", "entity", "id", "action"],
            _ => &[],
        };
        let parsed = match parse_filter(text, fields) {
            Ok(p) => p,
            Err(e) => {
                self.flash(FlashLevel::Err, format!("{e} — filter unchanged"));
                return Vec::new();
            }
        };
        let get = |name: &str| {
            parsed
                .fields
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
        };
        let free = parsed.text.clone();
        match view {
            ViewId::Approvals => {
                self.approvals.filter_text = text.to_string();
                self.approvals.list = Default::default();
                self.approvals_load(false)
            }
            ViewId::Requests => {
                self.requests.filter = RequestFilter {
                    state: get("state"),
                    workflow: get("workflow"),
                    text: free,
                };
                self.requests.filter_text = text.to_string();
                self.requests.list = Default::default();
                self.requests_load(false)
            }
            ViewId::Queues => {
                let state = match get("state") {
                    Some(s) => match parse_job_state(&s) {
                        Some(js) => Some(js),
                        None => {
                            self.flash(FlashLevel::Err, format!("state:{s} is not a job state (available, running, retrying, completed, dead, cancelled) — filter unchanged"));
                            return Vec::new();
                        }
                    },
                    None => None,
                };
                let request_id = match get("request") {
                    Some(r) => match r.parse::<i64>() {
                        Ok(id) => Some(id),
                        Err(_) => {
                            self.flash(
                                FlashLevel::Err,
                                format!("request:{r} is not a request id — filter unchanged"),
                            );
                            return Vec::new();
                        }
                    },
                    None => None,
                };
                if let Some(queue) = get("queue")
                    && let Some(i) = self.queues.stats.rows.iter().position(|q| q.queue == queue)
                {
                    self.queues.stats.selected = i;
                }
                self.queues.filter = JobFilter {
                    queue: get("queue"),
                    state,
                    request_id,
                };
                self.queues.filter_text = text.to_string();
                self.queues.jobs = Default::default();
                self.queues.focus_jobs = true;
                self.jobs_load(false)
            }
            ViewId::Logs => {
                let request_id = match get("request") {
                    Some(r) => match r.parse::<i64>() {
                        Ok(id) => Some(id),
                        Err(_) => {
                            self.flash(
                                FlashLevel::Err,
                                format!("request:{r} is not a request id — filter unchanged"),
                            );
                            return Vec::new();
                        }
                    },
                    None => None,
                };
                let level = get("level").map(|l| l.to_ascii_uppercase());
                if let Some(l) = &level
                    && !["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&l.as_str())
                {
                    {
                        self.flash(FlashLevel::Err, format!("level:{l} is not ERROR, WARN, INFO, DEBUG or TRACE — filter unchanged"));
                        return Vec::new();
                    }
                }
                self.logs.filter = LogFilter {
                    min_level: level.or(self.logs.filter.min_level.clone()),
                    request_id,
                    worker: get("worker"),
                    text: free,
                };
                self.logs.filter_text = text.to_string();
                self.reset_logs()
            }
            ViewId::Workers => {
                self.workers.filter_text = text.to_string();
                self.workers.apply_filter();
                Vec::new()
            }
            ViewId::Operators => {
                self.operators.filter_text = text.to_string();
                self.operators.apply_filter();
                Vec::new()
            }
            ViewId::Configs => {
                self.configs.filter_text = text.to_string();
                self.configs.apply_filter();
                match self.configs.heads.current().map(|c| c.name.clone()) {
                    Some(name) => vec![Effect::Load(Load::ConfigVersions(name))],
                    None => Vec::new(),
                }
            }
            ViewId::Audit => {
                self.audit.filter = AuditFilter {
                    actor: get("actor"),
                    entity: get("entity"),
                    entity_id: get("id"),
                    action: get("action").or(free),
                };
                self.audit.filter_text = text.to_string();
                self.audit.list = Default::default();
                self.audit_load(false)
            }
            ViewId::Overview | ViewId::Detail | ViewId::Editor => Vec::new(),
        }
    }

    // ----- loads --------------------------------------------------------------------------

    fn load_view(&mut self, view: ViewId) -> Vec<Effect> {
        match view {
            ViewId::Overview => vec![Effect::Load(Load::Overview)],
            ViewId::Approvals => {
                let mut e = self.approvals_load(false);
                e.extend(self.approvals_detail());
                e
            }
            ViewId::Requests => self.requests_load(false),
            ViewId::Detail => match self.detail.id {
                Some(id) => vec![Effect::Load(Load::Detail(id))],
                None => Vec::new(),
            },
            ViewId::Queues => {
                let mut e = vec![Effect::Load(Load::Queues)];
                e.extend(self.jobs_load(false));
                e
            }
            ViewId::Logs => {
                if self.logs.rows.is_empty() {
                    self.reset_logs()
                } else {
                    self.logs_tail()
                }
            }
            ViewId::Workers => vec![Effect::Load(Load::Workers)],
            ViewId::Operators => vec![Effect::Load(Load::Operators)],
            ViewId::Configs => {
                let mut e = vec![Effect::Load(Load::ConfigHeads)];
                if let Some(name) = self.configs.heads.current().map(|c| c.name.clone()) {
                    e.push(Effect::Load(Load::ConfigVersions(name)));
                }
                e
            }
            ViewId::Editor => Vec::new(),
            ViewId::Audit => {
                let mut e = self.audit_load(false);
                if self.audit.verdict.is_none() {
                    self.audit.verifying = true;
                    e.push(Effect::Load(Load::Verify));
                }
                e
            }
        }
    }

    /// Reloads what the view shows after a change signal (logs append, lists keep their length).
    fn refresh_view(&mut self, view: ViewId) -> Vec<Effect> {
        match view {
            ViewId::Logs => self.logs_tail(),
            ViewId::Audit => self.audit_load(false),
            ViewId::Editor => vec![Effect::Load(Load::ConfigHeads)],
            other => self.load_view(other),
        }
    }

    fn reload_limit(loaded: usize) -> u32 {
        // Keep what is on screen after a refresh, within reason.
        u32::try_from(loaded.clamp(PAGE as usize, 2_000)).unwrap_or(PAGE)
    }

    fn approvals_load(&mut self, more: bool) -> Vec<Effect> {
        let list = &mut self.approvals.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.loading = true;
        let text = Some(self.approvals.filter_text.trim().to_string()).filter(|t| !t.is_empty());
        vec![Effect::Load(Load::Approvals { text, after, limit })]
    }

    fn approvals_detail(&mut self) -> Vec<Effect> {
        match self.approvals.list.current().map(|a| a.request_id) {
            Some(id) => {
                if self.detail.id != Some(id) {
                    self.detail.data = None;
                    self.detail.error = None;
                }
                self.detail.id = Some(id);
                vec![Effect::Load(Load::Detail(id))]
            }
            None => Vec::new(),
        }
    }

    fn requests_load(&mut self, more: bool) -> Vec<Effect> {
        let list = &mut self.requests.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.loading = true;
        vec![Effect::Load(Load::Requests {
            filter: self.requests.filter.clone(),
            after,
            limit,
        })]
    }

    fn jobs_load(&mut self, more: bool) -> Vec<Effect> {
        let mut filter = self.queues.filter.clone();
        if filter.queue.is_none() {
            filter.queue = self.queues.stats.current().map(|q| q.queue.clone());
        }
        let list = &mut self.queues.jobs;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.loading = true;
        vec![Effect::Load(Load::Jobs {
            filter,
            after,
            limit,
        })]
    }

    fn audit_load(&mut self, more: bool) -> Vec<Effect> {
        let list = &mut self.audit.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.loading = true;
        vec![Effect::Load(Load::Audit {
            filter: self.audit.filter.clone(),
            after,
            limit,
        })]
    }

    fn reset_logs(&mut self) -> Vec<Effect> {
        self.logs.rows.clear();
        self.logs.scroll_back = 0;
        self.logs.loading = true;
        vec![Effect::Load(Load::Logs {
            after_id: None,
            filter: self.logs.filter.clone(),
            limit: 500,
        })]
    }

    fn logs_tail(&mut self) -> Vec<Effect> {
        match self.logs.rows.back().map(|r| r.id) {
            Some(last) => vec![Effect::Load(Load::Logs {
                after_id: Some(last),
                filter: self.logs.filter.clone(),
                limit: 1_000,
            })],
            None => self.reset_logs(),
        }
    }

    fn on_loaded(&mut self, loaded: Loaded) -> Vec<Effect> {
        let mut effects = Vec::new();
        match loaded {
            Loaded::Overview(r) => match r {
                Ok(o) => {
                    self.overview.data = Some(o);
                    self.overview.error = None;
                }
                Err(e) => self.overview.error = Some(e),
            },
            Loaded::Approvals { append, result } => {
                let before = self.approvals.list.current().map(|a| a.request_id);
                match result {
                    Ok(page) if append => self.approvals.list.append(page.rows, page.next),
                    Ok(page) => self.approvals.list.replace(page.rows, page.next),
                    Err(e) => self.approvals.list.failed(e),
                }
                if self.approvals.by_escalation {
                    self.approvals.apply_sort();
                }
                let after = self.approvals.list.current().map(|a| a.request_id);
                if before != after && self.view() == ViewId::Approvals {
                    effects.extend(self.approvals_detail());
                }
            }
            Loaded::Requests { append, result } => match result {
                Ok(page) if append => self.requests.list.append(page.rows, page.next),
                Ok(page) => self.requests.list.replace(page.rows, page.next),
                Err(e) => self.requests.list.failed(e),
            },
            Loaded::Detail { id, result } => {
                if self.detail.id == Some(id) {
                    match result {
                        Ok(d) => {
                            self.detail.data = Some(d);
                            self.detail.error = None;
                        }
                        Err(e) => self.detail.error = Some(e),
                    }
                }
            }
            Loaded::Queues(r) => {
                let before = self.queues.stats.current().map(|q| q.queue.clone());
                match r {
                    Ok(rows) => self.queues.stats.replace(rows, None),
                    Err(e) => self.queues.stats.failed(e),
                }
                if before != self.queues.stats.current().map(|q| q.queue.clone()) {
                    self.queues.jobs = Default::default();
                    effects.extend(self.jobs_load(false));
                }
            }
            Loaded::Jobs { append, result } => match result {
                Ok(page) if append => self.queues.jobs.append(page.rows, page.next),
                Ok(page) => self.queues.jobs.replace(page.rows, page.next),
                Err(e) => self.queues.jobs.failed(e),
            },
            Loaded::Logs { reset, result } => {
                self.logs.loading = false;
                self.logs.loaded = true;
                match result {
                    Ok(rows) => {
                        self.logs.error = None;
                        if reset {
                            self.logs.rows = VecDeque::from(rows);
                        } else {
                            let last = self.logs.rows.back().map(|r| r.id).unwrap_or(i64::MIN);
                            let added = rows.into_iter().filter(|r| r.id > last);
                            let before = self.logs.rows.len();
                            self.logs.rows.extend(added);
                            if !self.logs.follow {
                                // Keep the same lines on screen while the operator reads.
                                self.logs.scroll_back += self.logs.rows.len() - before;
                            }
                        }
                        while self.logs.rows.len() > LOG_CAP {
                            self.logs.rows.pop_front();
                        }
                        self.logs.scroll_back = self
                            .logs
                            .scroll_back
                            .min(self.logs.rows.len().saturating_sub(1));
                    }
                    Err(e) => self.logs.error = Some(e),
                }
            }
            Loaded::Workers(r) => match r {
                Ok(rows) => {
                    self.workers.all = rows;
                    self.workers.apply_filter();
                }
                Err(e) => self.workers.list.failed(e),
            },
            Loaded::Operators(r) => match r {
                Ok((operators, keys)) => self.operators.load(operators, keys),
                Err(e) => self.operators.list.failed(e),
            },
            Loaded::ConfigHeads(r) => {
                let before = self.configs.heads.current().map(|c| c.name.clone());
                match r {
                    Ok(rows) => {
                        self.configs.all_heads = rows;
                        self.configs.apply_filter();
                    }
                    Err(e) => self.configs.heads.failed(e),
                }
                let now = self.configs.heads.current().map(|c| c.name.clone());
                if let Some(name) = now
                    && (before.as_ref() != Some(&name)
                        || self.configs.versions_of.as_ref() != Some(&name)
                        || self.view() == ViewId::Configs)
                {
                    effects.push(Effect::Load(Load::ConfigVersions(name)));
                }
            }
            Loaded::ConfigVersions { name, result } => {
                if self.configs.heads.current().map(|c| &c.name) == Some(&name) {
                    if self.configs.versions_of.as_ref() != Some(&name) {
                        self.configs.versions = Default::default();
                    }
                    self.configs.versions_of = Some(name);
                    match result {
                        Ok(rows) => self.configs.versions.replace(rows, None),
                        Err(e) => self.configs.versions.failed(e),
                    }
                }
            }
            Loaded::Audit { append, result } => match result {
                Ok(page) if append => self.audit.list.append(page.rows, page.next),
                Ok(page) => self.audit.list.replace(page.rows, page.next),
                Err(e) => self.audit.list.failed(e),
            },
            Loaded::Verdict(r) => {
                self.audit.verifying = false;
                self.audit.verdict = Some(r);
            }
        }
        effects
    }

    fn on_outcome(&mut self, outcome: Outcome) -> Vec<Effect> {
        let total = outcome.results.len();
        let failures: Vec<(&StoreCmd, &CommandError)> = outcome
            .results
            .iter()
            .filter_map(|(c, r)| r.as_ref().err().map(|e| (c, e)))
            .collect();
        // Saved configs move the editor's base forward.
        for (cmd, result) in &outcome.results {
            if let (StoreCmd::SaveConfig { body, .. }, Ok(Done::Config(v))) = (cmd, result)
                && let Some(ed) = self.editor.as_mut().filter(|e| e.name == v.name)
            {
                ed.base_version = v.version;
                ed.base_body = body.clone();
                ed.kind = v.kind.clone();
            }
        }
        // Successful rows leave the marks.
        for (cmd, result) in &outcome.results {
            if result.is_ok() {
                match cmd {
                    StoreCmd::Decide { approval_id, .. } => {
                        self.approvals.list.marks.remove(&approval_id.to_string());
                    }
                    StoreCmd::RetryRequest { request_id }
                    | StoreCmd::CancelRequest { request_id, .. } => {
                        self.requests.list.marks.remove(&request_id.to_string());
                    }
                    StoreCmd::RetryJob { job_id } => {
                        self.queues.jobs.marks.remove(&job_id.to_string());
                    }
                    _ => {}
                }
            }
        }
        let text = if total == 1 {
            match &outcome.results[0] {
                (cmd, Ok(done)) => success_text(cmd, done),
                (cmd, Err(e)) => failure_text(cmd, e),
            }
        } else {
            let verb = outcome
                .results
                .first()
                .map(|(c, _)| c.verb())
                .unwrap_or("done");
            let ok = total - failures.len();
            let mut text = format!("{verb} {ok} of {total} selected");
            if let Some((cmd, e)) = failures.first() {
                text.push_str("; ");
                text.push_str(&failure_text(cmd, e));
                if failures.len() > 1 {
                    text.push_str(&format!(" (+{} more failed)", failures.len() - 1));
                }
            }
            text
        };
        let level = if failures.is_empty() {
            FlashLevel::Ok
        } else {
            FlashLevel::Err
        };
        self.flash(level, text);
        self.load_view(self.view())
    }

    /// The theme role a request state is drawn with.
    pub fn role_for_state(state: &str) -> Role {
        role_for_state(state)
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

fn success_text(cmd: &StoreCmd, done: &Done) -> String {
    match (cmd, done) {
        (StoreCmd::SaveConfig { .. }, Done::Config(v)) => {
            format!("saved {} {} version {}", v.kind, v.name, v.version)
        }
        (StoreCmd::Decide { .. }, Done::Approval(a)) if a.status == "pending" => {
            format!(
                "{} (stage {} still needs more approvers)",
                cmd.success_text(),
                a.stage_name
            )
        }
        _ => cmd.success_text(),
    }
}

/// The flash text for a failed command; conflicts say who decided and when.
pub fn failure_text(cmd: &StoreCmd, error: &CommandError) -> String {
    match error {
        CommandError::Conflict {
            entity,
            id,
            changed_by,
            changed_at,
            what,
        } => match cmd {
            StoreCmd::Decide { request_id, .. } => format!(
                "request {request_id}: already decided by {changed_by} at {changed_at} ({what})"
            ),
            StoreCmd::SaveConfig { name, .. } => format!(
                "config {name}: {what} — saved by {changed_by} at {changed_at}; nothing saved, reopen to merge"
            ),
            _ => format!("{entity} {id} was changed by {changed_by} at {changed_at}: {what}"),
        },
        CommandError::ReadOnly => format!("{}: the store is open read-only", cmd.subject()),
        CommandError::Other(message) => format!("{} failed: {message}", cmd.subject()),
    }
}

/// A parsed `/` filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedFilter {
    /// `field:value` pairs, in order.
    pub fields: Vec<(String, String)>,
    /// The remaining words joined by spaces, if any.
    pub text: Option<String>,
}

/// Splits a filter into known `field:value` pairs and free text; an unknown field is an error
/// naming the fields this view knows.
pub fn parse_filter(text: &str, fields: &[&str]) -> Result<ParsedFilter, String> {
    let mut out = ParsedFilter::default();
    let mut words = Vec::new();
    for token in text.split_whitespace() {
        match token.split_once(':') {
            Some((field, value))
                if !field.is_empty()
                    && !value.starts_with("//")
                    && field.chars().all(|c| c.is_ascii_alphabetic() || c == '_') =>
            {
                if !fields.contains(&field) {
                    return Err(if fields.is_empty() {
                        format!("unknown filter field {field:?}: this view filters by text only")
                    } else {
                        format!(
                            "unknown filter field {field:?} (known: {})",
                            fields.join(", ")
                        )
                    });
                }
                if value.is_empty() {
                    return Err(format!(
                        "filter field {field:?} needs a value ({field}:VALUE)"
                    ));
                }
                out.fields.push((field.to_string(), value.to_string()));
            }
            _ => words.push(token),
        }
    }
    if !words.is_empty() {
        out.text = Some(words.join(" "));
    }
    Ok(out)
}

fn parse_job_state(s: &str) -> Option<JobState> {
    [
        JobState::Available,
        JobState::Running,
        JobState::Retrying,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ]
    .into_iter()
    .find(|j| j.name() == s)
}

fn json_lines(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        None => vec!["  (none)".to_string()],
        Some(v) => serde_json::to_string_pretty(v)
            .unwrap_or_else(|_| v.to_string())
            .lines()
            .map(|l| format!("  {l}"))
            .collect(),
    }
}

/// Moves a text area's cursor to a 1-based line and column.
pub fn jump_to(textarea: &mut TextArea<'_>, line: usize, column: usize) {
    let row = u16::try_from(line.saturating_sub(1)).unwrap_or(u16::MAX);
    let col = u16::try_from(column.saturating_sub(1)).unwrap_or(u16::MAX);
    textarea.move_cursor(CursorMove::Jump(row, col));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let f = parse_filter(
            "state:failed workflow:x alice smith",
            &["state", "workflow"],
        )
        .expect("ok");
        assert_eq!(
            f.fields,
            vec![
                ("state".into(), "failed".into()),
                ("workflow".into(), "x".into())
            ]
        );
        assert_eq!(f.text.as_deref(), Some("alice smith"));
        let e = parse_filter("colour:red", &["state"]).expect_err("unknown field");
        assert!(
            e.contains("\"colour\"") && e.contains("known: state"),
            "{e}"
        );
        assert!(parse_filter("state:", &["state"]).is_err());
        // Not a field: URLs and times stay free text.
        let f = parse_filter("http://x 10:30", &["state"]).expect("ok");
        assert_eq!(f.text.as_deref(), Some("http://x 10:30"));
        assert_eq!(parse_filter("", &[]).expect("ok"), ParsedFilter::default());
    }
}
