//! A loopback HTTP/1.1 server for the HTTP connector's tests: every request is parsed (method,
//! path with query, headers, JSON body) and handed to a handler that answers with recorded
//! response shapes. [`Script`] is a handler that expects an exact sequence of calls and
//! records every mismatch; [`keycloak`] is a small stateful Keycloak admin API.

#![allow(dead_code)]

pub mod keycloak;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query as sent (still percent-encoded).
    pub target: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON (Null when empty), or a string when it is a form.
    pub body: Value,
    /// The raw body.
    pub raw: String,
}

impl Request {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Query parameters, percent-decoded.
    pub fn query(&self) -> BTreeMap<String, String> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        form(q)
    }
}

/// Decode `a=b&c=d` (percent and `+`).
pub fn form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decode (and `+` as a space).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body (None: empty).
    pub body: Option<Value>,
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// `status` without a body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    /// 429 with `Retry-After: seconds`.
    pub fn throttled(seconds: u64, body: Value) -> Self {
        Self {
            status: 429,
            headers: vec![("Retry-After".into(), seconds.to_string())],
            body: Some(body),
        }
    }
}

/// What answers requests.
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let raw = String::from_utf8_lossy(&buf[header_end..]).to_string();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone()))
    };
    Some(Request {
        method,
        target,
        headers,
        body,
        raw,
    })
}

/// Serve `handler` on a loopback port; returns `http://127.0.0.1:PORT`.
pub async fn serve(handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                while let Some(request) = read_request(&mut stream).await {
                    let reply = handler(&request);
                    let body = reply.body.map(|b| b.to_string()).unwrap_or_default();
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
                        reply.status,
                        body.len()
                    );
                    if !body.is_empty() {
                        head.push_str("Content-Type: application/json\r\n");
                    }
                    for (k, v) in &reply.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    base
}

/// One expected call and its recorded answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Method.
    pub method: &'static str,
    /// Path and query exactly as the service must receive them.
    pub target: String,
    /// The JSON body it must send (None: no body).
    pub body: Option<Value>,
    /// The answer.
    pub reply: Reply,
}

/// A call the test expects.
pub fn expect(method: &'static str, target: &str, body: Option<Value>, reply: Reply) -> Exchange {
    Exchange {
        method,
        target: target.to_string(),
        body,
        reply,
    }
}

/// A handler answering an exact sequence of calls; every difference is recorded.
#[derive(Default)]
pub struct Script {
    queue: Mutex<VecDeque<Exchange>>,
    /// Mismatches seen (method, path, header or body).
    pub errors: Mutex<Vec<String>>,
    /// The `Authorization` (or other) header every call must carry: (name, value).
    pub auth: Mutex<Option<(String, String)>>,
    /// Every request seen.
    pub seen: Mutex<Vec<Request>>,
}

impl Script {
    /// Expect these calls next.
    pub fn push(&self, exchanges: impl IntoIterator<Item = Exchange>) {
        self.queue.lock().unwrap().extend(exchanges);
    }

    /// Calls still expected.
    pub fn remaining(&self) -> Vec<String> {
        self.queue
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e.method, e.target))
            .collect()
    }

    /// Panics unless every expected call came, as expected.
    pub fn assert_done(&self) {
        let errors = self.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "mismatches: {errors:#?}");
        let remaining = self.remaining();
        assert!(remaining.is_empty(), "never called: {remaining:?}");
    }

    /// Answer one request.
    pub fn answer(&self, request: &Request) -> Reply {
        self.seen.lock().unwrap().push(request.clone());
        let mut problems = Vec::new();
        if let Some((name, value)) = self.auth.lock().unwrap().clone()
            && request.headers.get(&name.to_ascii_lowercase()) != Some(&value)
        {
            problems.push(format!(
                "{} {}: header {name} is {:?}",
                request.method,
                request.target,
                request.headers.get(&name.to_ascii_lowercase())
            ));
        }
        let Some(next) = self.queue.lock().unwrap().pop_front() else {
            self.errors
                .lock()
                .unwrap()
                .push(format!("unexpected {} {}", request.method, request.target));
            return Reply::json(418, serde_json::json!({ "message": "unexpected call" }));
        };
        if next.method != request.method || next.target != request.target {
            problems.push(format!(
                "expected {} {}, got {} {}",
                next.method, next.target, request.method, request.target
            ));
        }
        let body = (!request.body.is_null()).then(|| request.body.clone());
        if next.body != body {
            problems.push(format!(
                "{} {}: body {body:?}, expected {:?}",
                request.method, request.target, next.body
            ));
        }
        let want_type = match &body {
            None => None,
            Some(serde_json::Value::String(_)) => Some("application/x-www-form-urlencoded"),
            Some(_) => Some("application/json"),
        };
        if want_type.is_some()
            && request.headers.get("content-type").map(String::as_str) != want_type
        {
            problems.push(format!(
                "{} {}: content-type {:?}, expected {want_type:?}",
                request.method,
                request.target,
                request.headers.get("content-type")
            ));
        }
        if !problems.is_empty() {
            self.errors.lock().unwrap().extend(problems);
        }
        next.reply
    }
}

/// Serve `script`.
pub async fn serve_script(script: &Arc<Script>) -> String {
    let s = script.clone();
    serve(Arc::new(move |r: &Request| s.answer(r))).await
}

/// The text of a shipped recipe with its service URLs replaced by `base` and its secret
/// references by files holding `secret`.
pub fn recipe(file: &str, replace: &[(&str, &str)]) -> String {
    let (_, text) = gatehouse::connectors::http::RECIPES
        .iter()
        .find(|(f, _)| *f == file)
        .unwrap_or_else(|| panic!("no recipe {file}"));
    let mut text = text.to_string();
    for (from, to) in replace {
        assert!(text.contains(from), "{file} has no {from}");
        text = text.replace(from, to);
    }
    text
}

/// A secret file holding `value` (kept for the test's lifetime).
pub fn secret_file(value: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "{value}").unwrap();
    f
}

/// A stored connector version holding `body`.
pub fn doc(name: &str, body: String) -> gatehouse::store::api::ConfigVersion {
    gatehouse::store::api::ConfigVersion {
        name: name.into(),
        kind: "connector".into(),
        version: 1,
        body,
        author: "test".into(),
        comment: String::new(),
        created_at: 0,
    }
}

/// Read, plan and apply `want` (with the connector's read-back).
pub async fn apply(
    c: &gatehouse::connectors::AnyConnector,
    want: &gatehouse::connectors::model::Desired,
) -> Result<Option<gatehouse::connectors::model::Account>, gatehouse::connectors::ConnectorError> {
    let current = c.read(&want.key).await?;
    let plan = c.plan(current.as_ref(), want)?;
    c.apply(&plan, want).await
}

/// A set of strings.
pub fn set(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Start a script for `recipe` (returns the connector, the script, the secret file and the
/// server's base) with its service URL replaced by the server, its secret
/// reference by a file holding `secret`, and every call required to carry `auth`.
pub async fn scripted(
    recipe_file: &str,
    service_url: &str,
    secret_ref: &str,
    secret: &str,
    auth: (&str, &str),
) -> (
    gatehouse::connectors::AnyConnector,
    Arc<Script>,
    tempfile::NamedTempFile,
    String,
) {
    let script = Arc::new(Script::default());
    let base = serve_script(&script).await;
    let file = secret_file(secret);
    let body = recipe(
        recipe_file,
        &[
            (service_url, &base),
            (secret_ref, &format!("file:{}", file.path().display())),
        ],
    );
    *script.auth.lock().unwrap() = Some((auth.0.to_string(), auth.1.to_string()));
    let name = recipe_file.trim_end_matches(".toml");
    let c = gatehouse::connectors::AnyConnector::from_doc(&doc(name, body)).expect("connector");
    (c, script, file, base)
}
