//! The order: what the customer asked for, what it costs, who delivers it, and
//! where in its life it stands.

pub mod after_delivery;
mod aggregate;
mod commands;
mod error;
mod events;
mod replies;
mod request;
mod status;

pub use after_delivery::{AfterDeliveryRefusal, Completion};
pub use aggregate::Order;
pub use commands::OrderCommand;
pub use error::OrderError;
pub use events::OrderEvent;
pub use request::{OrderRejection, OrderRules, ValidatedOrder};
pub use status::OrderStatus;
