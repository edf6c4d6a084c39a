//! The escrow service: owns the escrow aggregate, which holds an order's total
//! from authorization until it is released to the runner or refunded.
//!
//! It consumes `escrow_commands` (`hold_funds`, `release_funds`, `refund_funds`),
//! publishes `escrow_events`, and serves `/escrow`.

mod handler;
mod routes;

use std::sync::Arc;

use campusg_domain::money::Cents;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use routes::{release_to, routes};

pub const SERVICE_NAME: &str = "escrow-service";
pub const CONSUMER_GROUP: &str = "escrow-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "escrow",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: &["hold_funds", "release_funds", "refund_funds"],
    aggregates: &[AggregateKind::of::<campusg_domain::escrow::Escrow>()],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct EscrowService {
    deps: ServiceDeps,
    /// The most one order may hold.
    hold_limit: Cents,
}

impl EscrowService {
    pub fn new(deps: ServiceDeps, hold_limit: Cents) -> Arc<EscrowService> {
        Arc::new(EscrowService { deps, hold_limit })
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
