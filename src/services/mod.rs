//! Operations that more than one handler (or a handler and a job) perform, each one
//! function: the transaction, the change, its events, the commit, and what must be
//! announced after it. Handlers extract and validate; services change state.

pub mod api_keys;
pub mod email_flows;
pub mod idempotency;
pub mod invitations;
pub mod memberships;
pub mod oauth;
pub mod organizations;
pub mod roles;
pub mod second_factor;
pub mod sessions;
pub mod sign_in;
pub mod users;
