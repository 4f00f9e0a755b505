//! The names templates and step parameters may use, and step-parameter placeholders: `{name}`
//! replaced by a request's value, `{{`/`}}` literal braces. Provisioning step parameters and
//! the dry run use this simple form; notification templates use minijinja (see
//! [`super::notification`]).

use std::collections::BTreeMap;

/// Request fields a workflow may require, validate and use as `{placeholders}`.
/// `subject_name`, `subject_email`, `username` and `requester` are request columns; the rest
/// live in the request's payload.
pub const REQUEST_FIELDS: &[&str] = &[
    "subject_name",
    "subject_email",
    "username",
    "requester",
    "team",
    "start_date",
    "end_date",
    "manager",
    "title",
    "department",
    "location",
    "role",
    "previous_role",
    "time_zone",
];

/// Placeholders available to templates and step parameters besides [`REQUEST_FIELDS`].
pub const EXTRA_PLACEHOLDERS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "full_name",
    "workflow",
    "kind",
    "request_id",
    "stage",
    "approver",
    "reason",
    "error",
    "link",
    "reply_to",
    "reply_token",
    "reply_instructions",
];

/// True when `name` can be used as a `{placeholder}`.
pub fn is_placeholder(name: &str) -> bool {
    REQUEST_FIELDS.contains(&name) || EXTRA_PLACEHOLDERS.contains(&name)
}

/// The placeholder names in `text`, or a message for an unbalanced brace.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().enumerate().peekable();
    while let Some((position, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, next)| *next) == Some('{') => {
                chars.next();
            }
            '}' if chars.peek().map(|(_, next)| *next) == Some('}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, inner) in chars.by_ref() {
                    if inner == '}' {
                        closed = true;
                        break;
                    }
                    name.push(inner);
                }
                if !closed {
                    return Err(format!("unclosed '{{' at character {}", position + 1));
                }
                names.push(name);
            }
            '}' => {
                return Err(format!(
                    "'}}' without '{{' at character {} (write '}}}}' for a literal brace)",
                    position + 1
                ));
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Replaces `{name}` with `values[name]`; unknown names stay as written, so a preview shows
/// what is missing. `{{`/`}}` become literal braces. Unbalanced braces are copied as they are.
pub fn render(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for inner in chars.by_ref() {
                    if inner == '}' {
                        closed = true;
                        break;
                    }
                    name.push(inner);
                }
                match values.get(&name) {
                    Some(value) if closed => out.push_str(value),
                    _ => {
                        out.push('{');
                        out.push_str(&name);
                        if closed {
                            out.push('}');
                        }
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_parsing_and_rendering() {
        assert_eq!(
            placeholders("Hi {first_name}, {{x}} {team}"),
            Ok(vec!["first_name".into(), "team".into()])
        );
        assert!(placeholders("{open").is_err());
        assert!(placeholders("close}").is_err());
        assert_eq!(placeholders("}}"), Ok(vec![]));
        let values: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(render("{a}-{b}-{{a}}-}}", &values), "1-{b}-{a}-}");
        assert_eq!(render("{a", &values), "{a");
        assert_eq!(render("ü{a}ß", &values), "ü1ß");
    }
}
