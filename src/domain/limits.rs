//! Input limits: the longest text each field accepts, and no NUL anywhere.
//!
//! The store checks every text a command writes against these limits before any SQL runs, so
//! both backends refuse the same input with the same message (PostgreSQL rejects NUL in `text`
//! while SQLite stores it; neither bounds a length on its own). Lengths of people-facing text
//! are counted in characters (Unicode scalar values); documents and whole payloads in bytes.
//! Errors name the field, the limit and the actual length, never the value itself (it may be
//! huge, or a secret pasted in the wrong place).

use serde_json::{Map, Value};
use thiserror::Error;

/// Longest full name of a person (`subject_name`), in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest e-mail address, in characters (the SMTP path limit of RFC 5321 is 254).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest username, in characters (above every target system's own limit that we ship).
pub const MAX_USERNAME_CHARS: usize = 64;
/// Longest operator name or requester, in characters (login names are at most 32 on Linux;
/// directory principals such as `user@example.com` need more).
pub const MAX_OPERATOR_CHARS: usize = 128;
/// Longest workflow, kind or source name on a request, in characters.
pub const MAX_LABEL_CHARS: usize = 128;
/// Longest reason for a rejection or a cancellation, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;
/// Longest comment on a saved configuration version, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// Longest configuration document (TOML body), in bytes.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;
/// Longest configuration document name, in characters.
pub const MAX_CONFIG_NAME_CHARS: usize = 128;
/// Most fields in a request payload (top-level keys).
pub const MAX_PAYLOAD_FIELDS: usize = 64;
/// Longest payload field key, in characters.
pub const MAX_FIELD_KEY_CHARS: usize = 64;
/// Longest payload string value (at any depth), in characters.
pub const MAX_FIELD_VALUE_CHARS: usize = 4_000;
/// Deepest nesting of arrays and objects inside a payload.
pub const MAX_PAYLOAD_DEPTH: usize = 8;
/// Largest whole payload, serialised as JSON, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// The unit a limit is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Unicode scalar values.
    Chars,
    /// UTF-8 bytes.
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Chars => "characters",
            Unit::Bytes => "bytes",
        }
    }
}

/// Why an input was refused. `field` is the field's name as the store and the CLI call it
/// (`subject_name`, `reason`, `payload.team`, `payload.groups[2]`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimitError {
    /// The text is longer than the limit.
    #[error("{field} is {actual} {} long; the limit is {limit}", unit.name())]
    TooLong {
        /// Which field.
        field: String,
        /// The limit.
        limit: usize,
        /// The actual length.
        actual: usize,
        /// What the lengths count.
        unit: Unit,
    },
    /// The text contains a NUL character.
    #[error("{field} contains a NUL byte (character {position}); NUL is not allowed in any text")]
    Nul {
        /// Which field.
        field: String,
        /// 1-based character position of the first NUL.
        position: usize,
    },
    /// An object has more entries than allowed.
    #[error("{field} has {actual} fields; the limit is {limit}")]
    TooMany {
        /// Which field.
        field: String,
        /// The limit.
        limit: usize,
        /// The actual count.
        actual: usize,
    },
    /// Arrays and objects are nested deeper than allowed.
    #[error("{field} is nested deeper than {limit} levels")]
    TooDeep {
        /// The first field found too deep.
        field: String,
        /// The limit.
        limit: usize,
    },
}

impl LimitError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            LimitError::TooLong { field, .. }
            | LimitError::Nul { field, .. }
            | LimitError::TooMany { field, .. }
            | LimitError::TooDeep { field, .. } => field,
        }
    }
}

/// Refuses a NUL character anywhere in `value`.
pub fn check_no_nul(field: &str, value: &str) -> Result<(), LimitError> {
    match value.chars().position(|c| c == '\0') {
        Some(i) => Err(LimitError::Nul {
            field: field.to_string(),
            position: i + 1,
        }),
        None => Ok(()),
    }
}

/// Refuses NUL and text longer than `max_chars` characters.
pub fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), LimitError> {
    check_no_nul(field, value)?;
    // Bytes bound characters from above: skip counting when the text is obviously short.
    if value.len() > max_chars {
        let actual = value.chars().count();
        if actual > max_chars {
            return Err(LimitError::TooLong {
                field: field.to_string(),
                limit: max_chars,
                actual,
                unit: Unit::Chars,
            });
        }
    }
    Ok(())
}

/// Like [`check_text`] for an optional field: `None` passes.
pub fn check_opt_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<(), LimitError> {
    value.map_or(Ok(()), |v| check_text(field, v, max_chars))
}

/// A person's full name (`subject_name`).
pub fn check_subject_name(value: &str) -> Result<(), LimitError> {
    check_text("subject_name", value, MAX_NAME_CHARS)
}

/// A person's e-mail address (`subject_email`).
pub fn check_email(value: &str) -> Result<(), LimitError> {
    check_text("subject_email", value, MAX_EMAIL_CHARS)
}

/// An account name (`username`).
pub fn check_username(value: &str) -> Result<(), LimitError> {
    check_text("username", value, MAX_USERNAME_CHARS)
}

/// An operator's name (`operator`, for `set_operator`) or a requester (`requester`).
pub fn check_operator_name(field: &str, value: &str) -> Result<(), LimitError> {
    check_text(field, value, MAX_OPERATOR_CHARS)
}

/// A short label such as a workflow, kind, source or role name.
pub fn check_label(field: &str, value: &str) -> Result<(), LimitError> {
    check_text(field, value, MAX_LABEL_CHARS)
}

/// A rejection or cancellation reason (`reason`); `None` passes.
pub fn check_reason(value: Option<&str>) -> Result<(), LimitError> {
    check_opt_text("reason", value, MAX_REASON_CHARS)
}

/// A configuration version's comment (`comment`).
pub fn check_comment(value: &str) -> Result<(), LimitError> {
    check_text("comment", value, MAX_COMMENT_CHARS)
}

/// A configuration document: its name (`name`) and TOML body (`body`, limited in bytes).
pub fn check_config(name: &str, body: &str) -> Result<(), LimitError> {
    check_text("name", name, MAX_CONFIG_NAME_CHARS)?;
    check_no_nul("body", body)?;
    if body.len() > MAX_CONFIG_BYTES {
        return Err(LimitError::TooLong {
            field: "body".into(),
            limit: MAX_CONFIG_BYTES,
            actual: body.len(),
            unit: Unit::Bytes,
        });
    }
    Ok(())
}

/// Payload fields (the `--field KEY=VALUE`s of a request or a triage fix): at most
/// [`MAX_PAYLOAD_FIELDS`] keys, each key and every string inside within its limit, nesting at
/// most [`MAX_PAYLOAD_DEPTH`] deep, [`MAX_PAYLOAD_BYTES`] in all, no NUL anywhere.
pub fn check_fields(fields: &Map<String, Value>) -> Result<(), LimitError> {
    if fields.len() > MAX_PAYLOAD_FIELDS {
        return Err(LimitError::TooMany {
            field: "payload".into(),
            limit: MAX_PAYLOAD_FIELDS,
            actual: fields.len(),
        });
    }
    let mut path = String::from("payload");
    check_object(&mut path, fields, 1)?;
    let bytes = serde_json::to_string(fields).map_or(0, |s| s.len());
    if bytes > MAX_PAYLOAD_BYTES {
        return Err(LimitError::TooLong {
            field: "payload".into(),
            limit: MAX_PAYLOAD_BYTES,
            actual: bytes,
            unit: Unit::Bytes,
        });
    }
    Ok(())
}

/// A whole request payload: an object is checked as [`check_fields`]; any other JSON value is
/// checked as a single field named `payload`.
pub fn check_payload(payload: &Value) -> Result<(), LimitError> {
    match payload {
        Value::Object(map) => check_fields(map),
        other => {
            let mut path = String::from("payload");
            check_value(&mut path, other, 0)?;
            let bytes = serde_json::to_string(other).map_or(0, |s| s.len());
            if bytes > MAX_PAYLOAD_BYTES {
                return Err(LimitError::TooLong {
                    field: "payload".into(),
                    limit: MAX_PAYLOAD_BYTES,
                    actual: bytes,
                    unit: Unit::Bytes,
                });
            }
            Ok(())
        }
    }
}

fn check_object(
    path: &mut String,
    map: &Map<String, Value>,
    depth: usize,
) -> Result<(), LimitError> {
    if depth > MAX_PAYLOAD_DEPTH {
        return Err(LimitError::TooDeep {
            field: path.clone(),
            limit: MAX_PAYLOAD_DEPTH,
        });
    }
    for (key, value) in map {
        let len = path.len();
        path.push('.');
        // The key is named by its position, not its text: the text is what is wrong.
        check_text(&format!("{path}<key>"), key, MAX_FIELD_KEY_CHARS)?;
        path.push_str(key);
        check_value(path, value, depth)?;
        path.truncate(len);
    }
    Ok(())
}

fn check_value(path: &mut String, value: &Value, depth: usize) -> Result<(), LimitError> {
    match value {
        Value::String(s) => check_text(path, s, MAX_FIELD_VALUE_CHARS),
        Value::Object(map) => check_object(path, map, depth + 1),
        Value::Array(items) => {
            if depth + 1 > MAX_PAYLOAD_DEPTH {
                return Err(LimitError::TooDeep {
                    field: path.clone(),
                    limit: MAX_PAYLOAD_DEPTH,
                });
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_value(path, item, depth + 1)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Every text field of a new request or a triage fix, in the order a form shows them. `None`
/// fields are not being set and pass.
pub fn check_request_fields(
    subject_name: Option<&str>,
    subject_email: Option<&str>,
    username: Option<&str>,
    fields: &Map<String, Value>,
) -> Result<(), LimitError> {
    if let Some(name) = subject_name {
        check_subject_name(name)?;
    }
    if let Some(email) = subject_email {
        check_email(email)?;
    }
    if let Some(username) = username {
        check_username(username)?;
    }
    check_fields(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn text_at_the_limit_passes_and_one_more_fails() {
        let ok = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(check_subject_name(&ok), Ok(()), "counted in characters");
        let long = "é".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            check_subject_name(&long),
            Err(LimitError::TooLong {
                field: "subject_name".into(),
                limit: MAX_NAME_CHARS,
                actual: MAX_NAME_CHARS + 1,
                unit: Unit::Chars,
            })
        );
        assert_eq!(check_subject_name(""), Ok(()));
    }

    #[test]
    fn each_field_has_its_limit_and_name() {
        type Check = fn(&str) -> Result<(), LimitError>;
        let cases: [(Check, &str, usize); 7] = [
            (check_subject_name, "subject_name", MAX_NAME_CHARS),
            (check_email, "subject_email", MAX_EMAIL_CHARS),
            (check_username, "username", MAX_USERNAME_CHARS),
            (|v| check_reason(Some(v)), "reason", MAX_REASON_CHARS),
            (check_comment, "comment", MAX_COMMENT_CHARS),
            (
                |v| check_operator_name("operator", v),
                "operator",
                MAX_OPERATOR_CHARS,
            ),
            (|v| check_label("workflow", v), "workflow", MAX_LABEL_CHARS),
        ];
        for (check, field, limit) in cases {
            assert_eq!(check(&"a".repeat(limit)), Ok(()), "{field}");
            let error = check(&"a".repeat(limit + 1)).expect_err(field);
            assert_eq!(error.field(), field);
            assert_eq!(
                error.to_string(),
                format!(
                    "{field} is {} characters long; the limit is {limit}",
                    limit + 1
                )
            );
            let error = check("a\0b").expect_err(field);
            assert_eq!(error.field(), field);
        }
        assert_eq!(check_reason(None), Ok(()));
        assert_eq!(check_opt_text("x", None, 0), Ok(()));
    }

    #[test]
    fn nul_is_refused_with_its_position() {
        let error = check_subject_name("Ann\0e").expect_err("nul");
        assert_eq!(
            error,
            LimitError::Nul {
                field: "subject_name".into(),
                position: 4
            }
        );
        assert_eq!(
            error.to_string(),
            "subject_name contains a NUL byte (character 4); NUL is not allowed in any text"
        );
        assert!(check_no_nul("x", "\0").is_err());
        assert_eq!(check_no_nul("x", "no nul \u{1} here"), Ok(()));
        // NUL wins over length so the message names the real problem.
        assert!(matches!(
            check_text("x", &format!("\0{}", "a".repeat(10)), 3),
            Err(LimitError::Nul { .. })
        ));
    }

    #[test]
    fn config_body_is_counted_in_bytes() {
        let body = "a".repeat(MAX_CONFIG_BYTES);
        assert_eq!(check_config("joiner-std", &body), Ok(()));
        let error = check_config("joiner-std", &format!("{body}é")).expect_err("long");
        assert_eq!(
            error,
            LimitError::TooLong {
                field: "body".into(),
                limit: MAX_CONFIG_BYTES,
                actual: MAX_CONFIG_BYTES + 2,
                unit: Unit::Bytes,
            }
        );
        assert!(
            error
                .to_string()
                .ends_with("bytes long; the limit is 262144")
        );
        assert_eq!(
            check_config("w", "a = 1\0").expect_err("nul").field(),
            "body"
        );
        assert_eq!(
            check_config(&"n".repeat(MAX_CONFIG_NAME_CHARS + 1), "")
                .expect_err("name")
                .field(),
            "name"
        );
    }

    #[test]
    fn payload_fields_are_counted_and_named() {
        let ok = map(json!({"team": "sales", "start": "2026-01-05", "n": 3, "flag": true}));
        assert_eq!(check_fields(&ok), Ok(()));
        let many: Map<String, Value> = (0..=MAX_PAYLOAD_FIELDS)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        assert_eq!(
            check_fields(&many),
            Err(LimitError::TooMany {
                field: "payload".into(),
                limit: MAX_PAYLOAD_FIELDS,
                actual: MAX_PAYLOAD_FIELDS + 1
            })
        );
        let at_limit: Map<String, Value> = (0..MAX_PAYLOAD_FIELDS)
            .map(|i| (format!("k{i}"), Value::from(i)))
            .collect();
        assert_eq!(check_fields(&at_limit), Ok(()));
    }

    #[test]
    fn payload_keys_and_values_have_limits_and_no_nul() {
        let long_value = map(json!({"team": "x".repeat(MAX_FIELD_VALUE_CHARS + 1)}));
        let error = check_fields(&long_value).expect_err("long value");
        assert_eq!(error.field(), "payload.team");
        let long_key = map(json!({"k".repeat(MAX_FIELD_KEY_CHARS + 1): 1}));
        assert_eq!(
            check_fields(&long_key).expect_err("long key").field(),
            "payload.<key>"
        );
        let nul_key = map(json!({"a\u{0}b": 1}));
        assert!(matches!(
            check_fields(&nul_key),
            Err(LimitError::Nul { .. })
        ));
        let nested = map(json!({"groups": ["ok", "bad\u{0}"]}));
        assert_eq!(
            check_fields(&nested).expect_err("nested nul"),
            LimitError::Nul {
                field: "payload.groups[1]".into(),
                position: 4
            }
        );
        let deep_ok = map(json!({"a": {"b": "c"}}));
        assert_eq!(check_fields(&deep_ok), Ok(()));
        let deep_key = map(json!({"a": {"b\u{0}": 1}}));
        assert_eq!(
            check_fields(&deep_key).expect_err("nested key").field(),
            "payload.a.<key>"
        );
    }

    #[test]
    fn payload_depth_and_size_are_bounded() {
        let mut value = json!("leaf");
        for _ in 0..MAX_PAYLOAD_DEPTH {
            value = json!([value]);
        }
        let at_limit = map(json!({ "x": value.clone() }));
        assert!(matches!(
            check_fields(&at_limit),
            Err(LimitError::TooDeep { .. })
        ));
        let mut shallow = json!("leaf");
        for _ in 0..MAX_PAYLOAD_DEPTH - 1 {
            shallow = json!([shallow]);
        }
        assert_eq!(check_fields(&map(json!({ "x": shallow }))), Ok(()));
        // The payload itself is level 1; eight objects inside it make nine levels.
        let mut objects = json!(1);
        for _ in 0..=MAX_PAYLOAD_DEPTH {
            objects = json!({ "o": objects });
        }
        let error = check_fields(&map(objects)).expect_err("deep objects");
        assert!(error.to_string().contains("nested deeper than 8 levels"));

        let big: Map<String, Value> = (0..MAX_PAYLOAD_FIELDS)
            .map(|i| {
                (
                    format!("k{i}"),
                    Value::from("v".repeat(MAX_FIELD_VALUE_CHARS)),
                )
            })
            .collect();
        let error = check_fields(&big).expect_err("too big");
        assert!(matches!(
            error,
            LimitError::TooLong {
                unit: Unit::Bytes,
                limit: MAX_PAYLOAD_BYTES,
                ..
            }
        ));
    }

    #[test]
    fn whole_payloads_of_any_shape() {
        assert_eq!(check_payload(&json!({"team": "sales"})), Ok(()));
        assert_eq!(check_payload(&json!(null)), Ok(()));
        assert_eq!(
            check_payload(&json!("a\u{0}")).expect_err("nul").field(),
            "payload"
        );
        assert_eq!(
            check_payload(&json!(["ok", "a\u{0}"]))
                .expect_err("nul")
                .field(),
            "payload[1]"
        );
        let big = Value::from("v".repeat(MAX_PAYLOAD_BYTES));
        assert!(matches!(
            check_payload(&json!([big])),
            Err(LimitError::TooLong { .. })
        ));
    }

    #[test]
    fn request_fields_check_what_is_set() {
        let none = Map::new();
        assert_eq!(check_request_fields(None, None, None, &none), Ok(()));
        assert_eq!(
            check_request_fields(
                Some("Ann Lee"),
                Some("ann@example.com"),
                Some("alee"),
                &none
            ),
            Ok(())
        );
        let long_user = "u".repeat(MAX_USERNAME_CHARS + 1);
        assert_eq!(
            check_request_fields(Some("Ann"), None, Some(&long_user), &none)
                .expect_err("username")
                .field(),
            "username"
        );
        assert_eq!(
            check_request_fields(None, Some("a\0@b"), None, &none)
                .expect_err("email")
                .field(),
            "subject_email"
        );
        assert_eq!(
            check_request_fields(Some("\0"), None, None, &none)
                .expect_err("name")
                .field(),
            "subject_name"
        );
        let fields = map(json!({"team": "\u{0}"}));
        assert_eq!(
            check_request_fields(None, None, None, &fields)
                .expect_err("field")
                .field(),
            "payload.team"
        );
    }
}
