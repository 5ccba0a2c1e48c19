//! Throttling of failed sign-ins, per email and per client IP, in memory.
//!
//! Fixed windows: after `max_per_email` failures for one email (or `max_per_ip` from one
//! IP) within `window`, further attempts are refused until the window ends, whatever the
//! password. The answer is the same for unknown and known emails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept per map before stale ones are swept, bounding memory under a spray.
const SWEEP_AT: usize = 10_000;

struct Window {
    started: Instant,
    failures: u32,
}

pub struct SignInThrottle {
    window: Duration,
    max_per_email: u32,
    max_per_ip: u32,
    by_email: Mutex<HashMap<String, Window>>,
    by_ip: Mutex<HashMap<String, Window>>,
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
        }
    }

    /// `Err(retry_after)` when either key is over its limit.
    pub fn check(&self, email: &str, ip: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let email_wait = self.blocked_for(&self.by_email, email, self.max_per_email, now);
        let ip_wait = self.blocked_for(&self.by_ip, ip, self.max_per_ip, now);
        match email_wait.max(ip_wait) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, ip: &str) {
        let now = Instant::now();
        self.bump(&self.by_email, email, now);
        self.bump(&self.by_ip, ip, now);
    }

    /// A successful sign-in clears the email's count (not the IP's).
    pub fn record_success(&self, email: &str) {
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

    #[test]
    fn blocks_after_the_limit_per_email_and_per_ip() {
        let throttle = SignInThrottle::new(Duration::from_secs(60), 3, 5);
        for _ in 0..3 {
            assert!(throttle.check("a@x.com", "1.1.1.1").is_ok());
            throttle.record_failure("a@x.com", "1.1.1.1");
        }
        let wait = throttle.check("a@x.com", "9.9.9.9").unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        // Another email from the same IP still has room until the IP limit.
        assert!(throttle.check("b@x.com", "1.1.1.1").is_ok());
        throttle.record_failure("b@x.com", "1.1.1.1");
        throttle.record_failure("c@x.com", "1.1.1.1");
        assert!(throttle.check("d@x.com", "1.1.1.1").is_err());
        assert!(throttle.check("d@x.com", "2.2.2.2").is_ok());
    }

    #[test]
    fn windows_end_and_success_clears_the_email() {
        let throttle = SignInThrottle::new(Duration::from_millis(20), 1, 100);
        throttle.record_failure("a@x.com", "ip");
        assert!(throttle.check("a@x.com", "ip").is_err());
        throttle.record_success("a@x.com");
        assert!(throttle.check("a@x.com", "ip").is_ok());
        throttle.record_failure("a@x.com", "ip");
        std::thread::sleep(Duration::from_millis(30));
        assert!(throttle.check("a@x.com", "ip").is_ok());
    }
}
