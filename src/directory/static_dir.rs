//! The static directory: people and groups listed in the directory document itself. Group
//! membership is flat (a person lists every group they count in); owners are on the group.

use crate::domain::config::Directory;

use super::DirPerson;

/// A static directory document.
#[derive(Debug)]
pub struct StaticDirectory {
    document: Directory,
}

impl StaticDirectory {
    /// Wraps a (validated) static directory document.
    pub fn new(document: Directory) -> Self {
        Self { document }
    }

    fn find(&self, who: &str) -> Option<&crate::domain::config::Person> {
        let who = who.trim();
        self.document
            .people
            .iter()
            .find(|p| p.login.eq_ignore_ascii_case(who) || p.email.eq_ignore_ascii_case(who))
    }

    /// A person by login or e-mail.
    pub fn person(&self, who: &str) -> Option<DirPerson> {
        self.find(who).map(|p| DirPerson {
            login: p.login.clone(),
            name: p.name.clone(),
            email: Some(p.email.clone()),
            manager: p.manager.clone(),
        })
    }

    /// The groups a person lists.
    pub fn groups_of(&self, who: &str) -> Vec<String> {
        self.find(who).map(|p| p.groups.clone()).unwrap_or_default()
    }

    /// Members (people listing the group) or owners; `None` when no person lists the group
    /// and no `[[groups]]` entry names it.
    pub fn group_list(&self, group: &str, owners: bool) -> Option<Vec<String>> {
        let defined = self.document.groups.iter().find(|g| g.name == group);
        let members: Vec<String> = self
            .document
            .people
            .iter()
            .filter(|p| p.groups.iter().any(|g| g == group))
            .map(|p| p.login.clone())
            .collect();
        if defined.is_none() && members.is_empty() {
            return None;
        }
        Some(if owners {
            defined.map(|g| g.owners.clone()).unwrap_or_default()
        } else {
            members
        })
    }

    /// The document's out-of-office flag.
    pub fn out_of_office(&self, who: &str) -> bool {
        self.find(who).is_some_and(|p| p.out_of_office)
    }

    /// What `directory test` says of a static directory.
    pub fn describe(&self) -> String {
        format!(
            "static directory: {} people, {} groups with owners",
            self.document.people.len(),
            self.document.groups.len()
        )
    }
}
