//! Deterministic rules over a parsed message, run before any model: auto-reply, no-reply and
//! out-of-office filters, approval replies, known senders, prompt-injection detection, intent
//! keywords; and after extraction (by rules or model) the checks of the result: name present,
//! e-mail syntax, username syntax, team known, date sane. Pure: the caller passes "today".

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::config::{RuleSettings, UnknownSender};
use crate::domain::intake::{MailSummary, RuleVerdict};
use crate::intake::extract::{self, Extraction};
use crate::intake::injection;
use crate::intake::text;

/// What a message asks for, as the rules or the model read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// A new person (joiner).
    Onboard,
    /// A person leaving (leaver).
    Offboard,
    /// A person changing team or role (mover).
    Change,
    /// An answer to an approval request.
    ApprovalReply,
    /// A question, not a request.
    Query,
    /// An out-of-office or other automatic reply.
    OutOfOffice,
    /// Anything else.
    Other,
}

impl Intent {
    /// Every intent, in schema order.
    pub const ALL: [Intent; 7] = [
        Intent::Onboard,
        Intent::Offboard,
        Intent::Change,
        Intent::ApprovalReply,
        Intent::Query,
        Intent::OutOfOffice,
        Intent::Other,
    ];

    /// The name used in the schema and the evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onboard => "onboard",
            Self::Offboard => "offboard",
            Self::Change => "change",
            Self::ApprovalReply => "approval_reply",
            Self::Query => "query",
            Self::OutOfOffice => "out_of_office",
            Self::Other => "other",
        }
    }

    /// Reads a schema name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|intent| intent.as_str() == text)
    }

    /// The request kind this intent drafts (`joiner`, `leaver`, `mover`), if it is a request.
    pub fn request_kind(self) -> Option<&'static str> {
        match self {
            Self::Onboard => Some("joiner"),
            Self::Offboard => Some("leaver"),
            Self::Change => Some("mover"),
            _ => None,
        }
    }
}

/// A decision the screening rules reach before anything is extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Held for an admin, never acted on.
    Quarantine(String),
    /// Nothing to do.
    Ignore(String),
    /// Fields are drafted by the rules but a person decides (no model is asked).
    Triage(String),
}

/// What the screening rules found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screening {
    /// Every screening rule's verdict, in order.
    pub verdicts: Vec<RuleVerdict>,
    /// The first decision reached, if any (quarantine first, then ignore, then triage).
    pub gate: Option<Gate>,
}

fn verdict(rule: &str, outcome: &str, detail: impl Into<String>) -> RuleVerdict {
    RuleVerdict {
        rule: rule.to_string(),
        outcome: outcome.to_string(),
        detail: text::bounded(&detail.into(), 500),
    }
}

fn header<'a>(mail: &'a MailSummary, name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.to_string();
    mail.headers
        .iter()
        .filter(move |(key, _)| key.eq_ignore_ascii_case(&name))
        .map(|(_, value)| value.as_str())
}

/// Auto-Submitted other than `no`, X-Autoreply / X-Autorespond, Precedence bulk / junk /
/// list / auto_reply, or a null Return-Path: an automatic message.
pub fn auto_reply(mail: &MailSummary) -> Option<String> {
    if let Some(value) =
        header(mail, "Auto-Submitted").find(|v| !v.trim().eq_ignore_ascii_case("no"))
    {
        return Some(format!("Auto-Submitted: {value}"));
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if let Some(value) = header(mail, name).next() {
            return Some(format!("{name}: {value}"));
        }
    }
    if let Some(value) = header(mail, "Precedence").find(|v| {
        matches!(
            v.trim().to_lowercase().as_str(),
            "bulk" | "junk" | "list" | "auto_reply"
        )
    }) {
        return Some(format!("Precedence: {value}"));
    }
    if header(mail, "Return-Path").any(|v| v.trim() == "<>") {
        return Some("Return-Path: <> (a bounce or automatic message)".into());
    }
    None
}

/// Subject or opening words of an out-of-office or automatic reply.
pub fn out_of_office(mail: &MailSummary) -> Option<String> {
    const SUBJECTS: &[&str] = &[
        "out of office",
        "out of the office",
        "out-of-office",
        "automatic reply",
        "auto reply",
        "auto-reply",
        "autoreply",
        "away from the office",
        "on vacation",
        "on holiday",
        "on leave",
        "abwesenheit",
        "réponse automatique",
        "respuesta automática",
        "(ooo)",
        "ooo:",
    ];
    let subject = mail.subject.to_lowercase();
    if let Some(hit) = SUBJECTS.iter().find(|s| subject.contains(*s)) {
        return Some(format!("subject says \"{hit}\""));
    }
    const OPENINGS: &[&str] = &[
        "i am out of the office",
        "i'm out of the office",
        "i am currently out of the office",
        "i'm currently out of the office",
        "i am away",
        "i'm away",
        "i am on annual leave",
        "i am on vacation",
        "thank you for your email. i am",
        "this is an automatic reply",
        "this is an automated reply",
    ];
    let opening: String = mail
        .new_text
        .chars()
        .take(200)
        .collect::<String>()
        .to_lowercase();
    let opening = opening.replace('’', "'");
    OPENINGS
        .iter()
        .find(|s| opening.contains(*s))
        .map(|hit| format!("the text opens with \"{hit}\""))
}

/// A sender that never reads replies (mailer-daemon, postmaster, noreply, bounces).
pub fn no_reply_sender(mail: &MailSummary) -> Option<String> {
    let from = mail.from.as_deref()?;
    let local = from.split('@').next().unwrap_or(from);
    let local = local.to_lowercase();
    let exact = [
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "bounce",
        "bounces",
    ];
    let hit = exact.contains(&local.as_str())
        || [
            "noreply",
            "no-reply",
            "no_reply",
            "donotreply",
            "do-not-reply",
            "bounce+",
            "bounces+",
        ]
        .iter()
        .any(|prefix| local.starts_with(prefix));
    hit.then(|| format!("sender {from} is an automatic address"))
}

/// A short reply that approves or rejects ("Approved.", "I reject this") to an earlier message.
pub fn approval_reply(mail: &MailSummary) -> Option<String> {
    let subject = mail.subject.trim_start().to_lowercase();
    let is_reply =
        subject.starts_with("re:") || subject.starts_with("aw:") || subject.starts_with("sv:");
    if !is_reply || mail.new_text.chars().count() > 300 {
        return None;
    }
    let first = mail
        .new_text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?
        .to_lowercase();
    let first = first.trim_end_matches(['.', '!']);
    const ANSWERS: &[&str] = &[
        "approve",
        "approved",
        "i approve",
        "yes, approved",
        "yes approved",
        "reject",
        "rejected",
        "i reject",
        "denied",
        "deny",
        "declined",
        "decline",
        "lgtm",
        "ok, approved",
        "not approved",
    ];
    ANSWERS
        .iter()
        .find(|answer| {
            first == **answer
                || first.starts_with(&format!("{answer} "))
                || first.starts_with(&format!("{answer},"))
        })
        .map(|answer| format!("a reply that says \"{answer}\""))
}

/// Whether the sender is on the allowed lists. `None` when no list is configured (every
/// sender accepted), else `Ok(detail)` or `Err(reason)`.
pub fn known_sender(mail: &MailSummary, settings: &RuleSettings) -> Option<Result<String, String>> {
    if settings.allowed_senders.is_empty() && settings.allowed_domains.is_empty() {
        return None;
    }
    let Some(from) = mail.from.as_deref() else {
        return Some(Err("the message has no sender address".into()));
    };
    if settings
        .allowed_senders
        .iter()
        .any(|allowed| allowed.trim().eq_ignore_ascii_case(from))
    {
        return Some(Ok(format!("{from} is an allowed sender")));
    }
    let domain = from.rsplit_once('@').map_or("", |(_, domain)| domain);
    if let Some(allowed) = settings.allowed_domains.iter().find(|allowed| {
        let allowed = allowed.trim().to_lowercase();
        domain == allowed || domain.ends_with(&format!(".{allowed}"))
    }) {
        return Some(Ok(format!("{from} is in allowed domain {allowed}")));
    }
    Some(Err(format!(
        "sender {from} is not on the allowed senders or domains"
    )))
}

/// A screening rule that finds something (with what) or nothing.
type Filter = fn(&MailSummary) -> Option<String>;

/// Runs every screening rule and reaches the first decision: injection quarantines; automatic
/// messages, no-reply senders, out of office and approval replies are ignored; an unknown
/// sender is triaged or ignored as configured.
pub fn screen(mail: &MailSummary, settings: &RuleSettings) -> Screening {
    let mut out = Screening::default();
    let mut quarantine = None;
    let mut ignore = None;
    let mut triage = None;
    if mail.problems.is_empty() {
        out.verdicts
            .push(verdict("parse", "pass", "read without problems"));
    } else {
        out.verdicts
            .push(verdict("parse", "fail", mail.problems.join("; ")));
    }
    match injection::detect(mail) {
        Some(found) => {
            let reason = format!("text that tries to instruct the model: {found}");
            out.verdicts
                .push(verdict("prompt_injection", "fail", &reason));
            quarantine = Some(reason);
        }
        None => out.verdicts.push(verdict(
            "prompt_injection",
            "pass",
            "no instructions to a model found",
        )),
    }
    let filters: [(&str, Filter, &str); 4] = [
        ("auto_reply", auto_reply, "automatic message"),
        ("no_reply_sender", no_reply_sender, "no-reply sender"),
        ("out_of_office", out_of_office, "out of office"),
        (
            "approval_reply",
            approval_reply,
            "approval reply without a token (decisions by mail go to the notifier's reply address)",
        ),
    ];
    for (rule, check, label) in filters {
        match check(mail) {
            Some(detail) => {
                if ignore.is_none() {
                    ignore = Some(format!("{label}: {detail}"));
                }
                out.verdicts.push(verdict(rule, "fail", detail));
            }
            None => out.verdicts.push(verdict(rule, "pass", "not found")),
        }
    }
    match known_sender(mail, settings) {
        None => out.verdicts.push(verdict(
            "known_sender",
            "skip",
            "no allowed senders or domains configured: every sender accepted",
        )),
        Some(Ok(detail)) => out.verdicts.push(verdict("known_sender", "pass", detail)),
        Some(Err(reason)) => {
            out.verdicts.push(verdict("known_sender", "fail", &reason));
            match settings.unknown_sender {
                UnknownSender::Triage => triage = Some(format!("unknown sender: {reason}")),
                UnknownSender::Ignore => {
                    if ignore.is_none() {
                        ignore = Some(format!("unknown sender: {reason}"));
                    }
                }
            }
        }
    }
    out.gate = quarantine
        .map(Gate::Quarantine)
        .or(ignore.map(Gate::Ignore))
        .or(triage.map(Gate::Triage));
    out
}

/// Words that show each request intent, with their weight (2 for the unambiguous ones).
const KEYWORDS: &[(Intent, &str, u32)] = &[
    (Intent::Onboard, "onboard", 2),
    (Intent::Onboard, "on-board", 2),
    (Intent::Onboard, "new starter", 2),
    (Intent::Onboard, "new joiner", 2),
    (Intent::Onboard, "joiner", 2),
    (Intent::Onboard, "new hire", 2),
    (Intent::Onboard, "new employee", 2),
    (Intent::Onboard, "is joining", 1),
    (Intent::Onboard, "will join", 1),
    (Intent::Onboard, "joining us", 1),
    (Intent::Onboard, "first day", 1),
    (Intent::Onboard, "start date", 1),
    (Intent::Onboard, "starts on", 1),
    (Intent::Onboard, "starting on", 1),
    (Intent::Onboard, "create an account", 1),
    (Intent::Onboard, "set up an account", 1),
    (Intent::Onboard, "accounts for", 1),
    (Intent::Offboard, "offboard", 2),
    (Intent::Offboard, "off-board", 2),
    (Intent::Offboard, "leaver", 2),
    (Intent::Offboard, "leaving", 2),
    (Intent::Offboard, "last day", 1),
    (Intent::Offboard, "last working day", 1),
    (Intent::Offboard, "resigned", 2),
    (Intent::Offboard, "resignation", 2),
    (Intent::Offboard, "termination", 2),
    (Intent::Offboard, "disable the account", 1),
    (Intent::Offboard, "deactivate", 1),
    (Intent::Offboard, "revoke access", 1),
    (Intent::Offboard, "remove access", 1),
    (Intent::Offboard, "end date", 1),
    (Intent::Change, "mover", 2),
    (Intent::Change, "moving to", 2),
    (Intent::Change, "moves to", 2),
    (Intent::Change, "move to", 1),
    (Intent::Change, "transfer", 2),
    (Intent::Change, "transferring", 2),
    (Intent::Change, "role change", 2),
    (Intent::Change, "change of role", 2),
    (Intent::Change, "change of team", 2),
    (Intent::Change, "new role", 1),
    (Intent::Change, "new team", 1),
    (Intent::Change, "promoted", 1),
    (Intent::Change, "promotion", 1),
];

fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The request intent the keywords of the subject and new text show: the highest weighted
/// intent, or `None` (with why) when none or a tie.
pub fn keyword_intent(mail: &MailSummary) -> (Option<Intent>, RuleVerdict) {
    let haystack = format!("{}\n{}", mail.subject, mail.new_text).to_lowercase();
    let mut scores: Vec<(Intent, u32, Vec<&str>)> = Vec::new();
    for (intent, word, weight) in KEYWORDS {
        if contains_word(&haystack, word) {
            match scores.iter_mut().find(|(i, _, _)| i == intent) {
                Some(entry) => {
                    entry.1 += weight;
                    entry.2.push(word);
                }
                None => scores.push((*intent, *weight, vec![word])),
            }
        }
    }
    scores.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let describe = |scores: &[(Intent, u32, Vec<&str>)]| {
        scores
            .iter()
            .map(|(intent, score, words)| {
                format!("{} {score} ({})", intent.as_str(), words.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match scores.as_slice() {
        [] => (
            None,
            verdict(
                "intent_keywords",
                "fail",
                "no onboarding, offboarding or change words in the subject or new text",
            ),
        ),
        [(intent, _, _)] => (
            Some(*intent),
            verdict("intent_keywords", "pass", describe(&scores)),
        ),
        [(first, a, _), (_, b, _), ..] if a > b => (
            Some(*first),
            verdict("intent_keywords", "pass", describe(&scores)),
        ),
        _ => (
            None,
            verdict(
                "intent_keywords",
                "fail",
                format!("ambiguous: {}", describe(&scores)),
            ),
        ),
    }
}

/// Extracts fields from the subject and new text (the rules' own reading).
pub fn extract_fields(mail: &MailSummary, settings: &RuleSettings) -> (Extraction, RuleVerdict) {
    let mut exclude: Vec<&str> = mail.to.iter().map(String::as_str).collect();
    if let Some(from) = mail.from.as_deref() {
        exclude.push(from);
    }
    let source = format!("{}\n{}", mail.subject, mail.new_text);
    let found = extract::extract(&source, &exclude, settings.date_order);
    let fields = found.found();
    let detail = if fields.is_empty() {
        "no fields found".to_string()
    } else {
        format!("found {}", fields.join(", "))
    };
    let outcome = if fields.is_empty() { "fail" } else { "pass" };
    (found, verdict("fields", outcome, detail))
}

/// How far from today a date may be before it is not sane.
pub const MAX_DAYS_PAST: u64 = 365;
/// How far ahead a date may be.
pub const MAX_DAYS_AHEAD: u64 = 2 * 365;

/// Checks an extraction (the rules', the model's or both merged): name present, e-mail and
/// username syntax, team known (a known team's spelling is taken), date sane. Returns each
/// check's verdict; a `fail` sends the message to triage.
pub fn check(
    found: &mut Extraction,
    settings: &RuleSettings,
    today: NaiveDate,
) -> Vec<RuleVerdict> {
    let mut out = Vec::new();
    match &found.name {
        Some(name)
            if name.chars().any(char::is_alphabetic)
                && !name
                    .chars()
                    .any(|c| c.is_ascii_digit() || c == '@' || c.is_control()) =>
        {
            out.push(verdict("name_present", "pass", name.clone()));
        }
        Some(name) => out.push(verdict(
            "name_present",
            "fail",
            format!("\"{name}\" is not a person's name"),
        )),
        None => out.push(verdict("name_present", "fail", "no person's name found")),
    }
    match &found.email {
        Some(email) if extract::is_email(email) => {
            out.push(verdict("email_syntax", "pass", email.clone()))
        }
        Some(email) => out.push(verdict(
            "email_syntax",
            "fail",
            format!("\"{email}\" is not a valid e-mail address"),
        )),
        None => out.push(verdict("email_syntax", "skip", "no e-mail address given")),
    }
    match &found.username {
        Some(username) if extract::is_username(username) => {
            out.push(verdict("username_syntax", "pass", username.clone()));
        }
        Some(username) => out.push(verdict(
            "username_syntax",
            "fail",
            format!("\"{username}\" is not a valid username (2-32 of a-z, 0-9, . _ -)"),
        )),
        None => out.push(verdict(
            "username_syntax",
            "skip",
            "no username given (derived later)",
        )),
    }
    match (&found.team, settings.known_teams.is_empty()) {
        (None, _) => out.push(verdict("team_exists", "skip", "no team named")),
        (Some(team), true) => out.push(verdict(
            "team_exists",
            "skip",
            format!("{team} (no known teams configured)"),
        )),
        (Some(team), false) => {
            match settings
                .known_teams
                .iter()
                .find(|known| known.trim().eq_ignore_ascii_case(team.trim()))
            {
                Some(known) => {
                    out.push(verdict("team_exists", "pass", known.trim().to_string()));
                    found.team = Some(known.trim().to_string());
                }
                None => out.push(verdict(
                    "team_exists",
                    "fail",
                    format!("team \"{team}\" is not a known team"),
                )),
            }
        }
    }
    match (found.date, &found.unparsed_date) {
        (Some(date), _) => {
            let earliest = today
                .checked_sub_days(Days::new(MAX_DAYS_PAST))
                .unwrap_or(today);
            let latest = today
                .checked_add_days(Days::new(MAX_DAYS_AHEAD))
                .unwrap_or(today);
            if date < earliest {
                out.push(verdict(
                    "date_sane",
                    "fail",
                    format!("{date} is more than a year in the past"),
                ));
            } else if date > latest {
                out.push(verdict(
                    "date_sane",
                    "fail",
                    format!("{date} is more than two years ahead"),
                ));
            } else {
                out.push(verdict("date_sane", "pass", date.to_string()));
            }
        }
        (None, Some(text)) => out.push(verdict(
            "date_sane",
            "fail",
            format!("\"{text}\" is not a date in a known format"),
        )),
        (None, None) => out.push(verdict("date_sane", "skip", "no date given")),
    }
    out
}

/// The failed verdicts' details, joined: the reason a message goes to triage.
pub fn failures(verdicts: &[RuleVerdict]) -> Option<String> {
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|v| v.outcome == "fail")
        .map(|v| format!("{}: {}", v.rule, v.detail))
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
