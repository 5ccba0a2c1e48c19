//! Extractors that make a route's requirement visible in its signature:
//! [`Auth`] (signed in), [`OrgAuth`] (an active organization), [`RequirePermission`]
//! (a permission in the active organization, as the membership is *now*),
//! [`DataScope`] (the personal account, or the active organization with a permission),
//! [`RequireAdmin`] and [`Reverified`]. They read what the guard middleware resolved;
//! on an app without the middleware they answer a 500 that names the fix (the guard leaves
//! no state for a request without credentials: see [`auth_state`]).

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::context::{AuthObject, AuthState, Check, SignedOutReason};
use super::permissions::{
    ADMIN_ROLE, DATA_DELETE, DATA_READ, DATA_WRITE, SYS_MEMBERSHIPS_MANAGE, SYS_PROFILE_DELETE, SYS_PROFILE_MANAGE,
};
use crate::db::audit;
use crate::db::items::{self, Item, Scope};
use crate::db::pagination::PageRequest;
use crate::db::{Db, memberships};
use crate::error::AppError;

/// The future of an extractor that reads the database (actix handlers run on one thread).
type LocalBoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

const NO_MIDDLEWARE: &str = "the Gatehouse guard middleware is not installed: wrap the app with \
    `actix_web::middleware::from_fn(gatehouse::auth::guard::guard)` (see startup.rs)";

/// What the guard resolved. It leaves nothing for a request without credentials, and
/// runs the app inside the audit context's scope: no state inside that scope is signed
/// out; outside it (no guard around the app) is a misconfiguration.
fn auth_state(req: &HttpRequest) -> Result<AuthState, AppError> {
    if let Some(state) = req.extensions().get::<AuthState>() {
        return Ok(state.clone());
    }
    match audit::CONTEXT.try_with(|_| ()) {
        Ok(()) => Ok(AuthState::SignedOut(SignedOutReason::NoCredentials)),
        Err(_) => Err(AppError::Misconfigured(NO_MIDDLEWARE)),
    }
}

/// A signed-in session (Clerk's `auth()` with a `userId`). Signed out: 401.
#[derive(Debug, Clone)]
pub struct Auth(pub Arc<AuthObject>);

impl Deref for Auth {
    type Target = AuthObject;
    fn deref(&self) -> &AuthObject {
        &self.0
    }
}

impl Auth {
    fn from_http(req: &HttpRequest) -> Result<Self, AppError> {
        match auth_state(req)? {
            AuthState::SignedIn(auth) => Ok(Self(auth)),
            AuthState::SignedOut(reason) => Err(reason.to_error()),
        }
    }
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_http(req))
    }
}

/// The session, if any: for routes that serve both signed-in and signed-out callers.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Auth>);

impl FromRequest for MaybeAuth {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth_state(req).map(|state| match state {
            AuthState::SignedIn(auth) => Self(Some(Auth(auth))),
            AuthState::SignedOut(_) => Self(None),
        }))
    }
}

/// A session with an active organization. Without one: 400 `no_active_organization`.
#[derive(Debug, Clone)]
pub struct OrgAuth {
    pub auth: Auth,
    pub org_id: String,
}

impl OrgAuth {
    fn from_http(req: &HttpRequest) -> Result<Self, AppError> {
        let auth = Auth::from_http(req)?;
        let org_id = auth.org_id.clone().ok_or(AppError::NoActiveOrganization)?;
        Ok(Self { auth, org_id })
    }
}

impl Deref for OrgAuth {
    type Target = AuthObject;
    fn deref(&self) -> &AuthObject {
        &self.auth
    }
}

impl FromRequest for OrgAuth {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_http(req))
    }
}

/// A permission name as a type, for [`RequirePermission`].
pub trait Permission {
    const NAME: &'static str;
}

pub struct DataRead;
impl Permission for DataRead {
    const NAME: &'static str = DATA_READ;
}
pub struct DataWrite;
impl Permission for DataWrite {
    const NAME: &'static str = DATA_WRITE;
}
pub struct DataDelete;
impl Permission for DataDelete {
    const NAME: &'static str = DATA_DELETE;
}
/// Invite, list and revoke invitations (`org:admin` only).
pub struct ManageMembers;
impl Permission for ManageMembers {
    const NAME: &'static str = SYS_MEMBERSHIPS_MANAGE;
}
/// Rename the organization or change its slug (`org:admin` only).
pub struct ManageOrganization;
impl Permission for ManageOrganization {
    const NAME: &'static str = SYS_PROFILE_MANAGE;
}
/// Delete the organization (`org:admin` only).
pub struct DeleteOrganization;
impl Permission for DeleteOrganization {
    const NAME: &'static str = SYS_PROFILE_DELETE;
}
/// Any member, whatever the role's permissions.
pub struct AnyMember;
impl Permission for AnyMember {
    const NAME: &'static str = MEMBERSHIP;
}

/// The pseudo-permission every member holds ([`AnyMember`]).
pub const MEMBERSHIP: &str = "";

/// An active organization in which the caller holds permission `P` **now**: the
/// membership and its role's permissions are read from the database on each request, so
/// a member who left, was removed or lost the permission is refused at once, even with
/// a token minted before. No organization: 400 `no_active_organization`; not a member
/// or without the permission: 403.
pub struct RequirePermission<P: Permission>(pub OrgAuth, PhantomData<P>);

impl<P: Permission> Deref for RequirePermission<P> {
    type Target = OrgAuth;
    fn deref(&self) -> &OrgAuth {
        &self.0
    }
}

impl<P: Permission> RequirePermission<P> {
    async fn check(org: OrgAuth, db: &Db) -> Result<Self, AppError> {
        if org.is_api_key() {
            // A key's scopes are its permissions (fixed when it was made; a revoked key
            // never gets this far). No role: it holds nothing else.
            decide_key(&org.org_permissions, P::NAME)?;
            return Ok(Self(org, PhantomData));
        }
        let membership = memberships::org_context(&db.pool, &org.user_id, &org.org_id).await?;
        let membership = membership.map(|m| (m.role, m.permissions));
        decide(membership.as_ref(), P::NAME)?;
        Ok(Self(org, PhantomData))
    }
}

/// The permission rule, in one place: a member holds `permission` when their role is
/// `org:admin` or lists it (and every member holds [`MEMBERSHIP`]). `membership`: the caller's role and its permissions, as the
/// database has them now (`None`: not a member).
pub fn decide(membership: Option<&(String, Vec<String>)>, permission: &str) -> Result<(), AppError> {
    match membership {
        Some((role, permissions))
            if permission == MEMBERSHIP || role == ADMIN_ROLE || permissions.iter().any(|p| p == permission) =>
        {
            Ok(())
        }
        Some(_) => Err(AppError::Forbidden(format!("this needs the permission {permission}"))),
        None => Err(AppError::Forbidden(
            "you are not a member of the active organization".to_owned(),
        )),
    }
}

/// The rule for an API key: the permission must be one of its scopes (a key is no
/// member: [`MEMBERSHIP`] alone does not let it in).
pub fn decide_key(scopes: &[String], permission: &str) -> Result<(), AppError> {
    if permission != MEMBERSHIP && scopes.iter().any(|s| s == permission) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "this API key lacks the scope {permission}"
        )))
    }
}

fn database(req: &HttpRequest) -> Result<Db, AppError> {
    req.app_data::<web::Data<Db>>()
        .map(|db| db.get_ref().clone())
        .ok_or(AppError::Misconfigured(
            "permission extractors need `web::Data<Db>` registered as app data",
        ))
}

impl<P: Permission + 'static> FromRequest for RequirePermission<P> {
    type Error = AppError;
    type Future = LocalBoxFuture<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parts = OrgAuth::from_http(req).and_then(|org| Ok((org, database(req)?)));
        Box::pin(async move {
            let (org, db) = parts?;
            Self::check(org, &db).await
        })
    }
}

/// Where an org-data route acts: with no active organization, the caller's personal
/// account (their own rows only; `has()` is false there, as in Clerk); with one, that
/// organization, where the caller must hold `P` as the membership is *now*. The check
/// is made when the handler asks for the scope ([`Self::scope`]), or inside the same
/// database round trip as a page of items ([`Self::list_items`]); there is no other
/// way to reach the rows.
pub struct DataScope<P: Permission> {
    auth: Auth,
    db: Db,
    permission: PhantomData<P>,
}

impl<P: Permission> DataScope<P> {
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The rows this request may touch, after checking `P` (one read in an organization).
    pub async fn scope(&self) -> Result<Scope, AppError> {
        match &self.auth.org_id {
            None => Ok(Scope::Personal {
                owner_id: self.auth.user_id.clone(),
            }),
            Some(org_id) => {
                let org = OrgAuth {
                    auth: self.auth.clone(),
                    org_id: org_id.clone(),
                };
                RequirePermission::<P>::check(org, &self.db).await?;
                Ok(Scope::Organization(org_id.clone()))
            }
        }
    }

    /// A page of the scope's items, newest first. In an organization the membership is
    /// checked in the same round trip as the page is read.
    pub async fn list_items(&self, page: &PageRequest) -> Result<Vec<Item>, AppError> {
        let Some(org_id) = &self.auth.org_id else {
            return Ok(items::list(&self.db.pool, &self.scope().await?, page).await?);
        };
        if self.auth.is_api_key() {
            return Ok(items::list(&self.db.pool, &self.scope().await?, page).await?);
        }
        let member = items::list_for_member(&self.db.pool, org_id, &self.auth.user_id, page).await?;
        let membership = member.as_ref().map(|m| (m.role.clone(), m.permissions.clone()));
        decide(membership.as_ref(), P::NAME)?;
        Ok(member.map(|m| m.items).unwrap_or_default())
    }
}

impl<P: Permission + 'static> FromRequest for DataScope<P> {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Auth::from_http(req).and_then(|auth| {
            Ok(Self {
                auth,
                db: database(req)?,
                permission: PhantomData,
            })
        }))
    }
}

/// An active organization in which the session has the role `org:admin`.
pub struct RequireAdmin(pub OrgAuth);

impl Deref for RequireAdmin {
    type Target = OrgAuth;
    fn deref(&self) -> &OrgAuth {
        &self.0
    }
}

impl FromRequest for RequireAdmin {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(OrgAuth::from_http(req).and_then(|org| {
            if org.has(Check::Role(ADMIN_ROLE)) {
                Ok(Self(org))
            } else {
                Err(AppError::Forbidden("this needs the role org:admin".to_owned()))
            }
        }))
    }
}

/// A session whose password was proven within the last `MINUTES` minutes (the token's
/// `fva`). Older: 403 `reverification_required`; re-prove with
/// `POST /v1/client/sessions/{sid}/verify` and retry with the new token.
pub struct Reverified<const MINUTES: i64>(pub Auth);

impl<const MINUTES: i64> Deref for Reverified<MINUTES> {
    type Target = Auth;
    fn deref(&self) -> &Auth {
        &self.0
    }
}

impl<const MINUTES: i64> FromRequest for Reverified<MINUTES> {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            Auth::from_http(req).and_then(|auth| match auth.factor_age_now(crate::clock::now_secs()) {
                Some(age) if age <= MINUTES => Ok(Self(auth)),
                _ => Err(AppError::ReverificationRequired(MINUTES)),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_no_credentials(state: &Result<AuthState, AppError>) -> bool {
        matches!(state, Ok(AuthState::SignedOut(SignedOutReason::NoCredentials)))
    }

    #[actix_web::test]
    async fn no_state_is_signed_out_inside_the_guard_and_a_misconfiguration_outside() {
        let req = actix_web::test::TestRequest::get().to_http_request();
        // Outside the scope the guard runs the app in: no guard, and a 500 naming the fix.
        assert!(matches!(auth_state(&req), Err(AppError::Misconfigured(NO_MIDDLEWARE))));
        // Inside it: a request without credentials, which the guard leaves no state for.
        let inside = audit::CONTEXT
            .scope(audit::RequestContext::default(), async { auth_state(&req) })
            .await;
        assert!(is_no_credentials(&inside));
        // What the guard did leave is what the extractors read, inside or out.
        req.extensions_mut()
            .insert(AuthState::SignedOut(SignedOutReason::SessionStopped));
        let left = audit::CONTEXT
            .scope(audit::RequestContext::default(), async { auth_state(&req) })
            .await;
        assert!(matches!(
            left,
            Ok(AuthState::SignedOut(SignedOutReason::SessionStopped))
        ));
        assert!(matches!(
            auth_state(&req),
            Ok(AuthState::SignedOut(SignedOutReason::SessionStopped))
        ));
    }
}
