//! Operators' SSH public keys: parse one OpenSSH public-key line, accept only the algorithms
//! Gatehouse trusts (ed25519, ecdsa, rsa of at least 3072 bits) and name keys by their SHA-256
//! fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it).

use ssh_key::{Algorithm, HashAlg, PublicKey};

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 3072;

/// The longest public-key line accepted (an RSA 16384-bit key is about 2.8 KB).
pub const MAX_KEY_LINE: usize = 8192;

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing but blank lines or comments.
    #[error("no public key found (expected one line like `ssh-ed25519 AAAA… comment`)")]
    Empty,
    /// More than one key in the text.
    #[error("{0} public keys found; give one key per command")]
    Several(usize),
    /// The line is longer than [`MAX_KEY_LINE`].
    #[error("the key line is {0} bytes, longer than {MAX_KEY_LINE}")]
    TooLong(usize),
    /// Not an OpenSSH public key (a private key, a PEM file, garbage).
    #[error("not an OpenSSH public key: {0}")]
    Malformed(String),
    /// An algorithm Gatehouse does not accept.
    #[error("{0} keys are not accepted; use ed25519, ecdsa or rsa of at least {MIN_RSA_BITS} bits")]
    Algorithm(String),
    /// An RSA key that is too short.
    #[error("rsa key of {0} bits is too short; at least {MIN_RSA_BITS} bits are required")]
    RsaTooShort(u32),
}

/// An accepted public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// `SHA256:` and the unpadded base64 digest.
    pub fingerprint: String,
    /// The algorithm name (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub algorithm: String,
    /// The key in OpenSSH form without its comment.
    pub openssh: String,
    /// The comment of the line, if any.
    pub comment: Option<String>,
}

/// The SHA-256 fingerprint of `key`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Check that `key`'s algorithm and size are accepted.
pub fn check_accepted(key: &PublicKey) -> Result<(), KeyError> {
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } => Ok(()),
        Algorithm::Rsa { .. } => {
            let bits = key.key_data().rsa().map(|k| k.key_size()).unwrap_or(0);
            if bits < MIN_RSA_BITS {
                Err(KeyError::RsaTooShort(bits))
            } else {
                Ok(())
            }
        }
        other => Err(KeyError::Algorithm(other.as_str().to_string())),
    }
}

/// Parse the text of a `.pub` file: exactly one key line (blank lines and `#` comments are
/// skipped), of an accepted algorithm and size.
pub fn parse_public_key(text: &str) -> Result<ParsedKey, KeyError> {
    if text.contains("PRIVATE KEY") {
        return Err(KeyError::Malformed(
            "this is a private key; give the .pub file".into(),
        ));
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let line = match lines.as_slice() {
        [] => return Err(KeyError::Empty),
        [one] => *one,
        more => return Err(KeyError::Several(more.len())),
    };
    if line.len() > MAX_KEY_LINE {
        return Err(KeyError::TooLong(line.len()));
    }
    let key = PublicKey::from_openssh(line).map_err(|e| KeyError::Malformed(e.to_string()))?;
    check_accepted(&key)?;
    let comment = key.comment().as_str_lossy().trim().to_string();
    let mut bare = key.clone();
    bare.set_comment("");
    let openssh = bare
        .to_openssh()
        .map_err(|e| KeyError::Malformed(e.to_string()))?
        .trim()
        .to_string();
    Ok(ParsedKey {
        fingerprint: fingerprint(&key),
        algorithm: key.algorithm().as_str().to_string(),
        openssh,
        comment: (!comment.is_empty()).then_some(comment),
    })
}

/// True when `text` has the shape of a fingerprint this module produces (`SHA256:` and 43
/// base64 characters).
pub fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix("SHA256:").is_some_and(|b| {
        b.len() == 43
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with ssh-keygen for these tests only (public halves; the private keys are gone).
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN+Bp7ISZX/oIeFlHyFVVZyq3NTBG6PgI2VP0i7aEY6S ann@laptop";
    const ED25519_FP: &str = "SHA256:pgBPf+Cmkyr9vYrlBdmeAmQq0307WIq5d5ZETJVTIXo";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBEBchJkXTjPX3jVqvwi9C+5cYVdzs6TiLYGR/pBTKK2qN8LfkQM5/UOicyOn6ODAceNHCRscfGLeUE3Fia4H/E= ec";
    const RSA_2048: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC5acb+AwiltZ+GHwmYWDIIlpk+j7QvVVlpNdWjh8/xjs53iHTjEdSpDTCgtLLPSdH5Ga14jrw6gh6gR7hxlVazzxQ1TqMHvxg2ZdgBWPX6wah0i8d6QWtn+GZTM+mCb/RzKyz9yW1iNjhwhsRjTJ2gVAm7DQytAm8yKR2mLlb/kOuAqUJgTzB2Bw4XtW3H1uHKc10fdVG/2pn4hw89xBilAyCx6/UiAeDpQ0DIxv3QIo2zIrTGbC/0Z6w9cBdkUB8tb/Gi2M4KV5YyDXYD0MNMul5elLk5YLX9WCQhaeSiPJVweMG0sEUj/wlegea+nEKnVRO+NQ3SheULaK6KfzdR short";

    #[test]
    fn accepts_ed25519_with_comment() {
        let k = parse_public_key(&format!("# ann\n\n{ED25519}\n")).expect("accepted");
        assert_eq!(k.algorithm, "ssh-ed25519");
        assert_eq!(k.comment.as_deref(), Some("ann@laptop"));
        assert_eq!(k.fingerprint, ED25519_FP, "as ssh-keygen -l prints it");
        assert!(is_fingerprint(&k.fingerprint), "{}", k.fingerprint);
        assert!(!k.openssh.contains("ann@laptop"));
    }

    #[test]
    fn accepts_ecdsa_refuses_short_rsa() {
        let k = parse_public_key(ECDSA).expect("ecdsa accepted");
        assert_eq!(k.algorithm, "ecdsa-sha2-nistp256");
        assert_eq!(parse_public_key(RSA_2048), Err(KeyError::RsaTooShort(2048)));
    }

    #[test]
    fn refuses_garbage_several_and_empty() {
        assert_eq!(parse_public_key("\n# x\n"), Err(KeyError::Empty));
        assert_eq!(
            parse_public_key(&format!("{ED25519}\n{ED25519}")),
            Err(KeyError::Several(2))
        );
        assert!(matches!(
            parse_public_key("ssh-ed25519 notbase64"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            parse_public_key("-----BEGIN OPENSSH PRIVATE KEY-----"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            parse_public_key(&"a".repeat(MAX_KEY_LINE + 1)),
            Err(KeyError::TooLong(_))
        ));
    }

    #[test]
    fn fingerprint_shape() {
        assert!(!is_fingerprint("MD5:aa"));
        assert!(!is_fingerprint("SHA256:short"));
        assert!(is_fingerprint(&format!("SHA256:{}", "A".repeat(43))));
    }
}
