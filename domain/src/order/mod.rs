//! The order: what the customer asked for, what it costs, who delivers it, and
//! where in its life it stands.

mod aggregate;
mod commands;
mod error;
mod events;
mod request;
mod status;

pub use aggregate::Order;
pub use commands::OrderCommand;
pub use error::OrderError;
pub use events::OrderEvent;
pub use request::{OrderRejection, OrderRules, ValidatedOrder};
pub use status::OrderStatus;
