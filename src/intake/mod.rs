//! Intake: reading requests from IMAP mailboxes and CSV files, understanding them with rules
//! and (when configured) a local model, and handing what was decided to the store.

pub mod extract;
pub mod injection;
pub mod parse;
pub mod rules;
pub mod text;
