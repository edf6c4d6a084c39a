//! The outbox relay: publishes what a store's outbox holds, oldest first, and
//! deletes it only once the bus has it. A crash between the two publishes a
//! message twice, never zero times; consumers recognise the duplicate by its id.
//!
//! A message over the bus's record size ([`MAX_RECORD_BYTES`]) would be refused
//! however often it is sent, and would hold back every message after it. It is
//! published instead as a dead letter that refers to it (id, type, topic, key,
//! size, reason), so the operator sees it and the outbox moves on.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::bus::{backoff, BusError, MessageBus, OutgoingRecord, MAX_RECORD_BYTES};
use crate::envelope::Envelope;
use crate::store::EventStore;

/// How many outbox messages go to the bus in one produce call.
const RELAY_BATCH: i64 = 500;
/// How long the relay sleeps when nothing wakes it; a safety net for rows
/// written by another process sharing the store.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often a standby relay checks whether the active one is gone.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Runs until `shutdown`, then returns after the batch in flight.
#[tracing::instrument(name = "outbox_relay", skip_all, fields(service = service))]
pub async fn run_outbox_relay(
    service: &'static str,
    store: Arc<dyn EventStore>,
    bus: Arc<dyn MessageBus>,
    dead_letter_topic: String,
    shutdown: CancellationToken,
) {
    let signal = store.outbox_signal();
    let mut failures: u32 = 0;
    let mut one_at_a_time = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match store.claim_outbox().await {
            Ok(true) => {}
            Ok(false) => {
                // Another replica relays this outbox; stand by.
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot claim the outbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        let batch = match store.outbox_batch(RELAY_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the outbox; retrying");
                failures += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(failures)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let (ids, records): (Vec<i64>, Vec<_>) = batch
            .into_iter()
            .map(|(id, record)| match record.size_bytes() {
                size if size > MAX_RECORD_BYTES => (id, by_reference(&record, size, service, &dead_letter_topic)),
                _ => (id, record),
            })
            .unzip();
        if one_at_a_time {
            // A broker whose limit is below ours refused a record of this
            // batch: find it by sending them one at a time.
            one_at_a_time = false;
            for (id, record) in ids.iter().zip(records) {
                let size = record.size_bytes();
                let published = match bus.produce(vec![record.clone()]).await {
                    Err(BusError::TooLarge { .. }) => {
                        bus.produce(vec![by_reference(&record, size, service, &dead_letter_topic)])
                            .await
                    }
                    other => other,
                };
                if published.is_err() || store.outbox_delete(&[*id]).await.is_err() {
                    break;
                }
            }
            continue;
        }
        match bus.produce(records).await {
            Ok(_) => {}
            Err(BusError::TooLarge { size }) => {
                tracing::warn!(size, "the bus refused a record as too large; publishing one at a time");
                one_at_a_time = true;
                continue;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(error = %error, attempt = failures, "cannot publish the outbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff(failures)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        crate::crash_points::reached(crate::crash_points::AFTER_PRODUCE);
        if let Err(error) = store.outbox_delete(&ids).await {
            // The records are published; they will be published again, and deduplicated.
            tracing::warn!(error = %error, "cannot clear the published outbox rows");
        }
        failures = 0;
    }
}

/// A dead letter in place of `record`, which is too large for the bus: it
/// names the message and says why, without carrying it.
fn by_reference(record: &OutgoingRecord, size: usize, service: &str, dead_letter_topic: &str) -> OutgoingRecord {
    let header = |name: &str| {
        record
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let reason =
        format!("the message is {size} bytes, over the bus's limit of {MAX_RECORD_BYTES}; it was not published");
    tracing::error!(
        topic = %record.topic, key = ?record.key, message_id = ?header("id"), size,
        "a message too large for the bus goes to the dead-letter topic by reference"
    );
    let now = chrono::Utc::now();
    let envelope = Envelope {
        id: uuid::Uuid::new_v4(),
        message_type: "dead_letter".to_string(),
        version: 1,
        correlation_id: header("correlation_id").unwrap_or_else(|| "unknown".to_string()),
        causation_id: header("id"),
        timestamp: now,
        source: service.to_string(),
        payload: json!({
            "reason": reason,
            "original_topic": record.topic,
            "original_partition": -1,
            "original_offset": -1,
            "original_key": record.key,
            "original_value": "",
            "original_size_bytes": size,
            "original_id": header("id"),
            "original_type": header("type"),
            "consumer_group": format!("{service}-outbox"),
            "failed_at": now.to_rfc3339(),
        }),
    };
    let mut dead_letter = OutgoingRecord::from_envelope(dead_letter_topic, &envelope);
    dead_letter.key = record.key.clone();
    dead_letter
        .headers
        .push(("original_topic".to_string(), record.topic.clone()));
    dead_letter
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use crate::bus::{BusConsumer, OffsetReset, RecordPosition, StartFrom, Subscription, TopicDescription};
    use crate::embedded_log::EmbeddedLog;
    use crate::sqlite_store::SqliteEventStore;
    use crate::store::{Cause, Contracts, UnitOfWork};
    use crate::topics::TopicCatalog;

    use super::*;

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
    /// `bus` until it has published `expected` records, and returns them.
    async fn relayed(
        dir: &tempfile::TempDir,
        bus: Arc<dyn MessageBus>,
        records: Vec<OutgoingRecord>,
        expected: usize,
    ) -> (Vec<crate::bus::Record>, Arc<dyn EventStore>) {
        let contracts = Contracts::builtin();
        let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.path().join("order.db")).await.unwrap());
        let mut unit = UnitOfWork::new(Cause::request("saga-1".into(), "order", chrono::Utc::now()));
        unit.outbox.extend(records);
        store.commit(unit).await.unwrap();
        let dead_letter_topic = contracts.topics.dead_letter_topic().name.clone();
        let shutdown = CancellationToken::new();
        let relay = tokio::spawn(run_outbox_relay(
            "order",
            store.clone(),
            bus.clone(),
            dead_letter_topic.clone(),
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
        (seen, store)
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

        let (seen, store) = relayed(&dir, bus, records, 3).await;

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

        let (seen, store) = relayed(&dir, bus, records, 2).await;

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
}
