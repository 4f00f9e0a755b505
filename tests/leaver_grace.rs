//! A leaver's grace period, its warning mail and dormant accounts, end to end through the
//! engine's jobs on SQLite, PostgreSQL and MariaDB targets: the leaver is disabled when the
//! plan is approved and revoked only when the revocation job's time comes (the test moves that
//! job's `run_at` into the past), exactly once even when the job runs twice; the warning is
//! queued `warn_before` ahead only when a notifier serves the workflow; cancelling the request
//! cancels the pending revocation. Servers from `tests/servers.sh`; a missing one fails under
//! `CI` and is SKIPPED otherwise.

#[path = "common/drain.rs"]
mod drain;
#[allow(dead_code)]
#[path = "common/sql_target.rs"]
mod sql_target;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use drain::drain;
use gatehouse::connectors::dormant::dormant;
use gatehouse::engine::documents;
use gatehouse::engine::dormant::request_leavers;
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, AuditFilter, CommandApi, Decision, JobFilter, JobRow, NewJob, NewRequest, ReadApi,
};
use serde_json::json;
use sql_target::{Target, TargetKind};
use sqlx::Connection;
use store_db::{Kind, TestDb, fresh};

const DAY_MS: i64 = 86_400_000;

const ROLE: &str = "kind = \"role\"\nname = \"sales\"\nentitlements = [\"hr-db:sales\"]\n";

fn leaver_workflow(warn: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "leaver"
team = "eng"

[intake]
sources = ["cli"]
kinds = ["leaver"]

[leaver]
grace = "14d"
{warn}

[[stages]]
name = "lead"
policy = "any"
people = ["bob"]

[[steps]]
name = "disable"
connector = "hr-db"
action = "disable_account"

[[steps]]
name = "revoke"
connector = "hr-db"
action = "revoke_role"
params = {{ role = "{{role}}" }}
"#
    )
}

const WARN: &str = "warn_before = \"3d\"\nwarn_to = [\"requester\"]";

const TABLES: &str = "CREATE TABLE accounts (username VARCHAR(64) PRIMARY KEY, full_name TEXT, \
    email TEXT, disabled BOOLEAN NOT NULL DEFAULT false, last_login BIGINT); \
    CREATE TABLE account_roles (username VARCHAR(64) NOT NULL, role VARCHAR(64) NOT NULL, \
    PRIMARY KEY (username, role));";

impl Target {
    async fn disabled(&self, user: &str) -> bool {
        let cast = if self.kind == TargetKind::Mariadb {
            "CHAR"
        } else {
            "TEXT"
        };
        let off = self
            .texts(&format!(
                "SELECT CAST(disabled AS {cast}) FROM accounts WHERE username = '{user}'"
            ))
            .await;
        off == ["1"] || off == ["true"]
    }

    fn connector(&self, last_seen: Option<&str>) -> String {
        let last_seen = last_seen
            .map(|c| format!("\n[sql.accounts]\nlast_seen = \"{c}\"\n"))
            .unwrap_or_default();
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
{last_seen}"#,
            self.dialect(),
            self.url
        )
    }
}

fn leaver() -> NewRequest {
    NewRequest {
        workflow: "leaver".into(),
        kind: "leaver".into(),
        subject_name: "Gina Núñez".into(),
        subject_email: Some("gina@example.com".into()),
        username: Some("gnunez".into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"role": "sales"}),
    }
}

/// A store with the connector, the role and the leaver workflow (with `warn`), and a target
/// where gnunez holds the sales role.
async fn setup(kind: TargetKind, warn: &str, notifier: bool) -> Option<(Target, TestDb)> {
    let target = Target::new(kind, "grace", TABLES).await?;
    target
        .exec(
            "INSERT INTO accounts (username, full_name, email) VALUES ('gnunez', 'Gina', 'gina@example.com'); \
             INSERT INTO account_roles (username, role) VALUES ('gnunez', 'sales');",
        )
        .await;
    let db = fresh(Kind::Sqlite).await?;
    let s = &db.store;
    let admin = Actor::operator("admin", "test");
    s.save_config(&admin, "connector", "hr-db", &target.connector(None), "", 0)
        .await
        .expect("connector");
    s.save_config(&admin, "role", "sales", ROLE, "", 0)
        .await
        .expect("role");
    s.save_config(&admin, "workflow", "leaver", &leaver_workflow(warn), "", 0)
        .await
        .expect("workflow");
    if notifier {
        // Never reached in these tests: the warning is only queued, not yet due.
        let doc = "kind = \"notifier\"\nname = \"loopback\"\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nfrom = \"Gatehouse <gatehouse@example.com>\"\ntimeout = \"10s\"\n";
        s.save_config(&admin, "notifier", "loopback", doc, "", 0)
            .await
            .expect("notifier");
    }
    Some((target, db))
}

/// Creates the leaver request and approves it; answers its id.
async fn approve_leaver(s: &Store) -> i64 {
    let admin = Actor::operator("admin", "test");
    let bob = Actor::operator("bob", "test");
    let r = s.create_request(&admin, leaver()).await.expect("create");
    drain(s).await;
    let d = s.request_detail(r.id).await.expect("detail");
    let a = d
        .approvals
        .iter()
        .find(|a| a.status == "pending")
        .unwrap_or_else(|| panic!("pending approval: {:#?} {:#?}", d.request, d.timeline))
        .clone();
    // The plan approvers decide on says when the revocation runs.
    let pins = s.request_pins(r.id).await.expect("pins");
    let shown = pins[0].plan["grace"]["shown"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with("revoke run 2w after the other steps: revoke at "),
        "{shown}"
    );
    s.decide_approval(&bob, a.id, a.version, Decision::Approve, None)
        .await
        .expect("approve");
    drain(s).await;
    r.id
}

/// A job of `kind` due now (a duplicate delivery, or the scheduler's next period).
fn due_now(kind: &str, payload: serde_json::Value, request_id: Option<i64>) -> NewJob {
    NewJob {
        queue: "provision".into(),
        kind: kind.into(),
        payload,
        priority: 0,
        run_at: 0,
        max_attempts: 1,
        unique_key: None,
        request_id,
    }
}

async fn jobs_of(s: &Store, request: i64, kind: &str) -> Vec<JobRow> {
    s.list_jobs(
        &JobFilter {
            request_id: Some(request),
            ..JobFilter::default()
        },
        None,
        500,
    )
    .await
    .expect("jobs")
    .rows
    .into_iter()
    .filter(|j| j.kind == kind)
    .collect()
}

/// The revocation time the timeline recorded.
async fn waiting_step(s: &Store, request: i64) -> serde_json::Value {
    let d = s.request_detail(request).await.expect("detail");
    d.timeline
        .iter()
        .find(|t| t.kind == "step" && t.summary.starts_with("grace period: revoke scheduled for "))
        .unwrap_or_else(|| panic!("no grace step: {:#?}", d.timeline))
        .detail["output"]
        .clone()
}

/// Moves every pending job of `kind` to run now (the store's own queue, by SQL: the test's
/// clock).
async fn make_due(db: &TestDb, kind: &str) {
    let mut c = sqlx::SqliteConnection::connect(&db.url)
        .await
        .expect("store");
    sqlx::query("UPDATE jobs SET run_at = 0 WHERE kind = ? AND state = 'available'")
        .bind(kind)
        .execute(&mut c)
        .await
        .expect("update");
}

async fn revoked_rows(s: &Store) -> usize {
    applied_rows(s, "revoked").await
}

/// `provision.apply` audit rows with this outcome.
async fn applied_rows(s: &Store, outcome: &str) -> usize {
    s.list_audit(
        &AuditFilter {
            action: Some("provision.apply".into()),
            ..AuditFilter::default()
        },
        None,
        50,
    )
    .await
    .expect("audit")
    .rows
    .iter()
    .filter_map(|r| r.after.as_ref())
    .filter(|a| a["written"]["outcome"] == outcome)
    .count()
}

async fn grace(kind: TargetKind) {
    let Some((target, db)) = setup(kind, WARN, true).await else {
        return;
    };
    let s = &db.store;
    let before = s.now();
    let id = approve_leaver(s).await;

    // Disabled at once; the role stays until the grace period ends.
    assert!(target.disabled("gnunez").await);
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);
    let r = s.request(id).await.expect("request");
    assert_eq!(r.state.name(), "provisioning");
    let out = waiting_step(s, id).await;
    let due = out["revoke_at_ms"].as_i64().expect("due");
    assert!(
        due >= before + 14 * DAY_MS && due <= s.now() + 14 * DAY_MS,
        "{out}"
    );
    let revoke = jobs_of(s, id, "request.grace_revoke").await;
    assert_eq!(revoke.len(), 1);
    assert_eq!(revoke[0].run_at, due);
    // The warning is queued three days before, to the requester.
    let warn = jobs_of(s, id, "notify.grace_warning").await;
    assert_eq!(warn.len(), 1, "{warn:#?}");
    assert_eq!(warn[0].run_at, due - 3 * DAY_MS);
    assert_eq!(warn[0].payload["to"], json!(["hr@example.com"]));

    // Nothing is due yet: draining again changes nothing.
    drain(s).await;
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);
    assert_eq!(s.request(id).await.expect("r").state.name(), "provisioning");

    // The provisioning job delivered again (a retry, a rescued lease): nothing is applied
    // twice and the due time stays.
    s.enqueue(&[due_now(
        "request.provision",
        json!({ "request_id": id }),
        Some(id),
    )])
    .await
    .expect("enqueue");
    drain(s).await;
    assert_eq!(s.request(id).await.expect("r").state.name(), "provisioning");
    assert_eq!(waiting_step(s, id).await["revoke_at_ms"], json!(due));
    let pending: Vec<JobRow> = jobs_of(s, id, "request.grace_revoke")
        .await
        .into_iter()
        .filter(|j| j.state.name() == "available")
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].run_at, due);
    assert_eq!(applied_rows(s, "updated").await, 1, "disable applied once");

    // The warning's time comes first: it goes through the notification path to the requester
    // (this notifier's port is closed, so the attempt is recorded as failed).
    make_due(&db, "notify.grace_warning").await;
    drain(s).await;
    let d = s.request_detail(id).await.expect("detail");
    let mail = d
        .timeline
        .iter()
        .find(|t| {
            t.summary
                .starts_with("notify.grace_warning mail to hr@example.com")
        })
        .unwrap_or_else(|| panic!("no warning attempt: {:#?}", d.timeline));
    let subject = mail.detail["output"]["subject"]
        .as_str()
        .unwrap_or_default();
    assert!(
        subject.starts_with("Access of Gina Núñez will be revoked on "),
        "{subject}"
    );
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);

    // The due time comes: the role is revoked and the request completes.
    make_due(&db, "request.grace_revoke").await;
    drain(s).await;
    assert!(target.roles("gnunez").await.is_empty());
    assert!(target.disabled("gnunez").await);
    assert_eq!(s.request(id).await.expect("r").state.name(), "completed");
    assert_eq!(revoked_rows(s).await, 1);

    // The same revocation job once more (a duplicate delivery): nothing is applied again.
    s.enqueue(&[due_now(
        "request.grace_revoke",
        revoke[0].payload.clone(),
        Some(id),
    )])
    .await
    .expect("enqueue");
    drain(s).await;
    assert_eq!(revoked_rows(s).await, 1);
    // The duplicate said why it did nothing.
    let d = s.request_detail(id).await.expect("detail");
    let idle: Vec<&str> = d
        .timeline
        .iter()
        .filter(|t| t.summary.contains("nothing to do"))
        .map(|t| t.summary.as_str())
        .collect();
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert!(idle[0].contains("is completed"), "{idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_on_a_sqlite_target() {
    grace(TargetKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_on_a_postgres_target() {
    grace(TargetKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_on_a_mariadb_target() {
    grace(TargetKind::Mariadb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_notifier_no_warning_is_queued_and_the_timeline_says_so() {
    let Some((target, db)) = setup(TargetKind::Sqlite, WARN, false).await else {
        return;
    };
    let s = &db.store;
    let id = approve_leaver(s).await;
    assert!(target.disabled("gnunez").await);
    assert!(jobs_of(s, id, "notify.grace_warning").await.is_empty());
    let out = waiting_step(s, id).await;
    assert_eq!(out["warning"]["sent"], json!(false), "{out}");
    let d = s.request_detail(id).await.expect("detail");
    assert!(
        d.timeline.iter().any(|t| t
            .summary
            .contains("no warning mail: no notifier configured")),
        "{:#?}",
        d.timeline
    );
    assert!(
        out["warning"]["why"]
            .as_str()
            .unwrap_or_default()
            .contains("no notifier configured"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_warn_before_no_warning_at_all() {
    let Some((_target, db)) = setup(TargetKind::Sqlite, "", true).await else {
        return;
    };
    let s = &db.store;
    let id = approve_leaver(s).await;
    assert!(jobs_of(s, id, "notify.grace_warning").await.is_empty());
    assert!(waiting_step(s, id).await.get("warning").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_request_cancels_the_pending_revocation() {
    let Some((target, db)) = setup(TargetKind::Sqlite, WARN, true).await else {
        return;
    };
    let s = &db.store;
    let id = approve_leaver(s).await;
    let admin = Actor::operator("admin", "test");
    s.cancel_request(&admin, id, Some("rehired".into()))
        .await
        .expect("cancel");
    make_due(&db, "request.grace_revoke").await;
    make_due(&db, "notify.grace_warning").await;
    drain(s).await;
    // Still disabled (re-enabling is a new request), never revoked.
    assert!(target.disabled("gnunez").await);
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);
    assert_eq!(revoked_rows(s).await, 0);
    // The queued revocation and warning were cancelled with the request.
    for kind in ["request.grace_revoke", "notify.grace_warning"] {
        let jobs = jobs_of(s, id, kind).await;
        assert_eq!(jobs.len(), 1, "{kind}");
        assert_eq!(jobs[0].state.name(), "cancelled", "{kind}");
    }
    // A revocation job that runs anyway (delivered twice) does nothing and says why.
    s.enqueue(&[due_now(
        "request.grace_revoke",
        jobs_of(s, id, "request.grace_revoke").await[0]
            .payload
            .clone(),
        None,
    )])
    .await
    .expect("enqueue");
    drain(s).await;
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);
    assert_eq!(revoked_rows(s).await, 0);
    let d = s.request_detail(id).await.expect("detail");
    assert!(
        d.timeline
            .iter()
            .any(|t| t.summary.contains("was cancelled")),
        "{:#?}",
        d.timeline
    );
}

/// gnunez (seen 100 days ago), olds (40 days), fresh (5 days), never (no value).
async fn dormant_target(kind: TargetKind) -> Option<(Target, TestDb)> {
    let (target, db) = setup(kind, WARN, false).await?;
    let now_s = db.store.now() / 1000;
    let day = 86_400;
    target
        .exec(&format!(
            "UPDATE accounts SET last_login = {} WHERE username = 'gnunez'; \
             INSERT INTO accounts (username, full_name, last_login) VALUES ('olds', 'Old S', {}); \
             INSERT INTO accounts (username, full_name, last_login) VALUES ('fresh', 'Fresh', {}); \
             INSERT INTO accounts (username, full_name) VALUES ('never', 'Never');",
            now_s - 100 * day,
            now_s - 40 * day,
            now_s - 5 * day
        ))
        .await;
    let admin = Actor::operator("admin", "test");
    db.store
        .save_config(
            &admin,
            "connector",
            "hr-db",
            &target.connector(Some("last_login")),
            "",
            1,
        )
        .await
        .expect("connector v2");
    Some((target, db))
}

async fn dormant_accounts(kind: TargetKind) {
    let Some((target, db)) = dormant_target(kind).await else {
        return;
    };
    let s = &db.store;
    let doc = s.config_head("hr-db").await.expect("head").expect("doc");
    let report = dormant(&doc, 30, s.now()).await.expect("report");
    let names: Vec<&str> = report.dormant.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, vec!["gnunez", "olds"]);
    assert_eq!(report.dormant[0].idle_days, 100);
    assert_eq!(report.never_seen, vec!["never"]);
    let report = dormant(&doc, 120, s.now()).await.expect("report");
    assert!(report.dormant.is_empty());

    // --revoke: leaver requests that wait for approval; nothing is revoked or disabled.
    let report = dormant(&doc, 30, s.now()).await.expect("report");
    let admin = Actor::operator("admin", "test");
    let made = request_leavers(s, &admin, "leaver", &report)
        .await
        .expect("requests");
    assert_eq!(made.len(), 2);
    assert!(made.iter().all(|m| m["created"] == json!(true)), "{made:?}");
    drain(s).await;
    for m in &made {
        let id = m["request_id"].as_i64().expect("id");
        let r = s.request(id).await.expect("request");
        assert_eq!(r.kind, "leaver");
        assert!(r.state.name().starts_with("awaiting_approval"), "{r:?}");
    }
    assert!(!target.disabled("gnunez").await);
    assert_eq!(target.roles("gnunez").await, vec!["sales"]);
    // Asked again: the open requests are found, none is added.
    let again = request_leavers(s, &admin, "leaver", &report)
        .await
        .expect("requests");
    assert!(
        again.iter().all(|m| m["created"] == json!(false)),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_accounts_on_a_sqlite_target() {
    dormant_accounts(TargetKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_accounts_on_a_postgres_target() {
    dormant_accounts(TargetKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_accounts_on_a_mariadb_target() {
    dormant_accounts(TargetKind::Mariadb).await;
}

fn refused(label: &str, text: &str) -> Vec<String> {
    match documents::check(label, text) {
        Ok(_) => panic!("{label} passed the check"),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn config_check_refuses_bad_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = Target::at(
        TargetKind::Sqlite,
        format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
    );
    // An injected identifier as the last-seen column.
    let bad = target.connector(Some("last_login; DROP TABLE accounts"));
    let errors = refused("hr-db.toml", &bad);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("hr-db.toml:") && e.contains("sql.accounts.last_seen")),
        "{errors:?}"
    );
    assert!(documents::check("hr-db.toml", &target.connector(Some("last_login"))).is_ok());

    // A grace period that is not a duration, a warning not shorter than it.
    let errors = refused(
        "leaver.toml",
        &leaver_workflow(WARN).replace("grace = \"14d\"", "grace = \"14 days\""),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("leaver.toml:") && e.contains("leaver.grace")),
        "{errors:?}"
    );
    let errors = refused("leaver.toml", &leaver_workflow("warn_before = \"14d\""));
    assert!(
        errors.iter().any(|e| e.contains("leaver.warn_before")
            && e.contains("must be shorter than the grace period")),
        "{errors:?}"
    );
    // A grace period on a workflow that is not for leavers only.
    let errors = refused(
        "leaver.toml",
        &leaver_workflow("").replace("kinds = [\"leaver\"]", "kinds = [\"joiner\", \"leaver\"]"),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("leaver.grace") && e.contains("leaver-only")),
        "{errors:?}"
    );
    assert!(documents::check("leaver.toml", &leaver_workflow(WARN)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_scan_requests_leavers_for_approval() {
    let Some((target, db)) = dormant_target(TargetKind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    let admin = Actor::operator("admin", "test");
    let body = format!(
        "{}revoke_after_days = 30\nrevoke_workflow = \"leaver\"\n",
        target.connector(Some("last_login"))
    );
    s.save_config(&admin, "connector", "hr-db", &body, "", 2)
        .await
        .expect("connector v3");
    let scan = || due_now("dormant.scan", json!({}), None);
    s.enqueue(&[scan()]).await.expect("enqueue");
    drain(s).await;
    let leavers = |rows: Vec<gatehouse::store::api::RequestRow>| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = rows
            .into_iter()
            .map(|r| (r.username.unwrap_or_default(), r.state.name().to_string()))
            .collect();
        out.sort();
        out
    };
    let page = s
        .list_requests(&Default::default(), None, 100)
        .await
        .expect("list");
    let found = leavers(page.rows);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "gnunez");
    assert_eq!(found[1].0, "olds");
    assert!(
        found
            .iter()
            .all(|(_, st)| st.starts_with("awaiting_approval")),
        "{found:?}"
    );
    assert!(!target.disabled("gnunez").await);
    // The next hour's scan adds nothing while those requests are open.
    s.enqueue(&[scan()]).await.expect("enqueue");
    drain(s).await;
    let page = s
        .list_requests(&Default::default(), None, 100)
        .await
        .expect("list");
    assert_eq!(page.rows.len(), 2);

    // Half a schedule is refused at config check.
    let half = format!(
        "{}revoke_after_days = 30\n",
        target.connector(Some("last_login"))
    );
    let errors = refused("hr-db.toml", &half);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("sql.accounts.revoke_after_days")
                && e.contains("needs sql.accounts.revoke_workflow")),
        "{errors:?}"
    );
}
