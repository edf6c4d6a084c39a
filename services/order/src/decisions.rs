//! Decisions the HTTP API needs answered at once: a runner accepting an order,
//! a runner giving it back, a customer cancelling it.
//!
//! Each is decided by the order aggregate and committed under optimistic
//! concurrency, so of two requests racing for the same order exactly one
//! commits; the other is decided again against the order as it now is, and
//! refused with the reason. The event each decision publishes starts or moves
//! the saga that does the rest (stopping timers, refunds), correlated with it.

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::messages::CancelRequester;
use campusg_domain::order::{Order, OrderCommand, OrderError, OrderStatus};
use campusg_runtime::aggregate::{execute, load_from_read_model};
use campusg_runtime::http::ApiError;
use campusg_runtime::store::{Cause, StoreError, UnitOfWork};

use crate::{OrderService, SERVICE_NAME};

/// How many times a decision is retried when another request changed the order
/// between its load and its commit.
const ATTEMPTS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("{0}")]
    Refused(OrderError),
    #[error("customer {0} did not place this order")]
    NotTheCustomer(UserId),
    #[error("{0} is not a delivery stage a runner reports (ON_SITE, PURCHASED, COLLECTED, ON_THE_WAY, DELIVERED)")]
    NotADeliveryStage(OrderStatus),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a decision did: the order after it, and the saga it is correlated with.
pub struct Decided {
    pub order: Order,
    pub saga_id: SagaId,
}

impl OrderService {
    /// A runner accepts a `CREATED` order with no runner. The acceptance is the
    /// first step of an accept-order saga whose id names this acceptance round.
    /// The same runner accepting again is answered as the first time.
    pub async fn accept(&self, order_id: OrderId, runner_id: UserId) -> Result<Decided, DecisionError> {
        self.decide(order_id, |order| {
            if order.status == Some(OrderStatus::Accepted) && order.runner_id.as_ref() == Some(&runner_id) {
                return Ok(Plan::AlreadyDone(SagaId::for_acceptance(order_id, order.acceptances)));
            }
            Ok(Plan::Run {
                command: OrderCommand::ChangeStatus {
                    status: OrderStatus::Accepted,
                    runner_id: Some(runner_id.clone()),
                    at: self.deps.clock.now(),
                },
                saga_id: SagaId::for_acceptance(order_id, order.acceptances + 1),
            })
        })
        .await
    }

    /// The assigned runner gives the order back before buying the food: it is
    /// `CREATED` again with no runner. Correlated with the acceptance's saga,
    /// which then restarts the acceptance timer.
    pub async fn give_back(&self, order_id: OrderId, runner_id: UserId) -> Result<Decided, DecisionError> {
        self.decide(order_id, |order| {
            Ok(Plan::Run {
                command: OrderCommand::ChangeStatus {
                    status: OrderStatus::Created,
                    runner_id: Some(runner_id.clone()),
                    at: self.deps.clock.now(),
                },
                saga_id: SagaId::for_acceptance(order_id, order.acceptances),
            })
        })
        .await
    }

    /// The assigned runner reports the next delivery stage. `DELIVERED` is the
    /// first step of the order's complete-order saga; the stages before it
    /// belong to the acceptance's saga. Reporting the current stage again is
    /// answered as the first time.
    pub async fn advance(
        &self,
        order_id: OrderId,
        runner_id: UserId,
        status: OrderStatus,
    ) -> Result<Decided, DecisionError> {
        if !status.is_delivery_stage() {
            return Err(DecisionError::NotADeliveryStage(status));
        }
        self.decide(order_id, |order| {
            let saga_id = match status {
                OrderStatus::Delivered => SagaId::for_completion(order_id),
                _ => SagaId::for_acceptance(order_id, order.acceptances),
            };
            if order.status == Some(status) && order.runner_id.as_ref() == Some(&runner_id) {
                return Ok(Plan::AlreadyDone(saga_id));
            }
            Ok(Plan::Run {
                command: OrderCommand::ChangeStatus {
                    status,
                    runner_id: Some(runner_id.clone()),
                    at: self.deps.clock.now(),
                },
                saga_id,
            })
        })
        .await
    }

    /// The customer cancels before a runner accepts. `saga_id` is the saga that
    /// placed the order, which then undoes the payment and the escrow hold.
    pub async fn cancel_for_customer(
        &self,
        order_id: OrderId,
        customer_id: Option<UserId>,
        reason: String,
        saga_id: SagaId,
    ) -> Result<Decided, DecisionError> {
        self.decide(order_id, |order| {
            if let Some(customer) = &customer_id {
                if order.customer_id.as_ref() != Some(customer) {
                    return Err(DecisionError::NotTheCustomer(customer.clone()));
                }
            }
            Ok(Plan::Run {
                command: OrderCommand::Cancel {
                    reason: reason.clone(),
                    requested_by: CancelRequester::Customer,
                    expected_created_at: None,
                    at: self.deps.clock.now(),
                },
                saga_id,
            })
        })
        .await
    }

    /// An order as it stands, if it exists.
    pub async fn find(&self, order_id: OrderId) -> Result<Option<Order>, StoreError> {
        let loaded = load_from_read_model::<Order>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        Ok(loaded.aggregate.status.is_some().then_some(loaded.aggregate))
    }

    /// Loads the order, plans a command against it, runs and commits it; again
    /// from the load if another writer got there first.
    async fn decide(
        &self,
        order_id: OrderId,
        plan: impl Fn(&Order) -> Result<Plan, DecisionError>,
    ) -> Result<Decided, DecisionError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut loaded = load_from_read_model::<Order>(self.deps.store.as_ref(), &order_id.to_string()).await?;
            if loaded.aggregate.status.is_none() {
                return Err(DecisionError::Refused(OrderError::NotFound));
            }
            let (command, saga_id) = match plan(&loaded.aggregate)? {
                Plan::AlreadyDone(saga_id) => {
                    return Ok(Decided {
                        order: loaded.aggregate,
                        saga_id,
                    })
                }
                Plan::Run { command, saga_id } => (command, saga_id),
            };
            let events = execute(&mut loaded, command, &())
                .await
                .map_err(DecisionError::Refused)?;
            let mut unit = UnitOfWork::new(Cause::request(saga_id.to_string(), SERVICE_NAME, self.deps.clock.now()));
            unit.append(&self.deps.contracts, &mut loaded, &events, true)
                .map_err(|e| StoreError::Other(format!("the order service could not publish its event: {e}")))?;
            match self.deps.store.commit(unit).await {
                Ok(()) => {
                    tracing::info!(order_id = %order_id, saga_id = %saga_id, status = ?loaded.aggregate.status, "order decided");
                    return Ok(Decided {
                        order: loaded.aggregate,
                        saga_id,
                    });
                }
                Err(StoreError::Conflict { .. }) if attempt < ATTEMPTS => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

enum Plan {
    Run { command: OrderCommand, saga_id: SagaId },
    AlreadyDone(SagaId),
}

/// How the HTTP API answers a decision: an unknown order is a 404, a customer
/// acting as the runner of their own order, a runner on another's order or a
/// customer on another's order a 403 (not theirs to do), a broken
/// rule a 422, anything that conflicts with the order's state a 409 saying why.
impl From<DecisionError> for ApiError {
    fn from(error: DecisionError) -> ApiError {
        match error {
            DecisionError::Refused(OrderError::NotFound) => ApiError::not_found("the order does not exist"),
            DecisionError::Refused(
                refusal @ (OrderError::RunnerIsCustomer(_) | OrderError::NotTheAssignedRunner(_)),
            ) => ApiError::forbidden(refusal.to_string()),
            DecisionError::Refused(refusal @ OrderError::RunnerRequired) => {
                ApiError::unprocessable(refusal.to_string())
            }
            DecisionError::Refused(refusal) => ApiError::conflict(refusal.to_string()),
            DecisionError::NotTheCustomer(_) => ApiError::forbidden(error.to_string()),
            DecisionError::NotADeliveryStage(_) => ApiError::unprocessable(error.to_string()),
            DecisionError::Store(store) => store.into(),
        }
    }
}
