//! Organization API keys: made by an admin with scopes (permissions of the instance),
//! the secret shown once; revoked through the same path as a stopped session, so a key
//! stops on its next request on every instance.

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::api_keys;
use crate::clock::now_ms;
use crate::db::api_keys::{ApiKey, NewApiKey};
use crate::db::{events, roles};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::state::AppState;

/// Bounds of `expires_in_seconds`.
pub const LIFETIME_SECS: std::ops::RangeInclusive<i64> = 60..=31_536_000;

/// A new key with its secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `gk_…`: send it as `Authorization: Bearer gk_…`. Shown only now.
    #[schema(example = "gk_3q2-7wFh0LvK1n9yXcB4sQm8ZtRaUe6PjD5oGiVwYbE")]
    pub secret: String,
}

/// Every permission some role of the instance holds (what a scope may be).
async fn instance_permissions(state: &AppState) -> AppResult<Vec<String>> {
    let mut all: Vec<String> = roles::list(&state.db.pool)
        .await?
        .into_iter()
        .flat_map(|role| role.permissions)
        .collect();
    for builtin in [
        crate::auth::permissions::DATA_READ,
        crate::auth::permissions::DATA_WRITE,
        crate::auth::permissions::DATA_DELETE,
    ] {
        all.push(builtin.to_owned());
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// Makes a key (`apiKey.created`). A scope that is not a permission of the instance, a
/// bad name or lifetime: 422.
pub async fn create(
    state: &AppState,
    org_id: &str,
    name: &str,
    scopes: &[String],
    expires_in_seconds: Option<i64>,
    created_by: &str,
) -> AppResult<CreatedApiKey> {
    let mut fields = FieldErrors::new();
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        fields.insert("name".into(), "must be 1 to 100 characters".into());
    }
    let known = instance_permissions(state).await?;
    let mut scopes: Vec<String> = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        fields.insert("scopes".into(), "give at least one permission".into());
    } else if let Some(unknown) = scopes.iter().find(|s| !known.contains(s)) {
        fields.insert(
            "scopes".into(),
            format!(
                "`{}` is not a permission of this instance",
                unknown.chars().take(64).collect::<String>()
            ),
        );
    }
    if let Some(secs) = expires_in_seconds
        && !LIFETIME_SECS.contains(&secs)
    {
        fields.insert(
            "expires_in_seconds".into(),
            format!("must be from {} to {}", LIFETIME_SECS.start(), LIFETIME_SECS.end()),
        );
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let now = now_ms();
    let secret = api_keys::new_secret();
    let hashed = api_keys::hash(&secret);
    let new = NewApiKey {
        organization_id: org_id,
        name,
        scopes: &scopes,
        secret_hash: &hashed,
        created_by,
        expires_at: expires_in_seconds.map(|secs| now + secs * 1000),
    };
    let mut tx = state.db.begin().await?;
    let key = crate::db::api_keys::insert(&mut *tx, &new, now).await?;
    let data = serde_json::to_value(&key).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::API_KEY_CREATED,
        Some(org_id),
        Some(created_by),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedApiKey { key, secret })
}

/// Revokes a key of the organization (`apiKey.revoked`); it stops on its next request,
/// on every instance. Unknown, another organization's, or revoked already: 404.
pub async fn revoke(state: &AppState, org_id: &str, id: &str, actor_id: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let key = crate::db::api_keys::revoke(&mut *tx, org_id, id, now)
        .await?
        .ok_or_else(|| AppError::NotFound("no such API key".to_owned()))?;
    let data = serde_json::to_value(&key).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::API_KEY_REVOKED,
        Some(org_id),
        Some(actor_id),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    state
        .revocations
        .stopped(&state.db, std::slice::from_ref(&key.id))
        .await;
    Ok(())
}
