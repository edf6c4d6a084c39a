//! How the order service answers each command.

use async_trait::async_trait;

use campusg_domain::ids::{OrderId, SagaId};
use campusg_domain::messages::{CancelOrder, CreateOrder, Message, OrderCreationFailed, UpdateOrderStatus};
use campusg_domain::order::{Order, OrderCommand, OrderError, ValidatedOrder};
use campusg_runtime::aggregate::{execute, load_from_read_model};
use campusg_runtime::clock::Clock;
use campusg_runtime::command::CommandService;
use campusg_runtime::consumer::HandlerError;
use campusg_runtime::service::ServiceDescription;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::OrderService;

#[async_trait]
impl CommandService for OrderService {
    const DESCRIPTION: ServiceDescription = crate::DESCRIPTION;

    fn clock(&self) -> &dyn Clock {
        self.deps.clock.as_ref()
    }

    /// Runs one command and commits its outcome. Its answers are events on
    /// the topic, for the saga that asked; none comes back.
    async fn handle_command(&self, message: Message, cause: Cause) -> Result<Option<Message>, HandlerError> {
        let mut unit = UnitOfWork::new(cause);
        match message {
            Message::CreateOrder(command) => self.create(command, &mut unit).await?,
            Message::UpdateOrderStatus(command) => self.update_status(command, &mut unit).await?,
            Message::CancelOrder(command) => self.cancel(command, &mut unit).await?,
            // The consumer hands this service only the types it declares.
            _ => return Ok(None),
        }
        self.deps.store.commit(unit).await?;
        Ok(None)
    }
}

impl OrderService {
    async fn create(&self, command: CreateOrder, unit: &mut UnitOfWork) -> Result<(), HandlerError> {
        let order_id = command
            .order_id
            .unwrap_or_else(|| OrderId::for_saga(SagaId::from_correlation(&unit.cause.correlation_id)));
        let mut loaded = load_from_read_model::<Order>(self.deps.store.as_ref(), &order_id.to_string()).await?;
        let contracts = &self.deps.contracts;
        let validated = match ValidatedOrder::parse(&command.order_details, &self.rules) {
            Ok(validated) => validated,
            Err(rejection) => {
                let failed = OrderCreationFailed {
                    order_id,
                    customer_id: command.customer_id,
                    reason: rejection.to_string(),
                };
                unit.publish(contracts, &Message::OrderCreationFailed(failed))
                    .map_err(rejected)?;
                return Ok(());
            }
        };
        let place = OrderCommand::Place {
            order_id,
            customer_id: command.customer_id,
            order: validated,
            at: unit.cause.at,
        };
        match execute(&mut loaded, place, &()).await {
            Ok(events) => unit.append(contracts, &mut loaded, &events, true).map_err(rejected)?,
            // The same order placed again: the first placement stands.
            Err(OrderError::AlreadyPlaced) => {}
            Err(other) => return Err(HandlerError::Rejected(other.to_string())),
        }
        Ok(())
    }

    async fn update_status(&self, command: UpdateOrderStatus, unit: &mut UnitOfWork) -> Result<(), HandlerError> {
        let mut loaded = load_from_read_model::<Order>(self.deps.store.as_ref(), &command.order_id.to_string()).await?;
        let contracts = &self.deps.contracts;
        let change = OrderCommand::ChangeStatus {
            status: command.status,
            runner_id: command.runner_id.clone(),
            at: unit.cause.at,
        };
        match execute(&mut loaded, change, &()).await {
            Ok(events) => unit.append(contracts, &mut loaded, &events, true).map_err(rejected)?,
            Err(refusal) => {
                let answer =
                    loaded
                        .aggregate
                        .status_change_refused(command.order_id, command.status, refusal, unit.cause.at);
                unit.publish(contracts, &answer).map_err(rejected)?;
            }
        }
        Ok(())
    }

    async fn cancel(&self, command: CancelOrder, unit: &mut UnitOfWork) -> Result<(), HandlerError> {
        let mut loaded = load_from_read_model::<Order>(self.deps.store.as_ref(), &command.order_id.to_string()).await?;
        let contracts = &self.deps.contracts;
        let cancel = OrderCommand::Cancel {
            reason: command.reason.clone(),
            requested_by: command.requested_by,
            expected_created_at: command.expected_created_at,
            at: unit.cause.at,
        };
        match execute(&mut loaded, cancel, &()).await {
            Ok(events) => unit.append(contracts, &mut loaded, &events, true).map_err(rejected)?,
            Err(refusal) => {
                let answer =
                    loaded
                        .aggregate
                        .cancellation_refused(command.order_id, command.reason, refusal, unit.cause.at);
                unit.publish(contracts, &answer).map_err(rejected)?;
            }
        }
        Ok(())
    }
}

/// A message this service builds that breaks its own schema is a bug; the
/// command that caused it is dead-lettered with the reason rather than retried forever.
fn rejected(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::Rejected(format!("the order service could not publish its answer: {error}"))
}
