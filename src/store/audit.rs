//! The hash-chained audit trail: canonical form, appending (serialised) and verification.
//!
//! Canonical form of a row: the JSON object
//! `{"action","actor","after","at","before","entity","entity_id","id","source"}` with keys in
//! byte order at every depth, no whitespace, strings escaped as `serde_json` escapes them,
//! integers in decimal, floats as `serde_json` prints them (shortest round-trip), missing
//! `before`/`after` as `null`. The row's hash is the lower-case hex SHA-256 of
//! `prev_hash` (64 hex chars, [`GENESIS_HASH`] for the first row) immediately followed by the
//! canonical text. Row ids are consecutive; appending is serialised (PostgreSQL advisory
//! transaction lock; SQLite `BEGIN IMMEDIATE`) so the chain never forks.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::Store;
use crate::store::api::{Actor, AuditVerdict, StoreResult};
use crate::store::db::{Tx, args};
use crate::store::rows::{DbAudit, now_ms};

/// `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Advisory lock key that serialises audit appends on PostgreSQL ("GHAUDIT" in ASCII-ish).
const AUDIT_LOCK_KEY: i64 = 0x0047_4841_5544_4954;

/// Rows read per page while verifying.
const VERIFY_PAGE: i64 = 1000;

/// Write `value` in canonical form (sorted keys, no whitespace) into `out`.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The canonical JSON text of a value (see the module docs).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// The hash of one audit row given its predecessor's hash and its content.
#[allow(clippy::too_many_arguments)]
pub fn audit_hash(
    prev_hash: &str,
    id: i64,
    at: i64,
    actor: &str,
    source: &str,
    action: &str,
    entity: &str,
    entity_id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> String {
    let content = serde_json::json!({
        "id": id,
        "at": at,
        "actor": actor,
        "source": source,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before": before.cloned().unwrap_or(Value::Null),
        "after": after.cloned().unwrap_or(Value::Null),
    });
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical_json(&content).as_bytes());
    hex::encode(hasher.finalize())
}

/// One audit entry to append.
pub(crate) struct AuditEntry<'a> {
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Append one row to the chain inside `tx`.
pub(crate) async fn append(tx: &mut Tx, actor: &Actor, entry: AuditEntry<'_>) -> StoreResult<i64> {
    if let Tx::Postgres(_) = tx {
        tx.exec("SELECT pg_advisory_xact_lock($1)", args![AUDIT_LOCK_KEY])
            .await?;
    }
    let last: Option<(i64, String)> = tx
        .opt(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            vec![],
        )
        .await?;
    let (prev_id, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_string()));
    let id = prev_id + 1;
    let at = now_ms();
    let hash = audit_hash(
        &prev_hash,
        id,
        at,
        &actor.user,
        &actor.source,
        entry.action,
        entry.entity,
        &entry.entity_id,
        entry.before.as_ref(),
        entry.after.as_ref(),
    );
    tx.exec(
        "INSERT INTO audit (id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        args![
            id,
            at,
            &actor.user,
            &actor.source,
            entry.action,
            entry.entity,
            entry.entity_id,
            entry.before.map(|v| v.to_string()),
            entry.after.map(|v| v.to_string()),
            prev_hash,
            hash
        ],
    )
    .await?;
    Ok(id)
}

impl Store {
    /// Recompute the chain page by page; the first row whose link or hash does not match is
    /// reported.
    pub(crate) async fn verify_audit_chain(&self) -> StoreResult<AuditVerdict> {
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut after_id = 0i64;
        let mut rows = 0i64;
        loop {
            let page: Vec<DbAudit> = self
                .read_all(
                    "SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash \
                     FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                    args![after_id, VERIFY_PAGE],
                )
                .await?;
            if page.is_empty() {
                return Ok(AuditVerdict::Intact { rows });
            }
            for row in page {
                if row.prev_hash != prev_hash {
                    return Ok(AuditVerdict::Broken {
                        id: row.id,
                        reason: format!(
                            "prev_hash {} does not match the previous row's hash {}",
                            row.prev_hash, prev_hash
                        ),
                    });
                }
                let parse = |text: &Option<String>, field: &str| -> Result<Option<Value>, String> {
                    text.as_deref()
                        .map(serde_json::from_str::<Value>)
                        .transpose()
                        .map_err(|e| format!("{field} is not valid JSON: {e}"))
                };
                let (before, after) =
                    match (parse(&row.before, "before"), parse(&row.after, "after")) {
                        (Ok(b), Ok(a)) => (b, a),
                        (Err(reason), _) | (_, Err(reason)) => {
                            return Ok(AuditVerdict::Broken { id: row.id, reason });
                        }
                    };
                let expected = audit_hash(
                    &row.prev_hash,
                    row.id,
                    row.at,
                    &row.actor,
                    &row.source,
                    &row.action,
                    &row.entity,
                    &row.entity_id,
                    before.as_ref(),
                    after.as_ref(),
                );
                if expected != row.hash {
                    return Ok(AuditVerdict::Broken {
                        id: row.id,
                        reason: format!(
                            "content does not match its hash (stored {}, recomputed {})",
                            row.hash, expected
                        ),
                    });
                }
                prev_hash = row.hash;
                after_id = row.id;
                rows += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"z": [true, null, "x\"y"], "c": 2.5}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":2.5,"z":[true,null,"x\"y"]},"b":1}"#
        );
    }

    #[test]
    fn hash_depends_on_every_field_and_the_link() {
        let base = audit_hash(
            GENESIS_HASH,
            1,
            10,
            "ann",
            "local",
            "a",
            "e",
            "1",
            None,
            None,
        );
        assert_eq!(base.len(), 64);
        let other_link = audit_hash(
            &"1".repeat(64),
            1,
            10,
            "ann",
            "local",
            "a",
            "e",
            "1",
            None,
            None,
        );
        let other_actor = audit_hash(
            GENESIS_HASH,
            1,
            10,
            "bob",
            "local",
            "a",
            "e",
            "1",
            None,
            None,
        );
        let with_after = audit_hash(
            GENESIS_HASH,
            1,
            10,
            "ann",
            "local",
            "a",
            "e",
            "1",
            None,
            Some(&serde_json::json!({"x": 1})),
        );
        assert_ne!(base, other_link);
        assert_ne!(base, other_actor);
        assert_ne!(base, with_after);
    }
}
