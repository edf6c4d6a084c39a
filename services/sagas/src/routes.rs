//! `POST /api/orders` starts a create-order saga; `/api/sagas` shows sagas of
//! every type, their state and their history.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::messages::OrderDetails;
use campusg_domain::order::ValidatedOrder;
use campusg_domain::saga::accept_order::{self, AcceptOrderSaga};
use campusg_domain::saga::complete_order::{self, CompleteOrderSaga};
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand, SAGA_TYPE};
use campusg_domain::saga::SagaStatus;
use campusg_runtime::aggregate::load;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::http::{ApiError, JsonBody, Page};
use campusg_runtime::store::{Cause, StateQuery, StoredEvent};

use crate::{SagaOrchestrator, SERVICE_NAME};

pub fn router(orchestrator: Arc<SagaOrchestrator>) -> Router {
    Router::new()
        .route("/api/orders", post(place_order))
        .route("/api/sagas", get(list_sagas))
        .route("/api/sagas/{saga_id}", get(get_saga))
        .route("/api/sagas/{saga_id}/history", get(saga_history))
        .route("/saga/complete/orderUpdateStream/{saga_id}", get(update_stream))
        .with_state(orchestrator)
}

/// The seeds' request body.
#[derive(Deserialize)]
struct PlaceOrderRequest {
    customer_id: UserId,
    order_details: OrderDetails,
}

async fn place_order(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    JsonBody(request): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Refuse an order that breaks a rule now, rather than start a saga to fail.
    ValidatedOrder::parse(&request.order_details, &orchestrator.rules)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let saga_id = SagaId(uuid::Uuid::new_v4());
    let order_id = OrderId(uuid::Uuid::new_v4());
    let at = orchestrator.deps.clock.now();
    let mut loaded = load::<CreateOrderSaga>(orchestrator.deps.store.as_ref(), &saga_id.to_string()).await?;
    let start = CreateOrderSagaCommand::Start {
        saga_id,
        order_id,
        customer_id: request.customer_id,
        order_details: request.order_details,
        at,
    };
    let cause = Cause::request(saga_id.to_string(), SERVICE_NAME, at);
    orchestrator
        .advance(&mut loaded, start, cause)
        .await
        .map_err(|error| match error {
            HandlerError::Rejected(reason) => ApiError::internal(reason),
            HandlerError::Transient(error) => ApiError::internal(error),
        })?;
    tracing::info!(saga_id = %saga_id, order_id = %order_id, "create-order saga started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "saga_id": saga_id, "order_id": order_id, "status": SagaStatus::Started})),
    ))
}

pub fn parse_saga_id(text: &str) -> Result<SagaId, ApiError> {
    SagaId::parse(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not a saga id (a UUID)")))
}

/// The saga types, each with its aggregate type.
const SAGA_TYPES: [(&str, &str); 3] = [
    (SAGA_TYPE, CreateOrderSaga::TYPE),
    (accept_order::SAGA_TYPE, AcceptOrderSaga::TYPE),
    (complete_order::SAGA_TYPE, CompleteOrderSaga::TYPE),
];

/// A saga as the API shows it.
fn saga_view(saga_type: &str, state: &Value) -> Value {
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
        "pending_compensations": state["pending_compensations"],
        "created_at": state["started_at"],
        "updated_at": state["updated_at"],
    })
}

/// Which type a saga is, and its read model.
async fn find_saga(
    orchestrator: &SagaOrchestrator,
    saga_id: SagaId,
) -> Result<(&'static str, &'static str, Value), ApiError> {
    for (saga_type, aggregate_type) in SAGA_TYPES {
        if let Some((_, state)) = orchestrator
            .deps
            .store
            .state(aggregate_type, &saga_id.to_string())
            .await?
        {
            return Ok((saga_type, aggregate_type, state));
        }
    }
    Err(ApiError::not_found(format!("saga {saga_id} does not exist")))
}

async fn history(
    orchestrator: &SagaOrchestrator,
    aggregate_type: &str,
    saga_id: SagaId,
) -> Result<Vec<Value>, ApiError> {
    let events = orchestrator
        .deps
        .store
        .load(aggregate_type, &saga_id.to_string())
        .await?;
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

async fn get_saga(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Path(saga_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let (saga_type, aggregate_type, state) = find_saga(&orchestrator, saga_id).await?;
    let mut view = saga_view(saga_type, &state);
    view["history"] = Value::Array(history(&orchestrator, aggregate_type, saga_id).await?);
    Ok(Json(view))
}

async fn saga_history(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Path(saga_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let (_, aggregate_type, _) = find_saga(&orchestrator, saga_id).await?;
    let events = history(&orchestrator, aggregate_type, saga_id).await?;
    Ok(Json(json!({"saga_id": saga_id, "history": events})))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    order_id: Option<String>,
    saga_type: Option<String>,
}

/// Sagas of every type (or `saga_type`), by status and order, the most recently
/// started first.
async fn list_sagas(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Query(params): Query<ListParams>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let mut query = StateQuery {
        order_by: Some("started_at".into()),
        descending: true,
        ..StateQuery::default()
    };
    if let Some(status) = params.status {
        let status = SagaStatus::parse(&status).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{status}` is not a saga status (one of {})",
                SagaStatus::ALL.map(|s| s.as_str()).join(", ")
            ))
        })?;
        query.equals.push(("status".into(), status.as_str().to_string()));
    }
    if let Some(order_id) = params.order_id {
        query.equals.push(("order_id".into(), order_id));
    }
    let types: Vec<_> = match params.saga_type {
        Some(wanted) => {
            let found: Vec<_> = SAGA_TYPES.into_iter().filter(|(t, _)| *t == wanted).collect();
            if found.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "`{wanted}` is not a saga type (one of {})",
                    SAGA_TYPES.map(|(t, _)| t).join(", ")
                )));
            }
            found
        }
        None => SAGA_TYPES.to_vec(),
    };
    // Each type's first (offset + limit) sagas hold the page; merge them and cut it out.
    let mut paged = StateQuery::default();
    let (page, page_size) = page.apply(&mut paged, 50, 500);
    query.limit = Some(paged.offset + page_size);
    let mut sagas = Vec::new();
    for (saga_type, aggregate_type) in types {
        for state in orchestrator.deps.store.query_states(aggregate_type, &query).await? {
            sagas.push(saga_view(saga_type, &state));
        }
    }
    sagas.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    let sagas: Vec<Value> = sagas
        .into_iter()
        .skip(paged.offset as usize)
        .take(page_size as usize)
        .collect();
    Ok(Json(json!({"sagas": sagas, "page": page, "page_size": page_size})))
}

/// How often the update stream looks at its saga.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long the update stream waits for a saga it does not know yet.
const STREAM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Where an update stream stands: the saga events it has sent, and what is
/// queued to send.
struct StreamState {
    orchestrator: Arc<SagaOrchestrator>,
    saga_id: SagaId,
    sent: usize,
    queued: VecDeque<Event>,
    ended: bool,
}

/// Server-sent events of a saga's progress: an `update` event for each step the
/// saga records (its history, so no step is missed however fast the saga runs),
/// with the status it left the saga in; then an `end` event once the saga
/// reaches a final status, and the stream closes. An unknown saga is a 404.
async fn update_stream(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Path(saga_id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    // A saga started a moment ago by an event (an order reported DELIVERED)
    // may not be recorded yet: give it a little time before calling it unknown.
    let mut patience = STREAM_PATIENCE;
    while let Err(unknown) = find_saga(&orchestrator, saga_id).await {
        if patience.is_zero() {
            return Err(unknown);
        }
        tokio::time::sleep(STREAM_POLL).await;
        patience = patience.saturating_sub(STREAM_POLL);
    }
    let start = StreamState {
        orchestrator,
        saga_id,
        sent: 0,
        queued: VecDeque::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(start, |mut stream| async move {
        loop {
            if let Some(event) = stream.queued.pop_front() {
                return Some((Ok(event), stream));
            }
            if stream.ended {
                return None;
            }
            if let Err(error) = stream.look().await {
                stream
                    .queued
                    .push_back(Event::default().event("error").data(error.message));
                stream.ended = true;
                continue;
            }
            if stream.queued.is_empty() && !stream.ended {
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl StreamState {
    /// Queues the saga's steps not sent yet, and the end once it is final.
    async fn look(&mut self) -> Result<(), ApiError> {
        let (saga_type, aggregate_type, _) = find_saga(&self.orchestrator, self.saga_id).await?;
        let events = self
            .orchestrator
            .deps
            .store
            .load(aggregate_type, &self.saga_id.to_string())
            .await?;
        let statuses = match aggregate_type {
            t if t == CreateOrderSaga::TYPE => statuses_after_each::<CreateOrderSaga>(&events),
            t if t == AcceptOrderSaga::TYPE => statuses_after_each::<AcceptOrderSaga>(&events),
            _ => statuses_after_each::<CompleteOrderSaga>(&events),
        };
        for (event, status) in events.iter().zip(&statuses).skip(self.sent) {
            let update = json!({
                "saga_id": self.saga_id,
                "saga_type": saga_type,
                "sequence": event.sequence,
                "step": event.event_type.split_once('.').map_or(event.event_type.as_str(), |(_, step)| step),
                "status": status,
                "at": event.recorded_at,
            });
            self.queued
                .push_back(Event::default().event("update").data(update.to_string()));
        }
        self.sent = events.len();
        let last = statuses.last().and_then(Value::as_str).and_then(SagaStatus::parse);
        if last.is_some_and(SagaStatus::is_final) {
            let end = json!({"saga_id": self.saga_id, "status": last});
            self.queued
                .push_back(Event::default().event("end").data(end.to_string()));
            self.ended = true;
        }
        Ok(())
    }
}

/// The saga's status after each of its events, replayed.
fn statuses_after_each<A: Aggregate + serde::Serialize>(events: &[StoredEvent]) -> Vec<Value> {
    let mut saga = A::default();
    events
        .iter()
        .map(|stored| {
            if let Ok(event) = serde_json::from_value::<A::Event>(stored.payload.clone()) {
                saga.apply(event);
            }
            serde_json::to_value(&saga)
                .map(|state| state["status"].clone())
                .unwrap_or(Value::Null)
        })
        .collect()
}
