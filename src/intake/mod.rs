//! Intake: reading requests from IMAP mailboxes and CSV files, understanding them with rules
//! and (when configured) a local model, and handing what was decided to the store.

pub mod imap;
pub mod reader;
pub mod stand_in;
