//! Feeding observed messages to the sagas they belong to.
//!
//! A message goes to the saga its correlation id names. Two kinds are about an
//! order rather than a saga: an acceptance timer's expiry (the timer may have
//! been restarted by an accept-order saga) and an order's cancellation (asked
//! for by the customer, an operator or a timeout); both go to the saga that
//! placed the order, which holds its money. A message whose correlation id
//! names no saga may start one: `order.created` a create-order saga,
//! `order.status_updated` to `ACCEPTED` an accept-order saga.

use std::fmt::Display;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use serde_json::Value;
use tracing::Instrument;

use campusg_domain::ids::{OrderId, SagaId};
use campusg_domain::messages::Message;
use campusg_domain::saga::accept_order::{AcceptOrderSaga, ObserveAcceptance};
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand};
use campusg_domain::saga::Saga;
use campusg_runtime::aggregate::{load, Loaded};
use campusg_runtime::consumer::{HandlerError, MessageHandler};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::{Cause, StateQuery, StoreError, UnitOfWork};

use crate::{SagaOrchestrator, CONSUMER_GROUP, SERVICE_NAME};

/// The saga a message is for, loaded.
enum Route {
    CreateOrder(Loaded<CreateOrderSaga>),
    AcceptOrder(Loaded<AcceptOrderSaga>),
    Nowhere,
}

#[async_trait]
impl MessageHandler for SagaOrchestrator {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let at = self.deps.clock.now();
        let cause = Cause::message(envelope, CONSUMER_GROUP, SERVICE_NAME, at);
        let correlated = SagaId::from_correlation(&envelope.correlation_id);
        let order_id = message.order_id();
        match self.route(correlated, &message).await? {
            Route::CreateOrder(mut loaded) => {
                let saga_id = SagaId::parse(&loaded.id).unwrap_or(correlated);
                let span = tracing::info_span!("saga", %saga_id, order_id = ?order_id, saga_type = "create_order");
                let observe = CreateOrderSagaCommand::Observe { saga_id, message, at };
                self.advance(&mut loaded, observe, cause).instrument(span).await
            }
            Route::AcceptOrder(mut loaded) => {
                let span = tracing::info_span!("saga", saga_id = %correlated, order_id = ?order_id, saga_type = "accept_order");
                let observe = ObserveAcceptance {
                    saga_id: correlated,
                    message,
                    at,
                };
                self.advance(&mut loaded, observe, cause).instrument(span).await
            }
            Route::Nowhere => Ok(()),
        }
    }
}

impl SagaOrchestrator {
    async fn route(&self, correlated: SagaId, message: &Message) -> Result<Route, StoreError> {
        let store = self.deps.store.as_ref();
        let created = load::<CreateOrderSaga>(store, &correlated.to_string()).await?;
        let about_the_order = matches!(message, Message::TimerExpired(_) | Message::OrderCancelled(_));
        if created.aggregate.saga_id.is_some() || matches!(message, Message::OrderCreated(_)) {
            return Ok(Route::CreateOrder(created));
        }
        if about_the_order {
            let placing = match message.order_id() {
                Some(order_id) => self.placing_saga_of(order_id).await?,
                None => None,
            };
            return Ok(match placing {
                Some(saga_id) => Route::CreateOrder(load(store, &saga_id.to_string()).await?),
                None => Route::Nowhere,
            });
        }
        if matches!(
            message,
            Message::OrderStatusUpdated(_)
                | Message::TimerStopped(_)
                | Message::TimerStarted(_)
                | Message::TimerFailed(_)
        ) {
            return Ok(Route::AcceptOrder(load(store, &correlated.to_string()).await?));
        }
        Ok(Route::Nowhere)
    }

    /// The create-order saga that placed `order_id`, if this orchestrator ran it.
    pub async fn placing_saga_of(&self, order_id: OrderId) -> Result<Option<SagaId>, StoreError> {
        let query = StateQuery {
            equals: vec![("order_id".into(), order_id.to_string())],
            limit: Some(1),
            ..StateQuery::default()
        };
        let states = self.deps.store.query_states(CreateOrderSaga::TYPE, &query).await?;
        Ok(states
            .first()
            .and_then(|state| state.get("saga_id"))
            .and_then(Value::as_str)
            .and_then(|id| SagaId::parse(id).ok()))
    }

    /// A create-order saga as it stands, if it exists.
    pub async fn create_order_saga(&self, saga_id: SagaId) -> Result<Option<CreateOrderSaga>, StoreError> {
        let loaded = load::<CreateOrderSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        Ok(loaded.aggregate.saga_id.is_some().then_some(loaded.aggregate))
    }

    /// One saga step: the saga's new events and the commands they cause, committed
    /// together. The HTTP API starts sagas through here too.
    pub async fn advance<S>(
        &self,
        loaded: &mut Loaded<S>,
        command: S::Command,
        cause: Cause,
    ) -> Result<(), HandlerError>
    where
        S: Saga,
        S::Error: Display,
    {
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
            let steps: Vec<String> = reaction.events.iter().map(cqrs_es::DomainEvent::event_type).collect();
            tracing::info!(steps = ?steps, sends = reaction.commands.len(), "saga advanced");
        }
        unit.append_unpublished(loaded, &reaction.events);
        self.deps.store.commit(unit).await?;
        Ok(())
    }
}
