//! Carrying decisions forward: when a stage with `carry_forward = true` opens, an approver of
//! it who already approved an earlier stage of the same request has that approval recorded
//! for this stage too ("carried forward from stage N"), counted by the stage's policy like a
//! fresh decision. Only a person's own approval carries (not an admin override, not a
//! delegate's decision for them, never a rejection), and separation of duties applies to it
//! exactly as to a decision taken now.

use std::collections::BTreeMap;

use super::authz::{Parties, separation_of_duties};
use super::diagnostic::FieldError;

/// A decision taken on an earlier stage of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierDecision {
    /// The stage index it was taken on.
    pub stage: u32,
    /// Whose decision it is.
    pub approver: String,
    /// Approve (true) or reject.
    pub approved: bool,
    /// An admin decided in the approver's place.
    pub overridden: bool,
    /// A delegate who decided for `approver` (`None`: the approver did).
    pub decided_by: Option<String>,
}

/// An approval to record on the opening stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    /// The approver whose approval is carried.
    pub approver: String,
    /// The earlier stage index it comes from (the first stage they approved).
    pub from_stage: u32,
}

impl Carried {
    /// The mark shown with the decision, e.g. "carried forward from stage 1" (1-based).
    pub fn note(&self) -> String {
        format!("carried forward from stage {}", self.from_stage + 1)
    }
}

/// The approvals to carry into stage `stage` whose approvers are `approvers` (in their order):
/// each approver at most once, from the first earlier stage they approved themselves, when
/// separation of duties allows them to decide the request (`emails` holds the operator
/// e-mail of an approver when one is known, compared like a deciding operator's).
pub fn carried_forward(
    stage: u32,
    approvers: &[String],
    earlier: &[EarlierDecision],
    parties: &Parties<'_>,
    emails: &BTreeMap<String, String>,
) -> Vec<Carried> {
    let mut carried: Vec<Carried> = Vec::new();
    for approver in approvers {
        if carried.iter().any(|c| &c.approver == approver) {
            continue;
        }
        let from = earlier
            .iter()
            .filter(|d| d.stage < stage && &d.approver == approver)
            .filter(|d| d.approved && !d.overridden)
            .filter(|d| d.decided_by.as_ref().is_none_or(|by| by == approver))
            .map(|d| d.stage)
            .min();
        let Some(from_stage) = from else {
            continue;
        };
        let email = emails.get(approver).map(String::as_str);
        if separation_of_duties(approver, email, parties).is_err() {
            continue;
        }
        carried.push(Carried {
            approver: approver.clone(),
            from_stage,
        });
    }
    carried
}

/// Problems with `carry_forward` in a workflow's stages (each stage's flag, in order): the
/// first stage has nothing to carry.
pub fn check_stages(carry_forward: &[bool]) -> Vec<FieldError> {
    match carry_forward.first() {
        Some(true) => vec![FieldError::new(
            "stages[0].carry_forward",
            "the first stage has no earlier stage to carry a decision from",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn approved(stage: u32, approver: &str) -> EarlierDecision {
        EarlierDecision {
            stage,
            approver: approver.into(),
            approved: true,
            overridden: false,
            decided_by: None,
        }
    }

    const PARTIES: Parties<'static> = Parties {
        request: 7,
        requester: "hr@example.com",
        creator: Some("olga"),
        subject_username: Some("ivan"),
        subject_email: Some("ivan@example.com"),
    };

    fn carry(stage: u32, approvers: &[&str], earlier: &[EarlierDecision]) -> Vec<(String, u32)> {
        carried_forward(
            stage,
            &names(approvers),
            earlier,
            &PARTIES,
            &BTreeMap::new(),
        )
        .into_iter()
        .map(|c| (c.approver, c.from_stage))
        .collect()
    }

    #[test]
    fn an_earlier_approver_of_this_stage_is_carried_once_from_their_first_stage() {
        let earlier = [approved(0, "ann"), approved(1, "ann"), approved(1, "bob")];
        assert_eq!(
            carry(2, &["cid", "bob", "ann"], &earlier),
            [("bob".to_string(), 1), ("ann".to_string(), 0)]
        );
        // Not an approver of this stage: nothing is carried for them.
        assert_eq!(carry(2, &["cid"], &earlier), []);
        // Duplicates in the approver list carry once.
        assert_eq!(
            carry(2, &["ann", "ann"], &earlier),
            [("ann".to_string(), 0)]
        );
    }

    #[test]
    fn only_earlier_stages_and_own_approvals_carry() {
        let mut rejected = approved(0, "ann");
        rejected.approved = false;
        let mut overridden = approved(0, "bob");
        overridden.overridden = true;
        let mut delegated = approved(0, "cid");
        delegated.decided_by = Some("dan".into());
        let mut self_named = approved(0, "eve");
        self_named.decided_by = Some("eve".into());
        let later = approved(3, "fay");
        let same = approved(2, "gus");
        let earlier = [rejected, overridden, delegated, self_named, later, same];
        assert_eq!(
            carry(2, &["ann", "bob", "cid", "eve", "fay", "gus"], &earlier),
            [("eve".to_string(), 0)]
        );
        assert_eq!(carry(0, &["eve"], &earlier), []);
    }

    #[test]
    fn separation_of_duties_applies_to_a_carried_approval() {
        // Names the parties go by, however the directory spelled them.
        let earlier = [
            approved(0, "Ivan"),
            approved(0, "olga"),
            approved(0, "hr@example.com"),
            approved(0, "kim"),
            approved(0, "lee"),
        ];
        assert_eq!(
            carry(
                1,
                &["Ivan", "olga", "hr@example.com", "kim", "lee"],
                &earlier
            ),
            [("kim".to_string(), 0), ("lee".to_string(), 0)]
        );
        // An operator whose e-mail is the requester's never decides, carried or not.
        let emails = BTreeMap::from([("kim".to_string(), "HR@example.com".to_string())]);
        let carried = carried_forward(1, &names(&["kim", "lee"]), &earlier, &PARTIES, &emails);
        assert_eq!(
            carried,
            [Carried {
                approver: "lee".into(),
                from_stage: 0
            }]
        );
        assert_eq!(carried[0].note(), "carried forward from stage 1");
    }

    #[test]
    fn the_first_stage_cannot_carry() {
        assert!(check_stages(&[]).is_empty());
        assert!(check_stages(&[false, true]).is_empty());
        assert_eq!(
            check_stages(&[true, true])[0].field,
            "stages[0].carry_forward"
        );
    }
}
