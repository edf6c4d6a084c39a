//! The payment service: owns the payment aggregate and talks to the card
//! processor through the [`PaymentGateway`](campusg_domain::payment::PaymentGateway) port.
//!
//! It consumes `payment_commands` (`authorize_payment`, `void_payment`,
//! `capture_payment`), publishes `payment_events`, and serves `/payments`. The
//! default processor is the built-in [`sandbox::SandboxGateway`].

mod handler;
mod routes;
pub mod sandbox;

use std::sync::Arc;

use campusg_domain::payment::PaymentGateway;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::{Consumer, ConsumerConfig};
use campusg_runtime::service::ServiceDeps;

pub use routes::router;

pub const SERVICE_NAME: &str = "payment-service";
pub const CONSUMER_GROUP: &str = "payment-service";

pub struct PaymentService {
    deps: ServiceDeps,
    gateway: Arc<dyn PaymentGateway>,
}

impl PaymentService {
    pub fn new(deps: ServiceDeps, gateway: Arc<dyn PaymentGateway>) -> Arc<PaymentService> {
        Arc::new(PaymentService { deps, gateway })
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer {
            config: ConsumerConfig {
                group: CONSUMER_GROUP.to_string(),
                topics: self.deps.contracts.topics_carrying(&["authorize_payment"]),
                max_batch: 200,
            },
            bus,
            contracts: self.deps.contracts.clone(),
            clock: self.deps.clock.clone(),
            store: self.deps.store.clone(),
            handler: self.clone(),
        }
    }
}
