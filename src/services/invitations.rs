//! Invitations: an admin invites an address with a role; the invitee accepts with the
//! ticket from the email (signed in, or signing up with it) or from their list of
//! pending invitations. The ticket is a token of [`crate::auth::codes`] (HMAC-hashed at
//! rest) whose subject is the invitation; the invitation row's status makes acceptance
//! single-use (a conditional update: of two racing accepts, one wins). The token outlives
//! the invitation by [`TICKET_GRACE_MS`] so that a late click still reads "expired".

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::codes::Purpose;
use crate::db::invitations::{self, Invitation, NewInvitation};
use crate::db::memberships;
use crate::db::organizations::{self, Organization};
use crate::db::users::{self, User, normalize_email};
use crate::db::{Transaction, events, sessions};
use crate::error::{AppError, AppResult};
use crate::mail;
use crate::state::AppState;

/// How long a ticket still resolves after its invitation expired.
pub const TICKET_GRACE_MS: i64 = 30 * 86_400_000;

/// An organization as an invitee sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrganizationRef {
    #[schema(example = "org_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[schema(example = "Acme Inc.")]
    pub name: String,
    #[schema(example = "acme")]
    pub slug: String,
}

impl From<&Organization> for OrganizationRef {
    fn from(org: &Organization) -> Self {
        Self {
            id: org.id.clone(),
            name: org.name.clone(),
            slug: org.slug.clone(),
        }
    }
}

/// What a ticket shows before it is used.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    pub organization: OrganizationRef,
    pub email: String,
    #[schema(example = "org:member")]
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(example = "pending")]
    pub status: String,
}

/// Where an accepted invitation led.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub organization: OrganizationRef,
    #[schema(example = "org:member")]
    pub role: String,
}

/// Invites `email` to the organization with `role` and queues the email with its link
/// (`organizationInvitation.created`). Unknown role: 422 `fields.role`; already a member
/// or already invited (pending): 409.
pub async fn create(
    state: &AppState,
    org_id: &str,
    email: &str,
    role: &str,
    inviter_id: &str,
    now: i64,
) -> AppResult<Invitation> {
    crate::services::memberships::check_role(state, role).await?;
    let mut tx = state.db.begin().await?;
    // Serializes invitations to this organization: two racing invites of one address
    // cannot both pass the checks below (and on SQLite the write lock is taken before
    // the reads, so the transaction never has to upgrade it).
    if !organizations::lock(&mut *tx, org_id, now).await? {
        return Err(AppError::NotFound("the organization no longer exists".to_owned()));
    }
    let org = organizations::find(&mut *tx, org_id)
        .await?
        .ok_or_else(|| AppError::NotFound("the organization no longer exists".to_owned()))?;
    if let Some(user) = users::find_by_email(&mut *tx, email).await?
        && memberships::find(&mut *tx, org_id, &user.id).await?.is_some()
    {
        return Err(AppError::Conflict(format!("{} is already a member", email.trim())));
    }
    if invitations::pending_exists(&mut *tx, org_id, email, now).await? {
        return Err(AppError::Conflict(format!(
            "{} is already invited: revoke that invitation to send a new one",
            email.trim()
        )));
    }
    let lifetime_ms = state.config.invitation_lifetime.as_millis() as i64;
    let new = NewInvitation {
        organization_id: org_id,
        email,
        role,
        inviter_id,
        expires_at: now + lifetime_ms,
    };
    let invitation = invitations::insert(&mut *tx, &new, now).await?;
    let ticket = state
        .codes
        .issue_token(
            &mut tx,
            Purpose::Invitation,
            &invitation.id,
            lifetime_ms + TICKET_GRACE_MS,
            now,
        )
        .await?;
    let inviter = match users::find_by_id(&mut *tx, inviter_id).await? {
        Some(user) => display_name(&user),
        None => "An administrator".to_owned(),
    };
    let link = format!(
        "{}/accept-invitation?ticket={}",
        state.config.email.public_url,
        crate::auth::guard::percent_encode(&ticket)
    );
    mail::invitation(
        &invitation.email,
        &inviter,
        &org.name,
        role,
        &link,
        &mail::date(invitation.expire_at),
    )
    .queue(&mut tx, now)
    .await?;
    record(&mut tx, events::INVITATION_CREATED, &invitation, inviter_id, now).await?;
    tx.commit().await?;
    Ok(invitation)
}

fn display_name(user: &User) -> String {
    match (user.first_name.as_deref(), user.last_name.as_deref()) {
        (Some(first), Some(last)) => format!("{first} {last} ({})", user.email),
        (Some(name), None) | (None, Some(name)) => format!("{name} ({})", user.email),
        (None, None) => user.email.clone(),
    }
}

/// Revokes a pending invitation of the organization (`organizationInvitation.revoked`).
/// Unknown (or another organization's): 404; not pending: 409.
pub async fn revoke(state: &AppState, org_id: &str, id: &str, actor_id: &str, now: i64) -> AppResult<Invitation> {
    let mut tx = state.db.begin().await?;
    // Write lock first: the transaction reads, then writes (see `create`).
    organizations::lock(&mut *tx, org_id, now).await?;
    let current = invitations::find(&mut *tx, id, now)
        .await?
        .filter(|invitation| invitation.organization_id == org_id)
        .ok_or_else(no_such_invitation)?;
    if !invitations::revoke(&mut *tx, org_id, id, now).await? {
        return Err(not_pending(&current));
    }
    let revoked = Invitation {
        status: "revoked".to_owned(),
        ..current
    };
    record(&mut tx, events::INVITATION_REVOKED, &revoked, actor_id, now).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// The invitation a ticket names, with its organization (whatever its status).
async fn resolve(state: &AppState, ticket: &str, now: i64) -> AppResult<(Invitation, Organization)> {
    let mut conn = state.db.pool.acquire().await?;
    let id = state
        .codes
        .peek_token(&mut conn, Purpose::Invitation, ticket, now)
        .await?
        .ok_or_else(no_such_invitation)?;
    let invitation = invitations::find(&mut *conn, &id, now)
        .await?
        .ok_or_else(no_such_invitation)?;
    let org = organizations::find(&mut *conn, &invitation.organization_id)
        .await?
        .ok_or_else(no_such_invitation)?;
    Ok((invitation, org))
}

/// What a ticket shows (`GET /v1/invitations/{ticket}`). Unknown: 404.
pub async fn preview(state: &AppState, ticket: &str, now: i64) -> AppResult<InvitationPreview> {
    let (invitation, org) = resolve(state, ticket, now).await?;
    Ok(InvitationPreview {
        organization: OrganizationRef::from(&org),
        email: invitation.email,
        role: invitation.role,
        status: invitation.status,
    })
}

/// The signed-in user accepts the invitation a ticket names.
pub async fn accept_ticket(
    state: &AppState,
    ticket: &str,
    user_id: &str,
    session_id: &str,
    now: i64,
) -> AppResult<Accepted> {
    let (invitation, org) = resolve(state, ticket, now).await?;
    accept(state, invitation, org, user_id, session_id, now).await
}

/// The signed-in user accepts one of the invitations to their address, by id.
pub async fn accept_id(state: &AppState, id: &str, user_id: &str, session_id: &str, now: i64) -> AppResult<Accepted> {
    let invitation = invitations::find(&state.db.pool, id, now)
        .await?
        .ok_or_else(no_such_invitation)?;
    let org = organizations::find(&state.db.pool, &invitation.organization_id)
        .await?
        .ok_or_else(no_such_invitation)?;
    accept(state, invitation, org, user_id, session_id, now).await
}

/// The user's address must be the invited one and verified (an unverified address
/// proves nothing): else 403. Not pending: 409. The session lands in the organization.
async fn accept(
    state: &AppState,
    invitation: Invitation,
    org: Organization,
    user_id: &str,
    session_id: &str,
    now: i64,
) -> AppResult<Accepted> {
    let user = users::find_by_id(&state.db.pool, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".to_owned()))?;
    if normalize_email(&user.email) != normalize_email(&invitation.email) {
        return Err(AppError::Forbidden(
            "this invitation is addressed to another email address".to_owned(),
        ));
    }
    if !user.email_verified {
        return Err(AppError::Forbidden(
            "verify your email address first: an unverified address proves nothing".to_owned(),
        ));
    }
    let mut tx = state.db.begin().await?;
    // Serializes accepts into the organization, and on SQLite takes the write lock
    // before the reads in `join` (a read-then-write transaction that has to upgrade its
    // lock fails busy when another writer got there first).
    if !organizations::lock(&mut *tx, &org.id, now).await? {
        return Err(no_such_invitation());
    }
    join(&mut tx, &invitation, &user.id, now).await?;
    sessions::set_active_organization(&mut *tx, session_id, Some(&org.id), now).await?;
    tx.commit().await?;
    Ok(Accepted {
        organization: OrganizationRef::from(&org),
        role: invitation.role,
    })
}

/// Inside the caller's transaction: marks the invitation accepted (once), adds the
/// membership, and records `organizationInvitation.accepted` and
/// `organizationMembership.created`. Not pending: 409; already a member: 409.
pub async fn join(tx: &mut Transaction, invitation: &Invitation, user_id: &str, now: i64) -> AppResult<()> {
    if !invitation.is_pending() {
        return Err(not_pending(invitation));
    }
    if memberships::find(&mut **tx, &invitation.organization_id, user_id)
        .await?
        .is_some()
    {
        return Err(AppError::Conflict(
            "you are already a member of this organization".to_owned(),
        ));
    }
    if !invitations::accept(&mut **tx, &invitation.id, user_id, now).await? {
        // Accepted, revoked or expired since it was read: the other request won.
        let current = invitations::find(&mut **tx, &invitation.id, now)
            .await?
            .ok_or_else(no_such_invitation)?;
        return Err(not_pending(&current));
    }
    memberships::insert(&mut **tx, &invitation.organization_id, user_id, &invitation.role, now).await?;
    let accepted = Invitation {
        status: "accepted".to_owned(),
        ..invitation.clone()
    };
    record(tx, events::INVITATION_ACCEPTED, &accepted, user_id, now).await?;
    let membership = memberships::find(&mut **tx, &invitation.organization_id, user_id)
        .await?
        .ok_or_else(|| AppError::internal("a membership vanished right after its insert"))?;
    let data = serde_json::to_value(&membership).map_err(AppError::internal)?;
    events::record(
        tx,
        events::MEMBERSHIP_CREATED,
        Some(&invitation.organization_id),
        Some(user_id),
        &data,
        now,
    )
    .await?;
    Ok(())
}

/// The live pending invitation a ticket names, for signing up with it. Unknown: 422
/// `fields.ticket`; not pending: 409.
pub async fn for_sign_up(state: &AppState, ticket: &str, now: i64) -> AppResult<Invitation> {
    let (invitation, _) = resolve(state, ticket, now).await.map_err(|err| match err {
        AppError::NotFound(_) => AppError::field("ticket", "is not an invitation ticket"),
        other => other,
    })?;
    if !invitation.is_pending() {
        return Err(not_pending(&invitation));
    }
    Ok(invitation)
}

/// Pending invitations to the user's address, with their organizations.
pub async fn pending_for(state: &AppState, email: &str, now: i64) -> AppResult<Vec<(Invitation, Organization)>> {
    Ok(invitations::pending_for_email(&state.db.pool, email, now).await?)
}

fn no_such_invitation() -> AppError {
    AppError::NotFound("no such invitation".to_owned())
}

fn not_pending(invitation: &Invitation) -> AppError {
    AppError::Conflict(format!("the invitation is {}", invitation.status))
}

async fn record(
    tx: &mut Transaction,
    event_type: &str,
    invitation: &Invitation,
    actor_id: &str,
    now: i64,
) -> AppResult<()> {
    let data = serde_json::to_value(invitation).map_err(AppError::internal)?;
    events::record(
        tx,
        event_type,
        Some(&invitation.organization_id),
        Some(actor_id),
        &data,
        now,
    )
    .await?;
    Ok(())
}
