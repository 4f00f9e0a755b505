//! A memo of checked configuration documents: a stored version never changes, so the engine
//! checks each document's text once per process instead of once per job (TOML, every rule,
//! every template compiled).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::domain::config::{ConfigDocument, check_document};
use crate::domain::diagnostic::Diagnostic;

/// Texts remembered at most; the memo starts again when full (configurations hold far fewer).
const CAPACITY: usize = 512;

type Checked = Result<ConfigDocument, Vec<Diagnostic>>;

static MEMO: LazyLock<Mutex<HashMap<(String, String), Checked>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`check_document`] of `text` labelled `label`, remembered: the same label and text answer
/// the same result without checking again.
pub fn check(label: &str, text: &str) -> Checked {
    let key = (label.to_string(), text.to_string());
    // A poisoned lock only means another thread panicked while holding it; the map itself is
    // always left whole (every access is one insert, get or clear).
    if let Some(found) = MEMO
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return found.clone();
    }
    let checked = check_document(label, text);
    let mut memo = MEMO.lock().unwrap_or_else(PoisonError::into_inner);
    if memo.len() >= CAPACITY {
        memo.clear();
    }
    memo.insert(key, checked.clone());
    checked
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "kind = \"role\"\nname = \"dev\"\nentitlements = [\"db:git\"]\n";

    #[test]
    fn remembers_what_check_document_answers() {
        assert_eq!(check("a.toml", ROLE), check_document("a.toml", ROLE));
        assert_eq!(check("a.toml", ROLE), check_document("a.toml", ROLE));
        let broken = "kind = \"role\"\nname = ";
        assert_eq!(check("b.toml", broken), check_document("b.toml", broken));
        assert!(check("b.toml", broken).is_err());
    }

    #[test]
    fn the_label_is_part_of_the_answer() {
        let broken = "kind = 3";
        let one = check("one.toml", broken).expect_err("broken");
        let two = check("two.toml", broken).expect_err("broken");
        assert_ne!(one, two, "diagnostics name their own file");
    }
}
