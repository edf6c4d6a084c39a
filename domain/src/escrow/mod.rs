//! Escrow: the order total held from the moment payment is authorized until it
//! is released to the runner or refunded to the customer.

mod aggregate;

pub use aggregate::{Escrow, EscrowCommand, EscrowError, EscrowEvent, EscrowStatus};
