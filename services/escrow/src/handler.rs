//! How the escrow service answers each command.

use async_trait::async_trait;

use campusg_domain::escrow::{Escrow, EscrowCommand};
use campusg_domain::ids::EscrowId;
use campusg_domain::messages::{EscrowOperationFailed, Message};
use campusg_runtime::aggregate::{execute, load};
use campusg_runtime::clock::Clock;
use campusg_runtime::command::CommandService;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::service::ServiceDescription;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::EscrowService;

/// Which command ran, to name its failure.
#[derive(Clone, Copy)]
enum Operation {
    Hold,
    Release,
    Refund,
}

#[async_trait]
impl CommandService for EscrowService {
    const DESCRIPTION: ServiceDescription = crate::DESCRIPTION;

    fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    /// Runs one command, commits its outcome, and returns the message that answers it.
    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError> {
        let at = cause.at;
        let (order_id, operation, command) = match message {
            Message::HoldFunds(c) => (
                c.order_id,
                Operation::Hold,
                EscrowCommand::Hold {
                    escrow_id: EscrowId::for_order(c.order_id),
                    order_id: c.order_id,
                    customer_id: c.customer_id,
                    food_fee: c.food_fee_cents,
                    delivery_fee: c.delivery_fee_cents,
                    currency: c.currency,
                    limit: self.hold_limit,
                    at,
                },
            ),
            Message::ReleaseFunds(c) => (
                c.order_id,
                Operation::Release,
                EscrowCommand::Release {
                    runner_id: c.runner_id,
                    at,
                },
            ),
            Message::RefundFunds(c) => (
                c.order_id,
                Operation::Refund,
                EscrowCommand::Refund { reason: c.reason, at },
            ),
            _ => return Ok(None),
        };
        let escrow_id = EscrowId::for_order(order_id);
        let mut loaded = load::<Escrow>(self.deps.store.as_ref(), &escrow_id.to_string()).await?;
        let mut unit = UnitOfWork::new(cause);
        let contracts = &self.deps.contracts;
        let repeated = loaded.aggregate.answer_to_repeat(&command);
        let answer = match repeated {
            // A command repeated after it succeeded gets the same answer again.
            Some(event) => {
                let answer = Message::from(event);
                unit.publish(contracts, &answer).map_err(published)?;
                Some(answer)
            }
            None => match execute(&mut loaded, command, &()).await {
                Ok(events) => {
                    unit.append(contracts, &mut loaded, &events, true).map_err(published)?;
                    events.last().cloned().map(Message::from)
                }
                Err(refusal) => {
                    let failed = EscrowOperationFailed {
                        order_id,
                        reason: refusal.to_string(),
                    };
                    let answer = match operation {
                        Operation::Hold => Message::HoldFailed(failed),
                        Operation::Release => Message::ReleaseFailed(failed),
                        Operation::Refund => Message::RefundFailed(failed),
                    };
                    unit.publish(contracts, &answer).map_err(published)?;
                    Some(answer)
                }
            },
        };
        self.deps.store.commit(unit).await?;
        Ok(answer)
    }
}

fn published(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected(format!("the escrow service could not publish its answer: {error}"))
}
