//! Chat notifications with reqwest: Slack incoming webhooks (`{"text": …}`), Microsoft Teams
//! incoming webhooks (an Adaptive Card `message`, the shape Teams Workflows webhooks document)
//! and Matrix rooms through the client-server API (`PUT …/send/m.room.message/{txnId}`, the
//! transaction ID stable per notification so a retry is not posted twice). 429, 5xx, timeouts
//! and connection failures are transient; other 4xx are permanent with the service's reason.
//! Webhook URLs and tokens are secrets: never logged, never in a failure reason.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{debug, warn};

use crate::domain::config::{ChatKind, ChatTarget};

/// The longest part of a service's answer kept in a failure reason.
const REASON_CHARS: usize = 300;

/// One notification as chat text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The headline (the mail's subject).
    pub subject: String,
    /// The text (the mail's body).
    pub body: String,
}

/// Why a post did not reach its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct ChatFailure {
    /// True when retrying cannot help (a 4xx other than 429, a bad secret reference).
    pub permanent: bool,
    /// What the service or the client said (never the webhook URL or the token).
    pub reason: String,
}

impl ChatFailure {
    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }
}

/// An HTTP client for chat posts.
#[derive(Debug, Clone)]
pub struct ChatPoster {
    http: reqwest::Client,
}

impl ChatPoster {
    /// A client whose every post gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, ChatFailure> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ChatFailure::permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http })
    }

    /// Posts `message` to `target`. `txn_id` must be the same for every attempt of one
    /// notification to one target (Matrix uses it to drop a repeated post). Answers the Matrix
    /// event ID when there is one.
    pub async fn post(
        &self,
        target: &ChatTarget,
        message: &ChatMessage,
        txn_id: &str,
    ) -> Result<Option<String>, ChatFailure> {
        let kind = target.kind.as_str();
        let request = match target.kind {
            ChatKind::Slack | ChatKind::Teams => {
                let url = secret(target.url.as_ref(), "url")?;
                let body = match target.kind {
                    ChatKind::Slack => slack_payload(message),
                    _ => teams_payload(message),
                };
                self.http.post(url).json(&body)
            }
            ChatKind::Matrix => {
                let token = secret(target.token.as_ref(), "token")?;
                let (Some(homeserver), Some(room)) = (&target.homeserver, &target.room) else {
                    return Err(ChatFailure::permanent(
                        "a matrix target needs homeserver and room",
                    ));
                };
                self.http
                    .put(matrix_send_url(homeserver, room, txn_id))
                    .bearer_auth(token)
                    .json(&matrix_payload(message))
            }
        };
        let response = request.send().await.map_err(|e| {
            let e = e.without_url();
            let mut reason = format!("{kind}: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            ChatFailure {
                permanent: e.is_builder(),
                reason,
            }
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            debug!(%kind, status = status.as_u16(), "chat post accepted");
            let event_id = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("event_id").and_then(Value::as_str).map(String::from));
            return Ok(event_id);
        }
        let failure = ChatFailure {
            permanent: !(status.as_u16() == 429 || status.is_server_error()),
            reason: format!("{kind}: HTTP {status}: {}", reason_of(&text)),
        };
        warn!(%kind, status = status.as_u16(), permanent = failure.permanent, "chat post refused");
        Err(failure)
    }
}

fn secret(
    reference: Option<&crate::domain::secret::SecretRef>,
    field: &str,
) -> Result<String, ChatFailure> {
    let Some(reference) = reference else {
        return Err(ChatFailure::permanent(format!("{field} is not configured")));
    };
    reference
        .resolve()
        .map(|value| value.expose().trim().to_string())
        .map_err(|e| ChatFailure::permanent(format!("{field}: {e}")))
}

/// The service's reason: a Matrix `errcode: error`, else the answer's text, shortened.
fn reason_of(text: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(text)
        && let Some(code) = value.get("errcode").and_then(Value::as_str)
    {
        let error = value.get("error").and_then(Value::as_str).unwrap_or("");
        return format!(
            "{code}: {}",
            error.chars().take(REASON_CHARS).collect::<String>()
        );
    }
    let text = text.trim();
    if text.is_empty() {
        return "(empty answer)".to_string();
    }
    text.chars()
        .take(REASON_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Escapes the three characters Slack's mrkdwn treats as control sequences.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack incoming-webhook payload: `text` (also the notification fallback) with the subject
/// in bold.
pub fn slack_payload(message: &ChatMessage) -> Value {
    json!({
        "text": format!("*{}*\n{}", slack_escape(&message.subject), slack_escape(&message.body)),
    })
}

/// The Teams incoming-webhook payload: a `message` with one Adaptive Card (1.4) attachment, the
/// subject as a bold TextBlock and the body as a wrapped TextBlock.
pub fn teams_payload(message: &ChatMessage) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "TextBlock", "text": message.body, "wrap": true},
                ],
            },
        }],
    })
}

/// The Matrix `m.room.message` content: plain text, subject then body.
pub fn matrix_payload(message: &ChatMessage) -> Value {
    json!({
        "msgtype": "m.text",
        "body": format!("{}\n\n{}", message.subject, message.body),
    })
}

/// `PUT` URL of a Matrix send: `{homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}`
/// with the room and transaction ID percent-encoded.
pub fn matrix_send_url(homeserver: &str, room: &str, txn_id: &str) -> String {
    format!(
        "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        homeserver.trim_end_matches('/'),
        percent_encode(room),
        percent_encode(txn_id)
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_shapes() {
        let m = ChatMessage {
            subject: "A <b> & c".into(),
            body: "line".into(),
        };
        assert_eq!(slack_payload(&m)["text"], "*A &lt;b&gt; &amp; c*\nline");
        let teams = teams_payload(&m);
        assert_eq!(
            teams["attachments"][0]["content"]["body"][0]["text"],
            "A <b> & c"
        );
        assert_eq!(matrix_payload(&m)["body"], "A <b> & c\n\nline");
        assert_eq!(
            matrix_send_url("http://127.0.0.1:1/", "!r:ex.org", "gh.1.2"),
            "http://127.0.0.1:1/_matrix/client/v3/rooms/%21r%3Aex.org/send/m.room.message/gh.1.2"
        );
        assert_eq!(
            reason_of(r#"{"errcode":"M_FORBIDDEN","error":"not in room"}"#),
            "M_FORBIDDEN: not in room"
        );
        assert_eq!(reason_of(" no_service\n"), "no_service");
    }
}
