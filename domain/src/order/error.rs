//! Why an order refuses a command.

use crate::ids::UserId;
use crate::order::OrderStatus;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order has already been placed")]
    AlreadyPlaced,
    #[error("the order does not exist")]
    NotFound,
    #[error("the order is already {0}")]
    AlreadyInStatus(OrderStatus),
    #[error("an order cannot go from {from} to {to}")]
    IllegalTransition { from: OrderStatus, to: OrderStatus },
    #[error("this change needs the runner's id")]
    RunnerRequired,
    #[error("runner {0} cannot accept their own order")]
    RunnerIsCustomer(UserId),
    #[error("the order is assigned to another runner, not {0}")]
    NotTheAssignedRunner(UserId),
    #[error("the order is {0}: a runner gives back only an order they hold (ACCEPTED or ON_SITE)")]
    NotHeld(OrderStatus),
    #[error("another runner has already accepted the order")]
    TakenByAnotherRunner,
    #[error("the order has been accepted {0} times, the most it may; it waits for its acceptance window to run out")]
    TooManyAcceptances(u32),
    #[error("the order is already cancelled")]
    AlreadyCancelled,
    #[error("an order that is {0} can no longer be cancelled")]
    CannotCancel(OrderStatus),
    #[error("the customer can cancel an order only before a runner accepts it; it is {0}, so only an operator can cancel it now")]
    CustomerCannotCancel(OrderStatus),
    #[error("the acceptance window ran out, but the order is {0}, no longer waiting for a runner")]
    NoLongerWaitingForRunner(OrderStatus),
    #[error("the acceptance timer is stale: the order went back to CREATED since, with a fresh timer")]
    StaleAcceptanceTimer,
}
