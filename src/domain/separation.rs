//! Separation of duties on a planned approval chain: the requester and the subject of a
//! request never approve it, under any of their names (login or e-mail, as the directory
//! links them). Pure: the caller passes the directory's people.

use std::collections::BTreeSet;

use crate::domain::approval::is_feasible;
use crate::domain::dry_run::DryRunStage;

/// One person of the directory: login and e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Login name.
    pub login: String,
    /// E-mail address.
    pub email: String,
}

/// Every name the given names are known by: each name itself, and for a person of the
/// directory whose login or e-mail matches (case-insensitively), their login and e-mail.
/// Names are returned lower-case.
pub fn identities<'a>(
    names: impl IntoIterator<Item = &'a str>,
    people: &[Person],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in names {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        for person in people {
            if person.login.to_lowercase() == name || person.email.to_lowercase() == name {
                out.insert(person.login.to_lowercase());
                out.insert(person.email.to_lowercase());
            }
        }
        out.insert(name);
    }
    out
}

/// Removes every approver who is one of `parties` (the requester's and the subject's
/// identities) from `stage`, moving them to its `excluded` list, and recomputes whether the
/// stage can still be approved.
pub fn exclude_parties(stage: &mut DryRunStage, parties: &BTreeSet<String>) {
    let (kept, removed): (Vec<String>, Vec<String>) = stage
        .approvers
        .drain(..)
        .partition(|approver| !parties.contains(&approver.to_lowercase()));
    stage.approvers = kept;
    for name in removed {
        if !stage.excluded.contains(&name) {
            stage.excluded.push(name);
        }
    }
    stage.feasible = is_feasible(stage.policy, stage.approvers.len());
}

/// Why a stage cannot be approved, for the triage message: the unresolved sources and who was
/// excluded by separation of duties.
pub fn why_not_approvable(stage: &DryRunStage) -> String {
    let mut reasons: Vec<String> = stage.unresolved.clone();
    if !stage.excluded.is_empty() {
        reasons.push(format!(
            "{} excluded (the requester or the subject never approves)",
            stage.excluded.join(", ")
        ));
    }
    if stage.approvers.is_empty() {
        reasons.push("no eligible approver is left".into());
    } else if !stage.feasible {
        reasons.push(format!(
            "policy {} cannot be met by {}",
            stage.policy,
            stage.approvers.join(", ")
        ));
    }
    format!(
        "stage {} ({}) cannot be approved: {}",
        stage.index + 1,
        stage.name,
        reasons.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::Policy;

    fn people() -> Vec<Person> {
        [("alice", "alice@example.com"), ("bob", "Bob@Example.com")]
            .iter()
            .map(|(l, e)| Person {
                login: l.to_string(),
                email: e.to_string(),
            })
            .collect()
    }

    fn stage(approvers: &[&str], policy: Policy) -> DryRunStage {
        DryRunStage {
            index: 0,
            name: "line-manager".into(),
            policy,
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            excluded: vec![],
            unresolved: vec![],
            feasible: is_feasible(policy, approvers.len()),
            escalate_to: None,
        }
    }

    #[test]
    fn identities_follow_the_directory_both_ways() {
        let ids = identities(["bob@example.com", "", "x@elsewhere"], &people());
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(ids, vec!["bob", "bob@example.com", "x@elsewhere"]);
        let ids = identities(["Alice"], &people());
        assert!(ids.contains("alice@example.com"));
    }

    #[test]
    fn the_requester_under_an_email_alias_is_excluded() {
        let parties = identities(["alice@example.com"], &people());
        let mut s = stage(&["alice", "bob"], Policy::Any);
        exclude_parties(&mut s, &parties);
        assert_eq!(s.approvers, vec!["bob"]);
        assert_eq!(s.excluded, vec!["alice"]);
        assert!(s.feasible);
    }

    #[test]
    fn a_stage_left_without_approvers_is_not_feasible_and_says_why() {
        let parties = identities(["bob"], &people());
        let mut s = stage(&["bob"], Policy::Any);
        exclude_parties(&mut s, &parties);
        assert!(s.approvers.is_empty());
        assert!(!s.feasible);
        let why = why_not_approvable(&s);
        assert_eq!(
            why,
            "stage 1 (line-manager) cannot be approved: bob excluded (the requester or the subject never approves); no eligible approver is left"
        );
        let mut quorum = stage(&["alice", "bob"], Policy::Quorum(2));
        exclude_parties(&mut quorum, &parties);
        assert!(!quorum.feasible);
        assert!(why_not_approvable(&quorum).contains("cannot be met by alice"));
    }
}
