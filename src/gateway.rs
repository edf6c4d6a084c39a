//! The routes that need two services: a customer cancelling an order.
//!
//! The order service decides whether the cancellation stands (the customer may
//! cancel only before a runner accepts), at once and under optimistic
//! concurrency, so that a cancellation racing a runner's acceptance gets a clear
//! answer. The saga that placed the order, found here, is named as the
//! cancellation's correlation id: it hears `order.cancelled` and refunds the
//! escrow, voids the payment and stops the timer.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_order::OrderService;
use campusg_runtime::http::{optional_json, ApiError};
use campusg_sagas::SagaOrchestrator;

#[derive(Clone)]
struct Gateway {
    sagas: Arc<SagaOrchestrator>,
    orders: Arc<OrderService>,
}

pub fn router(sagas: Arc<SagaOrchestrator>, orders: Arc<OrderService>) -> Router {
    Router::new()
        .route("/api/orders/{order_id}/cancel", post(cancel_order))
        .route("/api/sagas/{saga_id}/cancel", post(cancel_saga))
        .with_state(Gateway { sagas, orders })
}

/// Both fields may be left out: the body may be empty.
#[derive(Deserialize, Default)]
struct CancelRequest {
    /// When given, must be the order's customer.
    customer_id: Option<UserId>,
    reason: Option<String>,
}

async fn cancel_order(
    State(gateway): State<Gateway>,
    Path(order_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let order_id = campusg_order::parse_order_id(&order_id)?;
    let saga_id = gateway.sagas.placing_saga_of(order_id).await?;
    cancel(&gateway, order_id, saga_id, optional_json(&body)?).await
}

/// Cancels the order a create-order saga placed.
async fn cancel_saga(
    State(gateway): State<Gateway>,
    Path(saga_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let saga_id = campusg_sagas::parse_saga_id(&saga_id)?;
    let saga = gateway.sagas.create_order_saga(saga_id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no create-order saga {saga_id}; an accepted order is given back with POST /api/orders/{{id}}/cancel-acceptance"
        ))
    })?;
    let order_id = saga
        .order_id
        .ok_or_else(|| ApiError::conflict(format!("saga {saga_id} has placed no order")))?;
    cancel(&gateway, order_id, Some(saga_id), optional_json(&body)?).await
}

async fn cancel(
    gateway: &Gateway,
    order_id: OrderId,
    saga_id: Option<SagaId>,
    request: CancelRequest,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let reason = request
        .reason
        .unwrap_or_else(|| "cancelled by the customer".to_string());
    // An order placed by hand has no saga here; its cancellation is its own.
    let correlation = saga_id.unwrap_or_else(|| SagaId(uuid::Uuid::new_v4()));
    let decided = gateway
        .orders
        .cancel_for_customer(order_id, request.customer_id, reason, correlation)
        .await?;
    tracing::info!(order_id = %order_id, saga_id = %correlation, "order cancelled by the customer");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "saga_id": saga_id,
            "status": "CANCELLING",
            "order": campusg_order::order_view(&decided.order),
        })),
    ))
}
