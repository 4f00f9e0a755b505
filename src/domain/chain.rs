//! An approval chain resolved against what the directory answered: the subject's line manager
//! and the manager's manager, group members and owners, named people. Pure: the engine looks
//! the facts up (when the request is validated, for the preview, and again when each stage
//! opens) and passes them here. A source that resolves to nobody is named with why; a stage
//! left with nobody sends the request to triage with those reasons instead of dropping it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::approval::is_feasible;
use super::dry_run::DryRunStage;
use super::workflow::{ApproverSource, Stage};

/// What the directory answered for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFacts {
    /// Who the subject is to the directory (login), when it knows them.
    pub subject: Option<String>,
    /// The names the subject was looked up by, when no directory knows them.
    #[serde(default)]
    pub unknown_subject: Option<String>,
    /// The subject's line manager (login).
    pub line_manager: Option<String>,
    /// The line manager's manager (login).
    pub managers_manager: Option<String>,
    /// Group → member logins (transitive); a missing key means no such group.
    pub members: BTreeMap<String, Vec<String>>,
    /// Group → owner logins; a missing key means no such group.
    pub owners: BTreeMap<String, Vec<String>>,
}

/// The groups `stages` name (as members' or owners' sources, or escalation targets).
pub fn groups_named(stages: &[Stage]) -> BTreeSet<String> {
    let mut groups = BTreeSet::new();
    for stage in stages {
        for source in stage
            .approvers
            .iter()
            .chain(stage.escalation_target().as_ref())
        {
            match source {
                ApproverSource::Group(g) | ApproverSource::GroupOwners(g) => {
                    groups.insert(g.clone());
                }
                _ => {}
            }
        }
    }
    groups
}

/// The people one source resolves to, or why it resolves to nobody.
pub fn resolve_source(source: &ApproverSource, facts: &ChainFacts) -> Result<Vec<String>, String> {
    let who = facts.subject.as_deref().unwrap_or("the subject");
    if let (None, Some(asked)) = (&facts.subject, &facts.unknown_subject)
        && matches!(
            source,
            ApproverSource::LineManager | ApproverSource::ManagersManager
        )
    {
        return Err(format!(
            "{source}: no directory knows the subject ({asked})"
        ));
    }
    match source {
        ApproverSource::LineManager => {
            facts.line_manager.clone().map(|m| vec![m]).ok_or_else(|| {
                format!("line_manager: the directory knows no line manager of {who}")
            })
        }
        ApproverSource::ManagersManager => match (&facts.line_manager, &facts.managers_manager) {
            (_, Some(m)) => Ok(vec![m.clone()]),
            (Some(manager), None) => Err(format!(
                "managers_manager: the directory knows no line manager of {manager} ({who}'s manager)"
            )),
            (None, None) => Err(format!(
                "managers_manager: the directory knows no line manager of {who}"
            )),
        },
        ApproverSource::Group(group) | ApproverSource::GroupOwners(group) => {
            let (map, what) = match source {
                ApproverSource::GroupOwners(_) => (&facts.owners, "owners"),
                _ => (&facts.members, "members"),
            };
            match map.get(group) {
                Some(list) if !list.is_empty() => Ok(list.clone()),
                Some(_) => Err(format!("{source}: the group has no {what}")),
                None => Err(format!(
                    "{source}: no group named \"{group}\" in the directory"
                )),
            }
        }
        ApproverSource::Person(login) => Ok(vec![login.clone()]),
    }
}

/// Resolves stage `index` from the facts: named people first, then each source in order,
/// without duplicates. Separation of duties is applied afterwards by the caller (it knows
/// every name the requester and the subject go by).
pub fn resolve_stage(index: usize, stage: &Stage, facts: &ChainFacts) -> DryRunStage {
    let mut approvers: Vec<String> = stage.people.clone();
    let mut unresolved = Vec::new();
    for source in &stage.approvers {
        match resolve_source(source, facts) {
            Ok(people) => approvers.extend(people),
            Err(why) => unresolved.push(why),
        }
    }
    let mut seen = BTreeSet::new();
    approvers.retain(|a| seen.insert(a.to_lowercase()));
    DryRunStage {
        index,
        name: stage.name.clone(),
        policy: stage.policy,
        feasible: is_feasible(stage.policy, approvers.len()),
        approvers,
        excluded: Vec::new(),
        unresolved,
        escalate_to: stage.escalate_to.clone(),
    }
}

/// True when a resolved stage cannot be decided: nobody is left, or the policy can never be
/// met. A source that resolved to nobody while others supplied approvers (a joiner without a
/// manager yet, approved by a fallback group) does not block; it stays listed in
/// `unresolved`, shown with the plan.
pub fn blocking(stage: &DryRunStage) -> bool {
    !stage.feasible || stage.approvers.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::Policy;

    fn stage(sources: &[&str], people: &[&str], policy: Policy) -> Stage {
        Stage {
            name: "s".into(),
            policy,
            approvers: sources
                .iter()
                .map(|s| ApproverSource::parse(s, false).expect("source"))
                .collect(),
            people: people.iter().map(|p| p.to_string()).collect(),
            remind_after: None,
            escalate_after: None,
            expire_after: None,
            escalate_to: Some("owners:security".into()),
            carry_forward: false,
        }
    }

    fn facts() -> ChainFacts {
        ChainFacts {
            subject: Some("frank".into()),
            unknown_subject: None,
            line_manager: Some("carol".into()),
            managers_manager: Some("alice".into()),
            members: BTreeMap::from([
                ("security".into(), vec!["carol".into(), "dave".into()]),
                ("empty".into(), vec![]),
            ]),
            owners: BTreeMap::from([("security".into(), vec!["alice".into()])]),
        }
    }

    #[test]
    fn sources_resolve_in_order_without_duplicates() {
        let s = stage(
            &[
                "line_manager",
                "managers_manager",
                "group:security",
                "owners:security",
            ],
            &["zed"],
            Policy::Quorum(2),
        );
        let r = resolve_stage(1, &s, &facts());
        assert_eq!(r.approvers, vec!["zed", "carol", "alice", "dave"]);
        assert!(r.unresolved.is_empty() && r.feasible && !blocking(&r));
        assert_eq!(
            groups_named(&[s]).into_iter().collect::<Vec<_>>(),
            vec!["security"]
        );
    }

    #[test]
    fn missing_manager_and_empty_or_unknown_groups_say_why() {
        let mut f = facts();
        f.line_manager = None;
        f.managers_manager = None;
        let s = stage(
            &[
                "line_manager",
                "managers_manager",
                "group:empty",
                "group:nope",
            ],
            &[],
            Policy::Any,
        );
        let r = resolve_stage(0, &s, &f);
        assert!(blocking(&r));
        assert_eq!(
            r.unresolved,
            vec![
                "line_manager: the directory knows no line manager of frank",
                "managers_manager: the directory knows no line manager of frank",
                "group:empty: the group has no members",
                "group:nope: no group named \"nope\" in the directory",
            ]
        );
        let mut top = facts();
        top.managers_manager = None;
        let r = resolve_stage(0, &stage(&["managers_manager"], &[], Policy::Any), &top);
        assert_eq!(
            r.unresolved,
            vec![
                "managers_manager: the directory knows no line manager of carol (frank's manager)"
            ]
        );
        let stranger = ChainFacts {
            unknown_subject: Some("newbie@example.com".into()),
            ..ChainFacts::default()
        };
        let r = resolve_stage(0, &stage(&["line_manager"], &[], Policy::Any), &stranger);
        assert_eq!(
            r.unresolved,
            vec!["line_manager: no directory knows the subject (newbie@example.com)"]
        );
    }
}
