//! Shared by the notification tests: the SMTP sink (aiosmtpd from tests/servers.sh writes
//! every accepted message into `GATEHOUSE_TEST_SMTP_DIR`), reading what it received, and
//! waiting for jobs and timeline steps.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse::store::Store;
use gatehouse::store::api::{Actor, CommandApi, JobFilter, JobRow, ReadApi, RequestDetail};

use crate::support;

/// The SMTP sink's port and message directory, or `None` (skip) outside CI.
pub fn smtp_server() -> Option<(u16, PathBuf)> {
    let port = std::env::var("GATEHOUSE_TEST_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok());
    let dir = std::env::var("GATEHOUSE_TEST_SMTP_DIR")
        .ok()
        .map(PathBuf::from);
    let reachable = port.is_some_and(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok());
    match (port, dir) {
        (Some(port), Some(dir)) if reachable => Some((port, dir)),
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

/// The notifier document for the SMTP sink on `port` (plain, loopback); `extra` lines follow.
pub fn loopback_notifier(port: u16, extra: &str) -> String {
    format!(
        "kind = \"notifier\"\nname = \"loopback\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Gatehouse <gatehouse@example.com>\"\ntimeout = \"10s\"\n{extra}"
    )
}

/// Saves each (kind, name, body) as version 1 of its document, as an admin.
pub async fn save_documents(store: &Store, documents: &[(&str, &str, String)]) {
    let admin = Actor::operator("admin", "test");
    for (kind, name, body) in documents {
        store
            .save_config(&admin, kind, name, body, "", 0)
            .await
            .unwrap_or_else(|e| panic!("save {name}: {e}"));
    }
}

/// A word unique to this run, so messages of earlier runs in the shared directory never match.
pub fn nonce() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// A received message: envelope recipients, decoded subject and text.
#[derive(Debug)]
pub struct Received {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Decoded subject.
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// The HTML part, when the message has one.
    pub html: Option<String>,
    /// The Reply-To address.
    pub reply_to: Option<String>,
    /// The whole message as received.
    pub raw: String,
}

/// The messages the sink accepted whose subject contains `tag`.
pub fn received(dir: &PathBuf, tag: &str) -> Vec<Received> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'))
        {
            continue;
        }
        let Ok(raw) = std::fs::read(&path) else {
            continue;
        };
        let Some(message) = mail_parser::MessageParser::default().parse(&raw[..]) else {
            continue;
        };
        let subject = message.subject().unwrap_or_default().to_string();
        if !subject.contains(tag) {
            continue;
        }
        let text = String::from_utf8_lossy(&raw);
        out.push(Received {
            to: text
                .lines()
                .filter_map(|l| l.strip_prefix("X-Envelope-To: "))
                .map(|l| l.trim().to_string())
                .collect(),
            subject,
            body: message
                .body_text(0)
                .map(|b| b.replace("\r\n", "\n"))
                .unwrap_or_default(),
            html: text
                .contains("Content-Type: text/html")
                .then(|| message.body_html(0).map(|b| b.to_string()))
                .flatten(),
            reply_to: message
                .reply_to()
                .and_then(|r| r.first())
                .and_then(|a| a.address())
                .map(str::to_string),
            raw: text.to_string(),
        });
    }
    out
}

/// Polls `check` for up to 40 s.
pub async fn wait_until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The request's jobs.
pub async fn jobs_of(store: &Store, request_id: i64) -> Vec<JobRow> {
    let filter = JobFilter {
        request_id: Some(request_id),
        ..JobFilter::default()
    };
    store
        .list_jobs(&filter, None, 100)
        .await
        .expect("jobs")
        .rows
}

/// The timeline steps of the request's `kind` mails.
pub fn mail_steps(d: &RequestDetail, kind: &str) -> Vec<serde_json::Value> {
    d.timeline
        .iter()
        .filter(|t| t.kind == "step")
        .filter(|t| {
            t.detail["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{kind} mail")))
        })
        .map(|t| t.detail.clone())
        .collect()
}
