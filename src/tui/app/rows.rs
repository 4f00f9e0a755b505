//! Commands on the selected or marked rows (approve, reject, retry, cancel, pause, drain) and
//! on configuration documents (edit, roll back, save, dry-run).

use super::*;
use crate::domain::request::RequestState;
use crate::store::QUEUE_NOTIFY;
use crate::store::api::{JobRow, RequestDetail};

impl AppState {
    pub(super) fn approval_targets(&self) -> Vec<ApprovalRow> {
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

    pub(super) fn confirm_or_run(
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

    /// True when deciding `a` would be an override: an admin deciding a stage that does not
    /// name them (the store records it as `overridden` and the override decides the stage).
    pub fn is_override(&self, a: &ApprovalRow) -> bool {
        self.role == "admin" && !a.approvers.iter().any(|n| n == &self.operator.user)
    }

    /// The question asked before deciding `targets`, or `None` when one plain decision runs
    /// at once: several rows are confirmed with how many are overrides; one override is
    /// confirmed naming the policy and who is still pending.
    pub fn decision_confirm(&self, verb: &str, targets: &[ApprovalRow]) -> Option<String> {
        let overrides = targets.iter().filter(|a| self.is_override(a)).count();
        match targets {
            [] => None,
            [a] if overrides == 1 => Some(format!(
                "{verb} {} as OVERRIDE — {}: {} pending? (y/n)",
                a.request_id,
                a.policy,
                pending_list(a)
            )),
            [_] => None,
            many if overrides > 0 => Some(format!(
                "{} selected, {overrides} as OVERRIDE — confirm {verb} (y/n)",
                many.len()
            )),
            many => Some(format!("{} selected — confirm {verb} (y/n)", many.len())),
        }
    }

    /// Decides `targets`: runs at once, or asks first (see [`AppState::decision_confirm`]).
    pub(super) fn decide(
        &mut self,
        targets: &[ApprovalRow],
        decision: Decision,
        reason: Option<String>,
    ) -> Vec<Effect> {
        let verb = match decision {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        };
        let cmds: Vec<StoreCmd> = targets
            .iter()
            .map(|a| StoreCmd::Decide {
                approval_id: a.id,
                request_id: a.request_id,
                expected_version: a.version,
                decision,
                reason: reason.clone(),
            })
            .collect();
        match self.decision_confirm(verb, targets) {
            Some(text) => {
                self.popup = Some(Popup::Confirm { text, cmds });
                Vec::new()
            }
            None => vec![Effect::Run(cmds)],
        }
    }

    pub(super) fn approve(&mut self) -> Vec<Effect> {
        let targets = self.approval_targets();
        if targets.is_empty() {
            self.flash(FlashLevel::Info, "nothing to approve here");
            return Vec::new();
        }
        self.decide(&targets, Decision::Approve, None)
    }

    pub(super) fn reject(&mut self) -> Vec<Effect> {
        let targets = self.approval_targets();
        if targets.is_empty() {
            self.flash(FlashLevel::Info, "nothing to reject here");
            return Vec::new();
        }
        let over = if targets.iter().any(|a| self.is_override(a)) {
            " as OVERRIDE"
        } else {
            ""
        };
        let title = if targets.len() == 1 {
            format!(
                "reject request {}{over} — reason (required)",
                targets[0].request_id
            )
        } else {
            format!("reject {} selected — reason (required)", targets.len())
        };
        self.popup = Some(Popup::Reason {
            title,
            input: Box::new(reason_input()),
            error: None,
            target: ReasonFor::Reject(targets),
        });
        Vec::new()
    }

    pub(super) fn retry(&mut self) -> Vec<Effect> {
        let cmds: Vec<StoreCmd> = match self.view() {
            ViewId::Requests => self
                .requests
                .list
                .targets()
                .into_iter()
                .map(|r| StoreCmd::RetryRequest { request_id: r.id })
                .collect(),
            ViewId::Detail => match self.detail.data.as_ref() {
                // A failed request is retried as a whole; otherwise its failed notifications.
                Some(d) if d.request.state != RequestState::Failed => failed_notifications(d)
                    .map(|j| StoreCmd::RetryJob { job_id: j.id })
                    .collect(),
                _ => self
                    .detail
                    .id
                    .map(|id| StoreCmd::RetryRequest { request_id: id })
                    .into_iter()
                    .collect(),
            },
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

    pub(super) fn cancel(&mut self) -> Vec<Effect> {
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
        let title = match ids.as_slice() {
            [id] => format!("cancel request {id} — reason (required)"),
            many => format!("cancel {} selected — reason (required)", many.len()),
        };
        self.popup = Some(Popup::Reason {
            title,
            input: Box::new(reason_input()),
            error: None,
            target: ReasonFor::Cancel(ids),
        });
        Vec::new()
    }

    /// Cancels `ids` with the operator's reason, after a confirmation.
    pub(super) fn cancel_with(&mut self, ids: Vec<i64>, reason: String) -> Vec<Effect> {
        let cmds = ids
            .into_iter()
            .map(|id| StoreCmd::CancelRequest {
                request_id: id,
                reason: Some(reason.clone()),
            })
            .collect();
        self.confirm_or_run("cancel", cmds, true)
    }

    pub(super) fn toggle_pause(&mut self) -> Vec<Effect> {
        let Some(q) = self.queues.stats.current() else {
            self.flash(FlashLevel::Info, "no queue selected");
            return Vec::new();
        };
        vec![Effect::Run(vec![StoreCmd::SetQueuePaused {
            queue: q.queue.clone(),
            paused: !q.paused,
        }])]
    }

    /// Asks for the reason to release (or discard) the selected held message.
    pub(super) fn review_held(&mut self, release: bool) -> Vec<Effect> {
        if self.view() != ViewId::Quarantine {
            self.flash(FlashLevel::Info, "release and discard work in :quarantine");
            return Vec::new();
        }
        let Some(m) = self.quarantine.list.current() else {
            self.flash(FlashLevel::Info, "no held message selected");
            return Vec::new();
        };
        let (title, target) = if release {
            (
                format!("release held message {} — reason (required)", m.id),
                ReasonFor::Release(m.id),
            )
        } else {
            (
                format!("discard held message {} — reason (required)", m.id),
                ReasonFor::Discard(m.id),
            )
        };
        self.popup = Some(Popup::Reason {
            title,
            input: Box::new(reason_input()),
            error: None,
            target,
        });
        Vec::new()
    }

    pub(super) fn drain(&mut self) -> Vec<Effect> {
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

    pub(super) fn edit(&mut self) -> Vec<Effect> {
        if matches!(self.view(), ViewId::Requests | ViewId::Detail) {
            return self.open_triage();
        }
        if self.view() != ViewId::Configs {
            self.flash(
                FlashLevel::Info,
                "e edits configuration documents (:configs)",
            );
            return Vec::new();
        }
        self.edit_or_view()
    }

    pub(super) fn edit_or_view(&mut self) -> Vec<Effect> {
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

    pub(super) fn open_editor(
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

    pub(super) fn rollback(&mut self) -> Vec<Effect> {
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

    pub(super) fn editor_save(&mut self) -> Vec<Effect> {
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

    pub(super) fn dry_run(&mut self) -> Vec<Effect> {
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
            Ok(mut lines) => {
                let unavailable = crate::tui::config_tools::unavailable_steps(
                    &ed.name,
                    &body,
                    &self.configs.all_heads,
                );
                if !unavailable.is_empty() {
                    // The plan itself may be clean; its steps still would not run.
                    let verdict = "verdict: PROBLEMS — steps that would fail:".to_string();
                    match lines.get_mut(1) {
                        Some(line) => *line = verdict,
                        None => lines.push(verdict),
                    }
                    for (i, line) in unavailable.into_iter().enumerate() {
                        lines.insert(2 + i, format!("  {line}"));
                    }
                }
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
}

/// Who of a stage's approvers has not decided yet (overrides aside), comma-separated.
pub fn pending_list(a: &ApprovalRow) -> String {
    let pending: Vec<&str> = a
        .approvers
        .iter()
        .filter(|n| {
            !a.decisions
                .iter()
                .any(|d| !d.overridden && &d.approver == *n)
        })
        .map(String::as_str)
        .collect();
    if pending.is_empty() {
        "nobody".to_string()
    } else {
        pending.join(", ")
    }
}

/// An empty one-line reason input.
pub(super) fn reason_input() -> TextArea<'static> {
    let mut input = TextArea::default();
    input.set_cursor_line_style(ratatui::style::Style::default());
    input.set_placeholder_text("why? (Enter submits, Esc cancels)");
    input
}

/// The request's notification jobs that failed for good (dead), newest first: what `R`
/// retries in the request view of a request that did not fail itself.
pub(super) fn failed_notifications(d: &RequestDetail) -> impl Iterator<Item = &JobRow> {
    d.jobs
        .iter()
        .filter(|j| j.queue == QUEUE_NOTIFY && j.state == JobState::Dead)
}
