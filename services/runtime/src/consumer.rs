//! The consumer loop every service runs over its topics.
//!
//! For each record: read the envelope and check it against its schemas and its
//! topic; skip it if this group already handled its id; hand it to the service.
//! A poll's records are handled as one batch, committed to the store in one
//! transaction ([`crate::batch`]). Then commit the offsets of what was handled.
//! Failures are sorted three ways (SPEC section 10):
//!
//! - permanent (not JSON, wrong schema, wrong topic, refused for good, a value
//!   the store can never hold, a handler that panicked): a record with a key
//!   parks its key for the group ([`crate::parking`]): it and every later record
//!   of the key are held, in order, until an operator retries or drops them,
//!   while other keys flow; a copy goes to the dead-letter topic, with the
//!   reason and its original position, for everyone to see. A record without a
//!   key goes to the dead-letter topic only. The loop goes on;
//! - transient (store or bus unavailable, a concurrent write): the same record is
//!   retried with backoff, and nothing after it is committed, for at most
//!   [`ConsumerConfig::transient_retry_limit`]; then its key is parked as for a
//!   permanent failure;
//! - fatal (a transient failure past that limit that cannot even park, the loop
//!   itself panicking): [`Consumer::run`] returns the error, and the process
//!   exits non-zero so that its supervisor restarts it.
//!
//! The bus failing to poll or commit is transient too. Each consumer reports
//! where it stands on the process's [`HealthBoard`].

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use campusg_domain::limits::{shortened, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use campusg_domain::messages::Message;

use crate::aggregate::{execute, load, run_alone, NotRun};
use crate::batch::in_batch;
use crate::bus::{backoff, BusConsumer, MessageBus, OutgoingRecord, Record, RecordPosition, StartFrom, Subscription};
use crate::clock::Clock;
use crate::envelope::Envelope;
use crate::health::HealthBoard;
use crate::metrics::Metrics;
use crate::parking::{
    parked_key_id, waiting_keys, HeldRecord, ParkedKey, ParkingCommand, ParkingError, PARKED, RETRYING,
};
use crate::service::{ServiceDeps, ServiceDescription};
use crate::store::{Cause, Contracts, EventStore, HandledMessage, StoreError, UnitOfWork};

/// How many records one poll hands to the loop at most.
const MAX_BATCH: usize = 200;

/// How long a transient failure is retried before the consumer gives up and
/// the process exits (fatal): long enough to ride out a broker or database
/// restart, short enough that a supervisor sees a process that cannot go on.
pub const TRANSIENT_RETRY_LIMIT: Duration = Duration::from_secs(300);

/// How many records in a row may make a handler panic before the consumer
/// stops: one is a poison record, many are a broken process.
pub const MAX_PANIC_STREAK: u32 = 20;

/// How often a consumer asks the bus how far behind its group is: on Kafka
/// that is a round trip to the broker per assigned partition.
const LAG_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The most of a record's value a dead letter quotes; the rest is referred to
/// by its size, so that a dead letter always fits on the bus.
const DEAD_LETTER_QUOTE_BYTES: usize = 64 * 1024;

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

/// Why a service did not handle a message, typed so that the consumer and the
/// API decide what to do from the type alone.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The message can never be handled; it goes to the dead-letter topic.
    #[error("{0}")]
    Rejected(String),
    /// The event store failed or refused the commit; [`StoreError`] says
    /// whether trying again can help.
    #[error(transparent)]
    Store(StoreError),
    /// Something the service reached (the payment processor, say) is away
    /// for now; handling may succeed if tried again.
    #[error("{0}")]
    Unavailable(String),
}

/// A value the store will never hold makes the message one that can never be
/// handled.
impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> HandlerError {
        match error {
            StoreError::Permanent(reason) => HandlerError::Rejected(format!("the event store refuses it: {reason}")),
            other => HandlerError::Store(other),
        }
    }
}

/// Why the consumer did not get a record handled this time: retried until the
/// retry limit, except [`Failure::Fatal`], which stops the consumer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Fatal(#[from] FatalConsumerError),
}

/// What a consumer reads and as whom.
pub struct ConsumerConfig {
    pub group: String,
    pub topics: Vec<String>,
    pub max_batch: usize,
    /// How long one record's transient failures are retried before the
    /// consumer stops with a fatal error.
    pub transient_retry_limit: Duration,
}

/// Why a consumer stopped before shutdown: the process cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("consumer group `{group}` cannot go on: {reason}")]
pub struct FatalConsumerError {
    pub group: String,
    pub reason: String,
}

pub struct Consumer {
    pub config: ConsumerConfig,
    pub bus: Arc<dyn MessageBus>,
    pub contracts: Arc<Contracts>,
    pub clock: Arc<dyn Clock>,
    /// Where this group records the messages it has handled.
    pub store: Arc<dyn EventStore>,
    pub handler: Handler,
    /// The message types the handler takes; the rest of its topics' types
    /// pass it by.
    handles: &'static [&'static str],
    /// How many records in a row made the handler panic.
    panic_streak: AtomicU32,
    /// The group's parked keys and their status, as of the last poll and the
    /// parks since.
    parked: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// What became of a message handed to the service.
enum Verdict {
    /// Handled (or handled before).
    Done,
    /// It can never be handled as it is.
    Refused {
        envelope: Option<Box<Envelope>>,
        reason: String,
    },
}

impl Consumer {
    /// The consumer of a service: its group, on the topics that carry the
    /// types it handles, recording what it handled in the service's own store.
    pub fn for_service(
        service: &ServiceDescription,
        deps: &ServiceDeps,
        bus: Arc<dyn MessageBus>,
        handler: Arc<dyn MessageHandler>,
    ) -> Consumer {
        Consumer {
            config: ConsumerConfig {
                group: service.consumer_group.to_string(),
                topics: deps.contracts.topics_carrying(service.handles),
                max_batch: MAX_BATCH,
                transient_retry_limit: TRANSIENT_RETRY_LIMIT,
            },
            bus,
            contracts: deps.contracts.clone(),
            clock: deps.clock.clone(),
            store: deps.store.clone(),
            handler: Handler::Messages(handler),
            handles: service.handles,
            panic_streak: AtomicU32::new(0),
            parked: Default::default(),
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
                transient_retry_limit: TRANSIENT_RETRY_LIMIT,
            },
            bus,
            contracts: deps.contracts.clone(),
            clock: deps.clock.clone(),
            store: deps.store.clone(),
            handler: Handler::Records(handler),
            handles: &[],
            panic_streak: AtomicU32::new(0),
            parked: Default::default(),
        }
    }

    /// Runs until `shutdown`; stops only between records. An error is fatal:
    /// the consumer has stopped, and the process must exit non-zero. A panic
    /// in the loop itself (outside a handler) is caught and made fatal too.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        health: HealthBoard,
        metrics: Metrics,
    ) -> Result<(), FatalConsumerError> {
        let group = self.config.group.clone();
        let span = tracing::info_span!("consumer", group = %group);
        let outcome = AssertUnwindSafe(self.run_loop(shutdown, health.clone(), metrics).instrument(span))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(FatalConsumerError {
                    group: group.clone(),
                    reason: format!("the consumer loop panicked: {}", panic_message(&*panic)),
                })
            });
        let stopped_because = match &outcome {
            Ok(()) => "shut down".to_string(),
            Err(fatal) => fatal.reason.clone(),
        };
        health.update(&group, |status| status.stopped_because = Some(stopped_because));
        outcome
    }

    async fn run_loop(
        self,
        shutdown: CancellationToken,
        health: HealthBoard,
        metrics: Metrics,
    ) -> Result<(), FatalConsumerError> {
        let group = self.config.group.clone();
        health.update(&group, |_| {});
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
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        };
        let mut poll_failures = 0;
        let mut failing_since: Option<Instant> = None;
        let mut lag_checked: Option<Instant> = None;
        let mut outcome = Ok(());
        while !shutdown.is_cancelled() {
            let records = tokio::select! {
                polled = consumer.poll(self.config.max_batch, Duration::from_millis(500)) => polled,
                _ = shutdown.cancelled() => break,
            };
            let records = match records {
                Ok(records) => {
                    poll_failures = 0;
                    failing_since = None;
                    // How far behind the group is costs a read of the bus (on
                    // Kafka, a round trip): asked every LAG_CHECK_INTERVAL only.
                    if lag_checked.is_none_or(|at| at.elapsed() >= LAG_CHECK_INTERVAL) {
                        lag_checked = Some(Instant::now());
                        health.lag_checked(&group, consumer.lag().await);
                    }
                    let now = self.clock.now();
                    health.update(&group, |status| status.last_poll_at = Some(now));
                    records
                }
                Err(error) => {
                    poll_failures += 1;
                    tracing::warn!(error = %error, attempt = poll_failures, "cannot poll; retrying");
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.config.transient_retry_limit {
                        outcome = Err(self.fatal(format!("cannot poll the bus: {error}")));
                        break;
                    }
                    tokio::time::sleep(backoff(poll_failures)).await;
                    continue;
                }
            };
            if let Handler::Messages(_) = self.handler {
                if let Err(fatal) = self.tend_parked_keys(&shutdown).await {
                    outcome = Err(fatal);
                    break;
                }
            }
            let (handled, gave_up) = self.handle_all(&records, &shutdown, &health).await;
            if self.commit(consumer.as_mut(), &handled, &shutdown).await {
                metrics.consumed(&group, handled.len());
            }
            if let Some(fatal) = gave_up {
                outcome = Err(fatal);
                break;
            }
        }
        consumer.close().await;
        outcome
    }

    fn fatal(&self, reason: String) -> FatalConsumerError {
        tracing::error!(reason = %reason, "the consumer cannot go on");
        FatalConsumerError {
            group: self.config.group.clone(),
            reason,
        }
    }

    /// Handles a poll's records, and returns the positions of those handled,
    /// and the fatal error if one record's transient failures outlasted the
    /// retry limit. They are tried as one batch first (one store transaction
    /// for all); if the batch is refused, nothing of it was stored, and each
    /// record is handled on its own, as the store's checks then see it.
    async fn handle_all(
        &self,
        records: &[Record],
        shutdown: &CancellationToken,
        health: &HealthBoard,
    ) -> (Vec<RecordPosition>, Option<FatalConsumerError>) {
        if records.len() > 1 {
            let batch = in_batch(&self.store, async {
                for record in records {
                    self.process(record).await?;
                }
                Ok::<(), Failure>(())
            })
            .await;
            match batch {
                Ok(()) => return (records.iter().map(Record::position).collect(), None),
                Err(error) => tracing::debug!(
                    error = %error, records = records.len(),
                    "the batch was refused; handling its records one at a time"
                ),
            }
            // Nothing of the batch was stored, its parks neither.
            if let Handler::Messages(_) = self.handler {
                if let Err(error) = self.refresh_parked().await {
                    tracing::warn!(error = %error, "cannot read the parked keys");
                }
            }
        }
        let mut handled = Vec::with_capacity(records.len());
        for record in records {
            match self.process_until_done(record, shutdown, health).await {
                Retried::Done => handled.push(record.position()),
                Retried::ShutDown => break,
                Retried::GaveUp(fatal) => return (handled, Some(fatal)),
                Retried::Outlasted(fatal) => {
                    // A record that fails for too long parks its key like one
                    // that fails for good, if the store takes the park.
                    let keyed = matches!(self.handler, Handler::Messages(_)) && record.key.is_some();
                    if keyed && self.park(record, None, fatal.reason.clone()).await.is_ok() {
                        handled.push(record.position());
                        continue;
                    }
                    return (handled, Some(fatal));
                }
            }
        }
        (handled, None)
    }

    /// Processes one record, retrying transient failures for at most the
    /// retry limit, and reporting on `health` while it retries.
    async fn process_until_done(&self, record: &Record, shutdown: &CancellationToken, health: &HealthBoard) -> Retried {
        let group = &self.config.group;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let error = match self.process(record).await {
                Err(Failure::Fatal(fatal)) => return Retried::GaveUp(fatal),
                Err(error) => error,
                Ok(()) => {
                    if attempt > 0 {
                        health.update(group, |status| {
                            status.failing_since = None;
                            status.last_error = None;
                        });
                    }
                    return Retried::Done;
                }
            };
            attempt += 1;
            tracing::warn!(
                error = %error, attempt,
                topic = %record.topic, partition = record.partition, offset = record.offset,
                "handling failed for now; retrying"
            );
            if attempt == 1 {
                let now = self.clock.now();
                health.update(group, |status| status.failing_since = Some(now));
            }
            health.update(group, |status| status.last_error = Some(error.to_string()));
            if started.elapsed() > self.config.transient_retry_limit {
                return Retried::Outlasted(self.fatal(format!(
                    "{}/{}/{} still fails after {:?}: {error}",
                    record.topic, record.partition, record.offset, self.config.transient_retry_limit
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff(attempt)) => {}
                _ = shutdown.cancelled() => return Retried::ShutDown,
            }
        }
    }

    /// Handles one record; a panic while doing so makes it a dead letter (or,
    /// for an observer, a skipped record) with the panic's message.
    /// A handler that panics on record after record (its state poisoned, say)
    /// would dead-letter everything: past [`MAX_PANIC_STREAK`] in a row the
    /// consumer stops instead, fatally.
    async fn process(&self, record: &Record) -> Result<(), Failure> {
        match AssertUnwindSafe(self.process_unguarded(record)).catch_unwind().await {
            Ok(outcome) => {
                self.panic_streak.store(0, Ordering::Relaxed);
                outcome
            }
            Err(panic) => {
                let reason = format!("handling the record panicked: {}", panic_message(&*panic));
                if self.panic_streak.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_PANIC_STREAK {
                    return Err(self
                        .fatal(format!(
                            "{MAX_PANIC_STREAK} records in a row panicked; the last: {reason}"
                        ))
                        .into());
                }
                match &self.handler {
                    Handler::Messages(_) => {
                        // Filed under the message's id when it has one, so its
                        // duplicate (an outbox may publish twice) is not a second letter.
                        let envelope = Envelope::parse(&record.value, &self.contracts.schemas, self.clock.now()).ok();
                        self.dead_letter(record, envelope.as_ref(), reason).await
                    }
                    Handler::Records(_) => {
                        tracing::error!(
                            topic = %record.topic, partition = record.partition, offset = record.offset,
                            reason = %reason, "record skipped"
                        );
                        Ok(())
                    }
                }
            }
        }
    }

    /// Handles one record: held if its key is parked, parked (or
    /// dead-lettered) if it can never be handled.
    async fn process_unguarded(&self, record: &Record) -> Result<(), Failure> {
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
                    // A duplicate that raced its twin is done.
                    Err(HandlerError::Store(StoreError::AlreadyHandled)) => Ok(()),
                    Err(HandlerError::Store(error)) => Err(error.into()),
                    Err(HandlerError::Unavailable(reason)) => Err(Failure::Unavailable(reason)),
                };
            }
        };
        if let Some(key) = record.key.as_deref().filter(|key| self.is_parked(key)) {
            if self.hold(record, key).await? {
                return Ok(());
            }
            // Freed since this consumer last looked (released or dropped
            // elsewhere): the record is handled as any other.
            self.parked_keys().remove(key);
        }
        match self.judge(handler.as_ref(), record).await? {
            Verdict::Done => Ok(()),
            Verdict::Refused { envelope, reason } => self.dead_letter(record, envelope.as_deref(), reason).await,
        }
    }

    /// Hands one record to the service: done, refused for good, or (`Err`)
    /// failed for now.
    async fn judge(&self, handler: &dyn MessageHandler, record: &Record) -> Result<Verdict, Failure> {
        let refused = |envelope: Option<&Envelope>, reason: String| {
            Ok(Verdict::Refused {
                envelope: envelope.cloned().map(Box::new),
                reason,
            })
        };
        let envelope = match Envelope::parse(&record.value, &self.contracts.schemas, self.clock.now()) {
            Ok(envelope) => envelope,
            Err(invalid) => return refused(None, invalid.to_string()),
        };
        let span = tracing::info_span!(
            "message",
            saga_id = %envelope.correlation_id,
            order_id = record.key.as_deref().unwrap_or(""),
            message_type = %envelope.message_type,
            message_id = %envelope.id,
            group = %self.config.group,
            topic = %record.topic,
            partition = record.partition,
            offset = record.offset,
            otel.kind = "consumer",
            otel.name = %format_args!("{} {}", self.config.group, envelope.message_type),
        );
        crate::telemetry::set_remote_parent(&span, record.header("traceparent"));
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
                return refused(Some(&envelope), reason);
            }
            let message = match envelope.decode() {
                Ok(message) => message,
                Err(invalid) => return refused(Some(&envelope), invalid.to_string()),
            };
            if !self.handles.contains(&envelope.message_type.as_str()) {
                tracing::debug!("not a type this service handles; passed by");
                return Ok(Verdict::Done);
            }
            if self
                .store
                .has_handled(&self.config.group, &envelope.id.to_string())
                .await?
            {
                tracing::debug!("already handled; skipping the duplicate");
                return Ok(Verdict::Done);
            }
            match handler.handle(&envelope, message).await {
                Ok(()) => Ok(Verdict::Done),
                Err(HandlerError::Rejected(reason)) => refused(Some(&envelope), reason),
                Err(HandlerError::Store(StoreError::AlreadyHandled)) => Ok(Verdict::Done),
                Err(HandlerError::Store(StoreError::Permanent(reason))) => {
                    refused(Some(&envelope), format!("the event store refuses it: {reason}"))
                }
                Err(HandlerError::Store(other)) => Err(other.into()),
                Err(HandlerError::Unavailable(reason)) => Err(Failure::Unavailable(reason)),
            }
        }
        .instrument(span)
        .await
    }

    fn parked_keys(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, String>> {
        // Plain inserts and removes: a poisoned map is still whole.
        self.parked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_parked(&self, key: &str) -> bool {
        self.parked_keys().contains_key(key)
    }

    /// Reads which of the group's keys are parked, or being handled again.
    async fn refresh_parked(&self) -> Result<(), StoreError> {
        let found = waiting_keys(self.store.as_ref(), Some(&self.config.group), None)
            .await?
            .iter()
            .filter_map(|state| {
                Some((
                    state["key"].as_str()?.to_string(),
                    state["status"].as_str()?.to_string(),
                ))
            })
            .collect();
        *self.parked_keys() = found;
        Ok(())
    }

    /// Before a poll's records: reads the parked keys, and handles again the
    /// held records of those an operator asked to retry, in order.
    async fn tend_parked_keys(&self, shutdown: &CancellationToken) -> Result<(), FatalConsumerError> {
        let started = Instant::now();
        let mut attempt = 0;
        while let Err(error) = self.refresh_parked().await {
            attempt += 1;
            tracing::warn!(error = %error, attempt, "cannot read the parked keys; retrying");
            if started.elapsed() > self.config.transient_retry_limit {
                return Err(self.fatal(format!("cannot read the parked keys: {error}")));
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff(attempt)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        let retrying: Vec<String> = self
            .parked_keys()
            .iter()
            .filter(|(_, status)| status.as_str() == RETRYING)
            .map(|(key, _)| key.clone())
            .collect();
        for key in retrying {
            if let Err(error) = self.retry_parked(&key).await {
                tracing::warn!(key = %key, error = %error, "cannot retry a parked key now");
            }
        }
        Ok(())
    }

    /// Handles the held records of `key`, oldest first: each handled one is
    /// struck off (the last releases the key); the first that fails parks the
    /// key again, with the reason.
    async fn retry_parked(&self, key: &str) -> Result<(), Failure> {
        let Handler::Messages(handler) = &self.handler else {
            return Ok(());
        };
        let id = parked_key_id(&self.config.group, key);
        let held = load::<ParkedKey>(self.store.as_ref(), &id).await?.aggregate.held;
        for record in held.iter().map(HeldRecord::record) {
            // A record may have parked its key by panicking: caught here too,
            // so that retrying it parks it again instead of stopping the group.
            let judged = AssertUnwindSafe(self.judge(handler.as_ref(), &record))
                .catch_unwind()
                .await;
            let failure = match judged {
                Ok(Ok(Verdict::Done)) => None,
                Ok(Ok(Verdict::Refused { reason, .. })) => Some(reason),
                Ok(Err(error)) => Some(format!("failed for now: {error}")),
                Err(panic) => Some(format!("handling the record panicked: {}", panic_message(&*panic))),
            };
            let at = self.clock.now();
            let command = match &failure {
                None => ParkingCommand::MarkHandled {
                    position: record.position(),
                    at,
                },
                Some(reason) => ParkingCommand::FailAgain {
                    reason: reason.clone(),
                    at,
                },
            };
            self.change_parking(&id, command).await?;
            if let Some(reason) = failure {
                tracing::warn!(key = %key, reason = %reason, "a retried record still fails; the key stays parked");
                self.parked_keys().insert(key.to_string(), PARKED.to_string());
                return Ok(());
            }
        }
        tracing::info!(key = %key, records = held.len(), "a parked key's records were handled; released");
        self.parked_keys().remove(key);
        Ok(())
    }

    async fn change_parking(&self, id: &str, command: ParkingCommand) -> Result<(), StoreError> {
        let cause = Cause::request(id.to_string(), "consumer", self.clock.now());
        match run_alone::<ParkedKey>(self.store.as_ref(), id, command, &(), cause).await {
            Ok(_) => Ok(()),
            Err(NotRun::Refused(refused)) => Err(StoreError::Other(refused.to_string())),
            Err(NotRun::Store(error)) => Err(error),
        }
    }

    /// A record of a parked key waits behind the first; `false` when the key
    /// turns out to be free.
    async fn hold(&self, record: &Record, key: &str) -> Result<bool, Failure> {
        tracing::info!(
            key = %key, topic = %record.topic, partition = record.partition, offset = record.offset,
            "the record's key is parked; held"
        );
        let id = parked_key_id(&self.config.group, key);
        let hold = ParkingCommand::Hold {
            record: HeldRecord::of(record),
            at: self.clock.now(),
        };
        let cause = Cause::request(id.clone(), "consumer", self.clock.now());
        match run_alone::<ParkedKey>(self.store.as_ref(), &id, hold, &(), cause).await {
            Ok(_) => Ok(true),
            Err(NotRun::Refused(full @ ParkingError::Full(_))) => Err(self.key_full(key, full).into()),
            Err(NotRun::Refused(_)) => Ok(false),
            Err(NotRun::Store(error)) => Err(error.into()),
        }
    }

    /// A parked key that holds all it may stops the consumer: its records may
    /// not be skipped, nor held without bound.
    fn key_full(&self, key: &str, full: ParkingError) -> FatalConsumerError {
        self.fatal(format!("key `{key}`: {full}"))
    }

    async fn dead_letter(&self, record: &Record, envelope: Option<&Envelope>, reason: String) -> Result<(), Failure> {
        tracing::warn!(
            topic = %record.topic, partition = record.partition, offset = record.offset, reason = %reason,
            "sending the record to the dead-letter topic"
        );
        // A key that could not be an id (too long, a NUL) parks nothing.
        let parkable = record
            .key
            .as_deref()
            .is_some_and(|key| campusg_domain::limits::within(key, MAX_NAME_CHARS) && !key.contains('\0'));
        if matches!(self.handler, Handler::Messages(_)) && parkable {
            match self.park(record, envelope, reason.clone()).await {
                // The store cannot hold the record whole (PostgreSQL and
                // `\u0000`): it could never be handled again, so it is only
                // dead-lettered, as a record without a key.
                Err(error @ Failure::Store(StoreError::Permanent(_))) => {
                    tracing::warn!(refused = %error, "the record cannot be held; dead-lettered only");
                }
                outcome => return outcome,
            }
        }
        match self
            .commit_dead_letter(record, envelope, &reason, Quote::Whole, None)
            .await
        {
            // The store refuses something the record carries (PostgreSQL and
            // `\u0000`): the record is referred to by its position alone.
            Err(StoreError::Permanent(refused)) => {
                tracing::warn!(refused = %refused, "the dead letter is stored by the record's position alone");
                self.commit_dead_letter(record, envelope, &reason, Quote::PositionOnly, None)
                    .await
                    .map_err(Into::into)
            }
            outcome => outcome.map_err(Into::into),
        }
    }

    /// Parks the record's key with the record held, and publishes its dead
    /// letter, in one commit. The record is not marked handled: it is to be
    /// handled when the key is retried (delivered again before its offset is
    /// committed, it is held once).
    async fn park(&self, record: &Record, envelope: Option<&Envelope>, reason: String) -> Result<(), Failure> {
        let key = record.key.clone().unwrap_or_default();
        tracing::warn!(
            key = %key, topic = %record.topic, partition = record.partition, offset = record.offset,
            reason = %reason, "the record cannot be handled; its key is parked"
        );
        let id = parked_key_id(&self.config.group, &key);
        let mut loaded = load::<ParkedKey>(self.store.as_ref(), &id).await?;
        let park = ParkingCommand::Park {
            group: self.config.group.clone(),
            key: key.clone(),
            record: HeldRecord::of(record),
            reason: shortened(&reason, MAX_TEXT_CHARS).replace('\0', "\u{fffd}"),
            at: self.clock.now(),
        };
        let events = match execute(&mut loaded, park, &()).await {
            Ok(events) => events,
            Err(full @ ParkingError::Full(_)) => return Err(self.key_full(&key, full).into()),
            Err(refused) => return Err(StoreError::Other(refused.to_string()).into()),
        };
        let parked = ParkedWith {
            loaded: &mut loaded,
            events: &events,
        };
        self.commit_dead_letter(record, envelope, &reason, Quote::Whole, Some(parked))
            .await?;
        self.parked_keys().insert(key, PARKED.to_string());
        Ok(())
    }

    /// Commits the dead letter of `record` through the outbox, with the record
    /// marked handled in the same commit: a crash before the offset commit
    /// redelivers the record, and the second attempt finds it handled instead
    /// of dead-lettering it twice. What it copies from the record is bounded
    /// (so the letter fits on the bus) and kept free of NUL (which PostgreSQL
    /// cannot hold).
    async fn commit_dead_letter(
        &self,
        record: &Record,
        envelope: Option<&Envelope>,
        reason: &str,
        quote_as: Quote,
        parked: Option<ParkedWith<'_>>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let copied = |text: &str, max_chars: usize| match quote_as {
            Quote::Whole => Some(shortened(text, max_chars).replace('\0', "\u{fffd}")),
            Quote::PositionOnly => None,
        };
        let correlation_id = envelope
            .map(|e| e.correlation_id.clone())
            .or_else(|| {
                let value: serde_json::Value = serde_json::from_str(&record.value).ok()?;
                value.get("correlation_id")?.as_str().map(str::to_string)
            })
            .and_then(|id| copied(&id, MAX_NAME_CHARS))
            .unwrap_or_else(|| "unknown".to_string());
        let key = record.key.as_deref().and_then(|key| copied(key, MAX_NAME_CHARS));
        let original_value = copied(quote(&record.value, DEAD_LETTER_QUOTE_BYTES), usize::MAX).unwrap_or_default();
        let payload = serde_json::json!({
            "reason": shortened(reason, MAX_TEXT_CHARS).replace('\0', "\u{fffd}"),
            "original_topic": record.topic,
            "original_partition": record.partition,
            "original_offset": record.offset,
            "original_key": key,
            "original_value": original_value,
            "original_size_bytes": record.value.len(),
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
            .validate_payload("dead_letter", &dead_letter.payload)
            .map_err(|e| StoreError::Other(format!("a dead letter breaks its own schema: {e}")))?;
        let topic = self.contracts.topics.dead_letter_topic().name.clone();
        let mut outgoing = OutgoingRecord::from_envelope(&topic, &dead_letter);
        outgoing.key = key;
        outgoing.headers.extend([
            ("original_topic".to_string(), record.topic.clone()),
            ("original_partition".to_string(), record.partition.to_string()),
            ("original_offset".to_string(), record.offset.to_string()),
        ]);
        let handled_id = match envelope {
            Some(envelope) => envelope.id.to_string(),
            None => format!("{}/{}/{}", record.topic, record.partition, record.offset),
        };
        // A parked record is not handled yet: it is held to be handled later.
        let handled = parked.is_none().then(|| HandledMessage {
            consumer: self.config.group.clone(),
            message_id: handled_id,
        });
        let mut unit = UnitOfWork::new(Cause {
            correlation_id: dead_letter.correlation_id.clone(),
            causation_id: dead_letter.causation_id.clone(),
            source: "consumer",
            at: now,
            handled,
        });
        unit.outbox.push(outgoing);
        if let Some(ParkedWith { loaded, events }) = parked {
            unit.append_unpublished(loaded, events);
        }
        match self.store.commit(unit).await {
            Ok(()) | Err(StoreError::AlreadyHandled) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Commits the offsets past `handled`; whether the bus took them.
    async fn commit(
        &self,
        consumer: &mut dyn BusConsumer,
        handled: &[RecordPosition],
        shutdown: &CancellationToken,
    ) -> bool {
        if handled.is_empty() {
            return false;
        }
        crate::crash_points::reached(crate::crash_points::AFTER_STORE_COMMIT);
        let mut attempt = 0;
        while let Err(error) = consumer.commit(handled).await {
            attempt += 1;
            tracing::warn!(error = %error, attempt, "cannot commit offsets; retrying");
            if shutdown.is_cancelled() || attempt > 20 {
                // Uncommitted records are redelivered and recognised as duplicates.
                return false;
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        true
    }
}

/// A key's parking, committed with the dead letter of the record that parked it.
struct ParkedWith<'a> {
    loaded: &'a mut crate::aggregate::Loaded<ParkedKey>,
    events: &'a [crate::parking::ParkingEvent],
}

/// How much of a record its dead letter copies.
#[derive(Clone, Copy)]
enum Quote {
    /// Its key, correlation id and value (the value's first 64 KiB).
    Whole,
    /// Its topic, partition, offset and size only.
    PositionOnly,
}

/// What became of one record's retries.
enum Retried {
    Done,
    ShutDown,
    /// The process cannot go on (a handler panicking on record after record).
    GaveUp(FatalConsumerError),
    /// The record still failed for now when its retries ran out.
    Outlasted(FatalConsumerError),
}

/// What a caught panic said, as text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// `text`, or its first `max_bytes` (cut at a character boundary) when longer.
fn quote(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
