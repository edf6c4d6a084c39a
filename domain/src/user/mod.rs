//! A user: a customer, a runner, or both. Holds the saved payment method the
//! create-order saga authorizes against, and the payout account a runner is paid to.

mod aggregate;

pub use aggregate::{User, UserCommand, UserError, UserEvent};
