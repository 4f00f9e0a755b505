//! Plain-text summaries put into approval mail: the approval chain (each stage, its policy, who
//! decides and where it stands) and the provisioning plan approvers are asked to approve.

use super::dry_run::DryRunStage;

/// Where an opened stage stands, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedStage {
    /// Zero-based stage index.
    pub stage: u32,
    /// `pending`, `approved`, `rejected`, …
    pub status: String,
    /// Its approvers, resolved when it opened.
    pub approvers: Vec<String>,
    /// Who has decided so far.
    pub decided: Vec<String>,
}

/// One line per stage: `1. manager (any): ann — approved by ann`. Stages not yet opened show
/// the approvers the preview resolved and say they are resolved again when the stage opens.
pub fn chain_text(preview: &[DryRunStage], opened: &[OpenedStage]) -> String {
    preview
        .iter()
        .map(|stage| {
            let number = stage.index + 1;
            let head = format!("{number}. {} ({})", stage.name, stage.policy);
            match opened.iter().find(|o| o.stage as usize == stage.index) {
                Some(o) => {
                    let who = list(&o.approvers);
                    let standing = match (o.status.as_str(), o.decided.is_empty()) {
                        ("pending", true) => "waiting".to_string(),
                        ("pending", false) => {
                            format!("waiting; decided so far: {}", list(&o.decided))
                        }
                        (status, true) => status.to_string(),
                        (status, false) => format!("{status} by {}", list(&o.decided)),
                    };
                    format!("{head}: {who} — {standing}")
                }
                None => format!(
                    "{head}: {} — resolved again when the stage opens",
                    list(&stage.approvers)
                ),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per step: `- account on hr-db: create_account (email = a@x, full_name = Ann)`.
pub fn plan_text<'a>(
    steps: impl IntoIterator<Item = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>)>,
) -> String {
    steps
        .into_iter()
        .map(|(name, connector, action, params)| {
            let params: Vec<String> = params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            if params.is_empty() {
                format!("- {name} on {connector}: {action}")
            } else {
                format!("- {name} on {connector}: {action} ({})", params.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn list(people: &[String]) -> String {
    if people.is_empty() {
        "nobody".to_string()
    } else {
        people.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::Policy;

    fn stage(index: usize, name: &str, policy: Policy, approvers: &[&str]) -> DryRunStage {
        DryRunStage {
            index,
            name: name.into(),
            policy,
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            excluded: vec![],
            unresolved: vec![],
            feasible: true,
            escalate_to: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_chain_says_who_decides_and_where_each_stage_stands() {
        let preview = [
            stage(0, "manager", Policy::Any, &["ann"]),
            stage(1, "security", Policy::Quorum(2), &["cid", "dan", "eve"]),
            stage(2, "finance", Policy::All, &[]),
        ];
        let opened = [
            OpenedStage {
                stage: 0,
                status: "approved".into(),
                approvers: strings(&["ann"]),
                decided: strings(&["ann"]),
            },
            OpenedStage {
                stage: 1,
                status: "pending".into(),
                approvers: strings(&["cid", "dan", "eve"]),
                decided: strings(&["dan"]),
            },
        ];
        assert_eq!(
            chain_text(&preview, &opened),
            "1. manager (any): ann — approved by ann\n\
             2. security (quorum(2)): cid, dan, eve — waiting; decided so far: dan\n\
             3. finance (all): nobody — resolved again when the stage opens"
        );
        let fresh = [OpenedStage {
            stage: 0,
            status: "pending".into(),
            approvers: strings(&["ann"]),
            decided: vec![],
        }];
        assert_eq!(
            chain_text(&preview[..1], &fresh),
            "1. manager (any): ann — waiting"
        );
        assert_eq!(chain_text(&[], &fresh), "");
    }

    #[test]
    fn the_plan_lists_each_step_with_its_values() {
        let text = plan_text([
            (
                "account",
                "hr-db",
                "create_account",
                vec![("email", "ann@example.com"), ("full_name", "Ann Lee")],
            ),
            ("employee", "hr-db", "grant_role", vec![]),
        ]);
        assert_eq!(
            text,
            "- account on hr-db: create_account (email = ann@example.com, full_name = Ann Lee)\n\
             - employee on hr-db: grant_role"
        );
        assert_eq!(plan_text([]), "");
    }
}
