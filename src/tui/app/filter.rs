//! The `:` command line and `/` filters: verbs, `field:value` parsing and applying a filter
//! to the current view.

use super::*;

impl AppState {
    /// Runs one `:` command line (`quarantine`, `rq 12`, `theme mono`).
    pub fn run_verb(&mut self, line: &str) -> Vec<Effect> {
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
            "requests" => match words.next() {
                None => self.go(ViewId::Requests),
                Some(id) => match id.trim_start_matches('#').parse::<i64>() {
                    Ok(id) if id > 0 => {
                        let mut effects = self.go(ViewId::Requests);
                        effects.extend(self.open_detail(id));
                        effects
                    }
                    _ => {
                        self.flash(
                            FlashLevel::Err,
                            format!("{id:?} is not a request id (:rq 8 opens request 8)"),
                        );
                        Vec::new()
                    }
                },
            },
            "queues" => self.go(ViewId::Queues),
            "logs" => self.go(ViewId::Logs),
            "workers" => self.go(ViewId::Workers),
            "operators" => self.go(ViewId::Operators),
            "quarantine" => self.go(ViewId::Quarantine),
            "manual" => vec![Effect::Load(Load::ManualTasks)],
            "mailboxes" => self.go(ViewId::Mailboxes),
            "delegations" => self.go(ViewId::Delegations),
            "configs" => self.go(ViewId::Configs),
            "audit" => self.go(ViewId::Audit),
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

    pub(super) fn filter_text(&self) -> &str {
        match self.view() {
            ViewId::Approvals => &self.approvals.filter_text,
            ViewId::Requests => &self.requests.filter_text,
            ViewId::Queues => &self.queues.filter_text,
            ViewId::Logs => &self.logs.filter_text,
            ViewId::Workers => &self.workers.filter_text,
            ViewId::Operators => &self.operators.filter_text,
            ViewId::Quarantine => &self.quarantine.filter_text,
            ViewId::Mailboxes => &self.mailboxes.filter_text,
            ViewId::Delegations => &self.delegations.filter_text,
            ViewId::Configs => &self.configs.filter_text,
            ViewId::Audit => &self.audit.filter_text,
            ViewId::Overview | ViewId::Detail | ViewId::Editor => "",
        }
    }

    /// Applies a `/` filter to the current view: plain words and `field:value` pairs.
    pub fn apply_filter(&mut self, text: &str) -> Vec<Effect> {
        let view = self.view();
        let fields: &[&str] = match view {
            ViewId::Approvals => &[
                "request",
                "id",
                "workflow",
                "stage",
                "subject",
                "requester",
                "policy",
            ],
            ViewId::Requests => &["id", "state", "workflow"],
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
                for (field, value) in &parsed.fields {
                    if matches!(field.as_str(), "request" | "id") && value.parse::<i64>().is_err() {
                        self.flash(
                            FlashLevel::Err,
                            format!("{field}:{value} is not a request id — filter unchanged"),
                        );
                        return Vec::new();
                    }
                }
                self.approvals.filter_text = text.to_string();
                self.approvals.fields = parsed.fields.clone();
                self.approvals.text = free;
                self.approvals.list = Default::default();
                self.approvals_load(false)
            }
            ViewId::Requests => {
                if let Some(id) = get("id") {
                    return match id.trim_start_matches('#').parse::<i64>() {
                        Ok(id) if id > 0 => self.open_detail(id),
                        _ => {
                            self.flash(
                                FlashLevel::Err,
                                format!("id:{id} is not a request id — filter unchanged"),
                            );
                            Vec::new()
                        }
                    };
                }
                if let Some(state) = get("state")
                    && !REQUEST_STATES.contains(&state.as_str())
                {
                    self.flash(
                        FlashLevel::Err,
                        format!(
                            "state:{state} is not a request state ({}) — filter unchanged",
                            REQUEST_STATES.join(", ")
                        ),
                    );
                    return Vec::new();
                }
                let workflows: Vec<&str> = self
                    .configs
                    .all_heads
                    .iter()
                    .filter(|c| c.kind == "workflow")
                    .map(|c| c.name.as_str())
                    .collect();
                if let Some(w) = get("workflow")
                    && !workflows.is_empty()
                    && !workflows.contains(&w.as_str())
                {
                    self.flash(
                        FlashLevel::Err,
                        format!(
                            "workflow:{w} is not a workflow ({}) — filter unchanged",
                            workflows.join(", ")
                        ),
                    );
                    return Vec::new();
                }
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
            ViewId::Quarantine => {
                self.quarantine.filter_text = text.to_string();
                self.quarantine.apply_filter();
                Vec::new()
            }
            ViewId::Mailboxes => {
                self.mailboxes.filter_text = text.to_string();
                self.mailboxes.apply_filter();
                Vec::new()
            }
            ViewId::Delegations => {
                self.delegations.filter_text = text.to_string();
                self.delegations.apply_filter(self.now);
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
}

/// Every request state, as `state:` accepts it.
pub const REQUEST_STATES: &[&str] = &[
    "received",
    "classified",
    "validating",
    "needs_triage",
    "awaiting_approval",
    "scheduled",
    "provisioning",
    "completed",
    "failed",
    "rejected",
    "cancelled",
];

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
