//! The product's mail classifier for the reader: each mailbox's own `[rules]` and `[llm]`
//! settings, one [`Classifier`] per mailbox kept while its settings stay the same (so a
//! model's circuit breaker and concurrency limit span messages), built anew when they change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::domain::config::Mailbox;
use crate::domain::intake::Classified;
use crate::intake::classify::Classifier;
use crate::intake::reader::MailClassifier;

/// Classifies each message with its mailbox's settings.
#[derive(Default)]
pub struct MailboxClassifiers {
    /// Mailbox name → (settings fingerprint, classifier).
    built: Mutex<HashMap<String, (String, Arc<Classifier>)>>,
}

impl MailboxClassifiers {
    /// The classifier for `mailbox`'s current settings.
    fn for_mailbox(&self, mailbox: &Mailbox) -> Arc<Classifier> {
        let fingerprint =
            serde_json::to_string(&(&mailbox.rules, &mailbox.llm)).unwrap_or_default();
        // A poisoned lock only means another reader panicked mid-insert; the map is still a
        // valid cache, so it is used as is.
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seen, classifier)) = built.get(&mailbox.name)
            && *seen == fingerprint
        {
            return classifier.clone();
        }
        let classifier = match Classifier::from_settings(&mailbox.rules, mailbox.llm.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(mailbox = %mailbox.name, error = %e, "the [llm] settings cannot be used; the rules decide alone");
                Classifier::new(mailbox.rules.clone(), None)
            }
        };
        let classifier = Arc::new(classifier);
        built.insert(mailbox.name.clone(), (fingerprint, classifier.clone()));
        classifier
    }
}

impl MailClassifier for MailboxClassifiers {
    fn classify<'a>(&'a self, mailbox: &'a Mailbox, raw: &'a [u8]) -> BoxFuture<'a, Classified> {
        let classifier = self.for_mailbox(mailbox);
        Box::pin(async move { classifier.classify(raw).await })
    }

    fn name(&self) -> &str {
        "rules + local model (each mailbox's [rules] and [llm])"
    }
}
