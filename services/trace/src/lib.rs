//! The trace index: every record on every topic, filed under its order and its
//! saga as the log is consumed, so that one order's whole story is one lookup.
//!
//! The indexer is a consumer group of its own (`trace-index`) over every topic
//! in the catalog, valid records or not. Each record is appended, as an event,
//! to the stream of its order in the trace store, `order_trace/<order id>` (the
//! record key, when it is an order id). The stream of its saga,
//! `saga_trace/<correlation id>`, keeps the records that have no order whole,
//! and names each order the saga touched once (that order's first record,
//! without its payload), so that a saga's story is its orders' streams and
//! its own. A record is filed once: its position is the handled-message id of
//! the commit that files it.
//! [`story`] reads those streams back and puts the records in causal and time
//! order; [`render`] prints them for people (text, a Mermaid sequence diagram)
//! or tools (JSON).

mod indexer;
pub mod render;
mod routes;
pub mod story;

use std::sync::Arc;

use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{ServiceDeps, ServiceDescription, StoreReads};

pub use routes::routes;
pub use story::{story, TracedRecord};

pub const SERVICE_NAME: &str = "trace-index";
pub const CONSUMER_GROUP: &str = "trace-index";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "trace",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: // Every record of every topic, read raw (`Consumer::for_records`).
    &[],
    // The index keeps records, not aggregates.
    aggregates: &[],
    // It reads a stream's read model only to file the next record after it.
    remembers_its_read_models: true,
    store_reads: StoreReads::Seldom,
};

pub struct TraceIndex {
    deps: ServiceDeps,
}

impl TraceIndex {
    pub fn new(deps: ServiceDeps) -> Arc<TraceIndex> {
        Arc::new(TraceIndex { deps })
    }

    /// The indexer: every topic of the catalog, from the beginning.
    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        let topics = self
            .deps
            .contracts
            .topics
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        Consumer::for_records(CONSUMER_GROUP, topics, &self.deps, bus, self.clone())
    }
}
