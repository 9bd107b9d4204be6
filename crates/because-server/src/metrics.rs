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
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: Mutex::default(),
            database: Mutex::default(),
            unknown_items: Default::default(),
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
