//! The port to a card processor, which also pays runners out.

use async_trait::async_trait;

use crate::messages::DeclineReason;
use crate::money::Cents;

/// A card processor. Every call carries an idempotency key: a processor that has
/// seen the key before answers as it did the first time and moves no money again.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    async fn authorize(&self, request: AuthorizationRequest) -> Result<AuthorizationOutcome, GatewayError>;
    async fn void(&self, authorization_reference: &str, idempotency_key: &str) -> Result<(), GatewayError>;
    async fn capture(
        &self,
        authorization_reference: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<(), GatewayError>;
    /// Returns `amount` of a captured payment to the card it came from.
    async fn refund(
        &self,
        authorization_reference: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<(), GatewayError>;
    /// Sends `amount` to a runner's payout account; the transfer's reference.
    /// A declined transfer is [`GatewayError::Refused`].
    async fn pay_out(&self, payout_account: &str, amount: Cents, idempotency_key: &str)
        -> Result<String, GatewayError>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub idempotency_key: String,
    pub amount: Cents,
    pub currency: String,
    pub payment_method: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuthorizationOutcome {
    Approved { reference: String },
    Declined { reason: DeclineReason, message: String },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The processor could not be reached or failed; the same call may succeed later.
    #[error("the payment processor is unavailable: {0}")]
    Unavailable(String),
    /// The processor refused the operation for good.
    #[error("the payment processor refused: {0}")]
    Refused(String),
}
