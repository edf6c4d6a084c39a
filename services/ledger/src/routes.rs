//! `GET /api/ledger?order_id=`: an order's entries and balances, for
//! operators and the order's own customer and runner.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use campusg_domain::ids::OrderId;
use campusg_runtime::access::{Access, Caller, Routes};
use campusg_runtime::http::{ApiError, Query};

use crate::LedgerService;

pub fn routes() -> Routes<Arc<LedgerService>> {
    Routes::new().get("/api/ledger", "getLedger", Access::Users, get_ledger)
}

#[derive(Deserialize)]
struct LedgerQuery {
    order_id: Option<OrderId>,
}

async fn get_ledger(
    State(service): State<Arc<LedgerService>>,
    caller: Caller,
    Query(query): Query<LedgerQuery>,
) -> Result<Json<Value>, ApiError> {
    let order_id = query
        .order_id
        .ok_or_else(|| ApiError::bad_request("`order_id` is required: the order whose ledger to show"))?;
    let ledger = service.ledger_of(order_id).await?;
    // A party learns nothing of an order that is not theirs, not even whether
    // anything was posted for it.
    let party = ledger.as_ref().is_some_and(|ledger| {
        [&ledger.customer_id, &ledger.runner_id]
            .into_iter()
            .flatten()
            .any(|user| *user == caller.user)
    });
    if !caller.is_operator() && !party {
        return Err(ApiError::forbidden(format!(
            "only operators and the order's customer and runner read the ledger of order {order_id}"
        )));
    }
    let ledger = ledger.ok_or_else(|| ApiError::not_found(format!("nothing is posted for order {order_id} yet")))?;
    Ok(Json(serde_json::to_value(ledger).unwrap_or(Value::Null)))
}
