//! The create-order saga (SPEC section 7).
//!
//! Steps: 1 create the order (`PENDING`), 2 get the customer's payment method,
//! 3 authorize the payment (the pivot), 4 hold the total in escrow, 5 mark the
//! order `CREATED`, 6 start the acceptance timer. Then the saga is `COMPLETED`.
//!
//! Compensations: no user or no payment method, or a declined payment: cancel the
//! order. Escrow hold refused: void the authorization and cancel the order. The
//! order cannot be marked `CREATED`, or its timer cannot start: refund the escrow,
//! void the authorization and cancel the order. A compensation that itself fails
//! ends the saga `FAILED`.
//!
//! Cancellation: until a runner accepts, the saga owns the order's money, so it is
//! the saga that undoes it when the order is cancelled, whoever cancelled it (the
//! customer, an operator, or the saga itself when the acceptance timer expires).
//! The order service decides whether the cancellation stands; only once the order
//! reports `order.cancelled` does the saga refund the escrow, void the payment and
//! stop the timer, each only if that step was done. A step still in flight when
//! the order is cancelled (an authorization, a hold) is waited for, and undone if
//! it succeeded. The saga goes `CANCELLING`, then `CANCELLED`. A timeout the order
//! refuses (a runner accepted first) returns the saga to `COMPLETED`.
//!
//! The saga can start two ways: from the HTTP API (`Start`, which also sends
//! `create_order`), or by observing `order.created` for a correlation id it has not
//! seen, which is what a `create_order` published by hand produces.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::TimerId;
use crate::ids::{EscrowId, OrderId, PaymentId, SagaId, UserId};
use crate::messages::{
    AuthorizePayment, CancelOrder, CancelRequester, CreateOrder, GetPaymentInfo, HoldFunds, Message, OrderDetails,
    PaymentInfoFailure, RefundFunds, SagaUpdate, StartOrderTimer, StopOrderTimer, UpdateOrderStatus, VoidPayment,
    ORDER_ACCEPTANCE_TIMER,
};
use crate::money::Cents;
use crate::order::OrderStatus;
use crate::saga::{write_decided, Saga, SagaHeader, SagaStatus};

pub const SAGA_TYPE: &str = "create_order";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateOrderStep {
    CreateOrder,
    GetPaymentInfo,
    AuthorizePayment,
    HoldFunds,
    MarkOrderCreated,
    StartTimer,
    Compensate,
    Done,
}

impl CreateOrderStep {
    pub fn as_str(self) -> &'static str {
        match self {
            CreateOrderStep::CreateOrder => "create_order",
            CreateOrderStep::GetPaymentInfo => "get_payment_info",
            CreateOrderStep::AuthorizePayment => "authorize_payment",
            CreateOrderStep::HoldFunds => "hold_funds",
            CreateOrderStep::MarkOrderCreated => "mark_order_created",
            CreateOrderStep::StartTimer => "start_timer",
            CreateOrderStep::Compensate => "compensate",
            CreateOrderStep::Done => "done",
        }
    }
}

/// One undo action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compensation {
    CancelOrder,
    VoidPayment,
    RefundEscrow,
    StopTimer,
}

/// Where a cancellation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelStage {
    /// The saga asked the order service to cancel (a timeout) and awaits its answer.
    AwaitingOrder,
    /// The order is cancelled; the saga undoes what was done.
    Compensating,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CreateOrderSagaCommand {
    /// Begin a saga for an order the HTTP API accepted.
    Start {
        saga_id: SagaId,
        order_id: OrderId,
        customer_id: UserId,
        order_details: OrderDetails,
        at: DateTime<Utc>,
    },
    /// A message seen on an event topic with this saga's correlation id.
    Observe {
        saga_id: SagaId,
        message: Message,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum CreateOrderSagaEvent {
    Started {
        saga_id: SagaId,
        order_id: OrderId,
        customer_id: UserId,
        /// The order as written, when the saga itself sends `create_order`; absent
        /// when the saga started from an order someone else created.
        order_details: Option<OrderDetails>,
        at: DateTime<Utc>,
    },
    OrderPlaced {
        food_fee_cents: Cents,
        delivery_fee_cents: Cents,
        total_cents: Cents,
        currency: String,
        at: DateTime<Utc>,
    },
    PaymentInfoRetrieved {
        payment_method: String,
        at: DateTime<Utc>,
    },
    PaymentAuthorized {
        payment_id: PaymentId,
        at: DateTime<Utc>,
    },
    FundsHeld {
        escrow_id: EscrowId,
        at: DateTime<Utc>,
    },
    OrderMarkedCreated {
        /// When the order entered `CREATED`, by the order's clock.
        order_created_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    TimerStarted {
        timer_id: TimerId,
        due_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    CompensationStarted {
        failed_step: CreateOrderStep,
        reason: String,
        compensations: Vec<Compensation>,
        at: DateTime<Utc>,
    },
    CompensationCompleted {
        compensation: Compensation,
        at: DateTime<Utc>,
    },
    Compensated {
        at: DateTime<Utc>,
    },
    Failed {
        step: CreateOrderStep,
        reason: String,
        at: DateTime<Utc>,
    },
    /// A reply disagreed with the saga's own state (an authorization or a hold
    /// of another amount, currency or customer): it is not taken, and the saga
    /// stays at its step for an operator (SPEC 11).
    AnomalyRecorded {
        step: CreateOrderStep,
        reply: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// The acceptance timer expired: the saga asks the order service to cancel
    /// the order if it has been waiting since `expected_created_at`.
    CancellationRequested {
        requested_by: CancelRequester,
        reason: String,
        /// The `CREATED` time the expiring timer was started for: the order's
        /// first one, or a later one after a runner gave the order back. Events
        /// stored before this field existed read as `None` (the saga's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_created_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// The order service kept the order (a runner accepted it first).
    CancellationRefused {
        reason: String,
        at: DateTime<Utc>,
    },
    /// The order is cancelled: undo `compensations` now, and `awaiting`, a step
    /// still in flight, once its outcome is known.
    OrderCancelled {
        requested_by: CancelRequester,
        reason: String,
        compensations: Vec<Compensation>,
        awaiting: Option<CreateOrderStep>,
        at: DateTime<Utc>,
    },
    /// The step in flight when the order was cancelled has answered; if it
    /// succeeded, `compensation` undoes it.
    InFlightStepSettled {
        step: CreateOrderStep,
        compensation: Option<Compensation>,
        at: DateTime<Utc>,
    },
    Cancelled {
        at: DateTime<Utc>,
    },
}

impl CreateOrderSagaEvent {
    pub fn at(&self) -> DateTime<Utc> {
        use CreateOrderSagaEvent::*;
        match self {
            Started { at, .. }
            | OrderPlaced { at, .. }
            | PaymentInfoRetrieved { at, .. }
            | PaymentAuthorized { at, .. }
            | FundsHeld { at, .. }
            | OrderMarkedCreated { at, .. }
            | TimerStarted { at, .. }
            | Completed { at }
            | CompensationStarted { at, .. }
            | CompensationCompleted { at, .. }
            | Compensated { at }
            | Failed { at, .. }
            | CancellationRequested { at, .. }
            | CancellationRefused { at, .. }
            | OrderCancelled { at, .. }
            | InFlightStepSettled { at, .. }
            | AnomalyRecorded { at, .. }
            | Cancelled { at } => *at,
        }
    }
}

impl DomainEvent for CreateOrderSagaEvent {
    fn event_type(&self) -> String {
        let name = match self {
            CreateOrderSagaEvent::Started { .. } => "started",
            CreateOrderSagaEvent::OrderPlaced { .. } => "order_placed",
            CreateOrderSagaEvent::PaymentInfoRetrieved { .. } => "payment_info_retrieved",
            CreateOrderSagaEvent::PaymentAuthorized { .. } => "payment_authorized",
            CreateOrderSagaEvent::FundsHeld { .. } => "funds_held",
            CreateOrderSagaEvent::OrderMarkedCreated { .. } => "order_marked_created",
            CreateOrderSagaEvent::TimerStarted { .. } => "timer_started",
            CreateOrderSagaEvent::Completed { .. } => "completed",
            CreateOrderSagaEvent::CompensationStarted { .. } => "compensation_started",
            CreateOrderSagaEvent::CompensationCompleted { .. } => "compensation_completed",
            CreateOrderSagaEvent::Compensated { .. } => "compensated",
            CreateOrderSagaEvent::Failed { .. } => "failed",
            CreateOrderSagaEvent::CancellationRequested { .. } => "cancellation_requested",
            CreateOrderSagaEvent::CancellationRefused { .. } => "cancellation_refused",
            CreateOrderSagaEvent::OrderCancelled { .. } => "order_cancelled",
            CreateOrderSagaEvent::InFlightStepSettled { .. } => "in_flight_step_settled",
            CreateOrderSagaEvent::Cancelled { .. } => "cancelled",
            CreateOrderSagaEvent::AnomalyRecorded { .. } => "anomaly_recorded",
        };
        format!("create_order_saga.{name}")
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateOrderSagaError {
    #[error("saga {0} has already started")]
    AlreadyStarted(SagaId),
}

/// A create-order saga as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOrderSaga {
    #[serde(flatten)]
    pub header: SagaHeader,
    pub customer_id: Option<UserId>,
    pub step: Option<CreateOrderStep>,
    pub food_fee_cents: Cents,
    pub delivery_fee_cents: Cents,
    pub total_cents: Cents,
    pub currency: String,
    pub payment_method: Option<String>,
    pub payment_id: Option<PaymentId>,
    pub escrow_id: Option<EscrowId>,
    pub pending_compensations: Vec<Compensation>,
    pub order_created_at: Option<DateTime<Utc>>,
    pub timer_id: Option<TimerId>,
    pub timer_due_at: Option<DateTime<Utc>>,
    pub cancel_stage: Option<CancelStage>,
    pub cancellation_reason: Option<String>,
    pub cancellation_requested_by: Option<CancelRequester>,
    /// A step that was in flight when the order was cancelled.
    pub awaiting: Option<CreateOrderStep>,
    /// Replies that disagreed with the saga's state, and why; none was taken.
    #[serde(default)]
    pub anomalies: Vec<String>,
}

impl Saga for CreateOrderSaga {
    fn decide(&self, command: CreateOrderSagaCommand) -> Result<Vec<CreateOrderSagaEvent>, CreateOrderSagaError> {
        CreateOrderSaga::decide(self, command)
    }

    fn messages_caused_by(&self, event: &CreateOrderSagaEvent) -> Vec<Message> {
        CreateOrderSaga::messages_caused_by(self, event)
    }
}

impl CreateOrderSaga {
    pub fn decide(&self, command: CreateOrderSagaCommand) -> Result<Vec<CreateOrderSagaEvent>, CreateOrderSagaError> {
        use CreateOrderSagaEvent as E;
        match command {
            CreateOrderSagaCommand::Start {
                saga_id,
                order_id,
                customer_id,
                order_details,
                at,
            } => {
                if self.header.saga_id.is_some() {
                    return Err(CreateOrderSagaError::AlreadyStarted(saga_id));
                }
                Ok(vec![E::Started {
                    saga_id,
                    order_id,
                    customer_id,
                    order_details: Some(order_details),
                    at,
                }])
            }
            CreateOrderSagaCommand::Observe { saga_id, message, at } => {
                if self.header.saga_id.is_none() {
                    // Only an order placed in PENDING starts a saga that nobody started.
                    return Ok(match message {
                        Message::OrderCreated(created) if created.status == OrderStatus::Pending => {
                            vec![
                                E::Started {
                                    saga_id,
                                    order_id: created.order_id,
                                    customer_id: created.customer_id,
                                    order_details: None,
                                    at,
                                },
                                E::OrderPlaced {
                                    food_fee_cents: created.food_fee_cents,
                                    delivery_fee_cents: created.delivery_fee_cents,
                                    total_cents: created.total_cents,
                                    currency: created.currency,
                                    at,
                                },
                            ]
                        }
                        _ => Vec::new(),
                    });
                }
                if message.order_id() != self.header.order_id {
                    return Ok(Vec::new());
                }
                Ok(self.observe(message, at))
            }
        }
    }

    fn observe(&self, message: Message, at: DateTime<Utc>) -> Vec<CreateOrderSagaEvent> {
        use CreateOrderSagaEvent as E;
        use CreateOrderStep as Step;
        let (Some(status), Some(step)) = (self.header.status, self.step) else {
            return Vec::new();
        };
        let compensate = |failed_step: Step, reason: String, compensations: Vec<Compensation>| {
            vec![E::CompensationStarted {
                failed_step,
                reason,
                compensations,
                at,
            }]
        };
        match (status, step, message) {
            (SagaStatus::Started, Step::CreateOrder, Message::OrderCreated(created)) => {
                vec![E::OrderPlaced {
                    food_fee_cents: created.food_fee_cents,
                    delivery_fee_cents: created.delivery_fee_cents,
                    total_cents: created.total_cents,
                    currency: created.currency,
                    at,
                }]
            }
            (SagaStatus::Started, Step::CreateOrder, Message::OrderCreationFailed(failed)) => {
                vec![E::Failed {
                    step,
                    reason: format!("the order could not be created: {}", failed.reason),
                    at,
                }]
            }
            (SagaStatus::Started, Step::GetPaymentInfo, Message::PaymentInfoRetrieved(info)) => {
                vec![E::PaymentInfoRetrieved {
                    payment_method: info.payment_method,
                    at,
                }]
            }
            (SagaStatus::Started, Step::GetPaymentInfo, Message::PaymentInfoFailed(failed)) => {
                let reason = match failed.reason {
                    PaymentInfoFailure::UserNotFound => {
                        format!("customer {} was not found", failed.customer_id)
                    }
                    PaymentInfoFailure::NoPaymentMethod => {
                        format!("customer {} has no payment method", failed.customer_id)
                    }
                };
                compensate(step, reason, vec![Compensation::CancelOrder])
            }
            (SagaStatus::Started, Step::AuthorizePayment, Message::PaymentAuthorized(authorized)) => {
                let method = (Some(&authorized.payment_method) != self.payment_method.as_ref())
                    .then(|| format!("it is on payment method {}", authorized.payment_method));
                match method.or_else(|| {
                    self.disagreement(&authorized.customer_id, authorized.amount_cents, &authorized.currency)
                }) {
                    // The order's one payment is not the one the saga asked
                    // for: it is voided, and the order cancelled.
                    Some(reason) => self.anomaly(
                        step,
                        "payment.authorized",
                        reason,
                        vec![Compensation::VoidPayment, Compensation::CancelOrder],
                        at,
                    ),
                    None => vec![E::PaymentAuthorized {
                        payment_id: authorized.payment_id,
                        at,
                    }],
                }
            }
            (SagaStatus::Started, Step::AuthorizePayment, Message::PaymentFailed(failed)) => {
                let code = serde_json::to_value(failed.reason).ok();
                let code = code.as_ref().and_then(|c| c.as_str()).unwrap_or("DECLINED");
                let reason = format!("the payment was declined: {} ({code})", failed.message);
                compensate(step, reason, vec![Compensation::CancelOrder])
            }
            (SagaStatus::Started, Step::HoldFunds, Message::FundsHeld(held)) => {
                match self.disagreement(&held.customer_id, held.amount_cents, &held.currency) {
                    Some(reason) => self.anomaly(
                        step,
                        "escrow.funds_held",
                        reason,
                        vec![
                            Compensation::RefundEscrow,
                            Compensation::VoidPayment,
                            Compensation::CancelOrder,
                        ],
                        at,
                    ),
                    None => vec![E::FundsHeld {
                        escrow_id: held.escrow_id,
                        at,
                    }],
                }
            }
            (SagaStatus::Started, Step::HoldFunds, Message::HoldFailed(failed)) => compensate(
                step,
                format!("the escrow hold failed: {}", failed.reason),
                vec![Compensation::VoidPayment, Compensation::CancelOrder],
            ),
            (SagaStatus::Started, Step::MarkOrderCreated, Message::OrderStatusUpdated(updated))
                if updated.status == OrderStatus::Created =>
            {
                vec![E::OrderMarkedCreated {
                    order_created_at: updated.updated_at,
                    at,
                }]
            }
            (SagaStatus::Started, Step::StartTimer, Message::TimerStarted(started))
                if started.timer_type == ORDER_ACCEPTANCE_TIMER =>
            {
                vec![
                    E::TimerStarted {
                        timer_id: started.timer_id,
                        due_at: started.due_at,
                        at,
                    },
                    E::Completed { at },
                ]
            }
            (SagaStatus::Started, Step::StartTimer, Message::TimerFailed(failed)) => compensate(
                step,
                format!("the acceptance timer could not start: {}", failed.reason),
                vec![
                    Compensation::RefundEscrow,
                    Compensation::VoidPayment,
                    Compensation::CancelOrder,
                ],
            ),
            (SagaStatus::Started | SagaStatus::Completed, _, Message::OrderCancelled(cancelled)) => {
                self.order_cancelled(cancelled.requested_by, cancelled.reason, at)
            }
            (SagaStatus::Completed, _, Message::TimerExpired(expired))
                if expired.timer_type == ORDER_ACCEPTANCE_TIMER =>
            {
                vec![E::CancellationRequested {
                    requested_by: CancelRequester::Timeout,
                    reason: "no runner accepted the order within the acceptance window".to_string(),
                    expected_created_at: expired.order_created_at().or(self.order_created_at),
                    at,
                }]
            }
            (SagaStatus::Cancelling, _, message) if self.cancel_stage == Some(CancelStage::AwaitingOrder) => {
                match message {
                    Message::OrderCancelled(cancelled) => {
                        self.order_cancelled(cancelled.requested_by, cancelled.reason, at)
                    }
                    Message::OrderCancellationFailed(refused) => vec![E::CancellationRefused {
                        reason: refused.reason,
                        at,
                    }],
                    _ => Vec::new(),
                }
            }
            (SagaStatus::Cancelling, _, message) => self.observe_cancellation(message, at),
            (SagaStatus::Started, Step::MarkOrderCreated, Message::OrderStatusUpdateFailed(failed)) => compensate(
                step,
                format!("the order could not be marked CREATED: {}", failed.reason),
                vec![
                    Compensation::RefundEscrow,
                    Compensation::VoidPayment,
                    Compensation::CancelOrder,
                ],
            ),
            (SagaStatus::Compensating, _, message) => self.observe_compensation(message, at),
            _ => Vec::new(),
        }
    }

    /// How a reply about money differs from what this saga asked for, if it
    /// does. (A reply about another order never reaches this saga.)
    fn disagreement(&self, customer_id: &UserId, amount: Cents, currency: &str) -> Option<String> {
        if Some(customer_id) != self.customer_id.as_ref() {
            Some(format!("it is for customer {customer_id}"))
        } else if amount != self.total_cents || currency != self.currency {
            Some(format!(
                "it is for {amount} {currency}, not the order's {} {}",
                self.total_cents, self.currency
            ))
        } else {
            None
        }
    }

    /// A reply that disagrees with the saga's state: recorded, and then undone
    /// as a failed step would be (`compensations`), so that no money stays
    /// held on it. Recorded once per reason.
    fn anomaly(
        &self,
        step: CreateOrderStep,
        reply: &str,
        reason: String,
        compensations: Vec<Compensation>,
        at: DateTime<Utc>,
    ) -> Vec<CreateOrderSagaEvent> {
        let reason = format!("`{reply}` was not taken: {reason}");
        if self.anomalies.contains(&reason) {
            return Vec::new();
        }
        vec![
            CreateOrderSagaEvent::AnomalyRecorded {
                step,
                reply: reply.to_string(),
                reason: reason.clone(),
                at,
            },
            CreateOrderSagaEvent::CompensationStarted {
                failed_step: step,
                reason,
                compensations,
                at,
            },
        ]
    }

    /// The order is cancelled: what to undo depends on how far the saga got.
    fn order_cancelled(
        &self,
        requested_by: CancelRequester,
        reason: String,
        at: DateTime<Utc>,
    ) -> Vec<CreateOrderSagaEvent> {
        use Compensation::{RefundEscrow, StopTimer, VoidPayment};
        use CreateOrderStep as Step;
        let (compensations, awaiting) = match self.step {
            Some(Step::CreateOrder | Step::GetPaymentInfo) | None => (vec![], None),
            Some(Step::AuthorizePayment) => (vec![], Some(Step::AuthorizePayment)),
            Some(Step::HoldFunds) => (vec![VoidPayment], Some(Step::HoldFunds)),
            Some(Step::MarkOrderCreated) => (vec![RefundEscrow, VoidPayment], None),
            Some(Step::StartTimer | Step::Done | Step::Compensate) => {
                (vec![RefundEscrow, VoidPayment, StopTimer], None)
            }
        };
        let finished = compensations.is_empty() && awaiting.is_none();
        let mut events = vec![CreateOrderSagaEvent::OrderCancelled {
            requested_by,
            reason,
            compensations,
            awaiting,
            at,
        }];
        if finished {
            events.push(CreateOrderSagaEvent::Cancelled { at });
        }
        events
    }

    /// While cancelling: the step in flight answers, or a compensation does.
    fn observe_cancellation(&self, message: Message, at: DateTime<Utc>) -> Vec<CreateOrderSagaEvent> {
        use CreateOrderSagaEvent as E;
        let settled = match (self.awaiting, &message) {
            (Some(CreateOrderStep::AuthorizePayment), Message::PaymentAuthorized(_)) => {
                Some(Some(Compensation::VoidPayment))
            }
            (Some(CreateOrderStep::AuthorizePayment), Message::PaymentFailed(_)) => Some(None),
            (Some(CreateOrderStep::HoldFunds), Message::FundsHeld(_)) => Some(Some(Compensation::RefundEscrow)),
            (Some(CreateOrderStep::HoldFunds), Message::HoldFailed(_)) => Some(None),
            _ => None,
        };
        let Some(compensation) = settled else {
            return self.observe_compensation(message, at);
        };
        let step = self.awaiting.expect("a settled step was awaited");
        let mut events = vec![E::InFlightStepSettled { step, compensation, at }];
        if compensation.is_none() && self.pending_compensations.is_empty() {
            events.push(E::Cancelled { at });
        }
        events
    }

    fn observe_compensation(&self, message: Message, at: DateTime<Utc>) -> Vec<CreateOrderSagaEvent> {
        use CreateOrderSagaEvent as E;
        let (done, failure) = match message {
            Message::OrderCancelled(_) => (Some(Compensation::CancelOrder), None),
            Message::PaymentVoided(_) => (Some(Compensation::VoidPayment), None),
            Message::FundsRefunded(_) => (Some(Compensation::RefundEscrow), None),
            Message::TimerStopped(_) => (Some(Compensation::StopTimer), None),
            Message::OrderCancellationFailed(f) => (None, Some((Compensation::CancelOrder, f.reason))),
            Message::PaymentVoidFailed(f) => (None, Some((Compensation::VoidPayment, f.reason))),
            Message::RefundFailed(f) => (None, Some((Compensation::RefundEscrow, f.reason))),
            _ => (None, None),
        };
        if let Some((compensation, reason)) = failure {
            if !self.pending_compensations.contains(&compensation) {
                return Vec::new();
            }
            let original = self
                .header
                .error
                .clone()
                .or_else(|| self.cancellation_reason.clone())
                .unwrap_or_default();
            return vec![E::Failed {
                step: CreateOrderStep::Compensate,
                reason: format!("{original}; then {compensation:?} failed: {reason}"),
                at,
            }];
        }
        match done {
            Some(compensation) if self.pending_compensations.contains(&compensation) => {
                let mut events = vec![E::CompensationCompleted { compensation, at }];
                if self.pending_compensations.len() == 1 && self.awaiting.is_none() {
                    events.push(match self.header.status {
                        Some(SagaStatus::Cancelling) => E::Cancelled { at },
                        _ => E::Compensated { at },
                    });
                }
                events
            }
            _ => Vec::new(),
        }
    }

    /// The messages an event causes: the next command, the compensations, and the
    /// saga's own progress on `saga_events`.
    pub fn messages_caused_by(&self, event: &CreateOrderSagaEvent) -> Vec<Message> {
        use CreateOrderSagaEvent as E;
        let (Some(order_id), Some(customer_id)) = (self.header.order_id, self.customer_id.clone()) else {
            return Vec::new();
        };
        let mut messages = Vec::new();
        match event {
            E::Started { order_details, .. } => {
                messages.push(Message::SagaStarted(self.progress(event)));
                if let Some(order_details) = order_details {
                    messages.push(Message::CreateOrder(CreateOrder {
                        order_id: Some(order_id),
                        customer_id,
                        order_details: order_details.clone(),
                    }));
                }
            }
            E::OrderPlaced { .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::GetPaymentInfo(GetPaymentInfo {
                    customer_id,
                    order_id: Some(order_id),
                }));
            }
            E::PaymentInfoRetrieved { payment_method, .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::AuthorizePayment(AuthorizePayment {
                    order_id,
                    customer_id,
                    amount_cents: self.total_cents,
                    currency: self.currency.clone(),
                    payment_method: payment_method.clone(),
                }));
            }
            E::PaymentAuthorized { .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::HoldFunds(HoldFunds {
                    order_id,
                    customer_id,
                    amount_cents: self.total_cents,
                    food_fee_cents: self.food_fee_cents,
                    delivery_fee_cents: self.delivery_fee_cents,
                    currency: self.currency.clone(),
                }));
            }
            E::FundsHeld { .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::UpdateOrderStatus(UpdateOrderStatus {
                    order_id,
                    status: OrderStatus::Created,
                    runner_id: None,
                }));
            }
            E::OrderMarkedCreated { order_created_at, .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::StartOrderTimer(StartOrderTimer {
                    order_id,
                    order_created_at: Some(*order_created_at),
                    delay_seconds: None,
                }));
            }
            E::TimerStarted { .. } | E::CompensationCompleted { .. } | E::CancellationRefused { .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
            }
            E::CancellationRequested {
                requested_by,
                reason,
                expected_created_at,
                ..
            } => {
                messages.push(Message::SagaCancelling(self.progress(event)));
                messages.push(Message::CancelOrder(CancelOrder {
                    order_id,
                    reason: reason.clone(),
                    requested_by: *requested_by,
                    expected_created_at: expected_created_at.or(self.order_created_at),
                }));
            }
            E::OrderCancelled {
                reason, compensations, ..
            } => {
                messages.push(Message::SagaCancelling(self.progress(event)));
                let reason = format!("the order was cancelled: {reason}");
                for compensation in compensations {
                    messages.push(compensation_command(*compensation, order_id, &reason));
                }
            }
            E::InFlightStepSettled { compensation, .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                if let Some(compensation) = compensation {
                    let reason = format!(
                        "the order was cancelled: {}",
                        self.cancellation_reason.clone().unwrap_or_default()
                    );
                    messages.push(compensation_command(*compensation, order_id, &reason));
                }
            }
            E::Cancelled { .. } => messages.push(Message::SagaCancelled(self.progress(event))),
            E::Completed { .. } => messages.push(Message::SagaCompleted(self.progress(event))),
            E::AnomalyRecorded { reason, .. } => {
                messages.push(Message::SagaStepCompleted(self.progress(event)));
                messages.push(Message::SagaAnomalyRecorded(SagaUpdate {
                    error: Some(reason.clone()),
                    ..self.progress(event)
                }));
            }
            E::CompensationStarted {
                reason, compensations, ..
            } => {
                messages.push(Message::SagaCompensating(self.progress(event)));
                for compensation in compensations {
                    messages.push(compensation_command(*compensation, order_id, reason));
                }
            }
            E::Compensated { .. } => messages.push(Message::SagaCompensated(self.progress(event))),
            E::Failed { .. } => messages.push(Message::SagaFailed(self.progress(event))),
        }
        messages
    }

    fn progress(&self, event: &CreateOrderSagaEvent) -> SagaUpdate {
        let step = match event {
            CreateOrderSagaEvent::CompensationCompleted { compensation, .. } => format!(
                "compensate:{}",
                serde_json::to_value(compensation)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            _ => event.event_type().trim_start_matches("create_order_saga.").to_string(),
        };
        let mut progress = self.header.progress(SAGA_TYPE, step, event.at());
        // A cancellation is why the saga undoes what it did.
        progress.error = progress.error.or_else(|| self.cancellation_reason.clone());
        progress
    }
}

/// The command that undoes one step.
fn compensation_command(compensation: Compensation, order_id: OrderId, reason: &str) -> Message {
    let reason = reason.to_string();
    match compensation {
        Compensation::CancelOrder => Message::CancelOrder(CancelOrder {
            order_id,
            reason,
            requested_by: CancelRequester::System,
            expected_created_at: None,
        }),
        Compensation::VoidPayment => Message::VoidPayment(VoidPayment { order_id, reason }),
        Compensation::RefundEscrow => Message::RefundFunds(RefundFunds { order_id, reason }),
        Compensation::StopTimer => Message::StopOrderTimer(StopOrderTimer { order_id, reason }),
    }
}

impl crate::snapshot::WholeReadModel for CreateOrderSaga {}

impl Aggregate for CreateOrderSaga {
    const TYPE: &'static str = "create_order_saga";
    type Command = CreateOrderSagaCommand;
    type Event = CreateOrderSagaEvent;
    type Error = CreateOrderSagaError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        write_decided(self, command, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        use CreateOrderSagaEvent as E;
        self.header.updated_at = Some(event.at());
        match event {
            E::Started {
                saga_id,
                order_id,
                customer_id,
                at,
                ..
            } => {
                self.header = SagaHeader::started(saga_id, order_id, at);
                self.customer_id = Some(customer_id);
                self.step = Some(CreateOrderStep::CreateOrder);
            }
            E::OrderPlaced {
                food_fee_cents,
                delivery_fee_cents,
                total_cents,
                currency,
                ..
            } => {
                self.food_fee_cents = food_fee_cents;
                self.delivery_fee_cents = delivery_fee_cents;
                self.total_cents = total_cents;
                self.currency = currency;
                self.step = Some(CreateOrderStep::GetPaymentInfo);
            }
            E::PaymentInfoRetrieved { payment_method, .. } => {
                self.payment_method = Some(payment_method);
                self.step = Some(CreateOrderStep::AuthorizePayment);
            }
            E::PaymentAuthorized { payment_id, .. } => {
                self.payment_id = Some(payment_id);
                self.step = Some(CreateOrderStep::HoldFunds);
            }
            E::FundsHeld { escrow_id, .. } => {
                self.escrow_id = Some(escrow_id);
                self.step = Some(CreateOrderStep::MarkOrderCreated);
            }
            E::OrderMarkedCreated { order_created_at, .. } => {
                self.order_created_at = Some(order_created_at);
                self.step = Some(CreateOrderStep::StartTimer);
            }
            E::TimerStarted { timer_id, due_at, .. } => {
                self.timer_id = Some(timer_id);
                self.timer_due_at = Some(due_at);
                self.step = Some(CreateOrderStep::Done);
            }
            E::Completed { .. } => self.header.status = Some(SagaStatus::Completed),
            E::CancellationRequested {
                requested_by, reason, ..
            } => {
                self.header.status = Some(SagaStatus::Cancelling);
                self.cancel_stage = Some(CancelStage::AwaitingOrder);
                self.cancellation_requested_by = Some(requested_by);
                self.cancellation_reason = Some(reason);
            }
            E::CancellationRefused { .. } => {
                // Only a completed saga asks to cancel, so that is where it returns.
                self.header.status = Some(SagaStatus::Completed);
                self.cancel_stage = None;
                self.cancellation_requested_by = None;
                self.cancellation_reason = None;
            }
            E::OrderCancelled {
                requested_by,
                reason,
                compensations,
                awaiting,
                ..
            } => {
                self.header.status = Some(SagaStatus::Cancelling);
                self.cancel_stage = Some(CancelStage::Compensating);
                self.cancellation_requested_by = Some(requested_by);
                self.cancellation_reason = Some(reason);
                self.pending_compensations = compensations;
                self.awaiting = awaiting;
            }
            E::InFlightStepSettled { compensation, .. } => {
                self.awaiting = None;
                self.pending_compensations.extend(compensation);
            }
            E::Cancelled { .. } => {
                self.header.status = Some(SagaStatus::Cancelled);
                self.step = Some(CreateOrderStep::Done);
                self.cancel_stage = None;
            }
            E::AnomalyRecorded { reason, .. } => {
                self.header.error = Some(reason.clone());
                self.anomalies.push(reason);
            }
            E::CompensationStarted {
                reason, compensations, ..
            } => {
                self.header.status = Some(SagaStatus::Compensating);
                self.step = Some(CreateOrderStep::Compensate);
                self.header.error = Some(reason);
                self.pending_compensations = compensations;
            }
            E::CompensationCompleted { compensation, .. } => {
                self.pending_compensations.retain(|c| *c != compensation);
            }
            E::Compensated { .. } => {
                self.header.status = Some(SagaStatus::Compensated);
                self.step = Some(CreateOrderStep::Done);
            }
            E::Failed { reason, .. } => {
                self.header.status = Some(SagaStatus::Failed);
                self.header.error = Some(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests;
