//! What intake decides about one incoming message: the mail as a person reads it, the verdict,
//! and the evidence behind it (rules, model, prompt hash, raw answer). Pure data shared by the
//! intake adapters (which produce it), the store (which records it with the request in one
//! transaction) and the console (which shows it).

use serde::{Deserialize, Serialize};

/// Longest new or quoted text kept with a message (bytes); longer text is cut and marked.
pub const MAX_KEPT_TEXT: usize = 64 * 1024;

/// One attachment as recorded (never parsed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name as sent, if any (inert text).
    pub name: Option<String>,
    /// MIME type, e.g. `application/pdf`.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
}

/// A message as a person reads it: headers, the new text, and what was quoted or forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailSummary {
    /// `Message-ID` without angle brackets, if present.
    pub message_id: Option<String>,
    /// Sender address (lower-cased), if one could be read.
    pub from: Option<String>,
    /// Sender display name, if any.
    pub from_name: Option<String>,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// `Date` header as RFC 3339, if it parsed.
    pub date: Option<String>,
    /// The text the sender wrote in this message (HTML turned into text), signature removed.
    pub new_text: String,
    /// Quoted replies and forwarded messages, folded in the console.
    pub quoted_text: String,
    /// Attachments, recorded but not parsed.
    pub attachments: Vec<Attachment>,
    /// Selected headers kept as evidence (`Auto-Submitted`, `Authentication-Results`, ...).
    pub headers: Vec<(String, String)>,
    /// What was wrong with the message while reading it (bad charset, cut text, ...).
    pub problems: Vec<String>,
    /// Size of the raw message in bytes.
    pub size: u64,
}

/// What a request drafted from a message (or a CSV row) holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestDraft {
    /// `joiner`, `mover` or `leaver`.
    pub kind: String,
    /// Full name of the person.
    pub subject_name: String,
    /// E-mail of the person.
    pub subject_email: Option<String>,
    /// Account name; derived from the name when `None`.
    pub username: Option<String>,
    /// Who asked (the sender's address for mail).
    pub requester: String,
    /// Further fields (team, role, start_date, manager, ...).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The decision about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// A request the engine can process.
    Request {
        /// The drafted request.
        draft: RequestDraft,
    },
    /// A request a person must look at first (`needs_triage`), with why.
    Triage {
        /// The fields drafted so far (a person corrects them).
        draft: RequestDraft,
        /// Why the machine could not decide.
        reason: String,
    },
    /// Not a request (auto-reply, no-reply sender, out of office, a question): nothing is done.
    Ignored {
        /// Why.
        reason: String,
    },
    /// Suspicious (text that tries to instruct the model, ...): held for an admin, never acted on.
    Quarantined {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// The verdict's name as stored: `request`, `triage`, `ignored` or `quarantined`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Request { .. } => "request",
            Self::Triage { .. } => "triage",
            Self::Ignored { .. } => "ignored",
            Self::Quarantined { .. } => "quarantined",
        }
    }
}

/// One rule's verdict, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleVerdict {
    /// Rule name, e.g. `auto_reply`, `email_syntax`, `team_exists`.
    pub rule: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: String,
    /// What the rule saw.
    pub detail: String,
}

/// Why the verdict is what it is: which rules ran and what the model answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// `rules` when no model was configured or reachable, `rules+llm` otherwise.
    pub mode: String,
    /// The model's name, when one was asked.
    pub model: Option<String>,
    /// SHA-256 (hex) of the exact prompt sent.
    pub prompt_hash: Option<String>,
    /// The model's raw answer (bounded), when one came.
    pub raw_answer: Option<String>,
    /// Why the model was not used or its answer not taken (timeout, 500, invalid JSON, ...).
    pub model_error: Option<String>,
    /// The model's stated confidence (0..1), when it answered.
    pub confidence: Option<f64>,
    /// The intent decided (onboard, offboard, change, approval_reply, query, out_of_office, other).
    pub intent: Option<String>,
    /// Every rule's verdict, in the order they ran.
    pub rules: Vec<RuleVerdict>,
}

/// A classified message: what it said, what was decided, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classified {
    /// The message as read.
    pub mail: MailSummary,
    /// The decision.
    pub verdict: Verdict,
    /// The evidence behind it.
    pub evidence: Evidence,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_round_trip_through_json_with_their_names() {
        let draft = RequestDraft {
            kind: "joiner".into(),
            subject_name: "Ada Lovelace".into(),
            requester: "boss@example.com".into(),
            ..Default::default()
        };
        for (verdict, name) in [
            (
                Verdict::Request {
                    draft: draft.clone(),
                },
                "request",
            ),
            (
                Verdict::Triage {
                    draft,
                    reason: "low confidence".into(),
                },
                "triage",
            ),
            (
                Verdict::Ignored {
                    reason: "auto-reply".into(),
                },
                "ignored",
            ),
            (
                Verdict::Quarantined {
                    reason: "instructions to the model".into(),
                },
                "quarantined",
            ),
        ] {
            assert_eq!(verdict.name(), name);
            let text = serde_json::to_string(&verdict).expect("serialises");
            assert!(text.contains(&format!("\"verdict\":\"{name}\"")), "{text}");
            let back: Verdict = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, verdict);
        }
    }
}
