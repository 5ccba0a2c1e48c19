//! Where every way of signing in ends: a new session on this device's client, with its
//! `session.created` event, in the caller's transaction.

use crate::auth::request::ClientContext;
use crate::db::sessions::{NewSession, Session};
use crate::db::users::User;
use crate::db::{Transaction, clients, events, sessions};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Adds a session for `user` to the device's client (creating the client on first
/// use, or when the cookie names one that no longer exists) and makes it the client's
/// active session.
pub async fn open_session(
    state: &AppState,
    tx: &mut Transaction,
    client_id: Option<&str>,
    user: &User,
    ctx: &ClientContext,
    now: i64,
) -> AppResult<Session> {
    let existing = match client_id {
        Some(id) => clients::find(&mut **tx, id).await?,
        None => None,
    };
    let client = match existing {
        Some(client) => client,
        None => clients::insert(&mut **tx, now).await?,
    };
    let new_session = NewSession {
        client_id: &client.id,
        user_id: &user.id,
        user_agent: ctx.user_agent.as_deref(),
        ip_address: Some(&ctx.ip),
        lifetime_ms: state.config.session_lifetime.as_millis() as i64,
    };
    let session = sessions::insert(&mut **tx, new_session, now).await?;
    clients::set_last_active_session(&mut **tx, &client.id, Some(&session.id), now).await?;
    let session_json = serde_json::to_value(&session).map_err(AppError::internal)?;
    events::record(tx, events::SESSION_CREATED, None, Some(&user.id), &session_json, now).await?;
    Ok(session)
}
