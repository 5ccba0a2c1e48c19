//! Background work that runs beside the server on every instance.

pub mod housekeeping;
pub mod mailer;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::db::listener::Listener;
use crate::db::{Db, Dialect};

/// A worker's `NOTIFY` channel and how often it looks for work when nothing woke it.
pub struct Channel {
    pub name: &'static str,
    pub poll_postgres: Duration,
    pub poll_sqlite: Duration,
}

/// How a worker learns that there is work. On PostgreSQL a `NOTIFY` on its channel,
/// sent in the transaction that queues the work, wakes every instance's worker as it
/// commits (through the instance's one [`Listener`]), and a slow poll catches the retries
/// that come due; SQLite has no notifications across processes, and the worker polls
/// more often.
pub struct Wake {
    /// Wakes the worker early (a `NOTIFY`, or the worker's own tasks freeing a slot).
    pub notify: Arc<Notify>,
    poll: Duration,
}

impl Wake {
    /// The worker's wake-up, its channel followed by `listener` (which runs on PostgreSQL
    /// only).
    pub fn new(db: &Db, channel: Channel, listener: &mut Listener) -> Self {
        let notify = Arc::new(Notify::new());
        listener.subscribe(channel.name, notify.clone());
        Self {
            notify,
            poll: match db.dialect {
                Dialect::Postgres => channel.poll_postgres,
                Dialect::Sqlite => channel.poll_sqlite,
            },
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
