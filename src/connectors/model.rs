//! The one connector model every target speaks (after ConductorOne Baton's resources,
//! entitlements and grants): accounts with attributes, entitlements granted to them, and a
//! [`Connector`] interface to list, read, plan and apply with a read-back. SQL, SCIM and HTTP
//! targets implement the same trait, and one conformance suite runs against each.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ConnectorError;

/// What a connector can do; callers check before asking for something it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `list` returns every account (a sync / reconciliation is possible).
    pub list: bool,
    /// Accounts can be created and updated.
    pub write_accounts: bool,
    /// Accounts can be disabled (a disabled flag or `active = false`).
    pub disable: bool,
    /// Accounts can be deleted.
    pub delete: bool,
    /// Entitlements (roles, groups) can be read and granted / revoked.
    pub grants: bool,
}

/// An account as a target holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Account {
    /// The account key (the username).
    pub key: String,
    /// Attribute → value, as text (the mapped columns or SCIM attributes).
    pub attributes: BTreeMap<String, String>,
    /// Disabled, when the target has such a flag.
    pub disabled: Option<bool>,
    /// Entitlement values granted to the account in this target.
    pub grants: BTreeSet<String>,
    /// The target's own id for the account (SCIM `id`), when it differs from the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The version tag the target gave (SCIM `meta.version`, an ETag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// What a step wants an account to become. Only what is named is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Desired {
    /// The account key (the username).
    pub key: String,
    /// `false`: the account must not exist (delete).
    pub exists: bool,
    /// Attributes to hold (only these are compared and written).
    pub attributes: BTreeMap<String, String>,
    /// Disabled flag to hold, if named.
    pub disabled: Option<bool>,
    /// Entitlements the account must hold.
    pub grant: BTreeSet<String>,
    /// Entitlements the account must not hold.
    pub revoke: BTreeSet<String>,
    /// A missing account is left missing (update, disable, grant of nobody changes nothing).
    pub partial: bool,
}

/// One operation a plan runs: an SQL statement with bound values, or an HTTP call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Operation {
    /// An SQL statement and its bound values.
    Sql {
        /// The SQL text with placeholders.
        sql: String,
        /// Bound values in order.
        params: Vec<serde_json::Value>,
    },
    /// An HTTP call.
    Http {
        /// Method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// JSON body, if any.
        body: Option<serde_json::Value>,
        /// `If-Match` version the target must still hold (an ETag), if it offers them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        if_match: Option<String>,
        /// The connector's name for the call (an HTTP connector's operation), if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
    },
}

/// What applying would change, and exactly how: shown to approvers, run by `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// `create`, `update`, `delete` or `none` for the account itself.
    pub change: String,
    /// The account before (None: it does not exist).
    pub current: Option<BTreeMap<String, String>>,
    /// Attributes to hold afterwards (None: delete).
    pub desired: Option<BTreeMap<String, serde_json::Value>>,
    /// Entitlements to grant.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub grant: BTreeSet<String>,
    /// Entitlements to revoke.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub revoke: BTreeSet<String>,
    /// The exact operations, in order.
    pub statements: Vec<Operation>,
}

impl Plan {
    /// True when applying changes nothing.
    pub fn is_noop(&self) -> bool {
        self.statements.is_empty()
    }
}

/// A provisioning target in the common model. Implementations plan against the target's
/// current state; applying a plan twice changes nothing the second time (the second plan is
/// empty), and `apply` reads the account back and fails when it does not hold what was asked.
#[allow(async_fn_in_trait)] // used with concrete types only (see `AnyConnector`)
pub trait Connector {
    /// What this connector can do.
    fn capabilities(&self) -> Capabilities;

    /// Every account in the target, with its grants.
    async fn list(&self) -> Result<Vec<Account>, ConnectorError>;

    /// One account, or `None`.
    async fn read(&self, key: &str) -> Result<Option<Account>, ConnectorError>;

    /// The operations that bring `current` (as `read` returned it) to `desired` (pure).
    fn plan(&self, current: Option<&Account>, desired: &Desired) -> Result<Plan, ConnectorError>;

    /// Run `plan`, then read the account back and check it against `desired`.
    async fn apply(
        &self,
        plan: &Plan,
        desired: &Desired,
    ) -> Result<Option<Account>, ConnectorError>;
}

/// Why `account` does not hold `desired`, or `None` when it does (used by every read-back).
pub fn read_back_problem(account: Option<&Account>, desired: &Desired) -> Option<String> {
    match (account, desired.exists) {
        (None, false) => None,
        (Some(_), false) => Some("the account still exists".into()),
        (None, true) if desired.partial => None,
        (None, true) => Some("the account is missing".into()),
        (Some(have), true) => {
            let mut problems: Vec<String> = desired
                .attributes
                .iter()
                .filter(|(k, v)| have.attributes.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            if desired.disabled.is_some() && have.disabled != desired.disabled {
                problems.push("disabled".into());
            }
            let missing: Vec<&String> = desired.grant.difference(&have.grants).collect();
            let extra: Vec<&String> = desired.revoke.intersection(&have.grants).collect();
            if !missing.is_empty() {
                problems.push(format!("grants missing {missing:?}"));
            }
            if !extra.is_empty() {
                problems.push(format!("grants still held {extra:?}"));
            }
            (!problems.is_empty()).then(|| problems.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            key: "a".into(),
            attributes: [("team".to_string(), "x".to_string())].into(),
            disabled: Some(false),
            grants: ["dev".to_string()].into(),
            ..Account::default()
        }
    }

    #[test]
    fn read_back_names_what_differs() {
        let mut want = Desired {
            key: "a".into(),
            exists: true,
            attributes: [("team".to_string(), "x".to_string())].into(),
            disabled: Some(false),
            grant: ["dev".to_string()].into(),
            ..Desired::default()
        };
        assert_eq!(read_back_problem(Some(&account()), &want), None);
        want.disabled = Some(true);
        want.grant.insert("ops".into());
        want.revoke.insert("dev".into());
        assert_eq!(
            read_back_problem(Some(&account()), &want).as_deref(),
            Some("disabled, grants missing [\"ops\"], grants still held [\"dev\"]")
        );
        assert_eq!(
            read_back_problem(None, &want).as_deref(),
            Some("the account is missing")
        );
        want.exists = false;
        assert_eq!(
            read_back_problem(Some(&account()), &want).as_deref(),
            Some("the account still exists")
        );
    }
}
