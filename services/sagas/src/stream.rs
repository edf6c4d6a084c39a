//! `GET /saga/complete/orderUpdateStream/{saga_id}`: a saga's progress as
//! server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::{json, Value};

use campusg_domain::ids::SagaId;
use campusg_domain::saga::SagaStatus;
use campusg_runtime::access::Caller;
use campusg_runtime::http::{ApiError, Path};

use crate::routes::{parse_saga_id, saga_seen_by, unknown};
use crate::{views, SagaOrchestrator};

/// How often the update stream looks at its saga.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(100);
/// How long the update stream waits for a saga it does not know yet.
const STREAM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
/// How long one stream runs at most; a saga parked for an operator would
/// otherwise hold it, and its polling, forever. The client opens it again.
const STREAM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How many streams one caller may hold open at once (429 beyond).
const MAX_STREAMS_PER_CALLER: usize = 8;

/// One of a caller's open streams, given back when the stream is dropped.
struct StreamSlot {
    orchestrator: Arc<SagaOrchestrator>,
    caller: String,
}

impl StreamSlot {
    fn take(orchestrator: &Arc<SagaOrchestrator>, caller: &Caller) -> Result<StreamSlot, ApiError> {
        let mut open = orchestrator.open_streams();
        let held = open.entry(caller.user.to_string()).or_default();
        if *held >= MAX_STREAMS_PER_CALLER {
            return Err(ApiError::too_many_requests(format!(
                "{} has {MAX_STREAMS_PER_CALLER} update streams open; close one first",
                caller.user
            )));
        }
        *held += 1;
        Ok(StreamSlot {
            orchestrator: orchestrator.clone(),
            caller: caller.user.to_string(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.orchestrator.open_streams();
        if let Some(held) = open.get_mut(&self.caller) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// Where an update stream stands: the saga events it has sent, and what is
/// queued to send.
struct StreamState {
    orchestrator: Arc<SagaOrchestrator>,
    saga_id: SagaId,
    sent: usize,
    queued: VecDeque<Event>,
    ended: bool,
    ends_at: tokio::time::Instant,
    _slot: StreamSlot,
}

/// Server-sent events of a saga's progress: an `update` event for each step the
/// saga records (its history, so no step is missed however fast the saga runs),
/// with the status it left the saga in; then an `end` event once the saga
/// reaches a final status, and the stream closes. An unknown saga is a 404.
/// A stream lasts at most [`STREAM_LIFETIME`] (then a `timeout` event), and a
/// caller holds at most [`MAX_STREAMS_PER_CALLER`] at once.
pub async fn update_stream(
    State(orchestrator): State<Arc<SagaOrchestrator>>,
    caller: Caller,
    Path(saga_id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let saga_id = parse_saga_id(&saga_id)?;
    let slot = StreamSlot::take(&orchestrator, &caller)?;
    // A saga started a moment ago by an event (an order reported DELIVERED)
    // may not be recorded yet: give it a little time before calling it unknown.
    let mut patience = STREAM_PATIENCE;
    while saga_seen_by(&orchestrator, &caller, saga_id).await?.is_none() {
        if patience.is_zero() {
            return Err(unknown(saga_id));
        }
        tokio::time::sleep(STREAM_POLL).await;
        patience = patience.saturating_sub(STREAM_POLL);
    }
    let start = StreamState {
        orchestrator,
        saga_id,
        sent: 0,
        queued: VecDeque::new(),
        ended: false,
        ends_at: tokio::time::Instant::now() + STREAM_LIFETIME,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(start, |mut stream| async move {
        loop {
            if let Some(event) = stream.queued.pop_front() {
                return Some((Ok(event), stream));
            }
            if stream.ended {
                return None;
            }
            if tokio::time::Instant::now() >= stream.ends_at {
                let timeout = json!({"saga_id": stream.saga_id, "after_secs": STREAM_LIFETIME.as_secs()});
                stream
                    .queued
                    .push_back(Event::default().event("timeout").data(timeout.to_string()));
                stream.ended = true;
                continue;
            }
            if let Err(error) = stream.look().await {
                stream
                    .queued
                    .push_back(Event::default().event("error").data(error.message));
                stream.ended = true;
                continue;
            }
            if stream.queued.is_empty() && !stream.ended {
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl StreamState {
    /// Queues the saga's steps not sent yet, and the end once it is final.
    async fn look(&mut self) -> Result<(), ApiError> {
        let store = self.orchestrator.deps.store.as_ref();
        let found = views::find_saga(store, self.saga_id)
            .await?
            .ok_or_else(|| unknown(self.saga_id))?;
        let (saga_type, aggregate_type) = (found.saga_type, found.aggregate_type);
        let events = store.load(aggregate_type, &self.saga_id.to_string()).await?;
        let statuses: Vec<Value> = views::states_after_each(aggregate_type, &events)?
            .into_iter()
            .map(|state| state["status"].clone())
            .collect();
        for (event, status) in events.iter().zip(&statuses).skip(self.sent) {
            let update = json!({
                "saga_id": self.saga_id,
                "saga_type": saga_type,
                "sequence": event.sequence,
                "step": event.event_type.split_once('.').map_or(event.event_type.as_str(), |(_, step)| step),
                "status": status,
                "at": event.recorded_at,
            });
            self.queued
                .push_back(Event::default().event("update").data(update.to_string()));
        }
        self.sent = events.len();
        let last = statuses.last().and_then(Value::as_str).and_then(SagaStatus::parse);
        if last.is_some_and(SagaStatus::is_final) {
            let end = json!({"saga_id": self.saga_id, "status": last});
            self.queued
                .push_back(Event::default().event("end").data(end.to_string()));
            self.ended = true;
        }
        Ok(())
    }
}
