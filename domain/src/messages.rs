//! Every message that crosses a topic: the wire contract.
//!
//! A message is a `type` and a `payload`; [`Message`] is the tagged enum of all of
//! them, so `{"type": "order.created", "payload": {...}}` deserializes straight into
//! `Message::OrderCreated`. The envelope around it (id, correlation id, timestamp...)
//! belongs to the runtime, not to the domain.
//!
//! Commands are imperative snake_case (`authorize_payment`), events are
//! `<aggregate>.<past_tense>` (`payment.authorized`), and every failure has its own
//! event type. The names the seeds use are kept so that their hand-written
//! messages work unchanged. `schemas/<type>.json` holds the JSON Schema of each
//! payload; changing a struct here changes the contract, so change the schema too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{EscrowId, OrderId, PaymentId, RefundId, SagaId, TimerId, UserId};
use crate::money::{Cents, DecimalAmount};
use crate::order::OrderStatus;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum Message {
    // Order service.
    #[serde(rename = "create_order")]
    CreateOrder(CreateOrder),
    #[serde(rename = "update_order_status")]
    UpdateOrderStatus(UpdateOrderStatus),
    #[serde(rename = "cancel_order")]
    CancelOrder(CancelOrder),
    #[serde(rename = "order.created")]
    OrderCreated(OrderCreated),
    #[serde(rename = "order.creation_failed")]
    OrderCreationFailed(OrderCreationFailed),
    #[serde(rename = "order.status_updated")]
    OrderStatusUpdated(OrderStatusUpdated),
    #[serde(rename = "order.status_update_failed")]
    OrderStatusUpdateFailed(OrderStatusUpdateFailed),
    #[serde(rename = "order.cancelled")]
    OrderCancelled(OrderCancelled),
    #[serde(rename = "order.cancellation_failed")]
    OrderCancellationFailed(OrderCancellationFailed),

    // User service.
    #[serde(rename = "create_user")]
    CreateUser(CreateUser),
    #[serde(rename = "update_user")]
    UpdateUser(UpdateUser),
    #[serde(rename = "get_payment_info")]
    GetPaymentInfo(GetPaymentInfo),
    #[serde(rename = "user.created")]
    UserCreated(UserCreated),
    #[serde(rename = "user.updated")]
    UserUpdated(UserUpdated),
    #[serde(rename = "user.payment_info_retrieved")]
    PaymentInfoRetrieved(PaymentInfoRetrieved),
    #[serde(rename = "user.payment_info_failed")]
    PaymentInfoFailed(PaymentInfoFailed),
    #[serde(rename = "get_payout_account")]
    GetPayoutAccount(GetPayoutAccount),
    #[serde(rename = "user.payout_account_retrieved")]
    PayoutAccountRetrieved(PayoutAccountRetrieved),
    #[serde(rename = "user.payout_account_missing")]
    PayoutAccountMissing(PayoutAccountMissing),
    #[serde(rename = "user.payout_account_added")]
    PayoutAccountAdded(PayoutAccountAdded),
    #[serde(rename = "rate_user")]
    RateUser(RateUser),
    #[serde(rename = "user.rated")]
    UserRated(UserRated),

    // Payment service.
    #[serde(rename = "authorize_payment")]
    AuthorizePayment(AuthorizePayment),
    #[serde(rename = "void_payment")]
    VoidPayment(VoidPayment),
    #[serde(rename = "capture_payment")]
    CapturePayment(CapturePayment),
    #[serde(rename = "payment.authorized")]
    PaymentAuthorized(PaymentAuthorized),
    #[serde(rename = "payment.failed")]
    PaymentFailed(PaymentFailed),
    #[serde(rename = "payment.voided")]
    PaymentVoided(PaymentVoided),
    #[serde(rename = "payment.void_failed")]
    PaymentVoidFailed(PaymentOperationFailed),
    #[serde(rename = "payment.captured")]
    PaymentCaptured(PaymentCaptured),
    #[serde(rename = "payment.capture_failed")]
    PaymentCaptureFailed(PaymentOperationFailed),
    #[serde(rename = "refund_payment")]
    RefundPayment(RefundPayment),
    #[serde(rename = "payment.refunded")]
    PaymentRefunded(PaymentRefunded),
    #[serde(rename = "payment.refund_failed")]
    PaymentRefundFailed(PaymentRefundFailed),

    #[serde(rename = "pay_out_runner")]
    PayOutRunner(PayOutRunner),
    #[serde(rename = "retry_payout")]
    RetryPayout(RetryPayout),
    #[serde(rename = "payout.sent")]
    PayoutSent(PayoutSent),
    #[serde(rename = "payout.waiting")]
    PayoutWaiting(PayoutWaiting),
    #[serde(rename = "payout.declined")]
    PayoutDeclined(PayoutDeclined),
    #[serde(rename = "payout.parked")]
    PayoutParked(PayoutParked),
    // Escrow service.
    #[serde(rename = "hold_funds")]
    HoldFunds(HoldFunds),
    #[serde(rename = "release_funds")]
    ReleaseFunds(ReleaseFunds),
    #[serde(rename = "refund_funds")]
    RefundFunds(RefundFunds),
    #[serde(rename = "escrow.funds_held")]
    FundsHeld(FundsHeld),
    #[serde(rename = "escrow.hold_failed")]
    HoldFailed(EscrowOperationFailed),
    #[serde(rename = "escrow.released")]
    FundsReleased(FundsReleased),
    #[serde(rename = "escrow.release_failed")]
    ReleaseFailed(EscrowOperationFailed),
    #[serde(rename = "escrow.refunded")]
    FundsRefunded(FundsRefunded),
    #[serde(rename = "escrow.refund_failed")]
    RefundFailed(EscrowOperationFailed),

    // Timer service.
    #[serde(rename = "start_order_timer")]
    StartOrderTimer(StartOrderTimer),
    #[serde(rename = "stop_order_timer")]
    StopOrderTimer(StopOrderTimer),
    #[serde(rename = "timer.started")]
    TimerStarted(TimerStarted),
    #[serde(rename = "timer.failed")]
    TimerFailed(TimerFailed),
    #[serde(rename = "timer.cancelled")]
    TimerCancelled(TimerCancelled),
    #[serde(rename = "timer.stopped")]
    TimerStopped(TimerStopped),
    #[serde(rename = "timer.expired")]
    TimerExpired(TimerExpired),

    // Notification service.
    #[serde(rename = "notification.created")]
    NotificationCreated(NotificationCreated),

    // Sagas: their progress, published for dashboards, streams and `trace`.
    #[serde(rename = "saga.started")]
    SagaStarted(SagaUpdate),
    #[serde(rename = "saga.step_completed")]
    SagaStepCompleted(SagaUpdate),
    #[serde(rename = "saga.compensating")]
    SagaCompensating(SagaUpdate),
    #[serde(rename = "saga.completed")]
    SagaCompleted(SagaUpdate),
    #[serde(rename = "saga.compensated")]
    SagaCompensated(SagaUpdate),
    #[serde(rename = "saga.failed")]
    SagaFailed(SagaUpdate),
    #[serde(rename = "saga.cancelling")]
    SagaCancelling(SagaUpdate),
    #[serde(rename = "saga.cancelled")]
    SagaCancelled(SagaUpdate),
    /// A saga refused a reply that disagreed with its state; `error` says why.
    /// Operators are told (SPEC section 11).
    #[serde(rename = "saga.anomaly_recorded")]
    SagaAnomalyRecorded(SagaUpdate),
}

impl Message {
    /// The `type` this message carries on the wire.
    pub fn message_type(&self) -> &'static str {
        match self {
            Message::CreateOrder(_) => "create_order",
            Message::UpdateOrderStatus(_) => "update_order_status",
            Message::CancelOrder(_) => "cancel_order",
            Message::OrderCreated(_) => "order.created",
            Message::OrderCreationFailed(_) => "order.creation_failed",
            Message::OrderStatusUpdated(_) => "order.status_updated",
            Message::OrderStatusUpdateFailed(_) => "order.status_update_failed",
            Message::OrderCancelled(_) => "order.cancelled",
            Message::OrderCancellationFailed(_) => "order.cancellation_failed",
            Message::CreateUser(_) => "create_user",
            Message::UpdateUser(_) => "update_user",
            Message::GetPaymentInfo(_) => "get_payment_info",
            Message::UserCreated(_) => "user.created",
            Message::UserUpdated(_) => "user.updated",
            Message::PaymentInfoRetrieved(_) => "user.payment_info_retrieved",
            Message::PaymentInfoFailed(_) => "user.payment_info_failed",
            Message::GetPayoutAccount(_) => "get_payout_account",
            Message::PayoutAccountRetrieved(_) => "user.payout_account_retrieved",
            Message::PayoutAccountMissing(_) => "user.payout_account_missing",
            Message::PayoutAccountAdded(_) => "user.payout_account_added",
            Message::RateUser(_) => "rate_user",
            Message::UserRated(_) => "user.rated",
            Message::AuthorizePayment(_) => "authorize_payment",
            Message::VoidPayment(_) => "void_payment",
            Message::CapturePayment(_) => "capture_payment",
            Message::PaymentAuthorized(_) => "payment.authorized",
            Message::PaymentFailed(_) => "payment.failed",
            Message::PaymentVoided(_) => "payment.voided",
            Message::PaymentVoidFailed(_) => "payment.void_failed",
            Message::PaymentCaptured(_) => "payment.captured",
            Message::PaymentCaptureFailed(_) => "payment.capture_failed",
            Message::RefundPayment(_) => "refund_payment",
            Message::PaymentRefunded(_) => "payment.refunded",
            Message::PaymentRefundFailed(_) => "payment.refund_failed",
            Message::PayOutRunner(_) => "pay_out_runner",
            Message::RetryPayout(_) => "retry_payout",
            Message::PayoutSent(_) => "payout.sent",
            Message::PayoutWaiting(_) => "payout.waiting",
            Message::PayoutDeclined(_) => "payout.declined",
            Message::PayoutParked(_) => "payout.parked",
            Message::HoldFunds(_) => "hold_funds",
            Message::ReleaseFunds(_) => "release_funds",
            Message::RefundFunds(_) => "refund_funds",
            Message::FundsHeld(_) => "escrow.funds_held",
            Message::HoldFailed(_) => "escrow.hold_failed",
            Message::FundsReleased(_) => "escrow.released",
            Message::ReleaseFailed(_) => "escrow.release_failed",
            Message::FundsRefunded(_) => "escrow.refunded",
            Message::RefundFailed(_) => "escrow.refund_failed",
            Message::StartOrderTimer(_) => "start_order_timer",
            Message::StopOrderTimer(_) => "stop_order_timer",
            Message::TimerStarted(_) => "timer.started",
            Message::TimerFailed(_) => "timer.failed",
            Message::TimerCancelled(_) => "timer.cancelled",
            Message::TimerStopped(_) => "timer.stopped",
            Message::TimerExpired(_) => "timer.expired",
            Message::NotificationCreated(_) => "notification.created",
            Message::SagaStarted(_) => "saga.started",
            Message::SagaStepCompleted(_) => "saga.step_completed",
            Message::SagaCompensating(_) => "saga.compensating",
            Message::SagaCompleted(_) => "saga.completed",
            Message::SagaCompensated(_) => "saga.compensated",
            Message::SagaFailed(_) => "saga.failed",
            Message::SagaCancelling(_) => "saga.cancelling",
            Message::SagaCancelled(_) => "saga.cancelled",
            Message::SagaAnomalyRecorded(_) => "saga.anomaly_recorded",
        }
    }

    /// The order this message is about, which is also its record key: one order's
    /// messages stay in order within each topic.
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Message::CreateOrder(m) => m.order_id,
            Message::UpdateOrderStatus(m) => Some(m.order_id),
            Message::CancelOrder(m) => Some(m.order_id),
            Message::OrderCreated(m) => Some(m.order_id),
            Message::OrderCreationFailed(m) => Some(m.order_id),
            Message::OrderStatusUpdated(m) => Some(m.order_id),
            Message::OrderStatusUpdateFailed(m) => Some(m.order_id),
            Message::OrderCancelled(m) => Some(m.order_id),
            Message::OrderCancellationFailed(m) => Some(m.order_id),
            Message::CreateUser(_) | Message::UpdateUser(_) => None,
            Message::UserCreated(_) | Message::UserUpdated(_) => None,
            Message::GetPaymentInfo(m) => m.order_id,
            Message::PaymentInfoRetrieved(m) => m.order_id,
            Message::PaymentInfoFailed(m) => m.order_id,
            Message::GetPayoutAccount(m) => Some(m.order_id),
            Message::PayoutAccountRetrieved(m) => Some(m.order_id),
            Message::PayoutAccountMissing(m) => Some(m.order_id),
            Message::PayoutAccountAdded(_) => None,
            Message::RateUser(m) => Some(m.order_id),
            Message::UserRated(m) => Some(m.order_id),
            Message::NotificationCreated(m) => m.order_id,
            Message::AuthorizePayment(m) => Some(m.order_id),
            Message::VoidPayment(m) => Some(m.order_id),
            Message::CapturePayment(m) => Some(m.order_id),
            Message::PaymentAuthorized(m) => Some(m.order_id),
            Message::PaymentFailed(m) => Some(m.order_id),
            Message::PaymentVoided(m) => Some(m.order_id),
            Message::PaymentCaptured(m) => Some(m.order_id),
            Message::PaymentVoidFailed(m) | Message::PaymentCaptureFailed(m) => Some(m.order_id),
            Message::RefundPayment(m) => Some(m.order_id),
            Message::PaymentRefunded(m) => Some(m.order_id),
            Message::PaymentRefundFailed(m) => Some(m.order_id),
            Message::PayOutRunner(m) => Some(m.order_id),
            Message::RetryPayout(m) => Some(m.order_id),
            Message::PayoutSent(m) => Some(m.order_id),
            Message::PayoutWaiting(m) => Some(m.order_id),
            Message::PayoutDeclined(m) => Some(m.order_id),
            Message::PayoutParked(m) => Some(m.order_id),
            Message::HoldFunds(m) => Some(m.order_id),
            Message::ReleaseFunds(m) => Some(m.order_id),
            Message::RefundFunds(m) => Some(m.order_id),
            Message::FundsHeld(m) => Some(m.order_id),
            Message::FundsReleased(m) => Some(m.order_id),
            Message::FundsRefunded(m) => Some(m.order_id),
            Message::HoldFailed(m) | Message::ReleaseFailed(m) | Message::RefundFailed(m) => Some(m.order_id),
            Message::StartOrderTimer(m) => Some(m.order_id),
            Message::StopOrderTimer(m) => Some(m.order_id),
            Message::TimerStarted(m) => m.order_id,
            Message::TimerFailed(m) => m.order_id,
            Message::TimerCancelled(m) => m.order_id,
            Message::TimerStopped(m) => Some(m.order_id),
            Message::TimerExpired(m) => m.order_id,
            Message::SagaStarted(m)
            | Message::SagaStepCompleted(m)
            | Message::SagaCompensating(m)
            | Message::SagaCompleted(m)
            | Message::SagaCompensated(m)
            | Message::SagaFailed(m)
            | Message::SagaCancelling(m)
            | Message::SagaCancelled(m)
            | Message::SagaAnomalyRecorded(m) => Some(m.order_id),
        }
    }

    /// The user a message is about, the record key of messages with no order.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Message::CreateUser(m) => Some(&m.user_id),
            Message::UpdateUser(m) => Some(&m.user_id),
            Message::UserCreated(m) => Some(&m.user_id),
            Message::UserUpdated(m) => Some(&m.user_id),
            Message::PayoutAccountAdded(m) => Some(&m.runner_id),
            Message::NotificationCreated(m) => Some(&m.user_id),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Orders

/// One line of an order as the customer wrote it (the seeds' `foodItems`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoodItemRequest {
    pub name: String,
    pub price: DecimalAmount,
    pub quantity: i64,
}

/// The order as the customer wrote it, in the seeds' shape and field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetails {
    pub food_items: Vec<FoodItemRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_location: Option<String>,
    pub delivery_location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_fee: Option<DecimalAmount>,
}

/// Create an order in `PENDING`. `order_id` may be left out of a hand-written
/// command; it is then derived from the correlation id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    pub customer_id: UserId,
    pub order_details: OrderDetails,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateOrderStatus {
    pub order_id: OrderId,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<UserId>,
}

/// Cancel an order. Who asks decides what may be cancelled: the customer only
/// before a runner accepts, a timeout only an order still waiting for a runner
/// since `expected_created_at`, the system (an operator, or a saga undoing its
/// work) anything the status table allows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub order_id: OrderId,
    pub reason: String,
    #[serde(default)]
    pub requested_by: CancelRequester,
    /// For a timeout: when the order entered `CREATED` as the timer knew it. An
    /// order that went back to `CREATED` since (a runner gave it back) has a
    /// fresh timer, and this stale one must not cancel it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_created_at: Option<DateTime<Utc>>,
}

/// Who asked for a cancellation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelRequester {
    Customer,
    Timeout,
    /// An operator, or a saga's compensation.
    #[default]
    System,
}

impl CancelRequester {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelRequester::Customer => "customer",
            CancelRequester::Timeout => "timeout",
            CancelRequester::System => "system",
        }
    }
}

/// One line of an order, priced in cents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub name: String,
    pub price_cents: Cents,
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub items: Vec<OrderItem>,
    pub store_location: Option<String>,
    pub delivery_location: String,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    pub total_cents: Cents,
    pub currency: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderCreationFailed {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusUpdated {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub previous_status: OrderStatus,
    pub runner_id: Option<UserId>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderStatusUpdateFailed {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: OrderId,
    pub previous_status: OrderStatus,
    pub reason: String,
    #[serde(default)]
    pub requested_by: CancelRequester,
    pub cancelled_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderCancellationFailed {
    pub order_id: OrderId,
    pub reason: String,
}

// ---------------------------------------------------------------------------
// Users

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateUser {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_account: Option<String>,
}

/// Change some of a user's details; fields left out stay as they are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateUser {
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub payment_method: Option<String>,
    pub payout_account: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: UserId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub payment_method: Option<String>,
    pub payout_account: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetPaymentInfo {
    pub customer_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentInfoRetrieved {
    pub customer_id: UserId,
    pub order_id: Option<OrderId>,
    pub payment_method: String,
}

/// Why a user's payment details could not be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentInfoFailure {
    UserNotFound,
    NoPaymentMethod,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentInfoFailed {
    pub customer_id: UserId,
    pub order_id: Option<OrderId>,
    pub reason: PaymentInfoFailure,
    pub message: String,
}

/// Which account the runner of an order is paid to (the complete-order saga
/// asks before it pays out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GetPayoutAccount {
    pub runner_id: UserId,
    pub order_id: OrderId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccountRetrieved {
    pub runner_id: UserId,
    pub order_id: OrderId,
    pub payout_account: String,
}

/// The runner has no payout account (or does not exist): the user now awaits
/// one for the order, and announces it with [`PayoutAccountAdded`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccountMissing {
    pub runner_id: UserId,
    pub order_id: OrderId,
    pub awaited_at: DateTime<Utc>,
}

/// A runner whose payouts were waiting added a payout account: the orders
/// named may now be paid out to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccountAdded {
    pub runner_id: UserId,
    pub payout_account: String,
    pub order_ids: Vec<OrderId>,
    pub added_at: DateTime<Utc>,
}

/// The part a user played in an order: who rates whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderRole {
    Customer,
    Runner,
}

/// Rate `user_id` for the part they played in an order, 1 to 5. A user is rated
/// at most once per order and role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateUser {
    pub user_id: UserId,
    pub order_id: OrderId,
    pub role: OrderRole,
    pub score: u8,
    pub rated_by: UserId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRated {
    pub user_id: UserId,
    pub order_id: OrderId,
    pub role: OrderRole,
    pub score: u8,
    pub rated_by: UserId,
    /// The user's average rating in this role, with this one.
    pub average: f64,
    pub ratings: u32,
    pub rated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// Payments

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizePayment {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    #[serde(default = "default_currency")]
    pub currency: String,
    pub payment_method: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoidPayment {
    pub order_id: OrderId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapturePayment {
    pub order_id: OrderId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    pub currency: String,
    pub payment_method: String,
    pub gateway_reference: String,
    pub authorized_at: DateTime<Utc>,
}

/// Why a card processor refused to authorize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
    UnknownPaymentMethod,
}

/// The authorization was refused; the payment ends `FAILED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    pub reason: DeclineReason,
    pub message: String,
    pub failed_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount_cents: Cents,
    pub reason: String,
    pub voided_at: DateTime<Utc>,
    /// Whose card hold was released (see [`PaymentCaptured::customer_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<UserId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount_cents: Cents,
    pub captured_at: DateTime<Utc>,
    /// Whose card was charged: the receipt's recipient, whatever else the
    /// reader has seen of the order (on Kafka, an order's payment events may
    /// be read before its order events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<UserId>,
}

/// Return part or all of an order's captured payment to the customer's card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundPayment {
    pub order_id: OrderId,
    pub refund_id: RefundId,
    pub amount_cents: Cents,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub refund_id: RefundId,
    pub amount_cents: Cents,
    /// Everything refunded of the payment so far, this refund included.
    pub refunded_cents: Cents,
    /// What was captured: the most that can ever be refunded.
    pub captured_cents: Cents,
    pub reason: String,
    pub refunded_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefundFailed {
    pub order_id: OrderId,
    pub refund_id: RefundId,
    pub amount_cents: Cents,
    pub reason: String,
}

/// Pay the runner of an order what the escrow released to them, to
/// `payout_account`; without one the payout waits for the runner to add one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayOutRunner {
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_account: Option<String>,
}

/// An operator's retry of a parked payout, to `payout_account` when given
/// (the runner's current one), else to the account it was declined by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPayout {
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutSent {
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub payout_account: String,
    /// The processor's reference of the transfer.
    pub reference: String,
    pub attempt: u32,
    pub sent_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutWaiting {
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub waiting_since: DateTime<Utc>,
}

/// The processor declined one attempt; it is tried again, up to a bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutDeclined {
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub payout_account: String,
    pub attempt: u32,
    pub reason: String,
    pub declined_at: DateTime<Utc>,
}

/// Every attempt was declined: the payout waits for an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutParked {
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub attempts: u32,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
}

/// A void or capture that could not be done, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentOperationFailed {
    pub order_id: OrderId,
    pub reason: String,
}

// ---------------------------------------------------------------------------
// Escrow

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldFunds {
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    #[serde(default = "default_currency")]
    pub currency: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseFunds {
    pub order_id: OrderId,
    pub runner_id: UserId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefundFunds {
    pub order_id: OrderId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundsHeld {
    pub escrow_id: EscrowId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    pub currency: String,
    pub held_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundsReleased {
    pub escrow_id: EscrowId,
    pub order_id: OrderId,
    pub runner_id: UserId,
    pub amount_cents: Cents,
    pub released_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundsRefunded {
    pub escrow_id: EscrowId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount_cents: Cents,
    pub reason: String,
    pub refunded_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EscrowOperationFailed {
    pub order_id: OrderId,
    pub reason: String,
}

// ---------------------------------------------------------------------------
// Timers

/// The timer type of the window in which a runner must accept an order.
pub const ORDER_ACCEPTANCE_TIMER: &str = "order_acceptance";

/// Start an order's acceptance timer. It runs for `delay_seconds`, or the
/// configured acceptance window (30 minutes by default) when left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartOrderTimer {
    pub order_id: OrderId,
    /// When the order entered `CREATED`; the expiry carries it back so that a
    /// stale timer cannot cancel an order that was given back and re-listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<i64>,
}

/// Stop every pending acceptance timer of an order (a runner accepted it, or it
/// was cancelled). Answered by one `timer.stopped`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopOrderTimer {
    pub order_id: OrderId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerStarted {
    pub timer_id: TimerId,
    pub timer_type: String,
    pub entity_id: String,
    pub order_id: Option<OrderId>,
    pub due_at: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimerFailed {
    pub order_id: Option<OrderId>,
    pub reason: String,
}

/// One timer was cancelled before it fell due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerCancelled {
    pub timer_id: TimerId,
    pub timer_type: String,
    pub entity_id: String,
    pub order_id: Option<OrderId>,
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

/// The answer to `stop_order_timer`: the timers it cancelled, none when every
/// timer of the order had already fired or been cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerStopped {
    pub order_id: OrderId,
    pub timer_type: String,
    pub timer_ids: Vec<TimerId>,
    pub stopped_at: DateTime<Utc>,
}

/// A timer fell due and fired, once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerExpired {
    pub timer_id: TimerId,
    pub timer_type: String,
    pub entity_id: String,
    pub order_id: Option<OrderId>,
    pub due_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

impl TimerExpired {
    /// When the order entered `CREATED`, for an acceptance timer that knows it.
    pub fn order_created_at(&self) -> Option<DateTime<Utc>> {
        self.payload
            .get("order_created_at")
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}

// ---------------------------------------------------------------------------
// Notifications

/// A message for a person about their order, kept for them to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub notification_id: uuid::Uuid,
    pub user_id: UserId,
    pub order_id: Option<OrderId>,
    /// What happened, e.g. `order_accepted`, `receipt`.
    pub kind: String,
    pub title: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// Sagas

/// Where a saga stands after one of its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SagaUpdate {
    pub saga_id: SagaId,
    pub saga_type: String,
    pub order_id: OrderId,
    pub status: String,
    pub step: String,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// When the saga started: what its step latency is measured from. Absent
    /// from updates published before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
}

fn default_currency() -> String {
    crate::money::DEFAULT_CURRENCY.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_create_order_payload_reads_as_a_command() {
        let wire = serde_json::json!({
            "type": "create_order",
            "payload": {
                "customer_id": "cust_123",
                "order_details": {
                    "foodItems": [{"name": "Burger", "price": 12.99, "quantity": 1}],
                    "deliveryLocation": "North Campus"
                }
            }
        });
        let message: Message = serde_json::from_value(wire).unwrap();
        let Message::CreateOrder(command) = message else {
            panic!("not create_order")
        };
        assert_eq!(command.order_details.food_items[0].price.to_cents(), Ok(Cents(1299)));
        assert_eq!(command.order_id, None);
    }

    #[test]
    fn message_type_is_the_serde_tag() {
        let message = Message::CapturePayment(CapturePayment {
            order_id: OrderId(uuid::Uuid::nil()),
        });
        let wire = serde_json::to_value(&message).unwrap();
        assert_eq!(wire["type"], message.message_type());
    }
}
