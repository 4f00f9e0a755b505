//! Keys of the audit checkpoints: the secret signing key (its file text, a `Debug` that never
//! shows it) and the public key checkpoints are verified against. Pure: no I/O.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// Prefix of a secret key file's only line.
const SECRET_PREFIX: &str = "ed25519-secret:";
/// Prefix of a public key's text form.
const PUBLIC_PREFIX: &str = "ed25519:";

/// A key or public key text that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The signing key of the audit checkpoints. Its `Debug` shows only the public key.
pub struct AuditKey(SigningKey);

impl AuditKey {
    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// Parse a key file's text: one line `ed25519-secret:<64 hex>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let line = text.trim();
        let hex_text = line.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            KeyError(format!(
                "line 1: expected `{SECRET_PREFIX}<64 hex digits>` (made by `gatehouse audit keygen`)"
            ))
        })?;
        if line.lines().count() != 1 {
            return Err(KeyError("expected exactly one line".into()));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_text, seed.as_mut_slice()).map_err(|_| {
            KeyError(format!(
                "line 1: the secret after `{SECRET_PREFIX}` must be 64 hex digits"
            ))
        })?;
        Ok(Self::from_seed(&seed))
    }

    /// The text of a key file (kept in a buffer wiped on drop).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.0.to_bytes());
        Zeroizing::new(format!("{SECRET_PREFIX}{}\n", hex::encode(seed.as_slice())))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signature of `message`.
    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("public", &self.public().to_string())
            .finish_non_exhaustive()
    }
}

/// A public key that checkpoints are verified against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parse `ed25519:<64 hex>` or the 64 hex digits alone.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let hex_text = text.strip_prefix(PUBLIC_PREFIX).unwrap_or(text);
        let mut bytes = [0u8; 32];
        if text.starts_with(SECRET_PREFIX) {
            // Never echo it: this is a secret key.
            return Err(KeyError(
                "this is a secret key, not a public key: give its .pub file, or the key file with --key".into(),
            ));
        }
        // The text is not echoed: a mistyped argument may be a secret.
        hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| {
            KeyError(format!(
                "a public key is `{PUBLIC_PREFIX}` followed by 64 hex digits"
            ))
        })?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| KeyError("not a valid ed25519 public key".into()))
    }

    /// Whether `signature` is this key's (strict ed25519) signature of `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), ()> {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| ())
    }

    /// A short name for messages: `ed25519:` and the first 16 hex digits.
    pub fn fingerprint(&self) -> String {
        let full = hex::encode(self.0.as_bytes());
        format!("{PUBLIC_PREFIX}{}…", &full[..16])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> AuditKey {
        AuditKey::from_seed(&[n; 32])
    }

    #[test]
    fn key_file_text_round_trips_and_debug_hides_the_secret() {
        let k = key(7);
        let text = k.to_file_text();
        let again = AuditKey::parse(&text).expect("parse");
        assert_eq!(again.public(), k.public());
        let debug = format!("{k:?}");
        assert!(debug.contains("ed25519:"), "{debug}");
        assert!(!debug.contains(&hex::encode([7u8; 32])), "{debug}");
        assert!(AuditKey::parse("ed25519-secret:zz").is_err());
        assert!(AuditKey::parse(&hex::encode([7u8; 32])).is_err());
        let public = k.public().to_string();
        assert_eq!(PublicKey::parse(&public), Ok(k.public()));
        assert_eq!(
            PublicKey::parse(public.trim_start_matches("ed25519:")),
            Ok(k.public())
        );
        assert!(PublicKey::parse("ed25519:1234").is_err());
        let secret = k.to_file_text();
        let err = PublicKey::parse(&secret).unwrap_err().0;
        assert!(err.contains("secret key"), "{err}");
        assert!(!err.contains(&hex::encode([7u8; 32])[..8]), "{err}");
        assert!(k.public().fingerprint().starts_with("ed25519:"));
    }
}
