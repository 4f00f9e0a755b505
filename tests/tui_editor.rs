//! The configuration editor through `AppState::update`: a TOML error shows line:col and saves
//! nothing, a valid edit shows the diff and saves with the version it started from, conflicts
//! and roll-backs, and leaving with unsaved changes asks first.

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::tui::action::{Action, CommandError, Outcome};
use gatehouse::tui::app::{AppState, Popup};
use gatehouse::tui::command::Command;
use gatehouse::tui::effects::{Effect, StoreCmd};
use gatehouse::tui::render_to_buffer;
use gatehouse::tui::views::ViewId;
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

fn screen(state: &AppState) -> String {
    let buf = render_to_buffer(state, Rect::new(0, 0, 100, 30));
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn flash(state: &AppState) -> String {
    state
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

fn editor_state() -> AppState {
    let mut s = loaded_state("default");
    s.tools.check = bad_check;
    exec(&mut s, Command::GoConfigs);
    let _ = press(&mut s, KeyCode::Char('e'));
    assert_eq!(s.view(), ViewId::Editor);
    s
}

#[test]
fn editor_error_shows_line_col_highlights_and_saves_nothing() {
    let mut s = editor_state();
    // Move to the `policy = "any"` line and break it.
    let line = workflow_body(3)
        .lines()
        .position(|l| l == "policy = \"any\"")
        .expect("policy line");
    for _ in 0..line {
        let _ = press(&mut s, KeyCode::Down);
    }
    let _ = press(&mut s, KeyCode::End);
    for _ in 0..5 {
        let _ = press(&mut s, KeyCode::Backspace);
    }
    chars(&mut s, "\"sometimes\"");
    let _ = press(&mut s, KeyCode::Home);
    assert!(ctrl(&mut s, 's').is_empty(), "nothing saved");
    assert!(s.popup.is_none());
    assert_eq!(
        flash(&s),
        format!(
            "{}:10 stages[0].policy: unknown policy \"sometimes\" (any, all, quorum(n)) — nothing saved",
            line + 1
        )
    );
    let ed = s.editor.as_ref().expect("editor open");
    assert_eq!(
        ed.textarea.cursor(),
        (line, 9),
        "cursor jumped to the line and column"
    );
    assert!(screen(&s).contains(&format!("{}:10 stages[0].policy", line + 1)));
    // Typing clears the highlight.
    let _ = press(&mut s, KeyCode::Char(' '));
    assert!(s.editor.as_ref().is_some_and(|e| e.problem.is_none()));
}

#[test]
fn editor_valid_save_shows_diff_then_saves_with_expected_version() {
    let mut s = editor_state();
    assert!(ctrl(&mut s, 's').is_empty());
    assert_eq!(flash(&s), "no changes to save");
    let _ = press(&mut s, KeyCode::Down);
    let _ = press(&mut s, KeyCode::End);
    let _ = press(&mut s, KeyCode::Enter);
    chars(&mut s, "owner = \"it\"");
    assert!(ctrl(&mut s, 's').is_empty());
    let text = screen(&s);
    assert!(
        text.contains("save joiner-std as version 4 — confirm (y/n)"),
        "{text}"
    );
    assert!(text.contains("+ owner = \"it\""), "{text}");
    let effects = press(&mut s, KeyCode::Char('y'));
    match effects.as_slice() {
        [Effect::Run(cmds)] => match &cmds[0] {
            StoreCmd::SaveConfig {
                name,
                kind,
                body,
                expected_version,
                ..
            } => {
                assert_eq!(
                    (name.as_str(), kind.as_str(), *expected_version),
                    ("joiner-std", "workflow", 3)
                );
                assert!(
                    body.contains("name = \"joiner-std\"\nowner = \"it\"\n"),
                    "{body}"
                );
                assert!(body.ends_with('\n'));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn save_conflict_flash_says_nothing_saved() {
    let mut s = editor_state();
    let cmd = StoreCmd::SaveConfig {
        kind: "workflow".into(),
        name: "joiner-std".into(),
        body: "x".into(),
        comment: "c".into(),
        expected_version: 3,
    };
    let _ = s.update(Action::Outcome(Outcome {
        results: vec![(
            cmd,
            Err(CommandError::Conflict {
                entity: "config".into(),
                id: "joiner-std".into(),
                changed_by: "bob".into(),
                changed_at: "2026-11-22T11:59:00Z".into(),
                what: "version 3 is now 4".into(),
            }),
        )],
    }));
    assert_eq!(
        flash(&s),
        "config joiner-std: version 3 is now 4 — saved by bob at 2026-11-22T11:59:00Z; nothing saved, reopen to merge"
    );
    assert_eq!(s.editor.as_ref().map(|e| e.base_version), Some(3));
}

#[test]
fn rollback_saves_an_old_body_through_validation_and_diff() {
    let mut s = loaded_state("default");
    s.tools.check = bad_check;
    exec(&mut s, Command::GoConfigs);
    let _ = press(&mut s, KeyCode::Tab);
    let _ = press(&mut s, KeyCode::Char('j'));
    let _ = press(&mut s, KeyCode::Char('j'));
    assert!(press(&mut s, KeyCode::Char('b')).is_empty());
    match &s.popup {
        Some(Popup::Diff(d)) => {
            assert!(d.title.contains("as version 4"));
            assert!(
                matches!(&d.cmds[0], StoreCmd::SaveConfig { body, expected_version: 3, comment, .. }
                if body.contains("v1") && comment.starts_with("rollback to version 1"))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn leaving_the_editor_with_changes_asks_first() {
    let mut s = editor_state();
    let _ = press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), ViewId::Configs, "no changes: leaves at once");
    let _ = press(&mut s, KeyCode::Char('e'));
    chars(&mut s, "# x");
    let _ = press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), ViewId::Editor);
    assert!(screen(&s).contains("discard unsaved changes to joiner-std? (y/n)"));
    let _ = press(&mut s, KeyCode::Char('n'));
    assert_eq!(s.view(), ViewId::Editor);
    assert!(
        s.editor
            .as_ref()
            .is_some_and(|e| e.body().starts_with("# x"))
    );
    let _ = press(&mut s, KeyCode::Esc);
    let _ = press(&mut s, KeyCode::Char('y'));
    assert_eq!(s.view(), ViewId::Configs);
    assert!(s.editor.is_none());
    assert_eq!(flash(&s), "changes to joiner-std discarded, nothing saved");
    // F1 opens help inside the editor (where `?` types a question mark).
    let _ = press(&mut s, KeyCode::Char('e'));
    let _ = press(&mut s, KeyCode::F(1));
    assert!(matches!(s.popup, Some(Popup::Help { .. })));
}
