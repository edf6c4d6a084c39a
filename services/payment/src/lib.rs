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
use campusg_runtime::consumer::Consumer;
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
        Consumer::for_service(CONSUMER_GROUP, &["authorize_payment"], &self.deps, bus, self.clone())
    }
}
