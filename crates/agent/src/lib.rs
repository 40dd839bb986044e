//! phlix-agent: the home side of phlix-hub (SPEC K).
//!
//! This release implements pairing ([`pair`]) and the local state it leaves behind
//! ([`state`]); the tunnel (`run`) and client (`connect`) commands come next.

pub mod connect;
pub mod metrics;
pub mod pair;
pub mod run;
pub mod state;
pub mod tls;
