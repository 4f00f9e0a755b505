//! The stand-in classifier: a small deterministic classifier that reads a few headers by hand.
//! It is what the IMAP reader, `gatehouse worker` and `gatehouse bench imap` use until the
//! rules + LLM `Classifier` (intake::classify) is wired in; it is not that classifier. It
//! understands exactly two subject lines and sends everything else to triage:
//!
//! - `Onboard: First Last <first.last@example.com>` → a joiner request;
//! - `New starter: First Last` with the address in parentheses or angle brackets in the body
//!   → a joiner request;
//! - `Auto-Submitted` other than `no`, or `Precedence: bulk | auto_reply | list` → ignored;
//! - anything else → `needs_triage` ("not understood by the stand-in classifier").

use futures::future::BoxFuture;

use crate::domain::intake::{
    Classified, Evidence, MailSummary, RequestDraft, RuleVerdict, Verdict,
};
use crate::intake::reader::MailClassifier;

/// Longest body text kept in the summary by the stand-in (bytes).
const KEPT_BODY: usize = 4096;

/// The stand-in classifier (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct StandInClassifier;

impl StandInClassifier {
    /// What the evidence and outputs call this classifier.
    pub const NAME: &'static str = "stand-in (subject line) classifier";
}

/// Header block and body of a raw message (split at the first empty line).
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    for (i, w) in raw.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return (&raw[..i], &raw[i + 4..]);
        }
    }
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&raw[..i], &raw[i + 2..]);
        }
    }
    (raw, &[])
}

/// Unfolded headers as (lower-case name, value).
fn headers(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `Name <addr>` → (name, addr); a bare address → ("", addr).
fn address(value: &str) -> (String, Option<String>) {
    match value.split_once('<') {
        Some((name, rest)) => {
            let addr = rest.split('>').next().unwrap_or("").trim().to_lowercase();
            let name = name.trim().trim_matches('"').trim().to_string();
            (name, (addr.contains('@')).then_some(addr))
        }
        None => {
            let v = value.trim().to_lowercase();
            (String::new(), v.contains('@').then_some(v))
        }
    }
}

/// The first `(addr@host)` or `<addr@host>` in `text`.
fn bracketed_address(text: &str) -> Option<String> {
    for (open, close) in [('(', ')'), ('<', '>')] {
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + 1..];
            let Some(end) = after.find(close) else { break };
            let candidate = after[..end].trim();
            if candidate.contains('@') && !candidate.contains(char::is_whitespace) {
                return Some(candidate.to_lowercase());
            }
            rest = &after[end..];
        }
    }
    None
}

fn rule(name: &str, outcome: &str, detail: impl Into<String>) -> RuleVerdict {
    RuleVerdict {
        rule: name.into(),
        outcome: outcome.into(),
        detail: detail.into(),
    }
}

/// Classify one raw message (see the module docs). Never panics, whatever the bytes.
pub fn classify_stand_in(raw: &[u8]) -> Classified {
    let (head, body) = split(raw);
    let headers = headers(head);
    // Header values are kept to the line length RFC 5322 allows (998 characters).
    let headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(n, v)| (n, v.chars().take(998).collect()))
        .collect();
    let subject = first(&headers, "subject").unwrap_or("").to_string();
    let (from_name, from) = address(first(&headers, "from").unwrap_or(""));
    let body_text = String::from_utf8_lossy(&body[..body.len().min(KEPT_BODY)]).into_owned();
    let mut problems = Vec::new();
    if body.len() > KEPT_BODY {
        problems.push(format!(
            "body cut to {KEPT_BODY} bytes by the stand-in classifier"
        ));
    }
    let mail = MailSummary {
        message_id: first(&headers, "message-id")
            .map(|m| m.trim().trim_matches(['<', '>']).to_string())
            .filter(|m| !m.is_empty()),
        from: from.clone(),
        from_name: (!from_name.is_empty()).then_some(from_name),
        to: first(&headers, "to")
            .map(|t| t.split(',').filter_map(|a| address(a).1).collect())
            .unwrap_or_default(),
        subject: subject.clone(),
        date: None,
        new_text: body_text.clone(),
        quoted_text: String::new(),
        attachments: Vec::new(),
        headers: headers
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "auto-submitted" | "precedence"))
            .cloned()
            .collect(),
        problems,
        size: raw.len() as u64,
    };
    let mut evidence = Evidence {
        mode: "rules".into(),
        model_error: Some(format!(
            "no model: classified by the {}",
            StandInClassifier::NAME
        )),
        ..Evidence::default()
    };
    let auto = first(&headers, "auto-submitted").is_some_and(|v| !v.eq_ignore_ascii_case("no"))
        || first(&headers, "precedence").is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "bulk" | "auto_reply" | "list" | "junk"
            )
        });
    let requester = from.clone().unwrap_or_default();
    let lower = subject.to_ascii_lowercase();
    let verdict = if auto {
        evidence.rules.push(rule(
            "auto_reply",
            "fail",
            "Auto-Submitted or Precedence header",
        ));
        evidence.intent = Some("other".into());
        Verdict::Ignored {
            reason: "automatic message (Auto-Submitted / Precedence)".into(),
        }
    } else if lower.starts_with("onboard:") || lower.starts_with("new starter:") {
        let rest = &subject[subject.find(':').map_or(0, |i| i + 1)..];
        let (name, email) = match address(rest) {
            (name, Some(email)) => (name, Some(email)),
            _ => (rest.trim().to_string(), bracketed_address(&body_text)),
        };
        evidence.intent = Some("onboard".into());
        let draft = RequestDraft {
            kind: "joiner".into(),
            subject_name: name.clone(),
            subject_email: email.clone(),
            username: None,
            requester,
            fields: serde_json::Map::new(),
        };
        if name.is_empty() || email.is_none() {
            evidence.rules.push(rule(
                "subject_line",
                "fail",
                "no name or no e-mail address found",
            ));
            Verdict::Triage {
                draft,
                reason: "the stand-in classifier found no name or no e-mail address".into(),
            }
        } else {
            evidence
                .rules
                .push(rule("subject_line", "pass", format!("joiner {name}")));
            Verdict::Request { draft }
        }
    } else {
        evidence
            .rules
            .push(rule("subject_line", "skip", "subject not understood"));
        evidence.intent = Some("other".into());
        Verdict::Triage {
            draft: RequestDraft {
                kind: "joiner".into(),
                requester,
                ..RequestDraft::default()
            },
            reason: "not understood by the stand-in classifier".into(),
        }
    };
    Classified {
        mail,
        verdict,
        evidence,
    }
}

impl MailClassifier for StandInClassifier {
    fn classify<'a>(&'a self, raw: &'a [u8]) -> BoxFuture<'a, Classified> {
        Box::pin(async move { classify_stand_in(raw) })
    }

    fn name(&self) -> &str {
        Self::NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onboard_subject_becomes_a_request() {
        let c = classify_stand_in(
            b"From: Boss <Boss@Example.com>\r\nSubject: Onboard: Ada Lovelace <ada@example.com>\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n",
        );
        let Verdict::Request { draft } = c.verdict else {
            panic!("{:?}", c.verdict);
        };
        assert_eq!(draft.subject_name, "Ada Lovelace");
        assert_eq!(draft.subject_email.as_deref(), Some("ada@example.com"));
        assert_eq!(draft.requester, "boss@example.com");
        assert_eq!(c.mail.message_id.as_deref(), Some("x@y"));
    }

    #[test]
    fn new_starter_takes_the_address_from_the_body() {
        let c = classify_stand_in(
            b"From: m@example.com\nSubject: New starter: Alan Turing\n\nPlease onboard Alan Turing (alan.turing3@example.com) to the DEV Team.\n",
        );
        let Verdict::Request { draft } = c.verdict else {
            panic!("{:?}", c.verdict);
        };
        assert_eq!(
            draft.subject_email.as_deref(),
            Some("alan.turing3@example.com")
        );
    }

    #[test]
    fn auto_replies_are_ignored_and_the_rest_is_triaged() {
        let c =
            classify_stand_in(b"Auto-Submitted: auto-replied\r\nSubject: Onboard: X <x@y>\r\n\r\n");
        assert!(matches!(c.verdict, Verdict::Ignored { .. }));
        let c = classify_stand_in(b"Subject: hello\r\n\r\nbody");
        assert!(matches!(c.verdict, Verdict::Triage { .. }));
        for raw in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Subject: Onboard:\r\n\r\n",
            b":::\n\n",
        ] {
            let _ = classify_stand_in(raw);
        }
    }
}
