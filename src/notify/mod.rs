//! Notifications: sending mail through a `kind = "notifier"` SMTP server. Driven by the
//! engine's `notify.*` jobs; templates and events are pure rules in
//! [`crate::domain::notification`].

pub mod smtp;

pub use smtp::{Mailer, NotifyError, OutgoingMail, RecipientFailure, SendReport};
