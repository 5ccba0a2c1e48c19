//! Periodic upkeep, every 30 s on every instance: expires sessions past their lifetime
//! (with `session.ended` events), catches up on revocations (in case a notification was
//! lost), forgets revocations and rate-limit keys that no longer matter, deletes expired
//! idempotency keys, and deletes what the retention period has outlived, in batches.

use std::time::Duration;

use actix_web::web;

use crate::db::idempotency;
use crate::db::retention::PURGES;
use crate::services;
use crate::state::AppState;

const EVERY: Duration = Duration::from_secs(30);
/// Rows per statement: short transactions that never hold a table for long.
const BATCH: i64 = 500;
/// Batches per kind of row per pass: a backlog is worked off over several passes.
const MAX_BATCHES: usize = 20;

pub async fn run(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        run_once(&state, crate::clock::now_ms()).await;
    }
}

/// One pass (the tests call it directly with the time they want).
pub async fn run_once(state: &AppState, now: i64) {
    if let Err(e) = expire_sessions(state, now).await {
        tracing::warn!(error = %e, "could not mark expired sessions");
    }
    state.revocations.prune();
    state.guard.authenticator.cache().sweep(now / 1000);
    if let Err(e) = state.revocations.catch_up(&state.db).await {
        tracing::warn!(error = %e, "revocation catch-up failed");
    }
    if let Some(limits) = &state.guard.rate_limits {
        limits.sweep();
    }
    if let Err(e) = idempotency::purge_expired(&state.db.pool, now).await {
        tracing::warn!(error = %e, "could not purge expired idempotency keys");
    }
    let audit_cutoff = now - state.config.audit_retention.as_millis() as i64;
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES {
        match crate::db::audit::purge(&state.db.pool, audit_cutoff, BATCH).await {
            Ok(n) => {
                deleted += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit retention batch failed");
                break;
            }
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "retention: deleted old audit entries");
    }
    let cutoff = now - state.config.retention.as_millis() as i64;
    for purge in PURGES {
        let mut deleted = 0;
        for _ in 0..MAX_BATCHES {
            match purge.batch(&state.db.pool, cutoff, BATCH).await {
                Ok(n) => {
                    deleted += n;
                    if n < BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, table = purge.name, "retention batch failed");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(table = purge.name, deleted, "retention: deleted old rows");
        }
    }
}

/// Marks sessions past their lifetime as expired (each with its `session.ended` event),
/// a batch at a time, and stops their tokens at once.
async fn expire_sessions(state: &AppState, now: i64) -> crate::error::AppResult<()> {
    while services::sessions::expire_due(state, now, BATCH).await? == BATCH as usize {}
    Ok(())
}
