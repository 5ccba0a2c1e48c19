//! `/api/items`: org-scoped data with server-side permission guards.
//!
//! Each handler's [`DataScope`] says where it acts: the active organization, where the
//! caller must hold the permission as the membership is *now* (not only as the token
//! remembers it), or, without one, the caller's personal items. An item outside the
//! scope is 404, exactly like one that does not exist.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{DataDelete, DataRead, DataScope, DataWrite};
use crate::clock::now_ms;
use crate::db::events;
use crate::db::idempotency::StoredResponse;
use crate::db::items::{self, Item, UpdateOutcome};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::ItemId;
use crate::services::idempotency::{self, Created, Keyed, Outcome};
use crate::state::AppState;

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
    security(("session_token" = ["org:data:read"]), ("api_key" = ["org:data:read"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<Item>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "In an organization, without `org:data:read`", body = ErrorBody),
        (status = 422, description = "Bad `limit` or `cursor`", body = ErrorBody),
    )
)]
#[get("/items")]
#[tracing::instrument(skip_all, fields(user_id = %scope.auth().user_id))]
async fn list_items(scope: DataScope<DataRead>, query: web::Query<PageQuery>) -> AppResult<web::Json<Page<Item>>> {
    let page = query.parse()?;
    let rows = scope.list_items(&page).await?;
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
    security(("session_token" = ["org:data:write"]), ("api_key" = ["org:data:write"])),
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
#[post("/items")]
#[tracing::instrument(skip_all, fields(user_id = %access.auth().user_id))]
async fn create_item(
    state: web::Data<AppState>,
    access: DataScope<DataWrite>,
    req: HttpRequest,
    body: web::Json<CreateItem>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let data = body.data.unwrap_or_else(|| serde_json::json!({}));
    let mut fields = FieldErrors::new();
    check_name(&body.name, &mut fields);
    check_data(&data, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let key = idempotency::key_from(req.headers())?;
    let name = body.name.trim();
    let scope = access.scope().await?;
    let user_id = &access.auth().user_id;
    let request_hash =
        idempotency::request_hash(&serde_json::json!({"scope": scope.organization_id(), "name": name, "data": data}));
    let keyed = Keyed {
        owner: user_id,
        key: key.as_deref(),
        request_hash: &request_hash,
    };
    let outcome = idempotency::create_once(&state.db, &keyed, async |tx| {
        let now = now_ms();
        let item = items::insert(&mut **tx, &scope, user_id, name, &data, now).await?;
        let item_json = serde_json::to_value(&item).map_err(|e| sqlx::Error::Encode(e.into()))?;
        events::record(
            tx,
            events::ITEM_CREATED,
            item.organization_id.as_deref(),
            Some(user_id),
            &item_json,
            now,
        )
        .await?;
        Ok(Created {
            body: item_json.to_string(),
            status: 201,
            value: item,
        })
    })
    .await?;
    match outcome {
        Outcome::Created(item) => Ok(item_response(StatusCode::CREATED, &item)),
        Outcome::Replayed(stored) => replay(stored),
    }
}

/// The first response to this key, marked `Idempotent-Replayed: true`.
fn replay(stored: StoredResponse) -> AppResult<HttpResponse> {
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

/// One item of the current scope; any other item is 404.
#[utoipa::path(
    tag = "items",
    security(("session_token" = ["org:data:read"]), ("api_key" = ["org:data:read"])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Item, headers(("ETag" = String))),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %scope.auth().user_id, item_id = %id))]
async fn get_item(
    state: web::Data<AppState>,
    scope: DataScope<DataRead>,
    id: web::Path<ItemId>,
) -> AppResult<HttpResponse> {
    let item = items::find(&state.db.pool, &scope.scope().await?, &id)
        .await?
        .ok_or_else(not_found)?;
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
    security(("session_token" = ["org:data:write"]), ("api_key" = ["org:data:write"])),
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
#[patch("/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %access.auth().user_id, item_id = %id))]
async fn update_item(
    state: web::Data<AppState>,
    access: DataScope<DataWrite>,
    req: HttpRequest,
    id: web::Path<ItemId>,
    body: web::Json<UpdateItem>,
) -> AppResult<HttpResponse> {
    let scope = access.scope().await?;
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
    let now = now_ms();
    let mut tx = state.db.begin().await?;
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
        Some(&access.auth().user_id),
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
    security(("session_token" = ["org:data:delete"]), ("api_key" = ["org:data:delete"])),
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[delete("/items/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %access.auth().user_id, item_id = %id))]
async fn delete_item(
    state: web::Data<AppState>,
    access: DataScope<DataDelete>,
    id: web::Path<ItemId>,
) -> AppResult<HttpResponse> {
    let scope = access.scope().await?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let item = items::delete(&mut *tx, &scope, &id).await?.ok_or_else(not_found)?;
    let data = serde_json::json!({"id": item.id, "organization_id": item.organization_id, "owner_id": item.owner_id, "deleted": true});
    events::record(
        &mut tx,
        events::ITEM_DELETED,
        item.organization_id.as_deref(),
        Some(&access.auth().user_id),
        &data,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
