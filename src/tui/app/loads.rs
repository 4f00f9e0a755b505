//! Loads (what each view reads and when) and what happens when reads and commands come back.

use super::*;

impl AppState {
    pub(super) fn load_view(&mut self, view: ViewId) -> Vec<Effect> {
        match view {
            ViewId::Overview => {
                if !self.overview.loading {
                    self.overview.requested_at = Some(self.now);
                }
                self.overview.loading = true;
                vec![Effect::Load(Load::Overview)]
            }
            ViewId::Approvals => {
                let mut e = self.approvals_load(false);
                e.extend(self.approvals_detail());
                e
            }
            ViewId::Requests => self.requests_load(false),
            ViewId::Detail => match self.detail.id {
                Some(id) => {
                    if !self.detail.loading {
                        self.detail.requested_at = Some(self.now);
                    }
                    self.detail.loading = true;
                    vec![Effect::Load(Load::Detail(id))]
                }
                None => Vec::new(),
            },
            ViewId::Queues => {
                self.queues.stats.begin_load(self.now);
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
            ViewId::Workers => {
                self.workers.list.begin_load(self.now);
                vec![Effect::Load(Load::Workers)]
            }
            ViewId::Operators => {
                self.operators.list.begin_load(self.now);
                vec![Effect::Load(Load::Operators)]
            }
            ViewId::Quarantine => {
                self.quarantine.list.begin_load(self.now);
                vec![Effect::Load(Load::Quarantine)]
            }
            ViewId::Mailboxes => {
                self.mailboxes.list.begin_load(self.now);
                vec![Effect::Load(Load::Mailboxes)]
            }
            ViewId::Delegations => {
                self.delegations.list.begin_load(self.now);
                vec![Effect::Load(Load::Delegations)]
            }
            ViewId::Configs => {
                self.configs.heads.begin_load(self.now);
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
                    e.push(Effect::Load(Load::Verify(None)));
                }
                e
            }
        }
    }

    /// Reloads what the view shows after a change signal (logs append, lists keep their length).
    pub(super) fn refresh_view(&mut self, view: ViewId) -> Vec<Effect> {
        match view {
            ViewId::Logs => self.logs_tail(),
            ViewId::Audit => {
                let mut e = self.audit_load(false);
                // The verdict follows new rows: only they are hashed (from the last head).
                if let Some(head) = self.audit.head.clone() {
                    e.push(Effect::Load(Load::Verify(Some(head))));
                }
                e
            }
            ViewId::Editor => vec![Effect::Load(Load::ConfigHeads)],
            other => self.load_view(other),
        }
    }

    pub(super) fn reload_limit(loaded: usize) -> u32 {
        // Keep what is loaded after a refresh, with room for rows that arrived meanwhile (so
        // the selected row is not pushed out of the page), within reason.
        u32::try_from((loaded + PAGE as usize).clamp(PAGE as usize, 2_000)).unwrap_or(PAGE)
    }

    pub(super) fn approvals_load(&mut self, more: bool) -> Vec<Effect> {
        let now = self.now;
        let list = &mut self.approvals.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.begin_load(now);
        let text = self.approvals.text.clone();
        vec![Effect::Load(Load::Approvals { text, after, limit })]
    }

    pub(super) fn approvals_detail(&mut self) -> Vec<Effect> {
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

    pub(super) fn requests_load(&mut self, more: bool) -> Vec<Effect> {
        let now = self.now;
        let list = &mut self.requests.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.begin_load(now);
        vec![Effect::Load(Load::Requests {
            filter: self.requests.filter.clone(),
            after,
            limit,
        })]
    }

    pub(super) fn jobs_load(&mut self, more: bool) -> Vec<Effect> {
        let mut filter = self.queues.filter.clone();
        if filter.queue.is_none() {
            filter.queue = self.queues.stats.current().map(|q| q.queue.clone());
        }
        let now = self.now;
        let list = &mut self.queues.jobs;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.begin_load(now);
        vec![Effect::Load(Load::Jobs {
            filter,
            after,
            limit,
        })]
    }

    pub(super) fn audit_load(&mut self, more: bool) -> Vec<Effect> {
        let now = self.now;
        let list = &mut self.audit.list;
        let (after, limit) = if more {
            (list.next, PAGE)
        } else {
            (None, Self::reload_limit(list.rows.len()))
        };
        list.begin_load(now);
        vec![Effect::Load(Load::Audit {
            filter: self.audit.filter.clone(),
            after,
            limit,
        })]
    }

    pub(super) fn reset_logs(&mut self) -> Vec<Effect> {
        self.logs.rows.clear();
        self.logs.scroll_back = 0;
        self.logs.loading = true;
        vec![Effect::Load(Load::Logs {
            after_id: None,
            filter: self.logs.filter.clone(),
            limit: 500,
        })]
    }

    pub(super) fn logs_tail(&mut self) -> Vec<Effect> {
        match self.logs.rows.back().map(|r| r.id) {
            Some(last) => vec![Effect::Load(Load::Logs {
                after_id: Some(last),
                filter: self.logs.filter.clone(),
                limit: 1_000,
            })],
            None => self.reset_logs(),
        }
    }

    pub(super) fn on_loaded(&mut self, loaded: Loaded) -> Vec<Effect> {
        let mut effects = Vec::new();
        match loaded {
            Loaded::Overview(r) => {
                self.overview.loading = false;
                match r {
                    Ok(o) => {
                        self.overview.data = Some(o);
                        self.overview.error = None;
                        self.overview.refreshed_at = self.overview.requested_at;
                    }
                    Err(e) => self.overview.error = Some(e),
                }
            }
            Loaded::Approvals { append, result } => {
                let before = self.approvals.list.current().map(|a| a.request_id);
                let result = result.map(|mut page| {
                    page.rows.retain(|a| self.approvals.matches(a));
                    page
                });
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
                    self.detail.loading = false;
                    match result {
                        Ok(d) => {
                            self.detail.data = Some(d);
                            self.detail.error = None;
                            self.detail.refreshed_at = self.detail.requested_at;
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
            Loaded::Operators(r) => match r {
                Ok((operators, keys)) => self.operators.load(operators, keys),
                Err(e) => self.operators.list.failed(e),
            },
            Loaded::Delegations(r) => match r {
                Ok(rows) => {
                    self.delegations.all = rows;
                    self.delegations.apply_filter(self.now);
                }
                Err(e) => self.delegations.list.failed(e),
            },
            Loaded::Mailboxes(r) => match r {
                Ok(rows) => {
                    self.mailboxes.all = rows;
                    self.mailboxes.apply_filter();
                }
                Err(e) => self.mailboxes.list.failed(e),
            },
            Loaded::Quarantine(r) => match r {
                Ok(rows) => {
                    self.quarantine.all = rows;
                    self.quarantine.apply_filter();
                }
                Err(e) => self.quarantine.list.failed(e),
            },
            Loaded::Workers(r) => match r {
                Ok(rows) => {
                    self.workers.all = rows;
                    self.workers.apply_filter();
                }
                Err(e) => self.workers.list.failed(e),
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
            Loaded::ManualTasks(r) => match r {
                Ok(tasks) => {
                    self.popup = Some(Popup::Text {
                        title: format!("manual tasks — {} waiting (Esc closes)", tasks.len()),
                        lines: crate::tui::views::manual::task_lines(&tasks, self.now),
                        scroll: 0,
                    });
                }
                Err(e) => self.flash(FlashLevel::Err, format!("manual tasks: {e}")),
            },
            Loaded::Verdict(r) => {
                self.audit.verifying = false;
                match r {
                    Ok((verdict, head)) => {
                        self.audit.head = head;
                        self.audit.verdict = Some(Ok(verdict));
                    }
                    Err(e) => {
                        self.audit.head = None;
                        self.audit.verdict = Some(Err(e));
                    }
                }
            }
        }
        effects
    }

    pub(super) fn on_outcome(&mut self, outcome: Outcome) -> Vec<Effect> {
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
            let overrides = outcome
                .results
                .iter()
                .filter(|(_, r)| matches!(r, Ok(Done::Approval(a)) if was_override(a)))
                .count();
            if overrides > 0 {
                text.push_str(&format!(" ({overrides} as OVERRIDE)"));
            }
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
}

fn success_text(cmd: &StoreCmd, done: &Done) -> String {
    match (cmd, done) {
        (StoreCmd::SaveConfig { .. }, Done::Config(v)) => {
            format!("saved {} {} version {}", v.kind, v.name, v.version)
        }
        (StoreCmd::Decide { .. }, Done::Approval(a)) if was_override(a) => format!(
            "{} — OVERRIDE ({}: {} were pending)",
            cmd.success_text(),
            a.policy,
            super::pending_list(a)
        ),
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

/// True when the store recorded the newest decision on this stage as an override.
fn was_override(a: &ApprovalRow) -> bool {
    a.decisions.last().is_some_and(|d| d.overridden)
}
