//! Running commands against event-sourced aggregates.
//!
//! [`load`] rebuilds an aggregate from its events; [`load_from_read_model`]
//! from its read model, for the aggregates whose read model is whole
//! ([`WholeReadModel`]) and only when it is as new as their events;
//! [`states_after_each`] replays them one by one, for history;
//! [`execute`] runs a cqrs-es command on it; [`UnitOfWork::append`] queues the
//! new events, their messages and the aggregate's read model for one commit;
//! [`run_alone`] does all three for a record that is its own commit. A
//! concurrent writer makes the commit fail with a conflict, and the caller
//! retries from the load.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;

use campusg_domain::messages::Message;
use campusg_domain::snapshot::WholeReadModel;

use crate::store::{
    AggregateChange, Cause, Contracts, EventOfType, EventStore, JsonText, NewEvent, PublishError, StoreError,
    StoredEvent, UnitOfWork,
};

/// An aggregate as rebuilt, with the version its next event must follow.
#[derive(Debug)]
pub struct Loaded<A> {
    pub id: String,
    pub aggregate: A,
    pub version: i64,
}

pub async fn load<A: Aggregate>(store: &dyn EventStore, id: &str) -> Result<Loaded<A>, StoreError> {
    let events = store.load(A::TYPE, id).await?;
    let mut aggregate = A::default();
    let mut version = 0;
    for stored in &events {
        aggregate.apply(decode::<A>(stored)?);
        version = stored.sequence;
    }
    Ok(Loaded {
        id: id.to_string(),
        aggregate,
        version,
    })
}

/// An aggregate whose read model is whole, rebuilt from it when it is as new
/// as the aggregate's events (one row, however long the history), else from
/// its events as [`load`] does.
pub async fn load_from_read_model<A: WholeReadModel>(
    store: &dyn EventStore,
    id: &str,
) -> Result<Loaded<A>, StoreError> {
    if let Some((version, state)) = store.snapshot(A::TYPE, id).await? {
        if let Some(aggregate) = read_back::<A>(&state) {
            return Ok(Loaded {
                id: id.to_string(),
                aggregate,
                version,
            });
        }
    }
    load(store, id).await
}

/// The aggregate a read model holds, if it writes back to the same read
/// model: one written by an older build, without a field this build added
/// (and would fill with its default) or with one it dropped, does not, and
/// the aggregate is folded from its events instead.
fn read_back<A: WholeReadModel>(state: &Value) -> Option<A> {
    let aggregate: A = serde_json::from_value(state.clone()).ok()?;
    (serde_json::to_value(&aggregate).ok()? == *state).then_some(aggregate)
}

/// Every aggregate of a type, rebuilt from its events (not read from its read
/// model), by id.
pub async fn load_all<A: Aggregate>(
    store: &dyn EventStore,
) -> Result<std::collections::BTreeMap<String, A>, StoreError> {
    let mut aggregates: std::collections::BTreeMap<String, A> = std::collections::BTreeMap::new();
    for stored in store.load_type(A::TYPE).await? {
        let event = decode_text::<A>(&stored)?;
        aggregates.entry(stored.aggregate_id).or_default().apply(event);
    }
    Ok(aggregates)
}

/// The aggregate's state (as its read model shows it) after each of `events`,
/// replayed with its own `apply`: how it looked at every point of its history.
pub fn states_after_each<A: Aggregate + serde::Serialize>(events: &[StoredEvent]) -> Result<Vec<Value>, StoreError> {
    let mut aggregate = A::default();
    events
        .iter()
        .map(|stored| {
            aggregate.apply(decode::<A>(stored)?);
            serde_json::to_value(&aggregate).map_err(|e| StoreError::Other(e.to_string()))
        })
        .collect()
}

/// The aggregate's read model after all of `events` (one aggregate's, as
/// [`EventStore::load_type`] reads them), folded with its own `apply` and
/// written out once, as the text a store writes.
pub fn state_after<A: Aggregate + serde::Serialize>(events: &[EventOfType]) -> Result<JsonText, StoreError> {
    let mut aggregate = A::default();
    for stored in events {
        aggregate.apply(decode_text::<A>(stored)?);
    }
    JsonText::of(&aggregate).map_err(|e| StoreError::Other(e.to_string()))
}

fn decode<A: Aggregate>(stored: &StoredEvent) -> Result<A::Event, StoreError> {
    use serde::Deserialize;
    A::Event::deserialize(&stored.payload).map_err(|e| unreadable::<A>(&stored.aggregate_id, stored.sequence, e))
}

fn decode_text<A: Aggregate>(stored: &EventOfType) -> Result<A::Event, StoreError> {
    serde_json::from_str(&stored.payload).map_err(|e| unreadable::<A>(&stored.aggregate_id, stored.sequence, e))
}

fn unreadable<A: Aggregate>(id: &str, sequence: i64, error: serde_json::Error) -> StoreError {
    StoreError::Permanent(format!("{} {id} event {sequence} does not read: {error}", A::TYPE))
}

/// Runs `command` against the loaded aggregate through cqrs-es's `handle`, and
/// applies the events it decides.
pub async fn execute<A: Aggregate>(
    loaded: &mut Loaded<A>,
    command: A::Command,
    services: &A::Services,
) -> Result<Vec<A::Event>, A::Error> {
    let sink = EventSink::default();
    loaded.aggregate.handle(command, services, &sink).await?;
    Ok(sink.collect().await)
}

/// Why [`run_alone`] changed nothing: the aggregate refused the command, or
/// the store failed (a conflict included).
#[derive(Debug)]
pub enum NotRun<E> {
    Refused(E),
    Store(StoreError),
}

/// Loads aggregate `id` from `store`, runs `command` on it, and commits its
/// events on their own, under `cause`: no message, no handled mark. For the
/// records kept beside a service's work (a parked key, an idempotent request,
/// a processor's call) rather than as part of it.
pub async fn run_alone<A: Aggregate>(
    store: &dyn EventStore,
    id: &str,
    command: A::Command,
    services: &A::Services,
    cause: Cause,
) -> Result<Loaded<A>, NotRun<A::Error>> {
    let mut loaded = load::<A>(store, id).await.map_err(NotRun::Store)?;
    let events = execute(&mut loaded, command, services).await.map_err(NotRun::Refused)?;
    let mut unit = UnitOfWork::new(cause);
    unit.append_unpublished(&mut loaded, &events);
    store.commit(unit).await.map_err(NotRun::Store)?;
    Ok(loaded)
}

impl UnitOfWork {
    /// Queues `events` (already applied to `loaded`) for appending, the aggregate's
    /// new read model, and, when `publish` is set, each event as a message.
    pub fn append<A>(
        &mut self,
        contracts: &Contracts,
        loaded: &mut Loaded<A>,
        events: &[A::Event],
        publish: bool,
    ) -> Result<(), PublishError>
    where
        A: Aggregate,
        A::Event: Into<Message>,
    {
        if events.is_empty() {
            return Ok(());
        }
        if publish {
            for event in events {
                self.publish(contracts, &event.clone().into())?;
            }
        }
        self.append_unpublished(loaded, events);
        Ok(())
    }

    /// Queues events that are not messages (a saga's own history).
    /// `loaded.version` moves past them, so a second append in the same unit follows.
    pub fn append_unpublished<A: Aggregate>(&mut self, loaded: &mut Loaded<A>, events: &[A::Event]) {
        if events.is_empty() {
            return;
        }
        self.changes.push(AggregateChange {
            aggregate_type: A::TYPE.to_string(),
            aggregate_id: loaded.id.clone(),
            expected_version: loaded.version,
            events: events
                .iter()
                .map(|event| NewEvent {
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: JsonText::of(event).expect("events always serialize"),
                })
                .collect(),
            state: JsonText::of(&loaded.aggregate).unwrap_or_else(|error| {
                // Its events still hold it: `campusg replay --rebuild` says why.
                tracing::error!(aggregate_type = A::TYPE, aggregate_id = %loaded.id, %error, "a read model does not serialize: written as null");
                Value::Null.into()
            }),
        });
        loaded.version += events.len() as i64;
    }
}

#[cfg(test)]
mod tests {
    use campusg_domain::order::Order;
    use rstest::rstest;

    use super::*;

    fn as_this_build_writes_it() -> Value {
        serde_json::to_value(Order::default()).unwrap()
    }

    #[test]
    fn a_read_model_this_build_wrote_reads_back() {
        let state = as_this_build_writes_it();
        let order = read_back::<Order>(&state).expect("reads back");
        assert_eq!(serde_json::to_value(order).unwrap(), state);
    }

    /// An older build's read model, without a field added since (which would
    /// read as its default), or with one removed since: the events decide.
    #[rstest]
    #[case::without_a_field_added_since(|state: &mut Value| { state.as_object_mut().unwrap().remove("acceptances"); })]
    #[case::with_a_field_removed_since(|state: &mut Value| { state["retired_field"] = Value::from(1); })]
    fn an_older_build_s_read_model_is_not_trusted(#[case] written_before: fn(&mut Value)) {
        let mut state = as_this_build_writes_it();
        written_before(&mut state);
        assert!(read_back::<Order>(&state).is_none());
    }

    /// A unit holds an event as its own type writes it, its tag first (so
    /// that reading it back needs no buffering), and the read model as the
    /// aggregate writes it; folding the stored events gives that read model.
    #[test]
    fn a_unit_holds_events_as_their_type_writes_them_and_they_fold_back_to_its_state() {
        let cancelled = campusg_domain::order::OrderEvent::Cancelled(campusg_domain::messages::OrderCancelled {
            order_id: campusg_domain::ids::OrderId(uuid::Uuid::from_u128(7)),
            previous_status: campusg_domain::order::OrderStatus::Pending,
            reason: "caf\u{e9} \"closed\"".into(),
            requested_by: Default::default(),
            cancelled_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        });
        let mut loaded = Loaded {
            id: "o-7".into(),
            aggregate: Order::default(),
            version: 0,
        };
        loaded.aggregate.apply(cancelled.clone());
        let mut unit = UnitOfWork::new(Cause::request("test".into(), "test", chrono::Utc::now()));
        unit.append_unpublished(&mut loaded, std::slice::from_ref(&cancelled));

        let change = &unit.changes[0];
        let payload = change.events[0].payload.get();
        assert!(
            payload.starts_with(r#"{"type":"order.cancelled","payload":{"#),
            "{payload}"
        );
        let stored = [EventOfType {
            aggregate_id: "o-7".into(),
            sequence: 1,
            payload: payload.to_string(),
            recorded_at: chrono::Utc::now(),
        }];
        assert_eq!(state_after::<Order>(&stored).unwrap(), change.state);
        assert_eq!(
            serde_json::from_str::<Order>(change.state.get()).unwrap(),
            loaded.aggregate
        );
    }
}
