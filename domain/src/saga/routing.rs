//! Which saga a message is for: a pure decision from the message and its
//! correlation id. The orchestrator loads what [`address_of`] names; a saga
//! that does not exist yet is started only by the messages its own
//! `Observe` accepts as a start.
//!
//! Most replies carry the id of the saga that asked as their correlation id.
//! Some are about an order rather than a saga, and find their saga by the order:
//! `timer.expired` and `order.cancelled` reach the saga that placed the order
//! (it holds the money, whoever restarted the timer or asked to cancel);
//! `DELIVERED` and the payout's answers the order's one complete-order saga
//! (a runner adding an account releases a waiting payout long after); a
//! refund's answer the refund saga its refund id names.

use crate::ids::{OrderId, SagaId};
use crate::messages::Message;
use crate::order::OrderStatus;
use crate::saga::refund_order::RefundSaga;

/// Where a message goes among the sagas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SagaAddress {
    CreateOrder(SagaId),
    AcceptOrder(SagaId),
    CompleteOrder(SagaId),
    Refund(SagaId),
    /// The create-order saga under `correlated` if there is one, else the one
    /// that placed `order_id` (looked up in the saga read models).
    CreateOrderOrPlacing {
        correlated: SagaId,
        order_id: Option<OrderId>,
    },
    /// The create-order saga under this id if there is one, else the
    /// accept-order saga under it: a timer's start or stop answers whichever
    /// asked.
    CreateOrderElseAcceptOrder(SagaId),
    /// No saga waits for this message.
    Nowhere,
}

/// The message types some saga waits for: every type [`address_of`] sends
/// somewhere (keep the two in step). The orchestrator's consumer takes these.
pub const ROUTED_TYPES: &[&str] = &[
    "order.created",
    "order.creation_failed",
    "order.status_updated",
    "order.status_update_failed",
    "order.cancelled",
    "order.cancellation_failed",
    "user.payment_info_retrieved",
    "user.payment_info_failed",
    "user.payout_account_retrieved",
    "user.payout_account_missing",
    "payment.authorized",
    "payment.failed",
    "payment.voided",
    "payment.void_failed",
    "payment.captured",
    "payment.capture_failed",
    "payment.refunded",
    "payment.refund_failed",
    "payout.sent",
    "payout.waiting",
    "payout.parked",
    "escrow.funds_held",
    "escrow.hold_failed",
    "escrow.released",
    "escrow.release_failed",
    "escrow.refunded",
    "escrow.refund_failed",
    "timer.started",
    "timer.failed",
    "timer.stopped",
    "timer.expired",
];

/// The saga `message`, published under `correlated`, is for.
pub fn address_of(message: &Message, correlated: SagaId) -> SagaAddress {
    use Message as M;
    use SagaAddress as A;
    let completion_of = |order_id: OrderId| A::CompleteOrder(SagaId::for_completion(order_id));
    match message {
        M::TimerExpired(_) | M::OrderCancelled(_) => A::CreateOrderOrPlacing {
            correlated,
            order_id: message.order_id(),
        },
        M::OrderStatusUpdated(delivered) if delivered.status == OrderStatus::Delivered => {
            completion_of(delivered.order_id)
        }
        M::OrderStatusUpdated(u) if u.status == OrderStatus::Completed => A::CompleteOrder(correlated),
        M::OrderStatusUpdateFailed(f) if f.status == OrderStatus::Completed => A::CompleteOrder(correlated),
        M::PaymentCaptured(_) | M::PaymentCaptureFailed(_) | M::FundsReleased(_) | M::ReleaseFailed(_) => {
            A::CompleteOrder(correlated)
        }
        M::PayoutAccountRetrieved(m) => completion_of(m.order_id),
        M::PayoutAccountMissing(m) => completion_of(m.order_id),
        M::PayoutSent(m) => completion_of(m.order_id),
        M::PayoutWaiting(m) => completion_of(m.order_id),
        M::PayoutParked(m) => completion_of(m.order_id),
        M::PaymentRefunded(refunded) => A::Refund(RefundSaga::saga_of(refunded.refund_id)),
        M::PaymentRefundFailed(failed) => A::Refund(RefundSaga::saga_of(failed.refund_id)),
        M::OrderStatusUpdated(u) if u.status == OrderStatus::Created && u.previous_status == OrderStatus::Pending => {
            A::CreateOrder(correlated)
        }
        M::OrderStatusUpdated(_) => A::AcceptOrder(correlated),
        M::TimerStarted(_) | M::TimerFailed(_) | M::TimerStopped(_) => A::CreateOrderElseAcceptOrder(correlated),
        M::OrderCreated(_)
        | M::OrderCreationFailed(_)
        | M::OrderStatusUpdateFailed(_)
        | M::OrderCancellationFailed(_)
        | M::PaymentInfoRetrieved(_)
        | M::PaymentInfoFailed(_)
        | M::PaymentAuthorized(_)
        | M::PaymentFailed(_)
        | M::PaymentVoided(_)
        | M::PaymentVoidFailed(_)
        | M::FundsHeld(_)
        | M::HoldFailed(_)
        | M::FundsRefunded(_)
        | M::RefundFailed(_) => A::CreateOrder(correlated),
        _ => A::Nowhere,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::ids::{PaymentId, RefundId, UserId};
    use crate::messages::{OrderStatusUpdated, PaymentRefunded, PayoutWaiting};
    use crate::money::Cents;

    fn order() -> OrderId {
        OrderId(Uuid::from_u128(11))
    }

    fn correlated() -> SagaId {
        SagaId(Uuid::from_u128(99))
    }

    fn moved(previous: OrderStatus, status: OrderStatus) -> Message {
        Message::OrderStatusUpdated(OrderStatusUpdated {
            order_id: order(),
            status,
            previous_status: previous,
            runner_id: None,
            updated_at: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        })
    }

    #[rstest::rstest]
    #[case::listed(OrderStatus::Pending, OrderStatus::Created, SagaAddress::CreateOrder(correlated()))]
    #[case::accepted(OrderStatus::Created, OrderStatus::Accepted, SagaAddress::AcceptOrder(correlated()))]
    #[case::given_back(OrderStatus::Accepted, OrderStatus::Created, SagaAddress::AcceptOrder(correlated()))]
    #[case::delivered(
        OrderStatus::OnTheWay,
        OrderStatus::Delivered,
        SagaAddress::CompleteOrder(SagaId::for_completion(order()))
    )]
    #[case::completed(
        OrderStatus::Delivered,
        OrderStatus::Completed,
        SagaAddress::CompleteOrder(correlated())
    )]
    fn an_order_s_move_goes_to_the_saga_that_waits_for_it(
        #[case] previous: OrderStatus,
        #[case] status: OrderStatus,
        #[case] address: SagaAddress,
    ) {
        assert_eq!(address_of(&moved(previous, status), correlated()), address);
    }

    #[test]
    fn a_payout_s_answer_finds_the_order_s_completion_whoever_caused_it() {
        let waiting = Message::PayoutWaiting(PayoutWaiting {
            order_id: order(),
            runner_id: UserId::parse("runner_1").unwrap(),
            amount_cents: Cents(1499),
            waiting_since: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        });
        assert_eq!(
            address_of(&waiting, correlated()),
            SagaAddress::CompleteOrder(SagaId::for_completion(order()))
        );
    }

    #[test]
    fn a_refund_s_answer_finds_the_saga_its_refund_names() {
        let refund_id = RefundId(Uuid::from_u128(7));
        let refunded = Message::PaymentRefunded(PaymentRefunded {
            payment_id: PaymentId::for_order(order()),
            order_id: order(),
            customer_id: UserId::parse("cust_1").unwrap(),
            refund_id,
            amount_cents: Cents(100),
            refunded_cents: Cents(100),
            captured_cents: Cents(1499),
            reason: "late".into(),
            refunded_at: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        });
        assert_eq!(
            address_of(&refunded, correlated()),
            SagaAddress::Refund(RefundSaga::saga_of(refund_id))
        );
    }
}
