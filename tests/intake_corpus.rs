//! The hostile and broken mail corpus (`tests/mail_corpus/`): every message is parsed and
//! classified by the rules alone without a panic, ends in the verdict `expected.toml` names,
//! and carries a non-empty reason visible in the serialized `Classified`. A 10 MB message is
//! generated here rather than committed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use gatehouse::domain::config::{DateOrder, RuleSettings, UnknownSender};
use gatehouse::domain::intake::{Classified, MAX_KEPT_TEXT, Verdict};
use gatehouse::intake::classify::Classifier;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    verdict: String,
    reason: String,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mail_corpus")
}

fn settings() -> RuleSettings {
    RuleSettings {
        allowed_domains: vec!["example.com".into()],
        unknown_sender: UnknownSender::Triage,
        known_teams: ["Platform", "Data", "Sales", "Finance", "Engineering"]
            .map(String::from)
            .to_vec(),
        date_order: DateOrder::Dmy,
        ..Default::default()
    }
}

fn classifier(settings: RuleSettings) -> Classifier {
    Classifier::new(settings, None).with_today(NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"))
}

fn reason_of(classified: &Classified) -> &str {
    match &classified.verdict {
        Verdict::Request { .. } => "",
        Verdict::Triage { reason, .. }
        | Verdict::Ignored { reason }
        | Verdict::Quarantined { reason } => reason,
    }
}

#[test]
fn every_corpus_message_ends_in_its_expected_verdict_with_a_reason() {
    let manifest = std::fs::read_to_string(corpus_dir().join("expected.toml")).expect("manifest");
    let expected: BTreeMap<String, Expected> = toml::from_str(&manifest).expect("manifest parses");
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "the corpus has {} messages", files.len());
    let listed: Vec<&String> = expected.keys().collect();
    assert_eq!(
        listed,
        files.iter().collect::<Vec<_>>(),
        "manifest and corpus differ"
    );

    let classifier = classifier(settings());
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for file in &files {
        let raw = std::fs::read(corpus_dir().join(file)).expect("read");
        let classified = classifier.classify_rules(&classifier.parse(&raw));
        let json = serde_json::to_string(&classified).expect("serialises");
        let want = &expected[file];
        let name = classified.verdict.name();
        if std::env::var_os("GATEHOUSE_CORPUS_PRINT").is_some() {
            // A table of what was decided, for looking at the corpus by eye.
            eprintln!(
                "{file:40} {name:12} {} {:?}",
                reason_of(&classified),
                classified.mail.problems
            );
        }
        *counts.entry(name).or_default() += 1;
        if name != want.verdict {
            failures.push(format!(
                "{file}: expected {}, got {name} ({})",
                want.verdict,
                reason_of(&classified)
            ));
            continue;
        }
        let reason = reason_of(&classified);
        if name == "request" {
            let Verdict::Request { draft } = &classified.verdict else {
                unreachable!()
            };
            assert!(
                !draft.subject_name.is_empty(),
                "{file}: a request without a name"
            );
            if !json.contains(&want.reason) {
                failures.push(format!("{file}: \"{}\" not in {json}", want.reason));
            }
        } else {
            assert!(!reason.trim().is_empty(), "{file}: empty reason");
            assert!(json.contains("\"reason\":"), "{file}: no reason in {json}");
            if !reason.contains(&want.reason) {
                failures.push(format!(
                    "{file}: \"{}\" not in reason \"{reason}\"",
                    want.reason
                ));
            }
        }
        // Every classification keeps its rules' evidence and bounded text.
        assert!(
            !classified.evidence.rules.is_empty(),
            "{file}: no rule evidence"
        );
        assert_eq!(classified.evidence.mode, "rules", "{file}");
        assert!(classified.mail.new_text.len() <= MAX_KEPT_TEXT, "{file}");
        assert!(!json.contains("\\u0000"), "{file}: a NUL survived");
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for verdict in ["request", "triage", "ignored", "quarantined"] {
        assert!(counts.get(verdict).copied().unwrap_or(0) >= 5, "{counts:?}");
    }
}

#[test]
fn duplicate_message_ids_are_read_alike() {
    let classifier = classifier(settings());
    let ids: Vec<Option<String>> = ["duplicate_message_id_a.eml", "duplicate_message_id_b.eml"]
        .iter()
        .map(|file| {
            let raw = std::fs::read(corpus_dir().join(file)).expect("read");
            classifier.parse(&raw).message_id
        })
        .collect();
    assert_eq!(ids[0].as_deref(), Some("dup-1@mail.example.com"));
    assert_eq!(ids[0], ids[1]);
}

fn ten_megabytes() -> Vec<u8> {
    let mut raw = b"From: Bob Boss <boss@example.com>\r\nTo: hr@example.com\r\nSubject: New starter\r\nMessage-ID: <big-1@mail.example.com>\r\nContent-Type: text/plain\r\n\r\nPlease onboard Ada Lovelace.\r\nEmail: ada.lovelace@example.com\r\nStart date: 2026-12-14\r\n".to_vec();
    let line = b"filler filler filler filler filler filler filler filler filler filler\r\n";
    while raw.len() < 10 * 1024 * 1024 {
        raw.extend_from_slice(line);
    }
    raw
}

#[test]
fn a_ten_megabyte_body_is_read_and_cut_with_a_reason() {
    let raw = ten_megabytes();
    let classifier = classifier(settings());
    let started = std::time::Instant::now();
    let classified = classifier.classify_rules(&classifier.parse(&raw));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        classified.verdict.name(),
        "request",
        "{:?}",
        classified.verdict
    );
    assert_eq!(classified.mail.size, raw.len() as u64);
    assert!(classified.mail.new_text.len() <= MAX_KEPT_TEXT);
    assert!(
        classified
            .mail
            .problems
            .iter()
            .any(|p| p.contains("cut at")),
        "{:?}",
        classified.mail.problems
    );
}

#[test]
fn a_message_over_the_size_limit_is_read_from_headers_only_and_triaged() {
    let raw = ten_megabytes();
    let classifier = classifier(RuleSettings {
        max_message_bytes: Some(5 * 1024 * 1024),
        ..settings()
    });
    let classified = classifier.classify_rules(&classifier.parse(&raw));
    assert!(classified.mail.new_text.is_empty());
    assert!(classified.mail.problems[0].contains("over the limit of 5242880 bytes"));
    let Verdict::Triage { reason, .. } = &classified.verdict else {
        panic!("{:?}", classified.verdict);
    };
    assert!(reason.contains("no person's name"), "{reason}");
    let json = serde_json::to_string(&classified).expect("serialises");
    assert!(json.contains("read from its headers only"));
}
