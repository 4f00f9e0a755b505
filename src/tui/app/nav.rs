//! Moving around: the view stack (go, push, back, leave), the selection in each view, and
//! Enter (open a request, or describe the selected timeline entry, job, audit row or log line).

use super::*;

impl AppState {
    // ----- navigation -------------------------------------------------------------------

    /// Puts back the log filter a request-scoped log view replaced.
    pub(super) fn restore_log_scope(&mut self) {
        if let Some((filter, text)) = self.logs.saved.take() {
            self.logs.filter = filter;
            self.logs.filter_text = text;
            self.logs.rows.clear();
            self.logs.scroll_back = 0;
        }
    }

    pub(super) fn go(&mut self, view: ViewId) -> Vec<Effect> {
        if view == ViewId::Logs {
            self.restore_log_scope();
        }
        self.stack = if view == ViewId::Overview {
            vec![ViewId::Overview]
        } else {
            vec![ViewId::Overview, view]
        };
        self.load_view(view)
    }

    pub(super) fn push(&mut self, view: ViewId) -> Vec<Effect> {
        if self.view() != view {
            self.stack.push(view);
        }
        self.load_view(view)
    }

    pub(super) fn back(&mut self) -> Vec<Effect> {
        let scoped_logs = self.view() == ViewId::Logs && self.logs.saved.is_some();
        if !self.filter_text().is_empty() && self.view() != ViewId::Editor && !scoped_logs {
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
        if let Some(name) = self.unsaved_editor() {
            self.popup = Some(Popup::Discard { name, quit: false });
            return Vec::new();
        }
        self.leave_view()
    }

    /// The name of the document open in the editor with unsaved changes, if any.
    pub(super) fn unsaved_editor(&self) -> Option<String> {
        self.editor
            .as_ref()
            .filter(|ed| !ed.read_only && ed.body() != ed.base_body)
            .map(|ed| ed.name.clone())
    }

    pub(super) fn leave_view(&mut self) -> Vec<Effect> {
        if self.stack.len() > 1 {
            let left = self.stack.pop();
            if left == Some(ViewId::Editor) {
                self.editor = None;
            }
            if left == Some(ViewId::Logs) {
                self.restore_log_scope();
            }
            return self.load_view(self.view());
        }
        Vec::new()
    }

    pub(super) fn nav(&mut self, delta: isize) -> Vec<Effect> {
        let mut effects = Vec::new();
        let height = self.list_height();
        fn step_in<T: Keyed>(
            list: &mut crate::tui::widgets::table::Listing<T>,
            delta: isize,
            height: usize,
        ) {
            match delta {
                isize::MIN => list.top(),
                isize::MAX => list.bottom(),
                d => list.move_by(d),
            }
            list.keep_visible(height);
        }

        match self.view() {
            ViewId::Approvals => {
                let before = self.approvals.list.current().map(|a| a.request_id);
                step_in(&mut self.approvals.list, delta, height);
                if self.approvals.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.approvals_load(true));
                }
                let after = self.approvals.list.current().map(|a| a.request_id);
                if before != after {
                    effects.extend(self.approvals_detail());
                }
            }
            ViewId::Requests => {
                step_in(&mut self.requests.list, delta, height);
                if self.requests.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.requests_load(true));
                }
            }
            ViewId::Detail if self.detail.focus_info => {
                self.detail.info_scroll = match delta {
                    isize::MIN => 0,
                    isize::MAX => usize::from(u16::MAX),
                    d => self.detail.info_scroll.saturating_add_signed(d),
                }
                .min(usize::from(u16::MAX));
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
                    step_in(&mut self.queues.jobs, delta, height);
                    if self.queues.jobs.wants_more(MORE_MARGIN) {
                        effects.extend(self.jobs_load(true));
                    }
                } else {
                    let before = self.queues.stats.current().map(|q| q.queue.clone());
                    step_in(&mut self.queues.stats, delta, height);
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
            ViewId::Workers => step_in(&mut self.workers.list, delta, height),
            ViewId::Operators => step_in(&mut self.operators.list, delta, height),
            ViewId::Quarantine => step_in(&mut self.quarantine.list, delta, height),
            ViewId::Mailboxes => step_in(&mut self.mailboxes.list, delta, height),
            ViewId::Delegations => step_in(&mut self.delegations.list, delta, height),
            ViewId::Configs => {
                if self.configs.focus_versions {
                    step_in(&mut self.configs.versions, delta, height);
                } else {
                    let before = self.configs.heads.current().map(|c| c.name.clone());
                    step_in(&mut self.configs.heads, delta, height);
                    if let Some(name) = self.configs.heads.current().map(|c| c.name.clone())
                        && before.as_ref() != Some(&name)
                    {
                        effects.push(Effect::Load(Load::ConfigVersions(name)));
                    }
                }
            }
            ViewId::Audit => {
                step_in(&mut self.audit.list, delta, height);
                if self.audit.list.wants_more(MORE_MARGIN) {
                    effects.extend(self.audit_load(true));
                }
            }
            ViewId::Overview | ViewId::Editor => {}
        }
        effects
    }

    pub(super) fn open(&mut self) -> Vec<Effect> {
        use crate::tui::widgets::describe;
        let tz = self.tz;
        let described = match self.view() {
            ViewId::Approvals => {
                return match self.approvals.list.current().map(|a| a.request_id) {
                    Some(id) => self.open_detail(id),
                    None => Vec::new(),
                };
            }
            ViewId::Requests => {
                return match self.requests.list.current().map(|r| r.id) {
                    Some(id) => self.open_detail(id),
                    None => Vec::new(),
                };
            }
            ViewId::Queues if !self.queues.focus_jobs => {
                self.queues.focus_jobs = true;
                return Vec::new();
            }
            ViewId::Queues => self
                .queues
                .jobs
                .current()
                .map(|j| (format!("job #{}", j.id), describe::job(j, tz))),
            ViewId::Configs => return self.edit_or_view(),
            ViewId::Audit => self
                .audit
                .list
                .current()
                .map(|r| (format!("audit #{}", r.id), describe::audit_row(r, tz))),
            ViewId::Detail => self.detail.data.as_ref().and_then(|d| {
                d.timeline.get(self.detail.scroll).map(|e| {
                    (
                        format!("request {} · {}", d.request.id, e.kind),
                        describe::timeline_entry(e, tz),
                    )
                })
            }),
            ViewId::Logs => {
                let len = self.logs.rows.len();
                len.checked_sub(1 + self.logs.scroll_back)
                    .and_then(|i| self.logs.rows.get(i))
                    .map(|l| (format!("log line #{}", l.id), describe::log_line(l, tz)))
            }
            ViewId::Overview => return self.go(ViewId::Approvals),
            ViewId::Quarantine => self.quarantine.list.current().map(|m| {
                (
                    format!("held message {}", m.id),
                    crate::tui::views::quarantine::message_lines(m),
                )
            }),
            ViewId::Workers
            | ViewId::Operators
            | ViewId::Editor
            | ViewId::Mailboxes
            | ViewId::Delegations => None,
        };
        match described {
            Some((title, lines)) => {
                self.popup = Some(Popup::Text {
                    title: format!("{title} (j/k scroll · esc closes)"),
                    lines,
                    scroll: 0,
                });
            }
            None => self.flash(FlashLevel::Info, "nothing selected to describe"),
        }
        Vec::new()
    }

    pub(super) fn open_detail(&mut self, id: i64) -> Vec<Effect> {
        if self.detail.id != Some(id) {
            self.detail.data = None;
            self.detail.error = None;
        }
        self.detail.id = Some(id);
        self.detail.scroll = 0;
        self.push(ViewId::Detail)
    }
}
