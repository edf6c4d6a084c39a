//! A payment: one card authorization per order, later captured or voided, and
//! refunded in whole or in part; and a payout: the runner's share, sent to
//! their payout account.
//!
//! The card processor is reached through the [`PaymentGateway`] port, which the
//! payment aggregate receives as its cqrs-es `Services`. The domain defines the
//! port; the payment service supplies the built-in sandbox or a real processor.

mod aggregate;
mod gateway;
mod payout;

pub use aggregate::{Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus};
pub use gateway::{AuthorizationOutcome, AuthorizationRequest, GatewayError, PaymentGateway};
pub use payout::{Payout, PayoutCommand, PayoutError, PayoutEvent, PayoutStatus, MAX_PAYOUT_ATTEMPTS};
