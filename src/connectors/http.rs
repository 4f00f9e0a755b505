//! Configuration-only HTTP connectors: every call is described by the connector document
//! (`[http]`, see [`HttpSettings`]). Accounts are read with `read_account`, listed page by
//! page with `list_accounts`; plans are the exact calls (method, URL, JSON body) rendered from
//! the document's templates, values percent-encoded in URLs and written as JSON in bodies;
//! apply runs them, checks each answer against the operation's success criteria and reads the
//! account back. Recipes for common services ship in `src/connectors/http/recipes/`.

mod client;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use client::{Answer, Client};
pub use client::{HttpError, message_of};

use super::ConnectorError;
use super::model::{Account, Capabilities, Connector, Desired, Operation, Plan, read_back_problem};
use crate::domain::config::{HttpOperation, HttpSettings, PageKind};
use crate::domain::http_template::{TemplateContext, render};

/// Longest list the connector follows (pages), so a service that always sends a next link
/// cannot keep it busy forever.
const MAX_PAGES: usize = 10_000;

/// The attribute name request intents use for the disabled flag.
pub const DISABLED_ATTR: &str = "disabled";

/// A service described by an `[http]` document, as a [`Connector`].
pub struct HttpConnector {
    name: String,
    settings: Box<HttpSettings>,
    client: Client,
}

/// A JSON value as attribute text (strings as they are, others as JSON).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl HttpConnector {
    /// A connector for `settings` (secrets resolved now, never logged).
    pub fn new(name: &str, settings: &HttpSettings) -> Result<Self, ConnectorError> {
        let client = Client::new(settings).map_err(|source| ConnectorError::Http {
            name: name.to_string(),
            source,
        })?;
        Ok(Self {
            name: name.to_string(),
            settings: Box::new(settings.clone()),
            client,
        })
    }

    fn err(&self, source: HttpError) -> ConnectorError {
        ConnectorError::Http {
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

    fn op(&self, name: &str, to: &str) -> Result<&HttpOperation, ConnectorError> {
        self.settings.operations.get(name).ok_or_else(|| {
            self.config(format!(
                "the document has no http.operations.{name}, so it cannot {to}"
            ))
        })
    }

    fn render(
        &self,
        name: &str,
        op: &HttpOperation,
        vars: &Value,
    ) -> Result<(String, String, Option<Value>), ConnectorError> {
        let url = render(&op.url, TemplateContext::Url, vars)
            .map_err(|e| self.config(format!("http.operations.{name}.url: {e}")))?;
        let body = match &op.body {
            Some(text) => {
                let rendered = render(text, TemplateContext::Json, vars)
                    .map_err(|e| self.config(format!("http.operations.{name}.body: {e}")))?;
                Some(serde_json::from_str(&rendered).map_err(|e| {
                    self.config(format!("http.operations.{name}.body: not JSON: {e}"))
                })?)
            }
            None => None,
        };
        let method = op.method.clone().unwrap_or_else(|| "GET".into());
        Ok((method, url, body))
    }

    /// Run one operation and check its answer; `Ok(None)` when a read finds nothing.
    async fn run(
        &self,
        name: &str,
        op: &HttpOperation,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ConnectorError> {
        let Answer { status, body } = self
            .client
            .call(method, url, body)
            .await
            .map_err(|e| self.err(e))?;
        let missing = if op.missing_status.is_empty() {
            name == "read_account" && status == 404
        } else {
            op.missing_status.contains(&status)
        };
        if missing {
            return Ok(None);
        }
        let ok = if op.success.is_empty() {
            (200..300).contains(&status)
        } else {
            op.success.contains(&status)
        };
        let path = url.strip_prefix(self.client.base()).unwrap_or(url);
        if !ok {
            return Err(self.err(HttpError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status,
                message: match &body {
                    Value::String(s) => s.clone(),
                    other => message_of(&other.to_string()),
                },
                retry_after: None,
            }));
        }
        if let Some(when) = &op.missing_when
            && body.pointer(&when.pointer) == Some(&when.equals)
        {
            return Ok(None);
        }
        if let Some(check) = &op.check
            && body.pointer(&check.pointer) != Some(&check.equals)
        {
            return Err(self.err(HttpError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status,
                message: format!(
                    "the answer does not hold {} at {}: {}",
                    check.equals,
                    check.pointer,
                    message_of(&body.to_string())
                ),
                retry_after: None,
            }));
        }
        Ok(Some(body))
    }

    fn items<'a>(
        &self,
        name: &str,
        op: &HttpOperation,
        body: &'a Value,
    ) -> Result<&'a Vec<Value>, ConnectorError> {
        let pointer = op.items_pointer.as_deref().unwrap_or("");
        body.pointer(pointer)
            .and_then(Value::as_array)
            .ok_or_else(|| {
                self.err(HttpError::Protocol(format!(
                    "{name}: no array at \"{pointer}\" in the answer"
                )))
            })
    }

    /// The account in an account object.
    fn account_of(&self, item: &Value) -> Option<Account> {
        let s = &self.settings;
        let key = item.pointer(&s.key_pointer).and_then(text_of)?;
        let attributes = s
            .attributes
            .iter()
            .filter_map(|(attr, p)| item.pointer(p).and_then(text_of).map(|v| (attr.clone(), v)))
            .collect();
        let disabled = s.disabled_pointer.as_ref().map(|p| {
            let value = item.pointer(p);
            let flag = match &s.disabled_equals {
                Some(want) => value == Some(want),
                None => value.and_then(Value::as_bool).unwrap_or(false),
            };
            flag != s.disabled_inverted
        });
        let id = match &s.id_pointer {
            Some(p) => item.pointer(p).and_then(text_of),
            None => Some(key.clone()),
        };
        Some(Account {
            key,
            attributes,
            disabled,
            grants: BTreeSet::new(),
            id,
            etag: None,
        })
    }

    /// Entitlement names the account holds (ids mapped back through `[http.entitlements]`).
    async fn grants_of(&self, account: &Account) -> Result<BTreeSet<String>, ConnectorError> {
        let Some(op) = &self.settings.operations.list_grants else {
            return Ok(BTreeSet::new());
        };
        let vars = json!({ "username": account.key, "id": account.id });
        let (method, url, body) = self.render("list_grants", op, &vars)?;
        let Some(answer) = self
            .run("list_grants", op, &method, &url, body.as_ref())
            .await?
        else {
            return Ok(BTreeSet::new());
        };
        let pointer = op.entitlement_pointer.as_deref().unwrap_or("");
        let by_id: BTreeMap<&str, &str> = self
            .settings
            .entitlements
            .iter()
            .map(|(name, id)| (id.as_str(), name.as_str()))
            .collect();
        Ok(self
            .items("list_grants", op, &answer)?
            .iter()
            .filter_map(|item| item.pointer(pointer).and_then(text_of))
            .map(|id| by_id.get(id.as_str()).map_or(id.clone(), |n| n.to_string()))
            .collect())
    }

    fn entitlement_id<'a>(&'a self, name: &'a str) -> &'a str {
        self.settings
            .entitlements
            .get(name)
            .map_or(name, String::as_str)
    }

    /// The variables templates see for `desired` against `current`.
    fn vars(&self, current: Option<&Account>, desired: &Desired) -> Value {
        let mut attributes: Map<String, Value> = current
            .map(|a| {
                a.attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect()
            })
            .unwrap_or_default();
        let mut changes = Map::new();
        for (k, v) in &desired.attributes {
            if current.and_then(|a| a.attributes.get(k)) != Some(v) {
                changes.insert(k.clone(), json!(v));
            }
            attributes.insert(k.clone(), json!(v));
        }
        let mut vars = attributes.clone();
        vars.insert("username".into(), json!(desired.key));
        if let Some(id) = current.and_then(|a| a.id.clone()) {
            vars.insert("id".into(), json!(id));
        }
        let disabled = desired
            .disabled
            .or(current.and_then(|a| a.disabled))
            .unwrap_or(false);
        vars.insert(DISABLED_ATTR.into(), json!(disabled));
        vars.insert("attributes".into(), Value::Object(attributes));
        vars.insert("changes".into(), Value::Object(changes));
        Value::Object(vars)
    }

    fn push(
        &self,
        ops: &mut Vec<Operation>,
        name: &str,
        to: &str,
        vars: &Value,
    ) -> Result<(), ConnectorError> {
        let op = self.op(name, to)?;
        let (method, path, body) = self.render(name, op, vars)?;
        ops.push(Operation::Http {
            method,
            path,
            body,
            if_match: None,
            operation: Some(name.to_string()),
        });
        Ok(())
    }
}

impl Connector for HttpConnector {
    fn capabilities(&self) -> Capabilities {
        let o = &self.settings.operations;
        Capabilities {
            list: o.list_accounts.is_some(),
            write_accounts: o.create_account.is_some() && o.update_account.is_some(),
            disable: o.disable_account.is_some() && o.enable_account.is_some(),
            delete: o.delete_account.is_some(),
            grants: o.grant.is_some() && o.revoke.is_some() && o.list_grants.is_some(),
        }
    }

    async fn list(&self) -> Result<Vec<Account>, ConnectorError> {
        let op = self.op("list_accounts", "list accounts")?;
        let paging = op.pagination.as_ref();
        let page_size = paging.and_then(|p| p.page_size).unwrap_or(100);
        let first_page = paging.and_then(|p| p.first_page).unwrap_or(1);
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for page in 0..MAX_PAGES {
            let page_no = u64::from(first_page) + page as u64;
            let vars = json!({
                "page": page_no,
                "offset": out.len(),
                "page_size": page_size,
                "cursor": next.clone().unwrap_or_default(),
            });
            let (method, mut url, body) = self.render("list_accounts", op, &vars)?;
            if let (Some(PageKind::NextLink), Some(link)) = (paging.map(|p| p.kind), &next) {
                url = link.clone();
            }
            let answer = self
                .run("list_accounts", op, &method, &url, body.as_ref())
                .await?
                .unwrap_or(Value::Null);
            let items = self.items("list_accounts", op, &answer)?;
            let got = items.len();
            out.extend(items.iter().filter_map(|item| self.account_of(item)));
            next = paging
                .and_then(|p| p.next_pointer.as_deref())
                .and_then(|p| answer.pointer(p))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let more = match paging.map(|p| p.kind) {
                None => false,
                Some(PageKind::NextLink | PageKind::Cursor) => next.is_some(),
                Some(PageKind::Page | PageKind::Offset) => got as u64 >= u64::from(page_size),
            };
            if !more || got == 0 {
                break;
            }
            if page + 1 == MAX_PAGES {
                return Err(self.err(HttpError::Protocol(format!(
                    "list_accounts: still more pages after {MAX_PAGES}; the list is not trusted"
                ))));
            }
        }
        for account in &mut out {
            account.grants = self.grants_of(account).await?;
        }
        Ok(out)
    }

    async fn read(&self, key: &str) -> Result<Option<Account>, ConnectorError> {
        let op = &self.settings.operations.read_account;
        let vars = json!({ "username": key });
        let (method, url, body) = self.render("read_account", op, &vars)?;
        let Some(answer) = self
            .run("read_account", op, &method, &url, body.as_ref())
            .await?
        else {
            return Ok(None);
        };
        let pointer = op.account_pointer.as_deref().unwrap_or("");
        // A search answer (`/0`, `/data/0`) may hold several accounts (a substring match):
        // the one whose key is this key, not merely the first.
        let search = pointer
            .strip_suffix("/0")
            .and_then(|parent| answer.pointer(parent))
            .and_then(Value::as_array);
        let found = match search {
            Some(items) => items
                .iter()
                .filter_map(|item| self.account_of(item))
                .find(|a| a.key.eq_ignore_ascii_case(key)),
            None => answer
                .pointer(pointer)
                .filter(|v| !v.is_null())
                .and_then(|item| self.account_of(item))
                .filter(|a| a.key.eq_ignore_ascii_case(key)),
        };
        let Some(mut account) = found else {
            return Ok(None);
        };
        account.grants = self.grants_of(&account).await?;
        Ok(Some(account))
    }

    fn plan(&self, current: Option<&Account>, desired: &Desired) -> Result<Plan, ConnectorError> {
        let mut ops = Vec::new();
        let vars = self.vars(current, desired);
        let change = match (current, desired.exists) {
            (None, false) => "none",
            (Some(_), false) => {
                self.push(&mut ops, "delete_account", "delete accounts", &vars)?;
                "delete"
            }
            (None, true) if desired.partial => "none",
            (None, true) => {
                self.push(&mut ops, "create_account", "create accounts", &vars)?;
                "create"
            }
            (Some(have), true) => {
                let changed = desired
                    .attributes
                    .iter()
                    .any(|(k, v)| have.attributes.get(k) != Some(v));
                if changed {
                    self.push(&mut ops, "update_account", "update accounts", &vars)?;
                }
                let flip = desired.disabled.filter(|d| have.disabled != Some(*d));
                match flip {
                    Some(true) => {
                        self.push(&mut ops, "disable_account", "disable accounts", &vars)?
                    }
                    Some(false) => {
                        self.push(&mut ops, "enable_account", "enable accounts", &vars)?
                    }
                    None => {}
                }
                if ops.is_empty() { "none" } else { "update" }
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
        for (kind, set) in [("revoke", &revoke), ("grant", &grant)] {
            for entitlement in set {
                let mut v = vars.clone();
                v["entitlement"] = json!(self.entitlement_id(entitlement));
                v["entitlement_name"] = json!(entitlement);
                self.push(&mut ops, kind, &format!("{kind} entitlements"), &v)?;
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
                    .chain(
                        desired
                            .disabled
                            .map(|d| (DISABLED_ATTR.to_string(), json!(d))),
                    )
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
        for statement in &plan.statements {
            let Operation::Http {
                method,
                path,
                body,
                operation: Some(name),
                ..
            } = statement
            else {
                return Err(self.config(
                    "the plan holds an operation that is not an HTTP call of this connector",
                ));
            };
            let op = self.op(name, name)?;
            self.run(name, op, method, path, body.as_ref()).await?;
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

/// The recipes shipped with Gatehouse: (file name, document text).
pub const RECIPES: &[(&str, &str)] = &[
    ("keycloak.toml", include_str!("http/recipes/keycloak.toml")),
    (
        "microsoft-graph.toml",
        include_str!("http/recipes/microsoft-graph.toml"),
    ),
    ("slack.toml", include_str!("http/recipes/slack.toml")),
    (
        "google-workspace.toml",
        include_str!("http/recipes/google-workspace.toml"),
    ),
    ("zendesk.toml", include_str!("http/recipes/zendesk.toml")),
    (
        "openproject.toml",
        include_str!("http/recipes/openproject.toml"),
    ),
    ("metabase.toml", include_str!("http/recipes/metabase.toml")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::{ConfigDocument, check_document};

    fn settings(text: &str) -> HttpSettings {
        match check_document("recipe.toml", text) {
            Ok(ConfigDocument::Connector(c)) => *c.http.expect("http"),
            Ok(other) => panic!("{:?}", other.kind()),
            Err(ds) => panic!("{ds:?}"),
        }
    }

    fn connector(file: &str) -> HttpConnector {
        let text = RECIPES
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, t)| *t)
            .expect("recipe");
        let mut s = settings(text);
        s.auth = None;
        HttpConnector::new("r", &s).expect("connector")
    }

    #[test]
    fn every_recipe_passes_config_check() {
        for (file, text) in RECIPES {
            let errors = match check_document(file, text) {
                Ok(_) => Vec::new(),
                Err(ds) => ds.iter().map(ToString::to_string).collect(),
            };
            assert!(errors.is_empty(), "{file}: {errors:?}");
        }
    }

    #[test]
    fn plans_are_the_exact_calls_with_values_escaped() {
        let c = connector("keycloak.toml");
        let hostile = "O'Brien \"Bobby\" & co/..";
        let want = Desired {
            key: "a b&c".into(),
            exists: true,
            attributes: [("firstName".to_string(), hostile.to_string())].into(),
            disabled: Some(false),
            ..Desired::default()
        };
        let plan = c.plan(None, &want).expect("plan");
        let Operation::Http {
            method, path, body, ..
        } = &plan.statements[0]
        else {
            panic!("http");
        };
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/users"));
        let body = body.as_ref().expect("body");
        assert_eq!(body["firstName"], json!(hostile));
        assert_eq!(body["username"], json!("a b&c"));
        assert_eq!(body["enabled"], json!(true));
        assert_eq!(body["email"], Value::Null);

        let current = Account {
            key: "a b&c".into(),
            attributes: [
                ("firstName".to_string(), "Old".to_string()),
                ("email".to_string(), "x@example.com".to_string()),
            ]
            .into(),
            disabled: Some(false),
            grants: ["employees".to_string()].into(),
            id: Some("id/1".into()),
            etag: None,
        };
        let mut mover = want.clone();
        mover.disabled = Some(true);
        mover.grant = ["developers".to_string()].into();
        mover.revoke = ["employees".to_string()].into();
        let plan = c.plan(Some(&current), &mover).expect("plan");
        let calls: Vec<(String, String, Option<Value>)> = plan
            .statements
            .iter()
            .map(|op| match op {
                Operation::Http {
                    method, path, body, ..
                } => (method.clone(), path.clone(), body.clone()),
                Operation::Sql { .. } => panic!("http"),
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (
                    "PUT".into(),
                    "/users/id%2F1".into(),
                    Some(json!({ "firstName": hostile }))
                ),
                (
                    "PUT".into(),
                    "/users/id%2F1".into(),
                    Some(json!({ "enabled": false }))
                ),
                (
                    "DELETE".into(),
                    "/users/id%2F1/groups/2f7c1a2e-0000-4000-8000-000000000002".into(),
                    None
                ),
                (
                    "PUT".into(),
                    "/users/id%2F1/groups/2f7c1a2e-0000-4000-8000-000000000001".into(),
                    None
                ),
            ]
        );
        let caps = c.capabilities();
        assert!(caps.list && caps.write_accounts && caps.disable && caps.delete && caps.grants);
        let graph = connector("microsoft-graph.toml").capabilities();
        assert!(!graph.write_accounts && graph.delete && graph.grants && graph.list);
        let slack = connector("slack.toml").capabilities();
        assert!(slack.write_accounts && !slack.delete && slack.grants);
    }

    #[test]
    fn an_operation_the_document_lacks_is_a_clear_error() {
        let c = connector("slack.toml");
        let current = Account {
            key: "a@example.com".into(),
            id: Some("U1".into()),
            ..Account::default()
        };
        let gone = Desired {
            key: "a@example.com".into(),
            exists: false,
            ..Desired::default()
        };
        let err = c.plan(Some(&current), &gone).expect_err("no delete");
        assert_eq!(
            err.to_string(),
            "connector r: the document has no http.operations.delete_account, so it cannot delete accounts"
        );
    }

    #[test]
    fn a_step_intent_maps_request_fields_to_the_recipe_attributes() {
        use crate::connectors::{AnyConnector, desired_of, intent};
        use crate::domain::dry_run::{PlannedStep, SampleRequest};
        use crate::domain::workflow::StepAction;
        let doc = crate::store::api::ConfigVersion {
            name: "keycloak".into(),
            kind: "connector".into(),
            version: 3,
            body: RECIPES[0].1.replace(
                "env:KEYCLOAK_CLIENT_SECRET",
                "env:GATEHOUSE_TEST_UNSET_SECRET",
            ),
            author: String::new(),
            comment: String::new(),
            created_at: Default::default(),
        };
        let request = SampleRequest {
            subject_name: "Gina Nunez".into(),
            subject_email: Some("gnunez@example.com".into()),
            username: Some("gnunez".into()),
            ..SampleRequest::default()
        };
        let step = |action| PlannedStep {
            name: "s".into(),
            connector: "keycloak".into(),
            action,
            params: BTreeMap::new(),
        };
        let joiner = intent(
            &doc,
            &step(StepAction::CreateAccount),
            &request,
            &BTreeMap::new(),
        )
        .expect("intent");
        let mut settings = match crate::domain::config::check_document("k", &doc.body) {
            Ok(crate::domain::config::ConfigDocument::Connector(c)) => *c.http.expect("http"),
            other => panic!("{other:?}"),
        };
        settings.auth = None;
        let c = AnyConnector::Http(HttpConnector::new("keycloak", &settings).expect("connector"));
        let want = desired_of(&c, &joiner);
        assert_eq!(
            (want.attributes.clone(), want.disabled),
            (
                [
                    ("firstName".to_string(), "Gina Nunez".to_string()),
                    ("email".to_string(), "gnunez@example.com".to_string()),
                ]
                .into(),
                Some(false)
            )
        );
        let leaver = intent(
            &doc,
            &step(StepAction::DisableAccount),
            &request,
            &BTreeMap::new(),
        )
        .expect("intent");
        assert_eq!(desired_of(&c, &leaver).disabled, Some(true));
        // A secret that cannot be resolved is a clear configuration error, naming no value.
        let err = match AnyConnector::from_doc(&doc) {
            Ok(_) => panic!("the secret is unset"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("GATEHOUSE_TEST_UNSET_SECRET is not set"),
            "{err}"
        );
    }

    #[test]
    fn config_check_points_into_templates() {
        let text = RECIPES[0].1.replace(
            "url = \"/users/{{ id }}/groups\"",
            "url = \"/users/{{ id }/groups\"",
        );
        let ds = check_document("kc.toml", &text).expect_err("broken");
        let line = ds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            line.contains("http.operations.list_grants.url") && line.contains("syntax error"),
            "{line}"
        );
        let text = RECIPES[0]
            .1
            .replace("base_url = \"https://", "base_url = \"http://");
        let ds = check_document("kc.toml", &text).expect_err("plain http");
        assert!(
            ds.iter()
                .any(|d| d.to_string().contains("must be an https URL")),
            "{ds:?}"
        );
    }
}
