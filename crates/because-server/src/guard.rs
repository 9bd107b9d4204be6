//! Limits on who may call from where: a token bucket per client for rate
//! limiting, and the origins cross-origin (CORS) requests may come from.
//! The middleware that applies them is in `routes::ops`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second each client may make, with bursts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests a client may make at once after being idle.
    pub burst: f64,
}

impl RateLimit {
    /// `per_second` requests per second (positive, finite), bursts of
    /// `burst` (by default, one second's worth, at least 1).
    pub fn new(per_second: f64, burst: Option<f64>) -> Result<RateLimit, String> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!(
                "--rate-limit: {per_second} is not a positive number of requests per second"
            ));
        }
        let burst = burst.unwrap_or(per_second.max(1.0));
        if !(burst.is_finite() && burst >= 1.0) {
            return Err(format!(
                "--rate-burst: {burst} is not a number of requests of at least 1"
            ));
        }
        Ok(RateLimit { per_second, burst })
    }
}

/// Clients tracked at most; past it, idle clients (full buckets) are
/// forgotten.
const MAX_CLIENTS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client.
pub(crate) struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says how long until one is free.
    pub(crate) fn take(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(client) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let b = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }
}

/// The origins whose pages may call the API from a browser.
#[derive(Clone, Debug, PartialEq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// Origins such as `https://shop.example.com` (scheme, host and port,
    /// no path), or `*` for any.
    pub fn new(origins: &[String]) -> Result<Cors, String> {
        for o in origins {
            let ok = o == "*"
                || ((o.starts_with("http://") || o.starts_with("https://"))
                    && !o
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .contains('/')
                    && !o.ends_with("://"));
            if !ok {
                return Err(format!(
                    "--cors-origin {o:?}: give an origin such as https://shop.example.com (no path), or *"
                ));
            }
        }
        Ok(Cors {
            origins: origins.to_vec(),
        })
    }

    /// Whether a page from `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_hold_a_burst() {
        let l = Limiter::new(RateLimit::new(10.0, Some(3.0)).unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            l.take("a", t0).unwrap();
        }
        let wait = l.take("a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Another client has its own bucket.
        l.take("b", t0).unwrap();
        l.take("a", t0 + Duration::from_millis(100)).unwrap();
        assert!(l.take("a", t0 + Duration::from_millis(100)).is_err());
        // Idle for long: a full burst again, never more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            l.take("a", later).unwrap();
        }
        assert!(l.take("a", later).is_err());
        assert!(RateLimit::new(0.0, None).is_err());
        assert!(RateLimit::new(5.0, Some(0.5)).is_err());
        assert_eq!(RateLimit::new(0.5, None).unwrap().burst, 1.0);
    }

    #[test]
    fn origins_are_checked_when_set() {
        let c = Cors::new(&["https://shop.example.com".into()]).unwrap();
        assert!(c.allows("https://shop.example.com"));
        assert!(!c.allows("https://evil.example.com"));
        assert!(Cors::new(&["*".into()]).unwrap().allows("http://x"));
        for bad in ["shop.example.com", "https://x/y", "https://"] {
            assert!(Cors::new(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
