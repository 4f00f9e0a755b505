//! A CSV file's requests processed in batches (`request.process_batch`) on SQLite and
//! PostgreSQL: the requests that pass reach their first stage with one pin and one open stage
//! each, a request that fails validation is handed to its own job and ends in `needs_triage`
//! with the reason, two people with the same name get different usernames, a batch job run
//! again changes nothing, and the audit chain still verifies.

#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::{Duration, Instant};

use gatehouse::engine::worker::{WorkerConfig, run_worker};
use gatehouse::intake::csv::{CsvOptions, parse_csv};
use gatehouse::store::Store;
use gatehouse::store::api::{AuditVerdict, CommandApi, NewJob, NewRequest, ReadApi};
use gatehouse::store::import::ImportRow;
use store_db::{Kind, actor, fresh};

const WORKFLOW: &str = r#"kind = "workflow"
name = "staff"
team = "it"

[intake]
sources = ["csv"]
kinds = ["joiner"]

[validation]
required_fields = ["subject_email"]
email_domains = ["example.com"]

[[stages]]
name = "manager"
policy = "any"
people = ["ann", "bob"]
"#;

const FILE: &str = "firstname,lastname,email\n\
    Ada,Lovelace,ada@example.com\n\
    Ada,Lovelace,ada.l@example.com\n\
    Alan,Turing,alan@example.com\n\
    Grace,Hopper,grace@elsewhere.org\n\
    Edsger,Dijkstra,edsger@example.com\n";

fn rows() -> Vec<ImportRow> {
    let options = CsvOptions {
        kind: "joiner".into(),
        requester: "admin".into(),
        map: Vec::new(),
    };
    parse_csv(FILE.as_bytes(), &options)
        .expect("a good file")
        .into_iter()
        .map(|r| ImportRow {
            line: r.line,
            key: r.key,
            request: NewRequest {
                workflow: "staff".into(),
                kind: r.draft.kind,
                subject_name: r.draft.subject_name,
                subject_email: r.draft.subject_email,
                username: r.draft.username,
                requester: r.draft.requester,
                source: "csv:people.csv".into(),
                payload: serde_json::Value::Object(r.draft.fields),
            },
        })
        .collect()
}

/// Runs a worker until no job of the default queue is left (or 60 s pass).
async fn work(store: &Store) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_worker(
        store.clone(),
        gatehouse::engine::flow::registry(),
        WorkerConfig::new(4),
        stop_rx,
    ));
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = store.queue_stats().await.expect("queue stats");
        let idle = stats
            .iter()
            .filter(|q| q.queue == "default")
            .all(|q| q.ready == 0 && q.running == 0 && q.retrying == 0 && q.scheduled == 0);
        if idle || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = stop_tx.send(true);
    worker.await.expect("worker task");
}

async fn states(store: &Store, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(store.request(*id).await.expect("request").state.to_string());
    }
    out
}

async fn batches_settle_what_they_can(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    s.save_config(&actor("admin"), "workflow", "staff", WORKFLOW, "", 0)
        .await
        .expect("workflow");
    let imported = s
        .import_requests(&actor("admin"), "staff", "people.csv", rows())
        .await
        .expect("import");
    let ids: Vec<i64> = imported.created.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 5);
    work(s).await;

    let got = states(s, &ids).await;
    assert_eq!(
        got,
        [
            "awaiting_approval(1)",
            "awaiting_approval(1)",
            "awaiting_approval(1)",
            "needs_triage",
            "awaiting_approval(1)"
        ]
        .map(String::from),
        "the request outside example.com goes to triage; the others to their first stage"
    );
    let grace = s.request(ids[3]).await.expect("request");
    assert!(
        grace
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("elsewhere.org")),
        "the triage reason names the domain: {:?}",
        grace.last_error
    );
    let first = s.request(ids[0]).await.expect("request");
    let second = s.request(ids[1]).await.expect("request");
    assert!(first.username.is_some() && second.username.is_some());
    assert_ne!(
        first.username, second.username,
        "two people with one name get two usernames"
    );
    for id in [ids[0], ids[1], ids[2], ids[4]] {
        assert_eq!(s.request_pins(id).await.expect("pins").len(), 1, "one pin");
        let detail = s.request_detail(id).await.expect("detail");
        assert_eq!(detail.approvals.len(), 1, "one stage open");
        assert_eq!(detail.approvals[0].approvers, vec!["ann", "bob"]);
    }

    // The same batch job again (a retry after its completion was lost): nothing changes.
    s.enqueue(&[NewJob {
        queue: "default".into(),
        kind: "request.process_batch".into(),
        payload: serde_json::json!({ "request_ids": ids }),
        priority: 0,
        run_at: s.now(),
        max_attempts: 3,
        unique_key: None,
        request_id: None,
    }])
    .await
    .expect("enqueue again");
    work(s).await;
    assert_eq!(states(s, &ids).await, got, "a second run changes nothing");
    for id in [ids[0], ids[1], ids[2], ids[4]] {
        assert_eq!(s.request_pins(id).await.expect("pins").len(), 1);
        let detail = s.request_detail(id).await.expect("detail");
        assert_eq!(detail.approvals.len(), 1);
    }
    assert_eq!(s.overview().await.expect("overview").pending_approvals, 4);
    match s.verify_audit().await.expect("verify") {
        AuditVerdict::Intact { rows } => assert!(rows > 20, "{rows} audit rows"),
        other => panic!("the audit chain does not verify: {other:?}"),
    }
}

#[tokio::test]
async fn csv_requests_are_processed_in_batches_on_sqlite() {
    batches_settle_what_they_can(Kind::Sqlite).await;
}

#[tokio::test]
async fn csv_requests_are_processed_in_batches_on_postgres() {
    batches_settle_what_they_can(Kind::Postgres).await;
}
