//! phlix-hub: the cloud side that makes home servers behind NAT reachable.
//!
//! The binary (`src/main.rs`) only parses the command line; everything runs from here so the
//! integration tests drive the same code over real sockets. The crate is layered; each layer
//! imports only the layers below it (ARCHITECTURE.md has the picture, `scripts/check-layers`
//! enforces it):
//! - foundation: [`config`] (data only), [`store`] (SQL only), [`auth`] (password hashing,
//!   tokens, keys), [`ratelimit`], [`telemetry`], [`arr`] (the Radarr/Sonarr client), [`tls`]
//!   (certificates, reload, ACME);
//! - [`domain`]: one module per domain — rules, validation, audit rows and events;
//! - [`http`]: what the HTTP surfaces share — errors, extractors, cookies, state, redirects;
//! - adapters: [`api`] (JSON), [`web`] (pages), [`relay`] (tunnels, mounts, HTTP-over-relay);
//! - [`server`] composes the routers and owns start-up and shutdown; [`openapi`] is the
//!   OpenAPI document of the same routes; [`cli`] the commands.

pub mod api;
pub mod arr;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod openapi;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
