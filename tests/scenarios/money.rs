//! Money end to end (SPEC section 13): refunds of a captured payment, by an
//! operator, in full or in part, once each whatever is retried.

use rstest::rstest;
use serde_json::{json, Value};

use campusg_runtime::access::Role;

use crate::backends::Backend;
use crate::helpers::{eventually, TestApp};

const STAGES: [&str; 5] = ["ON_SITE", "PURCHASED", "COLLECTED", "ON_THE_WAY", "DELIVERED"];

/// A customer's order, paid, delivered and completed: its payment captured.
/// Returns the order id and the total in cents.
async fn a_completed_order(app: &TestApp, customer: &str, runner: &str) -> (String, i64) {
    app.create_user(customer, Some("pm_card_visa")).await;
    app.create_user(runner, None).await;
    let (saga_id, order_id) = app.place_order(customer, 12.99, 2.5).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    let accept = json!({"runner_id": runner});
    let (status, body) = app.post(&format!("/api/orders/{order_id}/accept"), &accept).await;
    assert_eq!(status, 200, "{body}");
    let mut completion = String::new();
    for stage in STAGES {
        let report = json!({"runner_id": runner, "status": stage});
        let (status, body) = app.post(&format!("/api/orders/{order_id}/status"), &report).await;
        assert_eq!(status, 200, "{stage}: {body}");
        completion = body["saga_id"].as_str().unwrap().to_string();
    }
    assert_eq!(app.saga_when_finished(&completion).await["status"], "COMPLETED");
    let total = app.order(&order_id).await["total_cents"].as_i64().unwrap();
    (order_id, total)
}

/// Asks for a refund as an operator under `key`; the status and the answer.
async fn refund(app: &TestApp, order_id: &str, amount: &str, key: &str) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/api/orders/{order_id}/refunds", app.address))
        .bearer_auth(app.operator_token())
        .header("idempotency-key", key)
        .json(&json!({"amount": amount, "reason": "the drink was missing"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Refunds `amount` and waits for its saga to finish; the finished saga.
async fn refunded(app: &TestApp, order_id: &str, amount: &str, key: &str) -> Value {
    let (status, started) = refund(app, order_id, amount, key).await;
    assert_eq!(status, 202, "{started}");
    app.saga_when_finished(started["saga_id"].as_str().unwrap()).await
}

async fn refund_notices(app: &TestApp, customer: &str) -> usize {
    let (_, inbox) = app
        .get(&format!("/api/notifications/user/{customer}?page_size=100"))
        .await;
    inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "refund_issued")
        .count()
}

#[rstest]
#[tokio::test]
async fn a_captured_payment_is_refunded_in_part_then_in_full_and_never_beyond(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (order_id, total) = a_completed_order(&app, "cust_refund", "runner_refund").await;

    let saga = refunded(&app, &order_id, "4.00", "first").await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    assert_eq!(saga["saga_type"], "refund_order");
    assert_eq!(saga["refund_cents"], 400);
    let payment = &app.payments_of(&order_id).await[0];
    assert_eq!(payment["status"], "PARTIALLY_REFUNDED", "{payment}");
    assert_eq!(payment["refunded_cents"], 400);

    // More than is left: refused, with what is left.
    let over = format!("{}.{:02}", (total - 400 + 1) / 100, (total - 400 + 1) % 100);
    let (status, refused) = refund(&app, &order_id, &over, "too-much").await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("11.49"),
        "{refused}"
    );

    let rest = format!("{}.{:02}", (total - 400) / 100, (total - 400) % 100);
    let saga = refunded(&app, &order_id, &rest, "the-rest").await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let payment = &app.payments_of(&order_id).await[0];
    assert_eq!(payment["status"], "REFUNDED", "{payment}");
    assert_eq!(payment["refunded_cents"], total);
    assert_eq!(refund(&app, &order_id, "0.01", "after-all").await.0, 409);

    let ledger = app.sandbox.ledger();
    assert_eq!((ledger.refunds, ledger.refunded_cents), (2, total));
    eventually("the customer was not told of both refunds", || async {
        match refund_notices(&app, "cust_refund").await {
            2 => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;

    // Only operators refund; nothing is refunded before the capture.
    let customer = app.token("cust_refund", Role::Customer);
    let body = json!({"amount": "1.00"});
    let path = format!("/api/orders/{order_id}/refunds");
    assert_eq!(app.post_as(&path, &body, Some(&customer)).await.0, 403);
    app.create_user("cust_early", Some("pm_card_visa")).await;
    let (saga_id, unpaid) = app.place_order("cust_early", 5.0, 1.0).await;
    app.saga_when_finished(&saga_id).await;
    assert_eq!(refund(&app, &unpaid, "1.00", "early").await.0, 409);
}

#[rstest]
#[tokio::test]
async fn a_refund_the_processor_fails_for_now_is_retried_and_made_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (order_id, _) = a_completed_order(&app, "cust_flaky", "runner_flaky").await;
    app.sandbox.fail_next_refunds(2);

    let saga = refunded(&app, &order_id, "2.50", "flaky").await;

    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let ledger = app.sandbox.ledger();
    assert_eq!((ledger.refunds, ledger.refunded_cents), (1, 250));
    assert_eq!(app.payments_of(&order_id).await[0]["refunded_cents"], 250);
}

#[rstest]
#[tokio::test]
async fn two_identical_refund_requests_refund_once(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (order_id, _) = a_completed_order(&app, "cust_twice", "runner_twice").await;

    let (first_status, first) = refund(&app, &order_id, "3.00", "once").await;
    let (second_status, second) = refund(&app, &order_id, "3.00", "once").await;

    assert_eq!((first_status, second_status), (202, 202), "{first} {second}");
    assert_eq!(first["saga_id"], second["saga_id"]);
    app.saga_when_finished(first["saga_id"].as_str().unwrap()).await;
    let payment = &app.payments_of(&order_id).await[0];
    assert_eq!(payment["refunded_cents"], 300, "{payment}");
    assert_eq!(app.sandbox.ledger().refunds, 1);
}
