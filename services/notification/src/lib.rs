//! The notification service: tells customers and runners what happens to their
//! orders.
//!
//! It consumes the event topics (`order_events`, `payment_events`,
//! `escrow_events`) and, for each event, creates the notifications
//! [`campusg_domain::notification::compose`] decides, each published as
//! `notification.created` on `notification_events`. An event's notification
//! ids are derived from the event's id and the recipient, so an event delivered
//! twice makes one notification per recipient. Who an order's customer and
//! runner are is learned from the order's own events and kept per order.
//!
//! It serves `POST /api/notifications/send`, `GET /api/notifications/user/{id}`
//! (newest first, with unread state), `GET /api/notifications/order/{id}` and
//! `POST /api/notifications/{id}/read`.

mod handler;
mod routes;

use std::sync::Arc;

use campusg_runtime::bus::MessageBus;
use campusg_runtime::consumer::Consumer;
use campusg_runtime::service::{AggregateKind, ServiceDeps, ServiceDescription, StoreReads};

pub use routes::routes;

pub const SERVICE_NAME: &str = "notification-service";
pub const CONSUMER_GROUP: &str = "notification-service";

/// The service as start-up, `campusg replay` and the tests know it.
pub const DESCRIPTION: ServiceDescription = ServiceDescription {
    name: "notification",
    source: SERVICE_NAME,
    consumer_group: CONSUMER_GROUP,
    handles: campusg_domain::notification::NOTIFIED_TYPES,
    aggregates: &[
        AggregateKind::of::<campusg_domain::notification::Notification>(),
        AggregateKind::of::<campusg_domain::notification::OrderParties>(),
    ],
    remembers_its_read_models: false,
    store_reads: StoreReads::Seldom,
};

pub struct NotificationService {
    deps: ServiceDeps,
}

impl NotificationService {
    pub fn new(deps: ServiceDeps) -> Arc<NotificationService> {
        Arc::new(NotificationService { deps })
    }

    pub fn consumer(self: &Arc<Self>, bus: Arc<dyn MessageBus>) -> Consumer {
        Consumer::for_service(&DESCRIPTION, &self.deps, bus, self.clone())
    }
}
