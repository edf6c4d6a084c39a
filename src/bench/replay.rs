//! Replay speed: every aggregate of every type rebuilt from its events, the
//! way `campusg replay --rebuild` reads them, after the system has stopped.
//! Only reading and folding is timed; the statistics taken on the side are not.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::progress::Phase;
use super::report::ReplayRate;
use crate::backends::StoreOpener;
use crate::inspect::rebuilt_state;
use crate::settings::Backends;

pub struct Replayed {
    pub rate: ReplayRate,
    /// Events the stores recorded within the saturation run, to compare with
    /// the store's floor.
    pub events_in_saturation: u64,
    /// The mean size of an event's payload as stored.
    pub mean_event_bytes: usize,
}

pub async fn every_aggregate(backends: &Backends, window: (DateTime<Utc>, DateTime<Utc>)) -> anyhow::Result<Replayed> {
    let phase = Phase::step("replay");
    let opener = StoreOpener::for_command(backends);
    let mut stores = HashMap::new();
    for (_, service) in crate::services::aggregates() {
        if !stores.contains_key(service) {
            stores.insert(service, opener.open(service).await?);
        }
    }
    let (mut aggregates, mut events, mut in_window, mut bytes) = (0u64, 0u64, 0u64, 0usize);
    let mut replaying = Duration::ZERO;
    for (kind, service) in crate::services::aggregates() {
        let aggregate_type = kind.aggregate_type;
        let started = Instant::now();
        let stored = stores[service].load_type(aggregate_type).await?;
        for history in stored.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
            let state = rebuilt_state(aggregate_type, history)?;
            anyhow::ensure!(!state.is_null(), "{aggregate_type} did not replay");
            aggregates += 1;
        }
        replaying += started.elapsed();
        events += stored.len() as u64;
        in_window += stored
            .iter()
            .filter(|event| event.recorded_at >= window.0 && event.recorded_at <= window.1)
            .count() as u64;
        bytes += stored
            .iter()
            .map(|event| event.payload.to_string().len())
            .sum::<usize>();
    }
    let seconds = replaying.as_secs_f64();
    phase.finish();
    anyhow::ensure!(events > 0, "the stores hold no events to replay");
    Ok(Replayed {
        rate: ReplayRate {
            aggregates,
            events,
            seconds,
            events_per_sec: events as f64 / seconds,
        },
        events_in_saturation: in_window,
        mean_event_bytes: bytes / events as usize,
    })
}
