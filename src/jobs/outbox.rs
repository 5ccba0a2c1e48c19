//! The outgoing-webhooks worker: claims due deliveries, signs them with Standard
//! Webhooks headers, sends them, and settles each attempt: delivered, retried with
//! exponential backoff and jitter, or given up after [`MAX_ATTEMPTS`]. Every instance
//! runs one; they share the work through the claim query.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::db::webhooks::{self, AttemptOutcome, Claimed};
use crate::db::{Dialect, events};
use crate::state::AppState;
use crate::webhooks::address::{PublicOnlyResolver, is_internal};
use crate::webhooks::signature::WebhookSecret;

/// Attempts per delivery before it is marked `failed`.
pub const MAX_ATTEMPTS: i64 = 8;
/// Consecutive failed attempts after which an endpoint is marked `failing`.
pub const FAILING_AFTER: i64 = 5;
/// Deliveries in flight at once per instance.
const BATCH: i64 = 32;
/// How long a claim holds before another worker may take the delivery again.
const LEASE_MS: i64 = 60_000;
/// The longest wait between attempts.
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// What wakes the worker (see [`super::Wake`]): on PostgreSQL a `NOTIFY` as new deliveries
/// commit, and a poll for retries coming due; on SQLite a poll.
pub const WAKE: super::Channel = super::Channel {
    name: events::OUTBOX_CHANNEL,
    poll_postgres: Duration::from_millis(1000),
    poll_sqlite: Duration::from_millis(50),
};

/// The wait before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped at an hour,
/// times a random factor in [0.75, 1.25) so that retries from many deliveries spread out.
pub fn backoff_ms(base_ms: i64, attempt: i64) -> i64 {
    let exponential = base_ms
        .saturating_mul(1 << (attempt - 1).clamp(0, 30))
        .min(MAX_BACKOFF_MS);
    let mut random = [0u8; 2];
    crate::ids::random_bytes(&mut random);
    // Divided by 2^16, not by u16::MAX: the factor never reaches 1.25.
    let factor = 0.75 + f64::from(u16::from_le_bytes(random)) / 65_536.0 * 0.5;
    (exponential as f64 * factor) as i64
}

/// The deliveries' HTTP client: short timeouts, no redirects, and in production a
/// resolver that refuses hosts resolving to internal addresses (SSRF).
pub fn http_client(production: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if production {
        builder = builder.dns_resolver(PublicOnlyResolver);
    }
    builder.build().expect("an HTTP client builds")
}

/// In production a URL whose host is a literal internal address is refused before
/// sending (the resolver sees only names).
fn refused_literal(url: &str, production: bool) -> Option<String> {
    if !production {
        return None;
    }
    let url = reqwest::Url::parse(url).ok()?;
    let ip: std::net::IpAddr = url.host_str()?.trim_matches(['[', ']']).parse().ok()?;
    is_internal(ip).then(|| format!("{ip} is an internal address: refused"))
}

/// Runs until `shutdown` turns true; deliveries in flight are finished first. Up to
/// [`BATCH`] deliveries are in flight at once, and free slots are refilled as soon as
/// they free up, so one slow receiver does not hold back the others.
pub async fn run(state: web::Data<AppState>, wake: super::Wake, mut shutdown: watch::Receiver<bool>) {
    let http = http_client(state.config.is_production());
    let slots = Arc::new(tokio::sync::Semaphore::new(BATCH as usize));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = slots.available_permits() as i64;
        let now = now_ms();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            claim(&state, now, free).await
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = wake.wait() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for delivery in claimed {
            let permit = slots
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (state, http, wake) = (state.clone(), http.clone(), wake.notify.clone());
            tokio::spawn(async move {
                deliver(state, http, delivery).await;
                drop(permit);
                // A free slot: look for more work now rather than at the next poll.
                wake.notify_one();
            });
        }
    }
    // Wait for the deliveries in flight.
    let _ = slots.acquire_many(BATCH as u32).await;
}

/// Claims up to `limit` due deliveries. On SQLite a cheap read first: when it finds
/// none, nothing is written (an idle worker never takes the write lock); PostgreSQL's
/// claim writes nothing when nothing is due.
async fn claim(state: &AppState, now: i64, limit: i64) -> Vec<Claimed> {
    let due = match state.db.dialect {
        Dialect::Postgres => Ok(true),
        Dialect::Sqlite => webhooks::any_due(&state.db, now).await,
    };
    match due {
        Ok(true) => webhooks::claim_due(&state.db, now, now + LEASE_MS, limit)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not claim webhook deliveries");
                Vec::new()
            }),
        Ok(false) => Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for due webhook deliveries");
            Vec::new()
        }
    }
}

async fn deliver(state: web::Data<AppState>, http: reqwest::Client, claimed: Claimed) {
    let body = serde_json::json!({
        "id": claimed.event_id,
        "object": "event",
        "type": claimed.event_type,
        "timestamp": claimed.event_created_at,
        "data": serde_json::from_str::<serde_json::Value>(&claimed.payload).unwrap_or_default(),
    })
    .to_string();
    let started = Instant::now();
    let refused = refused_literal(&claimed.url, state.config.is_production());
    let result = match WebhookSecret::parse(&claimed.secret) {
        _ if refused.is_some() => Err(refused.unwrap_or_default()),
        Ok(secret) => {
            let timestamp = crate::clock::now_secs();
            let signature = secret.sign(&claimed.event_id, timestamp, body.as_bytes());
            http.post(&claimed.url)
                .header("content-type", "application/json")
                .header("webhook-id", &claimed.event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| crate::error::error_chain(&e))
        }
        Err(e) => Err(e.to_string()),
    };
    let duration_ms = started.elapsed().as_millis() as i64;
    let now = now_ms();
    let delivered = matches!(result, Ok(code) if (200..300).contains(&code));
    let retry_at = if delivered {
        None
    } else if claimed.attempt >= MAX_ATTEMPTS {
        Some(None)
    } else {
        Some(Some(
            now + backoff_ms(state.config.webhook_retry_base.as_millis() as i64, claimed.attempt),
        ))
    };
    let error = result.as_ref().err().map(String::as_str);
    let outcome = AttemptOutcome {
        status_code: result.as_ref().ok().map(|c| i64::from(*c)),
        error,
        duration_ms,
        retry_at,
    };
    if delivered {
        state.metrics.incr("webhooks_delivered");
    } else {
        state.metrics.incr("webhook_attempts_failed");
        tracing::info!(endpoint = %claimed.endpoint_id, event = %claimed.event_id, attempt = claimed.attempt, error = ?error, status = ?outcome.status_code, "webhook attempt failed");
    }
    if let Err(e) = webhooks::settle(&state.db, &claimed, &outcome, FAILING_AFTER, now).await {
        // The lease runs out and the delivery is tried again: at least once.
        tracing::warn!(error = %e, delivery = %claimed.delivery_id, "could not record a webhook attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        for attempt in 1..=6 {
            let nominal = 1000 * (1 << (attempt - 1));
            for _ in 0..50 {
                let wait = backoff_ms(1000, attempt);
                assert!(wait >= nominal * 3 / 4 && wait < nominal * 5 / 4, "{attempt}: {wait}");
            }
        }
        assert!(backoff_ms(1000, 40) <= MAX_BACKOFF_MS * 5 / 4);
    }
}
