//! Snapshot tests of every console view at 80×24 and 160×48, in the default and mono themes,
//! with a fixed clock; plus style assertions on key cells (failed, marked, stale rows).

mod tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gatehouse::tui::action::Action;
use gatehouse::tui::app::AppState;
use gatehouse::tui::command::Command;
use gatehouse::tui::render_to_buffer;
use gatehouse::tui::theme::{Role, Theme};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use tui_support::*;

fn key(state: &mut AppState, code: KeyCode) {
    let _ = state.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn text(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

type Setup = fn(&mut AppState);

fn views() -> Vec<(&'static str, Setup)> {
    vec![
        ("overview", |_s| {}),
        ("approvals", |s| exec(s, Command::GoApprovals)),
        ("requests", |s| exec(s, Command::GoRequests)),
        ("detail", |s| {
            exec(s, Command::GoApprovals);
            exec(s, Command::Open);
            feed(
                s,
                gatehouse::tui::action::Loaded::Detail {
                    id: 12,
                    result: Ok(detail(12)),
                },
            );
        }),
        ("triage_editor", |s| {
            exec(s, Command::GoRequests);
            key(s, KeyCode::Char('j'));
            key(s, KeyCode::Char('j'));
            exec(s, Command::Edit);
            key(s, KeyCode::Tab);
            key(s, KeyCode::Char('x'));
        }),
        ("mailboxes", |s| {
            let _ = s.run_verb("mailboxes");
        }),
        ("quarantine", |s| {
            let _ = s.run_verb("quarantine");
        }),
        ("quarantine_release_reason", |s| {
            let _ = s.run_verb("quarantine");
            exec(s, Command::Release);
        }),
        ("delegations", |s| {
            let _ = s.run_verb("delegations");
        }),
        ("delegation_form", |s| {
            let _ = s.run_verb("delegations");
            exec(s, Command::Delegate);
            for c in "dave".chars() {
                key(s, KeyCode::Char(c));
            }
            key(s, KeyCode::Tab);
            key(s, KeyCode::Tab);
            for c in "conference".chars() {
                key(s, KeyCode::Char(c));
            }
        }),
        ("delegations_help", |s| {
            let _ = s.run_verb("delegations");
            exec(s, Command::Help);
        }),
        ("queues", |s| exec(s, Command::GoQueues)),
        ("logs", |s| exec(s, Command::GoLogs)),
        ("workers", |s| exec(s, Command::GoWorkers)),
        ("configs", |s| exec(s, Command::GoConfigs)),
        ("editor", |s| {
            exec(s, Command::GoConfigs);
            exec(s, Command::Edit);
        }),
        ("audit", |s| exec(s, Command::GoAudit)),
        ("dry_run", |s| {
            exec(s, Command::GoConfigs);
            exec(s, Command::Edit);
            exec(s, Command::DryRun);
        }),
        ("save_diff", |s| {
            exec(s, Command::GoConfigs);
            exec(s, Command::Edit);
            key(s, KeyCode::Down);
            key(s, KeyCode::Down);
            key(s, KeyCode::End);
            key(s, KeyCode::Enter);
            for c in "# owner: it".chars() {
                key(s, KeyCode::Char(c));
            }
            exec(s, Command::Save);
        }),
        ("editor_error", |s| {
            exec(s, Command::GoConfigs);
            exec(s, Command::Edit);
            key(s, KeyCode::Down);
            key(s, KeyCode::Char('='));
            exec(s, Command::Save);
        }),
        ("help", |s| {
            exec(s, Command::GoApprovals);
            exec(s, Command::Help);
        }),
        ("bulk_confirm", |s| {
            exec(s, Command::GoApprovals);
            exec(s, Command::Mark);
            exec(s, Command::Mark);
            exec(s, Command::Mark);
            exec(s, Command::Approve);
        }),
        ("reject_reason", |s| {
            exec(s, Command::GoApprovals);
            exec(s, Command::Reject);
            key(s, KeyCode::Enter);
        }),
        ("command_prompt", |s| {
            exec(s, Command::CommandMode);
            key(s, KeyCode::Char('a'));
        }),
    ]
}

#[test]
fn every_view_at_both_sizes_in_both_themes() {
    for theme in ["default", "mono"] {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            for (name, setup) in views() {
                let mut state = loaded_state(theme);
                state.size = (w, h);
                setup(&mut state);
                let buf = render_to_buffer(&state, Rect::new(0, 0, w, h));
                let snapshot_name = format!("{name}_{w}x{h}_{theme}");
                insta::assert_snapshot!(snapshot_name, format!("{buf:?}"));
            }
        }
    }
}

#[test]
fn read_only_views_show_the_mode_and_hide_dangerous_hints() {
    let mut state = loaded_state_with("default", true);
    exec(&mut state, Command::GoApprovals);
    let buf = render_to_buffer(&state, Rect::new(0, 0, 80, 24));
    let lines = text(&buf);
    assert!(lines[0].contains("READ-ONLY"), "{}", lines[0]);
    assert!(!lines[22].contains("approve"), "hint line: {}", lines[22]);
    insta::assert_snapshot!("approvals_80x24_read_only", lines.join("\n"));
}

fn find(lines: &[String], needle: &str) -> (u16, u16) {
    for (y, line) in lines.iter().enumerate() {
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count();
            return (x as u16, y as u16);
        }
    }
    panic!("{needle:?} not on screen:\n{}", lines.join("\n"));
}

#[test]
fn failed_request_row_uses_the_failed_role() {
    for theme_name in ["default", "mono", "light"] {
        let theme = Theme::builtin(theme_name);
        let mut state = loaded_state(theme_name);
        exec(&mut state, Command::GoRequests);
        let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
        let lines = text(&buf);
        // Request 25 is failed and not selected (the selection is on the first row, 30).
        let (_, y) = find(&lines, " 25 ");
        let (x, _) = find(&lines[y as usize..=y as usize], "failed");
        let cell = &buf[(x, y)];
        let want = theme.style(Role::Failed);
        assert_eq!(cell.fg, want.fg.unwrap_or(cell.fg), "{theme_name}");
        if let Some(fg) = want.fg {
            assert_eq!(cell.fg, fg, "{theme_name}");
        }
        assert!(
            cell.modifier.contains(want.add_modifier),
            "{theme_name}: {:?}",
            cell.modifier
        );
        // A completed row is not drawn as failed.
        let (_, y2) = find(&lines, " 26 ");
        let (x2, _) = find(&lines[y2 as usize..=y2 as usize], "completed");
        assert_ne!(buf[(x2, y2)].style(), cell.style(), "{theme_name}");
    }
}

#[test]
fn marked_row_uses_the_marked_role() {
    let theme = Theme::builtin("default");
    let mut state = loaded_state("default");
    exec(&mut state, Command::GoRequests);
    exec(&mut state, Command::Mark); // marks request 30 and moves to 29
    let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
    let lines = text(&buf);
    let (_, y) = find(&lines, "● 30 ");
    let (x, _) = find(&lines[y as usize..=y as usize], "30");
    let cell = &buf[(x, y)];
    assert_eq!(Some(cell.fg), theme.style(Role::Marked).fg);
    assert!(cell.modifier.contains(Modifier::BOLD));
    // The selected row (29) carries the selection background.
    let (_, ys) = find(&lines, " 29 ");
    let (xs, _) = find(&lines[ys as usize..=ys as usize], "29");
    assert_eq!(Some(buf[(xs, ys)].bg), theme.style(Role::Selected).bg);
    assert!(lines.iter().any(|l| l.contains("1 marked")));
}

#[test]
fn stale_worker_stands_out() {
    let theme = Theme::builtin("default");
    let mut state = loaded_state("default");
    exec(&mut state, Command::GoWorkers);
    let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
    let lines = text(&buf);
    let (x, y) = find(&lines, "STALE");
    assert!(lines[y as usize].contains("host-b"));
    let cell = &buf[(x, y)];
    assert_eq!(Some(cell.fg), theme.style(Role::Stale).fg);
    assert!(cell.modifier.contains(Modifier::REVERSED));
}

#[test]
fn narrow_layouts_collapse_panes() {
    let mut state = loaded_state("default");
    exec(&mut state, Command::GoApprovals);
    let narrow = text(&render_to_buffer(&state, Rect::new(0, 0, 80, 24)));
    let wide = text(&render_to_buffer(&state, Rect::new(0, 0, 160, 48)));
    assert!(!narrow.iter().any(|l| l.contains("approval chain")));
    assert!(wide.iter().any(|l| l.contains("approval chain")));
    // Configs: one pane at 80 columns, tab switches to the history.
    exec(&mut state, Command::GoConfigs);
    let narrow = text(&render_to_buffer(&state, Rect::new(0, 0, 80, 24)));
    assert!(!narrow.iter().any(|l| l.contains("history:")));
    exec(&mut state, Command::FocusNext);
    let narrow = text(&render_to_buffer(&state, Rect::new(0, 0, 80, 24)));
    assert!(narrow.iter().any(|l| l.contains("history: joiner-std")));
}

#[test]
fn tiny_terminal_does_not_panic() {
    let mut state = loaded_state("default");
    for (name, setup) in views() {
        setup(&mut state);
        for (w, h) in [(1u16, 1u16), (19, 5), (20, 6), (30, 8), (40, 10)] {
            let _ = render_to_buffer(&state, Rect::new(0, 0, w, h));
        }
        let _ = name;
    }
}

/// A name built to attack the operator's terminal: clear screen, retitle, bell, carriage
/// return, a right-to-left override, an 8-bit CSI, a tab and DEL.
const HOSTILE: &str = "Eve\x1b[2J\x1b]0;pwned\x07\rMallory\u{202e}gnp.exe\u{9b}31m\t\x7f";

/// A state whose stored texts (names, reasons, errors, payload, timeline, logs, audit, flash,
/// configs) all carry control characters.
fn hostile_state() -> AppState {
    use gatehouse::domain::request::RequestState;
    use gatehouse::store::api::Page;
    use gatehouse::tui::action::Loaded;
    let mut state = loaded_state("default");
    let mut rows = requests();
    rows[0].subject_name = HOSTILE.into();
    rows[0].requester = "hr\x1b[8m@example.com".into();
    rows[0].last_error = Some("smtp: \x1b]8;;http://evil\x07link\x1b]8;;\x07".into());
    feed(
        &mut state,
        Loaded::Requests {
            append: false,
            result: Ok(Page { rows, next: None }),
        },
    );
    let mut approvals = approvals();
    approvals[0].subject_name = HOSTILE.into();
    approvals[0].stage_name = "mgr\x1b[5m".into();
    feed(
        &mut state,
        Loaded::Approvals {
            append: false,
            result: Ok(Page {
                rows: approvals,
                next: None,
            }),
        },
    );
    let mut d = detail(12);
    d.request.subject_name = HOSTILE.into();
    d.request.state = RequestState::Failed;
    d.request.last_error = Some("target said \x1b[2J\r\u{202e}".into());
    d.request.payload = serde_json::json!({"team": "Sales\x1b[31m", "note\x07": "a\u{2066}b"});
    d.approvals[0].decisions[0].reason = Some("ok\x1b[1A\x1b[2K".into());
    d.timeline[0].summary = format!("received {HOSTILE}");
    d.timeline[0].detail = serde_json::json!({"subject": HOSTILE});
    feed(
        &mut state,
        Loaded::Detail {
            id: 12,
            result: Ok(d),
        },
    );
    let mut log_rows = logs();
    if let Some(row) = log_rows.last_mut() {
        row.message = format!("login failed for {HOSTILE}");
    }
    feed(
        &mut state,
        Loaded::Logs {
            reset: true,
            result: Ok(log_rows),
        },
    );
    let mut audit = audit_rows();
    audit[0].actor = HOSTILE.into();
    feed(
        &mut state,
        Loaded::Audit {
            append: false,
            result: Ok(Page {
                rows: audit,
                next: None,
            }),
        },
    );
    let mut heads = config_heads();
    heads[0].comment = "tidy\x1b[2J".into();
    heads[0].body = format!("# owner: {HOSTILE}\n{}", heads[0].body);
    feed(&mut state, Loaded::ConfigHeads(Ok(heads)));
    state.flash = Some(gatehouse::tui::widgets::flash::Flash {
        level: gatehouse::tui::widgets::flash::FlashLevel::Err,
        text: format!("cannot approve {HOSTILE}"),
        at: NOW,
    });
    state
}

fn assert_inert(name: &str, buf: &Buffer) {
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let symbol = buf[(x, y)].symbol();
            assert!(
                !symbol.contains(gatehouse::domain::inert::is_unsafe),
                "{name}: cell ({x},{y}) holds {symbol:?}"
            );
        }
    }
}

#[test]
fn hostile_text_is_shown_inert_in_every_view() {
    let views: Vec<(&str, Setup)> = vec![
        ("requests", |s| exec(s, Command::GoRequests)),
        ("approvals", |s| exec(s, Command::GoApprovals)),
        ("detail", |s| {
            exec(s, Command::GoRequests);
            s.stack.push(gatehouse::tui::views::ViewId::Detail);
        }),
        ("logs", |s| exec(s, Command::GoLogs)),
        ("audit", |s| exec(s, Command::GoAudit)),
        ("configs", |s| exec(s, Command::GoConfigs)),
        ("editor", |s| {
            exec(s, Command::GoConfigs);
            exec(s, Command::Edit);
        }),
    ];
    for (name, setup) in views {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut state = hostile_state();
            state.size = (w, h);
            setup(&mut state);
            let buf = render_to_buffer(&state, Rect::new(0, 0, w, h));
            assert_inert(name, &buf);
            let lines = text(&buf).join("\n");
            assert!(
                lines.contains("␛"),
                "{name} {w}x{h} shows the escape:\n{lines}"
            );
        }
    }
}

#[test]
fn hostile_request_name_snapshots() {
    for (name, setup) in [
        (
            "hostile_requests_160x48",
            (|s| exec(s, Command::GoRequests)) as Setup,
        ),
        ("hostile_detail_160x48", |s| {
            exec(s, Command::GoRequests);
            s.stack.push(gatehouse::tui::views::ViewId::Detail);
        }),
    ] {
        let mut state = hostile_state();
        state.size = (160, 48);
        setup(&mut state);
        let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
        let lines = text(&buf);
        let screen = lines.join("\n");
        assert!(screen.contains("Eve␛[2J␛]0;pwned␇␍Mallory"), "{screen}");
        assert!(screen.contains("\\u{202e}gnp.exe\\u{9b}31m␉␡"), "{screen}");
        insta::assert_snapshot!(name, screen);
    }
}

#[test]
fn operators_view_lists_roles_scopes_and_keys_with_last_use() {
    use gatehouse::store::api::{OperatorKeyRow, OperatorRow};
    let mut state = loaded_state("default");
    exec(&mut state, Command::CommandMode);
    for c in "operators".chars() {
        key(&mut state, KeyCode::Char(c));
    }
    key(&mut state, KeyCode::Enter);
    let operator = |name: &str, role: &str, scopes: &[&str]| OperatorRow {
        name: name.into(),
        role: role.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        email: None,
    };
    feed(
        &mut state,
        gatehouse::tui::action::Loaded::Operators(Ok((
            vec![
                operator("alice", "admin", &[]),
                operator("vic", "viewer", &["team:sales"]),
            ],
            vec![OperatorKeyRow {
                fingerprint: "SHA256:pgBPf+Cmkyr9vYrlBdmeAmQq0307WIq5d5ZETJVTIXo".into(),
                operator: "alice".into(),
                algorithm: "ssh-ed25519".into(),
                comment: Some("alice@laptop".into()),
                added_at: NOW - 86_400_000,
                added_by: "root".into(),
                last_used_at: Some(NOW - 300_000),
                last_used_from: Some("127.0.0.1:52311".into()),
            }],
        ))),
    );
    let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
    let lines = text(&buf);
    assert!(lines[0].contains("operators"), "breadcrumb: {}", lines[0]);
    let alice = lines
        .iter()
        .find(|l| l.contains("alice") && l.contains("SHA256:"))
        .unwrap_or_else(|| panic!("no key row:\n{}", lines.join("\n")));
    for part in ["admin", "all", "ssh-ed25519", "5m", "127.0.0.1:52311"] {
        assert!(alice.contains(part), "{part} missing in {alice}");
    }
    let vic = lines.iter().find(|l| l.contains("vic")).expect("vic's row");
    assert!(
        vic.contains("team:sales") && vic.contains("no key"),
        "{vic}"
    );
    insta::assert_snapshot!("operators_160x48_lines", lines.join("\n"));
}

/// A decision taken by mail reply shows the mail it came in, in the approvals view's chain (the
/// preview pane, so 160×48 only: at 80×24 the view has no preview).
#[test]
fn a_decision_by_reply_names_its_mail() {
    use gatehouse::tui::action::Loaded;
    let mut state = loaded_state("default");
    state.size = (160, 48);
    let mut d = detail(12);
    d.approvals[0].decisions[0].source = Some("mail:r7@example.com".into());
    feed(
        &mut state,
        Loaded::Detail {
            id: 12,
            result: Ok(d),
        },
    );
    exec(&mut state, Command::GoApprovals);
    let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
    let screen = text(&buf).join("\n");
    assert!(
        screen.contains("1. manager (any) approved by bob (by reply, mail:r7@example.com)"),
        "{screen}"
    );
    insta::assert_snapshot!("approval_by_reply_160x48", screen);
}

/// A leaver's pinned plan with a grace period: the approvals view's preview says which steps
/// wait and until when, before the approver decides.
#[test]
fn a_grace_period_is_shown_before_deciding() {
    use gatehouse::store::api::TimelineEntry;
    use gatehouse::tui::action::Loaded;
    let mut state = loaded_state("default");
    state.size = (160, 48);
    let mut d = detail(12);
    d.timeline.push(TimelineEntry {
        at: 1_000,
        kind: "step".into(),
        summary: "plan pinned: workflow leaver v1, connector hr-db v1 done".into(),
        detail: serde_json::json!({"output": {"grace": {
            "shown": "revoke run 2w after the other steps: revoke at 2026-12-16 01:10 UTC if approved now"
        }}}),
    });
    feed(
        &mut state,
        Loaded::Detail {
            id: 12,
            result: Ok(d),
        },
    );
    exec(&mut state, Command::GoApprovals);
    let buf = render_to_buffer(&state, Rect::new(0, 0, 160, 48));
    let screen = text(&buf).join("\n");
    assert!(
        screen.contains("grace period: revoke run 2w after the other steps"),
        "{screen}"
    );
    assert!(
        screen.contains("2026-12-16 01:10 UTC if approved now"),
        "{screen}"
    );
}
