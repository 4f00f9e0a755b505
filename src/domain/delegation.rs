//! Delegation of approvals: FROM lets TO decide in their place until a time. Chains are
//! followed (ann → bob → cid lets cid act for ann) up to [`MAX_CHAIN`] links; a delegation that
//! would close a loop or lengthen a chain past the bound is refused. Pure: the store passes the
//! delegations it holds and applies the answer inside its own transaction.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most links between an approver and the person who finally decides for them.
pub const MAX_CHAIN: usize = 3;

/// One delegation, active while `now < until` (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    /// Who delegates.
    pub from: String,
    /// Who decides in their place.
    pub to: String,
    /// End of the delegation (epoch ms, exclusive).
    pub until: i64,
}

/// Why a delegation is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DelegationError {
    /// FROM and TO are the same person.
    #[error("{0} cannot delegate to themselves")]
    ToSelf(String),
    /// The end is not in the future.
    #[error("the delegation would end before it starts (until must be in the future)")]
    Ended,
    /// TO already (transitively) delegates back to FROM.
    #[error("refused: {from} → {to} would close a loop ({path})")]
    Cycle {
        /// Who delegates.
        from: String,
        /// Who would decide.
        to: String,
        /// The existing path back from TO to FROM.
        path: String,
    },
    /// The chain through this delegation would be longer than [`MAX_CHAIN`].
    #[error("refused: {path} would be a chain of {links} delegations; at most {max} are followed")]
    TooLong {
        /// The longest chain through the new delegation.
        path: String,
        /// Its length.
        links: usize,
        /// [`MAX_CHAIN`].
        max: usize,
    },
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Active delegations at `now`.
fn active(delegations: &[Delegation], now: i64) -> impl Iterator<Item = &Delegation> {
    delegations.iter().filter(move |d| now < d.until)
}

/// Longest active path starting at `start` (as a list of people, `start` first).
fn longest_from(
    delegations: &[Delegation],
    start: &str,
    now: i64,
    seen: &mut Vec<String>,
) -> Vec<String> {
    seen.push(start.to_lowercase());
    let mut best = vec![start.to_string()];
    for d in active(delegations, now).filter(|d| same(&d.from, start)) {
        if seen.contains(&d.to.to_lowercase()) {
            continue;
        }
        let mut path = vec![start.to_string()];
        path.extend(longest_from(delegations, &d.to, now, seen));
        if path.len() > best.len() {
            best = path;
        }
    }
    seen.pop();
    best
}

/// Longest active path ending at `end` (`end` last).
fn longest_to(
    delegations: &[Delegation],
    end: &str,
    now: i64,
    seen: &mut Vec<String>,
) -> Vec<String> {
    seen.push(end.to_lowercase());
    let mut best = vec![end.to_string()];
    for d in active(delegations, now).filter(|d| same(&d.to, end)) {
        if seen.contains(&d.from.to_lowercase()) {
            continue;
        }
        let mut path = longest_to(delegations, &d.from, now, seen);
        path.push(end.to_string());
        if path.len() > best.len() {
            best = path;
        }
    }
    seen.pop();
    best
}

/// Checks a new delegation `from → to` against the active ones: not to oneself, ends in the
/// future, closes no loop, and makes no chain longer than [`MAX_CHAIN`] links.
pub fn check_new(
    delegations: &[Delegation],
    new: &Delegation,
    now: i64,
) -> Result<(), DelegationError> {
    if same(&new.from, &new.to) {
        return Err(DelegationError::ToSelf(new.from.clone()));
    }
    if new.until <= now {
        return Err(DelegationError::Ended);
    }
    // A loop: TO already reaches FROM.
    if let Some(path) = path_between(delegations, &new.to, &new.from, now, usize::MAX) {
        return Err(DelegationError::Cycle {
            from: new.from.clone(),
            to: new.to.clone(),
            path: path.join(" → "),
        });
    }
    let mut before = longest_to(delegations, &new.from, now, &mut Vec::new());
    let after = longest_from(delegations, &new.to, now, &mut Vec::new());
    before.extend(after);
    let links = before.len() - 1;
    if links > MAX_CHAIN {
        return Err(DelegationError::TooLong {
            path: before.join(" → "),
            links,
            max: MAX_CHAIN,
        });
    }
    Ok(())
}

/// The shortest active path from `from` to `to` of at most `max_links` delegations
/// (`from` first, `to` last), or `None`.
pub fn path_between(
    delegations: &[Delegation],
    from: &str,
    to: &str,
    now: i64,
    max_links: usize,
) -> Option<Vec<String>> {
    let mut frontier: Vec<Vec<String>> = vec![vec![from.to_string()]];
    let mut seen: BTreeSet<String> = BTreeSet::from([from.to_lowercase()]);
    let mut links = 0;
    while !frontier.is_empty() && links < max_links {
        links += 1;
        let mut next = Vec::new();
        for path in frontier {
            let Some(last) = path.last() else { continue };
            for d in active(delegations, now).filter(|d| same(&d.from, last)) {
                let mut longer = path.clone();
                longer.push(d.to.clone());
                if same(&d.to, to) {
                    return Some(longer);
                }
                if seen.insert(d.to.to_lowercase()) {
                    next.push(longer);
                }
            }
        }
        frontier = next;
    }
    None
}

/// Whom `actor` may decide for among `approvers` (stage order): each approver with an active
/// chain of at most [`MAX_CHAIN`] delegations ending at `actor`, with that chain.
pub fn acting_for(
    delegations: &[Delegation],
    approvers: &[String],
    actor: &str,
    now: i64,
) -> Vec<(String, Vec<String>)> {
    approvers
        .iter()
        .filter(|a| !same(a, actor))
        .filter_map(|a| path_between(delegations, a, actor, now, MAX_CHAIN).map(|p| (a.clone(), p)))
        .collect()
}

/// Whose decision a decision by `actor` is on a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The approver the decision counts for.
    pub approver: String,
    /// The delegation chain from `approver` to the actor (empty when the approver decided).
    pub chain: Vec<String>,
}

/// Why a decision does not count.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotCounted {
    /// The actor is the requester, the subject or the creator.
    #[error("{0} is a party to this request (separation of duties)")]
    Party(String),
    /// Everyone the actor could decide for is a party to the request.
    #[error(
        "{actor} would act for {approver}, who is a party to this request (separation of duties)"
    )]
    PrincipalIsParty {
        /// Who tried.
        actor: String,
        /// Whom they would act for.
        approver: String,
    },
    /// The actor already decided, and has nobody else to act for.
    #[error("{0} already decided this stage")]
    AlreadyDecided(String),
    /// Neither an approver nor a delegate of an undecided one.
    #[error("{0} is neither an approver of this stage nor acting for one")]
    NotEligible(String),
}

/// Whose decision a decision by `actor` is: their own when they are an undecided approver;
/// else that of the first undecided approver (stage order) who delegated to them through an
/// active chain of at most [`MAX_CHAIN`] links. Separation of duties applies to the actor and
/// to the person acted for (`is_party`). `decided` lists `(approver counted, person who
/// acted)` for the decisions already taken: each approver counts once, and each person acts
/// once per stage (holding someone's delegation never gives a second vote).
pub fn counts_as(
    approvers: &[String],
    decided: &[(String, String)],
    actor: &str,
    is_party: &dyn Fn(&str) -> bool,
    delegations: &[Delegation],
    now: i64,
) -> Result<Counted, NotCounted> {
    if is_party(actor) {
        return Err(NotCounted::Party(actor.to_string()));
    }
    let is_approver = approvers.iter().any(|a| same(a, actor));
    if decided.iter().any(|(_, by)| same(by, actor)) {
        return Err(
            if is_approver || !acting_for(delegations, approvers, actor, now).is_empty() {
                NotCounted::AlreadyDecided(actor.to_string())
            } else {
                NotCounted::NotEligible(actor.to_string())
            },
        );
    }
    let undecided = |name: &str| !decided.iter().any(|(d, _)| same(d, name));
    if let Some(own) = approvers.iter().find(|a| same(a, actor))
        && undecided(own)
    {
        return Ok(Counted {
            approver: own.clone(),
            chain: Vec::new(),
        });
    }
    let candidates: Vec<(String, Vec<String>)> = acting_for(delegations, approvers, actor, now)
        .into_iter()
        .filter(|(approver, _)| undecided(approver))
        .collect();
    if let Some((approver, chain)) = candidates.iter().find(|(a, _)| !is_party(a)) {
        return Ok(Counted {
            approver: approver.clone(),
            chain: chain.clone(),
        });
    }
    if let Some((approver, _)) = candidates.first() {
        return Err(NotCounted::PrincipalIsParty {
            actor: actor.to_string(),
            approver: approver.clone(),
        });
    }
    if is_approver {
        return Err(NotCounted::AlreadyDecided(actor.to_string()));
    }
    Err(NotCounted::NotEligible(actor.to_string()))
}

/// When a delegation ends: an RFC 3339 time, a date (the end of that day, UTC), or a
/// duration from now (`12h`, `7d`, `2w`).
pub fn parse_until(text: &str, now: DateTime<Utc>) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let next = day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| format!("{text} is out of range"))?;
        return Ok(next.and_utc().timestamp_millis());
    }
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a time (2026-12-24T17:00:00Z), a date (2026-12-24) or a duration (12h, 7d, 2w)"))?;
    let per = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use h, d or w, or give a date)"
            ));
        }
    };
    n.checked_mul(per)
        .and_then(|hours| hours.checked_mul(3_600_000))
        .and_then(|ms| now.timestamp_millis().checked_add(ms))
        .ok_or_else(|| format!("{text:?} is too far ahead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(from: &str, to: &str, until: i64) -> Delegation {
        Delegation {
            from: from.into(),
            to: to.into(),
            until,
        }
    }

    #[test]
    fn self_past_loops_and_long_chains_are_refused() {
        let held = vec![d("ann", "bob", 100), d("bob", "cid", 100)];
        assert_eq!(
            check_new(&held, &d("ann", "ann", 100), 0),
            Err(DelegationError::ToSelf("ann".into()))
        );
        assert_eq!(
            check_new(&held, &d("ann", "dan", 5), 5),
            Err(DelegationError::Ended)
        );
        let cycle = check_new(&held, &d("cid", "ann", 100), 0).unwrap_err();
        assert_eq!(
            cycle.to_string(),
            "refused: cid → ann would close a loop (ann → bob → cid)"
        );
        assert!(check_new(&held, &d("cid", "dan", 100), 0).is_ok());
        let longer = vec![
            d("ann", "bob", 100),
            d("bob", "cid", 100),
            d("cid", "dan", 100),
        ];
        assert!(matches!(
            check_new(&longer, &d("dan", "eve", 100), 0),
            Err(DelegationError::TooLong { links: 4, .. })
        ));
        // An expired delegation does not count.
        assert!(check_new(&held, &d("cid", "ann", 200), 100).is_ok());
    }

    #[test]
    fn acting_for_follows_active_chains_in_stage_order() {
        let held = vec![
            d("ann", "bob", 100),
            d("bob", "cid", 100),
            d("eve", "cid", 50),
        ];
        let approvers = vec!["eve".to_string(), "ann".to_string()];
        let found = acting_for(&held, &approvers, "cid", 10);
        assert_eq!(found[0].0, "eve");
        assert_eq!(
            found[1],
            (
                "ann".to_string(),
                vec!["ann".into(), "bob".into(), "cid".into()]
            )
        );
        assert_eq!(acting_for(&held, &approvers, "cid", 60).len(), 1);
        assert!(acting_for(&held, &approvers, "dan", 10).is_empty());
    }
}
