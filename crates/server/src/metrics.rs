//! The server's counters and the Prometheus text exposition of `/metrics`:
//! appends, events appended, conflicts, requests and their latency per
//! route, subscribers, and (computed at scrape time) the head position and
//! each projection's lag. Hand-written: a few atomics and one histogram
//! type need no metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&mut self.counts) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    appends: AtomicU64,
    events_appended: AtomicU64,
    conflicts: AtomicU64,
    subscribers: AtomicI64,
    subscribers_dropped: AtomicU64,
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

/// Decrements the subscriber gauge when a subscription ends, however it
/// ends.
pub struct SubscriberGuard<'a>(&'a Metrics);

impl Drop for SubscriberGuard<'_> {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// One append that wrote `events` events.
    pub fn appended(&self, events: usize) {
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.events_appended
            .fetch_add(events as u64, Ordering::Relaxed);
    }

    /// One append or command refused for a version conflict.
    pub fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// A subscriber joined; it leaves when the guard drops.
    pub fn subscriber(&self) -> SubscriberGuard<'_> {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self)
    }

    /// A subscriber was dropped for not keeping up.
    pub fn subscriber_dropped(&self) {
        self.subscribers_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// One request answered.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            latency
                .entry((method.to_owned(), route.to_owned()))
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    /// The exposition, with the gauges computed by the caller.
    pub fn render(&self, head: Option<u64>, lags: &[(&str, u64)]) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "logbook_appends_total",
            "Appends accepted (idempotent retries excluded).",
            self.appends.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "logbook_events_appended_total",
            "Events written by appends.",
            self.events_appended.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "logbook_conflicts_total",
            "Appends and commands refused for a wrong expected version.",
            self.conflicts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "logbook_subscribers_dropped_total",
            "Subscribers dropped because they did not keep up.",
            self.subscribers_dropped.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP logbook_subscribers Open server-sent-event subscriptions.\n# TYPE logbook_subscribers gauge\nlogbook_subscribers {}",
            self.subscribers.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP logbook_head_position Position of the last event of the global log.\n# TYPE logbook_head_position gauge\nlogbook_head_position {}",
            head.unwrap_or(0)
        );
        let _ = writeln!(
            out,
            "# HELP logbook_projection_lag Positions between a projection's checkpoint and the head.\n# TYPE logbook_projection_lag gauge"
        );
        for (name, lag) in lags {
            let _ = writeln!(
                out,
                "logbook_projection_lag{{projection=\"{}\"}} {lag}",
                escape(name)
            );
        }
        let _ = writeln!(
            out,
            "# HELP logbook_http_requests_total HTTP requests answered.\n# TYPE logbook_http_requests_total counter"
        );
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "logbook_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP logbook_http_request_duration_seconds Time to answer a request (a subscription: to start streaming).\n# TYPE logbook_http_request_duration_seconds histogram"
        );
        if let Ok(latency) = self.latency.lock() {
            for ((method, route), histogram) in latency.iter() {
                let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
                for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                    let _ = writeln!(
                        out,
                        "logbook_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "logbook_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\nlogbook_http_request_duration_seconds_sum{{{labels}}} {}\nlogbook_http_request_duration_seconds_count{{{labels}}} {}",
                    histogram.count, histogram.sum, histogram.count
                );
            }
        }
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_and_buckets_what_happened() {
        let metrics = Metrics::default();
        metrics.appended(3);
        metrics.conflict();
        metrics.request(
            "POST",
            "/api/v1/streams/{stream}",
            201,
            Duration::from_millis(3),
        );
        let text = metrics.render(Some(3), &[("ships-by-port", 2)]);
        assert!(text.contains("logbook_appends_total 1\n"), "{text}");
        assert!(text.contains("logbook_events_appended_total 3\n"));
        assert!(text.contains("logbook_conflicts_total 1\n"));
        assert!(text.contains("logbook_projection_lag{projection=\"ships-by-port\"} 2\n"));
        assert!(text.contains(
            "logbook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/streams/{stream}\",le=\"0.0025\"} 0\n"
        ));
        assert!(text.contains(
            "logbook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/streams/{stream}\",le=\"0.005\"} 1\n"
        ));
    }
}
