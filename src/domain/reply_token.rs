//! Approval-by-reply tokens: an HMAC-SHA256 over the approval id, the approver and an expiry,
//! with a key read from a secret reference. The token travels in a plus-addressed Reply-To
//! (`approvals+TOKEN@example.com`) and in the subject (`[TOKEN]`); a reply is trusted only when
//! the token verifies for the replying approver and has not expired. Pure: signing and
//! checking only; recognising replies is [`super::reply`], single use is the store's.
//!
//! Token text: `gh1-<approval id>-<expiry, ms since the epoch, hex>-<first 16 bytes of the MAC,
//! hex>`, lower case, so it survives a mail system that folds the local part's case.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret::SecretValue;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every token (and its version).
pub const TOKEN_PREFIX: &str = "gh1-";
/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;
/// Shortest accepted key.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The key is too short to sign with.
    #[error("the reply-token key must be at least {MIN_KEY_BYTES} bytes")]
    WeakKey,
    /// Not a token of this format.
    #[error("not a Gatehouse reply token")]
    Malformed,
    /// The MAC does not match for the sender (forged, altered, or a different key).
    #[error("the reply token is not valid")]
    BadSignature,
    /// The token is valid, but was issued to another approver of the approval.
    #[error("the reply token was issued to {issued_to}, not to the sender")]
    NotYours {
        /// The approver it was issued to.
        issued_to: String,
    },
    /// Valid for the sender, but past its expiry.
    #[error("the reply token expired")]
    Expired,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyClaims {
    /// The approval stage the reply decides.
    pub approval_id: i64,
    /// The approver the token was issued to (as the store names them).
    pub approver: String,
    /// Milliseconds since the epoch after which the token is refused.
    pub expires_at: i64,
}

/// The signing key (kept as a keyed HMAC state, cloned per token).
#[derive(Clone)]
pub struct ReplyKey(HmacSha256);

impl std::fmt::Debug for ReplyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyKey(…)")
    }
}

impl ReplyKey {
    /// A key from raw bytes (at least [`MIN_KEY_BYTES`]).
    pub fn new(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(TokenError::WeakKey);
        }
        HmacSha256::new_from_slice(bytes)
            .map(Self)
            .map_err(|_| TokenError::WeakKey)
    }

    /// A key from a resolved secret reference (its text, surrounding whitespace ignored).
    pub fn from_secret(secret: &SecretValue) -> Result<Self, TokenError> {
        Self::new(secret.expose().trim().as_bytes())
    }

    fn mac(&self, approval_id: i64, approver: &str, expires_at: i64) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(b"gatehouse-reply-token-v1\n");
        mac.update(approval_id.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(approver.trim().to_lowercase().as_bytes());
        mac.update(b"\n");
        mac.update(expires_at.to_string().as_bytes());
        mac
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &ReplyClaims) -> String {
        let tag = self
            .mac(claims.approval_id, &claims.approver, claims.expires_at)
            .finalize()
            .into_bytes();
        format!(
            "{TOKEN_PREFIX}{}-{:x}-{}",
            claims.approval_id,
            claims.expires_at,
            hex::encode(&tag[..MAC_BYTES])
        )
    }

    /// Checks `token` for a reply from `sender` at `now` (ms). `other_approvers` (the
    /// approval's other approvers) only serve to say whose token it was when it is not the
    /// sender's.
    pub fn verify(
        &self,
        token: &str,
        sender: &str,
        other_approvers: &[String],
        now: i64,
    ) -> Result<ReplyClaims, TokenError> {
        let (approval_id, expires_at, tag) = parse(token)?;
        let matches = |who: &str| {
            self.mac(approval_id, who, expires_at)
                .verify_truncated_left(&tag)
                .is_ok()
        };
        if !matches(sender) {
            return match other_approvers
                .iter()
                .find(|other| !other.eq_ignore_ascii_case(sender) && matches(other))
            {
                Some(issued_to) => Err(TokenError::NotYours {
                    issued_to: issued_to.clone(),
                }),
                None => Err(TokenError::BadSignature),
            };
        }
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(ReplyClaims {
            approval_id,
            approver: sender.to_string(),
            expires_at,
        })
    }
}

/// The approval a well-formed token names (not yet verified: the caller verifies it against
/// that approval's approvers).
pub fn approval_of(token: &str) -> Result<i64, TokenError> {
    parse(token).map(|(approval_id, _, _)| approval_id)
}

/// Splits a token into approval id, expiry and MAC bytes.
fn parse(token: &str) -> Result<(i64, i64, Vec<u8>), TokenError> {
    let lower = token.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenError::Malformed)?;
    let mut parts = rest.split('-');
    let (Some(id), Some(expiry), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let digits = |s: &str, radix: u32| {
        !s.is_empty() && s.len() <= 19 && s.chars().all(|c| c.is_digit(radix))
    };
    if !digits(id, 10) || !digits(expiry, 16) || mac.len() != MAC_BYTES * 2 {
        return Err(TokenError::Malformed);
    }
    let approval_id = id.parse::<i64>().map_err(|_| TokenError::Malformed)?;
    let expires_at = i64::from_str_radix(expiry, 16).map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(mac).map_err(|_| TokenError::Malformed)?;
    Ok((approval_id, expires_at, tag))
}

/// `local+TOKEN@domain` for the reply address `local@domain` (`None` when it is not an
/// address or already carries a `+tag`).
pub fn reply_address(address: &str, token: &str) -> Option<String> {
    let (local, domain) = address.split_once('@')?;
    if local.is_empty() || domain.is_empty() || local.contains('+') || domain.contains('@') {
        return None;
    }
    Some(format!("{local}+{token}@{domain}"))
}

/// The subject with the token appended as `[TOKEN]`.
pub fn tag_subject(subject: &str, token: &str) -> String {
    format!("{subject} [{token}]")
}

/// The token in a plus-address (`local+TOKEN@domain`), if any.
pub fn token_in_address(address: &str) -> Option<&str> {
    let (local, _) = address.trim().rsplit_once('@')?;
    let (_, tag) = local.split_once('+')?;
    looks_like_token(tag).then_some(tag)
}

/// The last `[TOKEN]` in a subject (`Re: … [gh1-…]`), if any.
pub fn token_in_subject(subject: &str) -> Option<&str> {
    subject
        .rmatch_indices('[')
        .filter_map(|(start, _)| {
            let inner = &subject[start + 1..];
            let end = inner.find(']')?;
            Some(&inner[..end])
        })
        .find(|candidate| looks_like_token(candidate))
}

fn looks_like_token(text: &str) -> bool {
    parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    fn key() -> ReplyKey {
        ReplyKey::new(b"0123456789abcdef0123456789abcdef").expect("key")
    }

    fn claims(approver: &str) -> ReplyClaims {
        ReplyClaims {
            approval_id: 42,
            approver: approver.into(),
            expires_at: NOW + DAY,
        }
    }

    fn others() -> Vec<String> {
        vec!["ann".into(), "bob".into()]
    }

    #[test]
    fn a_valid_token_verifies_for_its_approver() {
        let token = key().sign(&claims("ann"));
        assert!(token.starts_with("gh1-42-"), "{token}");
        assert_eq!(
            key().verify(&token, "ann", &others(), NOW),
            Ok(claims("ann"))
        );
        // Case folding by a mail system and the approver's case do not matter.
        assert!(
            key()
                .verify(&token.to_uppercase(), "ANN", &others(), NOW)
                .is_ok()
        );
    }

    #[test]
    fn someone_elses_token_is_refused_and_named() {
        let token = key().sign(&claims("ann"));
        assert_eq!(
            key().verify(&token, "bob", &others(), NOW),
            Err(TokenError::NotYours {
                issued_to: "ann".into()
            })
        );
        // Without the list of approvers it is simply not valid for the sender.
        assert_eq!(
            key().verify(&token, "mallory", &[], NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = key().sign(&claims("ann"));
        assert_eq!(
            key().verify(&token, "ann", &others(), NOW + DAY),
            Err(TokenError::Expired)
        );
        assert!(
            key()
                .verify(&token, "ann", &others(), NOW + DAY - 1)
                .is_ok()
        );
    }

    #[test]
    fn wrong_tokens_are_refused() {
        let token = key().sign(&claims("ann"));
        let other_key = ReplyKey::new(&[7u8; 40]).expect("key");
        assert_eq!(
            other_key.verify(&token, "ann", &others(), NOW),
            Err(TokenError::BadSignature)
        );
        // Another approval id or a later expiry with the same MAC.
        let moved = token.replacen("gh1-42-", "gh1-43-", 1);
        assert_eq!(
            key().verify(&moved, "ann", &others(), NOW),
            Err(TokenError::BadSignature)
        );
        let parts: Vec<&str> = token.split('-').collect();
        let extended = format!("gh1-42-{:x}-{}", NOW + 30 * DAY, parts[3]);
        assert_eq!(
            key().verify(&extended, "ann", &others(), NOW),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "gh1-",
            "gh1-42",
            "gh1-42-abc",
            "gh2-42-1-00112233445566778899aabbccddeeff",
            "gh1-x-1-00112233445566778899aabbccddeeff",
            "gh1-42-zz-00112233445566778899aabbccddeeff",
            "gh1-42-1-0011",
            "gh1-42-1-00112233445566778899aabbccddeeff-extra",
            "gh1-99999999999999999999-1-00112233445566778899aabbccddeeff",
            "gh1--1-1-00112233445566778899aabbccddeeff",
        ] {
            assert_eq!(
                key().verify(bad, "ann", &others(), NOW),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn weak_keys_are_refused() {
        assert_eq!(
            ReplyKey::new(b"short").map(|_| ()),
            Err(TokenError::WeakKey)
        );
        let secret = SecretValue::new("  0123456789abcdef0123456789abcdef\n");
        assert!(ReplyKey::from_secret(&secret).is_ok());
        assert_eq!(format!("{:?}", key()), "ReplyKey(…)");
    }

    #[test]
    fn tokens_travel_in_the_reply_address_and_the_subject() {
        let token = key().sign(&claims("ann"));
        let address = reply_address("approvals@example.com", &token).expect("address");
        assert_eq!(address, format!("approvals+{token}@example.com"));
        assert_eq!(token_in_address(&address), Some(token.as_str()));
        assert_eq!(reply_address("approvals+x@example.com", &token), None);
        assert_eq!(reply_address("nobody", &token), None);
        assert_eq!(token_in_address("approvals+hello@example.com"), None);
        assert_eq!(token_in_address("approvals@example.com"), None);

        let subject = tag_subject("Approval needed: Ann", &token);
        let reply = format!("Re: [External] {subject}");
        assert_eq!(token_in_subject(&reply), Some(token.as_str()));
        assert_eq!(token_in_subject("Re: [External] nothing [x]"), None);
        assert_eq!(token_in_subject("[unclosed"), None);
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(
            id in 0i64..i64::MAX,
            approver in "[a-z][a-z0-9._-]{0,20}",
            ttl in 1i64..(365 * DAY),
        ) {
            let c = ReplyClaims { approval_id: id, approver: approver.clone(), expires_at: NOW + ttl };
            let token = key().sign(&c);
            prop_assert_eq!(key().verify(&token, &approver, &[], NOW), Ok(c));
            let subject = tag_subject("s", &token);
            prop_assert_eq!(token_in_subject(&subject), Some(token.as_str()));
        }

        #[test]
        fn any_changed_character_is_refused(position in 0usize..60, replacement in "[0-9a-f]") {
            let token = key().sign(&claims("ann"));
            let position = position % token.len();
            let mut changed: Vec<char> = token.chars().collect();
            let original = changed[position];
            let new = replacement.chars().next().unwrap_or('0');
            prop_assume!(original != new && original != '-');
            changed[position] = new;
            let changed: String = changed.into_iter().collect();
            prop_assert!(key().verify(&changed, "ann", &others(), NOW).is_err());
        }
    }
}
