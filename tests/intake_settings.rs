//! A mailbox's `[llm]` and `[rules]` settings: accepted when right, and every bad value
//! reported by `config check` with its file, line, column and field.

mod support;

use gatehouse::domain::config::{ConfigDocument, LlmApi, UnknownSender, check_document};
use support::*;

const GOOD: &str = r#"kind = "mailbox"
name = "hr-inbox"
host = "imap.example.com"
user = "hr@example.com"
password = "file:/run/secrets/hr-imap"
workflow = "onboarding"

[llm]
api = "ollama"
endpoint = "http://127.0.0.1:11434"
model = "llama3.2:3b"
api_key = "env:OLLAMA_KEY"
timeout = "20s"
retries = 2
max_concurrency = 4
min_confidence = 0.7

[rules]
allowed_domains = ["example.com"]
allowed_senders = ["boss@partner.example.org"]
unknown_sender = "ignore"
known_teams = ["Platform", "Data"]
date_order = "mdy"
max_message_bytes = 10485760
"#;

#[test]
fn good_settings_are_read() {
    let ConfigDocument::Mailbox(mailbox) = check_document("good.toml", GOOD).expect("valid") else {
        panic!("not a mailbox");
    };
    let llm = mailbox.llm.expect("llm settings");
    assert_eq!(llm.api, LlmApi::Ollama);
    assert_eq!(llm.retries(), 2);
    assert_eq!(llm.max_concurrency(), 4);
    assert_eq!(mailbox.rules.unknown_sender, UnknownSender::Ignore);
    assert_eq!(mailbox.rules.max_message_bytes(), 10_485_760);
    // Without the sections: no model, default rules.
    let bare = GOOD.split("\n[llm]").next().expect("head");
    let ConfigDocument::Mailbox(mailbox) = check_document("bare.toml", bare).expect("valid") else {
        panic!("not a mailbox");
    };
    assert!(mailbox.llm.is_none());
    assert!(mailbox.rules.allowed_domains.is_empty());
}

#[test]
fn bad_values_are_reported_with_their_field_and_place() {
    for (from, to, line, field, message) in [
        (
            "\"http://127.0.0.1:11434\"",
            "\"localhost:11434\"",
            10,
            "llm.endpoint",
            "is not an http(s) URL",
        ),
        (
            "min_confidence = 0.7",
            "min_confidence = 1.7",
            16,
            "llm.min_confidence",
            "between 0 and 1",
        ),
        (
            "max_concurrency = 4",
            "max_concurrency = 0",
            15,
            "llm.max_concurrency",
            "between 1 and 64",
        ),
        (
            "retries = 2",
            "retries = 9",
            14,
            "llm.retries",
            "between 0 and 5",
        ),
        (
            "\"example.com\"]",
            "\"not a domain\"]",
            19,
            "rules.allowed_domains[0]",
            "is not a domain name",
        ),
        (
            "\"boss@partner.example.org\"",
            "\"boss\"",
            20,
            "rules.allowed_senders[0]",
            "is not an e-mail address",
        ),
        (
            "max_message_bytes = 10485760",
            "max_message_bytes = 12",
            24,
            "rules.max_message_bytes",
            "between 1024",
        ),
    ] {
        let text = GOOD.replace(from, to);
        let errors = check_document("m.toml", &text).expect_err(field);
        assert_eq!(errors.len(), 1, "{field}: {errors:?}");
        let error = &errors[0];
        assert_eq!((error.line, error.field.as_str()), (line, field), "{error}");
        assert!(error.message.contains(message), "{error}");
    }
    for (from, to, field, message) in [
        (
            "api = \"ollama\"",
            "api = \"gemini\"",
            "llm.api",
            "unknown variant `gemini`",
        ),
        (
            "unknown_sender = \"ignore\"",
            "unknown_sender = \"drop\"",
            "rules.unknown_sender",
            "unknown variant `drop`",
        ),
        (
            "date_order = \"mdy\"",
            "date_order = \"ymd\"",
            "rules.date_order",
            "unknown variant `ymd`",
        ),
        (
            "api_key = \"env:OLLAMA_KEY\"",
            "api_key = \"sk-plaintext\"",
            "llm.api_key",
            "not in plain text",
        ),
        (
            "timeout = \"20s\"",
            "timeout = \"soon\"",
            "llm.timeout",
            "invalid duration",
        ),
        (
            "retries = 2",
            "retries = 2\nbogus = 1",
            "llm.bogus",
            "unknown field `bogus`",
        ),
    ] {
        let text = GOOD.replace(from, to);
        let errors = check_document("m.toml", &text).expect_err(field);
        let error = &errors[0];
        assert!(
            error
                .field
                .starts_with(field.split('.').next().unwrap_or(field))
                && error.message.contains(message),
            "{field}: {error}"
        );
        assert!(
            !error.to_string().contains("sk-plaintext"),
            "a secret leaked: {error}"
        );
    }
}

#[test]
fn config_check_names_the_bad_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path());
    let file = dir.path().join("inbox.toml");
    std::fs::write(
        &file,
        GOOD.replace("min_confidence = 0.7", "min_confidence = 3.0"),
    )
    .expect("write");
    let out = gatehouse(&url, &dir.path().join("cli.log"))
        .args(["config", "check", file.to_str().expect("utf-8")])
        .output()
        .expect("run gatehouse");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("inbox.toml:16:"), "{text}");
    assert!(
        text.contains("llm.min_confidence: must be a number between 0 and 1"),
        "{text}"
    );
}
