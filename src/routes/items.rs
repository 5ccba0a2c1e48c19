//! `/api/items`: org-scoped data with server-side permission guards.
//!
//! The scope comes from the session: the active organization (checked against the
//! membership as it is now, not only as the token remembers it) or, without one, the
//! caller's personal items. An item outside the scope is 404, exactly like one that
//! does not exist.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use aws_lc_rs::digest;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::Auth;
use crate::auth::permissions::{ADMIN_ROLE, DATA_DELETE, DATA_READ, DATA_WRITE};
use crate::clock::now_ms;
use crate::db::idempotency::{self, StoredResponse};
use crate::db::items::{self, Item, Scope, UpdateOutcome};
use crate::db::pagination::{Page, PageQuery};
use crate::db::{events, memberships};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::{IdKind, has_prefix};
use crate::startup::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_items)
        .service(create_item)
        .service(get_item)
        .service(update_item)
        .service(delete_item);
}

pub const MAX_NAME_CHARS: usize = 200;
/// `data` is a JSON object of at most this many bytes (compact).
pub const MAX_DATA_BYTES: usize = 16 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The caller's scope for an operation that needs `permission` in an organization.
async fn scope_for(state: &AppState, auth: &Auth, permission: &str) -> AppResult<Scope> {
    let Some(org_id) = &auth.org_id else {
        return Ok(Scope::Personal {
            owner_id: auth.user_id.clone(),
        });
    };
    let membership = memberships::org_context(&state.db.pool, &auth.user_id, org_id).await?;
    match membership {
        Some(m) if m.role == ADMIN_ROLE || m.permissions.iter().any(|p| p == permission) => {
            Ok(Scope::Organization(org_id.clone()))
        }
        Some(_) => Err(AppError::Forbidden(format!("this needs the permission {permission}"))),
        None => Err(AppError::Forbidden(
            "you are not a member of the active organization".to_owned(),
        )),
    }
}

fn not_found() -> AppError {
    AppError::NotFound("no such item".to_owned())
}

fn check_name(name: &str, fields: &mut FieldErrors) {
    let name = name.trim();
    if name.is_empty() {
        fields.insert("name".into(), "must not be empty".into());
    } else if name.chars().count() > MAX_NAME_CHARS {
        fields.insert("name".into(), format!("must be at most {MAX_NAME_CHARS} characters"));
    } else if name.chars().any(char::is_control) {
        fields.insert("name".into(), "must not contain control characters".into());
    }
}

fn check_data(data: &serde_json::Value, fields: &mut FieldErrors) {
    if !data.is_object() {
        fields.insert("data".into(), "must be a JSON object".into());
    } else if data.to_string().len() > MAX_DATA_BYTES {
        fields.insert("data".into(), format!("must be at most {MAX_DATA_BYTES} bytes of JSON"));
    }
}

fn item_response(status: StatusCode, item: &Item) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", item.version)))
        .json(item)
}

/// `If-Match: "3"`, `3` or `W/"3"` → `Some(3)`; absent or `*` → `None`.
fn if_match(req: &HttpRequest) -> AppResult<Option<i64>> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    let bare = raw.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>()
        .map(Some)
        .map_err(|_| AppError::BadRequest("If-Match must be an item version such as \"3\"".to_owned()))
}

/// The items of the active organization, or the caller's personal items, newest first.
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:read"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<Item>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "In an organization, without `org:data:read`", body = ErrorBody),
        (status = 422, description = "Bad `limit` or `cursor`", body = ErrorBody),
    )
)]
#[get("/api/items")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn list_items(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<Item>>> {
    let page = query.parse()?;
    let scope = scope_for(&state, &auth, DATA_READ).await?;
    let rows = items::list(&state.db.pool, &scope, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |i| {
        (i.created_at, i.id.as_str())
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    #[schema(example = "Quarterly report")]
    pub name: String,
    /// A JSON object (default `{}`), at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Creates an item in the current scope.
///
/// With `Idempotency-Key` (1 to 255 visible ASCII characters), a retry with the same key
/// and body within 24 hours returns the first response (header `Idempotent-Replayed: true`)
/// and creates nothing; the same key with a different body (or another active
/// organization) is 409 `conflict`.
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = CreateItem,
    responses(
        (status = 201, body = Item, headers(("ETag" = String))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another request", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/api/items")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn create_item(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    body: web::Json<CreateItem>,
) -> AppResult<HttpResponse> {
    let scope = scope_for(&state, &auth, DATA_WRITE).await?;
    let body = body.into_inner();
    let data = body.data.unwrap_or_else(|| serde_json::json!({}));
    let mut fields = FieldErrors::new();
    check_name(&body.name, &mut fields);
    check_data(&data, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let key = idempotency_key(&req)?;
    let name = body.name.trim();
    let request_hash = {
        let canonical = serde_json::json!({"scope": scope.organization_id(), "name": name, "data": data});
        hex(digest::digest(&digest::SHA256, canonical.to_string().as_bytes()).as_ref())
    };

    // A racing request with the same key may commit first: then a later attempt finds
    // its response instead of creating a second item. SQLite reports such races as
    // busy/snapshot errors, PostgreSQL as a conflict on the key; both are retried.
    let mut attempt = 0;
    loop {
        let outcome = try_create(&state, &auth, &scope, name, &data, key.as_deref(), &request_hash).await;
        match outcome {
            Ok(Created::Item(item)) => return Ok(item_response(StatusCode::CREATED, &item)),
            Ok(Created::Replay(stored)) => return replay(stored, &request_hash),
            Ok(Created::Raced) => {}
            Err(e) if is_contention(&e) => {}
            Err(e) => return Err(e.into()),
        }
        attempt += 1;
        if attempt == 8 {
            return Err(AppError::Conflict(
                "the request could not be completed under contention: retry it".to_owned(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 << attempt)).await;
    }
}

enum Created {
    Item(Item),
    Replay(StoredResponse),
    /// Another request stored a response for the key first; look again.
    Raced,
}

/// One transaction: replay a stored response, or insert the item, its event and (with
/// a key) the response to replay.
async fn try_create(
    state: &AppState,
    auth: &Auth,
    scope: &Scope,
    name: &str,
    data: &serde_json::Value,
    key: Option<&str>,
    request_hash: &str,
) -> Result<Created, sqlx::Error> {
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    if let Some(key) = key
        && let Some(stored) = idempotency::find(&mut *tx, &auth.user_id, key, now).await?
    {
        return Ok(Created::Replay(stored));
    }
    let item = items::insert(&mut *tx, scope, &auth.user_id, name, data, now).await?;
    let item_json = serde_json::to_value(&item).map_err(|e| sqlx::Error::Encode(e.into()))?;
    events::record(
        &mut tx,
        events::ITEM_CREATED,
        item.organization_id.as_deref(),
        Some(&auth.user_id),
        &item_json,
        now,
    )
    .await?;
    if let Some(key) = key {
        let stored = StoredResponse {
            request_hash: request_hash.to_owned(),
            status: 201,
            body: item_json.to_string(),
        };
        if !idempotency::insert(&mut *tx, &auth.user_id, key, &stored, now).await? {
            return Ok(Created::Raced);
        }
    }
    tx.commit().await?;
    Ok(Created::Item(item))
}

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

fn replay(stored: StoredResponse, request_hash: &str) -> AppResult<HttpResponse> {
    if stored.request_hash != request_hash {
        return Err(AppError::Conflict(
            "this Idempotency-Key was used with a different request: use a new key".to_owned(),
        ));
    }
    let item: Item = serde_json::from_str(&stored.body).map_err(AppError::internal)?;
    let mut response = item_response(
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED),
        &item,
    );
    response.headers_mut().insert(
        header::HeaderName::from_static("idempotent-replayed"),
        header::HeaderValue::from_static("true"),
    );
    Ok(response)
}

/// A unique violation from a racing insert, or SQLite's busy/snapshot errors.
fn is_contention(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517"))
        }
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One item of the current scope; any other item is 404.
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:read"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Item, headers(("ETag" = String))),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/api/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, item_id = %id))]
async fn get_item(state: web::Data<AppState>, auth: Auth, id: web::Path<String>) -> AppResult<HttpResponse> {
    let scope = scope_for(&state, &auth, DATA_READ).await?;
    if !has_prefix(&id, IdKind::Item) {
        return Err(not_found());
    }
    let item = items::find(&state.db.pool, &scope, &id).await?.ok_or_else(not_found)?;
    Ok(item_response(StatusCode::OK, &item))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItem {
    pub name: Option<String>,
    /// Replaces `data` (a JSON object, at most 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Updates an item. With `If-Match: "<version>"` the update applies only to that
/// version; another is 409 and nothing changes.
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:write"])),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "The version you read, e.g. \"3\"")),
    request_body = UpdateItem,
    responses(
        (status = 200, body = Item, headers(("ETag" = String))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The item's version is not the one in If-Match", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/api/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, item_id = %id))]
async fn update_item(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<UpdateItem>,
) -> AppResult<HttpResponse> {
    let scope = scope_for(&state, &auth, DATA_WRITE).await?;
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    if let Some(name) = &body.name {
        check_name(name, &mut fields);
    }
    if let Some(data) = &body.data {
        check_data(data, &mut fields);
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let expected = if_match(&req)?;
    if !has_prefix(&id, IdKind::Item) {
        return Err(not_found());
    }
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let name = body.name.as_deref().map(str::trim);
    let item = match items::update(&mut tx, &scope, &id, name, body.data.as_ref(), expected, now).await? {
        UpdateOutcome::Updated(item) => item,
        UpdateOutcome::NotFound => return Err(not_found()),
        UpdateOutcome::VersionMismatch { current } => {
            return Err(AppError::Conflict(format!(
                "the item is at version {current}, not the If-Match version: read it again"
            )));
        }
    };
    let item_json = serde_json::to_value(&item).map_err(AppError::internal)?;
    events::record(
        &mut tx,
        events::ITEM_UPDATED,
        item.organization_id.as_deref(),
        Some(&auth.user_id),
        &item_json,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(item_response(StatusCode::OK, &item))
}

/// Deletes an item (in an organization: `org:data:delete`).
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:delete"])),
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[delete("/api/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, item_id = %id))]
async fn delete_item(state: web::Data<AppState>, auth: Auth, id: web::Path<String>) -> AppResult<HttpResponse> {
    let scope = scope_for(&state, &auth, DATA_DELETE).await?;
    if !has_prefix(&id, IdKind::Item) {
        return Err(not_found());
    }
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let item = items::delete(&mut *tx, &scope, &id).await?.ok_or_else(not_found)?;
    let data = serde_json::json!({"id": item.id, "organization_id": item.organization_id, "owner_id": item.owner_id, "deleted": true});
    events::record(
        &mut tx,
        events::ITEM_DELETED,
        item.organization_id.as_deref(),
        Some(&auth.user_id),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
