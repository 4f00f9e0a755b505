//! Configuration documents (workflow, mailbox, directory, connector, role, notifier): parsing, validation
//! with `file:line:col: field: message` diagnostics, SQL identifier rules and cross-document checks.
//!
//! Each document is one TOML file with a top-level `kind` and `name`. Secrets are references
//! (`env:NAME`, `file:/path`); a plain-text secret where a reference is required is an error.

/// Re-exported: configuration checks report [`Diagnostic`]s.
pub use super::diagnostic::Diagnostic;
use super::diagnostic::{self, FieldError};
/// Re-exported: the Graph and LDAP sections of a directory document.
pub use super::directory_settings::{GraphSettings, LdapFlavor, LdapSettings};
use super::role::{Entitlement, Role};
use super::secret::SecretRef;
mod directory;
mod mailbox;
pub use directory::{Directory, DirectoryBackend, GroupDefinition, Person};
pub use mailbox::{Mailbox, TlsMode, is_loopback};
mod connector_settings;
pub use connector_settings::{OAuthClient, ScimSettings, SqlAccounts, SqlLimits};
mod http_settings;
pub use http_settings::{
    HttpAuth, HttpOperation, HttpOperations, HttpSettings, JsonCheck, PageKind, Pagination,
    is_allowed_base,
};
mod intake_settings;
pub use intake_settings::{
    DEFAULT_MAX_MESSAGE_BYTES, DateOrder, LlmApi, LlmSettings, RuleSettings, UnknownSender,
};
mod mailbox_settings;
pub use mailbox_settings::{DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, ProcessedAction};
mod chat_settings;
pub use chat_settings::{ChatKind, ChatTarget};
mod notifier_settings;
pub use notifier_settings::{
    DEFAULT_REPLY_LIFETIME, Notifier, ReplySettings, check_sender, is_address,
};

use super::workflow::{
    DurationSpec, IntakeSource, Workflow, check_document_name, is_document_name, is_placeholder,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// The kinds of configuration document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigKind {
    /// A workflow definition.
    Workflow,
    /// An IMAP mailbox feeding a workflow.
    Mailbox,
    /// A directory (Graph, LDAP or static).
    Directory,
    /// A provisioning target (SQL, SCIM, HTTP).
    Connector,
    /// A bundle of entitlements.
    Role,
    /// An SMTP server for notifications.
    Notifier,
}

impl ConfigKind {
    /// Every kind, in a stable order.
    pub const ALL: [ConfigKind; 6] = [
        Self::Workflow,
        Self::Mailbox,
        Self::Directory,
        Self::Connector,
        Self::Role,
        Self::Notifier,
    ];

    /// The kind as written in `kind = "..."`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Workflow => "workflow",
            Self::Mailbox => "mailbox",
            Self::Directory => "directory",
            Self::Connector => "connector",
            Self::Role => "role",
            Self::Notifier => "notifier",
        }
    }

    /// Parses a kind name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed and validated configuration document.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigDocument {
    /// `kind = "workflow"`.
    Workflow(Box<Workflow>),
    /// `kind = "mailbox"`.
    Mailbox(Mailbox),
    /// `kind = "directory"`.
    Directory(Directory),
    /// `kind = "connector"`.
    Connector(Connector),
    /// `kind = "role"`.
    Role(Role),
    /// `kind = "notifier"`.
    Notifier(Notifier),
}

impl ConfigDocument {
    /// The document's kind.
    pub fn kind(&self) -> ConfigKind {
        match self {
            Self::Workflow(_) => ConfigKind::Workflow,
            Self::Mailbox(_) => ConfigKind::Mailbox,
            Self::Directory(_) => ConfigKind::Directory,
            Self::Connector(_) => ConfigKind::Connector,
            Self::Role(_) => ConfigKind::Role,
            Self::Notifier(_) => ConfigKind::Notifier,
        }
    }

    /// The document's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Workflow(document) => &document.name,
            Self::Mailbox(document) => &document.name,
            Self::Directory(document) => &document.name,
            Self::Connector(document) => &document.name,
            Self::Role(document) => &document.name,
            Self::Notifier(document) => &document.name,
        }
    }
}

fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

fn is_url_with_scheme(url: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| {
        url.strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
    })
}

fn section_rules(
    backend: &str,
    sections: &[(&str, bool)],
    wanted: Option<&str>,
    errors: &mut Vec<FieldError>,
) {
    for (section, present) in sections {
        if Some(*section) == wanted && !present {
            errors.push(FieldError::new(
                "backend",
                format!("backend \"{backend}\" needs a [{section}] section"),
            ));
        }
        if Some(*section) != wanted && *present {
            errors.push(FieldError::new(
                *section,
                format!("[{section}] does not belong to backend \"{backend}\""),
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connector

/// Which protocol a connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorBackend {
    /// A SQL database (settings in `[sql]`).
    Sql,
    /// A SCIM 2.0 service (settings in `[scim]`).
    Scim,
    /// A generic HTTP/JSON API (settings in `[http]`).
    Http,
}

/// A provisioning target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// Unique name, referenced by workflow steps and role entitlements.
    pub name: String,
    /// `sql`, `scim` or `http`.
    pub backend: ConnectorBackend,
    /// SQL settings.
    #[serde(default)]
    pub sql: Option<SqlSettings>,
    /// SCIM settings.
    #[serde(default)]
    pub scim: Option<ScimSettings>,
    /// HTTP settings (boxed: they hold every operation's templates).
    #[serde(default)]
    pub http: Option<Box<HttpSettings>>,
}

/// SQL dialect of a target database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlDialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
    /// SQLite.
    Sqlite,
}

impl SqlDialect {
    /// URL schemes that belong to this dialect.
    pub fn url_schemes(&self) -> &'static [&'static str] {
        match self {
            Self::Postgres => &["postgres", "postgresql"],
            Self::Mysql => &["mysql", "mariadb"],
            Self::Sqlite => &["sqlite"],
        }
    }
}

/// A SQL identifier from configuration: `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
/// Only such identifiers reach SQL, and always quoted with [`quote_ident`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqlIdent(String);

/// Why a string is not a SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a valid SQL identifier: use a letter or _ followed by up to 62 letters, digits or _"
)]
pub struct SqlIdentError(pub String);

impl SqlIdent {
    /// Validates an identifier.
    pub fn new(text: &str) -> Result<Self, SqlIdentError> {
        let mut chars = text.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && text.len() <= 63
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(SqlIdentError(text.to_string()))
        }
    }

    /// The identifier as written (unquoted).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SqlIdent {
    type Err = SqlIdentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl fmt::Display for SqlIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SqlIdent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SqlIdent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        diagnostic::deserialize_from_str(deserializer, "a SQL identifier")
    }
}

/// Quotes a validated identifier for `dialect`: `"name"` for PostgreSQL and SQLite, `` `name` ``
/// for MySQL. The quote character is doubled as the dialects require, although a validated
/// identifier cannot contain it.
pub fn quote_ident(dialect: SqlDialect, ident: &SqlIdent) -> String {
    let quote = match dialect {
        SqlDialect::Postgres | SqlDialect::Sqlite => '"',
        SqlDialect::Mysql => '`',
    };
    let escaped = ident.0.replace(quote, &format!("{quote}{quote}"));
    format!("{quote}{escaped}{quote}")
}

/// A database URL: a secret reference, or a URL without a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// Resolved at connection time (the URL may contain a password).
    Secret(SecretRef),
    /// A URL with no password in it (trust, peer or file authentication).
    Plain(String),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if SecretRef::looks_like_reference(text) {
            return SecretRef::parse(text)
                .map(Self::Secret)
                .map_err(|error| error.to_string());
        }
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(
                "expected a database URL (postgres://…, mysql://…, sqlite://…) or a secret reference (env:NAME, file:/path)"
                    .to_string(),
            );
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(format!("\"{scheme}\" is not a URL scheme"));
        }
        let after_slashes = rest.strip_prefix("//").unwrap_or(rest);
        let authority = after_slashes
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        let has_password = authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        let query_password = text.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair.to_ascii_lowercase().starts_with("password="))
        });
        if has_password || query_password {
            // Never echo the URL: it contains the password.
            return Err(
                "the URL contains a password in plain text; give the URL as a secret reference (env:NAME or file:/path)"
                    .to_string(),
            );
        }
        Ok(Self::Plain(text.to_string()))
    }
}

impl DatabaseUrl {
    /// The URL scheme of a plain URL (`None` for a secret reference).
    pub fn scheme(&self) -> Option<&str> {
        match self {
            Self::Plain(url) => url.split_once(':').map(|(scheme, _)| scheme),
            Self::Secret(_) => None,
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(reference) => write!(f, "{reference}"),
            Self::Plain(url) => f.write_str(url),
        }
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        diagnostic::deserialize_from_str(deserializer, "a database URL or a secret reference")
    }
}

/// A SQL target: the accounts table and, optionally, a grants table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSettings {
    /// `postgres`, `mysql` or `sqlite`.
    pub dialect: SqlDialect,
    /// Connection URL (plain without password, or a secret reference).
    pub url: DatabaseUrl,
    /// Schema (PostgreSQL) or database (MySQL) holding the tables.
    #[serde(default)]
    pub schema: Option<SqlIdent>,
    /// The accounts table.
    pub table: SqlIdent,
    /// Request field → column. Must map `username`; keys are placeholder names
    /// (`username`, `full_name`, `email`, `team`, …).
    pub columns: BTreeMap<String, SqlIdent>,
    /// Boolean column set on disable (leavers); without it, disable deletes nothing and fails.
    #[serde(default)]
    pub disabled_column: Option<SqlIdent>,
    /// Where role grants are written.
    #[serde(default)]
    pub grants: Option<SqlGrants>,
    /// What `create_account` does when the account already exists in the target: `false`
    /// (the default) fails the step with a permanent error and leaves the row untouched;
    /// `true` adopts the existing account (brings it to the requested values) and records the
    /// step as `adopted`.
    #[serde(default)]
    pub adopt_existing: bool,
    /// Connection and statement time limits, circuit breaker (`[sql.limits]`).
    #[serde(default)]
    pub limits: SqlLimits,
    /// Account activity (`[sql.accounts]`): the last-seen column for dormant accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<SqlAccounts>,
}

/// A table of (username, role) rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGrants {
    /// Table name.
    pub table: SqlIdent,
    /// Column holding the username.
    pub username_column: SqlIdent,
    /// Column holding the role.
    pub role_column: SqlIdent,
}

impl Connector {
    /// Problems within this document.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        let backend = match self.backend {
            ConnectorBackend::Sql => "sql",
            ConnectorBackend::Scim => "scim",
            ConnectorBackend::Http => "http",
        };
        section_rules(
            backend,
            &[
                ("sql", self.sql.is_some()),
                ("scim", self.scim.is_some()),
                ("http", self.http.is_some()),
            ],
            Some(backend),
            &mut errors,
        );
        if let Some(http) = &self.http {
            errors.extend(http.validate());
        }
        if let Some(scim) = &self.scim {
            errors.extend(scim.validate(&|url| is_url_with_scheme(url, &["https", "http"])));
        }
        if let Some(sql) = &self.sql {
            errors.extend(sql.limits.validate());
            if let Some(accounts) = &sql.accounts {
                errors.extend(accounts.validate());
            }
            if let Some(scheme) = sql.url.scheme()
                && !sql.dialect.url_schemes().contains(&scheme)
            {
                errors.push(FieldError::new(
                    "sql.url",
                    format!(
                        "URL scheme \"{scheme}\" does not match dialect {:?} (expected {})",
                        sql.dialect,
                        sql.dialect.url_schemes().join(" or ")
                    ),
                ));
            }
            if !sql.columns.contains_key("username") {
                errors.push(FieldError::new(
                    "sql.columns",
                    "must map `username` to a column",
                ));
            }
            let mut columns_seen = BTreeMap::new();
            for (field, column) in &sql.columns {
                if !is_placeholder(field) {
                    errors.push(FieldError::new(
                        format!("sql.columns.{field}"),
                        format!("\"{field}\" is not a request field"),
                    ));
                }
                if let Some(other) = columns_seen.insert(column.as_str(), field.as_str()) {
                    errors.push(FieldError::new(
                        format!("sql.columns.{field}"),
                        format!("column \"{column}\" is already used for {other}"),
                    ));
                }
            }
        }
        if let Some(url) = self.scim.as_ref().map(|scim| &scim.base_url)
            && !is_url_with_scheme(url, &["https", "http"])
        {
            errors.push(FieldError::new(
                "scim.base_url",
                format!("\"{url}\" is not an http(s) URL"),
            ));
        }
        errors
    }
}

// ---------------------------------------------------------------------------------------------
// Checking documents

/// A checked document together with where it came from, for cross-document checks.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// File name or label.
    pub file: String,
    /// The TOML text as given.
    pub text: String,
    /// The parsed document.
    pub document: ConfigDocument,
}

fn finish<T>(
    file: &str,
    text: &str,
    document: T,
    errors: Vec<FieldError>,
    wrap: fn(T) -> ConfigDocument,
) -> Result<ConfigDocument, Vec<Diagnostic>> {
    if errors.is_empty() {
        Ok(wrap(document))
    } else {
        Err(diagnostic::locate(file, text, &errors))
    }
}

/// Parses and validates one configuration document. Errors are located diagnostics
/// (`file:line:col: field: message`); nothing else happens either way.
pub fn check_document(file_label: &str, text: &str) -> Result<ConfigDocument, Vec<Diagnostic>> {
    let mut tree = diagnostic::parse_tree(file_label, text)?;
    let Some(kind_name) = diagnostic::take_kind(file_label, text, &mut tree)? else {
        return Err(vec![diagnostic::missing_kind(file_label)]);
    };
    let Some(kind) = ConfigKind::from_name(&kind_name) else {
        return Err(diagnostic::locate(
            file_label,
            text,
            &[FieldError::new(
                "kind",
                format!(
                    "unknown kind \"{kind_name}\": expected workflow, mailbox, directory, connector, role or notifier"
                ),
            )],
        ));
    };
    match kind {
        ConfigKind::Workflow => {
            let document: Workflow = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(file_label, text, document, errors, |w| {
                ConfigDocument::Workflow(Box::new(w))
            })
        }
        ConfigKind::Mailbox => {
            let document: Mailbox = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(file_label, text, document, errors, ConfigDocument::Mailbox)
        }
        ConfigKind::Directory => {
            let document: Directory = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(
                file_label,
                text,
                document,
                errors,
                ConfigDocument::Directory,
            )
        }
        ConfigKind::Connector => {
            let document: Connector = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(
                file_label,
                text,
                document,
                errors,
                ConfigDocument::Connector,
            )
        }
        ConfigKind::Role => {
            let document: Role = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(file_label, text, document, errors, ConfigDocument::Role)
        }
        ConfigKind::Notifier => {
            let document: Notifier = diagnostic::deserialize_tree(file_label, text, tree)?;
            let errors = document.validate();
            finish(file_label, text, document, errors, ConfigDocument::Notifier)
        }
    }
}

/// [`check_document`] keeping the file and text for [`check_references`].
pub fn load_document(file_label: &str, text: &str) -> Result<LoadedDocument, Vec<Diagnostic>> {
    check_document(file_label, text).map(|document| LoadedDocument {
        file: file_label.to_string(),
        text: text.to_string(),
        document,
    })
}

/// Checks references between documents of one set: unique (kind, name) pairs; workflow steps
/// name existing connectors and roles; workflow and mailbox bindings point at each other's
/// documents; roles inherit existing roles without cycles; entitlements name existing connectors.
pub fn check_references(documents: &[LoadedDocument]) -> Vec<Diagnostic> {
    let names = |kind: ConfigKind| -> BTreeSet<&str> {
        documents
            .iter()
            .filter(|loaded| loaded.document.kind() == kind)
            .map(|loaded| loaded.document.name())
            .collect()
    };
    let connectors = names(ConfigKind::Connector);
    let mailboxes = names(ConfigKind::Mailbox);
    let roles = names(ConfigKind::Role);
    let workflows: BTreeMap<&str, &Workflow> = documents
        .iter()
        .filter_map(|loaded| match &loaded.document {
            ConfigDocument::Workflow(workflow) => Some((workflow.name.as_str(), &**workflow)),
            _ => None,
        })
        .collect();

    let mut diagnostics = Vec::new();
    let mut seen: BTreeMap<(ConfigKind, &str), &str> = BTreeMap::new();
    let mut notifiers_of: BTreeMap<&str, &str> = BTreeMap::new();
    for loaded in documents {
        let mut errors = Vec::new();
        let key = (loaded.document.kind(), loaded.document.name());
        if let Some(first) = seen.insert(key, &loaded.file) {
            errors.push(FieldError::new(
                "name",
                format!("{} \"{}\" is already defined in {first}", key.0, key.1),
            ));
        }
        match &loaded.document {
            ConfigDocument::Workflow(workflow) => {
                errors.extend(workflow.check_connectors(&|name| connectors.contains(name)));
                for (field, role) in workflow.referenced_roles() {
                    if !roles.contains(role.as_str()) {
                        errors.push(FieldError::new(field, format!("unknown role \"{role}\"")));
                    }
                }
                if let Some(mailbox) = &workflow.intake.mailbox
                    && !mailboxes.contains(mailbox.as_str())
                {
                    errors.push(FieldError::new(
                        "intake.mailbox",
                        format!("unknown mailbox \"{mailbox}\""),
                    ));
                }
            }
            ConfigDocument::Mailbox(mailbox) => match workflows.get(mailbox.workflow.as_str()) {
                None => errors.push(FieldError::new(
                    "workflow",
                    format!("unknown workflow \"{}\"", mailbox.workflow),
                )),
                Some(workflow) if !workflow.intake.sources.contains(&IntakeSource::Email) => {
                    errors.push(FieldError::new(
                        "workflow",
                        format!(
                            "workflow \"{}\" does not accept the email source",
                            workflow.name
                        ),
                    ));
                }
                Some(_) => {}
            },
            ConfigDocument::Role(role) => {
                for (index, parent) in role.inherits.iter().enumerate() {
                    if !roles.contains(parent.as_str()) {
                        errors.push(FieldError::new(
                            format!("inherits[{index}]"),
                            format!("unknown role \"{parent}\""),
                        ));
                    }
                }
                for (index, entitlement) in role.entitlements.iter().enumerate() {
                    if let Ok(parsed) = Entitlement::parse(entitlement)
                        && !connectors.contains(parsed.connector.as_str())
                    {
                        errors.push(FieldError::new(
                            format!("entitlements[{index}]"),
                            format!("unknown connector \"{}\"", parsed.connector),
                        ));
                    }
                }
            }
            ConfigDocument::Notifier(notifier) => {
                if let Some(mailbox) = &notifier.reply_mailbox
                    && !mailboxes.contains(mailbox.as_str())
                {
                    errors.push(FieldError::new(
                        "reply_mailbox",
                        format!("unknown mailbox \"{mailbox}\""),
                    ));
                }
                for (index, name) in notifier.workflows.iter().flatten().enumerate() {
                    if !workflows.contains_key(name.as_str()) {
                        errors.push(FieldError::new(
                            format!("workflows[{index}]"),
                            format!("unknown workflow \"{name}\""),
                        ));
                    }
                }
                for workflow in workflows.keys() {
                    if !notifier.serves(workflow) {
                        continue;
                    }
                    if let Some(first) = notifiers_of.insert(*workflow, &notifier.name) {
                        errors.push(FieldError::new(
                            "workflows",
                            format!(
                                "workflow \"{workflow}\" is already served by notifier \"{first}\"; each workflow has at most one notifier"
                            ),
                        ));
                    }
                }
            }
            ConfigDocument::Directory(_) | ConfigDocument::Connector(_) => {}
        }
        diagnostics.extend(diagnostic::locate(&loaded.file, &loaded.text, &errors));
    }
    diagnostics.extend(role_cycles(documents));
    diagnostics
}

/// Reports each role that takes part in an inheritance cycle, at its first cyclic `inherits`.
fn role_cycles(documents: &[LoadedDocument]) -> Vec<Diagnostic> {
    let roles: BTreeMap<String, Role> = documents
        .iter()
        .filter_map(|loaded| match &loaded.document {
            ConfigDocument::Role(role) => Some((role.name.clone(), role.clone())),
            _ => None,
        })
        .collect();
    let mut diagnostics = Vec::new();
    for loaded in documents {
        let ConfigDocument::Role(role) = &loaded.document else {
            continue;
        };
        if let Err(super::role::RoleError::Cycle(cycle)) =
            super::role::resolve_entitlements(&roles, &role.name)
            && cycle.first() == Some(&role.name)
        {
            let index = cycle
                .get(1)
                .and_then(|next| role.inherits.iter().position(|parent| parent == next))
                .unwrap_or(0);
            diagnostics.extend(diagnostic::locate(
                &loaded.file,
                &loaded.text,
                &[FieldError::new(
                    format!("inherits[{index}]"),
                    format!("roles inherit in a cycle: {}", cycle.join(" → ")),
                )],
            ));
        }
    }
    diagnostics
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
