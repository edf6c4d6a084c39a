//! The worker that fires due timers.
//!
//! Every poll interval it reads the earliest scheduled timers from the read
//! model and fires those due by the injected clock. It keeps no state of its
//! own: after a crash or a restart, the next poll finds every timer that fell
//! due meanwhile. Each replica of the timer service runs one; optimistic
//! concurrency on the timer makes sure each fires once.

use std::sync::Arc;

use cqrs_es::Aggregate;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use campusg_domain::time::sort_key;
use campusg_domain::timer::{Timer, TimerStatus};
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::store::StateQuery;

use crate::TimerService;

/// How many due timers one poll fires before it looks again.
const BATCH: i64 = 100;

pub async fn run_timer_worker(service: Arc<TimerService>, shutdown: CancellationToken) {
    tracing::info!(poll_interval = ?service.poll_interval, "timer worker started");
    loop {
        match fire_due_timers(&service).await {
            // A full batch: more may be due, look again at once.
            Ok(fired) if fired as i64 == BATCH => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "the timer worker could not fire due timers; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(service.poll_interval) => {}
        }
    }
    tracing::info!("timer worker stopped");
}

/// Fires every scheduled timer that is due now, earliest first, up to a batch;
/// returns how many fired.
pub async fn fire_due_timers(service: &TimerService) -> Result<usize, HandlerError> {
    let now = service.deps.clock.now();
    let query = StateQuery {
        equals: vec![("status".into(), TimerStatus::Scheduled.as_str().into())],
        order_by: Some("due_key".into()),
        limit: Some(BATCH),
        ..StateQuery::default()
    };
    let now_key = sort_key(now);
    let mut fired = 0;
    for state in service.deps.store.query_states(Timer::TYPE, &query).await? {
        let due = state.get("due_key").and_then(Value::as_str).unwrap_or_default();
        if due > now_key.as_str() {
            break;
        }
        let Some(timer_id) = state.get("timer_id").and_then(Value::as_str) else {
            continue;
        };
        match service.fire(timer_id, now).await {
            Ok(true) => fired += 1,
            Ok(false) => {}
            // Another replica fired it first, or cancelled it.
            Err(error @ (HandlerError::Store(_) | HandlerError::Unavailable(_))) => {
                tracing::debug!(timer_id, error = %error, "timer changed while firing; it is looked at again next poll");
            }
            // One timer that can never fire (its expiry breaks the schema)
            // must not hold back the timers due after it.
            Err(HandlerError::Rejected(reason)) => {
                tracing::error!(timer_id, reason = %reason, "a timer cannot fire; the next ones still do");
            }
        }
    }
    Ok(fired)
}
