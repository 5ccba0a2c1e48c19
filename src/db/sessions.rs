//! The `sessions` table: one row per sign-in, on one client, for one user.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Ended,
    Revoked,
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    fn parse(value: &str) -> Result<Self, sqlx::Error> {
        match value {
            "active" => Ok(Self::Active),
            "ended" => Ok(Self::Ended),
            "revoked" => Ok(Self::Revoked),
            "expired" => Ok(Self::Expired),
            other => Err(sqlx::Error::Decode(format!("unknown session status `{other}`").into())),
        }
    }
}

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    #[schema(example = "sess_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub user_id: String,
    pub status: SessionStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; updated when the session's token is refreshed.
    pub last_active_at: i64,
    /// Unix milliseconds; the session ends then, whatever its activity.
    pub expire_at: i64,
    pub active_organization_id: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    #[serde(skip)]
    pub client_id: String,
    /// Unix milliseconds of the last password proof (sign-in or reverification).
    #[serde(skip)]
    pub last_verified_at: i64,
    /// When the session last proved a second factor (`None`: never).
    #[serde(skip)]
    pub last_second_factor_at: Option<i64>,
    /// An impersonated session: who acts (`{"sub": "<actor>"}`).
    #[schema(value_type = Option<Object>)]
    pub actor: Option<serde_json::Value>,
}

impl Session {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            status: SessionStatus::parse(row.try_get::<&str, _>("status")?)?,
            created_at: row.try_get("created_at")?,
            last_active_at: row.try_get("last_active_at")?,
            expire_at: row.try_get("expire_at")?,
            active_organization_id: row.try_get("active_organization_id")?,
            user_agent: row.try_get("user_agent")?,
            ip_address: row.try_get("ip_address")?,
            client_id: row.try_get("client_id")?,
            last_verified_at: row.try_get("last_verified_at")?,
            last_second_factor_at: row.try_get("last_second_factor_at")?,
            actor: row
                .try_get::<Option<String>, _>("actor")?
                .and_then(|text| serde_json::from_str(&text).ok()),
        })
    }

    /// Active and not past its absolute lifetime.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == SessionStatus::Active && self.expire_at > now
    }
}

macro_rules! columns {
    () => {
        "id, client_id, user_id, status, active_organization_id, user_agent, ip_address, created_at, last_active_at, last_verified_at, last_second_factor_at, actor, expire_at"
    };
}

pub struct NewSession<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub lifetime_ms: i64,
    /// The sign-in proved a second factor now.
    pub second_factor: bool,
    /// Impersonation: the actor (`{"sub": …}`).
    pub actor: Option<&'a serde_json::Value>,
}

#[tracing::instrument(skip_all)]
pub async fn insert<'e>(ex: impl Exec<'e>, new: NewSession<'_>, now: i64) -> Result<Session, sqlx::Error> {
    let session = Session {
        id: new_id(IdKind::Session),
        user_id: new.user_id.to_owned(),
        status: SessionStatus::Active,
        created_at: now,
        last_active_at: now,
        expire_at: now + new.lifetime_ms,
        active_organization_id: None,
        user_agent: new.user_agent.map(str::to_owned),
        ip_address: new.ip_address.map(str::to_owned),
        client_id: new.client_id.to_owned(),
        last_verified_at: now,
        last_second_factor_at: new.second_factor.then_some(now),
        actor: new.actor.cloned(),
    };
    sqlx::query(
        "INSERT INTO sessions (id, client_id, user_id, status, active_organization_id, user_agent, ip_address, created_at, updated_at, last_active_at, last_verified_at, last_second_factor_at, actor, expire_at)
         VALUES ($1, $2, $3, 'active', NULL, $4, $5, $6, $6, $6, $6, $7, $8, $9)",
    )
    .bind(&session.id)
    .bind(&session.client_id)
    .bind(&session.user_id)
    .bind(&session.user_agent)
    .bind(&session.ip_address)
    .bind(now)
    .bind(session.last_second_factor_at)
    .bind(session.actor.as_ref().map(|a| a.to_string()))
    .bind(session.expire_at)
    .execute(ex)
    .await?;
    Ok(session)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Session::from_row).transpose()
}

/// The active, unexpired sessions on one client, oldest first.
#[tracing::instrument(skip(ex))]
pub async fn list_live_for_client<'e>(
    ex: impl Exec<'e>,
    client_id: &str,
    now: i64,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM sessions WHERE client_id = $1 AND status = 'active' AND expire_at > $2 ORDER BY created_at, id"
    ))
    .bind(client_id)
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// Moves an active session to `status` (ended, revoked or expired). Returns the
/// session as it now is, or `None` if it was not active.
#[tracing::instrument(skip(ex))]
pub async fn finish<'e>(
    ex: impl Exec<'e>,
    id: &str,
    status: SessionStatus,
    now: i64,
) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE sessions SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'active' RETURNING ",
        columns!()
    ))
    .bind(status.as_str())
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Session::from_row).transpose()
}

/// Ends every active session on a client; returns them as they now are.
#[tracing::instrument(skip(ex))]
pub async fn end_all_for_client<'e>(ex: impl Exec<'e>, client_id: &str, now: i64) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "UPDATE sessions SET status = 'ended', updated_at = $1 WHERE client_id = $2 AND status = 'active' RETURNING ",
        columns!()
    ))
    .bind(now)
    .bind(client_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// Records activity at a token refresh; skips the write when the last one is recent,
/// so a busy session costs at most one write per `granularity_ms`.
#[tracing::instrument(skip(ex))]
pub async fn touch_last_active<'e>(
    ex: impl Exec<'e>,
    id: &str,
    now: i64,
    granularity_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_active_at = $1 WHERE id = $2 AND last_active_at < $3")
        .bind(now)
        .bind(id)
        .bind(now - granularity_ms)
        .execute(ex)
        .await?;
    Ok(())
}

/// Switches the session's active organization (`None`: the personal account).
#[tracing::instrument(skip(ex))]
pub async fn set_active_organization<'e>(
    ex: impl Exec<'e>,
    id: &str,
    organization_id: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET active_organization_id = $1, updated_at = $2 WHERE id = $3")
        .bind(organization_id)
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Records a fresh second-factor proof (reverification with TOTP or a backup code).
#[tracing::instrument(skip(ex))]
pub async fn set_second_factor_verified<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_second_factor_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets every second-factor proof of the user's sessions (the factor was removed:
/// their tokens' `fva[1]` goes back to -1).
#[tracing::instrument(skip(ex))]
pub async fn clear_second_factor<'e>(ex: impl Exec<'e>, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET last_second_factor_at = NULL, updated_at = $1
         WHERE user_id = $2 AND last_second_factor_at IS NOT NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a fresh password proof (reverification).
#[tracing::instrument(skip(ex))]
pub async fn set_verified<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_verified_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks up to `limit` active sessions past their absolute lifetime as expired;
/// returns them as they now are.
#[tracing::instrument(skip(ex))]
pub async fn expire_due<'e>(ex: impl Exec<'e>, now: i64, limit: i64) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "UPDATE sessions SET status = 'expired', updated_at = $1 WHERE id IN (
            SELECT id FROM sessions WHERE status = 'active' AND expire_at <= $1 LIMIT $2) RETURNING ",
        columns!()
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// A user's live sessions on every device, newest first, one page at a time.
#[tracing::instrument(skip(ex))]
pub async fn list_live_for_user<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    now: i64,
    page: &super::pagination::PageRequest,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM sessions WHERE user_id = $1 AND status = 'active' AND expire_at > $2 AND (created_at, id) < ($3, $4)
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(user_id)
    .bind(now)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// Revokes every active session of a user, except `keep` if given; returns them as
/// they now are.
#[tracing::instrument(skip(ex))]
pub async fn revoke_all_for_user<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "UPDATE sessions SET status = 'revoked', updated_at = $1 WHERE user_id = $2 AND status = 'active' AND id <> $3 RETURNING ",
        columns!()
    ))
    .bind(now)
    .bind(user_id)
    .bind(keep.unwrap_or(""))
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// A user's sessions in every status, newest first, one page at a time (Backend API).
#[tracing::instrument(skip(ex))]
pub async fn list_for_user<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    page: &super::pagination::PageRequest,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM sessions WHERE user_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Session::from_row).collect()
}

/// The ids of sessions that stopped (ended, revoked, expired) since `since` (Unix ms).
#[tracing::instrument(skip(ex))]
pub async fn stopped_since<'e>(ex: impl Exec<'e>, since: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id FROM sessions WHERE status IN ('ended', 'revoked', 'expired') AND updated_at > $1")
            .bind(since)
            .fetch_all(ex)
            .await?;
    rows.iter().map(|row| row.try_get("id")).collect()
}

/// Moves every session that has the organization active back to the personal account
/// (optionally only one user's); returns how many.
#[tracing::instrument(skip(ex))]
pub async fn leave_organization<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    user_id: Option<&str>,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE sessions SET active_organization_id = NULL, updated_at = $1
         WHERE active_organization_id = $2 AND ($3 = '' OR user_id = $3)",
    )
    .bind(now)
    .bind(organization_id)
    .bind(user_id.unwrap_or(""))
    .execute(ex)
    .await?;
    Ok(result.rows_affected())
}
