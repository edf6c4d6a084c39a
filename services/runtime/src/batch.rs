//! Batches: a consumer handles a whole poll's records, and the store commits
//! their work in one transaction (on PostgreSQL, one statement per table).
//!
//! Services do not know about it. Their stores are wrapped in a
//! [`BatchingStore`]; while a consumer runs a batch ([`in_batch`]), the wrapper
//! holds every unit committed to it back, and reads through what it holds: a
//! later record of the batch loads the aggregate with the earlier records'
//! events, sees their read models and their handled messages (only those: see
//! [`BatchingStore::has_handled`]). At the end of the batch the units are
//! committed together, all or none. A read that the held-back units could
//! change but the wrapper cannot answer (a query over read models) commits
//! what is held first.
//!
//! If the batch's commit fails (a concurrent writer moved an aggregate, a
//! duplicate slipped past), nothing of it is stored, and the consumer handles
//! the same records again one at a time, as it always could. Outside a batch,
//! in an HTTP request say, the wrapper passes everything through.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use crate::bus::OutgoingRecord;
use crate::store::{EventOfType, EventStore, JsonText, NewEvent, StateQuery, StoreError, StoredEvent, UnitOfWork};

tokio::task_local! {
    static BATCH: RefCell<Batch>;
}

/// The work of one batch, held back for one store.
struct Batch {
    /// The address of the [`BatchingStore`] this batch is for: a handler that
    /// writes to any other store writes through at once.
    store: usize,
    units: Vec<UnitOfWork>,
    handled: HashSet<(String, String)>,
    aggregates: HashMap<(String, String), Held>,
    /// Why a commit in the middle of the batch failed: its units are gone, so
    /// the batch must fail whatever the handler made of the error.
    refused: Option<String>,
}

/// An aggregate as the held-back units left it, kept as the units hold it
/// (JSON text) and parsed only when a later record of the same batch reads
/// it back: the sagas' and services' batches seldom touch an aggregate
/// twice; the trace index, which reads a stream's version before each
/// record it files, parses its small read model where it cloned it.
struct Held {
    /// Its version in the store when the batch first changed it.
    base_version: i64,
    events: Vec<HeldEvent>,
    state: JsonText,
}

impl Held {
    fn version(&self) -> i64 {
        self.base_version + self.events.len() as i64
    }
}

struct HeldEvent {
    event: NewEvent,
    correlation_id: String,
    causation_id: Option<String>,
    recorded_at: chrono::DateTime<chrono::Utc>,
}

impl HeldEvent {
    fn stored(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) -> Result<StoredEvent, StoreError> {
        Ok(StoredEvent {
            // Not known until the batch commits; nothing reads it before.
            global_position: 0,
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            sequence,
            event_type: self.event.event_type.clone(),
            event_version: self.event.event_version.clone(),
            payload: read_back(&self.event.payload)?,
            correlation_id: Some(self.correlation_id.clone()),
            causation_id: self.causation_id.clone(),
            recorded_at: self.recorded_at,
        })
    }
}

fn read_back(text: &JsonText) -> Result<Value, StoreError> {
    serde_json::from_str(text.get()).map_err(|e| StoreError::Other(format!("a held unit does not read back: {e}")))
}

/// Runs `work` as one batch for `store`: the commits it makes to `store` are
/// held back and committed together when it returns `Ok`. Nothing is stored if
/// `work` or the final commit fails.
pub async fn in_batch<F, T, E>(store: &Arc<dyn EventStore>, work: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<StoreError>,
{
    let batch = Batch {
        store: address_of(store.as_ref()),
        units: Vec::new(),
        handled: HashSet::new(),
        aggregates: HashMap::new(),
        refused: None,
    };
    BATCH
        .scope(RefCell::new(batch), async {
            let result = work.await?;
            if let Some(reason) = with_batch_of(store.as_ref(), |batch| batch.refused.clone()).flatten() {
                return Err(StoreError::Other(format!("a commit within the batch was refused: {reason}")).into());
            }
            flush(store.as_ref()).await?;
            Ok(result)
        })
        .await
}

fn address_of(store: &dyn EventStore) -> usize {
    store as *const dyn EventStore as *const () as usize
}

/// Runs `f` on the batch in progress for `store`, if there is one.
fn with_batch_of<R>(store: &dyn EventStore, f: impl FnOnce(&mut Batch) -> R) -> Option<R> {
    let me = address_of(store);
    BATCH
        .try_with(|batch| {
            let mut batch = batch.borrow_mut();
            (batch.store == me).then(|| f(&mut batch))
        })
        .ok()
        .flatten()
}

/// Commits what the current batch holds for `store`, if anything.
async fn flush(store: &dyn EventStore) -> Result<(), StoreError> {
    let units = with_batch_of(store, |batch| {
        batch.handled.clear();
        batch.aggregates.clear();
        std::mem::take(&mut batch.units)
    })
    .unwrap_or_default();
    if units.is_empty() {
        return Ok(());
    }
    store.commit_batch(units).await
}

/// A store that takes part in batches; see the module's documentation.
pub struct BatchingStore {
    inner: Arc<dyn EventStore>,
}

impl BatchingStore {
    pub fn wrap(inner: Arc<dyn EventStore>) -> Arc<dyn EventStore> {
        Arc::new(BatchingStore { inner })
    }

    fn with_batch<R>(&self, f: impl FnOnce(&mut Batch) -> R) -> Option<R> {
        with_batch_of(self, f)
    }

    /// Holds `unit` back, after the checks the store would make on commit
    /// against what the batch already holds. The store checks the rest when
    /// the batch commits.
    fn hold(batch: &mut Batch, unit: UnitOfWork) -> Result<(), StoreError> {
        if let Some(handled) = &unit.cause.handled {
            if batch
                .handled
                .contains(&(handled.consumer.clone(), handled.message_id.clone()))
            {
                return Err(StoreError::AlreadyHandled);
            }
        }
        for change in &unit.changes {
            let key = (change.aggregate_type.clone(), change.aggregate_id.clone());
            // Aggregates the batch has not changed yet are checked on commit.
            let held = batch.aggregates.get(&key).map(Held::version);
            if held.is_some_and(|version| version != change.expected_version) {
                return Err(StoreError::Conflict {
                    aggregate_type: change.aggregate_type.clone(),
                    aggregate_id: change.aggregate_id.clone(),
                });
            }
        }
        if let Some(handled) = &unit.cause.handled {
            batch
                .handled
                .insert((handled.consumer.clone(), handled.message_id.clone()));
        }
        for change in &unit.changes {
            let key = (change.aggregate_type.clone(), change.aggregate_id.clone());
            let events = change.events.iter().map(|event| HeldEvent {
                event: event.clone(),
                correlation_id: unit.cause.correlation_id.clone(),
                causation_id: unit.cause.causation_id.clone(),
                recorded_at: unit.cause.at,
            });
            match batch.aggregates.entry(key) {
                Entry::Occupied(mut held) => {
                    let held = held.get_mut();
                    held.events.extend(events);
                    held.state = change.state.clone();
                }
                Entry::Vacant(slot) => {
                    slot.insert(Held {
                        base_version: change.expected_version,
                        events: events.collect(),
                        state: change.state.clone(),
                    });
                }
            }
        }
        batch.units.push(unit);
        Ok(())
    }
}

impl BatchingStore {
    /// A query over read models sees what the batch holds: it is committed
    /// first.
    async fn commit_held_before_a_query(&self) -> Result<(), StoreError> {
        if self.with_batch(|batch| !batch.units.is_empty()) == Some(true) {
            if let Err(error) = flush(self).await {
                // The held units are lost with the failed commit: the batch
                // fails, and the handler must not read this as its own outcome
                // (an `AlreadyHandled` would tell it its message was done).
                self.with_batch(|batch| batch.refused = Some(error.to_string()));
                return Err(StoreError::Unavailable(format!(
                    "the batch could not be committed ({error}); it is handled again record by record"
                )));
            }
        }
        Ok(())
    }

    /// The read model and version the batch in progress left an aggregate
    /// at, if it changed it.
    fn held_read_model(&self, aggregate_type: &str, aggregate_id: &str) -> Option<Result<(i64, Value), StoreError>> {
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        self.with_batch(|batch| {
            batch
                .aggregates
                .get(&key)
                .map(|held| Ok((held.version(), read_back(&held.state)?)))
        })
        .flatten()
    }
}

#[async_trait]
impl EventStore for BatchingStore {
    async fn load(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let key = (aggregate_type.to_string(), aggregate_id.to_string());
        let held = self.with_batch(|batch| {
            batch.aggregates.get(&key).map(|held| {
                let events = held.events.iter().enumerate().map(|(index, event)| {
                    event.stored(aggregate_type, aggregate_id, held.base_version + index as i64 + 1)
                });
                Ok::<_, StoreError>((held.base_version, events.collect::<Result<Vec<_>, _>>()?))
            })
        });
        let mut events = self.inner.load(aggregate_type, aggregate_id).await?;
        if let Some(Some(held)) = held {
            let (base_version, held_events) = held?;
            if events.last().map_or(0, |e| e.sequence) != base_version {
                // Another writer moved it since the batch read it: the batch
                // will be refused on commit; tell the handler now.
                return Err(StoreError::Conflict {
                    aggregate_type: aggregate_type.to_string(),
                    aggregate_id: aggregate_id.to_string(),
                });
            }
            events.extend(held_events);
        }
        Ok(events)
    }

    async fn commit(&self, unit: UnitOfWork) -> Result<(), StoreError> {
        let mut unit = Some(unit);
        if let Some(held) = self.with_batch(|batch| Self::hold(batch, unit.take().expect("taken once"))) {
            return held;
        }
        self.inner.commit(unit.expect("not taken outside a batch")).await
    }

    async fn commit_batch(&self, units: Vec<UnitOfWork>) -> Result<(), StoreError> {
        self.inner.commit_batch(units).await
    }

    /// Inside a batch, answers from what the batch holds, without a read: a
    /// message handled before the batch is caught when the batch commits (its
    /// handled row is already there), and the batch is then redone record by
    /// record, where this check reads the store. Duplicates are rare; a read
    /// per record is not.
    async fn prune_handled(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError> {
        self.inner.prune_handled(before).await
    }

    async fn prune_aggregates(
        &self,
        aggregate_type: &str,
        before: chrono::DateTime<chrono::Utc>,
        status: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.inner.prune_aggregates(aggregate_type, before, status).await
    }

    async fn has_handled(&self, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        let key = (consumer.to_string(), message_id.to_string());
        match self.with_batch(|batch| batch.handled.contains(&key)) {
            Some(held) => Ok(held),
            None => self.inner.has_handled(consumer, message_id).await,
        }
    }

    async fn state(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        match self.held_read_model(aggregate_type, aggregate_id) {
            Some(held) => held.map(Some),
            None => self.inner.state(aggregate_type, aggregate_id).await,
        }
    }

    /// An aggregate the batch changed is answered from what the batch holds:
    /// if another writer moved it meanwhile, the batch's commit is refused.
    async fn snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<(i64, Value)>, StoreError> {
        match self.held_read_model(aggregate_type, aggregate_id) {
            Some(held) => held.map(Some),
            None => self.inner.snapshot(aggregate_type, aggregate_id).await,
        }
    }

    async fn query_states(&self, aggregate_type: &str, query: &StateQuery) -> Result<Vec<Value>, StoreError> {
        self.commit_held_before_a_query().await?;
        self.inner.query_states(aggregate_type, query).await
    }

    async fn count_states(&self, aggregate_type: &str, equals: &[(String, String)]) -> Result<i64, StoreError> {
        self.commit_held_before_a_query().await?;
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
