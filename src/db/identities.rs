//! The `identities` table: a user's accounts at sign-in providers (`idn_…`). A
//! provider's subject belongs to one user, and a user has one identity per provider.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identity {
    #[schema(example = "idn_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[serde(skip)]
    pub user_id: String,
    /// The provider's name, as configured (`google`, `okta`, `github`).
    #[schema(example = "google")]
    pub provider: String,
    /// The provider's subject (its id for the user): the key of the link.
    #[serde(skip)]
    pub subject: String,
    /// The email the provider gave when the identity was linked.
    pub email: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Identity {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            provider: row.try_get("provider")?,
            subject: row.try_get("subject")?,
            email: row.try_get("email")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

macro_rules! columns {
    () => {
        "id, user_id, provider, subject, email, created_at"
    };
}

/// Links a provider's subject to a user. The subject already linked, or the user already
/// linked at that provider: a unique violation.
#[tracing::instrument(skip(ex, email))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    now: i64,
) -> Result<Identity, sqlx::Error> {
    let identity = Identity {
        id: new_id(IdKind::Identity),
        user_id: user_id.to_owned(),
        provider: provider.to_owned(),
        subject: subject.to_owned(),
        email: email.map(str::to_owned),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO identities (id, user_id, provider, subject, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&identity.id)
    .bind(&identity.user_id)
    .bind(&identity.provider)
    .bind(&identity.subject)
    .bind(&identity.email)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(identity)
}

#[tracing::instrument(skip(ex))]
pub async fn find_by_subject<'e>(
    ex: impl Exec<'e>,
    provider: &str,
    subject: &str,
) -> Result<Option<Identity>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM identities WHERE provider = $1 AND subject = $2"
    ))
    .bind(provider)
    .bind(subject)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Identity::from_row).transpose()
}

/// A user's identities, oldest first.
#[tracing::instrument(skip(ex))]
pub async fn list_for_user<'e>(ex: impl Exec<'e>, user_id: &str) -> Result<Vec<Identity>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM identities WHERE user_id = $1 ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Identity::from_row).collect()
}

/// Removes one of the user's identities; false when the user has no such identity.
#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM identities WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
