//! A loopback HTTP server answering like Microsoft Graph v1.0 and its token endpoint, from
//! the recorded response shapes in `tests/fixtures/graph/`. Lists come in pages of two with
//! `@odata.nextLink`; the test can make it throttle (429 + `Retry-After`), expire the tokens
//! it issued (401 InvalidAuthenticationToken), and count what it was asked. It can also
//! serve HTTPS with a given certificate (for a directory's `ca_file`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// The client secret the server accepts.
pub const SECRET: &str = "graph-test-secret";
const PAGE: usize = 2;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graph")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Counters and switches shared with the test.
#[derive(Default)]
pub struct Control {
    /// The next this many API calls are answered 429 with `Retry-After: 1`.
    pub throttle_next: AtomicU32,
    /// Token requests seen.
    pub token_requests: AtomicU32,
    /// API requests seen (including refused ones).
    pub api_requests: AtomicU32,
    /// 429 answers given.
    pub throttled: AtomicU32,
    /// 401 answers given for expired tokens.
    pub expired_answers: AtomicU32,
    issued: Mutex<Vec<String>>,
    expired: Mutex<HashSet<String>>,
}

impl Control {
    /// Every token issued so far is expired from now on.
    pub fn expire_tokens(&self) {
        let issued = self.issued.lock().unwrap().clone();
        self.expired.lock().unwrap().extend(issued);
    }
}

/// A running server.
pub struct GraphServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Switches and counters.
    pub control: Arc<Control>,
}

impl GraphServer {
    /// Start on an ephemeral loopback port.
    pub async fn start() -> GraphServer {
        Self::spawn(None).await
    }

    /// Start with HTTPS on an ephemeral loopback port, presenting the PEM certificate chain
    /// `cert` with its key `key`; the base is `https://127.0.0.1:PORT`.
    pub async fn start_tls(cert: &Path, key: &Path) -> GraphServer {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::spawn(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn spawn(tls: Option<tokio_rustls::TlsAcceptor>) -> GraphServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        let control = Arc::new(Control::default());
        let data = Arc::new(fixture("directory.json"));
        let (c, b) = (control.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, d, b, tls) = (c.clone(), data.clone(), b.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            // A client that does not trust the certificate ends the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = serve(stream, &c, &d, &b).await;
                            }
                        }
                        None => {
                            let _ = serve(stream, &c, &d, &b).await;
                        }
                    }
                });
            }
        });
        GraphServer { base, control }
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_of(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    (path.to_string(), pairs)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    control: &Control,
    data: &Value,
    base: &str,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    let mut auth = String::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => auth = v.trim().to_string(),
                _ => {}
            }
        }
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let (status, extra, reply) = answer(control, data, base, &method, &target, &auth, &body);
    let text = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn user_by_id<'a>(data: &'a Value, id: &str) -> Option<&'a Value> {
    data["users"].as_array()?.iter().find(|u| u["id"] == id)
}

fn group_by_id<'a>(data: &'a Value, id: &str) -> Option<&'a Value> {
    data["groups"].as_array()?.iter().find(|g| g["id"] == id)
}

fn user_json(user: &Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.user",
        "id": user["id"], "displayName": user["displayName"], "mail": user["mail"],
        "userPrincipalName": user["userPrincipalName"], "mailNickname": user["mailNickname"],
    })
}

/// Members of a group, transitively (users only), in order.
fn transitive_users(data: &Value, group: &Value, seen: &mut HashSet<String>, out: &mut Vec<Value>) {
    for id in group["members"].as_array().into_iter().flatten() {
        let id = id.as_str().unwrap_or("");
        if !seen.insert(id.to_string()) {
            continue;
        }
        if let Some(user) = user_by_id(data, id) {
            out.push(user_json(user));
        } else if let Some(inner) = group_by_id(data, id) {
            transitive_users(data, inner, seen, out);
        }
    }
}

fn parents_of(data: &Value, id: &str, seen: &mut HashSet<String>, out: &mut Vec<Value>) {
    for group in data["groups"].as_array().into_iter().flatten() {
        let gid = group["id"].as_str().unwrap_or("").to_string();
        let member = group["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m == id);
        if member && seen.insert(gid.clone()) {
            out.push(json!({"@odata.type": "#microsoft.graph.group", "id": gid, "displayName": group["displayName"]}));
            parents_of(data, &gid, seen, out);
        }
    }
}

fn page(base: &str, path: &str, query: &[(String, String)], items: Vec<Value>) -> Value {
    let skip: usize = query
        .iter()
        .find(|(k, _)| k == "$skiptoken")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let shown: Vec<Value> = items.iter().skip(skip).take(PAGE).cloned().collect();
    let mut reply = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{}", path.trim_start_matches("/v1.0/")),
        "value": shown,
    });
    if skip + PAGE < items.len() {
        let select = query
            .iter()
            .find(|(k, _)| k == "$select")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        reply["@odata.nextLink"] = json!(format!(
            "{base}{path}?$select={select}&$skiptoken={}",
            skip + PAGE
        ));
    }
    reply
}

/// `field eq 'value'` clauses joined by `or`.
fn filter_matches(filter: &str, item: &Value) -> bool {
    filter.split(" or ").any(|clause| {
        let Some((field, value)) = clause.split_once(" eq ") else {
            return false;
        };
        let value = value.trim().trim_matches('\'').replace("''", "'");
        item[field.trim()]
            .as_str()
            .is_some_and(|v| v.eq_ignore_ascii_case(&value))
    })
}

#[allow(clippy::too_many_arguments)]
fn answer(
    control: &Control,
    data: &Value,
    base: &str,
    method: &str,
    target: &str,
    auth: &str,
    body: &str,
) -> (String, String, Value) {
    let ok = |v: Value| ("200 OK".to_string(), String::new(), v);
    let (path, query) = query_of(target);
    if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        control.token_requests.fetch_add(1, Ordering::SeqCst);
        let (_, form) = query_of(&format!("?{body}"));
        let get = |k: &str| {
            form.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("client_secret") != SECRET || get("grant_type") != "client_credentials" {
            return (
                "401 Unauthorized".into(),
                String::new(),
                fixture("token-invalid-client.json"),
            );
        }
        let mut issued = control.issued.lock().unwrap();
        let token = format!("token-{}", issued.len() + 1);
        issued.push(token.clone());
        let mut reply = fixture("token.json");
        reply["access_token"] = json!(token);
        return ok(reply);
    }
    control.api_requests.fetch_add(1, Ordering::SeqCst);
    let token = auth.strip_prefix("Bearer ").unwrap_or("");
    if !control.issued.lock().unwrap().iter().any(|t| t == token) {
        return (
            "401 Unauthorized".into(),
            String::new(),
            fixture("error-401-expired-token.json"),
        );
    }
    if control.expired.lock().unwrap().contains(token) {
        control.expired_answers.fetch_add(1, Ordering::SeqCst);
        return (
            "401 Unauthorized".into(),
            String::new(),
            fixture("error-401-expired-token.json"),
        );
    }
    if control
        .throttle_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        control.throttled.fetch_add(1, Ordering::SeqCst);
        return (
            "429 Too Many Requests".into(),
            "Retry-After: 1\r\n".into(),
            fixture("error-429-throttled.json"),
        );
    }
    let not_found = |code: &str| {
        (
            "404 Not Found".to_string(),
            String::new(),
            json!({"error": {"code": code, "message": format!("Resource '{path}' does not exist or one of its queried reference-property objects are not present.")}}),
        )
    };
    let filter = query
        .iter()
        .find(|(k, _)| k == "$filter")
        .map(|(_, v)| v.clone());
    let segments: Vec<&str> = path.trim_start_matches("/v1.0/").split('/').collect();
    match segments.as_slice() {
        ["users"] => {
            let users: Vec<Value> = data["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|u| filter.as_deref().is_none_or(|f| filter_matches(f, u)))
                .map(user_json)
                .collect();
            ok(page(base, &path, &query, users))
        }
        ["users", id, "manager"] => match user_by_id(data, id) {
            None => not_found("Request_ResourceNotFound"),
            Some(user) => match user["manager"].as_str().and_then(|m| user_by_id(data, m)) {
                Some(manager) => ok(user_json(manager)),
                None => (
                    "404 Not Found".into(),
                    String::new(),
                    fixture("error-404-no-manager.json"),
                ),
            },
        },
        ["users", id, "transitiveMemberOf", "microsoft.graph.group"] => {
            let mut out = Vec::new();
            parents_of(data, id, &mut HashSet::new(), &mut out);
            ok(page(base, &path, &query, out))
        }
        ["users", id, "mailboxSettings", "automaticRepliesSetting"] => match user_by_id(data, id) {
            None => not_found("ErrorItemNotFound"),
            Some(user) => ok(fixture(
                user["automaticReplies"]
                    .as_str()
                    .unwrap_or("automatic-replies-disabled.json"),
            )),
        },
        ["groups"] => {
            let groups: Vec<Value> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| filter.as_deref().is_none_or(|f| filter_matches(f, g)))
                .map(|g| json!({"id": g["id"], "displayName": g["displayName"]}))
                .collect();
            ok(page(base, &path, &query, groups))
        }
        ["groups", id, kind, "microsoft.graph.user"] => match group_by_id(data, id) {
            None => not_found("Request_ResourceNotFound"),
            Some(group) => {
                let mut out = Vec::new();
                if *kind == "owners" {
                    for owner in group["owners"].as_array().into_iter().flatten() {
                        out.extend(user_by_id(data, owner.as_str().unwrap_or("")).map(user_json));
                    }
                } else {
                    transitive_users(data, group, &mut HashSet::new(), &mut out);
                }
                ok(page(base, &path, &query, out))
            }
        },
        _ => not_found("Request_BadRequest"),
    }
}
