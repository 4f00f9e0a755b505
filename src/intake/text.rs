//! Text hygiene for mail: control characters out, lengths bounded on character boundaries, and
//! the new text of a message separated from quoted replies, forwarded messages and signatures.

/// Removes NUL bytes and bidi controls, turns other control characters (but newline and tab)
/// into spaces, and normalises line ends to `\n`. Returns the text and whether it changed
/// anything besides line ends.
pub fn clean(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            '\0' => changed = true,
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' => changed = true,
            c if c.is_control() => {
                out.push(' ');
                changed = true;
            }
            c => out.push(c),
        }
    }
    (out, changed)
}

/// [`clean`] for a one-line value (a header): line breaks and tabs become spaces, runs of
/// spaces collapse, ends are trimmed.
pub fn clean_line(text: &str) -> (String, bool) {
    let (cleaned, changed) = clean(text);
    let mut out = String::with_capacity(cleaned.len());
    for word in cleaned.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    (out, changed)
}

/// Cuts `text` to at most `max_bytes` bytes on a character boundary. Returns whether it cut.
pub fn cut(text: &mut String, max_bytes: usize) -> bool {
    if text.len() <= max_bytes {
        return false;
    }
    let mut end = max_bytes;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Cuts `text` to at most `max_chars` characters, adding `…` when it cut.
pub fn bounded(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((index, _)) => {
            let mut out = text[..index].to_string();
            out.push('…');
            out
        }
    }
}

/// A message body split into what the sender wrote now and what they quoted or forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// The new text, without quotes, forwards or signature.
    pub new_text: String,
    /// Quoted lines, quoted replies and forwarded messages, in order.
    pub quoted_text: String,
    /// The signature (after `-- `), if any.
    pub signature: String,
}

/// True when a line opens an earlier message that follows to the end: a reply header
/// ("On … wrote:"), an Outlook "Original Message" rule or a forwarded-message marker.
fn opens_earlier_message(line: &str, next: Option<&str>) -> bool {
    let trimmed = line.trim();
    let lower = trimmed.to_lowercase();
    if lower.starts_with("-----original message")
        || lower.starts_with("-------- original message")
        || (lower.contains("forwarded message")
            && (lower.starts_with("---") || lower.starts_with("- -")))
        || lower.starts_with("begin forwarded message")
        || lower.starts_with("-------- message transféré")
        || lower.starts_with("---------- weitergeleitete nachricht")
    {
        return true;
    }
    let reply_header = |text: &str| {
        (text.starts_with("on ") && text.ends_with("wrote:"))
            || (text.starts_with("le ")
                && (text.ends_with("a écrit :") || text.ends_with("a écrit:")))
            || (text.starts_with("am ") && text.ends_with("schrieb:"))
    };
    if reply_header(&lower) {
        return true;
    }
    // "On Mon, 1 Dec 2026, Ada Lovelace <ada@example.com>\nwrote:" wrapped over two lines.
    if lower.starts_with("on ")
        && lower.len() < 300
        && let Some(next) = next
        && next.trim().to_lowercase().ends_with("wrote:")
        && next.trim().len() < 200
    {
        return true;
    }
    // Outlook: "From: X" directly followed by "Sent: …" or "Date: …".
    if (lower.starts_with("from:") || lower.starts_with("*from:*"))
        && let Some(next) = next
    {
        let next = next.trim().to_lowercase();
        return next.starts_with("sent:")
            || next.starts_with("*sent:*")
            || next.starts_with("date:");
    }
    false
}

/// True for a signature separator (`-- `, also `--` as mail clients trim it) or a mobile
/// client's sign-off.
fn opens_signature(line: &str) -> bool {
    let trimmed = line.trim_end();
    if trimmed == "--" || trimmed == "-- " || line == "-- " {
        return true;
    }
    let lower = trimmed.trim().to_lowercase();
    (lower.starts_with("sent from my ") || lower.starts_with("get outlook for "))
        && lower.len() < 60
}

/// Splits a plain-text body into new text, quoted text and signature. Lines starting with `>`
/// are quoted wherever they are; a reply header or forward marker sends everything after it to
/// the quoted text; a signature separator before that ends the new text.
pub fn split(body: &str) -> Split {
    let lines: Vec<&str> = body.lines().collect();
    let mut out = Split::default();
    let mut index = 0;
    let mut in_signature = false;
    while index < lines.len() {
        let line = lines[index];
        let next = lines.get(index + 1).copied();
        if opens_earlier_message(line, next) {
            for rest in &lines[index..] {
                out.quoted_text.push_str(rest);
                out.quoted_text.push('\n');
            }
            break;
        }
        if line.trim_start().starts_with('>') {
            out.quoted_text.push_str(line);
            out.quoted_text.push('\n');
        } else if in_signature || opens_signature(line) {
            in_signature = true;
            out.signature.push_str(line);
            out.signature.push('\n');
        } else {
            out.new_text.push_str(line);
            out.new_text.push('\n');
        }
        index += 1;
    }
    out.new_text = out.new_text.trim().to_string();
    out.quoted_text = out.quoted_text.trim_end().to_string();
    out.signature = out.signature.trim_end().to_string();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_nul_and_controls_and_normalises_line_ends() {
        let (text, changed) = clean("a\0b\r\nc\rd\x1b[2Je\u{202e}f\tg");
        assert_eq!(text, "ab\nc\nd [2Jef\tg");
        assert!(changed);
        let (text, changed) = clean("plain\r\ntext");
        assert_eq!(text, "plain\ntext");
        assert!(!changed);
    }

    #[test]
    fn clean_line_collapses_whitespace() {
        assert_eq!(clean_line("  a \r\n\t b  ").0, "a b");
    }

    #[test]
    fn cut_respects_character_boundaries() {
        let mut text = "ééé".to_string();
        assert!(cut(&mut text, 3));
        assert_eq!(text, "é");
        let mut short = "ab".to_string();
        assert!(!cut(&mut short, 3));
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("abc", 3), "abc");
    }

    #[test]
    fn reply_header_sends_the_rest_to_quoted() {
        let parts = split(
            "Please onboard Ada.\n\nOn Mon, 1 Dec 2026 at 10:00, Bob <bob@example.com> wrote:\n> earlier\nmore old text\n",
        );
        assert_eq!(parts.new_text, "Please onboard Ada.");
        assert!(parts.quoted_text.starts_with("On Mon"));
        assert!(parts.quoted_text.contains("more old text"));
    }

    #[test]
    fn wrapped_reply_header_is_recognised() {
        let parts =
            split("New text\nOn Mon, 1 Dec 2026, Bob Example <bob@example.com>\nwrote:\n> x\n");
        assert_eq!(parts.new_text, "New text");
        assert!(parts.quoted_text.contains("wrote:"));
    }

    #[test]
    fn inline_quotes_are_quoted_and_bottom_posts_stay_new() {
        let parts = split("> question?\nanswer\n> second?\nsecond answer\n");
        assert_eq!(parts.new_text, "answer\nsecond answer");
        assert_eq!(parts.quoted_text, "> question?\n> second?");
    }

    #[test]
    fn forwards_and_outlook_headers_are_quoted() {
        for marker in [
            "---------- Forwarded message ---------",
            "Begin forwarded message:",
            "-----Original Message-----",
        ] {
            let parts = split(&format!(
                "FYI\n{marker}\nFrom: hr@example.com\nonboard Ada\n"
            ));
            assert_eq!(parts.new_text, "FYI", "{marker}");
            assert!(parts.quoted_text.contains("onboard Ada"), "{marker}");
        }
        let parts = split("See below\nFrom: HR <hr@example.com>\nSent: Monday\nSubject: x\nold\n");
        assert_eq!(parts.new_text, "See below");
        assert!(parts.quoted_text.starts_with("From: HR"));
    }

    #[test]
    fn signature_is_separated() {
        let parts = split("Please onboard Ada.\n-- \nBob\nHead of Platform\n");
        assert_eq!(parts.new_text, "Please onboard Ada.");
        assert_eq!(parts.signature, "-- \nBob\nHead of Platform");
        let parts = split("Hi\n\nSent from my iPhone\n");
        assert_eq!(parts.new_text, "Hi");
        assert_eq!(parts.signature, "Sent from my iPhone");
    }

    #[test]
    fn plain_text_is_all_new() {
        let parts = split("one\ntwo\n");
        assert_eq!(parts.new_text, "one\ntwo");
        assert!(parts.quoted_text.is_empty() && parts.signature.is_empty());
    }
}
