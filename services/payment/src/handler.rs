//! How the payment service answers each command.

use async_trait::async_trait;

use campusg_domain::ids::{PaymentId, RefundId};
use campusg_domain::messages::{Message, PaymentOperationFailed, PaymentRefundFailed};
use campusg_domain::money::Cents;
use campusg_domain::payment::{GatewayError, Payment, PaymentCommand, PaymentError};
use campusg_runtime::aggregate::{execute, load};
use campusg_runtime::clock::Clock;
use campusg_runtime::command::CommandService;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::service::ServiceDescription;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::PaymentService;

#[async_trait]
impl CommandService for PaymentService {
    const DESCRIPTION: ServiceDescription = crate::DESCRIPTION;

    fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    /// Runs one command, commits its outcome, and returns the message that
    /// answers it (the HTTP API shows it to the caller).
    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError> {
        // Payouts keep their own aggregate and answer on the topic.
        if is_payout(&message) {
            self.handle_payout(message, cause).await?;
            return Ok(None);
        }
        let at = cause.at;
        let (order_id, command) = match message {
            Message::AuthorizePayment(c) => (
                c.order_id,
                PaymentCommand::Authorize {
                    payment_id: PaymentId::for_order(c.order_id),
                    order_id: c.order_id,
                    customer_id: c.customer_id,
                    amount: c.amount_cents,
                    currency: c.currency,
                    payment_method: c.payment_method,
                    at,
                },
            ),
            Message::VoidPayment(c) => (c.order_id, PaymentCommand::Void { reason: c.reason, at }),
            Message::CapturePayment(c) => (c.order_id, PaymentCommand::Capture { at }),
            Message::RefundPayment(c) => (
                c.order_id,
                PaymentCommand::Refund {
                    refund_id: c.refund_id,
                    amount: c.amount_cents,
                    reason: c.reason,
                    at,
                },
            ),
            _ => return Ok(None),
        };
        let payment_id = PaymentId::for_order(order_id);
        let mut loaded = load::<Payment>(self.deps.store.as_ref(), &payment_id.to_string()).await?;
        let mut unit = UnitOfWork::new(cause);
        let contracts = &self.deps.contracts;
        let operation = match &command {
            PaymentCommand::Authorize { .. } => Operation::Authorize,
            PaymentCommand::Void { .. } => Operation::Void,
            PaymentCommand::Capture { .. } => Operation::Capture,
            PaymentCommand::Refund { refund_id, amount, .. } => Operation::Refund {
                refund_id: *refund_id,
                amount: *amount,
            },
        };
        let answer = match execute(&mut loaded, command, &self.gateway).await {
            Ok(events) => {
                unit.append(contracts, &mut loaded, &events, true).map_err(published)?;
                events.last().cloned().map(Message::from)
            }
            Err(PaymentError::Gateway(GatewayError::Unavailable(reason))) => {
                return Err(HandlerError::Unavailable(format!(
                    "payment processor unavailable: {reason}"
                )));
            }
            Err(refusal) => {
                // A command repeated after it succeeded gets the same answer again.
                let repeated = match (&refusal, &loaded.aggregate.last_event) {
                    (PaymentError::AlreadyAttempted(_), Some(last)) => Some(Message::from(last.clone())),
                    (PaymentError::CannotVoid(_), Some(last @ campusg_domain::payment::PaymentEvent::Voided(_))) => {
                        Some(Message::from(last.clone()))
                    }
                    (
                        PaymentError::CannotCapture(_),
                        Some(last @ campusg_domain::payment::PaymentEvent::Captured(_)),
                    ) => Some(Message::from(last.clone())),
                    (PaymentError::RefundRepeated(refund_id), _) => loaded
                        .aggregate
                        .refunds
                        .iter()
                        .find(|refund| refund.refund_id == *refund_id)
                        .cloned()
                        .map(Message::PaymentRefunded),
                    _ => None,
                };
                let failed = PaymentOperationFailed {
                    order_id,
                    reason: refusal.to_string(),
                };
                let answer = match (repeated, operation) {
                    (Some(answer), _) => answer,
                    (None, Operation::Void) => Message::PaymentVoidFailed(failed),
                    (None, Operation::Capture) => Message::PaymentCaptureFailed(failed),
                    (None, Operation::Refund { refund_id, amount }) => {
                        Message::PaymentRefundFailed(PaymentRefundFailed {
                            order_id,
                            refund_id,
                            amount_cents: amount,
                            reason: failed.reason,
                        })
                    }
                    // Declines are events of their own; any other refusal to
                    // authorize is a command that can never succeed.
                    (None, Operation::Authorize) => return Err(HandlerError::Rejected(refusal.to_string())),
                };
                unit.publish(contracts, &answer).map_err(published)?;
                Some(answer)
            }
        };
        self.deps.store.commit(unit).await?;
        Ok(answer)
    }
}

fn is_payout(message: &Message) -> bool {
    matches!(
        message,
        Message::PayOutRunner(_) | Message::RetryPayout(_) | Message::PayoutAccountAdded(_) | Message::FundsReleased(_)
    )
}

/// Which command ran, to name its failure.
#[derive(Clone, Copy)]
enum Operation {
    Authorize,
    Void,
    Capture,
    Refund { refund_id: RefundId, amount: Cents },
}

fn published(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected(format!("the payment service could not publish its answer: {error}"))
}
