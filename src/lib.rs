//! Gatehouse: Clerk-style sessions, organizations and route protection for actix-web.
//!
//! `main.rs` only parses the command line; everything else lives here so that the
//! tests and benchmarks drive the very app that ships.
//!
//! # The map
//!
//! Layers, each importing only the ones below it:
//!
//! ```text
//! cli, startup          wiring: the command line, the server, its middlewares, the jobs
//! routes/, openapi      HTTP: extract and validate, call a service or the storage, map to JSON
//! jobs/                 background work: housekeeping, the outbox (webhook deliveries), mail
//! services/             operations shared by handlers and jobs, one function each
//! state                 AppState: what handlers, services and jobs share
//! auth/, webhooks/      tokens, keys, the authenticator, policy, guard and extractors;
//!                       webhook signatures, delivery addresses and the Clerk sync rules
//! db/                   storage: one module per table, both SQL dialects, no SQL elsewhere
//! config, error, ids,   the base: configuration, the one error type, typed ids, time,
//! clock, telemetry      logs and metrics
//! ```
//!
//! (`cors` and `telemetry`'s request middleware sit beside `auth::guard`: middlewares
//! read only the narrow parts of the state they are given as app data.)
//!
//! # Where to add…
//!
//! - **a route**: a handler in the area's file under `routes/` (state its guard with an
//!   extractor from [`auth::extractors`], declare its responses in `#[utoipa::path]`),
//!   add it to that area's `configure`, add its path to the policy in
//!   [`auth::policy`] if it is not signed-in-only, and regenerate `openapi/openapi.json`.
//! - **a table**: a migration in `migrations/` (listed in `db/migrations.rs`; a test
//!   fails when the list and the folder differ) and a module in `db/` with its queries.
//! - **a permission**: a constant in [`auth::permissions`] and a type for it in
//!   [`auth::extractors`], then `RequirePermission<YourPermission>` (or
//!   `DataScope<…>` for data that also has a personal scope) in the handlers.
//! - **a background job**: a module in `jobs/` with a `run` loop, started in
//!   `startup::start_background_jobs` (it is stopped with the server). A job that works
//!   through queued rows waits on a [`jobs::Wake`]: its own `NOTIFY` channel, sent in the
//!   transaction that queues the row ([`db::notify_on_commit`]), on the instance's one
//!   listener ([`db::listener`], PostgreSQL), and a poll. Anything else that follows a
//!   `NOTIFY` channel subscribes to that listener too (as the revocation list does).
//! - **an operation used twice**: a function in `services/`.
//! - **a way to sign in**: a [`services::sign_in::FirstFactor`] and a call to
//!   [`services::sign_in::complete`], which applies the second factor, bans and events.
//! - **a sign-in provider**: any OpenID Connect provider is configuration only
//!   (`OIDC_PROVIDERS`); one that is not (like GitHub) is a
//!   [`config::OAuthProviderKind`] variant with its arms in [`auth::oauth`].

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod db;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod mail;
pub mod openapi;
pub mod routes;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
