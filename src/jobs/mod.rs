//! Background work that runs beside the server on every instance.

pub mod housekeeping;
pub mod mailer;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::db::{Db, Dialect};

/// A worker's `NOTIFY` channel and how often it looks for work when nothing woke it.
pub struct Channel {
    pub name: &'static str,
    pub poll_postgres: Duration,
    pub poll_sqlite: Duration,
}

/// How a worker learns that there is work. On PostgreSQL a `NOTIFY` on its channel,
/// sent in the transaction that queues the work, wakes every instance's worker as it
/// commits, and a slow poll catches the retries that come due; SQLite has no
/// notifications across processes, and the worker polls more often.
pub struct Wake {
    /// Wakes the worker early (a `NOTIFY`, or the worker's own tasks freeing a slot).
    pub notify: Arc<Notify>,
    poll: Duration,
    /// The listener this instance's workers share, stopped when the last one ends.
    _listener: Option<Arc<AbortOnDrop>>,
}

impl Wake {
    /// One `Wake` per channel, in order. On PostgreSQL one listener connection (outside
    /// the pool) serves them all.
    pub fn for_channels<const N: usize>(db: &Db, channels: [Channel; N]) -> [Wake; N] {
        let notifies: [Arc<Notify>; N] = std::array::from_fn(|_| Arc::new(Notify::new()));
        let listener = (db.dialect == Dialect::Postgres).then(|| {
            let routes = channels.iter().map(|c| c.name).zip(notifies.iter().cloned()).collect();
            Arc::new(listen(db.url(), routes))
        });
        let mut notifies = notifies.into_iter();
        channels.map(|channel| Wake {
            notify: notifies.next().expect("one per channel"),
            poll: match db.dialect {
                Dialect::Postgres => channel.poll_postgres,
                Dialect::Sqlite => channel.poll_sqlite,
            },
            _listener: listener.clone(),
        })
    }

    /// Returns when woken, or when the poll interval has passed.
    pub async fn wait(&self) {
        tokio::select! {
            _ = tokio::time::sleep(self.poll) => {}
            _ = self.notify.notified() => {}
        }
    }
}

/// Aborts the listener task when the last [`Wake`] holding it drops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes a channel's worker whenever a `NOTIFY` on it commits (on any instance),
/// reconnecting when the connection drops; the polls cover the gap, and a reconnection
/// wakes every worker (what was sent meanwhile may be lost).
fn listen(url: &str, routes: Vec<(&'static str, Arc<Notify>)>) -> AbortOnDrop {
    let url = url.to_owned();
    AbortOnDrop(tokio::spawn(async move {
        let channels: Vec<&str> = routes.iter().map(|(name, _)| *name).collect();
        loop {
            match PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                    Ok(()) => loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => routes
                                .iter()
                                .filter(|(name, _)| *name == notification.channel())
                                .for_each(|(_, notify)| notify.notify_one()),
                            Ok(None) => routes.iter().for_each(|(_, notify)| notify.notify_one()),
                            Err(e) => {
                                tracing::warn!(error = %e, "the workers' listener failed; reconnecting");
                                break;
                            }
                        }
                    },
                    Err(e) => tracing::warn!(error = %e, "LISTEN for the workers failed; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, "the workers' listener cannot connect; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}
