//! Replay speed: every aggregate of every type rebuilt from its events, the
//! way `campusg replay --rebuild` reads them, after the system has stopped.
//! Only reading and folding is timed; the statistics taken on the side are not.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::progress::Phase;
use super::report::ReplayRate;
use crate::backends::StoreOpener;
use crate::settings::Backends;
use campusg_runtime::store::TypeEvent;

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
    // A task per type, as a replay of a whole system would go: each store is
    // read on its own connection while the types already read are folded,
    // on every core.
    let started = Instant::now();
    let replays: Vec<_> = crate::services::aggregates()
        .map(|(kind, service)| {
            let store = stores[service].clone();
            tokio::spawn(async move {
                let stored = store.load_type(kind.aggregate_type).await?;
                let mut aggregates = 0u64;
                for history in stored.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
                    std::hint::black_box((kind.state_after)(history)?);
                    aggregates += 1;
                }
                anyhow::Ok((aggregates, stored))
            })
        })
        .collect();
    let mut replayed: Vec<(u64, Vec<TypeEvent>)> = Vec::new();
    for replay in replays {
        replayed.push(replay.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    phase.finish();

    let aggregates = replayed.iter().map(|(aggregates, _)| aggregates).sum();
    let every_event = || replayed.iter().flat_map(|(_, stored)| stored);
    let events = every_event().count() as u64;
    anyhow::ensure!(events > 0, "the stores hold no events to replay");
    let in_window = every_event()
        .filter(|event| event.recorded_at >= window.0 && event.recorded_at <= window.1)
        .count() as u64;
    let bytes = every_event().map(|event| event.payload.len()).sum::<usize>();
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
