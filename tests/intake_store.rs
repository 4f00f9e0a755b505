//! Intake in the store, on SQLite and PostgreSQL: a batch is recorded once (by UID and by
//! Message-ID), each verdict does what it says, a UIDVALIDITY change re-reads without
//! duplicates, the reading lease admits one reader (also when many race for it) and fences
//! a batch from a reader that lost it.

mod intake_support;
#[path = "common/store_db.rs"]
#[allow(dead_code)]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::domain::intake::{RequestDraft, Verdict};
use gatehouse::store::api::{AuditVerdict, CommandApi, ReadApi, RequestFilter};
use gatehouse::store::error::StoreError;
use gatehouse::store::intake::{IncomingMessage, IntakeResult, LeaseRef};
use gatehouse::store::{OpenOptions, Store};
use intake_support::{classified, draft};
use store_db::{Kind, TestDb, actor, fresh};

const WORKFLOW: &str = "kind = \"workflow\"\nname = \"joiner\"\n\n[intake]\nsources = [\"email\"]\nkinds = [\"joiner\"]\n";

async fn with_workflow(store: &Store) {
    store
        .save_config(
            &actor("admin"),
            "workflow",
            "joiner",
            WORKFLOW,
            "initial",
            0,
        )
        .await
        .expect("save workflow");
}

fn message(uid: u32, message_id: Option<&str>, verdict: Verdict) -> IncomingMessage {
    IncomingMessage {
        uid,
        classified: classified(message_id, verdict),
        workflow: "joiner".into(),
        source: "imap:hr".into(),
    }
}

fn request(uid: u32, message_id: &str, name: &str) -> IncomingMessage {
    message(
        uid,
        Some(message_id),
        Verdict::Request { draft: draft(name) },
    )
}

const OWNER: &str = "reader-a";

fn lease(owner: &str) -> LeaseRef<'_> {
    LeaseRef {
        mailbox: "hr",
        owner,
    }
}

async fn request_count(store: &Store) -> usize {
    store
        .list_requests(&RequestFilter::default(), None, 1000)
        .await
        .expect("list")
        .rows
        .len()
}

async fn every_verdict_is_recorded_once(db: &TestDb) {
    let store = &db.store;
    with_workflow(store).await;
    let sys = actor("system:intake");
    assert!(
        store
            .acquire_mailbox_lease("hr", OWNER, Duration::from_secs(30))
            .await
            .expect("lease")
    );
    let batch = vec![
        request(1, "a@x", "Ada Lovelace"),
        message(
            2,
            Some("b@x"),
            Verdict::Triage {
                draft: RequestDraft {
                    kind: "joiner".into(),
                    requester: "boss@example.com".into(),
                    ..RequestDraft::default()
                },
                reason: "no name found".into(),
            },
        ),
        message(
            3,
            Some("c@x"),
            Verdict::Ignored {
                reason: "auto-reply".into(),
            },
        ),
        message(
            4,
            Some("d@x"),
            Verdict::Quarantined {
                reason: "instructions to the model".into(),
            },
        ),
        request(5, "a@x", "Ada Again"),
        request(6, "f@x", ""),
    ];
    let out = store
        .record_intake(&sys, lease(OWNER), 7, batch.clone())
        .await
        .expect("record");
    let results: Vec<IntakeResult> = out.iter().map(|o| o.result).collect();
    assert_eq!(
        results,
        [
            IntakeResult::Request,
            IntakeResult::Triage,
            IntakeResult::Ignored,
            IntakeResult::Quarantined,
            IntakeResult::Duplicate,
            // A request the store refuses (no name) goes to triage with the refusal.
            IntakeResult::Triage,
        ]
    );
    assert_eq!(request_count(store).await, 3);
    let first = out[0].request_id.expect("request id");
    let detail = store.request_detail(first).await.expect("detail");
    assert_eq!(detail.request.source, "imap:hr");
    assert_eq!(detail.request.payload["team"], "ops");
    let intake = detail
        .intake
        .expect("the request's message is in its detail");
    assert_eq!(intake.message_id.as_deref(), Some("a@x"));
    assert_eq!(intake.evidence.rules[0].rule, "test_subject");
    let triaged = store
        .request(out[1].request_id.expect("triage request"))
        .await
        .expect("request");
    assert_eq!(triaged.state.to_string(), "needs_triage");
    assert_eq!(triaged.last_error.as_deref(), Some("no name found"));
    let refused = store
        .request(out[5].request_id.expect("refused request"))
        .await
        .expect("request");
    assert!(
        refused
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused") && e.contains("subject_name")),
        "{refused:?}"
    );
    let held = store.held_messages(None, 10).await.expect("held").rows;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].verdict, "quarantined");
    assert_eq!(held[0].reason.as_deref(), Some("instructions to the model"));
    assert!(
        store
            .held_messages(Some(held[0].id), 10)
            .await
            .expect("held")
            .rows
            .is_empty()
    );

    // The same batch again: nothing new.
    let again = store
        .record_intake(&sys, lease(OWNER), 7, batch)
        .await
        .expect("record again");
    assert!(
        again
            .iter()
            .all(|o| o.result == IntakeResult::AlreadyRecorded)
    );
    assert_eq!(request_count(store).await, 3);
    // Each request has its `request.create` audit row, chained like any other, and a job.
    let creates = db
        .raw_i64("SELECT COUNT(*) FROM audit WHERE action = 'request.create' AND actor = 'system:intake'")
        .await;
    assert_eq!(creates, 3);
    let jobs = db
        .raw_i64("SELECT COUNT(*) FROM jobs WHERE kind = 'request.process'")
        .await;
    assert_eq!(
        jobs, 1,
        "only the request that is not in triage is processed"
    );
    assert!(matches!(
        store.verify_audit().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
    let state = store
        .mailbox_state("hr")
        .await
        .expect("state")
        .expect("row");
    assert_eq!(
        (state.uidvalidity, state.last_uid, state.processed),
        (Some(7), 6, 6)
    );
    let counts = store.intake_counts("hr").await.expect("counts");
    assert_eq!(
        counts,
        [
            ("duplicate".to_string(), 1),
            ("ignored".to_string(), 1),
            ("quarantined".to_string(), 1),
            ("request".to_string(), 1),
            ("triage".to_string(), 2),
        ]
    );
}

async fn uidvalidity_change_rereads_without_duplicates(db: &TestDb) {
    let store = &db.store;
    with_workflow(store).await;
    let sys = actor("system:intake");
    assert!(
        store
            .acquire_mailbox_lease("hr", OWNER, Duration::from_secs(30))
            .await
            .expect("lease")
    );
    let batch: Vec<IncomingMessage> = (1..=3)
        .map(|i| request(i, &format!("m{i}@x"), &format!("Person {i}")))
        .collect();
    store
        .record_intake(&sys, lease(OWNER), 100, batch)
        .await
        .expect("first validity");
    // The folder was recreated: new UIDVALIDITY, the same messages under new UIDs.
    let batch: Vec<IncomingMessage> = (1..=3)
        .map(|i| request(i + 10, &format!("m{i}@x"), &format!("Person {i}")))
        .collect();
    let out = store
        .record_intake(&sys, lease(OWNER), 200, batch)
        .await
        .expect("second validity");
    assert!(
        out.iter().all(|o| o.result == IntakeResult::Duplicate),
        "{out:?}"
    );
    assert_eq!(request_count(store).await, 3);
    let state = store
        .mailbox_state("hr")
        .await
        .expect("state")
        .expect("row");
    assert_eq!((state.uidvalidity, state.last_uid), (Some(200), 13));
    // A lower UID under the new validity than the old position: the position is the new one.
    let out = store
        .record_intake(
            &sys,
            lease(OWNER),
            300,
            vec![request(2, "n@x", "New Person")],
        )
        .await
        .expect("third validity");
    assert_eq!(out[0].result, IntakeResult::Request);
    let state = store
        .mailbox_state("hr")
        .await
        .expect("state")
        .expect("row");
    assert_eq!((state.uidvalidity, state.last_uid), (Some(300), 2));
}

async fn the_lease_admits_one_reader_and_fences_batches(db: &TestDb) {
    let store = &db.store;
    with_workflow(store).await;
    let sys = actor("system:intake");
    let ttl = Duration::from_secs(30);
    assert!(
        store
            .acquire_mailbox_lease("hr", "a", ttl)
            .await
            .expect("a")
    );
    assert!(
        store
            .acquire_mailbox_lease("hr", "a", ttl)
            .await
            .expect("a again")
    );
    assert!(
        !store
            .acquire_mailbox_lease("hr", "b", ttl)
            .await
            .expect("b")
    );
    let refused = store
        .record_intake(&sys, lease("b"), 1, vec![request(1, "x@x", "X Y")])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict { what, .. }) if what.contains("held by a")),
        "{refused:?}"
    );
    assert_eq!(request_count(store).await, 0);
    assert!(
        store
            .renew_mailbox_lease("hr", "a", ttl)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_mailbox_lease("hr", "b", ttl)
            .await
            .expect("renew b")
    );
    assert!(
        store
            .release_mailbox_lease("hr", "a")
            .await
            .expect("release")
    );
    assert!(
        store
            .acquire_mailbox_lease("hr", "b", ttl)
            .await
            .expect("b after release")
    );
    // An expired lease is taken over; the old holder can neither renew nor record.
    assert!(
        store
            .acquire_mailbox_lease("hr", "b", Duration::from_millis(1))
            .await
            .expect("short")
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .acquire_mailbox_lease("hr", "c", ttl)
            .await
            .expect("c takes over")
    );
    assert!(
        !store
            .renew_mailbox_lease("hr", "b", ttl)
            .await
            .expect("b renew")
    );
    assert!(
        store
            .record_intake(&sys, lease("b"), 1, vec![request(1, "x@x", "X Y")])
            .await
            .is_err()
    );
    // Status is written by the holder only.
    assert!(
        store
            .set_mailbox_status("hr", "c", true, Some(5), Some("TLS: bad certificate"))
            .await
            .expect("status")
    );
    assert!(
        !store
            .set_mailbox_status("hr", "b", false, None, None)
            .await
            .expect("status b")
    );
    let states = store.mailbox_states().await.expect("states");
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!(
        (
            s.lease_owner.as_deref(),
            s.connected,
            s.backlog,
            s.last_error.as_deref()
        ),
        (Some("c"), true, Some(5), Some("TLS: bad certificate"))
    );
    assert!(s.last_error_at.is_some());
}

async fn racing_readers_get_one_lease(db: &TestDb) {
    let mut handles = Vec::new();
    for round in 0..5 {
        let mailbox = format!("race{round}");
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = Store::open(&db.url, OpenOptions::default())
                .await
                .expect("open");
            handles.push(store.clone());
            let mailbox = mailbox.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .acquire_mailbox_lease(&mailbox, &format!("reader{i}"), Duration::from_secs(30))
                    .await
                    .expect("acquire")
            }));
        }
        let mut won = 0;
        for t in tasks {
            if t.await.expect("task") {
                won += 1;
            }
        }
        assert_eq!(
            won, 1,
            "round {round}: exactly one of 12 racing readers holds the lease"
        );
    }
    for h in handles {
        h.close().await;
    }
}

async fn a_refused_draft_is_held_as_invalid(db: &TestDb) {
    let store = &db.store;
    with_workflow(store).await;
    let sys = actor("system:intake");
    assert!(
        store
            .acquire_mailbox_lease("hr", OWNER, Duration::from_secs(30))
            .await
            .expect("lease")
    );
    let mut ghost = request(2, "g@x", "Grace Hopper");
    ghost.workflow = "no-such-workflow".into();
    let batch = vec![
        request(1, "ok@x", "Alan Turing"),
        ghost,
        request(3, "ok3@x", "Edsger D"),
    ];
    let out = store
        .record_intake(&sys, lease(OWNER), 9, batch)
        .await
        .expect("record");
    let results: Vec<IntakeResult> = out.iter().map(|o| o.result).collect();
    assert_eq!(
        results,
        [
            IntakeResult::Request,
            IntakeResult::Invalid,
            IntakeResult::Request
        ]
    );
    assert_eq!(request_count(store).await, 2);
    let held = store.held_messages(None, 10).await.expect("held").rows;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].verdict, "invalid");
    assert!(
        held[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("no-such-workflow")),
        "{:?}",
        held[0].reason
    );
    let state = store
        .mailbox_state("hr")
        .await
        .expect("state")
        .expect("row");
    assert_eq!((state.last_uid, state.processed), (3, 3));
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::fresh(super::Kind::Sqlite).await.expect("sqlite");
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::fresh(super::Kind::Postgres).await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    every_verdict_is_recorded_once,
    uidvalidity_change_rereads_without_duplicates,
    the_lease_admits_one_reader_and_fences_batches,
    racing_readers_get_one_lease,
    a_refused_draft_is_held_as_invalid,
);
