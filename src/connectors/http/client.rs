//! The HTTP connector's client: authentication from secret references (bearer, basic, an API
//! key header, OAuth 2.0 client credentials with a cached token), one call with a timeout,
//! `Retry-After` honoured in place after a 429 up to a limit, a new token after a 401, no redirects (credentials never
//! follow one), and errors that carry the service's own message and whether a retry may help.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::domain::config::{HttpAuth, HttpSettings};
use crate::domain::secret::SecretValue;

/// Attempts of one call while the service answers 429 with a short `Retry-After`.
const MAX_ATTEMPTS: u32 = 3;

/// Why an HTTP call failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The service could not be reached or did not answer in time.
    #[error("{method} {path}: {source}")]
    Transport {
        /// Method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with a status the operation does not accept.
    #[error("{method} {path}: HTTP {status}{}: {message}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    Status {
        /// Method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// HTTP status.
        status: u16,
        /// The service's message (or the start of its body).
        message: String,
        /// The `Retry-After` the service asked for, in seconds.
        retry_after: Option<u64>,
    },
    /// The answer was not what the connector's document says it is.
    #[error("{0}")]
    Protocol(String),
    /// A secret reference could not be resolved.
    #[error("{0}")]
    Secret(String),
}

impl HttpError {
    /// Timeouts, lost connections, 408, 429 and 5xx; other 4xx are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { source, .. } => !source.is_builder() && !source.is_decode(),
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Protocol(_) | Self::Secret(_) => false,
        }
    }
}

enum Auth {
    None,
    Header(String, SecretValue),
    ClientCredentials {
        token_url: String,
        client_id: String,
        secret: SecretValue,
        scope: Option<String>,
        token: Mutex<Option<(SecretValue, Instant)>>,
    },
}

/// An authenticated client for one service.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    max_wait: Duration,
}

/// The service's message from an error body: the usual fields of JSON APIs, else the start of
/// the body; made inert for display.
pub fn message_of(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        [
            "/error/message",
            "/errorMessage",
            "/error_description",
            "/message",
            "/detail",
            "/description",
            "/error",
            "/errors/0/message",
            "/errors/0",
        ]
        .iter()
        .find_map(|p| match v.pointer(p) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other @ Value::Object(_)) => Some(other.to_string()),
            _ => None,
        })
    });
    let text = found.unwrap_or_else(|| body.chars().take(200).collect());
    crate::domain::inert::inert_string(&text)
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                // Index < 64: six bits of n.
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What a call returned: the status and the JSON body (`Null` when empty).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Client {
    /// A client for `settings` (secrets resolved now, kept in memory only).
    pub fn new(settings: &HttpSettings) -> Result<Self, HttpError> {
        let secret = |r: &crate::domain::secret::SecretRef| {
            r.resolve().map_err(|e| HttpError::Secret(e.to_string()))
        };
        let auth = match &settings.auth {
            None => Auth::None,
            Some(HttpAuth::Bearer { token }) => Auth::Header(
                "Authorization".into(),
                SecretValue::new(format!("Bearer {}", secret(token)?.expose())),
            ),
            Some(HttpAuth::Basic { username, password }) => {
                let pair = format!("{username}:{}", secret(password)?.expose());
                Auth::Header(
                    "Authorization".into(),
                    SecretValue::new(format!("Basic {}", base64(pair.as_bytes()))),
                )
            }
            Some(HttpAuth::ApiKey {
                header,
                value,
                prefix,
            }) => Auth::Header(
                header.clone(),
                SecretValue::new(format!(
                    "{}{}",
                    prefix.as_deref().unwrap_or_default(),
                    secret(value)?.expose()
                )),
            ),
            Some(HttpAuth::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            }) => Auth::ClientCredentials {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                secret: secret(client_secret)?,
                scope: scope.clone(),
                token: Mutex::new(None),
            },
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout().min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| HttpError::Transport {
                method: "build".into(),
                path: String::new(),
                source,
            })?;
        Ok(Self {
            http,
            base: settings.base_url.trim_end_matches('/').to_string(),
            auth,
            max_wait: settings.max_retry_wait(),
        })
    }

    /// The base URL (without a trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The header that authenticates a call, if any.
    async fn auth_header(&self) -> Result<Option<(String, String)>, HttpError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Header(name, value) => Ok(Some((name.clone(), value.expose().to_string()))),
            Auth::ClientCredentials {
                token_url,
                client_id,
                secret,
                scope,
                token,
            } => {
                let mut cached = token.lock().await;
                if let Some((t, until)) = cached.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some((
                        "Authorization".into(),
                        format!("Bearer {}", t.expose()),
                    )));
                }
                let mut form = vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client_id.clone()),
                    ("client_secret", secret.expose().to_string()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
                let call = |source| HttpError::Transport {
                    method: "POST".into(),
                    path: "(token endpoint)".into(),
                    source,
                };
                let response = self
                    .http
                    .post(token_url)
                    .form(&form)
                    .send()
                    .await
                    .map_err(call)?;
                let status = response.status().as_u16();
                let wait = retry_after(&response);
                let body = response.text().await.map_err(call)?;
                if status >= 300 {
                    return Err(HttpError::Status {
                        method: "POST".into(),
                        path: "(token endpoint)".into(),
                        status,
                        message: message_of(&body),
                        retry_after: wait,
                    });
                }
                let value: Value = serde_json::from_str(&body).map_err(|_| {
                    HttpError::Protocol("token endpoint: the answer is not JSON".into())
                })?;
                let access = value
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        HttpError::Protocol("token endpoint: no access_token in the answer".into())
                    })?
                    .to_string();
                let lifetime = value
                    .get("expires_in")
                    .and_then(Value::as_u64)
                    .unwrap_or(300);
                let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30));
                *cached = Some((SecretValue::new(access.clone()), until));
                Ok(Some(("Authorization".into(), format!("Bearer {access}"))))
            }
        }
    }

    /// One call to `url` (a path below the base URL, or an absolute URL of the same origin).
    /// Statuses are returned as they are (the caller decides success); a 429 with a
    /// `Retry-After` no longer than the configured limit is waited for and tried again.
    pub async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, HttpError> {
        let full = if url.starts_with("https://") || url.starts_with("http://") {
            if !url.starts_with(&format!("{}/", self.base)) && url != self.base {
                return Err(HttpError::Protocol(format!(
                    "the service sent a link outside the base URL ({}); it is not followed",
                    crate::domain::inert::inert_string(url)
                )));
            }
            url.to_string()
        } else {
            format!("{}{}", self.base, url)
        };
        let path = full
            .strip_prefix(&self.base)
            .unwrap_or(full.as_str())
            .to_string();
        let transport = |source| HttpError::Transport {
            method: method.to_string(),
            path: path.clone(),
            source,
        };
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| HttpError::Protocol(format!("{method} is not an HTTP method")))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(m.clone(), &full)
                .header("Accept", "application/json");
            if let Some((name, value)) = self.auth_header().await? {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string());
            }
            let response = request.send().await.map_err(transport)?;
            let status = response.status().as_u16();
            let wait = retry_after(&response);
            let text = response.text().await.map_err(transport)?;
            if status == 401
                && attempt == 1
                && let Auth::ClientCredentials { token, .. } = &self.auth
            {
                // The service no longer takes the cached token (revoked or expired early):
                // fetch a new one and try once more.
                *token.lock().await = None;
                tracing::info!(%method, %path, "401: fetching a new access token");
                continue;
            }
            if status == 429
                && attempt < MAX_ATTEMPTS
                && let Some(seconds) = wait
                && Duration::from_secs(seconds) <= self.max_wait
            {
                tracing::info!(%method, %path, seconds, "429: waiting as Retry-After asks");
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                continue;
            }
            if status == 429 || status >= 500 {
                return Err(HttpError::Status {
                    method: method.to_string(),
                    path,
                    status,
                    message: message_of(&text),
                    retry_after: wait,
                });
            }
            let body = if text.trim().is_empty() {
                Value::Null
            } else if status < 300 {
                serde_json::from_str(&text).map_err(|_| {
                    HttpError::Protocol(format!("{method} {path}: the answer is not JSON"))
                })?
            } else {
                Value::String(message_of(&text))
            };
            return Ok(Answer { status, body });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_usual_fields() {
        assert_eq!(
            message_of(r#"{"error":{"code":"x","message":"User exists"}}"#),
            "User exists"
        );
        assert_eq!(
            message_of(r#"{"errorMessage":"User exists with same username"}"#),
            "User exists with same username"
        );
        assert_eq!(
            message_of(r#"{"ok":false,"error":"not_authed"}"#),
            "not_authed"
        );
        assert_eq!(message_of("plain"), "plain");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }

    #[test]
    fn transient_statuses() {
        let status = |status| HttpError::Status {
            method: "GET".into(),
            path: "/users".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        for s in [408, 429, 500, 503] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 404, 409] {
            assert!(!status(s).is_transient(), "{s}");
        }
    }
}
