//! Deterministic extraction of a request's fields from the new text of a message: labelled
//! lines ("Team: X", "Start date: …"), names next to intent words, e-mail addresses, usernames
//! and dates in the common formats (2026-12-01, 01/12/2026 by the configured order,
//! 1 December 2026, Dec 1 2026). Pure; every pattern is compiled once.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use crate::domain::config::DateOrder;
use crate::intake::text;

/// Fields found in a message (by the rules, or read from the model's answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    /// Full name of the person.
    pub name: Option<String>,
    /// The person's e-mail address.
    pub email: Option<String>,
    /// The account name asked for.
    pub username: Option<String>,
    /// Team or department.
    pub team: Option<String>,
    /// Role or job title.
    pub role: Option<String>,
    /// Line manager (name or address).
    pub manager: Option<String>,
    /// The date the change takes effect (start, last day, move).
    pub date: Option<NaiveDate>,
    /// The text a date was read from when it did not parse (for the reason shown).
    pub unparsed_date: Option<String>,
}

impl Extraction {
    /// Names of the fields that hold a value, for evidence.
    pub fn found(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("email", self.email.is_some()),
            ("username", self.username.is_some()),
            ("team", self.team.is_some()),
            ("role", self.role.is_some()),
            ("manager", self.manager.is_some()),
            ("date", self.date.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

/// Longest extracted value kept (characters, a cut one ends in `…`).
pub const MAX_VALUE_CHARS: usize = 200;

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

const MONTH: &str = r"(?i:(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?))";

static ISO_DATE: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"));
static NUMERIC_DATE: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b"));
static DAY_MONTH_DATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(&format!(
        r"\b(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{MONTH}\.?,?\s+(\d{{4}})\b"
    ))
});
static MONTH_DAY_DATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(&format!(
        r"\b{MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"
    ))
});
static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b[a-z0-9][a-z0-9._%+'-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+\b",
    )
});
static LABELLED: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"^[\s*•\-]*([A-Za-z][A-Za-z ./-]{0,30}?)\s*\**\s*[:=]\s*\**\s*(.+?)\s*$"));
const NAME: &str = r"(\p{Lu}[\p{Ll}'’-]+(?:[ ]+\p{Lu}[\p{Ll}'’-]+){1,2})";
static NAME_AFTER_KEYWORD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(&format!(
        r"(?i:onboard(?:ing)?|offboard(?:ing)?|welcome|accounts?\s+for|access\s+for|set\s+up|new\s+starter|new\s+joiner|new\s+hire|joiner|leaver|starter|hired|disable|deactivate|move|transfer|moving|transferring)\s*[:,-]?\s*(?:(?i:our|the|a|an|new|colleague|employee|engineer|developer|analyst|designer|manager|contractor|intern)\s+){{0,3}}{NAME}"
    ))
});
static NAME_BEFORE_VERB: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(&format!(
        r"{NAME}\s+(?i:is\s+joining|joins|will\s+join|will\s+be\s+joining|starts|is\s+starting|will\s+start|has\s+joined|is\s+leaving|will\s+be\s+leaving|leaves|has\s+left|has\s+resigned|is\s+moving|will\s+move|moves|is\s+transferring)\b"
    ))
});
static USERNAME_PHRASE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:username|user name|login)\s+(?:is\s+|should\s+be\s+|=\s*)?[`'\x22]?([a-z][a-z0-9._-]{1,31})\b",
    )
});

/// Words that end a name found in free text (days, months, connectors).
const NAME_STOPWORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "on",
    "from",
    "in",
    "the",
    "team",
    "starting",
    "as",
    "to",
    "please",
    "thanks",
    "today",
    "tomorrow",
    "next",
    "who",
    "and",
];

/// Words that may open a sentence before a name ("Hi Grace Hopper is leaving").
const GREETINGS: &[&str] = &[
    "hi", "hello", "dear", "hey", "fyi", "note", "please", "so", "also",
];

fn month_number(name: &str) -> Option<u32> {
    let lower = name.to_lowercase();
    let prefix = lower.get(..3)?;
    [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == prefix)
    .and_then(|index| u32::try_from(index + 1).ok())
}

fn number(text: Option<regex::Match<'_>>) -> Option<u32> {
    text?.as_str().parse().ok()
}

fn year(text: Option<regex::Match<'_>>) -> Option<i32> {
    text?.as_str().parse().ok()
}

/// The first date written in `text` in one of the supported formats, with where it starts.
/// Numbers that do not make a calendar date (31/02/2026) are skipped.
pub fn find_date(text: &str, order: DateOrder) -> Option<(usize, NaiveDate)> {
    let mut best: Option<(usize, NaiveDate)> = None;
    let mut consider = |start: usize, date: Option<NaiveDate>| {
        if let Some(date) = date
            && best.is_none_or(|(at, _)| start < at)
        {
            best = Some((start, date));
        }
    };
    if let Some(iso) = ISO_DATE.as_ref() {
        for caps in iso.captures_iter(text) {
            let date = NaiveDate::from_ymd_opt(
                year(caps.get(1)).unwrap_or(0),
                number(caps.get(2)).unwrap_or(0),
                number(caps.get(3)).unwrap_or(0),
            );
            if date.is_some() {
                consider(caps.get(0).map_or(0, |m| m.start()), date);
                break;
            }
        }
    }
    if let Some(numeric) = NUMERIC_DATE.as_ref() {
        for caps in numeric.captures_iter(text) {
            let (a, b) = (number(caps.get(1)), number(caps.get(2)));
            let (day, month) = match order {
                DateOrder::Dmy => (a, b),
                DateOrder::Mdy => (b, a),
            };
            let date = NaiveDate::from_ymd_opt(
                year(caps.get(3)).unwrap_or(0),
                month.unwrap_or(0),
                day.unwrap_or(0),
            );
            if date.is_some() {
                consider(caps.get(0).map_or(0, |m| m.start()), date);
                break;
            }
        }
    }
    if let Some(day_month) = DAY_MONTH_DATE.as_ref() {
        for caps in day_month.captures_iter(text) {
            let date = NaiveDate::from_ymd_opt(
                year(caps.get(3)).unwrap_or(0),
                caps.get(2)
                    .and_then(|m| month_number(m.as_str()))
                    .unwrap_or(0),
                number(caps.get(1)).unwrap_or(0),
            );
            if date.is_some() {
                consider(caps.get(0).map_or(0, |m| m.start()), date);
                break;
            }
        }
    }
    if let Some(month_day) = MONTH_DAY_DATE.as_ref() {
        for caps in month_day.captures_iter(text) {
            let date = NaiveDate::from_ymd_opt(
                year(caps.get(3)).unwrap_or(0),
                caps.get(1)
                    .and_then(|m| month_number(m.as_str()))
                    .unwrap_or(0),
                number(caps.get(2)).unwrap_or(0),
            );
            if date.is_some() {
                consider(caps.get(0).map_or(0, |m| m.start()), date);
                break;
            }
        }
    }
    best
}

/// True for a syntactically plausible e-mail address (local part, `@`, dotted domain).
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok && text.len() <= 254
}

/// True for a plausible account name: 2–32 of lower-case letters, digits, `.`, `_`, `-`,
/// starting with a letter.
pub fn is_username(text: &str) -> bool {
    (2..=32).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Which field a label names, if any.
fn label_field(label: &str) -> Option<&'static str> {
    let label = label.trim().to_lowercase();
    let field = match label.as_str() {
        "name" | "full name" | "employee" | "employee name" | "new starter" | "starter"
        | "joiner" | "new joiner" | "leaver" | "new hire" | "person" | "mover" => "name",
        "email" | "e-mail" | "email address" | "e-mail address" | "mail" | "work email" => "email",
        "username" | "user name" | "login" | "account" | "account name" | "user id" | "uid" => {
            "username"
        }
        "team" | "new team" | "department" | "dept" | "group" => "team",
        "role" | "new role" | "title" | "job title" | "position" => "role",
        "manager" | "line manager" | "reports to" | "reporting to" | "new manager" => "manager",
        "start date" | "start" | "starting" | "starts" | "first day" | "joining date" | "date"
        | "last day" | "leaving date" | "end date" | "effective date" | "effective"
        | "move date" | "last working day" => "date",
        _ => return None,
    };
    Some(field)
}

fn value(text: &str) -> Option<String> {
    let (line, _) = text::clean_line(text);
    let line = line.trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
    (!line.is_empty()).then(|| text::bounded(line, MAX_VALUE_CHARS - 1))
}

/// A name found in free text, cut at the first stop word; `None` if fewer than two words remain.
fn clean_name(candidate: &str) -> Option<String> {
    let words: Vec<&str> = candidate
        .split_whitespace()
        .skip_while(|word| GREETINGS.contains(&word.to_lowercase().as_str()))
        .take_while(|word| !NAME_STOPWORDS.contains(&word.to_lowercase().as_str()))
        .collect();
    (words.len() >= 2).then(|| words.join(" "))
}

/// Reads the fields of a request from `text` (subject and new text). `exclude` lists addresses
/// that are not the person's (the sender, the mailbox).
pub fn extract(text: &str, exclude: &[&str], order: DateOrder) -> Extraction {
    let mut found = Extraction::default();
    let mut manager_line = String::new();
    if let Some(labelled) = LABELLED.as_ref() {
        for line in text.lines() {
            let Some(caps) = labelled.captures(line) else {
                continue;
            };
            let (Some(label), Some(raw)) = (caps.get(1), caps.get(2)) else {
                continue;
            };
            let Some(field) = label_field(label.as_str()) else {
                continue;
            };
            let Some(value) = value(raw.as_str()) else {
                continue;
            };
            match field {
                "name" if found.name.is_none() => found.name = Some(value),
                "email" if found.email.is_none() => {
                    let address = value.trim_matches(|c| c == '<' || c == '>').to_lowercase();
                    found.email = Some(address);
                }
                "username" if found.username.is_none() => {
                    found.username = Some(value.trim_matches('`').to_string());
                }
                "team" if found.team.is_none() => found.team = Some(value),
                "role" if found.role.is_none() => found.role = Some(value),
                "manager" if found.manager.is_none() => {
                    manager_line = value.to_lowercase();
                    found.manager = Some(value);
                }
                "date" if found.date.is_none() && found.unparsed_date.is_none() => {
                    match find_date(&value, order) {
                        Some((_, date)) => found.date = Some(date),
                        None => found.unparsed_date = Some(value),
                    }
                }
                _ => {}
            }
        }
    }
    if found.name.is_none() {
        let candidate = [NAME_AFTER_KEYWORD.as_ref(), NAME_BEFORE_VERB.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|pattern| {
                pattern
                    .captures_iter(text)
                    .filter_map(|caps| caps.get(1))
                    .find_map(|m| clean_name(m.as_str()).map(|name| (m.start(), name)))
            })
            .min_by_key(|(start, _)| *start);
        found.name = candidate.map(|(_, name)| name);
    }
    if found.email.is_none()
        && let Some(email) = EMAIL.as_ref()
    {
        found.email = email
            .find_iter(text)
            .map(|m| m.as_str().to_lowercase())
            .find(|address| {
                !exclude.iter().any(|ex| ex.eq_ignore_ascii_case(address))
                    && !manager_line.contains(address.as_str())
            });
    }
    if found.username.is_none()
        && let Some(phrase) = USERNAME_PHRASE.as_ref()
    {
        found.username = phrase
            .captures(text)
            .and_then(|caps| caps.get(1))
            .map(|m| m.as_str().to_string());
    }
    if found.date.is_none() && found.unparsed_date.is_none() {
        found.date = find_date(text, order).map(|(_, date)| date);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn every_pattern_compiles() {
        for pattern in [
            &ISO_DATE,
            &NUMERIC_DATE,
            &DAY_MONTH_DATE,
            &MONTH_DAY_DATE,
            &EMAIL,
            &LABELLED,
            &NAME_AFTER_KEYWORD,
            &NAME_BEFORE_VERB,
            &USERNAME_PHRASE,
        ] {
            assert!(pattern.is_some());
        }
    }

    #[test]
    fn dates_in_common_formats() {
        let d = |text: &str| find_date(text, DateOrder::Dmy).map(|(_, date)| date);
        assert_eq!(d("starts 2026-12-01."), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on 01/12/2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on 1.12.2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on 1 December 2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on the 1st of December, 2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on Dec 1 2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on December 1st, 2026"), Some(ymd(2026, 12, 1)));
        assert_eq!(d("on Sept. 3, 2026"), Some(ymd(2026, 9, 3)));
        assert_eq!(
            find_date("on 01/12/2026", DateOrder::Mdy).map(|(_, date)| date),
            Some(ymd(2026, 1, 12))
        );
        assert_eq!(d("31/02/2026 then 2026-03-04"), Some(ymd(2026, 3, 4)));
        assert_eq!(d("no date here, 12345"), None);
        assert_eq!(d("2026-13-45"), None);
        // The earliest written date wins.
        assert_eq!(
            d("from 5 January 2027, not 2026-12-01"),
            Some(ymd(2027, 1, 5))
        );
    }

    #[test]
    fn labelled_lines_fill_fields() {
        let text = "Hi HR,\n\nName: Ada Lovelace\nE-mail: Ada@Example.com\n* Team: Platform\nRole: Engineer\nManager: Bob Boss <bob@example.com>\nStart date: 1 December 2026\nUsername: alovelace\n";
        let found = extract(text, &[], DateOrder::Dmy);
        assert_eq!(found.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(found.email.as_deref(), Some("ada@example.com"));
        assert_eq!(found.team.as_deref(), Some("Platform"));
        assert_eq!(found.role.as_deref(), Some("Engineer"));
        assert_eq!(found.manager.as_deref(), Some("Bob Boss <bob@example.com>"));
        assert_eq!(found.date, Some(ymd(2026, 12, 1)));
        assert_eq!(found.username.as_deref(), Some("alovelace"));
        assert_eq!(
            found.found(),
            [
                "name", "email", "username", "team", "role", "manager", "date"
            ]
        );
    }

    #[test]
    fn free_text_names_emails_and_dates() {
        let found = extract(
            "Please onboard our new engineer Ada Lovelace on Monday 1 December 2026. Her address will be ada.lovelace@example.com; mine is boss@example.com",
            &["boss@example.com"],
            DateOrder::Dmy,
        );
        assert_eq!(found.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(found.email.as_deref(), Some("ada.lovelace@example.com"));
        assert_eq!(found.date, Some(ymd(2026, 12, 1)));
        let found = extract(
            "Grace Hopper is leaving us; her last day is 12/31/2026",
            &[],
            DateOrder::Mdy,
        );
        assert_eq!(found.name.as_deref(), Some("Grace Hopper"));
        assert_eq!(found.date, Some(ymd(2026, 12, 31)));
        let found = extract("the username should be ghopper please", &[], DateOrder::Dmy);
        assert_eq!(found.username.as_deref(), Some("ghopper"));
    }

    #[test]
    fn the_sender_and_the_manager_are_not_the_person() {
        let found = extract(
            "Manager: bob@example.com\nnew starter next week, from me@example.com",
            &["me@example.com"],
            DateOrder::Dmy,
        );
        assert_eq!(found.email, None);
    }

    #[test]
    fn unparsed_labelled_dates_are_kept_for_the_reason() {
        let found = extract("Start date: next Tuesday-ish", &[], DateOrder::Dmy);
        assert_eq!(found.date, None);
        assert_eq!(found.unparsed_date.as_deref(), Some("next Tuesday-ish"));
    }

    #[test]
    fn names_stop_at_stop_words_and_need_two_words() {
        assert_eq!(
            clean_name("Ada Lovelace Monday").as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(clean_name("Ada Monday"), None);
        assert_eq!(
            clean_name("Hi Grace Hopper").as_deref(),
            Some("Grace Hopper")
        );
        let found = extract("please onboard Monday", &[], DateOrder::Dmy);
        assert_eq!(found.name, None);
    }

    #[test]
    fn email_and_username_syntax() {
        assert!(is_email("ada.lovelace+x@mail.example.com"));
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a..b@example.com",
            "ada@-x.com",
            "ada@example.c0m",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_username("alovelace"));
        assert!(is_username("a.lovelace-2"));
        for bad in ["A", "Ada", "1ada", "ada lovelace", "ada;drop"] {
            assert!(!is_username(bad), "{bad}");
        }
    }
}
