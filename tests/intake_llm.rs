//! The model client and the classifier with a model: against a real llama.cpp server on
//! loopback (`tests/servers.sh` starts llama-cpp-python with SmolLM2-135M; with `CI` set and no
//! server this fails), and against Ollama's native `/api/chat` with recorded answers
//! (`tests/fixtures/ollama/`) served by a small HTTP server in this test, plus servers that
//! hang, answer 500, answer what is not JSON or JSON that breaks the schema. Whatever the model
//! does, classification ends in a valid verdict; a failed model leaves the rules deciding and
//! the evidence saying why.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use gatehouse::domain::config::{LlmApi, LlmSettings, RuleSettings};
use gatehouse::domain::intake::{Classified, Verdict};
use gatehouse::intake::classify::Classifier;
use gatehouse::intake::llm::{BreakerState, LlmClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn corpus(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mail_corpus")
        .join(file);
    std::fs::read(path).expect("corpus file")
}

fn fixture(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ollama")
        .join(file);
    std::fs::read_to_string(path).expect("fixture file")
}

fn settings(api: LlmApi, endpoint: &str) -> LlmSettings {
    let text = format!(
        "api = \"{}\"\nendpoint = \"{endpoint}\"\nmodel = \"test-model\"\ntimeout = \"2s\"\nretries = 1\nbreaker_failures = 3\nbreaker_cooldown = \"1s\"\n",
        match api {
            LlmApi::Openai => "openai",
            LlmApi::Ollama => "ollama",
        }
    );
    let settings: LlmSettings = toml::from_str(&text).expect("settings parse");
    assert!(settings.validate().is_empty());
    settings
}

fn classifier(llm: &LlmSettings) -> Classifier {
    Classifier::from_settings(&RuleSettings::default(), Some(llm))
        .expect("client builds")
        .with_today(NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"))
}

fn reason(classified: &Classified) -> String {
    match &classified.verdict {
        Verdict::Request { .. } => String::new(),
        Verdict::Triage { reason, .. }
        | Verdict::Ignored { reason }
        | Verdict::Quarantined { reason } => reason.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// A small HTTP server on loopback that answers as told.

#[derive(Clone)]
enum Behaviour {
    /// Answer with this status and body, after this delay.
    Reply(u16, String, Duration),
    /// Read the request and never answer.
    Hang,
}

struct FakeServer {
    url: String,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    last_body: Arc<Mutex<String>>,
}

impl FakeServer {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = Self {
            url,
            behaviour: Arc::new(Mutex::new(behaviour)),
            requests: Arc::new(AtomicUsize::new(0)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: Arc::new(AtomicUsize::new(0)),
            last_body: Arc::new(Mutex::new(String::new())),
        };
        let (behaviour, requests, in_flight, max_in_flight, last_body) = (
            server.behaviour.clone(),
            server.requests.clone(),
            server.in_flight.clone(),
            server.max_in_flight.clone(),
            server.last_body.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (behaviour, requests, in_flight, max_in_flight, last_body) = (
                    behaviour.clone(),
                    requests.clone(),
                    in_flight.clone(),
                    max_in_flight.clone(),
                    last_body.clone(),
                );
                tokio::spawn(async move {
                    let Some(body) = read_request(&mut stream).await else {
                        return;
                    };
                    requests.fetch_add(1, Ordering::SeqCst);
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_flight.fetch_max(now, Ordering::SeqCst);
                    *last_body.lock().expect("lock") = body;
                    let behaviour = behaviour.lock().expect("lock").clone();
                    match behaviour {
                        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
                        Behaviour::Reply(status, body, delay) => {
                            tokio::time::sleep(delay).await;
                            let head = format!(
                                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(head.as_bytes()).await;
                            let _ = stream.write_all(body.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("lock") = behaviour;
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn last_body(&self) -> serde_json::Value {
        serde_json::from_str(&self.last_body.lock().expect("lock")).expect("request body is JSON")
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&data[header_end..header_end + length]).into_owned())
}

fn ok(body: String) -> Behaviour {
    Behaviour::Reply(200, body, Duration::ZERO)
}

// ---------------------------------------------------------------------------------------------
// Ollama's native API, recorded answers.

#[tokio::test]
async fn ollama_recorded_answer_that_agrees_becomes_a_request_with_evidence() {
    let server = FakeServer::start(ok(fixture("chat_onboard.json"))).await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    let Verdict::Request { draft } = &out.verdict else {
        panic!("{:?} {:?}", out.verdict, out.evidence);
    };
    assert_eq!(draft.kind, "joiner");
    assert_eq!(draft.subject_name, "Ada Lovelace");
    assert_eq!(draft.requester, "boss@example.com");
    let evidence = &out.evidence;
    assert_eq!(evidence.mode, "rules+llm");
    assert_eq!(evidence.model.as_deref(), Some("llama3.2:3b"));
    assert_eq!(evidence.intent.as_deref(), Some("onboard"));
    assert_eq!(evidence.confidence, Some(0.93));
    assert_eq!(evidence.prompt_hash.as_ref().map(String::len), Some(64));
    assert!(
        evidence
            .raw_answer
            .as_deref()
            .is_some_and(|a| a.contains("\"intent\""))
    );
    assert!(evidence.model_error.is_none());
    assert!(
        evidence
            .rules
            .iter()
            .any(|r| r.rule == "model_confidence" && r.outcome == "pass")
    );
    // What was sent: the native API with the schema in `format`, not streamed, and only the
    // sender, subject and new text.
    let sent = server.last_body();
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["model"], "test-model");
    assert_eq!(sent["format"]["properties"]["intent"]["enum"][0], "onboard");
    let user = sent["messages"][1]["content"]
        .as_str()
        .expect("user message");
    assert!(user.contains("Subject: New starter: Ada Lovelace"));
    assert!(user.contains("Please onboard Ada Lovelace"));
    assert!(!user.contains("Message-ID"));
}

#[tokio::test]
async fn low_confidence_and_disagreement_go_to_triage_with_the_reason() {
    let server = FakeServer::start(ok(fixture("chat_low_confidence.json"))).await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(out.verdict.name(), "triage");
    assert!(
        reason(&out).contains("model confidence 0.31 is below the threshold 0.60"),
        "{}",
        reason(&out)
    );

    server.set(ok(fixture("chat_disagree_offboard.json")));
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(out.verdict.name(), "triage");
    assert!(
        reason(&out).contains("rules say onboard, model says offboard"),
        "{}",
        reason(&out)
    );

    server.set(ok(fixture("chat_disagree_fields.json")));
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(out.verdict.name(), "triage");
    let why = reason(&out);
    assert!(
        why.contains("rules and model disagree on name (rules: Ada Lovelace, model: Ada Byron)"),
        "{why}"
    );
    assert!(
        why.contains("date (rules: 2026-12-14, model: 2026-12-15)"),
        "{why}"
    );
}

#[tokio::test]
async fn a_question_the_rules_cannot_place_is_ignored_when_the_model_says_query() {
    let server = FakeServer::start(ok(fixture("chat_query.json"))).await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    let out = classifier.classify(&corpus("no_intent.eml")).await;
    assert_eq!(out.verdict.name(), "ignored", "{:?}", out.verdict);
    assert!(reason(&out).contains("the model reads it as query"));
    assert_eq!(out.evidence.intent.as_deref(), Some("query"));
}

#[tokio::test]
async fn answers_off_schema_leave_the_rules_deciding_with_the_model_error() {
    for (file, error) in [
        (
            "chat_schema_violation.json",
            "breaks the schema: intent \"hire\"",
        ),
        ("chat_content_not_json.json", "not valid JSON"),
        ("chat_not_done.json", "\"done\": false"),
    ] {
        let server = FakeServer::start(ok(fixture(file))).await;
        let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
        let out = classifier
            .classify(&corpus("good_joiner_labelled.eml"))
            .await;
        // The rules alone find a complete joiner.
        assert_eq!(out.verdict.name(), "request", "{file}");
        assert_eq!(out.evidence.mode, "rules", "{file}");
        let model_error = out.evidence.model_error.clone().unwrap_or_default();
        assert!(model_error.contains(error), "{file}: {model_error}");
        assert!(
            model_error.ends_with("the rules decided alone"),
            "{model_error}"
        );
        assert!(out.evidence.prompt_hash.is_some(), "{file}");
        // Not a transient failure: asked once, no retry.
        assert_eq!(server.requests(), 1, "{file}");
        if file != "chat_not_done.json" {
            assert!(
                out.evidence.raw_answer.is_some(),
                "{file}: the refused answer is kept"
            );
        }
    }
}

#[tokio::test]
async fn a_500_is_retried_then_the_rules_decide() {
    let server = FakeServer::start(Behaviour::Reply(
        500,
        "{\"error\":\"model crashed\"}".into(),
        Duration::ZERO,
    ))
    .await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    let out = classifier.classify(&corpus("good_leaver.eml")).await;
    assert_eq!(out.verdict.name(), "request");
    let model_error = out.evidence.model_error.clone().unwrap_or_default();
    assert!(
        model_error.contains("HTTP 500: {\"error\":\"model crashed\"}"),
        "{model_error}"
    );
    assert_eq!(server.requests(), 2, "one retry");
}

#[tokio::test]
async fn an_envelope_that_is_not_json_is_an_error() {
    let server = FakeServer::start(ok("<html>502 Bad Gateway</html>".into())).await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    let out = classifier.classify(&corpus("no_intent.eml")).await;
    assert_eq!(out.verdict.name(), "triage");
    let model_error = out.evidence.model_error.clone().unwrap_or_default();
    assert!(
        model_error.contains("not a chat answer of the ollama API: not JSON"),
        "{model_error}"
    );
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let server = FakeServer::start(Behaviour::Hang).await;
    let mut llm = settings(LlmApi::Ollama, &server.url);
    llm.retries = Some(0);
    let classifier = classifier(&llm);
    let started = Instant::now();
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.verdict.name(), "request");
    let model_error = out.evidence.model_error.clone().unwrap_or_default();
    assert!(
        model_error.contains("did not answer within 2s"),
        "{model_error}"
    );
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial() {
    let server = FakeServer::start(Behaviour::Reply(503, "busy".into(), Duration::ZERO)).await;
    let mut llm = settings(LlmApi::Ollama, &server.url);
    llm.retries = Some(0);
    let classifier = classifier(&llm);
    let client = classifier.llm().expect("client");
    for _ in 0..3 {
        let out = classifier
            .classify(&corpus("good_joiner_labelled.eml"))
            .await;
        assert!(
            out.evidence
                .model_error
                .as_deref()
                .is_some_and(|e| e.contains("HTTP 503"))
        );
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(server.requests(), 3);
    // Open: refused without a request, the rules decide, no prompt was sent.
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(server.requests(), 3);
    assert_eq!(out.verdict.name(), "request");
    let model_error = out.evidence.model_error.clone().unwrap_or_default();
    assert!(
        model_error.contains("circuit open after 3 consecutive failures"),
        "{model_error}"
    );
    assert_eq!(out.evidence.prompt_hash, None);
    // After the cool-down one trial goes through; it succeeds and closes the circuit.
    server.set(ok(fixture("chat_onboard.json")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(client.breaker_state(), BreakerState::HalfOpen);
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(out.evidence.mode, "rules+llm");
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn calls_in_flight_stay_within_the_concurrency_limit() {
    let server = FakeServer::start(Behaviour::Reply(
        200,
        fixture("chat_onboard.json"),
        Duration::from_millis(200),
    ))
    .await;
    let mut llm = settings(LlmApi::Ollama, &server.url);
    llm.max_concurrency = Some(2);
    llm.timeout = Some("5s".parse().expect("duration"));
    let classifier = Arc::new(classifier(&llm));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let classifier = classifier.clone();
        tasks.push(tokio::spawn(async move {
            classifier
                .classify(&corpus("good_joiner_labelled.eml"))
                .await
        }));
    }
    for task in tasks {
        let out = task.await.expect("task");
        assert_eq!(out.evidence.mode, "rules+llm");
    }
    assert_eq!(server.requests(), 6);
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn injected_or_automatic_mail_never_reaches_the_model() {
    let server = FakeServer::start(ok(fixture("chat_onboard.json"))).await;
    let classifier = classifier(&settings(LlmApi::Ollama, &server.url));
    for (file, verdict) in [
        ("injection_ignore_previous.eml", "quarantined"),
        ("injection_chatml.eml", "quarantined"),
        ("auto_submitted.eml", "ignored"),
        ("out_of_office_subject.eml", "ignored"),
    ] {
        let out = classifier.classify(&corpus(file)).await;
        assert_eq!(out.verdict.name(), verdict, "{file}");
        assert!(
            out.evidence
                .model_error
                .as_deref()
                .is_some_and(|e| e.starts_with("model not asked"))
        );
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn the_openai_form_sends_the_schema_in_response_format() {
    let body = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1796092600, "model": "smollm2",
        "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant",
            "content": serde_json::from_str::<serde_json::Value>(&fixture("chat_onboard.json")).expect("json")["message"]["content"] } }],
        "usage": { "prompt_tokens": 75, "completion_tokens": 86, "total_tokens": 161 }
    });
    let server = FakeServer::start(ok(body.to_string())).await;
    let mut llm = settings(LlmApi::Openai, &server.url);
    llm.api_key = Some(
        "env:GATEHOUSE_TEST_NO_SUCH_KEY_VAR"
            .parse()
            .expect("reference"),
    );
    let classifier = classifier(&llm);
    // The key cannot be read: the call fails before sending and says why.
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert!(
        out.evidence
            .model_error
            .as_deref()
            .is_some_and(|e| e.contains("API key")),
        "{:?}",
        out.evidence.model_error
    );
    assert_eq!(server.requests(), 0);
    llm.api_key = None;
    let classifier = self::classifier(&llm);
    let out = classifier
        .classify(&corpus("good_joiner_labelled.eml"))
        .await;
    assert_eq!(out.verdict.name(), "request", "{:?}", out.evidence);
    assert_eq!(out.evidence.model.as_deref(), Some("smollm2"));
    let sent = server.last_body();
    assert_eq!(sent["response_format"]["type"], "json_object");
    assert_eq!(sent["response_format"]["schema"]["required"][0], "intent");
    assert_eq!(sent["temperature"], 0);
}

// ---------------------------------------------------------------------------------------------
// A real llama.cpp server.

fn llama_url() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_LLM_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "GATEHOUSE_TEST_LLM_URL is not set: run tests/servers.sh start and source its env file"
            );
            eprintln!(
                "skipped: GATEHOUSE_TEST_LLM_URL is not set (tests/servers.sh starts the llama.cpp server)"
            );
            None
        }
    }
}

#[tokio::test]
async fn a_real_llama_cpp_server_gives_schema_valid_answers_and_valid_verdicts() {
    let Some(url) = llama_url() else {
        return;
    };
    let mut llm = settings(LlmApi::Openai, &url);
    llm.timeout = Some("120s".parse().expect("duration"));
    llm.model = "smollm2".into();
    let client = LlmClient::new(&llm).expect("client");
    let classifier = classifier(&llm);
    for file in [
        "good_joiner_labelled.eml",
        "good_leaver.eml",
        "no_intent.eml",
    ] {
        let mail = classifier.parse(&corpus(file));
        // The client: whatever the tiny model thinks, its answer is schema-valid JSON.
        let reply = client.extract(&mail).await;
        let reply = reply.unwrap_or_else(|failure| panic!("{file}: {:?}", failure));
        assert_eq!(reply.prompt_hash.len(), 64);
        assert!(reply.answer.confidence.is_finite());
        // The classifier: a valid verdict with the model's evidence, never a panic.
        let out = classifier.classify(&corpus(file)).await;
        assert!(
            ["request", "triage", "ignored"].contains(&out.verdict.name()),
            "{file}"
        );
        assert_eq!(
            out.evidence.mode, "rules+llm",
            "{file}: {:?}",
            out.evidence.model_error
        );
        assert!(out.evidence.raw_answer.is_some());
        assert!(out.evidence.intent.is_some() || out.verdict.name() == "triage");
        if out.verdict.name() != "request" {
            assert!(!reason(&out).is_empty(), "{file}");
        }
        let json = serde_json::to_string(&out).expect("serialises");
        assert!(json.contains("\"prompt_hash\""));
    }
}
