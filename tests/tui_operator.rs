//! What an operator must be able to trust on screen: overrides are named before and after they
//! happen, live lists count new rows instead of moving the selection, direct lookup by id, keys
//! that do not apply say why, and cut text always ends with `…`.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::store::api::{ApprovalRow, Decision, DecisionRow, Page};
use gatehouse::tui::action::{Action, Done, Loaded, Outcome};
use gatehouse::tui::app::{AppState, Popup};
use gatehouse::tui::command::Command;
use gatehouse::tui::effects::{Effect, StoreCmd};
use gatehouse::tui::render_to_buffer;
use ratatui::layout::Rect;
use tui_support::*;

fn press(state: &mut AppState, code: KeyCode) -> Vec<Effect> {
    state.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ctrl(state: &mut AppState, c: char) -> Vec<Effect> {
    state.update(Action::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )))
}

fn chars(state: &mut AppState, text: &str) {
    for c in text.chars() {
        let _ = press(state, KeyCode::Char(c));
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

fn flash(state: &AppState) -> String {
    state
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

fn confirm_text(state: &AppState) -> String {
    match &state.popup {
        Some(Popup::Confirm { text, .. }) => text.clone(),
        other => panic!("expected a confirm, got {other:?}"),
    }
}

const SIZES: [(u16, u16); 3] = [(80, 24), (100, 30), (160, 48)];

/// An `all` stage of request 18 that names dave and erin, not alice (the operator, an admin).
fn foreign_stage() -> ApprovalRow {
    let mut a = approval(8, 18);
    a.policy = "all".into();
    a.stage_name = "finance".into();
    a.approvers = vec!["dave".into(), "erin".into()];
    a.decisions = Vec::new();
    a
}

/// The approvals inbox with the foreign stage first.
fn inbox_with_foreign_stage() -> AppState {
    let mut s = loaded_state("default");
    let mut rows = vec![foreign_stage()];
    rows.extend(approvals());
    feed(
        &mut s,
        Loaded::Approvals {
            append: false,
            result: Ok(Page { rows, next: None }),
        },
    );
    exec(&mut s, Command::GoApprovals);
    s.approvals.list.selected = 0;
    s
}

#[test]
fn an_override_is_confirmed_naming_the_policy_and_who_is_pending() {
    let mut s = inbox_with_foreign_stage();
    assert!(press(&mut s, KeyCode::Char('a')).is_empty(), "asks first");
    assert_eq!(
        confirm_text(&s),
        "approve 18 as OVERRIDE — all: dave, erin pending? (y/n)"
    );
    for (w, h) in SIZES {
        insta::assert_snapshot!(
            format!("override_confirm_{w}x{h}"),
            lines(&s, w, h).join("\n")
        );
    }
    assert!(press(&mut s, KeyCode::Char('n')).is_empty());
    assert_eq!(flash(&s), "cancelled, nothing changed");
    // A stage that names the operator runs at once, no question.
    let _ = press(&mut s, KeyCode::Char('j'));
    assert!(matches!(
        press(&mut s, KeyCode::Char('a')).as_slice(),
        [Effect::Run(_)]
    ));
}

#[test]
fn a_rejected_override_takes_a_reason_then_confirms() {
    let mut s = inbox_with_foreign_stage();
    let _ = press(&mut s, KeyCode::Char('r'));
    assert!(
        matches!(&s.popup, Some(Popup::Reason { title, .. }) if title.contains("18 as OVERRIDE")),
        "{:?}",
        s.popup
    );
    chars(&mut s, "no budget");
    let _ = press(&mut s, KeyCode::Enter);
    assert_eq!(
        confirm_text(&s),
        "reject 18 as OVERRIDE — all: dave, erin pending? (y/n)"
    );
    match press(&mut s, KeyCode::Char('y')).as_slice() {
        [Effect::Run(cmds)] => assert!(matches!(
            &cmds[0],
            StoreCmd::Decide { approval_id: 8, decision: Decision::Reject, reason: Some(r), .. } if r == "no budget"
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bulk_confirm_counts_overrides() {
    let mut s = inbox_with_foreign_stage();
    for _ in 0..3 {
        let _ = press(&mut s, KeyCode::Char(' '));
    }
    let _ = press(&mut s, KeyCode::Char('a'));
    assert_eq!(
        confirm_text(&s),
        "3 selected, 1 as OVERRIDE — confirm approve (y/n)"
    );
}

fn decided(mut a: ApprovalRow, overridden: bool) -> ApprovalRow {
    a.decisions.push(DecisionRow {
        approver: "alice".into(),
        decision: Decision::Approve,
        reason: None,
        decided_at: NOW,
        overridden,
        decided_by: None,
        source: None,
        carried_from: None,
    });
    a.status = "approved".into();
    a
}

fn decide_cmd(a: &ApprovalRow) -> StoreCmd {
    StoreCmd::Decide {
        approval_id: a.id,
        request_id: a.request_id,
        expected_version: a.version,
        decision: Decision::Approve,
        reason: None,
    }
}

#[test]
fn the_flash_says_override_as_the_store_recorded_it() {
    let mut s = inbox_with_foreign_stage();
    let a = foreign_stage();
    let _ = s.update(Action::Outcome(Outcome {
        results: vec![(decide_cmd(&a), Ok(Done::Approval(decided(a.clone(), true))))],
    }));
    assert_eq!(
        flash(&s),
        "approved request 18 — OVERRIDE (all: dave, erin were pending)"
    );
    let plain = approval(2, 12);
    let _ = s.update(Action::Outcome(Outcome {
        results: vec![
            (decide_cmd(&a), Ok(Done::Approval(decided(a.clone(), true)))),
            (
                decide_cmd(&plain),
                Ok(Done::Approval(decided(plain.clone(), false))),
            ),
        ],
    }));
    assert_eq!(flash(&s), "approved 2 of 2 selected (1 as OVERRIDE)");
    let _ = s.update(Action::Outcome(Outcome {
        results: vec![(
            decide_cmd(&plain),
            Ok(Done::Approval(decided(plain.clone(), false))),
        )],
    }));
    assert_eq!(flash(&s), "approved request 12");
}

#[test]
fn the_audit_list_marks_override_decisions() {
    let mut s = loaded_state("default");
    let mut rows = audit_rows();
    rows[0].action = "approval.decide".into();
    rows[0].after = Some(serde_json::json!({"status": "approved", "overridden": true}));
    feed(
        &mut s,
        Loaded::Audit {
            append: false,
            result: Ok(Page { rows, next: None }),
        },
    );
    exec(&mut s, Command::GoAudit);
    let screen = lines(&s, 160, 48).join("\n");
    assert!(screen.contains("approval.decide OVERRIDE"), "{screen}");
    let _ = ctrl(&mut s, 'r');
}

fn requests_page(ids: std::ops::RangeInclusive<i64>) -> Loaded {
    let all = requests();
    let rows =
        ids.rev()
            .map(|id| {
                all.iter().find(|r| r.id == id).cloned().unwrap_or_else(|| {
                    request(id, gatehouse::domain::request::RequestState::Received)
                })
            })
            .collect();
    Loaded::Requests {
        append: false,
        result: Ok(Page {
            rows,
            next: Some(1),
        }),
    }
}

fn selected_request(s: &AppState) -> Option<i64> {
    s.requests.list.current().map(|r| r.id)
}

#[test]
fn new_rows_are_counted_while_the_selection_and_screen_stay_put() {
    for (w, h) in SIZES {
        let mut s = loaded_state("default");
        s.size = (w, h);
        exec(&mut s, Command::GoRequests);
        for _ in 0..5 {
            let _ = press(&mut s, KeyCode::Char('j'));
        }
        assert_eq!(selected_request(&s), Some(25));
        let before = lines(&s, w, h);
        // A refresh brings three new requests at the top.
        let effects = s.update(Action::StoreChanged);
        assert!(matches!(effects.as_slice(), [Effect::Load(_)]));
        feed(&mut s, requests_page(1..=33));
        assert_eq!(
            selected_request(&s),
            Some(25),
            "the selection stays on its row"
        );
        let after = lines(&s, w, h);
        assert!(after[1].contains("▲ 3 new"), "{}", after[1]);
        assert_eq!(before[3..8], after[3..8], "the rows on screen do not move");
        insta::assert_snapshot!(format!("new_rows_title_{w}x{h}"), after.join("\n"));
        // More arrive: the count grows.
        feed(&mut s, requests_page(1..=35));
        assert!(lines(&s, w, h)[1].contains("▲ 5 new"));
        // The jump key shows them and clears the count.
        let _ = press(&mut s, KeyCode::Char('n'));
        assert_eq!(selected_request(&s), Some(35));
        let shown = lines(&s, w, h);
        assert!(!shown[1].contains("new"), "{}", shown[1]);
        assert!(shown[3].contains("35"), "{}", shown[3]);
    }
}

#[test]
fn scrolling_back_up_uncounts_rows_seen_and_ctrl_r_reloads() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoRequests);
    for _ in 0..2 {
        let _ = press(&mut s, KeyCode::Char('j'));
    }
    feed(&mut s, requests_page(1..=34));
    assert_eq!(s.requests.list.new_above, 4);
    for _ in 0..4 {
        let _ = press(&mut s, KeyCode::Char('k'));
    }
    // The selection went two rows above the old top: two new rows seen.
    assert_eq!(selected_request(&s), Some(32));
    assert_eq!(s.requests.list.new_above, 2);
    assert!(matches!(
        ctrl(&mut s, 'r').as_slice(),
        [Effect::Load(gatehouse::tui::effects::Load::Requests {
            after: None,
            ..
        })]
    ));
    assert_eq!(flash(&s), "reloading requests…");
}

#[test]
fn a_late_or_failing_refresh_is_shown() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoRequests);
    feed(&mut s, requests_page(1..=30));
    let _ = s.update(Action::StoreChanged);
    s.dirty = false;
    let _ = s.update(Action::Tick(NOW + 2_000));
    assert!(!lines(&s, 100, 30)[1].contains("late"));
    let _ = s.update(Action::Tick(NOW + 7_000));
    assert!(s.dirty, "a late refresh redraws");
    assert!(
        lines(&s, 100, 30)[1].contains("refresh late 7s"),
        "{}",
        lines(&s, 100, 30)[1]
    );
    feed(
        &mut s,
        Loaded::Requests {
            append: false,
            result: Err("database is locked".into()),
        },
    );
    let screen = lines(&s, 100, 30);
    assert!(screen[1].contains("refresh failing"), "{}", screen[1]);
    assert!(screen.iter().any(|l| l.contains("database is locked")));
    // Once idle and fresh, ticks within the minute draw nothing.
    feed(&mut s, requests_page(1..=30));
    s.dirty = false;
    let _ = s.update(Action::Tick(NOW + 8_000));
    assert!(!s.dirty);
}

#[test]
fn slash_opens_empty_with_line_editing_and_history() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoRequests);
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "state:failed workflow:joiner-std");
    let _ = ctrl(&mut s, 'w');
    let _ = press(&mut s, KeyCode::Enter);
    assert_eq!(s.requests.filter_text, "state:failed");
    // Reopened: empty (not appended to), the filter in force shown as a hint.
    let _ = press(&mut s, KeyCode::Char('/'));
    match &s.popup {
        Some(Popup::Prompt(p)) => {
            assert_eq!(p.input, "");
            assert_eq!(p.current, "state:failed");
        }
        other => panic!("{other:?}"),
    }
    assert!(lines(&s, 100, 30)[29].contains("now /state:failed"));
    chars(&mut s, "zzz");
    let _ = ctrl(&mut s, 'u');
    let _ = press(&mut s, KeyCode::Up);
    assert!(matches!(&s.popup, Some(Popup::Prompt(p)) if p.input == "state:failed"));
    let _ = press(&mut s, KeyCode::Esc);
}

#[test]
fn requests_are_reached_by_id() {
    for line in ["rq 8", "request 8", "requests #8"] {
        let mut s = loaded_state("default");
        let _ = press(&mut s, KeyCode::Char(':'));
        chars(&mut s, line);
        let effects = press(&mut s, KeyCode::Enter);
        assert_eq!(s.detail.id, Some(8), ":{line}");
        assert_eq!(s.view(), gatehouse::tui::views::ViewId::Detail, ":{line}");
        assert!(effects.contains(&Effect::Load(gatehouse::tui::effects::Load::Detail(8))));
    }
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoRequests);
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "id:8");
    let _ = press(&mut s, KeyCode::Enter);
    assert_eq!(s.detail.id, Some(8));
    assert_eq!(s.requests.filter_text, "", "the list's filter is unchanged");
    let _ = press(&mut s, KeyCode::Char(':'));
    chars(&mut s, "rq abc");
    let _ = press(&mut s, KeyCode::Enter);
    assert!(flash(&s).contains("not a request id"), "{}", flash(&s));
}

#[test]
fn unknown_filter_values_are_refused_listing_the_valid_ones() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoRequests);
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "state:bogus");
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    let text = flash(&s);
    assert!(
        text.contains("state:bogus is not a request state"),
        "{text}"
    );
    assert!(text.contains("needs_triage") && text.contains("filter unchanged"));
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "workflow:nope");
    let _ = press(&mut s, KeyCode::Enter);
    assert!(flash(&s).contains("joiner-std"), "{}", flash(&s));
    assert_eq!(s.requests.filter_text, "");
}

#[test]
fn approvals_take_field_value_filters() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoApprovals);
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "workflow:leaver stage:security");
    let effects = press(&mut s, KeyCode::Enter);
    assert!(matches!(
        effects.as_slice(),
        [
            Effect::Load(gatehouse::tui::effects::Load::Approvals { text: None, .. }),
            ..
        ]
    ));
    feed(
        &mut s,
        Loaded::Approvals {
            append: false,
            result: Ok(Page {
                rows: approvals(),
                next: None,
            }),
        },
    );
    let ids: Vec<i64> = s.approvals.list.rows.iter().map(|a| a.request_id).collect();
    assert_eq!(ids, vec![13]);
    let _ = press(&mut s, KeyCode::Char('/'));
    chars(&mut s, "colour:red");
    let _ = press(&mut s, KeyCode::Enter);
    assert!(
        flash(&s).contains("known: request, id, workflow"),
        "{}",
        flash(&s)
    );
}

#[test]
fn tab_completes_theme_names() {
    let mut s = loaded_state("default");
    let _ = press(&mut s, KeyCode::Char(':'));
    chars(&mut s, "theme hi");
    let _ = press(&mut s, KeyCode::Tab);
    assert!(matches!(&s.popup, Some(Popup::Prompt(p)) if p.input == "theme high-contrast"));
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        vec![Effect::LoadTheme("high-contrast".into())]
    );
}

/// The requests list with the row of request `id` selected.
fn requests_on(id: i64, size: (u16, u16)) -> AppState {
    let mut s = loaded_state("default");
    s.size = size;
    exec(&mut s, Command::GoRequests);
    while s.requests.list.current().map(|r| r.id) != Some(id) {
        let _ = press(&mut s, KeyCode::Char('j'));
    }
    s
}

fn hint_row(s: &AppState, w: u16, h: u16) -> String {
    lines(s, w, h)[usize::from(h) - 2].clone()
}

#[test]
fn hints_offer_only_the_keys_that_apply_to_the_selected_row() {
    for (w, h) in SIZES {
        // 25 failed: retry and cancel apply.
        let s = requests_on(25, (w, h));
        let hints = hint_row(&s, w, h);
        assert!(
            hints.contains("R retry") && hints.contains("c cancel"),
            "{hints}"
        );
        insta::assert_snapshot!(format!("hints_failed_{w}x{h}"), lines(&s, w, h).join("\n"));
        // 28 needs triage: cancel applies, retry does not.
        let s = requests_on(28, (w, h));
        let hints = hint_row(&s, w, h);
        assert!(
            !hints.contains("retry") && hints.contains("c cancel"),
            "{hints}"
        );
        // 26 completed: neither.
        let s = requests_on(26, (w, h));
        let hints = hint_row(&s, w, h);
        assert!(
            !hints.contains("retry") && !hints.contains("cancel"),
            "{hints}"
        );
        insta::assert_snapshot!(
            format!("hints_completed_{w}x{h}"),
            lines(&s, w, h).join("\n")
        );
        // Whole hints only: the row ends with help, never with half a word.
        assert!(hints.trim_end().ends_with("? help"), "{hints}");
    }
}

#[test]
fn a_key_that_does_not_apply_says_why() {
    let mut s = requests_on(28, (100, 30));
    assert!(press(&mut s, KeyCode::Char('R')).is_empty());
    assert_eq!(
        flash(&s),
        "needs_triage: fix its fields first (e opens the triage editor)"
    );
    // e applies here: it opens the triage editor.
    assert!(press(&mut s, KeyCode::Char('e')).is_empty());
    assert!(
        matches!(s.popup, Some(gatehouse::tui::app::Popup::Triage(_))),
        "{:?}",
        s.popup
    );
    let mut s = requests_on(26, (100, 30));
    assert!(press(&mut s, KeyCode::Char('c')).is_empty());
    assert_eq!(flash(&s), "completed: already finished, nothing to cancel");
    assert!(s.popup.is_none());
    // Marked rows: says how many cannot, and why.
    let _ = press(&mut s, KeyCode::Char(' '));
    let _ = press(&mut s, KeyCode::Char(' ')); // 26 and 25 marked
    assert!(press(&mut s, KeyCode::Char('R')).is_empty());
    assert!(
        flash(&s).starts_with("1 of 2 marked requests cannot: completed: only failed"),
        "{}",
        flash(&s)
    );
}

#[test]
fn ctrl_c_with_unsaved_editor_changes_asks() {
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoConfigs);
    exec(&mut s, Command::Edit);
    assert_eq!(ctrl(&mut s, 'c'), vec![Effect::Quit], "nothing to lose");
    let mut s = loaded_state("default");
    exec(&mut s, Command::GoConfigs);
    exec(&mut s, Command::Edit);
    chars(&mut s, "x");
    assert!(ctrl(&mut s, 'c').is_empty());
    assert!(matches!(&s.popup, Some(Popup::Discard { quit: true, .. })));
    assert!(
        lines(&s, 100, 30)
            .join("\n")
            .contains("quit and discard unsaved changes")
    );
    assert!(press(&mut s, KeyCode::Char('n')).is_empty());
    assert!(s.popup.is_none() && s.editor.is_some(), "n keeps editing");
    let _ = ctrl(&mut s, 'c');
    assert_eq!(press(&mut s, KeyCode::Char('y')), vec![Effect::Quit]);
}

#[test]
fn help_is_by_section_with_each_command_once() {
    let mut s = requests_on(28, (100, 30));
    let entries = gatehouse::tui::widgets::help::lines(&s.keymap, s.view().layer(), &|c| {
        s.applies(c).is_ok()
    });
    let headings: Vec<&str> = entries
        .iter()
        .filter(|e| e.keys.is_empty())
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(headings, vec!["row actions", "global"]);
    let texts: Vec<&str> = entries.iter().map(|e| e.text.as_str()).collect();
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), texts.len(), "each command once: {texts:?}");
    let down = entries
        .iter()
        .find(|e| e.text == "down")
        .expect("down listed");
    assert!(down.keys.split('/').any(|k| k == "j"), "{down:?}");
    assert!(down.keys.split('/').any(|k| k == "down"), "{down:?}");
    assert!(
        !texts.contains(&"retry"),
        "retry does not apply to needs_triage"
    );
    assert!(texts.contains(&"cancel request"));
    exec(&mut s, Command::Help);
    assert!(lines(&s, 100, 30).join("\n").contains("row actions"));
}

const LONG_ACTOR: &str = "system:engine-provisioning-worker-east-1";
const LONG_ERROR: &str = "scim: 409 user exists already in the target directory for gnunez@example.com — retry after fixing";
const LONG_SUBJECT: &str = "Maximiliana Alexandrina Fitzgerald-Montgomery";

/// Either the whole text is on screen, or a cut of it that ends with `…` and does not end
/// inside a word of the original (unless the word alone was too long for its column).
fn shown_honestly(screen: &[String], text: &str) -> Result<(), String> {
    if screen.iter().any(|l| l.contains(text)) {
        return Ok(());
    }
    for line in screen {
        if let Some(start) = line.find(&text[..8]) {
            let rest = &line[start..];
            let Some(end) = rest.find('…') else {
                return Err(format!("{text:?} cut without an ellipsis: {line:?}"));
            };
            let kept = &rest[..end];
            if !text.starts_with(kept) {
                return Err(format!("{kept:?} is not a prefix of {text:?}"));
            }
            let next = text[kept.len()..].chars().next();
            let word_end = next.is_none_or(|c| c == ' ') || !kept.contains(' ');
            if !word_end {
                return Err(format!("{text:?} cut mid-word: {kept:?}"));
            }
            return Ok(());
        }
    }
    Err(format!("{text:?} is not on screen"))
}

#[test]
fn long_actors_errors_and_subjects_are_cut_with_an_ellipsis() {
    for (w, h) in SIZES {
        let mut s = loaded_state("default");
        s.size = (w, h);
        let mut rows = audit_rows();
        for r in rows.iter_mut().take(4) {
            r.actor = LONG_ACTOR.into();
        }
        feed(
            &mut s,
            Loaded::Audit {
                append: false,
                result: Ok(Page { rows, next: None }),
            },
        );
        exec(&mut s, Command::GoAudit);
        let screen = lines(&s, w, h);
        shown_honestly(&screen, LONG_ACTOR).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        assert!(
            !screen.iter().any(|l| l.contains("system:engin ")),
            "no bare cut"
        );
        if w >= 160 {
            assert!(
                screen.iter().any(|l| l.contains(LONG_ACTOR)),
                "at {w} columns the actor has room:\n{}",
                screen.join("\n")
            );
        }
        insta::assert_snapshot!(format!("audit_long_actor_{w}x{h}"), screen.join("\n"));

        let mut s = loaded_state("default");
        s.size = (w, h);
        let mut rows = requests();
        for r in rows.iter_mut().take(4) {
            r.subject_name = LONG_SUBJECT.into();
            r.last_error = Some(LONG_ERROR.into());
        }
        feed(
            &mut s,
            Loaded::Requests {
                append: false,
                result: Ok(Page { rows, next: None }),
            },
        );
        exec(&mut s, Command::GoRequests);
        let screen = lines(&s, w, h);
        shown_honestly(&screen, LONG_SUBJECT).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        if w >= 100 {
            shown_honestly(&screen, LONG_ERROR).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        }
        insta::assert_snapshot!(format!("requests_long_text_{w}x{h}"), screen.join("\n"));
    }
}
