//! Pins: the configuration versions an approval round was opened with, and the rule that
//! provisioning runs only while every pinned document is still the newest version.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One configuration document version an approval round depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PinnedDocument {
    /// `workflow`, `connector` or `role`.
    pub kind: String,
    /// Document name.
    pub name: String,
    /// The version approvers saw.
    pub version: i64,
}

impl fmt::Display for PinnedDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} v{}", self.kind, self.name, self.version)
    }
}

/// A pinned document whose newest version is no longer the pinned one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The document as pinned.
    pub pinned: PinnedDocument,
    /// Its newest version now (`None`: the document no longer exists).
    pub head: Option<i64>,
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.pinned;
        match self.head {
            Some(head) => write!(f, "{} {} v{} → v{head}", p.kind, p.name, p.version),
            None => write!(f, "{} {} v{} → deleted", p.kind, p.name, p.version),
        }
    }
}

/// The pinned documents whose newest version (`head_of(name)`) differs from the pinned one,
/// in the order given.
pub fn drift(pinned: &[PinnedDocument], head_of: impl Fn(&str) -> Option<i64>) -> Vec<Drift> {
    pinned
        .iter()
        .filter_map(|doc| {
            let head = head_of(&doc.name);
            (head != Some(doc.version)).then(|| Drift {
                pinned: doc.clone(),
                head,
            })
        })
        .collect()
}

/// The step message for drift: "configuration changed after approval: workflow sales-joiner
/// v1 → v2; re-approval needed".
pub fn drift_message(drifts: &[Drift]) -> String {
    let list: Vec<String> = drifts.iter().map(ToString::to_string).collect();
    format!(
        "configuration changed after approval: {}; re-approval needed",
        list.join(", ")
    )
}

/// A one-line summary of a pin: "plan pinned: workflow sales-joiner v3, connector hr-db v2".
pub fn pin_summary(documents: &[PinnedDocument]) -> String {
    let list: Vec<String> = documents.iter().map(ToString::to_string).collect();
    format!("plan pinned: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(kind: &str, name: &str, version: i64) -> PinnedDocument {
        PinnedDocument {
            kind: kind.into(),
            name: name.into(),
            version,
        }
    }

    #[test]
    fn unchanged_heads_have_no_drift() {
        let pinned = [
            doc("workflow", "sales-joiner", 3),
            doc("connector", "hr-db", 2),
        ];
        let heads = |name: &str| match name {
            "sales-joiner" => Some(3),
            "hr-db" => Some(2),
            _ => None,
        };
        assert!(drift(&pinned, heads).is_empty());
        assert_eq!(
            pin_summary(&pinned),
            "plan pinned: workflow sales-joiner v3, connector hr-db v2"
        );
    }

    #[test]
    fn a_moved_or_deleted_document_is_drift_and_named() {
        let pinned = [
            doc("workflow", "sales-joiner", 1),
            doc("connector", "hr-db", 2),
        ];
        let d = drift(&pinned, |name| (name == "sales-joiner").then_some(2));
        assert_eq!(d.len(), 2);
        assert_eq!(
            drift_message(&d),
            "configuration changed after approval: workflow sales-joiner v1 → v2, connector hr-db v2 → deleted; re-approval needed"
        );
        // A rollback to an older version is a change too.
        let back = drift(&[doc("connector", "hr-db", 2)], |_| Some(1));
        assert_eq!(back[0].to_string(), "connector hr-db v2 → v1");
    }
}
