//! Operators' SSH keys in the store, on SQLite and PostgreSQL: only admins add and remove
//! them (refusals audited), keys are checked (algorithm, size, duplicates), a removed key or
//! operator no longer maps to anyone, and the last use is recorded.

#[path = "common/store_db.rs"]
#[allow(dead_code)]
mod store_db;
mod support;

use gatehouse::store::api::{AuditFilter, ReadApi};
use gatehouse::store::error::StoreError;
use store_db::{Kind, TestDb, actor, fresh};

// Public halves generated with ssh-keygen for these tests (the private keys are gone).
const ANN_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN+Bp7ISZX/oIeFlHyFVVZyq3NTBG6PgI2VP0i7aEY6S ann@laptop";
const ANN_FP: &str = "SHA256:pgBPf+Cmkyr9vYrlBdmeAmQq0307WIq5d5ZETJVTIXo";
const EC_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBEBchJkXTjPX3jVqvwi9C+5cYVdzs6TiLYGR/pBTKK2qN8LfkQM5/UOicyOn6ODAceNHCRscfGLeUE3Fia4H/E= ec";

async fn audit_actions(db: &TestDb, action: &str) -> Vec<String> {
    db.store
        .list_audit(
            &AuditFilter {
                action: Some(action.into()),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .expect("audit")
        .rows
        .into_iter()
        .map(|r| format!("{} {} {}", r.action, r.actor, r.entity_id))
        .collect()
}

async fn only_admins_manage_keys(db: &TestDb) {
    let store = &db.store;
    // An approver may not add a key, not even their own: refused and audited.
    let err = store
        .add_operator_key(&actor("ann"), "ann", ANN_KEY)
        .await
        .expect_err("approver adds a key");
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err}");
    assert_eq!(
        audit_actions(db, "operator.key.add.refused").await,
        ["operator.key.add.refused ann ann"]
    );
    assert!(store.operator_keys().await.expect("keys").is_empty());

    let key = store
        .add_operator_key(&actor("admin"), "ann", ANN_KEY)
        .await
        .expect("admin adds ann's key");
    assert_eq!(key.fingerprint, ANN_FP);
    assert_eq!(key.comment.as_deref(), Some("ann@laptop"));
    let owner = store
        .operator_for_key(ANN_FP)
        .await
        .expect("lookup")
        .expect("owner");
    assert_eq!(
        (owner.operator.as_str(), owner.role.as_str()),
        ("ann", "approver")
    );

    // The same key cannot belong to a second operator; unknown operators have no keys.
    let err = store
        .add_operator_key(&actor("admin"), "bob", ANN_KEY)
        .await
        .expect_err("duplicate");
    assert!(
        err.to_string().contains("already a key of operator ann"),
        "{err}"
    );
    let err = store
        .add_operator_key(&actor("admin"), "nobody", EC_KEY)
        .await
        .expect_err("unknown operator");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    // Last use.
    store
        .record_key_use(ANN_FP, "127.0.0.1:52311", 1_800_000_000_000)
        .await
        .expect("record use");
    let keys = store.operator_keys().await.expect("keys");
    assert_eq!(keys[0].last_used_at, Some(1_800_000_000_000));
    assert_eq!(keys[0].last_used_from.as_deref(), Some("127.0.0.1:52311"));

    // Removal: approvers refused (audited), admins remove, the key maps to nobody after.
    let err = store
        .remove_operator_key(&actor("bob"), "ann", ANN_FP)
        .await
        .expect_err("approver removes");
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err}");
    assert_eq!(
        audit_actions(db, "operator.key.remove.refused").await.len(),
        1
    );
    store
        .remove_operator_key(&actor("admin"), "ann", ANN_FP)
        .await
        .expect("admin removes");
    assert!(
        store
            .operator_for_key(ANN_FP)
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(
        audit_actions(db, "operator.key").await,
        [
            "operator.key.remove admin ann",
            "operator.key.remove.refused bob ann",
            "operator.key.add admin ann",
            "operator.key.add.refused ann ann",
        ]
    );
    let err = store
        .remove_operator_key(&actor("admin"), "ann", "SHA256:nope")
        .await
        .expect_err("not a fingerprint");
    assert!(err.to_string().contains("not a SHA256"), "{err}");
}

async fn removing_an_operator_removes_their_keys(db: &TestDb) {
    let store = &db.store;
    store
        .add_operator_key(&actor("admin"), "eve", EC_KEY)
        .await
        .expect("add");
    assert_eq!(store.operator_keys().await.expect("keys").len(), 1);
    store
        .remove_operator(&actor("admin"), "eve")
        .await
        .expect("remove eve");
    assert!(store.operator_keys().await.expect("keys").is_empty());
}

async fn unacceptable_keys_are_refused_with_the_reason(db: &TestDb) {
    let store = &db.store;
    for (text, why) in [
        ("", "no public key found"),
        ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
            "this is a private key",
        ),
    ] {
        let err = store
            .add_operator_key(&actor("admin"), "ann", text)
            .await
            .expect_err(why);
        assert!(err.to_string().contains(why), "{text:?}: {err}");
    }
    assert!(store.operator_keys().await.expect("keys").is_empty());
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::fresh(super::Kind::Sqlite).await.expect("sqlite");
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::fresh(super::Kind::Postgres).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

both!(
    only_admins_manage_keys,
    removing_an_operator_removes_their_keys,
    unacceptable_keys_are_refused_with_the_reason,
);
