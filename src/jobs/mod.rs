//! Background work that runs beside the server on every instance.

pub mod housekeeping;
pub mod mailer;
pub mod outbox;
