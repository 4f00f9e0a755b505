//! Settings of a mailbox's understanding of mail: the local model (`[llm]`) and the
//! deterministic rules (`[rules]`): known senders and teams, date order, message size limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::diagnostic::FieldError;
use crate::domain::secret::SecretRef;
use crate::domain::workflow::DurationSpec;

/// Which HTTP API the model server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmApi {
    /// OpenAI-compatible `/v1/chat/completions` (llama.cpp server, vLLM, Ollama's compatible endpoint).
    #[default]
    Openai,
    /// Ollama's native `/api/chat`.
    Ollama,
}

/// A local language model asked to extract a request from the new text of a message (`[llm]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `openai` (default) or `ollama`.
    #[serde(default)]
    pub api: LlmApi,
    /// Base URL of the server, e.g. `http://127.0.0.1:8080` (the API path is added).
    pub endpoint: String,
    /// Model name sent with each request.
    pub model: String,
    /// Optional API key reference (`env:NAME` or `file:/path`), sent as a bearer token.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// Time limit of one call (default 30s).
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Further attempts after a transient failure (default 1, at most 5).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Calls in flight at once (default 2, 1 to 64).
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Below this confidence (0 to 1) a message goes to triage (default 0.6).
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// Consecutive failed calls that open the circuit (default 3).
    #[serde(default)]
    pub breaker_failures: Option<u32>,
    /// How long an open circuit refuses calls before one trial call (default 60s).
    #[serde(default)]
    pub breaker_cooldown: Option<DurationSpec>,
}

impl LlmSettings {
    /// Time limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or(Duration::from_secs(30), |d| d.duration())
    }

    /// Further attempts after a transient failure.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(1).min(5)
    }

    /// Calls in flight at once.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency.unwrap_or(2).clamp(1, 64) as usize
    }

    /// Confidence threshold.
    pub fn min_confidence(&self) -> f64 {
        self.min_confidence
            .filter(|c| c.is_finite())
            .unwrap_or(0.6)
            .clamp(0.0, 1.0)
    }

    /// Failures before the circuit opens.
    pub fn breaker_failures(&self) -> u32 {
        self.breaker_failures.unwrap_or(3).max(1)
    }

    /// How long the circuit stays open.
    pub fn breaker_cooldown(&self) -> Duration {
        self.breaker_cooldown
            .map_or(Duration::from_secs(60), |d| d.duration())
    }

    /// Problems, by field path below `llm`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let endpoint = self.endpoint.trim();
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => errors.push(FieldError::new(
                "llm.endpoint",
                format!(
                    "\"{}\" is not an http(s) URL (e.g. \"http://127.0.0.1:8080\")",
                    self.endpoint
                ),
            )),
        }
        if self.model.trim().is_empty() {
            errors.push(FieldError::new("llm.model", "must not be empty"));
        } else if self.model.len() > 200 || self.model.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "llm.model",
                "must be at most 200 characters without control characters",
            ));
        }
        if self
            .timeout
            .is_some_and(|d| d.duration() > Duration::from_secs(600))
        {
            errors.push(FieldError::new("llm.timeout", "at most 10m"));
        }
        if self.retries.is_some_and(|n| n > 5) {
            errors.push(FieldError::new("llm.retries", "must be between 0 and 5"));
        }
        if self.max_concurrency.is_some_and(|n| n == 0 || n > 64) {
            errors.push(FieldError::new(
                "llm.max_concurrency",
                "must be between 1 and 64",
            ));
        }
        if self
            .min_confidence
            .is_some_and(|c| !c.is_finite() || !(0.0..=1.0).contains(&c))
        {
            errors.push(FieldError::new(
                "llm.min_confidence",
                "must be a number between 0 and 1",
            ));
        }
        if self.breaker_failures == Some(0) {
            errors.push(FieldError::new(
                "llm.breaker_failures",
                "must be at least 1",
            ));
        }
        if self
            .breaker_cooldown
            .is_some_and(|d| d.duration() > Duration::from_secs(3600))
        {
            errors.push(FieldError::new("llm.breaker_cooldown", "at most 1h"));
        }
        errors
    }
}

/// What happens to mail from a sender that is not on the allowed lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSender {
    /// A person looks at it (`needs_triage`).
    #[default]
    Triage,
    /// Nothing is done (recorded as ignored).
    Ignore,
}

/// How an all-numeric date such as `01/12/2026` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// Day first: 01/12/2026 is 1 December 2026.
    #[default]
    Dmy,
    /// Month first: 01/12/2026 is 12 January 2026.
    Mdy,
}

/// Default largest raw message read in full: 25 MB.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;

/// The deterministic rules run on every message (`[rules]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Sender addresses whose mail is trusted (case-insensitive).
    #[serde(default)]
    pub allowed_senders: Vec<String>,
    /// Sender domains whose mail is trusted (`example.com` also admits subdomains).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Mail from anyone else: `triage` (default) or `ignore`. With both lists empty every
    /// sender is accepted.
    #[serde(default)]
    pub unknown_sender: UnknownSender,
    /// Teams a request may name; empty accepts any team.
    #[serde(default)]
    pub known_teams: Vec<String>,
    /// How numeric dates are read: `dmy` (default) or `mdy`.
    #[serde(default)]
    pub date_order: DateOrder,
    /// A raw message larger than this is summarised from its headers only (default 25 MB).
    #[serde(default)]
    pub max_message_bytes: Option<u64>,
}

impl RuleSettings {
    /// Largest raw message read in full.
    pub fn max_message_bytes(&self) -> u64 {
        self.max_message_bytes
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
            .max(1024)
    }

    /// Problems, by field path below `rules`.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (index, sender) in self.allowed_senders.iter().enumerate() {
            let sender = sender.trim();
            let ok = sender.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && is_domain(domain) && !sender.contains(char::is_whitespace)
            });
            if !ok {
                errors.push(FieldError::new(
                    format!("rules.allowed_senders[{index}]"),
                    format!("\"{sender}\" is not an e-mail address"),
                ));
            }
        }
        for (index, domain) in self.allowed_domains.iter().enumerate() {
            if !is_domain(domain.trim()) {
                errors.push(FieldError::new(
                    format!("rules.allowed_domains[{index}]"),
                    format!("\"{domain}\" is not a domain name (e.g. \"example.com\")"),
                ));
            }
        }
        for (index, team) in self.known_teams.iter().enumerate() {
            if team.trim().is_empty() || team.len() > 100 || team.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    format!("rules.known_teams[{index}]"),
                    "must be 1 to 100 characters without control characters",
                ));
            }
        }
        if self
            .max_message_bytes
            .is_some_and(|n| !(1024..=1024 * 1024 * 1024).contains(&n))
        {
            errors.push(FieldError::new(
                "rules.max_message_bytes",
                "must be between 1024 and 1073741824 (1 GiB)",
            ));
        }
        errors
    }
}

/// True for a plausible DNS domain with at least one dot.
fn is_domain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.contains('.')
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llm() -> LlmSettings {
        LlmSettings {
            api: LlmApi::Openai,
            endpoint: "http://127.0.0.1:8080".into(),
            model: "smollm2".into(),
            api_key: None,
            timeout: None,
            retries: None,
            max_concurrency: None,
            min_confidence: None,
            breaker_failures: None,
            breaker_cooldown: None,
        }
    }

    #[test]
    fn defaults_are_sane_and_valid() {
        let settings = llm();
        assert!(settings.validate().is_empty());
        assert_eq!(settings.timeout(), Duration::from_secs(30));
        assert_eq!(settings.retries(), 1);
        assert_eq!(settings.max_concurrency(), 2);
        assert!((settings.min_confidence() - 0.6).abs() < f64::EPSILON);
        assert!(RuleSettings::default().validate().is_empty());
        assert_eq!(
            RuleSettings::default().max_message_bytes(),
            DEFAULT_MAX_MESSAGE_BYTES
        );
    }

    #[test]
    fn bad_llm_values_name_their_field() {
        let mut settings = llm();
        settings.endpoint = "ftp://x".into();
        settings.model = " ".into();
        settings.retries = Some(9);
        settings.max_concurrency = Some(0);
        settings.min_confidence = Some(1.5);
        settings.breaker_failures = Some(0);
        let fields: Vec<String> = settings.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "llm.endpoint",
                "llm.model",
                "llm.retries",
                "llm.max_concurrency",
                "llm.min_confidence",
                "llm.breaker_failures"
            ]
        );
        settings = llm();
        settings.min_confidence = Some(f64::NAN);
        assert_eq!(settings.validate()[0].field, "llm.min_confidence");
    }

    #[test]
    fn bad_rule_values_name_their_field() {
        let settings = RuleSettings {
            allowed_senders: vec!["hr@example.com".into(), "not an address".into()],
            allowed_domains: vec!["example.com".into(), "-bad-.com".into(), "nodot".into()],
            known_teams: vec!["Platform".into(), "".into()],
            max_message_bytes: Some(10),
            ..Default::default()
        };
        let fields: Vec<String> = settings.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "rules.allowed_senders[1]",
                "rules.allowed_domains[1]",
                "rules.allowed_domains[2]",
                "rules.known_teams[1]",
                "rules.max_message_bytes"
            ]
        );
    }
}
