//! Matrix notifications against the real Synapse of tests/servers.sh (matrix-synapse from
//! PyPI on loopback, a bot and a reader in one room): a notification job posts to the room and
//! the reader sees exactly one message with the rendered text; an attempt whose answer is lost
//! (a loopback relay passes the send to Synapse but drops its answer) is retried with the same
//! transaction ID and Synapse shows the message once; a wrong token is a permanent failure
//! naming Synapse's `M_UNKNOWN_TOKEN`. Without Synapse (or the SMTP sink every notifier also
//! mails through) a note and return; under CI a failure.

mod approvals_support;
#[allow(dead_code)]
#[path = "common/store_db.rs"]
mod store_db;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
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

/// The bot the notifier posts as (tests/matrix_setup.py).
const BOT: &str = "@gatehouse-bot:localhost";

/// The engine tests one at a time: every fresh database numbers its first request and job
/// alike, so their jobs must not share a creation millisecond (the rest of the transaction ID)
/// while posting with the one bot token.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The loopback Synapse and its users, from the environment tests/servers.sh writes.
struct Synapse {
    url: String,
    token: String,
    reader_token: String,
    room: String,
}

/// Synapse, or `None` (skip) outside CI when it is not running.
fn synapse() -> Option<Synapse> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let found = match (
        var("GATEHOUSE_TEST_MATRIX_URL"),
        var("GATEHOUSE_TEST_MATRIX_TOKEN"),
        var("GATEHOUSE_TEST_MATRIX_READER_TOKEN"),
        var("GATEHOUSE_TEST_MATRIX_ROOM"),
    ) {
        (Some(url), Some(token), Some(reader_token), Some(room)) => {
            let up = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .is_some_and(|addr| std::net::TcpStream::connect(addr).is_ok());
            up.then_some(Synapse {
                url,
                token,
                reader_token,
                room,
            })
        }
        _ => None,
    };
    if found.is_none() {
        assert!(
            !support::in_ci(),
            "CI: the Synapse test server is not running or GATEHOUSE_TEST_MATRIX_* is unset (bash tests/servers.sh start && source /tmp/gatehouse-test-servers/env)"
        );
        eprintln!("note: Synapse not running; start it with tests/servers.sh and source its env");
    }
    found
}

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
            eprintln!("note: SMTP test server not running; start it with tests/servers.sh");
            None
        }
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A marker no other run shares, so a test counts only its own messages in the shared room.
fn marker(tag: &str) -> String {
    format!(
        "{tag}{}x{:06x}",
        std::process::id(),
        fastrand::u32(..0xffffff)
    )
}

/// The `m.room.message` events of the room whose body contains `marker`, as the reader sees
/// them (the latest 500, newest first).
async fn reader_sees(s: &Synapse, marker: &str) -> Vec<Value> {
    let url = format!(
        "{}/_matrix/client/v3/rooms/{}/messages?dir=b&limit=500",
        s.url,
        encode(&s.room)
    );
    let answer: Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(&s.reader_token)
        .send()
        .await
        .expect("the reader's /messages")
        .error_for_status()
        .expect("the reader may read the room")
        .json()
        .await
        .expect("json");
    answer["chunk"]
        .as_array()
        .expect("a chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter(|e| {
            e["content"]["body"]
                .as_str()
                .is_some_and(|b| b.contains(marker))
        })
        .cloned()
        .collect()
}

/// A secret file holding `value`, as a `file:` reference.
fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    format!("file:{}", path.display())
}

fn target(dir: &tempfile::TempDir, homeserver: &str, room: &str, token: &str) -> ChatTarget {
    ChatTarget {
        kind: ChatKind::Matrix,
        name: None,
        url: None,
        homeserver: Some(homeserver.to_string()),
        room: Some(room.to_string()),
        token: Some(SecretRef::parse(&secret_file(dir, "token", token)).expect("reference")),
    }
}

// ---------------------------------------------------------------------------------------------
// A relay between the notifier and Synapse that can lose one answer.

/// One request the relay passed on, with Synapse's answer.
#[derive(Debug, Clone)]
struct Relayed {
    method: String,
    path: String,
    status: u16,
    answer: Value,
    /// False when the relay dropped the connection instead of passing the answer back.
    answered: bool,
}

struct Relay {
    url: String,
    seen: Arc<Mutex<Vec<Relayed>>>,
    lose_next_send: Arc<AtomicBool>,
}

impl Relay {
    /// Passes every request to `upstream` and its answer back, one connection per request.
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Relayed>>> = Arc::default();
        let lose: Arc<AtomicBool> = Arc::default();
        let (seen2, lose2, upstream) = (seen.clone(), lose.clone(), upstream.to_string());
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (seen, lose, upstream, http) =
                    (seen2.clone(), lose2.clone(), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    let Some((method, path, auth, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    let mut request =
                        http.request(method.parse().expect("method"), format!("{upstream}{path}"));
                    if let Some(auth) = auth {
                        request = request.header("authorization", auth);
                    }
                    if !body.is_empty() {
                        request = request
                            .header("content-type", "application/json")
                            .body(body);
                    }
                    let response = request.send().await.expect("Synapse answers the relay");
                    let status = response.status().as_u16();
                    let text = response.text().await.expect("answer text");
                    let lost = path.contains("/send/") && lose.swap(false, Ordering::SeqCst);
                    seen.lock().expect("lock").push(Relayed {
                        method,
                        path,
                        status,
                        answer: serde_json::from_str(&text).unwrap_or(Value::Null),
                        answered: !lost,
                    });
                    if lost {
                        // Synapse has stored the event; the notifier never learns it.
                        drop(stream);
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        text.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            url,
            seen,
            lose_next_send: lose,
        }
    }

    fn sends(&self) -> Vec<Relayed> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path.contains("/send/"))
            .cloned()
            .collect()
    }
}

/// Method, path, Authorization and body of one HTTP/1.1 request.
async fn read_request(
    stream: &mut tokio::net::TcpStream,
) -> Option<(String, String, Option<String>, Vec<u8>)> {
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
    let mut first = head.lines().next()?.split(' ');
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
    Some((
        method,
        path,
        header("authorization"),
        data[header_end..].to_vec(),
    ))
}

// ---------------------------------------------------------------------------------------------
// The poster alone.

#[tokio::test]
async fn synapse_shows_one_message_per_transaction_id() {
    let Some(s) = synapse() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let poster = ChatPoster::new(Duration::from_secs(10)).expect("poster");
    let target = target(&dir, &format!("{}/", s.url), &s.room, &s.token);
    let mark = marker("poster");
    let message = ChatMessage {
        subject: format!("Request {mark} completed"),
        body: "Account <gina> & friends is ready.".into(),
    };
    let txn = format!("gatehouse.test.{mark}.0");
    let first = poster.post(&target, &message, &txn).await.expect("sent");
    let again = poster.post(&target, &message, &txn).await.expect("resent");
    let first = first.expect("Synapse answers an event ID");
    assert!(first.starts_with('$'), "{first}");
    assert_eq!(
        again.as_deref(),
        Some(first.as_str()),
        "same txnId, same event"
    );
    let other = poster
        .post(&target, &message, &format!("gatehouse.test.{mark}.1"))
        .await
        .expect("sent")
        .expect("an event ID");
    assert_ne!(other, first, "another txnId is another message");

    let seen = reader_sees(&s, &mark).await;
    let ids: Vec<&str> = seen.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids, vec![other.as_str(), first.as_str()], "{seen:#?}");
    for event in &seen {
        assert_eq!(event["sender"], BOT);
        assert_eq!(
            event["content"],
            json!({"msgtype": "m.text", "body": format!("Request {mark} completed\n\nAccount <gina> & friends is ready.")})
        );
    }
}

#[tokio::test]
async fn synapse_refuses_a_wrong_token_for_good() {
    let Some(s) = synapse() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let poster = ChatPoster::new(Duration::from_secs(10)).expect("poster");
    let wrong = "syt_Z2F0ZWhvdXNlLWJvdA_NotTheRealToken_0AbCdE";
    let target = target(&dir, &s.url, &s.room, wrong);
    let mark = marker("wrongtoken");
    let message = ChatMessage {
        subject: mark.clone(),
        body: "never shown".into(),
    };
    let failure = poster
        .post(&target, &message, "gatehouse.test.wrong.0")
        .await
        .expect_err("an unknown token");
    assert!(failure.permanent, "{failure:?}");
    assert!(
        failure
            .reason
            .starts_with("matrix: HTTP 401 Unauthorized: M_UNKNOWN_TOKEN: "),
        "{failure:?}"
    );
    assert!(!failure.reason.contains(wrong), "{failure:?}");
    assert!(reader_sees(&s, &mark).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Notification jobs end to end.

const DIRECT: &str = r#"kind = "workflow"
name = "direct"
team = "sales"

[intake]
sources = ["cli"]
kinds = ["joiner"]
"#;

/// Saves the directory, a workflow and a notifier whose one chat target is the room at
/// `homeserver` (Synapse or the relay), posting with `token`.
async fn configure(
    store: &Store,
    smtp: u16,
    homeserver: &str,
    s: &Synapse,
    token: &str,
    dir: &tempfile::TempDir,
) {
    let token = secret_file(dir, "token", token);
    let notifier = format!(
        r#"kind = "notifier"
name = "loopback"
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "Gatehouse <gatehouse@example.com>"
timeout = "10s"

[[chat]]
kind = "matrix"
name = "synapse"
homeserver = "{homeserver}"
room = "{}"
token = "{token}"
"#,
        s.room
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

/// A joiner `username` (the marker, also in the name) starting in ten days, so only the
/// completion notice goes out now.
fn joiner(username: &str) -> NewRequest {
    let start = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    NewRequest {
        workflow: "direct".into(),
        kind: "joiner".into(),
        subject_name: format!("Gina {username}"),
        subject_email: None,
        username: Some(username.into()),
        requester: "hr@example.com".into(),
        source: "cli".into(),
        payload: json!({"team": "sales", "start_date": start}),
    }
}

async fn completed_job(store: &Store, request_id: i64, state: JobState) -> JobRow {
    for _ in 0..300 {
        let filter = JobFilter {
            request_id: Some(request_id),
            ..JobFilter::default()
        };
        let found = store
            .list_jobs(&filter, None, 100)
            .await
            .expect("jobs")
            .rows
            .into_iter()
            .find(|j| j.kind == "notify.completed" && j.state == state);
        if let Some(job) = found {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for notify.completed in {state:?}");
}

fn chat_steps(d: &RequestDetail) -> Vec<Value> {
    d.timeline
        .iter()
        .filter(|t| t.kind == "step")
        .filter(|t| {
            t.detail["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("notify.completed chat to "))
        })
        .map(|t| t.detail.clone())
        .collect()
}

/// The one message the reader sees for `mark`: the rendered completion notice of request `id`
/// (the built-in template's subject, a blank line, its text), sent by the bot.
async fn the_one_message(s: &Synapse, mark: &str, id: i64) -> Value {
    let seen = reader_sees(s, mark).await;
    assert_eq!(seen.len(), 1, "exactly one message in the room: {seen:#?}");
    let event = seen[0].clone();
    assert_eq!(event["sender"], BOT);
    assert_eq!(
        event["content"],
        json!({
            "msgtype": "m.text",
            "body": format!("Request for Gina {mark} completed\n\nYour joiner request {id} for Gina {mark} is provisioned."),
        })
    );
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_job_posts_once_to_the_synapse_room_sqlite() {
    posts_once(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notification_job_posts_once_to_the_synapse_room_postgres() {
    posts_once(Kind::Postgres).await;
}

async fn posts_once(kind: Kind) {
    let (Some(s), Some(smtp)) = (synapse(), smtp_port()) else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = fresh(kind).await else {
        return;
    };
    let store = &db.store;
    let dir = tempfile::tempdir().expect("tempdir");
    configure(store, smtp, &s.url, &s, &s.token, &dir).await;
    let (stop, workers) = three_workers(store);
    let mark = marker("gdirect");
    let r = store
        .create_request(&actor("admin"), joiner(&mark))
        .await
        .expect("create");
    let job = completed_job(store, r.id, JobState::Completed).await;
    assert_eq!(job.attempts, 1);

    let event = the_one_message(&s, &mark, r.id).await;
    let d = detail(store, r.id).await;
    let steps = chat_steps(&d);
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["output"]["posted"], true);
    assert_eq!(steps[0]["output"]["target"], "synapse");
    assert_eq!(steps[0]["output"]["event_id"], event["event_id"]);
    let text = serde_json::to_string(&d.timeline).expect("json");
    assert!(
        !text.contains(&s.token),
        "the token is never in the timeline"
    );

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_lost_answer_is_not_shown_twice_by_synapse() {
    let (Some(s), Some(smtp)) = (synapse(), smtp_port()) else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let store = &db.store;
    let relay = Relay::start(&s.url).await;
    relay.lose_next_send.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("tempdir");
    configure(store, smtp, &relay.url, &s, &s.token, &dir).await;
    let (stop, workers) = three_workers(store);
    let mark = marker("gretry");
    let r = store
        .create_request(&actor("admin"), joiner(&mark))
        .await
        .expect("create");
    let job = completed_job(store, r.id, JobState::Completed).await;
    assert_eq!(job.attempts, 2, "one retry after the lost answer");

    // Synapse took both sends, with the same transaction ID, and answered the same event.
    let sends = relay.sends();
    assert_eq!(sends.len(), 2, "{sends:#?}");
    let path = format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/gatehouse.{}.{}.{}.0",
        encode(&s.room),
        r.id,
        job.id,
        job.created_at
    );
    assert!(
        sends.iter().all(|x| x.method == "PUT" && x.path == path),
        "{sends:#?}"
    );
    assert!(sends.iter().all(|x| x.status == 200), "{sends:#?}");
    assert_eq!(
        sends.iter().map(|x| x.answered).collect::<Vec<_>>(),
        vec![false, true]
    );
    let event_id = sends[0].answer["event_id"].clone();
    assert!(event_id.is_string(), "{sends:#?}");
    assert_eq!(sends[1].answer["event_id"], event_id);

    // The reader sees it once.
    let event = the_one_message(&s, &mark, r.id).await;
    assert_eq!(event["event_id"], event_id);
    // The timeline: the lost answer as a transient failure, then the post.
    let d = detail(store, r.id).await;
    let steps = chat_steps(&d);
    let posted: Vec<bool> = steps
        .iter()
        .filter_map(|st| st["output"]["posted"].as_bool())
        .collect();
    assert_eq!(posted, vec![false, true], "{steps:#?}");
    assert_eq!(steps[0]["output"]["retrying"], true);
    assert_eq!(steps[0]["output"]["permanent"], false);
    assert_eq!(steps[1]["output"]["event_id"], event_id);

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_fails_the_job_naming_m_unknown_token() {
    let (Some(s), Some(smtp)) = (synapse(), smtp_port()) else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(db) = fresh(Kind::Sqlite).await else {
        return;
    };
    let store = &db.store;
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "syt_Z2F0ZWhvdXNlLWJvdA_NotTheRealToken_0AbCdE";
    configure(store, smtp, &s.url, &s, wrong, &dir).await;
    let (stop, workers) = three_workers(store);
    let mark = marker("gwrong");
    let r = store
        .create_request(&actor("admin"), joiner(&mark))
        .await
        .expect("create");
    let dead = completed_job(store, r.id, JobState::Dead).await;
    assert_eq!(dead.attempts, 1, "a 401 is not retried");
    let why = dead.last_error.expect("a reason");
    assert!(
        why.contains("synapse: matrix: HTTP 401 Unauthorized: M_UNKNOWN_TOKEN: "),
        "{why}"
    );
    assert!(!why.contains(wrong), "{why}");
    let d = detail(store, r.id).await;
    let steps = chat_steps(&d);
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert_eq!(steps[0]["output"]["posted"], false);
    assert_eq!(steps[0]["output"]["permanent"], true);
    assert_eq!(steps[0]["output"]["retrying"], false);
    assert!(reader_sees(&s, &mark).await.is_empty());

    stop.send(true).expect("stop");
    for w in workers {
        w.await.expect("worker");
    }
}
