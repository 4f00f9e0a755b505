//! Provisioning connectors: turn a planned workflow step into changes in a target system.
//!
//! A step goes through three phases so the engine can pin, record and audit it:
//! [`intent`] (pure: which account, which values, from a pinned connector version),
//! [`prepare`] (connect, read the account, plan the exact statements; a `create_account` on an
//! account that already exists is refused unless the connector says `adopt_existing = true`
//! or the engine vouches that this request created it in an earlier attempt), and
//! [`Prepared::apply`] (run the statements and read the account back).

pub mod sql;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::config::{
    ConfigDocument, Connector, ConnectorBackend, DatabaseUrl, SqlIdent, SqlSettings, check_document,
};
use crate::domain::workflow::{PlannedStep, SampleRequest, StepAction};
use crate::store::api::ConfigVersion;
use sql::{SqlPlan, SqlTargetSpec, SqlValue};

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
    /// The connector type is not implemented yet.
    #[error("connector {name}: {what} is not implemented yet")]
    Unsupported {
        /// Connector name.
        name: String,
        /// What is missing.
        what: String,
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
        matches!(self, Self::Sql { source, .. } if source.is_transient())
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

fn sql_settings<'a>(
    name: &str,
    connector: &'a Connector,
) -> Result<&'a SqlSettings, ConnectorError> {
    match (connector.backend, &connector.sql) {
        (ConnectorBackend::Sql, Some(settings)) => Ok(settings),
        (ConnectorBackend::Sql, None) => Err(ConnectorError::Config {
            name: name.to_string(),
            message: "has no [sql] settings".into(),
        }),
        (ConnectorBackend::Scim, _) => Err(ConnectorError::Unsupported {
            name: name.to_string(),
            what: "the SCIM connector".into(),
        }),
        (ConnectorBackend::Http, _) => Err(ConnectorError::Unsupported {
            name: name.to_string(),
            what: "the HTTP connector".into(),
        }),
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

/// What `step` will write with connector version `doc` for `request` (pure).
pub fn intent(
    doc: &ConfigVersion,
    step: &PlannedStep,
    request: &SampleRequest,
) -> Result<StepIntent, ConnectorError> {
    let name = doc.name.clone();
    let connector = parse_connector(doc)?;
    let settings = sql_settings(&name, &connector)?;
    let config_err = |message: String| ConnectorError::Config {
        name: name.clone(),
        message,
    };
    let username = request
        .username
        .clone()
        .ok_or_else(|| config_err("the request has no username".into()))?;
    let values = step_values(step, request);
    let mapped: BTreeMap<String, SqlValue> = settings
        .columns
        .iter()
        .filter_map(|(field, column)| {
            values
                .get(field)
                .map(|v| (column.as_str().to_string(), SqlValue::Text(v.clone())))
        })
        .collect();
    let disabled = |on: bool| -> Result<BTreeMap<String, SqlValue>, ConnectorError> {
        let column = settings
            .disabled_column
            .clone()
            .ok_or_else(|| config_err(format!("{} needs sql.disabled_column", step.action)))?;
        Ok([(column.as_str().to_string(), SqlValue::Bool(on))].into())
    };
    let (desired, partial) = match step.action {
        StepAction::CreateAccount => {
            let mut row = mapped;
            if let Some(column) = &settings.disabled_column {
                row.insert(column.as_str().to_string(), SqlValue::Bool(false));
            }
            (Some(row), false)
        }
        StepAction::UpdateAccount => {
            let only_params: BTreeMap<String, SqlValue> = settings
                .columns
                .iter()
                .filter_map(|(field, column)| {
                    step.params
                        .get(field)
                        .map(|v| (column.as_str().to_string(), SqlValue::Text(v.clone())))
                })
                .collect();
            (Some(only_params), true)
        }
        StepAction::DisableAccount => (Some(disabled(true)?), true),
        StepAction::EnableAccount => (Some(disabled(false)?), true),
        StepAction::DeleteAccount => (None, false),
        StepAction::GrantRole | StepAction::RevokeRole => {
            return Err(ConnectorError::Unsupported {
                name,
                what: format!(
                    "{} on SQL targets (role bundles land with the roles issue)",
                    step.action
                ),
            });
        }
    };
    Ok(StepIntent {
        connector: name,
        connector_version: doc.version,
        action: step.action,
        username,
        desired,
        partial,
        adopt_existing: settings.adopt_existing,
    })
}

/// The intent's desired row with validated column identifiers.
fn desired_idents(
    intent: &StepIntent,
) -> Result<Option<BTreeMap<SqlIdent, SqlValue>>, ConnectorError> {
    intent
        .desired
        .as_ref()
        .map(|row| {
            row.iter()
                .map(|(column, value)| {
                    SqlIdent::new(column)
                        .map(|ident| (ident, value.clone()))
                        .map_err(|e| ConnectorError::Config {
                            name: intent.connector.clone(),
                            message: format!("column {column:?}: {e}"),
                        })
                })
                .collect()
        })
        .transpose()
}

fn target_spec(doc: &ConfigVersion) -> Result<SqlTargetSpec, ConnectorError> {
    let connector = parse_connector(doc)?;
    let settings = sql_settings(&doc.name, &connector)?;
    let config_err = |message: String| ConnectorError::Config {
        name: doc.name.clone(),
        message,
    };
    let url = match &settings.url {
        DatabaseUrl::Plain(u) => u.clone(),
        DatabaseUrl::Secret(reference) => reference
            .resolve()
            .map_err(|e| config_err(format!("url: {e}")))?
            .expose()
            .to_string(),
    };
    let key_column = settings
        .columns
        .get("username")
        .cloned()
        .ok_or_else(|| config_err("sql.columns has no `username` mapping".into()))?;
    Ok(SqlTargetSpec {
        dialect: settings.dialect,
        url,
        schema: settings.schema.clone(),
        table: settings.table.clone(),
        key_column,
    })
}

/// A step planned against the target's current state, ready to apply.
pub struct Prepared {
    target: sql::Target,
    intent: StepIntent,
    plan: SqlPlan,
    outcome: &'static str,
}

/// What applying a step did: the plan run and the account read back afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// `created`, `updated`, `deleted`, `adopted`, `unchanged`, or `already-created` (an
    /// earlier attempt of this request created it).
    pub outcome: String,
    /// The plan: current and desired values and the exact statements run.
    pub plan: SqlPlan,
    /// The account as read back after the statements (`None`: it does not exist).
    pub read_back: Option<BTreeMap<String, String>>,
}

/// Connect, read the account and plan the statements for `intent` (connector version `doc`).
/// `ours`: an earlier attempt of this request recorded the intent to create this account, so
/// an existing account holding exactly the desired values is the one it created.
pub async fn prepare(
    doc: &ConfigVersion,
    intent: &StepIntent,
    ours: bool,
) -> Result<Prepared, ConnectorError> {
    let spec = target_spec(doc)?;
    let desired = desired_idents(intent)?;
    let sql_err = |source| ConnectorError::Sql {
        name: intent.connector.clone(),
        source,
    };
    let target = sql::Target::open(&spec).await.map_err(sql_err)?;
    let columns: Vec<SqlIdent> = desired
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    let current = match target.read(&intent.username, &columns).await {
        Ok(current) => current,
        Err(e) => {
            target.close().await;
            return Err(sql_err(e));
        }
    };
    let decided = decide(&spec, intent, current, desired, ours);
    match decided {
        Ok((plan, outcome)) => Ok(Prepared {
            target,
            intent: intent.clone(),
            plan,
            outcome,
        }),
        Err(e) => {
            target.close().await;
            Err(e)
        }
    }
}

/// The create-is-not-adopt rule and the plan (pure).
fn decide(
    spec: &SqlTargetSpec,
    intent: &StepIntent,
    current: Option<BTreeMap<String, String>>,
    desired: Option<BTreeMap<SqlIdent, SqlValue>>,
    ours: bool,
) -> Result<(SqlPlan, &'static str), ConnectorError> {
    let key = intent.username.as_str();
    if intent.action == StepAction::CreateAccount
        && let (Some(have), Some(want)) = (&current, &desired)
    {
        if intent.adopt_existing {
            let plan = sql::plan(spec, key, current.clone(), desired);
            return Ok((plan, "adopted"));
        }
        if ours {
            if sql::matches(spec.dialect, have, want) {
                let plan = sql::plan(spec, key, current.clone(), desired);
                return Ok((plan, "already-created"));
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
    let desired = if intent.partial && current.is_none() {
        None
    } else {
        desired
    };
    let plan = sql::plan(spec, key, current, desired);
    let outcome = match plan.change.as_str() {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        _ => "unchanged",
    };
    Ok((plan, outcome))
}

impl Prepared {
    /// The planned statements and values.
    pub fn plan(&self) -> &SqlPlan {
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

    /// Close the connection without applying anything.
    pub async fn abandon(self) {
        self.target.close().await;
    }

    /// Run the statements, then read the account back and check it holds what was written.
    pub async fn apply(self) -> Result<Applied, ConnectorError> {
        let result = self.apply_inner().await;
        self.target.close().await;
        result
    }

    async fn apply_inner(&self) -> Result<Applied, ConnectorError> {
        let name = self.intent.connector.clone();
        let sql_err = |source| ConnectorError::Sql {
            name: name.clone(),
            source,
        };
        self.target.run(&self.plan).await.map_err(sql_err)?;
        let desired = desired_idents(&self.intent)?;
        let columns: Vec<SqlIdent> = desired
            .as_ref()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        let read_back = self
            .target
            .read(&self.intent.username, &columns)
            .await
            .map_err(sql_err)?;
        let planned_row = self.plan.desired.is_some();
        let problem = match (&read_back, &desired, planned_row) {
            (Some(row), Some(want), true) => {
                let dialect = self.target.spec().dialect;
                let differs: Vec<String> = want
                    .iter()
                    .filter(|(c, v)| row.get(c.as_str()) != Some(&v.as_read_back(dialect)))
                    .map(|(c, _)| c.as_str().to_string())
                    .collect();
                (!differs.is_empty()).then(|| format!("columns {}", differs.join(", ")))
            }
            (None, Some(_), true) => Some("the account is missing".to_string()),
            (Some(_), None, _) => Some("the account still exists".to_string()),
            _ => None,
        };
        if let Some(detail) = problem {
            return Err(ConnectorError::ReadBack {
                name,
                username: self.intent.username.clone(),
                detail,
            });
        }
        Ok(Applied {
            outcome: self.outcome.to_string(),
            plan: self.plan.clone(),
            read_back,
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
        Ok(Ok(prepared)) => {
            let value = serde_json::json!({
                "outcome": prepared.outcome(),
                "plan": prepared.plan(),
            });
            prepared.abandon().await;
            value
        }
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
    use crate::domain::config::SqlDialect;

    fn spec() -> SqlTargetSpec {
        SqlTargetSpec {
            dialect: SqlDialect::Sqlite,
            url: "sqlite::memory:".into(),
            schema: None,
            table: SqlIdent::new("accounts").expect("ident"),
            key_column: SqlIdent::new("username").expect("ident"),
        }
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
        }
    }

    fn row(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn decide_for(
        i: &StepIntent,
        current: Option<BTreeMap<String, String>>,
        ours: bool,
    ) -> Result<(SqlPlan, &'static str), ConnectorError> {
        let desired = desired_idents(i).expect("idents");
        decide(&spec(), i, current, desired, ours)
    }

    #[test]
    fn create_on_a_missing_account_inserts() {
        let (plan, outcome) =
            decide_for(&intent(StepAction::CreateAccount, false), None, false).expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("create", "created"));
    }

    #[test]
    fn create_on_an_existing_account_is_refused_with_a_clear_error() {
        let existing = row(&[
            ("username", "gnunez"),
            ("full_name", "Somebody Else"),
            ("disabled", "1"),
        ]);
        let err = decide_for(&intent(StepAction::CreateAccount, false), existing, false)
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "account gnunez already exists in hr-db; set adopt_existing = true on the connector to adopt it"
        );
        assert!(!err.is_transient());
    }

    #[test]
    fn adopt_existing_updates_and_says_adopted() {
        let existing = row(&[
            ("username", "gnunez"),
            ("full_name", "Somebody Else"),
            ("disabled", "1"),
        ]);
        let (plan, outcome) =
            decide_for(&intent(StepAction::CreateAccount, true), existing, false).expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("update", "adopted"));
    }

    #[test]
    fn our_own_earlier_create_is_recognised_only_when_it_matches() {
        let ours = row(&[
            ("username", "gnunez"),
            ("full_name", "Gina Nunez"),
            ("disabled", "0"),
        ]);
        let i = intent(StepAction::CreateAccount, false);
        let (plan, outcome) = decide_for(&i, ours, true).expect("ours");
        assert_eq!((plan.change.as_str(), outcome), ("none", "already-created"));
        assert!(plan.statements.is_empty());
        let changed = row(&[
            ("username", "gnunez"),
            ("full_name", "Gina Nunez"),
            ("disabled", "1"),
        ]);
        assert!(matches!(
            decide_for(&i, changed, true),
            Err(ConnectorError::NotOurs { .. })
        ));
    }

    #[test]
    fn partial_steps_leave_a_missing_account_missing() {
        let (plan, outcome) =
            decide_for(&intent(StepAction::UpdateAccount, false), None, false).expect("plan");
        assert_eq!((plan.change.as_str(), outcome), ("none", "unchanged"));
    }
}
