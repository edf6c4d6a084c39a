//! The outbox relay: publishes what a store's outbox holds, oldest first, and
//! deletes it only once the bus has it. A crash between the two publishes a
//! message twice, never zero times; consumers recognise the duplicate by its id.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{backoff, MessageBus};
use crate::store::EventStore;

/// How many outbox messages go to the bus in one produce call.
const RELAY_BATCH: i64 = 500;
/// How long the relay sleeps when nothing wakes it; a safety net for rows
/// written by another process sharing the store.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How often a standby relay checks whether the active one is gone.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Runs until `shutdown`, then returns after the batch in flight.
#[tracing::instrument(name = "outbox_relay", skip_all, fields(service = service))]
pub async fn run_outbox_relay(
    service: &'static str,
    store: Arc<dyn EventStore>,
    bus: Arc<dyn MessageBus>,
    shutdown: CancellationToken,
) {
    let signal = store.outbox_signal();
    let mut failures: u32 = 0;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match store.claim_outbox().await {
            Ok(true) => {}
            Ok(false) => {
                // Another replica relays this outbox; stand by.
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot claim the outbox; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY_POLL) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        let batch = match store.outbox_batch(RELAY_BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the outbox; retrying");
                failures += 1;
                tokio::select! {
                    _ = tokio::time::sleep(backoff(failures)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let (ids, records): (Vec<i64>, Vec<_>) = batch.into_iter().unzip();
        if let Err(error) = bus.produce(records).await {
            failures += 1;
            tracing::warn!(error = %error, attempt = failures, "cannot publish the outbox; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff(failures)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        if let Err(error) = store.outbox_delete(&ids).await {
            // The records are published; they will be published again, and deduplicated.
            tracing::warn!(error = %error, "cannot clear the published outbox rows");
        }
        failures = 0;
    }
}
