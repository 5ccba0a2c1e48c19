//! Sign-in as a small state machine. Every first factor (password, email code, email
//! link, password reset, a confirmed sign-up, and later OAuth and tickets) ends in
//! [`complete`], which decides what the proof is worth and either opens the session
//! (with its `session.created` event) or stops short: a user with a second factor gets a
//! `signin_…` attempt bound to this device and no session, and
//! [`complete_second_factor`] turns the attempt into the session. The checks that apply
//! to every way in live here once.

use crate::auth::request::ClientContext;
use crate::db::sessions::{NewSession, Session};
use crate::db::sign_in_attempts::{self, SignInAttempt};
use crate::db::users::User;
use crate::db::{Transaction, clients, events, sessions, users};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How the user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstFactor {
    Password,
    EmailCode,
    EmailLink,
    PasswordReset,
    /// A new account (sign-up, or a confirmed pending sign-up).
    SignUp,
    /// An OAuth / OpenID Connect provider vouched for the user (a linked identity).
    OAuth,
}

impl FirstFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::EmailCode => "email_code",
            Self::EmailLink => "email_link",
            Self::PasswordReset => "password_reset",
            Self::SignUp => "sign_up",
            Self::OAuth => "oauth",
        }
    }

    /// Factors that go through the inbox prove the address too.
    fn proves_email(self) -> bool {
        matches!(self, Self::EmailCode | Self::EmailLink | Self::PasswordReset)
    }
}

/// What a first factor led to. (Made and consumed once per sign-in: boxing the larger
/// variant would buy nothing.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum SignInOutcome {
    /// A new session on this device.
    Complete { user: User, session: Session },
    /// The user has a second factor: no session yet, an attempt for this device's client.
    NeedsSecondFactor { attempt: SignInAttempt },
}

/// Ends a sign-in in the caller's transaction and commits it: marks the email verified
/// when the factor went through the inbox (`user.updated`), adds a session to the
/// device's client (creating the client on first use), makes it the device's active
/// one, and records `session.created`.
pub async fn complete(
    state: &AppState,
    tx: Transaction,
    client_id: Option<&str>,
    user: User,
    factor: FirstFactor,
    ctx: &ClientContext,
    now: i64,
) -> AppResult<SignInOutcome> {
    complete_in(state, tx, client_id, user, factor, ctx, None, now).await
}

/// [`complete`], with the new session's active organization set (a sign-up with an
/// invitation lands in the organization that invited).
#[allow(clippy::too_many_arguments)]
pub async fn complete_in(
    state: &AppState,
    mut tx: Transaction,
    client_id: Option<&str>,
    mut user: User,
    factor: FirstFactor,
    ctx: &ClientContext,
    organization_id: Option<&str>,
    now: i64,
) -> AppResult<SignInOutcome> {
    if factor.proves_email()
        && let Some(verified) = users::mark_email_verified(&mut *tx, &user.id, now).await?
    {
        let data = serde_json::to_value(&verified).map_err(AppError::internal)?;
        events::record(&mut tx, events::USER_UPDATED, None, Some(&verified.id), &data, now).await?;
        user = verified;
    }
    if user.banned {
        return Err(AppError::UserBanned);
    }
    if user.two_factor_enabled {
        let client = device_client(&mut tx, client_id, now).await?;
        let attempt = sign_in_attempts::insert(&mut *tx, &client, &user.id, factor.as_str(), now).await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, attempt = %attempt.id, factor = factor.as_str(), "first factor proven; waiting for the second");
        return Ok(SignInOutcome::NeedsSecondFactor { attempt });
    }
    let mut session = open_session(state, &mut tx, client_id, &user, ctx, false, None, now).await?;
    if let Some(org_id) = organization_id {
        sessions::set_active_organization(&mut *tx, &session.id, Some(org_id), now).await?;
        session.active_organization_id = Some(org_id.to_owned());
    }
    tx.commit().await?;
    state.metrics.incr(match factor {
        FirstFactor::SignUp => "sign_ups",
        _ => "sign_ins",
    });
    tracing::info!(user_id = %user.id, session_id = %session.id, factor = factor.as_str(), "signed in");
    Ok(SignInOutcome::Complete { user, session })
}

/// Ends a sign-in attempt whose second factor the caller has just checked (in `tx`,
/// which spent the try): completes the attempt (once) and opens the session, its second
/// factor proven now. A completed or vanished attempt: 401.
pub async fn complete_second_factor(
    state: &AppState,
    mut tx: Transaction,
    attempt: &SignInAttempt,
    ctx: &ClientContext,
    now: i64,
) -> AppResult<SignInOutcome> {
    if !sign_in_attempts::complete(&mut *tx, &attempt.id, now).await? {
        return Err(AppError::Unauthorized(
            "this sign-in attempt is already complete: sign in again".to_owned(),
        ));
    }
    let user = users::find_by_id(&mut *tx, &attempt.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the user no longer exists".to_owned()))?;
    if user.banned {
        return Err(AppError::UserBanned);
    }
    let session = open_session(state, &mut tx, Some(&attempt.client_id), &user, ctx, true, None, now).await?;
    tx.commit().await?;
    state.metrics.incr("sign_ins");
    tracing::info!(user_id = %user.id, session_id = %session.id, attempt = %attempt.id, "signed in with a second factor");
    Ok(SignInOutcome::Complete { user, session })
}

/// Support signs in as the user through an actor token: an impersonated session (its
/// tokens carry `act`), no second factor asked (Clerk does the same). A banned user: 403.
pub async fn complete_impersonated(
    state: &AppState,
    mut tx: Transaction,
    client_id: Option<&str>,
    user: User,
    actor: &serde_json::Value,
    ctx: &ClientContext,
    now: i64,
) -> AppResult<SignInOutcome> {
    if user.banned {
        return Err(AppError::UserBanned);
    }
    let session = open_session(state, &mut tx, client_id, &user, ctx, false, Some(actor), now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, session_id = %session.id, actor = %actor, "impersonation started");
    Ok(SignInOutcome::Complete { user, session })
}

/// The device's client (creating it on first use, or when the cookie names one that no
/// longer exists).
async fn device_client(tx: &mut Transaction, client_id: Option<&str>, now: i64) -> AppResult<String> {
    let existing = match client_id {
        Some(id) => clients::find(&mut **tx, id).await?,
        None => None,
    };
    Ok(match existing {
        Some(client) => client.id,
        None => clients::insert(&mut **tx, now).await?.id,
    })
}

/// Adds a session for `user` to the device's client and makes it the client's active
/// session.
#[allow(clippy::too_many_arguments)]
async fn open_session(
    state: &AppState,
    tx: &mut Transaction,
    client_id: Option<&str>,
    user: &User,
    ctx: &ClientContext,
    second_factor: bool,
    actor: Option<&serde_json::Value>,
    now: i64,
) -> AppResult<Session> {
    let client_id = device_client(tx, client_id, now).await?;
    let new_session = NewSession {
        client_id: &client_id,
        user_id: &user.id,
        user_agent: ctx.user_agent.as_deref(),
        ip_address: Some(&ctx.ip),
        lifetime_ms: state.config.session_lifetime.as_millis() as i64,
        second_factor,
        actor,
    };
    let session = sessions::insert(&mut **tx, new_session, now).await?;
    clients::set_last_active_session(&mut **tx, &client_id, Some(&session.id), now).await?;
    let session_json = serde_json::to_value(&session).map_err(AppError::internal)?;
    events::record(tx, events::SESSION_CREATED, None, Some(&user.id), &session_json, now).await?;
    Ok(session)
}
