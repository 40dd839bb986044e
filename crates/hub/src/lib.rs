//! phlix-hub: the cloud side that makes home servers behind NAT reachable.
//!
//! The binary (`src/main.rs`) only parses the command line; everything runs from here so the
//! integration tests drive the same code over real sockets. Layout:
//! - [`config`]: flags/env → [`config::Config`];
//! - [`server`]: start-up steps, listeners, graceful shutdown ([`server::launch`]);
//! - [`api`]: the axum router, JSON errors and extractors;
//! - [`store`]: SQLite/PostgreSQL persistence with per-dialect migrations;
//! - [`auth`]: Argon2id passwords and HS256 session tokens; [`accounts`]: account rules;
//! - [`health`]: readiness and the database probe; [`relay`]: the WebSocket listeners;
//! - [`events`]: the live-event bus behind `GET /api/v1/me/events`;
//! - [`web`]: the server-rendered pages under `/app/…` (askama templates, embedded assets).

pub mod access;
pub mod accounts;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod events;
pub mod health;
pub mod heartbeat;
pub mod metrics;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod settings;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
