//! The embedded durable log: Kafka's semantics in one SQLite file.
//!
//! Topics have partitions; a record's key picks its partition; each partition
//! numbers its records with offsets from 0. Consumer groups keep a committed
//! offset per partition in the same file, so they survive a restart and can be
//! reset to any offset. Records are never changed; they are deleted once older
//! than their topic's retention (`topics.toml`), as Kafka deletes them, by the
//! janitor ([`campusg_runtime::janitor`]). A group whose next record was deleted starts
//! at the oldest one left, as Kafka's `auto.offset.reset=earliest` does.
//!
//! Every record also gets a global sequence number (`seq`), in commit order. A
//! consumer reads "records after seq N on my topics" with one query instead of
//! one per partition; offsets remain the contract, `seq` is only a cursor.
//!
//! One process may hold a group's partitions at a time: the embedded mode runs
//! each group once. Producers in other processes (`campusg publish`) are seen
//! within [`CROSS_PROCESS_POLL`]; producers in this process wake consumers at
//! once, and their consumers read what they wrote from memory ([`LogTail`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Row, SqlitePool};
use tokio::sync::watch;

use crate::log_tail::{LogTail, TAIL_BYTES, TAIL_RECORDS};
use crate::sqlite::open_sqlite;
use campusg_runtime::bus::{
    choose_partition, next_offsets, BusConsumer, BusError, MessageBus, OffsetReset, OutgoingRecord, PartitionLag,
    Record, RecordPosition, StartFrom, Subscription, TopicDescription, MAX_RECORD_BYTES,
};
use campusg_runtime::topics::TopicCatalog;

/// How often a waiting consumer looks for records written by another process.
pub const CROSS_PROCESS_POLL: Duration = Duration::from_millis(200);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partition_heads (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key TEXT,
    value TEXT NOT NULL,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    committed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
"#;

#[derive(Clone)]
pub struct EmbeddedLog {
    pool: SqlitePool,
    partitions: Arc<std::sync::RwLock<HashMap<String, u32>>>,
    /// How many produce calls in this process appended to each topic: a
    /// waiting consumer wakes on a change and reads only if one of its topics
    /// moved.
    appended: Arc<watch::Sender<Appended>>,
    /// One writer at a time in this process: SQLite allows one anyway, and a
    /// writer that waits here wakes at once instead of in SQLite's busy sleeps.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    unkeyed_counter: Arc<AtomicU64>,
    tail: Arc<LogTail>,
}

fn storage_error(error: sqlx::Error) -> BusError {
    if crate::sqlite::is_busy(&error) {
        BusError::Unavailable(error.to_string())
    } else {
        BusError::Other(error.to_string())
    }
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `path` and creates the catalog's topics.
    pub async fn open(path: &Path, catalog: &TopicCatalog) -> Result<EmbeddedLog, BusError> {
        // Every consumer of the process reads it, most from the tail.
        let pool = open_sqlite(path, 4).await.map_err(storage_error)?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(storage_error)?;
        let (appended, _) = watch::channel(Appended::default());
        let log = EmbeddedLog {
            pool,
            partitions: Arc::default(),
            appended: Arc::new(appended),
            write_lock: Arc::default(),
            unkeyed_counter: Arc::default(),
            tail: Arc::new(LogTail::new(TAIL_RECORDS, TAIL_BYTES)),
        };
        log.ensure_topics(catalog).await?;
        Ok(log)
    }

    async fn partition_count(&self, topic: &str) -> Result<u32, BusError> {
        if let Some(&n) = self.partitions.read().expect("not poisoned").get(topic) {
            return Ok(n);
        }
        let row = sqlx::query("SELECT partitions FROM topics WHERE name = ?")
            .bind(topic)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        let n: i64 = row.ok_or_else(|| BusError::UnknownTopic(topic.to_string()))?.get(0);
        self.partitions
            .write()
            .expect("not poisoned")
            .insert(topic.to_string(), n as u32);
        Ok(n as u32)
    }

    /// The next offset of every partition of `topic`: where "latest" begins.
    async fn heads(&self, topic: &str) -> Result<HashMap<i32, i64>, BusError> {
        let rows = sqlx::query("SELECT partition, next_offset FROM partition_heads WHERE topic = ?")
            .bind(topic)
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(0) as i32, r.get::<i64, _>(1)))
            .collect())
    }
}

#[async_trait]
impl MessageBus for EmbeddedLog {
    async fn produce(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, BusError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(size) = records
            .iter()
            .map(OutgoingRecord::size_bytes)
            .find(|size| *size > MAX_RECORD_BYTES)
        {
            return Err(BusError::TooLarge { size });
        }
        let mut partitioned = Vec::with_capacity(records.len());
        for record in records {
            let partitions = self.partition_count(&record.topic).await?;
            let fallback = self.unkeyed_counter.fetch_add(1, Ordering::Relaxed);
            let partition = choose_partition(record.key.as_deref(), partitions, fallback);
            partitioned.push((partition, record));
        }
        let now_ms = Utc::now().timestamp_millis();
        let topics: Vec<String> = {
            let mut topics: Vec<String> = partitioned.iter().map(|(_, r)| r.topic.clone()).collect();
            topics.sort();
            topics.dedup();
            topics
        };
        let _writing = self.write_lock.lock().await;
        // Three statements however many records: read the heads, insert the
        // records, move the heads. Another process's producer waits for the
        // write lock this transaction takes first, so the heads stay right.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage_error)?;
        let mut heads: HashMap<(String, i32), i64> = HashMap::new();
        for row in sqlx::query(
            "SELECT topic, partition, next_offset FROM partition_heads WHERE topic IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::to_string(&topics).expect("names serialize"))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage_error)?
        {
            heads.insert((row.get(0), row.get::<i64, _>(1) as i32), row.get(2));
        }
        let mut written = Vec::with_capacity(partitioned.len());
        let mut rows = Vec::with_capacity(partitioned.len());
        for (partition, record) in partitioned {
            let head = heads.entry((record.topic.clone(), partition)).or_insert(0);
            let offset = *head;
            *head += 1;
            rows.push(serde_json::json!({
                "topic": record.topic,
                "partition": partition,
                "offset": offset,
                "key": record.key,
                "value": record.value,
                "headers": record.headers,
            }));
            written.push(Record {
                topic: record.topic,
                partition,
                offset,
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp: Utc
                    .timestamp_millis_opt(now_ms)
                    .single()
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            });
        }
        let inserted = sqlx::query(
            r#"INSERT INTO records (topic, partition, "offset", key, value, headers, timestamp_ms)
               SELECT item.value ->> 'topic', item.value ->> 'partition', item.value ->> 'offset',
                      item.value ->> 'key', item.value ->> 'value', item.value -> 'headers', ?
               FROM json_each(?) AS item ORDER BY item.key"#,
        )
        .bind(now_ms)
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        // One statement under the write lock: its rows took the consecutive
        // seqs that end at the last inserted one, in the order given.
        let first_seq = inserted.last_insert_rowid() - written.len() as i64 + 1;
        let moved: Vec<serde_json::Value> = heads
            .iter()
            .map(|((topic, partition), next)| serde_json::json!([topic, partition, next]))
            .collect();
        sqlx::query(
            "INSERT INTO partition_heads (topic, partition, next_offset)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        )
        .bind(serde_json::Value::Array(moved).to_string())
        .execute(&mut *tx)
        .await
        .map_err(storage_error)?;
        tx.commit().await.map_err(storage_error)?;
        let positions = written.iter().map(Record::position).collect();
        self.tail.append(first_seq, written);
        self.appended.send_modify(|appended| appended.count(&topics));
        Ok(positions)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError> {
        let mut positions: HashMap<(String, i32), i64> = HashMap::new();
        for topic in &subscription.topics {
            let partitions = self.partition_count(topic).await?;
            let heads = self.heads(topic).await?;
            let committed: HashMap<i32, i64> = match &subscription.group {
                Some(group) => {
                    sqlx::query("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?")
                        .bind(group)
                        .bind(topic)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(storage_error)?
                        .iter()
                        .map(|r| (r.get::<i64, _>(0) as i32, r.get::<i64, _>(1)))
                        .collect()
                }
                None => HashMap::new(),
            };
            for partition in 0..partitions as i32 {
                let start = committed.get(&partition).copied().unwrap_or(match subscription.start {
                    StartFrom::Earliest => 0,
                    StartFrom::Latest => heads.get(&partition).copied().unwrap_or(0),
                });
                positions.insert((topic.clone(), partition), start);
            }
        }
        let cursor = cursor_before(&self.pool, &positions).await?;
        Ok(Box::new(EmbeddedConsumer {
            pool: self.pool.clone(),
            group: subscription.group,
            topics: subscription.topics,
            positions,
            cursor,
            appended: self.appended.subscribe(),
            write_lock: self.write_lock.clone(),
            tail: self.tail.clone(),
            looked_in_file: tokio::time::Instant::now(),
        }))
    }

    async fn enforce_retention(&self, now: chrono::DateTime<Utc>) -> Result<u64, BusError> {
        let _writing = self.write_lock.lock().await;
        let deleted = sqlx::query(
            "DELETE FROM records WHERE timestamp_ms <
                 ? - (SELECT retention_ms FROM topics WHERE topics.name = records.topic)",
        )
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        if deleted.rows_affected() > 0 {
            self.tail.clear();
        }
        Ok(deleted.rows_affected())
    }

    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError> {
        let _writing = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage_error)?;
        for topic in catalog.topics() {
            sqlx::query("INSERT OR IGNORE INTO topics (name, partitions, retention_ms) VALUES (?, ?, ?)")
                .bind(&topic.name)
                .bind(topic.partitions as i64)
                .bind(topic.retention_ms)
                .execute(&mut *tx)
                .await
                .map_err(storage_error)?;
            let partitions: i64 = sqlx::query("SELECT partitions FROM topics WHERE name = ?")
                .bind(&topic.name)
                .fetch_one(&mut *tx)
                .await
                .map_err(storage_error)?
                .get(0);
            for partition in 0..partitions {
                sqlx::query("INSERT OR IGNORE INTO partition_heads (topic, partition, next_offset) VALUES (?, ?, 0)")
                    .bind(&topic.name)
                    .bind(partition)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage_error)?;
            }
        }
        tx.commit().await.map_err(storage_error)
    }

    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError> {
        let topics = sqlx::query("SELECT name, partitions FROM topics ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        let mut described = Vec::new();
        for row in topics {
            let name: String = row.get(0);
            let partitions: i64 = row.get(1);
            let records = self.heads(&name).await?.values().sum();
            described.push(TopicDescription {
                name,
                partitions: partitions as u32,
                records,
            });
        }
        Ok(described)
    }

    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError> {
        let partitions = self.partition_count(topic).await?;
        let heads = self.heads(topic).await?;
        let now_ms = Utc::now().timestamp_millis();
        let _writing = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage_error)?;
        for p in 0..partitions as i32 {
            if partition.is_some_and(|only| only != p) {
                continue;
            }
            let head = heads.get(&p).copied().unwrap_or(0);
            let next_offset = match to {
                OffsetReset::Earliest => 0,
                OffsetReset::Latest => head,
                OffsetReset::To(offset) => offset.clamp(0, head),
            };
            sqlx::query(
                "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, committed_at_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (group_id, topic, partition)
                 DO UPDATE SET next_offset = excluded.next_offset, committed_at_ms = excluded.committed_at_ms",
            )
            .bind(group)
            .bind(topic)
            .bind(p)
            .bind(next_offset)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        }
        tx.commit().await.map_err(storage_error)
    }
}

struct EmbeddedConsumer {
    pool: SqlitePool,
    group: Option<String>,
    topics: Vec<String>,
    /// The next offset to hand out, per partition.
    positions: HashMap<(String, i32), i64>,
    /// The `seq` of the last record looked at.
    cursor: i64,
    appended: watch::Receiver<Appended>,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    tail: Arc<LogTail>,
    /// When this consumer last read the file: one that has read all the tail
    /// holds looks there for other processes' records once per
    /// [`CROSS_PROCESS_POLL`], not on every poll.
    looked_in_file: tokio::time::Instant,
}

/// Per topic, how many produce calls in this process appended to it.
#[derive(Default)]
struct Appended {
    by_topic: HashMap<String, u64>,
}

impl Appended {
    fn count(&mut self, topics: &[String]) {
        for topic in topics {
            *self.by_topic.entry(topic.clone()).or_default() += 1;
        }
    }

    /// The counts of `topics`, to tell later whether any of them moved.
    fn of(&self, topics: &[String]) -> Vec<u64> {
        topics
            .iter()
            .map(|topic| self.by_topic.get(topic).copied().unwrap_or(0))
            .collect()
    }
}

impl EmbeddedConsumer {
    async fn fetch(&mut self, max_records: usize) -> Result<Vec<Record>, BusError> {
        if let Some(read) = self.tail.read_after(self.cursor, &self.topics, max_records) {
            self.cursor = read.last_seq;
            return Ok(read.records.iter().filter_map(|record| self.take(record)).collect());
        }
        // Half the interval: the poll loop comes back every CROSS_PROCESS_POLL,
        // and each of those visits must read the file.
        if self.tail.ends_at(self.cursor) && self.looked_in_file.elapsed() < CROSS_PROCESS_POLL / 2 {
            return Ok(Vec::new());
        }
        self.looked_in_file = tokio::time::Instant::now();
        self.fetch_from_file(max_records).await
    }

    /// A record read from the tail, unless this consumer's position in its
    /// partition is past it.
    fn take(&mut self, record: &Record) -> Option<Record> {
        let position = self
            .positions
            .entry((record.topic.clone(), record.partition))
            .or_insert(0);
        if record.offset < *position {
            return None;
        }
        *position = record.offset + 1;
        Some(record.clone())
    }

    async fn fetch_from_file(&mut self, max_records: usize) -> Result<Vec<Record>, BusError> {
        let placeholders = vec!["?"; self.topics.len()].join(", ");
        let sql = format!(
            r#"SELECT seq, topic, partition, "offset", key, value, headers, timestamp_ms FROM records
               WHERE seq > ? AND topic IN ({placeholders}) ORDER BY seq LIMIT ?"#
        );
        let mut query = sqlx::query(&sql).bind(self.cursor);
        for topic in &self.topics {
            query = query.bind(topic);
        }
        let rows = query
            .bind(max_records as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            self.cursor = row.get::<i64, _>(0);
            let topic: String = row.get(1);
            let partition = row.get::<i64, _>(2) as i32;
            let offset: i64 = row.get(3);
            let position = self.positions.entry((topic.clone(), partition)).or_insert(0);
            if offset < *position {
                continue;
            }
            *position = offset + 1;
            let headers: Vec<(String, String)> = serde_json::from_str(row.get::<&str, _>(6)).unwrap_or_default();
            records.push(Record {
                topic,
                partition,
                offset,
                key: row.get(4),
                value: row.get(5),
                headers,
                timestamp: Utc
                    .timestamp_millis_opt(row.get(7))
                    .single()
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            });
        }
        Ok(records)
    }
}

#[async_trait]
impl BusConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>, BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.appended.borrow_and_update().of(&self.topics);
            let records = self.fetch(max_records).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            // Records from other processes are looked for every
            // CROSS_PROCESS_POLL, however often this process wakes us for
            // topics we do not read.
            let look_again = (tokio::time::Instant::now() + CROSS_PROCESS_POLL).min(deadline);
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(Vec::new());
                }
                if now >= look_again {
                    break;
                }
                let wait = look_again - now;
                // A timeout here is expected: it is how records from other processes are seen.
                match tokio::time::timeout(wait, self.appended.changed()).await {
                    Ok(Ok(())) if self.appended.borrow_and_update().of(&self.topics) == seen => continue,
                    // The log is closed in this process: only other processes can append.
                    Ok(Err(_)) => tokio::time::sleep(wait).await,
                    _ => {}
                }
                break;
            }
        }
    }

    async fn commit(&mut self, positions: &[RecordPosition]) -> Result<(), BusError> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let next_offsets = next_offsets(positions);
        if next_offsets.is_empty() {
            return Ok(());
        }
        let now_ms = Utc::now().timestamp_millis();
        let _writing = self.write_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(storage_error)?;
        for ((topic, partition), next_offset) in next_offsets {
            sqlx::query(
                "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, committed_at_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (group_id, topic, partition)
                 DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset),
                               committed_at_ms = excluded.committed_at_ms",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(next_offset)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        }
        tx.commit().await.map_err(storage_error)
    }

    async fn lag(&mut self) -> Option<Vec<PartitionLag>> {
        let group = self.group.as_ref()?;
        let topics = serde_json::to_string(&self.topics).ok()?;
        let rows = sqlx::query(
            "SELECT h.topic, h.partition, h.next_offset - COALESCE(c.next_offset, 0) FROM partition_heads h
             LEFT JOIN consumer_offsets c ON c.group_id = ? AND c.topic = h.topic AND c.partition = h.partition
             WHERE h.topic IN (SELECT value FROM json_each(?))
             ORDER BY h.topic, h.partition",
        )
        .bind(group)
        .bind(topics)
        .fetch_all(&self.pool)
        .await
        .ok()?;
        Some(
            rows.iter()
                .map(|row| PartitionLag {
                    topic: row.get(0),
                    partition: row.get(1),
                    records_behind: row.get(2),
                })
                .collect(),
        )
    }
}

/// Where a consumer starts reading the log: just before the oldest record
/// any of its partitions still needs, or at the newest record when none needs
/// any. The newest seq is read first: a record appended while the positions
/// are looked up then lands after the cursor, never before it.
async fn cursor_before(pool: &SqlitePool, positions: &HashMap<(String, i32), i64>) -> Result<i64, BusError> {
    let newest_seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM records")
        .fetch_one(pool)
        .await
        .map_err(storage_error)?
        .get(0);
    let mut cursor = newest_seq;
    for ((topic, partition), offset) in positions {
        // The record at the position, or (deleted by retention) the oldest
        // after it; none (NULL, not 0) when the partition is read to its end.
        let seq: Option<i64> =
            sqlx::query(r#"SELECT MIN(seq) FROM records WHERE topic = ? AND partition = ? AND "offset" >= ?"#)
                .bind(topic)
                .bind(partition)
                .bind(offset)
                .fetch_one(pool)
                .await
                .map_err(storage_error)?
                .get::<Option<i64>, _>(0);
        if let Some(seq) = seq {
            cursor = cursor.min(seq - 1);
        }
    }
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the chaos suite: a partition read to its end made `MIN(seq)`
    /// NULL, read as 0, so every consumer started at the log's beginning and
    /// walked all of it at each start: minutes, for a week's records.
    #[tokio::test]
    async fn a_group_that_has_read_everything_starts_at_the_newest_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir).await;
        let produced = log
            .produce(
                (0..50)
                    .map(|i| record("order_events", "order-1", &i.to_string()))
                    .collect(),
            )
            .await
            .unwrap();
        let mut consumer = log.subscribe(group("g", "order_events")).await.unwrap();
        while !values_of(consumer.as_mut(), 100).await.is_empty() {}
        consumer.commit(&produced).await.unwrap();
        drop(consumer);

        let partition = produced[0].partition;
        let mut positions = HashMap::new();
        for p in 0..TopicCatalog::builtin().get("order_events").unwrap().partitions as i32 {
            positions.insert(("order_events".to_string(), p), if p == partition { 50 } else { 0 });
        }
        let newest: i64 = sqlx::query("SELECT MAX(seq) FROM records")
            .fetch_one(&log.pool)
            .await
            .unwrap()
            .get(0);
        assert_eq!(cursor_before(&log.pool, &positions).await.unwrap(), newest);
    }

    fn record(topic: &str, key: &str, value: &str) -> OutgoingRecord {
        OutgoingRecord {
            topic: topic.into(),
            key: Some(key.into()),
            value: value.into(),
            headers: vec![],
        }
    }

    /// The values of what one poll returns.
    async fn values_of(consumer: &mut dyn BusConsumer, max_records: usize) -> Vec<String> {
        let records = consumer.poll(max_records, Duration::from_millis(10)).await.unwrap();
        records.into_iter().map(|record| record.value).collect()
    }

    async fn open_log(dir: &tempfile::TempDir) -> EmbeddedLog {
        EmbeddedLog::open(&dir.path().join("log.db"), &TopicCatalog::builtin())
            .await
            .unwrap()
    }

    fn group(name: &str, topic: &str) -> Subscription {
        Subscription {
            group: Some(name.into()),
            topics: vec![topic.into()],
            start: StartFrom::Earliest,
        }
    }

    #[tokio::test]
    async fn records_with_one_key_keep_their_order_in_one_partition() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir).await;
        let positions = log
            .produce(
                (0..5)
                    .map(|i| record("order_events", "order-1", &i.to_string()))
                    .collect(),
            )
            .await
            .unwrap();
        assert!(positions
            .windows(2)
            .all(|w| w[0].partition == w[1].partition && w[1].offset == w[0].offset + 1));
        let mut consumer = log.subscribe(group("g", "order_events")).await.unwrap();
        let values = values_of(consumer.as_mut(), 100).await;
        assert_eq!(values, vec!["0", "1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn committed_offsets_survive_a_reopen_and_uncommitted_records_come_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_log(&dir).await;
            log.produce((0..4).map(|i| record("order_events", "k", &i.to_string())).collect())
                .await
                .unwrap();
            let mut consumer = log.subscribe(group("g", "order_events")).await.unwrap();
            let records = consumer.poll(2, Duration::from_millis(10)).await.unwrap();
            consumer.commit(&[records[1].position()]).await.unwrap();
            // Records 2 and 3 are read but never committed.
            consumer.poll(10, Duration::from_millis(10)).await.unwrap();
        }
        let log = open_log(&dir).await;
        let mut consumer = log.subscribe(group("g", "order_events")).await.unwrap();
        let values = values_of(consumer.as_mut(), 10).await;
        assert_eq!(values, vec!["2", "3"]);
    }

    #[tokio::test]
    async fn a_group_can_be_reset_to_any_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir).await;
        let positions = log
            .produce((0..4).map(|i| record("order_events", "k", &i.to_string())).collect())
            .await
            .unwrap();
        let partition = positions[0].partition;
        log.reset_offsets("g", "order_events", Some(partition), OffsetReset::To(1))
            .await
            .unwrap();
        let mut consumer = log.subscribe(group("g", "order_events")).await.unwrap();
        let values = values_of(consumer.as_mut(), 10).await;
        assert_eq!(values, vec!["1", "2", "3"]);
    }

    #[tokio::test]
    async fn a_reader_from_latest_sees_only_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir).await;
        log.produce(vec![record("order_events", "k", "old")]).await.unwrap();
        let mut reader = log
            .subscribe(Subscription {
                group: None,
                topics: vec!["order_events".into()],
                start: StartFrom::Latest,
            })
            .await
            .unwrap();
        log.produce(vec![record("order_events", "k", "new")]).await.unwrap();
        let values = values_of(reader.as_mut(), 10).await;
        assert_eq!(values, vec!["new"]);
    }

    #[tokio::test]
    async fn producing_to_an_unknown_topic_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(&dir).await;
        let error = log.produce(vec![record("no_such_topic", "k", "v")]).await.unwrap_err();
        assert!(matches!(error, BusError::UnknownTopic(_)));
    }
}
