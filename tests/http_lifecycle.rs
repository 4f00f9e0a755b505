//! Joiner and leaver end to end through the engine's jobs on an HTTP connector (the Keycloak
//! recipe against the loopback realm of recorded shapes): the pinned and approved plan creates
//! the account and grants the role's bundle as Keycloak groups; a 500 from the service fails
//! the job as transient and the retry completes it; the leaver disables and revokes.

mod http_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::connectors::AnyConnector;
use gatehouse::engine::flow::registry;
use gatehouse::engine::handler::{JobContext, JobError};
use gatehouse::store::Store;
use gatehouse::store::api::{Actor, CommandApi, Decision, FailOutcome, NewRequest, ReadApi};
use http_support::{Reply, keycloak, set};
use serde_json::json;
use store_db::{Kind, fresh};

const ROLES: [(&str, &str); 2] = [
    (
        "employee",
        "kind = \"role\"\nname = \"employee\"\nentitlements = [\"keycloak:employees\"]\n",
    ),
    (
        "developer",
        "kind = \"role\"\nname = \"developer\"\nentitlements = [\"keycloak:developers\"]\ninherits = [\"employee\"]\n",
    ),
];

fn workflow(kind: &str, steps: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "{kind}"
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

const JOINER: &str = r#"
[[steps]]
name = "account"
connector = "keycloak"
action = "create_account"
params = { full_name = "{subject_name}", email = "{subject_email}" }

[[steps]]
name = "role"
connector = "keycloak"
action = "grant_role"
params = { role = "{role}" }
"#;

const LEAVER: &str = r#"
[[steps]]
name = "disable"
connector = "keycloak"
action = "disable_account"

[[steps]]
name = "revoke"
connector = "keycloak"
action = "revoke_role"
params = { role = "{role}" }
"#;

/// Run every due job; a transient failure is retried at once, a permanent one is dead.
/// Returns the number of transient failures seen.
async fn drain(store: &Store) -> usize {
    let registry = registry();
    let queues: Vec<String> = ["default", "provision", "notify"]
        .iter()
        .map(|q| q.to_string())
        .collect();
    let mut transient = 0;
    for _ in 0..100 {
        let jobs = store
            .claim("test-worker", &queues, 10, Duration::from_secs(60))
            .await
            .expect("claim");
        if jobs.is_empty() {
            return transient;
        }
        for job in jobs {
            let handler = registry.get(&job.kind).expect("handler");
            let id = job.id;
            let ctx = JobContext {
                store: store.clone(),
                job,
                worker_id: "test-worker".into(),
            };
            let (e, outcome) = match handler.run(ctx).await {
                Ok(()) => {
                    store
                        .complete_jobs("test-worker", &[id])
                        .await
                        .expect("complete");
                    continue;
                }
                Err(JobError::Transient(e)) => {
                    transient += 1;
                    (e, FailOutcome::RetryAt(0))
                }
                Err(JobError::Permanent(e)) => (e, FailOutcome::Dead),
            };
            store
                .fail_job("test-worker", id, &e, outcome)
                .await
                .expect("fail");
        }
    }
    panic!("jobs kept coming");
}

async fn run_request(store: &Store, request: NewRequest, before: impl FnOnce()) -> usize {
    let admin = Actor::operator("admin", "test");
    let bob = Actor::operator("bob", "test");
    let r = store.create_request(&admin, request).await.expect("create");
    drain(store).await;
    let d = store.request_detail(r.id).await.expect("detail");
    let a = d
        .approvals
        .iter()
        .find(|a| a.status == "pending")
        .unwrap_or_else(|| panic!("pending approval: {:#?}", d.timeline))
        .clone();
    store
        .decide_approval(&bob, a.id, a.version, Decision::Approve, None)
        .await
        .expect("approve");
    before();
    let transient = drain(store).await;
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
    transient
}

fn request(kind: &str, payload: serde_json::Value) -> NewRequest {
    NewRequest {
        workflow: kind.into(),
        kind: kind.into(),
        subject_name: "Gina \"G\" Núñez".into(),
        subject_email: Some("gina@example.com".into()),
        username: Some("gnunez".into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_and_leaver_on_the_keycloak_recipe() {
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    let (base, realm) = keycloak::start().await;
    let secret = http_support::secret_file(keycloak::SECRET);
    let body = keycloak::document(&base, &secret.path().display().to_string());
    let admin = Actor::operator("admin", "test");
    s.save_config(&admin, "connector", "keycloak", &body, "", 0)
        .await
        .expect("connector");
    for (name, role) in ROLES {
        s.save_config(&admin, "role", name, role, "", 0)
            .await
            .expect("role");
    }
    for (kind, steps) in [("joiner", JOINER), ("leaver", LEAVER)] {
        s.save_config(&admin, "workflow", kind, &workflow(kind, steps), "", 0)
            .await
            .expect("workflow");
    }
    let c = AnyConnector::from_doc(&http_support::doc("keycloak", body)).expect("connector");

    // Joiner; the service answers 500 once after approval: the job is retried and completes.
    let transient = run_request(s, request("joiner", json!({ "role": "developer" })), || {
        realm
            .fail_next
            .lock()
            .unwrap()
            .push_back(Reply::json(500, json!({ "errorMessage": "unknown_error" })));
    })
    .await;
    assert_eq!(transient, 1, "the 500 failed the job once, as transient");
    let account = c.read("gnunez").await.expect("read").expect("created");
    assert_eq!(account.attributes["firstName"], "Gina \"G\" Núñez");
    assert_eq!(account.attributes["email"], "gina@example.com");
    assert_eq!(account.disabled, Some(false));
    assert_eq!(account.grants, set(&["developers", "employees"]));

    // Leaver: disabled, the bundle revoked.
    let transient = run_request(s, request("leaver", json!({ "role": "developer" })), || {}).await;
    assert_eq!(transient, 0);
    let account = c.read("gnunez").await.expect("read").expect("still there");
    assert_eq!((account.disabled, account.grants), (Some(true), set(&[])));
    assert!(realm.problems().is_empty(), "{:?}", realm.problems());
}
