//! Feeding observed messages to the sagas they belong to.
//!
//! A message's type says which kind of saga it can concern, and its correlation
//! id which saga of that kind. Some messages are about an order rather than a
//! saga, and go to the order's saga whoever caused them:
//! - an acceptance timer's expiry (the timer may have been restarted by an
//!   accept-order saga) and an order's cancellation (asked for by the customer,
//!   an operator or a timeout) go to the create-order saga that placed the
//!   order, which holds its money;
//! - an order reaching `DELIVERED` goes to the order's one complete-order saga.
//!
//! A message whose correlation id names no saga may start one: `order.created`
//! a create-order saga, `order.status_updated` to `ACCEPTED` an accept-order
//! saga, to `DELIVERED` a complete-order saga.

use std::fmt::Display;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use serde_json::Value;
use tracing::Instrument;

use campusg_domain::ids::{OrderId, SagaId, UserId};
use campusg_domain::messages::Message;
use campusg_domain::saga::accept_order::{AcceptOrderSaga, ObserveAcceptance};
use campusg_domain::saga::complete_order::{CompleteOrderSaga, CompleteOrderSagaCommand};
use campusg_domain::saga::create_order::{CreateOrderSaga, CreateOrderSagaCommand};
use campusg_domain::saga::refund_order::{RefundSaga, RefundSagaCommand};
use campusg_domain::saga::routing::{address_of, SagaAddress};
use campusg_domain::saga::Saga;
use campusg_runtime::aggregate::{load_from_read_model, Loaded};
use campusg_runtime::consumer::{HandlerError, MessageHandler};
use campusg_runtime::envelope::Envelope;
use campusg_runtime::store::{Cause, StateQuery, StoreError, UnitOfWork};
use campusg_runtime::telemetry::saga_span;

use crate::{SagaOrchestrator, CONSUMER_GROUP, SERVICE_NAME};

/// The saga a message is for, loaded.
enum Route {
    CreateOrder(Loaded<CreateOrderSaga>),
    AcceptOrder(Loaded<AcceptOrderSaga>),
    CompleteOrder(Loaded<CompleteOrderSaga>),
    Refund(Loaded<RefundSaga>),
    Nowhere,
}

#[async_trait]
impl MessageHandler for SagaOrchestrator {
    async fn handle(&self, envelope: &Envelope, message: Message) -> Result<(), HandlerError> {
        let at = self.deps.clock.now();
        let cause = Cause::message(envelope, CONSUMER_GROUP, SERVICE_NAME, at);
        let correlated = SagaId::from_correlation(&envelope.correlation_id);
        let order_text = message.order_id().map(|id| id.to_string()).unwrap_or_default();
        match self.route(correlated, &message).await? {
            Route::CreateOrder(mut loaded) => {
                let saga_id = SagaId::parse(&loaded.id).unwrap_or(correlated);
                let span = saga_span(&saga_id.to_string(), "create_order saga", &order_text);
                let observe = CreateOrderSagaCommand::Observe { saga_id, message, at };
                self.advance(&mut loaded, observe, cause.correlated_with(saga_id))
                    .instrument(span)
                    .await
            }
            Route::AcceptOrder(mut loaded) => {
                let span = saga_span(&correlated.to_string(), "accept_order saga", &order_text);
                let observe = ObserveAcceptance {
                    saga_id: correlated,
                    message,
                    at,
                };
                self.advance(&mut loaded, observe, cause).instrument(span).await
            }
            Route::CompleteOrder(mut loaded) => {
                let saga_id = SagaId::parse(&loaded.id).unwrap_or(correlated);
                let span = saga_span(&saga_id.to_string(), "complete_order saga", &order_text);
                let observe = CompleteOrderSagaCommand::Observe { saga_id, message, at };
                self.advance(&mut loaded, observe, cause.correlated_with(saga_id))
                    .instrument(span)
                    .await
            }
            Route::Refund(mut loaded) => {
                let saga_id = SagaId::parse(&loaded.id).unwrap_or(correlated);
                let span = saga_span(&saga_id.to_string(), "refund_order saga", &order_text);
                let observe = RefundSagaCommand::Observe { message, at };
                self.advance(&mut loaded, observe, cause.correlated_with(saga_id))
                    .instrument(span)
                    .await
            }
            Route::Nowhere => Ok(()),
        }
    }
}

impl SagaOrchestrator {
    async fn route(&self, correlated: SagaId, message: &Message) -> Result<Route, StoreError> {
        let store = self.deps.store.as_ref();
        Ok(match address_of(message, correlated) {
            SagaAddress::CreateOrder(saga_id) => {
                Route::CreateOrder(load_from_read_model(store, &saga_id.to_string()).await?)
            }
            SagaAddress::AcceptOrder(saga_id) => {
                Route::AcceptOrder(load_from_read_model(store, &saga_id.to_string()).await?)
            }
            SagaAddress::CompleteOrder(saga_id) => {
                Route::CompleteOrder(load_from_read_model(store, &saga_id.to_string()).await?)
            }
            SagaAddress::Refund(saga_id) => Route::Refund(load_from_read_model(store, &saga_id.to_string()).await?),
            SagaAddress::CreateOrderOrPlacing { correlated, order_id } => {
                let created = load_from_read_model::<CreateOrderSaga>(store, &correlated.to_string()).await?;
                if created.aggregate.header.saga_id.is_some() {
                    return Ok(Route::CreateOrder(created));
                }
                let placing = match order_id {
                    Some(order_id) => self.placing_saga_of(order_id).await?,
                    None => None,
                };
                match placing {
                    Some(saga_id) => Route::CreateOrder(load_from_read_model(store, &saga_id.to_string()).await?),
                    None => Route::Nowhere,
                }
            }
            SagaAddress::CreateOrderElseAcceptOrder(saga_id) => {
                let created = load_from_read_model::<CreateOrderSaga>(store, &saga_id.to_string()).await?;
                if created.aggregate.header.saga_id.is_some() {
                    Route::CreateOrder(created)
                } else {
                    Route::AcceptOrder(load_from_read_model(store, &saga_id.to_string()).await?)
                }
            }
            SagaAddress::Nowhere => Route::Nowhere,
        })
    }

    /// The order's complete-order saga, if it has started.
    pub async fn completion_of(&self, order_id: OrderId) -> Result<Option<CompleteOrderSaga>, StoreError> {
        let saga_id = SagaId::for_completion(order_id);
        let loaded = load_from_read_model::<CompleteOrderSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        Ok(loaded.aggregate.header.saga_id.is_some().then_some(loaded.aggregate))
    }

    /// Starts the complete-order saga of an order found `DELIVERED` by
    /// `runner_id`; the saga's id, whether this call started it or it was
    /// already running.
    pub async fn start_completion(&self, order_id: OrderId, runner_id: UserId) -> Result<SagaId, HandlerError> {
        let saga_id = SagaId::for_completion(order_id);
        let mut loaded =
            load_from_read_model::<CompleteOrderSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        if loaded.aggregate.header.saga_id.is_some() {
            return Ok(saga_id);
        }
        let at = self.deps.clock.now();
        let start = CompleteOrderSagaCommand::Start {
            saga_id,
            order_id,
            runner_id,
            at,
        };
        let cause = Cause::request(saga_id.to_string(), SERVICE_NAME, at);
        let span = saga_span(&saga_id.to_string(), "complete_order saga", &order_id.to_string());
        match self.advance(&mut loaded, start, cause).instrument(span).await {
            Ok(()) => Ok(saga_id),
            // Started meanwhile by the order's DELIVERED event: the same saga.
            Err(HandlerError::Store(StoreError::Conflict { .. })) => Ok(saga_id),
            Err(error) => Err(error),
        }
    }

    /// Starts a refund saga for `amount` of an order's captured payment; its
    /// id, or the refund saga already started under `saga_id` (a request
    /// retried under its idempotency key).
    pub async fn start_refund(&self, refund: RefundRequest) -> Result<RefundSaga, HandlerError> {
        let saga_id = refund.saga_id;
        let mut loaded = load_from_read_model::<RefundSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        if loaded.aggregate.header.saga_id.is_some() {
            return Ok(loaded.aggregate);
        }
        let at = self.deps.clock.now();
        let start = RefundSagaCommand::Start {
            saga_id,
            order_id: refund.order_id,
            customer_id: refund.customer_id,
            amount: refund.amount,
            reason: refund.reason,
            requested_by: refund.requested_by,
            at,
        };
        let cause = Cause::request(saga_id.to_string(), SERVICE_NAME, at);
        let span = saga_span(&saga_id.to_string(), "refund_order saga", &refund.order_id.to_string());
        self.advance(&mut loaded, start, cause).instrument(span).await?;
        Ok(loaded.aggregate)
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
        let loaded = load_from_read_model::<CreateOrderSaga>(self.deps.store.as_ref(), &saga_id.to_string()).await?;
        Ok(loaded.aggregate.header.saga_id.is_some().then_some(loaded.aggregate))
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

/// What an operator asks a refund saga to do.
pub struct RefundRequest {
    pub saga_id: SagaId,
    pub order_id: OrderId,
    pub customer_id: UserId,
    pub amount: campusg_domain::money::Cents,
    pub reason: String,
    pub requested_by: UserId,
}
