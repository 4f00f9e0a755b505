//! Carrying decisions forward, on SQLite and PostgreSQL with three workers: with
//! `carry_forward = true` on a stage, an approver who approved an earlier stage of the request
//! has that approval recorded when the stage opens (marked "carried forward from stage 1",
//! audited, in the timeline) and counted by the stage's policy — a quorum still needs the
//! others, an `any` stage is approved at once and the request goes on; a delegate's decision
//! for them does not carry, and without the option nothing is carried.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use approvals_support::*;
use gatehouse::store::api::{CommandApi, Decision, ReadApi};
use store_db::{Kind, actor, fresh};

/// Stage 1 is gina's manager ann; stage 2 (`policy`) is the security group (cid, dan) and the
/// line manager again.
fn carrying(policy: &str, carry: bool) -> String {
    workflow("\"group:security\", \"line_manager\"")
        .replace("policy = \"quorum(2)\"", &format!("policy = \"{policy}\""))
        .replace(
            "approvers = [\"group:security\", \"line_manager\"]",
            &format!("approvers = [\"group:security\", \"line_manager\"]\ncarry_forward = {carry}"),
        )
}

async fn approve_stage_one(s: &gatehouse::store::Store, who: &str, id: i64) {
    let a = pending(&detail(s, id).await);
    assert_eq!(a.approvers, vec!["ann"]);
    s.decide_approval(&actor(who), a.id, a.version, Decision::Approve, None)
        .await
        .expect("stage 1 approved");
    idle(s).await;
}

async fn a_quorum_counts_the_carried_approval_like_a_fresh_one(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &carrying("quorum(2)", true)).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    approve_stage_one(s, "ann", r.id).await;

    let d = detail(s, r.id).await;
    let second = pending(&d);
    assert_eq!(second.approvers, vec!["cid", "dan", "ann"]);
    assert_eq!(second.decisions.len(), 1, "{:?}", second.decisions);
    let carried = &second.decisions[0];
    assert_eq!(carried.approver, "ann");
    assert_eq!(carried.decision, Decision::Approve);
    assert_eq!(carried.carried_from, Some(0));
    assert!(carried.decided_by.is_none() && !carried.overridden);
    assert!(
        d.timeline.iter().any(|t| t.kind == "approval"
            && t.summary == "ann approved stage security (carried forward from stage 1)"),
        "{:#?}",
        d.timeline
    );
    assert_eq!(
        db.raw_i64("SELECT COUNT(*) FROM audit WHERE action = 'approval.carry_forward'")
            .await,
        1
    );
    let audit = s
        .list_audit(&Default::default(), None, 1000)
        .await
        .expect("audit")
        .rows
        .into_iter()
        .find(|row| row.action == "approval.carry_forward")
        .expect("carry audit");
    let after = serde_json::to_string(&audit).expect("json");
    assert!(after.contains(r#""carried_from":0"#), "{after}");
    assert!(after.contains("carried forward from stage 1"), "{after}");
    // ann has decided this stage: no second vote, and her inbox no longer lists it.
    let err = s
        .decide_approval(
            &actor("ann"),
            second.id,
            second.version,
            Decision::Approve,
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already decided"), "{err}");
    let inbox = s
        .pending_approvals("ann", None, None, 50)
        .await
        .expect("inbox");
    assert!(!inbox.rows.iter().any(|x| x.id == second.id));
    // One fresh approval makes the quorum.
    let done = s
        .decide_approval(
            &actor("cid"),
            second.id,
            second.version,
            Decision::Approve,
            None,
        )
        .await
        .expect("cid approves");
    assert_eq!(done.status, "approved");
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn an_any_stage_is_approved_when_it_opens(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &carrying("any", true)).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    approve_stage_one(s, "ann", r.id).await;
    let d = detail(s, r.id).await;
    let second = d.approvals.iter().find(|a| a.stage == 1).expect("stage 2");
    assert_eq!(second.status, "approved", "{second:#?}");
    assert_eq!(second.decisions.len(), 1);
    assert_eq!(second.decisions[0].carried_from, Some(0));
    assert!(
        d.approvals.iter().all(|a| a.status == "approved"),
        "{:#?}",
        d.approvals
    );
    assert_ne!(d.request.state.name(), "awaiting_approval");
    // It was never anybody's to decide.
    for who in ["cid", "dan", "ann"] {
        let inbox = s
            .pending_approvals(who, None, None, 50)
            .await
            .expect("inbox");
        assert!(inbox.rows.is_empty(), "{who}: {:?}", inbox.rows);
    }
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn only_own_approvals_carry_and_only_when_asked(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &carrying("any", true)).await;
    let (stop, workers) = three_workers(s);
    // eve decides stage 1 acting for ann: that is not ann's own approval, nothing carries.
    s.delegate(&actor("ann"), "ann", "eve", s.now() + 86_400_000)
        .await
        .expect("delegate");
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    approve_stage_one(s, "eve", r.id).await;
    let second = pending(&detail(s, r.id).await);
    assert!(second.decisions.is_empty(), "{:?}", second.decisions);
    // Without carry_forward, ann's own approval stays with stage 1.
    configure_again(s, &carrying("any", false)).await;
    let r = s
        .create_request(&actor("admin"), joiner("ivan"))
        .await
        .expect("create");
    idle(s).await;
    approve_stage_one(s, "ann", r.id).await;
    let second = pending(&detail(s, r.id).await);
    assert_eq!(second.approvers, vec!["cid", "dan", "ann"]);
    assert!(second.decisions.is_empty(), "{:?}", second.decisions);
    assert_eq!(
        db.raw_i64("SELECT COUNT(*) FROM audit WHERE action = 'approval.carry_forward'")
            .await,
        0
    );
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

/// Save a new version of the workflow.
async fn configure_again(s: &gatehouse::store::Store, text: &str) {
    let head = s
        .config_versions("chain")
        .await
        .expect("versions")
        .into_iter()
        .map(|v| v.version)
        .max()
        .expect("a version");
    s.save_config(&actor("admin"), "workflow", "chain", text, "", head)
        .await
        .expect("workflow v2");
}

#[tokio::test]
async fn sqlite_a_quorum_counts_the_carried_approval_like_a_fresh_one() {
    a_quorum_counts_the_carried_approval_like_a_fresh_one(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_quorum_counts_the_carried_approval_like_a_fresh_one() {
    a_quorum_counts_the_carried_approval_like_a_fresh_one(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_an_any_stage_is_approved_when_it_opens() {
    an_any_stage_is_approved_when_it_opens(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_an_any_stage_is_approved_when_it_opens() {
    an_any_stage_is_approved_when_it_opens(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_only_own_approvals_carry_and_only_when_asked() {
    only_own_approvals_carry_and_only_when_asked(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_only_own_approvals_carry_and_only_when_asked() {
    only_own_approvals_carry_and_only_when_asked(Kind::Postgres).await;
}
