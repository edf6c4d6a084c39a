//! Reading an order's story back from the trace index, in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use campusg_domain::ids::OrderId;
use campusg_runtime::bus::Record;
use campusg_runtime::store::{EventStore, StoreError};

/// The stream of an order's records in the trace store.
pub const ORDER_TRACE: &str = "order_trace";
/// The stream of a correlation id's (a saga's) records.
pub const SAGA_TRACE: &str = "saga_trace";

/// One record as the index keeps it: where it is in the log, and what it says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TracedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// When the log took the record.
    pub logged_at: DateTime<Utc>,
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub source: Option<String>,
    /// When the message says it happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// The message's payload; the whole value, as text, if it is not an envelope.
    pub payload: Value,
}

impl TracedRecord {
    /// Reads what it can of a record: a record that is not a valid envelope is
    /// kept too, since it is part of the story (it was dead-lettered).
    pub fn of(record: &Record) -> TracedRecord {
        let value: Option<Value> = serde_json::from_str(&record.value).ok();
        let field = |name: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| record.header(name).map(str::to_string))
        };
        TracedRecord {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            logged_at: record.timestamp,
            id: field("id"),
            message_type: field("type"),
            correlation_id: field("correlation_id"),
            causation_id: field("causation_id"),
            source: field("source"),
            timestamp: field("timestamp").and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|t| t.into())),
            payload: match &value {
                Some(v) if v.get("payload").is_some() => v["payload"].clone(),
                _ => Value::String(record.value.clone()),
            },
        }
    }

    /// When it happened, as well as the index knows.
    pub fn at(&self) -> DateTime<Utc> {
        self.timestamp.unwrap_or(self.logged_at)
    }

    pub fn position(&self) -> (String, i32, i64) {
        (self.topic.clone(), self.partition, self.offset)
    }

    /// The record's name in a page, which a diagram's arrow links to.
    pub fn anchor(&self) -> String {
        format!("record-{}-{}-{}", self.topic, self.partition, self.offset)
    }
}

/// The whole story of an order, or of the order(s) a saga id touched: every
/// record filed under it, in causal and time order. Empty if the id is unknown.
pub async fn story(store: &dyn EventStore, id: &str) -> Result<Vec<TracedRecord>, StoreError> {
    let mut records = stream(store, ORDER_TRACE, id).await?;
    let by_saga = stream(store, SAGA_TRACE, id).await?;
    let mut orders: Vec<String> = by_saga
        .iter()
        .filter_map(|r| r.key.clone())
        .filter(|key| OrderId::parse(key).is_ok() && key != id)
        .collect();
    orders.sort();
    orders.dedup();
    for order in orders {
        records.extend(stream(store, ORDER_TRACE, &order).await?);
    }
    records.extend(by_saga);
    records.sort_by_key(TracedRecord::position);
    records.dedup_by_key(|r| r.position());
    Ok(in_causal_order(records))
}

async fn stream(store: &dyn EventStore, kind: &str, id: &str) -> Result<Vec<TracedRecord>, StoreError> {
    Ok(store
        .load(kind, id)
        .await?
        .into_iter()
        .filter_map(|event| serde_json::from_value(event.payload).ok())
        .collect())
}

/// Sorted by when each message happened, and then each moved after the message
/// that caused it, should clocks disagree.
pub fn in_causal_order(mut records: Vec<TracedRecord>) -> Vec<TracedRecord> {
    records.sort_by(|a, b| a.at().cmp(&b.at()).then_with(|| a.position().cmp(&b.position())));
    for _ in 0..records.len() {
        let mut moved = false;
        for i in 0..records.len() {
            let Some(cause) = records[i].causation_id.clone() else {
                continue;
            };
            let later_cause = records[i + 1..]
                .iter()
                .position(|r| r.id.as_deref() == Some(cause.as_str()));
            if let Some(offset) = later_cause {
                let record = records.remove(i);
                records.insert(i + offset + 1, record);
                moved = true;
                break;
            }
        }
        if !moved {
            break;
        }
    }
    records
}
