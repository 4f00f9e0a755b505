//! Reconciliation: read a target back and compare each account with what Gatehouse expects of
//! it. Every account is `linked` (as expected), `drifted` (linked, but changed out of band:
//! attributes, disabled flag or grants), `orphan` (in the target, unknown to Gatehouse),
//! `unmatched` (Gatehouse expects it, the target does not have it) or `ignored` (an operator
//! said so). Classification is pure; operators' decisions live in the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::model::{Account, Desired};
use super::{AnyConnector, ConnectorError};
use crate::store::api::ConfigVersion;

/// What Gatehouse knows about one account (from the store's links).
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// Account key.
    pub account: String,
    /// `linked`, `ignored`, `revoking` or `revoked`.
    pub status: String,
    /// The state expected of it (a serialized [`Account`]).
    pub expected: Value,
}

/// One account's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Account key.
    pub account: String,
    /// `linked`, `drifted`, `orphan`, `unmatched` or `ignored`.
    pub status: &'static str,
    /// What differs, or why it is reported so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The account as read from the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Account>,
}

/// A reconciliation report for one connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Connector name.
    pub connector: String,
    /// Status → number of accounts.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every account that is not plainly linked, then the linked ones.
    pub findings: Vec<Finding>,
}

/// Why `have` differs from `expected`, or `None`.
fn drift(have: &Account, expected: &Value) -> Option<String> {
    let Ok(want) = serde_json::from_value::<Account>(expected.clone()) else {
        return Some("the expected state is unreadable".into());
    };
    let mut what = Vec::new();
    for (k, v) in &want.attributes {
        if have.attributes.get(k) != Some(v) {
            what.push(format!(
                "{k}: expected {v:?}, found {:?}",
                have.attributes.get(k).map(String::as_str).unwrap_or("")
            ));
        }
    }
    if want.disabled.is_some() && want.disabled != have.disabled {
        what.push(format!(
            "disabled: expected {:?}, found {:?}",
            want.disabled.unwrap_or(false),
            have.disabled.unwrap_or(false)
        ));
    }
    let extra: BTreeSet<&String> = have.grants.difference(&want.grants).collect();
    let missing: BTreeSet<&String> = want.grants.difference(&have.grants).collect();
    if !extra.is_empty() {
        what.push(format!("grants not given by Gatehouse: {extra:?}"));
    }
    if !missing.is_empty() {
        what.push(format!("grants missing: {missing:?}"));
    }
    (!what.is_empty()).then(|| what.join("; "))
}

/// Classify every account of a target against what is known (pure).
pub fn classify(connector: &str, accounts: Vec<Account>, known: &[Known]) -> Report {
    let mut by_key: BTreeMap<&str, &Known> =
        known.iter().map(|k| (k.account.as_str(), k)).collect();
    let mut findings = Vec::new();
    for account in accounts {
        let link = by_key.remove(account.key.as_str());
        let (status, detail) = match link.map(|l| (l.status.as_str(), l)) {
            None => ("orphan", None),
            Some(("ignored", _)) => ("ignored", None),
            Some(("revoking", _)) => ("orphan", Some("revoke pending".to_string())),
            Some(("revoked", _)) => ("orphan", Some("back after it was revoked".to_string())),
            Some((_, l)) => match drift(&account, &l.expected) {
                Some(d) => ("drifted", Some(d)),
                None => ("linked", None),
            },
        };
        findings.push(Finding {
            account: account.key.clone(),
            status,
            detail,
            current: Some(account),
        });
    }
    for (key, link) in by_key {
        if link.status == "linked" {
            findings.push(Finding {
                account: key.to_string(),
                status: "unmatched",
                detail: Some("expected in the target, not found".into()),
                current: None,
            });
        }
    }
    findings.sort_by(|a, b| {
        (a.status == "linked", &a.account).cmp(&(b.status == "linked", &b.account))
    });
    let mut counts = BTreeMap::new();
    for f in &findings {
        *counts.entry(f.status).or_insert(0) += 1;
    }
    Report {
        connector: connector.to_string(),
        counts,
        findings,
    }
}

/// Read every account of connector version `doc` and classify it against `known`.
pub async fn reconcile(doc: &ConfigVersion, known: &[Known]) -> Result<Report, ConnectorError> {
    let connector = AnyConnector::from_doc(doc)?;
    let accounts = connector.list().await?;
    Ok(classify(&doc.name, accounts, known))
}

/// Remove `account` from the target (an operator's revoke): plan the delete against the
/// account as it is, apply it and read back that it is gone. Returns the plan that ran.
pub async fn revoke(doc: &ConfigVersion, account: &str) -> Result<Value, ConnectorError> {
    let connector = AnyConnector::from_doc(doc)?;
    let current = connector.read(account).await?;
    let gone = Desired {
        key: account.to_string(),
        exists: false,
        ..Desired::default()
    };
    let plan = connector.plan(current.as_ref(), &gone)?;
    connector.apply(&plan, &gone).await?;
    Ok(serde_json::to_value(&plan).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(key: &str, team: &str, grants: &[&str]) -> Account {
        Account {
            key: key.into(),
            attributes: [("team".to_string(), team.to_string())].into(),
            disabled: Some(false),
            grants: grants.iter().map(|g| g.to_string()).collect(),
            ..Account::default()
        }
    }

    fn known(key: &str, status: &str, expected: &Account) -> Known {
        Known {
            account: key.into(),
            status: status.into(),
            expected: serde_json::to_value(expected).expect("json"),
        }
    }

    #[test]
    fn every_account_gets_one_verdict() {
        let target = vec![
            account("a", "sales", &["employee"]),
            account("b", "ops", &["employee", "admin"]),
            account("c", "sales", &[]),
            account("d", "x", &[]),
        ];
        let links = vec![
            known("a", "linked", &account("a", "sales", &["employee"])),
            known("b", "linked", &account("b", "sales", &["employee"])),
            known("d", "ignored", &account("d", "x", &[])),
            known("e", "linked", &account("e", "x", &[])),
        ];
        let report = classify("hr-db", target, &links);
        let verdicts: Vec<(&str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.account.as_str(), f.status))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("b", "drifted"),
                ("c", "orphan"),
                ("d", "ignored"),
                ("e", "unmatched"),
                ("a", "linked")
            ]
        );
        assert_eq!(
            report.findings[0].detail.as_deref(),
            Some(
                "team: expected \"sales\", found \"ops\"; grants not given by Gatehouse: {\"admin\"}"
            )
        );
        assert_eq!(report.counts["drifted"], 1);
    }
}
