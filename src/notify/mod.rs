//! Notifications: sending mail through a `kind = "notifier"` SMTP server and posting to its
//! `[[chat]]` targets (Slack, Teams, Matrix). Driven by the engine's `notify.*` jobs;
//! templates and events are pure rules in [`crate::domain::notification`].

pub mod chat;
pub mod smtp;

pub use chat::{ChatFailure, ChatMessage, ChatPoster};
pub use smtp::{Mailer, NotifyError, OutgoingMail, RecipientFailure, SendReport};
