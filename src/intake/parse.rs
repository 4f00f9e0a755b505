//! Reads one raw message (RFC 5322 / MIME bytes) into a [`MailSummary`] with mail-parser:
//! text and HTML bodies (HTML turned into text), new text apart from quotes, forwards and the
//! signature, attachments recorded (never parsed), selected headers bounded, any charset, and
//! every problem met on the way written down. Never panics, whatever the bytes.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;

use crate::domain::config::DEFAULT_MAX_MESSAGE_BYTES;
use crate::domain::intake::{Attachment, MAX_KEPT_TEXT, MailSummary};
use crate::intake::text;

/// Headers kept with the summary as evidence (compared case-insensitively).
pub const KEPT_HEADERS: &[&str] = &[
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "X-Auto-Response-Suppress",
    "Precedence",
    "List-Id",
    "List-Unsubscribe",
    "Authentication-Results",
    "Return-Path",
    "Reply-To",
    "In-Reply-To",
    "X-Mailer",
];

/// Longest header value kept (characters); longer values are cut and marked.
pub const MAX_HEADER_CHARS: usize = 1000;
/// Most kept headers (the same header may repeat).
pub const MAX_KEPT_HEADERS: usize = 32;
/// Most recipients and attachments recorded.
pub const MAX_LISTED: usize = 100;
/// Longest subject kept (characters).
pub const MAX_SUBJECT_CHARS: usize = 1000;

/// Reads `raw` with the default size limit ([`DEFAULT_MAX_MESSAGE_BYTES`]).
pub fn parse(raw: &[u8]) -> MailSummary {
    parse_with_limit(raw, DEFAULT_MAX_MESSAGE_BYTES)
}

/// Reads `raw`; a message over `max_message_bytes` is summarised from its headers only, and
/// `problems` says so.
pub fn parse_with_limit(raw: &[u8], max_message_bytes: u64) -> MailSummary {
    let size = raw.len() as u64;
    let outcome = std::panic::catch_unwind(|| read(raw, max_message_bytes));
    let mut summary = match outcome {
        Ok(summary) => summary,
        Err(_) => MailSummary {
            problems: vec![
                "the MIME parser failed on this message: nothing could be read from it".into(),
            ],
            ..Default::default()
        },
    };
    summary.size = size;
    summary
}

fn read(raw: &[u8], max_message_bytes: u64) -> MailSummary {
    let mut summary = MailSummary::default();
    if raw.is_empty() {
        summary
            .problems
            .push("the message is empty (0 bytes)".into());
        return summary;
    }
    let parser = MessageParser::default();
    let too_big = raw.len() as u64 > max_message_bytes;
    let message = if too_big {
        summary.problems.push(format!(
            "the message is {} bytes, over the limit of {max_message_bytes} bytes: read from its headers only",
            raw.len()
        ));
        parser.parse_headers(raw)
    } else {
        parser.parse(raw)
    };
    let Some(message) = message else {
        summary
            .problems
            .push("not a MIME message: no header or body could be read".into());
        return summary;
    };
    read_headers(&message, raw, &mut summary);
    if !too_big {
        read_body(&message, &mut summary);
        read_attachments(&message, &mut summary);
    }
    summary
}

/// A header value: cleaned, on one line, bounded; a problem is noted when it had to change.
fn header_text(name: &str, value: &str, max_chars: usize, problems: &mut Vec<String>) -> String {
    let (line, changed) = text::clean_line(value);
    if changed {
        problems.push(format!(
            "header {name} held control characters or NUL bytes (removed)"
        ));
    }
    if line.contains('\u{fffd}') {
        problems.push(format!(
            "header {name} held bytes that are not valid in its charset (shown as \u{fffd})"
        ));
    }
    let count = line.chars().count();
    if count > max_chars {
        problems.push(format!(
            "header {name} was {count} characters long, cut at {max_chars}"
        ));
        return text::bounded(&line, max_chars);
    }
    line
}

fn address(value: &str) -> Option<String> {
    let (line, _) = text::clean_line(value);
    let line = line.trim_matches(|c| c == '<' || c == '>').to_lowercase();
    (!line.is_empty() && line.len() <= 254 && !line.contains(' ')).then_some(line)
}

fn read_headers(message: &Message<'_>, raw: &[u8], summary: &mut MailSummary) {
    let problems = &mut summary.problems;
    if let Some(id) = message.message_id() {
        let id = header_text("Message-ID", id, 500, problems);
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        if !id.is_empty() {
            summary.message_id = Some(id.to_string());
        }
    }
    match message.from().and_then(|from| from.first()) {
        Some(first) => {
            summary.from = first.address().and_then(address);
            if summary.from.is_none() {
                problems.push("the From header has no usable address".into());
            }
            summary.from_name = first
                .name()
                .map(|name| header_text("From", name, 200, problems))
                .filter(|name| !name.is_empty());
        }
        None => problems.push("no From header: the sender is unknown".into()),
    }
    summary.to = message
        .to()
        .into_iter()
        .flat_map(|to| to.iter())
        .filter_map(|addr| addr.address().and_then(address))
        .take(MAX_LISTED)
        .collect();
    summary.subject = message
        .subject()
        .map(|subject| header_text("Subject", subject, MAX_SUBJECT_CHARS, problems))
        .unwrap_or_default();
    match message.date() {
        Some(date) if date.is_valid() => summary.date = Some(date.to_rfc3339()),
        Some(_) => problems.push("the Date header is not a valid date".into()),
        None => {
            if message.header_raw("Date").is_some() {
                problems.push("the Date header did not parse as a date".into());
            }
        }
    }
    for header in message.headers() {
        if summary.headers.len() >= MAX_KEPT_HEADERS {
            break;
        }
        let name = header.name();
        let Some(kept) = KEPT_HEADERS
            .iter()
            .find(|kept| kept.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let start = header.offset_start() as usize;
        let end = (header.offset_end() as usize).min(raw.len());
        let value = raw
            .get(start..end)
            .map_or(Cow::Borrowed(""), |bytes| String::from_utf8_lossy(bytes));
        let value = header_text(kept, &value, MAX_HEADER_CHARS, problems);
        summary.headers.push(((*kept).to_string(), value));
    }
}

/// HTML to text: block elements (list items, divisions, rows, headings) end a line, as `<br>`
/// and `</p>` already do in mail-parser's converter.
pub fn html_text(html: &str) -> String {
    static BLOCKS: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"(?i)<\s*/?\s*(li|div|tr|h[1-6]|ul|ol|table|blockquote|dd|dt|section|article|header|footer)\b[^>]*>").ok()
    });
    match BLOCKS.as_ref() {
        Some(blocks) => html_to_text(&blocks.replace_all(html, "<br>")),
        None => html_to_text(html),
    }
}

fn read_body(message: &Message<'_>, summary: &mut MailSummary) {
    let mut body = String::new();
    let ids = if message.text_body.is_empty() {
        &message.html_body
    } else {
        &message.text_body
    };
    let parts = ids.len();
    for id in ids.iter().take(MAX_LISTED) {
        let part = match message.parts.get(*id as usize).map(|part| &part.body) {
            Some(PartType::Text(text)) => Some(Cow::Borrowed(text.as_ref())),
            Some(PartType::Html(html)) => Some(Cow::Owned(html_text(html))),
            _ => None,
        };
        if let Some(part) = part {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&part);
        }
        if body.len() > 4 * MAX_KEPT_TEXT {
            break;
        }
    }
    if parts == 0 {
        summary
            .problems
            .push("the message has no text or HTML body".into());
    } else if body.trim().is_empty() {
        summary.problems.push("the message body is empty".into());
    }
    if let Some(charset) = message.parts.iter().find_map(|part| {
        let charset = part.content_type()?.attribute("charset")?;
        let known = charset.eq_ignore_ascii_case("utf-8")
            || charset.eq_ignore_ascii_case("utf8")
            || charset.eq_ignore_ascii_case("us-ascii")
            || charset_decoder(charset.as_bytes()).is_some();
        (!known).then(|| text::bounded(&text::clean_line(charset).0, 60))
    }) {
        summary.problems.push(format!(
            "a part declares the unknown charset \"{charset}\": read as UTF-8, unreadable bytes replaced"
        ));
    }
    if message.parts.iter().any(|part| part.is_encoding_problem) {
        summary.problems.push(
            "a part could not be decoded as declared (charset or transfer encoding): its text may be garbled"
                .into(),
        );
    }
    let (body, changed) = text::clean(&body);
    if changed {
        summary
            .problems
            .push("the body held NUL bytes or control characters (removed)".into());
    }
    let split = text::split(&body);
    summary.new_text = split.new_text;
    summary.quoted_text = split.quoted_text;
    if !split.signature.is_empty() {
        if !summary.quoted_text.is_empty() {
            summary.quoted_text.push_str("\n\n");
        }
        summary.quoted_text.push_str(&split.signature);
    }
    for (field, value) in [
        ("new text", &mut summary.new_text),
        ("quoted text", &mut summary.quoted_text),
    ] {
        let length = value.len();
        if text::cut(value, MAX_KEPT_TEXT) {
            summary.problems.push(format!(
                "the {field} was {length} bytes, cut at {MAX_KEPT_TEXT}"
            ));
        }
    }
}

fn read_attachments(message: &Message<'_>, summary: &mut MailSummary) {
    let count = message.attachment_count();
    for part in message.attachments().take(MAX_LISTED) {
        let mime = part.content_type().map_or_else(
            || "application/octet-stream".to_string(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            },
        );
        let mime = text::bounded(&text::clean_line(&mime).0.to_lowercase(), 100);
        let name = part
            .attachment_name()
            .map(|name| text::bounded(&text::clean_line(name).0, 255))
            .filter(|name| !name.is_empty());
        let size = match &part.body {
            PartType::Message(inner) => inner.raw_message().len(),
            _ => part.len(),
        };
        summary.attachments.push(Attachment {
            name,
            mime,
            size: size as u64,
        });
    }
    if count > MAX_LISTED {
        summary.problems.push(format!(
            "the message has {count} attachments; the first {MAX_LISTED} are listed"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("{headers}\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn reads_headers_and_splits_the_body() {
        let raw = mail(
            "From: Bob Boss <Bob@Example.com>\r\nTo: hr@example.com\r\nSubject: New starter\r\nMessage-ID: <abc@example.com>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\nAuto-Submitted: no",
            "Please onboard Ada Lovelace.\r\n\r\nOn Fri, Bob wrote:\r\n> old\r\n-- \r\nBob\r\n",
        );
        let summary = parse(&raw);
        assert_eq!(summary.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(summary.from.as_deref(), Some("bob@example.com"));
        assert_eq!(summary.from_name.as_deref(), Some("Bob Boss"));
        assert_eq!(summary.to, ["hr@example.com"]);
        assert_eq!(summary.subject, "New starter");
        assert_eq!(summary.date.as_deref(), Some("2026-11-30T09:00:00Z"));
        assert_eq!(summary.new_text, "Please onboard Ada Lovelace.");
        assert!(summary.quoted_text.contains("> old"));
        assert_eq!(
            summary.headers,
            [("Auto-Submitted".to_string(), "no".to_string())]
        );
        assert!(summary.problems.is_empty(), "{:?}", summary.problems);
        assert_eq!(summary.size, raw.len() as u64);
    }

    #[test]
    fn html_only_bodies_become_text() {
        let raw = mail(
            "From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8",
            "<html><body><p>Please <b>onboard</b> Ada</p><script>x</script></body></html>",
        );
        let summary = parse(&raw);
        assert!(
            summary.new_text.contains("Please onboard Ada"),
            "{:?}",
            summary.new_text
        );
        assert!(!summary.new_text.contains("<b>"));
    }

    #[test]
    fn html_blocks_end_lines() {
        let text =
            html_text("<ul><li>Email: a@example.com</li><li>Team: X</li></ul><div>Start</div>");
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines, ["Email: a@example.com", "Team: X", "Start"]);
    }

    #[test]
    fn attachments_are_recorded_not_read() {
        let raw = mail(
            "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX",
            "--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/pdf; name=\"contract.pdf\"\r\nContent-Disposition: attachment; filename=\"contract.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n",
        );
        let summary = parse(&raw);
        assert_eq!(summary.new_text, "see attached");
        assert_eq!(summary.attachments.len(), 1);
        assert_eq!(summary.attachments[0].name.as_deref(), Some("contract.pdf"));
        assert_eq!(summary.attachments[0].mime, "application/pdf");
        assert_eq!(summary.attachments[0].size, 9);
    }

    #[test]
    fn charsets_are_decoded() {
        let mut raw = b"From: a@example.com\r\nSubject: =?iso-8859-1?q?R=E9sum=E9?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nJos\xe9 starts\r\n".to_vec();
        let summary = parse(&raw);
        assert_eq!(summary.subject, "Résumé");
        assert_eq!(summary.new_text, "José starts");
        raw = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\n\x83n\x83\x8D\x81[\r\n".to_vec();
        assert_eq!(parse(&raw).new_text, "ハロー");
    }

    #[test]
    fn nul_bytes_and_controls_are_removed_with_a_problem() {
        let raw = mail("From: a@example.com\r\nSubject: a\x00b", "x\x00y\x1b[2J");
        let summary = parse(&raw);
        assert_eq!(summary.subject, "ab");
        assert_eq!(summary.new_text, "xy [2J");
        assert!(summary.problems.iter().any(|p| p.contains("NUL")));
    }

    #[test]
    fn overlong_headers_and_bodies_are_cut_with_a_reason() {
        let long = "x".repeat(5000);
        let body = "y".repeat(MAX_KEPT_TEXT + 10);
        let raw = mail(&format!("From: a@example.com\r\nSubject: {long}"), &body);
        let summary = parse(&raw);
        assert_eq!(summary.subject.chars().count(), MAX_SUBJECT_CHARS + 1);
        assert_eq!(summary.new_text.len(), MAX_KEPT_TEXT);
        assert!(
            summary
                .problems
                .iter()
                .any(|p| p.contains("header Subject was 5000"))
        );
        assert!(summary.problems.iter().any(|p| p.contains("new text was")));
    }

    #[test]
    fn messages_over_the_limit_are_read_from_headers_only() {
        let raw = mail("From: a@example.com\r\nSubject: big", &"z".repeat(4000));
        let summary = parse_with_limit(&raw, 2048);
        assert_eq!(summary.subject, "big");
        assert!(summary.new_text.is_empty());
        assert!(summary.problems[0].contains("over the limit of 2048 bytes"));
    }

    #[test]
    fn missing_from_empty_and_garbage_are_problems_not_panics() {
        assert!(parse(b"").problems[0].contains("empty"));
        let summary = parse(b"Subject: hi\r\n\r\nbody");
        assert!(summary.from.is_none());
        assert!(
            summary
                .problems
                .iter()
                .any(|p| p.contains("no From header"))
        );
        let summary = parse(b"From: a@example.com\r\nDate: yesterday-ish\r\n\r\nbody");
        assert!(summary.date.is_none());
        assert!(summary.problems.iter().any(|p| p.contains("Date")));
        let _ = parse(&[0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
                let summary = parse(&raw);
                prop_assert!(summary.new_text.len() <= MAX_KEPT_TEXT);
                prop_assert!(!summary.new_text.contains('\0'));
                prop_assert!(!summary.subject.contains('\0'));
            }

            #[test]
            fn mime_shaped_input_never_panics(
                boundary in "[a-z]{1,5}",
                parts in proptest::collection::vec("[ -~\r\n]{0,200}", 0..8),
                charset in prop::sample::select(vec!["utf-8", "iso-8859-1", "shift_jis", "bogus", "utf-16"]),
                encoding in prop::sample::select(vec!["base64", "quoted-printable", "8bit", "x-nope"]),
            ) {
                let mut raw = format!("From: a@example.com\r\nContent-Type: multipart/mixed; boundary={boundary}\r\n\r\n");
                for part in &parts {
                    raw.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{part}\r\n"));
                }
                let summary = parse(raw.as_bytes());
                prop_assert!(summary.new_text.len() <= MAX_KEPT_TEXT);
            }
        }
    }
}
