//! The saga orchestrator: runs the create-order, accept-order and complete-order
//! sagas over the event topics.
//!
//! Each saga instance is an event-sourced aggregate keyed by its saga id (the
//! correlation id of every message it causes). The orchestrator consumes
//! `order_events`, `user_events`, `payment_events`, `escrow_events` and
//! `timer_events`; for each message it loads the saga the message belongs to
//! (see [`handler`] for how that is found), lets the saga react
//! ([`campusg_domain::saga::Saga::react`]), and commits the saga's new events
//! together with the commands they cause, in one unit.
//!
//! It also serves `POST /api/orders` (which starts a saga) and `/api/sagas`.

pub mod handler;
mod routes;
mod stream;
pub mod views;

use std::sync::Arc;

use campusg_domain::order::OrderRules;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use routes::{parse_saga_id, routes};

pub const SERVICE_NAME: &str = "saga-orchestrator";
pub const CONSUMER_GROUP: &str = "create-order-saga";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "sagas",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: campusg_domain::saga::routing::ROUTED_TYPES,
    aggregates: &[
        AggregateKind::of::<campusg_domain::saga::create_order::CreateOrderSaga>(),
        AggregateKind::of::<campusg_domain::saga::accept_order::AcceptOrderSaga>(),
        AggregateKind::of::<campusg_domain::saga::complete_order::CompleteOrderSaga>(),
        AggregateKind::of::<campusg_domain::saga::refund_order::RefundSaga>(),
    ],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct SagaOrchestrator {
    deps: ServiceDeps,
    /// The rules `POST /api/orders` checks before it starts a saga.
    rules: OrderRules,
    /// How many update streams each caller holds open.
    open_streams: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl SagaOrchestrator {
    pub fn new(deps: ServiceDeps, rules: OrderRules) -> Arc<SagaOrchestrator> {
        Arc::new(SagaOrchestrator {
            deps,
            rules,
            open_streams: Default::default(),
        })
    }

    fn open_streams(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        // Counting is plain arithmetic: a poisoned lock still holds whole counts.
        self.open_streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The clock the orchestrator reads.
    pub fn clock(&self) -> Arc<dyn campusg_runtime::clock::Clock> {
        self.deps.clock.clone()
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
