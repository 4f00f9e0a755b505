//! Provisioning connectors: turn a planned workflow step into changes in a target system.

pub mod sql;

use std::collections::BTreeMap;

use crate::domain::config::{
    ConfigDocument, Connector, ConnectorBackend, DatabaseUrl, SqlSettings, check_document,
};
use crate::domain::workflow::{PlannedStep, SampleRequest, StepAction};
use crate::store::api::ConfigVersion;
use sql::{SqlTargetSpec, SqlValue};

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
}

impl ConnectorError {
    /// True when a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Sql { source, .. } if source.is_transient())
    }
}

/// Apply one planned step with the connector document `head`; returns what was done.
pub async fn apply_step(
    head: &ConfigVersion,
    step: &PlannedStep,
    request: &SampleRequest,
) -> Result<serde_json::Value, ConnectorError> {
    let name = head.name.clone();
    let config_err = |message: String| ConnectorError::Config {
        name: name.clone(),
        message,
    };
    let connector: Connector = match check_document(&head.name, &head.body) {
        Ok(ConfigDocument::Connector(c)) => c,
        Ok(other) => {
            return Err(config_err(format!(
                "is a {} document, not a connector",
                other.kind()
            )));
        }
        Err(ds) => {
            return Err(config_err(
                ds.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
    };
    match (connector.backend, &connector.sql) {
        (ConnectorBackend::Sql, Some(settings)) => apply_sql(&name, settings, step, request).await,
        (ConnectorBackend::Sql, None) => Err(config_err("has no [sql] settings".into())),
        (ConnectorBackend::Scim, _) => Err(ConnectorError::Unsupported {
            name,
            what: "the SCIM connector".into(),
        }),
        (ConnectorBackend::Http, _) => Err(ConnectorError::Unsupported {
            name,
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

async fn apply_sql(
    name: &str,
    settings: &SqlSettings,
    step: &PlannedStep,
    request: &SampleRequest,
) -> Result<serde_json::Value, ConnectorError> {
    let config_err = |message: String| ConnectorError::Config {
        name: name.to_string(),
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
    let username = request
        .username
        .clone()
        .ok_or_else(|| config_err("the request has no username".into()))?;
    let spec = SqlTargetSpec {
        dialect: settings.dialect,
        url,
        schema: settings.schema.clone(),
        table: settings.table.clone(),
        key_column,
    };
    let values = step_values(step, request);
    let mapped: BTreeMap<_, SqlValue> = settings
        .columns
        .iter()
        .filter_map(|(field, column)| {
            values
                .get(field)
                .map(|v| (column.clone(), SqlValue::Text(v.clone())))
        })
        .collect();
    let disabled = |on: bool| -> Result<BTreeMap<_, SqlValue>, ConnectorError> {
        let column = settings
            .disabled_column
            .clone()
            .ok_or_else(|| config_err(format!("{} needs sql.disabled_column", step.action)))?;
        Ok([(column, SqlValue::Bool(on))].into())
    };
    let (desired, partial) = match step.action {
        StepAction::CreateAccount => {
            let mut row = mapped;
            if let Some(column) = &settings.disabled_column {
                row.insert(column.clone(), SqlValue::Bool(false));
            }
            (Some(row), false)
        }
        StepAction::UpdateAccount => {
            let only_params: BTreeMap<_, _> = settings
                .columns
                .iter()
                .filter_map(|(field, column)| {
                    step.params
                        .get(field)
                        .map(|v| (column.clone(), SqlValue::Text(v.clone())))
                })
                .collect();
            (Some(only_params), true)
        }
        StepAction::DisableAccount => (Some(disabled(true)?), true),
        StepAction::EnableAccount => (Some(disabled(false)?), true),
        StepAction::DeleteAccount => (None, false),
        StepAction::GrantRole | StepAction::RevokeRole => {
            return Err(ConnectorError::Unsupported {
                name: name.to_string(),
                what: format!(
                    "{} on SQL targets (role bundles land with the roles issue)",
                    step.action
                ),
            });
        }
    };
    let plan = sql::converge(&spec, &username, desired, partial)
        .await
        .map_err(|source| ConnectorError::Sql {
            name: name.to_string(),
            source,
        })?;
    Ok(serde_json::to_value(&plan).unwrap_or_default())
}
