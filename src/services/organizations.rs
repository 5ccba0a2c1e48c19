//! An organization's lifecycle after its creation: rename (or re-slug) it, delete it,
//! leave it. Each change is one transaction with its event.

use crate::clock::now_ms;
use crate::db::memberships;
use crate::db::organizations::{self, Organization};
use crate::db::roles::ADMIN_ROLE;
use crate::db::{Transaction, events, sessions};
use crate::error::{AppError, AppResult, ResultExt};
use crate::state::AppState;

/// Renames the organization and/or changes its slug (`organization.updated`). A taken
/// slug is 409; a vanished organization 404.
pub async fn update(
    state: &AppState,
    org_id: &str,
    name: Option<&str>,
    slug: Option<&str>,
    actor_id: &str,
) -> AppResult<Organization> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let org = organizations::update(&mut *tx, org_id, name, slug, now)
        .await
        .on_unique_violation(|| AppError::Conflict(format!("the slug `{}` is taken", slug.unwrap_or_default())))?
        .ok_or_else(no_such_organization)?;
    let data = serde_json::to_value(&org).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::ORGANIZATION_UPDATED,
        Some(&org.id),
        Some(actor_id),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

/// Deletes the organization (`organization.deleted`): its memberships, invitations,
/// items and settings go with it, and every session that had it active falls back to
/// the personal account. Members holding a token for it are refused on their next org
/// request (membership is checked live) and their next token has no `o`.
pub async fn delete(state: &AppState, org_id: &str, actor_id: &str) -> AppResult<Organization> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    if !organizations::lock(&mut *tx, org_id, now).await? {
        return Err(no_such_organization());
    }
    let org = organizations::find(&mut *tx, org_id)
        .await?
        .ok_or_else(no_such_organization)?;
    let moved = delete_in(&mut tx, &org, actor_id, now).await?;
    tx.commit().await?;
    tracing::info!(org_id, sessions_moved = moved, "organization deleted");
    Ok(org)
}

/// Inside the caller's transaction (holding the organization's lock): moves the
/// sessions that had it active to the personal account, deletes it (its rows go by
/// `ON DELETE CASCADE`) and records `organization.deleted`. How many sessions moved.
pub async fn delete_in(tx: &mut Transaction, org: &Organization, actor_id: &str, now: i64) -> AppResult<u64> {
    let moved = sessions::leave_organization(&mut **tx, &org.id, None, now).await?;
    organizations::delete(&mut **tx, &org.id).await?;
    let data = serde_json::json!({"id": org.id, "name": org.name, "slug": org.slug, "object": "organization", "deleted": true});
    events::record(
        tx,
        events::ORGANIZATION_DELETED,
        Some(&org.id),
        Some(actor_id),
        &data,
        now,
    )
    .await?;
    Ok(moved)
}

/// The user leaves the organization (`organizationMembership.deleted`); their sessions
/// that had it active fall back to the personal account. Not a member: 404; the last
/// admin: 409.
pub async fn leave(state: &AppState, org_id: &str, user_id: &str) -> AppResult<()> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    if !organizations::lock(&mut *tx, org_id, now).await? {
        return Err(AppError::NotFound(
            "you are not a member of this organization".to_owned(),
        ));
    }
    let membership = memberships::find(&mut *tx, org_id, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("you are not a member of this organization".to_owned()))?;
    if membership.role == ADMIN_ROLE && memberships::count_admins(&mut *tx, org_id).await? <= 1 {
        return Err(AppError::Conflict(
            "the last admin cannot leave: make another member admin, or delete the organization".to_owned(),
        ));
    }
    memberships::delete(&mut *tx, org_id, user_id).await?;
    sessions::leave_organization(&mut *tx, org_id, Some(user_id), now).await?;
    let data = serde_json::to_value(&membership).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::MEMBERSHIP_DELETED,
        Some(org_id),
        Some(user_id),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn no_such_organization() -> AppError {
    AppError::NotFound("the organization no longer exists".to_owned())
}
