//! Validation against the directory as an engine step, on SQLite and PostgreSQL: the
//! requester must be the subject's line manager (`required` sends a request that fails it to
//! triage, `warn` records it and goes on), the subject must be in the required groups; the
//! evidence is a timeline step of the request.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use approvals_support::*;
use gatehouse::store::api::CommandApi;
use store_db::{Kind, actor, fresh};

fn workflow(level: &str, groups: &str) -> String {
    format!(
        r#"kind = "workflow"
name = "chain"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]

[validation]
requester_is_line_manager = "{level}"
required_groups = [{groups}]

[[stages]]
name = "review"
policy = "any"
people = ["eve"]
"#
    )
}

fn evidence(d: &gatehouse::store::api::RequestDetail) -> serde_json::Value {
    d.timeline
        .iter()
        .find(|t| t.detail["name"] == "validate: directory checks")
        .map(|t| t.detail.clone())
        .unwrap_or_else(|| panic!("no directory check step: {:#?}", d.timeline))
}

async fn requester_must_be_the_line_manager(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("required", "")).await;
    let (stop, workers) = three_workers(s);
    let mut by_manager = joiner("gina");
    by_manager.requester = "ann@example.com".into();
    let a = s
        .create_request(&actor("admin"), by_manager)
        .await
        .expect("a");
    let b = s
        .create_request(&actor("admin"), joiner("ivan"))
        .await
        .expect("b");
    idle(s).await;
    let d = detail(s, a.id).await;
    assert_eq!(
        d.request.state.name(),
        "awaiting_approval",
        "{:?}",
        d.request.last_error
    );
    let e = evidence(&d);
    assert_eq!(e["output"]["evidence"]["requester"], "ann");
    assert_eq!(e["output"]["evidence"]["line_manager"], "ann");
    let d = detail(s, b.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("requester: hr@example.com is not ivan's line manager (the directory says ann)")
    );
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

async fn required_groups_and_warnings(kind: Kind) {
    let Some(db) = fresh(kind).await else { return };
    let s = &db.store;
    configure(s, &workflow("warn", "\"security\"")).await;
    let (stop, workers) = three_workers(s);
    let a = s
        .create_request(&actor("admin"), joiner("dan"))
        .await
        .expect("a");
    let b = s
        .create_request(&actor("admin"), joiner("gina"))
        .await
        .expect("b");
    idle(s).await;
    // dan is in security; the line-manager check only warns.
    let d = detail(s, a.id).await;
    assert_eq!(
        d.request.state.name(),
        "awaiting_approval",
        "{:?}",
        d.request.last_error
    );
    let e = evidence(&d);
    assert_eq!(
        e["error"],
        "requester: the directory knows no line manager of dan, so hr@example.com cannot be confirmed as it"
    );
    assert_eq!(
        e["output"]["evidence"]["subject_groups"],
        serde_json::json!(["security"])
    );
    let d = detail(s, b.id).await;
    assert_eq!(d.request.state.name(), "needs_triage");
    assert_eq!(
        d.request.last_error.as_deref(),
        Some("groups: gina is not in the required group security")
    );
    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test]
async fn sqlite_requester_must_be_the_line_manager() {
    requester_must_be_the_line_manager(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_requester_must_be_the_line_manager() {
    requester_must_be_the_line_manager(Kind::Postgres).await;
}

#[tokio::test]
async fn sqlite_required_groups_and_warnings() {
    required_groups_and_warnings(Kind::Sqlite).await;
}

#[tokio::test]
async fn postgres_required_groups_and_warnings() {
    required_groups_and_warnings(Kind::Postgres).await;
}
