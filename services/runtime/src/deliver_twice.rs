//! A bus that hands every record to its consumers twice: fault injection for
//! the chaos suite (`--deliver-twice`).
//!
//! Kafka promises at-least-once delivery: a consumer that dies after its
//! effects and before its offset commit, or a rebalance that lost a commit,
//! gets the same records again. This decorator makes that happen on every
//! poll, on either bus, so that a run shows every consumer recognising a
//! duplicate by its message id instead of acting twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::bus::{
    BusConsumer, BusError, MessageBus, OffsetReset, OutgoingRecord, Record, RecordPosition, Subscription,
    TopicDescription,
};
use crate::topics::TopicCatalog;

pub struct DeliveringTwice {
    inner: Arc<dyn MessageBus>,
}

impl DeliveringTwice {
    pub fn new(inner: Arc<dyn MessageBus>) -> DeliveringTwice {
        DeliveringTwice { inner }
    }
}

#[async_trait]
impl MessageBus for DeliveringTwice {
    async fn produce(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, BusError> {
        self.inner.produce(records).await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError> {
        let inner = self.inner.subscribe(subscription).await?;
        Ok(Box::new(RepeatingConsumer { inner, again: None }))
    }

    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError> {
        self.inner.ensure_topics(catalog).await
    }

    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError> {
        self.inner.describe_topics().await
    }

    async fn enforce_retention(&self, now: DateTime<Utc>) -> Result<u64, BusError> {
        self.inner.enforce_retention(now).await
    }

    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError> {
        self.inner.reset_offsets(group, topic, partition, to).await
    }
}

/// Returns each poll's records again on the next poll, so every record
/// arrives twice, the second time after its first handling was committed.
struct RepeatingConsumer {
    inner: Box<dyn BusConsumer>,
    again: Option<Vec<Record>>,
}

#[async_trait]
impl BusConsumer for RepeatingConsumer {
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>, BusError> {
        if let Some(records) = self.again.take() {
            return Ok(records);
        }
        let records = self.inner.poll(max_records, timeout).await?;
        if !records.is_empty() {
            self.again = Some(records.clone());
        }
        Ok(records)
    }

    async fn commit(&mut self, positions: &[RecordPosition]) -> Result<(), BusError> {
        self.inner.commit(positions).await
    }

    async fn lag(&mut self) -> Option<Vec<crate::bus::PartitionLag>> {
        self.inner.lag().await
    }

    async fn close(self: Box<Self>) {
        self.inner.close().await
    }
}
