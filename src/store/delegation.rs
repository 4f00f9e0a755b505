//! Delegations in the store: `delegate` and `revoke_delegation` check who may (the person
//! delegating, or an unscoped admin) and the chain rules of [`crate::domain::delegation`] in
//! their own transaction; [`counted_decision`] answers, inside `decide_approval`'s transaction,
//! whose decision an operator's decision is (their own, or an approver's they act for), with
//! separation of duties applied to both.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;

use crate::domain::authz::{Parties, Role, separation_of_duties};
use crate::domain::delegation::{self, Counted, Delegation, NotCounted};
use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, Millis, NewDelegation, RequestRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::operator_in_tx;
use crate::store::command::{finish, invalid, limited};
use crate::store::db::{Tx, args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::{now_ms, rfc3339};

/// One delegation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationRow {
    /// Primary key.
    pub id: i64,
    /// Who delegates.
    pub from: String,
    /// Who decides in their place.
    pub to: String,
    /// End (epoch ms, exclusive).
    pub until: Millis,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
    /// Why it was made, when given.
    #[serde(default)]
    pub reason: Option<String>,
}

impl DelegationRow {
    /// `in force`, `ended` or `revoked` at `now`.
    pub fn state(&self, now: Millis) -> &'static str {
        match self.revoked_at {
            Some(_) => "revoked",
            None if self.until <= now => "ended",
            None => "in force",
        }
    }
}

#[derive(Debug, FromRow)]
struct DbDelegation {
    id: i64,
    from_login: String,
    to_login: String,
    until_at: i64,
    created_by: String,
    created_at: i64,
    revoked_at: Option<i64>,
    reason: Option<String>,
}

impl DbDelegation {
    fn into_api(self) -> DelegationRow {
        DelegationRow {
            id: self.id,
            from: self.from_login,
            to: self.to_login,
            until: self.until_at,
            created_by: self.created_by,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            reason: self.reason,
        }
    }
}

const SELECT: &str = "SELECT id, from_login, to_login, until_at, created_by, created_at, revoked_at, reason FROM delegations ORDER BY id";

/// The delegations in force at `now` (not revoked, not ended), for the pure rules.
pub(crate) async fn active_in_tx(tx: &mut Tx, now: Millis) -> StoreResult<Vec<Delegation>> {
    let rows: Vec<(String, String, i64)> = tx
        .all(
            "SELECT from_login, to_login, until_at FROM delegations WHERE revoked_at IS NULL AND until_at > $1 ORDER BY id",
            args![now],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(from, to, until)| Delegation { from, to, until })
        .collect())
}

fn refused(actor: &Actor, action: &str, why: impl Into<String>) -> StoreError {
    StoreError::Forbidden {
        operator: actor.user.clone(),
        action: action.to_string(),
        why: why.into(),
    }
}

/// Whose decision `actor`'s decision on a stage with `approvers` is, when they are not an
/// approver themselves: the approver they act for (see [`delegation::counts_as`]), or `None`
/// when they act for nobody. Separation-of-duties refusals name why. `decided` lists
/// `(approver counted, person who acted)` of the decisions already taken.
pub(crate) async fn counted_decision(
    tx: &mut Tx,
    actor: &Actor,
    approvers: &[String],
    decided: &[(String, String)],
    request: &RequestRow,
    created_by: Option<&str>,
    action: &str,
) -> StoreResult<Option<Counted>> {
    let now = now_ms();
    let delegations = active_in_tx(tx, now).await?;
    let mut emails: Vec<(String, Option<String>)> = Vec::new();
    for name in approvers.iter().chain(std::iter::once(&actor.user)) {
        let email = operator_in_tx(tx, name).await?.and_then(|o| o.email);
        emails.push((name.clone(), email));
    }
    let parties = Parties {
        request: request.id,
        requester: &request.requester,
        creator: created_by,
        subject_username: request.username.as_deref(),
        subject_email: request.subject_email.as_deref(),
    };
    let is_party = |name: &str| {
        let email = emails
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, e)| e.as_deref());
        separation_of_duties(name, email, &parties).is_err()
    };
    match delegation::counts_as(
        approvers,
        decided,
        &actor.user,
        &is_party,
        &delegations,
        now,
    ) {
        Ok(counted) => Ok(Some(counted)),
        Err(NotCounted::NotEligible(_)) => Ok(None),
        Err(e @ NotCounted::AlreadyDecided(_)) => Err(StoreError::Conflict {
            entity: "approval",
            id: String::new(),
            changed_by: actor.user.clone(),
            changed_at: rfc3339(now),
            what: e.to_string(),
        }),
        Err(e) => Err(refused(actor, action, e.to_string())),
    }
}

impl Store {
    /// Let `to` decide `from`'s approvals until `until`. Allowed to `from` themselves (an
    /// approver or admin) and to unscoped admins; refused when it would loop, chain past the
    /// bound, or end in the past. Audited; refusals too.
    pub async fn delegate(
        &self,
        actor: &Actor,
        from: &str,
        to: &str,
        until: Millis,
    ) -> StoreResult<DelegationRow> {
        let new = NewDelegation {
            from: from.to_string(),
            to: to.to_string(),
            until,
            reason: None,
        };
        self.delegate_checked(actor, &new).await
    }

    /// [`CommandApi::add_delegation`](crate::store::api::CommandApi::add_delegation): the
    /// checks and the write, in one transaction.
    pub(crate) async fn delegate_checked(
        &self,
        actor: &Actor,
        new: &NewDelegation,
    ) -> StoreResult<DelegationRow> {
        self.check_writable()?;
        let (from, to, until) = (new.from.trim(), new.to.trim(), new.until);
        limited(limits::check_operator_name("from", from))?;
        limited(limits::check_operator_name("to", to))?;
        limited(limits::check_reason(new.reason.as_deref()))?;
        let reason = new
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let action = format!("delegate {from}'s approvals to {to}");
        let result = write_tx!(self, |tx| {
            let me = operator_in_tx(&mut tx, &actor.user).await?;
            let unscoped_admin = me
                .as_ref()
                .is_some_and(|o| o.grant.role == Role::Admin && o.grant.scopes.is_empty());
            let own = actor.user.eq_ignore_ascii_case(from)
                && me.as_ref().is_some_and(|o| o.grant.role >= Role::Approver);
            if actor.is_system() || !(own || unscoped_admin) {
                return Err(refused(
                    actor,
                    &action,
                    "only the person delegating (an approver) or an unscoped admin may",
                ));
            }
            for (field, name) in [("from", from), ("to", to)] {
                let role = operator_in_tx(&mut tx, name).await?.map(|o| o.grant.role);
                if role.is_none_or(|r| r < Role::Approver) {
                    return Err(invalid(
                        field,
                        format!("{name} is not an operator with the approver or admin role"),
                    ));
                }
            }
            let now = now_ms();
            let new = Delegation {
                from: from.to_string(),
                to: to.to_string(),
                until,
            };
            let held = active_in_tx(&mut tx, now).await?;
            delegation::check_new(&held, &new, now)
                .map_err(|e| invalid("delegation", e.to_string()))?;
            let (id,): (i64,) = tx
                .one(
                    "INSERT INTO delegations (from_login, to_login, until_at, created_by, created_at, reason) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    args![from, to, until, &actor.user, now, reason],
                )
                .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "delegation.create",
                    entity: "delegation",
                    entity_id: id.to_string(),
                    before: None,
                    after: Some(
                        json!({"from": from, "to": to, "until": rfc3339(until), "reason": reason}),
                    ),
                },
            );
            finish(&mut tx, false).await?;
            let row: DbDelegation = tx
                .one(
                    "SELECT id, from_login, to_login, until_at, created_by, created_at, revoked_at, reason FROM delegations WHERE id = $1",
                    args![id],
                )
                .await?;
            Ok(row.into_api())
        });
        let row = self
            .audit_refusal(
                actor,
                "delegation.create",
                "delegation",
                String::new(),
                result,
            )
            .await?;
        self.signal_local(false);
        Ok(row)
    }

    /// [`CommandApi::revoke_delegation`](crate::store::api::CommandApi::revoke_delegation):
    /// end a delegation now (by its `from`, or an unscoped admin).
    pub(crate) async fn revoke_delegation_checked(
        &self,
        actor: &Actor,
        id: i64,
    ) -> StoreResult<DelegationRow> {
        self.check_writable()?;
        let result = write_tx!(self, |tx| {
            let row: DbDelegation = tx
                .opt(
                    "SELECT id, from_login, to_login, until_at, created_by, created_at, revoked_at, reason FROM delegations WHERE id = $1",
                    args![id],
                )
                .await?
                .ok_or(StoreError::NotFound {
                    entity: "delegation",
                    id: id.to_string(),
                })?;
            let me = operator_in_tx(&mut tx, &actor.user).await?;
            let unscoped_admin = me
                .as_ref()
                .is_some_and(|o| o.grant.role == Role::Admin && o.grant.scopes.is_empty());
            if actor.is_system() || !(unscoped_admin || actor.user == row.from_login) {
                return Err(refused(
                    actor,
                    &format!("revoke delegation {id}"),
                    "only the person who delegated or an unscoped admin may",
                ));
            }
            let now = now_ms();
            tx.exec(
                "UPDATE delegations SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL",
                args![id, now, &actor.user],
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "delegation.revoke",
                    entity: "delegation",
                    entity_id: id.to_string(),
                    before: Some(json!({"from": row.from_login, "to": row.to_login})),
                    after: Some(json!({"revoked_at": rfc3339(now)})),
                },
            );
            finish(&mut tx, false).await?;
            let row: DbDelegation = tx
                .one(
                    "SELECT id, from_login, to_login, until_at, created_by, created_at, revoked_at, reason FROM delegations WHERE id = $1",
                    args![id],
                )
                .await?;
            Ok(row.into_api())
        });
        let row = self
            .audit_refusal(
                actor,
                "delegation.revoke",
                "delegation",
                id.to_string(),
                result,
            )
            .await?;
        self.signal_local(false);
        Ok(row)
    }

    /// The people `operator` may decide for now: every approver with an active delegation
    /// chain of at most [`delegation::MAX_CHAIN`] links ending at them.
    pub async fn acting_for_whom(&self, operator: &str) -> StoreResult<Vec<String>> {
        let now = now_ms();
        let rows: Vec<(String, String, i64)> = self
            .read_all(
                "SELECT from_login, to_login, until_at FROM delegations WHERE revoked_at IS NULL AND until_at > $1 ORDER BY id",
                args![now],
            )
            .await?;
        let held: Vec<Delegation> = rows
            .into_iter()
            .map(|(from, to, until)| Delegation { from, to, until })
            .collect();
        let mut people: Vec<String> = held.iter().map(|d| d.from.clone()).collect();
        people.sort();
        people.dedup();
        Ok(delegation::acting_for(&held, &people, operator, now)
            .into_iter()
            .map(|(approver, _)| approver)
            .collect())
    }

    /// [`ReadApi::delegations`](crate::store::api::ReadApi::delegations): delegations still in
    /// force at `now` (`None`: every delegation ever made), oldest first.
    pub(crate) async fn delegation_rows(
        &self,
        now: Option<Millis>,
    ) -> StoreResult<Vec<DelegationRow>> {
        let rows: Vec<DbDelegation> = match now {
            Some(now) => {
                self.read_all(
                    "SELECT id, from_login, to_login, until_at, created_by, created_at, revoked_at, reason FROM delegations WHERE revoked_at IS NULL AND until_at > $1 ORDER BY id",
                    args![now],
                )
                .await?
            }
            None => self.read_all(SELECT, args![]).await?,
        };
        Ok(rows.into_iter().map(DbDelegation::into_api).collect())
    }
}
