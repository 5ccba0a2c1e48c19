//! Organizations and memberships: create an organization with its first admin, add a
//! member, change a role, remove a member. Each change is one transaction with its
//! events; the last admin of an organization can be neither demoted nor removed (the
//! organization row is locked, so two admins demoting each other cannot both succeed).

use crate::clock::now_ms;
use crate::db::memberships::{self, Membership};
use crate::db::organizations::{self, Organization};
use crate::db::roles::{self, ADMIN_ROLE};
use crate::db::{Transaction, events};
use crate::error::{AppError, AppResult, ResultExt};
use crate::state::AppState;

/// Creates an organization; `creator_id` becomes its `org:admin`. A taken slug is 409.
pub async fn create_organization(
    state: &AppState,
    creator_id: &str,
    name: &str,
    slug: &str,
) -> AppResult<Organization> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let org = organizations::insert(&mut *tx, name, slug, creator_id, now)
        .await
        .on_unique_violation(|| AppError::Conflict(format!("the slug `{slug}` is taken")))?;
    let org_json = serde_json::to_value(&org).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::ORGANIZATION_CREATED,
        Some(&org.id),
        Some(creator_id),
        &org_json,
        now,
    )
    .await?;
    let membership_id = memberships::insert(&mut *tx, &org.id, creator_id, ADMIN_ROLE, now).await?;
    let membership =
        serde_json::json!({"id": membership_id, "organization_id": org.id, "user_id": creator_id, "role": ADMIN_ROLE});
    events::record(
        &mut tx,
        events::MEMBERSHIP_CREATED,
        Some(&org.id),
        Some(creator_id),
        &membership,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

/// The role must exist (`org:admin`, `org:member` or a custom role): else 422 `fields.role`.
pub async fn check_role(state: &AppState, role: &str) -> AppResult<()> {
    if role.len() <= 64 && roles::find(&state.db.pool, role).await?.is_some() {
        Ok(())
    } else {
        Err(AppError::field("role", "is not a known role"))
    }
}

/// Adds a user to an organization. Already a member: 409.
pub async fn add(state: &AppState, org_id: &str, user_id: &str, role: &str, actor_id: &str) -> AppResult<Membership> {
    check_role(state, role).await?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    memberships::insert(&mut *tx, org_id, user_id, role, now)
        .await
        .on_unique_violation(|| AppError::Conflict("the user is already a member".to_owned()))?;
    let membership = memberships::find(&mut *tx, org_id, user_id)
        .await?
        .ok_or_else(|| AppError::internal("a membership vanished right after its insert"))?;
    record(&mut tx, events::MEMBERSHIP_CREATED, &membership, actor_id, now).await?;
    tx.commit().await?;
    Ok(membership)
}

/// Changes a member's role. No such member: 404; demoting the last admin: 409.
pub async fn change_role(
    state: &AppState,
    org_id: &str,
    user_id: &str,
    role: &str,
    actor_id: &str,
) -> AppResult<Membership> {
    check_role(state, role).await?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let current = locked_member(&mut tx, org_id, user_id, now).await?;
    if current.role == ADMIN_ROLE && role != ADMIN_ROLE && memberships::count_admins(&mut *tx, org_id).await? <= 1 {
        return Err(AppError::Conflict(
            "the last admin cannot be demoted: make another member admin first".to_owned(),
        ));
    }
    memberships::update_role(&mut *tx, org_id, user_id, role, now).await?;
    let updated = memberships::find(&mut *tx, org_id, user_id)
        .await?
        .ok_or_else(|| AppError::internal("a membership vanished inside its transaction"))?;
    record(&mut tx, events::MEMBERSHIP_UPDATED, &updated, actor_id, now).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Removes a member. No such member: 404; removing the last admin: 409.
pub async fn remove(state: &AppState, org_id: &str, user_id: &str, actor_id: &str) -> AppResult<Membership> {
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let current = locked_member(&mut tx, org_id, user_id, now).await?;
    if current.role == ADMIN_ROLE && memberships::count_admins(&mut *tx, org_id).await? <= 1 {
        return Err(AppError::Conflict(
            "the last admin cannot be removed: make another member admin first".to_owned(),
        ));
    }
    memberships::delete(&mut *tx, org_id, user_id).await?;
    record(&mut tx, events::MEMBERSHIP_DELETED, &current, actor_id, now).await?;
    tx.commit().await?;
    Ok(current)
}

/// Locks the organization (serializing admin-count checks) and reads the membership.
async fn locked_member(tx: &mut Transaction, org_id: &str, user_id: &str, now: i64) -> AppResult<Membership> {
    organizations::lock(&mut **tx, org_id, now).await?;
    memberships::find(&mut **tx, org_id, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such member".to_owned()))
}

/// Records a membership event in the change's transaction.
async fn record(
    tx: &mut Transaction,
    event_type: &str,
    membership: &Membership,
    actor_id: &str,
    now: i64,
) -> AppResult<()> {
    let data = serde_json::to_value(membership).map_err(AppError::internal)?;
    events::record(
        tx,
        event_type,
        Some(&membership.organization_id),
        Some(actor_id),
        &data,
        now,
    )
    .await?;
    Ok(())
}
