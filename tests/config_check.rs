//! `check_document` on every file in tests/bad_configs (exact line, column and field) and
//! tests/good_configs (all pass, and reference each other consistently).

use gatehouse::domain::config::{ConfigKind, check_document, check_references, load_document};
use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn toml_files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(name))
        .expect("directory exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// (file, line, column, field, a piece of the message)
const EXPECTED: &[(&str, usize, usize, &str, &str)] = &[
    (
        "bad_duration.toml",
        13,
        16,
        "stages[0].remind_after",
        "invalid duration \"two hours\"",
    ),
    (
        "duplicate_stage.toml",
        16,
        8,
        "stages[1].name",
        "duplicate stage name \"manager\"",
    ),
    (
        "http_body_template.toml",
        19,
        24,
        "http.operations.create_account.body",
        "syntax error",
    ),
    (
        "injected_grants_identifier.toml",
        17,
        15,
        "sql.grants.role_column",
        "is not a valid SQL identifier",
    ),
    (
        "invalid_sql_identifier.toml",
        9,
        9,
        "sql.table",
        "is not a valid SQL identifier",
    ),
    ("missing_kind.toml", 1, 1, "kind", "missing field `kind`"),
    (
        "notifier_bad_from.toml",
        7,
        8,
        "from",
        "is not an e-mail address",
    ),
    (
        "notifier_chat_alias_room.toml",
        13,
        8,
        "chat[1].room",
        "is not a room ID",
    ),
    (
        "notifier_plain_remote.toml",
        5,
        7,
        "tls",
        "only allowed for a loopback host",
    ),
    (
        "notifier_reply_plus_address.toml",
        7,
        17,
        "reply_address",
        "must not contain '+'",
    ),
    (
        "plaintext_password_in_url.toml",
        8,
        7,
        "sql.url",
        "password in plain text",
    ),
    (
        "plaintext_secret.toml",
        6,
        12,
        "password",
        "not in plain text",
    ),
    (
        "quorum_too_large.toml",
        12,
        10,
        "stages[0].policy",
        "quorum(3) needs more approvals than the 2 approver(s)",
    ),
    (
        "quorum_zero.toml",
        11,
        10,
        "stages[0].policy",
        "quorum(0) is not allowed",
    ),
    (
        "scim_without_credentials.toml",
        6,
        2,
        "scim",
        "needs `token`",
    ),
    (
        "stage_without_approvers.toml",
        9,
        1,
        "stages[0].approvers",
        "stage has no approvers",
    ),
    (
        "store_url_reference.toml",
        6,
        12,
        "password",
        "env:GATEHOUSE_DATABASE_URL is the store's own URL",
    ),
    ("syntax_error.toml", 3, 17, "name", "invalid basic string"),
    (
        "template_reason_in_welcome.toml",
        43,
        11,
        "notifications.welcome.subject",
        "reason has no value in the welcome notification",
    ),
    (
        "template_syntax.toml",
        46,
        30,
        "notifications.welcome.body",
        "syntax error",
    ),
    (
        "type_error.toml",
        5,
        8,
        "port",
        "invalid type: string \"nine-nine-three\", expected u16",
    ),
    (
        "unknown_approver_source.toml",
        12,
        30,
        "stages[0].approvers[1]",
        "unknown approver source \"alice\"",
    ),
    (
        "unknown_key.toml",
        13,
        1,
        "stages[0].approver",
        "unknown field `approver`",
    ),
];

#[test]
fn every_bad_config_fails_at_its_line_column_and_field() {
    let files = toml_files("bad_configs");
    let names: Vec<String> = files
        .iter()
        .map(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let expected_names: Vec<&str> = EXPECTED.iter().map(|(file, ..)| *file).collect();
    assert_eq!(
        names, expected_names,
        "every bad config has an expectation and vice versa"
    );

    for (file, line, column, field, message) in EXPECTED {
        let path = dir("bad_configs").join(file);
        let text = std::fs::read_to_string(&path).expect("readable");
        let label = format!("tests/bad_configs/{file}");
        let diagnostics = check_document(&label, &text).expect_err(&format!("{file} must fail"));
        assert_eq!(diagnostics.len(), 1, "{file}: {diagnostics:#?}");
        let diagnostic = &diagnostics[0];
        assert_eq!(
            (
                diagnostic.line,
                diagnostic.column,
                diagnostic.field.as_str()
            ),
            (*line, *column, *field),
            "{file}: {diagnostic}"
        );
        assert!(
            diagnostic.message.contains(message),
            "{file}: expected {message:?} in {:?}",
            diagnostic.message
        );
        let shown = diagnostic.to_string();
        assert!(
            shown.starts_with(&format!("{label}:{line}:{column}: {field}: ")),
            "{shown}"
        );
        assert!(!shown.contains("Winter2026"), "a secret leaked: {shown}");
    }
}

#[test]
fn every_good_config_passes_and_references_resolve() {
    let files = toml_files("good_configs");
    assert!(files.len() >= 7, "{files:?}");
    let documents: Vec<_> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("readable");
            let label = path.display().to_string();
            load_document(&label, &text).unwrap_or_else(|errors| {
                panic!(
                    "{label} should pass:\n{}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
        })
        .collect();
    let mut kinds: Vec<ConfigKind> = documents.iter().map(|d| d.document.kind()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ConfigKind::ALL.to_vec(),
        "every kind has a good example"
    );
    let problems = check_references(&documents);
    assert!(problems.is_empty(), "{problems:#?}");
}
