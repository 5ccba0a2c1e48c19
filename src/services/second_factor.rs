//! The second factor: setting up an authenticator app (TOTP) with backup codes, turning
//! it off, new backup codes, and checking a code (at sign-in, and to re-verify a
//! session). A TOTP code is accepted in its 30 s step ±1 and never twice (the newest used
//! step is kept, and moving it is a conditional update); a backup code works once. The
//! seed is sealed at rest ([`crate::auth::sealing`]); backup codes are keyed hashes.

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::totp;
use crate::clock::now_ms;
use crate::db::second_factor;
use crate::db::users::{self, User};
use crate::db::{Transaction, events, sessions};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// What the user adds to their authenticator app.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetup {
    /// The seed, base32 (to type in by hand).
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    /// `otpauth://totp/…` (what the QR code holds).
    #[schema(
        example = "otpauth://totp/Gatehouse:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30"
    )]
    pub uri: String,
    /// The URI as a QR code, an SVG document drawn by this server.
    pub qr_svg: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupCodes {
    /// Each works once, in place of an authenticator code. Shown only now.
    #[schema(example = json!(["abcde-fghjk", "mnpqr-stuvw"]))]
    pub backup_codes: Vec<String>,
}

/// A second factor as the client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Totp,
    BackupCode,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
        }
    }

    /// `totp` or `backup_code`; anything else is 422 `fields.strategy`.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "totp" => Ok(Self::Totp),
            "backup_code" => Ok(Self::BackupCode),
            _ => Err(AppError::field("strategy", "must be totp or backup_code")),
        }
    }
}

/// Starts setting up an authenticator (replacing an unfinished setup). Already on: 409.
pub async fn begin_totp(state: &AppState, user: &User) -> AppResult<TotpSetup> {
    if user.two_factor_enabled {
        return Err(AppError::Conflict(
            "an authenticator is already set up: turn it off first to set up another".to_owned(),
        ));
    }
    let secret = totp::new_secret();
    let sealed = state.sealer.seal(&user.id, &secret);
    second_factor::put_pending_totp(&state.db.pool, &user.id, &sealed, now_ms()).await?;
    let uri = totp::uri(&state.config.app_name, &user.email, &secret);
    let qr_svg = totp::qr_svg(&uri).map_err(AppError::internal)?;
    Ok(TotpSetup {
        secret: totp::base32_encode(&secret),
        uri,
        qr_svg,
    })
}

/// Finishes the setup with one correct code: the second factor is on (`user.updated`),
/// this session counts as having proven it, and the backup codes are returned (once).
/// No setup started: 409; wrong code: 422 `fields.code`.
pub async fn confirm_totp(state: &AppState, user: &User, session_id: &str, code: &str) -> AppResult<BackupCodes> {
    let now = now_ms();
    let factor = second_factor::find_totp(&state.db.pool, &user.id)
        .await?
        .filter(|f| !f.verified)
        .ok_or_else(|| {
            AppError::Conflict("no authenticator setup to finish: start with POST /api/me/mfa/totp".to_owned())
        })?;
    let secret = state
        .sealer
        .open(&user.id, &factor.secret_sealed)
        .map_err(AppError::internal)?;
    let step = totp::matching_step(&secret, code, now / 1000, factor.last_used_step).ok_or_else(wrong_code)?;
    let mut tx = state.db.begin().await?;
    if !second_factor::use_step(&mut *tx, &user.id, step, now).await?
        || !second_factor::mark_totp_verified(&mut *tx, &user.id, now).await?
    {
        return Err(wrong_code());
    }
    let codes = new_backup_codes(state, &mut tx, &user.id, now).await?;
    if let Some(updated) = users::set_two_factor(&mut *tx, &user.id, true, now).await? {
        record_user_updated(&mut tx, &updated, now).await?;
    }
    sessions::set_second_factor_verified(&mut *tx, session_id, now).await?;
    crate::db::audit::record_on_user(&mut *tx, "mfa.enabled", &user.id, now).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "second factor turned on");
    Ok(codes)
}

/// Turns the second factor off (the user, or support through the Backend API): the
/// authenticator and backup codes go (`user.updated`). Nothing to remove: 404.
pub async fn remove(state: &AppState, user_id: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let removed = second_factor::remove_all(&mut tx, user_id).await?;
    let updated = users::set_two_factor(&mut *tx, user_id, false, now).await?;
    if !removed && updated.is_none() {
        return Err(AppError::NotFound("there is no second factor to turn off".to_owned()));
    }
    if let Some(updated) = updated {
        record_user_updated(&mut tx, &updated, now).await?;
    }
    sessions::clear_second_factor(&mut *tx, user_id, now).await?;
    crate::db::audit::record_on_user(&mut *tx, "mfa.disabled", user_id, now).await?;
    tx.commit().await?;
    tracing::info!(user_id, "second factor turned off");
    Ok(())
}

/// A new set of backup codes; the old ones die. Second factor off: 409.
pub async fn regenerate_backup_codes(state: &AppState, user: &User) -> AppResult<BackupCodes> {
    if !user.two_factor_enabled {
        return Err(AppError::Conflict(
            "the second factor is off: backup codes come with an authenticator".to_owned(),
        ));
    }
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let codes = new_backup_codes(state, &mut tx, &user.id, now).await?;
    tx.commit().await?;
    Ok(codes)
}

async fn new_backup_codes(state: &AppState, tx: &mut Transaction, user_id: &str, now: i64) -> AppResult<BackupCodes> {
    let codes = totp::new_backup_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|code| {
            let plain = totp::normalize_backup_code(code).expect("a generated code is well formed");
            state.codes.backup_code_hash(&plain)
        })
        .collect();
    second_factor::replace_backup_codes(tx, user_id, &hashes, now).await?;
    Ok(BackupCodes { backup_codes: codes })
}

/// Checks (and uses up) a second-factor code of the user inside `tx`: `true` when it
/// was a live TOTP code not used before, or an unused backup code.
pub async fn check(
    state: &AppState,
    tx: &mut Transaction,
    user_id: &str,
    strategy: Strategy,
    code: &str,
    now: i64,
) -> AppResult<bool> {
    match strategy {
        Strategy::Totp => {
            let Some(factor) = second_factor::find_totp(&mut **tx, user_id)
                .await?
                .filter(|f| f.verified)
            else {
                return Ok(false);
            };
            let secret = state
                .sealer
                .open(user_id, &factor.secret_sealed)
                .map_err(AppError::internal)?;
            match totp::matching_step(&secret, code, now / 1000, factor.last_used_step) {
                Some(step) => Ok(second_factor::use_step(&mut **tx, user_id, step, now).await?),
                None => Ok(false),
            }
        }
        Strategy::BackupCode => {
            let Some(plain) = totp::normalize_backup_code(code) else {
                return Ok(false);
            };
            let hash = state.codes.backup_code_hash(&plain);
            Ok(second_factor::use_backup_code(&mut **tx, user_id, &hash, now).await?)
        }
    }
}

/// A wrong, stale or used second-factor code where a 422 is the answer (`fields.code`).
pub fn wrong_code() -> AppError {
    AppError::field("code", "is wrong, or was used already")
}

async fn record_user_updated(tx: &mut Transaction, user: &User, now: i64) -> AppResult<()> {
    let data = serde_json::to_value(user).map_err(AppError::internal)?;
    events::record(tx, events::USER_UPDATED, None, Some(&user.id), &data, now).await?;
    Ok(())
}
