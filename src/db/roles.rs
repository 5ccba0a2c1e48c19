//! The `roles` table: instance-wide roles, each a set of permissions.
//! `org:admin` and `org:member` are seeded; custom roles are rows of the same table.

use sqlx::Row;

use super::Exec;

/// Every permission, in every organization.
pub const ADMIN_ROLE: &str = "org:admin";
/// `org:data:read` and `org:data:write`.
pub const MEMBER_ROLE: &str = "org:member";

#[derive(Debug, Clone)]
pub struct Role {
    pub key: String,
    pub name: String,
    pub permissions: Vec<String>,
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
    let row = sqlx::query("SELECT id, name, permissions FROM roles WHERE id = $1")
        .bind(key)
        .fetch_optional(ex)
        .await?;
    row.map(|row| {
        Ok(Role {
            key: row.try_get("id")?,
            name: row.try_get("name")?,
            permissions: parse_permissions(row.try_get("permissions")?),
        })
    })
    .transpose()
}

/// Creates or replaces a custom role.
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
