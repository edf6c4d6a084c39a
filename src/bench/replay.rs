//! Replay speed: every aggregate of every type rebuilt from its events, after
//! the system has stopped. Each type is read and folded as `campusg replay
//! --rebuild` does it (one read of the type, each aggregate folded into the
//! read model a rebuild writes), the types at once, a task each, as a replay
//! of a whole system would. Only reading and folding is timed; the
//! statistics taken on the side are not.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::progress::Phase;
use super::report::ReplayRate;
use crate::backends::StoreOpener;
use crate::settings::Backends;
use campusg_runtime::store::EventOfType;

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
    // Each store is read on its own connection while the types already read
    // are folded, on every core. A failed type returns at once, and the
    // others' tasks are dropped with the set.
    let started = Instant::now();
    let mut replays = JoinSet::new();
    for (kind, service) in crate::services::aggregates() {
        let store = stores[service].clone();
        replays.spawn(async move {
            let stored = store.load_type(kind.aggregate_type).await?;
            let mut aggregates = 0u64;
            for history in stored.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
                std::hint::black_box((kind.state_after)(history)?);
                aggregates += 1;
            }
            anyhow::Ok((aggregates, stored))
        });
    }
    let mut replayed: Vec<(u64, Vec<EventOfType>)> = Vec::new();
    while let Some(replay) = replays.join_next().await {
        replayed.push(replay??);
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
    // As compact JSON, as the system writes it: PostgreSQL gives jsonb back
    // as text with spaces.
    let bytes = every_event()
        .map(|event| serde_json::from_str::<serde_json::Value>(&event.payload).map(|payload| payload.to_string().len()))
        .sum::<Result<usize, _>>()?;
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
