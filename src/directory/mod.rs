//! The directory: who a person is, who manages them, which groups they are in (transitively),
//! who is in or owns a group, and whether they are out of office — one interface over three
//! backends (a static TOML document, LDAP, Microsoft Graph), with lookups cached.
//!
//! This module knows the domain's configuration types only; the engine drives it.

pub mod cache;
pub mod graph;
pub mod ldap;
pub mod static_dir;
pub mod tls;

use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::domain::config::{Directory, DirectoryBackend};

/// A person as a directory knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirPerson {
    /// Login name (LDAP login attribute, Graph `mailNickname`, static `login`).
    pub login: String,
    /// Display name.
    pub name: String,
    /// E-mail address, when known.
    pub email: Option<String>,
    /// The line manager's login, when there is one.
    pub manager: Option<String>,
}

/// Why a directory lookup failed. Every message names the directory and what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DirectoryError {
    /// The document cannot be used as it is (a missing section, an unreadable secret).
    #[error("directory {directory}: {field}: {message}")]
    Config {
        /// Directory name.
        directory: String,
        /// Field path in the document.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The server could not be reached or did not answer in time.
    #[error("directory {directory}: cannot reach {url}: {why}")]
    Unreachable {
        /// Directory name.
        directory: String,
        /// Where it was trying.
        url: String,
        /// What happened.
        why: String,
    },
    /// The server refused our credentials.
    #[error("directory {directory}: {url} refused the credentials: {why}")]
    Auth {
        /// Directory name.
        directory: String,
        /// Where.
        url: String,
        /// The server's answer.
        why: String,
    },
    /// The server answered with something we did not expect.
    #[error("directory {directory}: {what}: {why}")]
    Protocol {
        /// Directory name.
        directory: String,
        /// What was being asked.
        what: String,
        /// The answer, shortened.
        why: String,
    },
}

/// One backend behind the common interface.
#[derive(Debug)]
enum Backend {
    Static(static_dir::StaticDirectory),
    Ldap(ldap::LdapDirectory),
    Graph(graph::GraphDirectory),
}

/// A directory ready for lookups, built from its document; lookups are cached for the
/// document's `cache_for` (default five minutes).
#[derive(Debug)]
pub struct DirectoryClient {
    name: String,
    backend: Backend,
    cache: cache::Cache,
}

/// Default cache lifetime.
pub const DEFAULT_CACHE_FOR: Duration = Duration::from_secs(300);

impl DirectoryClient {
    /// A client for `document`; secrets are resolved now so a missing one is reported at once.
    pub fn from_document(document: &Directory) -> Result<Self, DirectoryError> {
        let missing = |section: &str| DirectoryError::Config {
            directory: document.name.clone(),
            field: section.to_string(),
            message: format!("backend needs a [{section}] section"),
        };
        let backend = match document.backend {
            DirectoryBackend::Static => {
                Backend::Static(static_dir::StaticDirectory::new(document.clone()))
            }
            DirectoryBackend::Ldap => {
                let settings = document.ldap.as_ref().ok_or_else(|| missing("ldap"))?;
                Backend::Ldap(ldap::LdapDirectory::new(&document.name, settings)?)
            }
            DirectoryBackend::Graph => {
                let settings = document.graph.as_ref().ok_or_else(|| missing("graph"))?;
                Backend::Graph(graph::GraphDirectory::new(&document.name, settings)?)
            }
        };
        let ttl = document
            .cache_for
            .map(|d| d.duration())
            .unwrap_or(DEFAULT_CACHE_FOR);
        Ok(Self {
            name: document.name.clone(),
            backend,
            cache: cache::Cache::new(ttl),
        })
    }

    /// The directory's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many lookups went to the backend (cache misses); for tests and `directory test`.
    pub fn backend_calls(&self) -> u64 {
        self.cache.misses()
    }

    /// A person by login or e-mail; `None` when the directory does not know them.
    pub async fn person(&self, who: &str) -> Result<Option<DirPerson>, DirectoryError> {
        let key = format!("person:{}", who.trim().to_lowercase());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.person);
        }
        let found = match &self.backend {
            Backend::Static(b) => b.person(who),
            Backend::Ldap(b) => b.person(who).await?,
            Backend::Graph(b) => b.person(who).await?,
        };
        self.cache.put(&key, cache::Entry::person(found.clone()));
        Ok(found)
    }

    /// The line manager of `who` (login or e-mail); `None` when `who` is unknown or has none.
    pub async fn manager_of(&self, who: &str) -> Result<Option<DirPerson>, DirectoryError> {
        let Some(person) = self.person(who).await? else {
            return Ok(None);
        };
        match person.manager {
            Some(manager) => self.person(&manager).await,
            None => Ok(None),
        }
    }

    /// The groups `who` belongs to, directly or through nested groups, sorted.
    pub async fn groups_of(&self, who: &str) -> Result<Vec<String>, DirectoryError> {
        let key = format!("groups:{}", who.trim().to_lowercase());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.names.unwrap_or_default());
        }
        let mut found = match &self.backend {
            Backend::Static(b) => b.groups_of(who),
            Backend::Ldap(b) => b.groups_of(who).await?,
            Backend::Graph(b) => b.groups_of(who).await?,
        };
        found.sort();
        found.dedup();
        self.cache
            .put(&key, cache::Entry::names(Some(found.clone())));
        Ok(found)
    }

    /// The logins of a group's members, including members of nested groups, sorted; `None`
    /// when there is no such group.
    pub async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        self.group_list(group, false).await
    }

    /// The logins of a group's owners, sorted; `None` when there is no such group.
    pub async fn group_owners(&self, group: &str) -> Result<Option<Vec<String>>, DirectoryError> {
        self.group_list(group, true).await
    }

    async fn group_list(
        &self,
        group: &str,
        owners: bool,
    ) -> Result<Option<Vec<String>>, DirectoryError> {
        let key = format!("{}:{}", if owners { "owners" } else { "members" }, group);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.names);
        }
        let mut found = match &self.backend {
            Backend::Static(b) => b.group_list(group, owners),
            Backend::Ldap(b) => b.group_list(group, owners).await?,
            Backend::Graph(b) => b.group_list(group, owners).await?,
        };
        if let Some(list) = found.as_mut() {
            list.sort();
            list.dedup();
        }
        self.cache.put(&key, cache::Entry::names(found.clone()));
        Ok(found)
    }

    /// Whether `who` is out of office now (Graph: automatic replies on; static: the
    /// document's flag; LDAP has no such notion and answers false).
    pub async fn out_of_office(&self, who: &str) -> Result<bool, DirectoryError> {
        match &self.backend {
            Backend::Static(b) => Ok(b.out_of_office(who)),
            Backend::Ldap(_) => Ok(false),
            Backend::Graph(b) => b.out_of_office(who).await,
        }
    }

    /// Checks that the directory answers (connects, authenticates, searches); returns a
    /// one-line description of what was checked. Never cached.
    pub async fn test(&self) -> Result<String, DirectoryError> {
        match &self.backend {
            Backend::Static(b) => Ok(b.describe()),
            Backend::Ldap(b) => b.test().await,
            Backend::Graph(b) => b.test().await,
        }
    }
}

/// A person's manager chain, nearest first, stopping at `limit` people or at a loop.
pub async fn manager_chain(
    client: &DirectoryClient,
    who: &str,
    limit: usize,
) -> Result<Vec<DirPerson>, DirectoryError> {
    let mut chain: Vec<DirPerson> = Vec::new();
    let mut current = who.to_string();
    while chain.len() < limit {
        let Some(manager) = client.manager_of(&current).await? else {
            break;
        };
        if manager.login == who || chain.iter().any(|p| p.login == manager.login) {
            break;
        }
        current = manager.login.clone();
        chain.push(manager);
    }
    Ok(chain)
}
