//! The order routes of the HTTP API: one order; lists by customer, runner or
//! status; the orders available to runners (`CREATED`, oldest first); and a
//! runner accepting an order or giving it back, decided at once
//! ([`crate::decisions`]).
//!
//! An order is seen by its customer, its runner, any runner while it waits for
//! one, and operators; a list shows a customer or a runner only their own.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use cqrs_es::Aggregate;

use campusg_domain::ids::{OrderId, UserId};
use campusg_domain::money::{Cents, DecimalAmount};
use campusg_domain::order::{Order, OrderStatus};
use campusg_runtime::access::{Access, Caller, Role, Routes};
use campusg_runtime::http::{read_model, ApiError, JsonBody, Page, Path, Query};
use campusg_runtime::store::StateQuery;

use crate::OrderService;

pub fn routes() -> Routes<Arc<OrderService>> {
    Routes::new()
        .get("/api/orders/{order_id}", "getOrder", Access::Users, get_order)
        .get("/api/orders", "listOrders", Access::Users, list_orders)
        .get(
            "/api/orders/available",
            "listAvailableOrders",
            Access::Runners,
            available_orders,
        )
        .post("/api/orders/{order_id}/accept", "acceptOrder", Access::Runners, accept)
        .post(
            "/api/orders/{order_id}/cancel-acceptance",
            "cancelAcceptance",
            Access::Runners,
            give_back,
        )
        .post(
            "/api/orders/{order_id}/status",
            "reportDeliveryStage",
            Access::Runners,
            advance,
        )
}

/// A 403 unless `caller` may see `order`: its customer, its runner, a runner
/// while it waits for one (it is listed as available), or an operator.
pub fn may_see(caller: &Caller, order: &Order) -> Result<(), ApiError> {
    if caller.role == Role::Runner && order.status == Some(OrderStatus::Created) {
        return Ok(());
    }
    caller.is_party_to(
        [order.customer_id.as_ref(), order.runner_id.as_ref()],
        &format!("order {}", order.order_id.map(|id| id.to_string()).unwrap_or_default()),
    )
}

pub fn parse_order_id(text: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not an order id (a UUID)")))
}

async fn get_order(
    State(service): State<Arc<OrderService>>,
    caller: Caller,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    let state = read_model(service.deps.store.as_ref(), Order::TYPE, &order_id.to_string(), "order").await?;
    let order: Order = serde_json::from_value(state).map_err(ApiError::internal)?;
    may_see(&caller, &order)?;
    Ok(Json(order_view(&order)))
}

#[derive(Deserialize)]
struct ListParams {
    customer_id: Option<UserId>,
    runner_id: Option<UserId>,
    status: Option<String>,
}

/// A customer's list is of their orders, a runner's of the orders they ran;
/// naming someone else is a 403. Operators list anyone's.
async fn list_orders(
    State(service): State<Arc<OrderService>>,
    caller: Caller,
    Query(mut params): Query<ListParams>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let own = match caller.role {
        Role::Customer => Some(&mut params.customer_id),
        Role::Runner => Some(&mut params.runner_id),
        Role::Operator => None,
    };
    if let Some(own) = own {
        if let Some(named) = own.as_ref() {
            caller.acts_for(named)?;
        }
        *own = Some(caller.user.clone());
    }
    let mut query = StateQuery::default();
    if let Some(customer) = params.customer_id {
        query.equals.push(("customer_id".into(), customer.to_string()));
    }
    if let Some(runner) = params.runner_id {
        query.equals.push(("runner_id".into(), runner.to_string()));
    }
    if let Some(status) = params.status {
        let status = OrderStatus::parse(&status.to_ascii_uppercase())
            .ok_or_else(|| ApiError::bad_request(format!("`{status}` is not an order status")))?;
        query.equals.push(("status".into(), status.as_str().to_string()));
    }
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let states = service.deps.store.query_states(Order::TYPE, &query).await?;
    let orders: Vec<Value> = states
        .into_iter()
        .filter_map(|state| serde_json::from_value::<Order>(state).ok())
        .map(|order| order_view(&order))
        .collect();
    Ok(Json(json!({"orders": orders, "page": page, "page_size": page_size})))
}

/// Orders waiting for a runner, the longest waiting first.
async fn available_orders(
    State(service): State<Arc<OrderService>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let mut query = StateQuery {
        equals: vec![("status".into(), OrderStatus::Created.as_str().to_string())],
        order_by: Some("status_times.CREATED".into()),
        ..StateQuery::default()
    };
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let orders: Vec<Value> = service
        .deps
        .store
        .query_states(Order::TYPE, &query)
        .await?
        .into_iter()
        .filter_map(|state| serde_json::from_value::<Order>(state).ok())
        .map(|order| order_view(&order))
        .collect();
    Ok(Json(json!({"orders": orders, "page": page, "page_size": page_size})))
}

#[derive(Deserialize)]
struct RunnerRequest {
    runner_id: UserId,
}

async fn accept(
    State(service): State<Arc<OrderService>>,
    caller: Caller,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<RunnerRequest>,
) -> Result<Json<Value>, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    caller.acts_for(&request.runner_id)?;
    let decided = service.accept(order_id, request.runner_id).await?;
    Ok(Json(json!({
        "success": true,
        "saga_id": decided.saga_id,
        "order": order_view(&decided.order),
    })))
}

async fn give_back(
    State(service): State<Arc<OrderService>>,
    caller: Caller,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<RunnerRequest>,
) -> Result<Json<Value>, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    caller.acts_for(&request.runner_id)?;
    let decided = service.give_back(order_id, request.runner_id).await?;
    Ok(Json(json!({
        "success": true,
        "saga_id": decided.saga_id,
        "order": order_view(&decided.order),
    })))
}

#[derive(Deserialize)]
struct StageRequest {
    runner_id: UserId,
    status: OrderStatus,
}

/// The assigned runner reports a delivery stage, one at a time, in order.
async fn advance(
    State(service): State<Arc<OrderService>>,
    caller: Caller,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<StageRequest>,
) -> Result<Json<Value>, ApiError> {
    let order_id = parse_order_id(&order_id)?;
    caller.acts_for(&request.runner_id)?;
    let decided = service.advance(order_id, request.runner_id, request.status).await?;
    Ok(Json(json!({
        "success": true,
        "saga_id": decided.saga_id,
        "order": order_view(&decided.order),
    })))
}

fn decimal(cents: Cents) -> Value {
    serde_json::to_value(DecimalAmount::from_cents(cents)).unwrap_or(Value::Null)
}

/// An order as the API shows it: amounts in cents and in major units.
pub fn order_view(order: &Order) -> Value {
    json!({
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "runner_id": order.runner_id,
        "status": order.status,
        "items": order.items.iter().map(|item| json!({
            "name": item.name,
            "price": decimal(item.price_cents),
            "price_cents": item.price_cents,
            "quantity": item.quantity,
        })).collect::<Vec<_>>(),
        "store_location": order.store_location,
        "delivery_location": order.delivery_location,
        "food_fee": decimal(order.food_fee_cents),
        "delivery_fee": decimal(order.delivery_fee_cents),
        "total": decimal(order.total_cents),
        "food_fee_cents": order.food_fee_cents,
        "delivery_fee_cents": order.delivery_fee_cents,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "cancellation_reason": order.cancellation_reason,
        "cancelled_by": order.cancellation_requested_by,
        "status_times": order.status_times,
    })
}
