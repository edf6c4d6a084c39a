//! The process's Prometheus metrics, served at `GET /metrics`.
//!
//! A counter counts a fact where it becomes true: a message when the outbox
//! relay has published it and its row is gone (so a batch redone record by
//! record counts nothing; a row published again after a crash or a failed
//! delete counts once, when it goes), a record when its group commits its
//! offset, a request when it is answered. A saga's start, end and the latency
//! of each of its steps are read off the progress it publishes on
//! `saga_events`, as that is relayed. Gauges (consumer lag, outbox depth,
//! parked keys) are read when scraped, from the health board and the stores.
//!
//! Each [`Metrics`] has its own registry, so two systems in one process (the
//! scenario tests) never mix their counts.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::Value;

use campusg_domain::saga::SagaStatus;

use crate::bus::OutgoingRecord;
use crate::health::HealthBoard;
use crate::parking::ParkedKey;
use crate::store::EventStore;

/// Seconds from a saga's start: a step answered at once is milliseconds, one
/// that waits for a runner or the acceptance window is minutes.
const SAGA_STEP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// How long a scrape waits for one store's gauges.
const STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// Held by a scrape while it writes the gauges.
    scraping: tokio::sync::Mutex<()>,
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
            scraping: tokio::sync::Mutex::new(()),
        };
        Metrics {
            inner: Arc::new(families),
        }
    }

    /// Counts what a relay published: call once the outbox has let the
    /// records go, so a record published again after a crash or a failed
    /// delete is counted once, when its row goes.
    pub fn published(&self, publication: Publication) {
        let families = &self.inner;
        for (topic, message_type) in &publication.messages {
            families
                .published
                .with_label_values(&[topic.as_str(), message_type.as_str()])
                .inc();
        }
        for original_topic in &publication.dead_letters {
            families
                .dead_letters
                .with_label_values(&[original_topic.as_str()])
                .inc();
        }
        for progress in &publication.sagas {
            let saga_type = progress.saga_type.as_str();
            if progress.started {
                families.sagas_started.with_label_values(&[saga_type]).inc();
            }
            if let Some(outcome) = &progress.ended {
                families
                    .sagas_ended
                    .with_label_values(&[saga_type, outcome.as_str()])
                    .inc();
            }
            if let Some(seconds) = progress.seconds_from_start {
                families
                    .saga_step_seconds
                    .with_label_values(&[saga_type, progress.step.as_str()])
                    .observe(seconds);
            }
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

    /// Every metric in Prometheus' text format, the gauges read now:
    /// consumer lag from `board`, outbox depth and parked keys from `stores`
    /// (each store given [`STORE_PATIENCE`]). A store that cannot answer
    /// leaves its gauges out rather than failing the scrape. Scrapes take
    /// turns, so one does not clear the gauges another is writing.
    pub async fn render(&self, board: &HealthBoard, stores: &[(&'static str, Arc<dyn EventStore>)]) -> String {
        let families = &self.inner;
        let _turn = families.scraping.lock().await;
        families.consumer_lag.reset();
        for (group, partitions) in board.lag_by_partition() {
            for lag in partitions {
                families
                    .consumer_lag
                    .with_label_values(&[group.as_str(), lag.topic.as_str(), &lag.partition.to_string()])
                    .set(lag.records_behind);
            }
        }
        let readings = read_stores(stores).await;
        families.outbox_depth.reset();
        families.parked_keys.reset();
        for (name, read) in readings {
            match read {
                Ok(reading) => {
                    families
                        .outbox_depth
                        .with_label_values(&[name])
                        .set(reading.outbox_depth);
                    for (status, count) in reading.waiting_keys {
                        families
                            .parked_keys
                            .with_label_values(&[name, status.to_lowercase().as_str()])
                            .set(count);
                    }
                }
                Err(error) => tracing::warn!(store = name, error = %error, "a store left out of /metrics"),
            }
        }
        TextEncoder::new()
            .encode_to_string(&families.registry.gather())
            .unwrap_or_else(|error| format!("# the metrics could not be encoded: {error}\n"))
    }
}

/// What a store says of its own backlog.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreReading {
    /// Messages committed to its outbox and not yet published.
    pub outbox_depth: i64,
    /// Keys whose records wait, by status (`PARKED`, `RETRYING`).
    pub waiting_keys: Vec<(&'static str, i64)>,
}

/// Each store's reading, all at once, each given [`STORE_PATIENCE`]: a store
/// that does not answer in time, or fails, is named with why.
pub async fn read_stores(
    stores: &[(&'static str, Arc<dyn EventStore>)],
) -> Vec<(&'static str, Result<StoreReading, String>)> {
    futures_util::future::join_all(stores.iter().map(|(name, store)| async move {
        let read = async {
            let outbox_depth = store.outbox_depth().await?;
            let mut waiting_keys = Vec::new();
            for status in [crate::parking::PARKED, crate::parking::RETRYING] {
                let equals = [("status".to_string(), status.to_string())];
                waiting_keys.push((status, store.count_states(ParkedKey::TYPE, &equals).await?));
            }
            Ok::<_, crate::store::StoreError>(StoreReading {
                outbox_depth,
                waiting_keys,
            })
        };
        let read = match tokio::time::timeout(STORE_PATIENCE, read).await {
            Ok(read) => read.map_err(|error| error.to_string()),
            Err(_) => Err(format!("no answer within {STORE_PATIENCE:?}")),
        };
        (*name, read)
    }))
    .await
}

/// One series of a counter or histogram, read back for the console.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub labels: std::collections::BTreeMap<String, String>,
    /// A counter's value; a histogram's count of observations.
    pub count: u64,
    /// A histogram's sum of observations.
    pub sum: f64,
}

impl Metrics {
    /// Every series of the counter or histogram `family` (its name without
    /// `_total`'s parts: as registered), as counted now.
    pub fn series(&self, family: &str) -> Vec<Series> {
        let labels = |metric: &prometheus::proto::Metric| {
            metric
                .get_label()
                .iter()
                .map(|pair| (pair.name().to_string(), pair.value().to_string()))
                .collect()
        };
        self.inner
            .registry
            .gather()
            .iter()
            .filter(|found| found.name() == family)
            .flat_map(|found| found.get_metric().iter())
            .map(|metric| {
                let histogram = metric.get_histogram();
                if histogram.get_sample_count() > 0 {
                    Series {
                        labels: labels(metric),
                        count: histogram.get_sample_count(),
                        sum: histogram.get_sample_sum(),
                    }
                } else {
                    Series {
                        labels: labels(metric),
                        count: metric.get_counter().get_value() as u64,
                        sum: 0.0,
                    }
                }
            })
            .collect()
    }
}

/// What a batch of outbox records counts once published, read from them
/// before they go to the bus (which takes them).
#[derive(Debug, Default)]
pub struct Publication {
    /// Each record's topic and type.
    messages: Vec<(String, String)>,
    /// The topic of the record each dead letter stands for.
    dead_letters: Vec<String>,
    sagas: Vec<SagaProgress>,
}

#[derive(Debug)]
struct SagaProgress {
    saga_type: String,
    step: String,
    started: bool,
    /// The outcome, when the update ends the saga.
    ended: Option<String>,
    seconds_from_start: Option<f64>,
}

impl Publication {
    pub fn of(records: &[OutgoingRecord]) -> Publication {
        let mut publication = Publication::default();
        for record in records {
            let message_type = record.header("type").unwrap_or("unknown");
            publication
                .messages
                .push((record.topic.clone(), message_type.to_string()));
            // Only a saga's progress and a dead letter are read further: the
            // rest is counted by its headers alone.
            if message_type == "dead_letter" {
                let original = payload_of(record)
                    .and_then(|payload| payload.get("original_topic")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".to_string());
                publication.dead_letters.push(original);
            } else if let Some(kind) = message_type.strip_prefix("saga.") {
                // An anomaly repeats the step just published; counting it
                // would count that step's latency twice.
                if kind == "anomaly_recorded" {
                    continue;
                }
                if let Some(progress) = payload_of(record).and_then(|payload| SagaProgress::of(kind, &payload)) {
                    publication.sagas.push(progress);
                }
            }
        }
        publication
    }
}

impl SagaProgress {
    /// `kind` is the update's type after `saga.`: `started`, `completed`, ...
    fn of(kind: &str, payload: &Value) -> Option<SagaProgress> {
        let text = |field: &str| payload.get(field).and_then(Value::as_str);
        let time = |field: &str| {
            text(field)
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc))
        };
        let seconds_from_start = match (time("at"), time("started_at")) {
            (Some(at), Some(started_at)) => {
                let micros = (at - started_at).num_microseconds().unwrap_or(i64::MAX).max(0);
                Some(micros as f64 / 1e6)
            }
            _ => None,
        };
        // The update types that end a saga are named after its final statuses.
        let ended = SagaStatus::parse(kind)
            .filter(|status| status.is_final())
            .map(|status| status.as_str().to_lowercase());
        Some(SagaProgress {
            saga_type: text("saga_type")?.to_string(),
            step: text("step").unwrap_or("unknown").to_string(),
            started: kind == "started",
            ended,
            seconds_from_start,
        })
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
        metrics.published(Publication::of(&[
            saga_record("saga.started", "started", start, start),
            saga_record("saga.step_completed", "order_placed", start, "2026-11-30T10:00:00.040Z"),
            saga_record("saga.completed", "completed", start, "2026-11-30T10:00:02Z"),
        ]));
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

        let ended = metrics.series("campusg_sagas_ended_total");
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].count, 1);
        assert_eq!(ended[0].labels["outcome"], "completed");
        let steps = metrics.series("campusg_saga_step_seconds");
        let completed = steps.iter().find(|s| s.labels["step"] == "completed").unwrap();
        assert_eq!((completed.count, completed.sum), (1, 2.0));
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
