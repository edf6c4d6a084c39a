//! A store that remembers the read models it committed, for a service that
//! reads them only to write after them: the trace index reads the version of
//! an order's stream before every record it files there, and that read, one
//! per record, was most of its work.
//!
//! What it remembers can only be too old, never too new: a read model is
//! remembered after its commit succeeded, or as read, and any refused commit
//! forgets everything. A write after a version that is too old takes a
//! sequence that is already taken, the store refuses it as a conflict, the
//! store forgets, and the record is handled again from what the store holds.
//! A service whose reads decide anything besides its next write must not
//! use it: a read model another process moved would be answered as it was.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;

use crate::bus::OutgoingRecord;
use crate::store::{EventOfType, EventStore, JsonText, StateQuery, StoreError, StoredEvent, UnitOfWork};

/// How many read models are remembered, in two generations of this many: the
/// streams being written now, not every stream there is.
const REMEMBERED: usize = 20_000;

type Key = (String, String);

/// A read model and its version, or `None` for an aggregate with no events.
/// Kept as the text a commit wrote, and parsed when it is read.
type Remembered = Option<(i64, JsonText)>;

pub struct RememberingStore {
    inner: Arc<dyn EventStore>,
    memory: Mutex<Generations>,
}

/// The newer generation takes what is remembered; when it is full, it
/// becomes the older one and the older one is let go.
#[derive(Default)]
struct Generations {
    newer: HashMap<Key, Remembered>,
    older: HashMap<Key, Remembered>,
}

impl Generations {
    fn get(&self, key: &Key) -> Option<Remembered> {
        self.newer.get(key).or_else(|| self.older.get(key)).cloned()
    }

    fn insert(&mut self, key: Key, remembered: Remembered) {
        if self.newer.len() >= REMEMBERED && !self.newer.contains_key(&key) {
            self.older = std::mem::take(&mut self.newer);
        }
        self.older.remove(&key);
        self.newer.insert(key, remembered);
    }

    fn forget(&mut self, key: &Key) {
        self.newer.remove(key);
        self.older.remove(key);
    }

    fn forget_all(&mut self) {
        self.newer.clear();
        self.older.clear();
    }
}

impl RememberingStore {
    pub fn wrap(inner: Arc<dyn EventStore>) -> Arc<dyn EventStore> {
        Arc::new(RememberingStore {
            inner,
            memory: Mutex::default(),
        })
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What committing `units` makes each changed aggregate's read model, at
    /// the version its events take it to.
    fn read_models_after(units: &[UnitOfWork]) -> Vec<(Key, Remembered)> {
        units
            .iter()
            .flat_map(|unit| &unit.changes)
            .map(|change| {
                let version = change.expected_version + change.events.len() as i64;
                (
                    (change.aggregate_type.clone(), change.aggregate_id.clone()),
                    Some((version, change.state.clone())),
                )
            })
            .collect()
    }
}

#[async_trait]
impl EventStore for RememberingStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.load(aggregate_type, aggregate_id).await
    }

    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
        let read_models = Self::read_models_after(&units);
        let result = self.inner.commit_batch(units).await;
        let mut memory = self.memory();
        match &result {
            Ok(()) => {
                for (key, read_model) in read_models {
                    memory.insert(key, read_model);
                }
            }
            Err(_) => memory.forget_all(),
        }
        result
    }

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        self.inner.has_handled(consumer, message_id).await
    }

    async fn prune_handled(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_handled(before).await
    }

    async fn prune_aggregates(
        &self,
        aggregate_type: &str,
        before: DateTime<Utc>,
        status: Option<&str>,
    ) -> Result<u64, StoreError> {
        // Forgotten after as well: a commit that finished while the prune
        // ran would otherwise be remembered for an aggregate it deleted.
        self.memory().forget_all();
        let pruned = self.inner.prune_aggregates(aggregate_type, before, status).await;
        self.memory().forget_all();
        pruned
    }

    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        self.inner.snapshot(aggregate_type, aggregate_id).await
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        let remembered = self.memory().get(&key);
        match remembered {
            Some(None) => return Ok(None),
            Some(Some((version, text))) => match serde_json::from_str(text.get()) {
                Ok(state) => return Ok(Some((version, state))),
                // Nested past serde_json's limit: the store answers.
                Err(_) => self.memory().forget(&key),
            },
            None => {}
        }
        let state = self.inner.state(aggregate_type, aggregate_id).await?;
        let remembered = state
            .as_ref()
            .map(|(version, state)| (*version, JsonText::from(state.clone())));
        self.memory().insert(key, remembered);
        Ok(state)
    }

    async fn query_states(&self, aggregate_type: &str, query: &StateQuery) -> Result<Vec<Value>, StoreError> {
        self.inner.query_states(aggregate_type, query).await
    }

    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError> {
        self.inner.count_states(aggregate_type, equals).await
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<EventOfType>, StoreError> {
        self.inner.load_type(aggregate_type).await
    }

    async fn outbox_batch(&self, limit: i64) -> Result<Vec<(i64, OutgoingRecord)>, StoreError> {
        self.inner.outbox_batch(limit).await
    }

    async fn outbox_delete(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.inner.outbox_delete(ids).await
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        self.inner.outbox_depth().await
    }

    fn outbox_signal(&self) -> Arc<Notify> {
        self.inner.outbox_signal()
    }

    async fn claim_outbox(&self) -> Result<bool, StoreError> {
        self.inner.claim_outbox().await
    }
}
