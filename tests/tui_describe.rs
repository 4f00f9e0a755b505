//! The describe view and the reading views: Enter on a timeline entry, job, audit row or log
//! line shows readable key/value text (local times, `old → new`), the request pane scrolls,
//! the approvals preview shows the pinned plan, and log views keep their scope and read well.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::store::api::Page;
use gatehouse::tui::action::{Action, Loaded};
use gatehouse::tui::app::{AppState, Popup};
use gatehouse::tui::command::Command;
use gatehouse::tui::render_to_buffer;
use ratatui::layout::Rect;
use tui_support::*;

fn press(state: &mut AppState, code: KeyCode) {
    let _ = state.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn chars(state: &mut AppState, text: &str) {
    for c in text.chars() {
        press(state, KeyCode::Char(c));
    }
}

fn lines(state: &AppState, w: u16, h: u16) -> Vec<String> {
    let buf = render_to_buffer(state, Rect::new(0, 0, w, h));
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

const SIZES: [(u16, u16); 3] = [(80, 24), (100, 30), (160, 48)];

/// Request 12 open, with a provisioning step whose detail is nested JSON with epoch times.
fn detail_with_step() -> AppState {
    let mut s = loaded_state("default");
    let mut d = detail(12);
    d.timeline.push(gatehouse::store::api::TimelineEntry {
        at: NOW - 5 * 60_000,
        kind: "step".into(),
        summary: "step create-account done".into(),
        detail: serde_json::json!({
            "step": "create-account",
            "connector": "demo-target",
            "output": {
                "outcome": "created",
                "connector": "demo-target",
                "account": "gnunez",
                "statements": [
                    {"sql": "INSERT INTO users (username, email) VALUES (?, ?)", "params": ["gnunez", "gnunez@example.com"], "rows": 1}
                ]
            },
            "started_at": NOW - 5 * 60_000 - 1_200,
            "finished_at": NOW - 5 * 60_000,
            "error": null
        }),
    });
    press(&mut s, KeyCode::Char(':'));
    chars(&mut s, "rq 12");
    press(&mut s, KeyCode::Enter);
    feed(
        &mut s,
        Loaded::Detail {
            id: 12,
            result: Ok(d),
        },
    );
    s
}

#[test]
fn enter_on_a_timeline_entry_describes_it_readably() {
    for (w, h) in SIZES {
        let mut s = detail_with_step();
        s.size = (w, h);
        press(&mut s, KeyCode::Char('G'));
        press(&mut s, KeyCode::Enter);
        let text = match &s.popup {
            Some(Popup::Text { lines, .. }) => lines.join("\n"),
            other => panic!("expected the describe popup, got {other:?}"),
        };
        assert!(
            text.contains("summary:  step create-account done"),
            "{text}"
        );
        assert!(
            text.contains("did:      created account gnunez on demo-target (1 statement)"),
            "{text}"
        );
        assert!(text.contains("account: gnunez"), "{text}");
        assert!(text.contains("      sql: INSERT INTO users"), "{text}");
        assert!(
            text.contains("params: gnunez, gnunez@example.com"),
            "{text}"
        );
        assert!(
            text.contains("started_at: 2026-11-22 "),
            "local readable times: {text}"
        );
        assert!(!text.contains("{\""), "no raw JSON: {text}");
        insta::assert_snapshot!(format!("describe_step_{w}x{h}"), lines(&s, w, h).join("\n"));
        // It scrolls, and Esc closes it.
        press(&mut s, KeyCode::Char('j'));
        assert!(matches!(&s.popup, Some(Popup::Text { scroll: 1, .. })));
        press(&mut s, KeyCode::Esc);
        assert!(s.popup.is_none());
    }
}

#[test]
fn the_request_pane_scrolls_with_tab() {
    let mut s = detail_with_step();
    s.size = (80, 24);
    let before = lines(&s, 80, 24);
    assert!(
        before.iter().any(|l| l.contains("state")),
        "{}",
        before.join("\n")
    );
    press(&mut s, KeyCode::Tab);
    for _ in 0..3 {
        press(&mut s, KeyCode::Char('j'));
    }
    assert_eq!(s.detail.info_scroll, 3);
    assert_eq!(s.detail.scroll, 0, "the timeline stays");
    let after = lines(&s, 80, 24);
    assert_ne!(before[2], after[2], "the request pane moved");
}

#[test]
fn enter_on_an_audit_row_shows_old_to_new() {
    let mut s = loaded_state("default");
    let mut rows = audit_rows();
    rows[0].action = "approval.decide".into();
    rows[0].before = Some(serde_json::json!({"status": "pending", "version": 1}));
    rows[0].after = Some(
        serde_json::json!({"status": "approved", "version": 2, "overridden": true, "request_id": 18}),
    );
    feed(
        &mut s,
        Loaded::Audit {
            append: false,
            result: Ok(Page { rows, next: None }),
        },
    );
    exec(&mut s, Command::GoAudit);
    for (w, h) in SIZES {
        s.size = (w, h);
        press(&mut s, KeyCode::Enter);
        let screen = lines(&s, w, h).join("\n");
        assert!(screen.contains("status: pending → approved"), "{screen}");
        assert!(screen.contains("overridden: (none) → true"), "{screen}");
        assert!(screen.contains("at:       2026-11-22 "), "{screen}");
        insta::assert_snapshot!(format!("describe_audit_{w}x{h}"), screen);
        press(&mut s, KeyCode::Esc);
    }
}

#[test]
fn enter_on_a_job_or_log_line_describes_it() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoQueues);
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Enter);
    assert!(
        matches!(&s.popup, Some(Popup::Text { title, lines, .. }) if title.starts_with("job #") && lines.iter().any(|l| l.starts_with("attempts:"))),
        "{:?}",
        s.popup
    );
    press(&mut s, KeyCode::Esc);
    exec(&mut s, Command::GoLogs);
    press(&mut s, KeyCode::Enter);
    assert!(
        matches!(&s.popup, Some(Popup::Text { title, lines, .. }) if title.starts_with("log line #") && lines.iter().any(|l| l.starts_with("level:"))),
        "{:?}",
        s.popup
    );
}

#[test]
fn a_scoped_log_view_stays_where_it_was_opened() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoLogs);
    press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "worker:host-a");
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Char(':'));
    chars(&mut s, "rq 12");
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Char('L'));
    assert_eq!(s.logs.filter.request_id, Some(12));
    assert_eq!(s.logs.filter_text, "request:12");
    // Esc goes back to the request (not to an unscoped tail), and the global view is as left.
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), gatehouse::tui::views::ViewId::Detail);
    assert_eq!(s.logs.filter.request_id, None);
    assert_eq!(s.logs.filter_text, "worker:host-a");
    // Jumping to the global log view from a scoped one also restores it.
    press(&mut s, KeyCode::Char('L'));
    press(&mut s, KeyCode::Char('5'));
    assert_eq!(s.logs.filter.request_id, None);
    assert_eq!(s.logs.filter_text, "worker:host-a");
}

#[test]
fn log_levels_cycle_from_most_to_least_verbose_and_lines_read_well() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoLogs);
    let mut seen = Vec::new();
    for _ in 0..5 {
        press(&mut s, KeyCode::Char('l'));
        seen.push(
            s.logs
                .filter
                .min_level
                .clone()
                .unwrap_or_else(|| "all".into()),
        );
    }
    assert_eq!(seen, vec!["DEBUG", "INFO", "WARN", "ERROR", "all"]);
    // `n` (show new rows) belongs to lists; in the log tail it moves nothing.
    let back = s.logs.scroll_back;
    press(&mut s, KeyCode::Char('n'));
    assert_eq!(s.logs.scroll_back, back);
    assert_eq!(
        gatehouse::tui::views::logs::short_target("gatehouse::engine::worker"),
        "worker"
    );
    let text = gatehouse::tui::views::logs::readable_message(
        "job 7 failed; retry_at=1796079907799 attempt=2",
        s.tz,
    );
    assert!(text.contains("retry_at=2026-"), "{text}");
    assert!(text.ends_with("attempt=2"), "{text}");
}

#[test]
fn the_approvals_preview_shows_the_pinned_plan() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoApprovals);
    feed(
        &mut s,
        Loaded::Detail {
            id: 12,
            result: Ok({
                let mut d = detail(12);
                d.timeline.push(gatehouse::store::api::TimelineEntry {
                    at: NOW - 100 * 60_000,
                    kind: "step".into(),
                    summary: "plan pinned: workflow joiner-std v3, connector hr-db v2".into(),
                    detail: serde_json::json!({"steps": [{"step": "create-account", "account": "u0012"}]}),
                });
                d
            }),
        },
    );
    let screen = lines(&s, 160, 48).join("\n");
    assert!(screen.contains("plan to be applied"), "{screen}");
    assert!(
        screen.contains("plan pinned: workflow joiner-std v3"),
        "{screen}"
    );
    assert!(screen.contains("account: u0012"), "{screen}");
}

#[test]
fn the_overview_and_a_request_say_when_their_refresh_is_late_or_failing() {
    let mut s = loaded_state("default");
    let _ = s.update(Action::StoreChanged);
    let _ = s.update(Action::Tick(NOW + 9_000));
    assert!(s.dirty);
    let screen = lines(&s, 100, 30).join("\n");
    assert!(screen.contains("health · refresh late 9s"), "{screen}");
    feed(&mut s, Loaded::Overview(Err("database is locked".into())));
    let screen = lines(&s, 100, 30).join("\n");
    assert!(screen.contains("refresh failing"), "{screen}");
    // A request: the same in its pane's title.
    press(&mut s, KeyCode::Char(':'));
    chars(&mut s, "rq 12");
    press(&mut s, KeyCode::Enter);
    feed(
        &mut s,
        Loaded::Detail {
            id: 12,
            result: Err("timeout".into()),
        },
    );
    let screen = lines(&s, 100, 30).join("\n");
    assert!(
        screen.contains("request 12 · Ada Lovelace · refresh failing"),
        "{screen}"
    );
}
