//! `kind = "directory"` documents: a static list of people and groups, LDAP or Microsoft
//! Graph, with their checks.

use super::*;
use crate::domain::workflow::is_login;

/// Which directory service a directory document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryBackend {
    /// Microsoft Graph (settings in `[graph]`).
    Graph,
    /// LDAP (settings in `[ldap]`).
    Ldap,
    /// People and groups listed in the document (`[[people]]`, `[[groups]]`).
    Static,
}

/// A directory: where line managers, groups and people come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Unique name.
    pub name: String,
    /// `graph`, `ldap` or `static`.
    pub backend: DirectoryBackend,
    /// Graph settings (backend `graph`).
    #[serde(default)]
    pub graph: Option<GraphSettings>,
    /// LDAP settings (backend `ldap`).
    #[serde(default)]
    pub ldap: Option<LdapSettings>,
    /// People (backend `static`).
    #[serde(default)]
    pub people: Vec<Person>,
    /// Groups with owners (backend `static`; membership is on each person).
    #[serde(default)]
    pub groups: Vec<GroupDefinition>,
    /// How long lookups are cached (default 5m; `0s` turns the cache off).
    #[serde(default)]
    pub cache_for: Option<DurationSpec>,
}

/// A person in a static directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Login name.
    pub login: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Login of the line manager.
    #[serde(default)]
    pub manager: Option<String>,
    /// Groups this person belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Out of office: approvals go to the delegate or escalate.
    #[serde(default)]
    pub out_of_office: bool,
    /// Who decides in their place while out of office.
    #[serde(default)]
    pub delegate: Option<String>,
}

/// A group in a static directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDefinition {
    /// Group name.
    pub name: String,
    /// Logins of the owners.
    #[serde(default)]
    pub owners: Vec<String>,
}

impl Directory {
    /// Problems within this document.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        let (backend, wanted) = match self.backend {
            DirectoryBackend::Graph => ("graph", Some("graph")),
            DirectoryBackend::Ldap => ("ldap", Some("ldap")),
            DirectoryBackend::Static => ("static", None),
        };
        section_rules(
            backend,
            &[
                ("graph", self.graph.is_some()),
                ("ldap", self.ldap.is_some()),
            ],
            wanted,
            &mut errors,
        );
        if self.backend != DirectoryBackend::Static {
            if !self.people.is_empty() {
                errors.push(FieldError::new(
                    "people",
                    "people are only listed for backend \"static\"",
                ));
            }
            if !self.groups.is_empty() {
                errors.push(FieldError::new(
                    "groups",
                    "groups are only listed for backend \"static\"",
                ));
            }
        }
        if let Some(graph) = &self.graph {
            for (field, value) in [
                ("graph.tenant_id", &graph.tenant_id),
                ("graph.client_id", &graph.client_id),
            ] {
                if value.trim().is_empty() {
                    errors.push(FieldError::new(field, "must not be empty"));
                }
            }
            for (field, value) in [
                ("graph.base_url", &graph.base_url),
                ("graph.login_url", &graph.login_url),
            ] {
                if let Some(url) = value
                    && !is_url_with_scheme(url, &["https", "http"])
                {
                    errors.push(FieldError::new(
                        field,
                        format!("\"{url}\" is not an http(s) URL"),
                    ));
                }
            }
            errors.extend(graph.problems());
        }
        if let Some(ldap) = &self.ldap {
            if !is_url_with_scheme(&ldap.url, &["ldap", "ldaps"]) {
                errors.push(FieldError::new(
                    "ldap.url",
                    format!("\"{}\" is not an ldap:// or ldaps:// URL", ldap.url),
                ));
            }
            for (field, value) in [
                ("ldap.bind_dn", &ldap.bind_dn),
                ("ldap.base_dn", &ldap.base_dn),
                ("ldap.login_attribute", &ldap.login_attribute),
                ("ldap.manager_attribute", &ldap.manager_attribute),
                ("ldap.mail_attribute", &ldap.mail_attribute),
            ] {
                if value.trim().is_empty() {
                    errors.push(FieldError::new(field, "must not be empty"));
                }
            }
            errors.extend(ldap.problems());
        }
        self.validate_people(&mut errors);
        errors
    }

    fn validate_people(&self, errors: &mut Vec<FieldError>) {
        let logins: BTreeSet<&str> = self
            .people
            .iter()
            .map(|person| person.login.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for (index, person) in self.people.iter().enumerate() {
            let at = |field: &str| format!("people[{index}].{field}");
            if !is_login(&person.login) {
                errors.push(FieldError::new(
                    at("login"),
                    format!("\"{}\" is not a login name", person.login),
                ));
            } else if !seen.insert(person.login.as_str()) {
                errors.push(FieldError::new(
                    at("login"),
                    format!("duplicate login \"{}\"", person.login),
                ));
            }
            if !person.email.contains('@') {
                errors.push(FieldError::new(
                    at("email"),
                    format!("\"{}\" is not an e-mail address", person.email),
                ));
            }
            if let Some(manager) = &person.manager {
                if *manager == person.login {
                    errors.push(FieldError::new(
                        at("manager"),
                        "a person cannot be their own manager",
                    ));
                } else if !logins.contains(manager.as_str()) {
                    errors.push(FieldError::new(
                        at("manager"),
                        format!("unknown person \"{manager}\""),
                    ));
                }
            }
            if let Some(delegate) = &person.delegate
                && (!logins.contains(delegate.as_str()) || *delegate == person.login)
            {
                errors.push(FieldError::new(
                    at("delegate"),
                    format!("\"{delegate}\" is not another person in this directory"),
                ));
            }
            for (group_index, group) in person.groups.iter().enumerate() {
                if group.trim().is_empty() {
                    errors.push(FieldError::new(
                        format!("people[{index}].groups[{group_index}]"),
                        "must not be empty",
                    ));
                }
            }
        }
        let mut group_names = BTreeSet::new();
        for (index, group) in self.groups.iter().enumerate() {
            if group.name.trim().is_empty() {
                errors.push(FieldError::new(
                    format!("groups[{index}].name"),
                    "must not be empty",
                ));
            } else if !group_names.insert(group.name.as_str()) {
                errors.push(FieldError::new(
                    format!("groups[{index}].name"),
                    format!("duplicate group \"{}\"", group.name),
                ));
            }
            for (owner_index, owner) in group.owners.iter().enumerate() {
                if !logins.contains(owner.as_str()) {
                    errors.push(FieldError::new(
                        format!("groups[{index}].owners[{owner_index}]"),
                        format!("unknown person \"{owner}\""),
                    ));
                }
            }
        }
    }

    /// The `ca_file` this document names, with its field path (`ldap.ca_file` or
    /// `graph.ca_file`), for checks that read the file.
    pub fn ca_file(&self) -> Option<(&'static str, &str)> {
        match (&self.ldap, &self.graph) {
            (Some(ldap), _) if ldap.ca_file.is_some() => {
                ldap.ca_file.as_deref().map(|p| ("ldap.ca_file", p))
            }
            (_, Some(graph)) => graph.ca_file.as_deref().map(|p| ("graph.ca_file", p)),
            _ => None,
        }
    }

    /// Static directory: the line manager of `login`.
    pub fn line_manager(&self, login: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|person| person.login == login)
            .and_then(|person| person.manager.as_deref())
    }

    /// Static directory: group name → member logins (in document order).
    pub fn group_members(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for person in &self.people {
            for group in &person.groups {
                groups
                    .entry(group.clone())
                    .or_default()
                    .push(person.login.clone());
            }
        }
        groups
    }
}
