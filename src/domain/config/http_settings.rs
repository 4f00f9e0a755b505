//! Settings of a configuration-only HTTP connector (`[http]`): base URL, authentication from
//! secret references, and per operation a method, a URL template, an optional JSON body
//! template, success criteria, extraction pointers and pagination. Checked here (pure):
//! templates and pointers with line:col, URLs, secrets as references.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::diagnostic::FieldError;
use crate::domain::http_template::{TemplateContext, check_pointer, check_template};
use crate::domain::secret::SecretRef;
use crate::domain::workflow::{DurationSpec, StepAction, is_placeholder};

/// A generic HTTP/JSON API described entirely by its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Base URL: `https://…`, or `http://` on a loopback host only.
    pub base_url: String,
    /// How requests authenticate.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// Request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Longest `Retry-After` waited for in place after a 429 (default 10s); longer waits
    /// end the attempt as transient and the job queue retries it later.
    #[serde(default)]
    pub max_retry_wait: Option<DurationSpec>,
    /// What `create_account` does with an existing account (as for SQL targets).
    #[serde(default)]
    pub adopt_existing: bool,
    /// JSON pointer to the account key (the username) in an account object.
    pub key_pointer: String,
    /// JSON pointer to the service's own id in an account object (default: the key).
    #[serde(default)]
    pub id_pointer: Option<String>,
    /// JSON pointer to the account's disabled flag in an account object.
    #[serde(default)]
    pub disabled_pointer: Option<String>,
    /// The flag at `disabled_pointer` means *enabled* (Keycloak `enabled`, Graph
    /// `accountEnabled`).
    #[serde(default)]
    pub disabled_inverted: bool,
    /// The value at `disabled_pointer` that means disabled, when it is not a boolean
    /// (OpenProject's `status = "locked"`).
    #[serde(default)]
    pub disabled_equals: Option<serde_json::Value>,
    /// Request field → attribute name written by account steps.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Attribute name → JSON pointer in an account object (read back and compared).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Entitlement name (as roles name it) → the service's id for it; a name not listed is
    /// used as it is.
    #[serde(default)]
    pub entitlements: BTreeMap<String, String>,
    /// The operations the service supports; capabilities follow from which are given.
    pub operations: HttpOperations,
}

/// How requests authenticate (`[http.auth]`, `kind = …`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretRef,
    },
    /// `Authorization: Basic …`.
    Basic {
        /// User name (not secret).
        username: String,
        /// Password.
        password: SecretRef,
    },
    /// A fixed header holding a key (`X-API-Key: …`).
    ApiKey {
        /// Header name.
        header: String,
        /// The key.
        value: SecretRef,
        /// Text written before the key (`"Token "`, `"Bearer "`), if the service wants one.
        #[serde(default)]
        prefix: Option<String>,
    },
    /// OAuth 2.0 client credentials; the token is cached until shortly before it expires.
    Oauth2 {
        /// Token endpoint.
        token_url: String,
        /// Client id (not secret).
        client_id: String,
        /// Client secret.
        client_secret: SecretRef,
        /// Requested scope, if the service needs one.
        #[serde(default)]
        scope: Option<String>,
    },
}

/// The operations of an HTTP connector (`[http.operations.NAME]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOperations {
    /// Read one account by key (required).
    pub read_account: HttpOperation,
    /// Create an account.
    #[serde(default)]
    pub create_account: Option<HttpOperation>,
    /// Change attributes (`changes` holds only what differs).
    #[serde(default)]
    pub update_account: Option<HttpOperation>,
    /// Disable.
    #[serde(default)]
    pub disable_account: Option<HttpOperation>,
    /// Enable.
    #[serde(default)]
    pub enable_account: Option<HttpOperation>,
    /// Delete.
    #[serde(default)]
    pub delete_account: Option<HttpOperation>,
    /// List every account (with pagination).
    #[serde(default)]
    pub list_accounts: Option<HttpOperation>,
    /// The entitlements one account holds.
    #[serde(default)]
    pub list_grants: Option<HttpOperation>,
    /// Grant one entitlement.
    #[serde(default)]
    pub grant: Option<HttpOperation>,
    /// Revoke one entitlement.
    #[serde(default)]
    pub revoke: Option<HttpOperation>,
}

/// A JSON value the answer must hold at a pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonCheck {
    /// Where.
    pub pointer: String,
    /// What.
    pub equals: serde_json::Value,
}

/// One HTTP call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpOperation {
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// URL template below the base URL (values percent-encoded).
    pub url: String,
    /// JSON body template (values written as JSON).
    #[serde(default)]
    pub body: Option<String>,
    /// Statuses that mean success (default: any 2xx).
    #[serde(default)]
    pub success: Vec<u16>,
    /// A value a successful answer must hold (Slack's `ok = true`).
    #[serde(default)]
    pub check: Option<JsonCheck>,
    /// Reads: statuses that mean "no such account" (default 404).
    #[serde(default)]
    pub missing_status: Vec<u16>,
    /// Reads: a value that means "no such account" in a successful answer.
    #[serde(default)]
    pub missing_when: Option<JsonCheck>,
    /// Reads: where the account object is in the answer (`/0` for a search result).
    #[serde(default)]
    pub account_pointer: Option<String>,
    /// Lists: where the array of items is in the answer (default: the answer itself).
    #[serde(default)]
    pub items_pointer: Option<String>,
    /// `list_grants`: the entitlement id in each item.
    #[serde(default)]
    pub entitlement_pointer: Option<String>,
    /// `list_accounts`: how pages follow each other.
    #[serde(default)]
    pub pagination: Option<Pagination>,
}

/// How a list is paged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// `next_link` (a URL at `next_pointer`), `cursor` (a token at `next_pointer`, given to
    /// the URL template as `cursor`), `page` or `offset` (given as `page` / `offset`).
    pub kind: PageKind,
    /// Where the next link or cursor is in the answer.
    #[serde(default)]
    pub next_pointer: Option<String>,
    /// Items per page (the template's `page_size`, default 100).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Number of the first page for `page` (default 1).
    #[serde(default)]
    pub first_page: Option<u32>,
}

/// Pagination kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A full URL (same origin as the base URL) to the next page.
    NextLink,
    /// An opaque cursor.
    Cursor,
    /// Page numbers.
    Page,
    /// Item offsets.
    Offset,
}

/// The names of the operations, with their settings, in a stable order.
impl HttpOperations {
    /// Every configured operation by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &HttpOperation)> {
        [
            ("read_account", Some(&self.read_account)),
            ("create_account", self.create_account.as_ref()),
            ("update_account", self.update_account.as_ref()),
            ("disable_account", self.disable_account.as_ref()),
            ("enable_account", self.enable_account.as_ref()),
            ("delete_account", self.delete_account.as_ref()),
            ("list_accounts", self.list_accounts.as_ref()),
            ("list_grants", self.list_grants.as_ref()),
            ("grant", self.grant.as_ref()),
            ("revoke", self.revoke.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, op)| op.map(|op| (name, op)))
    }

    /// The operation called `name`.
    pub fn get(&self, name: &str) -> Option<&HttpOperation> {
        self.iter().find(|(n, _)| *n == name).map(|(_, op)| op)
    }
}

impl HttpSettings {
    /// The operations a step `action` needs that the document does not give (empty: the
    /// step can run).
    pub fn missing_for(&self, action: StepAction) -> Vec<&'static str> {
        let needed: &[&'static str] = match action {
            StepAction::CreateAccount => &["create_account"],
            StepAction::UpdateAccount => &["update_account"],
            StepAction::DisableAccount => &["disable_account"],
            StepAction::EnableAccount => &["enable_account"],
            StepAction::DeleteAccount => &["delete_account"],
            StepAction::GrantRole | StepAction::RevokeRole => &["grant", "revoke", "list_grants"],
            StepAction::Manual => &["read_account"],
        };
        needed
            .iter()
            .copied()
            .filter(|op| self.operations.get(op).is_none())
            .collect()
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `https://…`, or `http://` to a loopback host.
pub fn is_allowed_base(url: &str) -> bool {
    let host_of = |rest: &str| -> String {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        if authority.starts_with('[') {
            authority
                .split(']')
                .next()
                .map(|h| format!("{h}]"))
                .unwrap_or_default()
        } else {
            authority.split(':').next().unwrap_or_default().to_string()
        }
    };
    if url.contains(char::is_whitespace) {
        return false;
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return !host_of(rest).is_empty();
    }
    url.strip_prefix("http://")
        .is_some_and(|rest| is_loopback_host(&host_of(rest)))
}

/// `localhost`, `[::1]` or an IPv4 loopback address (`127.0.0.1.example.com` is not).
fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl HttpSettings {
    /// Request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or(Duration::from_secs(10), |d| d.duration())
    }

    /// Longest in-place wait for a `Retry-After`.
    pub fn max_retry_wait(&self) -> Duration {
        self.max_retry_wait
            .map_or(Duration::from_secs(10), |d| d.duration())
    }

    /// The variables templates of operation `op` may use.
    pub fn variables(&self, op: &str) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = ["username", "id", "disabled", "attributes", "changes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        names.extend(self.attributes.keys().cloned());
        names.extend(self.fields.values().cloned());
        match op {
            "grant" | "revoke" => {
                names.extend(["entitlement".to_string(), "entitlement_name".to_string()]);
            }
            "list_accounts" => {
                names.extend(["page", "offset", "page_size", "cursor"].map(String::from));
            }
            _ => {}
        }
        names
    }

    /// Problems, by field path below `http`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_allowed_base(&self.base_url) {
            errors.push(FieldError::new(
                "http.base_url",
                format!(
                    "\"{}\" must be an https URL (http only on a loopback host)",
                    self.base_url
                ),
            ));
        }
        match &self.auth {
            Some(HttpAuth::Oauth2 { token_url, .. }) if !is_allowed_base(token_url) => {
                errors.push(FieldError::new(
                    "http.auth.token_url",
                    format!("\"{token_url}\" must be an https URL (http only on a loopback host)"),
                ));
            }
            Some(HttpAuth::ApiKey { header, .. })
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                errors.push(FieldError::new(
                    "http.auth.header",
                    format!("\"{header}\" is not a header name"),
                ));
            }
            _ => {}
        }
        for (field, value) in [
            ("http.timeout", self.timeout),
            ("http.max_retry_wait", self.max_retry_wait),
        ] {
            if value.is_some_and(|d| d.duration() > Duration::from_secs(600)) {
                errors.push(FieldError::new(field, "at most 10m"));
            }
        }
        let mut pointers = vec![("http.key_pointer".to_string(), self.key_pointer.as_str())];
        if let Some(p) = &self.id_pointer {
            pointers.push(("http.id_pointer".into(), p));
        }
        if let Some(p) = &self.disabled_pointer {
            pointers.push(("http.disabled_pointer".into(), p));
        }
        for (attr, p) in &self.attributes {
            if !is_variable_name(attr) {
                errors.push(FieldError::new(
                    format!("http.attributes.{attr}"),
                    "attribute names are letters, digits and _ (templates use them)",
                ));
            }
            pointers.push((format!("http.attributes.{attr}"), p));
        }
        for (field, attr) in &self.fields {
            if !is_placeholder(field) {
                errors.push(FieldError::new(
                    format!("http.fields.{field}"),
                    format!("\"{field}\" is not a request field"),
                ));
            }
            if !self.attributes.contains_key(attr) {
                errors.push(FieldError::new(
                    format!("http.fields.{field}"),
                    format!("attribute \"{attr}\" is not in [http.attributes] (it could not be read back)"),
                ));
            }
        }
        for (name, op) in self.operations.iter() {
            let at = format!("http.operations.{name}");
            let method = op.method.as_deref().unwrap_or("GET");
            if !METHODS.contains(&method) {
                errors.push(FieldError::new(
                    format!("{at}.method"),
                    format!("\"{method}\" is not one of {}", METHODS.join(", ")),
                ));
            }
            if !op.url.starts_with('/') && !op.url.starts_with('?') && !op.url.is_empty() {
                errors.push(FieldError::within(
                    format!("{at}.url"),
                    "a URL template is a path below the base URL (it starts with /)",
                    1,
                    1,
                ));
            }
            let vars = self.variables(name);
            errors.extend(check_template(
                &format!("{at}.url"),
                &op.url,
                TemplateContext::Url,
                &vars,
            ));
            if let Some(body) = &op.body {
                errors.extend(check_template(
                    &format!("{at}.body"),
                    body,
                    TemplateContext::Json,
                    &vars,
                ));
            }
            for s in op.success.iter().chain(&op.missing_status) {
                if !(100..=599).contains(s) {
                    errors.push(FieldError::new(
                        format!("{at}.success"),
                        format!("{s} is not an HTTP status"),
                    ));
                }
            }
            for (what, p) in [
                ("check.pointer", op.check.as_ref().map(|c| &c.pointer)),
                (
                    "missing_when.pointer",
                    op.missing_when.as_ref().map(|c| &c.pointer),
                ),
                ("account_pointer", op.account_pointer.as_ref()),
                ("items_pointer", op.items_pointer.as_ref()),
                ("entitlement_pointer", op.entitlement_pointer.as_ref()),
                (
                    "pagination.next_pointer",
                    op.pagination.as_ref().and_then(|p| p.next_pointer.as_ref()),
                ),
            ] {
                if let Some(p) = p {
                    pointers.push((format!("{at}.{what}"), p));
                }
            }
            if let Some(p) = &op.pagination {
                if name != "list_accounts" {
                    errors.push(FieldError::new(
                        format!("{at}.pagination"),
                        "only list_accounts is paged",
                    ));
                }
                if matches!(p.kind, PageKind::NextLink | PageKind::Cursor)
                    && p.next_pointer.is_none()
                {
                    errors.push(FieldError::new(
                        format!("{at}.pagination"),
                        "next_link and cursor pagination need next_pointer",
                    ));
                }
                if p.page_size.is_some_and(|n| n == 0 || n > 1000) {
                    errors.push(FieldError::new(
                        format!("{at}.pagination.page_size"),
                        "must be between 1 and 1000",
                    ));
                }
            }
        }
        if self.operations.list_grants.is_some()
            && self
                .operations
                .list_grants
                .as_ref()
                .is_some_and(|op| op.entitlement_pointer.is_none())
        {
            errors.push(FieldError::new(
                "http.operations.list_grants",
                "needs entitlement_pointer (the entitlement id in each item)",
            ));
        }
        for (field, pointer) in pointers {
            if let Some(e) = check_pointer(&field, pointer) {
                errors.push(e);
            }
        }
        let o = &self.operations;
        for (a, b) in [("disable_account", "enable_account"), ("grant", "revoke")] {
            if o.get(a).is_some() != o.get(b).is_some() {
                errors.push(FieldError::new(
                    "http.operations",
                    format!("{a} and {b} go together: give both or neither"),
                ));
            }
        }
        if o.disable_account.is_some() && self.disabled_pointer.is_none() {
            errors.push(FieldError::new(
                "http.disabled_pointer",
                "disable_account needs disabled_pointer (the flag is read back)",
            ));
        }
        if o.grant.is_some() && o.list_grants.is_none() {
            errors.push(FieldError::new(
                "http.operations.grant",
                "grant needs list_grants (grants are read back)",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_https_or_loopback_http() {
        assert!(is_allowed_base("https://graph.microsoft.com/v1.0"));
        assert!(is_allowed_base("http://127.0.0.1:8080/api"));
        assert!(is_allowed_base("http://localhost/api"));
        assert!(is_allowed_base("http://[::1]:80/"));
        assert!(!is_allowed_base("http://example.com/api"));
        assert!(!is_allowed_base("http://127.0.0.1.evil.com/"));
        assert!(!is_allowed_base("http://evil.com@example.org/"));
        assert!(!is_allowed_base("ftp://127.0.0.1/"));
    }
}
