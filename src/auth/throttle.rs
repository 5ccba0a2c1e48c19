//! Throttling of failed sign-ins, per email and per client IP.
//!
//! Fixed windows: after `max_per_email` failures for one email (or `max_per_ip` from one
//! IP) within `window`, further attempts are refused until the window ends, whatever the
//! password. The answer is the same for unknown and known emails.
//!
//! In memory the counts hold per instance. With `REDIS_URL` they live in Redis (one
//! counter key per email and per IP, expiring with its window), so two replicas allow
//! no more guesses than one, and a restart does not reset them. If Redis stops
//! answering, this instance's own counts take over (and a warning is logged) until it
//! answers again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Entries kept per map before stale ones are swept, bounding memory under a spray.
const SWEEP_AT: usize = 10_000;

struct Window {
    started: Instant,
    failures: u32,
}

/// The longest wait (ms) among KEYS whose count reached its limit; 0 when none has.
/// ARGV: the limit of each key, in order.
const CHECK_SCRIPT: &str = r"
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', key)
    if ttl > wait then wait = ttl end
  end
end
return wait
";

/// Counts a failure on every key; a key's window starts with its first failure.
/// ARGV[1]: the window in ms.
const FAILURE_SCRIPT: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return 0
";

struct RedisCounts {
    conn: ConnectionManager,
    prefix: String,
    check: redis::Script,
    failure: redis::Script,
    last_warning: AtomicI64,
}

impl RedisCounts {
    fn keys(&self, email: &str, ip: &str) -> [String; 2] {
        [self.email_key(email), format!("{}throttle:ip:{ip}", self.prefix)]
    }

    fn email_key(&self, email: &str) -> String {
        format!("{}throttle:email:{email}", self.prefix)
    }

    fn warn(&self, error: &redis::RedisError) {
        let now = crate::clock::now_secs();
        if now - self.last_warning.swap(now, Ordering::Relaxed) >= 10 {
            tracing::warn!(error = %error, "Redis sign-in throttle unavailable: counting on this instance only");
        }
    }
}

pub struct SignInThrottle {
    window: Duration,
    max_per_email: u32,
    max_per_ip: u32,
    by_email: Mutex<HashMap<String, Window>>,
    by_ip: Mutex<HashMap<String, Window>>,
    redis: Option<RedisCounts>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 5, 50)
    }
}

impl SignInThrottle {
    pub fn new(window: Duration, max_per_email: u32, max_per_ip: u32) -> Self {
        Self {
            window,
            max_per_email,
            max_per_ip,
            by_email: Mutex::default(),
            by_ip: Mutex::default(),
            redis: None,
        }
    }

    /// Keeps the counts in Redis (shared by every instance), under `prefix`.
    pub fn with_redis(mut self, conn: ConnectionManager, prefix: &str) -> Self {
        self.redis = Some(RedisCounts {
            conn,
            prefix: prefix.to_owned(),
            check: redis::Script::new(CHECK_SCRIPT),
            failure: redis::Script::new(FAILURE_SCRIPT),
            last_warning: AtomicI64::new(0),
        });
        self
    }

    /// `Err(retry_after)` when either key is over its limit.
    pub async fn check(&self, email: &str, ip: &str) -> Result<(), Duration> {
        if let Some(redis) = &self.redis {
            let result: redis::RedisResult<i64> = redis
                .check
                .key(&redis.keys(email, ip))
                .arg(self.max_per_email)
                .arg(self.max_per_ip)
                .invoke_async(&mut redis.conn.clone())
                .await;
            match result {
                Ok(0) => return Ok(()),
                Ok(wait_ms) => return Err(Duration::from_millis(wait_ms.max(1) as u64)),
                Err(e) => redis.warn(&e),
            }
        }
        let now = Instant::now();
        let email_wait = self.blocked_for(&self.by_email, email, self.max_per_email, now);
        let ip_wait = self.blocked_for(&self.by_ip, ip, self.max_per_ip, now);
        match email_wait.max(ip_wait) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub async fn record_failure(&self, email: &str, ip: &str) {
        if let Some(redis) = &self.redis {
            let result: redis::RedisResult<i64> = redis
                .failure
                .key(&redis.keys(email, ip))
                .arg(self.window.as_millis() as u64)
                .invoke_async(&mut redis.conn.clone())
                .await;
            match result {
                Ok(_) => return,
                Err(e) => redis.warn(&e),
            }
        }
        let now = Instant::now();
        self.bump(&self.by_email, email, now);
        self.bump(&self.by_ip, ip, now);
    }

    /// A successful sign-in clears the email's count (not the IP's).
    pub async fn record_success(&self, email: &str) {
        if let Some(redis) = &self.redis {
            let result: redis::RedisResult<i64> = redis::cmd("DEL")
                .arg(redis.email_key(email))
                .query_async(&mut redis.conn.clone())
                .await;
            if let Err(e) = result {
                redis.warn(&e);
            }
        }
        self.by_email.lock().expect("throttle lock").remove(email);
    }

    fn blocked_for(&self, map: &Mutex<HashMap<String, Window>>, key: &str, max: u32, now: Instant) -> Option<Duration> {
        let map = map.lock().expect("throttle lock");
        let entry = map.get(key)?;
        let ends = entry.started + self.window;
        (entry.failures >= max && ends > now).then(|| ends - now)
    }

    fn bump(&self, map: &Mutex<HashMap<String, Window>>, key: &str, now: Instant) {
        let mut map = map.lock().expect("throttle lock");
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, w| w.started + window > now);
        }
        let entry = map.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if entry.started + self.window <= now {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_after_the_limit_per_email_and_per_ip() {
        let throttle = SignInThrottle::new(Duration::from_secs(60), 3, 5);
        for _ in 0..3 {
            assert!(throttle.check("a@x.com", "1.1.1.1").await.is_ok());
            throttle.record_failure("a@x.com", "1.1.1.1").await;
        }
        let wait = throttle.check("a@x.com", "9.9.9.9").await.unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        // Another email from the same IP still has room until the IP limit.
        assert!(throttle.check("b@x.com", "1.1.1.1").await.is_ok());
        throttle.record_failure("b@x.com", "1.1.1.1").await;
        throttle.record_failure("c@x.com", "1.1.1.1").await;
        assert!(throttle.check("d@x.com", "1.1.1.1").await.is_err());
        assert!(throttle.check("d@x.com", "2.2.2.2").await.is_ok());
    }

    #[tokio::test]
    async fn windows_end_and_success_clears_the_email() {
        let throttle = SignInThrottle::new(Duration::from_millis(20), 1, 100);
        throttle.record_failure("a@x.com", "ip").await;
        assert!(throttle.check("a@x.com", "ip").await.is_err());
        throttle.record_success("a@x.com").await;
        assert!(throttle.check("a@x.com", "ip").await.is_ok());
        throttle.record_failure("a@x.com", "ip").await;
        std::thread::sleep(Duration::from_millis(30));
        assert!(throttle.check("a@x.com", "ip").await.is_ok());
    }
}
