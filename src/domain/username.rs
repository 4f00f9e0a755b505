//! Username derivation: first initial + last name, folded to lower-case ASCII, made unique.
//!
//! Rules:
//! - The name is split on whitespace; the first token is the first name and the last token the
//!   last name (middle names are ignored): "Anna Maria Schmidt" → `aschmidt`.
//! - Folding: ä/Ä→ae, ö/Ö→oe, ü/Ü→ue, ß/ẞ→ss; letters without a Unicode decomposition are
//!   mapped explicitly: ø→o, æ→ae, œ→oe, ł→l, đ/ð→d, þ→th, ı→i (upper-case forms too); every other
//!   accent is dropped by NFD decomposition and removal of combining marks (é→e, å→a, ñ→n).
//!   The umlaut rule applies to every name, whatever its language: "Zoë Ångström" → `zangstroem`.
//!   Anything that is still not an ASCII letter or digit (hyphens, apostrophes, other scripts)
//!   is removed: "Müller-Lüdenscheidt" → `muellerluedenscheidt`.
//! - Without a last name (one token) the local part of the e-mail address is used, folded the
//!   same way: `j.doe@example.com` → `jdoe`.
//! - The base is cut to [`MAX_BASE_LEN`] characters so a suffix still fits common limits.
//! - Collisions: if the base is taken, `base2`, then `base3`, … up to [`MAX_SUFFIX`].
//!
//! A username given with a request is checked by [`check_username`]: 1 to [`MAX_LEN`]
//! characters, lower-case ASCII letters and digits plus `.`, `_` and `-` inside, starting with a
//! letter. Derived usernames always pass.

use std::collections::BTreeSet;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest base username (before a numeric suffix).
pub const MAX_BASE_LEN: usize = 20;

/// Highest numeric suffix tried before giving up.
pub const MAX_SUFFIX: u32 = 9999;

/// Longest username accepted (a derived one is at most [`MAX_BASE_LEN`] + 4 characters).
pub const MAX_LEN: usize = 32;

/// Why a given username is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidUsername {
    /// Nothing given.
    #[error("the username is empty")]
    Empty,
    /// Longer than [`MAX_LEN`].
    #[error("username {shown} has {len} characters; at most {max} are allowed", max = MAX_LEN)]
    TooLong {
        /// The username, made printable.
        shown: String,
        /// Its length in characters.
        len: usize,
    },
    /// Does not start with a lower-case letter.
    #[error("username {shown} must start with a lower-case letter a-z")]
    BadStart {
        /// The username, made printable.
        shown: String,
    },
    /// A character outside the allowed set.
    #[error(
        "username {shown} contains {found}: only a-z, 0-9, '.', '_' and '-' are allowed (position {position})"
    )]
    BadCharacter {
        /// The username, made printable.
        shown: String,
        /// The offending character, escaped.
        found: String,
        /// One-based character position.
        position: usize,
    },
    /// Ends with a separator.
    #[error("username {shown} must not end with '.', '_' or '-'")]
    BadEnd {
        /// The username, made printable.
        shown: String,
    },
}

/// Checks a given username: 1 to [`MAX_LEN`] characters of `a-z`, `0-9`, `.`, `_`, `-`,
/// starting with a letter and not ending with a separator. Upper case is refused rather than
/// folded, so the name approved is the name written.
pub fn check_username(name: &str) -> Result<(), InvalidUsername> {
    let shown = format!("{name:?}");
    let len = name.chars().count();
    if len == 0 {
        return Err(InvalidUsername::Empty);
    }
    if len > MAX_LEN {
        return Err(InvalidUsername::TooLong { shown, len });
    }
    for (index, c) in name.chars().enumerate() {
        let allowed = c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if !allowed {
            return Err(InvalidUsername::BadCharacter {
                shown,
                found: format!("{:?}", c),
                position: index + 1,
            });
        }
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(InvalidUsername::BadStart { shown });
    }
    if name.ends_with(['.', '_', '-']) {
        return Err(InvalidUsername::BadEnd { shown });
    }
    Ok(())
}

/// Why no username could be derived.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsernameError {
    /// No name and no e-mail address.
    #[error("no name given: a username needs a first and last name or an e-mail address")]
    Empty,
    /// Only one name and no e-mail address to fall back on.
    #[error("\"{name}\" has no last name and no e-mail address was given")]
    NoLastName {
        /// The name as given.
        name: String,
    },
    /// Folding left nothing usable (e.g. a name only in a non-Latin script).
    #[error("\"{input}\" has no letters that can be written in ASCII; give a username explicitly")]
    Unrepresentable {
        /// The name or e-mail that folded to nothing.
        input: String,
    },
    /// Every suffix up to the limit is taken.
    #[error("{base}, {base}2 … {base}{max} are all taken", max = MAX_SUFFIX)]
    Exhausted {
        /// The base username.
        base: String,
    },
}

/// Folds one string to lower-case ASCII letters and digits (see the module rules).
pub fn fold_to_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfc() {
        let mapped: Option<&str> = match c {
            'ä' | 'Ä' => Some("ae"),
            'ö' | 'Ö' => Some("oe"),
            'ü' | 'Ü' => Some("ue"),
            'ß' | 'ẞ' => Some("ss"),
            'ø' | 'Ø' => Some("o"),
            'æ' | 'Æ' => Some("ae"),
            'œ' | 'Œ' => Some("oe"),
            'ł' | 'Ł' => Some("l"),
            'đ' | 'Đ' | 'ð' | 'Ð' => Some("d"),
            'þ' | 'Þ' => Some("th"),
            'ı' => Some("i"),
            _ => None,
        };
        if let Some(mapped) = mapped {
            out.push_str(mapped);
            continue;
        }
        for part in std::iter::once(c).nfd() {
            if is_combining_mark(part) {
                continue;
            }
            if part.is_ascii_alphanumeric() {
                out.push(part.to_ascii_lowercase());
            }
        }
    }
    out
}

/// The username before collision handling, from a full name (first token = first name, last
/// token = last name) or, without a last name, from the e-mail's local part.
pub fn base_username(full_name: &str, email: Option<&str>) -> Result<String, UsernameError> {
    let tokens: Vec<&str> = full_name.split_whitespace().collect();
    let email = email.map(str::trim).filter(|email| !email.is_empty());
    let base = match (tokens.as_slice(), email) {
        ([], None) => return Err(UsernameError::Empty),
        ([only], None) => {
            return Err(UsernameError::NoLastName {
                name: (*only).to_string(),
            });
        }
        ([] | [_], Some(email)) => {
            let local = email.split('@').next().unwrap_or(email);
            let folded = fold_to_ascii(local);
            if folded.is_empty() {
                return Err(UsernameError::Unrepresentable {
                    input: email.to_string(),
                });
            }
            folded
        }
        ([first, .., last], _) => {
            let initial = fold_to_ascii(first).chars().next();
            let last_folded = fold_to_ascii(last);
            match initial {
                Some(initial) if !last_folded.is_empty() => format!("{initial}{last_folded}"),
                _ => {
                    return Err(UsernameError::Unrepresentable {
                        input: full_name.trim().to_string(),
                    });
                }
            }
        }
    };
    // Folded text is ASCII, so cutting at a byte index is cutting at a character.
    Ok(base.chars().take(MAX_BASE_LEN).collect())
}

/// Derives a unique username: the base if `taken` says it is free, else `base2`, `base3`, ….
pub fn derive_username(
    full_name: &str,
    email: Option<&str>,
    taken: &dyn Fn(&str) -> bool,
) -> Result<String, UsernameError> {
    let base = base_username(full_name, email)?;
    if !taken(&base) {
        return Ok(base);
    }
    for suffix in 2..=MAX_SUFFIX {
        let candidate = format!("{base}{suffix}");
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(UsernameError::Exhausted { base })
}

/// [`derive_username`] with first and last name given separately (middle names may be in
/// either; the first token of the combined name is the first name, the last token the last).
pub fn derive_from_parts(
    first_name: &str,
    last_name: &str,
    email: Option<&str>,
    taken: &dyn Fn(&str) -> bool,
) -> Result<String, UsernameError> {
    derive_username(&format!("{first_name} {last_name}"), email, taken)
}

/// [`derive_username`] against a set of names already in use.
pub fn derive_unique(
    full_name: &str,
    email: Option<&str>,
    existing: &BTreeSet<String>,
) -> Result<String, UsernameError> {
    derive_username(full_name, email, &|candidate| existing.contains(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(_: &str) -> bool {
        false
    }

    fn derive(name: &str) -> Result<String, UsernameError> {
        derive_username(name, None, &free)
    }

    #[test]
    fn plain_and_accented_names() {
        let cases = [
            ("John Smith", "jsmith"),
            ("Jürgen Groß", "jgross"),
            // ö→oe applies in every name (the rule), so Ångström keeps its "oe".
            ("Zoë Ångström", "zangstroem"),
            ("Ömer Özdemir", "ooezdemir"),
            ("Ülrich Übel", "uuebel"),
            ("Äneas Ärger", "aaerger"),
            ("STRAUSS ẞTRASSE", "ssstrasse"),
            ("Ole Ødegaard", "oodegaard"),
            ("Søren Kierkegård", "skierkegard"),
            ("Ægir Sæther", "asaether"),
            ("Łukasz Michał Wałęsa", "lwalesa"),
            ("Þóra Þórsdóttir", "tthorsdottir"),
            ("Đorđe Đoković", "ddokovic"),
            ("François Lefèvre", "flefevre"),
            ("José Núñez", "jnunez"),
            ("Chloë Brontë", "cbronte"),
            ("İlkay Işık", "iisik"),
            ("Œdipe Rœux", "oroeux"),
            ("  anna   maria   SCHMIDT  ", "aschmidt"),
            ("Karl-Heinz Müller-Lüdenscheidt", "kmuellerluedenscheid"),
            ("Sean O'Brien", "sobrien"),
            ("Ana Nuñez2", "anunez2"),
        ];
        for (name, expected) in cases {
            assert_eq!(derive(name).as_deref(), Ok(expected), "{name}");
        }
    }

    #[test]
    fn decomposed_input_is_folded_like_composed() {
        let decomposed = "Ju\u{308}rgen Gro\u{df}"; // u + combining diaeresis
        assert_eq!(derive(decomposed).as_deref(), Ok("jgross"));
        assert_eq!(fold_to_ascii("a\u{308}"), "ae");
    }

    #[test]
    fn fold_drops_everything_outside_ascii_alphanumerics() {
        assert_eq!(fold_to_ascii("A-b_c.d e'f!1"), "abcdef1");
        assert_eq!(fold_to_ascii("Иван"), "");
        assert_eq!(fold_to_ascii("李"), "");
        assert_eq!(fold_to_ascii("Ångström"), "angstroem");
        assert_eq!(fold_to_ascii("Åse Éclair"), "aseeclair");
    }

    #[test]
    fn base_is_truncated() {
        let name = "A Abcdefghijklmnopqrstuvwxyz";
        let base = derive(name).expect("derives");
        assert_eq!(base.len(), MAX_BASE_LEN);
        assert_eq!(base, "aabcdefghijklmnopqrs");
    }

    #[test]
    fn email_fallback_without_last_name() {
        assert_eq!(
            derive_username("Cher", Some("cher.sarkisian@example.com"), &free).as_deref(),
            Ok("chersarkisian")
        );
        assert_eq!(
            derive_username("", Some("Jörg.Doe@example.com"), &free).as_deref(),
            Ok("joergdoe")
        );
        assert_eq!(
            derive_username("  ", Some("nodomain"), &free).as_deref(),
            Ok("nodomain")
        );
        // With a last name the e-mail is not used.
        assert_eq!(
            derive_username("Jane Roe", Some("x@example.com"), &free).as_deref(),
            Ok("jroe")
        );
    }

    #[test]
    fn typed_errors() {
        assert_eq!(derive(""), Err(UsernameError::Empty));
        assert_eq!(derive("   "), Err(UsernameError::Empty));
        assert_eq!(
            derive_username("", Some("  "), &free),
            Err(UsernameError::Empty)
        );
        assert_eq!(
            derive("Cher"),
            Err(UsernameError::NoLastName {
                name: "Cher".into()
            })
        );
        assert_eq!(
            derive("Иван Петров"),
            Err(UsernameError::Unrepresentable {
                input: "Иван Петров".into()
            })
        );
        assert_eq!(
            derive("Jan 李"),
            Err(UsernameError::Unrepresentable {
                input: "Jan 李".into()
            })
        );
        assert_eq!(
            derive_username("Cher", Some("李@example.com"), &free),
            Err(UsernameError::Unrepresentable {
                input: "李@example.com".into()
            })
        );
        assert!(
            derive("")
                .unwrap_err()
                .to_string()
                .contains("no name given")
        );
    }

    #[test]
    fn collisions_get_numeric_suffixes() {
        let existing: BTreeSet<String> = ["jsmith", "jsmith2", "jsmith4"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            derive_unique("John Smith", None, &existing).as_deref(),
            Ok("jsmith3")
        );
        let only_base: BTreeSet<String> = ["jsmith".to_string()].into();
        assert_eq!(
            derive_unique("Jane Smith", None, &only_base).as_deref(),
            Ok("jsmith2")
        );
        assert_eq!(
            derive_unique("Jane Smith", None, &BTreeSet::new()).as_deref(),
            Ok("jsmith")
        );
    }

    #[test]
    fn exhausted_suffixes_are_an_error() {
        let everything_taken = |_: &str| true;
        assert_eq!(
            derive_username("John Smith", None, &everything_taken),
            Err(UsernameError::Exhausted {
                base: "jsmith".into()
            })
        );
    }

    #[test]
    fn given_usernames_are_checked() {
        for good in ["a", "jsmith", "j.smith", "j_smith-2", "zangstroem9999"] {
            assert_eq!(check_username(good), Ok(()), "{good}");
        }
        assert_eq!(check_username(""), Err(InvalidUsername::Empty));
        let long = "a".repeat(MAX_LEN + 1);
        assert!(matches!(
            check_username(&long),
            Err(InvalidUsername::TooLong { len, .. }) if len == MAX_LEN + 1
        ));
        assert_eq!(check_username(&"a".repeat(MAX_LEN)), Ok(()));
        assert!(matches!(
            check_username("2fast"),
            Err(InvalidUsername::BadStart { .. })
        ));
        assert!(matches!(
            check_username(".hidden"),
            Err(InvalidUsername::BadStart { .. })
        ));
        assert!(matches!(
            check_username("ann-"),
            Err(InvalidUsername::BadEnd { .. })
        ));
        for (bad, position) in [
            ("Ann", 1),
            ("ann lee", 4),
            ("ann;drop", 4),
            ("jürgen", 2),
            ("ann\u{1b}[2J", 4),
            ("ann\u{0}", 4),
        ] {
            match check_username(bad) {
                Err(InvalidUsername::BadCharacter { position: p, .. }) => {
                    assert_eq!(p, position, "{bad:?}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let message = check_username("ann\u{1b}x").unwrap_err().to_string();
        assert!(!message.contains('\u{1b}'), "escaped: {message}");
        assert!(message.contains("\\u{1b}"), "{message}");
    }

    #[test]
    fn derived_usernames_always_pass_the_check() {
        for name in [
            "Jürgen Groß",
            "A Abcdefghijklmnopqrstuvwxyz",
            "Sean O'Brien",
        ] {
            let base = derive(name).expect("derives");
            assert_eq!(check_username(&base), Ok(()));
            assert_eq!(check_username(&format!("{base}{MAX_SUFFIX}")), Ok(()));
        }
    }

    #[test]
    fn parts_are_joined() {
        assert_eq!(
            derive_from_parts("Anna Maria", "von Trapp", None, &free).as_deref(),
            Ok("atrapp")
        );
        assert_eq!(
            derive_from_parts("Madonna", "", Some("m@example.com"), &free).as_deref(),
            Ok("m")
        );
    }
}
