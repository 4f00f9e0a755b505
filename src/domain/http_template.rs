//! Templates of the HTTP connector: URL templates whose every value is percent-encoded and
//! JSON body templates whose every value is written as JSON (quoted and escaped), so a value
//! can never change the shape of a URL or a body. Checked at config time with line:col.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::diagnostic::FieldError;

/// Where a template's output goes, which decides how each value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateContext {
    /// A URL (path and query): values are percent-encoded.
    Url,
    /// A JSON body: values are written as JSON (`{{ username }}` → `"bjensen"`).
    Json,
}

/// Percent-encode everything but unreserved characters (RFC 3986).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn environment(context: TemplateContext) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A value as JSON text (for a query parameter that holds JSON, such as a filter); the
    // URL formatter then percent-encodes it like any other value.
    env.add_filter("tojson", |value: Value| -> Result<String, Error> {
        serde_json::to_string(&value)
            .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
    });
    match context {
        TemplateContext::Url => env.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Err(Error::new(ErrorKind::UndefinedError, "no value"));
            }
            let text = match value.as_str() {
                Some(s) => s.to_string(),
                None => value.to_string(),
            };
            out.write_str(&percent_encode(&text))
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        }),
        TemplateContext::Json => env.set_formatter(|out, _state, value| {
            if value.is_undefined() {
                return Err(Error::new(ErrorKind::UndefinedError, "no value"));
            }
            let json = serde_json::to_string(value)
                .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.write_str(&json)
                .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
        }),
    }
    env
}

/// 1-based (line, column) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

fn describe(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// Problems of template `text` at `field`: syntax (line:col inside the template) and
/// variables outside `allowed`.
pub fn check_template(
    field: &str,
    text: &str,
    context: TemplateContext,
    allowed: &BTreeSet<String>,
) -> Vec<FieldError> {
    let env = environment(context);
    let compiled = match env.template_from_str(text) {
        Ok(compiled) => compiled,
        Err(error) => {
            let (line, column) = match error.range() {
                Some(range) => position(text, range.start),
                None => (error.line().unwrap_or(1), 1),
            };
            return vec![FieldError::within(field, describe(&error), line, column)];
        }
    };
    let mut errors = Vec::new();
    for name in compiled.undeclared_variables(false) {
        if !allowed.contains(&name) {
            let (line, column) = text
                .find(name.as_str())
                .map_or((1, 1), |offset| position(text, offset));
            let mut known: Vec<&str> = allowed.iter().map(String::as_str).collect();
            known.sort_unstable();
            errors.push(FieldError::within(
                field,
                format!("unknown variable {name} (known: {})", known.join(", ")),
                line,
                column,
            ));
        }
    }
    errors
}

/// Render `text` with `vars` (a JSON object); a missing variable is an error naming it.
/// JSON bodies are parsed, so a body that is not JSON fails here and is never sent.
pub fn render(
    text: &str,
    context: TemplateContext,
    vars: &serde_json::Value,
) -> Result<String, String> {
    let env = environment(context);
    let compiled = env.template_from_str(text).map_err(|e| describe(&e))?;
    let out = compiled.render(Value::from_serialize(vars)).map_err(|e| {
        if e.kind() == ErrorKind::UndefinedError {
            let missing: Vec<String> = compiled
                .undeclared_variables(false)
                .into_iter()
                .filter(|name| vars.get(name).is_none_or(serde_json::Value::is_null))
                .collect();
            if !missing.is_empty() {
                return format!("no value for {}", missing.join(", "));
            }
        }
        describe(&e)
    })?;
    if context == TemplateContext::Json {
        serde_json::from_str::<serde_json::Value>(&out)
            .map_err(|e| format!("the rendered body is not JSON: {e}"))?;
    }
    Ok(out)
}

/// A JSON pointer (RFC 6901): empty (the whole document) or starting with `/`.
pub fn check_pointer(field: &str, pointer: &str) -> Option<FieldError> {
    (!pointer.is_empty() && !pointer.starts_with('/')).then(|| {
        FieldError::within(
            field,
            format!("\"{pointer}\" is not a JSON pointer (it starts with / or is empty)"),
            1,
            1,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn url_values_are_percent_encoded() {
        let out = render(
            "/users?username={{ username }}&exact=true",
            TemplateContext::Url,
            &json!({ "username": "a&b=c/../d é" }),
        )
        .expect("render");
        assert_eq!(
            out,
            "/users?username=a%26b%3Dc%2F..%2Fd%20%C3%A9&exact=true"
        );
    }

    #[test]
    fn json_values_are_quoted_and_escaped() {
        let out = render(
            r#"{"name": {{ full_name }}, "enabled": {{ not disabled }}}"#,
            TemplateContext::Json,
            &json!({ "full_name": "O'Brien \"Bobby\"\n", "disabled": false }),
        )
        .expect("render");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v, json!({ "name": "O'Brien \"Bobby\"\n", "enabled": true }));
    }

    #[test]
    fn tojson_builds_json_parameters_that_are_then_encoded() {
        let out = render(
            r#"/users?filters={{ [{"login": {"operator": "=", "values": [username]}}] | tojson }}"#,
            TemplateContext::Url,
            &json!({ "username": "a\"b" }),
        )
        .expect("render");
        let (_, encoded) = out.split_once('=').expect("param");
        assert!(!encoded.contains('"') && !encoded.contains('['), "{out}");
        assert_eq!(
            encoded,
            percent_encode(r#"[{"login":{"operator":"=","values":["a\"b"]}}]"#)
        );
    }

    #[test]
    fn missing_values_and_broken_bodies_are_errors() {
        let err = render("/u/{{ id }}", TemplateContext::Url, &json!({})).expect_err("missing");
        assert!(err.contains("no value for id"), "{err}");
        let err = render("{ {{ x }}", TemplateContext::Json, &json!({ "x": 1 })).expect_err("json");
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn checks_give_line_and_column() {
        let errors = check_template(
            "f",
            "{\n  \"a\": {{ username }\n}",
            TemplateContext::Json,
            &allowed(&["username"]),
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].within.map(|(line, _)| line), Some(2));
        let errors = check_template(
            "f",
            "/users/{{ nope }}",
            TemplateContext::Url,
            &allowed(&["id"]),
        );
        assert_eq!(errors[0].within, Some((1, 11)));
        assert!(errors[0].message.contains("unknown variable nope"));
        assert!(check_pointer("p", "/a/0").is_none());
        assert!(check_pointer("p", "a").is_some());
    }
}
