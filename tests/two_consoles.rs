//! Two `gatehouse tui` processes in tmux on one fresh PostgreSQL database: a decision made in
//! one console shows in the other within one second (LISTEN/NOTIFY → refresh), measured from the
//! moment the deciding console confirms it on screen; checked in both directions. The same runs
//! on one SQLite file (`PRAGMA data_version` → refresh).

mod e2e_support;
mod support;

use std::time::{Duration, Instant};

use e2e_support::*;
use support::PgDb;

/// The most a decision may take to show in the other console.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);

/// Opens the approvals inbox in `session` and waits until it lists every one of `rows`.
fn open_inbox(tmux: &Tmux, session: &str, rows: &[(i64, &str)]) {
    tmux.keys(session, &["2"]);
    tmux.wait_for(session, "every request in the inbox", WAIT, |s| {
        rows.iter().all(|(id, name)| row_of(s, *id, name).is_some())
    });
}

/// Approves `(id, name)` in `decider` (filtered to that one row) and measures how long after the
/// decider confirms it `watcher` stops listing it while still listing `stays`.
fn decide_and_watch(
    fx: &Fixture,
    tmux: &Tmux,
    decider: &str,
    watcher: &str,
    (id, name): (i64, &str),
    stays: (i64, &str),
) -> Duration {
    filter(tmux, decider, INBOX, name, 1);
    let before = tmux.capture(watcher);
    assert!(
        row_of(&before, id, name).is_some(),
        "{watcher} lists {name} before the decision:\n{}",
        dump(&before)
    );

    tmux.keys(decider, &["a"]);
    // An admin deciding a stage that does not name them is asked to confirm the override.
    confirm_if_override(tmux, decider, fx, id);
    let confirmation = format!("approved request {id}");
    let start = Instant::now();
    let mut confirmed_at = None;
    let mut seen_at = None;
    while confirmed_at.is_none() || seen_at.is_none() {
        if confirmed_at.is_none()
            && tmux
                .capture(decider)
                .iter()
                .any(|l| l.contains(&confirmation))
        {
            confirmed_at = Some(Instant::now());
        }
        if seen_at.is_none() {
            let screen = tmux.capture(watcher);
            if row_of(&screen, id, name).is_none() && row_of(&screen, stays.0, stays.1).is_some() {
                seen_at = Some(Instant::now());
            }
        }
        if start.elapsed() > WAIT {
            panic!(
                "after {WAIT:?}: {decider} confirmed: {}, {watcher} updated: {}\n{decider}:\n{}\n{watcher}:\n{}",
                confirmed_at.is_some(),
                seen_at.is_some(),
                dump(&tmux.capture(decider)),
                dump(&tmux.capture(watcher))
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (confirmed_at, seen_at) = (
        confirmed_at.expect("set above"),
        seen_at.expect("set above"),
    );
    seen_at.saturating_duration_since(confirmed_at)
}

#[test]
fn a_decision_in_one_console_shows_in_the_other_within_a_second() {
    if !require_tool("tmux", "-V") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(pg) = rt.block_on(PgDb::create("two_consoles")) else {
        return;
    };
    two_consoles(Some(pg.url.clone()), "pg");
}

/// The same on one SQLite file (two processes; `PRAGMA data_version` drives the refresh).
#[test]
fn a_decision_in_one_console_shows_in_the_other_within_a_second_on_sqlite() {
    if !require_tool("tmux", "-V") {
        return;
    }
    two_consoles(None, "sqlite");
}

/// Two consoles on `url` (None: a SQLite file): a decision in each shows in the other.
fn two_consoles(url: Option<String>, tag: &str) {
    let mut fx = Fixture::new(url);
    fx.prepare_target();
    let pia = (fx.new_request("Pia Peer", "ppia"), "Pia Peer");
    let quinn = (fx.new_request("Quinn Peer", "qquinn"), "Quinn Peer");
    let stays = (fx.new_request("Stella Stays", "sstays"), "Stella Stays");
    fx.start_worker();
    for (id, _) in [pia, quinn, stays] {
        fx.wait_state(id, "awaiting_approval");
    }

    let tmux = Tmux::new(tag);
    for session in ["a", "b"] {
        tmux.start(session, 120, 40, &fx.tui_command(""));
        tmux.wait_for(session, "the overview", WAIT, |s| {
            s[0].contains("root (tui) · admin")
        });
        open_inbox(&tmux, session, &[pia, quinn, stays]);
    }

    let a_to_b = decide_and_watch(&fx, &tmux, "a", "b", pia, stays);
    eprintln!("{tag}: decision in console a showed in console b {a_to_b:?} after a confirmed it");
    // Console a drops its filter and lists the rest before it watches.
    tmux.keys("a", &["Escape"]);
    tmux.wait_for("a", "the unfiltered inbox", WAIT, |s| {
        row_of(s, quinn.0, quinn.1).is_some() && row_of(s, stays.0, stays.1).is_some()
    });
    let b_to_a = decide_and_watch(&fx, &tmux, "b", "a", quinn, stays);
    eprintln!("{tag}: decision in console b showed in console a {b_to_a:?} after b confirmed it");

    for (id, _) in [pia, quinn] {
        let stage = &fx.detail(id).approvals[0];
        assert_eq!(stage.status, "approved", "request {id}");
        assert_eq!(
            fx.decisions(stage.id).len(),
            1,
            "one decision for request {id}"
        );
    }
    assert_eq!(fx.detail(stays.0).approvals[0].status, "pending");
    assert!(a_to_b <= PROPAGATION_LIMIT, "a → b took {a_to_b:?}");
    assert!(b_to_a <= PROPAGATION_LIMIT, "b → a took {b_to_a:?}");
    for session in ["a", "b"] {
        tmux.keys(session, &["C-c"]);
        tmux.wait_for(session, "the console to exit", WAIT, |_| {
            !tmux.alive(session)
        });
    }
}
