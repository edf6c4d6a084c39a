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
//! Payouts go to any account but one starting with `acct_declined`, which the
//! processor declines (a closed account).
//!
//! Every call honours its idempotency key: a key seen before gets the first
//! answer again and moves no money. As a remote processor keeps its records on
//! its side, the sandbox keeps one per key in the payment store
//! ([`SandboxGateway::keeping_records_in`]), committed on its own, apart from
//! the payment's commit: a payment service that crashes after the call and
//! before its commit, or a replica, calls again under the same key and gets the
//! same answer, across restarts. [`SandboxGateway::ledger`] counts what this
//! process's sandbox did for the first time, so tests can check that nothing
//! was charged twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use campusg_runtime::aggregate::{load, run_alone, NotRun};
use campusg_runtime::store::{Cause, EventStore, StoreError};

use campusg_domain::messages::DeclineReason;
use campusg_domain::money::Cents;
use campusg_domain::payment::{AuthorizationOutcome, AuthorizationRequest, GatewayError, PaymentGateway};

/// The payment methods the sandbox approves.
pub const APPROVED_TEST_METHODS: [&str; 3] = ["pm_card_visa", "pm_card_mastercard", "pm_card_amex"];
pub const DECLINED_TEST_METHOD: &str = "pm_card_chargeDeclined";
pub const INSUFFICIENT_FUNDS_TEST_METHOD: &str = "pm_card_chargeDeclinedInsufficientFunds";
/// Payout accounts starting with this are declined.
pub const DECLINING_PAYOUT_ACCOUNT: &str = "acct_declined";

/// What the sandbox has done, per operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub authorizations: u64,
    pub voids: u64,
    pub captures: u64,
    pub captured_cents: i64,
    pub refunds: u64,
    pub refunded_cents: i64,
    pub payouts: u64,
    pub paid_out_cents: i64,
}

#[derive(Default)]
pub struct SandboxGateway {
    state: Mutex<SandboxState>,
    /// Where the processor's records live; in memory only when none.
    records: Option<Arc<dyn EventStore>>,
}

/// The processor's record of one call, by its idempotency key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessorCall {
    pub operation: Option<String>,
    pub outcome: Option<AuthorizationOutcome>,
    /// The money the call moved or held: authorized, captured, refunded or paid out.
    #[serde(default)]
    pub amount_cents: Option<Cents>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum ProcessorCallEvent {
    Made {
        operation: String,
        outcome: Option<AuthorizationOutcome>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount_cents: Option<Cents>,
    },
}

impl DomainEvent for ProcessorCallEvent {
    fn event_type(&self) -> String {
        "processor_call.made".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("made already")]
pub struct MadeAlready;

impl Aggregate for ProcessorCall {
    const TYPE: &'static str = "processor_call";
    type Command = ProcessorCallEvent;
    type Event = ProcessorCallEvent;
    type Error = MadeAlready;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), MadeAlready> {
        if self.operation.is_some() {
            return Err(MadeAlready);
        }
        sink.write(command, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let ProcessorCallEvent::Made {
            operation,
            outcome,
            amount_cents,
        } = event;
        self.operation = Some(operation);
        self.outcome = outcome;
        self.amount_cents = amount_cents;
    }
}

/// The processor's own account of one charge (an authorization), by its
/// reference: what it captured and refunded, so that it refuses to refund more
/// than it took, whatever its callers believe (two refunds racing past the
/// payment's own check).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    pub captured_cents: Cents,
    pub refunded_cents: Cents,
    pub refund_keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChargeCommand {
    Capture { amount: Cents },
    Refund { key: String, amount: Cents },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum ChargeEvent {
    Captured { amount_cents: Cents },
    Refunded { key: String, amount_cents: Cents },
}

impl DomainEvent for ChargeEvent {
    fn event_type(&self) -> String {
        match self {
            ChargeEvent::Captured { .. } => "charge.captured".to_string(),
            ChargeEvent::Refunded { .. } => "charge.refunded".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the refund of {asked} is more than the {left} left of the charge")]
pub struct OverCapture {
    asked: Cents,
    left: Cents,
}

impl Aggregate for Charge {
    const TYPE: &'static str = "processor_charge";
    type Command = ChargeCommand;
    type Event = ChargeEvent;
    type Error = OverCapture;
    type Services = ();

    async fn handle(&mut self, command: ChargeCommand, _: &(), sink: &EventSink<Self>) -> Result<(), OverCapture> {
        let event = match command {
            ChargeCommand::Capture { .. } if self.captured_cents > Cents::ZERO => return Ok(()),
            ChargeCommand::Capture { amount } => ChargeEvent::Captured { amount_cents: amount },
            ChargeCommand::Refund { key, .. } if self.refund_keys.contains(&key) => return Ok(()),
            ChargeCommand::Refund { key, amount } => {
                let left = Cents(self.captured_cents.0 - self.refunded_cents.0);
                // A charge captured before the processor kept this account
                // has no capture on it: the payment's own check stands alone.
                if self.captured_cents > Cents::ZERO && amount > left {
                    return Err(OverCapture { asked: amount, left });
                }
                ChargeEvent::Refunded {
                    key,
                    amount_cents: amount,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: ChargeEvent) {
        match event {
            ChargeEvent::Captured { amount_cents } => self.captured_cents = amount_cents,
            ChargeEvent::Refunded { key, amount_cents } => {
                self.refunded_cents = Cents(self.refunded_cents.0 + amount_cents.0);
                self.refund_keys.push(key);
            }
        }
    }
}

#[derive(Default)]
struct SandboxState {
    answers: HashMap<String, AuthorizationOutcome>,
    completed: HashMap<String, ()>,
    ledger: Ledger,
    /// Captures and refunds still to fail as if the processor were down, for
    /// fault tests.
    failing_captures: u32,
    failing_refunds: u32,
}

impl SandboxGateway {
    /// A sandbox that keeps its records in memory (unit tests).
    pub fn new() -> SandboxGateway {
        SandboxGateway::default()
    }

    /// A sandbox that keeps its records in `store`: give it the store itself,
    /// not a consumer's batching handle, so that its records commit when it
    /// makes them, as a remote processor's do.
    pub fn keeping_records_in(store: Arc<dyn EventStore>) -> SandboxGateway {
        SandboxGateway {
            state: Mutex::default(),
            records: Some(store),
        }
    }

    /// The record of the call under `key`, if one was made.
    async fn recorded(&self, key: &str) -> Result<Option<ProcessorCall>, GatewayError> {
        let Some(store) = &self.records else {
            return Ok(None);
        };
        let loaded = load::<ProcessorCall>(store.as_ref(), key).await.map_err(unavailable)?;
        Ok(loaded.aggregate.operation.is_some().then_some(loaded.aggregate))
    }

    /// Records the call under `key`; `false` when another call (a replica's)
    /// recorded it first, whose record then stands.
    async fn record(
        &self,
        key: &str,
        operation: &str,
        outcome: Option<AuthorizationOutcome>,
        amount_cents: Option<Cents>,
    ) -> Result<bool, GatewayError> {
        let Some(store) = &self.records else {
            return Ok(true);
        };
        let made = ProcessorCallEvent::Made {
            operation: operation.to_string(),
            outcome,
            amount_cents,
        };
        let cause = Cause::request(key.to_string(), "card-processor", chrono::Utc::now());
        match run_alone::<ProcessorCall>(store.as_ref(), key, made, &(), cause).await {
            Ok(_) => Ok(true),
            Err(NotRun::Refused(MadeAlready) | NotRun::Store(StoreError::Conflict { .. })) => Ok(false),
            Err(NotRun::Store(error)) => Err(unavailable(error)),
        }
    }

    /// Makes the next `count` captures fail as an unavailable processor does, so
    /// that a test can watch the capture being retried.
    pub fn fail_next_captures(&self, count: u32) {
        self.state
            .lock()
            .expect("sandbox lock is never poisoned")
            .failing_captures = count;
    }

    /// Makes the next `count` refunds fail as an unavailable processor does.
    pub fn fail_next_refunds(&self, count: u32) {
        self.state().failing_refunds = count;
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
        if let Some(answer) = self.recorded(&request.idempotency_key).await? {
            if let Some(outcome) = answer.outcome {
                return Ok(outcome);
            }
        }
        if let Some(answer) = self.state().answers.get(&request.idempotency_key) {
            return Ok(answer.clone());
        }
        let method = request.payment_method.as_str();
        let answer = if APPROVED_TEST_METHODS.contains(&method) {
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
        if !self
            .record(
                &request.idempotency_key,
                "authorize",
                Some(answer.clone()),
                Some(request.amount),
            )
            .await?
        {
            // Another call under the key recorded its answer first: that one stands.
            return self
                .recorded(&request.idempotency_key)
                .await?
                .and_then(|call| call.outcome)
                .ok_or_else(|| GatewayError::Unavailable("the processor lost a record".into()));
        }
        let mut state = self.state();
        if matches!(answer, AuthorizationOutcome::Approved { .. }) {
            state.ledger.authorizations += 1;
        }
        state.answers.insert(request.idempotency_key, answer.clone());
        Ok(answer)
    }

    async fn void(&self, _authorization_reference: &str, idempotency_key: &str) -> Result<(), GatewayError> {
        if self.recorded(idempotency_key).await?.is_some() || self.state().completed.contains_key(idempotency_key) {
            return Ok(());
        }
        if self.record(idempotency_key, "void", None, None).await? {
            let mut state = self.state();
            if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
                state.ledger.voids += 1;
            }
        }
        Ok(())
    }

    async fn capture(
        &self,
        authorization_reference: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        {
            let mut state = self.state();
            if state.failing_captures > 0 {
                state.failing_captures -= 1;
                return Err(GatewayError::Unavailable(
                    "the sandbox is failing captures on purpose".into(),
                ));
            }
        }
        if self.recorded(idempotency_key).await?.is_some() || self.state().completed.contains_key(idempotency_key) {
            return Ok(());
        }
        self.charge(authorization_reference, ChargeCommand::Capture { amount })
            .await?;
        if self.record(idempotency_key, "capture", None, Some(amount)).await? {
            let mut state = self.state();
            if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
                state.ledger.captures += 1;
                state.ledger.captured_cents += amount.0;
            }
        }
        Ok(())
    }

    async fn refund(
        &self,
        authorization_reference: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<(), GatewayError> {
        self.refund_once(authorization_reference, amount, idempotency_key).await
    }

    async fn pay_out(
        &self,
        payout_account: &str,
        amount: Cents,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        // The reference follows from the key, so a repeated call answers the same.
        let reference = format!("po_{}", idempotency_key.replace(':', "_"));
        if let Some(call) = self.recorded(idempotency_key).await? {
            return match call.operation.as_deref() {
                Some("payout") => Ok(reference),
                _ => Err(declined()),
            };
        }
        if self.state().completed.contains_key(idempotency_key) {
            return Ok(reference);
        }
        if payout_account.starts_with(DECLINING_PAYOUT_ACCOUNT) {
            self.record(idempotency_key, "payout_declined", None, Some(amount))
                .await?;
            return Err(declined());
        }
        if self.record(idempotency_key, "payout", None, Some(amount)).await? {
            let mut state = self.state();
            if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
                state.ledger.payouts += 1;
                state.ledger.paid_out_cents += amount.0;
            }
            return Ok(reference);
        }
        // Another call under the key recorded first: its record stands.
        match self
            .recorded(idempotency_key)
            .await?
            .and_then(|call| call.operation)
            .as_deref()
        {
            Some("payout") => Ok(reference),
            _ => Err(declined()),
        }
    }
}

fn declined() -> GatewayError {
    GatewayError::Refused("the payout account declined the transfer (closed account)".into())
}

impl SandboxGateway {
    /// Applies `command` to the charge's account, when the processor keeps records.
    async fn charge(&self, reference: &str, command: ChargeCommand) -> Result<(), GatewayError> {
        let Some(store) = &self.records else {
            return Ok(());
        };
        let cause = Cause::request(reference.to_string(), "card-processor", chrono::Utc::now());
        match run_alone::<Charge>(store.as_ref(), reference, command, &(), cause).await {
            Ok(_) => Ok(()),
            Err(NotRun::Refused(over)) => Err(GatewayError::Refused(over.to_string())),
            // Another call changed the charge meanwhile: asked again, this one
            // meets the charge as it now stands.
            Err(NotRun::Store(error)) => Err(unavailable(error)),
        }
    }

    async fn refund_once(&self, reference: &str, amount: Cents, idempotency_key: &str) -> Result<(), GatewayError> {
        {
            let mut state = self.state();
            if state.failing_refunds > 0 {
                state.failing_refunds -= 1;
                return Err(GatewayError::Unavailable(
                    "the sandbox is failing refunds on purpose".into(),
                ));
            }
        }
        if self.recorded(idempotency_key).await?.is_some() || self.state().completed.contains_key(idempotency_key) {
            return Ok(());
        }
        self.charge(
            reference,
            ChargeCommand::Refund {
                key: idempotency_key.to_string(),
                amount,
            },
        )
        .await?;
        if self.record(idempotency_key, "refund", None, Some(amount)).await? {
            let mut state = self.state();
            if state.completed.insert(idempotency_key.to_string(), ()).is_none() {
                state.ledger.refunds += 1;
                state.ledger.refunded_cents += amount.0;
            }
        }
        Ok(())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SandboxState> {
        self.state.lock().expect("sandbox lock is never poisoned")
    }
}

fn unavailable(error: StoreError) -> GatewayError {
    GatewayError::Unavailable(format!("the processor's records are out of reach: {error}"))
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
    async fn a_payout_to_a_declining_account_is_refused_the_same_each_time_and_pays_nothing() {
        let sandbox = SandboxGateway::new();
        let first = sandbox.pay_out("acct_declined_1", Cents(500), "payout:o:1").await;
        assert!(matches!(first, Err(GatewayError::Refused(_))));
        let sent = sandbox.pay_out("acct_ok", Cents(500), "payout:o:2").await.unwrap();
        let again = sandbox.pay_out("acct_ok", Cents(500), "payout:o:2").await.unwrap();
        assert_eq!(sent, again);
        assert_eq!((sandbox.ledger().payouts, sandbox.ledger().paid_out_cents), (1, 500));
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
