//! Delivery and the complete-order saga: the runner reports each stage, the
//! payment is captured once, the runner is paid out of escrow once, both
//! parties are told at every step, and then rate each other.

use std::time::Duration;

use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::{eventually, TestApp};

const STAGES: [&str; 5] = ["ON_SITE", "PURCHASED", "COLLECTED", "ON_THE_WAY", "DELIVERED"];

/// A customer's order, paid, accepted by `runner` (paid out to
/// `acct_<runner>`); returns the order id.
pub(crate) async fn an_accepted_order(app: &TestApp, customer: &str, runner: &str) -> String {
    app.create_user(customer, Some("pm_card_visa")).await;
    app.create_runner(runner, Some(&format!("acct_{runner}"))).await;
    let (saga_id, order_id) = app.place_order(customer, 12.99, 2.5).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    let (status, body) = app
        .post(&format!("/api/orders/{order_id}/accept"), &json!({"runner_id": runner}))
        .await;
    assert_eq!(status, 200, "{body}");
    order_id
}

async fn report(app: &TestApp, order_id: &str, runner: &str, stage: &str) -> (u16, Value) {
    app.post(
        &format!("/api/orders/{order_id}/status"),
        &json!({"runner_id": runner, "status": stage}),
    )
    .await
}

pub(crate) async fn deliver(app: &TestApp, order_id: &str, runner: &str) -> String {
    let mut saga_id = String::new();
    for stage in STAGES {
        let (status, body) = report(app, order_id, runner, stage).await;
        assert_eq!(status, 200, "{stage}: {body}");
        assert_eq!(body["order"]["status"], stage);
        saga_id = body["saga_id"].as_str().unwrap().to_string();
    }
    saga_id
}

async fn kinds_for(app: &TestApp, user: &str, at_least: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app.get(&format!("/api/notifications/user/{user}?page_size=100")).await;
        let kinds: Vec<String> = body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .rev() // oldest first
            .map(|n| n["kind"].as_str().unwrap().to_string())
            .collect();
        if kinds.len() >= at_least || tokio::time::Instant::now() > deadline {
            return kinds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[rstest]
#[tokio::test]
async fn the_whole_story_from_order_to_payout_with_notifications_and_ratings(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_story", "runner_story").await;

    let saga_id = deliver(&app, &order_id, "runner_story").await;
    let saga = app.saga_when_finished(&saga_id).await;

    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    assert_eq!(saga["saga_type"], "complete_order");
    let order = app.order(&order_id).await;
    assert_eq!(order["status"], "COMPLETED");
    let total = order["total_cents"].as_i64().unwrap();
    assert_eq!(total, 1549);
    let payments = app.payments_of(&order_id).await;
    assert_eq!(payments[0]["status"], "CAPTURED");
    let escrows = app.escrows_of(&order_id).await;
    assert_eq!(escrows[0]["status"], "RELEASED");
    assert_eq!(
        saga["payout_cents"], total,
        "the runner is paid the food cost plus the delivery fee"
    );
    assert_eq!(app.sandbox.ledger().captured_cents, total);

    let customer = kinds_for(&app, "cust_story", 12).await;
    assert_eq!(
        customer,
        [
            "order_placed",
            "payment_authorized",
            "funds_held",
            "order_listed",
            "order_accepted",
            "runner_on_site",
            "food_purchased",
            "food_collected",
            "on_the_way",
            "delivered",
            "receipt",
            "order_completed",
        ]
    );
    let runner = kinds_for(&app, "runner_story", 9).await;
    assert_eq!(
        runner,
        [
            "order_accepted",
            "runner_on_site",
            "food_purchased",
            "food_collected",
            "on_the_way",
            "delivered",
            "payout",
            "order_completed",
            "payout_sent",
        ]
    );
    let (_, inbox) = app.get("/api/notifications/user/runner_story").await;
    assert_eq!(inbox["unread"], 9);
    let newest = inbox["notifications"][0]["notification_id"].as_str().unwrap();
    let (status, read) = app.post(&format!("/api/notifications/{newest}/read"), &json!({})).await;
    assert_eq!((status, read["read"].as_bool()), (200, Some(true)));
    let (_, inbox) = app.get("/api/notifications/user/runner_story").await;
    assert_eq!(inbox["unread"], 8);

    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/rating"),
            &json!({"rater_id": "cust_story", "score": 5}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/rating"),
            &json!({"rater_id": "runner_story", "score": 4}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/rating"),
            &json!({"rater_id": "cust_story", "score": 1}),
        )
        .await;
    assert_eq!(status, 409, "once per order: {body}");
    let (_, runner_user) = app.get("/users/runner_story").await;
    assert_eq!(runner_user["runner_rating"], 5.0, "{runner_user}");
    let (_, customer_user) = app.get("/users/cust_story").await;
    assert_eq!(customer_user["customer_rating"], 4.0, "{customer_user}");
}

#[rstest]
#[tokio::test]
async fn a_capture_that_fails_once_is_retried_and_pays_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_flaky", "runner_flaky").await;
    app.sandbox.fail_next_captures(1);

    let saga_id = deliver(&app, &order_id, "runner_flaky").await;
    let saga = app.saga_when_finished(&saga_id).await;

    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let ledger = app.sandbox.ledger();
    assert_eq!(ledger.captures, 1);
    assert_eq!(ledger.captured_cents, 1549);
    assert_eq!(app.payments_of(&order_id).await[0]["status"], "CAPTURED");
}

#[rstest]
#[tokio::test]
async fn the_trigger_called_three_times_and_its_messages_delivered_twice_pay_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_repeat", "runner_repeat").await;
    for stage in &STAGES[..4] {
        assert_eq!(report(&app, &order_id, "runner_repeat", stage).await.0, 200);
    }
    let (status, body) = app
        .post("/saga/complete/completeOrder", &json!({"orderId": order_id}))
        .await;
    assert_eq!(status, 409, "not delivered yet: {body}");
    assert_eq!(report(&app, &order_id, "runner_repeat", "DELIVERED").await.0, 200);

    let mut sagas = Vec::new();
    for _ in 0..3 {
        let (status, body) = app
            .post("/saga/complete/completeOrder", &json!({"orderId": order_id}))
            .await;
        assert_eq!(status, 202, "{body}");
        sagas.push(body["saga_id"].as_str().unwrap().to_string());
    }
    assert!(sagas.iter().all(|s| s == &sagas[0]), "{sagas:?}");
    let saga = app.saga_when_finished(&sagas[0]).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");

    // Every command the saga sent, delivered again.
    let correlation = sagas[0].as_str();
    for (topic, message) in [
        (
            "payment_commands",
            json!({"type": "capture_payment", "payload": {"order_id": order_id}}),
        ),
        (
            "escrow_commands",
            json!({"type": "release_funds", "payload": {"order_id": order_id, "runner_id": "runner_repeat"}}),
        ),
        (
            "order_commands",
            json!({"type": "update_order_status",
                   "payload": {"order_id": order_id, "status": "COMPLETED", "runner_id": "runner_repeat"}}),
        ),
    ] {
        let mut message = message;
        message["correlation_id"] = json!(correlation);
        message["timestamp"] = json!("2026-11-22T12:00:00Z");
        app.publish(topic, &message).await;
    }
    // Each repeat is answered as the first time; the answers reach the saga.
    for (topic, answer) in [
        ("payment_events", "payment.captured"),
        ("escrow_events", "escrow.released"),
        ("order_events", "order.status_updated"),
    ] {
        let app = &app;
        eventually(&format!("{answer} was not repeated"), || async move {
            let answered = app
                .records(&[topic])
                .await
                .iter()
                .filter(|r| r.header("type") == Some(answer) && r.header("correlation_id") == Some(correlation))
                .count();
            if answered >= 2 {
                Ok(())
            } else {
                Err(format!("{answered} answer(s)"))
            }
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (_, sagas_of_order) = app
        .get(&format!("/api/sagas?order_id={order_id}&saga_type=complete_order"))
        .await;
    assert_eq!(sagas_of_order["sagas"].as_array().unwrap().len(), 1);
    let ledger = app.sandbox.ledger();
    assert_eq!((ledger.captures, ledger.captured_cents), (1, 1549));
    let escrows = app.escrows_of(&order_id).await;
    assert_eq!(escrows.len(), 1);
    assert_eq!(escrows[0]["status"], "RELEASED");
    let (_, runner_inbox) = app.get("/api/notifications/user/runner_repeat?page_size=100").await;
    let payouts = runner_inbox["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "payout")
        .count();
    assert_eq!(payouts, 1, "{runner_inbox}");
    let saga = app.saga_when_finished(&sagas[0]).await;
    let released = saga["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "complete_order_saga.funds_released")
        .count();
    assert_eq!(released, 1);
}

#[rstest]
#[tokio::test]
async fn only_the_assigned_runner_moves_the_order_one_stage_at_a_time(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_guarded", "runner_assigned").await;

    let (status, body) = report(&app, &order_id, "runner_intruder", "ON_SITE").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("another runner"),
        "{body}"
    );
    let (status, body) = report(&app, &order_id, "runner_assigned", "PURCHASED").await;
    assert_eq!(status, 409, "a stage may not be skipped: {body}");
    let (status, body) = report(&app, &order_id, "runner_assigned", "COMPLETED").await;
    assert_eq!(status, 422, "completing is the saga's job: {body}");

    for stage in STAGES {
        assert_eq!(report(&app, &order_id, "runner_assigned", stage).await.0, 200);
    }
    let (status, body) = report(&app, &order_id, "runner_assigned", "ON_THE_WAY").await;
    assert_eq!(status, 409, "no going back: {body}");
    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/cancel-acceptance"),
            &json!({"runner_id": "runner_assigned"}),
        )
        .await;
    assert_eq!(status, 409, "too late to give it back: {body}");
    let order = app.order(&order_id).await;
    assert_eq!(order["runner_id"], "runner_assigned");
}

#[rstest]
#[tokio::test]
async fn the_update_stream_of_a_completing_saga_yields_each_step_and_then_ends(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_stream", "runner_stream").await;
    for stage in &STAGES[..4] {
        assert_eq!(report(&app, &order_id, "runner_stream", stage).await.0, 200);
    }
    // The capture is slow, so the stream is open while the saga works.
    app.sandbox.fail_next_captures(2);
    assert_eq!(report(&app, &order_id, "runner_stream", "DELIVERED").await.0, 200);
    let (status, triggered) = app
        .post("/saga/complete/completeOrder", &json!({"orderId": order_id}))
        .await;
    assert_eq!(status, 202, "{triggered}");
    let saga_id = triggered["saga_id"].as_str().unwrap();

    let mut response = app
        .client
        .get(format!("{}/saga/complete/orderUpdateStream/{saga_id}", app.address))
        .bearer_auth(app.operator_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    read.await.expect("the stream ends by itself");

    let updates: Vec<Value> = text
        .split("\n\n")
        .filter(|block| block.contains("event: update"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let steps: Vec<&str> = updates.iter().map(|u| u["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "started",
            "payment_captured",
            "funds_released",
            "order_completed",
            "payout_account_retrieved",
            "payout_settled",
            "completed"
        ],
        "{text}"
    );
    assert_eq!(updates.last().unwrap()["status"], "COMPLETED");
    assert!(text.trim_end().contains("event: end"), "{text}");

    let (status, _) = app
        .get("/saga/complete/orderUpdateStream/00000000-0000-0000-0000-000000000009")
        .await;
    assert_eq!(status, 404);
}

/// Issue 13, finding 1: `POST /escrow/release` paid an order's escrow to whoever
/// it named, and the complete-order saga then took that release as its own.
#[rstest]
#[tokio::test]
async fn the_escrow_is_released_only_to_the_assigned_runner_of_a_delivered_order(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = an_accepted_order(&app, "cust_release", "runner_release").await;

    let (status, body) = app
        .post(
            "/escrow/release",
            &json!({"order_id": order_id, "runner_id": "mallory"}),
        )
        .await;
    assert_eq!(status, 409, "not a delivered order, not its runner: {body}");
    let (status, body) = app
        .post(
            "/escrow/release",
            &json!({"order_id": order_id, "runner_id": "runner_release"}),
        )
        .await;
    assert_eq!(status, 409, "not delivered yet: {body}");
    assert_eq!(app.escrows_of(&order_id).await[0]["status"], "HELD");

    let saga_id = deliver(&app, &order_id, "runner_release").await;
    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let escrow = &app.escrows_of(&order_id).await[0];
    assert_eq!(escrow["status"], "RELEASED");
    assert_eq!(escrow["runner_id"], "runner_release", "{escrow}");

    let (status, body) = app
        .post(
            "/escrow/release",
            &json!({"order_id": order_id, "runner_id": "mallory"}),
        )
        .await;
    assert_eq!(status, 409, "never answered as done for someone else: {body}");
    let (status, body) = app
        .post(
            "/escrow/release",
            &json!({"order_id": order_id, "runner_id": "runner_release"}),
        )
        .await;
    assert_eq!(status, 200, "the same release again answers the same: {body}");
    assert_eq!(body["runner_id"], "runner_release");
}
