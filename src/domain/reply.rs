//! Approval replies, pure: whether a mail answers an approval mail (sent to the reply address,
//! plus-addressed or not, with a `[TOKEN]` in its subject, or read from the reply mailbox),
//! which token it carries (well-formed or not: the caller verifies it), and the decision in the
//! first lines of its new text — `APPROVE` or `REJECT`, the reason on the rest of the line or
//! on the lines below it.

use super::reply_token::TOKEN_PREFIX;

/// Non-empty lines of the new text searched for the keyword.
pub const KEYWORD_LINES: usize = 3;
/// Longest reason taken from a reply (characters); the rest is cut.
pub const MAX_REASON_CHARS: usize = 500;

/// How a mail was recognised as an approval reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognised {
    /// The token it carries (as written, lower case), or `None` when it carries none.
    pub token: Option<String>,
}

/// Decides whether a mail is a reply to the approval mails of the reply address
/// `reply_address` (`local@domain`): a recipient (To, Delivered-To, ...) that is the reply
/// address or `local+TAG@domain`, a subject with `[gh1-…]`, or a mail read from the reply
/// mailbox (`in_reply_mailbox`). The token is the recipient's tag, else the subject's.
pub fn recognise(
    reply_address: &str,
    recipients: &[String],
    subject: &str,
    in_reply_mailbox: bool,
) -> Option<Recognised> {
    let mut addressed = false;
    let mut token = None;
    if let Some((local, domain)) = reply_address.trim().to_lowercase().split_once('@') {
        let tagged = format!("{local}+");
        for recipient in recipients {
            let recipient = recipient
                .trim()
                .trim_matches(|c| c == '<' || c == '>')
                .to_lowercase();
            let Some((their_local, their_domain)) = recipient.rsplit_once('@') else {
                continue;
            };
            if their_domain != domain {
                continue;
            }
            if their_local == local {
                addressed = true;
            } else if let Some(tag) = their_local.strip_prefix(&tagged) {
                addressed = true;
                if token.is_none() && !tag.is_empty() {
                    token = Some(tag.to_string());
                }
            }
        }
    }
    if token.is_none() {
        token = token_candidate_in_subject(subject);
    }
    (addressed || token.is_some() || in_reply_mailbox).then_some(Recognised { token })
}

/// The last bracketed `[gh1-…]` of a subject, well-formed or not (lower case).
pub fn token_candidate_in_subject(subject: &str) -> Option<String> {
    subject
        .rmatch_indices('[')
        .filter_map(|(start, _)| {
            let inner = &subject[start + 1..];
            let end = inner.find(']')?;
            Some(inner[..end].trim().to_lowercase())
        })
        .find(|candidate| candidate.starts_with(TOKEN_PREFIX))
}

/// What a reply decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `APPROVE`.
    Approve,
    /// `REJECT`.
    Reject,
}

/// The decision read from a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyDecision {
    /// Approve or reject.
    pub verb: Verb,
    /// The reason, when one was written.
    pub reason: Option<String>,
}

/// Why no decision could be read from a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// Neither keyword opens one of the first lines.
    #[error(
        "no APPROVE or REJECT at the start of the first {KEYWORD_LINES} lines of the reply (the quoted mail is not read)"
    )]
    NoKeyword,
    /// Both keywords open lines: the reply does not say one thing.
    #[error("the reply says both APPROVE and REJECT; write only one")]
    Ambiguous,
}

/// The keyword a line opens with (`APPROVE`, `APPROVED`, `REJECT`, `REJECTED`, any case,
/// followed by the end of the line or a character that is not a letter or digit), and the
/// rest of the line.
fn keyword(line: &str) -> Option<(Verb, &str)> {
    let trimmed = line.trim_start_matches(|c: char| c.is_whitespace() || c == '*');
    for (word, verb) in [
        ("approved", Verb::Approve),
        ("approve", Verb::Approve),
        ("rejected", Verb::Reject),
        ("reject", Verb::Reject),
    ] {
        let Some(head) = trimmed.get(..word.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(word) {
            continue;
        }
        let rest = &trimmed[word.len()..];
        if rest.chars().next().is_none_or(|c| !c.is_alphanumeric()) {
            return Some((verb, rest));
        }
    }
    None
}

/// Reads the decision from `new_text` (the reply without its quoted part): the first of the
/// first [`KEYWORD_LINES`] non-empty lines that opens with a keyword decides; its reason is the
/// rest of that line, or else the lines below it up to the first empty line.
pub fn parse_decision(new_text: &str) -> Result<ReplyDecision, DecisionError> {
    let lines: Vec<&str> = new_text.lines().collect();
    let mut found: Option<(usize, Verb, &str)> = None;
    for (index, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .take(KEYWORD_LINES)
    {
        if let Some((verb, rest)) = keyword(line) {
            match found {
                None => found = Some((index, verb, rest)),
                Some((_, first, _)) if first != verb => return Err(DecisionError::Ambiguous),
                Some(_) => {}
            }
        }
    }
    let (index, verb, rest) = found.ok_or(DecisionError::NoKeyword)?;
    let clean = |text: &str| {
        text.trim()
            .trim_start_matches(|c: char| {
                c.is_whitespace() || matches!(c, '*' | ':' | ',' | '-' | '.' | '!' | '–' | '—')
            })
            .trim()
            .to_string()
    };
    let mut reason = clean(rest);
    if reason.is_empty() {
        reason = lines
            .iter()
            .skip(index + 1)
            .take_while(|line| !line.trim().is_empty())
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" ");
        reason = clean(&reason);
    }
    if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
        reason.truncate(cut);
    }
    Ok(ReplyDecision {
        verb,
        reason: (!reason.is_empty()).then_some(reason),
    })
}

/// The instructions put in approval mails (the `reply_instructions` template value).
pub fn instructions(reply_to: &str) -> String {
    format!(
        "To decide by mail, reply to this message (it goes to {reply_to}) with APPROVE or REJECT on the first line, followed by your reason; keep the [token] in the subject. The token works once, only for you, until it expires."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDRESS: &str = "approvals@example.com";
    const TOKEN: &str = "gh1-42-19a2b3c4d5e-00112233445566778899aabbccddeeff";

    fn to(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replies_are_recognised_by_address_subject_or_mailbox() {
        let plus = format!("approvals+{TOKEN}@example.com");
        assert_eq!(
            recognise(ADDRESS, &to(&[&plus]), "Re: x", false),
            Some(Recognised {
                token: Some(TOKEN.into())
            })
        );
        // Case folded by a mail system, angle brackets, another recipient first.
        let shouted = format!("<APPROVALS+{}@EXAMPLE.COM>", TOKEN.to_uppercase());
        assert_eq!(
            recognise(ADDRESS, &to(&["hr@example.com", &shouted]), "", false).and_then(|r| r.token),
            Some(TOKEN.into())
        );
        // The subject's token when the address has none.
        let subject = format!("Re: Approval needed [External] [{TOKEN}]");
        assert_eq!(
            recognise(ADDRESS, &to(&[ADDRESS]), &subject, false).and_then(|r| r.token),
            Some(TOKEN.into())
        );
        assert_eq!(
            recognise(ADDRESS, &to(&["hr@example.com"]), &subject, false).and_then(|r| r.token),
            Some(TOKEN.into())
        );
        // To the reply address without a token, or in the reply mailbox: a reply, no token.
        assert_eq!(
            recognise(ADDRESS, &to(&[ADDRESS]), "Re: hello", false),
            Some(Recognised { token: None })
        );
        assert_eq!(
            recognise(ADDRESS, &to(&["x@y.org"]), "hello", true),
            Some(Recognised { token: None })
        );
        // A malformed tag is still the token (the verifier refuses it).
        assert_eq!(
            recognise(ADDRESS, &to(&["approvals+gh1-zz@example.com"]), "", false)
                .and_then(|r| r.token),
            Some("gh1-zz".into())
        );
        assert_eq!(
            recognise(ADDRESS, &to(&[]), "Re: [gh1-broken]", false).and_then(|r| r.token),
            Some("gh1-broken".into())
        );
        // Other mail is not a reply.
        for (recipients, subject) in [
            (to(&["hr@example.com"]), "New starter Ada"),
            (to(&["approvals@example.org"]), "Re: [ticket 7]"),
            (to(&["other+gh1-1@example.com"]), ""),
            (to(&["not an address"]), "[gh2-1]"),
        ] {
            assert_eq!(recognise(ADDRESS, &recipients, subject, false), None);
        }
    }

    fn decided(verb: Verb, reason: Option<&str>) -> Result<ReplyDecision, DecisionError> {
        Ok(ReplyDecision {
            verb,
            reason: reason.map(str::to_string),
        })
    }

    #[test]
    fn the_keyword_and_reason_come_from_the_first_lines() {
        assert_eq!(parse_decision("APPROVE"), decided(Verb::Approve, None));
        assert_eq!(
            parse_decision("\n\n  approved.\n"),
            decided(Verb::Approve, None)
        );
        assert_eq!(
            parse_decision("Approve: known contractor"),
            decided(Verb::Approve, Some("known contractor"))
        );
        assert_eq!(
            parse_decision("REJECT - no budget this quarter\n\nThanks, Ann"),
            decided(Verb::Reject, Some("no budget this quarter"))
        );
        assert_eq!(
            parse_decision("Reject\nno budget\nthis quarter\n\nAnn"),
            decided(Verb::Reject, Some("no budget this quarter"))
        );
        assert_eq!(
            parse_decision("Hi Bob,\n**REJECTED**, wrong team"),
            decided(Verb::Reject, Some("wrong team"))
        );
        assert_eq!(
            parse_decision("Hi,\nthanks\nApprove"),
            decided(Verb::Approve, None)
        );
    }

    #[test]
    fn no_keyword_or_both_are_refused() {
        for text in [
            "",
            "Looks fine to me",
            "I approve",
            "Approvals are slow",
            "Rejection letters",
            "a\nb\nc\nAPPROVE",
        ] {
            assert_eq!(
                parse_decision(text),
                Err(DecisionError::NoKeyword),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_decision("APPROVE\nREJECT"),
            Err(DecisionError::Ambiguous)
        );
        assert_eq!(
            parse_decision("approve\n\nApproved, really"),
            decided(Verb::Approve, None)
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        let text = format!("REJECT {}", "x".repeat(2 * MAX_REASON_CHARS));
        let reason = parse_decision(&text)
            .ok()
            .and_then(|d| d.reason)
            .unwrap_or_default();
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        assert!(instructions(ADDRESS).contains(ADDRESS));
    }
}
