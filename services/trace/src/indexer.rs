//! Filing each record under its order and its saga.

use async_trait::async_trait;
use serde_json::Value;

use campusg_domain::ids::OrderId;
use campusg_runtime::bus::Record;
use campusg_runtime::consumer::{HandlerError, RecordHandler};
use campusg_runtime::store::{AggregateChange, Cause, HandledMessage, JsonText, NewEvent, StoreError, UnitOfWork};

use crate::story::{TracedRecord, ORDER_TRACE, SAGA_TRACE};
use crate::{TraceIndex, CONSUMER_GROUP, SERVICE_NAME};

#[async_trait]
impl RecordHandler for TraceIndex {
    async fn handle_record(&self, record: &Record) -> Result<(), HandlerError> {
        let traced = TracedRecord::of(record);
        let position = format!("{}/{}/{}", record.topic, record.partition, record.offset);
        let mut unit = UnitOfWork::new(Cause {
            correlation_id: traced.correlation_id.clone().unwrap_or_default(),
            causation_id: traced.id.clone(),
            source: SERVICE_NAME,
            at: self.deps.clock.now(),
            handled: Some(HandledMessage {
                consumer: CONSUMER_GROUP.to_string(),
                message_id: position,
            }),
        });
        let order = traced.key.clone().filter(|key| OrderId::parse(key).is_ok());
        let saga = traced
            .correlation_id
            .clone()
            .filter(|c| !c.is_empty() && c != "unknown");
        if let Some(order) = &order {
            let version = self.version_of(ORDER_TRACE, order).await?.0;
            unit.changes.push(filed(ORDER_TRACE, order, version, &traced, None));
        }
        if let Some(saga) = saga {
            // A record of an order is read back from the order's stream: the
            // saga's stream only needs to name each order it touched once.
            // The rest of the saga's records (keyed by a user, say) are kept
            // whole.
            let (version, mut orders) = self.version_of(SAGA_TRACE, &saga).await?;
            let record = match order {
                Some(order) if orders.contains(&order) => None,
                Some(order) => {
                    orders.push(order);
                    Some(TracedRecord {
                        payload: Value::Null,
                        ..traced
                    })
                }
                None => Some(traced),
            };
            if let Some(record) = record {
                unit.changes
                    .push(filed(SAGA_TRACE, &saga, version, &record, Some(orders)));
            }
        }
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}

impl TraceIndex {
    /// A stream's version, and the orders a saga's stream has named so far.
    async fn version_of(&self, stream: &str, id: &str) -> Result<(i64, Vec<String>), StoreError> {
        Ok(match self.deps.store.state(stream, id).await? {
            Some((version, state)) => {
                let orders = state["orders"]
                    .as_array()
                    .map(|orders| orders.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                (version, orders)
            }
            None => (0, Vec::new()),
        })
    }
}

/// A stream's read model: how many records it holds and where the last one
/// lies; a saga's stream also keeps the orders it has named.
#[derive(serde::Serialize)]
struct StreamState {
    records: i64,
    last: (String, i32, i64),
    #[serde(skip_serializing_if = "Option::is_none")]
    orders: Option<Vec<String>>,
}

/// `record` appended to `stream`/`id` after `version`.
fn filed(stream: &str, id: &str, version: i64, record: &TracedRecord, orders: Option<Vec<String>>) -> AggregateChange {
    let state = StreamState {
        records: version + 1,
        last: record.position(),
        orders,
    };
    AggregateChange {
        aggregate_type: stream.to_string(),
        aggregate_id: id.to_string(),
        expected_version: version,
        events: vec![NewEvent {
            event_type: record.message_type.clone().unwrap_or_else(|| "unreadable".to_string()),
            event_version: "1".to_string(),
            payload: JsonText::of(record).expect("traced records serialize"),
        }],
        state: JsonText::of(&state).expect("a stream's read model serializes"),
    }
}
