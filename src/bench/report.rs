//! What a bench run found: a table for people, the same as JSON for tools.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: &'static str,
    pub version: &'static str,
    pub measured_at: DateTime<Utc>,
    pub clients: usize,
    pub saturation: Saturation,
    pub latency: Latency,
    pub lifecycle: Lifecycle,
    pub replay: ReplayRate,
    pub peak_rss_mib: f64,
    /// The glibc arenas the system ran with (`MALLOC_ARENA_MAX`): they move
    /// its peak memory by a sixth.
    pub malloc_arena_max: String,
    pub floor: Floor,
    pub share: ShareOfFloor,
}

/// Create-order sagas completed per second with every client busy.
#[derive(Debug, Serialize)]
pub struct Saturation {
    pub orders: usize,
    pub seconds: f64,
    pub sagas_per_sec: f64,
    /// Records the system produced on every topic for the run's orders, until
    /// the observers caught up.
    pub records: u64,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// How long after the last saga completed the observers (trace index,
    /// notifications), which are off the sagas' path, caught up.
    pub observers_behind_secs: f64,
    /// The whole system's rate, the headline: the orders over the time from
    /// the first request until every observer had caught up with the last.
    pub whole_system_per_sec: f64,
}

impl Saturation {
    /// The run's figures once the observers have caught up, `behind_secs`
    /// after the last saga completed.
    pub fn caught_up_after(mut self, behind_secs: f64) -> Saturation {
        self.observers_behind_secs = behind_secs;
        self.whole_system_per_sec = self.orders as f64 / (self.seconds + behind_secs);
        self
    }
}

/// From the time a request was due to its saga's completion, at a fixed offered rate.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub offered_per_sec: f64,
    pub orders: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Orders taken from placement through delivery to completion, per second.
#[derive(Debug, Serialize)]
pub struct Lifecycle {
    pub orders: usize,
    pub seconds: f64,
    pub per_sec: f64,
}

#[derive(Debug, Serialize)]
pub struct ReplayRate {
    pub aggregates: u64,
    pub events: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
}

/// What the machine allows with nothing of campusg in between.
#[derive(Debug, Serialize)]
pub struct Floor {
    /// The mean size of a record the system wrote; the floor's records are this size.
    pub message_bytes: usize,
    pub bus_records_per_sec: f64,
    pub store_appends_per_sec: f64,
}

/// The saturation run's use of the bus and the stores, against the floor:
/// everything its orders caused, over the time from the first order until the
/// observers caught up.
#[derive(Debug, Serialize)]
pub struct ShareOfFloor {
    pub messages_per_saga: f64,
    pub bus_records_per_sec: f64,
    pub of_bus_floor: f64,
    pub events_per_saga: f64,
    pub store_appends_per_sec: f64,
    /// The floor is one store; the system writes to one store per service, so
    /// this may pass 1.
    pub of_store_floor: f64,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.saturation;
        let l = &self.latency;
        let rows: Vec<(String, String)> = vec![
            ("backend".into(), self.backend.to_string()),
            ("clients".into(), self.clients.to_string()),
            (
                "whole system orders/s".into(),
                format!(
                    "{:.1}  ({} orders until every observer caught up)",
                    s.whole_system_per_sec, s.orders
                ),
            ),
            (
                "create-order sagas/s".into(),
                format!(
                    "{:.1}  ({} orders in {:.2}s, sagas only)",
                    s.sagas_per_sec, s.orders, s.seconds
                ),
            ),
            (
                "observers caught up".into(),
                format!("{:.1}s after the last saga completed", s.observers_behind_secs),
            ),
            (
                "latency at offered rate".into(),
                format!(
                    "{:.1}/s: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} orders)",
                    l.offered_per_sec, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.orders
                ),
            ),
            (
                "full lifecycles/s".into(),
                format!(
                    "{:.1}  ({} orders in {:.2}s)",
                    self.lifecycle.per_sec, self.lifecycle.orders, self.lifecycle.seconds
                ),
            ),
            (
                "replay events/s".into(),
                format!(
                    "{:.0}  ({} events of {} aggregates in {:.2}s)",
                    self.replay.events_per_sec, self.replay.events, self.replay.aggregates, self.replay.seconds
                ),
            ),
            (
                "peak RSS of the system".into(),
                format!(
                    "{:.1} MiB  (MALLOC_ARENA_MAX={})",
                    self.peak_rss_mib, self.malloc_arena_max
                ),
            ),
            (
                "floor: bus records/s".into(),
                format!(
                    "{:.0}  ({} B records, produce + consume)",
                    self.floor.bus_records_per_sec, self.floor.message_bytes
                ),
            ),
            (
                "floor: store appends/s".into(),
                format!("{:.0}  (one event per commit)", self.floor.store_appends_per_sec),
            ),
            (
                "bus use at saturation".into(),
                format!(
                    "{:.0} records/s = {:.1}% of the floor ({:.1} records per saga)",
                    self.share.bus_records_per_sec,
                    self.share.of_bus_floor * 100.0,
                    self.share.messages_per_saga
                ),
            ),
            (
                "store use at saturation".into(),
                format!(
                    "{:.0} events/s = {:.1}% of one store's floor ({:.1} events per saga)",
                    self.share.store_appends_per_sec,
                    self.share.of_store_floor * 100.0,
                    self.share.events_per_saga
                ),
            ),
        ];
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<width$}  {value}");
        }
        out
    }
}
