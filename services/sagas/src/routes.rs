//! `POST /api/orders` starts a create-order saga; `/api/sagas` shows sagas of
//! every type, their state and their history.
//!
//! A customer places orders for themselves; a saga is seen by the parties it
//! names (its customer, its runner) and operators; the list is for operators.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use campusg_runtime::telemetry::saga_span;

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::limits::MAX_QUERY_DURATION_SECONDS;
use campusg_domain::messages::OrderDetails;
use campusg_domain::order::ValidatedOrder;
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand};
use campusg_domain::saga::SagaStatus;
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::aggregate::load_from_read_model;
use campusg_runtime::http::{ApiError, JsonBody, Page, Path, Query, RequestKey};
use campusg_runtime::store::{Cause, StateQuery};

use crate::{stream, views, SagaOrchestrator, SERVICE_NAME};

pub fn routes() -> Routes<Arc<SagaOrchestrator>> {
    Routes::new()
        .post("/api/orders", "placeOrder", Access::Customers, place_order)
        .get("/api/sagas", "listSagas", Access::Operators, list_sagas)
        .get("/api/sagas/{saga_id}", "getSaga", Access::Users, get_saga)
        .get(
            "/api/sagas/{saga_id}/history",
            "getSagaHistory",
            Access::Users,
            saga_history,
        )
        .get(
            "/saga/complete/orderUpdateStream/{saga_id}",
            "streamSagaUpdates",
            Access::Users,
            stream::update_stream,
        )
}

/// The saga `saga_id`, when `caller` is one of the parties it names or an
/// operator: a 404 when there is none, a 403 when it is someone else's.
pub async fn saga_seen_by(
    orchestrator: &SagaOrchestrator,
    caller: &Caller,
    saga_id: SagaId,
) -> Result<Option<views::FoundSaga>, ApiError> {
    let Some(found) = views::find_saga(orchestrator.deps.store.as_ref(), saga_id).await? else {
        return Ok(None);
    };
    let party = |field: &str| found.state[field].as_str().and_then(|id| UserId::parse(id).ok());
    let (customer, runner) = (party("customer_id"), party("runner_id"));
    caller.is_party_to([customer.as_ref(), runner.as_ref()], &format!("saga {saga_id}"))?;
    Ok(Some(found))
}

/// The seeds' request body.
#[derive(Deserialize)]
struct PlaceOrderRequest {
    customer_id: UserId,
    order_details: OrderDetails,
}

async fn place_order(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    caller: Caller,
    key: Option<Extension<RequestKey>>,
    JsonBody(request): JsonBody<PlaceOrderRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.acts_for(&request.customer_id)?;
    // Refuse an order that breaks a rule now, rather than start a saga to fail.
    ValidatedOrder::parse(&request.order_details, &orchestrator.rules)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    // Under an Idempotency-Key the saga is named by the key: a retry whose
    // first answer was lost finds the saga it started.
    let saga_id = match &key {
        Some(Extension(RequestKey(key))) => SagaId::for_request(key),
        None => SagaId(uuid::Uuid::new_v4()),
    };
    let order_id = OrderId::for_saga(saga_id);
    let at = orchestrator.deps.clock.now();
    let mut loaded =
        load_from_read_model::<CreateOrderSaga>(orchestrator.deps.store.as_ref(), &saga_id.to_string()).await?;
    if loaded.version > 0 {
        // The key's first request is remembered for the dedupe window only;
        // after it, the saga still stands, and a key reused for another order
        // must not be answered with the first one.
        let first = orchestrator
            .deps
            .store
            .load(<CreateOrderSaga as cqrs_es::Aggregate>::TYPE, &saga_id.to_string())
            .await?;
        let first_details = first
            .first()
            .map(|started| started.payload["payload"]["order_details"].clone());
        let same_order = first_details == Some(serde_json::to_value(&request.order_details).unwrap_or_default());
        if loaded.aggregate.customer_id.as_ref() != Some(&request.customer_id) || !same_order {
            return Err(ApiError::conflict(
                "this Idempotency-Key already placed another order; use a new key for a new order",
            ));
        }
        let status = loaded.aggregate.header.status;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"success": true, "saga_id": saga_id, "order_id": order_id, "status": status})),
        ));
    }
    let start = CreateOrderSagaCommand::Start {
        saga_id,
        order_id,
        customer_id: request.customer_id,
        order_details: request.order_details,
        at,
    };
    let cause = Cause::request(saga_id.to_string(), SERVICE_NAME, at);
    let trace = saga_span(&saga_id.to_string(), "create_order saga", &order_id.to_string());
    orchestrator
        .advance(&mut loaded, start, cause)
        .instrument(trace)
        .await?;
    tracing::info!(saga_id = %saga_id, order_id = %order_id, "create-order saga started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "saga_id": saga_id, "order_id": order_id, "status": SagaStatus::Started})),
    ))
}

pub fn parse_saga_id(text: &str) -> Result<SagaId, ApiError> {
    SagaId::parse(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not a saga id (a UUID)")))
}

async fn get_saga(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    caller: Caller,
    Path(saga_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let store = orchestrator.deps.store.as_ref();
    let found = saga_seen_by(&orchestrator, &caller, saga_id)
        .await?
        .ok_or_else(|| unknown(saga_id))?;
    let mut view = views::saga_view(found.saga_type, &found.state);
    view["history"] = Value::Array(views::history(store, found.aggregate_type, saga_id).await?);
    Ok(Json(view))
}

async fn saga_history(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    caller: Caller,
    Path(saga_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let store = orchestrator.deps.store.as_ref();
    let found = saga_seen_by(&orchestrator, &caller, saga_id)
        .await?
        .ok_or_else(|| unknown(saga_id))?;
    let events = views::history(store, found.aggregate_type, saga_id).await?;
    Ok(Json(json!({"saga_id": saga_id, "history": events})))
}

pub fn unknown(saga_id: SagaId) -> ApiError {
    ApiError::not_found(format!("saga {saga_id} does not exist"))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    order_id: Option<OrderId>,
    customer_id: Option<UserId>,
    runner_id: Option<UserId>,
    saga_type: Option<String>,
    /// Only sagas not final whose last step is at least this many seconds old.
    stuck_for: Option<i64>,
    /// Only sagas that recorded a reply they did not take.
    #[serde(default)]
    anomalies: bool,
}

/// Sagas of every type (or `saga_type`), by status and order, the most recently
/// started first.
async fn list_sagas(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    Query(params): Query<ListParams>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let status = match params.status {
        Some(text) => Some(SagaStatus::parse(&text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{text}` is not a saga status (one of {})",
                SagaStatus::ALL.map(|s| s.as_str()).join(", ")
            ))
        })?),
        None => None,
    };
    let saga_type = match params.saga_type {
        Some(wanted) => Some(views::saga_type(&wanted).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{wanted}` is not a saga type (one of {})",
                views::SAGA_TYPES.map(|(t, _)| t).join(", ")
            ))
        })?),
        None => None,
    };
    let mut paged = StateQuery::default();
    let (page, page_size) = page.apply(&mut paged, 50, 500)?;
    let filter = views::SagaFilter {
        status,
        order_id: params.order_id.map(|id| id.to_string()),
        customer_id: params.customer_id.map(|id| id.to_string()),
        runner_id: params.runner_id.map(|id| id.to_string()),
        saga_type,
        stuck_for: params
            .stuck_for
            .map(|secs| {
                if (0..=MAX_QUERY_DURATION_SECONDS).contains(&secs) {
                    Ok(chrono::Duration::seconds(secs))
                } else {
                    Err(ApiError::bad_request(format!(
                        "stuck_for runs from 0 to {MAX_QUERY_DURATION_SECONDS} seconds, not {secs}"
                    )))
                }
            })
            .transpose()?,
        with_anomalies: params.anomalies,
        limit: Some(paged.offset + page_size),
    };
    let sagas: Vec<Value> = views::list(orchestrator.deps.store.as_ref(), &filter, orchestrator.deps.clock.now())
        .await?
        .into_iter()
        .skip(paged.offset as usize)
        .take(page_size as usize)
        .collect();
    Ok(Json(json!({"sagas": sagas, "page": page, "page_size": page_size})))
}
