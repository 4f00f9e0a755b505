//! Connectors of every backend behind one value: built from a stored connector version
//! (secrets resolved, never logged), dispatching the [`Connector`] interface, and the model's
//! view ([`Desired`]) of a step's intent.

use super::http::{DISABLED_ATTR, HttpConnector};
use super::model::{self, Account, Connector, Desired, Plan};
use super::scim::ScimConnector;
use super::sql::{SqlConnector, SqlTargetSpec, SqlValue};
use super::{ConnectorError, StepIntent, parse_connector, sql_settings};
use crate::domain::config::{ConnectorBackend, DatabaseUrl};
use crate::store::api::ConfigVersion;

/// A connector of any backend, ready to use.
pub enum AnyConnector {
    /// An SQL target.
    Sql(SqlConnector),
    /// A SCIM 2.0 service.
    Scim(ScimConnector),
    /// An HTTP/JSON service described by its document.
    Http(HttpConnector),
}

impl AnyConnector {
    /// Build the connector for a stored connector version (secrets resolved here, never
    /// logged).
    pub fn from_doc(doc: &ConfigVersion) -> Result<Self, ConnectorError> {
        let connector = parse_connector(doc)?;
        let config_err = |message: String| ConnectorError::Config {
            name: doc.name.clone(),
            message,
        };
        match connector.backend {
            ConnectorBackend::Sql => {
                let settings = sql_settings(&doc.name, &connector)?;
                let url = match &settings.url {
                    DatabaseUrl::Plain(u) => u.clone(),
                    DatabaseUrl::Secret(reference) => reference
                        .resolve()
                        .map_err(|e| config_err(format!("url: {e}")))?
                        .expose()
                        .to_string(),
                };
                let key_column =
                    settings.columns.get("username").cloned().ok_or_else(|| {
                        config_err("sql.columns has no `username` mapping".into())
                    })?;
                Ok(Self::Sql(SqlConnector::new(SqlTargetSpec {
                    name: doc.name.clone(),
                    dialect: settings.dialect,
                    url,
                    schema: settings.schema.clone(),
                    table: settings.table.clone(),
                    key_column,
                    columns: settings.columns.values().cloned().collect(),
                    disabled_column: settings.disabled_column.clone(),
                    grants: settings.grants.clone(),
                    limits: settings.limits,
                })))
            }
            ConnectorBackend::Scim => {
                let settings = connector
                    .scim
                    .as_ref()
                    .ok_or_else(|| config_err("has no [scim] settings".into()))?;
                ScimConnector::new(&doc.name, settings).map(Self::Scim)
            }
            ConnectorBackend::Http => {
                let settings = connector
                    .http
                    .as_ref()
                    .ok_or_else(|| config_err("has no [http] settings".into()))?;
                HttpConnector::new(&doc.name, settings).map(Self::Http)
            }
        }
    }

    /// What it can do.
    pub fn capabilities(&self) -> model::Capabilities {
        match self {
            Self::Sql(c) => c.capabilities(),
            Self::Scim(c) => c.capabilities(),
            Self::Http(c) => c.capabilities(),
        }
    }

    /// Every account.
    pub async fn list(&self) -> Result<Vec<Account>, ConnectorError> {
        match self {
            Self::Sql(c) => c.list().await,
            Self::Scim(c) => c.list().await,
            Self::Http(c) => c.list().await,
        }
    }

    /// One account.
    pub async fn read(&self, key: &str) -> Result<Option<Account>, ConnectorError> {
        match self {
            Self::Sql(c) => c.read(key).await,
            Self::Scim(c) => c.read(key).await,
            Self::Http(c) => c.read(key).await,
        }
    }

    /// Plan (pure).
    pub fn plan(
        &self,
        current: Option<&Account>,
        desired: &Desired,
    ) -> Result<Plan, ConnectorError> {
        match self {
            Self::Sql(c) => c.plan(current, desired),
            Self::Scim(c) => c.plan(current, desired),
            Self::Http(c) => c.plan(current, desired),
        }
    }

    /// Apply and read back.
    pub async fn apply(
        &self,
        plan: &Plan,
        desired: &Desired,
    ) -> Result<Option<Account>, ConnectorError> {
        match self {
            Self::Sql(c) => c.apply(plan, desired).await,
            Self::Scim(c) => c.apply(plan, desired).await,
            Self::Http(c) => c.apply(plan, desired).await,
        }
    }

    /// The disabled attribute in intents and whether it is inverted.
    fn disabled_attr(&self) -> Option<(String, bool)> {
        match self {
            Self::Sql(c) => c
                .spec()
                .disabled_column
                .as_ref()
                .map(|col| (col.as_str().to_string(), false)),
            Self::Scim(_) => Some(("active".into(), true)),
            Self::Http(_) => Some((DISABLED_ATTR.into(), false)),
        }
    }
}

/// The model's view of an intent for `connector`.
pub fn desired_of(connector: &AnyConnector, intent: &StepIntent) -> Desired {
    let disabled_attr = connector.disabled_attr();
    let mut desired = Desired {
        key: intent.username.clone(),
        exists: intent.desired.is_some(),
        partial: intent.partial,
        grant: intent.grant.clone(),
        revoke: intent.revoke.clone(),
        ..Desired::default()
    };
    for (attr, value) in intent.desired.iter().flatten() {
        match (value, &disabled_attr) {
            (SqlValue::Bool(b), Some((name, inverted))) if name == attr => {
                desired.disabled = Some(*b != *inverted);
            }
            (SqlValue::Bool(b), _) => {
                desired.attributes.insert(attr.clone(), b.to_string());
            }
            (SqlValue::Text(t), _) => {
                desired.attributes.insert(attr.clone(), t.clone());
            }
        }
    }
    desired
}
