//! SCIM 2.0 targets (RFC 7643/7644) in the common connector model: accounts are Users found by
//! `userName`, entitlements are Groups by `displayName`. Plans are the exact calls (POST,
//! PATCH with `If-Match` when the service offers ETags, DELETE); lists are paged.

mod client;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

pub use client::ScimError;
use client::{Client, literal};

use super::ConnectorError;
use super::model::{Account, Capabilities, Connector, Desired, Operation, Plan, read_back_problem};
use crate::domain::config::ScimSettings;

/// Request field → SCIM attribute written by account steps.
pub const FIELD_MAP: &[(&str, &str)] = &[
    ("username", "userName"),
    ("full_name", "displayName"),
    ("email", "email"),
];

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A SCIM 2.0 service as a [`Connector`].
pub struct ScimConnector {
    name: String,
    client: Client,
    page_size: u32,
    /// Group displayName → id, as last read (plans name groups by id).
    groups: Mutex<BTreeMap<String, String>>,
}

fn user_account(user: &Value, grants: BTreeSet<String>) -> Option<Account> {
    let key = user.get("userName")?.as_str()?.to_string();
    let mut attributes = BTreeMap::new();
    attributes.insert("userName".to_string(), key.clone());
    if let Some(name) = user.get("displayName").and_then(Value::as_str) {
        attributes.insert("displayName".into(), name.to_string());
    }
    let emails = user.get("emails").and_then(Value::as_array);
    let email = emails.and_then(|list| {
        list.iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| list.first())
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
    });
    if let Some(email) = email {
        attributes.insert("email".into(), email.to_string());
    }
    Some(Account {
        key,
        attributes,
        disabled: Some(!user.get("active").and_then(Value::as_bool).unwrap_or(true)),
        grants,
        id: user.get("id").and_then(Value::as_str).map(str::to_string),
        etag: user
            .pointer("/meta/version")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn attribute_value(attr: &str, value: &str) -> Value {
    if attr == "email" {
        json!([{ "value": value, "primary": true }])
    } else {
        json!(value)
    }
}

fn attribute_path(attr: &str) -> &str {
    if attr == "email" { "emails" } else { attr }
}

impl ScimConnector {
    /// A connector for `settings` (secrets resolved now, never logged).
    pub fn new(name: &str, settings: &ScimSettings) -> Result<Self, ConnectorError> {
        let client = Client::new(settings).map_err(|source| ConnectorError::Scim {
            name: name.to_string(),
            source,
        })?;
        Ok(Self {
            name: name.to_string(),
            client,
            page_size: settings.page_size.unwrap_or(100),
            groups: Mutex::new(BTreeMap::new()),
        })
    }

    fn err(&self, source: ScimError) -> ConnectorError {
        ConnectorError::Scim {
            name: self.name.clone(),
            source,
        }
    }

    fn config(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// Read every group; remember name → id; return id → member ids.
    async fn refresh_groups(&self) -> Result<Vec<(String, String, Vec<String>)>, ConnectorError> {
        let groups = self
            .client
            .list_all("Groups", None, self.page_size)
            .await
            .map_err(|e| self.err(e))?;
        let parsed: Vec<(String, String, Vec<String>)> = groups
            .iter()
            .filter_map(|g| {
                let id = g.get("id")?.as_str()?.to_string();
                let name = g.get("displayName")?.as_str()?.to_string();
                let members = g
                    .get("members")
                    .and_then(Value::as_array)
                    .map(|m| {
                        m.iter()
                            .filter_map(|x| x.get("value").and_then(Value::as_str))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((name, id, members))
            })
            .collect();
        let mut cache = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *cache = parsed
            .iter()
            .map(|(name, id, _)| (name.clone(), id.clone()))
            .collect();
        Ok(parsed)
    }

    fn group_id(&self, name: &str) -> Result<String, ConnectorError> {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| self.config(format!("group \"{name}\" does not exist in the service")))
    }
}

impl Connector for ScimConnector {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            list: true,
            write_accounts: true,
            disable: true,
            delete: true,
            grants: true,
        }
    }

    async fn list(&self) -> Result<Vec<Account>, ConnectorError> {
        let users = self
            .client
            .list_all("Users", None, self.page_size)
            .await
            .map_err(|e| self.err(e))?;
        let mut by_member: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, _, members) in self.refresh_groups().await? {
            for m in members {
                by_member.entry(m).or_default().insert(name.clone());
            }
        }
        Ok(users
            .iter()
            .filter_map(|u| {
                let id = u.get("id").and_then(Value::as_str).unwrap_or_default();
                user_account(u, by_member.remove(id).unwrap_or_default())
            })
            .collect())
    }

    async fn read(&self, key: &str) -> Result<Option<Account>, ConnectorError> {
        let filter = format!("userName eq {}", literal(key));
        let users = self
            .client
            .list_all("Users", Some(&filter), self.page_size)
            .await
            .map_err(|e| self.err(e))?;
        let Some(user) = users
            .iter()
            .find(|u| u.get("userName").and_then(Value::as_str) == Some(key))
        else {
            self.refresh_groups().await?;
            return Ok(None);
        };
        let id = user
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.err(ScimError::Protocol("a User without id".into())))?;
        let grants = self
            .refresh_groups()
            .await?
            .into_iter()
            .filter(|(_, _, members)| members.iter().any(|m| m == id))
            .map(|(name, _, _)| name)
            .collect();
        Ok(user_account(user, grants))
    }

    fn plan(&self, current: Option<&Account>, desired: &Desired) -> Result<Plan, ConnectorError> {
        let mut ops = Vec::new();
        let id = current.and_then(|a| a.id.clone());
        let etag = current.and_then(|a| a.etag.clone());
        let user_path = |id: &str| format!("/Users/{id}");
        let change = match (current, desired.exists) {
            (None, false) => "none",
            (Some(_), false) => {
                let id = id
                    .clone()
                    .ok_or_else(|| self.config("the user has no id"))?;
                ops.push(Operation::Http {
                    method: "DELETE".into(),
                    path: user_path(&id),
                    body: None,
                    if_match: etag.clone(),
                    operation: None,
                });
                "delete"
            }
            (None, true) if desired.partial => "none",
            (None, true) => {
                let mut body = json!({ "schemas": [USER_SCHEMA], "userName": desired.key });
                for (attr, value) in &desired.attributes {
                    body[attribute_path(attr)] = attribute_value(attr, value);
                }
                body["active"] = json!(!desired.disabled.unwrap_or(false));
                ops.push(Operation::Http {
                    method: "POST".into(),
                    path: "/Users".into(),
                    body: Some(body),
                    if_match: None,
                    operation: None,
                });
                "create"
            }
            (Some(have), true) => {
                let mut changes: Vec<Value> = desired
                    .attributes
                    .iter()
                    .filter(|(k, v)| have.attributes.get(*k) != Some(*v))
                    .map(|(k, v)| {
                        json!({ "op": "replace", "path": attribute_path(k), "value": attribute_value(k, v) })
                    })
                    .collect();
                if let Some(off) = desired.disabled
                    && have.disabled != Some(off)
                {
                    changes.push(json!({ "op": "replace", "path": "active", "value": !off }));
                }
                if changes.is_empty() {
                    "none"
                } else {
                    let id = id
                        .clone()
                        .ok_or_else(|| self.config("the user has no id"))?;
                    ops.push(Operation::Http {
                        method: "PATCH".into(),
                        path: user_path(&id),
                        body: Some(json!({ "schemas": [PATCH_SCHEMA], "Operations": changes })),
                        if_match: etag.clone(),
                        operation: None,
                    });
                    "update"
                }
            }
        };
        let held = current.map(|a| a.grants.clone()).unwrap_or_default();
        let (grant, revoke): (BTreeSet<String>, BTreeSet<String>) =
            if current.is_some() && desired.exists {
                (
                    desired.grant.difference(&held).cloned().collect(),
                    desired.revoke.intersection(&held).cloned().collect(),
                )
            } else {
                (BTreeSet::new(), BTreeSet::new())
            };
        if let Some(uid) = &id {
            for group in &revoke {
                ops.push(Operation::Http {
                    method: "PATCH".into(),
                    path: format!("/Groups/{}", self.group_id(group)?),
                    body: Some(json!({ "schemas": [PATCH_SCHEMA], "Operations": [
                        { "op": "remove", "path": format!("members[value eq {}]", literal(uid)) }
                    ]})),
                    if_match: None,
                    operation: None,
                });
            }
            for group in &grant {
                ops.push(Operation::Http {
                    method: "PATCH".into(),
                    path: format!("/Groups/{}", self.group_id(group)?),
                    body: Some(json!({ "schemas": [PATCH_SCHEMA], "Operations": [
                        { "op": "add", "path": "members", "value": [{ "value": uid }] }
                    ]})),
                    if_match: None,
                    operation: None,
                });
            }
        }
        Ok(Plan {
            change: change.to_string(),
            current: current.map(|a| a.attributes.clone()),
            desired: desired.exists.then(|| {
                desired
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .chain(desired.disabled.map(|d| ("active".to_string(), json!(!d))))
                    .collect()
            }),
            grant,
            revoke,
            statements: ops,
        })
    }

    async fn apply(
        &self,
        plan: &Plan,
        desired: &Desired,
    ) -> Result<Option<Account>, ConnectorError> {
        for op in &plan.statements {
            let Operation::Http {
                method,
                path,
                body,
                if_match,
                ..
            } = op
            else {
                return Err(self.config("the plan holds an operation that is not HTTP"));
            };
            self.client
                .call(method, path, body.as_ref(), if_match.as_deref())
                .await
                .map_err(|e| self.err(e))?;
        }
        let back = self.read(&desired.key).await?;
        if let Some(detail) = read_back_problem(back.as_ref(), desired) {
            return Err(ConnectorError::ReadBack {
                name: self.name.clone(),
                username: desired.key.clone(),
                detail,
            });
        }
        Ok(back)
    }
}
