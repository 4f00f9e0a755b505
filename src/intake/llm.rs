//! A client for a local language model: OpenAI-compatible `/v1/chat/completions` (llama.cpp
//! server, vLLM, Ollama's compatible endpoint) and Ollama's native `/api/chat`, asked for JSON
//! under [`answer_schema`]. Per-call timeout, bounded retries of transient failures, a circuit
//! breaker (opens after N consecutive failed calls, one trial call after a cool-down) and a
//! concurrency limit. The answer is checked by our code; nothing it says is trusted unchecked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::domain::config::{LlmApi, LlmSettings};
use crate::domain::intake::MailSummary;
use crate::intake::llm_schema::{self, AnswerError, ModelAnswer, Prompt};
use crate::intake::text;

/// Largest reply body read from the server (bytes).
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// Longest raw answer kept as evidence (characters).
pub const MAX_RAW_ANSWER_CHARS: usize = 4000;
/// Most tokens the model may write.
pub const MAX_ANSWER_TOKENS: u32 = 600;

/// Why a call to the model gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LlmError {
    /// No reply within the configured time.
    #[error("the model server at {url} did not answer within {seconds}s")]
    Timeout {
        /// Where.
        url: String,
        /// The limit.
        seconds: u64,
    },
    /// Could not connect or the connection broke.
    #[error("cannot reach the model server at {url}: {detail}")]
    Transport {
        /// Where.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server answered with an error status.
    #[error("the model server at {url} answered HTTP {status}: {body}")]
    Status {
        /// Where.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The server's reply is not the API's JSON shape.
    #[error("the model server's reply is not a chat answer of the {api} API: {detail}")]
    Envelope {
        /// `openai` or `ollama`.
        api: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The model's answer is not valid JSON or breaks the schema.
    #[error("{0}")]
    Answer(AnswerError),
    /// The circuit is open after repeated failures.
    #[error(
        "the model is not asked: circuit open after {failures} consecutive failures, next try in {seconds}s"
    )]
    CircuitOpen {
        /// Consecutive failures.
        failures: u32,
        /// Seconds until a trial call.
        seconds: u64,
    },
    /// Every slot stayed busy for the whole timeout.
    #[error("too many model calls in flight: no slot within {seconds}s")]
    Busy {
        /// The wait.
        seconds: u64,
    },
    /// The API key reference could not be read.
    #[error("the model's API key could not be read: {0}")]
    ApiKey(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

impl LlmError {
    /// Transient: worth another attempt (timeouts, connection errors, 5xx, 429).
    fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A checked answer with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// The checked answer.
    pub answer: ModelAnswer,
    /// The model's raw answer text (bounded).
    pub raw_answer: String,
    /// The model name (as the server reported it, else as configured).
    pub model: String,
    /// SHA-256 of the prompt sent.
    pub prompt_hash: String,
}

/// A failed call with what evidence there is.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmFailure {
    /// Why.
    pub error: LlmError,
    /// The configured model name.
    pub model: String,
    /// SHA-256 of the prompt (sent or not).
    pub prompt_hash: String,
    /// The raw answer, when one came but was refused (bounded).
    pub raw_answer: Option<String>,
}

/// State of the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// The cool-down ended: the next call is a trial.
    HalfOpen,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Breaker {
    fn admit(&mut self, now: Instant) -> Result<(), LlmError> {
        if let Some(until) = self.open_until {
            if now < until || self.trial_in_flight {
                return Err(LlmError::CircuitOpen {
                    failures: self.failures,
                    seconds: until.saturating_duration_since(now).as_secs().max(1),
                });
            }
            self.trial_in_flight = true;
        }
        Ok(())
    }

    fn success(&mut self) {
        *self = Self::default();
    }

    fn failure(&mut self, now: Instant, threshold: u32, cooldown: Duration) {
        self.failures = self.failures.saturating_add(1);
        self.trial_in_flight = false;
        if self.failures >= threshold {
            self.open_until = Some(now + cooldown);
        }
    }

    fn state(&self, now: Instant) -> BreakerState {
        match self.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

/// The model client. Cheap to share behind an `Arc`; every call takes a concurrency slot.
#[derive(Debug)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
    url: String,
    slots: Arc<Semaphore>,
    breaker: Mutex<Breaker>,
}

/// The URL of the chat endpoint for a base URL (a full endpoint URL is kept as it is).
pub fn chat_url(api: LlmApi, endpoint: &str) -> String {
    let base = endpoint.trim().trim_end_matches('/');
    match api {
        LlmApi::Openai if base.ends_with("/chat/completions") => base.to_string(),
        LlmApi::Openai if base.ends_with("/v1") => format!("{base}/chat/completions"),
        LlmApi::Openai => format!("{base}/v1/chat/completions"),
        LlmApi::Ollama if base.ends_with("/api/chat") => base.to_string(),
        LlmApi::Ollama => format!("{base}/api/chat"),
    }
}

impl LlmClient {
    /// A client for `settings` (validate them first; the API key is read at each call).
    pub fn new(settings: &LlmSettings) -> Result<Self, LlmError> {
        let timeout = settings.timeout();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|error| LlmError::Client(error.to_string()))?;
        Ok(Self {
            http,
            url: chat_url(settings.api, &settings.endpoint),
            settings: settings.clone(),
            slots: Arc::new(Semaphore::new(settings.max_concurrency())),
            breaker: Mutex::new(Breaker::default()),
        })
    }

    /// The settings the client was built from.
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// The chat endpoint called.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The circuit breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker
            .lock()
            .map_or(BreakerState::Closed, |b| b.state(Instant::now()))
    }

    /// The request body for a prompt, per API.
    pub fn request_body(&self, prompt: &Prompt) -> Value {
        let messages = json!([
            { "role": "system", "content": prompt.system },
            { "role": "user", "content": prompt.user },
        ]);
        match self.settings.api {
            LlmApi::Openai => json!({
                "model": self.settings.model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": MAX_ANSWER_TOKENS,
                "stream": false,
                // The llama.cpp server takes the schema here; its `json_schema` form fails.
                "response_format": { "type": "json_object", "schema": llm_schema::answer_schema() },
            }),
            LlmApi::Ollama => json!({
                "model": self.settings.model,
                "messages": messages,
                "stream": false,
                "format": llm_schema::answer_schema(),
                "options": { "temperature": 0, "num_predict": MAX_ANSWER_TOKENS },
            }),
        }
    }

    /// Asks the model about `mail` (sender, subject, new text only) and checks the answer.
    pub async fn extract(&self, mail: &MailSummary) -> Result<ModelReply, LlmFailure> {
        let prompt = llm_schema::build_prompt(mail);
        let fail = |error: LlmError, raw_answer: Option<String>| LlmFailure {
            error,
            model: self.settings.model.clone(),
            prompt_hash: prompt.hash.clone(),
            raw_answer,
        };
        if let Ok(mut breaker) = self.breaker.lock() {
            breaker
                .admit(Instant::now())
                .map_err(|error| fail(error, None))?;
        }
        let outcome = self.call_with_retries(&prompt).await;
        let result = match outcome {
            Ok((content, model)) => match llm_schema::check_answer(&content) {
                Ok(answer) => Ok(ModelReply {
                    answer,
                    raw_answer: text::bounded(&content, MAX_RAW_ANSWER_CHARS),
                    model,
                    prompt_hash: prompt.hash.clone(),
                }),
                Err(error) => Err(fail(
                    LlmError::Answer(error),
                    Some(text::bounded(&content, MAX_RAW_ANSWER_CHARS)),
                )),
            },
            Err(error) => Err(fail(error, None)),
        };
        if let Ok(mut breaker) = self.breaker.lock() {
            match &result {
                Ok(_) => breaker.success(),
                Err(failure) => {
                    tracing::warn!(url = %self.url, error = %failure.error, "model call failed");
                    breaker.failure(
                        Instant::now(),
                        self.settings.breaker_failures(),
                        self.settings.breaker_cooldown(),
                    );
                }
            }
        }
        result
    }

    async fn call_with_retries(&self, prompt: &Prompt) -> Result<(String, String), LlmError> {
        let timeout = self.settings.timeout();
        let _slot = tokio::time::timeout(timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| LlmError::Busy {
                seconds: timeout.as_secs(),
            })?
            .map_err(|_| LlmError::Busy {
                seconds: timeout.as_secs(),
            })?;
        let body = self.request_body(prompt);
        let mut attempt = 0;
        loop {
            match self.call_once(&body).await {
                Ok(reply) => return Ok(reply),
                Err(error) if error.is_transient() && attempt < self.settings.retries() => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %error, "retrying the model call");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn call_once(&self, body: &Value) -> Result<(String, String), LlmError> {
        let seconds = self.settings.timeout().as_secs();
        let transport = |error: reqwest::Error| {
            if error.is_timeout() {
                LlmError::Timeout {
                    url: self.url.clone(),
                    seconds,
                }
            } else {
                LlmError::Transport {
                    url: self.url.clone(),
                    detail: text::bounded(&error_chain(&error), 300),
                }
            }
        };
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.settings.api_key {
            let key = key
                .resolve()
                .map_err(|error| LlmError::ApiKey(error.to_string()))?;
            request = request.bearer_auth(key.expose());
        }
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_REPLY_BYTES {
                return Err(LlmError::Envelope {
                    api: self.api_name(),
                    detail: format!("the reply is larger than {MAX_REPLY_BYTES} bytes"),
                });
            }
        }
        let body_text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            return Err(LlmError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                body: text::bounded(&text::clean_line(&body_text).0, 200),
            });
        }
        let envelope: Value =
            serde_json::from_str(&body_text).map_err(|error| LlmError::Envelope {
                api: self.api_name(),
                detail: format!("not JSON ({error})"),
            })?;
        let content = match self.settings.api {
            LlmApi::Openai => envelope.pointer("/choices/0/message/content"),
            LlmApi::Ollama => envelope.pointer("/message/content"),
        };
        let Some(Value::String(content)) = content else {
            return Err(LlmError::Envelope {
                api: self.api_name(),
                detail: "no message content".into(),
            });
        };
        if self.settings.api == LlmApi::Ollama && envelope.get("done") == Some(&Value::Bool(false))
        {
            return Err(LlmError::Envelope {
                api: "ollama",
                detail: "the answer is not done (\"done\": false)".into(),
            });
        }
        let model = envelope
            .get("model")
            .and_then(Value::as_str)
            .map(|m| text::bounded(&text::clean_line(m).0, 200))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| self.settings.model.clone());
        Ok((content.clone(), model))
    }

    fn api_name(&self) -> &'static str {
        match self.settings.api {
            LlmApi::Openai => "openai",
            LlmApi::Ollama => "ollama",
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_urls_per_api() {
        assert_eq!(
            chat_url(LlmApi::Openai, "http://h:1"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            chat_url(LlmApi::Openai, "http://h:1/v1/"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            chat_url(LlmApi::Openai, "http://h:1/v1/chat/completions"),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            chat_url(LlmApi::Ollama, "http://h:1"),
            "http://h:1/api/chat"
        );
        assert_eq!(
            chat_url(LlmApi::Ollama, "http://h:1/api/chat"),
            "http://h:1/api/chat"
        );
    }

    #[test]
    fn breaker_opens_then_half_opens_then_closes() {
        let mut breaker = Breaker::default();
        let start = Instant::now();
        let cooldown = Duration::from_secs(10);
        assert!(breaker.admit(start).is_ok());
        breaker.failure(start, 2, cooldown);
        assert_eq!(breaker.state(start), BreakerState::Closed);
        breaker.failure(start, 2, cooldown);
        assert_eq!(breaker.state(start), BreakerState::Open);
        assert!(matches!(
            breaker.admit(start),
            Err(LlmError::CircuitOpen { failures: 2, .. })
        ));
        let later = start + cooldown;
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        assert!(breaker.admit(later).is_ok());
        // Only one trial call at a time.
        assert!(breaker.admit(later).is_err());
        breaker.failure(later, 2, cooldown);
        assert_eq!(breaker.state(later), BreakerState::Open);
        let again = later + cooldown;
        assert!(breaker.admit(again).is_ok());
        breaker.success();
        assert_eq!(breaker.state(again), BreakerState::Closed);
    }

    #[test]
    fn transient_errors_are_retried_others_not() {
        let url = String::from("u");
        assert!(
            LlmError::Timeout {
                url: url.clone(),
                seconds: 1
            }
            .is_transient()
        );
        assert!(
            LlmError::Status {
                url: url.clone(),
                status: 503,
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            LlmError::Status {
                url: url.clone(),
                status: 429,
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            !LlmError::Status {
                url,
                status: 400,
                body: String::new()
            }
            .is_transient()
        );
        assert!(!LlmError::Answer(AnswerError::InvalidJson("x".into())).is_transient());
    }
}
