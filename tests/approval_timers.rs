//! Stage timers with a controllable clock and three workers running, on SQLite and
//! PostgreSQL: a reminder at the threshold and only once (however many workers run the timer
//! job), escalation to the stage's `escalate_to` resolved from the directory, expiry → the
//! request rejected with a reason. Also: approvers are resolved from the directory when each
//! stage opens, and the chain preview sends a request with a missing manager or an empty
//! group to triage at intake, saying why. With a business-hours calendar every timer counts
//! working time only.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use approvals_support::*;
use gatehouse::store::api::{AuditFilter, CommandApi, Decision, ReadApi};
use store_db::{Kind, TestDb, actor, fresh};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

async fn audit_count(db: &TestDb, action: &str) -> i64 {
    db.raw_i64(&format!(
        "SELECT COUNT(*) FROM audit WHERE action = '{action}'"
    ))
    .await
}

async fn timers_remind_escalate_and_expire(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:security\", \"managers_manager\"")).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let d = detail(s, r.id).await;
    assert_eq!(
        d.request.state.name(),
        "awaiting_approval",
        "{:#?}",
        d.timeline
    );
    let a = pending(&d);
    assert_eq!(
        a.approvers,
        vec!["ann"],
        "the line manager, from the directory"
    );
    let opened = a.created_at;
    // Next deadline: the first reminder (computed just before the stage row was written).
    let first = a.escalate_at.expect("a deadline");
    assert!(
        (first - (opened + HOUR)).abs() < 5_000,
        "{first} vs {opened}"
    );
    assert_eq!(
        steps(&d, "stage 1 (manager) approvers from the directory").len(),
        1
    );

    tick(s, opened + 59 * MIN, "a").await;
    assert!(
        steps(&detail(s, r.id).await, "reminder").is_empty(),
        "not yet"
    );

    // At the threshold, three workers each run the timer job: one reminder.
    tick(s, opened + HOUR, "b").await;
    tick(s, opened + HOUR + 5 * MIN, "c").await;
    let d = detail(s, r.id).await;
    assert_eq!(
        steps(&d, "reminder"),
        vec!["reminder 1 for stage 1 (manager): waiting on ann"]
    );
    assert_eq!(audit_count(&db, "approval.remind").await, 1);
    assert_eq!(pending(&d).escalate_at, Some(opened + 2 * HOUR));
    // The reminder is handed to the notifier (which says it is not built yet).
    assert_eq!(steps(&d, "notify.reminder").len(), 1);

    // Four hours: the last reminder (the third; bounded) and the escalation to the owners of
    // the security group.
    tick(s, opened + 4 * HOUR, "d").await;
    let d = detail(s, r.id).await;
    assert_eq!(
        steps(&d, "reminder"),
        vec![
            "reminder 1 for stage 1 (manager): waiting on ann",
            "reminder 3 for stage 1 (manager): waiting on ann"
        ]
    );
    assert_eq!(
        steps(&d, "escalated"),
        vec!["escalated stage 1 (manager) to eve"]
    );
    let a = pending(&d);
    assert_eq!(a.approvers, vec!["ann", "eve"]);
    assert_eq!(a.escalate_at, Some(opened + 24 * HOUR), "next: expiry");
    // eve now sees it in her inbox.
    let inbox = s
        .pending_approvals("eve", None, None, 50)
        .await
        .expect("inbox");
    assert!(inbox.rows.iter().any(|x| x.id == a.id), "{inbox:?}");
    tick(s, opened + 10 * HOUR, "e").await;
    assert_eq!(audit_count(&db, "approval.escalate").await, 1);
    assert_eq!(audit_count(&db, "approval.remind").await, 2);

    // A day: expired, the request rejected with the reason.
    tick(s, opened + 24 * HOUR, "f").await;
    tick(s, opened + 25 * HOUR, "g").await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "rejected");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("stage 1 (manager) expired: nobody decided within 1d")
    );
    assert_eq!(d.approvals[0].status, "rejected");
    assert_eq!(audit_count(&db, "approval.expire").await, 1);
    // A late decision is refused: the stage is closed.
    assert!(
        s.decide_approval(&actor("ann"), a.id, a.version, Decision::Approve, None)
            .await
            .is_err()
    );
    let audit = s
        .list_audit(&AuditFilter::default(), None, 500)
        .await
        .expect("audit");
    assert!(audit.rows.iter().any(|row| row.action == "approval.expire"));
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

/// A business-hours calendar: the day the stage opens (and the days either side) are
/// holidays and the working day is 08:00-16:00 UTC, so every timer counts from 08:00 two days
/// after the test started, whatever the time of day.
async fn timers_count_business_hours_with_a_calendar(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| {
        (today + chrono::Duration::days(n))
            .format("%Y-%m-%d")
            .to_string()
    };
    let text = format!(
        "{}\n[calendar]\ntime_zone = \"UTC\"\ndays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\nhours = \"08:00-16:00\"\nholidays = [\"{}\", \"{}\", \"{}\"]\n",
        workflow("\"group:security\", \"managers_manager\""),
        day(-1),
        day(0),
        day(1)
    );
    configure(s, &text).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let a = pending(&detail(s, r.id).await);
    let opened = a.created_at;
    let start = (today + chrono::Duration::days(2))
        .and_hms_opt(8, 0, 0)
        .expect("08:00")
        .and_utc()
        .timestamp_millis();
    // The first reminder is one working hour into the first working day.
    assert_eq!(a.escalate_at, Some(start + HOUR));

    // An hour of wall-clock time on a holiday is no working time at all.
    tick(s, opened + HOUR, "a").await;
    tick(s, start + 59 * MIN, "b").await;
    assert!(
        steps(&detail(s, r.id).await, "reminder").is_empty(),
        "not yet"
    );
    tick(s, start + HOUR, "c").await;
    tick(s, start + HOUR + 5 * MIN, "d").await;
    let d = detail(s, r.id).await;
    assert_eq!(
        steps(&d, "reminder"),
        vec!["reminder 1 for stage 1 (manager): waiting on ann"]
    );
    assert_eq!(audit_count(&db, "approval.remind").await, 1);
    assert_eq!(pending(&d).escalate_at, Some(start + 2 * HOUR));
    // Expiry after a day of business hours: three working days of 8 hours.
    tick(s, start + 2 * 24 * HOUR + 7 * HOUR, "e").await;
    assert_eq!(
        detail(s, r.id).await.request.state.name(),
        "awaiting_approval"
    );
    tick(s, start + 2 * 24 * HOUR + 8 * HOUR, "f").await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "rejected");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("stage 1 (manager) expired: nobody decided within 1d of business hours")
    );
    assert_eq!(audit_count(&db, "approval.expire").await, 1);
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn stages_resolve_from_the_directory_when_they_open(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:security\", \"managers_manager\"")).await;
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    // The directory changes after validation: hugo joins security.
    let changed = DIRECTORY.replace(
        "login = \"hugo\"\nname = \"Hugo Holm\"\nemail = \"hugo@example.com\"",
        "login = \"hugo\"\nname = \"Hugo Holm\"\nemail = \"hugo@example.com\"\ngroups = [\"security\"]",
    );
    assert_ne!(changed, DIRECTORY);
    s.save_config(&actor("admin"), "directory", "people", &changed, "", 1)
        .await
        .expect("directory v2");
    let a = pending(&detail(s, r.id).await);
    s.decide_approval(&actor("ann"), a.id, a.version, Decision::Approve, None)
        .await
        .expect("ann approves");
    idle(s).await;
    let d = detail(s, r.id).await;
    let second = pending(&d);
    assert_eq!(second.stage, 1);
    // Resolved now: cid, dan and hugo of security, then bob (ann's manager).
    assert_eq!(second.approvers, vec!["cid", "dan", "hugo", "bob"]);
    let preview = &d
        .timeline
        .iter()
        .find(|t| {
            t.detail["name"].as_str() == Some("stage 2 (security) approvers from the directory")
        })
        .expect("stage 2 step")
        .detail;
    assert_eq!(
        preview["input"]["preview"],
        serde_json::json!(["cid", "dan", "bob"])
    );
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn missing_manager_or_empty_group_goes_to_triage_at_intake(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("\"group:empty\"")).await;
    let (stop, workers) = three_workers(s);
    // hugo has no manager; stage 2's group is empty: both said at once.
    let r = s
        .create_request(&actor("admin"), joiner("hugo"))
        .await
        .expect("create");
    idle(s).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some(
            "stage 1 (manager) cannot be approved: line_manager: the directory knows no line manager of hugo; no eligible approver is left"
        )
    );
    // gina has a manager, but the group is empty.
    let r = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("create");
    idle(s).await;
    let d = detail(s, r.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some(
            "stage 2 (security) cannot be approved: group:empty: the group has no members; no eligible approver is left"
        )
    );
    assert!(d.approvals.is_empty(), "no stage opened");
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test]
async fn sqlite_timers_remind_escalate_and_expire() {
    timers_remind_escalate_and_expire(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_timers_remind_escalate_and_expire() {
    timers_remind_escalate_and_expire(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_stages_resolve_from_the_directory_when_they_open() {
    stages_resolve_from_the_directory_when_they_open(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_stages_resolve_from_the_directory_when_they_open() {
    stages_resolve_from_the_directory_when_they_open(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_missing_manager_or_empty_group_goes_to_triage_at_intake() {
    missing_manager_or_empty_group_goes_to_triage_at_intake(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_missing_manager_or_empty_group_goes_to_triage_at_intake() {
    missing_manager_or_empty_group_goes_to_triage_at_intake(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_timers_count_business_hours_with_a_calendar() {
    timers_count_business_hours_with_a_calendar(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_timers_count_business_hours_with_a_calendar() {
    timers_count_business_hours_with_a_calendar(Kind::Postgres).await;
}
