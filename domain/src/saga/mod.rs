//! The sagas: event-sourced state machines that turn the events they observe into
//! the commands that move an order forward, or undo what was done when a step fails.
//!
//! Each saga is a cqrs-es aggregate. Its command is an observation (a message seen
//! on an event topic) and its events record each step. [`create_order::CreateOrderSaga::react`]
//! is the saga step: from state and observation to new events plus the commands to
//! send. A message the saga does not expect in its current state (a duplicate, a
//! late reply, a message for another order) yields nothing, which is what makes
//! redelivery harmless.

pub mod create_order;

use std::fmt;

use serde::{Deserialize, Serialize};

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
