//! Gatehouse: onboarding and access-provisioning engine with a ratatui console.
//!
//! Dependencies point one way: `domain` is pure; `store` knows `domain`; `engine` drives the
//! store and the adapters (`connectors`); `tui` knows `store` and `domain` only. `cli` wires them.

pub mod bench;
pub mod cli;
pub mod connectors;
pub mod demo;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod failure;
pub mod identity;
pub mod intake;
pub mod logging;
pub mod notify;
pub mod serve;
pub mod store;
pub mod tui;
