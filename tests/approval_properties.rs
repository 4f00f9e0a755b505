//! Property tests of stage evaluation with delegation and separation of duties, on the pure
//! rules the store applies inside `decide_approval` (`delegation::counts_as`,
//! `approval::evaluate`): no ineligible person's decision ever counts, no stage finishes
//! early, a quorum counts distinct people, and delegation chains never loop.

use std::collections::BTreeSet;

use gatehouse::domain::approval::{Policy, StageOutcome, evaluate};
use gatehouse::domain::delegation::{
    Delegation, MAX_CHAIN, acting_for, check_new, counts_as, path_between,
};
use proptest::prelude::*;

const PEOPLE: [&str; 7] = ["ann", "bob", "cid", "dan", "eve", "fay", "gus"];
const NOW: i64 = 1_000;

fn name(i: usize) -> String {
    PEOPLE[i % PEOPLE.len()].to_string()
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Any),
        Just(Policy::All),
        (1u32..5).prop_map(Policy::Quorum),
    ]
}

/// Delegations proposed at random, kept only when the store's rule accepts them.
fn accepted(proposals: &[(usize, usize, i64)]) -> Vec<Delegation> {
    let mut held: Vec<Delegation> = Vec::new();
    for (from, to, until) in proposals {
        let new = Delegation {
            from: name(*from),
            to: name(*to),
            until: *until,
        };
        if check_new(&held, &new, NOW).is_ok() {
            held.push(new);
        }
    }
    held
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepted_delegations_never_loop_and_stay_bounded(
        proposals in prop::collection::vec((0usize..7, 0usize..7, 500i64..3_000), 0..20),
    ) {
        let held = accepted(&proposals);
        for a in PEOPLE {
            // Nobody reaches themselves through active delegations.
            prop_assert!(path_between(&held, a, a, NOW, usize::MAX).is_none()
                || held.iter().all(|d| d.until <= NOW));
            for b in PEOPLE {
                if let Some(path) = path_between(&held, a, b, NOW, usize::MAX) {
                    prop_assert!(path.len() - 1 <= MAX_CHAIN, "{path:?}");
                    let distinct: BTreeSet<&String> = path.iter().collect();
                    prop_assert_eq!(distinct.len(), path.len(), "a path repeats a person: {:?}", path);
                }
            }
        }
    }

    #[test]
    fn chains_found_in_any_graph_are_short_and_loop_free(
        raw in prop::collection::vec((0usize..7, 0usize..7, 500i64..3_000), 0..25),
    ) {
        // Even delegations the store would refuse (loops, long chains) never make the
        // search loop or return a chain past the bound.
        let held: Vec<Delegation> = raw.iter().map(|(f, t, u)| Delegation { from: name(*f), to: name(*t), until: *u }).collect();
        let approvers: Vec<String> = PEOPLE.iter().map(|p| p.to_string()).collect();
        for actor in PEOPLE {
            for (approver, chain) in acting_for(&held, &approvers, actor, NOW) {
                prop_assert!(chain.len() - 1 <= MAX_CHAIN);
                prop_assert_eq!(chain.first(), Some(&approver));
                prop_assert_eq!(chain.last().map(String::as_str), Some(actor));
                let distinct: BTreeSet<&String> = chain.iter().collect();
                prop_assert_eq!(distinct.len(), chain.len());
            }
        }
    }

    #[test]
    fn only_eligible_distinct_people_count_and_no_stage_finishes_early(
        policy in policy(),
        approver_ids in prop::collection::btree_set(0usize..7, 0..6),
        party_ids in prop::collection::btree_set(0usize..7, 0..3),
        proposals in prop::collection::vec((0usize..7, 0usize..7, 500i64..3_000), 0..12),
        attempts in prop::collection::vec((0usize..7, prop::bool::weighted(0.8)), 0..25),
    ) {
        let approvers: Vec<String> = approver_ids.iter().map(|i| name(*i)).collect();
        let parties: BTreeSet<String> = party_ids.iter().map(|i| name(*i)).collect();
        let is_party = |n: &str| parties.contains(n);
        let delegations = accepted(&proposals);
        // The stage's pool as the engine opens it: parties are never approvers.
        let pool: Vec<String> = approvers.iter().filter(|a| !parties.contains(*a)).cloned().collect();
        let mut decided: Vec<(String, String)> = Vec::new();
        let mut decisions: Vec<(String, bool)> = Vec::new();
        let mut outcome = StageOutcome::Pending;
        for (actor, approve) in attempts {
            if outcome != StageOutcome::Pending {
                break;
            }
            let actor = name(actor);
            let Ok(counted) = counts_as(&pool, &decided, &actor, &is_party, &delegations, NOW) else {
                continue;
            };
            // Who counts is an approver of the stage, not a party; who acted is not a party
            // and is that approver or at the end of an active, bounded delegation chain.
            prop_assert!(pool.contains(&counted.approver));
            prop_assert!(!parties.contains(&counted.approver) && !parties.contains(&actor));
            if counted.approver != actor {
                let path = path_between(&delegations, &counted.approver, &actor, NOW, MAX_CHAIN);
                prop_assert!(path.is_some());
                prop_assert_eq!(path, Some(counted.chain.clone()));
            } else {
                prop_assert!(counted.chain.is_empty());
            }
            decided.push((counted.approver.clone(), actor.clone()));
            decisions.push((counted.approver.clone(), approve));
            outcome = evaluate(policy, &pool, &decisions);
        }
        // Each approver counted once; each person acted once.
        let approvers_counted: BTreeSet<&String> = decided.iter().map(|(a, _)| a).collect();
        let actors: BTreeSet<&String> = decided.iter().map(|(_, b)| b).collect();
        prop_assert_eq!(approvers_counted.len(), decided.len());
        prop_assert_eq!(actors.len(), decided.len());
        let approvals: Vec<&(String, String)> = decided.iter().zip(&decisions).filter(|(_, (_, ok))| *ok).map(|(d, _)| d).collect();
        if outcome == StageOutcome::Approved {
            match policy {
                Policy::Any => prop_assert!(!approvals.is_empty()),
                Policy::All => {
                    prop_assert!(!pool.is_empty());
                    prop_assert!(pool.iter().all(|p| approvals.iter().any(|(a, _)| a == p)));
                }
                Policy::Quorum(n) => {
                    // n distinct approvers, decided by n distinct people.
                    let people: BTreeSet<&String> = approvals.iter().map(|(_, by)| by).collect();
                    prop_assert!(approvals.len() >= n as usize);
                    prop_assert!(people.len() >= n as usize);
                }
            }
        }
        // Not finished early: every prefix before the last decision was still pending.
        for k in 0..decisions.len().saturating_sub(1) {
            prop_assert_eq!(evaluate(policy, &pool, &decisions[..=k]), StageOutcome::Pending);
        }
    }
}
