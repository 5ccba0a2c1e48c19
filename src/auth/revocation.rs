//! Revocation that bites on the next request, without a database read per request.
//!
//! A session's tokens live at most the token lifetime (plus skew) after its last
//! refresh, so the middleware only needs to know the sessions that stopped within that
//! window: [`RevocationList`] keeps exactly those, in memory. On PostgreSQL every stop
//! is announced with `NOTIFY`, and every instance's listener ([`Announcements`], on the
//! instance's one `LISTEN` connection) adds it to its own list; when it starts listening,
//! after a reconnect (notifications sent meanwhile are lost) and every 30 s, a catch-up
//! query reads the sessions that stopped within the window.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::clock::now_ms;
use crate::db::listener::Subscriber;
use crate::db::{Db, Dialect, sessions};

/// The NOTIFY channel; the payload is a comma-separated list of session ids.
pub const CHANNEL: &str = "gatehouse_sessions_stopped";
/// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD: usize = 7000;

pub struct RevocationList {
    /// Session id → when this instance learned it stopped (Unix ms).
    entries: DashMap<Box<str>, i64, foldhash::fast::RandomState>,
    /// How many entries there are: when none, a check takes no lock at all.
    count: AtomicUsize,
    window_ms: i64,
}

impl RevocationList {
    /// `window`: how long a stopped session's tokens may still verify (lifetime + skew).
    pub fn new(window: Duration) -> Self {
        Self {
            entries: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            count: AtomicUsize::new(0),
            window_ms: window.as_millis() as i64,
        }
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    pub fn insert<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let now = now_ms();
        for id in ids {
            if let dashmap::Entry::Vacant(vacant) = self.entries.entry(id.into()) {
                // Counted before it is visible, so a check that finds it never reads 0.
                self.count.fetch_add(1, Ordering::SeqCst);
                vacant.insert(now);
            }
        }
    }

    /// Whether the session stopped within the window. The common case (nothing stopped
    /// lately) is one atomic read.
    pub fn contains(&self, session_id: &str) -> bool {
        self.count.load(Ordering::SeqCst) > 0 && self.entries.contains_key(session_id)
    }

    /// Forgets sessions whose last token has expired for sure.
    pub fn prune(&self) {
        let horizon = now_ms() - self.window_ms;
        let mut removed = 0;
        self.entries.retain(|_, at| {
            let keep = *at > horizon;
            removed += usize::from(!keep);
            keep
        });
        self.count.fetch_sub(removed, Ordering::SeqCst);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the sessions that stopped, and the API keys revoked, within the window
    /// (start-up, reconnects, timer).
    pub async fn catch_up(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let since = now_ms() - self.window_ms;
        let mut ids = sessions::stopped_since(&db.pool, since).await?;
        ids.extend(crate::db::api_keys::revoked_since(&db.pool, since).await?);
        self.insert(ids.iter().map(String::as_str));
        Ok(ids.len())
    }

    /// Sessions stopped (ended, revoked, expired): their tokens are refused from the
    /// next request on, here at once and, on PostgreSQL, on every instance.
    pub async fn stopped(&self, db: &Db, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        self.insert(ids.iter().map(String::as_str));
        if let Err(e) = announce(db, ids).await {
            // The other instances' 30 s catch-up still learns it from the table.
            tracing::warn!(error = %e, "could not announce stopped sessions");
        }
    }
}

/// Tells the other instances (PostgreSQL only) that these sessions stopped.
pub async fn announce(db: &Db, ids: &[String]) -> Result<(), sqlx::Error> {
    if db.dialect != Dialect::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut payload = String::new();
    for id in ids {
        if !payload.is_empty() && payload.len() + id.len() + 1 > MAX_PAYLOAD {
            db.notify(CHANNEL, &payload).await?;
            payload.clear();
        }
        if !payload.is_empty() {
            payload.push(',');
        }
        payload.push_str(id);
    }
    db.notify(CHANNEL, &payload).await
}

/// The revocation list's side of the instance's listener: other instances'
/// announcements go into the list, and after a gap (start-up, a dropped connection) it
/// catches up from the database.
pub struct Announcements {
    pub list: std::sync::Arc<RevocationList>,
    pub db: Db,
}

impl Subscriber for Announcements {
    fn notified(&self, payload: &str) {
        self.list.insert(payload.split(','));
    }

    fn missed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {
            if let Err(e) = self.list.catch_up(&self.db).await {
                tracing::warn!(error = %e, "revocation catch-up query failed");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_window() {
        let list = RevocationList::new(Duration::from_millis(30));
        list.insert(["sess_a", "sess_b"]);
        assert!(list.contains("sess_a") && list.contains("sess_b") && !list.contains("sess_c"));
        list.prune();
        assert_eq!(list.len(), 2);
        std::thread::sleep(Duration::from_millis(40));
        list.prune();
        assert!(list.is_empty());
    }
}
