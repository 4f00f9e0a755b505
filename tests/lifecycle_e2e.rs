//! Joiner, mover and leaver end to end through the engine's jobs, with roles as bundles of
//! entitlements (inheritance included), on SQLite, PostgreSQL and MariaDB targets: the joiner
//! gets the role's bundle, the mover the diff of the old and new bundles, the leaver is
//! disabled and loses the bundle. Every change is pinned, approved and audited. Servers from
//! `tests/servers.sh`; a missing one fails under `CI` and is SKIPPED otherwise.

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
use gatehouse::connectors::reconcile::{Known, reconcile};
use gatehouse::store::Store;
use gatehouse::store::api::{Actor, AuditFilter, CommandApi, Decision, NewRequest, ReadApi};
use gatehouse::store::links::ReconcileDecision;
use serde_json::json;
use sql_target::{Target, TargetKind};
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

const TABLES: &str = "CREATE TABLE accounts (username VARCHAR(64) PRIMARY KEY, full_name TEXT, \
    email TEXT, disabled BOOLEAN NOT NULL DEFAULT false); \
    CREATE TABLE account_roles (username VARCHAR(64) NOT NULL, role VARCHAR(64) NOT NULL, \
    PRIMARY KEY (username, role));";

impl Target {
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

/// A store with the connector, the roles and the three workflows.
async fn setup(kind: TargetKind, store: Kind) -> Option<(Target, store_db::TestDb)> {
    let target = Target::new(kind, "life", TABLES).await?;
    let db = fresh(store).await?;
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
    Some((target, db))
}

async fn lifecycle(kind: TargetKind) {
    let Some((target, db)) = setup(kind, Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;

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

async fn report(s: &Store) -> Vec<(String, String, String)> {
    let doc = s
        .config_head("hr-db")
        .await
        .expect("head")
        .expect("connector");
    let known: Vec<Known> = s
        .account_links("hr-db")
        .await
        .expect("links")
        .into_iter()
        .map(|l| Known {
            account: l.account,
            status: l.status,
            expected: l.expected,
        })
        .collect();
    reconcile(&doc, &known)
        .await
        .expect("reconcile")
        .findings
        .into_iter()
        .map(|f| {
            (
                f.account,
                f.status.to_string(),
                f.detail.unwrap_or_default(),
            )
        })
        .collect()
}

async fn state_of(s: &Store, account: &str) -> serde_json::Value {
    let doc = s
        .config_head("hr-db")
        .await
        .expect("head")
        .expect("connector");
    let c = gatehouse::connectors::AnyConnector::from_doc(&doc).expect("connector");
    serde_json::to_value(c.read(account).await.expect("read")).expect("json")
}

async fn audited(s: &Store, action: &str) -> usize {
    s.list_audit(
        &AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        },
        None,
        50,
    )
    .await
    .expect("audit")
    .rows
    .len()
}

/// Accounts and grants created and changed out of band are reported orphan and drifted;
/// adopt links them; revoke removes them (a worker does); ignore silences one; every decision
/// is authorized and audited, refusals too.
async fn reconciliation(kind: TargetKind, store: Kind) {
    let Some((target, db)) = setup(kind, store).await else {
        return;
    };
    let s = &db.store;
    run_request(s, request("joiner", "joiner", json!({"role": "developer"}))).await;
    assert_eq!(
        report(s).await,
        vec![("gnunez".to_string(), "linked".to_string(), String::new())]
    );

    target
        .exec(
            "INSERT INTO accounts (username, full_name, email) VALUES ('mallory', 'Mal', 'm@x'); \
             INSERT INTO accounts (username, full_name, email) VALUES ('tmpuser', 'Tmp', 't@x'); \
             INSERT INTO account_roles (username, role) VALUES ('mallory', 'developer'); \
             INSERT INTO account_roles (username, role) VALUES ('gnunez', 'admin'); \
             UPDATE accounts SET full_name = 'Changed' WHERE username = 'gnunez'",
        )
        .await;
    let found = report(s).await;
    let verdicts: Vec<(&str, &str)> = found
        .iter()
        .map(|(a, st, _)| (a.as_str(), st.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("gnunez", "drifted"),
            ("mallory", "orphan"),
            ("tmpuser", "orphan")
        ]
    );
    assert!(
        found[0]
            .2
            .contains("full_name: expected \"Gina Núñez\", found \"Changed\""),
        "{}",
        found[0].2
    );
    assert!(found[0].2.contains("admin"), "{}", found[0].2);

    // An approver may not decide: refused, nothing changes, the refusal is audited.
    let bob = Actor::operator("bob", "test");
    let admin = Actor::operator("admin", "test");
    let mallory = state_of(s, "mallory").await;
    let err = s
        .reconcile_decide(
            &bob,
            "hr-db",
            "mallory",
            ReconcileDecision::Adopt,
            &mallory,
            "mine",
        )
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("may not adopt, ignore or revoke"),
        "{err}"
    );
    assert_eq!(audited(s, "reconcile.adopt.refused").await, 1);
    assert!(
        s.reconcile_decide(
            &admin,
            "hr-db",
            "mallory",
            ReconcileDecision::Adopt,
            &mallory,
            " "
        )
        .await
        .is_err(),
        "a justification is required"
    );

    s.reconcile_decide(
        &admin,
        "hr-db",
        "mallory",
        ReconcileDecision::Adopt,
        &mallory,
        "contractor account, ticket 42",
    )
    .await
    .expect("adopt");
    let tmp = state_of(s, "tmpuser").await;
    s.reconcile_decide(
        &admin,
        "hr-db",
        "tmpuser",
        ReconcileDecision::Ignore,
        &tmp,
        "test account of the vendor",
    )
    .await
    .expect("ignore");
    let gina = state_of(s, "gnunez").await;
    s.reconcile_decide(
        &admin,
        "hr-db",
        "gnunez",
        ReconcileDecision::Revoke,
        &gina,
        "left in a hurry, access changed by hand",
    )
    .await
    .expect("revoke");
    assert_eq!(
        target.roles("gnunez").await.len(),
        3,
        "the command only asks; a worker acts"
    );
    drain(s).await;
    assert!(target.roles("gnunez").await.is_empty());
    assert!(
        target.disabled("gnunez").await.is_empty(),
        "account removed"
    );
    assert_eq!(audited(s, "reconcile.revoked").await, 1);
    // The audit filter matches by substring: `reconcile.adopt` also finds the refusal,
    // `reconcile.revoke` the engine's `reconcile.revoked`.
    for (action, rows) in [
        ("reconcile.adopt", 2),
        ("reconcile.ignore", 1),
        ("reconcile.revoke", 2),
    ] {
        assert_eq!(audited(s, action).await, rows, "{action}");
    }
    let verdicts: Vec<(String, String)> = report(s)
        .await
        .into_iter()
        .map(|(a, st, _)| (a, st))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("tmpuser".to_string(), "ignored".to_string()),
            ("mallory".to_string(), "linked".to_string())
        ]
    );
    // Drift on an adopted account is reported again.
    target
        .exec("DELETE FROM account_roles WHERE username = 'mallory'")
        .await;
    assert_eq!(report(s).await[0].1, "drifted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_on_a_sqlite_target_with_a_sqlite_store() {
    reconciliation(TargetKind::Sqlite, Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_on_a_postgres_target_with_a_postgres_store() {
    reconciliation(TargetKind::Postgres, Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_on_a_mariadb_target_with_a_sqlite_store() {
    reconciliation(TargetKind::Mariadb, Kind::Sqlite).await;
}
