//! Makes stored text inert for a terminal: control characters become visible marks.
//!
//! Names, reasons, e-mails, payload values, audit fields and log messages come from outside
//! (mail, CSV, other operators). Printed as they are, `ESC [ 2 J` clears an operator's screen,
//! `ESC ] 0 ; … BEL` retitles their terminal, `CR` overwrites what was printed before it and a
//! right-to-left override (U+202E) makes `exe.txt` read as `txt.exe`. Every place the console or
//! the CLI shows stored text passes it through [`inert`] first.
//!
//! # The convention
//!
//! - C0 controls U+0000–U+001F become their Unicode *control picture*, one column wide:
//!   ESC → `␛`, BEL → `␇`, CR → `␍`, LF → `␊`, TAB → `␉`, NUL → `␀` (U+2400 + code).
//!   Tab is included: it would break table columns.
//! - DEL (U+007F) becomes `␡`.
//! - Controls that have no picture become `\u{XX}` in Rust's escape notation, lower-case hex:
//!   the C1 controls U+0080–U+009F (U+009B is a one-character CSI on some terminals), the bidi
//!   overrides and isolates U+202A–U+202E and U+2066–U+2069, the bidi marks U+200E, U+200F and
//!   U+061C, and the line and paragraph separators U+2028 and U+2029.
//! - Everything else is kept, and text that needs no change is borrowed, not copied.

use std::borrow::Cow;
use std::fmt::Write as _;

/// What [`inert`] does with one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Shown as this single visible character (a control picture).
    Picture(char),
    /// Shown as `\u{..}`.
    Escape,
}

fn mark(c: char) -> Option<Mark> {
    match c {
        '\u{0}'..='\u{1f}' => {
            // Control pictures sit at U+2400 + the control's code, in the same order.
            char::from_u32(0x2400 + u32::from(c)).map(Mark::Picture)
        }
        '\u{7f}' => Some(Mark::Picture('\u{2421}')),
        '\u{80}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{061c}'
        | '\u{2028}'
        | '\u{2029}' => Some(Mark::Escape),
        _ => None,
    }
}

/// True when `c` is a character [`inert`] replaces.
pub fn is_unsafe(c: char) -> bool {
    mark(c).is_some()
}

/// The visible form of one character: itself when it is safe, else its mark (see the module
/// documentation for the convention).
pub fn visible(c: char) -> Cow<'static, str> {
    match mark(c) {
        None => Cow::Owned(c.to_string()),
        Some(Mark::Picture(p)) => Cow::Owned(p.to_string()),
        Some(Mark::Escape) => Cow::Owned(format!("\\u{{{:x}}}", u32::from(c))),
    }
}

/// `text` with every control character, DEL, C1 control, bidi control and line separator made
/// visible. Borrows `text` when it contains none.
pub fn inert(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(is_unsafe) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        push_inert(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`inert`] but keeps line feeds and tabs, for multi-line text shown in an editor or a
/// text pane that lays out lines and expands tabs itself. A carriage return is still marked.
pub fn inert_multiline(text: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    let Some(first) = text.find(|c: char| is_unsafe(c) && !keep(c)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if keep(c) {
            out.push(c);
        } else {
            push_inert(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// An owned [`inert`] copy, for places that build `String`s (table cells, spans).
pub fn inert_string(text: &str) -> String {
    inert(text).into_owned()
}

fn push_inert(out: &mut String, c: char) {
    match mark(c) {
        None => out.push(c),
        Some(Mark::Picture(p)) => out.push(p),
        Some(Mark::Escape) => {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Makes serialised JSON safe to print: the characters JSON allows raw inside strings but a
/// terminal may act on (DEL, C1 controls, bidi controls, line separators) become `\uXXXX`
/// escapes, which decode to the same value. C0 controls are already escaped by every JSON
/// encoder. Only for text that is valid JSON, where such characters can occur only inside
/// strings.
pub fn inert_json(json: &str) -> Cow<'_, str> {
    let Some(first) = json.find(is_unsafe) else {
        return Cow::Borrowed(json);
    };
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str(&json[..first]);
    for c in json[first..].chars() {
        if is_unsafe(c) {
            // All the characters marked are in the Basic Multilingual Plane: one \u escape each.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        for text in [
            "",
            "Alice Martin",
            "Zoë Ŝmith 李小龙 🦀",
            "a\\u{1b}b",
            "␛ literal",
        ] {
            assert!(matches!(inert(text), Cow::Borrowed(_)), "{text}");
            assert!(matches!(inert_multiline(text), Cow::Borrowed(_)));
            assert!(matches!(inert_json(text), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn escape_sequences_become_visible() {
        assert_eq!(inert("a\x1b[2Jb"), "a␛[2Jb");
        assert_eq!(inert("\x1b]0;pwned\x07"), "␛]0;pwned␇");
        assert_eq!(inert("ok\rFAKE"), "ok␍FAKE");
        assert_eq!(inert("x\ny"), "x␊y");
        assert_eq!(inert("col\tcol"), "col␉col");
        assert_eq!(inert("nul\0"), "nul␀");
        assert_eq!(inert("del\x7f"), "del␡");
        assert_eq!(inert("\u{1f}"), "␟");
    }

    #[test]
    fn every_c0_control_and_del_has_a_one_column_picture() {
        for code in (0u32..0x20).chain([0x7f]) {
            let c = char::from_u32(code).expect("ASCII");
            let shown = inert(&c.to_string()).into_owned();
            assert_eq!(shown.chars().count(), 1, "{code:#x}");
            let p = shown.chars().next().expect("one char");
            assert!(('\u{2400}'..='\u{2421}').contains(&p), "{code:#x} → {p}");
            assert!(!is_unsafe(p));
        }
    }

    #[test]
    fn c1_and_bidi_controls_are_escaped() {
        assert_eq!(inert("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(inert("\u{80}\u{85}\u{9f}"), "\\u{80}\\u{85}\\u{9f}");
        assert_eq!(inert("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        for code in (0x202a..=0x202e)
            .chain(0x2066..=0x2069)
            .chain([0x200e, 0x200f, 0x061c, 0x2028, 0x2029])
        {
            let c = char::from_u32(code).expect("valid");
            assert_eq!(inert(&c.to_string()), format!("\\u{{{code:x}}}"));
            assert_eq!(visible(c), format!("\\u{{{code:x}}}"));
        }
        // Neighbours of the ranges are ordinary text.
        for c in ['\u{a0}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}'] {
            assert!(!is_unsafe(c), "{:#x}", u32::from(c));
        }
    }

    #[test]
    fn output_never_contains_an_unsafe_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!inert(&all).contains(is_unsafe));
        assert!(!inert_multiline(&all).contains(|c: char| is_unsafe(c) && c != '\n' && c != '\t'));
        assert!(!inert_json(&all).contains(is_unsafe));
    }

    #[test]
    fn multiline_keeps_newlines_and_tabs_only() {
        assert_eq!(inert_multiline("a\tb\nc"), "a\tb\nc");
        assert_eq!(inert_multiline("a\r\nb\x1b[2J"), "a␍\nb␛[2J");
    }

    #[test]
    fn visible_keeps_safe_characters() {
        assert_eq!(visible('a'), "a");
        assert_eq!(visible('\x1b'), "␛");
        assert_eq!(inert_string("\x07"), "␇");
    }

    #[test]
    fn json_stays_json_with_the_same_value() {
        let value = serde_json::json!({"name": "a\u{202e}b\u{9b}c\x7f\x1b"});
        let text = serde_json::to_string(&value).expect("encodes");
        let safe = inert_json(&text);
        assert!(!safe.contains(is_unsafe), "{safe}");
        assert!(safe.contains("\\u202e") && safe.contains("\\u009b"));
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }
}
