//! The sagas: event-sourced state machines that turn the events they observe into
//! the commands that move an order forward, or undo what was done when a step fails.
//!
//! Each saga is a cqrs-es aggregate. Its command is an observation (a message seen
//! on an event topic) and its events record each step. [`Saga::react`] is the
//! saga step: from state and observation to new events plus the commands to
//! send. A message the saga does not expect in its current state (a duplicate, a
//! late reply, a message for another order) yields nothing, which is what makes
//! redelivery harmless.
//!
//! - [`create_order`]: places an order, pays for it, lists it for runners, and
//!   undoes all of it if the order is cancelled before a runner accepts.
//! - [`accept_order`]: binds a runner and stops the acceptance timer; restarts the
//!   timer if the runner gives the order back.
//! - [`complete_order`]: once delivered, captures the payment, pays the runner
//!   out of escrow and marks the order `COMPLETED`.
//! - [`refund_order`]: an operator's refund of part or all of a captured payment.
//! - [`routing`]: which saga a message is for.

pub mod accept_order;
pub mod complete_order;
pub mod create_order;
pub mod refund_order;
pub mod routing;

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, SagaId};
use crate::messages::{Message, SagaUpdate};
use crate::snapshot::WholeReadModel;

/// What one observation made a saga do.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaction<E> {
    pub events: Vec<E>,
    pub commands: Vec<Message>,
}

impl<E> Default for Reaction<E> {
    fn default() -> Self {
        Reaction {
            events: Vec::new(),
            commands: Vec::new(),
        }
    }
}

/// A saga: an aggregate whose events cause messages. A saga is read before
/// each of its steps, so its read model must be all of it ([`WholeReadModel`]):
/// it is loaded from it.
pub trait Saga: WholeReadModel {
    /// The events a command leads to, with no side effects.
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// The messages one event causes: the next command, compensations, and the
    /// saga's own progress on `saga_events`. Called with the event applied.
    fn messages_caused_by(&self, event: &Self::Event) -> Vec<Message>;

    /// The saga step: decides the events for `command`, applies them, and returns
    /// them with every message they cause.
    fn react(&mut self, command: Self::Command) -> Result<Reaction<Self::Event>, Self::Error> {
        let events = self.decide(command)?;
        let mut commands = Vec::new();
        for event in &events {
            self.apply(event.clone());
            commands.extend(self.messages_caused_by(event));
        }
        Ok(Reaction { events, commands })
    }
}

/// The body of every saga's `Aggregate::handle`: the events the saga decides
/// for `command`, written to `sink`.
pub async fn write_decided<S: Saga>(saga: &mut S, command: S::Command, sink: &EventSink<S>) -> Result<(), S::Error> {
    for event in saga.decide(command)? {
        sink.write(event, saga).await;
    }
    Ok(())
}

/// What every saga records of itself, whatever its steps: flattened into each
/// saga's state, so that its read model keeps these fields at the top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SagaHeader {
    pub saga_id: Option<SagaId>,
    pub order_id: Option<OrderId>,
    pub status: Option<SagaStatus>,
    /// Why the saga failed or is undoing what it did.
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl SagaHeader {
    /// The header of a saga that starts now.
    pub fn started(saga_id: SagaId, order_id: OrderId, at: DateTime<Utc>) -> SagaHeader {
        SagaHeader {
            saga_id: Some(saga_id),
            order_id: Some(order_id),
            status: Some(SagaStatus::Started),
            error: None,
            started_at: Some(at),
            updated_at: Some(at),
        }
    }

    /// The saga's progress after its step `step` at `at`, as published on
    /// `saga_events`.
    pub fn progress(&self, saga_type: &str, step: String, at: DateTime<Utc>) -> SagaUpdate {
        SagaUpdate {
            saga_id: self.saga_id.expect("a saga with events has an id"),
            saga_type: saga_type.to_string(),
            order_id: self.order_id.expect("a saga with events has an order"),
            status: self.status.map(SagaStatus::as_str).unwrap_or_default().to_string(),
            step,
            error: self.error.clone(),
            at,
            started_at: self.started_at,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaStatus {
    Started,
    Compensating,
    Completed,
    Compensated,
    Failed,
    Cancelling,
    Cancelled,
}

impl SagaStatus {
    pub const ALL: [SagaStatus; 7] = [
        SagaStatus::Started,
        SagaStatus::Compensating,
        SagaStatus::Completed,
        SagaStatus::Compensated,
        SagaStatus::Failed,
        SagaStatus::Cancelling,
        SagaStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SagaStatus::Started => "STARTED",
            SagaStatus::Compensating => "COMPENSATING",
            SagaStatus::Completed => "COMPLETED",
            SagaStatus::Compensated => "COMPENSATED",
            SagaStatus::Failed => "FAILED",
            SagaStatus::Cancelling => "CANCELLING",
            SagaStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<SagaStatus> {
        SagaStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// Whether the saga has nothing more to do.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SagaStatus::Completed | SagaStatus::Compensated | SagaStatus::Failed | SagaStatus::Cancelled
        )
    }
}

impl fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
