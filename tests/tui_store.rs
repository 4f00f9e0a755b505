//! The console against the real store (SQLite, and PostgreSQL when reachable): keys go through
//! `update`, the effects runner calls the store, outcomes come back as flashes, and every check
//! reads the store, not only the screen. Two consoles on one PostgreSQL see each other's
//! decisions within a second through the change signal. The delegation screen adds and
//! revokes through the store's delegation commands, and a refusal changes nothing.

// Shared with the store's own tests; this file uses part of it.
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::domain::request::{RequestEvent, RequestState};
use gatehouse::store::Store;
use gatehouse::store::api::{CommandApi, NewRequest, ReadApi};
use gatehouse::tui::action::Action;
use gatehouse::tui::app::AppState;
use gatehouse::tui::effects::{Effect, StoreCmd};
use gatehouse::tui::keymap::Keymap;
use gatehouse::tui::render_to_buffer;
use gatehouse::tui::runner::EffectRunner;
use gatehouse::tui::theme::{ColorDepth, Theme};
use ratatui::layout::Rect;
use store_db::{Kind, actor, fresh};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const ONBOARDING: &str = include_str!("good_configs/onboarding.toml");

struct Console {
    state: AppState,
    runner: EffectRunner<Store>,
    rx: UnboundedReceiver<Action>,
}

impl Console {
    fn new(store: &Store, user: &str, read_only: bool) -> Console {
        let (tx, rx) = unbounded_channel();
        let runner = EffectRunner::new(
            store.clone(),
            actor(user),
            None,
            ColorDepth::TrueColor,
            tx.clone(),
        );
        let now = chrono::Utc::now().timestamp_millis();
        let state = AppState::new(
            actor(user),
            "admin".into(),
            read_only,
            Theme::builtin("default"),
            Keymap::builtin(read_only),
            now,
        );
        gatehouse::tui::event::spawn_changes(store.changes(), tx, Duration::from_millis(50));
        Console { state, runner, rx }
    }

    /// Runs effects and everything they cause until nothing happens for a moment.
    async fn drive(&mut self, effects: Vec<Effect>) {
        for e in effects {
            self.runner.run(e);
        }
        loop {
            let action =
                match tokio::time::timeout(Duration::from_millis(150), self.rx.recv()).await {
                    Ok(Some(a)) => a,
                    _ => break,
                };
            self.apply(action);
        }
    }

    fn apply(&mut self, action: Action) {
        if std::env::var_os("TUI_TEST_DEBUG").is_some() {
            let what = match &action {
                Action::Loaded(l) => format!("loaded {:?}", l.kind()),
                other => format!("{:.60}", format!("{other:?}")),
            };
            eprintln!("{} {what}", self.state.operator.user);
        }
        if let Action::Loaded(l) = &action {
            self.runner.finished(l.kind());
        }
        for e in self.state.update(action) {
            self.runner.run(e);
        }
    }

    async fn key(&mut self, code: KeyCode) {
        let e = self
            .state
            .update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.drive(e).await;
    }

    async fn ctrl(&mut self, c: char) {
        let e = self.state.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::CONTROL,
        )));
        self.drive(e).await;
    }

    async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let e = self.state.update(Action::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
            self.drive(e).await;
        }
    }

    fn flash(&self) -> String {
        self.state
            .flash
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default()
    }

    fn screen(&self, w: u16, h: u16) -> String {
        let buf = render_to_buffer(&self.state, Rect::new(0, 0, w, h));
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Five requests awaiting approval by alice or bob, one failed request; returns their ids.
async fn seed(store: &Store) -> (Vec<i64>, i64) {
    let admin = actor("alice");
    store
        .set_operator(
            &actor("admin"),
            &gatehouse::store::api::OperatorRow {
                name: "alice".into(),
                role: "admin".into(),
                scopes: Vec::new(),
                email: None,
            },
        )
        .await
        .expect("operator");
    store
        .save_config(&admin, "workflow", "onboarding", ONBOARDING, "seed", 0)
        .await
        .expect("config");
    let mut pending = Vec::new();
    for (i, name) in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
        "Barbara Liskov",
        "Ken Thompson",
    ]
    .iter()
    .enumerate()
    {
        // Requests arrive from intake: alice, who decides them, did not enter them.
        let r = store
            .create_request(
                &actor("system:intake"),
                NewRequest {
                    workflow: "onboarding".into(),
                    kind: "joiner".into(),
                    subject_name: (*name).into(),
                    subject_email: Some(format!("p{i}@example.com")),
                    username: None,
                    requester: "hr@example.com".into(),
                    source: "cli".into(),
                    payload: serde_json::json!({"team": "Platform"}),
                },
            )
            .await
            .expect("request");
        let system = actor("system:test");
        store
            .transition_request(&system, r.id, RequestEvent::Classified, None)
            .await
            .expect("classified");
        store
            .transition_request(&system, r.id, RequestEvent::ValidationStarted, None)
            .await
            .expect("validating");
        if i == 5 {
            store
                .transition_request(
                    &system,
                    r.id,
                    RequestEvent::ValidationPassed { stages: 0 },
                    None,
                )
                .await
                .expect("scheduled");
            store
                .transition_request(&system, r.id, RequestEvent::ProvisioningStarted, None)
                .await
                .expect("provisioning");
            store
                .transition_request(
                    &system,
                    r.id,
                    RequestEvent::ProvisioningFailed,
                    Some("scim: 409 user exists".into()),
                )
                .await
                .expect("failed");
            return (pending, r.id);
        }
        store
            .transition_request(
                &system,
                r.id,
                RequestEvent::ValidationPassed { stages: 2 },
                None,
            )
            .await
            .expect("awaiting");
        store
            .open_approval(
                &system,
                r.id,
                0,
                "manager",
                "any",
                &["alice".to_string(), "bob".to_string()],
                None,
            )
            .await
            .expect("approval");
        pending.push(r.id);
    }
    unreachable!("the loop returns on the sixth request")
}

/// A throwaway PostgreSQL database with a migrated store on it.
async fn fresh_pg() -> Option<(support::PgDb, Store)> {
    let db = support::PgDb::create("tui").await?;
    let store = Store::open(&db.url, gatehouse::store::OpenOptions::default())
        .await
        .expect("open pg");
    store.migrate().await.expect("migrate pg");
    store_db::staff(&store).await;
    Some((db, store))
}

async fn approval_status(store: &Store, request_id: i64) -> String {
    let d = store.request_detail(request_id).await.expect("detail");
    d.approvals[0].status.clone()
}

async fn console_flows(store: &Store, kind: Kind) {
    let (pending, failed) = seed(store).await;
    let mut c = Console::new(store, "alice", false);
    let init = c.state.init();
    c.drive(init).await;
    assert!(c.state.overview.data.is_some(), "{kind:?}: overview loaded");

    // Approve one with `a`.
    c.key(KeyCode::Char('2')).await;
    assert_eq!(c.state.approvals.list.rows.len(), 5, "{kind:?}");
    let first = c
        .state
        .approvals
        .list
        .current()
        .map(|a| a.request_id)
        .expect("selected");
    assert_eq!(first, pending[0], "oldest first");
    c.key(KeyCode::Char('a')).await;
    assert_eq!(c.flash(), format!("approved request {first}"));
    assert_eq!(approval_status(store, first).await, "approved");
    assert_eq!(c.state.approvals.list.rows.len(), 4, "reloaded");

    // The same decision from a stale screen is a conflict naming who and when.
    let stale = store.request_detail(first).await.expect("detail").approvals[0].clone();
    c.drive(vec![Effect::Run(vec![StoreCmd::Decide {
        approval_id: stale.id,
        request_id: first,
        expected_version: stale.version - 1,
        decision: gatehouse::store::api::Decision::Approve,
        reason: None,
    }])])
    .await;
    assert!(
        c.flash()
            .starts_with(&format!("request {first}: already decided by alice at ")),
        "{kind:?}: {}",
        c.flash()
    );

    // Reject one with a reason.
    c.key(KeyCode::Char('r')).await;
    c.key(KeyCode::Enter).await;
    assert!(c.screen(80, 24).contains("a reason is required"));
    c.type_text("duplicate of another request").await;
    let second = c
        .state
        .approvals
        .list
        .current()
        .map(|a| a.request_id)
        .expect("selected");
    c.key(KeyCode::Enter).await;
    assert_eq!(
        c.flash(),
        format!("rejected request {second}: duplicate of another request")
    );
    let d = store.request_detail(second).await.expect("detail");
    assert_eq!(d.approvals[0].status, "rejected");
    assert_eq!(
        d.approvals[0].decisions[0].reason.as_deref(),
        Some("duplicate of another request")
    );

    // Mark three and bulk-approve with the confirmation.
    for _ in 0..3 {
        c.key(KeyCode::Char(' ')).await;
    }
    c.key(KeyCode::Char('a')).await;
    assert!(c.screen(80, 24).contains("3 selected — confirm"));
    c.key(KeyCode::Char('y')).await;
    assert_eq!(c.flash(), "approved 3 of 3 selected");
    for id in &pending[2..5] {
        assert_eq!(
            approval_status(store, *id).await,
            "approved",
            "{kind:?}: request {id}"
        );
    }
    assert!(c.state.approvals.list.rows.is_empty());

    // Retry the failed request from the requests view.
    c.key(KeyCode::Char('3')).await;
    c.key(KeyCode::Char('/')).await;
    c.type_text("state:failed").await;
    c.key(KeyCode::Enter).await;
    assert_eq!(c.state.requests.list.rows.len(), 1, "{kind:?}");
    c.key(KeyCode::Char('R')).await;
    assert_eq!(c.flash(), format!("retry queued for request {failed}"));
    let r = store.request_detail(failed).await.expect("detail").request;
    assert_eq!(r.state, RequestState::Scheduled);

    // Open the workflow, break it (line:col shown, nothing saved), fix it, save.
    c.key(KeyCode::Char('7')).await;
    c.key(KeyCode::Char('e')).await;
    c.key(KeyCode::Down).await;
    c.key(KeyCode::Char('=')).await;
    c.ctrl('s').await;
    assert!(c.flash().starts_with("2:"), "{}", c.flash());
    assert!(c.flash().ends_with("nothing saved"), "{}", c.flash());
    assert_eq!(
        store
            .config_versions("onboarding")
            .await
            .expect("versions")
            .len(),
        1
    );
    c.key(KeyCode::Home).await;
    c.key(KeyCode::Delete).await;
    c.key(KeyCode::End).await;
    c.key(KeyCode::Enter).await;
    c.type_text("# reviewed in the console").await;
    c.ctrl('s').await;
    assert!(c.screen(100, 30).contains("+ # reviewed in the console"));
    c.key(KeyCode::Char('y')).await;
    assert_eq!(c.flash(), "saved workflow onboarding version 2");
    let versions = store.config_versions("onboarding").await.expect("versions");
    assert_eq!(versions.len(), 2);
    assert!(versions[0].body.contains("# reviewed in the console"));
    assert_eq!(versions[0].author, "alice");

    // Every view renders real data at both sizes.
    for key in ['1', '2', '3', '4', '5', '6', '7', '8'] {
        c.key(KeyCode::Esc).await;
        c.key(KeyCode::Char(key)).await;
        for (w, h) in [(80, 24), (160, 48)] {
            let text = c.screen(w, h);
            assert!(
                !text.contains("error:"),
                "{kind:?} view {key} at {w}x{h}:\n{text}"
            );
        }
    }
    assert!(
        c.screen(160, 48).contains("hash chain intact"),
        "{}",
        c.screen(160, 48)
    );
    let audit = store
        .list_audit(&Default::default(), None, 500)
        .await
        .expect("audit");
    assert!(
        audit
            .rows
            .iter()
            .any(|a| a.actor == "alice" && a.action.contains("config"))
    );
}

/// The delegation screen against the store: `a` adds through the form (the store records it,
/// with the reason), a delegation for someone else is refused by the store and nothing
/// changes, `x` revokes after a y/n; the status line says what happened each time.
async fn delegation_screen(store: &Store, kind: Kind) {
    let mut c = Console::new(store, "ann", false);
    let go = c.state.run_verb("delegations");
    c.drive(go).await;
    assert!(c.state.delegations.list.rows.is_empty(), "{kind:?}");

    // ann delegates her approvals to dan, with a reason.
    c.key(KeyCode::Char('a')).await;
    assert!(c.screen(80, 24).contains("new delegation"), "{kind:?}");
    c.type_text("dan").await;
    c.key(KeyCode::Tab).await;
    c.key(KeyCode::Tab).await;
    c.type_text("holiday").await;
    c.key(KeyCode::Enter).await;
    assert_eq!(
        c.flash(),
        "delegation added: dan decides for ann",
        "{kind:?}"
    );
    let rows = store.delegations(None).await.expect("delegations");
    assert_eq!(rows.len(), 1, "{kind:?}");
    assert_eq!(
        (
            rows[0].from.as_str(),
            rows[0].to.as_str(),
            rows[0].created_by.as_str()
        ),
        ("ann", "dan", "ann")
    );
    assert_eq!(rows[0].reason.as_deref(), Some("holiday"));
    let week = rows[0].until - rows[0].created_at;
    assert!(
        (week - 7 * 86_400_000).abs() < 60_000,
        "{kind:?}: 7d: {week}"
    );
    assert_eq!(c.state.delegations.list.rows.len(), 1, "{kind:?}: reloaded");
    assert!(c.screen(160, 48).contains("holiday"), "{kind:?}");

    // ann may not delegate bob's approvals: the store refuses, the form's values are not kept.
    c.key(KeyCode::Char('a')).await;
    c.key(KeyCode::Up).await;
    c.ctrl('u').await;
    c.type_text("bob").await;
    c.key(KeyCode::Down).await;
    c.type_text("cid").await;
    c.key(KeyCode::Down).await;
    c.key(KeyCode::Down).await;
    c.key(KeyCode::Enter).await;
    assert!(
        c.flash().starts_with("delegation bob → cid failed: ")
            && c.flash()
                .contains("only the person delegating (an approver) or an unscoped admin may"),
        "{kind:?}: {}",
        c.flash()
    );
    assert_eq!(
        store.delegations(None).await.expect("list").len(),
        1,
        "{kind:?}"
    );
    let audit = store
        .list_audit(&Default::default(), None, 500)
        .await
        .expect("audit");
    assert!(
        audit
            .rows
            .iter()
            .any(|r| r.action == "delegation.create.refused" && r.actor == "ann"),
        "{kind:?}"
    );
    // A form that cannot be sent says why and stays open.
    c.key(KeyCode::Char('a')).await;
    c.type_text("dan").await;
    c.key(KeyCode::Tab).await;
    c.ctrl('u').await;
    c.type_text("soon").await;
    c.key(KeyCode::Tab).await;
    c.key(KeyCode::Enter).await;
    match &c.state.popup {
        Some(gatehouse::tui::app::Popup::Delegation(form)) => assert!(
            form.error
                .as_deref()
                .is_some_and(|e| e.starts_with("until: \"soon\" is not a time")),
            "{kind:?}: {:?}",
            form.error
        ),
        other => panic!("{kind:?}: the form stays open: {other:?}"),
    }
    c.key(KeyCode::Esc).await;
    assert_eq!(c.flash(), "new delegation abandoned, nothing changed");

    // bob's own delegation (made by the admin) is not ann's to revoke.
    store
        .delegate(&actor("admin"), "bob", "cid", store.now() + 86_400_000)
        .await
        .expect("admin delegates for bob");
    c.ctrl('r').await;
    assert_eq!(c.state.delegations.list.rows.len(), 2, "{kind:?}");
    // The selection stays on ann's row; the newest is at the top.
    let kept = c.state.delegations.list.current().map(|d| d.from.clone());
    assert_eq!(kept.as_deref(), Some("ann"), "{kind:?}");
    c.key(KeyCode::Char('g')).await;
    let bobs = c
        .state
        .delegations
        .list
        .current()
        .expect("selected")
        .clone();
    assert_eq!(bobs.from, "bob", "newest first");
    c.key(KeyCode::Char('x')).await;
    c.key(KeyCode::Char('y')).await;
    assert!(
        c.flash()
            .contains("only the person who delegated or an unscoped admin may"),
        "{kind:?}: {}",
        c.flash()
    );
    let now_rows = store.delegations(None).await.expect("list");
    assert!(
        now_rows.iter().all(|d| d.revoked_at.is_none()),
        "{kind:?}: nothing revoked"
    );

    // ann revokes her own: after y, the store has it revoked and the screen says so.
    c.key(KeyCode::Char('j')).await;
    let own = c
        .state
        .delegations
        .list
        .current()
        .expect("selected")
        .clone();
    assert_eq!(own.from, "ann");
    c.key(KeyCode::Char('x')).await;
    assert!(c.screen(80, 24).contains("confirm"), "{kind:?}");
    c.key(KeyCode::Char('y')).await;
    assert_eq!(
        c.flash(),
        format!("delegation {} (ann → dan) revoked", own.id),
        "{kind:?}"
    );
    let revoked = store
        .delegations(None)
        .await
        .expect("list")
        .into_iter()
        .find(|d| d.id == own.id)
        .expect("row");
    assert!(revoked.revoked_at.is_some(), "{kind:?}");
    assert!(c.screen(160, 48).contains("revoked"), "{kind:?}");
    // Revoking it again is refused before it reaches the store.
    c.key(KeyCode::Char('x')).await;
    assert_eq!(
        c.flash(),
        format!(
            "delegation {} is already revoked, nothing to revoke",
            own.id
        )
    );
}

#[tokio::test]
async fn delegation_screen_on_sqlite() {
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    delegation_screen(&db.store, Kind::Sqlite).await;
}

#[tokio::test]
async fn delegation_screen_on_postgres() {
    let Some((_db, store)) = fresh_pg().await else {
        return;
    };
    delegation_screen(&store, Kind::Postgres).await;
}

#[tokio::test]
async fn console_flows_on_sqlite() {
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    console_flows(&db.store, Kind::Sqlite).await;
}

#[tokio::test]
async fn console_flows_on_postgres() {
    let Some((_db, store)) = fresh_pg().await else {
        return;
    };
    console_flows(&store, Kind::Postgres).await;
}

#[tokio::test]
async fn read_only_console_refuses_and_changes_nothing() {
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let (pending, _) = seed(&db.store).await;
    let ro = db.reopen(true).await;
    let mut c = Console::new(&ro, "alice", true);
    c.key(KeyCode::Char('2')).await;
    assert_eq!(c.state.approvals.list.rows.len(), 5);
    c.key(KeyCode::Char('a')).await;
    assert_eq!(c.flash(), "read-only: approve is not available");
    assert_eq!(approval_status(&db.store, pending[0]).await, "pending");
    // Even a command that reached the store would be refused by it.
    c.drive(vec![Effect::Run(vec![StoreCmd::RetryRequest {
        request_id: pending[0],
    }])])
    .await;
    assert!(c.flash().contains("read-only"), "{}", c.flash());
}

#[tokio::test]
async fn two_consoles_on_postgres_see_each_others_decisions_within_a_second() {
    let Some((db, store)) = fresh_pg().await else {
        return;
    };
    let (pending, _) = seed(&store).await;
    let other = Store::open(&db.url, gatehouse::store::OpenOptions::default())
        .await
        .expect("second handle");
    let mut a = Console::new(&store, "alice", false);
    let mut b = Console::new(&other, "bob", false);
    a.key(KeyCode::Char('2')).await;
    b.key(KeyCode::Char('2')).await;
    assert_eq!(b.state.approvals.list.rows.len(), 5);
    a.key(KeyCode::Char('a')).await;
    assert_eq!(a.flash(), format!("approved request {}", pending[0]));
    let decided = Instant::now();
    // Console B only listens: its change signal must bring the decision in.
    loop {
        let left = Duration::from_secs(1).saturating_sub(decided.elapsed());
        assert!(
            !left.is_zero(),
            "console B did not see the decision within one second"
        );
        if let Ok(Some(action)) = tokio::time::timeout(left, b.rx.recv()).await {
            b.apply(action);
        }
        if !b
            .state
            .approvals
            .list
            .rows
            .iter()
            .any(|r| r.request_id == pending[0])
        {
            break;
        }
    }
    assert_eq!(b.state.approvals.list.rows.len(), 4);
    assert!(!b.screen(160, 48).contains("Ada Lovelace"));
    drop((a, b, store, other));
}
