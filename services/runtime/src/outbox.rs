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
use crate::metrics::{Metrics, Publication};
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
    metrics: Metrics,
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
                let mut publication = Publication::of(std::slice::from_ref(&record));
                let mut published = bus.produce(vec![record.clone()]).await;
                if let Err(BusError::TooLarge { .. }) = published {
                    let letter = by_reference(&record, size, service, &dead_letter_topic);
                    publication = Publication::of(std::slice::from_ref(&letter));
                    published = bus.produce(vec![letter]).await;
                }
                if published.is_err() || store.outbox_delete(&[*id]).await.is_err() {
                    break;
                }
                metrics.published(publication);
            }
            continue;
        }
        let publication = Publication::of(&records);
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
        match store.outbox_delete(&ids).await {
            Ok(()) => metrics.published(publication),
            // The records are published; they will be published again, and
            // deduplicated, and counted then.
            Err(error) => tracing::warn!(error = %error, "cannot clear the published outbox rows"),
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
