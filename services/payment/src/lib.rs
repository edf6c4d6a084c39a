//! The payment service: owns the payment aggregate and talks to the card
//! processor through the [`PaymentGateway`](campusg_domain::payment::PaymentGateway) port.
//!
//! It consumes `payment_commands` (`authorize_payment`, `void_payment`,
//! `capture_payment`, `refund_payment`, `pay_out_runner`, `retry_payout`) and
//! `user.payout_account_added` (which releases the payouts that waited for
//! it) and `escrow.released` (which bounds each payout), publishes `payment_events`, and serves `/payments` and `/api/payouts`.
//! The default processor is the built-in [`sandbox::SandboxGateway`].

mod handler;
mod payouts;
mod routes;
pub mod sandbox;

use std::sync::Arc;

use campusg_domain::ids::{OrderId, PaymentId};
use campusg_domain::payment::{Payment, PaymentGateway, Payout};
use campusg_runtime::aggregate::load;
use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};
use campusg_runtime::store::StoreError;

pub use payouts::PayoutRefused;
pub use routes::routes;

pub const SERVICE_NAME: &str = "payment-service";
pub const CONSUMER_GROUP: &str = "payment-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "payment",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: &[
        "authorize_payment",
        "void_payment",
        "capture_payment",
        "refund_payment",
        "pay_out_runner",
        "retry_payout",
        "user.payout_account_added",
        "escrow.released",
    ],
    aggregates: &[
        AggregateKind::of::<campusg_domain::payment::Payment>(),
        AggregateKind::of::<campusg_domain::payment::Payout>(),
        AggregateKind::of::<sandbox::ProcessorCall>(),
        AggregateKind::of::<sandbox::Charge>(),
    ],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct PaymentService {
    deps: ServiceDeps,
    gateway: Arc<dyn PaymentGateway>,
}

impl PaymentService {
    pub fn new(deps: ServiceDeps, gateway: Arc<dyn PaymentGateway>) -> Arc<PaymentService> {
        Arc::new(PaymentService { deps, gateway })
    }

    /// An order's payment as it stands, if the order has one.
    pub async fn payment_of(&self, order_id: OrderId) -> Result<Option<Payment>, StoreError> {
        let loaded = load::<Payment>(self.deps.store.as_ref(), &PaymentId::for_order(order_id).to_string()).await?;
        Ok(loaded.aggregate.payment_id.is_some().then_some(loaded.aggregate))
    }

    /// An order's payout as it stands, if the order has one.
    pub async fn payout_of(&self, order_id: OrderId) -> Result<Option<Payout>, StoreError> {
        let loaded = load::<Payout>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        Ok(loaded.aggregate.order_id.is_some().then_some(loaded.aggregate))
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
