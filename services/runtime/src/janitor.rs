//! What the stores keep, bounded: every service's handled-message marks are
//! kept for the dedupe window (SPEC section 10), then forgotten, once at start
//! and every hour after.
//!
//! The window must outlast how long a duplicate can arrive: the topics' own
//! retention (7 days for the command and event topics) and a client's retry.
//! A duplicate older than that is no longer recognised.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::store::EventStore;

/// How often the janitor sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Forgets, in each of `stores`, the handled marks older than `window`, now
/// and every [`SWEEP_EVERY`] until `shutdown`.
pub async fn run_janitor(
    stores: Vec<(&'static str, Arc<dyn EventStore>)>,
    window: chrono::Duration,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    loop {
        sweep(&stores, window, clock.as_ref()).await;
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
    }
}
