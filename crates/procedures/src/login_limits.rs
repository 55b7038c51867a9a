//! Failed sign-ins counted per email and per client address, so passwords cannot be guessed
//! at speed from one place or against one account.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked keys, expired windows are swept on the next failure.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Email(String),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Allows `per_minute` failed sign-ins per email and per client address in a fixed one-minute
/// window; past that every attempt, right password or not, is refused until the window ends.
/// Successful sign-ins are never counted, so real users are not locked out by their own use.
#[derive(Debug)]
pub struct LoginLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<Key, Window>>,
}

impl LoginLimiter {
    /// `per_minute` = 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
        [
            Some(Key::Email(email.to_ascii_lowercase())),
            address.map(Key::Address),
        ]
        .into_iter()
        .flatten()
    }

    /// `Err(wait)` when the email or the address has used up its failures for now.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let wait = Self::keys(email, address)
            .filter_map(|key| windows.get(&key).copied())
            .filter(|w| w.failures >= self.per_minute && now < w.started + WINDOW)
            .map(|w| w.started + WINDOW - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed sign-in against the email and the address.
    pub fn failed(&self, email: &str, address: Option<IpAddr>) {
        if self.per_minute == 0 {
            return;
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now < w.started + WINDOW);
        }
        for key in Self::keys(email, address) {
            let window = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now >= window.started + WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_per_email_and_per_address() {
        let limiter = LoginLimiter::new(3);
        let here = Some(IpAddr::from([10, 0, 0, 1]));
        let there = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert!(limiter.check("ann@example.com", here).is_ok());
            limiter.failed("ann@example.com", here);
        }
        // The email is spent wherever the attempt comes from, and case does not matter.
        assert!(limiter.check("ANN@example.com", there).is_err());
        // The address is spent whatever email it tries.
        let wait = limiter.check("bob@example.com", here).unwrap_err();
        assert!(wait <= WINDOW && wait > Duration::from_secs(50), "{wait:?}");
        assert!(limiter.check("bob@example.com", there).is_ok());
    }

    #[test]
    fn zero_is_off() {
        let limiter = LoginLimiter::new(0);
        for _ in 0..100 {
            limiter.failed("ann@example.com", None);
        }
        assert!(limiter.check("ann@example.com", None).is_ok());
    }
}
