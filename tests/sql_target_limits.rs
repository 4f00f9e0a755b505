//! SQL targets that are down or stuck: a statement waiting on a lock (PostgreSQL, MariaDB)
//! times out as a transient error and succeeds when retried after the lock goes, while another
//! target keeps working meanwhile; a target that refuses connections opens its circuit breaker
//! and further calls fail at once. Servers from `tests/servers.sh`.

mod support;

use std::time::{Duration, Instant};

use gatehouse::connectors::AnyConnector;
use gatehouse::connectors::model::Desired;
use gatehouse::store::api::ConfigVersion;
use sqlx::Connection;

fn sql(name: &str, dialect: &str, url: &str, limits: &str) -> AnyConnector {
    AnyConnector::from_doc(&ConfigVersion {
        name: name.into(),
        kind: "connector".into(),
        version: 1,
        body: format!(
            r#"kind = "connector"
name = "{name}"
backend = "sql"

[sql]
dialect = "{dialect}"
url = "{url}"
table = "accounts"
disabled_column = "disabled"

[sql.columns]
username = "username"
full_name = "full_name"

[sql.limits]
{limits}
"#
        ),
        author: "test".into(),
        comment: String::new(),
        created_at: 0,
    })
    .expect("connector")
}

fn person(key: &str, name: &str) -> Desired {
    Desired {
        key: key.into(),
        exists: true,
        attributes: [("full_name".to_string(), name.to_string())].into(),
        disabled: Some(false),
        ..Desired::default()
    }
}

async fn converge(c: &AnyConnector, want: &Desired) -> Result<String, String> {
    let current = c.read(&want.key).await.map_err(|e| e.to_string())?;
    let plan = c.plan(current.as_ref(), want).map_err(|e| e.to_string())?;
    c.apply(&plan, want).await.map_err(|e| e.to_string())?;
    Ok(plan.change)
}

async fn sqlite_target(dir: &std::path::Path) -> AnyConnector {
    let url = format!("sqlite://{}?mode=rwc", dir.join("other.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
    sqlx::raw_sql(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, disabled INTEGER NOT NULL DEFAULT 0)",
    )
    .execute(&mut conn)
    .await
    .expect("table");
    conn.close().await.expect("close");
    sql("other", "sqlite", &url, "")
}

#[tokio::test]
async fn a_locked_postgres_target_times_out_without_stalling_another_and_succeeds_on_retry() {
    let Some(pg) = support::PgDb::create("lock").await else {
        return;
    };
    let mut owner = sqlx::PgConnection::connect(&pg.url).await.expect("pg");
    sqlx::raw_sql(
        "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, disabled BOOLEAN NOT NULL DEFAULT false)",
    )
    .execute(&mut owner)
    .await
    .expect("table");
    let locked = sql(
        "locked",
        "postgres",
        &pg.url,
        "statement_timeout = \"1s\"\nbreaker_failures = 5",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let other = sqlite_target(dir.path()).await;

    let mut tx = owner.begin().await.expect("begin");
    sqlx::raw_sql("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let started = Instant::now();
    let stuck = async {
        let r = converge(&locked, &person("alocked", "A")).await;
        (r, started.elapsed())
    };
    let free = async {
        let r = converge(&other, &person("bfree", "B")).await;
        (r, started.elapsed())
    };
    let ((stuck, stuck_after), (free, free_after)) = tokio::join!(stuck, free);
    let err = stuck.expect_err("the locked target times out");
    assert!(
        err.contains("statement timeout")
            || err.contains("lock timeout")
            || err.contains("did not answer"),
        "{err}"
    );
    assert!(stuck_after < Duration::from_secs(5), "{stuck_after:?}");
    assert_eq!(free, Ok("create".to_string()));
    assert!(
        free_after < Duration::from_secs(1),
        "the other target was not held: {free_after:?}"
    );
    tx.rollback().await.expect("unlock");
    assert_eq!(
        converge(&locked, &person("alocked", "A")).await,
        Ok("create".into())
    );
}

#[tokio::test]
async fn a_row_locked_in_mariadb_times_out_as_transient_then_the_retry_applies() {
    let Some(db) = support::MysqlDb::create("lock").await else {
        return;
    };
    let mut owner = sqlx::MySqlConnection::connect(&db.url)
        .await
        .expect("mariadb");
    sqlx::raw_sql(
        "CREATE TABLE accounts (username VARCHAR(64) PRIMARY KEY, full_name TEXT, disabled BOOLEAN NOT NULL DEFAULT false); \
         INSERT INTO accounts (username, full_name) VALUES ('alocked', 'Before')",
    )
    .execute(&mut owner)
    .await
    .expect("table");
    let target = sql("maria", "mysql", &db.url, "statement_timeout = \"1s\"");
    let mut tx = owner.begin().await.expect("begin");
    sqlx::raw_sql("SELECT * FROM accounts WHERE username = 'alocked' FOR UPDATE")
        .execute(&mut *tx)
        .await
        .expect("row lock");
    let want = person("alocked", "After");
    let current = target
        .read("alocked")
        .await
        .expect("plain reads are not blocked");
    let plan = target.plan(current.as_ref(), &want).expect("plan");
    let started = Instant::now();
    let err = target.apply(&plan, &want).await.expect_err("lock wait");
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tx.rollback().await.expect("unlock");
    assert_eq!(converge(&target, &want).await, Ok("update".into()));
}

#[tokio::test]
async fn a_dead_target_opens_its_circuit_and_fails_fast() {
    let dead = sql(
        "dead",
        "postgres",
        "postgres://nobody@127.0.0.1:1/none",
        "connect_timeout = \"1s\"\nbreaker_failures = 2\nbreaker_cooldown = \"1m\"",
    );
    for _ in 0..2 {
        let err = dead.read("x").await.expect_err("refused");
        assert!(err.is_transient(), "{err}");
    }
    let started = Instant::now();
    let err = dead.read("x").await.expect_err("open");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{err} after {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("failures in a row"), "{err}");
    assert!(err.is_transient(), "the job is retried after the cooldown");
}
