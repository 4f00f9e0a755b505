//! One store conformance suite, run against SQLite and PostgreSQL: a behaviour exists when it
//! passes on both. PostgreSQL tests use a fresh database each and fail when `CI` is set and
//! the server is unreachable.

#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::Duration;

use gatehouse::domain::request::{RequestEvent, RequestState};
use gatehouse::store::api::{
    AuditFilter, AuditVerdict, CommandApi, Decision, FailOutcome, JobFilter, JobState, LogFilter,
    NewJob, NewLog, NewRequest, OperatorRow, ReadApi, RequestFilter, WorkerRow,
};
use gatehouse::store::error::StoreError;
use gatehouse::store::{Backend, Store};
use serde_json::json;
use store_db::{Kind, TestDb, actor, fresh};

const WORKFLOW: &str = "[workflow]\nname = \"joiner\"\n";

fn new_request(name: &str) -> NewRequest {
    NewRequest {
        workflow: "joiner".into(),
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(format!(
            "{}@example.com",
            name.to_lowercase().replace(' ', ".")
        )),
        username: None,
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"team": "ops"}),
    }
}

fn job(queue: &str, kind: &str) -> NewJob {
    NewJob {
        queue: queue.into(),
        kind: kind.into(),
        payload: json!({"n": 1}),
        priority: 0,
        run_at: 0,
        max_attempts: 3,
        unique_key: None,
        request_id: None,
    }
}

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

/// A request waiting at stage 0 with an approval stage open.
async fn awaiting(store: &Store, name: &str, policy: &str, approvers: &[&str]) -> (i64, i64) {
    let sys = actor("system:engine");
    let r = store
        .create_request(&sys, new_request(name))
        .await
        .expect("create");
    store
        .transition_request(&sys, r.id, RequestEvent::Classified, None)
        .await
        .expect("classify");
    store
        .transition_request(&sys, r.id, RequestEvent::ValidationStarted, None)
        .await
        .expect("validate");
    let r2 = store
        .transition_request(
            &sys,
            r.id,
            RequestEvent::ValidationPassed { stages: 1 },
            None,
        )
        .await
        .expect("pass");
    assert_eq!(r2.state, RequestState::AwaitingApproval { stage: 0 });
    let approvers: Vec<String> = approvers.iter().map(|s| s.to_string()).collect();
    let a = store
        .open_approval(&sys, r.id, 0, "manager", policy, &approvers, None)
        .await
        .expect("open approval");
    assert_eq!(a.status, "pending");
    assert_eq!(a.version, 1);
    (r.id, a.id)
}

fn operator(name: &str, role: &str) -> OperatorRow {
    OperatorRow {
        name: name.into(),
        role: role.into(),
        scopes: Vec::new(),
        email: None,
    }
}

/// Make these test approvers admins (the cases that exercise admin commands).
async fn promote(store: &Store, names: &[&str]) {
    for name in names {
        store
            .set_operator(&actor("admin"), &operator(name, "admin"))
            .await
            .expect("promote");
    }
}

async fn audit_count(store: &Store, entity: &str, entity_id: &str, action: &str) -> usize {
    let page = store
        .list_audit(
            &AuditFilter {
                entity: Some(entity.into()),
                entity_id: Some(entity_id.into()),
                action: Some(action.into()),
                ..AuditFilter::default()
            },
            None,
            1000,
        )
        .await
        .expect("audit list");
    page.rows.len()
}

async fn migrations_are_idempotent(db: &TestDb) {
    db.store.migrate().await.expect("second migrate");
    let other = db.reopen(false).await;
    other.migrate().await.expect("migrate from a second handle");
    let expected = match db.kind {
        Kind::Sqlite => Backend::Sqlite,
        Kind::Postgres => Backend::Postgres,
    };
    assert_eq!(db.store.backend(), expected);
    let applied = db
        .raw_i64("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/migrations")
        .join(db.store.backend().name());
    let shipped = std::fs::read_dir(&dir)
        .expect("migrations directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert!(shipped >= 4, "{shipped} migrations in {}", dir.display());
    assert_eq!(
        applied,
        i64::try_from(shipped).expect("count"),
        "every migration applied once"
    );
}

async fn requests_create_list_filter_and_page(db: &TestDb) {
    let s = &db.store;
    let who = actor("ann");
    let err = s
        .create_request(&who, new_request("Nobody"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "workflow"),
        "{err}"
    );
    with_workflow(s).await;
    let mut bad = new_request("Bad Kind");
    bad.kind = "visitor".into();
    let err = s.create_request(&who, bad).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { field, .. } if field == "kind"),
        "{err}"
    );

    let mut ids = Vec::new();
    for i in 0..25 {
        let r = s
            .create_request(&who, new_request(&format!("Person {i:02}")))
            .await
            .expect("create");
        assert_eq!(r.state, RequestState::Received);
        assert_eq!(r.version, 1);
        ids.push(r.id);
    }
    // Newest first, 10 per page, keyset cursor.
    let p1 = s
        .list_requests(&RequestFilter::default(), None, 10)
        .await
        .expect("p1");
    assert_eq!(p1.rows.len(), 10);
    assert_eq!(p1.rows[0].id, ids[24]);
    let p2 = s
        .list_requests(&RequestFilter::default(), p1.next, 10)
        .await
        .expect("p2");
    assert_eq!(p2.rows[0].id, ids[14]);
    let p3 = s
        .list_requests(&RequestFilter::default(), p2.next, 10)
        .await
        .expect("p3");
    assert_eq!(p3.rows.len(), 5);
    assert_eq!(p3.next, None);
    assert_eq!(p3.rows.last().map(|r| r.id), Some(ids[0]));

    // Filters.
    s.transition_request(
        &actor("system:engine"),
        ids[3],
        RequestEvent::Classified,
        None,
    )
    .await
    .expect("classify");
    let classified = RequestFilter {
        state: Some("classified".into()),
        ..RequestFilter::default()
    };
    let page = s
        .list_requests(&classified, None, 50)
        .await
        .expect("by state");
    assert_eq!(
        page.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[3]]
    );
    let text = RequestFilter {
        text: Some("PERSON 1".into()),
        ..RequestFilter::default()
    };
    assert_eq!(
        s.list_requests(&text, None, 50)
            .await
            .expect("text")
            .rows
            .len(),
        10
    );
    let pct = RequestFilter {
        text: Some("%".into()),
        ..RequestFilter::default()
    };
    assert_eq!(
        s.list_requests(&pct, None, 50)
            .await
            .expect("escaped")
            .rows
            .len(),
        0
    );
    let other = RequestFilter {
        workflow: Some("other".into()),
        ..RequestFilter::default()
    };
    assert!(
        s.list_requests(&other, None, 50)
            .await
            .expect("wf")
            .rows
            .is_empty()
    );

    // Each creation enqueued its processing job and wrote one audit row.
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(ids[0]),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    assert_eq!(jobs.rows.len(), 1);
    assert_eq!(jobs.rows[0].kind, "request.process");
    assert_eq!(
        audit_count(s, "request", &ids[0].to_string(), "request.create").await,
        1
    );

    // A disallowed transition names the state and changes nothing.
    let err = s
        .transition_request(
            &actor("system:engine"),
            ids[0],
            RequestEvent::ProvisioningSucceeded,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: RequestState::Received,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.request(ids[0]).await.expect("get").version, 1);
}

async fn request_detail_has_a_merged_timeline(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (rid, aid) = awaiting(s, "Jürgen Müller", "any", &["bob"]).await;
    let step = s
        .record_step(
            rid,
            None,
            "directory.lookup",
            Some(&json!({"mail": "j@x"})),
            Some(&json!({"manager": "bob"})),
            None,
        )
        .await
        .expect("step");
    assert!(step > 0);
    s.append_logs(&[NewLog {
        at: s.now(),
        level: "INFO".into(),
        target: "engine".into(),
        message: "looked up manager".into(),
        request_id: Some(rid),
        job_id: None,
        worker: Some("w1".into()),
    }])
    .await
    .expect("log");
    s.decide_approval(&actor("bob"), aid, 1, Decision::Approve, None)
        .await
        .expect("approve");
    let updated = s
        .update_request_fields(&actor("system:engine"), rid, Some("jmueller"), None)
        .await
        .expect("fields");
    assert_eq!(updated.username.as_deref(), Some("jmueller"));

    let d = s.request_detail(rid).await.expect("detail");
    assert_eq!(d.request.id, rid);
    assert_eq!(d.approvals.len(), 1);
    assert_eq!(d.approvals[0].status, "approved");
    assert_eq!(d.approvals[0].decisions.len(), 1);
    assert!(d.jobs.iter().any(|j| j.kind == "request.advance"));
    assert!(d.jobs.iter().any(|j| j.kind == "request.process"));
    let kinds: Vec<&str> = d.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in ["state", "step", "approval", "log", "audit"] {
        assert!(kinds.contains(&k), "timeline lacks {k}: {kinds:?}");
    }
    assert!(
        d.timeline.windows(2).all(|w| w[0].at <= w[1].at),
        "timeline not ordered"
    );
    assert!(matches!(
        s.request_detail(999_999).await,
        Err(StoreError::NotFound {
            entity: "request",
            ..
        })
    ));
}

async fn approval_policy_any(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (rid, aid) = awaiting(s, "Any Person", "any", &["ann", "bob"]).await;
    let inbox = s
        .pending_approvals("bob", None, None, 10)
        .await
        .expect("inbox");
    assert_eq!(
        inbox.rows.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![aid]
    );
    assert!(
        s.pending_approvals("eve", None, None, 10)
            .await
            .expect("eve")
            .rows
            .is_empty()
    );
    let a = s
        .decide_approval(&actor("bob"), aid, 1, Decision::Approve, None)
        .await
        .expect("approve");
    assert_eq!(a.status, "approved");
    assert_eq!(a.version, 2);
    assert!(
        s.pending_approvals("ann", None, None, 10)
            .await
            .expect("ann")
            .rows
            .is_empty()
    );
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(rid),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    let advance = jobs
        .rows
        .iter()
        .find(|j| j.kind == "request.advance")
        .expect("advance job");
    assert_eq!(
        advance.unique_key.as_deref(),
        Some(format!("advance:{rid}:0").as_str())
    );
    assert_eq!(advance.payload, json!({"request_id": rid, "stage": 0}));
    // Deciding again is a conflict that names who decided.
    let err = s
        .decide_approval(&actor("ann"), aid, 2, Decision::Approve, None)
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            changed_by, what, ..
        } => {
            assert_eq!(changed_by, "bob");
            assert!(what.contains("already approved"), "{what}");
        }
        other => panic!("expected conflict, got {other}"),
    }
}

async fn approval_policy_all(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (_rid, aid) = awaiting(s, "All Person", "all", &["ann", "bob"]).await;
    let a = s
        .decide_approval(&actor("ann"), aid, 1, Decision::Approve, None)
        .await
        .expect("ann");
    assert_eq!(a.status, "pending");
    assert_eq!(a.version, 2);
    // ann no longer sees it; bob still does.
    assert!(
        s.pending_approvals("ann", None, None, 10)
            .await
            .expect("ann")
            .rows
            .is_empty()
    );
    assert_eq!(
        s.pending_approvals("bob", None, None, 10)
            .await
            .expect("bob")
            .rows
            .len(),
        1
    );
    let err = s
        .decide_approval(&actor("ann"), aid, 2, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let a = s
        .decide_approval(&actor("bob"), aid, 2, Decision::Approve, None)
        .await
        .expect("bob");
    assert_eq!(a.status, "approved");
    assert_eq!(a.decisions.len(), 2);
}

async fn approval_policy_quorum_rejects_when_unreachable(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (rid, aid) = awaiting(s, "Quorum Person", "quorum(2)", &["ann", "bob", "cid"]).await;
    let a = s
        .decide_approval(
            &actor("ann"),
            aid,
            1,
            Decision::Reject,
            Some("no budget".into()),
        )
        .await
        .expect("ann rejects");
    assert_eq!(a.status, "pending");
    let a = s
        .decide_approval(
            &actor("bob"),
            aid,
            2,
            Decision::Reject,
            Some("not approved".into()),
        )
        .await
        .expect("bob rejects");
    assert_eq!(a.status, "rejected");
    let r = s.request(rid).await.expect("request");
    assert_eq!(r.state, RequestState::Rejected);
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or("")
            .contains("not approved")
    );
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(rid),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    assert!(jobs.rows.iter().any(|j| j.kind == "notify.rejected"));
    assert_eq!(
        audit_count(s, "approval", &aid.to_string(), "approval.decide").await,
        2
    );

    // quorum(2) reached with two approvals.
    let (_rid, aid) = awaiting(s, "Quorum Two", "quorum(2)", &["ann", "bob", "cid"]).await;
    s.decide_approval(&actor("cid"), aid, 1, Decision::Approve, None)
        .await
        .expect("cid");
    let a = s
        .decide_approval(&actor("ann"), aid, 2, Decision::Approve, None)
        .await
        .expect("ann");
    assert_eq!(a.status, "approved");
}

async fn concurrent_decisions_one_wins(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (_rid, aid) = awaiting(s, "Race Person", "any", &["ann", "bob"]).await;
    let other = db.reopen(false).await;
    let (ann, bob) = (actor("ann"), actor("bob"));
    let (ra, rb) = tokio::join!(
        s.decide_approval(&ann, aid, 1, Decision::Approve, None),
        other.decide_approval(&bob, aid, 1, Decision::Reject, Some("no".into())),
    );
    let (ok, err, loser) = match (ra, rb) {
        (Ok(a), Err(e)) => (a, e, "bob"),
        (Err(e), Ok(a)) => (a, e, "ann"),
        (a, b) => panic!("expected exactly one success: {a:?} / {b:?}"),
    };
    let winner = if loser == "bob" { "ann" } else { "bob" };
    match &err {
        StoreError::Conflict {
            changed_by,
            changed_at,
            what,
            entity,
            ..
        } => {
            assert_eq!(*entity, "approval");
            assert_eq!(changed_by, winner, "{err}");
            assert!(changed_at.contains('T'), "{changed_at}");
            assert!(what.contains("already"), "{what}");
        }
        other => panic!("expected Conflict, got {other}"),
    }
    assert_eq!(ok.decisions.len(), 1);
    assert_eq!(
        audit_count(s, "approval", &aid.to_string(), "approval.decide").await,
        1
    );
    assert!(matches!(
        s.verify_audit().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

async fn rejection_reason_eligibility_and_admin_override(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let (rid, aid) = awaiting(s, "Rule Person", "all", &["ann", "bob"]).await;
    for reason in [None, Some("   ".to_string())] {
        let err = s
            .decide_approval(&actor("ann"), aid, 1, Decision::Reject, reason)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid { field, .. } if field == "reason"),
            "{err}"
        );
    }
    let err = s
        .decide_approval(&actor("eve"), aid, 1, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Forbidden { operator, .. } if operator == "eve"),
        "{err}"
    );
    // Nothing changed.
    let inbox = s
        .pending_approvals("ann", None, None, 10)
        .await
        .expect("inbox");
    assert_eq!(inbox.rows[0].version, 1);
    assert!(inbox.rows[0].decisions.is_empty());

    // The refusal is itself audited.
    assert_eq!(
        audit_count(s, "approval", &aid.to_string(), "approval.decide.refused").await,
        1
    );

    // Only admins manage operators, and a refused attempt is audited too.
    assert!(matches!(
        s.set_operator(&actor("eve"), &operator("eve", "admin"))
            .await,
        Err(StoreError::Forbidden { .. })
    ));
    assert_eq!(
        audit_count(s, "operator", "eve", "operator.set.refused").await,
        1
    );
    s.set_operator(&actor("admin"), &operator("boss", "admin"))
        .await
        .expect("admin adds an admin");
    assert_eq!(audit_count(s, "operator", "boss", "operator.set").await, 1);
    assert!(matches!(
        s.set_operator(&actor("boss"), &operator("eve", "superuser"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    s.set_operator(&actor("boss"), &operator("eve", "viewer"))
        .await
        .expect("viewer");
    assert_eq!(
        s.operator_role("eve").await.expect("role").as_deref(),
        Some("viewer")
    );
    assert_eq!(s.operators().await.expect("ops").len(), 7);
    // Admins see every pending approval and may override.
    assert_eq!(
        s.pending_approvals("boss", None, None, 10)
            .await
            .expect("admin inbox")
            .rows
            .len(),
        1
    );
    let a = s
        .decide_approval(&actor("boss"), aid, 1, Decision::Approve, None)
        .await
        .expect("override");
    assert_eq!(a.status, "approved");
    assert!(a.decisions[0].overridden);
    let audit = s
        .list_audit(
            &AuditFilter {
                entity: Some("approval".into()),
                entity_id: Some(aid.to_string()),
                actor: Some("boss".into()),
                action: Some("approval.decide".into()),
            },
            None,
            10,
        )
        .await
        .expect("audit");
    assert_eq!(audit.rows.len(), 1);
    assert_eq!(audit.rows[0].actor, "boss");
    assert_eq!(
        audit.rows[0]
            .after
            .as_ref()
            .and_then(|a| a.get("overridden")),
        Some(&json!(true))
    );
    let _ = rid;
}

async fn config_save_history_and_conflict(db: &TestDb) {
    let s = &db.store;
    promote(s, &["ann", "bob"]).await;
    let ann = actor("ann");
    let v1 = s
        .save_config(&ann, "workflow", "onboard", "a = 1", "first", 0)
        .await
        .expect("v1");
    assert_eq!(v1.version, 1);
    let v2 = s
        .save_config(&actor("bob"), "workflow", "onboard", "a = 2", "second", 1)
        .await
        .expect("v2");
    assert_eq!(v2.version, 2);
    let err = s
        .save_config(&ann, "workflow", "onboard", "a = 3", "stale", 1)
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict {
            changed_by,
            what,
            entity,
            ..
        } => {
            assert_eq!(*entity, "config");
            assert_eq!(changed_by, "bob");
            assert!(what.contains("version 1 is now 2"), "{what}");
        }
        other => panic!("expected conflict, got {other}"),
    }
    assert!(matches!(
        s.save_config(&ann, "mailbox", "onboard", "x", "kind change", 2)
            .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.save_config(&ann, "gadget", "x", "x", "", 0).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.save_config(&ann, "role", "bad name", "x", "", 0).await,
        Err(StoreError::Invalid { .. })
    ));
    s.save_config(&ann, "role", "base", "r = 1", "", 0)
        .await
        .expect("role");
    let history = s.config_versions("onboard").await.expect("history");
    assert_eq!(
        history.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(history[0].body, "a = 2");
    let heads = s.config_heads().await.expect("heads");
    assert_eq!(
        heads
            .iter()
            .map(|c| (c.name.as_str(), c.version))
            .collect::<Vec<_>>(),
        vec![("base", 1), ("onboard", 2)]
    );
    assert_eq!(
        s.config_head("onboard")
            .await
            .expect("head")
            .map(|c| c.version),
        Some(2)
    );
    assert_eq!(s.config_head("missing").await.expect("none"), None);
    let audit = s
        .list_audit(
            &AuditFilter {
                entity: Some("config".into()),
                entity_id: Some("onboard".into()),
                ..AuditFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("audit");
    assert_eq!(audit.rows.len(), 2);
    assert_eq!(
        audit.rows[0].before.as_ref().and_then(|b| b.get("body")),
        Some(&json!("a = 1"))
    );
    assert_eq!(
        audit.rows[0].after.as_ref().and_then(|b| b.get("body")),
        Some(&json!("a = 2"))
    );

    // Concurrent saves from the same head: exactly one wins.
    let other = db.reopen(false).await;
    let cid = actor("cid");
    let (a, b) = tokio::join!(
        s.save_config(&ann, "workflow", "onboard", "a = 4", "", 2),
        other.save_config(&cid, "workflow", "onboard", "a = 5", "", 2),
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    assert_eq!(s.config_versions("onboard").await.expect("h").len(), 3);
}

async fn queue_enqueue_unique_and_claim_order(db: &TestDb) {
    let s = &db.store;
    promote(s, &["ann"]).await;
    let now = s.now();
    let mut low = job("q", "low");
    low.priority = -1;
    let mut high = job("q", "high");
    high.priority = 5;
    let mut later = job("q", "later");
    later.run_at = now + 60_000;
    let mut old = job("q", "old");
    old.run_at = now - 1000;
    let mut keyed = job("q", "keyed");
    keyed.unique_key = Some("k1".into());
    let ids = s
        .enqueue(&[
            low,
            job("q", "plain"),
            high,
            later,
            old,
            keyed.clone(),
            keyed.clone(),
            job("other", "o"),
        ])
        .await
        .expect("enqueue");
    assert_eq!(ids.len(), 8);
    assert!(ids[5].is_some());
    assert_eq!(ids[6], None, "duplicate key in one batch");
    assert_eq!(
        s.enqueue(&[keyed.clone()]).await.expect("again"),
        vec![None]
    );

    let queues = vec!["q".to_string()];
    let claimed = s
        .claim("w1", &queues, 10, Duration::from_secs(30))
        .await
        .expect("claim");
    let kinds: Vec<&str> = claimed.iter().map(|j| j.kind.as_str()).collect();
    // Priority first, then run_at (0 < now - 1s), then id.
    assert_eq!(kinds, vec!["high", "plain", "keyed", "old", "low"]);
    assert!(!kinds.contains(&"later"), "future jobs are not claimed");
    assert!(!kinds.contains(&"o"), "other queues are not claimed");
    for j in &claimed {
        assert_eq!(j.state, JobState::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.lease_owner.as_deref(), Some("w1"));
    }
    // Keyed job finished → the key is free again.
    let keyed_id = ids[5].expect("keyed id");
    assert_eq!(
        s.complete_jobs("w1", &[keyed_id]).await.expect("complete"),
        1
    );
    assert!(s.enqueue(&[keyed]).await.expect("free key")[0].is_some());

    // Paused queues are skipped.
    s.set_queue_paused(&actor("ann"), "other", true)
        .await
        .expect("pause");
    let other = vec!["other".to_string()];
    assert!(
        s.claim("w1", &other, 10, Duration::from_secs(30))
            .await
            .expect("paused")
            .is_empty()
    );
    let stats = s.queue_stats().await.expect("stats");
    assert!(
        stats
            .iter()
            .any(|q| q.queue == "other" && q.paused && q.ready == 1)
    );
    s.set_queue_paused(&actor("ann"), "other", false)
        .await
        .expect("resume");
    assert_eq!(
        s.claim("w1", &other, 10, Duration::from_secs(30))
            .await
            .expect("resumed")
            .len(),
        1
    );
    assert_eq!(audit_count(s, "queue", "other", "queue.").await, 2);

    // Several queues: one order across them; unlisted queues untouched.
    let mut jobs = Vec::new();
    for (queue, priority) in [("qa", 1), ("qb", 5), ("qc", 9), ("qa", 7), ("qb", 0)] {
        let mut j = job(queue, &format!("{queue}{priority}"));
        j.priority = priority;
        jobs.push(j);
    }
    s.enqueue(&jobs).await.expect("multi");
    let ab = vec!["qa".to_string(), "qb".to_string()];
    let got = s
        .claim("w9", &ab, 3, Duration::from_secs(30))
        .await
        .expect("multi claim");
    let kinds: Vec<&str> = got.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, vec!["qa7", "qb5", "qa1"]);
    let got = s
        .claim("w9", &ab, 3, Duration::from_secs(30))
        .await
        .expect("rest");
    assert_eq!(
        got.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        vec!["qb0"]
    );

    // Large batch.
    let many: Vec<NewJob> = (0..1200).map(|_| job("bulk", "b")).collect();
    let ids = s.enqueue(&many).await.expect("bulk");
    assert!(ids.iter().all(Option::is_some));
    let mut sorted: Vec<i64> = ids.iter().flatten().copied().collect();
    let before = sorted.clone();
    sorted.sort();
    assert_eq!(sorted, before, "ids in input order");
    let bulk = vec!["bulk".to_string()];
    let mut total = 0;
    loop {
        let batch = s
            .claim("w2", &bulk, 100, Duration::from_secs(30))
            .await
            .expect("claim bulk");
        if batch.is_empty() {
            break;
        }
        let ids: Vec<i64> = batch.iter().map(|j| j.id).collect();
        assert_eq!(
            s.complete_jobs("w2", &ids).await.expect("complete bulk"),
            ids.len() as u64
        );
        total += ids.len();
    }
    assert_eq!(total, 1200);
}

async fn queue_leases_fail_retry_rescue_release(db: &TestDb) {
    let s = &db.store;
    promote(s, &["ann"]).await;
    let q = vec!["q".to_string()];
    let ids = s
        .enqueue(&[job("q", "a"), job("q", "b")])
        .await
        .expect("enqueue");
    let (a, b) = (ids[0].expect("a"), ids[1].expect("b"));
    let claimed = s
        .claim("w1", &q, 1, Duration::from_millis(300))
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a]);
    // Only the owner extends or completes.
    assert_eq!(
        s.extend_leases("w2", &[a], Duration::from_secs(60))
            .await
            .expect("x"),
        0
    );
    assert_eq!(s.complete_jobs("w2", &[a]).await.expect("not owner"), 0);
    assert_eq!(
        s.extend_leases("w1", &[a], Duration::from_millis(300))
            .await
            .expect("extend"),
        1
    );

    // Lease expires; rescue returns it; the old owner can no longer complete it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.rescue_expired().await.expect("rescue"), 1);
    assert_eq!(
        s.complete_jobs("w1", &[a]).await.expect("stale complete"),
        0
    );
    let again = s
        .claim("w2", &q, 5, Duration::from_secs(30))
        .await
        .expect("reclaim");
    let again_a = again.iter().find(|j| j.id == a).expect("a reclaimed");
    assert_eq!(again_a.attempts, 2);
    assert!(again_a.last_error.as_deref().unwrap_or("").contains("w1"));
    assert_eq!(s.complete_jobs("w1", &[a]).await.expect("w1 late"), 0);
    assert_eq!(s.complete_jobs("w2", &[a]).await.expect("w2"), 1);
    assert_eq!(s.job(a).await.expect("a").state, JobState::Completed);

    // b: release keeps the attempt count; fail → retrying → dead.
    assert_eq!(s.release_jobs("w2", &[b]).await.expect("release"), 1);
    let jb = s.job(b).await.expect("b");
    assert_eq!((jb.state, jb.attempts), (JobState::Available, 0));
    for attempt in 1..=3 {
        let c = s
            .claim("w3", &q, 1, Duration::from_secs(30))
            .await
            .expect("claim b");
        assert_eq!(c.len(), 1, "attempt {attempt}");
        assert_eq!(c[0].attempts, attempt);
        assert!(
            s.fail_job("w3", b, &format!("boom {attempt}"), FailOutcome::RetryAt(0))
                .await
                .expect("fail")
        );
        let jb = s.job(b).await.expect("b");
        let expected = if attempt < 3 {
            JobState::Retrying
        } else {
            JobState::Dead
        };
        assert_eq!(jb.state, expected, "attempt {attempt}");
        assert_eq!(
            jb.last_error.as_deref(),
            Some(format!("boom {attempt}").as_str())
        );
    }
    assert!(
        !s.fail_job("w3", b, "late", FailOutcome::Dead)
            .await
            .expect("not held")
    );
    // An operator retries the dead job: one more attempt.
    let retried = s.retry_job(&actor("ann"), b).await.expect("retry job");
    assert_eq!(retried.state, JobState::Available);
    assert!(retried.max_attempts >= 4);
    assert!(matches!(
        s.retry_job(&actor("ann"), a).await,
        Err(StoreError::Invalid { .. })
    ));
    let c = s
        .claim("w3", &q, 1, Duration::from_secs(30))
        .await
        .expect("claim retried");
    assert_eq!(c.len(), 1);
    assert!(
        s.fail_job("w3", b, "final", FailOutcome::Dead)
            .await
            .expect("dead")
    );
    assert_eq!(s.job(b).await.expect("b").state, JobState::Dead);
    let stats = s.queue_stats().await.expect("stats");
    let qs = stats.iter().find(|x| x.queue == "q").expect("q stats");
    assert_eq!((qs.dead, qs.completed), (1, 1));
    // Retention removes finished jobs only: one still waiting stays, however old.
    let mut waiting = job("q", "k");
    waiting.run_at = 1;
    let waiting = s.enqueue(&[waiting]).await.expect("enqueue")[0].expect("id");
    assert_eq!(s.prune_jobs(s.now() - 60_000).await.expect("prune none"), 0);
    assert_eq!(s.prune_jobs(s.now() + 1).await.expect("prune"), 2);
    assert_eq!(
        s.job(waiting).await.expect("waiting").state,
        JobState::Available
    );
    s.vacuum_jobs().await.expect("vacuum");
}

async fn enqueue_inside_caller_transaction(db: &TestDb) {
    let s = &db.store;
    let mut tx = s.begin().await.expect("begin");
    let mut j = job("txq", "rolled-back");
    j.unique_key = Some("tx-key".into());
    assert!(tx.enqueue(&j).await.expect("enqueue in tx").is_some());
    drop(tx);
    let page = s
        .list_jobs(
            &JobFilter {
                queue: Some("txq".into()),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    assert!(page.rows.is_empty(), "rolled back with the transaction");
    let mut tx = s.begin().await.expect("begin");
    let id = tx.enqueue(&j).await.expect("enqueue").expect("id");
    assert_eq!(tx.enqueue(&j).await.expect("dup"), None);
    tx.commit().await.expect("commit");
    let claimed = s
        .claim("w", &["txq".to_string()], 10, Duration::from_secs(5))
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![id]);
}

async fn retry_and_cancel_requests(db: &TestDb) {
    let s = &db.store;
    promote(s, &["ann"]).await;
    with_workflow(s).await;
    let sys = actor("system:engine");
    let r = s
        .create_request(&sys, new_request("Retry Me"))
        .await
        .expect("create");
    let err = s.retry_request(&actor("ann"), r.id).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState { .. }), "{err}");
    for ev in [
        RequestEvent::Classified,
        RequestEvent::ValidationStarted,
        RequestEvent::ValidationPassed { stages: 0 },
        RequestEvent::ProvisioningStarted,
    ] {
        s.transition_request(&sys, r.id, ev, None)
            .await
            .expect("advance");
    }
    let failed = s
        .transition_request(
            &sys,
            r.id,
            RequestEvent::ProvisioningFailed,
            Some("target down".into()),
        )
        .await
        .expect("fail");
    assert_eq!(failed.state, RequestState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("target down"));
    // The provisioning job that died: counted dead until the retry replaces it.
    db.raw_exec(&format!(
        "INSERT INTO jobs (queue, kind, payload, state, attempts, max_attempts, run_at, request_id, created_at, failed_at, last_error) \
         VALUES ('provision', 'request.provision', '{{}}', 'dead', 4, 4, 0, {}, 0, 0, 'target down')",
        r.id
    ))
    .await;
    let dead = |stats: Vec<gatehouse::store::api::QueueStats>| {
        stats
            .iter()
            .find(|q| q.queue == "provision")
            .map_or(0, |q| q.dead)
    };
    assert_eq!(dead(s.queue_stats().await.expect("stats")), 1);
    let retried = s.retry_request(&actor("ann"), r.id).await.expect("retry");
    assert_eq!(
        dead(s.queue_stats().await.expect("stats")),
        0,
        "a retried request's dead job no longer counts"
    );
    assert_eq!(retried.state, RequestState::Scheduled);
    assert_eq!(retried.last_error, None);
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(r.id),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    assert!(
        jobs.rows
            .iter()
            .any(|j| j.kind == "request.provision" && j.state == JobState::Available)
    );

    let c = s
        .create_request(&sys, new_request("Cancel Me"))
        .await
        .expect("create");
    let cancelled = s
        .cancel_request(&actor("ann"), c.id, Some("duplicate".into()))
        .await
        .expect("cancel");
    assert_eq!(cancelled.state, RequestState::Cancelled);
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(c.id),
                ..JobFilter::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    // Its work is cancelled; only the cancellation notice is queued (in the same transaction).
    assert!(
        jobs.rows
            .iter()
            .filter(|j| j.kind != "notify.cancelled")
            .all(|j| j.state == JobState::Cancelled),
        "{:?}",
        jobs.rows
    );
    let notices: Vec<_> = jobs
        .rows
        .iter()
        .filter(|j| j.kind == "notify.cancelled")
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].state, JobState::Available);
    assert_eq!(notices[0].payload["cancelled_by"], "ann");
    assert_eq!(notices[0].payload["reason"], "duplicate");
    let err = s
        .cancel_request(&actor("ann"), c.id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: RequestState::Cancelled,
                ..
            }
        ),
        "{err}"
    );
}

async fn logs_tail_by_cursor_and_filters(db: &TestDb) {
    let s = &db.store;
    let now = s.now();
    let logs: Vec<NewLog> = (0..30)
        .map(|i| NewLog {
            at: now + i,
            level: ["ERROR", "WARN", "INFO", "DEBUG"][i as usize % 4].into(),
            target: "engine".into(),
            message: format!("line {i} 50%"),
            request_id: if i % 2 == 0 { Some(7) } else { None },
            job_id: Some(i),
            worker: Some(if i < 15 { "w1" } else { "w2" }.into()),
        })
        .collect();
    s.append_logs(&logs).await.expect("append");
    let all = s
        .tail_log(0, &LogFilter::default(), 10)
        .await
        .expect("tail");
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].message, "line 0 50%");
    let next = s
        .tail_log(all[9].id, &LogFilter::default(), 100)
        .await
        .expect("next");
    assert_eq!(next.len(), 20);
    assert_eq!(next[0].message, "line 10 50%");
    let warn = LogFilter {
        min_level: Some("warn".into()),
        ..LogFilter::default()
    };
    let w = s.tail_log(0, &warn, 100).await.expect("warn");
    assert!(w.iter().all(|l| l.level == "ERROR" || l.level == "WARN"));
    assert_eq!(w.len(), 16);
    let req = LogFilter {
        request_id: Some(7),
        worker: Some("w2".into()),
        ..LogFilter::default()
    };
    let r = s.tail_log(0, &req, 100).await.expect("req");
    assert!(
        r.iter()
            .all(|l| l.request_id == Some(7) && l.worker.as_deref() == Some("w2"))
    );
    assert_eq!(r.len(), 7);
    let text = LogFilter {
        text: Some("LINE 2".into()),
        ..LogFilter::default()
    };
    assert_eq!(s.tail_log(0, &text, 100).await.expect("text").len(), 11);
    let pct = LogFilter {
        text: Some("0%".into()),
        ..LogFilter::default()
    };
    assert_eq!(s.tail_log(0, &pct, 100).await.expect("pct").len(), 30);
    let last = s.last_log(&LogFilter::default(), 5).await.expect("last");
    assert_eq!(
        last.iter().map(|l| l.message.as_str()).collect::<Vec<_>>()[4],
        "line 29 50%"
    );
    assert!(last.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(s.prune_logs(now + 10).await.expect("prune"), 10);
    assert_eq!(
        s.tail_log(0, &LogFilter::default(), 100)
            .await
            .expect("after prune")
            .len(),
        20
    );
    // A large batch keeps its order across statement chunks.
    let big: Vec<NewLog> = (0..1234)
        .map(|i| NewLog {
            at: now + 100 + i,
            level: "INFO".into(),
            target: "bulk".into(),
            message: format!("bulk {i}"),
            request_id: None,
            job_id: None,
            worker: None,
        })
        .collect();
    s.append_logs(&big).await.expect("bulk append");
    let text = LogFilter {
        text: Some("bulk ".into()),
        ..LogFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let page = s.tail_log(cursor, &text, 500).await.expect("page");
        let Some(last) = page.last() else { break };
        cursor = last.id;
        seen.extend(page.into_iter().map(|l| l.message));
    }
    let expected: Vec<String> = (0..1234).map(|i| format!("bulk {i}")).collect();
    assert_eq!(seen, expected);
}

async fn workers_register_heartbeat_drain(db: &TestDb) {
    let s = &db.store;
    promote(s, &["ann"]).await;
    let now = s.now();
    let w = WorkerRow {
        id: "host:1:abc".into(),
        host: "host".into(),
        pid: 1,
        started_at: now,
        heartbeat_at: now,
        current_job: None,
        processed: 0,
        failed: 0,
        concurrency: 4,
        status: "running".into(),
    };
    s.register_worker(&w).await.expect("register");
    assert_eq!(
        s.worker_heartbeat(&w.id, Some(5), 10, 1).await.expect("hb"),
        "running"
    );
    let ws = s.workers().await.expect("workers");
    assert_eq!(ws.len(), 1);
    assert_eq!(
        (ws[0].processed, ws[0].failed, ws[0].current_job),
        (10, 1, Some(5))
    );
    let ov = s.overview().await.expect("overview");
    assert_eq!(ov.workers_alive, 1);
    assert_eq!(ov.completed_per_minute.len(), 60);
    s.drain_worker(&actor("ann"), &w.id).await.expect("drain");
    assert_eq!(
        s.worker_heartbeat(&w.id, None, 11, 1).await.expect("hb"),
        "draining"
    );
    assert_eq!(audit_count(s, "worker", &w.id, "worker.drain").await, 1);
    s.worker_stopped(&w.id).await.expect("stopped");
    assert_eq!(s.workers().await.expect("w")[0].status, "stopped");
    assert!(matches!(
        s.drain_worker(&actor("ann"), &w.id).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.drain_worker(&actor("ann"), "nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.worker_heartbeat("nope", None, 0, 0).await,
        Err(StoreError::NotFound { .. })
    ));
    // Workers silent since before the cutoff are forgotten; live ones stay.
    assert_eq!(s.prune_workers(s.now() - 3_600_000).await.expect("keep"), 0);
    assert_eq!(s.prune_workers(s.now() + 1).await.expect("prune"), 1);
    assert!(s.workers().await.expect("workers").is_empty());
    // Probes.
    s.record_probe(1, "w").await.expect("probe");
    s.record_probe(1, "w").await.expect("probe");
    s.record_probe(2, "w").await.expect("probe");
    assert_eq!(s.probe_counts().await.expect("counts"), (3, 2));
}

async fn audit_chain_verifies_and_detects_tampering(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    for i in 0..5 {
        s.create_request(&actor("ann"), new_request(&format!("Audit {i}")))
            .await
            .expect("create");
    }
    let verdict = s.verify_audit().await.expect("verify");
    // Six rows of operator set-up, the workflow, five requests.
    assert_eq!(verdict, AuditVerdict::Intact { rows: 12 });
    let rows = s
        .list_audit(&AuditFilter::default(), None, 100)
        .await
        .expect("audit")
        .rows;
    let victim = rows[2].id;
    for w in rows.windows(2) {
        assert_eq!(w[0].prev_hash, w[1].hash, "chain links");
    }
    // The table refuses UPDATE (migration 0006); tamper as an attacker with owner rights
    // would: get the trigger out of the way first, then edit the row.
    let unguard = match db.kind {
        Kind::Sqlite => "DROP TRIGGER audit_no_update",
        Kind::Postgres => "ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete",
    };
    db.raw_exec(&format!(
        "{unguard}; UPDATE audit SET actor = 'mallory' WHERE id = {victim}"
    ))
    .await;
    match s.verify_audit().await.expect("verify") {
        AuditVerdict::Broken { id, reason } => {
            assert_eq!(id, victim, "{reason}");
            assert!(reason.contains("hash"), "{reason}");
        }
        other => panic!("tampering not detected: {other:?}"),
    }
}

async fn read_only_store_refuses_commands(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    s.create_request(&actor("ann"), new_request("Read Only"))
        .await
        .expect("create");
    let ro = db.reopen(true).await;
    assert!(ro.is_read_only());
    assert_eq!(
        ro.list_requests(&RequestFilter::default(), None, 10)
            .await
            .expect("read")
            .rows
            .len(),
        1
    );
    assert!(matches!(
        ro.create_request(&actor("ann"), new_request("X")).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        ro.set_queue_paused(&actor("ann"), "q", true).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        ro.enqueue(&[job("q", "k")]).await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(
        ro.claim("w", &["q".to_string()], 1, Duration::from_secs(1))
            .await,
        Err(StoreError::ReadOnly)
    ));
    assert!(matches!(ro.migrate().await, Err(StoreError::ReadOnly)));
}

async fn changes_are_signalled_across_handles(db: &TestDb) {
    let s = &db.store;
    let watcher = db.reopen(true).await;
    let mut changes = watcher.changes();
    let mut wakeups = watcher.job_wakeups();
    // Let the watcher connect before the write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    changes.borrow_and_update();
    wakeups.borrow_and_update();
    s.enqueue(&[job("sig", "k")]).await.expect("enqueue");
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("change signalled in time")
        .expect("sender alive");
    tokio::time::timeout(Duration::from_secs(5), wakeups.changed())
        .await
        .expect("wake-up signalled in time")
        .expect("sender alive");
}

async fn job_progress_reaches_consoles(db: &TestDb) {
    let s = &db.store;
    s.enqueue(&[job("progress", "k")]).await.expect("enqueue");
    let claimed = s
        .claim("w", &["progress".to_string()], 1, Duration::from_secs(30))
        .await
        .expect("claim");
    let console = db.reopen(true).await;
    let mut changes = console.changes();
    tokio::time::sleep(Duration::from_millis(300)).await;
    changes.borrow_and_update();
    // Completing alone is silent on PostgreSQL; the worker's announcement is what consoles see
    // (SQLite consoles see the commit itself).
    s.complete_jobs("w", &[claimed[0].id])
        .await
        .expect("complete");
    s.announce_job_progress().await.expect("announce");
    tokio::time::timeout(Duration::from_secs(5), changes.changed())
        .await
        .expect("progress signalled in time")
        .expect("sender alive");
}

async fn triage_is_resolved_with_corrected_fields(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let sys = actor("system:engine");
    let r = s
        .create_request(&sys, new_request("Zoe"))
        .await
        .expect("create");
    for event in [
        RequestEvent::Classified,
        RequestEvent::ValidationStarted,
        RequestEvent::ValidationFailed,
    ] {
        s.transition_request(&sys, r.id, event, Some("start_date: not a date".into()))
            .await
            .expect("transition");
    }
    let triaged = s.request(r.id).await.expect("read");
    assert_eq!(triaged.state, RequestState::NeedsTriage);
    let admin = actor("admin");
    let mut fields = serde_json::Map::new();
    fields.insert("start_date".into(), json!("2099-01-05"));
    let fix = gatehouse::store::TriageFix {
        subject_name: Some("Zoë Ångström".into()),
        fields,
        ..Default::default()
    };
    let stale = s
        .resolve_triage(&admin, r.id, triaged.version - 1, fix.clone())
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let fixed = s
        .resolve_triage(&admin, r.id, triaged.version, fix.clone())
        .await
        .expect("resolve");
    assert_eq!(fixed.state, RequestState::Classified);
    assert_eq!(fixed.subject_name, "Zoë Ångström");
    assert_eq!(fixed.payload["start_date"], json!("2099-01-05"));
    assert_eq!(fixed.last_error, None, "the triage reason is cleared");
    let jobs = s
        .list_jobs(
            &JobFilter {
                request_id: Some(r.id),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .expect("jobs");
    let process = jobs
        .rows
        .iter()
        .filter(|j| j.kind == "request.process")
        .count();
    assert_eq!(process, 2, "processing is enqueued again");
    assert_eq!(
        audit_count(s, "request", &r.id.to_string(), "request.triage_resolved").await,
        1
    );
    let again = s.resolve_triage(&admin, r.id, fixed.version, fix).await;
    assert!(
        matches!(again, Err(StoreError::InvalidState { .. })),
        "only a request in triage can be resolved: {again:?}"
    );
}

async fn periodic_jobs_are_scheduled_once_per_period(db: &TestDb) {
    let s = &db.store;
    let mut tick = job("maintenance", "maintenance.rescue");
    tick.unique_key = Some("periodic:maintenance.rescue:1000".into());
    let first = s.enqueue_periodic(&tick).await.expect("first proposal");
    assert!(first.is_some());
    assert_eq!(
        s.enqueue_periodic(&tick).await.expect("second proposal"),
        None
    );
    // Even after the first run finished, the same period is not scheduled again.
    let claimed = s
        .claim(
            "w",
            &["maintenance".to_string()],
            10,
            Duration::from_secs(30),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        s.complete_jobs("w", &[claimed[0].id])
            .await
            .expect("complete"),
        1
    );
    assert_eq!(
        s.enqueue_periodic(&tick).await.expect("late proposal"),
        None
    );
    let mut next = tick.clone();
    next.unique_key = Some("periodic:maintenance.rescue:2000".into());
    assert!(
        s.enqueue_periodic(&next)
            .await
            .expect("next period")
            .is_some()
    );
    let mut keyless = tick.clone();
    keyless.unique_key = None;
    assert!(
        s.enqueue_periodic(&keyless).await.is_err(),
        "a periodic job needs a key"
    );
    assert!(s.prune_periodic(s.now() + 1).await.expect("prune") >= 2);
}

async fn claims_merge_queues_by_priority_and_skip_paused(db: &TestDb) {
    let s = &db.store;
    let admin = actor("admin");
    let mut a_low = job("a", "a-low");
    a_low.priority = 1;
    let mut b_high = job("b", "b-high");
    b_high.priority = 9;
    let mut c_top = job("c", "c-top");
    c_top.priority = 99;
    s.enqueue(&[a_low, job("a", "a-zero"), b_high, c_top])
        .await
        .expect("enqueue");
    s.set_queue_paused(&admin, "c", true)
        .await
        .expect("pause c");
    let queues: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let claimed = s
        .claim("w", &queues, 2, Duration::from_secs(30))
        .await
        .expect("claim");
    let kinds: Vec<&str> = claimed.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["b-high", "a-low"],
        "highest priority across queues, paused c skipped"
    );
    let rest = s
        .claim("w", &queues, 10, Duration::from_secs(30))
        .await
        .expect("claim rest");
    assert_eq!(
        rest.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["a-zero"]
    );
    s.set_queue_paused(&admin, "c", false)
        .await
        .expect("resume c");
    let resumed = s
        .claim("w", &queues, 10, Duration::from_secs(30))
        .await
        .expect("claim resumed");
    assert_eq!(
        resumed.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
        ["c-top"]
    );
}

async fn concurrent_engine_writes_serialise(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let other = db.reopen(false).await;
    let sys = actor("system:engine");
    let r = s
        .create_request(&sys, new_request("Twice"))
        .await
        .expect("create");
    let (a, b) = tokio::join!(
        s.transition_request(&sys, r.id, RequestEvent::Classified, None),
        other.transition_request(&sys, r.id, RequestEvent::Classified, None),
    );
    let errs: Vec<StoreError> = [a, b].into_iter().filter_map(Result::err).collect();
    assert_eq!(errs.len(), 1, "exactly one transition applies: {errs:?}");
    assert!(
        matches!(
            errs[0],
            StoreError::InvalidState {
                state: RequestState::Classified,
                ..
            }
        ),
        "{}",
        errs[0]
    );
    s.transition_request(&sys, r.id, RequestEvent::ValidationStarted, None)
        .await
        .expect("v");
    s.transition_request(
        &sys,
        r.id,
        RequestEvent::ValidationPassed { stages: 1 },
        None,
    )
    .await
    .expect("p");
    let approvers = vec!["ann".to_string()];
    let (a, b) = tokio::join!(
        s.open_approval(&sys, r.id, 0, "manager", "any", &approvers, None),
        other.open_approval(&sys, r.id, 0, "manager", "any", &approvers, None),
    );
    let (a, b) = (a.expect("first open"), b.expect("second open"));
    assert_eq!(a.id, b.id, "one stage row");
    assert_eq!(
        audit_count(s, "approval", &a.id.to_string(), "approval.open").await,
        1
    );
    assert!(matches!(
        s.open_approval(&sys, r.id, 1, "x", "most", &approvers, None).await,
        Err(StoreError::Invalid { field, .. }) if field == "policy"
    ));
    // A stage nobody can satisfy still opens: admins see it and may decide it.
    let stuck = s
        .open_approval(&sys, r.id, 1, "board", "quorum(2)", &approvers, None)
        .await
        .expect("infeasible stage opens");
    assert_eq!(stuck.status, "pending");
    assert!(matches!(
        s.open_approval(&sys, 424_242, 0, "x", "any", &approvers, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The console keeps its audit verdict current by verifying only the rows after the head it
/// verified last; the count it reaches is the whole chain's.
async fn audit_verdict_follows_new_rows_from_its_head(db: &TestDb) {
    let s = &db.store;
    with_workflow(s).await;
    let sys = actor("system:engine");
    s.create_request(&sys, new_request("First One"))
        .await
        .expect("create");
    let (verdict, head) = s.verify_audit_since(None).await.expect("verify");
    let AuditVerdict::Intact { rows } = verdict else {
        panic!("intact: {verdict:?}");
    };
    let head = head.expect("a head");
    assert_eq!(head.rows, rows);
    s.create_request(&sys, new_request("Second One"))
        .await
        .expect("create");
    let (verdict, next) = s
        .verify_audit_since(Some(head.clone()))
        .await
        .expect("verify");
    let next = next.expect("a head");
    assert!(next.newest_id > head.newest_id, "{head:?} {next:?}");
    assert_eq!(
        verdict,
        s.verify_audit().await.expect("full"),
        "the incremental count is the whole chain's"
    );
    // Nothing new: the same head, nothing hashed again.
    let (again, same) = s
        .verify_audit_since(Some(next.clone()))
        .await
        .expect("verify");
    assert_eq!(same, Some(next));
    assert_eq!(again, verdict);
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
    migrations_are_idempotent,
    requests_create_list_filter_and_page,
    request_detail_has_a_merged_timeline,
    approval_policy_any,
    approval_policy_all,
    approval_policy_quorum_rejects_when_unreachable,
    concurrent_decisions_one_wins,
    rejection_reason_eligibility_and_admin_override,
    config_save_history_and_conflict,
    queue_enqueue_unique_and_claim_order,
    queue_leases_fail_retry_rescue_release,
    enqueue_inside_caller_transaction,
    retry_and_cancel_requests,
    logs_tail_by_cursor_and_filters,
    workers_register_heartbeat_drain,
    audit_chain_verifies_and_detects_tampering,
    read_only_store_refuses_commands,
    changes_are_signalled_across_handles,
    periodic_jobs_are_scheduled_once_per_period,
    job_progress_reaches_consoles,
    triage_is_resolved_with_corrected_fields,
    claims_merge_queues_by_priority_and_skip_paused,
    concurrent_engine_writes_serialise,
    audit_verdict_follows_new_rows_from_its_head,
);

/// Two handles on one SQLite file (as two processes would be) with the console's access
/// pattern: frequent small reads and occasional decisions, plus a worker-like writer. No
/// "database is locked" may reach a caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_handles_never_surface_database_locked() {
    let db = fresh(Kind::Sqlite).await.expect("sqlite");
    let a = db.store.clone();
    let b = db.reopen(false).await;
    with_workflow(&a).await;
    let mut approvals = Vec::new();
    for i in 0..40 {
        approvals.push(awaiting(&a, &format!("Load {i}"), "any", &["bob"]).await.1);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    let console = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut reads = 0u64;
            let mut decided = 0u64;
            let mut next = approvals.into_iter();
            while std::time::Instant::now() < deadline {
                b.overview().await.map_err(|e| format!("overview: {e}"))?;
                let page = b
                    .pending_approvals("bob", None, None, 20)
                    .await
                    .map_err(|e| format!("inbox: {e}"))?;
                b.tail_log(0, &LogFilter::default(), 50)
                    .await
                    .map_err(|e| format!("tail: {e}"))?;
                reads += 3;
                if reads.is_multiple_of(30)
                    && let Some(id) = next.next()
                {
                    let version = page
                        .rows
                        .iter()
                        .find(|r| r.id == id)
                        .map_or(1, |r| r.version);
                    b.decide_approval(&actor("bob"), id, version, Decision::Approve, None)
                        .await
                        .map_err(|e| format!("decide: {e}"))?;
                    decided += 1;
                }
            }
            Ok::<_, String>((reads, decided))
        })
    };
    let worker = {
        let a = a.clone();
        tokio::spawn(async move {
            let q = vec!["load".to_string()];
            let mut done = 0u64;
            while std::time::Instant::now() < deadline {
                a.enqueue(&(0..20).map(|_| job("load", "k")).collect::<Vec<_>>())
                    .await
                    .map_err(|e| format!("enqueue: {e}"))?;
                let jobs = a
                    .claim("w", &q, 20, Duration::from_secs(30))
                    .await
                    .map_err(|e| format!("claim: {e}"))?;
                let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
                done += a
                    .complete_jobs("w", &ids)
                    .await
                    .map_err(|e| format!("complete: {e}"))?;
                a.append_logs(&[NewLog {
                    at: a.now(),
                    level: "INFO".into(),
                    target: "t".into(),
                    message: "m".into(),
                    request_id: None,
                    job_id: None,
                    worker: Some("w".into()),
                }])
                .await
                .map_err(|e| format!("log: {e}"))?;
            }
            Ok::<_, String>(done)
        })
    };
    let (reads, decided) = console
        .await
        .expect("console task")
        .expect("console saw an error");
    let done = worker
        .await
        .expect("worker task")
        .expect("worker saw an error");
    assert!(
        reads > 30 && decided > 0 && done > 0,
        "reads {reads} decided {decided} done {done}"
    );
    assert!(matches!(
        a.verify_audit().await.expect("verify"),
        AuditVerdict::Intact { .. }
    ));
}

/// A read-only console may start when no other process has the SQLite file open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_open_after_clean_close() {
    let db = fresh(Kind::Sqlite).await.expect("sqlite");
    with_workflow(&db.store).await;
    db.store.close().await;
    let ro = db.reopen(true).await;
    let heads = ro.config_heads().await.expect("read while alone");
    assert_eq!(heads.len(), 1);
    assert!(matches!(
        ro.verify_audit().await.expect("verify"),
        AuditVerdict::Intact { rows: 7 }
    ));
}
