//! Helpers for intake tests: classified messages built by hand and onboarding e-mails as raw
//! bytes (which `gatehouse::intake::stand_in::StandInClassifier`, the deterministic test
//! classifier, turns into requests).
#![allow(dead_code)]

use gatehouse::domain::intake::{Classified, Evidence, MailSummary, RequestDraft, Verdict};

/// A message summary with a Message-ID and a subject.
pub fn mail(message_id: Option<&str>, subject: &str) -> MailSummary {
    MailSummary {
        message_id: message_id.map(str::to_string),
        from: Some("boss@example.com".into()),
        subject: subject.into(),
        new_text: "Please onboard.".into(),
        size: 100,
        ..MailSummary::default()
    }
}

/// A joiner draft for `name`.
pub fn draft(name: &str) -> RequestDraft {
    let mut fields = serde_json::Map::new();
    fields.insert("team".into(), "ops".into());
    RequestDraft {
        kind: "joiner".into(),
        subject_name: name.into(),
        subject_email: Some(format!(
            "{}@example.com",
            name.to_lowercase().replace(' ', ".")
        )),
        username: None,
        requester: "boss@example.com".into(),
        fields,
    }
}

/// Evidence saying the test classifier decided.
pub fn evidence(rule: &str, outcome: &str) -> Evidence {
    Evidence {
        mode: "rules".into(),
        intent: Some("onboard".into()),
        rules: vec![gatehouse::domain::intake::RuleVerdict {
            rule: rule.into(),
            outcome: outcome.into(),
            detail: "test classifier".into(),
        }],
        ..Evidence::default()
    }
}

/// A classified message.
pub fn classified(message_id: Option<&str>, verdict: Verdict) -> Classified {
    Classified {
        mail: mail(message_id, "test"),
        verdict,
        evidence: evidence("test_subject", "pass"),
    }
}

/// A raw onboarding e-mail the rules turn into a request (or one to triage: the test
/// names carry digits).
pub fn onboarding_mail(i: usize, tag: &str) -> Vec<u8> {
    format!(
        "From: Priya Natarajan <priya.natarajan@example.com>\r\n\
         To: onboarding@example.com\r\n\
         Subject: Onboard: Person{i} Test{tag} <person{i}.{tag}@example.com>\r\n\
         Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n\
         Message-ID: <{tag}.{i}@mail.example.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Please onboard Person{i} Test{tag} to the ops team.\r\n"
    )
    .into_bytes()
}

pub mod dovecot;
