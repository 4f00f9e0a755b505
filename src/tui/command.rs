//! What a user can bind to a key: every console command, its name in key-map files and help,
//! and whether it changes anything (dangerous commands are never registered in read-only mode).

/// A command the key map can bind. Names are the kebab-case spelling used in `keymap.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    /// Leave the console.
    Quit,
    /// Clear the filter, or go back one view.
    Back,
    /// Show the keys of the current view.
    Help,
    /// Open the `:` command prompt.
    CommandMode,
    /// Open the `/` filter prompt.
    Filter,
    /// Reload the current view now.
    Refresh,
    /// Suspend the console (ctrl-z); `fg` resumes it.
    Suspend,
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// Jump to the first row.
    Top,
    /// Jump to the last loaded row.
    Bottom,
    /// Move one page up.
    PageUp,
    /// Move one page down.
    PageDown,
    /// Show the rows that arrived above the screen (the top of the list).
    ShowNew,
    /// Mark or unmark the selected row for a bulk action.
    Mark,
    /// Mark every loaded row.
    MarkAll,
    /// Clear all marks.
    ClearMarks,
    /// Open the selected row.
    Open,
    /// Move the focus to the next pane.
    FocusNext,
    /// Approve the selected (or marked) approvals.
    Approve,
    /// Reject the selected (or marked) approvals, with a reason.
    Reject,
    /// Retry the selected (or marked) failed requests or dead jobs.
    Retry,
    /// Cancel the selected (or marked) requests.
    Cancel,
    /// Edit the selected configuration document.
    Edit,
    /// Pause or resume the selected queue.
    TogglePause,
    /// Ask the selected worker to drain.
    Drain,
    /// Release the selected quarantined message (a reason is required).
    Release,
    /// Discard the selected quarantined message (a reason is required).
    Discard,
    /// Retry the failed provisioning step of the request shown.
    RetryStep,
    /// Skip the step the request shown is stopped at (a justification is required).
    SkipStep,
    /// Mark the manual step the request shown waits on done (a note may be given).
    DoneStep,
    /// Add a delegation (a form: from, to, until, reason).
    Delegate,
    /// Revoke the selected delegation.
    Revoke,
    /// Follow the log tail on or off.
    Follow,
    /// Wrap long log lines on or off.
    Wrap,
    /// Cycle the minimum log level.
    CycleLevel,
    /// Save the selected old version as the new head.
    Rollback,
    /// Dry-run the edited workflow against a sample request.
    DryRun,
    /// Validate and save the edited document.
    Save,
    /// Re-verify the audit hash chain.
    Verify,
    /// Sort the approvals inbox by age or by the stages' stored deadlines.
    Sort,
    /// Show the log lines of the request on screen.
    RequestLogs,
    /// Go to the overview.
    GoOverview,
    /// Go to the approvals inbox.
    GoApprovals,
    /// Go to the requests list.
    GoRequests,
    /// Go to queues and jobs.
    GoQueues,
    /// Go to the log tail.
    GoLogs,
    /// Go to the workers.
    GoWorkers,
    /// Go to the configuration documents.
    GoConfigs,
    /// Go to the audit trail.
    GoAudit,
}

impl Command {
    /// Every command, in the order help lists them.
    pub const ALL: &'static [Command] = &[
        Command::Quit,
        Command::Back,
        Command::Help,
        Command::CommandMode,
        Command::Filter,
        Command::Refresh,
        Command::Suspend,
        Command::Up,
        Command::Down,
        Command::Top,
        Command::Bottom,
        Command::PageUp,
        Command::PageDown,
        Command::ShowNew,
        Command::Mark,
        Command::MarkAll,
        Command::ClearMarks,
        Command::Open,
        Command::FocusNext,
        Command::Approve,
        Command::Reject,
        Command::Retry,
        Command::Cancel,
        Command::Edit,
        Command::TogglePause,
        Command::Drain,
        Command::Release,
        Command::Discard,
        Command::RetryStep,
        Command::SkipStep,
        Command::DoneStep,
        Command::Delegate,
        Command::Revoke,
        Command::Follow,
        Command::Wrap,
        Command::CycleLevel,
        Command::Rollback,
        Command::DryRun,
        Command::Save,
        Command::Verify,
        Command::Sort,
        Command::RequestLogs,
        Command::GoOverview,
        Command::GoApprovals,
        Command::GoRequests,
        Command::GoQueues,
        Command::GoLogs,
        Command::GoWorkers,
        Command::GoConfigs,
        Command::GoAudit,
    ];

    /// The name used in key-map files.
    pub fn name(self) -> &'static str {
        match self {
            Command::Quit => "quit",
            Command::Back => "back",
            Command::Help => "help",
            Command::CommandMode => "command-mode",
            Command::Filter => "filter",
            Command::Refresh => "refresh",
            Command::Suspend => "suspend",
            Command::Up => "up",
            Command::Down => "down",
            Command::Top => "top",
            Command::Bottom => "bottom",
            Command::PageUp => "page-up",
            Command::PageDown => "page-down",
            Command::ShowNew => "show-new",
            Command::Mark => "mark",
            Command::MarkAll => "mark-all",
            Command::ClearMarks => "clear-marks",
            Command::Open => "open",
            Command::FocusNext => "focus-next",
            Command::Approve => "approve",
            Command::Reject => "reject",
            Command::Retry => "retry",
            Command::Cancel => "cancel",
            Command::Edit => "edit",
            Command::TogglePause => "toggle-pause",
            Command::Drain => "drain",
            Command::Release => "release",
            Command::Discard => "discard",
            Command::RetryStep => "retry-step",
            Command::SkipStep => "skip-step",
            Command::DoneStep => "done-step",
            Command::Delegate => "delegate",
            Command::Revoke => "revoke",
            Command::Follow => "follow",
            Command::Wrap => "wrap",
            Command::CycleLevel => "cycle-level",
            Command::Rollback => "rollback",
            Command::DryRun => "dry-run",
            Command::Save => "save",
            Command::Verify => "verify",
            Command::Sort => "sort",
            Command::RequestLogs => "request-logs",
            Command::GoOverview => "go-overview",
            Command::GoApprovals => "go-approvals",
            Command::GoRequests => "go-requests",
            Command::GoQueues => "go-queues",
            Command::GoLogs => "go-logs",
            Command::GoWorkers => "go-workers",
            Command::GoConfigs => "go-configs",
            Command::GoAudit => "go-audit",
        }
    }

    /// Looks a command up by its key-map name.
    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// One line for the help popup.
    pub fn describe(self) -> &'static str {
        match self {
            Command::Quit => "quit the console",
            Command::Back => "clear filter / go back",
            Command::Help => "show this help",
            Command::CommandMode => "command mode (:approvals, :theme NAME, :q)",
            Command::Filter => "filter (text or field:value)",
            Command::Refresh => "reload now",
            Command::Suspend => "suspend (fg resumes)",
            Command::Up => "up",
            Command::Down => "down",
            Command::Top => "first row",
            Command::Bottom => "last row",
            Command::PageUp => "page up",
            Command::PageDown => "page down",
            Command::ShowNew => "show new rows (top of the list)",
            Command::Mark => "mark / unmark row",
            Command::MarkAll => "mark all loaded rows",
            Command::ClearMarks => "clear marks",
            Command::Open => "open",
            Command::FocusNext => "next pane",
            Command::Approve => "approve",
            Command::Reject => "reject (reason required)",
            Command::Retry => "retry",
            Command::Cancel => "cancel request",
            Command::Edit => "edit document / fix a request in triage",
            Command::TogglePause => "pause / resume queue",
            Command::Drain => "drain worker",
            Command::Release => "release held mail (reason required)",
            Command::Discard => "discard held mail (reason required)",
            Command::RetryStep => "retry the failed step",
            Command::SkipStep => "skip the stopped step (justification required)",
            Command::DoneStep => "mark the waiting manual step done",
            Command::Delegate => "add a delegation (from, to, until, reason)",
            Command::Revoke => "revoke the selected delegation",
            Command::Follow => "follow on / off",
            Command::Wrap => "wrap on / off",
            Command::CycleLevel => "minimum level",
            Command::Rollback => "roll back to this version",
            Command::DryRun => "dry-run on a sample request",
            Command::Save => "validate, diff and save",
            Command::Verify => "verify the audit chain",
            Command::Sort => "sort by age / deadline",
            Command::RequestLogs => "log lines of this request",
            Command::GoOverview => "overview",
            Command::GoApprovals => "approvals inbox",
            Command::GoRequests => "requests",
            Command::GoQueues => "queues and jobs",
            Command::GoLogs => "log tail",
            Command::GoWorkers => "workers",
            Command::GoConfigs => "configurations",
            Command::GoAudit => "audit trail",
        }
    }

    /// The short label on the key-hint line (`cmd` for `command-mode`, `pause` for `toggle-pause`).
    pub fn hint(self) -> &'static str {
        match self {
            Command::CommandMode => "cmd",
            Command::FocusNext => "pane",
            Command::TogglePause => "pause",
            Command::RequestLogs => "logs",
            Command::CycleLevel => "level",
            other => other.name(),
        }
    }

    /// True when an operator with `role` may run this command: safe commands always; nothing
    /// dangerous in read-only mode; admins everything; approvers approve and reject; viewers
    /// (and unknown roles) nothing dangerous.
    pub fn allowed_for(self, role: &str, read_only: bool) -> bool {
        if !self.is_dangerous() {
            return true;
        }
        if read_only {
            return false;
        }
        match role {
            "admin" => true,
            // Approvers delegate their own approvals (the store refuses anyone else's).
            "approver" => matches!(
                self,
                Command::Approve | Command::Reject | Command::Delegate | Command::Revoke
            ),
            _ => false,
        }
    }

    /// True when the command changes the store: never registered in read-only mode.
    pub fn is_dangerous(self) -> bool {
        matches!(
            self,
            Command::Approve
                | Command::Reject
                | Command::Retry
                | Command::Cancel
                | Command::Edit
                | Command::TogglePause
                | Command::Drain
                | Command::Release
                | Command::Discard
                | Command::RetryStep
                | Command::SkipStep
                | Command::DoneStep
                | Command::Delegate
                | Command::Revoke
                | Command::Rollback
                | Command::Save
        )
    }
}

/// A `:` command-mode verb with its aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb {
    /// Full name, completed on Tab.
    pub name: &'static str,
    /// Short aliases.
    pub aliases: &'static [&'static str],
    /// What it does, for the prompt's hint line.
    pub describe: &'static str,
}

/// Every `:` verb. `:q` is quit, so queues use `:jobs` as their short alias.
pub const VERBS: &[Verb] = &[
    Verb {
        name: "overview",
        aliases: &["ov", "home"],
        describe: "overview",
    },
    Verb {
        name: "approvals",
        aliases: &["ap"],
        describe: "approvals inbox",
    },
    Verb {
        name: "requests",
        aliases: &["rq", "req", "request"],
        describe: "requests; :rq ID opens request ID",
    },
    Verb {
        name: "queues",
        aliases: &["jobs"],
        describe: "queues and jobs",
    },
    Verb {
        name: "mailboxes",
        aliases: &["mb"],
        describe: "mailboxes intake reads: reader, position, backlog, errors",
    },
    Verb {
        name: "quarantine",
        aliases: &["held"],
        describe: "mail held by intake: release or discard",
    },
    Verb {
        name: "logs",
        aliases: &["log"],
        describe: "log tail",
    },
    Verb {
        name: "workers",
        aliases: &["wk"],
        describe: "workers",
    },
    Verb {
        name: "configs",
        aliases: &["cfg", "config"],
        describe: "configurations",
    },
    Verb {
        name: "audit",
        aliases: &["au"],
        describe: "audit trail",
    },
    Verb {
        name: "delegations",
        aliases: &["dg", "delegation"],
        describe: "approval delegations: add (a) or revoke (x)",
    },
    Verb {
        name: "operators",
        aliases: &["ops"],
        describe: "operators and their SSH keys",
    },
    Verb {
        name: "manual",
        aliases: &["mt", "tasks"],
        describe: "manual steps waiting for a person (open one with :rq ID, then D or S)",
    },
    Verb {
        name: "theme",
        aliases: &[],
        describe: "theme NAME: switch theme",
    },
    Verb {
        name: "help",
        aliases: &["h"],
        describe: "help",
    },
    Verb {
        name: "quit",
        aliases: &["q", "q!"],
        describe: "quit",
    },
];

/// Finds the verb a typed word names (full name or alias).
pub fn find_verb(word: &str) -> Option<&'static Verb> {
    VERBS
        .iter()
        .find(|v| v.name == word || v.aliases.contains(&word))
}

/// Completion candidates for a verb's argument: theme names for `:theme`, nothing for verbs
/// whose argument has no known set of values.
pub fn complete_arg(verb: &str, prefix: &str) -> Vec<String> {
    match find_verb(verb).map(|v| v.name) {
        Some("theme") => crate::tui::theme::BUILTIN_THEMES
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| n.starts_with(prefix))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// Completion candidates for a partly typed verb, full names first.
pub fn complete_verb(prefix: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = VERBS
        .iter()
        .filter(|v| v.name.starts_with(prefix))
        .map(|v| v.name)
        .collect();
    for verb in VERBS {
        if !out.contains(&verb.name) && verb.aliases.iter().any(|a| a.starts_with(prefix)) {
            out.push(verb.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name()), Some(*c));
        }
        assert_eq!(Command::from_name("nope"), None);
    }

    #[test]
    fn dangerous_set() {
        assert!(Command::Approve.is_dangerous());
        assert!(Command::Drain.is_dangerous());
        assert!(!Command::Help.is_dangerous());
        assert!(!Command::Open.is_dangerous());
    }

    #[test]
    fn roles_gate_dangerous_commands() {
        assert!(Command::Retry.allowed_for("admin", false));
        assert!(!Command::Retry.allowed_for("admin", true));
        assert!(Command::Approve.allowed_for("approver", false));
        assert!(!Command::Retry.allowed_for("approver", false));
        assert!(!Command::Approve.allowed_for("viewer", false));
        assert!(!Command::Approve.allowed_for("someone", false));
        assert!(Command::Help.allowed_for("viewer", true));
    }

    #[test]
    fn verbs_and_completion() {
        assert_eq!(find_verb("ap").map(|v| v.name), Some("approvals"));
        assert_eq!(find_verb("q").map(|v| v.name), Some("quit"));
        assert_eq!(find_verb("jobs").map(|v| v.name), Some("queues"));
        assert_eq!(find_verb("rq").map(|v| v.name), Some("requests"));
        assert_eq!(complete_verb("a"), vec!["approvals", "audit"]);
        assert_eq!(complete_verb("wo"), vec!["workers"]);
        assert_eq!(complete_verb("q"), vec!["queues", "quarantine", "quit"]);
    }
}
