//! Step control in the console: in a request's detail, `t` retries the failed step, `S` skips
//! the stopped step after a justification, `D` marks the waiting manual step done (note
//! optional); `:manual` lists the manual steps waiting for a person. Snapshots at 80×24.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::domain::request::RequestState;
use gatehouse::store::api::{RequestDetail, TimelineEntry};
use gatehouse::store::steps::ManualTask;
use gatehouse::tui::action::{Action, Loaded};
use gatehouse::tui::app::AppState;
use gatehouse::tui::command::Command;
use gatehouse::tui::effects::{Effect, StoreCmd};
use gatehouse::tui::render_to_buffer;
use ratatui::layout::Rect;
use serde_json::json;
use tui_support::*;

fn key(state: &mut AppState, code: KeyCode) -> Vec<Effect> {
    state.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn typed(state: &mut AppState, text: &str) {
    for c in text.chars() {
        key(state, KeyCode::Char(c));
    }
}

/// Request 12, stopped at `step`: waiting for a person, or failed.
fn stopped(waiting: bool) -> RequestDetail {
    let mut d = detail(12);
    d.approvals.clear();
    d.request.state = if waiting {
        RequestState::Provisioning
    } else {
        RequestState::Failed
    };
    d.request.last_error = (!waiting).then(|| "step create-account: target refused".into());
    d.timeline.push(TimelineEntry {
        at: NOW - 5 * 60_000,
        kind: "step".into(),
        summary: "create-account".into(),
        detail: json!({"name": "create-account", "output": {"outcome": "created"}, "error": null}),
    });
    let last = if waiting {
        json!({"name": "issue-badge", "error": null, "output": {
            "outcome": "waiting_manual", "instruction": "Issue a door badge for Ada Lovelace (alovelace)",
        }})
    } else {
        json!({"name": "set-title", "error": "step set-title: target unreachable"})
    };
    let name = last["name"].as_str().unwrap_or_default().to_string();
    d.timeline.push(TimelineEntry {
        at: NOW - 60_000,
        kind: "step".into(),
        summary: name,
        detail: last,
    });
    d
}

fn open(d: RequestDetail) -> AppState {
    let mut s = loaded_state("default");
    s.size = (80, 24);
    exec(&mut s, Command::GoApprovals);
    exec(&mut s, Command::Open);
    feed(
        &mut s,
        Loaded::Detail {
            id: 12,
            result: Ok(d),
        },
    );
    s
}

fn screen(s: &AppState) -> String {
    format!("{:?}", render_to_buffer(s, Rect::new(0, 0, 80, 24)))
}

fn runs(effects: &[Effect]) -> Vec<StoreCmd> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Run(cmds) => Some(cmds.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn done_on_a_waiting_manual_step_asks_for_an_optional_note() {
    let mut s = open(stopped(true));
    insta::assert_snapshot!("steps_detail_waiting_80x24", screen(&s));
    let effects = key(&mut s, KeyCode::Char('D'));
    assert!(runs(&effects).is_empty(), "nothing runs before Enter");
    insta::assert_snapshot!("steps_done_prompt_80x24", screen(&s));
    typed(&mut s, "badge 7");
    let effects = key(&mut s, KeyCode::Enter);
    assert_eq!(
        runs(&effects),
        vec![StoreCmd::DoneStep {
            request_id: 12,
            step: "issue-badge".into(),
            note: Some("badge 7".into()),
        }]
    );
    // Without a note it runs too.
    let mut s = open(stopped(true));
    key(&mut s, KeyCode::Char('D'));
    let effects = key(&mut s, KeyCode::Enter);
    assert_eq!(
        runs(&effects),
        vec![StoreCmd::DoneStep {
            request_id: 12,
            step: "issue-badge".into(),
            note: None,
        }]
    );
}

#[test]
fn skip_needs_a_justification() {
    let mut s = open(stopped(true));
    key(&mut s, KeyCode::Char('S'));
    let effects = key(&mut s, KeyCode::Enter);
    assert!(runs(&effects).is_empty(), "skipped without a reason");
    insta::assert_snapshot!("steps_skip_needs_reason_80x24", screen(&s));
    typed(&mut s, "issued on paper");
    let effects = key(&mut s, KeyCode::Enter);
    assert_eq!(
        runs(&effects),
        vec![StoreCmd::SkipStep {
            request_id: 12,
            step: "issue-badge".into(),
            reason: "issued on paper".into(),
        }]
    );
    // Esc abandons: nothing runs.
    let mut s = open(stopped(true));
    key(&mut s, KeyCode::Char('S'));
    typed(&mut s, "x");
    assert!(runs(&key(&mut s, KeyCode::Esc)).is_empty());
}

#[test]
fn retry_only_a_failed_step() {
    let mut s = open(stopped(false));
    let effects = key(&mut s, KeyCode::Char('t'));
    assert_eq!(
        runs(&effects),
        vec![StoreCmd::RetryStep {
            request_id: 12,
            step: "set-title".into(),
        }]
    );
    // A manual step waiting for a person is not "retried", and a failed one is not "done".
    let mut s = open(stopped(true));
    assert!(runs(&key(&mut s, KeyCode::Char('t'))).is_empty());
    let mut s = open(stopped(false));
    assert!(runs(&key(&mut s, KeyCode::Char('D'))).is_empty());
    assert!(runs(&key(&mut s, KeyCode::Enter)).is_empty());
}

#[test]
fn read_only_consoles_have_no_step_keys() {
    let mut s = loaded_state_with("default", true);
    s.size = (80, 24);
    exec(&mut s, Command::GoApprovals);
    exec(&mut s, Command::Open);
    feed(
        &mut s,
        Loaded::Detail {
            id: 12,
            result: Ok(stopped(true)),
        },
    );
    for c in ['t', 'S', 'D'] {
        let effects = key(&mut s, KeyCode::Char(c));
        assert!(runs(&effects).is_empty());
        let effects = key(&mut s, KeyCode::Enter);
        assert!(runs(&effects).is_empty(), "{c} ran in read-only mode");
    }
}

#[test]
fn manual_tasks_list_at_80x24() {
    let mut s = loaded_state("default");
    s.size = (80, 24);
    let effects = s.run_verb("manual");
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Load(gatehouse::tui::effects::Load::ManualTasks))),
        "{effects:?}"
    );
    let task =
        |id: i64, name: &str, step: &str, connector: &str, problem: Option<&str>| ManualTask {
            request_id: id,
            workflow: "sales-joiner".into(),
            subject_name: name.into(),
            step: step.into(),
            instruction: format!("Issue a door badge for {name}"),
            connector: connector.into(),
            account: "x".into(),
            problem: problem.map(str::to_string),
            since: NOW - (id * 37) * 60_000,
        };
    feed(
        &mut s,
        Loaded::ManualTasks(Ok(vec![
            task(
                41,
                "Ada Lovelace",
                "issue-badge",
                "badge-db",
                Some("read-back found no account alovelace in badge-db"),
            ),
            task(42, "Grace \u{1b}[2JHopper", "desk", "", None),
        ])),
    );
    let shown = screen(&s);
    assert!(
        !shown.contains('\u{1b}'),
        "control characters reached the screen"
    );
    insta::assert_snapshot!("steps_manual_tasks_80x24", shown);
}
