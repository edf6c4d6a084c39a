//! The process's Prometheus metrics, served at `GET /metrics`.
//!
//! Counters are counted where a fact becomes true once: a message when the
//! outbox relay has handed it to the bus (after its commit, so a batch that is
//! redone record by record counts nothing twice), a record when its consumer
//! commits its offset, a request when it is answered. A saga's start, end and
//! the latency of each of its steps are read off the progress it publishes on
//! `saga_events` as that is relayed. Gauges (consumer lag, outbox depth, parked
//! keys) are read when scraped, from the health board and the stores.
//!
//! Each [`Metrics`] has its own registry, so two systems in one process (the
//! scenario tests) never mix their counts.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::Value;

use crate::bus::OutgoingRecord;
use crate::health::HealthBoard;
use crate::store::EventStore;

/// Seconds from a saga's start: a step answered at once is milliseconds, one
/// that waits for a runner or the acceptance window is minutes.
const SAGA_STEP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// How many waiting keys of each status a scrape counts per store, at most.
const PARKED_KEYS_COUNTED: i64 = 10_000;

/// The saga progress types that end a saga, and the outcome each reports.
const SAGA_ENDS: [&str; 4] = ["saga.completed", "saga.compensated", "saga.failed", "saga.cancelled"];

/// Every metric of one running system. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    registry: Registry,
    published: IntCounterVec,
    dead_letters: IntCounterVec,
    sagas_started: IntCounterVec,
    sagas_ended: IntCounterVec,
    saga_step_seconds: HistogramVec,
    consumed: IntCounterVec,
    consumer_lag: IntGaugeVec,
    outbox_depth: IntGaugeVec,
    parked_keys: IntGaugeVec,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let family = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry.register(Box::new(family.clone())).expect("registered once");
            family
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let family = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge");
            registry.register(Box::new(family.clone())).expect("registered once");
            family
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let family = HistogramVec::new(opts, labels).expect("a valid histogram");
            registry.register(Box::new(family.clone())).expect("registered once");
            family
        };
        let families = Families {
            published: counter(
                "campusg_messages_published_total",
                "Messages the outbox relays handed to the bus, by topic and type.",
                &["topic", "type"],
            ),
            dead_letters: counter(
                "campusg_dead_letters_total",
                "Dead letters published, by the topic of the record they stand for.",
                &["original_topic"],
            ),
            sagas_started: counter(
                "campusg_sagas_started_total",
                "Sagas started, by type.",
                &["saga_type"],
            ),
            sagas_ended: counter(
                "campusg_sagas_ended_total",
                "Sagas ended, by type and outcome (completed, compensated, failed, cancelled).",
                &["saga_type", "outcome"],
            ),
            saga_step_seconds: histogram(
                "campusg_saga_step_seconds",
                "Seconds from a saga's start until it reached each step, by type and step.",
                &["saga_type", "step"],
                SAGA_STEP_BUCKETS,
            ),
            consumed: counter(
                "campusg_consumer_records_total",
                "Records a consumer group handled and committed, by group.",
                &["group"],
            ),
            consumer_lag: gauge(
                "campusg_consumer_lag_records",
                "Records a consumer group has not committed yet, by group, topic and partition (as of its last check, every few seconds).",
                &["group", "topic", "partition"],
            ),
            outbox_depth: gauge(
                "campusg_outbox_depth",
                "Messages committed to a store's outbox and not yet published, by store.",
                &["store"],
            ),
            parked_keys: gauge(
                "campusg_parked_keys",
                "Keys whose records wait (parked, or being handled again), by store and status.",
                &["store", "status"],
            ),
            http_requests: counter(
                "campusg_http_requests_total",
                "HTTP requests answered, by method, route and status.",
                &["method", "route", "status"],
            ),
            http_seconds: histogram(
                "campusg_http_request_seconds",
                "Seconds to answer an HTTP request, by method and route.",
                &["method", "route"],
                HTTP_BUCKETS,
            ),
            registry,
        };
        Metrics {
            inner: Arc::new(families),
        }
    }

    /// Counts records the bus has taken from an outbox, and the sagas' progress among them.
    pub fn published(&self, records: &[OutgoingRecord]) {
        let families = &self.inner;
        for record in records {
            let message_type = record.header("type").unwrap_or("unknown");
            families
                .published
                .with_label_values(&[record.topic.as_str(), message_type])
                .inc();
            if message_type == "dead_letter" {
                let original = payload_of(record)
                    .and_then(|payload| payload.get("original_topic")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".to_string());
                families.dead_letters.with_label_values(&[original.as_str()]).inc();
            } else if message_type.starts_with("saga.") && message_type != "saga.anomaly_recorded" {
                if let Some(payload) = payload_of(record) {
                    self.saga_progressed(message_type, &payload);
                }
            }
        }
    }

    fn saga_progressed(&self, message_type: &str, payload: &Value) {
        let families = &self.inner;
        let text = |field: &str| payload.get(field).and_then(Value::as_str);
        let time = |field: &str| text(field).and_then(|at| DateTime::parse_from_rfc3339(at).ok());
        let Some(saga_type) = text("saga_type") else {
            return;
        };
        if message_type == "saga.started" {
            families.sagas_started.with_label_values(&[saga_type]).inc();
        }
        if SAGA_ENDS.contains(&message_type) {
            let outcome = message_type.trim_start_matches("saga.");
            families.sagas_ended.with_label_values(&[saga_type, outcome]).inc();
        }
        if let (Some(step), Some(at), Some(started_at)) = (text("step"), time("at"), time("started_at")) {
            let seconds = (at.with_timezone(&Utc) - started_at.with_timezone(&Utc)).num_microseconds();
            let seconds = seconds.unwrap_or(i64::MAX).max(0) as f64 / 1e6;
            families
                .saga_step_seconds
                .with_label_values(&[saga_type, step])
                .observe(seconds);
        }
    }

    /// Counts records a consumer group has committed.
    pub fn consumed(&self, group: &str, records: usize) {
        self.inner.consumed.with_label_values(&[group]).inc_by(records as u64);
    }

    /// Counts one answered HTTP request. `route` is the route's template
    /// (`/api/orders/{order_id}`), never the path a caller wrote.
    pub fn answered(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let families = &self.inner;
        families
            .http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        families
            .http_seconds
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Every metric in Prometheus' text format, the gauges read now: consumer
    /// lag from `board`, outbox depth and parked keys from `stores`. A store
    /// that cannot be read leaves its gauges out rather than failing the scrape.
    pub async fn render(&self, board: &HealthBoard, stores: &[(&'static str, Arc<dyn EventStore>)]) -> String {
        let families = &self.inner;
        families.consumer_lag.reset();
        for (group, partitions) in board.lag_by_partition() {
            for lag in partitions {
                families
                    .consumer_lag
                    .with_label_values(&[group.as_str(), lag.topic.as_str(), &lag.partition.to_string()])
                    .set(lag.records_behind);
            }
        }
        families.outbox_depth.reset();
        families.parked_keys.reset();
        for (name, store) in stores {
            match store.outbox_depth().await {
                Ok(depth) => families.outbox_depth.with_label_values(&[name]).set(depth),
                Err(error) => tracing::warn!(store = name, error = %error, "cannot count the outbox for /metrics"),
            }
            match crate::parking::waiting_keys(store.as_ref(), None, Some(PARKED_KEYS_COUNTED)).await {
                Ok(keys) => {
                    for status in [crate::parking::PARKED, crate::parking::RETRYING] {
                        let count = keys
                            .iter()
                            .filter(|key| key.get("status").and_then(Value::as_str) == Some(status))
                            .count();
                        families
                            .parked_keys
                            .with_label_values(&[*name, status.to_lowercase().as_str()])
                            .set(count as i64);
                    }
                }
                Err(error) => tracing::warn!(store = name, error = %error, "cannot count parked keys for /metrics"),
            }
        }
        TextEncoder::new()
            .encode_to_string(&families.registry.gather())
            .unwrap_or_else(|error| format!("# the metrics could not be encoded: {error}\n"))
    }
}

fn payload_of(record: &OutgoingRecord) -> Option<Value> {
    let mut envelope: Value = serde_json::from_str(&record.value).ok()?;
    Some(envelope.get_mut("payload")?.take())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::envelope::Envelope;

    fn saga_record(message_type: &str, step: &str, started_at: &str, at: &str) -> OutgoingRecord {
        let envelope = Envelope {
            id: uuid::Uuid::new_v4(),
            message_type: message_type.to_string(),
            version: 1,
            correlation_id: "c".to_string(),
            causation_id: None,
            timestamp: Utc::now(),
            source: "sagas".to_string(),
            payload: json!({
                "saga_id": "3f1c2a9e-0000-4000-8000-000000000001", "saga_type": "create_order",
                "order_id": "3f1c2a9e-0000-4000-8000-000000000002", "status": "X",
                "step": step, "error": null, "at": at, "started_at": started_at,
            }),
        };
        OutgoingRecord::from_envelope("saga_events", &envelope)
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(prefix))
    }

    #[tokio::test]
    async fn a_sagas_progress_counts_its_start_its_end_and_each_steps_latency_from_its_start() {
        let metrics = Metrics::new();
        let start = "2026-11-30T10:00:00Z";
        metrics.published(&[
            saga_record("saga.started", "started", start, start),
            saga_record("saga.step_completed", "order_placed", start, "2026-11-30T10:00:00.040Z"),
            saga_record("saga.completed", "completed", start, "2026-11-30T10:00:02Z"),
        ]);
        let text = metrics.render(&HealthBoard::new(), &[]).await;

        assert_eq!(
            line(&text, "campusg_sagas_started_total{"),
            Some(r#"campusg_sagas_started_total{saga_type="create_order"} 1"#)
        );
        assert_eq!(
            line(&text, "campusg_sagas_ended_total{"),
            Some(r#"campusg_sagas_ended_total{outcome="completed",saga_type="create_order"} 1"#)
        );
        // 40 ms after the start: in the 50 ms bucket, not the 25 ms one.
        let bucket = |le: &str| {
            format!(r#"campusg_saga_step_seconds_bucket{{saga_type="create_order",step="order_placed",le="{le}"}}"#)
        };
        assert_eq!(
            line(&text, &bucket("0.025")).map(|l| l.ends_with(" 0")),
            Some(true),
            "{text}"
        );
        assert_eq!(
            line(&text, &bucket("0.05")).map(|l| l.ends_with(" 1")),
            Some(true),
            "{text}"
        );
        assert!(text.contains(r#"campusg_messages_published_total{topic="saga_events",type="saga.started"} 1"#));
    }

    #[tokio::test]
    async fn each_system_counts_apart() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.answered("GET", "/health", 200, 0.001);
        let other_text = other.render(&HealthBoard::new(), &[]).await;
        assert!(!other_text.contains("campusg_http_requests_total{"), "{other_text}");
        let one_text = one.render(&HealthBoard::new(), &[]).await;
        assert!(one_text.contains(r#"campusg_http_requests_total{method="GET",route="/health",status="200"} 1"#));
    }
}
