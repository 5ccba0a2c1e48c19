//! Keyset pagination, newest first: `(created_at, id) < cursor`, served by an index on
//! `(scope, created_at DESC, id DESC)`, so a page costs the same at any depth and stays
//! stable while rows are inserted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, FieldErrors};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// `?limit=&cursor=` as the client sends them.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Where a page starts, and how many rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    /// Rows strictly older than this `(created_at, id)`; the first page starts at the top.
    pub before: (i64, String),
}

impl PageQuery {
    /// Validates the query: a bad `limit` or `cursor` is 422 with the field named.
    pub fn parse(&self) -> Result<PageRequest, AppError> {
        let mut fields = FieldErrors::new();
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    fields.insert("limit".into(), format!("must be an integer from 1 to {MAX_LIMIT}"));
                    DEFAULT_LIMIT
                }
            },
        };
        let before = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => (i64::MAX, String::new()),
            Some(cursor) => decode_cursor(cursor).unwrap_or_else(|| {
                fields.insert("cursor".into(), "is not a cursor this API returned".into());
                (i64::MAX, String::new())
            }),
        };
        if fields.is_empty() {
            Ok(PageRequest { limit, before })
        } else {
            Err(AppError::Validation(fields))
        }
    }
}

pub fn encode_cursor(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    if cursor.len() > 200 {
        return None;
    }
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (created_at, id) = raw.split_once(':')?;
    let valid_id = !id.is_empty() && id.len() <= 80 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid_id.then(|| Some((created_at.parse().ok()?, id.to_owned())))?
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows (the extra one says a next page exists).
    pub fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, &str)) -> Self {
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|row| {
                let (created_at, id) = key(row);
                encode_cursor(created_at, id)
            })
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(Into::into),
            cursor: cursor.map(Into::into),
        }
    }

    #[test]
    fn limits_and_cursors_are_validated() {
        assert_eq!(query(None, None).parse().unwrap().limit, 20);
        assert_eq!(query(Some("100"), None).parse().unwrap().limit, 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(query(Some(bad), None).parse().is_err(), "{bad}");
        }
        let cursor = encode_cursor(42, "item_abc");
        assert_eq!(
            query(None, Some(&cursor)).parse().unwrap().before,
            (42, "item_abc".to_owned())
        );
        for bad in ["%%%", "bm9wZQ", "MTI6aXRlbSdhYmM"] {
            assert!(query(None, Some(bad)).parse().is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_know_whether_more_follow() {
        let rows = vec![(3, "c"), (2, "b"), (1, "a")];
        let page = Page::from_rows(rows.clone(), 2, |r| (r.0, r.1));
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.next_cursor, Some(encode_cursor(2, "b")));
        let last = Page::from_rows(rows, 3, |r| (r.0, r.1));
        assert_eq!(last.next_cursor, None);
    }
}
