//! Per-key rate limits (governor's GCRA, in memory): keyed by user id when signed in,
//! by client IP when signed out.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

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

pub struct RateLimiterSet {
    limiter: Keyed,
    clock: DefaultClock,
    limit: u32,
    period: Duration,
}

impl RateLimiterSet {
    /// `None` when rate limiting is off.
    pub fn new(config: RateLimit) -> Option<Self> {
        let RateLimit::PerWindow { requests, window } = config else {
            return None;
        };
        let burst = NonZeroU32::new(requests)?;
        // `requests` at once, refilled one by one over `window`.
        let period = window / requests;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            limit: requests,
            period,
        })
    }

    pub fn check(&self, key: &str) -> RateLimitStatus {
        let key = key.to_owned();
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                RateLimitStatus {
                    limit: self.limit,
                    remaining,
                    reset_secs: ceil_secs(self.period * (self.limit - remaining)),
                    retry_after_secs: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                RateLimitStatus {
                    limit: self.limit,
                    remaining: 0,
                    reset_secs: ceil_secs(self.period * self.limit),
                    retry_after_secs: Some(ceil_secs(wait).max(1)),
                }
            }
        }
    }

    /// Forgets keys whose quota is whole again; bounds memory under many distinct keys.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_quota_then_refuses_per_key() {
        let limits = RateLimiterSet::new(RateLimit::PerWindow {
            requests: 3,
            window: Duration::from_secs(30),
        })
        .unwrap();
        let statuses: Vec<_> = (0..3).map(|_| limits.check("user_a")).collect();
        assert_eq!(statuses.iter().map(|s| s.remaining).collect::<Vec<_>>(), [2, 1, 0]);
        assert!(statuses.iter().all(|s| s.retry_after_secs.is_none() && s.limit == 3));
        let refused = limits.check("user_a");
        let wait = refused.retry_after_secs.unwrap();
        assert!((9..=10).contains(&wait), "{wait}");
        assert!(
            limits.check("user_b").retry_after_secs.is_none(),
            "keys are independent"
        );
        assert!(RateLimiterSet::new(RateLimit::Off).is_none());
    }
}
