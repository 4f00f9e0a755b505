//! The SQL target in the common connector model: accounts are rows of the accounts table,
//! entitlements are rows of the grants table; plans are exact statements with bound values.

use std::collections::{BTreeMap, BTreeSet};

use super::{PlannedStatement, SqlTargetError, SqlTargetSpec, SqlValue, plan, read_rows};
use crate::connectors::ConnectorError;
use crate::connectors::model::{
    Account, Capabilities, Connector, Desired, Operation, Plan, read_back_problem,
};
use crate::domain::config::SqlIdent;

/// An SQL target (SQLite, PostgreSQL, MySQL/MariaDB) as a [`Connector`].
#[derive(Debug, Clone)]
pub struct SqlConnector {
    spec: SqlTargetSpec,
}

fn truthy(text: &str) -> bool {
    matches!(text.trim(), "1" | "true" | "t" | "TRUE" | "yes")
}

impl SqlConnector {
    /// A connector for `spec` (connections are pooled per target and opened on first use).
    pub fn new(spec: SqlTargetSpec) -> Self {
        Self { spec }
    }

    /// The target's description.
    pub fn spec(&self) -> &SqlTargetSpec {
        &self.spec
    }

    fn err(&self, source: SqlTargetError) -> ConnectorError {
        ConnectorError::Sql {
            name: self.spec.name.clone(),
            source,
        }
    }

    fn config(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            name: self.spec.name.clone(),
            message: message.into(),
        }
    }

    fn account(
        &self,
        key: String,
        mut row: BTreeMap<String, String>,
        grants: BTreeSet<String>,
    ) -> Account {
        let disabled = self
            .spec
            .disabled_column
            .as_ref()
            .map(|c| row.remove(c.as_str()).is_some_and(|v| truthy(&v)));
        Account {
            key,
            attributes: row,
            disabled,
            grants,
            ..Account::default()
        }
    }

    /// The row as the pure planner compares it (disabled as the dialect reads it back).
    fn current_row(&self, account: &Account) -> BTreeMap<String, String> {
        let mut row = account.attributes.clone();
        if let (Some(column), Some(disabled)) = (&self.spec.disabled_column, account.disabled) {
            row.insert(
                column.as_str().to_string(),
                SqlValue::Bool(disabled).as_read_back(self.spec.dialect),
            );
        }
        row
    }

    fn desired_row(
        &self,
        desired: &Desired,
    ) -> Result<Option<BTreeMap<SqlIdent, SqlValue>>, ConnectorError> {
        if !desired.exists {
            return Ok(None);
        }
        let mut row = BTreeMap::new();
        for (column, value) in &desired.attributes {
            let ident = SqlIdent::new(column).map_err(|e| self.config(format!("column: {e}")))?;
            row.insert(ident, SqlValue::Text(value.clone()));
        }
        if let Some(disabled) = desired.disabled {
            let column = self
                .spec
                .disabled_column
                .clone()
                .ok_or_else(|| self.config("disabling needs sql.disabled_column"))?;
            row.insert(column, SqlValue::Bool(disabled));
        }
        Ok(Some(row))
    }
}

fn to_json(value: &SqlValue) -> serde_json::Value {
    match value {
        SqlValue::Text(t) => serde_json::Value::String(t.clone()),
        SqlValue::Bool(b) => serde_json::Value::Bool(*b),
    }
}

fn operation(statement: PlannedStatement) -> Operation {
    Operation::Sql {
        sql: statement.sql,
        params: statement.params.iter().map(to_json).collect(),
    }
}

fn statement(op: &Operation) -> Option<PlannedStatement> {
    let Operation::Sql { sql, params } = op else {
        return None;
    };
    let params = params
        .iter()
        .map(|p| match p {
            serde_json::Value::String(t) => Some(SqlValue::Text(t.clone())),
            serde_json::Value::Bool(b) => Some(SqlValue::Bool(*b)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PlannedStatement {
        sql: sql.clone(),
        params,
    })
}

impl Connector for SqlConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            list: true,
            write_accounts: true,
            disable: self.spec.disabled_column.is_some(),
            delete: true,
            grants: self.spec.grants.is_some(),
        }
    }

    async fn list(&self) -> Result<Vec<Account>, ConnectorError> {
        let (rows, mut grants) = read_rows(&self.spec, None, &[])
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(key, row)| {
                let g = grants.remove(&key).unwrap_or_default();
                self.account(key, row, g)
            })
            .collect())
    }

    async fn read(&self, key: &str) -> Result<Option<Account>, ConnectorError> {
        let (mut rows, mut grants) = read_rows(&self.spec, Some(key), &[])
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.remove(key).map(|row| {
            let g = grants.remove(key).unwrap_or_default();
            self.account(key.to_string(), row, g)
        }))
    }

    fn plan(&self, current: Option<&Account>, desired: &Desired) -> Result<Plan, ConnectorError> {
        let want = self.desired_row(desired)?;
        let want = if desired.partial && current.is_none() {
            None
        } else {
            want
        };
        let row_plan = plan(
            &self.spec,
            &desired.key,
            current.map(|a| self.current_row(a)),
            want,
        );
        let held = current.map(|a| a.grants.clone()).unwrap_or_default();
        let (grant, revoke): (BTreeSet<String>, BTreeSet<String>) = if current.is_some() {
            (
                desired.grant.difference(&held).cloned().collect(),
                desired.revoke.intersection(&held).cloned().collect(),
            )
        } else if desired.exists && !desired.partial {
            (desired.grant.clone(), BTreeSet::new())
        } else {
            (BTreeSet::new(), BTreeSet::new())
        };
        let grants_table = self.spec.grants.as_ref();
        if (!grant.is_empty() || !revoke.is_empty()) && grants_table.is_none() {
            return Err(self.config("granting roles needs a [sql.grants] table"));
        }
        let mut statements: Vec<PlannedStatement> = Vec::new();
        if row_plan.change == "delete" {
            if let Some(g) = grants_table {
                statements.push(super::plan_drop_grants(&self.spec, g, &desired.key));
            }
            statements.extend(row_plan.statements.iter().cloned());
        } else {
            statements.extend(row_plan.statements.iter().cloned());
            if let Some(g) = grants_table {
                statements.extend(super::plan_grants(
                    &self.spec,
                    g,
                    &desired.key,
                    &grant,
                    &revoke,
                ));
            }
        }
        Ok(Plan {
            change: row_plan.change,
            current: row_plan.current,
            desired: row_plan
                .desired
                .map(|m| m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
            grant,
            revoke,
            statements: statements.into_iter().map(operation).collect(),
        })
    }

    async fn apply(
        &self,
        plan: &Plan,
        desired: &Desired,
    ) -> Result<Option<Account>, ConnectorError> {
        let statements = plan
            .statements
            .iter()
            .map(statement)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.config("the plan holds an operation that is not SQL"))?;
        super::run_statements(&self.spec, &statements)
            .await
            .map_err(|e| self.err(e))?;
        let back = self.read(&desired.key).await?;
        if let Some(detail) = read_back_problem(back.as_ref(), desired) {
            return Err(ConnectorError::ReadBack {
                name: self.spec.name.clone(),
                username: desired.key.clone(),
                detail,
            });
        }
        Ok(back)
    }
}
