//! Saving a configuration document: a new version under the version the editor started from,
//! serialised per document name, checked against the caller's role, audited.

use serde_json::json;

use crate::domain::authz::Action;
use crate::domain::limits;
use crate::store::Store;
use crate::store::api::{Actor, ConfigVersion, StoreResult};
use crate::store::audit::{self, AuditEntry};
use crate::store::authz::authorize;
use crate::store::command::{CONFIG_KINDS, finish, invalid, limited};
use crate::store::db::{args, write_tx};
use crate::store::error::StoreError;
use crate::store::rows::{DbConfig, now_ms, rfc3339};

/// A stable advisory-lock key per config name (first 8 bytes of its SHA-256).
fn config_lock_key(name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("gatehouse.config:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

pub(crate) async fn save_config(
    store: &Store,
    actor: &Actor,
    kind: &str,
    name: &str,
    body: &str,
    comment: &str,
    expected_version: i64,
) -> StoreResult<ConfigVersion> {
    store.check_writable()?;
    limited(limits::check_label("kind", kind))?;
    limited(limits::check_config(name, body))?;
    limited(limits::check_comment(comment))?;
    if !CONFIG_KINDS.contains(&kind) {
        return Err(invalid(
            "kind",
            format!("{kind:?} is not one of {}", CONFIG_KINDS.join(", ")),
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "name",
            format!("{name:?} must be non-empty and use only letters, digits, '-', '_' and '.'"),
        ));
    }
    let result = write_tx!(store, |tx| {
        authorize(&mut tx, actor, Action::SaveConfig, None).await?;
        if tx.backend() == crate::store::Backend::Postgres {
            tx.exec(
                "SELECT pg_advisory_xact_lock($1)",
                args![config_lock_key(name)],
            )
            .await?;
        }
        let head: Option<DbConfig> = tx
            .opt(
                "SELECT name, kind, version, body, author, comment, created_at FROM configs WHERE name = $1 ORDER BY version DESC LIMIT 1",
                args![name],
            )
            .await?;
        let head_version = head.as_ref().map_or(0, |h| h.version);
        if head_version != expected_version {
            let (who, at) = head.as_ref().map_or(("nobody".to_string(), 0), |h| {
                (h.author.clone(), h.created_at)
            });
            return Err(StoreError::Conflict {
                entity: "config",
                id: name.to_string(),
                changed_by: who,
                changed_at: rfc3339(at),
                what: format!("version {expected_version} is now {head_version}"),
            });
        }
        if let Some(h) = &head
            && h.kind != kind
        {
            return Err(invalid(
                "kind",
                format!(
                    "{name:?} is a {} document; it cannot be saved as {kind}",
                    h.kind
                ),
            ));
        }
        let version = head_version + 1;
        let now = now_ms();
        tx.exec(
            "INSERT INTO configs (name, kind, version, body, author, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![name, kind, version, body, &actor.user, comment, now],
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            AuditEntry {
                action: "config.save",
                entity: "config",
                entity_id: name.to_string(),
                before: head
                    .as_ref()
                    .map(|h| json!({"version": h.version, "kind": h.kind, "body": h.body})),
                after: Some(
                    json!({"version": version, "kind": kind, "body": body, "comment": comment}),
                ),
            },
        );
        finish(&mut tx, false).await?;
        Ok(ConfigVersion {
            name: name.to_string(),
            kind: kind.to_string(),
            version,
            body: body.to_string(),
            author: actor.user.clone(),
            comment: comment.to_string(),
            created_at: now,
        })
    });
    let row = store
        .audit_refusal(actor, "config.save", "config", name.to_string(), result)
        .await?;
    store.signal_local(false);
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lock_keys_differ_per_name() {
        assert_ne!(config_lock_key("a"), config_lock_key("b"));
        assert_eq!(config_lock_key("a"), config_lock_key("a"));
    }
}
