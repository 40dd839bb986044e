//! Wire types shared by `phlix-hub`, `phlix-agent` and the test suites.
//!
//! Everything here is plain data and pure codecs: request and response bodies of the HTTP API
//! (SPEC E/F), the error body, the relay frame codec (A.1–A.2), HTTP-over-relay chunks (A.5),
//! HELLO and control payloads (A.3), and a WebSocket frame codec that does not UTF-8-validate
//! (A.6). No input can make it panic. The one module with I/O, `ws_io` (the WebSocket
//! transport over tokio byte streams, shared by hub and agent), is behind the `io` feature.

pub mod auth;
pub mod control;
pub mod error;
pub mod frame;
pub mod relay_http;
pub mod server;
pub mod ws;
#[cfg(feature = "io")]
pub mod ws_io;

pub use error::ErrorBody;
