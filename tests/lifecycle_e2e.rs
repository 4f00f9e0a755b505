//! Joiner, mover and leaver end to end through the engine's jobs, with roles as bundles of
//! entitlements (inheritance included), on SQLite, PostgreSQL and MariaDB targets: the joiner
//! gets the role's bundle, the mover the diff of the old and new bundles, the leaver is
//! disabled and loses the bundle. Every change is pinned, approved and audited. Servers from
//! `tests/servers.sh`; a missing one fails under `CI` and is SKIPPED otherwise.

#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::engine::flow::registry;
use gatehouse::engine::handler::{JobContext, JobError};
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, AuditFilter, CommandApi, Decision, FailOutcome, NewRequest, ReadApi,
};
use serde_json::json;
use sqlx::Connection;
use store_db::{Kind, fresh};

const ROLES: [(&str, &str); 3] = [
    (
        "employee",
        "kind = \"role\"\nname = \"employee\"\nentitlements = [\"hr-db:employee\"]\n",
    ),
    (
        "developer",
        "kind = \"role\"\nname = \"developer\"\nentitlements = [\"hr-db:developer\"]\ninherits = [\"employee\"]\n",
    ),
    (
        "sales",
        "kind = \"role\"\nname = \"sales\"\nentitlements = [\"hr-db:sales\"]\ninherits = [\"employee\"]\n",
    ),
];

fn workflow(name: &str, kind: &str, steps: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "{name}"
description = "{kind}s"
team = "eng"

[intake]
sources = ["cli"]
kinds = ["{kind}"]

[[stages]]
name = "lead"
policy = "any"
people = ["bob"]
{steps}"#
    )
}

const JOINER_STEPS: &str = r#"
[[steps]]
name = "account"
connector = "hr-db"
action = "create_account"
params = { full_name = "{subject_name}", email = "{subject_email}" }

[[steps]]
name = "role"
connector = "hr-db"
action = "grant_role"
params = { role = "{role}" }
"#;

const MOVER_STEPS: &str = r#"
[[steps]]
name = "role"
connector = "hr-db"
action = "grant_role"
params = { role = "{role}", previous_role = "{previous_role}" }
"#;

const LEAVER_STEPS: &str = r#"
[[steps]]
name = "disable"
connector = "hr-db"
action = "disable_account"

[[steps]]
name = "revoke"
connector = "hr-db"
action = "revoke_role"
params = { role = "{role}" }
"#;

#[derive(Clone, Copy, PartialEq, Debug)]
enum TargetKind {
    Sqlite,
    Postgres,
    Mariadb,
}

struct Target {
    kind: TargetKind,
    url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<support::PgDb>,
    _my: Option<support::MysqlDb>,
}

const TABLES: &str = "CREATE TABLE accounts (username VARCHAR(64) PRIMARY KEY, full_name TEXT, \
    email TEXT, disabled BOOLEAN NOT NULL DEFAULT false); \
    CREATE TABLE account_roles (username VARCHAR(64) NOT NULL, role VARCHAR(64) NOT NULL, \
    PRIMARY KEY (username, role));";

impl Target {
    async fn new(kind: TargetKind) -> Option<Target> {
        let mut t = Target {
            kind,
            url: String::new(),
            _dir: None,
            _pg: None,
            _my: None,
        };
        match kind {
            TargetKind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                t.url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
                t._dir = Some(dir);
            }
            TargetKind::Postgres => {
                let pg = support::PgDb::create("life").await?;
                t.url = pg.url.clone();
                t._pg = Some(pg);
            }
            TargetKind::Mariadb => {
                let my = support::MysqlDb::create("life").await?;
                t.url = my.url.clone();
                t._my = Some(my);
            }
        }
        t.exec(TABLES).await;
        Some(t)
    }

    fn dialect(&self) -> &'static str {
        match self.kind {
            TargetKind::Sqlite => "sqlite",
            TargetKind::Postgres => "postgres",
            TargetKind::Mariadb => "mysql",
        }
    }

    async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self.kind {
            TargetKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
            TargetKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
            TargetKind::Mariadb => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("c");
                sqlx::raw_sql(sql).execute(&mut c).await.expect("exec");
            }
        }
    }

    /// One text column of every row of a query (test-only literal SQL).
    async fn texts(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self.kind {
            TargetKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
            TargetKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
            TargetKind::Mariadb => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.expect("c");
                sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("q")
            }
        }
    }

    async fn roles(&self, user: &str) -> Vec<String> {
        self.texts(&format!(
            "SELECT role FROM account_roles WHERE username = '{user}' ORDER BY role"
        ))
        .await
    }

    async fn disabled(&self, user: &str) -> Vec<String> {
        let cast = if self.kind == TargetKind::Mariadb {
            "CHAR"
        } else {
            "TEXT"
        };
        self.texts(&format!(
            "SELECT CAST(disabled AS {cast}) FROM accounts WHERE username = '{user}'"
        ))
        .await
    }

    fn connector(&self) -> String {
        format!(
            r#"kind = "connector"
name = "hr-db"
backend = "sql"

[sql]
dialect = "{}"
url = "{}"
table = "accounts"
disabled_column = "disabled"

[sql.columns]
username = "username"
full_name = "full_name"
email = "email"

[sql.grants]
table = "account_roles"
username_column = "username"
role_column = "role"
"#,
            self.dialect(),
            self.url
        )
    }
}

async fn drain(store: &Store) {
    let registry = registry();
    let queues: Vec<String> = ["default", "provision", "notify"]
        .iter()
        .map(|q| q.to_string())
        .collect();
    for _ in 0..100 {
        let jobs = store
            .claim("test-worker", &queues, 10, Duration::from_secs(60))
            .await
            .expect("claim");
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            let handler = registry.get(&job.kind).expect("handler");
            let id = job.id;
            let ctx = JobContext {
                store: store.clone(),
                job,
                worker_id: "test-worker".into(),
            };
            match handler.run(ctx).await {
                Ok(()) => store
                    .complete_jobs("test-worker", &[id])
                    .await
                    .map(|_| ())
                    .expect("complete"),
                Err(JobError::Transient(e) | JobError::Permanent(e)) => store
                    .fail_job("test-worker", id, &e, FailOutcome::Dead)
                    .await
                    .map(|_| ())
                    .expect("fail"),
            }
        }
    }
    panic!("jobs kept coming");
}

async fn run_request(store: &Store, request: NewRequest) -> i64 {
    let admin = Actor::operator("admin", "test");
    let bob = Actor::operator("bob", "test");
    let r = store.create_request(&admin, request).await.expect("create");
    drain(store).await;
    let d = store.request_detail(r.id).await.expect("detail");
    let a = d
        .approvals
        .iter()
        .find(|a| a.status == "pending")
        .unwrap_or_else(|| panic!("pending approval: {:#?} {:#?}", d.request, d.timeline))
        .clone();
    store
        .decide_approval(&bob, a.id, a.version, Decision::Approve, None)
        .await
        .expect("approve");
    drain(store).await;
    let d = store.request_detail(r.id).await.expect("detail");
    assert_eq!(
        d.request.state.name(),
        "completed",
        "{:#?}",
        d.timeline
            .iter()
            .map(|t| t.detail.clone())
            .collect::<Vec<_>>()
    );
    r.id
}

fn request(workflow: &str, kind: &str, payload: serde_json::Value) -> NewRequest {
    NewRequest {
        workflow: workflow.into(),
        kind: kind.into(),
        subject_name: "Gina Núñez".into(),
        subject_email: Some("gina@example.com".into()),
        username: Some("gnunez".into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload,
    }
}

async fn lifecycle(kind: TargetKind) {
    let Some(target) = Target::new(kind).await else {
        return;
    };
    let db = fresh(Kind::Sqlite).await.expect("store");
    let s = &db.store;
    let admin = Actor::operator("admin", "test");
    s.save_config(&admin, "connector", "hr-db", &target.connector(), "", 0)
        .await
        .expect("connector");
    for (name, body) in ROLES {
        s.save_config(&admin, "role", name, body, "", 0)
            .await
            .expect("role");
    }
    for (name, kind, steps) in [
        ("joiner", "joiner", JOINER_STEPS),
        ("mover", "mover", MOVER_STEPS),
        ("leaver", "leaver", LEAVER_STEPS),
    ] {
        s.save_config(
            &admin,
            "workflow",
            name,
            &workflow(name, kind, steps),
            "",
            0,
        )
        .await
        .expect("workflow");
    }

    // Joiner: the account, and the developer bundle (developer + inherited employee).
    let joiner = run_request(s, request("joiner", "joiner", json!({"role": "developer"}))).await;
    assert_eq!(target.roles("gnunez").await, vec!["developer", "employee"]);
    let pins = s.request_pins(joiner).await.expect("pins");
    let pinned: Vec<String> = pins[0]
        .documents
        .iter()
        .map(|d| format!("{} {}", d.kind, d.name))
        .collect();
    for role in ["role developer", "role employee"] {
        assert!(pinned.contains(&role.to_string()), "{pinned:?}");
    }

    // Mover: developer → sales; employee stays, developer goes, sales comes.
    run_request(
        s,
        request(
            "mover",
            "mover",
            json!({"role": "sales", "previous_role": "developer"}),
        ),
    )
    .await;
    assert_eq!(target.roles("gnunez").await, vec!["employee", "sales"]);

    // Leaver: disabled at once, the sales bundle revoked.
    run_request(s, request("leaver", "leaver", json!({"role": "sales"}))).await;
    assert!(target.roles("gnunez").await.is_empty());
    let off = target.disabled("gnunez").await;
    assert!(off == ["1"] || off == ["true"], "{off:?}");

    // Every applied step is an audit row with the statements it ran.
    let audit = s
        .list_audit(
            &AuditFilter {
                action: Some("provision.apply".into()),
                ..AuditFilter::default()
            },
            None,
            50,
        )
        .await
        .expect("audit");
    let outcomes: Vec<String> = audit
        .rows
        .iter()
        .filter_map(|r| r.after.as_ref())
        .map(|a| {
            a["written"]["outcome"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["created", "granted", "regranted", "revoked", "updated"],
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_mover_leaver_on_a_sqlite_target() {
    lifecycle(TargetKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_mover_leaver_on_a_postgres_target() {
    lifecycle(TargetKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_mover_leaver_on_a_mariadb_target() {
    lifecycle(TargetKind::Mariadb).await;
}
