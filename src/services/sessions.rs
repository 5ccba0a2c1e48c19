//! Stopping sessions: sign-out on a device, revocation, expiry. Every stop is one
//! transaction with a `session.ended` or `session.revoked` event per session, and after
//! the commit the stop is announced, so the sessions' tokens are refused from the next
//! request on, on every instance.

use crate::clock::now_ms;
use crate::db::clients::{self, Client};
use crate::db::sessions::{self, Session, SessionStatus};
use crate::db::{Transaction, events};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Revokes an active session. `None` if it was not active.
pub async fn revoke(state: &AppState, session_id: &str) -> AppResult<Option<Session>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let revoked = sessions::finish(&mut *tx, session_id, SessionStatus::Revoked, now).await?;
    let stopped: Vec<Session> = revoked.into_iter().collect();
    commit_stopped(state, tx, events::SESSION_REVOKED, &stopped, now).await?;
    Ok(stopped.into_iter().next())
}

/// Revokes every active session of a user, except `keep` if given.
pub async fn revoke_all_for_user(state: &AppState, user_id: &str, keep: Option<&str>) -> AppResult<Vec<Session>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let stopped = sessions::revoke_all_for_user(&mut *tx, user_id, keep, now).await?;
    commit_stopped(state, tx, events::SESSION_REVOKED, &stopped, now).await?;
    Ok(stopped)
}

/// Revokes every active session of a user (except `keep`) inside the caller's
/// transaction, with their events. After committing, the caller announces the returned
/// stop with [`announce`].
pub async fn revoke_all_for_user_in(
    tx: &mut Transaction,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> AppResult<Stopped> {
    let stopped = sessions::revoke_all_for_user(&mut **tx, user_id, keep, now).await?;
    record_stopped(tx, events::SESSION_REVOKED, &stopped, now).await?;
    Ok(Stopped(stopped.into_iter().map(|s| s.id).collect()))
}

/// Sessions stopped inside a transaction, to announce once it has committed.
#[must_use = "announce the stop after the commit"]
pub struct Stopped(Vec<String>);

impl Stopped {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Makes committed stops bite on the next request, on every instance.
pub async fn announce(state: &AppState, stopped: Stopped) {
    state.revocations.stopped(&state.db, &stopped.0).await;
}

/// Signs one session of this device out (it stops being the device's active session).
/// `None` if it was not active.
pub async fn end(state: &AppState, client: &Client, session_id: &str) -> AppResult<Option<Session>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let ended = sessions::finish(&mut *tx, session_id, SessionStatus::Ended, now).await?;
    if ended.is_some() && client.last_active_session_id.as_deref() == Some(session_id) {
        clients::set_last_active_session(&mut *tx, &client.id, None, now).await?;
    }
    let stopped: Vec<Session> = ended.into_iter().collect();
    commit_stopped(state, tx, events::SESSION_ENDED, &stopped, now).await?;
    Ok(stopped.into_iter().next())
}

/// Signs every session of this device out.
pub async fn end_all_for_client(state: &AppState, client_id: &str) -> AppResult<Vec<Session>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let stopped = sessions::end_all_for_client(&mut *tx, client_id, now).await?;
    clients::set_last_active_session(&mut *tx, client_id, None, now).await?;
    commit_stopped(state, tx, events::SESSION_ENDED, &stopped, now).await?;
    Ok(stopped)
}

/// Marks one session past its lifetime as expired (found on a refresh).
pub async fn expire(state: &AppState, session_id: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let expired = sessions::finish(&mut *tx, session_id, SessionStatus::Expired, now).await?;
    let stopped: Vec<Session> = expired.into_iter().collect();
    commit_stopped(state, tx, events::SESSION_ENDED, &stopped, now).await
}

/// Marks up to `limit` sessions past their lifetime as expired (the housekeeping
/// timer); returns how many.
pub async fn expire_due(state: &AppState, now: i64, limit: i64) -> AppResult<usize> {
    let mut tx = state.db.begin().await?;
    let stopped = sessions::expire_due(&mut *tx, now, limit).await?;
    commit_stopped(state, tx, events::SESSION_ENDED, &stopped, now).await?;
    Ok(stopped.len())
}

async fn record_stopped(tx: &mut Transaction, event_type: &str, stopped: &[Session], now: i64) -> AppResult<()> {
    for session in stopped {
        let data = serde_json::to_value(session).map_err(AppError::internal)?;
        events::record(tx, event_type, None, Some(&session.user_id), &data, now).await?;
    }
    Ok(())
}

/// Records an event per stopped session, commits, and announces the stop.
async fn commit_stopped(
    state: &AppState,
    mut tx: Transaction,
    event_type: &str,
    stopped: &[Session],
    now: i64,
) -> AppResult<()> {
    record_stopped(&mut tx, event_type, stopped, now).await?;
    tx.commit().await?;
    let ids: Vec<String> = stopped.iter().map(|s| s.id.clone()).collect();
    state.revocations.stopped(&state.db, &ids).await;
    Ok(())
}
