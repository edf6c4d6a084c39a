//! What has happened to an order. Each event is stored in the order's stream and
//! published, as it is, on `order_events`.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::messages::{Message, OrderCancelled, OrderCreated, OrderStatusUpdated};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum OrderEvent {
    #[serde(rename = "order.created")]
    Created(OrderCreated),
    #[serde(rename = "order.status_updated")]
    StatusUpdated(OrderStatusUpdated),
    #[serde(rename = "order.cancelled")]
    Cancelled(OrderCancelled),
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        Message::from(self.clone()).message_type().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl From<OrderEvent> for Message {
    fn from(event: OrderEvent) -> Message {
        match event {
            OrderEvent::Created(e) => Message::OrderCreated(e),
            OrderEvent::StatusUpdated(e) => Message::OrderStatusUpdated(e),
            OrderEvent::Cancelled(e) => Message::OrderCancelled(e),
        }
    }
}
