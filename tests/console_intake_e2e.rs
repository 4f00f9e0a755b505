//! The real `gatehouse tui` binary in tmux on what intake leaves for people: a request in
//! `needs_triage` (its start date missing) is opened with `:rq N`, `e` opens the triage editor
//! with why it is in triage, the start date is typed and ctrl-s sends it on; the store records
//! the fix under the operator and the worker takes the request on to its approval.
//! Without tmux the test prints a note and skips; under CI (env `CI`) it fails.

mod e2e_support;
mod support;

use e2e_support::*;
use gatehouse::store::api::AuditFilter;

const S: &str = "intake";

/// Enters a sales-joiner request without a start date, as intake would.
fn request_without_start_date(fx: &Fixture, name: &str, username: &str) -> i64 {
    use gatehouse::store::api::{Actor, CommandApi, NewRequest};
    use gatehouse::store::{OpenOptions, Store};
    let request = NewRequest {
        workflow: "sales-joiner".into(),
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(format!("{username}@example.com")),
        username: Some(username.into()),
        requester: REQUESTER.into(),
        source: "email".into(),
        payload: serde_json::json!({"team": "sales", "manager": "bob"}),
    };
    fx.rt.block_on(async {
        let store = Store::open(&fx.url, OpenOptions::default())
            .await
            .expect("open the store to enter a request");
        let row = store
            .create_request(&Actor::system("intake", "e2e"), request)
            .await
            .expect("enter a request");
        store.close().await;
        row.id
    })
}

#[test]
fn the_triage_editor_fixes_a_request_and_the_engine_takes_it_on() {
    if !require_tool("tmux", "-V") {
        return;
    }
    let mut fx = Fixture::new(None);
    let tina = request_without_start_date(&fx, "Tina Triage", "ttriage");
    fx.start_worker();
    fx.wait_state(tina, "needs_triage");
    let why = fx.detail(tina).request.last_error.unwrap_or_default();
    assert!(why.contains("start_date"), "{why}");

    let tmux = Tmux::new("intake");
    tmux.start(S, 100, 30, &fx.tui_command(""));
    tmux.wait_for(S, "the overview", WAIT, |s| s[0].starts_with(" overview"));
    tmux.keys(S, &[":"]);
    tmux.type_text(S, &format!("rq {tina}"));
    tmux.keys(S, &["Enter"]);
    tmux.wait_text(S, "Tina Triage");
    tmux.keys(S, &["e"]);
    let screen = tmux.wait_text(S, &format!("fix request {tina}"));
    assert!(
        screen
            .iter()
            .any(|l| l.contains("needs triage:") && l.contains("start_date")),
        "the form says why: {}",
        dump(&screen)
    );
    // name, e-mail, username, team, role, start date: five tabs to the start date.
    tmux.keys(S, &["Tab", "Tab", "Tab", "Tab", "Tab"]);
    tmux.type_text(S, "2099-03-01");
    tmux.keys(S, &["C-s"]);
    tmux.wait_text(
        S,
        &format!("request {tina} sent on with its corrected fields"),
    );

    let approval = fx.wait_approval(tina);
    assert!(approval > 0);
    let detail = fx.detail(tina);
    assert_eq!(detail.request.payload["start_date"], "2099-03-01");
    assert_eq!(
        detail.request.payload["team"], "sales",
        "untouched fields kept"
    );
    let fixes = fx.audit(AuditFilter {
        action: Some("triage".into()),
        entity_id: Some(tina.to_string()),
        ..Default::default()
    });
    assert!(
        fixes
            .iter()
            .any(|row| row.actor == OPERATOR && row.source == "tui"),
        "the fix is audited under the operator: {fixes:?}"
    );
    tmux.keys(S, &["C-c"]);
    tmux.wait_for(S, "the console to exit", WAIT, |_| !tmux.alive(S));
}
