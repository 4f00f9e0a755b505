//! Gatehouse: onboarding and access-provisioning engine with a ratatui console.
//!
//! Dependencies point one way: `domain` is pure; `store` knows `domain`; `engine` drives the
//! store and the adapters; `tui` knows `store` and `domain` only. `main.rs` wires them.

pub mod domain;
pub mod store;
pub mod tui;
