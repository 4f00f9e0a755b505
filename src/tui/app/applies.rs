//! Which row actions apply to what is selected, and why not: the hint row and help list only
//! the keys that apply, and a key that does not apply says why in words instead of sending a
//! command the store would refuse. The store still decides; this only mirrors its rules.

use super::rows::failed_notifications;
use super::*;
use crate::domain::request::RequestState;
use crate::store::api::{JobRow, RequestRow};

/// Commands that act on the selected (or marked) rows.
pub const ROW_ACTIONS: &[Command] = &[
    Command::Approve,
    Command::Reject,
    Command::Retry,
    Command::Cancel,
    Command::Edit,
    Command::TogglePause,
    Command::Drain,
    Command::Rollback,
    Command::Mark,
    Command::MarkAll,
    Command::ClearMarks,
    Command::Open,
    Command::RequestLogs,
    Command::ShowNew,
];

impl AppState {
    /// `Ok` when `command` applies to what is selected in the current view; otherwise why
    /// not, in words (`completed: already finished, nothing to cancel`).
    pub fn applies(&self, command: Command) -> Result<(), String> {
        let view = self.view();
        match (command, view) {
            (Command::Retry, ViewId::Requests) => self.each_request(retry_request),
            (Command::Retry, ViewId::Detail) => match self.detail.data.as_ref() {
                Some(d)
                    if Some(d.request.id) == self.detail.id
                        && d.request.state != RequestState::Failed
                        && failed_notifications(d).next().is_some() =>
                {
                    Ok(())
                }
                _ => self
                    .detail_request()
                    .map_or(Ok(()), retry_request)
                    .map_err(|why| format!("{why}, and no notification of it failed")),
            },
            (Command::Retry, ViewId::Queues) if self.queues.focus_jobs => {
                each(&self.queues.jobs.targets(), "job", retry_job)
            }
            (Command::Retry, ViewId::Queues) => {
                Err("tab to the jobs pane to retry a job".to_string())
            }
            (Command::RetryStep | Command::SkipStep | Command::DoneStep, ViewId::Detail) => {
                let stopped = self
                    .detail
                    .data
                    .as_ref()
                    .and_then(super::steps::stopped_step);
                match (command, stopped) {
                    (_, None) => Err("the request is not stopped at a step".to_string()),
                    (Command::RetryStep, Some((_, true))) => {
                        Err("a manual step waits for a person: done or skip it".to_string())
                    }
                    (Command::DoneStep, Some((_, false))) => {
                        Err("the stopped step is not a manual step".to_string())
                    }
                    _ => Ok(()),
                }
            }
            (Command::Cancel, ViewId::Requests) => self.each_request(cancel_request),
            (Command::Cancel, ViewId::Detail) => {
                self.detail_request().map_or(Ok(()), cancel_request)
            }
            (Command::Edit, ViewId::Requests) => match self.requests.list.current() {
                Some(r) => edit_request(r),
                None => Err("no request selected".to_string()),
            },
            (Command::Edit, ViewId::Detail) => match self.detail_request() {
                Some(r) => edit_request(r),
                None => Err("the request is still loading".to_string()),
            },
            (Command::Approve | Command::Reject, ViewId::Detail) => {
                match (self.detail_request(), self.approval_targets().is_empty()) {
                    (_, false) => Ok(()),
                    (Some(r), true) => Err(format!("{}: no stage awaits a decision", r.state)),
                    (None, true) => Err("the request is still loading".to_string()),
                }
            }
            (Command::Approve | Command::Reject, ViewId::Approvals)
                if self.approvals.list.current().is_none() =>
            {
                Err("nothing to decide here".to_string())
            }
            (Command::Rollback, ViewId::Configs) if !self.configs.focus_versions => {
                Err("tab to the versions pane and pick the version to roll back to".to_string())
            }
            (Command::Rollback, ViewId::Configs) => match (
                self.configs.versions.current(),
                self.configs.heads.current(),
            ) {
                (Some(old), Some(head)) if old.version == head.version && old.name == head.name => {
                    Err(format!(
                        "version {} is already the head of {}",
                        old.version, old.name
                    ))
                }
                _ => Ok(()),
            },
            (Command::Mark | Command::MarkAll | Command::ClearMarks, _) if !self.has_marks() => {
                Err("nothing to mark in this view".to_string())
            }
            (Command::FocusNext, v)
                if !matches!(v, ViewId::Queues | ViewId::Configs | ViewId::Detail) =>
            {
                Err("this view has one pane".to_string())
            }
            (Command::Filter, ViewId::Overview | ViewId::Detail | ViewId::Editor) => {
                Err("this view has no filter".to_string())
            }
            (
                Command::Open,
                ViewId::Workers
                | ViewId::Operators
                | ViewId::Editor
                | ViewId::Mailboxes
                | ViewId::Delegations,
            ) => Err("nothing to open here".to_string()),
            (Command::ShowNew, _) if !self.has_growing_list() => {
                Err("this view has no list that grows".to_string())
            }
            (Command::RequestLogs, v) if v != ViewId::Detail => {
                Err("L shows the log lines of an open request".to_string())
            }
            _ => Ok(()),
        }
    }

    /// True when the current view (or pane) has rows to mark.
    fn has_marks(&self) -> bool {
        match self.view() {
            ViewId::Approvals | ViewId::Requests => true,
            ViewId::Queues => self.queues.focus_jobs,
            _ => false,
        }
    }

    /// True when the current view (or pane) is a list that rows arrive in.
    fn has_growing_list(&self) -> bool {
        match self.view() {
            ViewId::Approvals | ViewId::Requests | ViewId::Audit => true,
            ViewId::Queues => self.queues.focus_jobs,
            _ => false,
        }
    }

    fn detail_request(&self) -> Option<&RequestRow> {
        self.detail
            .data
            .as_ref()
            .map(|d| &d.request)
            .filter(|r| Some(r.id) == self.detail.id)
    }

    fn each_request(&self, check: fn(&RequestRow) -> Result<(), String>) -> Result<(), String> {
        each(&self.requests.list.targets(), "request", check)
    }
}

/// `Ok` when `check` holds for every target; with several, says how many do not and why.
fn each<T>(targets: &[&T], noun: &str, check: fn(&T) -> Result<(), String>) -> Result<(), String> {
    let refused: Vec<String> = targets.iter().filter_map(|t| check(t).err()).collect();
    match (refused.as_slice(), targets.len()) {
        ([], _) => Ok(()),
        ([why], 1) => Err(why.clone()),
        ([first, ..], n) => Err(format!(
            "{} of {n} marked {noun}s cannot: {first} — unmark them (space) or clear marks (u)",
            refused.len()
        )),
    }
}

fn retry_request(r: &RequestRow) -> Result<(), String> {
    match r.state {
        RequestState::Failed => Ok(()),
        RequestState::NeedsTriage => {
            Err("needs_triage: fix its fields first (e opens the triage editor)".to_string())
        }
        other => Err(format!("{other}: only failed requests are retried")),
    }
}

fn cancel_request(r: &RequestRow) -> Result<(), String> {
    if r.state.is_terminal() {
        Err(format!("{}: already finished, nothing to cancel", r.state))
    } else {
        Ok(())
    }
}

fn edit_request(r: &RequestRow) -> Result<(), String> {
    if r.state == RequestState::NeedsTriage {
        Ok(())
    } else {
        Err(format!(
            "{}: only needs_triage requests have fields to fix; e edits configuration documents (:configs)",
            r.state
        ))
    }
}

fn retry_job(j: &JobRow) -> Result<(), String> {
    match j.state {
        JobState::Dead | JobState::Retrying => Ok(()),
        other => Err(format!(
            "job {} is {}: only dead or retrying jobs are retried",
            j.id,
            other.name()
        )),
    }
}
