//! The relay adapters (SPEC A, B): server tunnels on the tunnel listener, client mounts on the
//! client listener, HTTP-over-relay streaming. The registry they share (tunnel handles, timers,
//! meters, quota checks) is the domain's [`crate::domain::tunnels`], re-exported here.

pub mod client;
pub mod cluster;
pub mod proxy;
pub mod route;
pub mod throttle;
pub mod tunnel;
pub mod ws_io;

pub use crate::domain::tunnels::*;
