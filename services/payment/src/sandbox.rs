//! The built-in card processor: behaves like a processor's test mode.
//!
//! Named test payment methods decide the outcome, as in Stripe's test mode:
//!
//! | payment method | authorization |
//! |---|---|
//! | `pm_card_visa`, `pm_card_mastercard`, `pm_card_amex` | approved |
//! | `pm_card_chargeDeclined` | declined: card declined |
//! | `pm_card_chargeDeclinedInsufficientFunds` | declined: insufficient funds |
//! | anything else | declined: unknown payment method |
//!
//! Every call honours its idempotency key: a key seen before gets the first
//! answer again and moves no money. The sandbox keeps its ledger in memory, as a
//! remote processor would keep it on its side; [`SandboxGateway::ledger`] lets
//! tests check that nothing was charged twice.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use campusg_domain::messages::DeclineReason;
use campusg_domain::money::Cents;
use campusg_domain::payment::{AuthorizationOutcome, AuthorizationRequest, GatewayError, PaymentGateway};

/// The payment methods the sandbox approves.
pub const APPROVED_TEST_METHODS: [&str; 3] = ["pm_card_visa", "pm_card_mastercard", "pm_card_amex"];
pub const DECLINED_TEST_METHOD: &str = "pm_card_chargeDeclined";
pub const INSUFFICIENT_FUNDS_TEST_METHOD: &str = "pm_card_chargeDeclinedInsufficientFunds";

/// What the sandbox has done, per operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub authorizations: u64,
    pub voids: u64,
    pub captures: u64,
    pub captured_cents: i64,
}

#[derive(Default)]
pub struct SandboxGateway {
    state: Mutex<SandboxState>,
}

#[derive(Default)]
struct SandboxState {
    answers: HashMap<String, AuthorizationOutcome>,
    completed: HashMap<String, ()>,
    ledger: Ledger,
    /// Captures still to fail as if the processor were down, for fault tests.
    failing_captures: u32,
}

impl SandboxGateway {
    pub fn new() -> SandboxGateway {
        SandboxGateway::default()
    }

    /// Makes the next `count` captures fail as an unavailable processor does, so
    /// that a test can watch the capture being retried.
    pub fn fail_next_captures(&self, count: u32) {
        self.state
            .lock()
            .expect("sandbox lock is never poisoned")
            .failing_captures = count;
    }

    pub fn ledger(&self) -> Ledger {
        self.state
            .lock()
            .expect("sandbox lock is never poisoned")
            .ledger
            .clone()
    }
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    async fn authorize(&self, request: AuthorizationRequest) -> Result<AuthorizationOutcome, GatewayError> {
        let mut state = self.state.lock().expect("sandbox lock is never poisoned");
        if let Some(answer) = state.answers.get(&request.idempotency_key) {
            return Ok(answer.clone());
        }
        let method = request.payment_method.as_str();
        let answer = if APPROVED_TEST_METHODS.contains(&method) {
            state.ledger.authorizations += 1;
            AuthorizationOutcome::Approved {
                reference: format!("auth_{}", uuid::Uuid::new_v4().simple()),
            }
        } else if method == DECLINED_TEST_METHOD {
            AuthorizationOutcome::Declined {
                reason: DeclineReason::CardDeclined,
                message: "your card was declined".to_string(),
            }
        } else if method == INSUFFICIENT_FUNDS_TEST_METHOD {
            AuthorizationOutcome::Declined {
                reason: DeclineReason::InsufficientFunds,
                message: "your card has insufficient funds".to_string(),
            }
        } else {
            AuthorizationOutcome::Declined {
                reason: DeclineReason::UnknownPaymentMethod,
                message: format!("`{method}` is not a payment method the processor knows"),
            }
        };
        state.answers.insert(request.idempotency_key, answer.clone());
        Ok(answer)
    }

    async fn void(&self, _authorization_reference: &str, idempotency_key: &str) -> Result<(), GatewayError> {
        let mut state = self.state.lock().expect("sandbox lock is never poisoned");
        if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
            state.ledger.voids += 1;
        }
        Ok(())
    }

    async fn capture(
        &self,
        _authorization_reference: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        let mut state = self.state.lock().expect("sandbox lock is never poisoned");
        if state.failing_captures > 0 {
            state.failing_captures -= 1;
            return Err(GatewayError::Unavailable(
                "the sandbox is failing captures on purpose".into(),
            ));
        }
        if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
            state.ledger.captures += 1;
            state.ledger.captured_cents += amount.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, method: &str) -> AuthorizationRequest {
        AuthorizationRequest {
            idempotency_key: key.into(),
            amount: Cents(1000),
            currency: "SGD".into(),
            payment_method: method.into(),
        }
    }

    #[tokio::test]
    async fn a_repeated_key_gets_the_first_answer_and_authorizes_once() {
        let sandbox = SandboxGateway::new();
        let first = sandbox.authorize(request("k", "pm_card_visa")).await.unwrap();
        let second = sandbox.authorize(request("k", "pm_card_visa")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(sandbox.ledger().authorizations, 1);
    }

    #[tokio::test]
    async fn the_test_methods_decline_as_named() {
        let sandbox = SandboxGateway::new();
        let declined = sandbox.authorize(request("a", DECLINED_TEST_METHOD)).await.unwrap();
        let broke = sandbox
            .authorize(request("b", INSUFFICIENT_FUNDS_TEST_METHOD))
            .await
            .unwrap();
        assert!(matches!(
            declined,
            AuthorizationOutcome::Declined {
                reason: DeclineReason::CardDeclined,
                ..
            }
        ));
        assert!(matches!(
            broke,
            AuthorizationOutcome::Declined {
                reason: DeclineReason::InsufficientFunds,
                ..
            }
        ));
    }
}
