//! Provisioning connectors: turn a planned workflow step into changes in a target system.
//!
//! Every target speaks one model ([`model`]: accounts, entitlements, grants) through the
//! [`model::Connector`] interface. A step goes through three phases so the engine can pin,
//! record and audit it: [`intent`] (pure: which account, which values and entitlements, from a
//! pinned connector version and pinned roles), [`prepare`] (read the account, plan the exact
//! statements or calls; a `create_account` on an account that already exists is refused unless
//! the connector says `adopt_existing = true` or the engine vouches that this request created
//! it in an earlier attempt), and [`Prepared::apply`] (run the plan and read the account back).

mod any;
pub mod dormant;
pub mod http;
pub mod model;
pub mod reconcile;
pub mod scim;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::config::{
    ConfigDocument, Connector, ConnectorBackend, SqlSettings, check_document,
};
use crate::domain::dry_run::{PlannedStep, SampleRequest};
use crate::domain::role::{Entitlement, Role, resolve_entitlements};
use crate::domain::workflow::StepAction;
use crate::store::api::ConfigVersion;
pub use any::{AnyConnector, desired_of};
use model::{Account, Desired, Plan};
use sql::SqlValue;

/// Why a step could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connector document is not usable (wrong kind, missing settings, unresolvable secret).
    #[error("connector {name}: {message}")]
    Config {
        /// Connector name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The SCIM service refused or could not be reached.
    #[error("connector {name}: {source}")]
    Scim {
        /// Connector name.
        name: String,
        /// The service's error.
        #[source]
        source: scim::ScimError,
    },
    /// The HTTP service refused or could not be reached.
    #[error("connector {name}: {source}")]
    Http {
        /// Connector name.
        name: String,
        /// The service's error.
        #[source]
        source: http::HttpError,
    },
    /// A grant or revoke names an account the target does not have.
    #[error("account {username} does not exist in {name}; {action} needs it")]
    Missing {
        /// Connector name.
        name: String,
        /// The account.
        username: String,
        /// The step's action.
        action: StepAction,
    },
    /// The target refused or could not be reached.
    #[error("connector {name}: {source}")]
    Sql {
        /// Connector name.
        name: String,
        /// The target's error.
        #[source]
        source: sql::SqlTargetError,
    },
    /// `create_account` found the account already there and may not take it over.
    #[error(
        "account {username} already exists in {name}; set adopt_existing = true on the connector to adopt it"
    )]
    AccountExists {
        /// Connector name.
        name: String,
        /// The account.
        username: String,
    },
    /// The account exists and an earlier attempt of this request meant to create it, but it
    /// does not hold the values this request writes: someone else's account, not ours.
    #[error(
        "account {username} in {name} exists but does not hold the values this request created it with; it is not taken over"
    )]
    NotOurs {
        /// Connector name.
        name: String,
        /// The account.
        username: String,
    },
    /// After applying, the account does not read back as written.
    #[error("account {username} in {name} does not read back as written: {detail}")]
    ReadBack {
        /// Connector name.
        name: String,
        /// The account.
        username: String,
        /// Which columns differ.
        detail: String,
    },
}

impl ConnectorError {
    /// True when a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Sql { source, .. } => source.is_transient(),
            Self::Scim { source, .. } => source.is_transient(),
            Self::Http { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

/// What one step will write, derived purely from a connector version, the pinned step and
/// the request. Stored with the pin (approvers see it) and compared again before applying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepIntent {
    /// Connector name.
    pub connector: String,
    /// Connector version the intent was derived from.
    pub connector_version: i64,
    /// The step's action.
    pub action: StepAction,
    /// The account key (username).
    pub username: String,
    /// Column → value to write (`None`: delete the account).
    pub desired: Option<BTreeMap<String, SqlValue>>,
    /// A missing account is left missing (update, enable, disable of nobody changes nothing).
    pub partial: bool,
    /// The connector adopts an existing account on create.
    pub adopt_existing: bool,
    /// Entitlements the account must hold afterwards (a role's bundle on this connector).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub grant: BTreeSet<String>,
    /// Entitlements the account must not hold afterwards.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub revoke: BTreeSet<String>,
}

/// Parse a stored connector document.
pub fn parse_connector(doc: &ConfigVersion) -> Result<Connector, ConnectorError> {
    let config_err = |message: String| ConnectorError::Config {
        name: doc.name.clone(),
        message,
    };
    match check_document(&doc.name, &doc.body) {
        Ok(ConfigDocument::Connector(c)) => Ok(c),
        Ok(other) => Err(config_err(format!(
            "is a {} document, not a connector",
            other.kind()
        ))),
        Err(ds) => Err(config_err(
            ds.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// The values a step writes: request fields, then the step's rendered parameters on top.
fn step_values(step: &PlannedStep, request: &SampleRequest) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = request.fields.clone();
    values.insert("subject_name".into(), request.subject_name.clone());
    values.insert("full_name".into(), request.subject_name.clone());
    if let Some(email) = &request.subject_email {
        values.insert("subject_email".into(), email.clone());
        values.insert("email".into(), email.clone());
    }
    if let Some(username) = &request.username {
        values.insert("username".into(), username.clone());
    }
    values.insert("requester".into(), request.requester.clone());
    values.extend(step.params.clone());
    values
}

/// How a connector names the account fields it writes, and its "disabled" flag.
struct Mapping {
    /// Request field → target attribute (SQL column, SCIM attribute).
    fields: BTreeMap<String, String>,
    /// The attribute holding the disabled flag and whether it is inverted (SCIM `active`).
    disabled: Option<(String, bool)>,
    adopt_existing: bool,
}

fn mapping(name: &str, connector: &Connector) -> Result<Mapping, ConnectorError> {
    let config_err = |message: &str| ConnectorError::Config {
        name: name.to_string(),
        message: message.to_string(),
    };
    match connector.backend {
        ConnectorBackend::Sql => {
            let s = sql_settings(name, connector)?;
            Ok(Mapping {
                fields: s
                    .columns
                    .iter()
                    .map(|(f, c)| (f.clone(), c.as_str().to_string()))
                    .collect(),
                disabled: s
                    .disabled_column
                    .as_ref()
                    .map(|c| (c.as_str().to_string(), false)),
                adopt_existing: s.adopt_existing,
            })
        }
        ConnectorBackend::Scim => {
            let s = connector
                .scim
                .as_ref()
                .ok_or_else(|| config_err("has no [scim] settings"))?;
            Ok(Mapping {
                fields: scim::FIELD_MAP
                    .iter()
                    .map(|(f, a)| (f.to_string(), a.to_string()))
                    .collect(),
                disabled: Some(("active".into(), true)),
                adopt_existing: s.adopt_existing,
            })
        }
        ConnectorBackend::Http => {
            let s = connector
                .http
                .as_ref()
                .ok_or_else(|| config_err("has no [http] settings"))?;
            Ok(Mapping {
                fields: s.fields.clone(),
                disabled: s
                    .disabled_pointer
                    .is_some()
                    .then(|| (http::DISABLED_ATTR.to_string(), false)),
                adopt_existing: s.adopt_existing,
            })
        }
    }
}

fn sql_settings<'a>(
    name: &str,
    connector: &'a Connector,
) -> Result<&'a SqlSettings, ConnectorError> {
    connector
        .sql
        .as_ref()
        .ok_or_else(|| ConnectorError::Config {
            name: name.to_string(),
            message: "has no [sql] settings".into(),
        })
}

/// The entitlement values `role` grants on `connector`, inherited roles included.
pub fn role_bundle(
    roles: &BTreeMap<String, Role>,
    role: &str,
    connector: &str,
) -> Result<BTreeSet<String>, ConnectorError> {
    let all = resolve_entitlements(roles, role).map_err(|e| ConnectorError::Config {
        name: connector.to_string(),
        message: format!("role {role}: {e}"),
    })?;
    Ok(all
        .iter()
        .filter_map(|e| Entitlement::parse(e).ok())
        .filter(|e| e.connector == connector)
        .map(|e| e.value)
        .collect())
}

/// What `step` will write with connector version `doc` for `request` (pure). `roles` are the
/// role documents a `grant_role` / `revoke_role` step resolves its bundle from (the pinned
/// versions): a joiner's grant is the role's bundle on this connector; a mover's
/// (`previous_role` set) also revokes what the old bundle has and the new one does not; a
/// revoke removes the bundle.
pub fn intent(
    doc: &ConfigVersion,
    step: &PlannedStep,
    request: &SampleRequest,
    roles: &BTreeMap<String, Role>,
) -> Result<StepIntent, ConnectorError> {
    let name = doc.name.clone();
    let connector = parse_connector(doc)?;
    let map = mapping(&name, &connector)?;
    let config_err = |message: String| ConnectorError::Config {
        name: name.clone(),
        message,
    };
    let username = request
        .username
        .clone()
        .ok_or_else(|| config_err("the request has no username".into()))?;
    let values = step_values(step, request);
    let mapped = |source: &BTreeMap<String, String>| -> BTreeMap<String, SqlValue> {
        map.fields
            .iter()
            .filter_map(|(field, attr)| {
                source
                    .get(field)
                    .map(|v| (attr.clone(), SqlValue::Text(v.clone())))
            })
            .collect()
    };
    let disabled = |on: bool| -> Result<BTreeMap<String, SqlValue>, ConnectorError> {
        let (attr, inverted) = map.disabled.clone().ok_or_else(|| {
            let needs = match connector.backend {
                ConnectorBackend::Http => {
                    "http.disabled_pointer and the disable_account / enable_account operations"
                }
                _ => "sql.disabled_column",
            };
            config_err(format!("{} needs {needs}", step.action))
        })?;
        Ok([(attr, SqlValue::Bool(on != inverted))].into())
    };
    let mut grant = BTreeSet::new();
    let mut revoke = BTreeSet::new();
    let (desired, partial) = match step.action {
        StepAction::CreateAccount => {
            let mut row = mapped(&values);
            if let Some((attr, inverted)) = &map.disabled {
                row.insert(attr.clone(), SqlValue::Bool(*inverted));
            }
            (Some(row), false)
        }
        StepAction::UpdateAccount => (Some(mapped(&step.params)), true),
        StepAction::DisableAccount => (Some(disabled(true)?), true),
        StepAction::EnableAccount => (Some(disabled(false)?), true),
        StepAction::DeleteAccount => (None, false),
        StepAction::Manual => {
            return Err(config_err(
                "a manual step writes nothing: a person does it".into(),
            ));
        }
        StepAction::GrantRole | StepAction::RevokeRole => {
            let role = step
                .params
                .get("role")
                .filter(|r| !r.trim().is_empty() && !r.contains('{'))
                .ok_or_else(|| config_err(format!("{} needs params.role", step.action)))?;
            let bundle = role_bundle(roles, role, &name)?;
            if step.action == StepAction::GrantRole {
                if let Some(previous) = step
                    .params
                    .get("previous_role")
                    .filter(|r| !r.trim().is_empty() && !r.contains('{'))
                {
                    let old = role_bundle(roles, previous, &name)?;
                    revoke = old.difference(&bundle).cloned().collect();
                }
                grant = bundle;
            } else {
                revoke = bundle;
            }
            (Some(BTreeMap::new()), true)
        }
    };
    Ok(StepIntent {
        connector: name,
        connector_version: doc.version,
        action: step.action,
        username,
        desired,
        partial,
        adopt_existing: map.adopt_existing,
        grant,
        revoke,
    })
}

/// A step planned against the target's current state, ready to apply.
pub struct Prepared {
    connector: AnyConnector,
    desired: Desired,
    plan: Plan,
    outcome: &'static str,
}

/// What applying a step did: the plan run and the account read back afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// `created`, `updated`, `deleted`, `granted`, `revoked`, `adopted`, `unchanged`, or
    /// `already-created` (an earlier attempt of this request created it).
    pub outcome: String,
    /// The plan: current and desired values and the exact operations run.
    pub plan: Plan,
    /// The account's attributes as read back after the plan (`None`: it does not exist).
    pub read_back: Option<BTreeMap<String, String>>,
    /// The account's entitlements as read back.
    pub grants_read_back: BTreeSet<String>,
    /// The whole account as read back (what reconciliation expects of it afterwards).
    pub state: Option<Account>,
}

/// Read the account and plan the operations for `intent` (connector version `doc`).
/// `ours`: an earlier attempt of this request recorded the intent to create this account, so
/// an existing account holding exactly the desired values is the one it created.
pub async fn prepare(
    doc: &ConfigVersion,
    intent: &StepIntent,
    ours: bool,
) -> Result<Prepared, ConnectorError> {
    let connector = AnyConnector::from_doc(doc)?;
    let desired = desired_of(&connector, intent);
    let current = connector.read(&intent.username).await?;
    let (plan, outcome) = decide(&connector, intent, &desired, current.as_ref(), ours)?;
    Ok(Prepared {
        connector,
        desired,
        plan,
        outcome,
    })
}

/// The create-is-not-adopt rule and the plan (pure).
fn decide(
    connector: &AnyConnector,
    intent: &StepIntent,
    desired: &Desired,
    current: Option<&Account>,
    ours: bool,
) -> Result<(Plan, &'static str), ConnectorError> {
    let key = intent.username.as_str();
    if intent.action == StepAction::CreateAccount
        && let Some(have) = current
    {
        if intent.adopt_existing {
            return Ok((connector.plan(current, desired)?, "adopted"));
        }
        if ours {
            if model::read_back_problem(Some(have), desired).is_none() {
                return Ok((connector.plan(current, desired)?, "already-created"));
            }
            return Err(ConnectorError::NotOurs {
                name: intent.connector.clone(),
                username: key.to_string(),
            });
        }
        return Err(ConnectorError::AccountExists {
            name: intent.connector.clone(),
            username: key.to_string(),
        });
    }
    if matches!(intent.action, StepAction::GrantRole) && current.is_none() {
        return Err(ConnectorError::Missing {
            name: intent.connector.clone(),
            username: key.to_string(),
            action: intent.action,
        });
    }
    let plan = connector.plan(current, desired)?;
    let outcome = match (
        plan.change.as_str(),
        plan.grant.is_empty(),
        plan.revoke.is_empty(),
    ) {
        ("create", _, _) => "created",
        ("update", _, _) => "updated",
        ("delete", _, _) => "deleted",
        (_, false, true) => "granted",
        (_, true, false) => "revoked",
        (_, false, false) => "regranted",
        _ => "unchanged",
    };
    Ok((plan, outcome))
}

impl Prepared {
    /// The planned operations and values.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What applying will be recorded as (`created`, `adopted`, …).
    pub fn outcome(&self) -> &'static str {
        self.outcome
    }

    /// True when the plan creates the account (the engine records its intent first).
    pub fn creates(&self) -> bool {
        self.plan.change == "create"
    }

    /// Drop the plan without applying anything.
    pub async fn abandon(self) {}

    /// Run the plan, then read the account back and check it holds what was asked.
    pub async fn apply(self) -> Result<Applied, ConnectorError> {
        let back = self.connector.apply(&self.plan, &self.desired).await?;
        Ok(Applied {
            outcome: self.outcome.to_string(),
            plan: self.plan,
            grants_read_back: back.as_ref().map(|a| a.grants.clone()).unwrap_or_default(),
            read_back: back.as_ref().map(|a| a.attributes.clone()),
            state: back,
        })
    }
}

/// How long a preview waits for the target before showing that it could not ask it.
pub const PREVIEW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Preview `intent` without writing: the plan as it would run now, or why it cannot run
/// (including a target that does not answer within [`PREVIEW_TIMEOUT`]). Shown to approvers
/// with the pin.
pub async fn preview(doc: &ConfigVersion, intent: &StepIntent) -> serde_json::Value {
    match tokio::time::timeout(PREVIEW_TIMEOUT, prepare(doc, intent, false)).await {
        Ok(Ok(prepared)) => serde_json::json!({
            "outcome": prepared.outcome(),
            "plan": prepared.plan(),
        }),
        Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
        Err(_) => serde_json::json!({
            "error": format!(
                "connector {}: the target did not answer within {} s; statements are planned when provisioning runs",
                intent.connector,
                PREVIEW_TIMEOUT.as_secs()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::sql::{SqlConnector, SqlTargetSpec};
    use crate::domain::config::{SqlDialect, SqlIdent, SqlLimits};

    fn ident(s: &str) -> SqlIdent {
        SqlIdent::new(s).expect("ident")
    }

    fn connector() -> AnyConnector {
        AnyConnector::Sql(SqlConnector::new(SqlTargetSpec {
            name: "hr-db".into(),
            dialect: SqlDialect::Sqlite,
            url: "sqlite::memory:".into(),
            schema: None,
            table: ident("accounts"),
            key_column: ident("username"),
            columns: vec![ident("username"), ident("full_name")],
            disabled_column: Some(ident("disabled")),
            grants: None,
            limits: SqlLimits::default(),
        }))
    }

    fn intent(action: StepAction, adopt: bool) -> StepIntent {
        StepIntent {
            connector: "hr-db".into(),
            connector_version: 1,
            action,
            username: "gnunez".into(),
            desired: Some(
                [
                    ("full_name".to_string(), SqlValue::Text("Gina Nunez".into())),
                    ("disabled".to_string(), SqlValue::Bool(false)),
                ]
                .into(),
            ),
            partial: action != StepAction::CreateAccount,
            adopt_existing: adopt,
            grant: BTreeSet::new(),
            revoke: BTreeSet::new(),
        }
    }

    fn account(full_name: &str, disabled: bool) -> Option<Account> {
        Some(Account {
            key: "gnunez".into(),
            attributes: [
                ("username".to_string(), "gnunez".to_string()),
                ("full_name".to_string(), full_name.to_string()),
            ]
            .into(),
            disabled: Some(disabled),
            ..Account::default()
        })
    }

    fn decide_for(
        i: &StepIntent,
        current: Option<Account>,
        ours: bool,
    ) -> Result<(Plan, &'static str), ConnectorError> {
        let c = connector();
        let desired = desired_of(&c, i);
        decide(&c, i, &desired, current.as_ref(), ours)
    }

    #[test]
    fn create_on_a_missing_account_inserts() {
        let (plan, outcome) =
            decide_for(&intent(StepAction::CreateAccount, false), None, false).expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("create", "created"));
    }

    #[test]
    fn create_on_an_existing_account_is_refused_with_a_clear_error() {
        let err = decide_for(
            &intent(StepAction::CreateAccount, false),
            account("Somebody Else", true),
            false,
        )
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "account gnunez already exists in hr-db; set adopt_existing = true on the connector to adopt it"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn adopt_existing_updates_and_says_adopted() {
        let (plan, outcome) = decide_for(
            &intent(StepAction::CreateAccount, true),
            account("Somebody Else", true),
            false,
        )
        .expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("update", "adopted"));
    }

    #[test]
    fn our_own_earlier_create_is_recognised_only_when_it_matches() {
        let i = intent(StepAction::CreateAccount, false);
        let (plan, outcome) = decide_for(&i, account("Gina Nunez", false), true).expect("ours");
        assert_eq!((plan.change.as_str(), outcome), ("none", "already-created"));
        assert!(plan.statements.is_empty());
        assert!(matches!(
            decide_for(&i, account("Gina Nunez", true), true),
            Err(ConnectorError::NotOurs { .. })
        ));
    }

    #[test]
    fn partial_steps_leave_a_missing_account_missing() {
        let (plan, outcome) =
            decide_for(&intent(StepAction::UpdateAccount, false), None, false).expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("none", "unchanged"));
    }

    #[test]
    fn a_grant_on_a_missing_account_is_refused_and_without_a_grants_table_too() {
        let mut i = intent(StepAction::GrantRole, false);
        i.desired = Some(BTreeMap::new());
        i.grant = ["developer".to_string()].into();
        let err = decide_for(&i, None, false).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "account gnunez does not exist in hr-db; grant_role needs it"
        );
        let err = decide_for(&i, account("Gina Nunez", false), false).expect_err("no table");
        assert!(err.to_string().contains("[sql.grants]"), "{err}");
    }

    fn role(name: &str, entitlements: &[&str], inherits: &[&str]) -> (String, Role) {
        (
            name.to_string(),
            Role {
                name: name.into(),
                description: String::new(),
                entitlements: entitlements.iter().map(|e| e.to_string()).collect(),
                inherits: inherits.iter().map(|e| e.to_string()).collect(),
            },
        )
    }

    #[test]
    fn role_bundles_are_per_connector_and_movers_revoke_the_difference() {
        let roles: BTreeMap<String, Role> = [
            role("employee", &["hr-db:employee", "crm:viewer"], &[]),
            role("developer", &["hr-db:developer"], &["employee"]),
            role("sales", &["hr-db:sales"], &["employee"]),
        ]
        .into();
        let set =
            |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            role_bundle(&roles, "developer", "hr-db").expect("bundle"),
            set(&["developer", "employee"])
        );
        let doc = ConfigVersion {
            name: "hr-db".into(),
            kind: "connector".into(),
            version: 2,
            body: include_str!("../../tests/good_configs/hr-db.toml").into(),
            author: String::new(),
            comment: String::new(),
            created_at: Default::default(),
        };
        let step = PlannedStep {
            name: "role".into(),
            connector: "hr-db".into(),
            action: StepAction::GrantRole,
            params: [
                ("role".to_string(), "developer".to_string()),
                ("previous_role".to_string(), "sales".to_string()),
            ]
            .into(),
        };
        let request = SampleRequest {
            username: Some("gnunez".into()),
            ..SampleRequest::default()
        };
        let i = super::intent(&doc, &step, &request, &roles).expect("intent");
        assert_eq!(i.grant, set(&["developer", "employee"]));
        assert_eq!(i.revoke, set(&["sales"]));
        let err = super::intent(&doc, &step, &request, &BTreeMap::new()).expect_err("unknown");
        assert!(err.to_string().contains("unknown role"), "{err}");
    }
}
