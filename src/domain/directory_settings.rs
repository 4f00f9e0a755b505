//! The `[graph]` and `[ldap]` sections of a directory document: connection settings, with
//! defaults for the attributes and search options, and the checks that go beyond their shape.

use serde::{Deserialize, Serialize};

use super::diagnostic::FieldError;
use super::secret::SecretRef;
use super::workflow::DurationSpec;

/// Microsoft Graph with client credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// Entra tenant id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret reference.
    pub client_secret: SecretRef,
    /// API base (default `https://graph.microsoft.com/v1.0`; a national cloud such as
    /// `https://graph.microsoft.us/v1.0`, or a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Token endpoint base (default `https://login.microsoftonline.com`).
    #[serde(default)]
    pub login_url: Option<String>,
    /// Time allowed for one HTTP call (default 30s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Retries after a 429 or 503 answer, each after its `Retry-After` (default 4).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// A PEM file of private CA certificates: when set, HTTPS to the API and the token
    /// endpoint trusts only these (instead of the system's CAs).
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// What is wrong with a `ca_file` value on its face (the file itself is read by `config
/// check` and when the client is built).
pub fn ca_file_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("must be an absolute path to a PEM file")
    } else if path.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

impl GraphSettings {
    /// Problems beyond the required fields and URLs (checked with the document).
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(problem) = self.ca_file.as_deref().and_then(ca_file_problem) {
            errors.push(FieldError::new("graph.ca_file", problem));
        }
        errors
    }

    /// The API base without a trailing slash.
    pub fn api_base(&self) -> String {
        self.base_url
            .as_deref()
            .unwrap_or("https://graph.microsoft.com/v1.0")
            .trim_end_matches('/')
            .to_string()
    }

    /// The token endpoint base without a trailing slash.
    pub fn login_base(&self) -> String {
        self.login_url
            .as_deref()
            .unwrap_or("https://login.microsoftonline.com")
            .trim_end_matches('/')
            .to_string()
    }

    /// The OAuth scope for the API base: its scheme and host followed by `/.default`, so a
    /// national cloud asks for a token of its own.
    pub fn scope(&self) -> String {
        let base = self.api_base();
        let host_end = base
            .find("://")
            .map(|at| at + 3)
            .and_then(|start| base[start..].find('/').map(|end| start + end))
            .unwrap_or(base.len());
        format!("{}/.default", &base[..host_end])
    }
}

/// Which LDAP server family: how nested groups are searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LdapFlavor {
    /// Any LDAPv3 server (OpenLDAP, 389 DS): nested groups are followed member by member.
    #[default]
    Generic,
    /// Active Directory: nested groups through the matching rule in chain
    /// (`1.2.840.113556.1.4.1941`).
    Ad,
}

/// LDAP with a bind account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Bind DN.
    pub bind_dn: String,
    /// Bind password reference.
    pub bind_password: SecretRef,
    /// Search base for people.
    pub base_dn: String,
    /// Search base for groups (default: `base_dn`).
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// Attribute holding the login (default `uid`).
    #[serde(default = "default_login_attribute")]
    pub login_attribute: String,
    /// Attribute holding the manager's DN (default `manager`).
    #[serde(default = "default_manager_attribute")]
    pub manager_attribute: String,
    /// Attribute holding the e-mail (default `mail`).
    #[serde(default = "default_mail_attribute")]
    pub mail_attribute: String,
    /// `generic` (default) or `ad`.
    #[serde(default)]
    pub flavor: LdapFlavor,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// Attribute naming a group (default `cn`).
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// Attribute listing a group's member DNs (default `member`).
    #[serde(default = "default_member_attribute")]
    pub member_attribute: String,
    /// Attribute listing a group's owner DNs (default `owner`).
    #[serde(default = "default_owner_attribute")]
    pub owner_attribute: String,
    /// Entries per page of a search (default 500).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Time allowed to connect and for one operation (default 10s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// A PEM file of private CA certificates: when set, LDAPS and StartTLS trust only these
    /// (instead of the system's CAs).
    #[serde(default)]
    pub ca_file: Option<String>,
}

fn default_login_attribute() -> String {
    "uid".to_string()
}

fn default_manager_attribute() -> String {
    "manager".to_string()
}

fn default_mail_attribute() -> String {
    "mail".to_string()
}

fn default_group_name_attribute() -> String {
    "cn".to_string()
}

fn default_member_attribute() -> String {
    "member".to_string()
}

fn default_owner_attribute() -> String {
    "owner".to_string()
}

impl LdapSettings {
    /// Problems beyond the URL and the required fields (checked with the document).
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.starttls && self.url.starts_with("ldaps://") {
            errors.push(FieldError::new(
                "ldap.starttls",
                "StartTLS upgrades a plain ldap:// connection; an ldaps:// URL is already TLS",
            ));
        }
        if self.page_size == Some(0) {
            errors.push(FieldError::new("ldap.page_size", "must be at least 1"));
        }
        if let Some(path) = &self.ca_file {
            if let Some(problem) = ca_file_problem(path) {
                errors.push(FieldError::new("ldap.ca_file", problem));
            } else if !self.starttls && !self.url.starts_with("ldaps://") {
                errors.push(FieldError::new(
                    "ldap.ca_file",
                    "is only used with an ldaps:// URL or starttls = true",
                ));
            }
        }
        for (field, value) in [
            ("ldap.group_name_attribute", &self.group_name_attribute),
            ("ldap.member_attribute", &self.member_attribute),
            ("ldap.owner_attribute", &self.owner_attribute),
        ] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(base: Option<&str>) -> GraphSettings {
        GraphSettings {
            tenant_id: "t".into(),
            client_id: "c".into(),
            client_secret: SecretRef::Env("S".into()),
            base_url: base.map(str::to_string),
            login_url: None,
            timeout: None,
            max_retries: None,
            ca_file: None,
        }
    }

    #[test]
    fn a_ca_file_is_an_absolute_path_used_with_tls() {
        let mut g = graph(None);
        g.ca_file = Some("ca.pem".into());
        assert_eq!(g.problems()[0].field, "graph.ca_file");
        g.ca_file = Some("/etc/ca.pem".into());
        assert!(g.problems().is_empty());
        let ldap = |url: &str, extra: &str| -> Vec<String> {
            let text = format!(
                "url = \"{url}\"\nbind_dn = \"cn=x\"\nbind_password = \"env:P\"\nbase_dn = \"dc=x\"\n{extra}"
            );
            let settings: LdapSettings = toml::from_str(&text).expect("parses");
            settings
                .problems()
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect()
        };
        assert!(ldap("ldaps://h", "ca_file = \"/ca.pem\"\n").is_empty());
        assert!(ldap("ldap://h", "starttls = true\nca_file = \"/ca.pem\"\n").is_empty());
        assert_eq!(
            ldap("ldap://h", "ca_file = \"/ca.pem\"\n"),
            ["ldap.ca_file: is only used with an ldaps:// URL or starttls = true"]
        );
        assert_eq!(
            ldap("ldaps://h", "ca_file = \"ca.pem\"\n"),
            ["ldap.ca_file: must be an absolute path to a PEM file"]
        );
    }

    #[test]
    fn the_scope_follows_the_api_host() {
        assert_eq!(graph(None).scope(), "https://graph.microsoft.com/.default");
        assert_eq!(
            graph(Some("https://graph.microsoft.us/v1.0/")).scope(),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            graph(Some("http://127.0.0.1:9000")).scope(),
            "http://127.0.0.1:9000/.default"
        );
        assert_eq!(
            graph(Some("http://127.0.0.1:9000/v1.0/")).api_base(),
            "http://127.0.0.1:9000/v1.0"
        );
    }

    #[test]
    fn starttls_over_ldaps_is_refused() {
        let text = r#"url = "ldaps://h:636"
bind_dn = "cn=x"
bind_password = "env:P"
base_dn = "dc=x"
starttls = true
page_size = 0
"#;
        let settings: LdapSettings = toml::from_str(text).expect("parses");
        let fields: Vec<String> = settings.problems().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["ldap.starttls", "ldap.page_size"]);
        assert_eq!(settings.flavor, LdapFlavor::Generic);
        assert_eq!(settings.member_attribute, "member");
    }
}
