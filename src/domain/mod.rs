//! Pure domain types and rules: no I/O, no async, exhaustively unit-tested.
//!
//! The one exception is [`secret::SecretRef::resolve`], which reads an environment variable or
//! a file and is kept apart from everything else.

pub mod approval;
pub mod authz;
pub mod calendar;
pub mod carry_forward;
pub mod chain;
pub mod checkpoint;
pub mod config;
pub mod delegation;
pub mod diagnostic;
pub mod directory_checks;
pub mod directory_settings;
pub mod dry_run;
pub mod duration;
pub mod grace;
pub mod http_template;
pub mod inert;
pub mod intake;
pub mod limits;
pub mod mail_summary;
pub mod notification;
pub mod pinning;
pub mod placeholder;
pub mod reply;
pub mod reply_token;
pub mod request;
pub mod retry;
pub mod role;
pub mod secret;
pub mod separation;
pub mod sshkey;
pub mod timers;
pub mod timezone;
pub mod username;
pub mod workflow;
