//! What is provisioned is what was approved, on SQLite and PostgreSQL stores with SQLite and
//! PostgreSQL targets: plans are pinned and a config edit after approval blocks provisioning
//! until re-approved; create is not adopt; usernames are reserved; approvers never come from
//! request fields; every applied step is an audit row. The flow's job handlers run in-process.
//! PostgreSQL tests fail when `CI` is set and the server is unreachable.

// Shared with the store's own tests; this file uses part of it.
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::engine::flow::registry;
use gatehouse::engine::handler::{JobContext, JobError};
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, ApprovalRow, AuditFilter, AuditVerdict, CommandApi, Decision, FailOutcome, JobFilter,
    JobState, NewRequest, ReadApi, RequestDetail,
};
use gatehouse::store::pins::Reservation;
use serde_json::json;
use sqlx::Connection;
use store_db::{Kind, TestDb, fresh};

const DIRECTORY: &str = r#"kind = "directory"
name = "dir"
backend = "static"

[[people]]
login = "alice"
name = "Alice Albrecht"
email = "alice@example.com"

[[people]]
login = "bob"
name = "Bob Brenner"
email = "bob@example.com"

[[people]]
login = "carol"
name = "Carol Castellanos"
email = "carol@example.com"
manager = "alice"

[[people]]
login = "mallory"
name = "Mallory Mayhem"
email = "mallory@example.com"
"#;

fn workflow(team: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "sales-joiner"
description = "Accounts for new sales staff"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[validation]
required_fields = ["subject_email"]

[[stages]]
name = "sales-lead"
policy = "any"
people = ["bob"]

[[steps]]
name = "create-account"
connector = "hr-db"
action = "create_account"
params = {{ full_name = "{{subject_name}}", email = "{{subject_email}}", team = "{team}" }}
"#
    )
}

const MANAGER_WORKFLOW: &str = r#"kind = "workflow"
name = "mover"
description = "Team changes: the line manager approves"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner", "mover"]

[[stages]]
name = "line-manager"
policy = "any"
approvers = ["line_manager"]
"#;

/// Where accounts are provisioned: a SQLite file or a throwaway PostgreSQL database.
struct Target {
    kind: Kind,
    url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<support::PgDb>,
}

impl Target {
    async fn new(kind: Kind) -> Option<Target> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let file = dir.path().join("target.db");
                gatehouse::connectors::sql::prepare_demo_target(&file)
                    .await
                    .expect("target");
                Some(Target {
                    kind,
                    url: format!("sqlite://{}", file.display()),
                    _dir: Some(dir),
                    _pg: None,
                })
            }
            Kind::Postgres => {
                let pg = support::PgDb::create("target").await?;
                let mut c = sqlx::PgConnection::connect(&pg.url)
                    .await
                    .expect("pg target");
                sqlx::raw_sql(
                    "CREATE TABLE accounts (username TEXT PRIMARY KEY, full_name TEXT, email TEXT, \
                     team TEXT, title TEXT, disabled BOOLEAN NOT NULL DEFAULT false)",
                )
                .execute(&mut c)
                .await
                .expect("accounts table");
                Some(Target {
                    kind,
                    url: pg.url.clone(),
                    _dir: None,
                    _pg: Some(pg),
                })
            }
        }
    }

    fn connector(&self, adopt_existing: bool) -> String {
        let dialect = match self.kind {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        };
        format!(
            r#"kind = "connector"
name = "hr-db"
backend = "sql"

[sql]
dialect = "{dialect}"
url = "{url}"
table = "accounts"
disabled_column = "disabled"
adopt_existing = {adopt_existing}

[sql.columns]
username = "username"
full_name = "full_name"
email = "email"
team = "team"
"#,
            url = self.url
        )
    }

    /// Run one statement on the target.
    async fn exec(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("sqlite target");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("target statement");
            }
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("pg target");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                    .execute(&mut c)
                    .await
                    .expect("target statement");
            }
        }
    }

    /// The account row as text columns, or `None`.
    async fn account(&self, username: &str) -> Option<Vec<String>> {
        let sql = "SELECT CAST(username AS TEXT), CAST(full_name AS TEXT), CAST(email AS TEXT), \
                   CAST(team AS TEXT), CAST(disabled AS TEXT) FROM accounts WHERE username = $1";
        type Row = (String, String, String, String, String);
        let row: Option<Row> = match self.kind {
            Kind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("sqlite target");
                sqlx::query_as(sql)
                    .bind(username)
                    .fetch_optional(&mut c)
                    .await
                    .expect("read account")
            }
            Kind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("pg target");
                sqlx::query_as(sql)
                    .bind(username)
                    .fetch_optional(&mut c)
                    .await
                    .expect("read account")
            }
        };
        row.map(|(a, b, c, d, e)| vec![a, b, c, d, e])
    }

    fn disabled(&self, on: bool) -> &'static str {
        match (self.kind, on) {
            (Kind::Postgres, true) => "true",
            (Kind::Postgres, false) => "false",
            (Kind::Sqlite, true) => "1",
            (Kind::Sqlite, false) => "0",
        }
    }
}

/// The operators the tests act as. Kept in one place: when commands check roles, only this
/// changes.
struct Operators {
    admin: Actor,
    bob: Actor,
}

async fn operators(store: &Store) -> Operators {
    let system = Actor::system("test", "test");
    for (name, role) in [
        ("root-admin", "admin"),
        ("bob", "approver"),
        ("alice", "approver"),
    ] {
        store
            .set_operator(
                &system,
                &gatehouse::store::api::OperatorRow {
                    name: name.into(),
                    role: role.into(),
                    scopes: Vec::new(),
                    email: None,
                },
            )
            .await
            .expect("operator");
    }
    Operators {
        admin: Actor::operator("root-admin", "test"),
        bob: Actor::operator("bob", "test"),
    }
}

struct Env {
    db: TestDb,
    target: Target,
    ops: Operators,
}

async fn env(store_kind: Kind, target_kind: Kind) -> Option<Env> {
    let db = fresh(store_kind).await?;
    let target = Target::new(target_kind).await?;
    let ops = operators(&db.store).await;
    let s = &db.store;
    s.save_config(&ops.admin, "directory", "dir", DIRECTORY, "", 0)
        .await
        .expect("directory");
    s.save_config(
        &ops.admin,
        "connector",
        "hr-db",
        &target.connector(false),
        "",
        0,
    )
    .await
    .expect("connector");
    s.save_config(
        &ops.admin,
        "workflow",
        "sales-joiner",
        &workflow("sales"),
        "",
        0,
    )
    .await
    .expect("workflow");
    Some(Env { db, target, ops })
}

fn joiner(name: &str, email: &str, username: Option<&str>) -> NewRequest {
    NewRequest {
        workflow: "sales-joiner".into(),
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(email.into()),
        username: username.map(str::to_string),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"team": "sales", "manager": "mallory"}),
    }
}

/// Run the flow's jobs from `queues` in-process until none is due.
async fn drain(store: &Store, queues: &[&str]) {
    let registry = registry();
    let queues: Vec<String> = queues.iter().map(|q| q.to_string()).collect();
    for _ in 0..100 {
        let jobs = store
            .claim("test-worker", &queues, 10, Duration::from_secs(60))
            .await
            .expect("claim");
        if jobs.is_empty() {
            return;
        }
        for job in jobs {
            let handler = registry
                .get(&job.kind)
                .unwrap_or_else(|| panic!("no handler for {}", job.kind));
            let id = job.id;
            let ctx = JobContext {
                store: store.clone(),
                job,
                worker_id: "test-worker".into(),
            };
            match handler.run(ctx).await {
                Ok(()) => {
                    store
                        .complete_jobs("test-worker", &[id])
                        .await
                        .expect("complete");
                }
                Err(JobError::Transient(e)) => {
                    store
                        .fail_job("test-worker", id, &e, FailOutcome::RetryAt(store.now()))
                        .await
                        .expect("fail");
                }
                Err(JobError::Permanent(e)) => {
                    store
                        .fail_job("test-worker", id, &e, FailOutcome::Dead)
                        .await
                        .expect("fail");
                }
            }
        }
    }
    panic!("jobs kept coming");
}

const ALL: &[&str] = &["default", "provision", "notify"];

async fn detail(store: &Store, id: i64) -> RequestDetail {
    store.request_detail(id).await.expect("detail")
}

fn pending(d: &RequestDetail) -> ApprovalRow {
    d.approvals
        .iter()
        .find(|a| a.status == "pending")
        .cloned()
        .unwrap_or_else(|| panic!("no pending approval: {:#?}", d.approvals))
}

async fn approve(e: &Env, id: i64) {
    let a = pending(&detail(&e.db.store, id).await);
    assert_eq!(a.approvers, vec!["bob"]);
    e.db.store
        .decide_approval(&e.ops.bob, a.id, a.version, Decision::Approve, None)
        .await
        .expect("approve");
}

fn step<'a>(d: &'a RequestDetail, prefix: &str) -> Vec<&'a serde_json::Value> {
    d.timeline
        .iter()
        .filter(|t| t.kind == "step")
        .filter(|t| {
            t.detail["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|t| &t.detail)
        .collect()
}

async fn config_edit_after_approval_blocks_provisioning_until_reapproved(e: &Env) {
    let s = &e.db.store;
    let r = s
        .create_request(&e.ops.admin, joiner("Gina Núñez", "gina@example.com", None))
        .await
        .expect("create");
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(d.request.username.as_deref(), Some("gnunez"));
    // Approvers see the pin in the timeline: versions in the name, the plan as the output.
    let pinned = step(
        &d,
        "plan pinned: workflow sales-joiner v1, connector hr-db v1",
    );
    assert_eq!(pinned.len(), 1, "{:#?}", d.timeline);
    let plan = &pinned[0]["output"];
    assert_eq!(plan["steps"][0]["writes"]["desired"]["team"], "sales");
    let preview = plan["steps"][0]["preview"]["plan"]["statements"][0]["sql"]
        .as_str()
        .expect("statements shown");
    assert!(preview.starts_with("INSERT INTO"), "{preview}");

    approve(e, r.id).await;
    drain(s, &["default"]).await;
    assert_eq!(detail(s, r.id).await.request.state.name(), "scheduled");
    // The workflow is edited after approval, before provisioning runs.
    s.save_config(
        &e.ops.admin,
        "workflow",
        "sales-joiner",
        &workflow("sales-emea"),
        "",
        1,
    )
    .await
    .expect("edit");
    drain(s, &["provision"]).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "validating");
    let why =
        "configuration changed after approval: workflow sales-joiner v1 → v2; re-approval needed";
    assert_eq!(d.request.last_error.as_deref(), Some(why));
    let check = step(&d, "configuration check");
    assert_eq!(check.len(), 1);
    assert_eq!(check[0]["error"], why);
    assert_eq!(
        e.target.account("gnunez").await,
        None,
        "nothing provisioned"
    );

    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    let superseded: Vec<&ApprovalRow> = d
        .approvals
        .iter()
        .filter(|a| a.status == "superseded")
        .collect();
    assert_eq!(superseded.len(), 1, "the old approval stays, superseded");
    assert_eq!(superseded[0].decisions.len(), 1);
    assert!(superseded[0].stage_name.contains("superseded, round 1"));
    assert_eq!(
        step(
            &d,
            "plan pinned: workflow sales-joiner v2, connector hr-db v1"
        )
        .len(),
        1
    );
    let pins = s.request_pins(r.id).await.expect("pins");
    assert_eq!(
        pins.iter()
            .map(|p| (p.round, p.workflow_version, p.status.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, 1, "superseded"), (2, 2, "active")]
    );
    assert_eq!(pins[0].superseded_reason.as_deref(), Some(why));

    approve(e, r.id).await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "completed",
        "{:?}",
        d.request.last_error
    );
    // The new version is what was applied.
    assert_eq!(
        e.target.account("gnunez").await,
        Some(vec![
            "gnunez".into(),
            "Gina Núñez".into(),
            "gina@example.com".into(),
            "sales-emea".into(),
            e.target.disabled(false).into(),
        ])
    );
    // The applied step is an audit row with what was written and read back.
    let audit = s
        .list_audit(
            &AuditFilter {
                entity: Some("request".into()),
                entity_id: Some(r.id.to_string()),
                action: Some("provision.apply".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("audit");
    assert_eq!(audit.rows.len(), 1);
    let after = audit.rows[0].after.clone().expect("after");
    assert_eq!(after["connector"], "hr-db");
    assert_eq!(after["connector_version"], 1);
    assert_eq!(after["written"]["outcome"], "created");
    assert!(
        after["written"]["statements"][0]["sql"]
            .as_str()
            .is_some_and(|q| q.starts_with("INSERT INTO"))
    );
    assert_eq!(after["written"]["read_back"]["team"], "sales-emea");
    assert_eq!(
        s.verify_audit().await.expect("verify"),
        AuditVerdict::Intact {
            rows: s
                .list_audit(&AuditFilter::default(), None, 1000)
                .await
                .expect("all")
                .rows
                .len() as i64
        }
    );
}

async fn an_edit_before_the_stage_advances_sends_the_request_round_again(e: &Env) {
    let s = &e.db.store;
    let r = s
        .create_request(&e.ops.admin, joiner("Ann Lee", "ann@example.com", None))
        .await
        .expect("create");
    drain(s, ALL).await;
    approve(e, r.id).await;
    // Edited after the decision, before the engine moves the request on.
    s.save_config(
        &e.ops.admin,
        "workflow",
        "sales-joiner",
        &workflow("sales-dach"),
        "",
        1,
    )
    .await
    .expect("edit");
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(step(&d, "configuration check").len(), 1);
    let statuses: Vec<&str> = d.approvals.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(statuses, vec!["pending", "superseded"]);
    assert_eq!(e.target.account("alee").await, None);
    approve(e, r.id).await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "completed",
        "{:?}",
        d.request.last_error
    );
    assert_eq!(
        e.target.account("alee").await.map(|row| row[3].clone()),
        Some("sales-dach".to_string())
    );
}

async fn a_request_approved_before_plans_were_pinned_is_approved_again(e: &Env) {
    let s = &e.db.store;
    let r = s
        .create_request(&e.ops.admin, joiner("Ann Lee", "ann@example.com", None))
        .await
        .expect("create");
    drain(s, ALL).await;
    approve(e, r.id).await;
    // As if the request had been approved by a version without pins.
    e.db.raw_exec("DELETE FROM request_pins").await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("no pinned plan (approved before plans were pinned); re-approval needed")
    );
    assert_eq!(e.target.account("alee").await, None);
    approve(e, r.id).await;
    drain(s, ALL).await;
    assert_eq!(detail(s, r.id).await.request.state.name(), "completed");
}

async fn joiner_whose_username_exists_fails_and_the_target_is_unchanged(e: &Env) {
    let s = &e.db.store;
    e.target
        .exec(&format!(
            "INSERT INTO accounts (username, full_name, email, team, disabled) VALUES \
             ('gnunez', 'Gabriel Nunez', 'gabriel@example.com', 'finance', {})",
            e.target.disabled(true)
        ))
        .await;
    let before = e.target.account("gnunez").await;
    let r = s
        .create_request(
            &e.ops.admin,
            joiner("Gina Núñez", "gina@example.com", Some("gnunez")),
        )
        .await
        .expect("create");
    drain(s, ALL).await;
    // The pinned preview already tells approvers.
    let d = detail(s, r.id).await;
    let pinned = step(&d, "plan pinned");
    let message = "account gnunez already exists in hr-db; set adopt_existing = true on the connector to adopt it";
    assert_eq!(pinned[0]["output"]["steps"][0]["preview"]["error"], message);
    approve(e, r.id).await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "failed");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some(format!("step create-account: {message}").as_str())
    );
    assert_eq!(
        e.target.account("gnunez").await,
        before,
        "target row unchanged"
    );
    // Permanent: the provisioning job died on its first attempt.
    let jobs = s
        .list_jobs(
            &JobFilter {
                queue: Some("provision".into()),
                request_id: Some(r.id),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    assert_eq!(jobs.rows.len(), 1);
    assert_eq!(
        (jobs.rows[0].state, jobs.rows[0].attempts),
        (JobState::Dead, 1)
    );

    // The connector is changed to adopt existing accounts: a retry finds the change, needs a
    // new approval, and then adopts.
    s.save_config(
        &e.ops.admin,
        "connector",
        "hr-db",
        &e.target.connector(true),
        "adopt",
        1,
    )
    .await
    .expect("adopt");
    s.retry_request(&e.ops.admin, r.id).await.expect("retry");
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(e.target.account("gnunez").await, before);
    approve(e, r.id).await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "completed",
        "{:?}",
        d.request.last_error
    );
    let applied = step(&d, "create-account");
    let last = applied.last().expect("applied step");
    assert_eq!(last["output"]["outcome"], "adopted");
    assert_eq!(last["output"]["connector_version"], 2);
    assert_eq!(
        e.target.account("gnunez").await,
        Some(vec![
            "gnunez".into(),
            "Gina Núñez".into(),
            "gina@example.com".into(),
            "sales".into(),
            e.target.disabled(false).into(),
        ])
    );
}

async fn our_own_create_is_recognised_after_a_crash_before_recording(e: &Env) {
    let s = &e.db.store;
    let r = s
        .create_request(&e.ops.admin, joiner("Ann Lee", "ann@example.com", None))
        .await
        .expect("create");
    drain(s, ALL).await;
    approve(e, r.id).await;
    drain(s, &["default"]).await;
    // An earlier attempt recorded its intent and created the account, then crashed before
    // recording the step.
    let pin = s.active_pin(r.id).await.expect("pin").expect("active pin");
    let writes = pin.plan["steps"][0]["writes"].clone();
    s.record_provision_intent(r.id, pin.id, "create-account", "hr-db", 1, "alee", &writes)
        .await
        .expect("intent");
    e.target
        .exec(&format!(
            "INSERT INTO accounts (username, full_name, email, team, disabled) VALUES \
             ('alee', 'Ann Lee', 'ann@example.com', 'sales', {})",
            e.target.disabled(false)
        ))
        .await;
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "completed",
        "{:?}",
        d.request.last_error
    );
    let applied = step(&d, "create-account");
    assert_eq!(applied[0]["output"]["outcome"], "already-created");
    assert_eq!(applied[0]["output"]["statements"], json!([]));

    // Someone else's account with the same name but other values is not ours, intent or not.
    let other = s
        .create_request(&e.ops.admin, joiner("Bo Day", "bo@example.com", None))
        .await
        .expect("create");
    drain(s, ALL).await;
    approve(e, other.id).await;
    drain(s, &["default"]).await;
    let pin = s.active_pin(other.id).await.expect("pin").expect("pin");
    let writes = pin.plan["steps"][0]["writes"].clone();
    s.record_provision_intent(
        other.id,
        pin.id,
        "create-account",
        "hr-db",
        1,
        "bday",
        &writes,
    )
    .await
    .expect("intent");
    e.target
        .exec("INSERT INTO accounts (username, full_name, email, team) VALUES ('bday', 'Bo Day', 'other@example.com', 'it')")
        .await;
    let before = e.target.account("bday").await;
    drain(s, ALL).await;
    let d = detail(s, other.id).await;
    assert_eq!(d.request.state.name(), "failed");
    assert!(
        d.request
            .last_error
            .as_deref()
            .is_some_and(|m| m.contains("is not taken over")),
        "{:?}",
        d.request.last_error
    );
    assert_eq!(e.target.account("bday").await, before);
}

async fn concurrent_requests_for_one_name_get_different_usernames(e: &Env) {
    let s = &e.db.store;
    let other = e.db.reopen(false).await;
    let system = Actor::system("engine", "test");
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let a = s
            .create_request(&e.ops.admin, joiner("Ann Lee", "ann.lee@example.com", None))
            .await
            .expect("a");
        let b = s
            .create_request(&e.ops.admin, joiner("Ann Lee", "ann.lee@example.com", None))
            .await
            .expect("b");
        let (ra, rb) = tokio::join!(
            s.reserve_username(&system, a.id),
            other.reserve_username(&system, b.id)
        );
        for (r, id) in [(ra, a.id), (rb, b.id)] {
            match r.expect("reserve") {
                Reservation::Reserved(row) => {
                    let name = row.username.clone().expect("username");
                    assert_eq!(s.username_holder(&name).await.expect("holder"), Some(id));
                    assert!(names.insert(name), "a username was given twice");
                }
                Reservation::Refused(why) => panic!("refused: {why}"),
            }
        }
    }
    let expected: std::collections::BTreeSet<String> = ["alee", "alee2", "alee3", "alee4"]
        .into_iter()
        .chain(["alee5", "alee6", "alee7", "alee8"])
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
    // Reserving again is idempotent for the holder.
    let first = s
        .username_holder("alee")
        .await
        .expect("holder")
        .expect("held");
    assert!(matches!(
        s.reserve_username(&system, first).await.expect("again"),
        Reservation::Reserved(row) if row.username.as_deref() == Some("alee")
    ));
    // Only the engine reserves.
    assert!(matches!(
        s.reserve_username(&e.ops.admin, first).await,
        Err(gatehouse::store::error::StoreError::Forbidden { .. })
    ));
    // A given username is checked, and one held by another request is refused.
    let bad = s
        .create_request(
            &e.ops.admin,
            joiner("Eve Evil", "eve@example.com", Some("Eve;--")),
        )
        .await
        .expect("bad");
    assert!(matches!(
        s.reserve_username(&system, bad.id).await.expect("checked"),
        Reservation::Refused(why) if why.contains("only a-z, 0-9")
    ));
    let taken = s
        .create_request(
            &e.ops.admin,
            joiner("Al Lee", "al@example.com", Some("alee")),
        )
        .await
        .expect("taken");
    match s.reserve_username(&system, taken.id).await.expect("held") {
        Reservation::Refused(why) => assert_eq!(
            why,
            format!("username alee is already reserved by request {first}")
        ),
        other => panic!("{other:?}"),
    }
    // Through the engine, the same refusal sends the request to triage with that reason.
    drain(s, ALL).await;
    let d = detail(s, taken.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert!(
        d.request
            .last_error
            .as_deref()
            .is_some_and(|m| m.starts_with("username: username alee is already reserved")),
        "{:?}",
        d.request.last_error
    );
}

async fn approvers_never_come_from_request_fields(e: &Env) {
    let s = &e.db.store;
    s.save_config(&e.ops.admin, "workflow", "mover", MANAGER_WORKFLOW, "", 0)
        .await
        .expect("workflow");
    let request = |requester: &str, username: Option<&str>, email: &str, kind: &str| NewRequest {
        workflow: "mover".into(),
        kind: kind.into(),
        subject_name: "Carol Castellanos".into(),
        subject_email: Some(email.into()),
        username: username.map(str::to_string),
        requester: requester.into(),
        source: "cli".into(),
        payload: json!({"manager": "mallory", "team": "sales"}),
    };
    // The payload names mallory; the directory says alice.
    let a = s
        .create_request(
            &e.ops.admin,
            request(
                "hr@example.com",
                Some("carol"),
                "carol@example.com",
                "mover",
            ),
        )
        .await
        .expect("a");
    // The requester is the subject's line manager, under her e-mail address.
    let b = s
        .create_request(
            &e.ops.admin,
            request(
                "Alice@Example.com",
                Some("carol"),
                "carol@example.com",
                "mover",
            ),
        )
        .await
        .expect("b");
    // A joiner the directory does not know, with a manager field.
    let c = s
        .create_request(
            &e.ops.admin,
            request("hr@example.com", None, "newbie@example.com", "joiner"),
        )
        .await
        .expect("c");
    drain(s, ALL).await;
    let d = detail(s, a.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(d.approvals.len(), 1);
    assert_eq!(d.approvals[0].approvers, vec!["alice"]);
    let d = detail(s, b.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert!(d.approvals.is_empty());
    assert_eq!(
        d.request.last_error.as_deref(),
        Some(
            "stage 1 (line-manager) cannot be approved: alice excluded (the requester or the subject never approves); no eligible approver is left"
        )
    );
    let d = detail(s, c.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert!(d.approvals.is_empty());
    assert_eq!(
        d.request.last_error.as_deref(),
        Some(
            "stage 1 (line-manager) cannot be approved: line_manager: no directory knows the subject (ccastellanos / newbie@example.com); no eligible approver is left"
        )
    );
    // mallory appears as nobody's approver.
    let inbox = s
        .pending_approvals("mallory", None, None, 10)
        .await
        .expect("inbox");
    assert!(
        inbox
            .rows
            .iter()
            .all(|a| !a.approvers.contains(&"mallory".to_string()))
    );
}

async fn a_joiner_who_already_has_an_account_is_caught_at_validation(e: &Env) {
    let s = &e.db.store;
    e.target
        .exec(&format!(
            "INSERT INTO accounts (username, full_name, email, team, disabled) VALUES \
             ('hholt', 'Hana Holt', 'hana@example.com', 'finance', {d}), \
             ('kkim', 'Kim Kwan', 'kim@example.com', 'finance', {d})",
            d = e.target.disabled(false)
        ))
        .await;
    // Required: the request goes to triage before anyone is asked to approve.
    let required = workflow("sales").replace(
        "[validation]\n",
        "[validation]\nnot_in_targets = \"required\"\n",
    );
    s.save_config(&e.ops.admin, "workflow", "sales-joiner", &required, "", 1)
        .await
        .expect("workflow");
    let r = s
        .create_request(
            &e.ops.admin,
            joiner("Hana Holt", "hana.h@example.com", Some("hholt")),
        )
        .await
        .expect("create");
    drain(s, ALL).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("target accounts: account hholt exists in hr-db")
    );
    assert!(d.approvals.is_empty(), "nobody was asked to approve");
    let checked = step(&d, "validate: target accounts");
    assert_eq!(
        checked[0]["output"]["existing"][0],
        "account hholt exists in hr-db"
    );
    // A new person passes the same check.
    let fresh = s
        .create_request(
            &e.ops.admin,
            joiner("Ivo Ilic", "ivo@example.com", Some("iilic")),
        )
        .await
        .expect("create");
    drain(s, ALL).await;
    let d = detail(s, fresh.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(
        step(&d, "validate: target accounts")[0]["error"],
        serde_json::Value::Null
    );
    // Warn: recorded on the timeline, and the request goes on to its approval.
    let warn = workflow("sales").replace(
        "[validation]\n",
        "[validation]\nnot_in_targets = \"warn\"\n",
    );
    s.save_config(&e.ops.admin, "workflow", "sales-joiner", &warn, "", 2)
        .await
        .expect("workflow");
    let w = s
        .create_request(
            &e.ops.admin,
            joiner("Kim Kwan", "kim.k@example.com", Some("kkim")),
        )
        .await
        .expect("create");
    drain(s, ALL).await;
    let d = detail(s, w.id).await;
    assert_eq!(d.request.state.name(), "awaiting_approval");
    assert_eq!(
        step(&d, "validate: target accounts")[0]["error"],
        "warning: account kkim exists in hr-db"
    );
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_store_sqlite_target {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let e = super::env(super::Kind::Sqlite, super::Kind::Sqlite).await.expect("sqlite");
                    super::$name(&e).await;
                }
            )*
        }
        mod postgres_store_postgres_target {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(e) = super::env(super::Kind::Postgres, super::Kind::Postgres).await {
                        super::$name(&e).await;
                    }
                }
            )*
        }
    };
}

both_backends!(
    config_edit_after_approval_blocks_provisioning_until_reapproved,
    an_edit_before_the_stage_advances_sends_the_request_round_again,
    a_request_approved_before_plans_were_pinned_is_approved_again,
    joiner_whose_username_exists_fails_and_the_target_is_unchanged,
    our_own_create_is_recognised_after_a_crash_before_recording,
    concurrent_requests_for_one_name_get_different_usernames,
    approvers_never_come_from_request_fields,
    a_joiner_who_already_has_an_account_is_caught_at_validation,
);

/// Mixed: a SQLite store provisioning into a PostgreSQL target, and the reverse.
mod mixed {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_postgres_target_refuses_an_existing_account() {
        if let Some(e) = super::env(super::Kind::Sqlite, super::Kind::Postgres).await {
            super::joiner_whose_username_exists_fails_and_the_target_is_unchanged(&e).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_store_sqlite_target_reapproves_after_an_edit() {
        if let Some(e) = super::env(super::Kind::Postgres, super::Kind::Sqlite).await {
            super::config_edit_after_approval_blocks_provisioning_until_reapproved(&e).await;
        }
    }
}
