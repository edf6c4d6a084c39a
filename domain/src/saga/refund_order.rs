//! The refund saga (SPEC sections 6 and 13).
//!
//! Started by an operator (`POST /api/orders/{order_id}/refunds`) for part or
//! all of a captured payment. One step: the payment service refunds at the
//! card processor under the refund's id, so a redelivered command or a retried
//! request returns the money once. The saga takes the answer only if it is
//! about its own refund, for the amount it asked (SPEC 11); then it is
//! `COMPLETED`, and the notification service tells the customer.
//!
//! A processor that is only unavailable is retried by the payment service
//! until it answers; a refusal for good (more than is left to refund, a
//! payment that was never captured) ends the saga `FAILED` with no money moved.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, RefundId, SagaId, UserId};
use crate::messages::{Message, RefundPayment, SagaUpdate};
use crate::money::Cents;
use crate::saga::{write_decided, Saga, SagaHeader, SagaStatus};

pub const SAGA_TYPE: &str = "refund_order";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStep {
    RefundPayment,
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RefundSagaCommand {
    /// An operator asks to refund `amount` of the order's captured payment.
    Start {
        saga_id: SagaId,
        order_id: OrderId,
        customer_id: UserId,
        amount: Cents,
        reason: String,
        requested_by: UserId,
        at: DateTime<Utc>,
    },
    Observe {
        message: Message,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum RefundSagaEvent {
    Started {
        saga_id: SagaId,
        order_id: OrderId,
        customer_id: UserId,
        amount_cents: Cents,
        reason: String,
        requested_by: UserId,
        at: DateTime<Utc>,
    },
    PaymentRefunded {
        amount_cents: Cents,
        refunded_cents: Cents,
        at: DateTime<Utc>,
    },
    Completed {
        at: DateTime<Utc>,
    },
    Failed {
        reason: String,
        at: DateTime<Utc>,
    },
    /// An answer that disagreed with the saga (another amount, another
    /// customer): not taken; the saga stays at its step for an operator.
    AnomalyRecorded {
        reply: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl RefundSagaEvent {
    pub fn at(&self) -> DateTime<Utc> {
        use RefundSagaEvent::*;
        match self {
            Started { at, .. }
            | PaymentRefunded { at, .. }
            | Completed { at }
            | Failed { at, .. }
            | AnomalyRecorded { at, .. } => *at,
        }
    }

    fn name(&self) -> &'static str {
        use RefundSagaEvent::*;
        match self {
            Started { .. } => "started",
            PaymentRefunded { .. } => "payment_refunded",
            Completed { .. } => "completed",
            Failed { .. } => "failed",
            AnomalyRecorded { .. } => "anomaly_recorded",
        }
    }
}

impl DomainEvent for RefundSagaEvent {
    fn event_type(&self) -> String {
        format!("refund_order_saga.{}", self.name())
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundSagaError {
    #[error("saga {0} has already started")]
    AlreadyStarted(SagaId),
}

/// A refund saga as rebuilt from its events; also its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RefundSaga {
    #[serde(flatten)]
    pub header: SagaHeader,
    pub customer_id: Option<UserId>,
    pub step: Option<RefundStep>,
    pub amount_cents: Cents,
    pub reason: String,
    pub requested_by: Option<UserId>,
    /// Everything refunded of the payment once this refund was made.
    pub refunded_cents: Cents,
    #[serde(default)]
    pub anomalies: Vec<String>,
}

impl RefundSaga {
    /// The refund this saga makes: named by the saga, so that the payment
    /// service refunds it once whoever asks again.
    pub fn refund_id(saga_id: SagaId) -> RefundId {
        RefundId(saga_id.0)
    }

    /// The saga that makes `refund_id`: where the payment service's answer about it goes.
    pub fn saga_of(refund_id: RefundId) -> SagaId {
        SagaId(refund_id.0)
    }

    fn observe(&self, message: Message, at: DateTime<Utc>) -> Vec<RefundSagaEvent> {
        use RefundSagaEvent as E;
        let Some(saga_id) = self.header.saga_id else {
            return Vec::new();
        };
        let own = RefundSaga::refund_id(saga_id);
        match message {
            Message::PaymentRefunded(refunded) if refunded.refund_id == own => {
                let disagreement = if refunded.amount_cents != self.amount_cents {
                    Some(format!(
                        "it refunded {}, not the {} asked for",
                        refunded.amount_cents, self.amount_cents
                    ))
                } else if Some(&refunded.customer_id) != self.customer_id.as_ref() {
                    Some(format!(
                        "it refunded {}, not the order's customer",
                        refunded.customer_id
                    ))
                } else {
                    None
                };
                match disagreement {
                    Some(reason) => {
                        let reason = format!("`payment.refunded` was not taken: {reason}");
                        if self.anomalies.contains(&reason) {
                            return Vec::new();
                        }
                        vec![E::AnomalyRecorded {
                            reply: "payment.refunded".into(),
                            reason,
                            at,
                        }]
                    }
                    None => vec![
                        E::PaymentRefunded {
                            amount_cents: refunded.amount_cents,
                            refunded_cents: refunded.refunded_cents,
                            at,
                        },
                        E::Completed { at },
                    ],
                }
            }
            Message::PaymentRefundFailed(failed) if failed.refund_id == own => vec![E::Failed {
                reason: format!("the payment could not be refunded: {}", failed.reason),
                at,
            }],
            _ => Vec::new(),
        }
    }

    fn command_for_step(&self) -> Option<Message> {
        match self.step? {
            RefundStep::RefundPayment => Some(Message::RefundPayment(RefundPayment {
                order_id: self.header.order_id?,
                refund_id: RefundSaga::refund_id(self.header.saga_id?),
                amount_cents: self.amount_cents,
                reason: self.reason.clone(),
            })),
            RefundStep::Done => None,
        }
    }

    fn progress(&self, event: &RefundSagaEvent) -> SagaUpdate {
        self.header.progress(SAGA_TYPE, event.name().to_string(), event.at())
    }
}

impl Saga for RefundSaga {
    fn decide(&self, command: RefundSagaCommand) -> Result<Vec<RefundSagaEvent>, RefundSagaError> {
        match command {
            RefundSagaCommand::Start {
                saga_id,
                order_id,
                customer_id,
                amount,
                reason,
                requested_by,
                at,
            } => {
                if self.header.saga_id.is_some() {
                    return Err(RefundSagaError::AlreadyStarted(saga_id));
                }
                Ok(vec![RefundSagaEvent::Started {
                    saga_id,
                    order_id,
                    customer_id,
                    amount_cents: amount,
                    reason,
                    requested_by,
                    at,
                }])
            }
            RefundSagaCommand::Observe { message, at } => {
                if message.order_id() != self.header.order_id || self.header.status != Some(SagaStatus::Started) {
                    return Ok(Vec::new());
                }
                Ok(self.observe(message, at))
            }
        }
    }

    fn messages_caused_by(&self, event: &RefundSagaEvent) -> Vec<Message> {
        use RefundSagaEvent as E;
        let progress = self.progress(event);
        match event {
            E::Started { .. } => {
                let mut messages = vec![Message::SagaStarted(progress)];
                messages.extend(self.command_for_step());
                messages
            }
            E::Completed { .. } => vec![Message::SagaCompleted(progress)],
            E::Failed { .. } => vec![Message::SagaFailed(progress)],
            E::AnomalyRecorded { reason, .. } => vec![
                Message::SagaStepCompleted(progress.clone()),
                Message::SagaAnomalyRecorded(SagaUpdate {
                    error: Some(reason.clone()),
                    ..progress
                }),
            ],
            E::PaymentRefunded { .. } => vec![Message::SagaStepCompleted(progress)],
        }
    }
}

impl crate::snapshot::WholeReadModel for RefundSaga {}

impl Aggregate for RefundSaga {
    const TYPE: &'static str = "refund_order_saga";
    type Command = RefundSagaCommand;
    type Event = RefundSagaEvent;
    type Error = RefundSagaError;
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
        use RefundSagaEvent as E;
        self.header.updated_at = Some(event.at());
        match event {
            E::Started {
                saga_id,
                order_id,
                customer_id,
                amount_cents,
                reason,
                requested_by,
                at,
            } => {
                self.header = SagaHeader::started(saga_id, order_id, at);
                self.customer_id = Some(customer_id);
                self.amount_cents = amount_cents;
                self.reason = reason;
                self.requested_by = Some(requested_by);
                self.step = Some(RefundStep::RefundPayment);
            }
            E::PaymentRefunded { refunded_cents, .. } => {
                self.refunded_cents = refunded_cents;
                self.step = Some(RefundStep::Done);
            }
            E::Completed { .. } => self.header.status = Some(SagaStatus::Completed),
            E::Failed { reason, .. } => {
                self.header.status = Some(SagaStatus::Failed);
                self.header.error = Some(reason);
            }
            E::AnomalyRecorded { reason, .. } => {
                self.header.error = Some(reason.clone());
                self.anomalies.push(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::ids::PaymentId;
    use crate::messages::{PaymentRefundFailed, PaymentRefunded};

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn saga_id() -> SagaId {
        SagaId(Uuid::from_u128(7))
    }

    fn customer() -> UserId {
        UserId::parse("cust_1").unwrap()
    }

    fn start(amount: i64) -> RefundSagaCommand {
        RefundSagaCommand::Start {
            saga_id: saga_id(),
            order_id: order_id(),
            customer_id: customer(),
            amount: Cents(amount),
            reason: "cold food".into(),
            requested_by: UserId::parse("ops_1").unwrap(),
            at: at(),
        }
    }

    fn refunded(refund_id: RefundId, amount: i64, customer_id: UserId) -> Message {
        Message::PaymentRefunded(PaymentRefunded {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            customer_id,
            refund_id,
            amount_cents: Cents(amount),
            refunded_cents: Cents(amount),
            captured_cents: Cents(1499),
            reason: "cold food".into(),
            refunded_at: at(),
        })
    }

    fn observe(message: Message) -> RefundSagaCommand {
        RefundSagaCommand::Observe { message, at: at() }
    }

    fn types(messages: &[Message]) -> Vec<&'static str> {
        messages.iter().map(Message::message_type).collect()
    }

    fn started(amount: i64) -> RefundSaga {
        let mut saga = RefundSaga::default();
        saga.react(start(amount)).unwrap();
        saga
    }

    #[test]
    fn a_refund_asks_the_payment_service_under_the_saga_s_refund_id() {
        let mut saga = RefundSaga::default();
        let reaction = saga.react(start(500)).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.started", "refund_payment"]);
        let Message::RefundPayment(command) = &reaction.commands[1] else {
            panic!("not a refund_payment");
        };
        assert_eq!(command.refund_id, RefundSaga::refund_id(saga_id()));
        assert_eq!(command.amount_cents, Cents(500));
    }

    #[test]
    fn the_refund_made_completes_the_saga() {
        let mut saga = started(500);
        let own = RefundSaga::refund_id(saga_id());
        let reaction = saga.react(observe(refunded(own, 500, customer()))).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.step_completed", "saga.completed"]);
        assert_eq!(saga.header.status, Some(SagaStatus::Completed));
        assert_eq!(saga.refunded_cents, Cents(500));
    }

    #[test]
    fn another_refund_of_the_same_order_is_not_this_saga_s_answer() {
        let mut saga = started(500);
        let other = RefundId(Uuid::from_u128(99));
        let reaction = saga.react(observe(refunded(other, 500, customer()))).unwrap();
        assert!(reaction.events.is_empty());
        assert_eq!(saga.header.status, Some(SagaStatus::Started));
    }

    #[test]
    fn an_answer_for_another_amount_or_customer_is_recorded_not_taken() {
        let own = RefundSaga::refund_id(saga_id());
        let mut saga = started(500);
        let reaction = saga.react(observe(refunded(own, 900, customer()))).unwrap();
        assert_eq!(
            types(&reaction.commands),
            ["saga.step_completed", "saga.anomaly_recorded"]
        );
        assert_eq!(saga.header.status, Some(SagaStatus::Started));
        let stranger = UserId::parse("cust_2").unwrap();
        saga.react(observe(refunded(own, 500, stranger))).unwrap();
        assert_eq!(saga.anomalies.len(), 2, "{:?}", saga.anomalies);
        assert_eq!(saga.header.status, Some(SagaStatus::Started));
    }

    #[test]
    fn a_refusal_fails_the_saga_with_its_reason() {
        let mut saga = started(5000);
        let failed = Message::PaymentRefundFailed(PaymentRefundFailed {
            order_id: order_id(),
            refund_id: RefundSaga::refund_id(saga_id()),
            amount_cents: Cents(5000),
            reason: "a refund of 50.00 is more than the 14.99 left to refund".into(),
        });
        let reaction = saga.react(observe(failed)).unwrap();
        assert_eq!(types(&reaction.commands), ["saga.failed"]);
        assert!(
            saga.header.error.as_deref().unwrap().contains("more than"),
            "{:?}",
            saga.header.error
        );
    }

    #[test]
    fn a_saga_starts_once() {
        let saga = started(500);
        assert_eq!(saga.decide(start(500)), Err(RefundSagaError::AlreadyStarted(saga_id())));
    }
}
