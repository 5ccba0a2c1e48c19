//! Webhooks both ways: Clerk's (Svix-signed) events in, Gatehouse's own events out.

pub mod address;
pub mod clerk;
pub mod signature;
