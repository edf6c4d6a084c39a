//! The event-store interface.
//!
//! A service changes state only through a [`UnitOfWork`]: the events it appends
//! (with optimistic concurrency), the messages those events cause (the outbox),
//! the read model of each changed aggregate, and the id of the message that
//! caused it all (so a redelivery is recognised), committed in one transaction.
//! A crash before the commit leaves nothing; after it, the outbox relay publishes.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;

use campusg_domain::messages::Message;

use crate::bus::OutgoingRecord;
use crate::envelope::Envelope;
use crate::schema::{SchemaError, SchemaRegistry};
use crate::topics::TopicCatalog;

/// The contracts every message is checked against: topics and schemas.
pub struct Contracts {
    pub topics: TopicCatalog,
    pub schemas: SchemaRegistry,
}

impl Contracts {
    pub fn builtin() -> Contracts {
        Contracts {
            topics: TopicCatalog::builtin(),
            schemas: SchemaRegistry::builtin(),
        }
    }

    /// The topics that carry these message types, each named once.
    pub fn topics_carrying(&self, message_types: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for message_type in message_types {
            let topic = self
                .topics
                .topic_for(message_type)
                .unwrap_or_else(|| panic!("topics.toml declares no topic for `{message_type}`"));
            if !names.contains(&topic.name) {
                names.push(topic.name.clone());
            }
        }
        names
    }

    /// Wraps a message in its envelope and routes it to its topic, after
    /// checking it against its schema.
    pub fn record_for(&self, message: &Message, cause: &Cause) -> Result<(Envelope, OutgoingRecord), PublishError> {
        let envelope = Envelope::wrap(
            message,
            &cause.correlation_id,
            cause.causation_id.as_deref(),
            cause.source,
            cause.at,
        );
        self.schemas
            .validate_payload(&envelope.message_type, &envelope.payload)?;
        let topic = self
            .topics
            .topic_for(&envelope.message_type)
            .ok_or_else(|| PublishError::NoTopic(envelope.message_type.clone()))?;
        let record = OutgoingRecord::from_envelope(&topic.name, &envelope);
        Ok((envelope, record))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("no topic in topics.toml carries `{0}`")]
    NoTopic(String),
}

/// Why a change happens: the message (or request) that caused it.
#[derive(Clone, Debug)]
pub struct Cause {
    /// The saga id, carried by every message the change publishes.
    pub correlation_id: String,
    /// The id of the message that caused the change, if a message did.
    pub causation_id: Option<String>,
    /// The service making the change, written as each message's `source`.
    pub source: &'static str,
    pub at: DateTime<Utc>,
    /// The consumer group and message id to record as handled with the change.
    pub handled: Option<HandledMessage>,
}

impl Cause {
    /// A change caused by a message consumed by `group`.
    pub fn message(envelope: &Envelope, group: &str, source: &'static str, at: DateTime<Utc>) -> Cause {
        Cause {
            correlation_id: envelope.correlation_id.clone(),
            causation_id: Some(envelope.id.to_string()),
            source,
            at,
            handled: Some(HandledMessage {
                consumer: group.to_string(),
                message_id: envelope.id.to_string(),
            }),
        }
    }

    /// The same cause, with what it publishes correlated with `saga`: a saga
    /// reached by order id (an expiry from a timer another saga restarted, a
    /// cancellation asked for elsewhere) answers under its own id, so that the
    /// replies come back to it.
    pub fn correlated_with(self, saga: impl std::fmt::Display) -> Cause {
        Cause {
            correlation_id: saga.to_string(),
            ..self
        }
    }

    /// A change caused by an HTTP request.
    pub fn request(correlation_id: String, source: &'static str, at: DateTime<Utc>) -> Cause {
        Cause {
            correlation_id,
            causation_id: None,
            source,
            at,
            handled: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandledMessage {
    pub consumer: String,
    pub message_id: String,
}

/// An event as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Position in this store's whole log, in commit order.
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1 for an aggregate's first event.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// An event as a read of its whole type returns it: what folding it into its
/// aggregate takes, its payload still the JSON text the store holds, so that
/// it is parsed once, straight into the event's own type, rather than into a
/// `Value` and then into that type.
#[derive(Clone, Debug, PartialEq)]
pub struct EventOfType {
    pub aggregate_id: String,
    /// 1 for an aggregate's first event.
    pub sequence: i64,
    /// JSON text.
    pub payload: String,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub event_version: String,
    pub payload: JsonText,
}

/// JSON as a store writes it: serialized once, straight from the value's own
/// type, and written as that text. Building a `Value` first cost a map per
/// object on every commit, and it wrote the keys in sorted order, so an
/// event's `payload` came before its `type` and reading it back made serde
/// buffer the payload until it knew the variant.
#[derive(Clone, Debug)]
pub struct JsonText(Box<serde_json::value::RawValue>);

impl JsonText {
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsonText, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(JsonText)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> JsonText {
        JsonText::of(&value).expect("a Value always serializes")
    }
}

/// Equal when the text is, byte for byte: the same JSON written in another
/// key order is not equal.
impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.get() == other.get()
    }
}

/// Written into a JSON document as the JSON it holds, not as a string.
impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// New events for one aggregate, appended after `expected_version`.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateChange {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub expected_version: i64,
    pub events: Vec<NewEvent>,
    /// The aggregate's state after the events: its read model.
    pub state: JsonText,
}

#[derive(Clone, Debug)]
pub struct UnitOfWork {
    pub cause: Cause,
    pub changes: Vec<AggregateChange>,
    pub outbox: Vec<OutgoingRecord>,
}

impl UnitOfWork {
    pub fn new(cause: Cause) -> UnitOfWork {
        UnitOfWork {
            cause,
            changes: Vec::new(),
            outbox: Vec::new(),
        }
    }

    /// Queues `message` for publication when the unit commits.
    pub fn publish(&mut self, contracts: &Contracts, message: &Message) -> Result<Envelope, PublishError> {
        let (envelope, record) = contracts.record_for(message, &self.cause)?;
        self.outbox.push(record);
        Ok(envelope)
    }

    /// Whether committing would change anything beyond marking the message handled.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.outbox.is_empty()
    }
}

/// The rows a batch of units writes, table by table and in order, borrowed
/// from the units. PostgreSQL takes each table's rows as one JSON array (one
/// statement per table, `jsonb_array_elements`), so they serialize as JSON
/// objects with these field names; SQLite binds them row by row to a
/// prepared insert, where a statement costs no round trip.
pub struct BatchRows<'u> {
    pub handled: Vec<HandledRow<'u>>,
    pub events: Vec<EventRow<'u>>,
    /// The last state of each aggregate only: one statement may not upsert a
    /// row twice.
    pub states: Vec<StateRow<'u>>,
    pub outbox: Vec<OutboxRow<'u>>,
}

#[derive(serde::Serialize)]
pub struct HandledRow<'u> {
    pub consumer: &'u str,
    pub message_id: &'u str,
    /// RFC 3339, as every time a store keeps.
    pub at: String,
}

#[derive(serde::Serialize)]
pub struct EventRow<'u> {
    pub aggregate_type: &'u str,
    pub aggregate_id: &'u str,
    pub sequence: i64,
    pub event_type: &'u str,
    pub event_version: &'u str,
    pub payload: &'u JsonText,
    pub correlation_id: &'u str,
    pub causation_id: Option<&'u str>,
    pub at: String,
}

#[derive(serde::Serialize)]
pub struct StateRow<'u> {
    pub aggregate_type: &'u str,
    pub aggregate_id: &'u str,
    pub version: i64,
    pub state: &'u JsonText,
    pub at: String,
}

#[derive(serde::Serialize)]
pub struct OutboxRow<'u> {
    pub topic: &'u str,
    pub key: Option<&'u str>,
    pub value: &'u str,
    pub headers: &'u [(String, String)],
}

impl<'u> BatchRows<'u> {
    pub fn of(units: &'u [UnitOfWork]) -> BatchRows<'u> {
        let (mut handled, mut events, mut outbox) = (Vec::new(), Vec::new(), Vec::new());
        let mut states: Vec<StateRow<'u>> = Vec::new();
        let mut state_index: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
        for unit in units {
            let at = unit.cause.at.to_rfc3339();
            if let Some(message) = &unit.cause.handled {
                handled.push(HandledRow {
                    consumer: &message.consumer,
                    message_id: &message.message_id,
                    at: at.clone(),
                });
            }
            for change in &unit.changes {
                for (index, event) in change.events.iter().enumerate() {
                    events.push(EventRow {
                        aggregate_type: &change.aggregate_type,
                        aggregate_id: &change.aggregate_id,
                        sequence: change.expected_version + index as i64 + 1,
                        event_type: &event.event_type,
                        event_version: &event.event_version,
                        payload: &event.payload,
                        correlation_id: &unit.cause.correlation_id,
                        causation_id: unit.cause.causation_id.as_deref(),
                        at: at.clone(),
                    });
                }
                let state = StateRow {
                    aggregate_type: &change.aggregate_type,
                    aggregate_id: &change.aggregate_id,
                    version: change.expected_version + change.events.len() as i64,
                    state: &change.state,
                    at: at.clone(),
                };
                match state_index.entry((&change.aggregate_type, &change.aggregate_id)) {
                    std::collections::hash_map::Entry::Occupied(slot) => states[*slot.get()] = state,
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(states.len());
                        states.push(state);
                    }
                }
            }
            for record in &unit.outbox {
                outbox.push(OutboxRow {
                    topic: &record.topic,
                    key: record.key.as_deref(),
                    value: &record.value,
                    headers: &record.headers,
                });
            }
        }
        BatchRows {
            handled,
            events,
            states,
            outbox,
        }
    }
}

/// Which aggregate of a refused batch moved past its expected version: the
/// error a store returns when an append broke the uniqueness of a sequence.
pub async fn conflict_among(store: &dyn EventStore, units: &[UnitOfWork]) -> StoreError {
    let conflict = |change: &AggregateChange| StoreError::Conflict {
        aggregate_type: change.aggregate_type.clone(),
        aggregate_id: change.aggregate_id.clone(),
    };
    let changes = units.iter().flat_map(|unit| &unit.changes);
    for change in changes.clone() {
        match store.load(&change.aggregate_type, &change.aggregate_id).await {
            Ok(events) if events.last().map_or(0, |e| e.sequence) == change.expected_version => continue,
            Ok(_) => return conflict(change),
            Err(error) => return error,
        }
    }
    // Two units of the batch appended to the same aggregate at the same version.
    changes
        .map(conflict)
        .next()
        .unwrap_or_else(|| StoreError::Other("an append was refused".into()))
}

/// How to select read models.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateQuery {
    /// Fields of the state ([`is_field_path`]) that must equal these strings.
    pub equals: Vec<(String, String)>,
    /// A field to sort by, as text, ascending; insertion order when `None`.
    pub order_by: Option<String>,
    pub descending: bool,
    pub limit: Option<i64>,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{aggregate_type} {aggregate_id} was changed concurrently; retry")]
    Conflict {
        aggregate_type: String,
        aggregate_id: String,
    },
    #[error("the message was already handled")]
    AlreadyHandled,
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// The store will never take or read this: a value it cannot hold (such as
    /// PostgreSQL refusing `\u0000` in JSON), or a stored event that no longer
    /// decodes. Trying again cannot help; a consumer dead-letters the record.
    #[error("the event store refuses it for good: {0}")]
    Permanent(String),
    #[error("event store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the same work may succeed if tried again.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::Unavailable(_))
    }
}

/// Whether `field` names a read-model field a query may filter or sort on:
/// identifiers, joined by `.` for a field of a nested object. Only such names
/// are spliced into SQL.
pub fn is_field_path(field: &str) -> bool {
    field
        .split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// One aggregate's events, oldest first.
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// Commits a unit of work atomically. Fails with [`StoreError::AlreadyHandled`]
    /// when its cause was already handled, and [`StoreError::Conflict`] when an
    /// aggregate moved past its expected version.
    async fn commit(&self, unit: UnitOfWork) -> Result<(), StoreError> {
        self.commit_batch(vec![unit]).await
    }

    /// Commits several units in one transaction, all or none, failing as
    /// [`EventStore::commit`] does if any one of them would. A consumer commits
    /// a whole poll's work this way (see `batch`).
    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError>;

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError>;

    /// Forgets the handled marks made before `before`: past the dedupe window
    /// a duplicate is no longer recognised, and the marks do not grow forever
    /// (SPEC section 10). Returns how many were forgotten.
    async fn prune_handled(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Forgets every aggregate of `aggregate_type` last changed before
    /// `before` (and, if `status` is given, whose read model's `status` is
    /// it), events and read model: for records kept only for a window (the
    /// API's idempotent requests, released parked keys). Returns how many.
    async fn prune_aggregates(
        &self,
        aggregate_type: &str,
        before: DateTime<Utc>,
        status: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// One aggregate's read model and version, if the read model is as new
    /// as the aggregate's events: what an aggregate whose read model is whole
    /// is rebuilt from ([`crate::aggregate::load_from_read_model`]).
    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError>;

    /// One aggregate's read model and version.
    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError>;

    async fn query_states(&self, aggregate_type: &str, query: &StateQuery) -> Result<Vec<Value>, StoreError>;

    /// How many read models of `aggregate_type` have these field values.
    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError>;

    /// Every event of every aggregate of a type, by aggregate then sequence: one
    /// read to rebuild them all, instead of one per aggregate.
    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<EventOfType>, StoreError>;

    /// The oldest messages waiting in the outbox, with their outbox ids.
    async fn outbox_batch(&self, limit: i64) -> Result<Vec<(i64, OutgoingRecord)>, StoreError>;

    async fn outbox_delete(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// How many messages wait in the outbox.
    async fn outbox_depth(&self) -> Result<i64, StoreError>;

    /// Notified after a commit that queued messages.
    fn outbox_signal(&self) -> Arc<Notify>;

    /// Whether this process may relay the outbox now. Replicas sharing a store
    /// take turns: one relays, the others stand by, so messages leave in order.
    async fn claim_outbox(&self) -> Result<bool, StoreError>;
}
