//! Themes: semantic roles → styles. Built-in `themes/*.toml` are compiled in; a user file of the
//! same name in `<config_dir>/themes/` patches (or, when complete, replaces) one; `parent`
//! inherits; colours are converted down to the terminal's depth (truecolor → 256 → 16).

use std::collections::BTreeMap;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The built-in themes, by name, compiled into the binary.
pub const BUILTIN_THEMES: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

macro_rules! roles {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A semantic role the views draw with; themes give each a style.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Role {
            $(#[doc = $doc] $variant,)*
        }

        impl Role {
            /// Every role, in declaration order.
            pub const ALL: &'static [Role] = &[$(Role::$variant,)*];

            /// The role's key in a theme file.
            pub fn name(self) -> &'static str {
                match self {
                    $(Role::$variant => $name,)*
                }
            }
        }
    };
}

roles! {
    Base => "base", "Ordinary text.";
    Header => "header", "Table headers and the top bar.";
    Title => "title", "Pane titles.";
    Border => "border", "Pane borders.";
    BorderFocus => "border_focus", "Border of the focused pane.";
    Selected => "selected", "The selected row.";
    Marked => "marked", "Rows marked for a bulk action.";
    Dim => "dim", "Secondary text.";
    Accent => "accent", "Highlights.";
    Key => "key", "Key names in hints and help.";
    Crumb => "crumb", "Breadcrumbs.";
    CrumbCurrent => "crumb_current", "The current breadcrumb.";
    FlashOk => "flash_ok", "Successful outcome.";
    FlashErr => "flash_err", "Failed outcome.";
    FlashInfo => "flash_info", "Information.";
    Pending => "pending", "Waiting (approvals, scheduled).";
    Running => "running", "In progress.";
    Completed => "completed", "Done.";
    Failed => "failed", "Failed or dead.";
    Rejected => "rejected", "Rejected.";
    Cancelled => "cancelled", "Cancelled.";
    Triage => "triage", "Needs a person.";
    Stale => "stale", "Stale worker heartbeat.";
    Paused => "paused", "Paused queue, draining worker.";
    LogError => "log_error", "ERROR log lines.";
    LogWarn => "log_warn", "WARN log lines.";
    LogInfo => "log_info", "INFO log lines.";
    LogDebug => "log_debug", "DEBUG and TRACE log lines.";
    DiffAdd => "diff_add", "Added lines in a diff.";
    DiffDel => "diff_del", "Removed lines in a diff.";
    EditorError => "editor_error", "The line a validation error points at.";
    SparklineOk => "sparkline_ok", "Throughput sparkline.";
    SparklineErr => "sparkline_err", "Failure sparkline.";
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// 24-bit colour.
    TrueColor,
    /// The xterm 256-colour palette.
    Ansi256,
    /// The 16 basic colours.
    Ansi16,
}

impl ColorDepth {
    /// Detects depth from `COLORTERM` and `TERM` values (passed in so tests need no environment).
    pub fn detect(colorterm: Option<&str>, term: Option<&str>) -> ColorDepth {
        let colorterm = colorterm.unwrap_or("").to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            return ColorDepth::TrueColor;
        }
        if term.is_some_and(|t| t.contains("256color")) {
            return ColorDepth::Ansi256;
        }
        ColorDepth::Ansi16
    }

    /// Detects depth from this process's environment.
    pub fn from_env() -> ColorDepth {
        let colorterm = std::env::var("COLORTERM").ok();
        let term = std::env::var("TERM").ok();
        ColorDepth::detect(colorterm.as_deref(), term.as_deref())
    }
}

/// The theme to use: `NO_COLOR` (set and non-empty) forces `mono`.
pub fn effective_theme_name(requested: &str, no_color: Option<&str>) -> String {
    if no_color.is_some_and(|v| !v.is_empty()) {
        "mono".to_string()
    } else {
        requested.to_string()
    }
}

/// A compiled theme: one style per role, already converted to the terminal's depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// The theme's name.
    pub name: String,
    /// Depth the colours were converted to.
    pub depth: ColorDepth,
    styles: Vec<Style>,
}

impl Theme {
    /// The style for a role.
    pub fn style(&self, role: Role) -> Style {
        let index = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
        self.styles.get(index).copied().unwrap_or_default()
    }

    /// A built-in theme at full colour depth, ignoring user files (for tests and benchmarks).
    pub fn builtin(name: &str) -> Theme {
        load(name, None, ColorDepth::TrueColor).0
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    fg: Option<String>,
    bg: Option<String>,
    bold: Option<bool>,
    italic: Option<bool>,
    underlined: Option<bool>,
    reversed: Option<bool>,
    dim: Option<bool>,
    crossed_out: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[allow(dead_code)] // read for documentation; the lookup name is the file name
    name: Option<String>,
    parent: Option<String>,
    #[serde(default)]
    palette: BTreeMap<String, String>,
    #[serde(default)]
    roles: BTreeMap<String, RoleSpec>,
}

impl ThemeFile {
    fn overlay(mut self, top: ThemeFile) -> ThemeFile {
        self.palette.extend(top.palette);
        self.roles.extend(top.roles);
        self
    }
}

fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN_THEMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

fn parse_file(label: &str, text: &str, warnings: &mut Vec<String>) -> Option<ThemeFile> {
    match toml::from_str::<ThemeFile>(text) {
        Ok(file) => Some(file),
        Err(e) => {
            let line_col = e
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!("{line}:{col}: ")
                })
                .unwrap_or_default();
            warnings.push(format!("theme {label}:{line_col}{}", e.message()));
            None
        }
    }
}

/// 1-based line and column (in characters) of a byte offset, clamped to a character boundary.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[start..].chars().count() + 1,
    )
}

fn user_file(
    config_dir: Option<&Path>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<ThemeFile> {
    let path = config_dir?.join("themes").join(format!("{name}.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings.push(format!("theme {}: {e}", path.display()));
            return None;
        }
    };
    parse_file(&path.display().to_string(), &text, warnings)
}

/// Resolves the layered spec of `name`: its parent chain, then the built-in, then the user file.
fn resolve_spec(
    name: &str,
    config_dir: Option<&Path>,
    depth: usize,
    warnings: &mut Vec<String>,
) -> Option<ThemeFile> {
    if depth > 8 {
        warnings.push(format!("theme {name}: parent chain deeper than 8; stopped"));
        return None;
    }
    let builtin = builtin_text(name).and_then(|t| parse_file(name, t, warnings));
    let user = user_file(config_dir, name, warnings);
    let parent_name = user
        .as_ref()
        .and_then(|u| u.parent.clone())
        .or_else(|| builtin.as_ref().and_then(|b| b.parent.clone()));
    let mut spec = match &parent_name {
        Some(parent) if parent != name => resolve_spec(parent, config_dir, depth + 1, warnings)
            .or_else(|| {
                warnings.push(format!("theme {name}: unknown parent {parent}"));
                None
            }),
        Some(_) => {
            warnings.push(format!("theme {name}: a theme cannot be its own parent"));
            None
        }
        None => None,
    };
    if builtin.is_none() && user.is_none() {
        return None;
    }
    if let Some(builtin) = builtin {
        spec = Some(match spec {
            Some(base) => base.overlay(builtin),
            None => builtin,
        });
    }
    if let Some(user) = user {
        spec = Some(match spec {
            Some(base) => base.overlay(user),
            // A user theme with a new name and no parent starts from the default roles.
            None => {
                match builtin_text("default").and_then(|t| parse_file("default", t, warnings)) {
                    Some(default) => default.overlay(user),
                    None => user,
                }
            }
        });
    }
    spec
}

/// Loads theme `name` (built-in, patched by `<config_dir>/themes/<name>.toml`), converted to
/// `depth`. Problems never fail: they come back as warnings and the default theme fills in.
pub fn load(name: &str, config_dir: Option<&Path>, depth: ColorDepth) -> (Theme, Vec<String>) {
    let mut warnings = Vec::new();
    let (resolved_name, spec) = match resolve_spec(name, config_dir, 0, &mut warnings) {
        Some(spec) => (name.to_string(), spec),
        None => {
            warnings.push(format!(
                "unknown theme {name} (built-in: {}); using default",
                BUILTIN_THEMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let spec = resolve_spec("default", config_dir, 0, &mut warnings).unwrap_or_default();
            ("default".to_string(), spec)
        }
    };
    for role_name in spec.roles.keys() {
        if !Role::ALL.iter().any(|r| r.name() == role_name) {
            warnings.push(format!("theme {resolved_name}: unknown role {role_name}"));
        }
    }
    let styles = Role::ALL
        .iter()
        .map(|role| match spec.roles.get(role.name()) {
            Some(role_spec) => compile_role(
                &resolved_name,
                *role,
                role_spec,
                &spec.palette,
                depth,
                &mut warnings,
            ),
            None => Style::default(),
        })
        .collect();
    (
        Theme {
            name: resolved_name,
            depth,
            styles,
        },
        warnings,
    )
}

fn compile_role(
    theme: &str,
    role: Role,
    spec: &RoleSpec,
    palette: &BTreeMap<String, String>,
    depth: ColorDepth,
    warnings: &mut Vec<String>,
) -> Style {
    let mut style = Style::default();
    let mut colour = |value: &Option<String>, which: &str| -> Option<Color> {
        let value = value.as_ref()?;
        let resolved = palette.get(value).unwrap_or(value);
        match parse_color(resolved) {
            Some(c) => Some(convert_color(c, depth)),
            None => {
                warnings.push(format!(
                    "theme {theme}: role {} {which} = {value:?} is not a palette name, colour name, #rrggbb or 0-255",
                    role.name()
                ));
                None
            }
        }
    };
    if let Some(fg) = colour(&spec.fg, "fg") {
        style = style.fg(fg);
    }
    if let Some(bg) = colour(&spec.bg, "bg") {
        style = style.bg(bg);
    }
    let flags = [
        (spec.bold, Modifier::BOLD),
        (spec.italic, Modifier::ITALIC),
        (spec.underlined, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
        (spec.dim, Modifier::DIM),
        (spec.crossed_out, Modifier::CROSSED_OUT),
    ];
    for (flag, modifier) in flags {
        if flag == Some(true) {
            style = style.add_modifier(modifier);
        }
    }
    style
}

/// Parses a colour: a name (`red`, `lightblue`, `reset`), `#rrggbb`, or an index `0`–`255`.
pub fn parse_color(value: &str) -> Option<Color> {
    let v = value.trim().to_ascii_lowercase();
    if let Some(hex) = v.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some(Color::Rgb(channel(0)?, channel(2)?, channel(4)?));
    }
    if let Ok(index) = v.parse::<u8>() {
        return Some(Color::Indexed(index));
    }
    Some(match v.replace(['-', '_', ' '], "").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

const CUBE_LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn distance(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    d(a.0, b.0).pow(2) + d(a.1, b.1).pow(2) + d(a.2, b.2).pow(2)
}

fn nearest_level(v: u8) -> usize {
    CUBE_LEVELS
        .iter()
        .enumerate()
        .min_by_key(|(_, l)| (i32::from(**l) - i32::from(v)).unsigned_abs())
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The xterm-256 index closest to an RGB colour (6×6×6 cube or the grey ramp).
pub fn rgb_to_256(r: u8, g: u8, b: u8) -> u8 {
    let (ri, gi, bi) = (nearest_level(r), nearest_level(g), nearest_level(b));
    let cube = (CUBE_LEVELS[ri], CUBE_LEVELS[gi], CUBE_LEVELS[bi]);
    let cube_index = 16 + 36 * ri + 6 * gi + bi;
    let mean = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let grey_step = (mean.saturating_sub(8) / 10).min(23);
    let grey_level = (8 + 10 * grey_step) as u8;
    let grey_index = 232 + grey_step as usize;
    let index =
        if distance((r, g, b), (grey_level, grey_level, grey_level)) < distance((r, g, b), cube) {
            grey_index
        } else {
            cube_index
        };
    // Both indices are < 256 by construction (16 + 215 and 232 + 23).
    u8::try_from(index).unwrap_or(15)
}

fn indexed_to_rgb(index: u8) -> (u8, u8, u8) {
    match index {
        0..=15 => ANSI16[usize::from(index)].1,
        16..=231 => {
            let i = usize::from(index - 16);
            (
                CUBE_LEVELS[i / 36],
                CUBE_LEVELS[(i / 6) % 6],
                CUBE_LEVELS[i % 6],
            )
        }
        _ => {
            let level = 8 + 10 * (index - 232);
            (level, level, level)
        }
    }
}

/// The basic colour closest to an RGB colour: greys by lightness, others by hue sector, with the
/// light variant for bright colours (Euclidean nearest would turn muted reds into grey).
pub fn rgb_to_16(r: u8, g: u8, b: u8) -> Color {
    let (ri, gi, bi) = (i32::from(r), i32::from(g), i32::from(b));
    let max = ri.max(gi).max(bi);
    let min = ri.min(gi).min(bi);
    let lightness = (max + min) / 2;
    if max - min < 48 {
        return match lightness {
            0..=50 => Color::Black,
            51..=150 => Color::DarkGray,
            151..=220 => Color::Gray,
            _ => Color::White,
        };
    }
    let delta = f64::from(max - min);
    let hue = if max == ri {
        60.0 * (f64::from(gi - bi) / delta)
    } else if max == gi {
        60.0 * (f64::from(bi - ri) / delta) + 120.0
    } else {
        60.0 * (f64::from(ri - gi) / delta) + 240.0
    };
    let hue = hue.rem_euclid(360.0);
    let light = max >= 230 || lightness > 150;
    let pick = |dark: Color, bright: Color| if light { bright } else { dark };
    match hue {
        h if !(30.0..330.0).contains(&h) => pick(Color::Red, Color::LightRed),
        h if h < 90.0 => pick(Color::Yellow, Color::LightYellow),
        h if h < 150.0 => pick(Color::Green, Color::LightGreen),
        h if h < 210.0 => pick(Color::Cyan, Color::LightCyan),
        h if h < 270.0 => pick(Color::Blue, Color::LightBlue),
        _ => pick(Color::Magenta, Color::LightMagenta),
    }
}

/// Converts a colour down to what a terminal of `depth` shows.
pub fn convert_color(color: Color, depth: ColorDepth) -> Color {
    match (depth, color) {
        (ColorDepth::TrueColor, c) => c,
        (ColorDepth::Ansi256, Color::Rgb(r, g, b)) => Color::Indexed(rgb_to_256(r, g, b)),
        (ColorDepth::Ansi16, Color::Rgb(r, g, b)) => rgb_to_16(r, g, b),
        (ColorDepth::Ansi16, Color::Indexed(i)) => {
            let (r, g, b) = indexed_to_rgb(i);
            rgb_to_16(r, g, b)
        }
        (_, c) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_without_warnings_and_defines_every_role() {
        for (name, text) in BUILTIN_THEMES {
            let (theme, warnings) = load(name, None, ColorDepth::TrueColor);
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert_eq!(theme.name, *name);
            let file: ThemeFile = toml::from_str(text).expect("builtin parses");
            if file.parent.is_none() {
                for role in Role::ALL {
                    assert!(
                        file.roles.contains_key(role.name()),
                        "{name} lacks {}",
                        role.name()
                    );
                }
            }
        }
    }

    #[test]
    fn default_failed_role_is_bold_red() {
        let theme = Theme::builtin("default");
        let failed = theme.style(Role::Failed);
        assert_eq!(failed.fg, Some(Color::Rgb(0xe0, 0x6c, 0x75)));
        assert!(failed.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn parent_inherits_and_overrides() {
        let light = Theme::builtin("light");
        // light overrides the palette entry `red` and inherits the role `failed` from default.
        assert_eq!(
            light.style(Role::Failed).fg,
            Some(Color::Rgb(0xcf, 0x22, 0x2e))
        );
        assert!(
            light
                .style(Role::Failed)
                .add_modifier
                .contains(Modifier::BOLD)
        );
    }

    #[test]
    fn mono_has_no_colours() {
        let mono = Theme::builtin("mono");
        for role in Role::ALL {
            let s = mono.style(*role);
            assert_eq!(s.fg, None, "{}", role.name());
            assert_eq!(s.bg, None, "{}", role.name());
        }
        assert!(
            mono.style(Role::Selected)
                .add_modifier
                .contains(Modifier::REVERSED)
        );
    }

    #[test]
    fn user_partial_file_patches_builtin() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/default.toml"),
            "[roles]\nfailed = { fg = \"#010203\" }\n",
        )
        .expect("write");
        let (theme, warnings) = load("default", Some(dir.path()), ColorDepth::TrueColor);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(theme.style(Role::Failed).fg, Some(Color::Rgb(1, 2, 3)));
        assert!(
            !theme
                .style(Role::Failed)
                .add_modifier
                .contains(Modifier::BOLD)
        );
        // Untouched roles keep the built-in style.
        assert_eq!(
            theme.style(Role::Completed),
            Theme::builtin("default").style(Role::Completed)
        );
    }

    #[test]
    fn user_palette_patch_recolours_roles() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/default.toml"),
            "[palette]\ngreen = \"#00ff00\"\n",
        )
        .expect("write");
        let (theme, _) = load("default", Some(dir.path()), ColorDepth::TrueColor);
        assert_eq!(theme.style(Role::Completed).fg, Some(Color::Rgb(0, 255, 0)));
    }

    #[test]
    fn user_new_theme_with_parent() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/mine.toml"),
            "parent = \"mono\"\n[roles]\nfailed = { fg = \"red\" }\n",
        )
        .expect("write");
        let (theme, warnings) = load("mine", Some(dir.path()), ColorDepth::TrueColor);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(theme.name, "mine");
        assert_eq!(theme.style(Role::Failed).fg, Some(Color::Red));
        assert_eq!(
            theme.style(Role::Selected),
            Theme::builtin("mono").style(Role::Selected)
        );
    }

    #[test]
    fn broken_user_file_warns_and_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/default.toml"),
            "[roles]\nfailed = { fg = \n",
        )
        .expect("write");
        let (theme, warnings) = load("default", Some(dir.path()), ColorDepth::TrueColor);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("default.toml:"), "{}", warnings[0]);
        assert_eq!(theme, Theme::builtin("default"));
    }

    #[test]
    fn unknown_role_colour_and_theme_warn() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("themes")).expect("mkdir");
        std::fs::write(
            dir.path().join("themes/default.toml"),
            "[roles]\nfailled = { fg = \"red\" }\nfailed = { fg = \"notacolour\" }\n",
        )
        .expect("write");
        let (_, warnings) = load("default", Some(dir.path()), ColorDepth::TrueColor);
        assert!(
            warnings.iter().any(|w| w.contains("unknown role failled")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("notacolour")),
            "{warnings:?}"
        );
        let (theme, warnings) = load("nosuch", None, ColorDepth::TrueColor);
        assert_eq!(theme.name, "default");
        assert!(warnings[0].contains("unknown theme nosuch"));
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_col("ab\nçd", 5), (2, 2));
        assert_eq!(line_col("ç", 1), (1, 1));
        assert_eq!(line_col("x", 99), (1, 2));
    }

    #[test]
    fn no_color_selects_mono() {
        assert_eq!(effective_theme_name("light", Some("1")), "mono");
        assert_eq!(effective_theme_name("light", Some("")), "light");
        assert_eq!(effective_theme_name("light", None), "light");
    }

    #[test]
    fn depth_detection() {
        assert_eq!(
            ColorDepth::detect(Some("truecolor"), Some("xterm")),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(Some("24bit"), None),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(None, Some("tmux-256color")),
            ColorDepth::Ansi256
        );
        assert_eq!(ColorDepth::detect(None, Some("xterm")), ColorDepth::Ansi16);
        assert_eq!(ColorDepth::detect(None, None), ColorDepth::Ansi16);
    }

    #[test]
    fn colour_conversion() {
        assert_eq!(rgb_to_256(255, 0, 0), 196);
        assert_eq!(rgb_to_256(0, 0, 0), 16);
        assert_eq!(rgb_to_256(128, 128, 128), 244);
        assert_eq!(rgb_to_16(250, 10, 10), Color::LightRed);
        assert_eq!(rgb_to_16(0, 200, 0), Color::Green);
        assert_eq!(rgb_to_16(0x61, 0xaf, 0xef), Color::LightCyan);
        assert_eq!(rgb_to_16(0x6b, 0x72, 0x80), Color::DarkGray);
        assert_eq!(rgb_to_16(0x0a, 0x7f, 0x8c), Color::Cyan);
        assert_eq!(
            convert_color(Color::Indexed(196), ColorDepth::Ansi16),
            Color::LightRed
        );
        assert_eq!(convert_color(Color::Red, ColorDepth::Ansi16), Color::Red);
        let theme = load("default", None, ColorDepth::Ansi256).0;
        assert!(matches!(
            theme.style(Role::Failed).fg,
            Some(Color::Indexed(_))
        ));
        let theme = load("default", None, ColorDepth::Ansi16).0;
        assert_eq!(theme.style(Role::Failed).fg, Some(Color::LightRed));
    }

    #[test]
    fn parse_colours() {
        assert_eq!(parse_color("#0a0B0c"), Some(Color::Rgb(10, 11, 12)));
        assert_eq!(parse_color("light-blue"), Some(Color::LightBlue));
        assert_eq!(parse_color("42"), Some(Color::Indexed(42)));
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(parse_color("ultraviolet"), None);
    }
}
