//! Gatehouse: Clerk-style sessions, organizations and route protection for actix-web.
//!
//! `main.rs` only parses the command line; everything else lives here so that the
//! tests and benchmarks drive the very app that ships.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod db;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
