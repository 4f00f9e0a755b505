//! The SCIM 2.0 HTTP client: authentication (a bearer token or OAuth 2.0 client credentials,
//! both from secret references), JSON requests with `If-Match`, paged list queries, and
//! errors that say which call failed and whether a retry may help.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::domain::config::{OAuthClient, ScimSettings};
use crate::domain::secret::SecretValue;

/// Why a SCIM call failed.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
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
    /// The service answered with an error status.
    #[error("{method} {path}: HTTP {status}: {detail}")]
    Status {
        /// Method.
        method: String,
        /// Path below the base URL.
        path: String,
        /// HTTP status.
        status: u16,
        /// The service's `detail` (or the start of its body).
        detail: String,
    },
    /// The answer was not what SCIM says it is.
    #[error("{0}")]
    Protocol(String),
    /// A secret reference could not be resolved.
    #[error("{0}")]
    Secret(String),
}

impl ScimError {
    /// Timeouts, lost connections, 408, 412 (changed since read: plan again), 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { source, .. } => !source.is_builder() && !source.is_decode(),
            Self::Status { status, .. } => matches!(status, 408 | 412 | 429 | 500..=599),
            Self::Protocol(_) | Self::Secret(_) => false,
        }
    }
}

enum Auth {
    Bearer(SecretValue),
    OAuth {
        client: OAuthClient,
        secret: SecretValue,
        token: Mutex<Option<SecretValue>>,
    },
}

/// An authenticated client for one SCIM service.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

fn detail_of(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let detail = parsed
        .as_ref()
        .and_then(|v| v.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(200).collect());
    crate::domain::inert::inert_string(&detail)
}

impl Client {
    /// A client for `settings` (secrets resolved now, kept in memory only).
    pub fn new(settings: &ScimSettings) -> Result<Self, ScimError> {
        let secret = |r: &crate::domain::secret::SecretRef| {
            r.resolve().map_err(|e| ScimError::Secret(e.to_string()))
        };
        let auth = match (&settings.token, &settings.oauth) {
            (Some(token), _) => Auth::Bearer(secret(token)?),
            (None, Some(client)) => Auth::OAuth {
                client: client.clone(),
                secret: secret(&client.client_secret)?,
                token: Mutex::new(None),
            },
            (None, None) => {
                return Err(ScimError::Secret(
                    "no token and no OAuth client configured".into(),
                ));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout().min(Duration::from_secs(5)))
            .build()
            .map_err(|source| ScimError::Transport {
                method: "build".into(),
                path: String::new(),
                source,
            })?;
        Ok(Self {
            http,
            base: settings.base_url.trim_end_matches('/').to_string(),
            auth,
        })
    }

    async fn bearer(&self) -> Result<String, ScimError> {
        match &self.auth {
            Auth::Bearer(token) => Ok(token.expose().to_string()),
            Auth::OAuth {
                client,
                secret,
                token,
            } => {
                let mut cached = token.lock().await;
                if let Some(t) = cached.as_ref() {
                    return Ok(t.expose().to_string());
                }
                let mut form = vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client.client_id.clone()),
                    ("client_secret", secret.expose().to_string()),
                ];
                if let Some(scope) = &client.scope {
                    form.push(("scope", scope.clone()));
                }
                let call = |source| ScimError::Transport {
                    method: "POST".into(),
                    path: "(token endpoint)".into(),
                    source,
                };
                let response = self
                    .http
                    .post(&client.token_url)
                    .form(&form)
                    .send()
                    .await
                    .map_err(call)?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(call)?;
                if status >= 300 {
                    return Err(ScimError::Status {
                        method: "POST".into(),
                        path: "(token endpoint)".into(),
                        status,
                        detail: detail_of(&body),
                    });
                }
                let value: Value = serde_json::from_str(&body).map_err(|_| {
                    ScimError::Protocol("token endpoint: the answer is not JSON".into())
                })?;
                let access = value
                    .get("access_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ScimError::Protocol("token endpoint: no access_token in the answer".into())
                    })?
                    .to_string();
                *cached = Some(SecretValue::new(access.clone()));
                Ok(access)
            }
        }
    }

    /// One call: `path` below the base URL; returns the status and the JSON body (Null when
    /// empty). Error statuses become [`ScimError::Status`].
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(u16, Value), ScimError> {
        let transport = |source| ScimError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ScimError::Protocol(format!("{method} is not an HTTP method")))?;
        let mut request = self
            .http
            .request(m, format!("{}{}", self.base, path))
            .bearer_auth(self.bearer().await?)
            .header("Accept", "application/scim+json");
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        if status >= 300 {
            return Err(ScimError::Status {
                method: method.to_string(),
                path: path.to_string(),
                status,
                detail: detail_of(&text),
            });
        }
        if text.trim().is_empty() {
            return Ok((status, Value::Null));
        }
        let value = serde_json::from_str(&text)
            .map_err(|_| ScimError::Protocol(format!("{method} {path}: the answer is not JSON")))?;
        Ok((status, value))
    }

    /// Every resource of a list query, page by page (`startIndex`/`count`).
    pub async fn list_all(
        &self,
        resource: &str,
        filter: Option<&str>,
        page_size: u32,
    ) -> Result<Vec<Value>, ScimError> {
        let mut out = Vec::new();
        let mut start = 1usize;
        loop {
            let mut path = format!("/{resource}?startIndex={start}&count={page_size}");
            if let Some(f) = filter {
                path.push_str("&filter=");
                path.push_str(&encode(f));
            }
            let (_, page) = self.call("GET", &path, None, None).await?;
            let total = page
                .get("totalResults")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    ScimError::Protocol(format!("GET {path}: no totalResults in the answer"))
                })?;
            let items = page
                .get("Resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let got = items.len();
            out.extend(items);
            start += got;
            if got == 0 || out.len() as u64 >= total {
                return Ok(out);
            }
        }
    }
}

/// Percent-encode a query value.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A SCIM filter string literal: quotes and backslashes escaped.
pub fn literal(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_quoted_and_encoded() {
        assert_eq!(literal(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            encode(&format!("userName eq {}", literal("bjensen"))),
            "userName%20eq%20%22bjensen%22"
        );
    }

    #[test]
    fn transient_statuses() {
        let status = |status| ScimError::Status {
            method: "GET".into(),
            path: "/Users".into(),
            status,
            detail: String::new(),
        };
        for s in [408, 412, 429, 500, 503] {
            assert!(status(s).is_transient(), "{s}");
        }
        for s in [400, 401, 404, 409] {
            assert!(!status(s).is_transient(), "{s}");
        }
    }
}
