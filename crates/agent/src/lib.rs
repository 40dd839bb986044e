//! phlix-agent: the home side of phlix-hub (SPEC K).
//!
//! Pairing ([`pair`]) and the local state it leaves behind ([`state`]); the tunnel with its
//! heartbeats ([`run`], one connection in `tunnel`) and the data it carries to the local upstream ([`upstream`]); the client
//! side of a raw channel ([`connect`]); both speak WebSocket through [`ws`].

pub mod connect;
pub mod metrics;
pub mod pair;
pub mod run;
pub mod state;
pub mod tls;
mod tunnel;
pub mod upstream;
pub mod ws;
