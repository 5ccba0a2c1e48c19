//! `Idempotency-Key`: a create runs at most once per key and owner. A retry with the
//! same key and the same request within 24 hours gets the first response back (and
//! creates nothing); the same key with another request is 409. Two racing requests
//! with one key: one creates, the other finds its response (both dialects: PostgreSQL
//! reports the race as a conflict on the key, SQLite as busy/snapshot errors; both
//! are retried with a short backoff).

use actix_web::http::header::HeaderMap;
use aws_lc_rs::digest;

use crate::clock::now_ms;
use crate::db::idempotency::{self, StoredResponse};
use crate::db::{Db, Transaction, is_contention};
use crate::error::{AppError, AppResult};

const MAX_KEY_BYTES: usize = 255;
const MAX_ATTEMPTS: u32 = 8;

/// The `Idempotency-Key` header: absent, or 1 to 255 visible ASCII characters (else 400).
pub fn key_from(headers: &HeaderMap) -> AppResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_BYTES} visible ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// A fingerprint of what a request asks for (compared on replay).
pub fn request_hash(canonical: &serde_json::Value) -> String {
    crate::ids::hex(digest::digest(&digest::SHA256, canonical.to_string().as_bytes()).as_ref())
}

/// A keyed request: whose keys (`owner`), which key, and the request's fingerprint.
pub struct Keyed<'a> {
    pub owner: &'a str,
    pub key: Option<&'a str>,
    pub request_hash: &'a str,
}

/// What a create made, and the response to replay to its retries.
pub struct Created<T> {
    pub value: T,
    pub status: u16,
    pub body: String,
}

pub enum Outcome<T> {
    Created(T),
    /// The first response to this key, for the same request.
    Replayed(StoredResponse),
}

/// Runs `create` in a transaction, at most once per key: a stored response for the key
/// is replayed instead (409 when it answered another request).
pub async fn create_once<T>(
    db: &Db,
    keyed: &Keyed<'_>,
    mut create: impl AsyncFnMut(&mut Transaction) -> Result<Created<T>, sqlx::Error>,
) -> AppResult<Outcome<T>> {
    for attempt in 0..MAX_ATTEMPTS {
        match try_once(db, keyed, &mut create).await {
            Ok(Some(Outcome::Replayed(stored))) if stored.request_hash != keyed.request_hash => {
                return Err(AppError::Conflict(
                    "this Idempotency-Key was used with a different request: use a new key".to_owned(),
                ));
            }
            Ok(Some(outcome)) => return Ok(outcome),
            // Another request stored a response for the key first: look again.
            Ok(None) => {}
            Err(e) if is_contention(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if attempt + 1 < MAX_ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_millis(2 << (attempt + 1))).await;
        }
    }
    Err(AppError::Conflict(
        "the request could not be completed under contention: retry it".to_owned(),
    ))
}

/// One transaction: the stored response, or the create and (with a key) its response.
/// `None` when a racing request stored its response first.
async fn try_once<T>(
    db: &Db,
    keyed: &Keyed<'_>,
    create: &mut impl AsyncFnMut(&mut Transaction) -> Result<Created<T>, sqlx::Error>,
) -> Result<Option<Outcome<T>>, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    if let Some(key) = keyed.key
        && let Some(stored) = idempotency::find(&mut *tx, keyed.owner, key, now).await?
    {
        return Ok(Some(Outcome::Replayed(stored)));
    }
    let created = create(&mut tx).await?;
    if let Some(key) = keyed.key {
        let stored = StoredResponse {
            request_hash: keyed.request_hash.to_owned(),
            status: created.status,
            body: created.body,
        };
        if !idempotency::insert(&mut *tx, keyed.owner, key, &stored, now).await? {
            return Ok(None);
        }
    }
    tx.commit().await?;
    Ok(Some(Outcome::Created(created.value)))
}
