//! Key chords per layer → commands. The view's layer is searched first, then `global`; the
//! built-in map (`keymap-default.toml`) is patched by `<config_dir>/keymap.toml`; in read-only
//! mode dangerous commands are never registered, so help cannot list them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::command::Command;

/// The built-in key map.
pub const DEFAULT_KEYMAP: &str = include_str!("keymap-default.toml");

/// A key with its modifiers, normalised so `G` and `shift-g` are the same chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    /// The key.
    pub code: KeyCode,
    /// Control and alt only (shift is folded into the character).
    pub mods: KeyModifiers,
}

impl KeyChord {
    /// Normalises a terminal key event.
    pub fn from_event(event: &KeyEvent) -> KeyChord {
        let mods = event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match event.code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            other => other,
        };
        KeyChord { code, mods }
    }

    /// Parses `a`, `G`, `ctrl-s`, `alt-x`, `space`, `enter`, `esc`, `tab`, `backtab`, arrows,
    /// `pgup`, `pgdn`, `home`, `end`, `f1`–`f12`, or any single character.
    pub fn parse(text: &str) -> Option<KeyChord> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest {
                "space" => KeyCode::Char(' '),
                "enter" => KeyCode::Enter,
                "esc" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "delete" => KeyCode::Delete,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" => KeyCode::PageUp,
                "pgdn" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().ok()?;
                    if !(1..=12).contains(&n) {
                        return None;
                    }
                    KeyCode::F(n)
                }
                _ => return None,
            },
        };
        Some(KeyChord { code, mods })
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("backtab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A set of bindings: the view layers and `global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Searched after every view layer except the editor's.
    Global,
    /// Overview.
    Overview,
    /// Approvals inbox.
    Approvals,
    /// Requests list.
    Requests,
    /// One request's detail and timeline.
    Detail,
    /// Queues and jobs.
    Queues,
    /// Log tail.
    Logs,
    /// Workers.
    Workers,
    /// Configuration documents.
    Configs,
    /// The configuration editor (keys not bound here type text).
    Editor,
    /// Audit trail.
    Audit,
    /// Operators and their SSH keys.
    Operators,
    /// Mail held by intake.
    Quarantine,
    /// Mailboxes intake reads.
    Mailboxes,
    /// Approval delegations.
    Delegations,
}

impl Layer {
    /// Every layer.
    pub const ALL: &'static [Layer] = &[
        Layer::Global,
        Layer::Overview,
        Layer::Approvals,
        Layer::Requests,
        Layer::Detail,
        Layer::Queues,
        Layer::Logs,
        Layer::Workers,
        Layer::Configs,
        Layer::Editor,
        Layer::Audit,
        Layer::Operators,
        Layer::Quarantine,
        Layer::Mailboxes,
        Layer::Delegations,
    ];

    /// Section name in key-map files.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Global => "global",
            Layer::Overview => "overview",
            Layer::Approvals => "approvals",
            Layer::Requests => "requests",
            Layer::Detail => "detail",
            Layer::Queues => "queues",
            Layer::Logs => "logs",
            Layer::Workers => "workers",
            Layer::Configs => "configs",
            Layer::Editor => "editor",
            Layer::Audit => "audit",
            Layer::Operators => "operators",
            Layer::Quarantine => "quarantine",
            Layer::Mailboxes => "mailboxes",
            Layer::Delegations => "delegations",
        }
    }

    fn from_name(name: &str) -> Option<Layer> {
        Layer::ALL.iter().copied().find(|l| l.name() == name)
    }
}

/// What a key press resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A registered command.
    Command(Command),
    /// Bound to a dangerous command that was not registered (read-only mode or role).
    Refused(Command),
    /// Not bound.
    Unbound,
}

/// The live key map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keymap {
    layers: BTreeMap<Layer, Vec<(KeyChord, Command)>>,
    refused: BTreeMap<Layer, Vec<(KeyChord, Command)>>,
}

impl Keymap {
    /// The built-in map (no user file) for an admin, full or read-only.
    pub fn builtin(read_only: bool) -> Keymap {
        load(None, read_only).0
    }

    /// The built-in map for an operator with `role`.
    pub fn builtin_for(role: &str, read_only: bool) -> Keymap {
        load_for(None, role, read_only).0
    }

    /// Resolves a chord in `layer`, then `global` (except for the editor layer).
    pub fn lookup(&self, layer: Layer, chord: KeyChord) -> Lookup {
        let mut layers = vec![layer];
        if layer != Layer::Editor && layer != Layer::Global {
            layers.push(Layer::Global);
        }
        for l in layers {
            if let Some((_, c)) = self
                .layers
                .get(&l)
                .and_then(|b| b.iter().find(|(k, _)| *k == chord))
            {
                return Lookup::Command(*c);
            }
            if let Some((_, c)) = self
                .refused
                .get(&l)
                .and_then(|b| b.iter().find(|(k, _)| *k == chord))
            {
                return Lookup::Refused(*c);
            }
        }
        Lookup::Unbound
    }

    /// The bindings help shows for a view: its own layer first, then global (not for the editor).
    pub fn bindings(&self, layer: Layer) -> Vec<(KeyChord, Command)> {
        let mut out: Vec<(KeyChord, Command)> =
            self.layers.get(&layer).cloned().unwrap_or_default();
        if layer != Layer::Editor && layer != Layer::Global {
            for (chord, command) in self.layers.get(&Layer::Global).into_iter().flatten() {
                if !out.iter().any(|(k, _)| k == chord) {
                    out.push((*chord, *command));
                }
            }
        }
        out
    }

    /// The bindings of `layer` alone, without global ones.
    pub fn own(&self, layer: Layer) -> Vec<(KeyChord, Command)> {
        self.layers.get(&layer).cloned().unwrap_or_default()
    }

    /// The first key bound to `command` in `layer` or global, for hint lines.
    pub fn key_for(&self, layer: Layer, command: Command) -> Option<KeyChord> {
        self.bindings(layer)
            .into_iter()
            .find(|(_, c)| *c == command)
            .map(|(k, _)| k)
    }

    fn bind(&mut self, layer: Layer, chord: KeyChord, command: Option<Command>) {
        let list = self.layers.entry(layer).or_default();
        list.retain(|(k, _)| *k != chord);
        if let Some(command) = command {
            list.push((chord, command));
        }
    }
}

fn apply_file(map: &mut Keymap, label: &str, text: &str, warnings: &mut Vec<String>) {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!("keymap {label}: {}", e.message()));
            return;
        }
    };
    for (section, value) in table {
        let Some(layer) = Layer::from_name(&section) else {
            warnings.push(format!("keymap {label}: unknown section [{section}]"));
            continue;
        };
        let Some(entries) = value.as_table() else {
            warnings.push(format!("keymap {label}: {section} must be a table"));
            continue;
        };
        for (key, command) in entries {
            let Some(chord) = KeyChord::parse(key) else {
                warnings.push(format!("keymap {label}: [{section}] unknown key {key:?}"));
                continue;
            };
            let Some(command_name) = command.as_str() else {
                warnings.push(format!(
                    "keymap {label}: [{section}] {key}: command must be a string"
                ));
                continue;
            };
            if command_name == "none" {
                map.bind(layer, chord, None);
                continue;
            }
            match Command::from_name(command_name) {
                Some(c) => map.bind(layer, chord, Some(c)),
                None => warnings.push(format!(
                    "keymap {label}: [{section}] {key} = {command_name:?}: unknown command"
                )),
            }
        }
    }
}

/// The key map for an admin (see [`load_for`]).
pub fn load(config_dir: Option<&Path>, read_only: bool) -> (Keymap, Vec<String>) {
    load_for(config_dir, "admin", read_only)
}

/// Builds the live key map: built-in, patched by `<config_dir>/keymap.toml`, with the dangerous
/// commands `role` may not run (all of them when `read_only`) left out, so help never lists
/// them. Problems come back as warnings, never as errors.
pub fn load_for(config_dir: Option<&Path>, role: &str, read_only: bool) -> (Keymap, Vec<String>) {
    let mut warnings = Vec::new();
    let mut map = Keymap::default();
    apply_file(&mut map, "built-in", DEFAULT_KEYMAP, &mut warnings);
    if let Some(dir) = config_dir {
        let path = dir.join("keymap.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => apply_file(&mut map, &path.display().to_string(), &text, &mut warnings),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warnings.push(format!("keymap {}: {e}", path.display())),
        }
    }
    let mut refused = BTreeMap::new();
    for (layer, list) in map.layers.iter_mut() {
        let (allowed, denied): (Vec<_>, Vec<_>) = list
            .drain(..)
            .partition(|(_, c)| c.allowed_for(role, read_only));
        *list = allowed;
        if !denied.is_empty() {
            refused.insert(*layer, denied);
        }
    }
    map.refused = refused;
    (map, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chord(s: &str) -> KeyChord {
        KeyChord::parse(s).expect("valid chord")
    }

    #[test]
    fn builtin_loads_cleanly() {
        let (map, warnings) = load(None, false);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            map.lookup(Layer::Approvals, chord("a")),
            Lookup::Command(Command::Approve)
        );
        assert_eq!(
            map.lookup(Layer::Approvals, chord("j")),
            Lookup::Command(Command::Down)
        );
        assert_eq!(map.lookup(Layer::Overview, chord("a")), Lookup::Unbound);
        // The editor layer does not fall back to global: `j` types a j.
        assert_eq!(map.lookup(Layer::Editor, chord("j")), Lookup::Unbound);
        assert_eq!(
            map.lookup(Layer::Editor, chord("ctrl-s")),
            Lookup::Command(Command::Save)
        );
    }

    #[test]
    fn chords_parse_and_normalise() {
        assert_eq!(chord("G").code, KeyCode::Char('G'));
        assert_eq!(chord("ctrl-S"), chord("ctrl-s"));
        assert_eq!(chord("space").code, KeyCode::Char(' '));
        assert_eq!(chord("f5").code, KeyCode::F(5));
        assert_eq!(KeyChord::parse("f13"), None);
        assert_eq!(KeyChord::parse("hyper-x"), None);
        let shifted = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(KeyChord::from_event(&shifted), chord("G"));
        let ctrl = KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL);
        assert_eq!(KeyChord::from_event(&ctrl), chord("ctrl-s"));
        assert_eq!(chord("ctrl-s").to_string(), "ctrl-s");
        assert_eq!(chord("space").to_string(), "space");
    }

    #[test]
    fn read_only_refuses_dangerous_and_help_omits_them() {
        let map = Keymap::builtin(true);
        assert_eq!(
            map.lookup(Layer::Approvals, chord("a")),
            Lookup::Refused(Command::Approve)
        );
        assert!(
            map.bindings(Layer::Approvals)
                .iter()
                .all(|(_, c)| !c.is_dangerous())
        );
        assert!(
            map.bindings(Layer::Editor)
                .iter()
                .all(|(_, c)| !c.is_dangerous())
        );
        assert_eq!(
            map.lookup(Layer::Approvals, chord("?")),
            Lookup::Command(Command::Help)
        );
    }

    #[test]
    fn approvers_decide_but_do_not_retry_and_viewers_do_neither() {
        let map = Keymap::builtin_for("approver", false);
        assert_eq!(
            map.lookup(Layer::Approvals, chord("a")),
            Lookup::Command(Command::Approve)
        );
        assert_eq!(
            map.lookup(Layer::Requests, chord("R")),
            Lookup::Refused(Command::Retry)
        );
        let map = Keymap::builtin_for("viewer", false);
        assert_eq!(
            map.lookup(Layer::Approvals, chord("a")),
            Lookup::Refused(Command::Approve)
        );
        assert!(
            map.bindings(Layer::Approvals)
                .iter()
                .all(|(_, c)| !c.is_dangerous())
        );
    }

    #[test]
    fn user_overrides_unbinds_and_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("keymap.toml"),
            "[approvals]\n\"y\" = \"approve\"\n\"a\" = \"none\"\n\"hyper-q\" = \"quit\"\n\"z\" = \"explode\"\n[nosuch]\n\"x\" = \"quit\"\n",
        )
        .expect("write");
        let (map, warnings) = load(Some(dir.path()), false);
        assert_eq!(
            map.lookup(Layer::Approvals, chord("y")),
            Lookup::Command(Command::Approve)
        );
        assert_eq!(map.lookup(Layer::Approvals, chord("a")), Lookup::Unbound);
        // Other layers keep their defaults.
        assert_eq!(
            map.lookup(Layer::Detail, chord("a")),
            Lookup::Command(Command::Approve)
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("unknown key \"hyper-q\""))
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("\"explode\": unknown command"))
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("unknown section [nosuch]"))
        );
    }

    #[test]
    fn broken_user_file_keeps_builtin() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keymap.toml"), "[approvals\n").expect("write");
        let (map, warnings) = load(Some(dir.path()), false);
        assert_eq!(warnings.len(), 1);
        assert_eq!(map, Keymap::builtin(false));
    }

    #[test]
    fn view_layer_wins_over_global() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("keymap.toml"),
            "[logs]\n\"j\" = \"follow\"\n",
        )
        .expect("write");
        let (map, _) = load(Some(dir.path()), false);
        assert_eq!(
            map.lookup(Layer::Logs, chord("j")),
            Lookup::Command(Command::Follow)
        );
        assert_eq!(
            map.lookup(Layer::Workers, chord("j")),
            Lookup::Command(Command::Down)
        );
        let help = map.bindings(Layer::Logs);
        assert_eq!(help.iter().filter(|(k, _)| *k == chord("j")).count(), 1);
    }
}
