//! Helpers for the approval-chain tests: a static directory of the test operators, workflows
//! with directory-resolved stages and timers, three real worker loops, and waiting for the
//! queue to go idle.
#![allow(dead_code)]

use std::time::Duration;

use gatehouse::engine::flow::registry;
use gatehouse::engine::worker::{WorkerConfig, run_worker};
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, ApprovalRow, CommandApi, JobFilter, JobState, NewJob, NewRequest, ReadApi, RequestDetail,
};
use serde_json::json;
use tokio::sync::watch;

/// The directory: gina and ivan (joiners) are managed by ann, ann by bob; security holds cid and
/// dan (dan through a second listing), owned by eve; `empty` has nobody.
pub const DIRECTORY: &str = r#"kind = "directory"
name = "people"
backend = "static"

[[people]]
login = "bob"
name = "Bob Brenner"
email = "bob@example.com"

[[people]]
login = "ann"
name = "Ann Albers"
email = "ann@example.com"
manager = "bob"

[[people]]
login = "cid"
name = "Cid Castro"
email = "cid@example.com"
groups = ["security"]

[[people]]
login = "dan"
name = "Dan Dorn"
email = "dan@example.com"
groups = ["security"]

[[people]]
login = "eve"
name = "Eve Ek"
email = "eve@example.com"

[[people]]
login = "gina"
name = "Gina Núñez"
email = "gina@example.com"
manager = "ann"

[[people]]
login = "ivan"
name = "Ivan Ilić"
email = "ivan@example.com"
manager = "ann"

[[people]]
login = "hugo"
name = "Hugo Holm"
email = "hugo@example.com"

[[groups]]
name = "security"
owners = ["eve"]

[[groups]]
name = "empty"
"#;

/// A two-stage workflow: the line manager (remind 1h, escalate 4h to the security group's
/// owners, expire 1d), then `quorum(2)` of the security group and the manager's manager.
pub fn workflow(stage2_sources: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "chain"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[[stages]]
name = "manager"
policy = "any"
approvers = ["line_manager"]
remind_after = "1h"
escalate_after = "4h"
escalate_to = "owners:security"
expire_after = "1d"

[[stages]]
name = "security"
policy = "quorum(2)"
approvers = [{stage2_sources}]
"#
    )
}

/// Save the directory and the workflow as `admin`.
pub async fn configure(store: &Store, workflow_text: &str) {
    let admin = Actor::operator("admin", "test");
    store
        .save_config(&admin, "directory", "people", DIRECTORY, "", 0)
        .await
        .expect("directory");
    store
        .save_config(&admin, "workflow", "chain", workflow_text, "", 0)
        .await
        .expect("workflow");
}

/// A joiner request for `username`, entered by admin for hr@example.com.
pub fn joiner(username: &str) -> NewRequest {
    NewRequest {
        workflow: "chain".into(),
        kind: "joiner".into(),
        subject_name: "Gina Núñez".into(),
        subject_email: Some(format!("{username}@example.com")),
        username: Some(username.into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"team": "sales", "manager": "mallory"}),
    }
}

/// Three worker loops on the store; stop them with the returned sender.
pub fn three_workers(store: &Store) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, rx) = watch::channel(false);
    let handles = (0..3)
        .map(|_| {
            let mut config = WorkerConfig::new(2);
            config.poll = Duration::from_millis(50);
            let (store, rx) = (store.clone(), rx.clone());
            tokio::spawn(async move {
                run_worker(store, registry(), config, rx).await;
            })
        })
        .collect();
    (stop, handles)
}

/// Wait until no job is available, running or retrying (at most 20 s).
pub async fn idle(store: &Store) {
    for _ in 0..400 {
        let mut busy = false;
        for state in [JobState::Available, JobState::Running, JobState::Retrying] {
            let filter = JobFilter {
                state: Some(state),
                ..JobFilter::default()
            };
            let page = store.list_jobs(&filter, None, 10).await.expect("jobs");
            busy |= !page.rows.is_empty();
        }
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("jobs did not finish");
}

/// Enqueue the timer job three times (as three hosts would) at the time `now`, and wait.
pub async fn tick(store: &Store, now: i64, label: &str) {
    let jobs: Vec<NewJob> = (0..3)
        .map(|i| NewJob {
            queue: "maintenance".into(),
            kind: "approvals.timers".into(),
            payload: json!({"now": now}),
            priority: 0,
            run_at: 0,
            max_attempts: 3,
            unique_key: Some(format!("test-timers:{label}:{i}")),
            request_id: None,
        })
        .collect();
    store.enqueue(&jobs).await.expect("enqueue timers");
    idle(store).await;
}

/// The request's detail.
pub async fn detail(store: &Store, id: i64) -> RequestDetail {
    store.request_detail(id).await.expect("detail")
}

/// The pending approval of a request.
pub fn pending(d: &RequestDetail) -> ApprovalRow {
    d.approvals
        .iter()
        .find(|a| a.status == "pending")
        .cloned()
        .unwrap_or_else(|| panic!("no pending approval: {:#?}", d.approvals))
}

/// Names of the request's timeline steps starting with `prefix`.
pub fn steps(d: &RequestDetail, prefix: &str) -> Vec<String> {
    d.timeline
        .iter()
        .filter(|t| t.kind == "step")
        .filter_map(|t| t.detail["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}
