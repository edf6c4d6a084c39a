//! The scheduler API of the seeds: schedule a timer, cancel one, list them.
//!
//! A timer scheduled here behaves as one a saga starts: it is stored as events,
//! survives restarts, and publishes `timer.expired` on `timer_events` when due.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, TimerId};
use campusg_domain::limits::{json_depth, MAX_JSON_DEPTH, MAX_NAME_CHARS};
use campusg_domain::timer::{due_after, Timer, TimerError, TimerSpec, TimerStatus};
use campusg_runtime::access::{Access, Routes};
use campusg_runtime::http::{
    filter_by, optional_json, read_model, reason_or, text_within, ApiError, Body, JsonBody, Page, Path, Query,
};
use campusg_runtime::store::{Cause, StateQuery};

use crate::{TimerService, SERVICE_NAME};

pub fn routes() -> Routes<Arc<TimerService>> {
    Routes::new()
        .post("/schedule", "scheduleTimer", Access::Operators, schedule)
        .get("/events", "listTimers", Access::Operators, list_timers)
        .get("/events/{timer_id}", "getTimer", Access::Operators, get_timer)
        .post("/events/{timer_id}/cancel", "cancelTimer", Access::Operators, cancel)
}

/// The seeds' `ScheduledEvent`: what to fire, about what, when, with what.
#[derive(Deserialize)]
struct ScheduleRequest {
    #[serde(alias = "timer_type")]
    event_type: String,
    entity_id: String,
    /// When to fire (RFC 3339); or give `delay_seconds`.
    #[serde(alias = "due_at")]
    scheduled_time: Option<DateTime<Utc>>,
    delay_seconds: Option<i64>,
    #[serde(default)]
    payload: Value,
    order_id: Option<OrderId>,
    /// Names the timer; the same id scheduled twice is one timer.
    timer_id: Option<TimerId>,
    /// The saga the expiry belongs to; a fresh id when left out.
    correlation_id: Option<String>,
}

async fn schedule(
    State(service): State<Arc<TimerService>>,
    JsonBody(request): JsonBody<ScheduleRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if request.event_type.trim().is_empty() || request.entity_id.trim().is_empty() {
        return Err(ApiError::unprocessable("event_type and entity_id must not be empty"));
    }
    text_within("event_type", &request.event_type, MAX_NAME_CHARS)?;
    text_within("entity_id", &request.entity_id, MAX_NAME_CHARS)?;
    if let Some(correlation_id) = &request.correlation_id {
        text_within("correlation_id", correlation_id, MAX_NAME_CHARS)?;
    }
    if json_depth(&request.payload) > MAX_JSON_DEPTH {
        return Err(ApiError::unprocessable(format!(
            "payload must not nest deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let now = service.deps.clock.now();
    let due_at = match (request.scheduled_time, request.delay_seconds) {
        (Some(at), None) => at,
        (None, Some(seconds)) => {
            due_after(now, seconds).map_err(|refused| ApiError::unprocessable(refused.to_string()))?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of scheduled_time (RFC 3339) and delay_seconds",
            ))
        }
    };
    let timer_id = request.timer_id.unwrap_or_else(|| TimerId(uuid::Uuid::new_v4()));
    let correlation_id = request
        .correlation_id
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let spec = TimerSpec {
        timer_id,
        timer_type: request.event_type,
        entity_id: request.entity_id,
        order_id: request.order_id,
        due_at,
        payload: request.payload,
        correlation_id: correlation_id.clone(),
    };
    let cause = Cause::request(correlation_id, SERVICE_NAME, now);
    let status = match service.schedule(spec, cause).await? {
        Ok(_) => StatusCode::CREATED,
        Err(TimerError::AlreadyScheduled(_)) => StatusCode::OK,
        Err(other) => return Err(ApiError::conflict(other.to_string())),
    };
    Ok((status, Json(timer_view(&read_timer(&service, timer_id).await?))))
}

#[derive(Deserialize, Default)]
struct CancelRequest {
    reason: Option<String>,
}

async fn cancel(
    State(service): State<Arc<TimerService>>,
    Path(timer_id): Path<String>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let timer_id = parse_timer_id(&timer_id)?;
    read_timer(&service, timer_id).await?;
    let reason = reason_or(
        optional_json::<CancelRequest>(&body)?.reason,
        "cancelled through the API",
    )?;
    let now = service.deps.clock.now();
    let cause = Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, now);
    match service.cancel(timer_id, reason, cause).await? {
        Ok(timer) => Ok(Json(timer_view(
            &serde_json::to_value(timer).map_err(ApiError::internal)?,
        ))),
        Err(TimerError::AlreadyFired) => Err(ApiError::conflict(format!(
            "timer {timer_id} has already fired; it can no longer be cancelled"
        ))),
        Err(other) => Err(ApiError::conflict(other.to_string())),
    }
}

async fn get_timer(
    State(service): State<Arc<TimerService>>,
    Path(timer_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let timer_id = parse_timer_id(&timer_id)?;
    Ok(Json(timer_view(&read_timer(&service, timer_id).await?)))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(alias = "timer_type")]
    event_type: Option<String>,
    entity_id: Option<String>,
    order_id: Option<OrderId>,
    status: Option<String>,
}

/// Timers by type, entity, order or status, soonest due first.
async fn list_timers(
    State(service): State<Arc<TimerService>>,
    Query(params): Query<ListParams>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let status = match params.status {
        Some(text) => Some(
            TimerStatus::parse(&text)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`{text}` is not a timer status (one of {})",
                        TimerStatus::ALL.map(TimerStatus::as_str).join(", ")
                    ))
                })?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let mut query = StateQuery {
        order_by: Some("due_key".into()),
        ..StateQuery::default()
    };
    filter_by(
        &mut query,
        &[
            ("timer_type", params.event_type),
            ("entity_id", params.entity_id),
            ("order_id", params.order_id.map(|id| id.to_string())),
            ("status", status),
        ],
    );
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let timers: Vec<Value> = service
        .deps
        .store
        .query_states(Timer::TYPE, &query)
        .await?
        .iter()
        .map(timer_view)
        .collect();
    Ok(Json(json!({"events": timers, "page": page, "page_size": page_size})))
}

fn parse_timer_id(text: &str) -> Result<TimerId, ApiError> {
    TimerId::parse(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not a timer id (a UUID)")))
}

async fn read_timer(service: &TimerService, timer_id: TimerId) -> Result<Value, ApiError> {
    read_model(service.deps.store.as_ref(), Timer::TYPE, &timer_id.to_string(), "timer").await
}

/// A timer in the seeds' `ScheduledEvent` shape, with the timer's own names too.
fn timer_view(state: &Value) -> Value {
    json!({
        "id": state["timer_id"],
        "timer_id": state["timer_id"],
        "event_type": state["timer_type"],
        "entity_id": state["entity_id"],
        "order_id": state["order_id"],
        "status": state["status"],
        "scheduled_time": state["due_at"],
        "payload": state["payload"],
        "correlation_id": state["correlation_id"],
        "created_at": state["scheduled_at"],
        "cancelled_at": state["cancelled_at"],
        "cancel_reason": state["cancel_reason"],
        "fired_at": state["fired_at"],
    })
}
