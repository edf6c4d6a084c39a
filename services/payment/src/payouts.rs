//! How the payment service pays runners out: `pay_out_runner` from the
//! complete-order saga, `retry_payout` from an operator, and
//! `user.payout_account_added` from the user service, which releases the
//! payouts that waited for the account. It also observes `escrow.released`:
//! a payout pays only what the escrow released, to the runner it released it
//! to, and a request read before the release waits for it. The [`Payout`] aggregate decides; the
//! processor behind the [`PaymentGateway`](campusg_domain::payment::PaymentGateway) port moves the money.

use campusg_domain::ids::OrderId;
use campusg_domain::messages::{Message, RetryPayout};
use campusg_domain::payment::{GatewayError, Payout, PayoutCommand, PayoutError};
use campusg_runtime::aggregate::{execute, load, Loaded};
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::store::{Cause, StoreError, UnitOfWork};

use crate::{PaymentService, SERVICE_NAME};

/// Why a payout command did not run.
#[derive(Debug)]
pub enum PayoutRefused {
    /// The payout aggregate refused it (the caller asked for the wrong thing).
    Refused(PayoutError),
    Handler(HandlerError),
}

impl From<StoreError> for PayoutRefused {
    fn from(error: StoreError) -> PayoutRefused {
        PayoutRefused::Handler(error.into())
    }
}

impl From<PayoutRefused> for HandlerError {
    fn from(refused: PayoutRefused) -> HandlerError {
        match refused {
            PayoutRefused::Refused(refusal) => HandlerError::Rejected(refusal.to_string()),
            PayoutRefused::Handler(error) => error,
        }
    }
}

impl PaymentService {
    /// An operator's retry, through the HTTP API.
    pub async fn retry_payout(&self, retry: RetryPayout) -> Result<Option<Vec<Payout>>, PayoutRefused> {
        let cause = Cause::request(uuid::Uuid::new_v4().to_string(), SERVICE_NAME, self.deps.clock.now());
        self.run_payout(Message::RetryPayout(retry), cause, false).await
    }

    /// Runs a payout message from a topic.
    pub async fn handle_payout(&self, message: Message, cause: Cause) -> Result<Option<Vec<Payout>>, PayoutRefused> {
        self.run_payout(message, cause, true).await
    }

    /// Runs a payout message, commits its outcome, and returns the payouts it
    /// touched as they stand after it; `None` for any other message.
    async fn run_payout(
        &self,
        message: Message,
        cause: Cause,
        from_topic: bool,
    ) -> Result<Option<Vec<Payout>>, PayoutRefused> {
        let at = cause.at;
        let commands: Vec<(OrderId, PayoutCommand)> = match message {
            Message::PayOutRunner(c) => vec![(
                c.order_id,
                PayoutCommand::Request {
                    order_id: c.order_id,
                    runner_id: c.runner_id,
                    amount: c.amount_cents,
                    payout_account: c.payout_account,
                    at,
                },
            )],
            Message::RetryPayout(c) => vec![(
                c.order_id,
                PayoutCommand::Retry {
                    payout_account: c.payout_account,
                    at,
                },
            )],
            Message::FundsReleased(released) => vec![(
                released.order_id,
                PayoutCommand::ObserveRelease {
                    order_id: released.order_id,
                    runner_id: released.runner_id,
                    amount: released.amount_cents,
                    at,
                },
            )],
            // An order named twice would be two changes of one payout at one
            // version: a conflict on every try.
            Message::PayoutAccountAdded(added) => unique(&added.order_ids)
                .into_iter()
                .map(|order_id| {
                    (
                        order_id,
                        PayoutCommand::ProvideAccount {
                            order_id,
                            runner_id: added.runner_id.clone(),
                            payout_account: added.payout_account.clone(),
                            at,
                        },
                    )
                })
                .collect(),
            _ => return Ok(None),
        };
        let mut unit = UnitOfWork::new(cause);
        let mut touched = Vec::new();
        for (order_id, command) in commands {
            let repeat_of_request = matches!(command, PayoutCommand::Request { .. });
            let mut loaded = load::<Payout>(self.deps.store.as_ref(), &order_id.to_string()).await?;
            let events = match execute(&mut loaded, command, &self.gateway).await {
                Ok(events) => events,
                Err(PayoutError::Gateway(GatewayError::Unavailable(reason))) => {
                    return Err(PayoutRefused::Handler(HandlerError::Unavailable(format!(
                        "payout processor unavailable: {reason}"
                    ))));
                }

                Err(refusal) if from_topic => {
                    // A payout command that asks for what the release does not
                    // allow is forged or stale: it is refused without parking
                    // the order's key, behind which its release and its own
                    // request would wait.
                    tracing::warn!(%order_id, refusal = %refusal, "payout command refused");
                    continue;
                }
                Err(refusal) => return Err(PayoutRefused::Refused(refusal)),
            };
            if events.is_empty() && repeat_of_request {
                // Asked again: the saga gets the payout's outcome again.
                if let Some(outcome) = loaded.aggregate.outcome() {
                    unit.publish(&self.deps.contracts, &outcome).map_err(published)?;
                }
            }
            record(self, &mut unit, &mut loaded, &events)?;
            touched.push(loaded.aggregate);
        }
        self.deps.store.commit(unit).await?;
        Ok(Some(touched))
    }
}

fn unique(order_ids: &[OrderId]) -> Vec<OrderId> {
    let mut seen = std::collections::BTreeSet::new();
    order_ids
        .iter()
        .copied()
        .filter(|order_id| seen.insert(*order_id))
        .collect()
}

fn record(
    service: &PaymentService,
    unit: &mut UnitOfWork,
    loaded: &mut Loaded<Payout>,
    events: &[campusg_domain::payment::PayoutEvent],
) -> Result<(), PayoutRefused> {
    for message in events.iter().filter_map(|event| event.message()) {
        unit.publish(&service.deps.contracts, &message).map_err(published)?;
    }
    unit.append_unpublished(loaded, events);
    Ok(())
}

fn published(error: impl std::fmt::Display) -> PayoutRefused {
    PayoutRefused::Handler(HandlerError::Rejected(format!(
        "the payment service could not publish a payout's answer: {error}"
    )))
}
