//! Delegation, checked by the store on SQLite and PostgreSQL: a delegate decides "acting for"
//! an approver (the decision counts as the approver's, who acted is recorded and audited);
//! only the person delegating or an unscoped admin may delegate; cycles and chains past the
//! bound are refused; a revoked or ended delegation no longer counts; separation of duties
//! applies to the delegate; holding a delegation never gives a second vote in a quorum; an
//! approver out of office is routed to their delegate, else to their manager.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use approvals_support::*;
use gatehouse::store::api::{CommandApi, Decision, ReadApi};
use gatehouse::store::error::StoreError;
use store_db::{Kind, TestDb, actor, fresh};

const DAY: i64 = 86_400_000;

/// The newest audit row of `action`, as JSON text.
async fn audit_after(db: &TestDb, action: &str) -> String {
    let rows = db
        .store
        .list_audit(&Default::default(), None, 1000)
        .await
        .expect("audit");
    let row = rows
        .rows
        .into_iter()
        .filter(|r| r.action == action)
        .max_by_key(|r| r.id)
        .unwrap_or_else(|| panic!("no {action} audit row"));
    serde_json::to_string(&row).expect("json")
}

async fn a_delegate_decides_acting_for_the_approver(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:security\", \"managers_manager\"")).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let a = pending(&detail(s, r.id).await);
    assert_eq!(a.approvers, vec!["ann"]);
    let now = s.now();

    // Only ann (or an unscoped admin) may hand ann's approvals to someone.
    let err = s
        .delegate(&actor("eve"), "ann", "eve", now + DAY)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err:?}");
    assert_eq!(
        db.raw_i64("SELECT COUNT(*) FROM audit WHERE action = 'delegation.create.refused'")
            .await,
        1
    );
    // Before any delegation, dan may not decide.
    let err = s
        .decide_approval(&actor("dan"), a.id, a.version, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an approver"), "{err}");

    let d1 = s
        .delegate(&actor("ann"), "ann", "dan", now + DAY)
        .await
        .expect("ann delegates to dan");
    // A loop is refused, naming it; so is a chain past the bound.
    let err = s
        .delegate(&actor("admin"), "dan", "ann", now + DAY)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refused: dan → ann would close a loop (ann → dan)"),
        "{err}"
    );
    s.delegate(&actor("admin"), "dan", "cid", now + DAY)
        .await
        .expect("dan → cid");
    s.delegate(&actor("admin"), "cid", "bob", now + DAY)
        .await
        .expect("cid → bob");
    let err = s
        .delegate(&actor("admin"), "bob", "eve", now + DAY)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "ann → dan → cid → bob → eve would be a chain of 4 delegations; at most 3 are followed"
        ),
        "{err}"
    );
    assert!(
        s.delegate(&actor("ann"), "ann", "bob", now - 1)
            .await
            .is_err(),
        "an end in the past is refused"
    );

    // ann's stage is in dan's inbox (and cid's and bob's, down the chain), not eve's.
    for (who, sees) in [("dan", true), ("cid", true), ("bob", true), ("eve", false)] {
        let inbox = s
            .pending_approvals(who, None, None, 50)
            .await
            .expect("inbox");
        assert_eq!(inbox.rows.iter().any(|x| x.id == a.id), sees, "{who}");
    }
    // dan decides for ann.
    let decided = s
        .decide_approval(&actor("dan"), a.id, a.version, Decision::Approve, None)
        .await
        .expect("dan acts for ann");
    assert_eq!(decided.status, "approved");
    assert_eq!(decided.decisions[0].approver, "ann");
    assert_eq!(decided.decisions[0].decided_by.as_deref(), Some("dan"));
    assert!(!decided.decisions[0].overridden);
    let audit = audit_after(&db, "approval.decide").await;
    assert!(audit.contains(r#""acting_for":"ann""#), "{audit}");
    assert!(
        audit.contains(r#""delegation_chain":["ann","dan"]"#),
        "{audit}"
    );
    idle(s).await;

    // Stage 2: quorum(2) of cid, dan (security) and bob (ann's manager). Nobody gets a
    // second vote, whatever delegations they hold.
    let second = pending(&detail(s, r.id).await);
    assert_eq!(second.approvers, vec!["cid", "dan", "bob"]);
    let after_dan = s
        .decide_approval(
            &actor("dan"),
            second.id,
            second.version,
            Decision::Approve,
            None,
        )
        .await
        .expect("dan approves as himself");
    assert_eq!(after_dan.status, "pending");
    s.revoke_delegation(&actor("ann"), d1.id)
        .await
        .expect("ann revokes");
    assert!(
        s.acting_for_whom("dan").await.expect("whom").is_empty(),
        "revoked: dan acts for nobody"
    );
    // dan already decided this stage: no second vote for him, as himself or for anyone.
    let err = s
        .decide_approval(
            &actor("dan"),
            second.id,
            after_dan.version,
            Decision::Approve,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    // bob holds cid's delegation (cid → bob) but is an approver himself: his own vote counts.
    let after_bob = s
        .decide_approval(
            &actor("bob"),
            second.id,
            after_dan.version,
            Decision::Approve,
            None,
        )
        .await
        .expect("bob approves");
    assert_eq!(after_bob.status, "approved");
    assert_eq!(after_bob.decisions.len(), 2);
    assert!(after_bob.decisions.iter().all(|d| d.decided_by.is_none()));
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn separation_of_duties_binds_the_delegate(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:security\"")).await;
    let (stop, workers) = three_workers(s);
    // eve enters the request herself, then ann (the approver) delegates to eve.
    let r = s
        .create_request(&actor("eve"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let a = pending(&detail(s, r.id).await);
    s.delegate(&actor("ann"), "ann", "eve", s.now() + DAY)
        .await
        .expect("delegate");
    let err = s
        .decide_approval(&actor("eve"), a.id, a.version, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("creator"), "{err}");
    // A delegation that has ended no longer counts.
    s.delegate(&actor("ann"), "ann", "cid", s.now() + 300)
        .await
        .expect("short delegation");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let err = s
        .decide_approval(&actor("cid"), a.id, a.version, Decision::Approve, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an approver"), "{err}");
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn out_of_office_routes_to_the_delegate_else_the_manager(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:security\"")).await;
    let away = DIRECTORY.replace(
        "login = \"ann\"\nname = \"Ann Albers\"\nemail = \"ann@example.com\"\nmanager = \"bob\"",
        "login = \"ann\"\nname = \"Ann Albers\"\nemail = \"ann@example.com\"\nmanager = \"bob\"\nout_of_office = true",
    );
    assert_ne!(away, DIRECTORY);
    s.save_config(&actor("admin"), "directory", "people", &away, "", 1)
        .await
        .expect("ann is away");
    let (stop, workers) = three_workers(s);
    let opened = |d: &gatehouse::store::api::RequestDetail| {
        d.timeline
            .iter()
            .find(|t| t.detail["name"] == "stage 1 (manager) approvers from the directory")
            .map(|t| t.detail["output"]["out_of_office"].clone())
            .expect("stage step")
    };
    // No delegation: the stage goes to ann's manager as well.
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "awaiting_approval",
        "{:?}",
        d.request.last_error
    );
    assert_eq!(pending(&d).approvers, vec!["ann", "bob"]);
    assert_eq!(
        opened(&d),
        serde_json::json!(["ann is out of office; routed to their manager bob"])
    );
    // With a delegation, the delegate decides; nobody is added.
    s.delegate(&actor("ann"), "ann", "dan", s.now() + DAY)
        .await
        .expect("delegate");
    let r = s
        .create_request(&actor("admin"), joiner("ivan"))
        .await
        .expect("create");
    idle(s).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "awaiting_approval",
        "{:?}",
        d.request.last_error
    );
    let a = pending(&d);
    assert_eq!(a.approvers, vec!["ann"]);
    assert_eq!(
        opened(&d),
        serde_json::json!(["ann is out of office; dan decides for them (delegation)"])
    );
    let inbox = s
        .pending_approvals("dan", None, None, 50)
        .await
        .expect("inbox");
    assert!(inbox.rows.iter().any(|x| x.id == a.id));
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test]
async fn sqlite_out_of_office_routes_to_the_delegate_else_the_manager() {
    out_of_office_routes_to_the_delegate_else_the_manager(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_out_of_office_routes_to_the_delegate_else_the_manager() {
    out_of_office_routes_to_the_delegate_else_the_manager(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_delegate_decides_acting_for_the_approver() {
    a_delegate_decides_acting_for_the_approver(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_delegate_decides_acting_for_the_approver() {
    a_delegate_decides_acting_for_the_approver(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_separation_of_duties_binds_the_delegate() {
    separation_of_duties_binds_the_delegate(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_separation_of_duties_binds_the_delegate() {
    separation_of_duties_binds_the_delegate(Kind::Postgres).await;
}
