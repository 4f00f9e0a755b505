//! Operators and their grants: adding, changing and removing operators (admins only, checked
//! in the command's transaction), and the one bootstrap of the first admin.

use serde_json::json;

use crate::domain::authz::{Action, Role, Scope};
use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, OperatorRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, operator_in_tx};
use crate::store::command::{finish, invalid, limited, non_empty};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::now_ms;

/// Check an operator name: at most [`limits::MAX_OPERATOR_CHARS`] characters of letters,
/// digits, `.`, `_`, `-`, `@`; never empty, never the engine's `system:` names.
pub fn check_operator_name(name: &str) -> StoreResult<()> {
    non_empty("name", name)?;
    limited(limits::check_operator_name("name", name))?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(invalid(
            "name",
            format!("{name:?} may use only letters, digits, '.', '_', '-' and '@'"),
        ));
    }
    Ok(())
}

/// The operator as the audit trail records it.
fn describe(row: &OperatorRow) -> serde_json::Value {
    json!({"role": row.role, "scopes": row.scopes, "email": row.email})
}

fn parse_grant(op: &OperatorRow) -> StoreResult<(Role, Vec<Scope>)> {
    check_operator_name(&op.name)?;
    let role = Role::parse(&op.role).ok_or_else(|| {
        invalid(
            "role",
            format!("{:?} is not viewer, approver or admin", op.role),
        )
    })?;
    let scopes = op
        .scopes
        .iter()
        .map(|s| Scope::parse(s).map_err(|e| invalid("scope", e.to_string())))
        .collect::<StoreResult<Vec<_>>>()?;
    if let Some(email) = &op.email
        && (email.len() > 254 || !email.contains('@') || email.chars().any(char::is_whitespace))
    {
        return Err(invalid(
            "email",
            format!("{email:?} is not an e-mail address"),
        ));
    }
    Ok((role, scopes))
}

async fn load_row(tx: &mut Tx, name: &str) -> StoreResult<Option<OperatorRow>> {
    Ok(operator_in_tx(tx, name).await?.map(|o| OperatorRow {
        name: name.to_string(),
        role: o.grant.role.name().to_string(),
        scopes: o.grant.scopes.iter().map(ToString::to_string).collect(),
        email: o.email,
    }))
}

/// Unscoped admins other than `except`.
async fn other_full_admins(tx: &mut Tx, except: &str) -> StoreResult<i64> {
    let (n,): (i64,) = tx
        .one(
            "SELECT COUNT(*) FROM operators o WHERE o.role = 'admin' AND o.name <> $1 \
             AND NOT EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = o.name)",
            args![except],
        )
        .await?;
    Ok(n)
}

fn last_admin(actor: &Actor, name: &str) -> StoreError {
    StoreError::Forbidden {
        operator: actor.user.clone(),
        action: Action::ManageOperators.describe().to_string(),
        why: format!("{name} is the last unscoped admin; add another admin first"),
    }
}

async fn write_grant(tx: &mut Tx, op: &OperatorRow, scopes: &[Scope]) -> StoreResult<()> {
    tx.exec(
        "INSERT INTO operators (name, role, email, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET role = excluded.role, email = excluded.email, updated_at = excluded.updated_at",
        args![&op.name, &op.role, &op.email, now_ms()],
    )
    .await?;
    tx.exec(
        "DELETE FROM operator_scopes WHERE operator = $1",
        args![&op.name],
    )
    .await?;
    for scope in scopes {
        tx.exec(
            "INSERT INTO operator_scopes (operator, kind, value) VALUES ($1, $2, $3)",
            args![&op.name, scope.kind(), scope.value()],
        )
        .await?;
    }
    Ok(())
}

/// Add an operator or replace their role, scopes and e-mail. Only unscoped admins may, and
/// the last unscoped admin cannot be demoted or scoped.
pub(crate) async fn set_operator(
    store: &Store,
    actor: &Actor,
    op: &OperatorRow,
) -> StoreResult<()> {
    store.check_writable()?;
    let (role, scopes) = parse_grant(op)?;
    let result = write_tx!(store, |tx| {
        authorize(&mut tx, actor, Action::ManageOperators, None).await?;
        let before = load_row(&mut tx, &op.name).await?;
        let was_full_admin = before
            .as_ref()
            .is_some_and(|b| b.role == "admin" && b.scopes.is_empty());
        let stays_full_admin = role == Role::Admin && scopes.is_empty();
        if was_full_admin && !stays_full_admin && other_full_admins(&mut tx, &op.name).await? == 0 {
            return Err(last_admin(actor, &op.name));
        }
        write_grant(&mut tx, op, &scopes).await?;
        audit::append(
            &mut tx,
            actor,
            AuditEntry {
                action: "operator.set",
                entity: "operator",
                entity_id: op.name.clone(),
                before: before.as_ref().map(describe),
                after: Some(describe(op)),
            },
        );
        finish(&mut tx, false).await
    });
    store
        .audit_refusal(actor, "operator.set", "operator", op.name.clone(), result)
        .await?;
    store.signal_local(false);
    Ok(())
}

impl Store {
    /// Create the first admin. Refused (and audited) once any admin exists: from then on only
    /// admins manage operators. Who may call this at all is the caller's rule (the CLI allows
    /// root or the OS owner of the store file).
    pub async fn bootstrap_admin(
        &self,
        actor: &Actor,
        name: &str,
        email: Option<String>,
    ) -> StoreResult<()> {
        self.check_writable()?;
        let op = OperatorRow {
            name: name.to_string(),
            role: "admin".into(),
            scopes: Vec::new(),
            email,
        };
        parse_grant(&op)?;
        let result = write_tx!(self, |tx| {
            let (admins,): (i64,) = tx
                .one(
                    "SELECT COUNT(*) FROM operators WHERE role = 'admin'",
                    vec![],
                )
                .await?;
            if admins > 0 {
                return Err(StoreError::Forbidden {
                    operator: actor.user.clone(),
                    action: "create the first admin".into(),
                    why: "an admin already exists; only admins manage operators".into(),
                });
            }
            let before = load_row(&mut tx, name).await?;
            write_grant(&mut tx, &op, &[]).await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "operator.bootstrap",
                    entity: "operator",
                    entity_id: name.to_string(),
                    before: before.as_ref().map(describe),
                    after: Some(describe(&op)),
                },
            );
            finish(&mut tx, false).await
        });
        self.audit_refusal(
            actor,
            "operator.bootstrap",
            "operator",
            name.to_string(),
            result,
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }

    /// True when at least one admin exists.
    pub async fn has_admin(&self) -> StoreResult<bool> {
        let (n,): (i64,) = self
            .read_one(
                "SELECT COUNT(*) FROM operators WHERE role = 'admin'",
                vec![],
            )
            .await?;
        Ok(n > 0)
    }

    /// Remove an operator (admins only; never the last unscoped admin).
    pub async fn remove_operator(&self, actor: &Actor, name: &str) -> StoreResult<()> {
        self.check_writable()?;
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::ManageOperators, None).await?;
            let Some(before) = load_row(&mut tx, name).await? else {
                return Err(StoreError::NotFound {
                    entity: "operator",
                    id: name.to_string(),
                });
            };
            if before.role == "admin"
                && before.scopes.is_empty()
                && other_full_admins(&mut tx, name).await? == 0
            {
                return Err(last_admin(actor, name));
            }
            tx.exec(
                "DELETE FROM operator_scopes WHERE operator = $1",
                args![name],
            )
            .await?;
            tx.exec("DELETE FROM operators WHERE name = $1", args![name])
                .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "operator.remove",
                    entity: "operator",
                    entity_id: name.to_string(),
                    before: Some(describe(&before)),
                    after: None,
                },
            );
            finish(&mut tx, false).await
        });
        self.audit_refusal(
            actor,
            "operator.remove",
            "operator",
            name.to_string(),
            result,
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        for ok in [
            "ann",
            "ann.lee",
            "a_b-c",
            "ann@example.com",
            &"x".repeat(128),
        ] {
            assert!(check_operator_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "system:engine",
            "ann lee",
            "ann\u{1b}[2J",
            "änn",
            "a\0b",
            &"x".repeat(129),
        ] {
            assert!(check_operator_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grants_parse() {
        let op = |role: &str, scopes: &[&str], email: Option<&str>| OperatorRow {
            name: "ann".into(),
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            email: email.map(str::to_string),
        };
        assert!(parse_grant(&op("admin", &["team:finance"], Some("a@x.org"))).is_ok());
        assert!(parse_grant(&op("superuser", &[], None)).is_err());
        assert!(parse_grant(&op("admin", &["finance"], None)).is_err());
        assert!(parse_grant(&op("admin", &[], Some("not an address"))).is_err());
    }
}
