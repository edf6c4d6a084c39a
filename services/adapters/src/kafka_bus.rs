//! The message bus on Apache Kafka (or anything that speaks its protocol), through
//! rdkafka.
//!
//! Producers are idempotent (`enable.idempotence`, `acks=all`) and partition with
//! murmur2, as the Java client and the embedded log do. Consumers join their group,
//! never auto-commit, and commit an offset only when the consumer loop says the
//! record's effects are stored. A broker that is down or restarting is not an
//! error to crash on: librdkafka reconnects by itself, its complaints are logged
//! here, and calls that time out come back as [`BusError::Unavailable`], which
//! every caller retries.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use campusg_runtime::bus::{
    next_offsets, BusConsumer, BusError, MessageBus, OffsetReset, OutgoingRecord, PartitionLag, Record, RecordPosition,
    StartFrom, Subscription, TopicDescription, MAX_RECORD_BYTES,
};
use campusg_runtime::topics::TopicCatalog;

/// How long a produce may wait for the broker before it is reported unavailable.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a member of a group may be silent before the broker gives its
/// partitions away: short for a dynamic member, whose replacement is a new
/// member anyway; long enough for a static member (`--instance-id`) to be
/// restarted and take its partitions back without a rebalance.
const DYNAMIC_SESSION_TIMEOUT_MS: u32 = 10_000;
const STATIC_SESSION_TIMEOUT_MS: u32 = 45_000;
/// How long a consumer may go between polls before the broker evicts it.
const MAX_POLL_INTERVAL_MS: u32 = 900_000;
/// How long an admin or metadata call may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);
/// What a consumer fetches ahead of its polls, at most. librdkafka's default
/// is 64 MiB per consumer, and a process runs a consumer per service: a few
/// thousand records ahead is more than a consumer's next batches take.
const PREFETCH_KIB: u32 = 4096;

#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub replication_factor: i32,
    /// This replica's stable name, for static group membership.
    pub instance_id: Option<String>,
    /// How long the broker may hold a fetch that has nothing to return: each
    /// saga step waits up to this long when the system is idle, and each
    /// consumer sends a fetch this often.
    pub fetch_wait_ms: u32,
    /// librdkafka's security settings (`security.protocol`, `sasl.*`,
    /// `ssl.*`), for every client: see [`security_settings_from`].
    pub security: Vec<(String, String)>,
}

/// The librdkafka security settings named by environment variables:
/// `KAFKA_SECURITY_PROTOCOL=SASL_SSL` is `security.protocol`,
/// `KAFKA_SASL_MECHANISM=SCRAM-SHA-512` is `sasl.mechanism`,
/// `KAFKA_SSL_CA_LOCATION=...` is `ssl.ca.location`, and so on: the prefix
/// dropped, lower case, `_` for `.`. Nothing else is taken from the environment.
pub fn security_settings_from(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("KAFKA_")?.to_ascii_lowercase().replace('_', ".");
            let security = key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.");
            security.then_some((key, value))
        })
        .collect();
    settings.sort();
    settings
}

/// The `min.insync.replicas` of a topic with `replication_factor` copies:
/// with `acks=all`, a write is acknowledged once all but one of the copies
/// have it, so one broker may be lost without losing an acknowledged record,
/// and one may be down without stopping writes. None for a single copy (the
/// broker's default of 1 is all there is).
pub fn min_insync_replicas(replication_factor: i32) -> Option<i32> {
    (replication_factor > 1).then_some(replication_factor - 1)
}

/// Routes librdkafka's own log lines and errors into `tracing`, and logs
/// partition assignments.
#[derive(Clone, Default)]
pub struct LoggingContext;

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(facility, "kafka: {message}")
            }
            // Connection failures are errors to librdkafka but passing to us: it retries.
            RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => tracing::warn!(facility, "kafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(facility, "kafka: {message}"),
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "kafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka logs each connection failure through `log` already; only
        // the state that matters to an operator is repeated here.
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            tracing::warn!("kafka: no broker is reachable ({reason}); waiting for one to come back");
        } else {
            tracing::debug!(error = %error, "kafka: {reason}");
        }
    }
}

impl ConsumerContext for LoggingContext {
    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let assigned: Vec<String> = partitions
                    .elements()
                    .iter()
                    .map(|p| format!("{}[{}]", p.topic(), p.partition()))
                    .collect();
                tracing::info!(partitions = %assigned.join(" "), "kafka: partitions assigned");
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(count = partitions.count(), "kafka: partitions revoked");
            }
            Rebalance::Error(error) => tracing::warn!(error = %error, "kafka: rebalance failed"),
        }
    }

    /// Offsets are committed asynchronously; a failed commit is reported here
    /// (its records will be delivered again, and recognised as duplicates).
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            let partitions: Vec<String> = offsets
                .elements()
                .iter()
                .map(|p| format!("{}[{}]", p.topic(), p.partition()))
                .collect();
            tracing::warn!(error = %error, partitions = %partitions.join(" "), "kafka: an offset commit failed");
        }
    }
}

#[derive(Clone)]
pub struct KafkaBus {
    settings: KafkaSettings,
    /// Replaced when librdkafka reports it fatally failed (an idempotent
    /// producer that lost its sequence): a failed producer never recovers.
    producer: Arc<std::sync::RwLock<FutureProducer<LoggingContext>>>,
}

/// Why the producer refused `record`: too large (librdkafka's own limit, or a
/// broker's below [`MAX_RECORD_BYTES`]), or the broker is unavailable.
fn refused_record(error: KafkaError, record: &OutgoingRecord) -> BusError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => BusError::TooLarge {
            size: record.size_bytes(),
        },
        _ => unavailable(error),
    }
}

fn unavailable(error: KafkaError) -> BusError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            BusError::UnknownTopic(error.to_string())
        }
        _ => BusError::Unavailable(error.to_string()),
    }
}

impl KafkaBus {
    /// Where every client starts: the brokers, and how to reach them safely.
    fn base_config(settings: &KafkaSettings) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &settings.bootstrap_servers);
        for (key, value) in &settings.security {
            config.set(key, value);
        }
        config
    }

    pub fn connect(settings: KafkaSettings) -> Result<KafkaBus, BusError> {
        let producer = Arc::new(std::sync::RwLock::new(KafkaBus::new_producer(&settings)?));
        Ok(KafkaBus { settings, producer })
    }

    fn new_producer(settings: &KafkaSettings) -> Result<FutureProducer<LoggingContext>, BusError> {
        KafkaBus::base_config(settings)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            // Room for a record of MAX_RECORD_BYTES with librdkafka's own
            // framing; brokers take 1 MiB by default.
            .set("message.max.bytes", "1048576")
            .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
            .create_with_context(LoggingContext)
            .map_err(|e| BusError::Other(format!("cannot configure the Kafka producer: {e}")))
    }

    /// Enqueues every record, then waits for the deliveries: one round trip
    /// for the batch, and the idempotent producer keeps each partition in order.
    async fn produce_with(
        producer: &FutureProducer<LoggingContext>,
        records: &[OutgoingRecord],
    ) -> Result<Vec<RecordPosition>, BusError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                });
            }
            let mut future_record = FutureRecord::to(&record.topic)
                .payload(record.value.as_bytes())
                .headers(headers);
            if let Some(key) = &record.key {
                future_record = future_record.key(key.as_bytes());
            }
            let delivery = producer
                .send_result(future_record)
                .map_err(|(error, _)| refused_record(error, record))?;
            deliveries.push(delivery);
        }
        let mut positions = Vec::with_capacity(records.len());
        for (record, delivery) in records.iter().zip(deliveries) {
            let delivery = delivery
                .await
                .map_err(|_| BusError::Unavailable("the Kafka producer shut down".to_string()))?
                .map_err(|(error, _)| refused_record(error, record))?;
            positions.push(RecordPosition {
                topic: record.topic.clone(),
                partition: delivery.partition,
                offset: delivery.offset,
            });
        }
        Ok(positions)
    }

    fn producer(&self) -> FutureProducer<LoggingContext> {
        self.producer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After a failed produce: if the producer failed fatally, a new one takes
    /// its place, and the caller's retry (the outbox relay's) goes through it.
    fn replace_if_fatal(&self, failed: &FutureProducer<LoggingContext>) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        tracing::error!(?code, reason = %reason, "kafka: the producer failed fatally; making a new one");
        match KafkaBus::new_producer(&self.settings) {
            Ok(fresh) => *self.producer.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh,
            Err(error) => tracing::error!(error = %error, "kafka: cannot make a new producer"),
        }
    }

    fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = KafkaBus::base_config(&self.settings);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", DYNAMIC_SESSION_TIMEOUT_MS.to_string())
            // Longer than one record's retries may last (300 s by default) plus
            // a batch: a member retrying is not evicted while it still owns the
            // partition, so no second owner handles the same records.
            .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS.to_string())
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", self.settings.fetch_wait_ms.to_string())
            .set("queued.max.messages.kbytes", PREFETCH_KIB.to_string());
        if let Some(instance) = &self.settings.instance_id {
            // A static member: its session outlives a restart, so that it takes
            // its partitions back without a rebalance.
            config.set("group.instance.id", format!("{instance}-{group}"));
            config.set("session.timeout.ms", STATIC_SESSION_TIMEOUT_MS.to_string());
        }
        config
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>, BusError> {
        KafkaBus::base_config(&self.settings)
            .create()
            .map_err(|e| BusError::Other(format!("cannot configure the Kafka admin client: {e}")))
    }

    /// A consumer outside any group's membership, for metadata and offsets.
    fn metadata_consumer(&self, group: &str) -> Result<SharedConsumer, BusError> {
        self.consumer_config(group)
            .create_with_context(LoggingContext)
            .map(SharedConsumer::new)
            .map_err(|e| BusError::Other(format!("cannot configure a Kafka consumer: {e}")))
    }

    async fn partition_count(&self, consumer: SharedConsumer, topic: &str) -> Result<i32, BusError> {
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let metadata = consumer
                .fetch_metadata(Some(&topic), ADMIN_TIMEOUT)
                .map_err(unavailable)?;
            let found = metadata.topics().iter().find(|t| t.name() == topic);
            match found {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
                _ => Err(BusError::UnknownTopic(topic.clone())),
            }
        })
        .await
        .map_err(|e| BusError::Other(e.to_string()))?
    }

    async fn watermarks(&self, consumer: SharedConsumer, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_watermarks(&topic, partition, ADMIN_TIMEOUT)
                .map_err(unavailable)
        })
        .await
        .map_err(|e| BusError::Other(e.to_string()))?
    }
}

#[async_trait]
impl MessageBus for KafkaBus {
    async fn produce(&self, records: Vec<OutgoingRecord>) -> Result<Vec<RecordPosition>, BusError> {
        if let Some(size) = records
            .iter()
            .map(OutgoingRecord::size_bytes)
            .find(|size| *size > MAX_RECORD_BYTES)
        {
            return Err(BusError::TooLarge { size });
        }
        let producer = self.producer();
        let outcome = KafkaBus::produce_with(&producer, &records).await;
        if outcome.is_err() {
            self.replace_if_fatal(&producer);
        }
        outcome
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn BusConsumer>, BusError> {
        let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
        match &subscription.group {
            Some(group) => {
                let mut config = self.consumer_config(group);
                if subscription.start == StartFrom::Latest {
                    config.set("auto.offset.reset", "latest");
                }
                let consumer: StreamConsumer<LoggingContext> = config
                    .create_with_context(LoggingContext)
                    .map_err(|e| BusError::Other(format!("cannot configure a Kafka consumer: {e}")))?;
                consumer.subscribe(&topics).map_err(unavailable)?;
                Ok(Box::new(KafkaConsumer {
                    consumer: Some(SharedConsumer::new(consumer)),
                    commits: true,
                }))
            }
            None => {
                // A reader: a throwaway group that never commits, assigned every
                // partition directly.
                let consumer = self.metadata_consumer(&format!("campusg-reader-{}", uuid::Uuid::new_v4()))?;
                let mut assignment = TopicPartitionList::new();
                for topic in &topics {
                    let partitions = self.partition_count(consumer.clone(), topic).await?;
                    for partition in 0..partitions {
                        let offset = match subscription.start {
                            StartFrom::Earliest => Offset::Beginning,
                            StartFrom::Latest => Offset::End,
                        };
                        assignment
                            .add_partition_offset(topic, partition, offset)
                            .map_err(unavailable)?;
                    }
                }
                consumer.assign(&assignment).map_err(unavailable)?;
                Ok(Box::new(KafkaConsumer {
                    consumer: Some(consumer),
                    commits: false,
                }))
            }
        }
    }

    async fn ensure_topics(&self, catalog: &TopicCatalog) -> Result<(), BusError> {
        let admin = self.admin()?;
        let retention: Vec<String> = catalog.topics().iter().map(|t| t.retention_ms.to_string()).collect();
        let min_insync = min_insync_replicas(self.settings.replication_factor).map(|n| n.to_string());
        let new_topics: Vec<NewTopic> = catalog
            .topics()
            .iter()
            .zip(&retention)
            .map(|(topic, retention_ms)| {
                let topic = NewTopic::new(
                    &topic.name,
                    topic.partitions as i32,
                    TopicReplication::Fixed(self.settings.replication_factor),
                )
                .set("retention.ms", retention_ms);
                match &min_insync {
                    Some(min_insync) => topic.set("min.insync.replicas", min_insync),
                    None => topic,
                }
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
        let results = admin.create_topics(&new_topics, &options).await.map_err(unavailable)?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = %name, "kafka: topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(BusError::Other(format!("cannot create topic {name}: {code}"))),
            }
        }
        Ok(())
    }

    async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: Option<i32>,
        to: OffsetReset,
    ) -> Result<(), BusError> {
        let consumer = self.metadata_consumer(group)?;
        let partitions = self.partition_count(consumer.clone(), topic).await?;
        let mut offsets = TopicPartitionList::new();
        for p in 0..partitions {
            if partition.is_some_and(|only| only != p) {
                continue;
            }
            let (low, high) = self.watermarks(consumer.clone(), topic, p).await?;
            let next = match to {
                OffsetReset::Earliest => low,
                OffsetReset::Latest => high,
                OffsetReset::To(offset) => offset.clamp(low, high),
            };
            offsets
                .add_partition_offset(topic, p, Offset::Offset(next))
                .map_err(unavailable)?;
        }
        tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync).map_err(unavailable))
            .await
            .map_err(|e| BusError::Other(e.to_string()))?
    }

    async fn describe_topics(&self) -> Result<Vec<TopicDescription>, BusError> {
        let consumer = self.metadata_consumer("campusg-describe")?;
        let metadata = {
            let consumer = consumer.clone();
            tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, ADMIN_TIMEOUT).map_err(unavailable))
                .await
                .map_err(|e| BusError::Other(e.to_string()))??
        };
        let topics: Vec<(String, Vec<i32>)> = metadata
            .topics()
            .iter()
            .filter(|topic| !topic.name().starts_with("__"))
            .map(|topic| {
                (
                    topic.name().to_string(),
                    topic.partitions().iter().map(|p| p.id()).collect(),
                )
            })
            .collect();
        let mut described = Vec::new();
        for (name, partitions) in topics {
            let mut records = 0;
            for partition in &partitions {
                let (low, high) = self.watermarks(consumer.clone(), &name, *partition).await?;
                records += high - low;
            }
            described.push(TopicDescription {
                name,
                partitions: partitions.len() as u32,
                records,
            });
        }
        described.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(described)
    }
}

struct KafkaConsumer {
    /// `None` once closed.
    consumer: Option<SharedConsumer>,
    commits: bool,
}

/// A librdkafka consumer that queries running on blocking threads may share,
/// and that closes on a thread of its own when the last of them lets go.
///
/// librdkafka's close leaves the group and blocks until the broker answers,
/// which takes long when the broker is gone and may never end
/// (rust-rdkafka#509). Run on the async runtime it would stall every task; run
/// on the runtime's blocking pool it would stall the runtime's shutdown, which
/// waits for that pool (a test never ends, a process never exits). A thread
/// nobody joins is the one place it cannot hold anything up.
#[derive(Clone)]
struct SharedConsumer(Arc<ClosesApart>);

struct ClosesApart {
    consumer: Option<StreamConsumer<LoggingContext>>,
    /// Told when the close has ended, if someone waits for it.
    closed: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl SharedConsumer {
    fn new(consumer: StreamConsumer<LoggingContext>) -> SharedConsumer {
        SharedConsumer(Arc::new(ClosesApart {
            consumer: Some(consumer),
            closed: Mutex::new(None),
        }))
    }

    /// Lets go of this handle and waits, up to `patience`, until the consumer
    /// has left its group: now, or when the last query holding it ends.
    /// Whether it has.
    async fn close_within(self, patience: Duration) -> bool {
        let (tell, closed) = tokio::sync::oneshot::channel();
        *self.0.closed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(tell);
        drop(self);
        matches!(tokio::time::timeout(patience, closed).await, Ok(Ok(())))
    }
}

impl Deref for SharedConsumer {
    type Target = StreamConsumer<LoggingContext>;

    fn deref(&self) -> &Self::Target {
        self.0
            .consumer
            .as_ref()
            .expect("the consumer is only taken when dropped")
    }
}

impl Drop for ClosesApart {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else { return };
        let closed = self
            .closed
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let closing = move || {
            drop(consumer);
            if let Some(tell) = closed {
                let _ = tell.send(());
            }
        };
        // Should no thread be had, the close runs here: late, never lost.
        if let Err(error) = std::thread::Builder::new().name("kafka-close".into()).spawn(closing) {
            tracing::warn!(%error, "kafka: no thread to close a consumer on");
        }
    }
}

/// How long one broker query for the health report may take.
const LAG_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// How long closing a consumer may take before it is left to finish on its own.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaConsumer {
    fn consumer(&self) -> &StreamConsumer<LoggingContext> {
        self.consumer
            .as_deref()
            .expect("a consumer is not used after it is closed")
    }
}

#[async_trait]
impl BusConsumer for KafkaConsumer {
    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>, BusError> {
        let mut records = Vec::new();
        let first = match tokio::time::timeout(timeout, self.consumer().recv()).await {
            Err(_) => return Ok(records),
            Ok(received) => received.map_err(unavailable)?,
        };
        records.push(owned_record(&first));
        drop(first);
        while records.len() < max_records {
            // What has already arrived, without waiting for more.
            match tokio::time::timeout(Duration::ZERO, self.consumer().recv()).await {
                Ok(Ok(message)) => records.push(owned_record(&message)),
                _ => break,
            }
        }
        Ok(records)
    }

    async fn commit(&mut self, positions: &[RecordPosition]) -> Result<(), BusError> {
        if !self.commits || positions.is_empty() {
            return Ok(());
        }
        let next_offsets = next_offsets(positions);
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next_offset) in next_offsets {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(next_offset))
                .map_err(unavailable)?;
        }
        // Asynchronous: a commit lost in a crash only means a redelivery, which
        // the handlers recognise.
        self.consumer().commit(&offsets, CommitMode::Async).map_err(unavailable)
    }

    /// The group's committed offset against each assigned partition's high
    /// watermark. librdkafka asks the broker, blocking, so it runs on a thread
    /// of its own and gives up after a couple of seconds.
    async fn lag(&mut self) -> Option<Vec<PartitionLag>> {
        if !self.commits {
            return None;
        }
        let consumer = self.consumer.clone()?;
        let counting = tokio::task::spawn_blocking(move || {
            let committed = consumer.committed(LAG_QUERY_TIMEOUT).ok()?;
            let mut lag = Vec::new();
            for partition in committed.elements() {
                let (low, high) = consumer
                    .fetch_watermarks(partition.topic(), partition.partition(), LAG_QUERY_TIMEOUT)
                    .ok()?;
                let next = match partition.offset() {
                    Offset::Offset(next) => next,
                    _ => low,
                };
                lag.push(PartitionLag {
                    topic: partition.topic().to_string(),
                    partition: partition.partition(),
                    records_behind: (high - next).max(0),
                });
            }
            Some(lag)
        });
        tokio::time::timeout(2 * LAG_QUERY_TIMEOUT, counting).await.ok()?.ok()?
    }

    async fn close(mut self: Box<Self>) {
        if let Some(consumer) = self.consumer.take() {
            if !consumer.close_within(CLOSE_TIMEOUT).await {
                tracing::warn!("kafka: the consumer did not leave its group within {CLOSE_TIMEOUT:?}");
            }
        }
    }
}

fn owned_record(message: &rdkafka::message::BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value: message
            .payload()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default(),
        headers,
        timestamp: message
            .timestamp()
            .to_millis()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .unwrap_or_else(Utc::now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[rstest::rstest]
    #[case::one_copy(1, None)]
    #[case::two_copies(2, Some(1))]
    #[case::three_copies(3, Some(2))]
    fn a_write_waits_for_all_copies_but_one(#[case] replication_factor: i32, #[case] expected: Option<i32>) {
        assert_eq!(min_insync_replicas(replication_factor), expected);
    }

    #[test]
    fn only_the_security_settings_are_taken_from_the_environment() {
        let taken = security_settings_from(vars(&[
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
            ("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092"),
            ("KAFKA_ENABLE_IDEMPOTENCE", "false"),
            ("SASL_USERNAME", "not-kafka"),
        ]));
        assert_eq!(
            taken,
            vars(&[
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/etc/ca.pem"),
            ])
        );
    }

    /// Issue 14, finding 7: a static member's session was 10 s, less than a
    /// restart takes, so it lost its partitions anyway; and a member retrying
    /// one record must not be evicted while it still owns the partition.
    #[test]
    fn a_static_member_outlives_a_restart_and_a_retrying_member_is_not_evicted() {
        let bus = KafkaBus::connect(KafkaSettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            replication_factor: 1,
            instance_id: Some("order-1".into()),
            fetch_wait_ms: 50,
            security: Vec::new(),
        })
        .unwrap();
        let config = bus.consumer_config("order-service");
        assert_eq!(config.get("group.instance.id"), Some("order-1-order-service"));
        let session_ms: u32 = config.get("session.timeout.ms").unwrap().parse().unwrap();
        assert!(session_ms >= 45_000, "{session_ms}");
        let poll_interval_ms: u32 = config.get("max.poll.interval.ms").unwrap().parse().unwrap();
        assert!(
            poll_interval_ms > 300_000 + 60_000,
            "past the 300 s retry bound: {poll_interval_ms}"
        );
    }

    /// librdkafka is built with TLS and SASL: a client configured for them is
    /// made (it reaches no broker until it is used).
    #[test]
    fn a_client_takes_tls_and_sasl_settings() {
        let settings = KafkaSettings {
            bootstrap_servers: "127.0.0.1:1".into(),
            replication_factor: 1,
            instance_id: None,
            fetch_wait_ms: 50,
            security: vars(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", "campusg"),
                ("sasl.password", "secret"),
            ]),
        };
        assert!(KafkaBus::connect(settings).is_ok());
    }
}
