//! The answer a refused order command gets. A command repeated after it
//! succeeded (a saga's retry, a redelivery) is answered as the first time, so
//! whoever waits for the answer is not left waiting; any other refusal is
//! answered with its failure event and the reason.

use chrono::{DateTime, Utc};

use crate::ids::OrderId;
use crate::messages::{Message, OrderCancellationFailed, OrderCancelled, OrderStatusUpdateFailed, OrderStatusUpdated};

use super::{Order, OrderError, OrderStatus};

impl Order {
    /// The answer to a refused `update_order_status` for `asked`, at `now`.
    pub fn status_change_refused(
        &self,
        order_id: OrderId,
        asked: OrderStatus,
        refusal: OrderError,
        now: DateTime<Utc>,
    ) -> Message {
        match refusal {
            OrderError::AlreadyInStatus(status) => Message::OrderStatusUpdated(OrderStatusUpdated {
                order_id,
                status,
                previous_status: self.previous_status.unwrap_or(status),
                runner_id: self.runner_id.clone(),
                updated_at: self.status_times.get(&status).copied().unwrap_or(now),
            }),
            refusal => Message::OrderStatusUpdateFailed(OrderStatusUpdateFailed {
                order_id,
                status: asked,
                reason: refusal.to_string(),
            }),
        }
    }

    /// The answer to a refused `cancel_order` that gave `asked_reason`, at `now`.
    pub fn cancellation_refused(
        &self,
        order_id: OrderId,
        asked_reason: String,
        refusal: OrderError,
        now: DateTime<Utc>,
    ) -> Message {
        match refusal {
            OrderError::AlreadyCancelled => Message::OrderCancelled(OrderCancelled {
                order_id,
                previous_status: self.previous_status.unwrap_or(OrderStatus::Cancelled),
                reason: self.cancellation_reason.clone().unwrap_or(asked_reason),
                requested_by: self.cancellation_requested_by.unwrap_or_default(),
                cancelled_at: self.status_times.get(&OrderStatus::Cancelled).copied().unwrap_or(now),
            }),
            refusal => Message::OrderCancellationFailed(OrderCancellationFailed {
                order_id,
                reason: refusal.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::UserId;
    use crate::messages::CancelRequester;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, minute, 0).unwrap()
    }

    fn id() -> OrderId {
        OrderId(uuid::Uuid::from_u128(7))
    }

    /// Given an order accepted at minute 1 by `runner`.
    fn accepted() -> Order {
        Order {
            status: Some(OrderStatus::Accepted),
            previous_status: Some(OrderStatus::Created),
            runner_id: Some(UserId::parse("runner").unwrap()),
            status_times: [(OrderStatus::Accepted, at(1))].into(),
            ..Order::default()
        }
    }

    #[test]
    fn a_status_asked_for_again_is_answered_as_the_first_time() {
        let answer = accepted().status_change_refused(
            id(),
            OrderStatus::Accepted,
            OrderError::AlreadyInStatus(OrderStatus::Accepted),
            at(9),
        );
        assert_eq!(
            answer,
            Message::OrderStatusUpdated(OrderStatusUpdated {
                order_id: id(),
                status: OrderStatus::Accepted,
                previous_status: OrderStatus::Created,
                runner_id: Some(UserId::parse("runner").unwrap()),
                updated_at: at(1),
            })
        );
    }

    #[test]
    fn any_other_refused_status_is_answered_with_the_failure_and_its_reason() {
        let refusal = OrderError::NotTheAssignedRunner(UserId::parse("other").unwrap());
        let reason = refusal.to_string();
        let answer = accepted().status_change_refused(id(), OrderStatus::OnSite, refusal, at(9));
        assert_eq!(
            answer,
            Message::OrderStatusUpdateFailed(OrderStatusUpdateFailed {
                order_id: id(),
                status: OrderStatus::OnSite,
                reason,
            })
        );
    }

    #[test]
    fn a_cancellation_asked_for_again_is_answered_with_the_first_one() {
        let cancelled = Order {
            status: Some(OrderStatus::Cancelled),
            previous_status: Some(OrderStatus::Created),
            cancellation_reason: Some("changed my mind".into()),
            cancellation_requested_by: Some(CancelRequester::Customer),
            status_times: [(OrderStatus::Cancelled, at(2))].into(),
            ..Order::default()
        };
        let answer = cancelled.cancellation_refused(id(), "timeout".into(), OrderError::AlreadyCancelled, at(9));
        assert_eq!(
            answer,
            Message::OrderCancelled(OrderCancelled {
                order_id: id(),
                previous_status: OrderStatus::Created,
                reason: "changed my mind".into(),
                requested_by: CancelRequester::Customer,
                cancelled_at: at(2),
            })
        );
        let refused = accepted().cancellation_refused(id(), "late".into(), OrderError::AlreadyPlaced, at(9));
        assert!(matches!(refused, Message::OrderCancellationFailed(_)), "{refused:?}");
    }
}
