//! The consumer loop every service runs over its topics.
//!
//! For each record: read the envelope and check it against its schemas and its
//! topic; skip it if this group already handled its id; hand it to the service.
//! A poll's records are handled as one batch, committed to the store in one
//! transaction ([`crate::batch`]). Then commit the offsets of what was handled.
//! Failures are sorted three ways:
//!
//! - invalid (not JSON, wrong schema, wrong topic, refused for good): the record
//!   goes to the dead-letter topic with the reason and its original position, and
//!   the loop goes on;
//! - transient (store or bus unavailable, a concurrent write): the same record is
//!   retried with backoff, and nothing after it is committed;
//! - the bus itself failing to poll or commit: retried with backoff and a log line.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use campusg_domain::messages::Message;

use crate::batch::in_batch;
use crate::bus::{backoff, BusConsumer, MessageBus, OutgoingRecord, Record, RecordPosition, StartFrom, Subscription};
use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::service::ServiceDeps;
use crate::store::{Cause, Contracts, EventStore, HandledMessage, StoreError, UnitOfWork};

/// How many records one poll hands to the loop at most.
const MAX_BATCH: usize = 200;

/// A service's reaction to the messages of its topics.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles one message. `Ok` means its effects are committed (or that it
    /// needs none); only then is its offset committed.
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError>;
}

/// A reader of raw records, valid or not: an observer such as the trace index,
/// which must see everything and must not dead-letter what it cannot read (the
/// services that own the topic do that).
#[async_trait]
pub trait RecordHandler: Send + Sync {
    /// Handles one record. `Ok` means its effects are committed; a transient
    /// error retries the record; a rejection is logged and the record skipped.
    async fn handle_record(&self, record: &Record) -> Result<(), HandlerError>;
}

/// What a consumer hands its records to.
#[derive(Clone)]
pub enum Handler {
    /// Validated, decoded messages; invalid records are dead-lettered.
    Messages(Arc<dyn MessageHandler>),
    /// Every record as it is.
    Records(Arc<dyn RecordHandler>),
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The message can never be handled; it goes to the dead-letter topic.
    #[error("{0}")]
    Rejected(String),
    /// Handling may succeed if tried again.
    #[error(transparent)]
    Transient(anyhow::Error),
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> HandlerError {
        HandlerError::Transient(error.into())
    }
}

/// What a consumer reads and as whom.
pub struct ConsumerConfig {
    pub group: String,
    pub topics: Vec<String>,
    pub max_batch: usize,
}

pub struct Consumer {
    pub config: ConsumerConfig,
    pub bus: Arc<dyn MessageBus>,
    pub contracts: Arc<Contracts>,
    pub clock: Arc<dyn Clock>,
    /// Where this group records the messages it has handled.
    pub store: Arc<dyn EventStore>,
    pub handler: Handler,
}

impl Consumer {
    /// The consumer of a service: group `group`, on the topics that carry
    /// `message_types`, recording what it handled in the service's own store.
    pub fn for_service(
        group: &str,
        message_types: &[&str],
        deps: &ServiceDeps,
        bus: Arc<dyn MessageBus>,
        handler: Arc<dyn MessageHandler>,
    ) -> Consumer {
        Consumer {
            config: ConsumerConfig {
                group: group.to_string(),
                topics: deps.contracts.topics_carrying(message_types),
                max_batch: MAX_BATCH,
            },
            bus,
            contracts: deps.contracts.clone(),
            clock: deps.clock.clone(),
            store: deps.store.clone(),
            handler: Handler::Messages(handler),
        }
    }

    /// A consumer of every record on `topics`, valid or not, as group `group`.
    pub fn for_records(
        group: &str,
        topics: Vec<String>,
        deps: &ServiceDeps,
        bus: Arc<dyn MessageBus>,
        handler: Arc<dyn RecordHandler>,
    ) -> Consumer {
        Consumer {
            config: ConsumerConfig {
                group: group.to_string(),
                topics,
                max_batch: MAX_BATCH,
            },
            bus,
            contracts: deps.contracts.clone(),
            clock: deps.clock.clone(),
            store: deps.store.clone(),
            handler: Handler::Records(handler),
        }
    }

    /// Runs until `shutdown`; stops only between records.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!("consumer", group = %self.config.group);
        self.run_loop(shutdown).instrument(span).await
    }

    async fn run_loop(self, shutdown: CancellationToken) {
        let mut consumer = loop {
            let subscription = Subscription {
                group: Some(self.config.group.clone()),
                topics: self.config.topics.clone(),
                start: StartFrom::Earliest,
            };
            match self.bus.subscribe(subscription).await {
                Ok(consumer) => break consumer,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot subscribe; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        };
        let mut poll_failures = 0;
        while !shutdown.is_cancelled() {
            let records = tokio::select! {
                polled = consumer.poll(self.config.max_batch, Duration::from_millis(500)) => polled,
                _ = shutdown.cancelled() => break,
            };
            let records = match records {
                Ok(records) => {
                    poll_failures = 0;
                    records
                }
                Err(error) => {
                    poll_failures += 1;
                    tracing::warn!(error = %error, attempt = poll_failures, "cannot poll; retrying");
                    tokio::time::sleep(backoff(poll_failures)).await;
                    continue;
                }
            };
            let handled = self.handle_all(&records, &shutdown).await;
            self.commit(consumer.as_mut(), &handled, &shutdown).await;
        }
        consumer.close().await;
    }

    /// Handles a poll's records, and returns the positions of those handled.
    /// They are tried as one batch first (one store transaction for all); if
    /// the batch is refused, nothing of it was stored, and each record is
    /// handled on its own, as the store's checks then see it.
    async fn handle_all(&self, records: &[Record], shutdown: &CancellationToken) -> Vec<RecordPosition> {
        if records.len() > 1 {
            let batch = in_batch(&self.store, async {
                for record in records {
                    self.process(record).await?;
                }
                Ok(())
            })
            .await;
            match batch {
                Ok(()) => return records.iter().map(Record::position).collect(),
                Err(error) => tracing::debug!(
                    error = %error, records = records.len(),
                    "the batch was refused; handling its records one at a time"
                ),
            }
        }
        let mut handled = Vec::with_capacity(records.len());
        for record in records {
            if !self.process_until_done(record, shutdown).await {
                break;
            }
            handled.push(record.position());
        }
        handled
    }

    /// Processes one record, retrying transient failures. Returns `false` if
    /// shutdown came first and the record is left for the next run.
    async fn process_until_done(&self, record: &Record, shutdown: &CancellationToken) -> bool {
        let mut attempt = 0;
        loop {
            match self.process(record).await {
                Ok(()) => return true,
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(
                        error = %error, attempt,
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        "handling failed for now; retrying"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(attempt)) => {}
                        _ = shutdown.cancelled() => return false,
                    }
                }
            }
        }
    }

    /// Handles one record, dead-lettering it if it can never be handled.
    async fn process(&self, record: &Record) -> anyhow::Result<()> {
        let handler = match &self.handler {
            Handler::Messages(handler) => handler.clone(),
            Handler::Records(observer) => {
                return match observer.handle_record(record).await {
                    Ok(()) => Ok(()),
                    Err(HandlerError::Rejected(reason)) => {
                        tracing::warn!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            reason = %reason, "record skipped"
                        );
                        Ok(())
                    }
                    Err(HandlerError::Transient(error)) => already_handled_or(error),
                };
            }
        };
        let envelope = match Envelope::parse(&record.value, &self.contracts.schemas, self.clock.now()) {
            Ok(envelope) => envelope,
            Err(invalid) => return self.dead_letter(record, None, invalid.to_string()).await,
        };
        let span = tracing::info_span!(
            "message",
            saga_id = %envelope.correlation_id,
            order_id = record.key.as_deref().unwrap_or(""),
            message_type = %envelope.message_type,
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
        );
        async {
            let allowed = self
                .contracts
                .topics
                .get(&record.topic)
                .is_some_and(|t| t.messages.contains(&envelope.message_type));
            if !allowed {
                let reason = format!(
                    "`{}` does not belong on topic `{}` (see topics.toml)",
                    envelope.message_type, record.topic
                );
                return self.dead_letter(record, Some(&envelope), reason).await;
            }
            let message = match envelope.decode() {
                Ok(message) => message,
                Err(invalid) => return self.dead_letter(record, Some(&envelope), invalid.to_string()).await,
            };
            if self
                .store
                .has_handled(&self.config.group, &envelope.id.to_string())
                .await?
            {
                tracing::debug!("already handled; skipping the duplicate");
                return Ok(());
            }
            match handler.handle(&envelope, message).await {
                Ok(()) => Ok(()),
                Err(HandlerError::Rejected(reason)) => self.dead_letter(record, Some(&envelope), reason).await,
                Err(HandlerError::Transient(error)) => already_handled_or(error),
            }
        }
        .instrument(span)
        .await
    }

    async fn dead_letter(&self, record: &Record, envelope: Option<&Envelope>, reason: String) -> anyhow::Result<()> {
        tracing::warn!(
            topic = %record.topic, partition = record.partition, offset = record.offset, reason = %reason,
            "sending the record to the dead-letter topic"
        );
        let now = self.clock.now();
        let correlation_id = envelope
            .map(|e| e.correlation_id.clone())
            .or_else(|| {
                let value: serde_json::Value = serde_json::from_str(&record.value).ok()?;
                value.get("correlation_id")?.as_str().map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".to_string());
        let payload = serde_json::json!({
            "reason": reason,
            "original_topic": record.topic,
            "original_partition": record.partition,
            "original_offset": record.offset,
            "original_key": record.key,
            "original_value": record.value,
            "consumer_group": self.config.group,
            "failed_at": now.to_rfc3339(),
        });
        let dead_letter = Envelope {
            id: uuid::Uuid::new_v4(),
            message_type: "dead_letter".to_string(),
            version: 1,
            correlation_id,
            causation_id: envelope.map(|e| e.id.to_string()),
            timestamp: now,
            source: self.config.group.clone(),
            payload,
        };
        self.contracts
            .schemas
            .validate_payload("dead_letter", &dead_letter.payload)?;
        let topic = self.contracts.topics.dead_letter_topic().name.clone();
        let mut outgoing = OutgoingRecord::from_envelope(&topic, &dead_letter);
        outgoing.key = record.key.clone();
        outgoing.headers.extend([
            ("original_topic".to_string(), record.topic.clone()),
            ("original_partition".to_string(), record.partition.to_string()),
            ("original_offset".to_string(), record.offset.to_string()),
        ]);
        // Through the outbox, with the record marked handled in the same commit:
        // a crash before the offset commit redelivers the record, and the second
        // attempt finds it handled instead of dead-lettering it twice.
        let handled_id = match envelope {
            Some(envelope) => envelope.id.to_string(),
            None => format!("{}/{}/{}", record.topic, record.partition, record.offset),
        };
        let mut unit = UnitOfWork::new(Cause {
            correlation_id: dead_letter.correlation_id.clone(),
            causation_id: dead_letter.causation_id.clone(),
            source: "consumer",
            at: now,
            handled: Some(HandledMessage {
                consumer: self.config.group.clone(),
                message_id: handled_id,
            }),
        });
        unit.outbox.push(outgoing);
        match self.store.commit(unit).await {
            Ok(()) | Err(StoreError::AlreadyHandled) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn commit(&self, consumer: &mut dyn BusConsumer, handled: &[RecordPosition], shutdown: &CancellationToken) {
        if handled.is_empty() {
            return;
        }
        let mut attempt = 0;
        while let Err(error) = consumer.commit(handled).await {
            attempt += 1;
            tracing::warn!(error = %error, attempt, "cannot commit offsets; retrying");
            if shutdown.is_cancelled() || attempt > 20 {
                // Uncommitted records are redelivered and recognised as duplicates.
                return;
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
}

/// A commit refused because the record was handled already (a duplicate that
/// raced its twin) is done; anything else is retried.
fn already_handled_or(error: anyhow::Error) -> anyhow::Result<()> {
    match error.downcast_ref::<StoreError>() {
        Some(StoreError::AlreadyHandled) => Ok(()),
        _ => Err(error),
    }
}
