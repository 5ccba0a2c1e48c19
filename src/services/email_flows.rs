//! The account flows that go through the inbox: confirming an address (at sign-up or
//! later), pending sign-ups, password reset and change, and signing in by an emailed
//! code or link. Codes and links come from [`crate::auth::codes`]; emails are queued in
//! the transaction that causes them; at most one email of a kind goes to an address per
//! minute (a request beyond that answers as usual, and the code already sent stays
//! valid).

use crate::auth::codes::{CODE_LIFETIME_MS, Purpose};
use crate::auth::password::hash_password;
use crate::db::sign_ups::{NewSignUp, PendingSignUp};
use crate::db::users::{NewUser, User};
use crate::db::{Transaction, emails, events, sign_ups, users};
use crate::error::{AppError, AppResult, ResultExt};
use crate::mail;
use crate::services::sessions::{self, Stopped};
use crate::state::AppState;

/// The per-address sending limit.
pub const EMAIL_INTERVAL_MS: i64 = 60_000;

/// Whether an email of `kind` may go to `address` now (none in the last minute).
async fn may_send(state: &AppState, address: &str, kind: &str, now: i64) -> AppResult<bool> {
    Ok(!emails::sent_recently(&state.db.pool, address, kind, now - EMAIL_INTERVAL_MS).await?)
}

/// `PUBLIC_URL` + `path_and_query`.
fn link(state: &AppState, path_and_query: &str) -> String {
    format!("{}{path_and_query}", state.config.email.public_url)
}

fn enc(value: &str) -> String {
    crate::auth::guard::percent_encode(value)
}

/// Emails a fresh verification code to a signed-in user (`POST /api/me/email/verification`).
/// Already verified: 409.
pub async fn request_verification(state: &AppState, user: &User, now: i64) -> AppResult<()> {
    if user.email_verified {
        return Err(AppError::Conflict("the email address is already verified".to_owned()));
    }
    if !may_send(state, &user.email, mail::EMAIL_VERIFICATION, now).await? {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    let code = state
        .codes
        .issue_code(&mut tx, Purpose::EmailVerification, &user.id, now)
        .await?;
    mail::verification_code(&user.email, &code).queue(&mut tx, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Queues the verification code of a new user (optional mode), in the sign-up's transaction.
pub async fn send_verification_in(state: &AppState, tx: &mut Transaction, user: &User, now: i64) -> AppResult<()> {
    let code = state
        .codes
        .issue_code(tx, Purpose::EmailVerification, &user.id, now)
        .await?;
    mail::verification_code(&user.email, &code).queue(tx, now).await?;
    Ok(())
}

/// Confirms the signed-in user's address with the code; the user as it now is. A
/// wrong, used or dead code is 422 `fields.code`.
pub async fn verify_email(state: &AppState, user_id: &str, code: &str, now: i64) -> AppResult<User> {
    let mut tx = state.db.begin().await?;
    if !state
        .codes
        .consume_code(&mut tx, Purpose::EmailVerification, user_id, code, now)
        .await?
    {
        tx.commit().await?; // the spent attempt counts
        return Err(wrong_code());
    }
    let user = match users::mark_email_verified(&mut *tx, user_id, now).await? {
        Some(user) => {
            crate::db::audit::record_on_user(&mut *tx, "email.verified", &user.id, now).await?;
            let data = serde_json::to_value(&user).map_err(AppError::internal)?;
            events::record(&mut tx, events::USER_UPDATED, None, Some(&user.id), &data, now).await?;
            user
        }
        None => users::find_by_id(&mut *tx, user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".to_owned()))?,
    };
    tx.commit().await?;
    Ok(user)
}

fn wrong_code() -> AppError {
    AppError::field("code", "is wrong, used or expired")
}

/// Starts (or, within a minute of the last email, returns) a pending sign-up for this
/// address and emails its code (`EMAIL_VERIFICATION=required`). The address must not
/// belong to a user already.
pub async fn start_sign_up(
    state: &AppState,
    email: &str,
    password_hash: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
    now: i64,
) -> AppResult<PendingSignUp> {
    if users::find_by_email(&state.db.pool, email).await?.is_some() {
        return Err(AppError::field("email", "is already taken"));
    }
    if let Some(pending) = sign_ups::latest_pending(&state.db.pool, email, now - EMAIL_INTERVAL_MS, now).await? {
        return Ok(pending);
    }
    let mut tx = state.db.begin().await?;
    let new = NewSignUp {
        email,
        password_hash,
        first_name,
        last_name,
        expires_at: now + CODE_LIFETIME_MS,
    };
    let pending = sign_ups::insert(&mut *tx, &new, now).await?;
    let code = state
        .codes
        .issue_code(&mut tx, Purpose::SignUp, &pending.id, now)
        .await?;
    mail::verification_code(&pending.email, &code)
        .queue(&mut tx, now)
        .await?;
    tx.commit().await?;
    Ok(pending)
}

/// Confirms a pending sign-up with its code: the new user (email verified), in a
/// transaction the caller completes the sign-in with. Unknown or expired: 404; wrong
/// code: 422 `fields.code`; the address taken meanwhile: 422 `fields.email`.
pub async fn confirm_sign_up(
    state: &AppState,
    sign_up_id: &str,
    code: &str,
    now: i64,
) -> AppResult<(Transaction, User)> {
    let pending = sign_ups::find_pending(&state.db.pool, sign_up_id, now)
        .await?
        .ok_or_else(|| AppError::NotFound("no pending sign-up with that id (it may have expired)".to_owned()))?;
    let mut tx = state.db.begin().await?;
    if !state
        .codes
        .consume_code(&mut tx, Purpose::SignUp, &pending.id, code, now)
        .await?
    {
        tx.commit().await?;
        return Err(wrong_code());
    }
    if !sign_ups::complete(&mut *tx, &pending.id, now).await? {
        return Err(AppError::NotFound("this sign-up was completed already".to_owned()));
    }
    let new_user = NewUser {
        email: &pending.email,
        password_hash: pending.password_hash.as_deref(),
        first_name: pending.first_name.as_deref(),
        last_name: pending.last_name.as_deref(),
        email_verified: true,
    };
    let user = users::insert(&mut *tx, new_user, now)
        .await
        .on_unique_violation(|| AppError::field("email", "is already taken"))?;
    let data = serde_json::to_value(&user).map_err(AppError::internal)?;
    events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &data, now).await?;
    Ok((tx, user))
}

/// Emails a reset code and link to the account with this address, if there is one
/// (the answer is the same either way).
pub async fn request_password_reset(state: &AppState, email: &str, now: i64) -> AppResult<()> {
    let Some(user) = users::find_by_email(&state.db.pool, email).await? else {
        return Ok(());
    };
    if !may_send(state, &user.email, mail::PASSWORD_RESET, now).await? {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    let code = state
        .codes
        .issue_code(&mut tx, Purpose::PasswordReset, &user.id, now)
        .await?;
    let url = link(
        state,
        &format!("/reset-password?email={}&code={code}", enc(&user.email)),
    );
    mail::password_reset(&user.email, &code, &url)
        .queue(&mut tx, now)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password with a reset code and revokes every session of the user, in a
/// transaction the caller completes the sign-in with (a new session on this device).
/// A wrong, used or dead code, or an unknown address: 422 `fields.code`.
pub async fn reset_password(
    state: &AppState,
    email: &str,
    code: &str,
    password: String,
    now: i64,
) -> AppResult<(Transaction, User, Stopped)> {
    let user = users::find_by_email(&state.db.pool, email).await?;
    let password_hash = hash_password(password).await?;
    let Some(user) = user else {
        return Err(wrong_code());
    };
    let mut tx = state.db.begin().await?;
    if !state
        .codes
        .consume_code(&mut tx, Purpose::PasswordReset, &user.id, code, now)
        .await?
    {
        tx.commit().await?;
        return Err(wrong_code());
    }
    users::set_password(&mut *tx, &user.id, Some(&password_hash), now).await?;
    crate::db::audit::record_on_user(&mut *tx, "password.reset", &user.id, now).await?;
    let stopped = sessions::revoke_all_for_user_in(&mut tx, &user.id, None, now).await?;
    let user = users::find_by_id(&mut *tx, &user.id)
        .await?
        .ok_or_else(|| AppError::internal("a user vanished inside its transaction"))?;
    Ok((tx, user, stopped))
}

/// Changes the password of a signed-in user; with `sign_out_others`, every other
/// session is revoked. Returns how many were.
pub async fn change_password(
    state: &AppState,
    user: &User,
    new_password: String,
    keep_session: &str,
    sign_out_others: bool,
    now: i64,
) -> AppResult<usize> {
    let password_hash = hash_password(new_password).await?;
    let mut tx = state.db.begin().await?;
    users::set_password(&mut *tx, &user.id, Some(&password_hash), now).await?;
    crate::db::audit::record_on_user(&mut *tx, "password.changed", &user.id, now).await?;
    let stopped = if sign_out_others {
        Some(sessions::revoke_all_for_user_in(&mut tx, &user.id, Some(keep_session), now).await?)
    } else {
        None
    };
    tx.commit().await?;
    let revoked = stopped.as_ref().map_or(0, Stopped::len);
    if let Some(stopped) = stopped {
        sessions::announce(state, stopped).await;
    }
    Ok(revoked)
}

/// Emails a sign-in code and link to the account with this address, if there is one.
pub async fn request_sign_in_code(state: &AppState, email: &str, now: i64) -> AppResult<()> {
    let Some(user) = users::find_by_email(&state.db.pool, email).await? else {
        return Ok(());
    };
    if !may_send(state, &user.email, mail::SIGN_IN_CODE, now).await? {
        return Ok(());
    }
    let mut tx = state.db.begin().await?;
    let code = state
        .codes
        .issue_code(&mut tx, Purpose::SignInCode, &user.id, now)
        .await?;
    let token = state
        .codes
        .issue_token(&mut tx, Purpose::SignInLink, &user.id, CODE_LIFETIME_MS, now)
        .await?;
    let url = link(state, &format!("/v1/sign-in/email-link?token={token}"));
    mail::sign_in_code(&user.email, &code, &url).queue(&mut tx, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Checks an emailed sign-in code: the user, in a transaction the caller completes the
/// sign-in with (the link sent with the code is closed too). `None`: wrong, used, dead
/// or an unknown address (all the same to the caller).
pub async fn check_sign_in_code(
    state: &AppState,
    email: &str,
    code: &str,
    now: i64,
) -> AppResult<Option<(Transaction, User)>> {
    let Some(user) = users::find_by_email(&state.db.pool, email).await? else {
        return Ok(None);
    };
    let mut tx = state.db.begin().await?;
    if !state
        .codes
        .consume_code(&mut tx, Purpose::SignInCode, &user.id, code, now)
        .await?
    {
        tx.commit().await?;
        return Ok(None);
    }
    crate::db::codes::end_live(&mut *tx, Purpose::SignInLink.as_str(), &user.id, now).await?;
    Ok(Some((tx, user)))
}

/// Uses an emailed sign-in link: the user, in a transaction the caller completes the
/// sign-in with (the code sent with the link is closed too). `None`: bad, used or expired.
pub async fn use_sign_in_link(state: &AppState, token: &str, now: i64) -> AppResult<Option<(Transaction, User)>> {
    let mut tx = state.db.begin().await?;
    let Some(user_id) = state
        .codes
        .consume_token(&mut tx, Purpose::SignInLink, token, now)
        .await?
    else {
        return Ok(None);
    };
    crate::db::codes::end_live(&mut *tx, Purpose::SignInCode.as_str(), &user_id, now).await?;
    let Some(user) = users::find_by_id(&mut *tx, &user_id).await? else {
        return Ok(None);
    };
    Ok(Some((tx, user)))
}
