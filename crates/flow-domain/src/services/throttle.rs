//! Login rate limiting: failed attempts counted per username and per client address in a
//! sliding window; over the limit, logins answer 429 with `Retry-After`.

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Limits of the throttle.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Window in which failures are counted.
    pub window: Duration,
    /// Failures allowed per username within the window.
    pub per_user: usize,
    /// Failures allowed per client address within the window.
    pub per_address: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { window: Duration::minutes(5), per_user: 5, per_address: 20 }
    }
}

/// Keys above which expired entries are swept, bounding memory.
const SWEEP_ABOVE: usize = 10_000;

/// In-memory failure counters.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl LoginThrottle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Self { config, failures: Mutex::default() }
    }

    fn keys(username: &str, address: Option<&str>) -> [(String, bool); 2] {
        [
            (format!("u:{}", username.to_lowercase()), true),
            (format!("a:{}", address.unwrap_or("")), address.is_some()),
        ]
    }

    /// Seconds to wait when either limit is reached, else `None`.
    pub fn retry_after(&self, username: &str, address: Option<&str>, now: DateTime<Utc>) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, active) in Self::keys(username, address) {
            if !active {
                continue;
            }
            let limit = if key.starts_with("u:") { self.config.per_user } else { self.config.per_address };
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| *t <= now - self.config.window) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times.front().copied().unwrap_or(now);
                    let secs = (oldest + self.config.window - now).num_seconds().max(1) as u64;
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        wait
    }

    /// Counts one failed attempt.
    pub fn record_failure(&self, username: &str, address: Option<&str>, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > SWEEP_ABOVE {
            let horizon = now - self.config.window;
            map.retain(|_, times| times.back().is_some_and(|t| *t > horizon));
        }
        for (key, active) in Self::keys(username, address) {
            if active {
                map.entry(key).or_default().push_back(now);
            }
        }
    }

    /// Forgets the username's failures after a successful login.
    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_user_and_per_address() {
        let t =
            LoginThrottle::new(ThrottleConfig { window: Duration::seconds(60), per_user: 2, per_address: 3 });
        let now = Utc::now();
        t.record_failure("a", Some("ip"), now);
        assert_eq!(t.retry_after("a", Some("ip"), now), None);
        t.record_failure("a", Some("ip"), now);
        assert!(t.retry_after("a", Some("other"), now).is_some());
        t.record_failure("b", Some("ip"), now);
        assert!(t.retry_after("c", Some("ip"), now).is_some(), "address limit");
        assert_eq!(t.retry_after("c", Some("ip"), now + Duration::seconds(61)), None, "window slides");
        t.record_success("a");
        assert_eq!(t.retry_after("a", None, now), None);
    }
}
