//! Users administered by the product's backend (create, delete, ban) and by themselves
//! (delete their own account), and support's impersonation. A ban or a deletion revokes
//! every session in the same transaction and announces the stop after the commit, so the
//! user's tokens are refused from the next request on, on every instance.

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::codes::Purpose;
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::db::actor_tokens::{self, ActorToken};
use crate::db::audit;
use crate::db::users::{self, NewUser, User, UserChange};
use crate::db::{Transaction, events, memberships};
use crate::error::{AppError, AppResult, ResultExt};
use crate::services::sessions::{self, Stopped};
use crate::services::sign_in::{SignInOutcome, complete_impersonated};
use crate::state::AppState;

/// What a deletion answers (Clerk's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    #[schema(example = "user_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[schema(example = "user")]
    pub object: &'static str,
    pub deleted: bool,
}

/// Creates a user (email verified: the backend vouches for it), with metadata
/// (`user.created`). A taken email: 422 `fields.email`.
pub async fn create(state: &AppState, new: NewUser<'_>, metadata: &UserChange<'_>) -> AppResult<User> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let user = users::insert(&mut *tx, new, now)
        .await
        .on_unique_violation(|| AppError::field("email", "is already taken"))?;
    let user = users::update(&mut *tx, &user.id, metadata, now)
        .await?
        .ok_or_else(|| AppError::internal("a user vanished right after its insert"))?;
    let data = serde_json::to_value(&user).map_err(AppError::internal)?;
    events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &data, now).await?;
    tx.commit().await?;
    Ok(user)
}

/// Changes a user's names and metadata (`user.updated`). No such user: 404.
pub async fn update(state: &AppState, user_id: &str, change: &UserChange<'_>) -> AppResult<User> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let user = users::update(&mut *tx, user_id, change, now)
        .await?
        .ok_or_else(no_such_user)?;
    record_user(&mut tx, events::USER_UPDATED, &user, now).await?;
    tx.commit().await?;
    Ok(user)
}

/// Bans or unbans a user (`user.updated`); a ban revokes every session at once. No such
/// user: 404. Already in that state: the user unchanged.
pub async fn set_banned(state: &AppState, user_id: &str, banned: bool) -> AppResult<User> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let Some(user) = users::set_banned(&mut *tx, user_id, banned, now).await? else {
        drop(tx);
        return users::find_by_id(&state.db.pool, user_id)
            .await?
            .ok_or_else(no_such_user);
    };
    record_user(&mut tx, events::USER_UPDATED, &user, now).await?;
    let action = if banned { "user.banned" } else { "user.unbanned" };
    crate::db::audit::record_on_user(&mut *tx, action, user_id, now).await?;
    let stopped = match banned {
        true => Some(sessions::revoke_all_for_user_in(&mut tx, user_id, None, now).await?),
        false => None,
    };
    tx.commit().await?;
    if let Some(stopped) = stopped {
        sessions::announce(state, stopped).await;
    }
    tracing::info!(user_id, banned, "ban changed");
    Ok(user)
}

/// Deletes a user (`user.deleted`): sessions revoked at once, memberships, second factor
/// and personal items gone; organization rows they wrote stay. No such user: 404.
pub async fn delete(state: &AppState, user_id: &str) -> AppResult<Deleted> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let stopped = remove_in(&mut tx, user_id, now).await?;
    tx.commit().await?;
    sessions::announce(state, stopped).await;
    tracing::info!(user_id, "user deleted");
    Ok(Deleted {
        id: user_id.to_owned(),
        object: "user",
        deleted: true,
    })
}

/// The user deletes their own account. The last admin of an organization that has other
/// members: 409 (hand the organization over first). Organizations where they are the
/// only member go with them (`organization.deleted`).
pub async fn delete_self(state: &AppState, user_id: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    // The write lock first (SQLite: a read-then-write transaction would have to upgrade
    // its lock and fail busy), then the user's organizations (serializes against admin
    // changes there).
    if !users::lock(&mut *tx, user_id, now).await? {
        return Err(no_such_user());
    }
    let orgs = memberships::list_for_user(&mut *tx, user_id).await?;
    for (org, _) in &orgs {
        crate::db::organizations::lock(&mut *tx, &org.id, now).await?;
    }
    for (org, role) in &orgs {
        let members = memberships::count_members(&mut *tx, &org.id).await?;
        if members == 1 {
            crate::services::organizations::delete_in(&mut tx, org, user_id, now).await?;
        } else if role == crate::db::roles::ADMIN_ROLE && memberships::count_admins(&mut *tx, &org.id).await? <= 1 {
            return Err(AppError::Conflict(format!(
                "you are the last admin of {}, which has other members: make one of them admin first",
                org.name
            )));
        }
    }
    let stopped = remove_in(&mut tx, user_id, now).await?;
    tx.commit().await?;
    sessions::announce(state, stopped).await;
    tracing::info!(user_id, "user deleted their account");
    Ok(())
}

/// Inside a transaction: revokes the sessions, deletes the personal items and the user,
/// records `user.deleted`.
async fn remove_in(tx: &mut Transaction, user_id: &str, now: i64) -> AppResult<Stopped> {
    if !users::lock(&mut **tx, user_id, now).await? {
        return Err(no_such_user());
    }
    let user = users::find_by_id(&mut **tx, user_id).await?.ok_or_else(no_such_user)?;
    let stopped = sessions::revoke_all_for_user_in(tx, user_id, None, now).await?;
    crate::db::items::delete_personal(&mut **tx, user_id).await?;
    users::delete(&mut **tx, user_id).await?;
    let data = serde_json::json!({"id": user.id, "object": "user", "deleted": true});
    events::record(tx, events::USER_DELETED, None, Some(user_id), &data, now).await?;
    Ok(stopped)
}

/// Default and bounds of an actor token's life (seconds).
pub const ACTOR_TOKEN_DEFAULT_SECS: i64 = 600;
pub const ACTOR_TOKEN_SECS: std::ops::RangeInclusive<i64> = 30..=86_400;

/// A new actor token and its single-use URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedActorToken {
    #[serde(flatten)]
    pub token: ActorToken,
    /// `PUBLIC_URL/v1/tickets/accept?ticket=…`: opening it signs that browser in as the
    /// user, once.
    pub url: String,
}

/// Issues an actor token for `user_id` acting as `actor`. No such user: 404; banned: 409.
pub async fn issue_actor_token(
    state: &AppState,
    user_id: &str,
    actor: &serde_json::Value,
    lifetime_secs: i64,
) -> AppResult<IssuedActorToken> {
    let now = now_ms();
    let user = users::find_by_id(&state.db.pool, user_id)
        .await?
        .ok_or_else(no_such_user)?;
    if user.banned {
        return Err(AppError::Conflict("the user is banned: unban them first".to_owned()));
    }
    let mut tx = state.db.begin().await?;
    let token = actor_tokens::insert(&mut *tx, user_id, actor, now + lifetime_secs * 1000, now).await?;
    let ticket = state
        .codes
        .issue_token(&mut tx, Purpose::ActorToken, &token.id, lifetime_secs * 1000, now)
        .await?;
    tx.commit().await?;
    let url = format!(
        "{}/v1/tickets/accept?ticket={}",
        state.config.email.public_url,
        crate::auth::guard::percent_encode(&ticket)
    );
    tracing::info!(user_id, actor = %actor, token = %token.id, "actor token issued");
    Ok(IssuedActorToken { token, url })
}

/// Revokes a pending actor token. Unknown: 404; not pending: 409.
pub async fn revoke_actor_token(state: &AppState, id: &str) -> AppResult<ActorToken> {
    let now = now_ms();
    let token = actor_tokens::find(&state.db.pool, id, now)
        .await?
        .ok_or_else(|| AppError::NotFound("no such actor token".to_owned()))?;
    if !actor_tokens::revoke(&state.db.pool, id, now).await? {
        return Err(AppError::Conflict(format!("the actor token is {}", token.status)));
    }
    Ok(ActorToken {
        status: "revoked".to_owned(),
        ..token
    })
}

/// Opens an actor token's URL: the ticket is used (once), the token accepted (once), and
/// an impersonated session opened on this device. `None`: a used, revoked, expired or
/// unknown ticket (no session).
pub async fn accept_actor_ticket(
    state: &AppState,
    ticket: &str,
    client_id: Option<&str>,
    ctx: &ClientContext,
) -> AppResult<Option<SignInOutcome>> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let Some(id) = state
        .codes
        .consume_token(&mut tx, Purpose::ActorToken, ticket, now)
        .await?
    else {
        return Ok(None);
    };
    if !actor_tokens::accept(&mut *tx, &id, now).await? {
        return Ok(None);
    }
    let Some(token) = actor_tokens::find(&mut *tx, &id, now).await? else {
        return Ok(None);
    };
    let Some(user) = users::find_by_id(&mut *tx, &token.user_id).await? else {
        return Ok(None);
    };
    // From here the actions are the impersonated user's, done by the impersonator: the
    // audit entries (this one and the new session's) say so.
    let outer = audit::CONTEXT.try_with(Clone::clone).unwrap_or_default();
    let context = audit::RequestContext {
        principal: Some(audit::Principal {
            kind: "user",
            id: user.id.clone(),
            impersonator: token.actor.get("sub").and_then(|s| s.as_str()).map(str::to_owned),
        }),
        ..outer
    };
    let data = serde_json::json!({"actor": token.actor, "actor_token_id": token.id});
    let user_id = user.id.clone();
    let outcome = audit::CONTEXT
        .scope(context, async move {
            audit::record(
                &mut *tx,
                "impersonation.started",
                Some(("user", &user_id)),
                None,
                Some(&user_id),
                &data,
                now,
            )
            .await?;
            complete_impersonated(state, tx, client_id, user, &token.actor, ctx, now).await
        })
        .await?;
    if let SignInOutcome::Complete { session, .. } = &outcome {
        actor_tokens::set_session(&state.db.pool, &id, &session.id).await?;
    }
    Ok(Some(outcome))
}

fn no_such_user() -> AppError {
    AppError::NotFound("no such user".to_owned())
}

async fn record_user(tx: &mut Transaction, event_type: &str, user: &User, now: i64) -> AppResult<()> {
    let data = serde_json::to_value(user).map_err(AppError::internal)?;
    events::record(tx, event_type, None, Some(&user.id), &data, now).await?;
    Ok(())
}
