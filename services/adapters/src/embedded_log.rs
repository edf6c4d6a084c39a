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
//!
//! The process reaches the file through one connection, on its own thread
//! ([`crate::sqlite`]): a produce call or an offset commit is one transaction
//! run there in one hop, and the work on that thread is what orders the
//! process's writes (and the tail's appends) as SQLite commits them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use tokio::sync::watch;

use crate::log_tail::{LogTail, TAIL_BYTES, TAIL_RECORDS};
use crate::sqlite::{is_busy, on_connection, open_sqlite, Connection, PageCache};
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
    db: Connection,
    partitions: Arc<std::sync::RwLock<HashMap<String, u32>>>,
    /// How many produce calls in this process appended to each topic: a
    /// waiting consumer wakes on a change and reads only if one of its topics
    /// moved.
    appended: Arc<watch::Sender<Appended>>,
    unkeyed_counter: Arc<AtomicU64>,
    tail: Arc<LogTail>,
}

fn storage_error(error: tokio_rusqlite::Error) -> BusError {
    if is_busy(&error) {
        BusError::Unavailable(error.to_string())
    } else {
        BusError::Other(error.to_string())
    }
}

fn sqlite_error(error: rusqlite::Error) -> BusError {
    storage_error(error.into())
}

/// Runs `work` on the log's connection, on its thread.
async fn on_log<R: Send + 'static>(
    db: &Connection,
    work: impl FnOnce(&mut rusqlite::Connection) -> Result<R, BusError> + Send + 'static,
) -> Result<R, BusError> {
    on_connection(db, work, storage_error).await
}

fn immediate(db: &mut rusqlite::Connection) -> Result<rusqlite::Transaction<'_>, BusError> {
    db.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)
}

fn timestamp(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `path` and creates the catalog's topics.
    pub async fn open(path: &Path, catalog: &TopicCatalog) -> Result<EmbeddedLog, BusError> {
        let db = open_sqlite(path, PageCache::DEFAULT).await.map_err(storage_error)?;
        on_log(&db, |db| db.execute_batch(SCHEMA).map_err(sqlite_error)).await?;
        let (appended, _) = watch::channel(Appended::default());
        let log = EmbeddedLog {
            db,
            partitions: Arc::default(),
            appended: Arc::new(appended),
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
        let name = topic.to_string();
        let n = on_log(&self.db, move |db| partitions_of(db, &name)).await?;
        self.partitions
            .write()
            .expect("not poisoned")
            .insert(topic.to_string(), n);
        Ok(n)
    }
}

/// Every row `sql` selects with `params`, each read by `read`, through the
/// connection's cache of prepared statements.
fn all_rows<T, C: FromIterator<T>>(
    db: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<C, BusError> {
    let mut statement = db.prepare_cached(sql).map_err(sqlite_error)?;
    let rows = statement
        .query_map(params, read)
        .and_then(|rows| rows.collect::<rusqlite::Result<C>>())
        .map_err(sqlite_error);
    rows
}

fn partitions_of(db: &rusqlite::Connection, topic: &str) -> Result<u32, BusError> {
    let n: Option<i64> = db
        .prepare_cached("SELECT partitions FROM topics WHERE name = ?")
        .and_then(|mut statement| statement.query_row([topic], |row| row.get(0)).optional())
        .map_err(sqlite_error)?;
    n.map(|n| n as u32)
        .ok_or_else(|| BusError::UnknownTopic(topic.to_string()))
}

/// The next offset of every partition of `topic`: where "latest" begins.
fn heads(db: &rusqlite::Connection, topic: &str) -> Result<HashMap<i32, i64>, BusError> {
    all_rows(
        db,
        "SELECT partition, next_offset FROM partition_heads WHERE topic = ?",
        [topic],
        |row| Ok((row.get::<_, i64>(0)? as i32, row.get(1)?)),
    )
}

/// Appends `partitioned` records in one transaction, each at the head of its
/// partition, and returns them as written with the `seq` of the first.
/// Another process's producer waits for the write lock this transaction
/// takes first, so the heads stay right.
fn append(
    db: &mut rusqlite::Connection,
    partitioned: Vec<(i32, OutgoingRecord)>,
    now_ms: i64,
) -> Result<(i64, Vec<Record>), BusError> {
    let tx = immediate(db)?;
    let mut heads: HashMap<(String, i32), i64> = HashMap::new();
    let mut written = Vec::with_capacity(partitioned.len());
    let mut first_seq = None;
    {
        let mut read_head = tx
            .prepare_cached("SELECT next_offset FROM partition_heads WHERE topic = ? AND partition = ?")
            .map_err(sqlite_error)?;
        let mut insert = tx
            .prepare_cached(
                r#"INSERT INTO records (topic, partition, "offset", key, value, headers, timestamp_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?)"#,
            )
            .map_err(sqlite_error)?;
        for (partition, record) in partitioned {
            let head = match heads.entry((record.topic.clone(), partition)) {
                Entry::Occupied(head) => head.into_mut(),
                Entry::Vacant(head) => {
                    let stored: Option<i64> = read_head
                        .query_row(params![record.topic, partition], |row| row.get(0))
                        .optional()
                        .map_err(sqlite_error)?;
                    head.insert(stored.unwrap_or(0))
                }
            };
            let offset = *head;
            *head += 1;
            let headers = serde_json::to_string(&record.headers).expect("strings serialize");
            insert
                .execute(params![
                    record.topic,
                    partition,
                    offset,
                    record.key,
                    record.value,
                    headers,
                    now_ms
                ])
                .map_err(sqlite_error)?;
            first_seq.get_or_insert(tx.last_insert_rowid());
            written.push(Record {
                topic: record.topic,
                partition,
                offset,
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp: timestamp(now_ms),
            });
        }
        let mut move_head = tx
            .prepare_cached(
                "INSERT INTO partition_heads (topic, partition, next_offset) VALUES (?, ?, ?)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            )
            .map_err(sqlite_error)?;
        for ((topic, partition), next) in &heads {
            move_head
                .execute(params![topic, partition, next])
                .map_err(sqlite_error)?;
        }
    }
    tx.commit().map_err(sqlite_error)?;
    Ok((first_seq.unwrap_or(0), written))
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
        let mut topics: Vec<String> = partitioned.iter().map(|(_, r)| r.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let now_ms = Utc::now().timestamp_millis();
        let (tail, appended) = (self.tail.clone(), self.appended.clone());
        on_log(&self.db, move |db| {
            let (first_seq, written) = append(db, partitioned, now_ms)?;
            let positions = written.iter().map(Record::position).collect();
            // Here, on the connection's thread, the tail takes the records in
            // the order SQLite committed them; only then are readers woken.
            tail.append(first_seq, written);
            appended.send_modify(|appended| appended.count(&topics));
            Ok(positions)
        })
        .await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError> {
        for topic in &subscription.topics {
            self.partition_count(topic).await?;
        }
        let (topics, group, start) = (
            subscription.topics.clone(),
            subscription.group.clone(),
            subscription.start,
        );
        let (positions, cursor) = on_log(&self.db, move |db| {
            let positions = starting_positions(db, &topics, group.as_deref(), start)?;
            let cursor = cursor_before(db, &positions).map_err(sqlite_error)?;
            Ok((positions, cursor))
        })
        .await?;
        Ok(Box::new(EmbeddedConsumer {
            db: self.db.clone(),
            group: subscription.group,
            topics: subscription.topics,
            positions,
            cursor,
            appended: self.appended.subscribe(),
            tail: self.tail.clone(),
            looked_in_file: tokio::time::Instant::now(),
        }))
    }

    async fn enforce_retention(&self, now: chrono::DateTime<Utc>) -> Result<u64, BusError> {
        let tail = self.tail.clone();
        on_log(&self.db, move |db| {
            let deleted = db
                .execute(
                    "DELETE FROM records WHERE timestamp_ms <
                         ? - (SELECT retention_ms FROM topics WHERE topics.name = records.topic)",
                    [now.timestamp_millis()],
                )
                .map_err(sqlite_error)?;
            if deleted > 0 {
                tail.clear();
            }
            Ok(deleted as u64)
        })
        .await
    }

    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError> {
        let topics: Vec<(String, i64, i64)> = catalog
            .topics()
            .iter()
            .map(|topic| (topic.name.clone(), topic.partitions as i64, topic.retention_ms))
            .collect();
        on_log(&self.db, move |db| {
            let tx = immediate(db)?;
            for (name, partitions, retention_ms) in &topics {
                tx.execute(
                    "INSERT OR IGNORE INTO topics (name, partitions, retention_ms) VALUES (?, ?, ?)",
                    params![name, partitions, retention_ms],
                )
                .map_err(sqlite_error)?;
                for partition in 0..partitions_of(&tx, name)? {
                    tx.execute(
                        "INSERT OR IGNORE INTO partition_heads (topic, partition, next_offset) VALUES (?, ?, 0)",
                        params![name, partition],
                    )
                    .map_err(sqlite_error)?;
                }
            }
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError> {
        on_log(&self.db, |db| {
            all_rows(
                db,
                "SELECT t.name, t.partitions, COALESCE(SUM(h.next_offset), 0) FROM topics t
                 LEFT JOIN partition_heads h ON h.topic = t.name GROUP BY t.name ORDER BY t.name",
                [],
                |row| {
                    Ok(TopicDescription {
                        name: row.get(0)?,
                        partitions: row.get::<_, i64>(1)? as u32,
                        records: row.get(2)?,
                    })
                },
            )
        })
        .await
    }

    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError> {
        let (group, topic) = (group.to_string(), topic.to_string());
        let now_ms = Utc::now().timestamp_millis();
        on_log(&self.db, move |db| {
            let tx = immediate(db)?;
            let heads = heads(&tx, &topic)?;
            for p in 0..partitions_of(&tx, &topic)? as i32 {
                if partition.is_some_and(|only| only != p) {
                    continue;
                }
                let head = heads.get(&p).copied().unwrap_or(0);
                let next_offset = match to {
                    OffsetReset::Earliest => 0,
                    OffsetReset::Latest => head,
                    OffsetReset::To(offset) => offset.clamp(0, head),
                };
                tx.execute(
                    "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, committed_at_ms)
                     VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (group_id, topic, partition)
                     DO UPDATE SET next_offset = excluded.next_offset, committed_at_ms = excluded.committed_at_ms",
                    params![group, topic, p, next_offset, now_ms],
                )
                .map_err(sqlite_error)?;
            }
            tx.commit().map_err(sqlite_error)
        })
        .await
    }
}

/// Where a subscription starts in each partition of its topics: the group's
/// committed offset, or (none committed) its start.
fn starting_positions(
    db: &rusqlite::Connection,
    topics: &[String],
    group: Option<&str>,
    start: StartFrom,
) -> Result<HashMap<(String, i32), i64>, BusError> {
    let mut positions = HashMap::new();
    for topic in topics {
        let heads = heads(db, topic)?;
        let committed: HashMap<i32, i64> = match group {
            Some(group) => all_rows(
                db,
                "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?",
                [group, topic.as_str()],
                |row| Ok((row.get::<_, i64>(0)? as i32, row.get(1)?)),
            )?,
            None => HashMap::new(),
        };
        for partition in 0..partitions_of(db, topic)? as i32 {
            let start = committed.get(&partition).copied().unwrap_or(match start {
                StartFrom::Earliest => 0,
                StartFrom::Latest => heads.get(&partition).copied().unwrap_or(0),
            });
            positions.insert((topic.clone(), partition), start);
        }
    }
    Ok(positions)
}

struct EmbeddedConsumer {
    db: Connection,
    group: Option<String>,
    topics: Vec<String>,
    /// The next offset to hand out, per partition.
    positions: HashMap<(String, i32), i64>,
    /// The `seq` of the last record looked at.
    cursor: i64,
    appended: watch::Receiver<Appended>,
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

/// A record read from the file, with its `seq`.
struct StoredRecord {
    seq: i64,
    record: Record,
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
        let mut binds: Vec<rusqlite::types::Value> = vec![self.cursor.into()];
        binds.extend(self.topics.iter().map(|topic| topic.clone().into()));
        binds.push((max_records as i64).into());
        let stored: Vec<StoredRecord> = on_log(&self.db, move |db| {
            all_rows(db, &sql, rusqlite::params_from_iter(binds), |row| {
                let headers: String = row.get(6)?;
                Ok(StoredRecord {
                    seq: row.get(0)?,
                    record: Record {
                        topic: row.get(1)?,
                        partition: row.get::<_, i64>(2)? as i32,
                        offset: row.get(3)?,
                        key: row.get(4)?,
                        value: row.get(5)?,
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                        timestamp: timestamp(row.get(7)?),
                    },
                })
            })
        })
        .await?;
        let mut records = Vec::with_capacity(stored.len());
        for StoredRecord { seq, record } in stored {
            self.cursor = seq;
            let position = self
                .positions
                .entry((record.topic.clone(), record.partition))
                .or_insert(0);
            if record.offset < *position {
                continue;
            }
            *position = record.offset + 1;
            records.push(record);
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
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let next_offsets: Vec<(String, i32, i64)> = next_offsets(positions)
            .into_iter()
            .map(|((topic, partition), next)| (topic.to_string(), partition, next))
            .collect();
        if next_offsets.is_empty() {
            return Ok(());
        }
        let now_ms = Utc::now().timestamp_millis();
        on_log(&self.db, move |db| {
            let tx = immediate(db)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, committed_at_ms)
                         VALUES (?, ?, ?, ?, ?)
                         ON CONFLICT (group_id, topic, partition)
                         DO UPDATE SET next_offset = MAX(next_offset, excluded.next_offset),
                                       committed_at_ms = excluded.committed_at_ms",
                    )
                    .map_err(sqlite_error)?;
                for (topic, partition, next_offset) in next_offsets {
                    upsert
                        .execute(params![group, topic, partition, next_offset, now_ms])
                        .map_err(sqlite_error)?;
                }
            }
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn lag(&mut self) -> Option<Vec<PartitionLag>> {
        let group = self.group.clone()?;
        let topics = serde_json::to_string(&self.topics).ok()?;
        on_log(&self.db, move |db| {
            all_rows(
                db,
                "SELECT h.topic, h.partition, h.next_offset - COALESCE(c.next_offset, 0) FROM partition_heads h
                 LEFT JOIN consumer_offsets c ON c.group_id = ? AND c.topic = h.topic AND c.partition = h.partition
                 WHERE h.topic IN (SELECT value FROM json_each(?))
                 ORDER BY h.topic, h.partition",
                [group, topics],
                |row| {
                    Ok(PartitionLag {
                        topic: row.get(0)?,
                        partition: row.get(1)?,
                        records_behind: row.get(2)?,
                    })
                },
            )
        })
        .await
        .ok()
    }
}

/// Where a consumer starts reading the log: just before the oldest record
/// any of its partitions still needs, or at the newest record when none needs
/// any. The newest seq is read first: a record appended while the positions
/// are looked up then lands after the cursor, never before it.
fn cursor_before(db: &rusqlite::Connection, positions: &HashMap<(String, i32), i64>) -> rusqlite::Result<i64> {
    let newest_seq: i64 = db.query_row("SELECT COALESCE(MAX(seq), 0) FROM records", [], |row| row.get(0))?;
    let mut cursor = newest_seq;
    let mut oldest_needed =
        db.prepare_cached(r#"SELECT MIN(seq) FROM records WHERE topic = ? AND partition = ? AND "offset" >= ?"#)?;
    for ((topic, partition), offset) in positions {
        // The record at the position, or (deleted by retention) the oldest
        // after it; none (NULL, not 0) when the partition is read to its end.
        let seq: Option<i64> = oldest_needed.query_row(params![topic, partition, offset], |row| row.get(0))?;
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
        let (newest, cursor) = log
            .db
            .call(move |db| {
                let newest: i64 = db.query_row("SELECT MAX(seq) FROM records", [], |row| row.get(0))?;
                Ok((newest, cursor_before(db, &positions)?))
            })
            .await
            .unwrap();
        assert_eq!(cursor, newest);
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
