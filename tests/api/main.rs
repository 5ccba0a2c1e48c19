//! Integration tests: the real app over HTTP on a random port, on SQLite and (with
//! `TEST_DATABASE_URL`) on PostgreSQL, each test on a fresh database.

mod helpers;

mod administration;
mod api_keys;
mod audit;
mod backend_api;
mod bad_input;
mod browser;
mod clerk;
mod client_api;
mod emails;
mod faults;
mod guard;
mod housekeeping;
mod invitations;
mod items;
mod oauth;
mod oidc_mock;
mod openapi_doc;
mod operations;
mod organizations;
mod pages;
mod rate_limits;
mod second_factor;
mod session_tokens;
mod sessions;
mod smtp;
mod webdriver;
mod webhooks;
