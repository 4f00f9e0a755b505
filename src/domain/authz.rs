//! Who may do what: operator roles, scopes, and separation of duties, as pure rules.
//!
//! The store loads an operator's grant inside a command's own transaction and asks
//! [`permits`] and [`separation_of_duties`]; the console and the CLI only mirror the answer.
//! Rules:
//! - an unknown login may do nothing (it may read, as a viewer);
//! - a viewer changes nothing;
//! - an approver creates requests and decides approvals it is eligible for;
//! - an admin does everything, and decides for others as an override;
//! - a scoped operator (`team:NAME`, `workflow:NAME`) acts only on requests of those teams or
//!   workflows, and never on what belongs to everyone (configuration, queues, workers,
//!   operators, bare jobs);
//! - the requester and the subject of a request never decide its approvals, whatever their role;
//! - system actors (the engine) do everything but decide: approvals are people's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Looks, changes nothing.
    Viewer,
    /// Creates requests and decides the approvals it is named in.
    Approver,
    /// Does everything; decisions for others are overrides.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Approver, Role::Admin];

    /// Stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Approver => "approver",
            Self::Admin => "admin",
        }
    }

    /// Parse a stored or typed name.
    pub fn parse(name: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What part of the requests a scoped operator may act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Requests whose `team` is this.
    Team(String),
    /// Requests of this workflow.
    Workflow(String),
}

/// Why a scope text is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {text:?}: {why}")]
pub struct ScopeError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Scope {
    /// Parse `team:NAME` or `workflow:NAME` (NAME of letters, digits, `-`, `_`, `.`, at most
    /// 64 characters).
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let err = |why| ScopeError {
            text: text.to_string(),
            why,
        };
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| err("expected team:NAME or workflow:NAME"))?;
        if value.is_empty() || value.len() > 64 {
            return Err(err("the name must be 1 to 64 characters"));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(err(
                "the name may use only letters, digits, '-', '_' and '.'",
            ));
        }
        match kind {
            "team" => Ok(Scope::Team(value.to_string())),
            "workflow" => Ok(Scope::Workflow(value.to_string())),
            _ => Err(err("the kind must be team or workflow")),
        }
    }

    /// Stored kind (`team`, `workflow`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Team(_) => "team",
            Self::Workflow(_) => "workflow",
        }
    }

    /// The team or workflow name.
    pub fn value(&self) -> &str {
        match self {
            Self::Team(v) | Self::Workflow(v) => v,
        }
    }

    /// Rebuild from stored columns.
    pub fn from_parts(kind: &str, value: &str) -> Option<Scope> {
        match kind {
            "team" => Some(Scope::Team(value.to_string())),
            "workflow" => Some(Scope::Workflow(value.to_string())),
            _ => None,
        }
    }

    /// True when a request of this workflow and team is inside the scope.
    pub fn covers(&self, target: &Target<'_>) -> bool {
        match self {
            Self::Team(t) => target.team == Some(t.as_str()),
            Self::Workflow(w) => target.workflow == w,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

/// An operator's role and scopes (no scopes: every request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// Empty means unscoped.
    pub scopes: Vec<Scope>,
}

impl Grant {
    /// True when the grant reaches every request.
    pub fn unscoped(&self) -> bool {
        self.scopes.is_empty()
    }

    /// True when the grant reaches this request.
    pub fn reaches(&self, target: &Target<'_>) -> bool {
        self.unscoped() || self.scopes.iter().any(|s| s.covers(target))
    }
}

/// The request a command acts on, as the scope rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// Its workflow.
    pub workflow: &'a str,
    /// Its team, if it names one.
    pub team: Option<&'a str>,
}

/// What a command does, for the role rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a request.
    CreateRequest,
    /// Decide an approval stage.
    Decide,
    /// Retry a failed request.
    RetryRequest,
    /// Cancel a request.
    CancelRequest,
    /// Correct a request in triage.
    FixRequest,
    /// Retry a job.
    RetryJob,
    /// Save, import or roll back a configuration document.
    SaveConfig,
    /// Pause or resume a queue.
    PauseQueue,
    /// Drain a worker.
    DrainWorker,
    /// Add, change or remove an operator or their keys.
    ManageOperators,
    /// Adopt, ignore or revoke a target account found by reconciliation.
    Reconcile,
    /// Release or discard a quarantined message.
    ReviewQuarantine,
    /// Retry, re-run or skip a request's provisioning steps, or mark a manual step done.
    ControlSteps,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 13] = [
        Action::CreateRequest,
        Action::Decide,
        Action::RetryRequest,
        Action::CancelRequest,
        Action::FixRequest,
        Action::RetryJob,
        Action::SaveConfig,
        Action::PauseQueue,
        Action::DrainWorker,
        Action::ManageOperators,
        Action::Reconcile,
        Action::ReviewQuarantine,
        Action::ControlSteps,
    ];

    /// How the action is named in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CreateRequest => "create requests",
            Self::Decide => "decide approvals",
            Self::RetryRequest => "retry requests",
            Self::CancelRequest => "cancel requests",
            Self::FixRequest => "fix requests in triage",
            Self::RetryJob => "retry jobs",
            Self::SaveConfig => "change configuration",
            Self::PauseQueue => "pause or resume queues",
            Self::DrainWorker => "drain workers",
            Self::ManageOperators => "manage operators",
            Self::Reconcile => "adopt, ignore or revoke target accounts",
            Self::ReviewQuarantine => "release or discard quarantined mail",
            Self::ControlSteps => "retry, re-run, skip or complete provisioning steps",
        }
    }

    /// True when the action targets one request (and so scopes can allow it).
    pub fn on_request(self) -> bool {
        matches!(
            self,
            Self::CreateRequest
                | Self::Decide
                | Self::RetryRequest
                | Self::CancelRequest
                | Self::FixRequest
                | Self::ControlSteps
        )
    }

    /// The weakest role that may take the action.
    pub fn least_role(self) -> Role {
        match self {
            Self::CreateRequest | Self::Decide => Role::Approver,
            _ => Role::Admin,
        }
    }
}

/// Who is asking, as the rules see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// The engine.
    System,
    /// A login with its grant (`None`: not an operator).
    Operator(Option<&'a Grant>),
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The login is not in the operators table.
    #[error("not an operator (ask an admin: gatehouse operator add NAME --role …)")]
    NotAnOperator,
    /// The role is too weak.
    #[error("role {role} may not {what}; it needs {needs}")]
    Role {
        /// The operator's role.
        role: Role,
        /// What was attempted.
        what: &'static str,
        /// The weakest role that may.
        needs: Role,
    },
    /// The request is outside the operator's scopes.
    #[error("request outside scope {scopes} (workflow {workflow}, team {team})")]
    OutOfScope {
        /// The operator's scopes, comma-separated.
        scopes: String,
        /// The request's workflow.
        workflow: String,
        /// The request's team.
        team: String,
    },
    /// A scoped operator tried what belongs to everyone.
    #[error("a scoped operator ({scopes}) may not {what}: that needs an unscoped admin")]
    Scoped {
        /// The operator's scopes.
        scopes: String,
        /// What was attempted.
        what: &'static str,
    },
    /// The engine tried to decide.
    #[error("the engine never decides approvals")]
    SystemDecides,
    /// The requester or subject tried to decide their own request.
    #[error("separation of duties: {who} is the {relation} of request {request}")]
    SeparationOfDuties {
        /// The operator.
        who: String,
        /// `requester`, `creator` or `subject`.
        relation: &'static str,
        /// The request id.
        request: i64,
    },
}

fn scope_list(grant: &Grant) -> String {
    grant
        .scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// May `caller` take `action` on `target` (the request, for actions on one)?
pub fn permits(
    caller: Caller<'_>,
    action: Action,
    target: Option<&Target<'_>>,
) -> Result<(), Denial> {
    let grant = match caller {
        Caller::System if action == Action::Decide => return Err(Denial::SystemDecides),
        Caller::System => return Ok(()),
        Caller::Operator(None) => return Err(Denial::NotAnOperator),
        Caller::Operator(Some(grant)) => grant,
    };
    let needs = action.least_role();
    if grant.role < needs {
        return Err(Denial::Role {
            role: grant.role,
            what: action.describe(),
            needs,
        });
    }
    if grant.unscoped() {
        return Ok(());
    }
    match (action.on_request(), target) {
        (true, Some(t)) if grant.reaches(t) => Ok(()),
        (true, Some(t)) => Err(Denial::OutOfScope {
            scopes: scope_list(grant),
            workflow: t.workflow.to_string(),
            team: t.team.unwrap_or("none").to_string(),
        }),
        _ => Err(Denial::Scoped {
            scopes: scope_list(grant),
            what: action.describe(),
        }),
    }
}

/// The people a request is about and from, by every name the store knows them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties<'a> {
    /// Request id (for the message).
    pub request: i64,
    /// Who asked (a login or an e-mail).
    pub requester: &'a str,
    /// Who entered the request (an operator login or `system:…`), whatever requester it names.
    pub creator: Option<&'a str>,
    /// The subject's account name, once known.
    pub subject_username: Option<&'a str>,
    /// The subject's e-mail.
    pub subject_email: Option<&'a str>,
}

/// The requester, the subject and whoever entered the request never decide its approvals: `login` and `email` are
/// the deciding operator's names (compared case-insensitively, e-mails whole).
pub fn separation_of_duties(
    login: &str,
    email: Option<&str>,
    parties: &Parties<'_>,
) -> Result<(), Denial> {
    let same =
        |a: &str, b: Option<&str>| b.is_some_and(|b| !b.is_empty() && a.eq_ignore_ascii_case(b));
    let names: Vec<&str> = std::iter::once(login).chain(email).collect();
    let denial = |relation| Denial::SeparationOfDuties {
        who: login.to_string(),
        relation,
        request: parties.request,
    };
    if names.iter().any(|n| same(n, Some(parties.requester))) {
        return Err(denial("requester"));
    }
    if same(login, parties.creator) {
        return Err(denial("creator"));
    }
    if names
        .iter()
        .any(|n| same(n, parties.subject_username) || same(n, parties.subject_email))
    {
        return Err(denial("subject"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: Role, scopes: &[&str]) -> Grant {
        Grant {
            role,
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
        }
    }

    const FIN: Target<'static> = Target {
        workflow: "joiner",
        team: Some("finance"),
    };
    const SALES: Target<'static> = Target {
        workflow: "sales-joiner",
        team: Some("sales"),
    };

    #[test]
    fn roles_parse_and_order() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        assert_eq!(Role::parse("superuser"), None);
        assert!(Role::Viewer < Role::Approver && Role::Approver < Role::Admin);
    }

    #[test]
    fn scopes_parse_and_print() {
        assert_eq!(
            Scope::parse("team:finance"),
            Ok(Scope::Team("finance".into()))
        );
        assert_eq!(
            Scope::parse("workflow:sales-joiner").map(|s| s.to_string()),
            Ok("workflow:sales-joiner".to_string())
        );
        for bad in [
            "finance",
            "team:",
            "group:x",
            "team:a b",
            "team:a,b",
            &format!("team:{}", "x".repeat(65)),
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Scope::from_parts("team", "x"),
            Some(Scope::Team("x".into()))
        );
        assert_eq!(Scope::from_parts("other", "x"), None);
    }

    #[test]
    fn unknown_logins_and_viewers_change_nothing() {
        let viewer = grant(Role::Viewer, &[]);
        for action in Action::ALL {
            assert_eq!(
                permits(Caller::Operator(None), action, Some(&FIN)),
                Err(Denial::NotAnOperator)
            );
            assert!(matches!(
                permits(Caller::Operator(Some(&viewer)), action, Some(&FIN)),
                Err(Denial::Role {
                    role: Role::Viewer,
                    ..
                })
            ));
        }
    }

    #[test]
    fn approvers_only_create_and_decide() {
        let approver = grant(Role::Approver, &[]);
        for action in Action::ALL {
            let allowed = permits(Caller::Operator(Some(&approver)), action, Some(&FIN)).is_ok();
            assert_eq!(
                allowed,
                matches!(action, Action::CreateRequest | Action::Decide),
                "{action:?}"
            );
        }
    }

    #[test]
    fn reconcile_decisions_need_an_unscoped_admin() {
        let message = |g: &Grant| {
            permits(Caller::Operator(Some(g)), Action::Reconcile, None).map_err(|d| d.to_string())
        };
        assert_eq!(
            message(&grant(Role::Approver, &[])),
            Err(
                "role approver may not adopt, ignore or revoke target accounts; it needs admin"
                    .into()
            )
        );
        assert!(message(&grant(Role::Viewer, &[])).is_err());
        assert_eq!(
            message(&grant(Role::Admin, &["team:finance"])),
            Err("a scoped operator (team:finance) may not adopt, ignore or revoke target accounts: that needs an unscoped admin".into())
        );
        assert_eq!(message(&grant(Role::Admin, &[])), Ok(()));
        assert_eq!(permits(Caller::System, Action::Reconcile, None), Ok(()));
        assert_eq!(
            permits(Caller::Operator(None), Action::Reconcile, None),
            Err(Denial::NotAnOperator)
        );
    }

    #[test]
    fn unscoped_admins_do_everything() {
        let admin = grant(Role::Admin, &[]);
        for action in Action::ALL {
            assert_eq!(
                permits(Caller::Operator(Some(&admin)), action, Some(&SALES)),
                Ok(())
            );
            assert_eq!(
                permits(Caller::Operator(Some(&admin)), action, None),
                Ok(())
            );
        }
    }

    #[test]
    fn scoped_admins_act_only_inside_their_scope() {
        let admin = grant(Role::Admin, &["team:finance"]);
        for action in Action::ALL {
            let inside = permits(Caller::Operator(Some(&admin)), action, Some(&FIN));
            let outside = permits(Caller::Operator(Some(&admin)), action, Some(&SALES));
            if action.on_request() {
                assert_eq!(inside, Ok(()), "{action:?}");
                assert!(
                    matches!(outside, Err(Denial::OutOfScope { .. })),
                    "{action:?}"
                );
            } else {
                assert!(matches!(inside, Err(Denial::Scoped { .. })), "{action:?}");
                assert!(matches!(outside, Err(Denial::Scoped { .. })), "{action:?}");
            }
        }
        let by_workflow = grant(Role::Admin, &["workflow:sales-joiner"]);
        assert_eq!(
            permits(
                Caller::Operator(Some(&by_workflow)),
                Action::CancelRequest,
                Some(&SALES)
            ),
            Ok(())
        );
        let no_team = Target {
            workflow: "joiner",
            team: None,
        };
        assert!(
            permits(
                Caller::Operator(Some(&admin)),
                Action::RetryRequest,
                Some(&no_team)
            )
            .is_err()
        );
    }

    #[test]
    fn the_engine_does_everything_but_decide() {
        for action in Action::ALL {
            let got = permits(Caller::System, action, Some(&FIN));
            assert_eq!(got.is_ok(), action != Action::Decide, "{action:?}");
        }
    }

    #[test]
    fn requester_and_subject_never_decide() {
        let p = Parties {
            request: 7,
            requester: "Carol@Example.com",
            creator: Some("hank"),
            subject_username: Some("dlee"),
            subject_email: Some("dan.lee@example.com"),
        };
        assert!(matches!(
            separation_of_duties("carol", Some("carol@example.com"), &p),
            Err(Denial::SeparationOfDuties {
                relation: "requester",
                ..
            })
        ));
        assert!(matches!(
            separation_of_duties("DLEE", None, &p),
            Err(Denial::SeparationOfDuties {
                relation: "subject",
                ..
            })
        ));
        assert!(matches!(
            separation_of_duties("dan", Some("dan.lee@example.com"), &p),
            Err(Denial::SeparationOfDuties {
                relation: "subject",
                ..
            })
        ));
        assert_eq!(
            separation_of_duties("erin", Some("erin@example.com"), &p),
            Ok(())
        );
        assert!(matches!(
            separation_of_duties("hank", None, &p),
            Err(Denial::SeparationOfDuties {
                relation: "creator",
                ..
            })
        ));
        let by_login = Parties {
            requester: "carol",
            subject_username: None,
            subject_email: None,
            ..p
        };
        assert!(separation_of_duties("carol", None, &by_login).is_err());
        assert_eq!(separation_of_duties("carola", None, &by_login), Ok(()));
        let empty = Parties {
            requester: "",
            subject_username: Some(""),
            subject_email: None,
            ..p
        };
        assert_eq!(separation_of_duties("x", Some(""), &empty), Ok(()));
    }

    #[test]
    fn denials_name_what_and_why() {
        let viewer = grant(Role::Viewer, &[]);
        let msg = permits(Caller::Operator(Some(&viewer)), Action::PauseQueue, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "role viewer may not pause or resume queues; it needs admin"
        );
        let scoped = grant(Role::Admin, &["team:finance"]);
        let msg = permits(
            Caller::Operator(Some(&scoped)),
            Action::CancelRequest,
            Some(&SALES),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            msg,
            "request outside scope team:finance (workflow sales-joiner, team sales)"
        );
    }
}
