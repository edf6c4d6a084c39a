//! `GET /api/orders/{id}/trace`: an order's story as JSON, for a UI.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use campusg_runtime::access::{Access, Routes};
use campusg_runtime::http::{ApiError, Path};

use crate::{render, story, TraceIndex};

pub fn routes() -> Routes<Arc<TraceIndex>> {
    Routes::new()
        .get("/api/orders/{id}/trace", "traceOrder", Access::Operators, trace)
        .get("/api/trace/{id}", "trace", Access::Operators, trace)
}

/// The story of an order, or of the order a saga id belongs to.
async fn trace(State(index): State<Arc<TraceIndex>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let records = story(index.deps.store.as_ref(), &id).await?;
    if records.is_empty() {
        return Err(ApiError::not_found(format!(
            "nothing is indexed under {id}; give an order id or a saga id"
        )));
    }
    Ok(Json(render::json(&id, &records)))
}
