//! The payment aggregate, its commands, events and errors.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, PaymentId, RefundId, UserId};
use crate::messages::{Message, PaymentAuthorized, PaymentCaptured, PaymentFailed, PaymentRefunded, PaymentVoided};
use crate::money::Cents;
use crate::payment::{AuthorizationOutcome, AuthorizationRequest, GatewayError, PaymentGateway};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Authorized,
    Captured,
    Voided,
    PartiallyRefunded,
    Refunded,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::Voided,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
        PaymentStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Authorized => "AUTHORIZED",
            PaymentStatus::Captured => "CAPTURED",
            PaymentStatus::Voided => "VOIDED",
            PaymentStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            PaymentStatus::Refunded => "REFUNDED",
            PaymentStatus::Failed => "FAILED",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PaymentCommand {
    Authorize {
        payment_id: PaymentId,
        order_id: OrderId,
        customer_id: UserId,
        amount: Cents,
        currency: String,
        payment_method: String,
        at: DateTime<Utc>,
    },
    Void {
        reason: String,
        at: DateTime<Utc>,
    },
    Capture {
        at: DateTime<Utc>,
    },
    /// Return `amount` of the captured payment to the card; a refund id seen
    /// before is refused as repeated, with nothing returned twice.
    Refund {
        refund_id: RefundId,
        amount: Cents,
        reason: String,
        at: DateTime<Utc>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum PaymentEvent {
    #[serde(rename = "payment.authorized")]
    Authorized(PaymentAuthorized),
    #[serde(rename = "payment.failed")]
    Failed(PaymentFailed),
    #[serde(rename = "payment.voided")]
    Voided(PaymentVoided),
    #[serde(rename = "payment.captured")]
    Captured(PaymentCaptured),
    #[serde(rename = "payment.refunded")]
    Refunded(PaymentRefunded),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the order already has a payment that is {}", .0.as_str())]
    AlreadyAttempted(PaymentStatus),
    #[error("the order has no payment")]
    NotFound,
    #[error("the amount must be more than zero, not {0}")]
    AmountNotPositive(Cents),
    #[error("a payment that is {} cannot be voided", .0.as_str())]
    CannotVoid(PaymentStatus),
    #[error("a payment that is {} cannot be captured", .0.as_str())]
    CannotCapture(PaymentStatus),
    #[error("a payment that is {} cannot be refunded; only a captured one can", .0.as_str())]
    CannotRefund(PaymentStatus),
    #[error("a refund of {asked} is more than the {remaining} left to refund")]
    RefundOverRemainder { asked: Cents, remaining: Cents },
    #[error("refund {0} was made already")]
    RefundRepeated(RefundId),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        Message::from(self.clone()).message_type().to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl From<PaymentEvent> for Message {
    fn from(event: PaymentEvent) -> Message {
        match event {
            PaymentEvent::Authorized(e) => Message::PaymentAuthorized(e),
            PaymentEvent::Failed(e) => Message::PaymentFailed(e),
            PaymentEvent::Voided(e) => Message::PaymentVoided(e),
            PaymentEvent::Captured(e) => Message::PaymentCaptured(e),
            PaymentEvent::Refunded(e) => Message::PaymentRefunded(e),
        }
    }
}

/// A payment as rebuilt from events, and its read model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Option<PaymentId>,
    pub order_id: Option<OrderId>,
    pub customer_id: Option<UserId>,
    pub amount_cents: Cents,
    pub currency: String,
    pub payment_method: String,
    pub status: Option<PaymentStatus>,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// What was captured, and of it what has been refunded so far.
    #[serde(default)]
    pub captured_cents: Cents,
    #[serde(default)]
    pub refunded_cents: Cents,
    /// Every refund made, oldest first.
    #[serde(default)]
    pub refunds: Vec<PaymentRefunded>,
    /// The event that last changed the payment, to answer a repeated command with it.
    /// Not part of the read model.
    #[serde(skip)]
    pub last_event: Option<PaymentEvent>,
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = Arc<dyn PaymentGateway>;

    async fn handle(
        &mut self,
        command: Self::Command,
        gateway: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            PaymentCommand::Authorize {
                payment_id,
                order_id,
                customer_id,
                amount,
                currency,
                payment_method,
                at,
            } => {
                if let Some(status) = self.status {
                    return Err(PaymentError::AlreadyAttempted(status));
                }
                if amount <= Cents::ZERO {
                    return Err(PaymentError::AmountNotPositive(amount));
                }
                let request = AuthorizationRequest {
                    idempotency_key: format!("authorize:{payment_id}"),
                    amount,
                    currency: currency.clone(),
                    payment_method: payment_method.clone(),
                };
                match gateway.authorize(request).await? {
                    AuthorizationOutcome::Approved { reference } => PaymentEvent::Authorized(PaymentAuthorized {
                        payment_id,
                        order_id,
                        customer_id,
                        amount_cents: amount,
                        currency,
                        payment_method,
                        gateway_reference: reference,
                        authorized_at: at,
                    }),
                    AuthorizationOutcome::Declined { reason, message } => PaymentEvent::Failed(PaymentFailed {
                        payment_id,
                        order_id,
                        customer_id,
                        amount_cents: amount,
                        reason,
                        message,
                        failed_at: at,
                    }),
                }
            }
            PaymentCommand::Void { reason, at } => {
                let (payment_id, order_id, status) = self.existing()?;
                if status != PaymentStatus::Authorized {
                    return Err(PaymentError::CannotVoid(status));
                }
                let reference = self.gateway_reference.clone().unwrap_or_default();
                gateway.void(&reference, &format!("void:{payment_id}")).await?;
                PaymentEvent::Voided(PaymentVoided {
                    payment_id,
                    order_id,
                    amount_cents: self.amount_cents,
                    reason,
                    voided_at: at,
                    customer_id: self.customer_id.clone(),
                })
            }
            PaymentCommand::Capture { at } => {
                let (payment_id, order_id, status) = self.existing()?;
                if status != PaymentStatus::Authorized {
                    return Err(PaymentError::CannotCapture(status));
                }
                let reference = self.gateway_reference.clone().unwrap_or_default();
                gateway
                    .capture(&reference, self.amount_cents, &format!("capture:{payment_id}"))
                    .await?;
                PaymentEvent::Captured(PaymentCaptured {
                    payment_id,
                    order_id,
                    amount_cents: self.amount_cents,
                    captured_at: at,
                    customer_id: self.customer_id.clone(),
                })
            }
            PaymentCommand::Refund {
                refund_id,
                amount,
                reason,
                at,
            } => {
                let (payment_id, order_id, status) = self.existing()?;
                if self.refunds.iter().any(|refund| refund.refund_id == refund_id) {
                    return Err(PaymentError::RefundRepeated(refund_id));
                }
                if !matches!(status, PaymentStatus::Captured | PaymentStatus::PartiallyRefunded) {
                    return Err(PaymentError::CannotRefund(status));
                }
                if amount <= Cents::ZERO {
                    return Err(PaymentError::AmountNotPositive(amount));
                }
                let remaining = Cents(self.captured_cents.0.saturating_sub(self.refunded_cents.0));
                if amount > remaining {
                    return Err(PaymentError::RefundOverRemainder {
                        asked: amount,
                        remaining,
                    });
                }
                let reference = self.gateway_reference.clone().unwrap_or_default();
                gateway
                    .refund(&reference, amount, &format!("refund:{refund_id}"))
                    .await?;
                PaymentEvent::Refunded(PaymentRefunded {
                    payment_id,
                    order_id,
                    customer_id: self.customer_id.clone().ok_or(PaymentError::NotFound)?,
                    refund_id,
                    amount_cents: amount,
                    refunded_cents: Cents(self.refunded_cents.0.saturating_add(amount.0)),
                    captured_cents: self.captured_cents,
                    reason,
                    refunded_at: at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.last_event = Some(event.clone());
        match event {
            PaymentEvent::Authorized(e) => {
                self.payment_id = Some(e.payment_id);
                self.order_id = Some(e.order_id);
                self.customer_id = Some(e.customer_id);
                self.amount_cents = e.amount_cents;
                self.currency = e.currency;
                self.payment_method = e.payment_method;
                self.status = Some(PaymentStatus::Authorized);
                self.gateway_reference = Some(e.gateway_reference);
                self.authorized_at = Some(e.authorized_at);
                self.updated_at = Some(e.authorized_at);
            }
            PaymentEvent::Failed(e) => {
                self.payment_id = Some(e.payment_id);
                self.order_id = Some(e.order_id);
                self.customer_id = Some(e.customer_id);
                self.amount_cents = e.amount_cents;
                self.status = Some(PaymentStatus::Failed);
                self.failure_reason = Some(e.message);
                self.updated_at = Some(e.failed_at);
            }
            PaymentEvent::Voided(e) => {
                self.status = Some(PaymentStatus::Voided);
                self.updated_at = Some(e.voided_at);
            }
            PaymentEvent::Captured(e) => {
                self.status = Some(PaymentStatus::Captured);
                self.captured_cents = e.amount_cents;
                self.updated_at = Some(e.captured_at);
            }
            PaymentEvent::Refunded(e) => {
                self.refunded_cents = e.refunded_cents;
                self.status = Some(if e.refunded_cents >= self.captured_cents {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                });
                self.updated_at = Some(e.refunded_at);
                self.refunds.push(e);
            }
        }
    }
}

impl Payment {
    fn existing(&self) -> Result<(PaymentId, OrderId, PaymentStatus), PaymentError> {
        match (self.payment_id, self.order_id, self.status) {
            (Some(payment_id), Some(order_id), Some(status)) => Ok((payment_id, order_id, status)),
            _ => Err(PaymentError::NotFound),
        }
    }
}

#[cfg(test)]
mod aggregate_tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::messages::DeclineReason;

    /// A processor that answers from a script and remembers what it was asked.
    struct ScriptedGateway {
        outcome: AuthorizationOutcome,
        calls: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl PaymentGateway for ScriptedGateway {
        async fn authorize(&self, request: AuthorizationRequest) -> Result<AuthorizationOutcome, GatewayError> {
            self.calls.lock().unwrap().push(request.idempotency_key);
            Ok(self.outcome.clone())
        }
        async fn void(&self, _reference: &str, key: &str) -> Result<(), GatewayError> {
            self.calls.lock().unwrap().push(key.to_string());
            Ok(())
        }
        async fn capture(&self, _reference: &str, _amount: Cents, key: &str) -> Result<(), GatewayError> {
            self.calls.lock().unwrap().push(key.to_string());
            Ok(())
        }
        async fn refund(&self, _reference: &str, _amount: Cents, key: &str) -> Result<(), GatewayError> {
            self.calls.lock().unwrap().push(key.to_string());
            Ok(())
        }
        async fn pay_out(&self, _account: &str, _amount: Cents, key: &str) -> Result<String, GatewayError> {
            self.calls.lock().unwrap().push(key.to_string());
            Ok(key.to_string())
        }
    }

    fn gateway(outcome: AuthorizationOutcome) -> Arc<dyn PaymentGateway> {
        Arc::new(ScriptedGateway {
            outcome,
            calls: Mutex::new(Vec::new()),
        })
    }

    fn approving() -> Arc<dyn PaymentGateway> {
        gateway(AuthorizationOutcome::Approved {
            reference: "auth_1".into(),
        })
    }

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap()
    }

    fn order_id() -> OrderId {
        OrderId(Uuid::from_u128(1))
    }

    fn customer() -> UserId {
        UserId::parse("cust_1").unwrap()
    }

    fn authorize() -> PaymentCommand {
        PaymentCommand::Authorize {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            customer_id: customer(),
            amount: Cents(1499),
            currency: "SGD".into(),
            payment_method: "pm_card_visa".into(),
            at: at(),
        }
    }

    fn authorized() -> PaymentEvent {
        PaymentEvent::Authorized(PaymentAuthorized {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            customer_id: customer(),
            amount_cents: Cents(1499),
            currency: "SGD".into(),
            payment_method: "pm_card_visa".into(),
            gateway_reference: "auth_1".into(),
            authorized_at: at(),
        })
    }

    #[tokio::test]
    async fn an_approved_card_authorizes_the_total() {
        TestFramework::<Payment>::with(approving())
            .given_no_previous_events()
            .when_async(authorize())
            .await
            .then_expect_events(vec![authorized()]);
    }

    #[tokio::test]
    async fn a_declined_card_fails_the_payment_with_the_reason() {
        let declining = gateway(AuthorizationOutcome::Declined {
            reason: DeclineReason::InsufficientFunds,
            message: "insufficient funds".into(),
        });
        TestFramework::<Payment>::with(declining)
            .given_no_previous_events()
            .when_async(authorize())
            .await
            .then_expect_events(vec![PaymentEvent::Failed(PaymentFailed {
                payment_id: PaymentId::for_order(order_id()),
                order_id: order_id(),
                customer_id: customer(),
                amount_cents: Cents(1499),
                reason: DeclineReason::InsufficientFunds,
                message: "insufficient funds".into(),
                failed_at: at(),
            })]);
    }

    #[tokio::test]
    async fn an_order_is_authorized_once() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized()])
            .when_async(authorize())
            .await
            .then_expect_error(PaymentError::AlreadyAttempted(PaymentStatus::Authorized));
    }

    #[tokio::test]
    async fn an_authorization_can_be_voided() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized()])
            .when_async(PaymentCommand::Void {
                reason: "escrow failed".into(),
                at: at(),
            })
            .await
            .then_expect_events(vec![PaymentEvent::Voided(PaymentVoided {
                payment_id: PaymentId::for_order(order_id()),
                order_id: order_id(),
                amount_cents: Cents(1499),
                reason: "escrow failed".into(),
                voided_at: at(),
                customer_id: Some(customer()),
            })]);
    }

    #[tokio::test]
    async fn a_captured_payment_cannot_be_voided() {
        TestFramework::<Payment>::with(approving())
            .given(vec![
                authorized(),
                PaymentEvent::Captured(PaymentCaptured {
                    payment_id: PaymentId::for_order(order_id()),
                    order_id: order_id(),
                    amount_cents: Cents(1499),
                    captured_at: at(),
                    customer_id: Some(customer()),
                }),
            ])
            .when_async(PaymentCommand::Void {
                reason: "x".into(),
                at: at(),
            })
            .await
            .then_expect_error(PaymentError::CannotVoid(PaymentStatus::Captured));
    }

    fn captured() -> PaymentEvent {
        PaymentEvent::Captured(PaymentCaptured {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            amount_cents: Cents(1499),
            captured_at: at(),
            customer_id: Some(customer()),
        })
    }

    fn refund_id(n: u128) -> RefundId {
        RefundId(Uuid::from_u128(n))
    }

    fn refund(n: u128, amount: i64) -> PaymentCommand {
        PaymentCommand::Refund {
            refund_id: refund_id(n),
            amount: Cents(amount),
            reason: "cold food".into(),
            at: at(),
        }
    }

    fn refunded(n: u128, amount: i64, so_far: i64) -> PaymentEvent {
        PaymentEvent::Refunded(PaymentRefunded {
            payment_id: PaymentId::for_order(order_id()),
            order_id: order_id(),
            customer_id: customer(),
            refund_id: refund_id(n),
            amount_cents: Cents(amount),
            refunded_cents: Cents(so_far),
            captured_cents: Cents(1499),
            reason: "cold food".into(),
            refunded_at: at(),
        })
    }

    #[tokio::test]
    async fn a_captured_payment_is_refunded_in_part_then_in_full() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized(), captured()])
            .when_async(refund(1, 500))
            .await
            .then_expect_events(vec![refunded(1, 500, 500)]);
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized(), captured(), refunded(1, 500, 500)])
            .when_async(refund(2, 999))
            .await
            .then_expect_events(vec![refunded(2, 999, 1499)]);
    }

    #[tokio::test]
    async fn a_refund_beyond_what_is_left_is_refused() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized(), captured(), refunded(1, 500, 500)])
            .when_async(refund(2, 1000))
            .await
            .then_expect_error(PaymentError::RefundOverRemainder {
                asked: Cents(1000),
                remaining: Cents(999),
            });
    }

    #[tokio::test]
    async fn a_refund_is_made_once_under_its_id() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized(), captured(), refunded(1, 500, 500)])
            .when_async(refund(1, 500))
            .await
            .then_expect_error(PaymentError::RefundRepeated(refund_id(1)));
    }

    #[tokio::test]
    async fn only_a_captured_payment_is_refunded() {
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized()])
            .when_async(refund(1, 500))
            .await
            .then_expect_error(PaymentError::CannotRefund(PaymentStatus::Authorized));
        TestFramework::<Payment>::with(approving())
            .given(vec![authorized(), captured(), refunded(1, 1499, 1499)])
            .when_async(refund(2, 1))
            .await
            .then_expect_error(PaymentError::CannotRefund(PaymentStatus::Refunded));
    }

    #[tokio::test]
    async fn voiding_without_an_authorization_is_refused() {
        TestFramework::<Payment>::with(approving())
            .given_no_previous_events()
            .when_async(PaymentCommand::Void {
                reason: "x".into(),
                at: at(),
            })
            .await
            .then_expect_error(PaymentError::NotFound);
    }
}
