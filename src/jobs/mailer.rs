//! The mail worker: claims due emails from the outbox, sends them, and settles each:
//! sent, retried with exponential backoff and jitter, or given up after
//! [`MAX_ATTEMPTS`]. An SMTP outage never fails or slows a request (the request only
//! wrote a row), and a restart loses nothing (a claim is a lease).

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tokio::sync::watch;

use super::outbox::backoff_ms;
use crate::clock::now_ms;
use crate::db::emails;
use crate::mail::transport::Mailer;
use crate::state::AppState;

/// Attempts per email before it is marked `failed`.
pub const MAX_ATTEMPTS: i64 = 10;
/// Emails sent at once per instance.
const BATCH: i64 = 8;
const LEASE_MS: i64 = 60_000;
/// What wakes the worker (see [`super::Wake`]): on PostgreSQL a `NOTIFY` as new emails
/// commit, and a poll for retries coming due; on SQLite a poll.
pub const WAKE: super::Channel = super::Channel {
    name: emails::MAIL_CHANNEL,
    poll_postgres: Duration::from_millis(1000),
    poll_sqlite: Duration::from_millis(100),
};

pub async fn run(
    state: web::Data<AppState>,
    mailer: Arc<Mailer>,
    wake: super::Wake,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = now_ms();
        let claimed = match emails::any_due(&state.db, now).await {
            Ok(true) => emails::claim_due(&state.db, now, now + LEASE_MS, BATCH)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not claim emails");
                    Vec::new()
                }),
            Ok(false) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "could not look for due emails");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = wake.wait() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let sends = claimed.iter().map(|email| mailer.send(email, &state.config.email.from));
        let results = futures_util::future::join_all(sends).await;
        for (email, result) in claimed.iter().zip(results) {
            let now = now_ms();
            let retry_at = match &result {
                Ok(()) => None,
                Err(_) if email.attempt >= MAX_ATTEMPTS => None,
                Err(_) => Some(now + backoff_ms(state.config.email.retry_base.as_millis() as i64, email.attempt)),
            };
            match &result {
                Ok(()) => state.metrics.incr("emails_sent"),
                Err(error) => {
                    state.metrics.incr("email_attempts_failed");
                    tracing::warn!(email = %email.id, kind = %email.kind, attempt = email.attempt, error = %error, "sending an email failed");
                }
            }
            if let Err(e) = emails::settle(
                &state.db,
                &email.id,
                result.as_ref().map(|_| ()).map_err(String::as_str),
                retry_at,
                now,
            )
            .await
            {
                // The lease runs out and the email is tried again: at least once.
                tracing::warn!(error = %e, email = %email.id, "could not record an email attempt");
            }
        }
    }
}
