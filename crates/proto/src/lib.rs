//! Wire types shared by `phlix-hub`, `phlix-agent` and the test suites.
//!
//! Everything here is plain data and pure codecs: request and response bodies of the HTTP API
//! (SPEC E/F), the error body, the relay frame codec (A.1–A.2), HTTP-over-relay chunks (A.5),
//! HELLO and control payloads (A.3), and a WebSocket frame codec that does not UTF-8-validate
//! (A.6). No I/O lives in this crate; no input can make it panic.

pub mod auth;
pub mod control;
pub mod error;
pub mod frame;
pub mod relay_http;
pub mod server;
pub mod ws;

pub use error::ErrorBody;
