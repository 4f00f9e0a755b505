//! Roles: named bundles of entitlements with inheritance; a mover is the difference of two.
//!
//! An entitlement is written `CONNECTOR:VALUE` (e.g. `demo-target:developer`): the connector
//! that grants it and what it grants there.

use super::diagnostic::FieldError;
use super::workflow::{check_document_name, is_document_name};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// A role document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Unique role name.
    pub name: String,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Entitlements granted directly, as `CONNECTOR:VALUE`.
    #[serde(default)]
    pub entitlements: Vec<String>,
    /// Roles whose entitlements this one also grants.
    #[serde(default)]
    pub inherits: Vec<String>,
}

/// An entitlement split into its connector and value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entitlement {
    /// The connector that grants it.
    pub connector: String,
    /// What it grants in that connector.
    pub value: String,
}

impl Entitlement {
    /// Parses `CONNECTOR:VALUE`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((connector, value)) = text.split_once(':') else {
            return Err(format!(
                "\"{text}\" is not an entitlement: write CONNECTOR:VALUE, e.g. demo-target:developer"
            ));
        };
        if !is_document_name(connector) {
            return Err(format!("\"{connector}\" is not a valid connector name"));
        }
        if value.trim().is_empty() || value.trim() != value {
            return Err(format!(
                "\"{text}\" needs a value after ':' without surrounding spaces"
            ));
        }
        Ok(Self {
            connector: connector.to_string(),
            value: value.to_string(),
        })
    }
}

impl Role {
    /// Problems within this document, by field path.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check_document_name(&self.name, &mut errors);
        if self.entitlements.is_empty() && self.inherits.is_empty() {
            errors.push(FieldError::new(
                "entitlements",
                "a role needs entitlements or inherits",
            ));
        }
        for (index, entitlement) in self.entitlements.iter().enumerate() {
            let field = format!("entitlements[{index}]");
            if let Err(message) = Entitlement::parse(entitlement) {
                errors.push(FieldError::new(field, message));
            } else if self.entitlements[..index].contains(entitlement) {
                errors.push(FieldError::new(
                    field,
                    format!("\"{entitlement}\" listed twice"),
                ));
            }
        }
        for (index, parent) in self.inherits.iter().enumerate() {
            let field = format!("inherits[{index}]");
            if *parent == self.name {
                errors.push(FieldError::new(field, "a role cannot inherit itself"));
            } else if !is_document_name(parent) {
                errors.push(FieldError::new(
                    field,
                    format!("\"{parent}\" is not a valid role name"),
                ));
            } else if self.inherits[..index].contains(parent) {
                errors.push(FieldError::new(field, format!("\"{parent}\" listed twice")));
            }
        }
        errors
    }
}

/// Why a role's entitlements could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoleError {
    /// A role name that is not defined.
    #[error("unknown role \"{0}\"")]
    Unknown(String),
    /// Inheritance loops back.
    #[error("roles inherit in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
}

/// Every entitlement `name` grants, its inherited roles included.
pub fn resolve_entitlements(
    roles: &BTreeMap<String, Role>,
    name: &str,
) -> Result<BTreeSet<String>, RoleError> {
    fn visit(
        roles: &BTreeMap<String, Role>,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut BTreeSet<String>,
    ) -> Result<(), RoleError> {
        if let Some(start) = path.iter().position(|seen| seen == name) {
            let mut cycle = path[start..].to_vec();
            cycle.push(name.to_string());
            return Err(RoleError::Cycle(cycle));
        }
        if done.contains(name) {
            return Ok(());
        }
        let role = roles
            .get(name)
            .ok_or_else(|| RoleError::Unknown(name.to_string()))?;
        out.extend(role.entitlements.iter().cloned());
        path.push(name.to_string());
        for parent in &role.inherits {
            visit(roles, parent, path, done, out)?;
        }
        path.pop();
        done.insert(name.to_string());
        Ok(())
    }
    let mut out = BTreeSet::new();
    visit(roles, name, &mut Vec::new(), &mut BTreeSet::new(), &mut out)?;
    Ok(out)
}

/// A role's resolved tree for people to read: the role, its own entitlements, its inherited
/// roles indented below it, then the whole bundle with the role each entitlement comes from.
pub fn role_tree(roles: &BTreeMap<String, Role>, name: &str) -> Result<Vec<String>, RoleError> {
    fn walk(
        roles: &BTreeMap<String, Role>,
        name: &str,
        depth: usize,
        lines: &mut Vec<String>,
        origin: &mut BTreeMap<String, String>,
    ) -> Result<(), RoleError> {
        let role = roles
            .get(name)
            .ok_or_else(|| RoleError::Unknown(name.to_string()))?;
        let pad = "  ".repeat(depth);
        lines.push(format!("{pad}{name}"));
        for e in &role.entitlements {
            lines.push(format!("{pad}  + {e}"));
            origin.entry(e.clone()).or_insert_with(|| name.to_string());
        }
        for parent in &role.inherits {
            walk(roles, parent, depth + 1, lines, origin)?;
        }
        Ok(())
    }
    resolve_entitlements(roles, name)?;
    let mut lines = Vec::new();
    let mut origin = BTreeMap::new();
    walk(roles, name, 0, &mut lines, &mut origin)?;
    lines.push(String::new());
    lines.push(format!("bundle of {name}:"));
    for (e, from) in origin {
        lines.push(format!("  {e}  (from {from})"));
    }
    Ok(lines)
}

/// What a mover needs: entitlements to grant and to revoke.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntitlementDiff {
    /// In the new bundle only.
    pub grant: BTreeSet<String>,
    /// In the old bundle only.
    pub revoke: BTreeSet<String>,
}

/// The difference between the bundle someone has and the one they move to.
pub fn mover_diff(old: &BTreeSet<String>, new: &BTreeSet<String>) -> EntitlementDiff {
    EntitlementDiff {
        grant: new.difference(old).cloned().collect(),
        revoke: old.difference(new).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, entitlements: &[&str], inherits: &[&str]) -> Role {
        Role {
            name: name.into(),
            description: String::new(),
            entitlements: entitlements.iter().map(|e| e.to_string()).collect(),
            inherits: inherits.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn catalogue(roles: Vec<Role>) -> BTreeMap<String, Role> {
        roles
            .into_iter()
            .map(|role| (role.name.clone(), role))
            .collect()
    }

    #[test]
    fn entitlements_parse() {
        assert_eq!(
            Entitlement::parse("demo-target:developer"),
            Ok(Entitlement {
                connector: "demo-target".into(),
                value: "developer".into()
            })
        );
        assert_eq!(
            Entitlement::parse("db:schema:read").map(|e| e.value),
            Ok("schema:read".into())
        );
        for bad in ["developer", ":x", "Demo:x", "db:", "db: x", "db:x "] {
            assert!(Entitlement::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_fields() {
        assert!(
            role("developer", &["db:dev"], &["employee"])
                .validate()
                .is_empty()
        );
        let fields =
            |r: Role| -> Vec<String> { r.validate().into_iter().map(|e| e.field).collect() };
        assert_eq!(fields(role("x", &[], &[])), vec!["entitlements"]);
        assert_eq!(fields(role("Bad Name", &["db:a"], &[])), vec!["name"]);
        assert_eq!(
            fields(role("x", &["db:a", "nope", "db:a"], &[])),
            vec!["entitlements[1]", "entitlements[2]"]
        );
        assert_eq!(
            fields(role("x", &["db:a"], &["x", "Y", "y", "y"])),
            vec!["inherits[0]", "inherits[1]", "inherits[3]"]
        );
    }

    #[test]
    fn inheritance_resolves_transitively_and_once() {
        let roles = catalogue(vec![
            role("employee", &["mail:user", "wiki:read"], &[]),
            role("developer", &["db:dev"], &["employee"]),
            role("lead", &["db:admin"], &["developer", "employee"]),
        ]);
        assert_eq!(
            resolve_entitlements(&roles, "employee"),
            Ok(set(&["mail:user", "wiki:read"]))
        );
        assert_eq!(
            resolve_entitlements(&roles, "lead"),
            Ok(set(&["db:admin", "db:dev", "mail:user", "wiki:read"]))
        );
        assert_eq!(
            resolve_entitlements(&roles, "ghost"),
            Err(RoleError::Unknown("ghost".into()))
        );
    }

    #[test]
    fn cycles_and_missing_parents_are_errors() {
        let roles = catalogue(vec![
            role("a", &["x:1"], &["b"]),
            role("b", &["x:2"], &["c"]),
            role("c", &["x:3"], &["a"]),
            role("d", &["x:4"], &["missing"]),
        ]);
        let error = resolve_entitlements(&roles, "a").expect_err("cycle");
        assert_eq!(
            error,
            RoleError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(error.to_string(), "roles inherit in a cycle: a → b → c → a");
        assert_eq!(
            resolve_entitlements(&roles, "d"),
            Err(RoleError::Unknown("missing".into()))
        );
    }

    #[test]
    fn the_tree_says_where_each_entitlement_comes_from() {
        let roles = catalogue(vec![
            role("employee", &["mail:user"], &[]),
            role("developer", &["db:dev"], &["employee"]),
        ]);
        assert_eq!(
            role_tree(&roles, "developer").expect("tree"),
            vec![
                "developer",
                "  + db:dev",
                "  employee",
                "    + mail:user",
                "",
                "bundle of developer:",
                "  db:dev  (from developer)",
                "  mail:user  (from employee)",
            ]
        );
        assert!(role_tree(&roles, "ghost").is_err());
    }

    #[test]
    fn mover_is_the_difference() {
        let diff = mover_diff(&set(&["a", "b", "c"]), &set(&["b", "c", "d"]));
        assert_eq!(diff.grant, set(&["d"]));
        assert_eq!(diff.revoke, set(&["a"]));
        assert_eq!(
            mover_diff(&set(&["a"]), &set(&["a"])),
            EntitlementDiff::default()
        );
    }
}
