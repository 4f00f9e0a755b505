//! Chat notifications against a recording HTTP server on loopback: the Slack and Teams
//! webhook payload shapes, the Matrix client-server send (method, path, bearer token, a txnId
//! stable across retries) answered with recorded homeserver responses from
//! tests/fixtures/matrix/; 429 and 5xx are transient, 403 is permanent with the homeserver's
//! reason. The engine tests run notification jobs end to end: a 500 from Matrix is retried
//! through the queue without posting twice to Slack or Teams, and a 403 fails the job with the
//! reason. Those need the SMTP sink of tests/servers.sh (a notifier always mails too): without
//! it a note and return, or a failure under CI. The same Matrix path against a real Synapse is
//! in tests/notify_matrix.rs; the recorded answers stay for what Synapse will not produce on
//! demand (429, 500, 502, 403 not in room) and run without any server.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use approvals_support::{DIRECTORY, detail, three_workers};
use gatehouse::domain::config::{ChatKind, ChatTarget};
use gatehouse::domain::secret::SecretRef;
use gatehouse::notify::{ChatMessage, ChatPoster};
use gatehouse::store::Store;
use gatehouse::store::api::{
    Actor, CommandApi, JobFilter, JobRow, JobState, NewRequest, ReadApi, RequestDetail,
};
use serde_json::{Value, json};
use store_db::{Kind, actor, fresh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SEND_OK: &str = include_str!("fixtures/matrix/send_ok.json");
const FORBIDDEN: &str = include_str!("fixtures/matrix/forbidden.json");
const LIMIT_EXCEEDED: &str = include_str!("fixtures/matrix/limit_exceeded.json");
const UNKNOWN_500: &str = include_str!("fixtures/matrix/unknown_500.json");

const ROOM: &str = "!kTnRLsGbjNmqBaCxUd:example.com";
const ROOM_ENCODED: &str = "%21kTnRLsGbjNmqBaCxUd%3Aexample.com";
const TOKEN: &str = "syt_Z2F0ZWhvdXNl_TestTokenValue_0AbCdE";

// ---------------------------------------------------------------------------------------------
// A loopback HTTP server that records every request and answers from a script.

/// One request the server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// Scripted answers: the first entry whose path prefix matches is used once.
type Script = Arc<Mutex<Vec<(String, u16, String)>>>;

struct FakeChat {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Script,
}

impl FakeChat {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Script = Arc::default();
        let (seen2, script2) = (seen.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (seen, script) = (seen2.clone(), script2.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let (status, body) = answer(&script, &request.path);
                    seen.lock().expect("lock").push(request);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, seen, script }
    }

    /// Answers the next request under `prefix` with `status` and `body`.
    fn then(&self, prefix: &str, status: u16, body: &str) {
        self.script
            .lock()
            .expect("lock")
            .push((prefix.to_string(), status, body.to_string()));
    }

    fn seen(&self, prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// The scripted answer, else the service's usual success: Slack `ok`, Teams 202, Matrix an
/// event ID.
fn answer(script: &Script, path: &str) -> (u16, String) {
    let mut script = script.lock().expect("lock");
    if let Some(at) = script.iter().position(|(p, _, _)| path.starts_with(p)) {
        let (_, status, body) = script.remove(at);
        return (status, body);
    }
    if path.starts_with("/_matrix/") {
        (200, SEND_OK.to_string())
    } else if path.starts_with("/teams") {
        (202, String::new())
    } else {
        (200, "ok".to_string())
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Seen> {
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
    let head = String::from_utf8_lossy(&data[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < header_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&data[header_end..]).unwrap_or(Value::Null);
    Some(Seen {
        method,
        path,
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    })
}

/// A secret file holding `value`, as a `file:` reference.
fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    format!("file:{}", path.display())
}

fn reference(text: &str) -> SecretRef {
    SecretRef::parse(text).expect("reference")
}

fn message() -> ChatMessage {
    ChatMessage {
        subject: "Request for Gina <Tester> completed".into(),
        body: "Account gina & friends is ready.".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The poster alone: payload shapes and failure classes.

#[tokio::test]
async fn slack_and_teams_webhooks_get_their_documented_payloads() {
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let poster = ChatPoster::new(Duration::from_secs(5)).expect("poster");
    let hook = |path: &str| {
        Some(reference(&secret_file(
            &dir,
            &path.replace('/', "_"),
            &format!("{}{path}", server.url),
        )))
    };
    let slack = ChatTarget {
        kind: ChatKind::Slack,
        name: None,
        url: hook("/slack/T000/B000/XXXX"),
        homeserver: None,
        room: None,
        token: None,
    };
    let teams = ChatTarget {
        kind: ChatKind::Teams,
        url: hook("/teams/workflows/abc"),
        ..slack.clone()
    };
    assert_eq!(poster.post(&slack, &message(), "t1").await, Ok(None));
    assert_eq!(poster.post(&teams, &message(), "t2").await, Ok(None));

    let posts = server.seen("/slack/");
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, "/slack/T000/B000/XXXX");
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(post.authorization, None);
    assert_eq!(
        post.body,
        json!({"text": "*Request for Gina &lt;Tester&gt; completed*\nAccount gina &amp; friends is ready."})
    );

    let posts = server.seen("/teams/");
    assert_eq!(posts.len(), 1);
    let body = &posts[0].body;
    assert_eq!(posts[0].method, "POST");
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["body"][0]["type"], "TextBlock");
    assert_eq!(
        card["body"][0]["text"],
        "Request for Gina <Tester> completed"
    );
    assert_eq!(card["body"][0]["weight"], "Bolder");
    assert_eq!(card["body"][1]["text"], "Account gina & friends is ready.");
    assert_eq!(card["body"][1]["wrap"], true);

    // A webhook that is gone: permanent, with Slack's reason, and never the URL.
    server.then("/slack/", 404, "no_service");
    let failure = poster
        .post(&slack, &message(), "t3")
        .await
        .expect_err("404");
    assert!(failure.permanent);
    assert!(failure.reason.contains("404") && failure.reason.contains("no_service"));
    assert!(!failure.reason.contains("XXXX"), "{}", failure.reason);
    // A webhook under load: transient.
    server.then("/teams/", 503, "busy");
    let failure = poster
        .post(&teams, &message(), "t4")
        .await
        .expect_err("503");
    assert!(!failure.permanent, "{failure:?}");
    // Nothing listening: transient, and the URL is not in the reason.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone = format!(
        "http://{}/slack/SECRETPATH",
        closed.local_addr().expect("a")
    );
    drop(closed);
    let dead = ChatTarget {
        url: Some(reference(&secret_file(&dir, "dead", &gone))),
        ..slack.clone()
    };
    let failure = poster
        .post(&dead, &message(), "t5")
        .await
        .expect_err("refused");
    assert!(!failure.permanent, "{failure:?}");
    assert!(!failure.reason.contains("SECRETPATH"), "{}", failure.reason);
    assert!(
        failure.reason.to_lowercase().contains("refused"),
        "{}",
        failure.reason
    );
    // A reference that does not resolve: permanent, naming the field.
    let missing = ChatTarget {
        url: Some(reference("file:/nonexistent/gatehouse/hook")),
        ..slack
    };
    let failure = poster
        .post(&missing, &message(), "t6")
        .await
        .expect_err("missing");
    assert!(
        failure.permanent && failure.reason.starts_with("url:"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn matrix_sends_with_the_token_and_a_stable_txn_id() {
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let poster = ChatPoster::new(Duration::from_secs(5)).expect("poster");
    let target = ChatTarget {
        kind: ChatKind::Matrix,
        name: None,
        url: None,
        homeserver: Some(format!("{}/", server.url)),
        room: Some(ROOM.into()),
        token: Some(reference(&secret_file(&dir, "token", TOKEN))),
    };
    let event = poster
        .post(&target, &message(), "gatehouse.7.42.0")
        .await
        .expect("sent");
    assert_eq!(
        event.as_deref(),
        Some("$Hh5rF0xXr3qWbL2m9sT7kEJvYc8dPzA1uNQe4oGyW6M")
    );
    let sends = server.seen("/_matrix/");
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].method, "PUT");
    assert_eq!(
        sends[0].path,
        format!("/_matrix/client/v3/rooms/{ROOM_ENCODED}/send/m.room.message/gatehouse.7.42.0")
    );
    assert_eq!(
        sends[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        sends[0].body,
        json!({"msgtype": "m.text", "body": "Request for Gina <Tester> completed\n\nAccount gina & friends is ready."})
    );

    // Rate limited: transient, with the errcode.
    server.then("/_matrix/", 429, LIMIT_EXCEEDED);
    let failure = poster
        .post(&target, &message(), "gatehouse.7.43.0")
        .await
        .expect_err("429");
    assert!(!failure.permanent);
    assert!(failure.reason.contains("M_LIMIT_EXCEEDED"), "{failure:?}");
    // Not in the room: permanent, with the homeserver's reason; the token is never shown.
    server.then("/_matrix/", 403, FORBIDDEN);
    let failure = poster
        .post(&target, &message(), "gatehouse.7.44.0")
        .await
        .expect_err("403");
    assert!(failure.permanent);
    assert_eq!(
        failure.reason,
        format!(
            "matrix: HTTP 403 Forbidden: M_FORBIDDEN: User @gatehouse:example.com not in room {ROOM}"
        )
    );
    assert!(!failure.reason.contains(TOKEN));
}

// ---------------------------------------------------------------------------------------------
// Notification jobs end to end.

/// The SMTP sink's port, or `None` (skip) outside CI.
fn smtp_port() -> Option<u16> {
    let port = std::env::var("GATEHOUSE_TEST_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok());
    match port {
        Some(p) if std::net::TcpStream::connect(("127.0.0.1", p)).is_ok() => Some(p),
        _ => {
            assert!(
                !support::in_ci(),
                "CI: the SMTP test server is not running (bash tests/servers.sh start && source /tmp/gatehouse-test-servers/env)"
            );
            eprintln!(
                "note: SMTP test server not running; start it with tests/servers.sh and source its env"
            );
            None
        }
    }
}

const DIRECT: &str = r#"kind = "workflow"
name = "direct"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]
"#;

async fn configure(store: &Store, smtp: u16, server: &FakeChat, dir: &tempfile::TempDir) {
    let slack = secret_file(dir, "slack", &format!("{}/slack/hook", server.url));
    let teams = secret_file(dir, "teams", &format!("{}/teams/hook", server.url));
    let token = secret_file(dir, "token", TOKEN);
    let notifier = format!(
        r#"kind = "notifier"
name = "loopback"
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "Gatehouse <gatehouse@example.com>"
timeout = "10s"

[[chat]]
kind = "slack"
name = "sales channel"
url = "{slack}"

[[chat]]
kind = "teams"
url = "{teams}"

[[chat]]
kind = "matrix"
homeserver = "{}"
room = "{ROOM}"
token = "{token}"
"#,
        server.url
    );
    let admin = Actor::operator("admin", "test");
    for (kind, name, body) in [
        ("directory", "people", DIRECTORY.to_string()),
        ("workflow", "direct", DIRECT.to_string()),
        ("notifier", "loopback", notifier),
    ] {
        store
            .save_config(&admin, kind, name, &body, "", 0)
            .await
            .unwrap_or_else(|e| panic!("save {name}: {e}"));
    }
}

/// A joiner without an address; its welcome goes out at once for a past `start`, else waits.
fn joiner(username: &str, start: &str) -> NewRequest {
    joiner_by(username, start, "hr@example.com")
}

fn joiner_by(username: &str, start: &str, requester: &str) -> NewRequest {
    NewRequest {
        workflow: "direct".into(),
        kind: "joiner".into(),
        subject_name: "Gina Tester".into(),
        subject_email: None,
        username: Some(username.into()),
        requester: requester.into(),
        source: "cli".into(),
        payload: json!({"team": "sales", "start_date": start}),
    }
}

/// A start date ten days ahead: the welcome job waits in the queue.
fn later() -> String {
    (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string()
}

async fn wait_until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn completed_job(store: &Store, request_id: i64, state: JobState) -> JobRow {
    job_of(store, request_id, "notify.completed", state).await
}

async fn job_of(store: &Store, request_id: i64, kind: &str, state: JobState) -> JobRow {
    wait_until(kind, async || {
        let filter = JobFilter {
            request_id: Some(request_id),
            ..JobFilter::default()
        };
        store
            .list_jobs(&filter, None, 100)
            .await
            .expect("jobs")
            .rows
            .into_iter()
            .find(|j| j.kind == kind && j.state == state)
    })
    .await
}

fn chat_steps(d: &RequestDetail) -> Vec<Value> {
    steps_named(d, "notify.completed chat to ")
}

fn steps_named(d: &RequestDetail, prefix: &str) -> Vec<Value> {
    d.timeline
        .iter()
        .filter(|t| t.kind == "step")
        .filter(|t| {
            t.detail["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|t| t.detail.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_matrix_send_is_retried_without_posting_twice_sqlite() {
    retried_once(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_matrix_send_is_retried_without_posting_twice_postgres() {
    retried_once(Kind::Postgres).await;
}

async fn retried_once(kind: Kind) {
    let Some(smtp) = smtp_port() else {
        return;
    };
    let Some(db) = fresh(kind).await else {
        return;
    };
    let s = &db.store;
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    configure(s, smtp, &server, &dir).await;
    server.then("/_matrix/", 500, UNKNOWN_500);
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gretry", &later()))
        .await
        .expect("create");
    let job = completed_job(s, r.id, JobState::Completed).await;
    assert_eq!(job.attempts, 2, "one retry after the 500");

    // Slack and Teams were reached by the first attempt and not posted to again.
    let slack = server.seen("/slack/hook");
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0].body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*Request for Gina Tester completed*")),
        "{:?}",
        slack[0].body
    );
    assert_eq!(server.seen("/teams/hook").len(), 1);
    // Matrix: the same transaction ID both times, so the homeserver shows it once.
    let sends = server.seen("/_matrix/");
    assert_eq!(sends.len(), 2, "{sends:?}");
    let expected = format!(
        "/_matrix/client/v3/rooms/{ROOM_ENCODED}/send/m.room.message/gatehouse.{}.{}.{}.2",
        r.id, job.id, job.created_at
    );
    assert!(sends.iter().all(|s| s.path == expected), "{sends:?}");
    assert!(sends.iter().all(|s| s.method == "PUT"
        && s.authorization.as_deref() == Some(format!("Bearer {TOKEN}").as_str())));

    // The timeline: one post to each target, the failed one with its reason, then the retry.
    let d = detail(s, r.id).await;
    let steps = chat_steps(&d);
    let targets: Vec<(&str, bool)> = steps
        .iter()
        .filter_map(|st| {
            Some((
                st["output"]["target"].as_str()?,
                st["output"]["posted"].as_bool()?,
            ))
        })
        .collect();
    let matrix = format!("matrix {ROOM}");
    assert_eq!(
        targets,
        vec![
            ("sales channel", true),
            ("teams #2", true),
            (matrix.as_str(), false),
            (matrix.as_str(), true),
        ]
    );
    let failed = &steps[2];
    assert_eq!(failed["output"]["retrying"], true);
    assert_eq!(
        failed["error"],
        "matrix: HTTP 500 Internal Server Error: M_UNKNOWN: Internal server error"
    );
    assert_eq!(
        steps[3]["output"]["event_id"],
        "$Hh5rF0xXr3qWbL2m9sT7kEJvYc8dPzA1uNQe4oGyW6M"
    );
    let text = serde_json::to_string(&d.timeline).expect("json");
    assert!(!text.contains(TOKEN) && !text.contains("/slack/hook"));

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_room_fails_the_job_with_the_reason() {
    let Some(smtp) = smtp_port() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    configure(s, smtp, &server, &dir).await;
    server.then("/_matrix/", 403, FORBIDDEN);
    let (stop, workers) = three_workers(s);
    let r = s
        .create_request(&actor("admin"), joiner("gforbid", &later()))
        .await
        .expect("create");
    let dead = completed_job(s, r.id, JobState::Dead).await;
    assert_eq!(dead.attempts, 1, "a 403 is not retried");
    let why = dead.last_error.expect("a reason");
    assert!(
        why.contains(&format!(
            "matrix {ROOM}: matrix: HTTP 403 Forbidden: M_FORBIDDEN: User @gatehouse:example.com not in room"
        )),
        "{why}"
    );
    assert_eq!(server.seen("/slack/hook").len(), 1);
    assert_eq!(server.seen("/_matrix/").len(), 1);
    let d = detail(s, r.id).await;
    let steps = chat_steps(&d);
    let last = steps.last().expect("a matrix step");
    assert_eq!(last["output"]["posted"], false);
    assert_eq!(last["output"]["permanent"], true);
    assert_eq!(last["output"]["retrying"], false);

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_welcome_without_an_address_still_reaches_the_chat_targets() {
    let Some(smtp) = smtp_port() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    configure(s, smtp, &server, &dir).await;
    let (stop, workers) = three_workers(s);
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let r = s
        .create_request(&actor("admin"), joiner("gwelcome", &yesterday))
        .await
        .expect("create");
    // No subject_email: the mail has nobody to go to, so the job fails for good ...
    let dead = job_of(s, r.id, "notify.welcome", JobState::Dead).await;
    assert_eq!(dead.attempts, 1);
    let why = dead.last_error.expect("a reason");
    assert!(why.contains("nobody to send it to"), "{why}");
    // ... but every chat target got the welcome, once.
    let welcomes: Vec<Seen> = server
        .seen("/slack/hook")
        .into_iter()
        .filter(|p| {
            p.body["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("*Welcome, Gina*"))
        })
        .collect();
    assert_eq!(welcomes.len(), 1, "{welcomes:?}");
    let d = detail(s, r.id).await;
    let posted: Vec<bool> = steps_named(&d, "notify.welcome chat to ")
        .iter()
        .filter_map(|st| st["output"]["posted"].as_bool())
        .collect();
    assert_eq!(posted, vec![true, true, true]);
    let mail = steps_named(&d, "notify.welcome mail to nobody");
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["output"]["sent"], false);

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_retry_does_not_mail_a_refused_recipient_again() {
    let Some(smtp) = smtp_port() else {
        return;
    };
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let s = &db.store;
    let server = FakeChat::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    configure(s, smtp, &server, &dir).await;
    server.then("/_matrix/", 502, "Bad Gateway");
    let (stop, workers) = three_workers(s);
    // The sink refuses `refuse*` recipients with 550: permanent; the Matrix 502: transient.
    let requester = "refuse-chat@example.com";
    let r = s
        .create_request(&actor("admin"), joiner_by("grefuse", &later(), requester))
        .await
        .expect("create");
    let dead = completed_job(s, r.id, JobState::Dead).await;
    assert_eq!(dead.attempts, 2, "retried once for the Matrix 502");
    let why = dead.last_error.expect("a reason");
    assert!(why.contains(requester) && why.contains("550"), "{why}");
    let d = detail(s, r.id).await;
    let mails = steps_named(&d, "notify.completed mail to ");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert_eq!(mails[0]["output"]["already_refused"], json!([]));
    // The retry did not mail the refused requester again; it carries the refusal forward.
    assert_eq!(mails[1]["output"]["already_refused"], json!([requester]));
    assert_eq!(mails[1]["output"]["failed"][0]["recipient"], requester);
    let matrix: Vec<bool> = chat_steps(&d)
        .iter()
        .filter(|st| st["output"]["kind"] == "matrix")
        .filter_map(|st| st["output"]["posted"].as_bool())
        .collect();
    assert_eq!(matrix, vec![false, true]);
    assert_eq!(server.seen("/slack/hook").len(), 1);

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}
