//! Prometheus metrics: requests and latency by route and status class,
//! the model served, the events stored and the event database's latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// A latency histogram: cumulative counts per bucket, sum and count.
#[derive(Default)]
pub struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        for (b, &le) in self.buckets.iter_mut().zip(&BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    /// Writes the histogram's lines for `name{label}`.
    fn write(&self, out: &mut String, name: &str, label: &str) {
        for (le, n) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{label},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{label},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{label}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{label}}} {}", self.count);
    }
}

#[derive(Default)]
struct Route {
    /// Requests by status class (`2xx`, `4xx`, `5xx`).
    by_status: BTreeMap<String, u64>,
    latency: Histogram,
}

/// Counters shared by every request.
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
    /// The event database's latency by operation.
    database: Mutex<BTreeMap<&'static str, Histogram>>,
    unknown_items: std::sync::atomic::AtomicU64,
    /// Requests refused a key, by reason (`missing`, `invalid`, ...).
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests let in, by the name of the key they gave.
    by_key: Mutex<BTreeMap<String, u64>>,
    /// Key files read again: (read, refused).
    key_reloads: Mutex<(u64, u64)>,
    rate_limited: std::sync::atomic::AtomicU64,
    /// Cross-origin requests: (allowed, refused).
    cors: Mutex<(u64, u64)>,
    database_unavailable: std::sync::atomic::AtomicU64,
    degraded: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: Mutex::default(),
            database: Mutex::default(),
            unknown_items: Default::default(),
            auth_failures: Mutex::default(),
            by_key: Mutex::default(),
            key_reloads: Mutex::default(),
            rate_limited: Default::default(),
            cors: Mutex::default(),
            database_unavailable: Default::default(),
            degraded: Default::default(),
            started: std::time::Instant::now(),
        }
    }
}

/// One route's requests since the server started.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RouteStats {
    /// The route, as the router matched it (`/v1/recommend`).
    pub route: String,
    /// Requests answered.
    pub requests: u64,
    /// Of which answered 4xx (the client's mistake).
    pub client_errors: u64,
    /// Of which answered 5xx.
    pub server_errors: u64,
    /// Mean latency in milliseconds.
    pub mean_ms: f64,
    /// The latency bucket (upper bound, milliseconds) that holds the 95th
    /// percentile; `null` when it is above the largest bucket (1 s).
    pub p95_ms: Option<f64>,
}

/// Counts one outcome of two: the first when `yes`.
fn tally(pair: &Mutex<(u64, u64)>, yes: bool) {
    let mut p = pair.lock().unwrap_or_else(|e| e.into_inner());
    if yes {
        p.0 += 1;
    } else {
        p.1 += 1;
    }
}

impl Histogram {
    /// The upper bound of the bucket holding quantile `q`, in seconds.
    fn quantile_bound(&self, q: f64) -> Option<f64> {
        let want = (q * self.count as f64).ceil() as u64;
        BUCKETS
            .iter()
            .zip(&self.buckets)
            .find(|&(_, &n)| n >= want.max(1))
            .map(|(&le, _)| le)
    }
}

impl Metrics {
    /// Counts events received on items the model does not know.
    pub fn unknown_items(&self, n: u64) {
        self.unknown_items
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a request refused for its key.
    pub fn auth_failure(&self, reason: &'static str) {
        *self
            .auth_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Counts a request let in by the key named `name`.
    pub fn key_used(&self, name: &str) {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        match by_key.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                by_key.insert(name.to_string(), 1);
            }
        }
    }

    /// Counts the key files read again (`ok`) or refused.
    pub fn keys_reloaded(&self, ok: bool) {
        tally(&self.key_reloads, ok);
    }

    /// Counts a request answered 429.
    pub fn rate_limited(&self) {
        self.rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a cross-origin request, allowed or not.
    pub fn cors(&self, allowed: bool) {
        tally(&self.cors, allowed);
    }

    /// Counts a call the event database could not answer.
    pub fn database_unavailable(&self) {
        self.database_unavailable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts an answer made without the user's stored events.
    pub fn degraded(&self) {
        self.degraded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records one operation of the event database.
    pub fn record_database(&self, operation: &'static str, took: Duration) {
        let mut ops = self.database.lock().unwrap_or_else(|e| e.into_inner());
        ops.entry(operation).or_default().record(took);
    }

    /// Records one request.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(route.to_string()).or_default();
        *r.by_status
            .entry(format!("{}xx", status / 100))
            .or_default() += 1;
        r.latency.record(took);
    }

    /// Seconds since the server started.
    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Requests and latency per route since the server started.
    pub fn routes(&self) -> Vec<RouteStats> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes
            .iter()
            .map(|(route, r)| {
                let status = |s: &str| r.by_status.get(s).copied().unwrap_or(0);
                RouteStats {
                    route: route.clone(),
                    requests: r.latency.count,
                    client_errors: status("4xx"),
                    server_errors: status("5xx"),
                    mean_ms: if r.latency.count == 0 {
                        0.0
                    } else {
                        1000.0 * r.latency.sum / r.latency.count as f64
                    },
                    p95_ms: r.latency.quantile_bound(0.95).map(|s| s * 1000.0),
                }
            })
            .collect()
    }

    /// The exposition text, with the model and the events stored.
    pub fn render(
        &self,
        model: &str,
        events_stored: Option<u64>,
        store: &because_events::EventStore,
    ) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP because_requests_total Requests by route and status class."
        );
        let _ = writeln!(out, "# TYPE because_requests_total counter");
        for (route, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "because_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP because_request_seconds Request latency by route."
        );
        let _ = writeln!(out, "# TYPE because_request_seconds histogram");
        for (route, r) in routes.iter() {
            r.latency.write(
                &mut out,
                "because_request_seconds",
                &format!("route=\"{route}\""),
            );
        }
        let _ = writeln!(out, "# HELP because_model_info The model served.");
        let _ = writeln!(out, "# TYPE because_model_info gauge");
        let model = model.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(out, "because_model_info{{model=\"{model}\"}} 1");
        if let Some(n) = events_stored {
            let _ = writeln!(out, "# HELP because_events_stored Feedback events stored.");
            let _ = writeln!(out, "# TYPE because_events_stored gauge");
            let _ = writeln!(out, "because_events_stored {n}");
        }
        let _ = writeln!(
            out,
            "# HELP because_events_unknown_items_total Events received on items the model does not know (stored; they enter at the next retrain)."
        );
        let _ = writeln!(out, "# TYPE because_events_unknown_items_total counter");
        let _ = writeln!(
            out,
            "because_events_unknown_items_total {}",
            self.unknown_items
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, lines: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, n) in lines {
                let _ = writeln!(out, "{name}{labels} {n}");
            }
        };
        let failures = self.auth_failures.lock().unwrap_or_else(|e| e.into_inner());
        counter(
            "because_auth_failures_total",
            "Requests refused for their API key, by reason.",
            failures
                .iter()
                .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n))
                .collect(),
        );
        let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        counter(
            "because_key_requests_total",
            "Requests let in by an API key, by the key's name.",
            by_key
                .iter()
                .map(|(k, n)| (format!("{{key=\"{k}\"}}"), *n))
                .collect(),
        );
        let reloads = *self.key_reloads.lock().unwrap_or_else(|e| e.into_inner());
        counter(
            "because_key_reloads_total",
            "Key files read again after they changed, by result (a refused file keeps the keys in use).",
            vec![
                ("{result=\"ok\"}".into(), reloads.0),
                ("{result=\"refused\"}".into(), reloads.1),
            ],
        );
        counter(
            "because_rate_limited_total",
            "Requests answered 429: the client was over its rate limit.",
            vec![(String::new(), load(&self.rate_limited))],
        );
        let cors = *self.cors.lock().unwrap_or_else(|e| e.into_inner());
        counter(
            "because_cors_requests_total",
            "Cross-origin requests, by whether their origin is allowed.",
            vec![
                ("{allowed=\"true\"}".into(), cors.0),
                ("{allowed=\"false\"}".into(), cors.1),
            ],
        );
        counter(
            "because_database_unavailable_total",
            "Requests the event database could not serve (writes answered 503).",
            vec![(String::new(), load(&self.database_unavailable))],
        );
        counter(
            "because_degraded_total",
            "Answers made without the user's stored events because the event database was unavailable.",
            vec![(String::new(), load(&self.degraded))],
        );
        let backend = store.database().backend();
        let _ = writeln!(
            out,
            "# HELP because_database_seconds Event database latency by operation."
        );
        let _ = writeln!(out, "# TYPE because_database_seconds histogram");
        let ops = self.database.lock().unwrap_or_else(|e| e.into_inner());
        for (op, h) in ops.iter() {
            h.write(
                &mut out,
                "because_database_seconds",
                &format!("backend=\"{backend}\",operation=\"{op}\""),
            );
        }
        out
    }
}
