//! Sagas as people see them: every saga type's read model in one shape, their
//! histories, and the lists the API and the `campusg sagas` command show.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use serde_json::{json, Value};

use campusg_domain::ids::SagaId;
use campusg_domain::saga::accept_order::{self, AcceptOrderSaga};
use campusg_domain::saga::complete_order::{self, CompleteOrderSaga};
use campusg_domain::saga::create_order::{self, CreateOrderSaga};
use campusg_domain::saga::refund_order::{self, RefundSaga};
use campusg_domain::saga::SagaStatus;
use campusg_runtime::store::{EventStore, StateQuery, StoreError, StoredEvent};

/// The saga types, each with its aggregate type.
pub const SAGA_TYPES: [(&str, &str); 4] = [
    (create_order::SAGA_TYPE, CreateOrderSaga::TYPE),
    (accept_order::SAGA_TYPE, AcceptOrderSaga::TYPE),
    (complete_order::SAGA_TYPE, CompleteOrderSaga::TYPE),
    (refund_order::SAGA_TYPE, RefundSaga::TYPE),
];

/// The saga type named `name`, with its aggregate type.
pub fn saga_type(name: &str) -> Option<(&'static str, &'static str)> {
    SAGA_TYPES.into_iter().find(|(t, _)| *t == name)
}

/// The saga type whose aggregate type is `aggregate_type`.
pub fn saga_type_of(aggregate_type: &str) -> Option<&'static str> {
    SAGA_TYPES
        .into_iter()
        .find(|(_, aggregate)| *aggregate == aggregate_type)
        .map(|(name, _)| name)
}

/// A saga as the API shows it.
pub fn saga_view(saga_type: &str, state: &Value) -> Value {
    json!({
        "saga_id": state["saga_id"],
        "saga_type": saga_type,
        "order_id": state["order_id"],
        "customer_id": state["customer_id"],
        "runner_id": state["runner_id"],
        "status": state["status"],
        "current_step": state["step"],
        "error": state["error"],
        "cancellation_reason": state["cancellation_reason"],
        "cancelled_by": state["cancellation_requested_by"],
        "total_cents": state["total_cents"],
        "payment_id": state["payment_id"],
        "escrow_id": state["escrow_id"],
        "timer_id": state["timer_id"],
        "timer_due_at": state["timer_due_at"],
        "captured_cents": state["captured_cents"],
        "payout_cents": state["payout_cents"],
        "payout_status": state["payout_status"],
        "payout_account": state["payout_account"],
        "refund_cents": if saga_type == refund_order::SAGA_TYPE { state["amount_cents"].clone() } else { Value::Null },
        "refund_reason": if saga_type == refund_order::SAGA_TYPE { state["reason"].clone() } else { Value::Null },
        "pending_compensations": state["pending_compensations"],
        "anomalies": state.get("anomalies").cloned().unwrap_or_else(|| json!([])),
        "created_at": state["started_at"],
        "updated_at": state["updated_at"],
    })
}

/// A saga's state after each of its events, whatever its type.
pub fn states_after_each(aggregate_type: &str, events: &[StoredEvent]) -> Result<Vec<Value>, StoreError> {
    match crate::DESCRIPTION
        .aggregates
        .iter()
        .find(|kind| kind.aggregate_type == aggregate_type)
    {
        Some(kind) => (kind.states_after_each)(events),
        None => Err(StoreError::Other(format!("`{aggregate_type}` is not a saga type"))),
    }
}

/// A saga found by id, whatever its type.
pub struct FoundSaga {
    pub saga_type: &'static str,
    pub aggregate_type: &'static str,
    pub state: Value,
}

pub async fn find_saga(store: &dyn EventStore, saga_id: SagaId) -> Result<Option<FoundSaga>, StoreError> {
    for (saga_type, aggregate_type) in SAGA_TYPES {
        if let Some((_, state)) = store.state(aggregate_type, &saga_id.to_string()).await? {
            return Ok(Some(FoundSaga {
                saga_type,
                aggregate_type,
                state,
            }));
        }
    }
    Ok(None)
}

/// A saga's steps as recorded, oldest first.
pub async fn history(store: &dyn EventStore, aggregate_type: &str, saga_id: SagaId) -> Result<Vec<Value>, StoreError> {
    let events = store.load(aggregate_type, &saga_id.to_string()).await?;
    Ok(events
        .into_iter()
        .map(|event| {
            json!({
                "sequence": event.sequence,
                "event": event.event_type,
                "recorded_at": event.recorded_at,
                "caused_by": event.causation_id,
                "details": event.payload.get("payload").cloned().unwrap_or(Value::Null),
            })
        })
        .collect())
}

/// Which sagas to list.
#[derive(Clone, Debug, Default)]
pub struct SagaFilter {
    pub status: Option<SagaStatus>,
    pub order_id: Option<String>,
    /// Only the sagas that name this customer, or this runner.
    pub customer_id: Option<String>,
    pub runner_id: Option<String>,
    /// One type (its name and aggregate type); every type when left out.
    pub saga_type: Option<(&'static str, &'static str)>,
    /// Only sagas that are not final and whose last step is at least this old.
    pub stuck_for: Option<Duration>,
    /// Only sagas that recorded a reply they did not take (SPEC 11).
    pub with_anomalies: bool,
    /// At most this many of each type, the most recently started first.
    pub limit: Option<i64>,
}

/// The sagas `filter` selects, the most recently started first.
pub async fn list(store: &dyn EventStore, filter: &SagaFilter, now: DateTime<Utc>) -> Result<Vec<Value>, StoreError> {
    let query = StateQuery {
        order_by: Some("started_at".into()),
        descending: true,
        limit: if filter.stuck_for.is_some() || filter.with_anomalies {
            None
        } else {
            filter.limit
        },
        equals: fields_of(filter),
        ..StateQuery::default()
    };
    let mut sagas = Vec::new();
    for (saga_type, aggregate_type) in types_of(filter) {
        for state in store.query_states(aggregate_type, &query).await? {
            if let Some(stuck_for) = filter.stuck_for {
                if !is_stuck(&state, now, stuck_for) {
                    continue;
                }
            }
            let has_anomalies = state["anomalies"].as_array().is_some_and(|found| !found.is_empty());
            if filter.with_anomalies && !has_anomalies {
                continue;
            }
            sagas.push(saga_view(saga_type, &state));
        }
    }
    sagas.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    Ok(sagas)
}

/// How many sagas `filter` selects, its `limit` aside: counted by the store
/// when the filter is only read-model fields, else listed and counted.
pub async fn count(store: &dyn EventStore, filter: &SagaFilter, now: DateTime<Utc>) -> Result<i64, StoreError> {
    if filter.stuck_for.is_some() || filter.with_anomalies {
        return Ok(list(store, filter, now).await?.len() as i64);
    }
    let equals = fields_of(filter);
    let mut total = 0;
    for (_, aggregate_type) in types_of(filter) {
        total += store.count_states(aggregate_type, &equals).await?;
    }
    Ok(total)
}

/// The read-model fields `filter` asks to equal.
fn fields_of(filter: &SagaFilter) -> Vec<(String, String)> {
    let status = filter.status.map(|status| status.as_str().to_string());
    [
        ("status", status.as_ref()),
        ("order_id", filter.order_id.as_ref()),
        ("customer_id", filter.customer_id.as_ref()),
        ("runner_id", filter.runner_id.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, wanted)| Some((field.to_string(), wanted?.clone())))
    .collect()
}

/// The saga types `filter` looks at: its one, or all.
fn types_of(filter: &SagaFilter) -> Vec<(&'static str, &'static str)> {
    match filter.saga_type {
        Some(one) => vec![one],
        None => SAGA_TYPES.to_vec(),
    }
}

/// Whether a saga still has work to do and has not moved for `stuck_for`.
fn is_stuck(state: &Value, now: DateTime<Utc>, stuck_for: Duration) -> bool {
    let unfinished = state["status"]
        .as_str()
        .and_then(SagaStatus::parse)
        .is_some_and(|status| !status.is_final());
    let last_step: Option<DateTime<Utc>> = serde_json::from_value(state["updated_at"].clone()).ok();
    unfinished && last_step.is_some_and(|at| now - at >= stuck_for)
}
