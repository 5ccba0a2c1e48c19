//! Roles the product's owner defines (Backend API): validated keys (`org:<name>`) and
//! permissions (`org:<feature>:<action>`), system roles protected, each change one
//! transaction with its `role.*` event. Permissions are read live by the org-data guards
//! and by the token minter, so a change applies on members' next request and token.
//! Each change takes the role's row lock first (on SQLite: the write lock, so a
//! read-then-write transaction never has to upgrade and fail busy).

use std::collections::BTreeSet;

use crate::auth::permissions::{is_system_permission, split_permission};
use crate::clock::now_ms;
use crate::db::roles::{self, ADMIN_ROLE, Role};
use crate::db::{events, invitations};
use crate::error::{AppError, AppResult, FieldErrors, ResultExt};
use crate::state::AppState;

const MAX_KEY_BYTES: usize = 64;
const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_PERMISSIONS: usize = 100;

/// `org:<name>`: lowercase letters, digits, `_` and `-`.
pub fn valid_key(key: &str) -> bool {
    key.len() <= MAX_KEY_BYTES
        && key.strip_prefix("org:").is_some_and(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

/// Checks a name, description and permission list, writing problems into `fields`;
/// the permissions sorted and without duplicates.
pub fn check_fields(
    name: Option<&str>,
    description: Option<&str>,
    permissions: Option<&[String]>,
    fields: &mut FieldErrors,
) -> Vec<String> {
    if let Some(name) = name {
        let name = name.trim();
        if name.is_empty() {
            fields.insert("name".into(), "is required".into());
        } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            fields.insert(
                "name".into(),
                format!("must be at most {MAX_NAME_CHARS} characters, without control characters"),
            );
        }
    }
    if let Some(description) = description
        && description.chars().count() > MAX_DESCRIPTION_CHARS
    {
        fields.insert(
            "description".into(),
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        );
    }
    let mut set = BTreeSet::new();
    for permission in permissions.unwrap_or_default() {
        if permission.len() > 128 || split_permission(permission).is_none() {
            fields.insert(
                "permissions".into(),
                format!("`{}` is not of the form org:<feature>:<action>", truncate(permission)),
            );
            break;
        }
        if is_system_permission(permission) {
            fields.insert(
                "permissions".into(),
                format!("`{permission}` is a system permission: only org:admin holds it"),
            );
            break;
        }
        set.insert(permission.clone());
    }
    if set.len() > MAX_PERMISSIONS {
        fields.insert("permissions".into(), format!("at most {MAX_PERMISSIONS} permissions"));
    }
    set.into_iter().collect()
}

fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}

/// Creates a role (`role.created`). Taken key: 409.
pub async fn create(state: &AppState, role: Role) -> AppResult<Role> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    roles::insert(&mut *tx, &role, now)
        .await
        .on_unique_violation(|| AppError::Conflict(format!("the role `{}` exists", role.key)))?;
    record(&mut tx, events::ROLE_CREATED, &role, now).await?;
    tx.commit().await?;
    Ok(role)
}

/// What a PATCH may change.
pub struct RoleChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
}

/// Changes a role (`role.updated`). Unknown: 404; the permissions of `org:admin`
/// (which holds every permission): 409.
pub async fn update(state: &AppState, key: &str, change: RoleChange) -> AppResult<Role> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    if !roles::lock(&mut *tx, key, now).await? {
        return Err(no_such_role());
    }
    let mut role = roles::find(&mut *tx, key).await?.ok_or_else(no_such_role)?;
    if key == ADMIN_ROLE && change.permissions.is_some() {
        return Err(AppError::Conflict(
            "org:admin holds every permission: its permissions cannot be changed".to_owned(),
        ));
    }
    if let Some(name) = change.name {
        role.name = name.trim().to_owned();
    }
    if let Some(description) = change.description {
        role.description = description;
    }
    if let Some(permissions) = change.permissions {
        role.permissions = permissions;
    }
    roles::update(&mut *tx, &role, now).await?;
    record(&mut tx, events::ROLE_UPDATED, &role, now).await?;
    tx.commit().await?;
    Ok(role)
}

/// Deletes a custom role (`role.deleted`). Unknown: 404; a system role, or one that
/// members or pending invitations hold: 409.
pub async fn delete(state: &AppState, key: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    if !roles::lock(&mut *tx, key, now).await? {
        return Err(no_such_role());
    }
    let role = roles::find(&mut *tx, key).await?.ok_or_else(no_such_role)?;
    if role.is_system() {
        return Err(AppError::Conflict(format!(
            "{key} is a system role: it cannot be deleted"
        )));
    }
    let holders = roles::members_holding(&mut *tx, key).await?;
    if holders > 0 {
        return Err(AppError::Conflict(format!(
            "{holders} member(s) hold {key}: give them another role first"
        )));
    }
    if invitations::role_in_use(&mut *tx, key, now).await? {
        return Err(AppError::Conflict(format!(
            "pending invitations offer {key}: revoke them first"
        )));
    }
    // A membership inserted meanwhile makes this a foreign-key violation (a 5xx would
    // be wrong): memberships reference roles, so the database refuses the delete.
    roles::delete(&mut *tx, key).await.map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            AppError::Conflict(format!("members hold {key}: give them another role first"))
        }
        other => other.into(),
    })?;
    record(&mut tx, events::ROLE_DELETED, &role, now).await?;
    tx.commit().await?;
    Ok(())
}

fn no_such_role() -> AppError {
    AppError::NotFound("no such role".to_owned())
}

async fn record(tx: &mut crate::db::Transaction, event_type: &str, role: &Role, now: i64) -> AppResult<()> {
    let data = serde_json::to_value(role).map_err(AppError::internal)?;
    events::record(tx, event_type, None, None, &data, now).await?;
    Ok(())
}
