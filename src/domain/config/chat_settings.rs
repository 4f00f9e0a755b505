//! The `[[chat]]` targets of a `kind = "notifier"` document: Slack and Microsoft Teams incoming
//! webhooks (the URL is a secret reference) and Matrix rooms (homeserver, room ID, access token
//! reference).

use serde::{Deserialize, Serialize};

use super::{is_host, is_loopback};
use crate::domain::diagnostic::FieldError;
use crate::domain::secret::SecretRef;

/// Which chat service a target posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    /// Slack incoming webhook (`{"text": …}`).
    Slack,
    /// Microsoft Teams incoming webhook (Adaptive Card message).
    Teams,
    /// Matrix room through the client-server API.
    Matrix,
}

impl ChatKind {
    /// The kind as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Matrix => "matrix",
        }
    }
}

/// One chat destination of a notifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatTarget {
    /// `slack`, `teams` or `matrix`.
    pub kind: ChatKind,
    /// Label shown in the timeline (default: `slack #1`, or the Matrix room).
    #[serde(default)]
    pub name: Option<String>,
    /// Webhook URL reference for Slack and Teams (`env:NAME` or `file:/path`): the URL is the
    /// credential.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// Matrix homeserver base URL (`https://matrix.example.com`).
    #[serde(default)]
    pub homeserver: Option<String>,
    /// Matrix room ID (`!abc:example.com`).
    #[serde(default)]
    pub room: Option<String>,
    /// Matrix access token reference.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

impl ChatTarget {
    /// The label of the `index`th target (0-based) in timelines and logs; never a secret.
    pub fn label(&self, index: usize) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match (self.kind, &self.room) {
            (ChatKind::Matrix, Some(room)) => format!("matrix {room}"),
            (kind, _) => format!("{} #{}", kind.as_str(), index + 1),
        }
    }

    /// Problems within this target, with fields prefixed `chat[index]`.
    pub fn validate(&self, index: usize, errors: &mut Vec<FieldError>) {
        let at = |field: &str| format!("chat[{index}].{field}");
        if let Some(name) = &self.name
            && (name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control))
        {
            errors.push(FieldError::new(
                at("name"),
                "must be 1 to 100 printable characters",
            ));
        }
        let kind = self.kind.as_str();
        match self.kind {
            ChatKind::Slack | ChatKind::Teams => {
                if self.url.is_none() {
                    errors.push(FieldError::new(
                        at("url"),
                        format!(
                            "a {kind} target needs the webhook URL as a reference (url = \"env:NAME\" or \"file:/path\")"
                        ),
                    ));
                }
                for (field, set) in [
                    ("homeserver", self.homeserver.is_some()),
                    ("room", self.room.is_some()),
                    ("token", self.token.is_some()),
                ] {
                    if set {
                        errors.push(FieldError::new(
                            at(field),
                            format!("is only used by kind = \"matrix\", not \"{kind}\""),
                        ));
                    }
                }
            }
            ChatKind::Matrix => {
                match &self.homeserver {
                    None => errors.push(FieldError::new(
                        at("homeserver"),
                        "a matrix target needs the homeserver URL (https://matrix.example.com)",
                    )),
                    Some(url) => {
                        if let Err(why) = check_homeserver(url) {
                            errors.push(FieldError::new(at("homeserver"), why));
                        }
                    }
                }
                match &self.room {
                    None => errors.push(FieldError::new(
                        at("room"),
                        "a matrix target needs a room ID (!abc:example.com)",
                    )),
                    Some(room) if !is_room_id(room) => errors.push(FieldError::new(
                        at("room"),
                        format!(
                            "\"{}\" is not a room ID (`!opaque:server`, or `!opaque` from room version 12; aliases like #room:server are not resolved)",
                            room.escape_default()
                        ),
                    )),
                    Some(_) => {}
                }
                if self.token.is_none() {
                    errors.push(FieldError::new(
                        at("token"),
                        "a matrix target needs the access token as a reference (env:NAME or file:/path)",
                    ));
                }
                if self.url.is_some() {
                    errors.push(FieldError::new(
                        at("url"),
                        "is only used by kind = \"slack\" and \"teams\"; a matrix target uses homeserver, room and token",
                    ));
                }
            }
        }
    }
}

/// Checks a homeserver base URL: `https://host[:port][/path]`, or `http://` on loopback.
fn check_homeserver(url: &str) -> Result<(), String> {
    let shown = url.escape_default();
    let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("\"{shown}\" is not an https:// URL"));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            if port.parse::<u16>().is_ok_and(|p| p == 0) || port.parse::<u16>().is_err() {
                return Err(format!("\"{shown}\": \"{port}\" is not a port"));
            }
            host
        }
        _ => authority,
    };
    if !is_host(host) || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "\"{shown}\" is not a homeserver URL (https://host[:port][/path])"
        ));
    }
    if !secure && !is_loopback(host) {
        return Err(format!(
            "\"{shown}\": http:// would send the access token unencrypted; it is only allowed for a loopback host"
        ));
    }
    Ok(())
}

/// True for a Matrix room ID: `!localpart:server`, printable, no `/`, `?` or `#`.
/// A Matrix room ID: `!opaque:server` (room versions 1 to 11) or `!opaque` alone (room version
/// 12 on, where the ID is the create event's hash and names no server; what Synapse 1.163
/// creates by default).
fn is_room_id(room: &str) -> bool {
    let Some(rest) = room.strip_prefix('!') else {
        return false;
    };
    let (local, server) = match rest.split_once(':') {
        Some((local, server)) => (local, Some(server)),
        None => (rest, None),
    };
    !local.is_empty()
        && server.is_none_or(|s| !s.is_empty())
        && room.len() <= 255
        && room
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '%'))
}

#[cfg(test)]
mod tests {
    use crate::domain::config::{ConfigDocument, check_document};

    fn check(chat: &str) -> Result<usize, Vec<String>> {
        let text = format!(
            "kind = \"notifier\"\nname = \"n\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n{chat}"
        );
        match check_document("n.toml", &text) {
            Ok(ConfigDocument::Notifier(n)) => Ok(n.chat.len()),
            Ok(other) => Err(vec![format!("{other:?}")]),
            Err(errors) => Err(errors.iter().map(|e| e.to_string()).collect()),
        }
    }

    #[test]
    fn chat_targets_are_checked() {
        let good = "[[chat]]\nkind = \"slack\"\nurl = \"env:SLACK_HOOK\"\n\n[[chat]]\nkind = \"teams\"\nurl = \"file:/etc/gh/teams\"\n\n[[chat]]\nkind = \"matrix\"\nhomeserver = \"https://matrix.example.com\"\nroom = \"!abc:example.com\"\ntoken = \"env:MX\"\n";
        assert_eq!(check(good), Ok(3));
        assert_eq!(check(""), Ok(0));
        for (chat, field) in [
            ("[[chat]]\nkind = \"slack\"", "chat[0].url"),
            (
                "[[chat]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"",
                "chat[0].url",
            ),
            (
                "[[chat]]\nkind = \"teams\"\nurl = \"env:T\"\nroom = \"!a:b\"",
                "chat[0].room",
            ),
            (
                "[[chat]]\nkind = \"matrix\"\nroom = \"!a:b\"\ntoken = \"env:T\"",
                "chat[0].homeserver",
            ),
            (
                "[[chat]]\nkind = \"matrix\"\nhomeserver = \"http://matrix.example.com\"\nroom = \"!a:b\"\ntoken = \"env:T\"",
                "chat[0].homeserver",
            ),
            (
                "[[chat]]\nkind = \"matrix\"\nhomeserver = \"https://m.example.com\"\nroom = \"#alias:b\"\ntoken = \"env:T\"",
                "chat[0].room",
            ),
            (
                "[[chat]]\nkind = \"matrix\"\nhomeserver = \"https://m.example.com\"\nroom = \"!a:b\"",
                "chat[0].token",
            ),
            ("[[chat]]\nkind = \"irc\"\nurl = \"env:T\"", "chat[0].kind"),
        ] {
            let errors = check(chat).expect_err(chat);
            assert!(
                errors.iter().any(|e| e.contains(&format!(": {field}: "))),
                "{chat}: {errors:?}"
            );
        }
        let local = "[[chat]]\nkind = \"matrix\"\nhomeserver = \"http://127.0.0.1:8008\"\nroom = \"!a:localhost\"\ntoken = \"env:T\"";
        assert_eq!(check(local), Ok(1));
        // Room version 12 IDs name no server (what Synapse 1.163 creates by default).
        let v12 = local.replace(
            "!a:localhost",
            "!DOIz-_RIGvX7JrQoS-GFE7lfirw54G5n1eYOvIEjv-4",
        );
        assert_eq!(check(&v12), Ok(1));
        for bad in ["!", "!a:", "!:b", "!a/b", "!a b", "a:b", "#a"] {
            let text = local.replace("!a:localhost", bad);
            let errors = check(&text).expect_err(bad);
            assert!(
                errors.iter().any(|e| e.contains(": chat[0].room: ")),
                "{bad}: {errors:?}"
            );
        }
    }
}
