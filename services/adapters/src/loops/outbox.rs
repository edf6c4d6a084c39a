//! The outbox relay on the embedded log: records a broker refuses for their size are dead-lettered by reference.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use campusg_runtime::bus::{
    BusConsumer, BusError, MessageBus, OffsetReset, OutgoingRecord, RecordPosition, StartFrom, Subscription,
    TopicDescription, MAX_RECORD_BYTES,
};
use campusg_runtime::health::HealthBoard;
use campusg_runtime::metrics::Metrics;
use campusg_runtime::outbox::*;
use campusg_runtime::store::{Cause, Contracts, EventStore, UnitOfWork};
use campusg_runtime::topics::TopicCatalog;

use crate::embedded_log::EmbeddedLog;
use crate::sqlite_store::SqliteEventStore;

fn record(value: String, id: &str) -> OutgoingRecord {
    OutgoingRecord {
        topic: "order_events".to_string(),
        key: Some("order-1".to_string()),
        value,
        headers: vec![
            ("type".to_string(), "order.created".to_string()),
            ("id".to_string(), id.to_string()),
            ("correlation_id".to_string(), "saga-1".to_string()),
        ],
    }
}

/// The embedded log behind a broker whose record limit is `limit` bytes,
/// below the system's own.
struct SmallerBroker {
    log: EmbeddedLog,
    limit: usize,
}

#[async_trait]
impl MessageBus for SmallerBroker {
    async fn produce(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, BusError> {
        if let Some(size) = records
            .iter()
            .map(OutgoingRecord::size_bytes)
            .find(|size| *size > self.limit)
        {
            return Err(BusError::TooLarge { size });
        }
        self.log.produce(records).await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError> {
        self.log.subscribe(subscription).await
    }

    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError> {
        self.log.ensure_topics(catalog).await
    }

    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError> {
        self.log.describe_topics().await
    }

    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError> {
        self.log.reset_offsets(group, topic, partition, to).await
    }
}

/// Commits `records` to a fresh order store's outbox, runs the relay over
/// `bus` until it has published `expected` records, and returns them, the
/// store, and what the relay counted.
async fn relayed(
    dir: &tempfile::TempDir,
    bus: Arc<dyn MessageBus>,
    records: Vec<OutgoingRecord>,
    expected: usize,
) -> (Vec<campusg_runtime::bus::Record>, Arc<dyn EventStore>, Metrics) {
    let contracts = Contracts::builtin();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.path().join("order.db")).await.unwrap());
    let mut unit = UnitOfWork::new(Cause::request("saga-1".into(), "order", chrono::Utc::now()));
    let queued = records.len() as i64;
    unit.outbox.extend(records);
    store.commit(unit).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), queued);
    let dead_letter_topic = contracts.topics.dead_letter_topic().name.clone();
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let relay = tokio::spawn(run_outbox_relay(
        "order",
        store.clone(),
        bus.clone(),
        dead_letter_topic.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let mut reader = bus
        .subscribe(Subscription {
            group: None,
            topics: vec!["order_events".into(), dead_letter_topic],
            start: StartFrom::Earliest,
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen.extend(reader.poll(10, Duration::from_millis(50)).await.unwrap());
        if seen.len() >= expected {
            break;
        }
    }
    shutdown.cancel();
    relay.await.unwrap();
    (seen, store, metrics)
}

#[tokio::test]
async fn a_record_a_smaller_broker_refuses_is_found_and_dead_lettered_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let contracts = Contracts::builtin();
    let log = EmbeddedLog::open(&dir.path().join("log.db"), &contracts.topics)
        .await
        .unwrap();
    let bus: Arc<dyn MessageBus> = Arc::new(SmallerBroker { log, limit: 10_000 });
    let records = vec![
        record("{}".to_string(), "before"),
        record("x".repeat(20_000), "too-large-here"),
        record("{}".to_string(), "after"),
    ];

    let (seen, store, metrics) = relayed(&dir, bus, records, 3).await;

    let ids: Vec<_> = seen
        .iter()
        .map(|r| r.header("id").unwrap_or_default().to_string())
        .collect();
    assert_eq!(seen.len(), 3, "{ids:?}");
    assert_eq!(seen[0].header("id"), Some("before"));
    let letter: serde_json::Value = serde_json::from_str(&seen[1].value).unwrap();
    assert_eq!(letter["payload"]["original_id"], "too-large-here");
    assert_eq!(seen[2].header("id"), Some("after"));
    assert!(store.outbox_batch(10).await.unwrap().is_empty());
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
    let counted = metrics.render(&HealthBoard::new(), &[("order", store)]).await;
    assert!(
        counted.contains(r#"campusg_dead_letters_total{original_topic="order_events"} 1"#),
        "{counted}"
    );
    assert!(
        counted.contains(r#"campusg_outbox_depth{store="order"} 0"#),
        "{counted}"
    );
}

#[tokio::test]
async fn a_message_too_large_for_the_bus_is_dead_lettered_by_reference_and_the_next_one_published() {
    let dir = tempfile::tempdir().unwrap();
    let contracts = Contracts::builtin();
    let bus: Arc<dyn MessageBus> = Arc::new(
        EmbeddedLog::open(&dir.path().join("log.db"), &contracts.topics)
            .await
            .unwrap(),
    );
    let records = vec![
        record("x".repeat(MAX_RECORD_BYTES + 1), "too-large"),
        record("{}".to_string(), "after"),
    ];

    let (seen, store, _) = relayed(&dir, bus, records, 2).await;

    assert_eq!(seen.len(), 2, "{seen:?}");
    let letter: serde_json::Value = serde_json::from_str(&seen[0].value).unwrap();
    assert_eq!(letter["type"], "dead_letter");
    assert_eq!(letter["payload"]["original_id"], "too-large");
    assert_eq!(
        letter["payload"]["original_size_bytes"],
        MAX_RECORD_BYTES + 1 + 55,
        "value, key and headers"
    );
    assert_eq!(letter["payload"]["original_topic"], "order_events");
    contracts
        .schemas
        .validate_payload("dead_letter", &letter["payload"])
        .unwrap();
    assert_eq!(seen[1].header("id"), Some("after"));
    assert!(store.outbox_batch(10).await.unwrap().is_empty());
}
