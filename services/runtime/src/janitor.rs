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

/// How long the janitor keeps what it prunes.
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    /// Handled marks and idempotent requests: the dedupe window.
    pub dedupe_window: chrono::Duration,
    /// A released parked key: as long as its dead letters stay on their topic
    /// (and at least the dedupe window), so that `dlq retry` of a letter whose
    /// records the key's retry handled still finds the key and refuses.
    pub released_keys: chrono::Duration,
}

/// Forgets, in each of `stores`, what is past its window, now and every
/// [`SWEEP_EVERY`] until `shutdown`.
pub async fn run_janitor(
    stores: Vec<(&'static str, Arc<dyn EventStore>)>,
    bus: Arc<dyn MessageBus>,
    keep: Keep,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    loop {
        sweep(&stores, keep, clock.as_ref()).await;
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
pub async fn sweep(stores: &[(&'static str, Arc<dyn EventStore>)], keep: Keep, clock: &dyn Clock) {
    let now = clock.now();
    let before = now - keep.dedupe_window;
    let released_before = now - keep.released_keys.max(keep.dedupe_window);
    for (service, store) in stores {
        match store.prune_handled(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(service, pruned, %before, "forgot handled marks past the dedupe window"),
            Err(error) => tracing::warn!(service, error = %error, "cannot prune the handled marks; next sweep"),
        }
        // A parked key's record stays while its records wait, and once dropped
        // (the drop is an operator's decision, kept for audit); released, it
        // is history.
        let kept_for_a_window = [
            (IdempotentRequest::TYPE, None, before, "idempotent requests"),
            (ParkedKey::TYPE, Some(RELEASED), released_before, "released parked keys"),
        ];
        for (aggregate_type, status, before, what) in kept_for_a_window {
            match store.prune_aggregates(aggregate_type, before, status).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(service, pruned, "forgot {what} past their window"),
                Err(error) => tracing::warn!(service, error = %error, "cannot prune the {what}; next sweep"),
            }
        }
    }
}
