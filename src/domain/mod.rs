//! Pure domain types and rules: no I/O, no async, exhaustively unit-tested.

pub mod approval;
pub mod diagnostic;
pub mod request;
pub mod retry;
pub mod secret;
pub mod username;
pub mod workflow;
