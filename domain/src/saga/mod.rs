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

use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::messages::Message;

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

/// A saga: an aggregate whose events cause messages.
pub trait Saga: Aggregate {
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
