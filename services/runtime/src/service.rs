//! What every service is built from (its event store, the contracts its
//! messages are checked against, and the clock), and what it declares of
//! itself for whatever is built from the list of services.

use std::sync::Arc;

use serde_json::Value;

use crate::clock::Clock;
use crate::store::{Contracts, EventOfType, EventStore, JsonText, StoreError, StoredEvent};

#[derive(Clone)]
pub struct ServiceDeps {
    pub store: Arc<dyn EventStore>,
    pub contracts: Arc<Contracts>,
    pub clock: Arc<dyn Clock>,
}

/// A service, as it describes itself: start-up opens the store its name
/// names, and `campusg replay` finds each of its aggregates there.
#[derive(Clone, Copy, Debug)]
pub struct ServiceDescription {
    /// Names its role, its store (`<name>.db`, or the schema `<prefix>_<name>`).
    pub name: &'static str,
    /// The `source` of every message it publishes.
    pub source: &'static str,
    pub consumer_group: &'static str,
    /// The message types its consumer takes: it subscribes to the topics that
    /// carry them, and the other types of those topics pass it by.
    pub handles: &'static [&'static str],
    /// The aggregates its store keeps (besides the parked keys of its consumer).
    pub aggregates: &'static [AggregateKind],
    /// Its consumer reads a read model only to write after it: the store may
    /// remember the read models it committed instead of reading them again
    /// ([`crate::remembered`]). Another writer (a replica) is met by a
    /// conflict on the next write, after which the store is read again.
    pub remembers_its_read_models: bool,
    /// How often its consumer reads its store back: what the store keeps of
    /// it in memory.
    pub store_reads: StoreReads,
}

/// How often a service reads its own store back while it works. An embedded
/// store keeps SQLite's page cache (2 MB) for a store read often and a
/// quarter of it for one read seldom: the page caches are most of the
/// memory a whole system holds that is not the allocators' (docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreReads {
    /// On the sagas' path: each message loads what earlier ones wrote.
    Often,
    /// Mostly appended to: an observer (trace index, notifications), the
    /// ledger's books, the API's keys (read once a keyed request).
    Seldom,
}

/// An aggregate type, and how its history replays: enough to show any
/// aggregate as it was, or rebuild its read models, without knowing its type.
#[derive(Clone, Copy)]
pub struct AggregateKind {
    pub aggregate_type: &'static str,
    /// Its read model after each of its events.
    pub states_after_each: fn(&[StoredEvent]) -> Result<Vec<Value>, StoreError>,
    /// Its read model after all of its events: what a rebuild writes.
    pub state_after: fn(&[EventOfType]) -> Result<JsonText, StoreError>,
}

impl AggregateKind {
    pub const fn of<A: cqrs_es::Aggregate + serde::Serialize>() -> AggregateKind {
        AggregateKind {
            aggregate_type: A::TYPE,
            states_after_each: crate::aggregate::states_after_each::<A>,
            state_after: crate::aggregate::state_after::<A>,
        }
    }
}

impl std::fmt::Debug for AggregateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.aggregate_type)
    }
}
