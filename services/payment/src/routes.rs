//! `/payments`: authorize, release (void), capture, and read payments. Each POST
//! runs the same command a message on `payment_commands` would.
//! `/api/payouts`: the runners' payouts, by status (a runner sees their own).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, PaymentId, UserId};
use campusg_domain::limits::{MAX_NAME_CHARS, MAX_ORDER_TOTAL};
use campusg_domain::messages::{AuthorizePayment, CapturePayment, Message, VoidPayment};
use campusg_domain::money::{Cents, DecimalAmount, DEFAULT_CURRENCY};
use campusg_domain::payment::{Payment, PaymentStatus, Payout, PayoutStatus};
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::command::CommandService;
use campusg_runtime::http::{
    list_read_models, read_model, reason_or, status_filter, text_within, ApiError, JsonBody, MoneyFilters, Page, Path,
    Query,
};
use campusg_runtime::store::Cause;

use crate::{PaymentService, SERVICE_NAME};

pub fn routes() -> Routes<Arc<PaymentService>> {
    Routes::new()
        .get("/payments", "listPayments", Access::Operators, list_payments)
        .post("/payments/authorize", "authorizePayment", Access::Operators, authorize)
        .post("/payments/release", "releasePayment", Access::Operators, release)
        .post("/payments/capture", "capturePayment", Access::Operators, capture)
        .get("/payments/{payment_id}", "getPayment", Access::Operators, get_payment)
        .get("/api/payouts", "listPayouts", Access::Users, list_payouts)
}

#[derive(Deserialize)]
struct PayoutFilters {
    status: Option<String>,
    runner_id: Option<UserId>,
    order_id: Option<OrderId>,
}

/// Operators see every payout; anyone else only their own (a customer has none).
async fn list_payouts(
    State(service): State<Arc<PaymentService>>,
    caller: Caller,
    Query(filters): Query<PayoutFilters>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let status = status_filter(filters.status, &PayoutStatus::ALL.map(PayoutStatus::as_str))?;
    let runner_id = match filters.runner_id {
        Some(runner) => {
            caller.acts_for(&runner)?;
            Some(runner)
        }
        None if caller.is_operator() => None,
        None => Some(caller.user.clone()),
    };
    let fields = [
        ("status", status),
        ("runner_id", runner_id.map(|r| r.to_string())),
        ("order_id", filters.order_id.map(|o| o.to_string())),
    ];
    Ok(Json(
        list_read_models(service.deps.store.as_ref(), Payout::TYPE, &fields, page, "payouts").await?,
    ))
}

#[derive(Deserialize)]
struct AuthorizeRequest {
    order_id: OrderId,
    customer_id: UserId,
    /// In major units, like every amount in the API.
    amount: DecimalAmount,
    currency: Option<String>,
    payment_method: String,
}

#[derive(Deserialize)]
struct OrderRequest {
    order_id: OrderId,
    reason: Option<String>,
}

/// Runs a payment command for a route and answers with the payment. Only the
/// payment's own commands come here: a payout command takes the topic's path
/// inside `handle_command` (a refusal logged and dropped), so an operator's
/// payout goes through `retry_payout` instead, which answers its refusal.
async fn run(service: &PaymentService, message: Message) -> Result<(StatusCode, Json<Value>), ApiError> {
    let order_id = message.order_id().expect("payment commands name their order");
    let cause = Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, service.deps.clock.now());
    let answer = service.handle_command(message, cause).await?;
    match answer {
        Some(Message::PaymentVoidFailed(failed)) | Some(Message::PaymentCaptureFailed(failed)) => {
            Err(ApiError::conflict(failed.reason))
        }
        Some(Message::PaymentFailed(failed)) => Ok((
            StatusCode::PAYMENT_REQUIRED,
            Json(read_payment(service, PaymentId::for_order(failed.order_id)).await?),
        )),
        _ => Ok((
            StatusCode::OK,
            Json(read_payment(service, PaymentId::for_order(order_id)).await?),
        )),
    }
}

async fn authorize(
    State(service): State<Arc<PaymentService>>,
    JsonBody(request): JsonBody<AuthorizeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let amount_cents = request
        .amount
        .to_cents()
        .map_err(|e| ApiError::unprocessable(format!("amount: {e}")))?;
    // Checked before the processor is asked, which a refusal after would
    // leave holding an authorization nothing records.
    if amount_cents <= Cents::ZERO || amount_cents > MAX_ORDER_TOTAL {
        return Err(ApiError::unprocessable(format!(
            "amount: an authorization is more than 0 and at most {MAX_ORDER_TOTAL}, not {amount_cents}"
        )));
    }
    text_within("payment_method", &request.payment_method, MAX_NAME_CHARS)?;
    let asked = AuthorizePayment {
        order_id: request.order_id,
        customer_id: request.customer_id,
        amount_cents,
        currency: request.currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_string()),
        payment_method: request.payment_method,
    };
    let (status, Json(payment)) = run(&service, Message::AuthorizePayment(asked.clone())).await?;
    // An order has one payment. A repeat of the same request is answered with
    // it; a request for something else is a conflict, never its answer.
    // (A declined payment records no currency or method.)
    let same = payment["customer_id"] == json!(asked.customer_id)
        && payment["amount_cents"] == json!(asked.amount_cents)
        && (payment["status"] == "FAILED"
            || (payment["currency"] == json!(asked.currency)
                && payment["payment_method"] == json!(asked.payment_method)));
    if !same {
        return Err(ApiError::conflict(format!(
            "order {}'s payment is already {} for {} cents by {} on {}; this request asks for something else",
            asked.order_id,
            payment["status"].as_str().unwrap_or("attempted"),
            payment["amount_cents"],
            payment["customer_id"].as_str().unwrap_or_default(),
            payment["payment_method"].as_str().unwrap_or_default(),
        )));
    }
    Ok((status, Json(payment)))
}

/// The seeds' "release": void the authorization, so no money moves.
async fn release(
    State(service): State<Arc<PaymentService>>,
    JsonBody(request): JsonBody<OrderRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let reason = reason_or(request.reason, "released through the API")?;
    run(
        &service,
        Message::VoidPayment(VoidPayment {
            order_id: request.order_id,
            reason,
        }),
    )
    .await
}

async fn capture(
    State(service): State<Arc<PaymentService>>,
    JsonBody(request): JsonBody<OrderRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    run(
        &service,
        Message::CapturePayment(CapturePayment {
            order_id: request.order_id,
        }),
    )
    .await
}

async fn read_payment(service: &PaymentService, payment_id: PaymentId) -> Result<Value, ApiError> {
    read_model(
        service.deps.store.as_ref(),
        Payment::TYPE,
        &payment_id.to_string(),
        "payment",
    )
    .await
}

async fn get_payment(
    State(service): State<Arc<PaymentService>>,
    Path(payment_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let payment_id = PaymentId::parse(&payment_id)
        .map_err(|_| ApiError::bad_request(format!("`{payment_id}` is not a payment id (a UUID)")))?;
    Ok(Json(read_payment(&service, payment_id).await?))
}

async fn list_payments(
    State(service): State<Arc<PaymentService>>,
    Query(filters): Query<MoneyFilters>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let store = service.deps.store.as_ref();
    Ok(Json(
        list_read_models(
            store,
            Payment::TYPE,
            &filters.fields(&PaymentStatus::ALL.map(PaymentStatus::as_str))?,
            page,
            "payments",
        )
        .await?,
    ))
}
