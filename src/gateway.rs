//! The routes that need two services.
//!
//! - A customer cancelling an order. The order service decides whether the
//!   cancellation stands (the customer may cancel only before a runner
//!   accepts), at once and under optimistic concurrency, so that a cancellation
//!   racing a runner's acceptance gets a clear answer. The saga that placed the
//!   order, found here, is named as the cancellation's correlation id: it hears
//!   `order.cancelled` and refunds the escrow, voids the payment and stops the
//!   timer.
//! - Completing an order (`POST /saga/complete/completeOrder`): the order must
//!   be `DELIVERED`; the complete-order saga is started with its runner.
//! - Rating: after completion the customer rates the runner and the runner the
//!   customer; the order says who is who, the user service keeps the ratings.
//! - An operator's escrow release (`POST /escrow/release`): money moves only to
//!   the assigned runner of a delivered order (SPEC 11), which only the order
//!   knows.
//! - An operator's refund (`POST /api/orders/{order_id}/refunds`): the payment
//!   says what is left to refund; the refund saga refunds it.
//! - An operator's retry of a parked payout (`POST /api/payouts/{order_id}/retry`):
//!   to the runner's current payout account, which the user service knows.
//!
//! Only an order's customer cancels it, only its parties complete or rate it,
//! only operators release escrow by hand. Whether an order may be completed,
//! released or rated, and who rates whom, the order decides
//! (`campusg_domain::order::after_delivery`); these routes ask it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::messages::{Message, OrderRole, RateUser, RetryPayout};
use campusg_domain::money::{Cents, DecimalAmount};
use campusg_domain::order::{AfterDeliveryRefusal, Completion, Order, OrderStatus};
use campusg_domain::payment::PaymentStatus;
use campusg_domain::saga::refund_order::RefundSaga;
use campusg_escrow::EscrowService;
use campusg_order::OrderService;
use campusg_payment::{PaymentService, PayoutRefused};
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::http::{optional_json, reason_or, ApiError, Body, JsonBody, Path, RequestKey};
use campusg_runtime::store::Cause;
use campusg_sagas::handler::RefundRequest;
use campusg_sagas::SagaOrchestrator;
use campusg_user::UserService;

#[derive(Clone)]
pub struct Gateway {
    pub sagas: Arc<SagaOrchestrator>,
    pub orders: Arc<OrderService>,
    pub users: Arc<UserService>,
    pub payments: Arc<PaymentService>,
    pub escrows: Arc<EscrowService>,
}

impl Gateway {
    /// The order as it stands, or a 404.
    async fn order(&self, order_id: OrderId) -> Result<Order, ApiError> {
        self.orders
            .find(order_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("order {order_id} does not exist")))
    }
}

pub fn routes() -> Routes<Gateway> {
    Routes::new()
        .post("/escrow/release", "releaseFunds", Access::Operators, release_escrow)
        .post(
            "/api/orders/{order_id}/cancel",
            "cancelOrder",
            Access::Customers,
            cancel_order,
        )
        .post(
            "/api/sagas/{saga_id}/cancel",
            "cancelSaga",
            Access::Customers,
            cancel_saga,
        )
        .post(
            "/saga/complete/completeOrder",
            "completeOrder",
            Access::Users,
            complete_order,
        )
        .post("/api/orders/{order_id}/rating", "rateOrder", Access::Users, rate)
        .post(
            "/api/orders/{order_id}/refunds",
            "refundOrder",
            Access::Operators,
            refund,
        )
        .post(
            "/api/payouts/{order_id}/retry",
            "retryPayout",
            Access::Operators,
            retry_payout,
        )
}

/// Retries a parked payout once, to the runner's payout account as it is now
/// (they may have fixed it since the declines), else to the declined one.
async fn retry_payout(State(gateway): State<Gateway>, Path(order_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let order_id = campusg_order::parse_order_id(&order_id)?;
    let payout = gateway
        .payments
        .payout_of(order_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} has no payout")))?;
    let runner = match &payout.runner_id {
        Some(runner_id) => gateway.users.find(runner_id).await?,
        None => None,
    };
    let retry = RetryPayout {
        order_id,
        payout_account: runner.and_then(|runner| runner.payout_account),
    };
    let touched = gateway
        .payments
        .retry_payout(retry)
        .await
        .map_err(|refused| match refused {
            PayoutRefused::Refused(refusal) => ApiError::conflict(refusal.to_string()),
            PayoutRefused::Handler(error) => ApiError::from(error),
        })?
        .unwrap_or_default();
    let payout = touched.into_iter().next().unwrap_or(payout);
    tracing::info!(%order_id, status = ?payout.status, "payout retried by an operator");
    Ok(Json(serde_json::to_value(payout).unwrap_or(Value::Null)))
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
    caller: Caller,
    Path(order_id): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let order_id = campusg_order::parse_order_id(&order_id)?;
    let saga_id = gateway.sagas.placing_saga_of(order_id).await?;
    cancel(&gateway, &caller, order_id, saga_id, optional_json(&body)?).await
}

/// Cancels the order a create-order saga placed.
async fn cancel_saga(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(saga_id): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let saga_id = campusg_sagas::parse_saga_id(&saga_id)?;
    let saga = gateway.sagas.create_order_saga(saga_id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no create-order saga {saga_id}; an accepted order is given back with POST /api/orders/{{id}}/cancel-acceptance"
        ))
    })?;
    let order_id = saga
        .header
        .order_id
        .ok_or_else(|| ApiError::conflict(format!("saga {saga_id} has placed no order")))?;
    cancel(&gateway, &caller, order_id, Some(saga_id), optional_json(&body)?).await
}

/// Cancels for the order's customer: the caller, unless an operator acts for
/// them (then the body's `customer_id`, when given, is checked).
async fn cancel(
    gateway: &Gateway,
    caller: &Caller,
    order_id: OrderId,
    saga_id: Option<SagaId>,
    request: CancelRequest,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if let Some(named) = &request.customer_id {
        caller.acts_for(named)?;
    }
    let customer = if caller.is_operator() {
        request.customer_id
    } else {
        Some(caller.user.clone())
    };
    let reason = reason_or(request.reason, "cancelled by the customer")?;
    // An order placed by hand has no saga here; its cancellation is its own.
    let correlation = saga_id.unwrap_or_else(|| SagaId(uuid::Uuid::new_v4()));
    let decided = gateway
        .orders
        .cancel_for_customer(order_id, customer, reason, correlation)
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

/// The seeds' body: `{"orderId": "..."}`.
#[derive(Deserialize)]
struct CompleteOrderRequest {
    #[serde(rename = "orderId", alias = "order_id")]
    order_id: OrderId,
}

/// Starts the complete-order saga of a delivered order; called again, answers
/// with the same saga.
#[derive(Deserialize)]
struct ReleaseRequest {
    order_id: OrderId,
    runner_id: UserId,
}

/// Releases an order's escrow, only to its assigned runner, only once the order
/// is delivered and its payment captured (so nobody is paid out of money the
/// card never gave); a repeat to the same runner answers the release again.
async fn release_escrow(
    State(gateway): State<Gateway>,
    JsonBody(request): JsonBody<ReleaseRequest>,
) -> Result<Json<Value>, ApiError> {
    let order = gateway.order(request.order_id).await?;
    order
        .releases_escrow_to(request.order_id, &request.runner_id)
        .map_err(refused_after_delivery)?;
    let payment_status = gateway
        .payments
        .payment_of(request.order_id)
        .await?
        .and_then(|p| p.status);
    let captured = matches!(
        payment_status,
        Some(PaymentStatus::Captured | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded)
    );
    if !captured {
        return Err(ApiError::conflict(format!(
            "the payment of order {} is not captured; its escrow is released only after the capture",
            request.order_id
        )));
    }
    campusg_escrow::release_to(&gateway.escrows, request.order_id, request.runner_id).await
}

/// A refusal about who asks is a 403; one about where the order stands, a 409.
fn refused_after_delivery(refusal: AfterDeliveryRefusal) -> ApiError {
    match refusal {
        AfterDeliveryRefusal::NotAParty { .. } => ApiError::forbidden(refusal.to_string()),
        _ => ApiError::conflict(refusal.to_string()),
    }
}

async fn complete_order(
    State(gateway): State<Gateway>,
    caller: Caller,
    JsonBody(request): JsonBody<CompleteOrderRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let order = gateway.order(request.order_id).await?;
    caller.is_party_to(
        [order.customer_id.as_ref(), order.runner_id.as_ref()],
        &format!("order {}", request.order_id),
    )?;
    let saga_id = match order.completion(request.order_id).map_err(refused_after_delivery)? {
        Completion::Start { runner_id } => gateway.sagas.start_completion(request.order_id, runner_id).await?,
        // Completed already: by its saga, which is the answer.
        Completion::Done => match gateway.sagas.completion_of(request.order_id).await? {
            Some(_) => SagaId::for_completion(request.order_id),
            None => {
                return Err(refused_after_delivery(AfterDeliveryRefusal::NotDelivered {
                    order_id: request.order_id,
                    status: OrderStatus::Completed,
                }))
            }
        },
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"success": true, "saga_id": saga_id, "order_id": request.order_id})),
    ))
}

#[derive(Deserialize)]
struct RatingRequest {
    /// The customer (who rates the runner) or the runner (who rates the customer).
    rater_id: UserId,
    /// A whole number; JSON's `5.0` is 5, as JSON Schema counts it.
    score: serde_json::Number,
}

/// One party of a completed order rates the other, once.
async fn rate(
    State(gateway): State<Gateway>,
    caller: Caller,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<RatingRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.acts_for(&request.rater_id)?;
    let rater_id = request.rater_id.clone();
    let order_id = campusg_order::parse_order_id(&order_id)?;
    let order = gateway.order(order_id).await?;
    let (rated, role) = order.rated_by(order_id, &rater_id).map_err(refused_after_delivery)?;
    let score = request
        .score
        .as_u64()
        .or_else(|| {
            request
                .score
                .as_f64()
                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                .map(|n| n as u64)
        })
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::unprocessable(format!("a rating is a whole number from 1 to 5, not {}", request.score))
        })?;
    let rating = RateUser {
        user_id: rated.clone(),
        order_id,
        role,
        score,
        rated_by: rater_id,
    };
    let at = gateway.sagas.clock().now();
    let cause = Cause::request(uuid::Uuid::new_v4().to_string(), campusg_user::SERVICE_NAME, at);
    gateway.users.run_command(Message::RateUser(rating), cause).await?;
    let user = gateway
        .users
        .find(&rated)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {rated} does not exist")))?;
    let (average, ratings) = match role {
        OrderRole::Runner => (user.runner_rating, user.runner_ratings),
        OrderRole::Customer => (user.customer_rating, user.customer_ratings),
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "success": true,
            "user_id": rated,
            "role": role,
            "score": score,
            "rating": average,
            "ratings": ratings,
        })),
    ))
}

#[derive(Deserialize)]
struct RefundBody {
    /// In major units, as every amount a person writes (`4.50`).
    amount: DecimalAmount,
    reason: Option<String>,
}

/// Refunds part or all of an order's captured payment: checked here against
/// what is left to refund (a 422 beyond it), then made by a refund saga. The
/// payment service checks again when it refunds, so two refunds racing past
/// this check cannot together return more than was captured.
async fn refund(
    State(gateway): State<Gateway>,
    caller: Caller,
    key: Option<axum::Extension<RequestKey>>,
    Path(order_id): Path<String>,
    JsonBody(request): JsonBody<RefundBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let order_id = campusg_order::parse_order_id(&order_id)?;
    let Some(axum::Extension(RequestKey(key))) = key else {
        return Err(ApiError::bad_request(
            "a refund needs an `Idempotency-Key` header: without one, a request sent twice would refund twice",
        ));
    };
    let amount = request
        .amount
        .to_cents()
        .map_err(|e| ApiError::unprocessable(format!("`amount`: {e}")))?;
    let reason = reason_or(request.reason, "refunded by an operator")?;
    gateway.order(order_id).await?;
    let payment = gateway
        .payments
        .payment_of(order_id)
        .await?
        .ok_or_else(|| ApiError::conflict(format!("order {order_id} has no payment to refund")))?;
    let status = payment.status.unwrap_or(PaymentStatus::Failed);
    if !matches!(status, PaymentStatus::Captured | PaymentStatus::PartiallyRefunded) {
        return Err(ApiError::conflict(format!(
            "the payment of order {order_id} is {}; only a captured payment can be refunded",
            status.as_str()
        )));
    }
    let remaining = Cents(payment.captured_cents.0.saturating_sub(payment.refunded_cents.0));
    if amount <= Cents::ZERO || amount > remaining {
        return Err(ApiError::unprocessable(format!(
            "a refund is more than 0.00 and at most the {remaining} left of the {} captured, not {amount}",
            payment.captured_cents
        )));
    }
    let customer_id = payment
        .customer_id
        .clone()
        .ok_or_else(|| ApiError::conflict(format!("the payment of order {order_id} names no customer")))?;
    // The saga is named by the key, so a retry whose answer was lost (or a
    // second click) finds the refund it started instead of refunding again.
    let saga_id = SagaId::for_request(&format!("refund:{key}"));
    let saga = gateway
        .sagas
        .start_refund(RefundRequest {
            saga_id,
            order_id,
            customer_id,
            amount,
            reason,
            requested_by: caller.user.clone(),
        })
        .await?;
    if saga.header.order_id != Some(order_id) || saga.amount_cents != amount {
        return Err(ApiError::conflict(
            "this Idempotency-Key already started another refund",
        ));
    }
    tracing::info!(%saga_id, %order_id, amount_cents = amount.0, "refund saga started");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "saga_id": saga_id,
            "refund_id": RefundSaga::refund_id(saga_id),
            "order_id": order_id,
            "amount_cents": amount,
            "status": saga.header.status,
        })),
    ))
}
