//! Authorization inside each command's own transaction: the caller's role and scopes are read
//! from the operators table in that transaction, checked with the pure rules of
//! [`crate::domain::authz`], and a refused command is audited in a transaction of its own
//! (the command's transaction rolled back, so it changed nothing).

use serde_json::json;

use crate::domain::authz::{
    Action, Caller, Denial, Grant, Parties, Role, Scope, Target, permits, separation_of_duties,
};
use crate::store::Store;
use crate::store::api::{Actor, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;

/// The SQL condition "request `r` is visible to viewer `$N`": true when there is no viewer
/// (the engine), when the viewer has no scopes, or when one of its scopes names the request's
/// team or workflow. `$N` is bound to the viewer's login or NULL.
macro_rules! in_scope {
    ($p:literal) => {
        concat!(
            "(",
            $p,
            " IS NULL OR NOT EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = ",
            $p,
            ") OR EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = ",
            $p,
            " AND ((s.kind = 'team' AND s.value = r.team) OR (s.kind = 'workflow' AND s.value = r.workflow))))"
        )
    };
}
pub(crate) use in_scope;

/// The SQL condition "a row about request `$col` (which may be NULL) is visible to viewer `$p`":
/// rows about no request are visible; rows about a request follow [`in_scope!`].
macro_rules! row_in_scope {
    ($p:literal, $col:literal) => {
        concat!(
            "(",
            $p,
            " IS NULL OR NOT EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = ",
            $p,
            ") OR ",
            $col,
            " IS NULL OR EXISTS (SELECT 1 FROM requests r WHERE r.id = ",
            $col,
            " AND EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = ",
            $p,
            " AND ((s.kind = 'team' AND s.value = r.team) OR (s.kind = 'workflow' AND s.value = r.workflow)))))"
        )
    };
}
pub(crate) use row_in_scope;

/// The SQL condition "an audit row is visible to viewer `$p`": every row for an unscoped
/// viewer; only their own rows for a scoped one (audit rows name people of every team).
macro_rules! audit_in_scope {
    ($p:literal) => {
        concat!(
            "(",
            $p,
            " IS NULL OR NOT EXISTS (SELECT 1 FROM operator_scopes s WHERE s.operator = ",
            $p,
            ") OR actor = ",
            $p,
            ")"
        )
    };
}
pub(crate) use audit_in_scope;

/// An operator as the rules need them: grant and e-mail.
pub(crate) struct Operator {
    pub grant: Grant,
    pub email: Option<String>,
}

/// Load an operator's role, scopes and e-mail inside `tx` (`None`: not an operator).
pub(crate) async fn operator_in_tx(tx: &mut Tx, name: &str) -> StoreResult<Option<Operator>> {
    let row: Option<(String, Option<String>)> = tx
        .opt(
            "SELECT role, email FROM operators WHERE name = $1",
            args![name],
        )
        .await?;
    let Some((role, email)) = row else {
        return Ok(None);
    };
    let role = Role::parse(&role)
        .ok_or_else(|| StoreError::Corrupt(format!("operator {name} has unknown role {role:?}")))?;
    let scopes: Vec<(String, String)> = tx
        .all(
            "SELECT kind, value FROM operator_scopes WHERE operator = $1 ORDER BY kind, value",
            args![name],
        )
        .await?;
    let scopes = scopes
        .into_iter()
        .map(|(k, v)| {
            Scope::from_parts(&k, &v)
                .ok_or_else(|| StoreError::Corrupt(format!("operator {name} has scope kind {k:?}")))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(Operator {
        grant: Grant { role, scopes },
        email,
    }))
}

/// The team a request belongs to: its payload's `team`, when a string.
pub(crate) fn team_of(payload: &serde_json::Value) -> Option<&str> {
    payload.get("team").and_then(serde_json::Value::as_str)
}

/// The request as the scope rules see it.
pub(crate) fn target_of(request: &RequestRow) -> Target<'_> {
    Target {
        workflow: &request.workflow,
        team: team_of(&request.payload),
    }
}

fn forbidden(actor: &Actor, action: Action, denial: Denial) -> StoreError {
    StoreError::Forbidden {
        operator: actor.user.clone(),
        action: action.describe().to_string(),
        why: denial.to_string(),
    }
}

/// Check that `actor` may take `action` (on `target`, for actions on one request); answers
/// `Forbidden` naming why. Returns the operator (`None` for the engine).
pub(crate) async fn authorize(
    tx: &mut Tx,
    actor: &Actor,
    action: Action,
    target: Option<&Target<'_>>,
) -> StoreResult<Option<Operator>> {
    if actor.is_system() {
        permits(Caller::System, action, target).map_err(|d| forbidden(actor, action, d))?;
        return Ok(None);
    }
    let operator = operator_in_tx(tx, &actor.user).await?;
    permits(
        Caller::Operator(operator.as_ref().map(|o| &o.grant)),
        action,
        target,
    )
    .map_err(|d| forbidden(actor, action, d))?;
    Ok(operator)
}

/// Separation of duties for a decision on `request` by `actor`.
pub(crate) fn check_duties(
    actor: &Actor,
    operator: Option<&Operator>,
    request: &RequestRow,
    created_by: Option<&str>,
) -> StoreResult<()> {
    separation_of_duties(
        &actor.user,
        operator.and_then(|o| o.email.as_deref()),
        &Parties {
            request: request.id,
            requester: &request.requester,
            creator: created_by,
            subject_username: request.username.as_deref(),
            subject_email: request.subject_email.as_deref(),
        },
    )
    .map_err(|d| forbidden(actor, Action::Decide, d))
}

/// Engine-only store methods refuse operators: only the engine moves requests through their
/// lifecycle, opens stages and records steps.
pub(crate) fn require_system(actor: &Actor, what: &str) -> StoreResult<()> {
    if actor.is_system() {
        Ok(())
    } else {
        Err(StoreError::Forbidden {
            operator: actor.user.clone(),
            action: what.to_string(),
            why: "only the engine does this".into(),
        })
    }
}

impl Store {
    /// Pass `result` through; when it is a refusal (`Forbidden`), first append an audit row
    /// `<action>.refused` naming who, what and why, in a transaction of its own.
    pub(crate) async fn audit_refusal<T>(
        &self,
        actor: &Actor,
        action: &str,
        entity: &'static str,
        entity_id: String,
        result: StoreResult<T>,
    ) -> StoreResult<T> {
        let Err(StoreError::Forbidden {
            operator,
            action: what,
            why,
        }) = &result
        else {
            return result;
        };
        let refused = format!("{action}.refused");
        let after = json!({"refused": what, "why": why, "operator": operator});
        let written: StoreResult<()> = write_tx!(self, |tx| {
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: &refused,
                    entity,
                    entity_id: entity_id.clone(),
                    before: None,
                    after: Some(after.clone()),
                },
            );
            Ok(())
        });
        match written {
            Ok(_) => self.signal_local(false),
            Err(e) => tracing::warn!(error = %e, action, "could not audit a refused command"),
        }
        tracing::warn!(operator = %actor.user, source = %actor.source, action, why = %why, "command refused");
        result
    }
}
