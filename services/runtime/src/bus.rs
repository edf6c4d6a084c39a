//! The message-bus interface, shaped after Kafka's.
//!
//! Records are keyed; a key picks the partition with Kafka's own partitioner
//! (murmur2), so a record lands in the same partition on the embedded log and on
//! Kafka. Consumers belong to groups, read partitions in offset order, and commit
//! an offset only after the record's effects are stored. The embedded log and the
//! Kafka bus both implement these two traits; nothing above them knows which one
//! it runs on.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::envelope::Envelope;
use crate::topics::TopicCatalog;

/// A record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRecord {
    pub topic: String,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

impl OutgoingRecord {
    pub fn from_envelope(topic: &str, envelope: &Envelope) -> OutgoingRecord {
        OutgoingRecord {
            topic: topic.to_string(),
            key: Some(envelope.key()),
            value: envelope.to_json(),
            headers: envelope.headers(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// How far a consumer group is behind in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub records_behind: i64,
}

/// A record read from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    pub timestamp: DateTime<Utc>,
}

impl Record {
    pub fn position(&self) -> RecordPosition {
        RecordPosition {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Where a record sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Where a consumer starts reading a partition it has no committed offset for,
/// or, for a reader with no group, where it starts at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The consumer group; `None` reads without a group and commits nothing.
    pub group: Option<String>,
    pub topics: Vec<String>,
    pub start: StartFrom,
}

/// A new committed offset for a group: where its next read of a partition begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// The offset of the next record to read.
    To(i64),
}

/// A topic as the bus sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub partitions: u32,
    /// Records currently held (high minus low watermark, summed over partitions).
    pub records: i64,
}

/// The largest record the system produces, value, key and headers together:
/// under the 1 MiB that Kafka brokers take by default. The embedded log refuses
/// larger records the same way, and an outbox relay dead-letters a message over
/// it by reference instead of retrying it forever.
pub const MAX_RECORD_BYTES: usize = 1_000_000;

impl OutgoingRecord {
    /// The record's size as the bus counts it against [`MAX_RECORD_BYTES`].
    pub fn size_bytes(&self) -> usize {
        self.value.len()
            + self.key.as_ref().map_or(0, String::len)
            + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker or the log cannot be reached now; the same call may succeed later.
    #[error("the message bus is unavailable: {0}")]
    Unavailable(String),
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("a record of {size} bytes is over the bus's limit of {MAX_RECORD_BYTES}")]
    TooLarge { size: usize },
    #[error("message bus error: {0}")]
    Other(String),
}

#[async_trait]
pub trait MessageBus: Send + Sync {
    /// Appends records durably; returns where each one landed, in order.
    async fn produce(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, BusError>;

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError>;

    /// Creates the catalog's topics that do not exist yet.
    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError>;

    /// Every topic the bus holds.
    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError>;

    /// Deletes the records older than their topic's retention, as of `now`;
    /// returns how many. A broker enforces retention itself: nothing to do.
    async fn enforce_retention(&self, _now: chrono::DateTime<chrono::Utc>) -> Result<u64, BusError> {
        Ok(0)
    }

    /// Moves a group's committed offsets on a topic (every partition, or one).
    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError>;
}

#[async_trait]
pub trait BusConsumer: Send {
    /// Waits up to `timeout` for records and returns at most `max_records`, in
    /// offset order within each partition. An empty result is not an error.
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>, BusError>;

    /// Marks every record up to and including these positions as handled by the group.
    async fn commit(&mut self, positions: &[RecordPosition]) -> Result<(), BusError>;

    /// How many records of each of its partitions the group has not committed
    /// yet, for the health report and the lag gauge; `None` when the bus cannot
    /// say cheaply.
    async fn lag(&mut self) -> Option<Vec<PartitionLag>> {
        None
    }

    /// Leaves the group cleanly, so its partitions move to the other members at
    /// once. Dropping a consumer without closing it is safe but slower to hand over.
    async fn close(self: Box<Self>) {}
}

/// The offset each partition's commit must name: one past the highest handled
/// position in it. Both buses commit this way.
pub fn next_offsets(positions: &[RecordPosition]) -> HashMap<(&str, i32), i64> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for position in positions {
        let entry = next
            .entry((position.topic.as_str(), position.partition))
            .or_insert(position.offset + 1);
        *entry = (*entry).max(position.offset + 1);
    }
    next
}

/// Kafka's default partitioner for keyed records: murmur2 of the key bytes, made
/// positive, modulo the partition count.
pub fn partition_for_key(key: &[u8], partitions: u32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions as i32
}

/// The murmur2 variant Kafka's Java client uses (seed 0x9747b28c).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A record's partition: by key when it has one, else round the partitions by
/// `fallback` (Kafka spreads unkeyed records the same way).
pub fn choose_partition(key: Option<&str>, partitions: u32, fallback: u64) -> i32 {
    match key {
        Some(key) => partition_for_key(key.as_bytes(), partitions),
        None => (fallback % partitions as u64) as i32,
    }
}

/// Waits a short, growing time between retries of a failing call.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(6)).min(3_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn a_key_always_lands_in_the_same_partition() {
        let first = partition_for_key(b"order-1", 6);
        assert!((0..6).contains(&first));
        assert_eq!(first, partition_for_key(b"order-1", 6));
    }
}
