//! The order service: owns the order aggregate.
//!
//! It consumes `order_commands` (`create_order`, `update_order_status`,
//! `cancel_order`), publishes `order_events`, and serves the order queries of
//! the HTTP API. Every refusal is published as its own failure event, so the
//! saga that asked learns why. What the HTTP API needs decided at once (accept,
//! give back, cancel) goes through [`decisions`].

pub mod decisions;
mod handler;
mod routes;

use std::sync::Arc;

use campusg_domain::order::OrderRules;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use routes::{may_see, order_view, parse_order_id, routes};

/// The `source` of every message this service publishes.
pub const SERVICE_NAME: &str = "order-service";
/// The consumer group of the order service.
pub const CONSUMER_GROUP: &str = "order-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "order",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: &["create_order", "update_order_status", "cancel_order"],
    aggregates: &[AggregateKind::of::<campusg_domain::order::Order>()],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct OrderService {
    pub(crate) deps: ServiceDeps,
    rules: OrderRules,
}

impl OrderService {
    pub fn new(deps: ServiceDeps, rules: OrderRules) -> Arc<OrderService> {
        Arc::new(OrderService { deps, rules })
    }

    /// The consumer of `order_commands`.
    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
