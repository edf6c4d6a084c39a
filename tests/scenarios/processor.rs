//! The sandbox processor keeps its own records in the payment service's store:
//! on a real store, a restarted processor answers a key as the first did, and
//! refuses to refund more than it captured.

use std::sync::Arc;

use campusg_adapters::sqlite_store::SqliteEventStore;
use campusg_domain::money::Cents;
use campusg_domain::payment::{AuthorizationRequest, GatewayError, PaymentGateway};
use campusg_payment::sandbox::SandboxGateway;
use campusg_runtime::store::EventStore;

fn request(key: &str, method: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        idempotency_key: key.into(),
        amount: Cents(1000),
        currency: "SGD".into(),
        payment_method: method.into(),
    }
}

/// Finding 2 (in part): the sandbox's idempotency records were in process
/// memory, lost on restart. A new sandbox on the same store (a restarted
/// or another payment process) answers a key as the first did.
#[tokio::test]
async fn a_key_is_answered_the_same_after_a_restart_and_charged_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.path().join("payment.db")).await.unwrap());
    let before = SandboxGateway::keeping_records_in(store.clone());
    let first = before.authorize(request("k", "pm_card_visa")).await.unwrap();
    before.capture("ref", Cents(1000), "capture-k").await.unwrap();
    let after = SandboxGateway::keeping_records_in(store);
    let again = after.authorize(request("k", "pm_card_visa")).await.unwrap();
    after.capture("ref", Cents(1000), "capture-k").await.unwrap();
    assert_eq!(again, first, "the same authorization reference");
    assert_eq!(before.ledger().authorizations + after.ledger().authorizations, 1);
    assert_eq!(before.ledger().captures + after.ledger().captures, 1);
}

/// Review finding (issue 15): two refunds racing past the payment's own
/// check could together return more than was captured. The processor
/// keeps its own account of the charge and refuses the second.
#[tokio::test]
async fn the_processor_refuses_to_refund_more_than_it_captured_whatever_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(&dir.path().join("payment.db")).await.unwrap());
    let sandbox = SandboxGateway::keeping_records_in(store);
    sandbox.capture("auth_1", Cents(1000), "capture-1").await.unwrap();
    sandbox.refund("auth_1", Cents(600), "refund:a").await.unwrap();

    let over = sandbox.refund("auth_1", Cents(600), "refund:b").await;

    assert!(matches!(over, Err(GatewayError::Refused(_))), "{over:?}");
    sandbox.refund("auth_1", Cents(600), "refund:a").await.unwrap();
    sandbox.refund("auth_1", Cents(400), "refund:c").await.unwrap();
    assert_eq!(sandbox.ledger().refunded_cents, 1000);
}
