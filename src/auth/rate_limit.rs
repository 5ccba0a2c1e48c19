//! Rate limits, keyed by user id when signed in and by client IP when signed out.
//!
//! Both backends run the same GCRA: `limit` requests at once, refilled one by one over
//! the window. In memory (governor) the quota holds per instance; with `REDIS_URL` one
//! Lua script does the whole check-and-update atomically in Redis, so the quota holds
//! across every instance. If Redis stops answering, requests are let through
//! (fail-open) and a warning is logged: the limiter protects capacity, and an outage of
//! it should not also take sign-in down.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RateLimit;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The numbers behind the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is whole again.
    pub reset_secs: u64,
    /// `Some(seconds)` when this request is refused.
    pub retry_after_secs: Option<u64>,
}

enum Store {
    Memory {
        limiter: Keyed,
        clock: DefaultClock,
    },
    Redis {
        conn: ConnectionManager,
        prefix: String,
        script: redis::Script,
        last_warning: AtomicI64,
    },
}

pub struct RateLimiterSet {
    store: Store,
    limit: u32,
    period: Duration,
}

/// GCRA in one step. KEYS[1]: the key; ARGV[1]: ms per request; ARGV[2]: the burst.
/// Returns {allowed (0/1), remaining, retry_after_ms, reset_ms}. Time is Redis's own,
/// so instances with skewed clocks still share one quota.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = period * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + period
local allow_at = new_tat - tau
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now + tau - new_tat) / period), 0, new_tat - now}
";

#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL: {0}")]
pub struct RedisUnavailable(String);

/// Connects to Redis (for the rate limiter and the sign-in throttle). Fails within
/// seconds, never hangs, when Redis cannot be reached at start-up.
pub async fn connect_redis(url: &str) -> Result<ConnectionManager, RedisUnavailable> {
    let client = redis::Client::open(url).map_err(|e| RedisUnavailable(e.to_string()))?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_millis(500))
        .set_number_of_retries(2);
    tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(|_| RedisUnavailable(format!("no answer from {url} within 5 s")))?
    .map_err(|e| RedisUnavailable(format!("cannot connect to {url}: {e}")))
}

impl RateLimiterSet {
    /// An in-memory limiter; `None` when rate limiting is off.
    pub fn in_memory(config: RateLimit) -> Option<Self> {
        let (limit, period) = Self::shape(config)?;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(NonZeroU32::new(limit)?);
        Some(Self {
            store: Store::Memory {
                limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                clock: DefaultClock::default(),
            },
            limit,
            period,
        })
    }

    /// A limiter shared through Redis, its keys under `prefix`.
    pub fn redis(config: RateLimit, conn: ConnectionManager, prefix: &str) -> Option<Self> {
        let (limit, period) = Self::shape(config)?;
        Some(Self {
            store: Store::Redis {
                conn,
                prefix: prefix.to_owned(),
                script: redis::Script::new(GCRA_SCRIPT),
                last_warning: AtomicI64::new(0),
            },
            limit,
            period,
        })
    }

    fn shape(config: RateLimit) -> Option<(u32, Duration)> {
        let RateLimit::PerWindow { requests, window } = config else {
            return None;
        };
        Some((requests, window / requests))
    }

    pub async fn check(&self, key: &str) -> RateLimitStatus {
        match &self.store {
            Store::Memory { limiter, clock } => match limiter.check_key(&key.to_owned()) {
                Ok(snapshot) => self.allowed(snapshot.remaining_burst_capacity()),
                Err(not_until) => self.refused(not_until.wait_time_from(clock.now())),
            },
            Store::Redis {
                conn,
                prefix,
                script,
                last_warning,
            } => {
                let period_ms = (self.period.as_millis() as u64).max(1);
                let result: redis::RedisResult<(i64, i64, i64, i64)> = script
                    .key(format!("{prefix}rl:{key}"))
                    .arg(period_ms)
                    .arg(self.limit)
                    .invoke_async(&mut conn.clone())
                    .await;
                match result {
                    Ok((1, remaining, _, _)) => self.allowed(remaining.max(0) as u32),
                    Ok((_, _, retry_ms, _)) => self.refused(Duration::from_millis(retry_ms.max(0) as u64)),
                    Err(e) => {
                        let now = crate::clock::now_secs();
                        if now - last_warning.swap(now, Ordering::Relaxed) >= 10 {
                            tracing::warn!(error = %e, "Redis rate limiter unavailable: letting requests through (fail-open)");
                        }
                        self.allowed(self.limit)
                    }
                }
            }
        }
    }

    fn allowed(&self, remaining: u32) -> RateLimitStatus {
        let remaining = remaining.min(self.limit);
        RateLimitStatus {
            limit: self.limit,
            remaining,
            reset_secs: ceil_secs(self.period * (self.limit - remaining)),
            retry_after_secs: None,
        }
    }

    fn refused(&self, wait: Duration) -> RateLimitStatus {
        RateLimitStatus {
            limit: self.limit,
            remaining: 0,
            reset_secs: ceil_secs(self.period * self.limit),
            retry_after_secs: Some(ceil_secs(wait).max(1)),
        }
    }

    /// Forgets in-memory keys whose quota is whole again (Redis keys expire by themselves).
    pub fn sweep(&self) {
        if let Store::Memory { limiter, .. } = &self.store {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_the_quota_then_refuses_per_key() {
        let limits = RateLimiterSet::in_memory(RateLimit::PerWindow {
            requests: 3,
            window: Duration::from_secs(30),
        })
        .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(limits.check("user_a").await);
        }
        assert_eq!(statuses.iter().map(|s| s.remaining).collect::<Vec<_>>(), [2, 1, 0]);
        assert!(statuses.iter().all(|s| s.retry_after_secs.is_none() && s.limit == 3));
        let wait = limits.check("user_a").await.retry_after_secs.unwrap();
        assert!((9..=10).contains(&wait), "{wait}");
        assert!(
            limits.check("user_b").await.retry_after_secs.is_none(),
            "keys are independent"
        );
        assert!(RateLimiterSet::in_memory(RateLimit::Off).is_none());
    }

    #[tokio::test]
    async fn unreachable_redis_fails_fast_at_start_up() {
        let started = std::time::Instant::now();
        let err = connect_redis("redis://127.0.0.1:1/")
            .await
            .err()
            .expect("nothing listens on port 1");
        assert!(err.to_string().starts_with("REDIS_URL:"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
