//! The classifier: one raw message in, one [`Classified`] out, never an error. The rules screen
//! first (injection → quarantined; automatic, no-reply, out-of-office and approval replies →
//! ignored; unknown senders → triage or ignored), then the model (when configured and
//! reachable) extracts, then the rules check the result. Disagreement between rules and model,
//! low confidence or a failed check → triage with the reason; without a model the rules decide
//! alone and the evidence says why.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::domain::config::{LlmSettings, RuleSettings};
use crate::domain::intake::{
    Classified, Evidence, MailSummary, RequestDraft, RuleVerdict, Verdict,
};
use crate::domain::limits::{
    MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_OPERATOR_CHARS, MAX_REASON_CHARS, MAX_USERNAME_CHARS,
};
use crate::intake::extract::Extraction;
use crate::intake::llm::{LlmClient, LlmError, LlmFailure, ModelReply};
use crate::intake::parse;
use crate::intake::rules::{self, Gate, Intent};
use crate::intake::text;

/// Classifies messages with the rules and, when configured, a model.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: RuleSettings,
    llm: Option<Arc<LlmClient>>,
    today: Option<NaiveDate>,
}

/// What came of asking the model.
enum ModelOutcome {
    /// No model configured.
    NotConfigured,
    /// A model is configured, but the rules decided first.
    NotAsked(&'static str),
    /// A checked answer.
    Reply(ModelReply),
    /// No usable answer.
    Failed(LlmFailure),
}

fn verdict(rule: &str, outcome: &str, detail: impl Into<String>) -> RuleVerdict {
    RuleVerdict {
        rule: rule.to_string(),
        outcome: outcome.to_string(),
        detail: text::bounded(&detail.into(), 500),
    }
}

fn reason(text: &str) -> String {
    text::bounded(text, MAX_REASON_CHARS - 1)
}

/// Builds the draft a request (or a triage) starts from. Requester is the sender.
pub fn draft(kind: &str, found: &Extraction, mail: &MailSummary) -> RequestDraft {
    let mut fields = Map::new();
    for (key, value) in [
        ("team", &found.team),
        ("role", &found.role),
        ("manager", &found.manager),
    ] {
        if let Some(value) = value {
            fields.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(date) = found.date {
        let key = if kind == "leaver" {
            "end_date"
        } else {
            "start_date"
        };
        fields.insert(
            key.into(),
            Value::String(date.format("%Y-%m-%d").to_string()),
        );
    }
    // Bounded to the store's limits, so that even a draft a person must fix can be recorded.
    let cut =
        |value: &Option<String>, max: usize| value.as_deref().map(|v| text::bounded(v, max - 1));
    RequestDraft {
        kind: kind.to_string(),
        subject_name: cut(&found.name, MAX_NAME_CHARS).unwrap_or_default(),
        subject_email: cut(&found.email, MAX_EMAIL_CHARS),
        username: cut(&found.username, MAX_USERNAME_CHARS),
        requester: text::bounded(mail.from.as_deref().unwrap_or(""), MAX_OPERATOR_CHARS - 1),
        fields,
    }
}

fn same(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

/// Merges the rules' and the model's fields: the rules' value wins, the model fills gaps, and
/// every field where both gave different values is returned as a disagreement.
pub fn merge(rules: &Extraction, model: &Extraction) -> (Extraction, Vec<String>) {
    let mut disagreements = Vec::new();
    let mut pick = |field: &str, r: &Option<String>, m: &Option<String>| match (r, m) {
        (Some(r), Some(m)) => {
            if !same(r, m) {
                disagreements.push(format!("{field} (rules: {r}, model: {m})"));
            }
            Some(r.clone())
        }
        (Some(v), None) | (None, Some(v)) => Some(v.clone()),
        (None, None) => None,
    };
    let merged = Extraction {
        name: pick("name", &rules.name, &model.name),
        email: pick("email", &rules.email, &model.email),
        username: pick("username", &rules.username, &model.username),
        team: pick("team", &rules.team, &model.team),
        role: pick("role", &rules.role, &model.role),
        manager: pick("manager", &rules.manager, &model.manager),
        date: rules.date.or(model.date),
        unparsed_date: if rules.date.is_some() || model.date.is_some() {
            None
        } else {
            rules
                .unparsed_date
                .clone()
                .or_else(|| model.unparsed_date.clone())
        },
    };
    if let (Some(r), Some(m)) = (rules.date, model.date)
        && r != m
    {
        disagreements.push(format!("date (rules: {r}, model: {m})"));
    }
    (merged, disagreements)
}

impl Classifier {
    /// A classifier with these rules and, optionally, a model client.
    pub fn new(rules: RuleSettings, llm: Option<LlmClient>) -> Self {
        Self {
            rules,
            llm: llm.map(Arc::new),
            today: None,
        }
    }

    /// A classifier from a mailbox's `[rules]` and `[llm]` settings.
    pub fn from_settings(
        rules: &RuleSettings,
        llm: Option<&LlmSettings>,
    ) -> Result<Self, LlmError> {
        let client = llm.map(LlmClient::new).transpose()?;
        Ok(Self::new(rules.clone(), client))
    }

    /// Fixes "today" for the date checks (tests, replays); the default is the UTC date now.
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    /// The model client, if one is configured.
    pub fn llm(&self) -> Option<&LlmClient> {
        self.llm.as_deref()
    }

    /// The rules' settings.
    pub fn rules(&self) -> &RuleSettings {
        &self.rules
    }

    /// Parses a raw message with this classifier's size limit.
    pub fn parse(&self, raw: &[u8]) -> MailSummary {
        parse::parse_with_limit(raw, self.rules.max_message_bytes())
    }

    fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    /// Parses and classifies a raw message: rules, then the model when configured. Never fails.
    pub async fn classify(&self, raw: &[u8]) -> Classified {
        self.classify_mail(self.parse(raw)).await
    }

    /// Classifies an already parsed message (rules, then the model when configured).
    pub async fn classify_mail(&self, mail: MailSummary) -> Classified {
        let screening = rules::screen(&mail, &self.rules);
        let outcome = match (&self.llm, &screening.gate) {
            (None, _) => ModelOutcome::NotConfigured,
            (Some(_), Some(Gate::Quarantine(_))) => {
                ModelOutcome::NotAsked("the rules quarantined it")
            }
            (Some(_), Some(Gate::Ignore(_))) => ModelOutcome::NotAsked("the rules ignored it"),
            (Some(_), Some(Gate::Triage(_))) => {
                ModelOutcome::NotAsked("the rules sent it to triage (unknown sender)")
            }
            (Some(client), None) => match client.extract(&mail).await {
                Ok(reply) => ModelOutcome::Reply(reply),
                Err(failure) => ModelOutcome::Failed(failure),
            },
        };
        self.decide(mail, screening, outcome)
    }

    /// Classifies with the rules alone (no model, no waiting), for callers that must not wait.
    pub fn classify_rules(&self, mail: &MailSummary) -> Classified {
        let screening = rules::screen(mail, &self.rules);
        let outcome = if self.llm.is_some() {
            ModelOutcome::NotAsked("rules-only classification was asked for")
        } else {
            ModelOutcome::NotConfigured
        };
        self.decide(mail.clone(), screening, outcome)
    }

    fn decide(
        &self,
        mail: MailSummary,
        screening: rules::Screening,
        outcome: ModelOutcome,
    ) -> Classified {
        let mut evidence = Evidence {
            mode: "rules".into(),
            rules: screening.verdicts,
            ..Default::default()
        };
        let reply = match outcome {
            ModelOutcome::NotConfigured => {
                evidence.model_error = Some("no model configured: the rules decided alone".into());
                None
            }
            ModelOutcome::NotAsked(why) => {
                evidence.model = self.llm.as_ref().map(|c| c.settings().model.clone());
                evidence.model_error = Some(format!("model not asked: {why}"));
                None
            }
            ModelOutcome::Failed(failure) => {
                let sent = !matches!(
                    failure.error,
                    LlmError::CircuitOpen { .. } | LlmError::Busy { .. }
                );
                evidence.model = Some(failure.model);
                evidence.prompt_hash = sent.then_some(failure.prompt_hash);
                evidence.raw_answer = failure.raw_answer;
                evidence.model_error = Some(format!("{}; the rules decided alone", failure.error));
                None
            }
            ModelOutcome::Reply(reply) => {
                evidence.mode = "rules+llm".into();
                evidence.model = Some(reply.model.clone());
                evidence.prompt_hash = Some(reply.prompt_hash.clone());
                evidence.raw_answer = Some(reply.raw_answer.clone());
                evidence.confidence = Some(reply.answer.confidence);
                Some(reply)
            }
        };
        let finish = |verdict: Verdict, evidence: Evidence| Classified {
            mail: mail.clone(),
            verdict,
            evidence,
        };
        match &screening.gate {
            Some(Gate::Quarantine(why)) => {
                return finish(
                    Verdict::Quarantined {
                        reason: reason(why),
                    },
                    evidence,
                );
            }
            Some(Gate::Ignore(why)) => {
                return finish(
                    Verdict::Ignored {
                        reason: reason(why),
                    },
                    evidence,
                );
            }
            _ => {}
        }
        let (keyword_intent, intent_verdict) = rules::keyword_intent(&mail);
        evidence.rules.push(intent_verdict.clone());
        let (rule_fields, fields_verdict) = rules::extract_fields(&mail, &self.rules);
        evidence.rules.push(fields_verdict);
        let mut problems: Vec<String> = Vec::new();
        if let Some(Gate::Triage(why)) = &screening.gate {
            problems.push(why.clone());
        }
        let (intent, mut found) = match &reply {
            None => {
                if keyword_intent.is_none() {
                    problems.push(format!(
                        "no request intent recognised ({})",
                        intent_verdict.detail
                    ));
                }
                (keyword_intent, rule_fields)
            }
            Some(reply) => {
                let model_intent = reply.answer.intent;
                if model_intent.request_kind().is_none() && keyword_intent.is_none() {
                    evidence.intent = Some(model_intent.as_str().into());
                    let why = match model_intent {
                        Intent::OutOfOffice => {
                            "the model reads it as an out-of-office or automatic reply".to_string()
                        }
                        Intent::ApprovalReply => {
                            "the model reads it as an approval reply without a token (decisions by mail go to the notifier's reply address)"
                                .to_string()
                        }
                        other => format!(
                            "the model reads it as {} and the rules found no request words",
                            other.as_str()
                        ),
                    };
                    evidence.rules.push(verdict(
                        "model_agreement",
                        "pass",
                        format!("model says {}", model_intent.as_str()),
                    ));
                    return finish(
                        Verdict::Ignored {
                            reason: reason(&why),
                        },
                        evidence,
                    );
                }
                match keyword_intent {
                    Some(rule_intent) if rule_intent != model_intent => {
                        let detail = format!(
                            "rules say {}, model says {}",
                            rule_intent.as_str(),
                            model_intent.as_str()
                        );
                        evidence
                            .rules
                            .push(verdict("model_agreement", "fail", &detail));
                        problems.push(format!("rules and model disagree: {detail}"));
                    }
                    _ => {}
                }
                let (merged, disagreements) = merge(&rule_fields, &reply.answer.extraction);
                if disagreements.is_empty() {
                    if keyword_intent.is_none_or(|i| i == model_intent) {
                        evidence.rules.push(verdict(
                            "model_agreement",
                            "pass",
                            format!("intent {} and every field agree", model_intent.as_str()),
                        ));
                    }
                } else {
                    let detail = disagreements.join("; ");
                    evidence
                        .rules
                        .push(verdict("model_fields", "fail", &detail));
                    problems.push(format!("rules and model disagree on {detail}"));
                }
                let min = self
                    .llm
                    .as_ref()
                    .map_or(0.0, |c| c.settings().min_confidence());
                let confidence = reply.answer.confidence;
                if confidence < min {
                    evidence.rules.push(verdict(
                        "model_confidence",
                        "fail",
                        format!("{confidence:.2} below {min:.2}"),
                    ));
                    problems.push(format!(
                        "model confidence {confidence:.2} is below the threshold {min:.2}"
                    ));
                } else {
                    evidence.rules.push(verdict(
                        "model_confidence",
                        "pass",
                        format!("{confidence:.2} at or above {min:.2}"),
                    ));
                }
                let intent = keyword_intent
                    .or(Some(model_intent))
                    .filter(|i| i.request_kind().is_some());
                (intent, merged)
            }
        };
        evidence.intent = intent.map(|i| i.as_str().to_string());
        let checks = rules::check(&mut found, &self.rules, self.today());
        if let Some(failed) = rules::failures(&checks) {
            problems.push(failed);
        }
        evidence.rules.extend(checks);
        let kind = intent.and_then(Intent::request_kind);
        let draft = draft(kind.unwrap_or("joiner"), &found, &mail);
        if kind.is_none() {
            problems.push("kind unknown (drafted as joiner)".into());
        }
        if problems.is_empty() {
            finish(Verdict::Request { draft }, evidence)
        } else {
            let why = problems.join("; ");
            finish(
                Verdict::Triage {
                    draft,
                    reason: reason(&why),
                },
                evidence,
            )
        }
    }
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
