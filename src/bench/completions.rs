//! Which sagas have finished, read from the `saga_events` topic as any other
//! consumer of it would. A saga's finishing time is the `at` of its last
//! `saga.*` event: when the saga recorded it, not when the bench noticed, so
//! the embedded log's cross-process polling adds nothing to a latency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use campusg_runtime::bus::{MessageBus, Record, StartFrom, Subscription};

use super::progress::Phase;

/// The statuses after which a saga takes no more steps.
const FINAL_STATUSES: [&str; 4] = ["COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"];

/// How often the follower looks for new records; the embedded log is read
/// across processes by polling.
const POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct Finished {
    pub saga_id: String,
    pub status: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Completions {
    finished: Arc<Mutex<HashMap<String, Finished>>>,
    changed: Arc<Notify>,
    stop: CancellationToken,
    follower: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Completions {
    /// Starts following `saga_events`. From its beginning: a reader that starts
    /// at the end may, on Kafka, learn where the end is only after the first
    /// orders are placed, and miss them. A fresh system's topic is short; on a
    /// broker shared with earlier runs the follower first reads their records.
    pub async fn follow(bus: Arc<dyn MessageBus>) -> anyhow::Result<Completions> {
        let mut consumer = bus
            .subscribe(Subscription {
                group: None,
                topics: vec!["saga_events".to_string()],
                start: StartFrom::Earliest,
            })
            .await?;
        let completions = Completions {
            finished: Arc::default(),
            changed: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            follower: Arc::default(),
        };
        let first = consumer.poll(1000, POLL).await?;
        completions.take(&first);
        let follower = completions.clone();
        let handle = tokio::spawn(async move {
            while !follower.stop.is_cancelled() {
                match consumer.poll(1000, POLL).await {
                    Ok(records) => follower.take(&records),
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot read saga_events; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        *completions.follower.lock().expect("not poisoned") = Some(handle);
        Ok(completions)
    }

    fn take(&self, records: &[Record]) {
        if records.is_empty() {
            return;
        }
        let mut finished = self.finished.lock().expect("not poisoned");
        for record in records {
            if let Some(done) = finished_saga(record) {
                finished.insert(done.saga_id.clone(), done);
            }
        }
        drop(finished);
        self.changed.notify_waiters();
    }

    /// Waits until every one of `sagas` has finished, and checks that each
    /// COMPLETED. Gives up when none finishes for `patience`.
    pub async fn wait_all(&self, sagas: &[String], phase: &Phase, patience: Duration) -> anyhow::Result<Vec<Finished>> {
        let mut waiting: Vec<&String> = sagas.iter().collect();
        let mut done = Vec::with_capacity(sagas.len());
        let mut last_progress = tokio::time::Instant::now();
        loop {
            let changed = self.changed.notified();
            let before = done.len();
            {
                let finished = self.finished.lock().expect("not poisoned");
                waiting.retain(|saga_id| match finished.get(*saga_id) {
                    Some(saga) => {
                        done.push(saga.clone());
                        false
                    }
                    None => true,
                });
            }
            phase.advance((done.len() - before) as u64);
            if waiting.is_empty() {
                break;
            }
            if done.len() > before {
                last_progress = tokio::time::Instant::now();
            } else if last_progress.elapsed() > patience {
                anyhow::bail!(
                    "{} of {} sagas have not finished after {}s without progress; the first is {}",
                    waiting.len(),
                    sagas.len(),
                    patience.as_secs(),
                    waiting[0]
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
        }
        let failed: Vec<&Finished> = done.iter().filter(|saga| saga.status != "COMPLETED").collect();
        anyhow::ensure!(
            failed.is_empty(),
            "{} of {} sagas did not complete; the first is {} ({})",
            failed.len(),
            sagas.len(),
            failed[0].saga_id,
            failed[0].status
        );
        Ok(done)
    }

    /// Waits for one saga to finish, and checks that it COMPLETED.
    pub async fn wait_completed(&self, saga_id: &str, patience: Duration) -> anyhow::Result<Finished> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.changed.notified();
            if let Some(saga) = self.finished.lock().expect("not poisoned").get(saga_id).cloned() {
                anyhow::ensure!(saga.status == "COMPLETED", "saga {saga_id} ended {}", saga.status);
                return Ok(saga);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "saga {saga_id} has not finished after {}s",
                patience.as_secs()
            );
            let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
        }
    }

    pub async fn stop(&self) {
        self.stop.cancel();
        let follower = self.follower.lock().expect("not poisoned").take();
        if let Some(handle) = follower {
            let _ = handle.await;
        }
    }
}

/// The saga a record reports finished, if it reports one.
fn finished_saga(record: &Record) -> Option<Finished> {
    let value: Value = serde_json::from_str(&record.value).ok()?;
    let payload = value.get("payload")?;
    let status = payload.get("status")?.as_str()?;
    if !FINAL_STATUSES.contains(&status) {
        return None;
    }
    Some(Finished {
        saga_id: payload.get("saga_id")?.as_str()?.to_string(),
        status: status.to_string(),
        at: DateTime::parse_from_rfc3339(payload.get("at")?.as_str()?)
            .ok()?
            .with_timezone(&Utc),
    })
}
