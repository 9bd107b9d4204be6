//! Prometheus metrics: requests and latency by route and status class,
//! the model served, and the events stored.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

#[derive(Default)]
struct Route {
    /// Requests by status class (`2xx`, `4xx`, `5xx`).
    by_status: BTreeMap<String, u64>,
    /// Cumulative counts per bucket, and the sum and count of latencies.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters shared by every request.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
}

impl Metrics {
    /// Records one request.
    pub fn record(&self, route: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(route.to_string()).or_default();
        *r.by_status
            .entry(format!("{}xx", status / 100))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (b, &le) in r.buckets.iter_mut().zip(&BUCKETS) {
            if secs <= le {
                *b += 1;
            }
        }
        r.sum += secs;
        r.count += 1;
    }

    /// The exposition text, with the model and the events stored.
    pub fn render(&self, model: &str, events_stored: Option<u64>) -> String {
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
            for (le, n) in BUCKETS.iter().zip(&r.buckets) {
                let _ = writeln!(
                    out,
                    "because_request_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "because_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "because_request_seconds_sum{{route=\"{route}\"}} {}",
                r.sum
            );
            let _ = writeln!(
                out,
                "because_request_seconds_count{{route=\"{route}\"}} {}",
                r.count
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
        out
    }
}
