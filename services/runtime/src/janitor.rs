//! What the stores and the log keep, bounded: every service's handled-message
//! marks and released parked keys, and the API's idempotent requests, are
//! kept for the dedupe window (SPEC section 10), then forgotten; the embedded
//! log's records are deleted past their topic's retention, as a Kafka broker
//! deletes them. Once at start and every hour after.
//!
//! The window must outlast how long a duplicate can arrive: the topics' own
//! retention (7 days for the command and event topics) and a client's retry.
//! A duplicate older than that is no longer recognised.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use campusg_domain::idempotency::IdempotentRequest;
use cqrs_es::Aggregate;

use crate::bus::MessageBus;
use crate::clock::Clock;
use crate::parking::{ParkedKey, RELEASED};
use crate::store::EventStore;

/// How often the janitor sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Forgets, in each of `stores`, the handled marks older than `window`, now
/// and every [`SWEEP_EVERY`] until `shutdown`.
pub async fn run_janitor(
    stores: Vec<(&'static str, Arc<dyn EventStore>)>,
    bus: Arc<dyn MessageBus>,
    window: chrono::Duration,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    loop {
        sweep(&stores, window, clock.as_ref()).await;
        match bus.enforce_retention(clock.now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted the log's records past their topic's retention"),
            Err(error) => tracing::warn!(error = %error, "cannot enforce the log's retention; next sweep"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// One sweep; a store that fails is tried again at the next.
pub async fn sweep(stores: &[(&'static str, Arc<dyn EventStore>)], window: chrono::Duration, clock: &dyn Clock) {
    let before = clock.now() - window;
    for (service, store) in stores {
        match store.prune_handled(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(service, pruned, %before, "forgot handled marks past the dedupe window"),
            Err(error) => tracing::warn!(service, error = %error, "cannot prune the handled marks; next sweep"),
        }
        // A parked key's record stays while its records wait, and once dropped
        // (the drop is an operator's decision, kept for audit); released, it
        // is history, kept as long as the handled marks.
        let kept_for_the_window = [
            (IdempotentRequest::TYPE, None, "idempotent requests"),
            (ParkedKey::TYPE, Some(RELEASED), "released parked keys"),
        ];
        for (aggregate_type, status, what) in kept_for_the_window {
            match store.prune_aggregates(aggregate_type, before, status).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(service, pruned, "forgot {what} past the dedupe window"),
                Err(error) => tracing::warn!(service, error = %error, "cannot prune the {what}; next sweep"),
            }
        }
    }
}
