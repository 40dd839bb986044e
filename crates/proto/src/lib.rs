//! Wire types shared by `phlix-hub`, `phlix-agent` and the test suites.
//!
//! Everything here is plain data: request and response bodies of the HTTP API (SPEC E/F) and the
//! error body every endpoint answers with. No I/O lives in this crate, so the hub, the agent and
//! independent test clients all agree on one definition of every field name.

pub mod auth;
pub mod error;
pub mod server;

pub use error::ErrorBody;
