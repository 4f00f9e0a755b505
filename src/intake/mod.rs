//! Intake: reading requests from IMAP mailboxes and CSV files, understanding them with rules
//! and (when configured) a local model, and handing what was decided to the store.
//!
//! Understanding one message: [`parse::parse`] reads the raw bytes into a
//! [`crate::domain::intake::MailSummary`]; [`classify::Classifier::classify`] screens it with
//! [`rules`] (and [`injection`]), asks the model through [`llm`] when configured, checks the
//! result and returns a [`crate::domain::intake::Classified`] with its evidence. A CSV file of
//! people becomes request drafts in [`csv`].

pub mod classify;
pub mod configured;
pub mod csv;
pub mod extract;
pub mod imap;
pub mod injection;
pub mod llm;
pub mod llm_schema;
pub mod parse;
pub mod reader;
pub mod rules;
pub mod text;
