//! `LISTEN` on PostgreSQL: one connection per instance (outside the pool) for every
//! channel the instance follows, each notification handed to its channel's
//! [`Subscriber`]. The workers' wake-ups (`jobs::Wake`) and the session revocations
//! (`auth::revocation`) share it, so an instance holds one listener connection, not one
//! per use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

/// What one channel's notifications do on this instance.
pub trait Subscriber: Send + Sync {
    /// A notification arrived on the channel, with its payload.
    fn notified(&self, payload: &str);

    /// Notifications may have been missed: the listener has just started listening, or
    /// its connection dropped (what was sent meanwhile is lost). Called before the next
    /// notification is read.
    fn missed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A worker's wake-up: a notification, or a gap in them, wakes it (it then looks at its
/// table, which holds what the notifications announced).
impl Subscriber for Notify {
    fn notified(&self, _: &str) {
        self.notify_one();
    }

    fn missed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.notify_one();
        Box::pin(std::future::ready(()))
    }
}

/// The channels this instance follows, with their subscribers; [`Listener::run`] listens.
#[derive(Default)]
pub struct Listener {
    routes: Vec<(&'static str, Arc<dyn Subscriber>)>,
}

impl Listener {
    pub fn subscribe(&mut self, channel: &'static str, subscriber: Arc<dyn Subscriber>) {
        self.routes.push((channel, subscriber));
    }

    /// Listens until the task is aborted, reconnecting a second after the connection
    /// fails; each (re)start and each dropped connection is reported to every subscriber
    /// as [`Subscriber::missed`].
    pub async fn run(self, url: String) {
        let channels: Vec<&str> = self.routes.iter().map(|(name, _)| *name).collect();
        loop {
            match PgListener::connect(&url).await {
                Ok(mut listener) => match listener.listen_all(channels.iter().copied()).await {
                    Ok(()) => {
                        tracing::info!(?channels, "listening");
                        self.missed().await;
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(notification)) => self
                                    .routes
                                    .iter()
                                    .filter(|(name, _)| *name == notification.channel())
                                    .for_each(|(_, subscriber)| subscriber.notified(notification.payload())),
                                // The connection dropped; the next receive re-makes it.
                                Ok(None) => self.missed().await,
                                Err(e) => {
                                    tracing::warn!(error = %e, "the listener failed; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
                },
                Err(e) => tracing::warn!(error = %e, "the listener cannot connect; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn missed(&self) {
        for (_, subscriber) in &self.routes {
            subscriber.missed().await;
        }
    }
}
