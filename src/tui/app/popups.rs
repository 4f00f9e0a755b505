//! Keys while a popup is open (prompt, confirm, reason, help, diff, text), paste, and typing
//! into the editor.

use super::*;

impl AppState {
    pub(super) fn on_paste(&mut self, text: &str) {
        match &mut self.popup {
            Some(Popup::Prompt(p)) => p.input.push_str(&text.replace(['\n', '\r'], " ")),
            Some(Popup::Reason { input, .. }) => {
                input.insert_str(text.replace(['\n', '\r'], " "));
            }
            Some(Popup::Triage(triage)) => triage.form.paste(text),
            Some(Popup::Delegation(form)) => form.paste(text),
            Some(_) => {}
            None => {
                if self.view() == ViewId::Editor
                    && let Some(ed) = self.editor.as_mut().filter(|e| !e.read_only)
                {
                    ed.textarea.insert_str(text);
                    ed.clear_problem(&self.theme);
                }
            }
        }
    }

    pub(super) fn editor_input(&mut self, key: KeyEvent) {
        let Some(ed) = self.editor.as_mut() else {
            return;
        };
        if ed.read_only {
            let movement = matches!(
                key.code,
                KeyCode::Up
                    | KeyCode::Down
                    | KeyCode::Left
                    | KeyCode::Right
                    | KeyCode::PageUp
                    | KeyCode::PageDown
                    | KeyCode::Home
                    | KeyCode::End
            );
            if movement {
                ed.textarea.input(key);
            } else if key.code != KeyCode::Esc {
                self.flash(FlashLevel::Err, "read-only: the document cannot be edited");
            }
            return;
        }
        if ed.textarea.input(key) {
            ed.clear_problem(&self.theme);
        }
    }

    /// Keeps a submitted prompt line for ↑ (no empty lines, no repeats in a row, 50 at most).
    fn remember(&mut self, mode: PromptMode, line: &str) {
        let history = match mode {
            PromptMode::Command => &mut self.history_cmd,
            PromptMode::Filter => &mut self.history_filter,
        };
        if line.is_empty() || history.last().is_some_and(|l| l == line) {
            return;
        }
        history.push(line.to_string());
        if history.len() > 50 {
            history.remove(0);
        }
    }

    /// A prompt with this mode's history.
    pub(super) fn open_prompt(&mut self, mode: PromptMode) {
        let mut prompt = Prompt::new(mode, "");
        prompt.history = match mode {
            PromptMode::Command => self.history_cmd.clone(),
            PromptMode::Filter => self.history_filter.clone(),
        };
        if mode == PromptMode::Filter {
            prompt.current = self.filter_text().to_string();
        }
        self.popup = Some(Popup::Prompt(prompt));
    }

    pub(super) fn popup_key(&mut self, popup: Popup, key: KeyEvent) -> Vec<Effect> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match popup {
            Popup::Prompt(mut prompt) => {
                let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                match key.code {
                    KeyCode::Esc => return Vec::new(),
                    _ if ctrl_c => return Vec::new(),
                    KeyCode::Enter => {
                        let line = prompt.input.trim().to_string();
                        self.remember(prompt.mode, &line);
                        return match prompt.mode {
                            PromptMode::Command => self.run_verb(&line),
                            PromptMode::Filter => self.apply_filter(&line),
                        };
                    }
                    KeyCode::Tab if prompt.mode == PromptMode::Command => prompt.complete(),
                    KeyCode::Char('u') if ctrl => prompt.clear(),
                    KeyCode::Char('w') if ctrl => prompt.delete_word(),
                    KeyCode::Up => prompt.recall(true),
                    KeyCode::Down => prompt.recall(false),
                    KeyCode::Backspace => {
                        prompt.input.pop();
                        prompt.refresh_candidates();
                    }
                    KeyCode::Char(c) if !ctrl => {
                        prompt.input.push(c);
                        prompt.refresh_candidates();
                    }
                    _ => {}
                }
                self.popup = Some(Popup::Prompt(prompt));
                Vec::new()
            }
            Popup::Confirm { text, cmds } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(
                        FlashLevel::Info,
                        format!(
                            "{} …",
                            cmds.first().map(StoreCmd::verb).unwrap_or("working")
                        ),
                    );
                    vec![Effect::Run(cmds)]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.flash(FlashLevel::Info, "cancelled, nothing changed");
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                _ => {
                    self.popup = Some(Popup::Confirm { text, cmds });
                    Vec::new()
                }
            },
            Popup::Discard { name, quit } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') if quit => vec![Effect::Quit],
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(
                        FlashLevel::Info,
                        format!("changes to {name} discarded, nothing saved"),
                    );
                    self.leave_view()
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Vec::new(),
                _ if ctrl_c => Vec::new(),
                _ => {
                    self.popup = Some(Popup::Discard { name, quit });
                    Vec::new()
                }
            },
            Popup::Reason {
                title,
                mut input,
                error,
                target,
            } => match key.code {
                KeyCode::Esc => {
                    let what = match target {
                        ReasonFor::Reject(_) => "reject",
                        ReasonFor::Cancel(_) => "cancel",
                        ReasonFor::Release(_) => "release",
                        ReasonFor::Discard(_) => "discard",
                        ReasonFor::SkipStep(..) => "skip",
                        ReasonFor::DoneStep(..) => "done",
                    };
                    self.flash(
                        FlashLevel::Info,
                        format!("{what} abandoned, nothing changed"),
                    );
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                KeyCode::Enter => {
                    let reason = input.lines().join(" ").trim().to_string();
                    if reason.is_empty() && !matches!(target, ReasonFor::DoneStep(..)) {
                        self.popup = Some(Popup::Reason {
                            title,
                            input,
                            error: Some("a reason is required".to_string()),
                            target,
                        });
                        return Vec::new();
                    }
                    match target {
                        ReasonFor::Reject(targets) => {
                            self.decide(&targets, Decision::Reject, Some(reason))
                        }
                        ReasonFor::Cancel(ids) => self.cancel_with(ids, reason),
                        ReasonFor::Release(id) => {
                            vec![Effect::Run(vec![StoreCmd::ReleaseMessage { id, reason }])]
                        }
                        ReasonFor::Discard(id) => {
                            vec![Effect::Run(vec![StoreCmd::DiscardMessage { id, reason }])]
                        }
                        ReasonFor::SkipStep(request_id, step) => {
                            vec![Effect::Run(vec![StoreCmd::SkipStep {
                                request_id,
                                step,
                                reason,
                            }])]
                        }
                        ReasonFor::DoneStep(request_id, step) => {
                            let note = (!reason.is_empty()).then_some(reason);
                            vec![Effect::Run(vec![StoreCmd::DoneStep {
                                request_id,
                                step,
                                note,
                            }])]
                        }
                    }
                }
                _ => {
                    input.input(key);
                    self.popup = Some(Popup::Reason {
                        title,
                        input,
                        error,
                        target,
                    });
                    Vec::new()
                }
            },
            Popup::Triage(triage) => self.triage_key(triage, key),
            Popup::Delegation(form) => self.delegation_key(form, key),
            Popup::Help { scroll } => {
                let scroll = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter => {
                        return Vec::new();
                    }
                    _ if ctrl_c => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => scroll,
                };
                self.popup = Some(Popup::Help { scroll });
                Vec::new()
            }
            Popup::Diff(mut diff) => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.flash(FlashLevel::Info, format!("saving {} …", diff.name));
                    vec![Effect::Run(diff.cmds)]
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.flash(FlashLevel::Info, "save cancelled, nothing saved");
                    Vec::new()
                }
                _ if ctrl_c => Vec::new(),
                _ => {
                    match key.code {
                        KeyCode::Down | KeyCode::Char('j') => diff.scroll += 1,
                        KeyCode::Up | KeyCode::Char('k') => {
                            diff.scroll = diff.scroll.saturating_sub(1)
                        }
                        KeyCode::PageDown => diff.scroll += 10,
                        KeyCode::PageUp => diff.scroll = diff.scroll.saturating_sub(10),
                        _ => {}
                    }
                    self.popup = Some(Popup::Diff(diff));
                    Vec::new()
                }
            },
            Popup::Text {
                title,
                lines,
                scroll,
            } => {
                let scroll = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => return Vec::new(),
                    _ if ctrl_c => return Vec::new(),
                    KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                    KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                    KeyCode::PageDown => scroll + 10,
                    KeyCode::PageUp => scroll.saturating_sub(10),
                    _ => scroll,
                };
                self.popup = Some(Popup::Text {
                    title,
                    lines,
                    scroll,
                });
                Vec::new()
            }
        }
    }
}
