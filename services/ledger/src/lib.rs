//! The ledger service: posts every money event of an order to its
//! double-entry ledger ([`campusg_domain::ledger`]), apart from the services
//! that moved the money, so that `campusg ledger check` can hold one against
//! the other.
//!
//! It consumes `payment_events` (authorized, voided, captured, refunded, payout
//! sent) and `escrow_events` (released), keeps one `order_ledger` per order in
//! its own store, and serves `GET /api/ledger?order_id=`.

pub mod check;
mod handler;
mod routes;

use std::sync::Arc;

use campusg_domain::ids::OrderId;
use campusg_domain::ledger::OrderLedger;
use campusg_runtime::aggregate::load_from_read_model;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};
use campusg_runtime::store::StoreError;

pub use routes::routes;

pub const SERVICE_NAME: &str = "ledger-service";
pub const CONSUMER_GROUP: &str = "ledger-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "ledger",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: campusg_domain::ledger::POSTED_TYPES,
    aggregates: &[AggregateKind::of::<campusg_domain::ledger::OrderLedger>()],
    remembers_its_read_models: false,
    store_reads: StoreReads::Seldom,
};

pub struct LedgerService {
    deps: ServiceDeps,
}

impl LedgerService {
    pub fn new(deps: ServiceDeps) -> Arc<LedgerService> {
        Arc::new(LedgerService { deps })
    }

    /// An order's ledger, if anything was posted for it.
    pub async fn ledger_of(&self, order_id: OrderId) -> Result<Option<OrderLedger>, StoreError> {
        let loaded = load_from_read_model::<OrderLedger>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        Ok(loaded.aggregate.order_id.is_some().then_some(loaded.aggregate))
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
