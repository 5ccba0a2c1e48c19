//! The `memberships` table: who belongs to which organization, with which role.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use super::organizations::Organization;
use super::pagination::PageRequest;
use super::roles::{ADMIN_ROLE, parse_permissions};
use crate::ids::{IdKind, new_id};

/// Public fields of a member, as an organization admin sees them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicUserData {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Membership {
    #[schema(example = "orgmem_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    #[schema(example = "org:member")]
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    pub public_user_data: PublicUserData,
}

impl Membership {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            user_id: row.try_get("user_id")?,
            role: row.try_get("role")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            public_user_data: PublicUserData {
                email: row.try_get("email")?,
                first_name: row.try_get("first_name")?,
                last_name: row.try_get("last_name")?,
            },
        })
    }
}

macro_rules! select_membership {
    ($where:literal) => {
        concat!(
            "SELECT m.id, m.organization_id, m.user_id, m.role, m.created_at, m.updated_at, u.email, u.first_name, u.last_name
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE ",
            $where
        )
    };
}

#[tracing::instrument(skip(ex))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<String, sqlx::Error> {
    let id = new_id(IdKind::Membership);
    sqlx::query(
        "INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(organization_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(id)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    user_id: &str,
) -> Result<Option<Membership>, sqlx::Error> {
    let row = sqlx::query(select_membership!("m.organization_id = $1 AND m.user_id = $2"))
        .bind(organization_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Membership::from_row).transpose()
}

/// One page of an organization's members, newest first.
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    page: &PageRequest,
) -> Result<Vec<Membership>, sqlx::Error> {
    let rows = sqlx::query(select_membership!(
        "m.organization_id = $1 AND (m.created_at, m.id) < ($2, $3)
         ORDER BY m.created_at DESC, m.id DESC LIMIT $4"
    ))
    .bind(organization_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(Membership::from_row).collect()
}

/// The organizations a user belongs to, with the role in each, oldest membership first.
#[tracing::instrument(skip(ex))]
pub async fn list_for_user<'e>(ex: impl Exec<'e>, user_id: &str) -> Result<Vec<(Organization, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.id, o.name, o.slug, o.created_at, m.role FROM memberships m
         JOIN organizations o ON o.id = m.organization_id
         WHERE m.user_id = $1 ORDER BY m.created_at, m.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|row| Ok((Organization::from_row(row)?, row.try_get("role")?)))
        .collect()
}

/// What a session token says about its active organization.
#[derive(Debug, Clone)]
pub struct OrgContext {
    pub organization_id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub permissions: Vec<String>,
}

/// The user's role and permissions in an organization, if they are a member.
#[tracing::instrument(skip(ex))]
pub async fn org_context<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    organization_id: &str,
) -> Result<Option<OrgContext>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT o.id, o.slug, o.name, m.role, r.permissions FROM memberships m
         JOIN organizations o ON o.id = m.organization_id
         JOIN roles r ON r.id = m.role
         WHERE m.user_id = $1 AND m.organization_id = $2",
    )
    .bind(user_id)
    .bind(organization_id)
    .fetch_optional(ex)
    .await?;
    row.map(|row| {
        Ok(OrgContext {
            organization_id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            role: row.try_get("role")?,
            permissions: parse_permissions(row.try_get("permissions")?),
        })
    })
    .transpose()
}

/// How many members an organization has (call inside a transaction holding its lock).
#[tracing::instrument(skip(ex))]
pub async fn count_members<'e>(ex: impl Exec<'e>, organization_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE organization_id = $1")
        .bind(organization_id)
        .fetch_one(ex)
        .await
}

/// How many admins an organization has (call inside a transaction holding its lock).
#[tracing::instrument(skip(ex))]
pub async fn count_admins<'e>(ex: impl Exec<'e>, organization_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND role = $2")
        .bind(organization_id)
        .bind(ADMIN_ROLE)
        .fetch_one(ex)
        .await
}

#[tracing::instrument(skip(ex))]
pub async fn update_role<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE memberships SET role = $1, updated_at = $2 WHERE organization_id = $3 AND user_id = $4")
            .bind(role)
            .bind(now)
            .bind(organization_id)
            .bind(user_id)
            .execute(ex)
            .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, organization_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
