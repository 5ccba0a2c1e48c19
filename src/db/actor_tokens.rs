//! `actor_tokens`: support's single-use links that sign a browser in as a user, in an
//! impersonated session. Using one is a conditional `UPDATE` (opened twice: one sign-in).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorToken {
    #[schema(example = "act_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub user_id: String,
    /// Who acts: `{"sub": "<actor>"}`.
    #[schema(value_type = Object, example = json!({"sub": "support_ana"}))]
    pub actor: serde_json::Value,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(example = "pending")]
    pub status: String,
    /// Unix milliseconds.
    pub expire_at: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl ActorToken {
    fn from_row(row: &AnyRow, now: i64) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let expire_at: i64 = row.try_get("expires_at")?;
        let actor: String = row.try_get("actor")?;
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            actor: serde_json::from_str(&actor).unwrap_or_default(),
            status: if status == "pending" && expire_at <= now {
                "expired".to_owned()
            } else {
                status
            },
            expire_at,
            created_at: row.try_get("created_at")?,
        })
    }
}

#[tracing::instrument(skip(ex))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    actor: &serde_json::Value,
    expires_at: i64,
    now: i64,
) -> Result<ActorToken, sqlx::Error> {
    let token = ActorToken {
        id: new_id(IdKind::ActorToken),
        user_id: user_id.to_owned(),
        actor: actor.clone(),
        status: "pending".to_owned(),
        expire_at: expires_at,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO actor_tokens (id, user_id, actor, status, expires_at, session_id, created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', $4, NULL, $5, $5)",
    )
    .bind(&token.id)
    .bind(user_id)
    .bind(actor.to_string())
    .bind(expires_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(token)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<Option<ActorToken>, sqlx::Error> {
    let row = sqlx::query("SELECT id, user_id, actor, status, expires_at, created_at FROM actor_tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.map(|row| ActorToken::from_row(&row, now)).transpose()
}

/// Moves a live pending token to `accepted` (once).
#[tracing::instrument(skip(ex))]
pub async fn accept<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE actor_tokens SET status = 'accepted', updated_at = $1
         WHERE id = $2 AND status = 'pending' AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records the session the token opened.
#[tracing::instrument(skip(ex))]
pub async fn set_session<'e>(ex: impl Exec<'e>, id: &str, session_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE actor_tokens SET session_id = $1 WHERE id = $2")
        .bind(session_id)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Moves a live pending token to `revoked`.
#[tracing::instrument(skip(ex))]
pub async fn revoke<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE actor_tokens SET status = 'revoked', updated_at = $1
         WHERE id = $2 AND status = 'pending' AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}
