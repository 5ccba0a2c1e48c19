//! The `organization_settings` table: one JSON object per organization.

use sqlx::Row;

use super::Exec;

#[tracing::instrument(skip(ex))]
pub async fn get<'e>(ex: impl Exec<'e>, organization_id: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let row = sqlx::query("SELECT settings FROM organization_settings WHERE organization_id = $1")
        .bind(organization_id)
        .fetch_optional(ex)
        .await?;
    row.map(|row| Ok(super::json_column(row.try_get("settings")?)))
        .transpose()
}

#[tracing::instrument(skip(ex, settings))]
pub async fn upsert<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    settings: &serde_json::Value,
    updated_by: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO organization_settings (organization_id, settings, updated_by, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (organization_id) DO UPDATE SET
             settings = excluded.settings, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(organization_id)
    .bind(settings.to_string())
    .bind(updated_by)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
