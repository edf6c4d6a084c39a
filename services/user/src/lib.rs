//! The user service: owns the user aggregate (customers and runners, their saved
//! payment method and payout account).
//!
//! It consumes `user_commands` (`create_user`, `update_user`, `get_payment_info`),
//! publishes `user_events`, and serves `/users`.

mod handler;
mod routes;

use std::sync::Arc;

use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use handler::CommandError;
pub use routes::{routes, PUBLIC_FIELDS};

pub const SERVICE_NAME: &str = "user-service";
pub const CONSUMER_GROUP: &str = "user-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "user",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: &[
        "create_user",
        "update_user",
        "rate_user",
        "get_payment_info",
        "get_payout_account",
    ],
    aggregates: &[AggregateKind::of::<campusg_domain::user::User>()],
    remembers_its_read_models: false,
    store_reads: StoreReads::Often,
};

pub struct UserService {
    deps: ServiceDeps,
}

impl UserService {
    pub fn new(deps: ServiceDeps) -> Arc<UserService> {
        Arc::new(UserService { deps })
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
