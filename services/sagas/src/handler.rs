//! Feeding observed messages to the sagas they belong to.

use async_trait::async_trait;

use campusg_domain::ids::SagaId;
use campusg_domain::messages::Message;
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand};
use campusg_runtime::aggregate::{load, Loaded};
use campusg_runtime::consumer::{HandlerError, MessageHandler};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::{Cause, UnitOfWork};

use crate::{SagaOrchestrator, CONSUMER_GROUP, SERVICE_NAME};

#[async_trait]
impl MessageHandler for SagaOrchestrator {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let saga_id = SagaId::from_correlation(&envelope.correlation_id);
        let at = self.deps.clock.now();
        let cause = Cause::message(envelope, CONSUMER_GROUP, SERVICE_NAME, at);
        let mut loaded = load::<CreateOrderSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        self.react(
            &mut loaded,
            CreateOrderSagaCommand::Observe { saga_id, message, at },
            cause,
        )
        .await
    }
}

impl SagaOrchestrator {
    /// One saga step: the saga's new events and the commands they cause, committed
    /// together. The HTTP API starts sagas through here too.
    pub async fn react(
        &self,
        loaded: &mut Loaded<CreateOrderSaga>,
        command: CreateOrderSagaCommand,
        cause: Cause,
    ) -> Result<(), HandlerError> {
        let reaction = loaded
            .aggregate
            .react(command)
            .map_err(|e| HandlerError::Rejected(e.to_string()))?;
        let mut unit = UnitOfWork::new(cause);
        for message in &reaction.commands {
            unit.publish(&self.deps.contracts, message).map_err(|e| {
                HandlerError::Rejected(format!("the saga could not publish `{}`: {e}", message.message_type()))
            })?;
        }
        if !reaction.events.is_empty() {
            tracing::info!(
                order_id = ?loaded.aggregate.order_id,
                status = ?loaded.aggregate.status,
                step = ?loaded.aggregate.step,
                "saga advanced"
            );
        }
        unit.append_unpublished(loaded, &reaction.events);
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}
