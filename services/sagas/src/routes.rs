//! `POST /api/orders` starts a create-order saga; `/api/sagas` shows sagas, their
//! state and their history.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::messages::OrderDetails;
use campusg_domain::order::ValidatedOrder;
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand, SAGA_TYPE};
use campusg_domain::saga::SagaStatus;
use campusg_runtime::aggregate::load;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::http::{read_model, ApiError, JsonBody};
use campusg_runtime::store::{Cause, StateQuery};

use crate::{SagaOrchestrator, SERVICE_NAME};

pub fn router(orchestrator: Arc<SagaOrchestrator>) -> Router {
    Router::new()
        .route("/api/orders", post(place_order))
        .route("/api/sagas", get(list_sagas))
        .route("/api/sagas/{saga_id}", get(get_saga))
        .route("/api/sagas/{saga_id}/history", get(saga_history))
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
        .react(&mut loaded, start, cause)
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

fn parse_saga_id(text: &str) -> Result<SagaId, ApiError> {
    SagaId::parse(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not a saga id (a UUID)")))
}

/// A saga as the API shows it.
fn saga_view(state: &Value) -> Value {
    json!({
        "saga_id": state["saga_id"],
        "saga_type": SAGA_TYPE,
        "order_id": state["order_id"],
        "customer_id": state["customer_id"],
        "status": state["status"],
        "current_step": state["step"],
        "error": state["error"],
        "total_cents": state["total_cents"],
        "payment_id": state["payment_id"],
        "escrow_id": state["escrow_id"],
        "pending_compensations": state["pending_compensations"],
        "created_at": state["started_at"],
        "updated_at": state["updated_at"],
    })
}

async fn history(orchestrator: &SagaOrchestrator, saga_id: SagaId) -> Result<Vec<Value>, ApiError> {
    let events = orchestrator
        .deps
        .store
        .load(CreateOrderSaga::TYPE, &saga_id.to_string())
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
    let state = read_model(
        orchestrator.deps.store.as_ref(),
        CreateOrderSaga::TYPE,
        &saga_id.to_string(),
        "saga",
    )
    .await?;
    let mut view = saga_view(&state);
    view["history"] = Value::Array(history(&orchestrator, saga_id).await?);
    Ok(Json(view))
}

async fn saga_history(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Path(saga_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let events = history(&orchestrator, saga_id).await?;
    if events.is_empty() {
        return Err(ApiError::not_found(format!("saga {saga_id} does not exist")));
    }
    Ok(Json(json!({"saga_id": saga_id, "history": events})))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    order_id: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

async fn list_sagas(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let mut query = StateQuery::default();
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
    let page = params.page.unwrap_or(1).max(1);
    let page_size = params.page_size.unwrap_or(50).clamp(1, 500);
    query.limit = Some(page_size);
    query.offset = (page - 1) * page_size;
    let sagas: Vec<Value> = orchestrator
        .deps
        .store
        .query_states(CreateOrderSaga::TYPE, &query)
        .await?
        .iter()
        .map(saga_view)
        .collect();
    Ok(Json(json!({"sagas": sagas, "page": page, "page_size": page_size})))
}
