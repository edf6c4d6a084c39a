//! `/escrow`: hold, release, cancel (refund) and read escrows. Each POST runs
//! the same command a message on `escrow_commands` would.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::Value;

use campusg_domain::escrow::{Escrow, EscrowStatus};
use campusg_domain::ids::{EscrowId, OrderId, UserId};
use campusg_domain::messages::{HoldFunds, Message, RefundFunds, ReleaseFunds};
use campusg_domain::money::{Cents, DecimalAmount, DEFAULT_CURRENCY};
use campusg_runtime::access::{Access, Routes};
use campusg_runtime::command::CommandService;
use campusg_runtime::http::{
    list_read_models, read_model, reason_or, ApiError, JsonBody, MoneyFilters, Page, Path, Query,
};
use campusg_runtime::store::Cause;

use crate::{EscrowService, SERVICE_NAME};

pub fn routes() -> Routes<Arc<EscrowService>> {
    Routes::new()
        .get("/escrow", "listEscrows", Access::Operators, list_escrows)
        .post("/escrow/hold", "holdFunds", Access::Operators, hold)
        .post("/escrow/cancel", "cancelEscrow", Access::Operators, cancel)
        .get("/escrow/{escrow_id}", "getEscrow", Access::Operators, get_escrow)
}

#[derive(Deserialize)]
struct HoldRequest {
    order_id: OrderId,
    customer_id: UserId,
    food_fee: DecimalAmount,
    #[serde(default)]
    delivery_fee: Option<DecimalAmount>,
    currency: Option<String>,
}

#[derive(Deserialize)]
struct CancelRequest {
    order_id: OrderId,
    reason: Option<String>,
}

async fn run(service: &EscrowService, message: Message) -> Result<Json<Value>, ApiError> {
    let order_id = message.order_id().expect("escrow commands name their order");
    let cause = Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, service.deps.clock.now());
    let answer = service.handle_command(message, cause).await?;
    match answer {
        // Funds already held (or released, or refunded) for the order: the
        // request conflicts with its state. Anything else breaks a rule.
        Some(Message::HoldFailed(failed)) => match read_escrow(service, EscrowId::for_order(order_id)).await {
            Ok(_) => Err(ApiError::conflict(failed.reason)),
            Err(_) => Err(ApiError::unprocessable(failed.reason)),
        },
        Some(Message::ReleaseFailed(failed)) | Some(Message::RefundFailed(failed)) => {
            Err(ApiError::conflict(failed.reason))
        }
        _ => Ok(Json(read_escrow(service, EscrowId::for_order(order_id)).await?)),
    }
}

fn amount(field: &str, value: &DecimalAmount) -> Result<Cents, ApiError> {
    value
        .to_cents()
        .map_err(|e| ApiError::unprocessable(format!("{field}: {e}")))
}

async fn hold(
    State(service): State<Arc<EscrowService>>,
    JsonBody(request): JsonBody<HoldRequest>,
) -> Result<Json<Value>, ApiError> {
    let food_fee_cents = amount("food_fee", &request.food_fee)?;
    let delivery_fee_cents = request
        .delivery_fee
        .as_ref()
        .map(|fee| amount("delivery_fee", fee))
        .transpose()?
        .unwrap_or(Cents::ZERO);
    let message = Message::HoldFunds(HoldFunds {
        order_id: request.order_id,
        customer_id: request.customer_id,
        amount_cents: food_fee_cents
            .checked_add(delivery_fee_cents)
            .ok_or_else(|| ApiError::unprocessable("the amount is too large"))?,
        food_fee_cents,
        delivery_fee_cents,
        currency: request.currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_string()),
    });
    run(&service, message).await
}

/// Pays the escrow of `order_id` out to `runner_id`. The gateway's
/// `POST /escrow/release` calls it once it has checked, with the order, that
/// `runner_id` is the assigned runner of a delivered order; the escrow cannot
/// know that itself.
pub async fn release_to(
    service: &EscrowService,
    order_id: OrderId,
    runner_id: UserId,
) -> Result<Json<Value>, ApiError> {
    run(service, Message::ReleaseFunds(ReleaseFunds { order_id, runner_id })).await
}

/// The seeds' "cancel": refund the held funds to the customer.
async fn cancel(
    State(service): State<Arc<EscrowService>>,
    JsonBody(request): JsonBody<CancelRequest>,
) -> Result<Json<Value>, ApiError> {
    let reason = reason_or(request.reason, "cancelled through the API")?;
    run(
        &service,
        Message::RefundFunds(RefundFunds {
            order_id: request.order_id,
            reason,
        }),
    )
    .await
}

async fn read_escrow(service: &EscrowService, escrow_id: EscrowId) -> Result<Value, ApiError> {
    read_model(
        service.deps.store.as_ref(),
        Escrow::TYPE,
        &escrow_id.to_string(),
        "escrow",
    )
    .await
}

async fn get_escrow(
    State(service): State<Arc<EscrowService>>,
    Path(escrow_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let escrow_id = EscrowId::parse(&escrow_id)
        .map_err(|_| ApiError::bad_request(format!("`{escrow_id}` is not an escrow id (a UUID)")))?;
    Ok(Json(read_escrow(&service, escrow_id).await?))
}

async fn list_escrows(
    State(service): State<Arc<EscrowService>>,
    Query(filters): Query<MoneyFilters>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let store = service.deps.store.as_ref();
    Ok(Json(
        list_read_models(
            store,
            Escrow::TYPE,
            &filters.fields(&EscrowStatus::ALL.map(EscrowStatus::as_str))?,
            page,
            "escrows",
        )
        .await?,
    ))
}
