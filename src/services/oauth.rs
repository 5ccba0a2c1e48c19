//! Sign-in through a provider, once it has said who the user is: the user linked to that
//! provider subject; else the existing user with that email, linked only when **both**
//! the provider and this server have the address verified (an attacker who registered
//! the address here first, or at a provider that does not verify it, gets nothing:
//! account pre-hijacking); else a new user. Then [`sign_in::complete`], so a user with a
//! second factor still gives it. Unlinking keeps at least one way to sign in.

use serde_json::json;

use crate::auth::oauth::ProviderProfile;
use crate::auth::request::ClientContext;
use crate::config::EmailVerification;
use crate::db::identities::{self, Identity};
use crate::db::users::{self, NewUser};
use crate::db::{Transaction, audit, events};
use crate::error::{AppError, AppResult, ResultExt};
use crate::services::sign_in::{self, FirstFactor, SignInOutcome};
use crate::state::AppState;

/// Why a provider's answer did not sign anyone in (a log line; the user sees
/// `oauth_failed`).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the provider gave no email for a new identity")]
    NoEmail,
    #[error("an account has this email, but the provider does not vouch for it: not linked")]
    ProviderEmailUnverified,
    #[error("an account has this email, but it is not verified here: not linked")]
    LocalEmailUnverified,
    #[error("the provider does not vouch for the email and EMAIL_VERIFICATION=required")]
    VerificationRequired,
    #[error("the user already has another identity at this provider")]
    OtherIdentity,
    #[error("the user is banned")]
    Banned,
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<sqlx::Error> for Refused {
    fn from(error: sqlx::Error) -> Self {
        Self::App(error.into())
    }
}

/// Signs in (or up) the user `profile` names at `provider`.
pub async fn sign_in(
    state: &AppState,
    provider: &str,
    profile: &ProviderProfile,
    client_id: Option<&str>,
    ctx: &ClientContext,
    now: i64,
) -> Result<SignInOutcome, Refused> {
    let mut tx = state.db.begin().await?;
    let email = profile.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let (user, factor) =
        if let Some(identity) = identities::find_by_subject(&mut *tx, provider, &profile.subject).await? {
            let user = users::find_by_id(&mut *tx, &identity.user_id)
                .await?
                .ok_or_else(|| AppError::internal("an identity outlived its user"))?;
            (user, FirstFactor::OAuth)
        } else {
            let email = email.ok_or(Refused::NoEmail)?;
            match users::find_by_email(&mut *tx, email).await? {
                Some(user) => {
                    if !profile.email_verified {
                        refuse_link(tx, email, &user.id, provider, now).await?;
                        return Err(Refused::ProviderEmailUnverified);
                    }
                    if !user.email_verified {
                        refuse_link(tx, email, &user.id, provider, now).await?;
                        return Err(Refused::LocalEmailUnverified);
                    }
                    link(&mut tx, &user.id, provider, profile, email, now).await?;
                    (user, FirstFactor::OAuth)
                }
                None => {
                    if !profile.email_verified && state.config.email.verification == EmailVerification::Required {
                        return Err(Refused::VerificationRequired);
                    }
                    let new_user = NewUser {
                        email,
                        password_hash: None,
                        first_name: profile.first_name.as_deref().map(|n| truncate(n, 100)),
                        last_name: profile.last_name.as_deref().map(|n| truncate(n, 100)),
                        email_verified: profile.email_verified,
                    };
                    // A concurrent sign-up took the address: this attempt fails, the next links
                    // or signs in.
                    let user = users::insert(&mut *tx, new_user, now)
                        .await
                        .on_unique_violation(|| AppError::Conflict("the email was just taken".to_owned()))?;
                    let data = serde_json::to_value(&user).map_err(AppError::internal)?;
                    events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &data, now).await?;
                    link(&mut tx, &user.id, provider, profile, email, now).await?;
                    (user, FirstFactor::SignUp)
                }
            }
        };
    match sign_in::complete(state, tx, client_id, user, factor, ctx, now).await {
        Err(AppError::UserBanned) => Err(Refused::Banned),
        other => Ok(other?),
    }
}

async fn link(
    tx: &mut Transaction,
    user_id: &str,
    provider: &str,
    profile: &ProviderProfile,
    email: &str,
    now: i64,
) -> Result<Identity, Refused> {
    let identity = match identities::insert(&mut **tx, user_id, provider, &profile.subject, Some(email), now).await {
        Ok(identity) => identity,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Err(Refused::OtherIdentity),
        Err(other) => return Err(other.into()),
    };
    let data = json!({"identity_id": identity.id, "provider": provider, "email": email});
    audit::record(
        &mut **tx,
        "identity.linked",
        Some(("user", user_id)),
        None,
        Some(user_id),
        &data,
        now,
    )
    .await?;
    tracing::info!(user_id, identity_id = %identity.id, provider, "identity linked");
    Ok(identity)
}

/// A refused link is a failed sign-in on that account (`sign_in.failed`), committed
/// although the sign-in fails.
async fn refuse_link(mut tx: Transaction, email: &str, user_id: &str, provider: &str, now: i64) -> AppResult<()> {
    audit::sign_in_failed(&mut *tx, email, Some(user_id), &format!("oauth_{provider}"), now).await?;
    tx.commit().await?;
    Ok(())
}

fn truncate(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// Removes one of the user's identities (`identity.unlinked`), unless it is their last
/// way to sign in (no password and no other identity): 409. Not theirs: 404.
pub async fn unlink(state: &AppState, user_id: &str, identity_id: &str, now: i64) -> AppResult<()> {
    let mut tx = state.db.begin().await?;
    // The user's row lock serializes two unlinks racing for the last two identities.
    if !users::lock(&mut *tx, user_id, now).await? {
        return Err(AppError::NotFound("the signed-in user no longer exists".to_owned()));
    }
    let user = users::find_by_id(&mut *tx, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".to_owned()))?;
    let linked = identities::list_for_user(&mut *tx, user_id).await?;
    let Some(identity) = linked.iter().find(|i| i.id == identity_id) else {
        return Err(AppError::NotFound(format!("no identity `{identity_id}` of yours")));
    };
    if !user.has_password && linked.len() == 1 {
        return Err(AppError::Conflict(
            "this is your last way to sign in: set a password or link another provider first".to_owned(),
        ));
    }
    identities::delete(&mut *tx, user_id, identity_id).await?;
    let data = json!({"identity_id": identity.id, "provider": identity.provider});
    audit::record(
        &mut *tx,
        "identity.unlinked",
        Some(("user", user_id)),
        None,
        None,
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id, identity_id, provider = %identity.provider, "identity unlinked");
    Ok(())
}
