//! The store: one API over SQLite (embedded default) and PostgreSQL (shared, multi-host).

pub mod api;
pub mod error;
