//! Audit anchoring, on SQLite and PostgreSQL, through the real binary: once a signed checkpoint
//! exists, `audit verify` catches deleting the newest rows, deleting every row and recomputing
//! the chain after an edit (each of which the chain alone misses), and names the row; forged
//! checkpoint lines are reported; the audit table refuses UPDATE and DELETE; the worker writes
//! checkpoints on its own. PostgreSQL cases fail when `CI` is set and the server is unreachable.

// Shared with other test files; not every helper is used here.
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use gatehouse::store::api::{AuditFilter, AuditRow, CommandApi, ReadApi};
use gatehouse::store::{GENESIS_HASH, audit_hash};
use store_db::{Kind, TestDb, actor, empty};
use support::{eventually, gatehouse, spawn_worker};

/// A store with audit rows, a signing key made by `audit keygen` and a scratch directory.
struct Fx {
    db: TestDb,
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Fx {
    /// Run the binary against this store.
    fn run(&self, args: &[&str]) -> Output {
        gatehouse(&self.db.url, &self.dir.path().join("gatehouse.log"))
            .args(args)
            .output()
            .expect("run gatehouse")
    }

    fn key(&self) -> &str {
        self.key.to_str().expect("utf-8 path")
    }

    /// The key's default checkpoint file.
    fn checkpoints(&self) -> PathBuf {
        PathBuf::from(format!("{}.checkpoints.jsonl", self.key()))
    }

    fn checkpoint(&self) -> Output {
        self.run(&["audit", "checkpoint", "--key", self.key()])
    }

    /// `audit verify` against the key's checkpoints.
    fn verify(&self) -> Output {
        self.run(&["audit", "verify", "--key", self.key()])
    }

    /// `audit verify` of the chain alone.
    fn verify_chain_only(&self) -> Output {
        self.run(&["audit", "verify"])
    }

    /// Append `n` audit rows through the store (one per saved config version).
    async fn add_rows(&self, n: i64) {
        let s = &self.db.store;
        let head = s.config_head("joiner").await.expect("head");
        let mut version = head.map(|h| h.version).unwrap_or(0);
        for _ in 0..n {
            let body = format!(
                "[workflow]\nname = \"joiner\"\n# revision {}\n",
                version + 1
            );
            version = s
                .save_config(
                    // The engine's kind of actor: the store starts with no operators, so the
                    // row counts below are the configs' alone.
                    &actor("system:seed"),
                    "workflow",
                    "joiner",
                    &body,
                    "seed",
                    version,
                )
                .await
                .expect("save config")
                .version;
        }
    }

    async fn count(&self) -> i64 {
        self.db.raw_i64("SELECT COUNT(*) FROM audit").await
    }

    /// Every audit row, oldest first.
    async fn rows(&self) -> Vec<AuditRow> {
        let mut rows = self
            .db
            .store
            .list_audit(&AuditFilter::default(), None, 1000)
            .await
            .expect("audit rows")
            .rows;
        rows.reverse();
        rows
    }

    /// Run SQL as the table's owner would, after taking the append-only triggers out of the
    /// way: an attacker with owner rights (or the SQLite file) can do both.
    async fn as_owner(&self, sql: &str) {
        let unguard = match self.db.kind {
            Kind::Sqlite => {
                "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete"
            }
            Kind::Postgres => "ALTER TABLE audit DISABLE TRIGGER USER",
        };
        self.db.raw_exec(&format!("{unguard}; {sql}")).await;
    }
}

/// A store with `rows` audit rows, a key from `audit keygen` and one checkpoint over them.
async fn anchored(kind: Kind, rows: i64) -> Option<Fx> {
    let db = empty(kind).await?;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("audit.key");
    let fx = Fx { db, dir, key };
    fx.add_rows(rows).await;
    assert_eq!(fx.count().await, rows);
    let o = fx.run(&["audit", "keygen", "--key", fx.key()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).starts_with("ed25519:"), "{}", text(&o));
    let o = fx.checkpoint();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("{rows} rows ending at row {rows}")),
        "{}",
        text(&o)
    );
    Some(fx)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

/// Assert `audit verify` fails with exit 1 and says `needle`.
fn assert_fails(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert!(
        text(o).contains(needle),
        "expected {needle:?} in: {}",
        text(o)
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read file")
}

async fn untouched_store_verifies_and_checkpoints_append(kind: Kind) {
    let Some(fx) = anchored(kind, 6).await else {
        return;
    };
    let o = fx.verify();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("6 rows verified"), "{}", text(&o));
    assert!(
        text(&o).contains("signed 6 rows ending at 6"),
        "{}",
        text(&o)
    );
    let first = read(&fx.checkpoints());
    assert_eq!(first.lines().count(), 1);

    // More rows: verify says they are not anchored yet; a new checkpoint anchors them and
    // leaves the earlier line as it was.
    fx.add_rows(3).await;
    let o = fx.verify();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 newer row(s)"), "{}", text(&o));
    let o = fx.checkpoint();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let second = read(&fx.checkpoints());
    assert_eq!(second.lines().count(), 2);
    assert!(second.starts_with(&first), "append-only file");
    let o = fx.run(&[
        "audit",
        "verify",
        "--checkpoints",
        fx.checkpoints().to_str().expect("path"),
        "--public-key",
        &format!("{}.pub", fx.key()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 checkpoint(s)"), "{}", text(&o));
    assert!(
        text(&o).contains("signed 9 rows ending at 9"),
        "{}",
        text(&o)
    );
}

async fn deleting_the_newest_rows_is_caught(kind: Kind) {
    let Some(fx) = anchored(kind, 8).await else {
        return;
    };
    fx.as_owner("DELETE FROM audit WHERE id > 5").await;
    assert_eq!(fx.count().await, 5);
    // The chain alone cannot see it: what is left still links.
    let o = fx.verify_chain_only();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("no checkpoint anchors it"),
        "{}",
        text(&o)
    );
    let o = fx.verify();
    assert_fails(&o, "row 6 is missing");
    assert!(
        text(&o).contains("signed 8 rows ending at 8"),
        "{}",
        text(&o)
    );
    // Nor will a new checkpoint bless the shortened chain.
    let before = read(&fx.checkpoints());
    let o = fx.checkpoint();
    assert_fails(&o, "row 8 is missing since the last checkpoint");
    assert_eq!(read(&fx.checkpoints()), before, "nothing appended");
}

async fn deleting_every_row_is_caught(kind: Kind) {
    let Some(fx) = anchored(kind, 4).await else {
        return;
    };
    fx.as_owner("DELETE FROM audit").await;
    assert_eq!(fx.count().await, 0);
    let o = fx.verify_chain_only();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_fails(&fx.verify(), "row 1 is missing");
}

async fn recomputing_the_chain_after_an_edit_is_caught(kind: Kind) {
    let Some(fx) = anchored(kind, 8).await else {
        return;
    };
    // Rewrite row 3's actor, then recompute every hash from there on, correctly.
    let rows = fx.rows().await;
    assert_eq!(rows.len(), 8);
    let mut prev = GENESIS_HASH.to_string();
    let mut statements = Vec::new();
    for row in rows {
        let actor = if row.id == 3 { "mallory" } else { &row.actor };
        let hash = audit_hash(
            &prev,
            row.id,
            row.at,
            actor,
            &row.source,
            &row.action,
            &row.entity,
            &row.entity_id,
            row.before.as_ref(),
            row.after.as_ref(),
        );
        if row.id >= 3 {
            // Hex hashes and a fixed name: nothing here needs quoting.
            statements.push(format!(
                "UPDATE audit SET actor = '{actor}', prev_hash = '{prev}', hash = '{hash}' WHERE id = {}",
                row.id
            ));
        }
        prev = hash;
    }
    fx.as_owner(&statements.join(";\n")).await;
    assert_eq!(fx.rows().await[2].actor, "mallory");
    // The recomputed chain is consistent: the chain alone says intact.
    let o = fx.verify_chain_only();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = fx.verify();
    assert_fails(&o, "row 3 changed: chain was recomputed after checkpoint");
    assert!(
        text(&o).contains("signed 8 rows ending at 8"),
        "{}",
        text(&o)
    );
}

async fn an_edit_without_recomputing_is_named_by_the_chain(kind: Kind) {
    let Some(fx) = anchored(kind, 5).await else {
        return;
    };
    fx.as_owner("UPDATE audit SET actor = 'mallory' WHERE id = 2")
        .await;
    assert_fails(&fx.verify(), "BROKEN at row 2");
}

async fn forged_checkpoint_lines_are_reported(kind: Kind) {
    let Some(fx) = anchored(kind, 3).await else {
        return;
    };
    let file = fx.checkpoints();
    let genuine = read(&file);

    // A genuine line altered after signing: it claims fewer rows.
    let altered = genuine.replace("\"rows\":3", "\"rows\":2");
    assert_ne!(altered, genuine);
    std::fs::write(&file, &altered).expect("write");
    let o = fx.verify();
    assert_fails(&o, "FORGED");
    assert!(text(&o).contains("line 1"), "{}", text(&o));
    assert!(text(&o).contains("forged or altered"), "{}", text(&o));

    // A line signed by another key, appended to the trusted file.
    std::fs::write(&file, &genuine).expect("write");
    let other = fx.dir.path().join("other.key");
    let other = other.to_str().expect("path");
    let o = fx.run(&["audit", "keygen", "--key", other]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let other_public = stdout(&o).trim().to_string();
    let o = fx.run(&["audit", "checkpoint", "--key", other]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let foreign = read(Path::new(&format!("{other}.checkpoints.jsonl")));
    std::fs::write(&file, format!("{genuine}{foreign}")).expect("write");
    let o = fx.verify();
    assert_fails(&o, "not a trusted key");
    assert!(text(&o).contains("line 2"), "{}", text(&o));
    assert!(text(&o).contains(&other_public[..24]), "{}", text(&o));
    // The same foreign line with the trusted key's name pasted in does not verify either.
    let trusted_public = read(Path::new(&format!("{}.pub", fx.key())));
    let pasted = foreign.replace(&other_public, trusted_public.trim());
    std::fs::write(&file, format!("{genuine}{pasted}")).expect("write");
    assert_fails(&fx.verify(), "forged or altered");
    // Trusting the other key (and only it) reports the genuine line instead.
    std::fs::write(&file, &genuine).expect("write");
    let o = fx.run(&[
        "audit",
        "verify",
        "--checkpoints",
        file.to_str().expect("path"),
        "--public-key",
        &other_public,
    ]);
    assert_fails(&o, "not a trusted key");
}

async fn the_table_refuses_update_and_delete(kind: Kind) {
    let Some(db) = empty(kind).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let fx = Fx {
        db,
        key: dir.path().join("unused.key"),
        dir,
    };
    fx.add_rows(3).await;
    let mut refused = vec![
        "UPDATE audit SET actor = 'mallory' WHERE id = 2",
        "DELETE FROM audit WHERE id = 3",
        "DELETE FROM audit",
    ];
    if kind == Kind::Postgres {
        refused.push("TRUNCATE audit");
    }
    for sql in refused {
        let err = try_exec(&fx.db, sql).await.expect_err(sql);
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(fx.count().await, 3);
    let o = fx.verify_chain_only();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 rows verified"), "{}", text(&o));
}

/// One statement through a raw connection, its error as text.
async fn try_exec(db: &TestDb, sql: &'static str) -> Result<(), String> {
    use sqlx::Connection;
    let result = match db.kind {
        Kind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url)
                .await
                .expect("raw sqlite");
            sqlx::query(sql).execute(&mut c).await.map(|_| ())
        }
        Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.expect("raw pg");
            sqlx::query(sql).execute(&mut c).await.map(|_| ())
        }
    };
    result.map_err(|e| e.to_string())
}

async fn user_mistakes_are_named_and_change_nothing(kind: Kind) {
    let Some(fx) = anchored(kind, 2).await else {
        return;
    };
    let file = fx.checkpoints();
    let before = read(&file);
    // No such key file.
    let missing = fx.dir.path().join("nope.key");
    let o = fx.run(&[
        "audit",
        "checkpoint",
        "--key",
        missing.to_str().expect("path"),
        "--checkpoints",
        file.to_str().expect("path"),
    ]);
    assert_fails(&o, &format!("key file {}", missing.display()));
    // keygen never overwrites.
    let o = fx.run(&["audit", "keygen", "--key", fx.key()]);
    assert_fails(&o, "refusing to overwrite");
    // A key others may read is refused.
    let loose = fx.dir.path().join("loose.key");
    std::fs::copy(&fx.key, &loose).expect("copy key");
    set_mode(&loose, 0o644);
    let o = fx.run(&[
        "audit",
        "verify",
        "--key",
        loose.to_str().expect("path"),
        "--checkpoints",
        file.to_str().expect("path"),
    ]);
    assert_fails(&o, "chmod 600");
    // Verifying checkpoints needs a trusted key.
    let o = fx.run(&[
        "audit",
        "verify",
        "--checkpoints",
        file.to_str().expect("path"),
    ]);
    assert_fails(&o, "trusted public key");
    // A bad line is named by file and line, and nothing is appended after it.
    std::fs::write(&file, format!("{before}not json\n")).expect("write");
    let o = fx.verify();
    assert_fails(&o, &format!("checkpoint file {}: line 2", file.display()));
    let o = fx.checkpoint();
    assert_fails(&o, "line 2");
    assert_eq!(read(&file), format!("{before}not json\n"));
    // On SQLite the key cannot be the store's own file.
    if kind == Kind::Sqlite {
        let store_file = fx.db.url.trim_start_matches("sqlite:").to_string();
        let o = fx.run(&["audit", "checkpoint", "--key", &store_file]);
        assert_fails(&o, "is the store's own file");
        let o = fx.run(&["audit", "keygen", "--key", &store_file]);
        assert_fails(&o, "is the store's own file");
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

async fn the_worker_checkpoints_periodically(kind: Kind) {
    let Some(fx) = anchored(kind, 2).await else {
        return;
    };
    let file = fx.dir.path().join("worker.checkpoints.jsonl");
    let file_arg = file.to_str().expect("path").to_string();
    let mut worker = spawn_worker(
        &fx.db.url,
        &fx.dir.path().join("worker.log"),
        &[
            "--concurrency",
            "1",
            "--audit-key",
            fx.key(),
            "--audit-checkpoints",
            &file_arg,
            "--audit-checkpoint-every",
            "1s",
        ],
    );
    let newest = |file: PathBuf| async move {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .and_then(|v| v["newest_id"].as_i64())
            .unwrap_or(-1)
    };
    // At start it anchors what is there (2 rows, plus whatever the worker itself audited).
    assert!(
        eventually(Duration::from_secs(20), || {
            let f = file.clone();
            async move { newest(f).await >= 2 }
        })
        .await,
        "no checkpoint at start: {:?}",
        std::fs::read_to_string(&file)
    );
    fx.add_rows(3).await;
    let total = fx.count().await;
    assert!(
        eventually(Duration::from_secs(20), || {
            let f = file.clone();
            async move { newest(f).await >= total }
        })
        .await,
        "no periodic checkpoint: {:?}",
        std::fs::read_to_string(&file)
    );
    worker.signal(libc::SIGTERM);
    assert!(
        worker.wait_for(Duration::from_secs(30)).is_some(),
        "worker stopped"
    );
    let o = fx.run(&[
        "audit",
        "verify",
        "--key",
        fx.key(),
        "--checkpoints",
        &file_arg,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // And the worker's checkpoints catch a truncation like any other.
    fx.as_owner("DELETE FROM audit WHERE id > 1").await;
    let o = fx.run(&[
        "audit",
        "verify",
        "--key",
        fx.key(),
        "--checkpoints",
        &file_arg,
    ]);
    assert_fails(&o, "row 2 is missing");
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    untouched_store_verifies_and_checkpoints_append,
    deleting_the_newest_rows_is_caught,
    deleting_every_row_is_caught,
    recomputing_the_chain_after_an_edit_is_caught,
    an_edit_without_recomputing_is_named_by_the_chain,
    forged_checkpoint_lines_are_reported,
    the_table_refuses_update_and_delete,
    user_mistakes_are_named_and_change_nothing,
    the_worker_checkpoints_periodically,
);
