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
    #[error("the order is already cancelled")]
    AlreadyCancelled,
    #[error("an order that is {0} can no longer be cancelled")]
    CannotCancel(OrderStatus),
}
