//! Operators' SSH public keys: adding and removing them (admins only, checked and audited in
//! the command's transaction like every other command), listing them, finding the operator a
//! key logs in as, and recording each key's last use.

use serde_json::json;
use sqlx::FromRow;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::domain::sshkey::{self, ParsedKey};
use crate::store::Store;
use crate::store::api::{Actor, Millis, OperatorKeyRow, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::{authorize, operator_in_tx};
use crate::store::command::{finish, invalid, limited};
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::operators::check_operator_name;
use crate::store::rows::now_ms;

/// The operator a key logs in as, with their role as the store holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Operator name.
    pub operator: String,
    /// `viewer`, `approver` or `admin`.
    pub role: String,
}

#[derive(Debug, FromRow)]
struct DbKey {
    fingerprint: String,
    operator: String,
    algorithm: String,
    comment: Option<String>,
    added_at: i64,
    added_by: String,
    last_used_at: Option<i64>,
    last_used_from: Option<String>,
}

impl DbKey {
    fn into_api(self) -> OperatorKeyRow {
        OperatorKeyRow {
            fingerprint: self.fingerprint,
            operator: self.operator,
            algorithm: self.algorithm,
            comment: self.comment,
            added_at: self.added_at,
            added_by: self.added_by,
            last_used_at: self.last_used_at,
            last_used_from: self.last_used_from,
        }
    }
}

fn describe(operator: &str, key: &ParsedKey) -> serde_json::Value {
    json!({
        "operator": operator,
        "fingerprint": key.fingerprint,
        "algorithm": key.algorithm,
        "comment": key.comment,
    })
}

impl Store {
    /// Add an SSH public key (the text of a `.pub` file) to operator `name`. Admins only;
    /// ed25519, ecdsa and rsa of at least 3072 bits are accepted; a key already held by any
    /// operator is refused. Returns the stored key.
    pub async fn add_operator_key(
        &self,
        actor: &Actor,
        name: &str,
        public_key: &str,
    ) -> StoreResult<OperatorKeyRow> {
        self.check_writable()?;
        check_operator_name(name)?;
        let key =
            sshkey::parse_public_key(public_key).map_err(|e| invalid("key", e.to_string()))?;
        if let Some(comment) = &key.comment {
            limited(limits::check_label("comment", comment))?;
        }
        let now = now_ms();
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::ManageOperators, None).await?;
            if operator_in_tx(&mut tx, name).await?.is_none() {
                return Err(StoreError::NotFound {
                    entity: "operator",
                    id: name.to_string(),
                });
            }
            let holder: Option<(String,)> = tx
                .opt(
                    "SELECT operator FROM operator_keys WHERE fingerprint = $1",
                    args![&key.fingerprint],
                )
                .await?;
            if let Some((holder,)) = holder {
                return Err(invalid(
                    "key",
                    format!("{} is already a key of operator {holder}", key.fingerprint),
                ));
            }
            tx.exec(
                "INSERT INTO operator_keys (fingerprint, operator, algorithm, public_key, comment, added_at, added_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![
                    &key.fingerprint,
                    name,
                    &key.algorithm,
                    &key.openssh,
                    &key.comment,
                    now,
                    &actor.user
                ],
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "operator.key.add",
                    entity: "operator",
                    entity_id: name.to_string(),
                    before: None,
                    after: Some(describe(name, &key)),
                },
            );
            finish(&mut tx, false).await
        });
        self.audit_refusal(
            actor,
            "operator.key.add",
            "operator",
            name.to_string(),
            result,
        )
        .await?;
        self.signal_local(false);
        Ok(OperatorKeyRow {
            fingerprint: key.fingerprint,
            operator: name.to_string(),
            algorithm: key.algorithm,
            comment: key.comment,
            added_at: now,
            added_by: actor.user.clone(),
            last_used_at: None,
            last_used_from: None,
        })
    }

    /// Remove operator `name`'s key `fingerprint` (`SHA256:…`). Admins only. New connections
    /// with the key are refused from then on.
    pub async fn remove_operator_key(
        &self,
        actor: &Actor,
        name: &str,
        fingerprint: &str,
    ) -> StoreResult<()> {
        self.check_writable()?;
        if !sshkey::is_fingerprint(fingerprint) {
            return Err(invalid(
                "fingerprint",
                format!(
                    "{fingerprint:?} is not a SHA256:… fingerprint (see `gatehouse operator key list`)"
                ),
            ));
        }
        let result = write_tx!(self, |tx| {
            authorize(&mut tx, actor, Action::ManageOperators, None).await?;
            let before: Option<(String, Option<String>)> = tx
                .opt(
                    "SELECT algorithm, comment FROM operator_keys WHERE fingerprint = $1 AND operator = $2",
                    args![fingerprint, name],
                )
                .await?;
            let Some((algorithm, comment)) = before else {
                return Err(StoreError::NotFound {
                    entity: "operator key",
                    id: format!("{name} {fingerprint}"),
                });
            };
            tx.exec(
                "DELETE FROM operator_keys WHERE fingerprint = $1 AND operator = $2",
                args![fingerprint, name],
            )
            .await?;
            audit::append(
                &mut tx,
                actor,
                AuditEntry {
                    action: "operator.key.remove",
                    entity: "operator",
                    entity_id: name.to_string(),
                    before: Some(json!({
                        "operator": name,
                        "fingerprint": fingerprint,
                        "algorithm": algorithm,
                        "comment": comment,
                    })),
                    after: None,
                },
            );
            finish(&mut tx, false).await
        });
        self.audit_refusal(
            actor,
            "operator.key.remove",
            "operator",
            name.to_string(),
            result,
        )
        .await?;
        self.signal_local(false);
        Ok(())
    }

    /// Every key, by operator then fingerprint.
    pub(crate) async fn list_operator_keys(&self) -> StoreResult<Vec<OperatorKeyRow>> {
        let rows: Vec<DbKey> = self
            .read_all(
                "SELECT fingerprint, operator, algorithm, comment, added_at, added_by, last_used_at, \
                 last_used_from FROM operator_keys ORDER BY operator, fingerprint",
                vec![],
            )
            .await?;
        Ok(rows.into_iter().map(DbKey::into_api).collect())
    }

    /// The operator key `fingerprint` logs in as, read now (a removed key or operator answers
    /// `None`).
    pub async fn operator_for_key(&self, fingerprint: &str) -> StoreResult<Option<KeyOwner>> {
        let row: Option<(String, String)> = self
            .read_opt(
                "SELECT o.name, o.role FROM operator_keys k JOIN operators o ON o.name = k.operator \
                 WHERE k.fingerprint = $1",
                args![fingerprint],
            )
            .await?;
        Ok(row.map(|(operator, role)| KeyOwner { operator, role }))
    }

    /// Record that key `fingerprint` opened a session from `from` at `at`.
    pub async fn record_key_use(
        &self,
        fingerprint: &str,
        from: &str,
        at: Millis,
    ) -> StoreResult<()> {
        self.check_writable()?;
        write_tx!(self, |tx| {
            tx.exec(
                "UPDATE operator_keys SET last_used_at = $1, last_used_from = $2 WHERE fingerprint = $3",
                args![at, from, fingerprint],
            )
            .await?;
            finish(&mut tx, false).await
        })?;
        self.signal_local(false);
        Ok(())
    }
}
