//! What each consumer in this process is doing, for `GET /health`.
//!
//! A consumer that died or stopped moving must not hide behind a green health
//! check (SPEC section 10). Each consumer reports here as it runs: when it last
//! polled, how many records its group has yet to read, and since when it has
//! been retrying one record. `/health` reads the board and answers 503 when a
//! consumer has stopped or has been stuck on a record past [`STALLED_AFTER`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bus::PartitionLag;

/// How long a consumer may retry one record before it counts as stalled.
pub const STALLED_AFTER: Duration = Duration::from_secs(30);

/// Where one consumer stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConsumerStatus {
    /// `running`, `stalled` or `stopped`.
    pub state: &'static str,
    /// Records on its topics its group has not yet committed, when the bus says.
    pub records_behind: Option<i64>,
    /// The same, per partition, for the lag gauge of `/metrics` (not shown on
    /// `/health`, which anyone may read).
    #[serde(skip)]
    pub partitions: Vec<PartitionLag>,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// When the record it is retrying first failed, while it retries one.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the record it is retrying failed last.
    pub last_error: Option<String>,
    /// Set once the consumer has ended: why.
    pub stopped_because: Option<String>,
}

/// Every consumer of this process, by group.
#[derive(Clone, Default)]
pub struct HealthBoard {
    consumers: Arc<Mutex<BTreeMap<String, ConsumerStatus>>>,
}

impl HealthBoard {
    pub fn new() -> HealthBoard {
        HealthBoard::default()
    }

    /// Changes what `group` reports.
    pub fn update(&self, group: &str, change: impl FnOnce(&mut ConsumerStatus)) {
        let mut consumers = self.consumers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(consumers.entry(group.to_string()).or_default());
    }

    /// Records how far behind `group` is, from the bus's answer by partition.
    pub fn lag_checked(&self, group: &str, partitions: Option<Vec<PartitionLag>>) {
        self.update(group, |status| {
            status.records_behind = partitions
                .as_ref()
                .map(|partitions| partitions.iter().map(|lag| lag.records_behind).sum());
            status.partitions = partitions.unwrap_or_default();
        });
    }

    /// Each group's lag by partition, as last checked.
    pub fn lag_by_partition(&self) -> Vec<(String, Vec<PartitionLag>)> {
        let consumers = self.consumers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        consumers
            .iter()
            .map(|(group, status)| (group.clone(), status.partitions.clone()))
            .collect()
    }

    /// Every consumer's status as of `now`, and whether all are healthy.
    pub fn report(&self, now: DateTime<Utc>) -> (bool, BTreeMap<String, ConsumerStatus>) {
        let consumers = self.consumers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let stalled_after = chrono::Duration::from_std(STALLED_AFTER).unwrap_or(chrono::Duration::MAX);
        let mut healthy = true;
        let report = consumers
            .iter()
            .map(|(group, status)| {
                let mut status = status.clone();
                status.state = if status.stopped_because.is_some() {
                    "stopped"
                } else if status.failing_since.is_some_and(|since| now - since >= stalled_after)
                    || (status.records_behind.is_some_and(|behind| behind > 0)
                        && status.last_poll_at.is_some_and(|at| now - at >= stalled_after))
                {
                    "stalled"
                } else {
                    "running"
                };
                healthy &= status.state == "running";
                (group.clone(), status)
            })
            .collect();
        (healthy, report)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn a_consumer_retrying_one_record_past_the_threshold_is_stalled_and_the_process_unhealthy() {
        let board = HealthBoard::new();
        board.update("orders", |s| s.failing_since = Some(at(0)));
        board.update("payments", |s| s.last_poll_at = Some(at(0)));

        let (healthy, report) = board.report(at(5));
        assert!(healthy);
        assert_eq!(report["orders"].state, "running");

        let (healthy, report) = board.report(at(31));
        assert!(!healthy);
        assert_eq!(report["orders"].state, "stalled");
        assert_eq!(report["payments"].state, "running");
    }

    #[test]
    fn a_consumer_that_stopped_polling_with_records_waiting_is_stalled() {
        let board = HealthBoard::new();
        board.update("idle", |s| s.last_poll_at = Some(at(0)));
        board.update("hung", |s| {
            s.last_poll_at = Some(at(0));
            s.records_behind = Some(3);
        });
        let (healthy, report) = board.report(at(60));
        assert!(!healthy);
        assert_eq!(report["idle"].state, "running", "nothing to read is not a stall");
        assert_eq!(report["hung"].state, "stalled");
    }

    #[test]
    fn a_stopped_consumer_makes_the_process_unhealthy() {
        let board = HealthBoard::new();
        board.update("orders", |s| s.stopped_because = Some("the store is gone".into()));
        let (healthy, report) = board.report(at(0));
        assert!(!healthy);
        assert_eq!(report["orders"].state, "stopped");
    }
}
