//! The hash-chained audit trail: canonical form, appending (serialised) and verification.
//!
//! Canonical form of a row: the JSON object
//! `{"action","actor","after","at","before","entity","entity_id","id","source"}` with keys in
//! byte order at every depth, no whitespace, strings escaped as `serde_json` escapes them,
//! integers in decimal, floats as `serde_json` prints them (shortest round-trip), missing
//! `before`/`after` as `null`. The row's hash is the lower-case hex SHA-256 of
//! `prev_hash` (64 hex chars, [`GENESIS_HASH`] for the first row) immediately followed by the
//! canonical text. Row ids are consecutive; appending is serialised (PostgreSQL advisory
//! transaction lock; SQLite `BEGIN IMMEDIATE`) so the chain never forks. Migration 0006 makes
//! the table refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL); signed checkpoints outside
//! the database (`domain::checkpoint`, `engine::checkpoint`) anchor the chain against
//! truncation and recomputation by someone who gets past the triggers.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::checkpoint::{ChainHead, ChainWalk};
use crate::store::api::{Actor, AuditVerdict, StoreResult};
use crate::store::db::{Tx, args};
use crate::store::rows::{DbAudit, now_ms};
use crate::store::{Pools, Store};

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

/// An audit row appended in a transaction and not yet written: it is chained (id, previous
/// hash, hash) and written when the transaction commits (see [`flush`]).
pub(crate) struct PendingAudit {
    at: i64,
    actor: String,
    source: String,
    action: String,
    entity: String,
    entity_id: String,
    before: Option<Value>,
    after: Option<Value>,
}

/// Rows written per statement when the pending rows are flushed.
const FLUSH_CHUNK: usize = 1000;

const INSERT_AUDIT_SQLITE: &str = "INSERT INTO audit (id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash) \
     SELECT json_extract(value, '$.id'), json_extract(value, '$.at'), json_extract(value, '$.actor'), json_extract(value, '$.source'), json_extract(value, '$.action'), \
            json_extract(value, '$.entity'), json_extract(value, '$.entity_id'), json_extract(value, '$.before'), json_extract(value, '$.after'), \
            json_extract(value, '$.prev_hash'), json_extract(value, '$.hash') \
     FROM json_each($1) ORDER BY key";
const INSERT_AUDIT_PG: &str = "INSERT INTO audit (id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash) \
     SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash \
     FROM json_to_recordset($1::json) AS t(id bigint, at bigint, actor text, source text, action text, entity text, entity_id text, before text, after text, prev_hash text, hash text) \
     ORDER BY id";

/// Takes the chain for this transaction (PostgreSQL: an advisory lock held to commit;
/// SQLite's write transaction already serialises) and answers its newest row: id and hash
/// (`0` and [`GENESIS_HASH`] for an empty chain). Rows appended after it link to it.
async fn chain_tail(tx: &mut Tx) -> StoreResult<(i64, String)> {
    if tx.backend() == crate::store::Backend::Postgres {
        tx.exec("SELECT pg_advisory_xact_lock($1)", args![AUDIT_LOCK_KEY])
            .await?;
    }
    let last: Option<(i64, String)> = tx
        .opt(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            vec![],
        )
        .await?;
    Ok(last.unwrap_or((0, GENESIS_HASH.to_string())))
}

/// Append one row to the chain inside `tx`: kept with the transaction and written, chained
/// after the newest row, when it commits (or when something in it reads the audit table
/// and calls [`flush`] first).
pub(crate) fn append(tx: &mut Tx, actor: &Actor, entry: AuditEntry<'_>) {
    append_at(tx, actor, entry, now_ms());
}

/// [`append`] with the row's time given.
pub(crate) fn append_at(tx: &mut Tx, actor: &Actor, entry: AuditEntry<'_>, at: i64) {
    tx.audit.push(PendingAudit {
        at,
        actor: actor.user.clone(),
        source: actor.source.clone(),
        action: entry.action.to_string(),
        entity: entry.entity.to_string(),
        entity_id: entry.entity_id,
        before: entry.before,
        after: entry.after,
    });
}

/// Chain and write the rows appended in `tx` so far: the chain is taken (PostgreSQL: an
/// advisory lock held to commit), each row gets the next id and its hash, and the rows are
/// written with one statement per [`FLUSH_CHUNK`].
pub(crate) async fn flush(tx: &mut Tx) -> StoreResult<()> {
    if tx.audit.is_empty() {
        return Ok(());
    }
    let pending = std::mem::take(&mut tx.audit);
    let (mut prev_id, mut prev_hash) = chain_tail(tx).await?;
    for chunk in pending.chunks(FLUSH_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for row in chunk {
            let id = prev_id + 1;
            let hash = audit_hash(
                &prev_hash,
                id,
                row.at,
                &row.actor,
                &row.source,
                &row.action,
                &row.entity,
                &row.entity_id,
                row.before.as_ref(),
                row.after.as_ref(),
            );
            rows.push(serde_json::json!({
                "id": id,
                "at": row.at,
                "actor": row.actor,
                "source": row.source,
                "action": row.action,
                "entity": row.entity,
                "entity_id": row.entity_id,
                "before": row.before.as_ref().map(Value::to_string),
                "after": row.after.as_ref().map(Value::to_string),
                "prev_hash": prev_hash,
                "hash": hash,
            }));
            prev_id = id;
            prev_hash = hash;
        }
        tx.exec(
            tx.pick(INSERT_AUDIT_SQLITE, INSERT_AUDIT_PG),
            args![Value::Array(rows).to_string()],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Recompute the chain page by page; the first row whose id, link or hash does not match
    /// is reported.
    /// Verify the rows after `from` (a head an earlier walk ended at; `None`: the whole chain)
    /// and answer the verdict with the new head. Rows up to `from` are not hashed again, so a
    /// console can keep its verdict current at the cost of the new rows only.
    pub(crate) async fn verify_audit_after(
        &self,
        from: Option<&crate::domain::checkpoint::ChainHead>,
    ) -> StoreResult<(AuditVerdict, Option<crate::domain::checkpoint::ChainHead>)> {
        let (start, hash, rows) = match from {
            Some(h) => (h.newest_id, h.head_hash.as_str(), h.rows),
            None => (0, GENESIS_HASH, 0),
        };
        let walk = self
            .walk_audit_chain(start, hash, rows, |_, _| None::<std::convert::Infallible>)
            .await?;
        Ok(match walk {
            ChainWalk::Complete(head) => (AuditVerdict::Intact { rows: head.rows }, Some(head)),
            ChainWalk::Broken { id, reason } => (AuditVerdict::Broken { id, reason }, None),
            ChainWalk::Stopped(never) => match never {},
        })
    }

    pub(crate) async fn verify_audit_chain(&self) -> StoreResult<AuditVerdict> {
        let walk = self
            .walk_audit_chain(0, GENESIS_HASH, 0, |_, _| None::<std::convert::Infallible>)
            .await?;
        Ok(match walk {
            ChainWalk::Complete(head) => AuditVerdict::Intact { rows: head.rows },
            ChainWalk::Broken { id, reason } => AuditVerdict::Broken { id, reason },
            ChainWalk::Stopped(never) => match never {},
        })
    }

    /// Walk the audit chain after row `start_id` (whose hash is `start_hash`; `0` and
    /// [`GENESIS_HASH`] for the whole chain; `rows_before` rows up to it), page by page in id
    /// order. Each row must have the next id, link to its predecessor and match its hash;
    /// `visit(id, hash)` then sees it and may stop the walk with a finding. Rows appended
    /// while walking are included up to the last page read.
    pub async fn walk_audit_chain<T, F>(
        &self,
        start_id: i64,
        start_hash: &str,
        rows_before: i64,
        mut visit: F,
    ) -> StoreResult<ChainWalk<T>>
    where
        F: FnMut(i64, &str) -> Option<T>,
    {
        let mut prev_hash = start_hash.to_string();
        let mut prev_id = start_id;
        let mut rows = rows_before;
        loop {
            let page: Vec<DbAudit> = self
                .read_all(
                    "SELECT id, at, actor, source, action, entity, entity_id, before, after, prev_hash, hash \
                     FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                    args![prev_id, VERIFY_PAGE],
                )
                .await?;
            if page.is_empty() {
                return Ok(ChainWalk::Complete(ChainHead {
                    rows,
                    newest_id: prev_id,
                    head_hash: prev_hash,
                }));
            }
            for row in page {
                if let Some((id, reason)) = check_row(&row, prev_id, &prev_hash) {
                    return Ok(ChainWalk::Broken { id, reason });
                }
                if let Some(found) = visit(row.id, &row.hash) {
                    return Ok(ChainWalk::Stopped(found));
                }
                prev_hash = row.hash;
                prev_id = row.id;
                rows += 1;
            }
        }
    }

    /// The stored hash of audit row `id`, or `None` when there is no such row.
    pub async fn audit_row_hash(&self, id: i64) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = self
            .read_opt("SELECT hash FROM audit WHERE id = $1", args![id])
            .await?;
        Ok(row.map(|(hash,)| hash))
    }

    /// The SQLite file this store lives in (`None` for PostgreSQL), so files that must live
    /// apart from the store (the audit key) can be told from it.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.inner.pools {
            Pools::Sqlite { options, .. } => Some(options.get_filename().to_path_buf()),
            Pools::Postgres { .. } => None,
        }
    }
}

/// Check one row against its predecessor: its id follows, its link matches, its content
/// matches its hash. Returns the row to name and why when it does not.
fn check_row(row: &DbAudit, prev_id: i64, prev_hash: &str) -> Option<(i64, String)> {
    if row.id != prev_id + 1 {
        return Some((
            prev_id + 1,
            format!(
                "row {} is missing (the row after {prev_id} is {})",
                prev_id + 1,
                row.id
            ),
        ));
    }
    if row.prev_hash != prev_hash {
        return Some((
            row.id,
            format!(
                "prev_hash {} does not match the previous row's hash {prev_hash}",
                row.prev_hash
            ),
        ));
    }
    let parse = |text: &Option<String>, field: &str| -> Result<Option<Value>, String> {
        text.as_deref()
            .map(serde_json::from_str::<Value>)
            .transpose()
            .map_err(|e| format!("{field} is not valid JSON: {e}"))
    };
    let (before, after) = match (parse(&row.before, "before"), parse(&row.after, "after")) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(reason), _) | (_, Err(reason)) => return Some((row.id, reason)),
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
    (expected != row.hash).then(|| {
        (
            row.id,
            format!(
                "content does not match its hash (stored {}, recomputed {expected})",
                row.hash
            ),
        )
    })
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
