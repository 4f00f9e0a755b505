//! LDAP backend (ldap3): simple bind, people by login or mail, the manager attribute, groups
//! with nested groups (followed member by member, or Active Directory's matching rule in chain
//! with `flavor = "ad"`), owners, paged searches, LDAPS and StartTLS.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use crate::domain::config::{LdapFlavor, LdapSettings};
use crate::domain::secret::SecretValue;

use super::{DirPerson, DirectoryError};

/// Matching rule in chain (Active Directory): transitive membership in one filter.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// How deep nested groups are followed on generic servers.
const MAX_NESTING: usize = 16;

/// An LDAP directory.
#[derive(Debug)]
pub struct LdapDirectory {
    name: String,
    settings: LdapSettings,
    password: SecretValue,
    timeout: Duration,
    page_size: i32,
    /// TLS trusting only the document's `ca_file`, when it names one.
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl LdapDirectory {
    /// A client for `settings`; the bind password is resolved now.
    pub fn new(name: &str, settings: &LdapSettings) -> Result<Self, DirectoryError> {
        let password = settings
            .bind_password
            .resolve()
            .map_err(|e| DirectoryError::Config {
                directory: name.to_string(),
                field: "ldap.bind_password".into(),
                message: e.to_string(),
            })?;
        let tls =
            match &settings.ca_file {
                Some(path) => Some(super::tls::client_config(path).map_err(|message| {
                    DirectoryError::Config {
                        directory: name.to_string(),
                        field: "ldap.ca_file".into(),
                        message,
                    }
                })?),
                None => None,
            };
        Ok(Self {
            name: name.to_string(),
            settings: settings.clone(),
            password,
            tls,
            timeout: settings
                .timeout
                .map(|d| d.duration())
                .unwrap_or(Duration::from_secs(10)),
            page_size: settings
                .page_size
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
                .unwrap_or(500),
        })
    }

    fn protocol(&self, what: &str, why: impl ToString) -> DirectoryError {
        DirectoryError::Protocol {
            directory: self.name.clone(),
            what: what.to_string(),
            why: why.to_string(),
        }
    }

    /// Connects and binds; the connection is driven by a task that ends with it.
    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let unreachable = |why: String| DirectoryError::Unreachable {
            directory: self.name.clone(),
            url: self.settings.url.clone(),
            why,
        };
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.settings.url)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "ldap connection ended");
            }
        });
        let bound = ldap
            .with_timeout(self.timeout)
            .simple_bind(&self.settings.bind_dn, self.password.expose())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if bound.rc != 0 {
            return Err(DirectoryError::Auth {
                directory: self.name.clone(),
                url: self.settings.url.clone(),
                why: format!(
                    "bind as {} answered {} {}",
                    self.settings.bind_dn, bound.rc, bound.text
                ),
            });
        }
        Ok(ldap)
    }

    /// A paged search returning every entry.
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let what = format!("search {filter} under {base}");
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        let mut stream = ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, scope, filter, attrs)
            .await
            .map_err(|e| self.protocol(&what, e))?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(|e| self.protocol(&what, e))? {
            entries.push(SearchEntry::construct(entry));
        }
        let done = stream.finish().await;
        // 32 = noSuchObject: the base does not exist, which is "nothing found".
        if done.rc != 0 && done.rc != 32 {
            return Err(self.protocol(&what, format!("{} {}", done.rc, done.text)));
        }
        Ok(entries)
    }

    fn person_attrs(&self) -> Vec<String> {
        vec![
            self.settings.login_attribute.clone(),
            self.settings.mail_attribute.clone(),
            self.settings.manager_attribute.clone(),
            "cn".into(),
            "displayName".into(),
        ]
    }

    fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
        entry
            .attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(attr))
            .and_then(|(_, values)| values.first().cloned())
    }

    fn all(entry: &SearchEntry, attr: &str) -> Vec<String> {
        entry
            .attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(attr))
            .map(|(_, values)| values.clone())
            .unwrap_or_default()
    }

    /// The entry of a person by login or mail.
    async fn person_entry(
        &self,
        ldap: &mut Ldap,
        who: &str,
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        let who = ldap_escape(who.trim());
        let filter = format!(
            "(|({}={who})({}={who}))",
            self.settings.login_attribute, self.settings.mail_attribute
        );
        let mut found = self
            .search(
                ldap,
                &self.settings.base_dn,
                Scope::Subtree,
                &filter,
                self.person_attrs(),
            )
            .await?;
        if found.len() > 1 {
            return Err(self.protocol(
                &format!("look up {who}"),
                format!("{} entries match {filter}", found.len()),
            ));
        }
        Ok(found.pop())
    }

    /// The login of the entry at `dn` (a person), when it has one.
    async fn login_at(&self, ldap: &mut Ldap, dn: &str) -> Result<Option<String>, DirectoryError> {
        let found = self
            .search(
                ldap,
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec![self.settings.login_attribute.clone()],
            )
            .await?;
        Ok(found
            .first()
            .and_then(|e| Self::first(e, &self.settings.login_attribute)))
    }

    fn to_person(&self, entry: &SearchEntry, manager: Option<String>) -> Option<DirPerson> {
        let login = Self::first(entry, &self.settings.login_attribute)?;
        let name = Self::first(entry, "displayName")
            .or_else(|| Self::first(entry, "cn"))
            .unwrap_or_else(|| login.clone());
        Some(DirPerson {
            login,
            name,
            email: Self::first(entry, &self.settings.mail_attribute),
            manager,
        })
    }

    /// A person by login or mail, with the manager's login read from the manager's entry.
    pub async fn person(&self, who: &str) -> Result<Option<DirPerson>, DirectoryError> {
        let mut ldap = self.connect().await?;
        let Some(entry) = self.person_entry(&mut ldap, who).await? else {
            return Ok(None);
        };
        let manager = match Self::first(&entry, &self.settings.manager_attribute) {
            Some(dn) => self.login_at(&mut ldap, &dn).await?,
            None => None,
        };
        let person = self.to_person(&entry, manager);
        let _ = ldap.unbind().await;
        Ok(person)
    }

    fn group_base(&self) -> &str {
        self.settings
            .group_base_dn
            .as_deref()
            .unwrap_or(&self.settings.base_dn)
    }

    /// Names of the groups `who` is in, directly or through nested groups.
    pub async fn groups_of(&self, who: &str) -> Result<Vec<String>, DirectoryError> {
        let mut ldap = self.connect().await?;
        let Some(entry) = self.person_entry(&mut ldap, who).await? else {
            return Ok(Vec::new());
        };
        let member = &self.settings.member_attribute;
        let name_attr = self.settings.group_name_attribute.clone();
        let mut names = Vec::new();
        if self.settings.flavor == LdapFlavor::Ad {
            let filter = format!("({member}:{IN_CHAIN}:={})", ldap_escape(&entry.dn));
            for group in self
                .search(
                    &mut ldap,
                    self.group_base(),
                    Scope::Subtree,
                    &filter,
                    vec![name_attr.clone()],
                )
                .await?
            {
                names.extend(Self::first(&group, &name_attr));
            }
            return Ok(names);
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut queue: VecDeque<(String, usize)> = VecDeque::from([(entry.dn.clone(), 0)]);
        while let Some((dn, depth)) = queue.pop_front() {
            if depth >= MAX_NESTING {
                continue;
            }
            let filter = format!("({member}={})", ldap_escape(&dn));
            for group in self
                .search(
                    &mut ldap,
                    self.group_base(),
                    Scope::Subtree,
                    &filter,
                    vec![name_attr.clone()],
                )
                .await?
            {
                if seen.insert(group.dn.to_lowercase()) {
                    names.extend(Self::first(&group, &name_attr));
                    queue.push_back((group.dn.clone(), depth + 1));
                }
            }
        }
        let _ = ldap.unbind().await;
        Ok(names)
    }

    /// Members (transitively) or owners of the group named `group`; `None` when no group has
    /// that name.
    pub async fn group_list(
        &self,
        group: &str,
        owners: bool,
    ) -> Result<Option<Vec<String>>, DirectoryError> {
        let mut ldap = self.connect().await?;
        let member = self.settings.member_attribute.clone();
        let owner = self.settings.owner_attribute.clone();
        let filter = format!(
            "({}={})",
            self.settings.group_name_attribute,
            ldap_escape(group)
        );
        let found = self
            .search(
                &mut ldap,
                self.group_base(),
                Scope::Subtree,
                &filter,
                vec![member.clone(), owner.clone()],
            )
            .await?;
        let Some(entry) = found.first() else {
            return Ok(None);
        };
        let login_attr = self.settings.login_attribute.clone();
        let mut logins = Vec::new();
        if owners {
            for dn in Self::all(entry, &owner) {
                logins.extend(self.login_at(&mut ldap, &dn).await?);
            }
        } else if self.settings.flavor == LdapFlavor::Ad {
            let filter = format!("(memberOf:{IN_CHAIN}:={})", ldap_escape(&entry.dn));
            for person in self
                .search(
                    &mut ldap,
                    &self.settings.base_dn,
                    Scope::Subtree,
                    &filter,
                    vec![login_attr.clone()],
                )
                .await?
            {
                logins.extend(Self::first(&person, &login_attr));
            }
        } else {
            let mut seen: BTreeSet<String> = BTreeSet::from([entry.dn.to_lowercase()]);
            let mut queue: VecDeque<(String, usize)> = Self::all(entry, &member)
                .into_iter()
                .map(|dn| (dn, 1))
                .collect();
            while let Some((dn, depth)) = queue.pop_front() {
                if !seen.insert(dn.to_lowercase()) || depth > MAX_NESTING {
                    continue;
                }
                let at = self
                    .search(
                        &mut ldap,
                        &dn,
                        Scope::Base,
                        "(objectClass=*)",
                        vec![login_attr.clone(), member.clone()],
                    )
                    .await?;
                let Some(at) = at.first() else { continue };
                match Self::first(at, &login_attr) {
                    Some(login) => logins.push(login),
                    None => {
                        queue.extend(Self::all(at, &member).into_iter().map(|d| (d, depth + 1)))
                    }
                }
            }
        }
        let _ = ldap.unbind().await;
        Ok(Some(logins))
    }

    /// Connect, bind and count the people under the base.
    pub async fn test(&self) -> Result<String, DirectoryError> {
        let mut ldap = self.connect().await?;
        let filter = format!("({}=*)", self.settings.login_attribute);
        let people = self
            .search(
                &mut ldap,
                &self.settings.base_dn,
                Scope::Subtree,
                &filter,
                vec![self.settings.login_attribute.clone()],
            )
            .await?;
        let _ = ldap.unbind().await;
        Ok(format!(
            "ldap {}: bound as {}; {} people under {}",
            self.settings.url,
            self.settings.bind_dn,
            people.len(),
            self.settings.base_dn
        ))
    }
}
