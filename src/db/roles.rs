//! The `roles` table: instance-wide roles, each a set of permissions.
//! `org:admin` and `org:member` are seeded (system roles); custom roles are rows of the
//! same table, managed through the Backend API.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;

/// Every permission, in every organization.
pub const ADMIN_ROLE: &str = "org:admin";
/// `org:data:read` and `org:data:write`.
pub const MEMBER_ROLE: &str = "org:member";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Role {
    #[schema(example = "org:editor")]
    pub key: String,
    #[schema(example = "Editor")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = json!(["org:data:read", "org:data:write"]))]
    pub permissions: Vec<String>,
}

impl Role {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            key: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            permissions: parse_permissions(row.try_get("permissions")?),
        })
    }

    pub fn is_system(&self) -> bool {
        self.key == ADMIN_ROLE || self.key == MEMBER_ROLE
    }
}

pub fn parse_permissions(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, key: &str) -> Result<Option<Role>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, description, permissions FROM roles WHERE id = $1")
        .bind(key)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(Role::from_row).transpose()
}

/// Every role, system roles first.
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(ex: impl Exec<'e>) -> Result<Vec<Role>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, description, permissions FROM roles
         ORDER BY CASE id WHEN 'org:admin' THEN 0 WHEN 'org:member' THEN 1 ELSE 2 END, id",
    )
    .fetch_all(ex)
    .await?;
    rows.iter().map(Role::from_row).collect()
}

/// Inserts a role; a taken key is a unique violation.
#[tracing::instrument(skip(ex, role))]
pub async fn insert<'e>(ex: impl Exec<'e>, role: &Role, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO roles (id, name, description, permissions, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&role.key)
    .bind(&role.name)
    .bind(&role.description)
    .bind(role.permissions.join(","))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Replaces a role's name, description and permissions.
#[tracing::instrument(skip(ex, role))]
pub async fn update<'e>(ex: impl Exec<'e>, role: &Role, now: i64) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE roles SET name = $1, description = $2, permissions = $3, updated_at = $4 WHERE id = $5")
            .bind(&role.name)
            .bind(&role.description)
            .bind(role.permissions.join(","))
            .bind(now)
            .bind(&role.key)
            .execute(ex)
            .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, key: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Takes the role's row lock (and, on SQLite, the write lock) before a read-then-write
/// change; `false` when there is no such role.
#[tracing::instrument(skip(ex))]
pub async fn lock<'e>(ex: impl Exec<'e>, key: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE roles SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(key)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// How many memberships hold a role.
#[tracing::instrument(skip(ex))]
pub async fn members_holding<'e>(ex: impl Exec<'e>, key: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE role = $1")
        .bind(key)
        .fetch_one(ex)
        .await
}

/// Creates or replaces a custom role (tests and seeding).
#[tracing::instrument(skip(ex))]
pub async fn upsert<'e>(
    ex: impl Exec<'e>,
    key: &str,
    name: &str,
    permissions: &[&str],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO roles (id, name, permissions, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, permissions = excluded.permissions",
    )
    .bind(key)
    .bind(name)
    .bind(permissions.join(","))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
