//! Filing each record under its order and its saga.

use async_trait::async_trait;
use serde_json::json;

use campusg_domain::ids::OrderId;
use campusg_runtime::bus::Record;
use campusg_runtime::consumer::{HandlerError, RecordHandler};
use campusg_runtime::store::{AggregateChange, Cause, HandledMessage, NewEvent, UnitOfWork};

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
        for (stream, id) in [(ORDER_TRACE, order), (SAGA_TRACE, saga)] {
            let Some(id) = id else { continue };
            let version = match self.deps.store.state(stream, &id).await? {
                Some((version, _)) => version,
                None => 0,
            };
            unit.changes.push(AggregateChange {
                aggregate_type: stream.to_string(),
                aggregate_id: id,
                expected_version: version,
                events: vec![NewEvent {
                    event_type: traced.message_type.clone().unwrap_or_else(|| "unreadable".to_string()),
                    event_version: "1".to_string(),
                    payload: serde_json::to_value(&traced).expect("traced records serialize"),
                }],
                state: json!({"records": version + 1, "last": traced.position()}),
            });
        }
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}
