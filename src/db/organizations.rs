//! The `organizations` table.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    #[schema(example = "org_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub name: String,
    #[schema(example = "acme")]
    pub slug: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Organization {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            slug: row.try_get("slug")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Inserts an organization; a taken slug violates `organizations_slug_key`.
#[tracing::instrument(skip(ex))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    name: &str,
    slug: &str,
    created_by: &str,
    now: i64,
) -> Result<Organization, sqlx::Error> {
    let org = Organization {
        id: new_id(IdKind::Organization),
        name: name.to_owned(),
        slug: slug.to_owned(),
        created_at: now,
    };
    sqlx::query("INSERT INTO organizations (id, name, slug, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(&org.id)
        .bind(&org.name)
        .bind(&org.slug)
        .bind(created_by)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(org)
}

/// Takes the organization's row lock for the rest of the transaction, so that
/// membership changes that must see a stable count of admins run one at a time
/// (on SQLite a write already serializes the whole database).
#[tracing::instrument(skip(ex))]
pub async fn lock<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE organizations SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<Organization>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, slug, created_at FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Organization::from_row).transpose()
}

/// Renames an organization and/or changes its slug; a taken slug is a unique violation.
#[tracing::instrument(skip(ex))]
pub async fn update<'e>(
    ex: impl Exec<'e>,
    id: &str,
    name: Option<&str>,
    slug: Option<&str>,
    now: i64,
) -> Result<Option<Organization>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE organizations SET name = COALESCE($1, name), slug = COALESCE($2, slug), updated_at = $3 WHERE id = $4
         RETURNING id, name, slug, created_at",
    )
    .bind(name)
    .bind(slug)
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Organization::from_row).transpose()
}

/// Deletes an organization; its memberships, invitations, items and settings go with it
/// (ON DELETE CASCADE).
#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
