//! Background work that runs beside the server on every instance.

pub mod housekeeping;
pub mod mailer;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::db::{Db, Dialect};

/// How a worker learns that there is work. On PostgreSQL a `NOTIFY` on its channel,
/// sent in the transaction that queues the work, wakes every instance's worker as it
/// commits, and a slow poll catches the retries that come due; SQLite has no
/// notifications across processes, and the worker polls more often.
pub(crate) struct Wake {
    /// Wakes the worker early (a `NOTIFY`, or the worker's own tasks freeing a slot).
    pub notify: Arc<Notify>,
    poll: Duration,
    _listener: Option<AbortOnDrop>,
}

impl Wake {
    pub fn new(db: &Db, channel: &'static str, poll_postgres: Duration, poll_sqlite: Duration) -> Self {
        let notify = Arc::new(Notify::new());
        let (poll, listener) = match db.dialect {
            Dialect::Postgres => (poll_postgres, Some(listen(db.url(), channel, notify.clone()))),
            Dialect::Sqlite => (poll_sqlite, None),
        };
        Self {
            notify,
            poll,
            _listener: listener,
        }
    }

    /// Returns when woken, or when the poll interval has passed.
    pub async fn wait(&self) {
        tokio::select! {
            _ = tokio::time::sleep(self.poll) => {}
            _ = self.notify.notified() => {}
        }
    }
}

/// Aborts the listener task when the worker's [`Wake`] drops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes the worker whenever a `NOTIFY` on `channel` commits (on any instance),
/// reconnecting when the connection drops; the poll covers the gap, and a reconnection
/// wakes the worker too (what was sent meanwhile may be lost). The listener holds one
/// connection of its own, outside the pool.
fn listen(url: &str, channel: &'static str, wake: Arc<Notify>) -> AbortOnDrop {
    let url = url.to_owned();
    AbortOnDrop(tokio::spawn(async move {
        loop {
            match PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen(channel).await {
                    Ok(()) => loop {
                        match listener.try_recv().await {
                            Ok(_) => wake.notify_one(),
                            Err(e) => {
                                tracing::warn!(error = %e, channel, "listener failed; reconnecting");
                                break;
                            }
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, channel, "LISTEN failed; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, channel, "listener cannot connect; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}
