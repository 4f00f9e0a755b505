//! Step control and manual steps, written as attacks and end to end: a workflow with a manual
//! step between two SQL steps on a SQLite target waits, is completed (verified by reading the
//! account back) and the last step runs; skip continues; re-run from step N runs again without
//! a duplicate account; approvers, out-of-scope admins, empty justifications and retries of
//! steps that did not fail are refused and audited. The store is SQLite, and PostgreSQL when
//! it is reachable (the tests fail when `CI` is set and it is not). Job handlers run in-process.

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
    Actor, AuditFilter, CommandApi, FailOutcome, NewRequest, OperatorRow, ReadApi, RequestRow,
};
use gatehouse::store::error::StoreError;
use serde_json::json;
use sqlx::Connection;
use store_db::{Kind, TestDb, fresh};

const DIRECTORY: &str = r#"kind = "directory"
name = "dir"
backend = "static"

[[people]]
login = "bob"
name = "Bob Brenner"
email = "bob@example.com"
"#;

/// Create an account, a manual step verified against the badge system, set the title.
const WORKFLOW: &str = r#"kind = "workflow"
name = "sales-joiner"
description = "Accounts for new sales staff"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[[steps]]
name = "create-account"
connector = "hr-db"
action = "create_account"
params = { full_name = "{subject_name}", email = "{subject_email}", team = "sales" }

[[steps]]
name = "issue-badge"
connector = "badge-db"
action = "manual"
params = { instruction = "Issue a door badge for {subject_name} ({username}) in the badge system" }

[[steps]]
name = "set-title"
connector = "hr-db"
action = "update_account"
params = { title = "Sales representative" }
"#;

/// A manual step that names no connector: accepted, but not verified.
const DESK_WORKFLOW: &str = r#"kind = "workflow"
name = "desk-joiner"
description = "A desk, set up by facilities"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[[steps]]
name = "create-account"
connector = "hr-db"
action = "create_account"
params = { full_name = "{subject_name}", email = "{subject_email}", team = "sales" }

[[steps]]
name = "desk"
action = "manual"
params = { instruction = "Set up a desk for {subject_name}" }
"#;

fn connector(name: &str, url: &str, table: &str, title: bool) -> String {
    let title = if title { "title = \"title\"\n" } else { "" };
    format!(
        r#"kind = "connector"
name = "{name}"
backend = "sql"

[sql]
dialect = "sqlite"
url = "{url}"
table = "{table}"

[sql.columns]
username = "username"
full_name = "full_name"
{title}"#
    )
}

struct Env {
    db: TestDb,
    target: String,
    _dir: tempfile::TempDir,
    sales: Actor,
    hr: Actor,
    bob: Actor,
}

async fn env(kind: Kind) -> Option<Env> {
    let db = fresh(kind).await?;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("target.db");
    gatehouse::connectors::sql::prepare_demo_target(&file)
        .await
        .expect("target");
    let target = format!("sqlite://{}", file.display());
    exec(
        &target,
        "CREATE TABLE badges (username TEXT PRIMARY KEY, full_name TEXT)",
    )
    .await;
    let system = Actor::system("test", "test");
    for (name, role, scope) in [
        ("ops-sales", "admin", "team:sales"),
        ("ops-hr", "admin", "team:hr"),
        ("bob", "approver", ""),
    ] {
        db.store
            .set_operator(
                &system,
                &OperatorRow {
                    name: name.into(),
                    role: role.into(),
                    scopes: if scope.is_empty() {
                        Vec::new()
                    } else {
                        vec![scope.into()]
                    },
                    email: None,
                },
            )
            .await
            .expect("operator");
    }
    let admin = Actor::operator("admin", "test");
    let s = &db.store;
    s.save_config(&admin, "directory", "dir", DIRECTORY, "", 0)
        .await
        .expect("directory");
    let hr = connector("hr-db", &target, "accounts", true);
    s.save_config(&admin, "connector", "hr-db", &hr, "", 0)
        .await
        .expect("hr connector");
    let badges = connector("badge-db", &target, "badges", false);
    s.save_config(&admin, "connector", "badge-db", &badges, "", 0)
        .await
        .expect("badge connector");
    s.save_config(&admin, "workflow", "sales-joiner", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    s.save_config(&admin, "workflow", "desk-joiner", DESK_WORKFLOW, "", 0)
        .await
        .expect("desk workflow");
    Some(Env {
        db,
        target,
        _dir: dir,
        sales: Actor::operator("ops-sales", "test"),
        hr: Actor::operator("ops-hr", "test"),
        bob: Actor::operator("bob", "test"),
    })
}

async fn exec(url: &str, sql: &str) {
    let mut c = sqlx::SqliteConnection::connect(url)
        .await
        .expect("sqlite target");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .expect("target statement");
}

/// The accounts named `username` in the target, with their title.
async fn accounts(url: &str, username: &str) -> Vec<Option<String>> {
    let mut c = sqlx::SqliteConnection::connect(url)
        .await
        .expect("sqlite target");
    let rows: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT title FROM accounts WHERE username = $1")
            .bind(username)
            .fetch_all(&mut c)
            .await
            .expect("read accounts");
    rows.into_iter().map(|(t,)| t).collect()
}

fn joiner(workflow: &str, name: &str, email: &str) -> NewRequest {
    NewRequest {
        workflow: workflow.into(),
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(email.into()),
        username: None,
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"team": "sales"}),
    }
}

/// Run the flow's jobs in-process until none is due.
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
            let handler = registry
                .get(&job.kind)
                .unwrap_or_else(|| panic!("no handler for {}", job.kind));
            let id = job.id;
            let ctx = JobContext {
                store: store.clone(),
                job,
                worker_id: "test-worker".into(),
            };
            let outcome = match handler.run(ctx).await {
                Ok(()) => None,
                Err(JobError::Transient(e)) => Some((e, FailOutcome::RetryAt(store.now()))),
                Err(JobError::Permanent(e)) => Some((e, FailOutcome::Dead)),
            };
            match outcome {
                None => store
                    .complete_jobs("test-worker", &[id])
                    .await
                    .map(|_| ())
                    .expect("complete"),
                Some((e, how)) => store
                    .fail_job("test-worker", id, &e, how)
                    .await
                    .map(|_| ())
                    .expect("fail"),
            }
        }
    }
    panic!("jobs kept coming");
}

async fn audited(s: &Store, who: &str, action: &str) -> usize {
    s.list_audit(
        &AuditFilter {
            actor: Some(who.into()),
            action: Some(action.into()),
            ..AuditFilter::default()
        },
        None,
        1000,
    )
    .await
    .expect("audit")
    .rows
    .len()
}

async fn statuses(s: &Store, id: i64) -> Vec<(String, Option<String>)> {
    s.step_statuses(id)
        .await
        .expect("step statuses")
        .into_iter()
        .map(|st| (st.name, st.status))
        .collect()
}

fn st(name: &str, status: Option<&str>) -> (String, Option<String>) {
    (name.to_string(), status.map(str::to_string))
}

/// A joiner of the sales workflow, provisioned up to its manual step.
async fn waiting(e: &Env, name: &str, email: &str) -> RequestRow {
    let s = &e.db.store;
    let r = s
        .create_request(&e.sales, joiner("sales-joiner", name, email))
        .await
        .expect("create");
    drain(s).await;
    let r = s.request(r.id).await.expect("request");
    assert_eq!(r.state.name(), "provisioning", "{:?}", r.last_error);
    r
}

/// Run `test` on a SQLite store, then on a PostgreSQL one when the server is reachable. The
/// environment stays here: a closure capturing only some fields would drop the others (and
/// with them the temporary directories).
async fn for_each_store(test: impl AsyncFn(&Env)) {
    for kind in [Kind::Sqlite, Kind::Postgres] {
        if let Some(e) = env(kind).await {
            test(&e).await;
        }
    }
}

#[tokio::test]
async fn a_manual_step_waits_is_verified_by_read_back_and_the_last_step_runs() {
    for_each_store(async |e: &Env| {
        let s = &e.db.store;
        let r = waiting(e, "Gina Núñez", "gina@example.com").await;
        let user = r.username.clone().expect("username");
        assert_eq!(
            statuses(s, r.id).await,
            vec![
                st("create-account", Some("applied")),
                st("issue-badge", Some("waiting_manual")),
                st("set-title", None),
            ]
        );
        assert_eq!(accounts(&e.target, &user).await, vec![None]);
        let tasks = s.manual_tasks(100).await.expect("tasks");
        assert_eq!(tasks.len(), 1, "{tasks:#?}");
        assert_eq!(tasks[0].step, "issue-badge");
        assert_eq!(
            tasks[0].instruction,
            format!("Issue a door badge for Gina Núñez ({user}) in the badge system")
        );
        // The job that reached it finished without failing.
        let d = s.request_detail(r.id).await.expect("detail");
        assert!(
            d.jobs.iter().all(|j| j.state.name() == "completed"),
            "{:#?}",
            d.jobs
        );

        // Attack: marked done, but the badge does not exist: the read-back refuses it.
        s.complete_manual_step(&e.sales, r.id, "issue-badge", Some("done, trust me"))
            .await
            .expect("reported");
        drain(s).await;
        assert_eq!(
            s.request(r.id).await.expect("r").state.name(),
            "provisioning"
        );
        assert_eq!(
            statuses(s, r.id).await[1],
            st("issue-badge", Some("waiting_manual"))
        );
        assert_eq!(
            accounts(&e.target, &user).await,
            vec![None],
            "set-title ran"
        );
        let tasks = s.manual_tasks(100).await.expect("tasks");
        let problem = tasks[0].problem.clone().expect("problem shown");
        assert!(problem.contains("read-back found no account"), "{problem}");

        // The person really issues the badge: verified, and the last step runs.
        exec(
            &e.target,
            &format!("INSERT INTO badges (username, full_name) VALUES ('{user}', 'Gina')"),
        )
        .await;
        s.complete_manual_step(&e.sales, r.id, "issue-badge", None)
            .await
            .expect("reported");
        drain(s).await;
        let done = s.request(r.id).await.expect("r");
        assert_eq!(done.state.name(), "completed", "{:?}", done.last_error);
        assert_eq!(
            accounts(&e.target, &user).await,
            vec![Some("Sales representative".to_string())]
        );
        assert_eq!(
            statuses(s, r.id).await[1],
            st("issue-badge", Some("manual_done"))
        );
        assert!(s.manual_tasks(100).await.expect("tasks").is_empty());
        assert_eq!(audited(s, "ops-sales", "request.manual_step_done").await, 2);
        // A cancelled request's manual step is no task for anybody.
        let other = waiting(e, "Olaf Rye", "olaf@example.com").await;
        assert_eq!(s.manual_tasks(100).await.expect("tasks").len(), 1);
        s.cancel_request(&e.sales, other.id, Some("no longer joining".into()))
            .await
            .expect("cancel");
        assert!(s.manual_tasks(100).await.expect("tasks").is_empty());
        // Done twice is refused: it no longer waits.
        let again = s
            .complete_manual_step(&e.sales, r.id, "issue-badge", None)
            .await;
        assert!(
            matches!(again, Err(StoreError::Invalid { .. })),
            "{again:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_manual_step_without_a_connector_is_accepted_as_not_verified() {
    for_each_store(async |e: &Env| {
        let s = &e.db.store;
        let r = s
            .create_request(
                &e.sales,
                joiner("desk-joiner", "Hal Ito", "hal@example.com"),
            )
            .await
            .expect("create");
        drain(s).await;
        s.complete_manual_step(&e.sales, r.id, "desk", Some("desk 4.12"))
            .await
            .expect("done");
        drain(s).await;
        assert_eq!(s.request(r.id).await.expect("r").state.name(), "completed");
        let d = s.request_detail(r.id).await.expect("detail");
        let text = serde_json::to_string(&d.timeline).expect("json");
        assert!(
            text.contains("not verified: connector cannot read"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn skip_needs_a_justification_and_an_operator_then_continues() {
    for_each_store(async |e: &Env| {
        let s = &e.db.store;
        let r = waiting(e, "Ida Berg", "ida@example.com").await;
        let user = r.username.clone().expect("username");
        // Attack: an approver (no operator authority) cannot skip.
        let refused = s.skip_step(&e.bob, r.id, "issue-badge", "I want in").await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden { .. })),
            "{refused:?}"
        );
        assert_eq!(audited(s, "bob", "request.skip_step.refused").await, 1);
        // Attack: no justification.
        for empty in ["", "   "] {
            let refused = s.skip_step(&e.sales, r.id, "issue-badge", empty).await;
            match refused {
                Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "justification"),
                other => panic!("not refused: {other:?}"),
            }
        }
        assert_eq!(
            audited(s, "ops-sales", "request.skip_step.refused").await,
            2
        );
        // Nothing changed.
        assert_eq!(
            statuses(s, r.id).await[1],
            st("issue-badge", Some("waiting_manual"))
        );
        // Skipped with a reason: the run continues past it.
        s.skip_step(
            &e.sales,
            r.id,
            "issue-badge",
            "badges are issued on paper this week",
        )
        .await
        .expect("skip");
        drain(s).await;
        assert_eq!(s.request(r.id).await.expect("r").state.name(), "completed");
        assert_eq!(
            statuses(s, r.id).await[1],
            st("issue-badge", Some("skipped"))
        );
        assert_eq!(
            accounts(&e.target, &user).await,
            vec![Some("Sales representative".to_string())]
        );
        let rows = s
            .list_audit(
                &AuditFilter {
                    action: Some("request.skip_step".into()),
                    actor: Some("ops-sales".into()),
                    ..AuditFilter::default()
                },
                None,
                100,
            )
            .await
            .expect("audit")
            .rows;
        let text = serde_json::to_string(&rows).expect("json");
        assert!(
            text.contains("badges are issued on paper this week"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn retry_only_a_failed_step_and_only_in_scope() {
    for_each_store(async |e: &Env| {
        let s = &e.db.store;
        // Someone else's account already holds the name: the create fails (create is not adopt).
        exec(
            &e.target,
            "INSERT INTO accounts (username, full_name) VALUES ('jkarlsson', 'Somebody Else')",
        )
        .await;
        let r = s
            .create_request(
                &e.sales,
                joiner("sales-joiner", "Jon Karlsson", "jon@example.com"),
            )
            .await
            .expect("create");
        drain(s).await;
        let failed = s.request(r.id).await.expect("r");
        assert_eq!(failed.state.name(), "failed");
        assert_eq!(failed.username.as_deref(), Some("jkarlsson"));
        // Attack: a step that did not fail is not retried.
        let refused = s.retry_step(&e.sales, r.id, "set-title").await;
        assert!(
            matches!(refused, Err(StoreError::Invalid { .. })),
            "{refused:?}"
        );
        // Attack: an admin of another team cannot retry.
        let refused = s.retry_step(&e.hr, r.id, "create-account").await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden { .. })),
            "{refused:?}"
        );
        assert_eq!(audited(s, "ops-hr", "request.retry_step.refused").await, 1);
        // A step that does not exist is named in the refusal.
        let refused = s.retry_step(&e.sales, r.id, "nope").await;
        let msg = format!("{:?}", refused.expect_err("refused"));
        assert!(
            msg.contains("create-account, issue-badge, set-title"),
            "{msg}"
        );
        assert_eq!(s.request(r.id).await.expect("r").state.name(), "failed");
        // The name is freed in the target; the failed step is retried and the run goes on.
        exec(
            &e.target,
            "DELETE FROM accounts WHERE username = 'jkarlsson'",
        )
        .await;
        s.retry_step(&e.sales, r.id, "create-account")
            .await
            .expect("retry");
        drain(s).await;
        assert_eq!(
            s.request(r.id).await.expect("r").state.name(),
            "provisioning"
        );
        assert_eq!(
            statuses(s, r.id).await,
            vec![
                st("create-account", Some("applied")),
                st("issue-badge", Some("waiting_manual")),
                st("set-title", None),
            ]
        );
        // Attack: retrying a step of a request that is not failed.
        let refused = s.retry_step(&e.sales, r.id, "create-account").await;
        assert!(
            matches!(refused, Err(StoreError::InvalidState { .. })),
            "{refused:?}"
        );
        assert_eq!(
            audited(s, "ops-sales", "request.retry_step.refused").await,
            3
        );
    })
    .await;
}

#[tokio::test]
async fn rerun_from_runs_again_without_a_duplicate_account() {
    for_each_store(async |e: &Env| {
        let s = &e.db.store;
        let r = waiting(e, "Kim Lund", "kim@example.com").await;
        let user = r.username.clone().expect("username");
        for bad in [0, 4] {
            match s.rerun_from(&e.sales, r.id, bad).await {
                Err(StoreError::Invalid { field, message }) => {
                    assert_eq!(field, "from");
                    assert!(message.contains("1 to 3"), "{message}");
                }
                other => panic!("not refused: {other:?}"),
            }
        }
        let refused = s.rerun_from(&e.bob, r.id, 1).await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden { .. })),
            "{refused:?}"
        );
        s.rerun_from(&e.sales, r.id, 1).await.expect("rerun");
        drain(s).await;
        assert_eq!(
            accounts(&e.target, &user).await.len(),
            1,
            "duplicate account"
        );
        assert_eq!(
            statuses(s, r.id).await,
            vec![
                st("create-account", Some("applied")),
                st("issue-badge", Some("waiting_manual")),
                st("set-title", None),
            ]
        );
        let d = s.request_detail(r.id).await.expect("detail");
        let creates = d
            .timeline
            .iter()
            .filter(|t| t.kind == "step" && t.detail["name"] == "create-account")
            .count();
        assert_eq!(creates, 2, "{:#?}", d.timeline);
        // Done, then a completed request is not re-run.
        exec(
            &e.target,
            &format!("INSERT INTO badges (username, full_name) VALUES ('{user}', 'Kim')"),
        )
        .await;
        s.complete_manual_step(&e.sales, r.id, "issue-badge", None)
            .await
            .expect("done");
        drain(s).await;
        assert_eq!(s.request(r.id).await.expect("r").state.name(), "completed");
        let refused = s.rerun_from(&e.sales, r.id, 2).await;
        assert!(
            matches!(refused, Err(StoreError::InvalidState { .. })),
            "{refused:?}"
        );
        assert_eq!(accounts(&e.target, &user).await.len(), 1);
        assert_eq!(audited(s, "ops-sales", "request.rerun_from").await, 4);
    })
    .await;
}

#[tokio::test]
async fn cli_refuses_bad_arguments_by_name_and_changes_nothing() {
    let Some(e) = env(Kind::Sqlite).await else {
        return;
    };
    let s = &e.db.store;
    let me = support::os_login();
    s.set_operator(
        &Actor::system("test", "test"),
        &OperatorRow {
            name: me.clone(),
            role: "admin".into(),
            scopes: Vec::new(),
            email: None,
        },
    )
    .await
    .expect("operator");
    let r = waiting(&e, "Lea Moss", "lea@example.com").await;
    let log = e._dir.path().join("cli.log");
    let id = r.id.to_string();
    let run = |args: &[&str]| {
        let out = support::gatehouse(&e.db.url, &log)
            .args(args)
            .output()
            .expect("run gatehouse");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    for (args, expected) in [
        (
            vec!["request", "done-step", &id, "nope"],
            "has no step \"nope\"; its steps are: create-account, issue-badge, set-title",
        ),
        (
            vec!["request", "rerun", &id, "--from", "9"],
            "--from must be 1 to 3, not 9",
        ),
        (
            vec!["request", "skip-step", &id, "issue-badge", "--reason", "  "],
            "invalid justification",
        ),
        (
            vec!["request", "retry-step", &id, "create-account"],
            "cannot retry step",
        ),
        (
            vec!["request", "done-step", "999999", "issue-badge"],
            "request 999999 not found",
        ),
    ] {
        let (ok, text) = run(&args);
        assert!(!ok, "{args:?} succeeded: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
    assert_eq!(
        statuses(s, r.id).await[1],
        st("issue-badge", Some("waiting_manual"))
    );
    let (ok, text) = run(&[
        "request",
        "skip-step",
        &id,
        "issue-badge",
        "--reason",
        "issued on paper",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("step issue-badge skipped"), "{text}");
    drain(s).await;
    assert_eq!(s.request(r.id).await.expect("r").state.name(), "completed");
    assert_eq!(audited(s, &me, "request.skip_step.refused").await, 1);
    assert_eq!(audited(s, &me, "request.manual_step_done.refused").await, 1);
}
