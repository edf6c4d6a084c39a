//! The acceptance timer: an order no runner accepts is cancelled and refunded
//! when the window runs out, once, even across a restart or a duplicate expiry;
//! and the customer may cancel before a runner accepts.

use chrono::Duration;
use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::TestApp;

/// A little more than the acceptance window.
fn window_passed() -> Duration {
    Duration::minutes(31)
}

/// A customer with a card, and an order of theirs waiting for a runner.
async fn an_order_waiting_for_a_runner(app: &TestApp, customer: &str) -> (String, String) {
    app.create_user(customer, Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order(customer, 12.99, 2.0).await;
    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    (saga_id, order_id)
}

/// The order, payment and escrow of a cancelled and refunded order.
async fn assert_cancelled_and_refunded(app: &TestApp, saga: &Value, order_id: &str) {
    assert_eq!(saga["status"], "CANCELLED", "{saga}");
    assert_eq!(app.order(order_id).await["status"], "CANCELLED");
    let payments = app.payments_of(order_id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "VOIDED", "{payments:?}");
    let escrows = app.escrows_of(order_id).await;
    assert_eq!(escrows.len(), 1);
    assert_eq!(escrows[0]["status"], "REFUNDED", "{escrows:?}");
}

/// How many records on `topic` are of `message_type` and about `order_id`.
async fn count(app: &TestApp, topic: &str, message_type: &str, order_id: &str) -> usize {
    app.records(&[topic])
        .await
        .iter()
        .filter(|r| r.header("type") == Some(message_type) && r.key.as_deref() == Some(order_id))
        .count()
}

#[rstest]
#[tokio::test]
async fn an_order_no_runner_accepts_is_cancelled_and_refunded_when_the_window_runs_out(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (saga_id, order_id) = an_order_waiting_for_a_runner(&app, "cust_waiting").await;

    app.advance_clock(Duration::minutes(29));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.order(&order_id).await["status"],
        "CREATED",
        "not before the window ends"
    );

    app.advance_clock(window_passed() - Duration::minutes(29));
    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;

    assert_cancelled_and_refunded(&app, &saga, &order_id).await;
    assert_eq!(
        saga["cancellation_reason"],
        "no runner accepted the order within the acceptance window"
    );
    assert_eq!(saga["cancelled_by"], "timeout");
    let (_, timers) = app.get(&format!("/events?order_id={order_id}")).await;
    assert_eq!(timers["events"][0]["status"], "FIRED", "{timers}");
    assert_eq!(count(&app, "timer_events", "timer.expired", &order_id).await, 1);
    let told = app
        .record_when("notification_events", |r| {
            r.value.contains("order_timed_out") && r.value.contains("cust_waiting")
        })
        .await;
    assert!(told.value.contains("no runner accepted the order"), "{}", told.value);
}

#[rstest]
#[tokio::test]
async fn a_timer_that_fell_due_while_the_system_was_down_fires_once_on_restart(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (saga_id, order_id) = an_order_waiting_for_a_runner(&app, "cust_restart").await;
    let environment = app.stop().await;

    environment.clock.advance(window_passed());
    let app = TestApp::spawn_with(environment, &[]).await;
    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;

    assert_cancelled_and_refunded(&app, &saga, &order_id).await;
    assert_eq!(count(&app, "timer_events", "timer.expired", &order_id).await, 1);
    assert_eq!(count(&app, "escrow_events", "escrow.refunded", &order_id).await, 1);
}

#[rstest]
#[tokio::test]
async fn an_order_given_back_and_never_taken_again_is_cancelled_and_refunded_when_its_new_window_runs_out(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (saga_id, order_id) = an_order_waiting_for_a_runner(&app, "cust_given_back_timeout").await;
    let (status, accepted) = app
        .post(
            &format!("/api/orders/{order_id}/accept"),
            &json!({"runner_id": "runner_gives_back"}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    let acceptance = accepted["saga_id"].as_str().unwrap();
    app.saga_when_finished(acceptance).await;
    // The order is listed again a little later than it was first created.
    app.advance_clock(Duration::minutes(5));
    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/cancel-acceptance"),
            &json!({"runner_id": "runner_gives_back"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.saga_when(acceptance, |s| s["status"] == "CANCELLED").await;
    let (_, timers) = app.get(&format!("/events?order_id={order_id}")).await;
    assert_eq!(
        timers["events"].as_array().map(Vec::len),
        Some(2),
        "a fresh timer: {timers}"
    );

    app.advance_clock(window_passed());
    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;

    assert_cancelled_and_refunded(&app, &saga, &order_id).await;
    assert_eq!(saga["cancelled_by"], "timeout");
    assert_eq!(count(&app, "escrow_events", "escrow.refunded", &order_id).await, 1);
}

#[rstest]
#[tokio::test]
async fn an_expiry_delivered_twice_cancels_once_and_refunds_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (saga_id, order_id) = an_order_waiting_for_a_runner(&app, "cust_twice").await;
    let saga = app.saga_when_finished(&saga_id).await;

    // The same expiry twice, as an operator replaying it would publish it.
    for fired_at in ["2026-11-22T10:00:00Z", "2026-11-22T10:00:01Z"] {
        let expired = json!({
            "type": "timer.expired",
            "correlation_id": saga_id,
            "timestamp": fired_at,
            "payload": {
                "timer_id": saga["timer_id"],
                "timer_type": "order_acceptance",
                "entity_id": order_id,
                "order_id": order_id,
                "due_at": saga["timer_due_at"],
                "fired_at": fired_at,
                "payload": {}
            }
        });
        app.publish("timer_events", &expired).await;
    }
    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;

    assert_cancelled_and_refunded(&app, &saga, &order_id).await;
    assert_eq!(count(&app, "order_events", "order.cancelled", &order_id).await, 1);
    assert_eq!(count(&app, "escrow_events", "escrow.refunded", &order_id).await, 1);
    assert_eq!(count(&app, "payment_events", "payment.voided", &order_id).await, 1);
    let cancellations = saga["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "create_order_saga.cancellation_requested")
        .count();
    assert_eq!(cancellations, 1, "{saga}");
}

#[rstest]
#[tokio::test]
async fn the_customer_cancels_a_waiting_order_and_no_runner_can_accept_it_after(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (saga_id, order_id) = an_order_waiting_for_a_runner(&app, "cust_cancels").await;

    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/cancel"),
            &json!({"customer_id": "cust_cancels", "reason": "changed my mind"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["saga_id"], saga_id);
    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;
    assert_cancelled_and_refunded(&app, &saga, &order_id).await;
    assert_eq!(saga["cancelled_by"], "customer");
    let (_, timers) = app.get(&format!("/events?order_id={order_id}")).await;
    assert_eq!(timers["events"][0]["status"], "CANCELLED", "{timers}");

    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/accept"),
            &json!({"runner_id": "runner_late"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("CANCELLED"),
        "{body}"
    );

    let (status, body) = app.post(&format!("/api/sagas/{saga_id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["message"], "the order is already cancelled");
}

#[rstest]
#[tokio::test]
async fn the_customer_cancels_through_the_saga_while_the_payment_is_in_flight(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_quick", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_quick", 8.5, 1.0).await;
    // As soon as the order exists, while the saga is still paying for it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let (status, body) = loop {
        let (status, body) = app.post(&format!("/api/sagas/{saga_id}/cancel"), &json!({})).await;
        if status != 404 || tokio::time::Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(status, 202, "{body}");

    let saga = app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;
    assert_eq!(app.order(&order_id).await["status"], "CANCELLED");
    // Whatever the saga had done by then is undone; nothing stays held.
    for payment in app.payments_of(&order_id).await {
        assert_ne!(payment["status"], "AUTHORIZED", "{saga}");
    }
    for escrow in app.escrows_of(&order_id).await {
        assert_ne!(escrow["status"], "HELD", "{saga}");
    }
}

#[rstest]
#[tokio::test]
async fn the_customer_cannot_cancel_once_a_runner_accepted(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (_, order_id) = an_order_waiting_for_a_runner(&app, "cust_too_late").await;
    let (status, _) = app
        .post(
            &format!("/api/orders/{order_id}/accept"),
            &json!({"runner_id": "runner_fast"}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = app.post(&format!("/api/orders/{order_id}/cancel"), &json!({})).await;

    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("only an operator"),
        "{body}"
    );
    assert_eq!(app.order(&order_id).await["status"], "ACCEPTED");
}

#[rstest]
#[tokio::test]
async fn two_timer_replicas_fire_each_due_timer_once(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let second_timer_service = TestApp::spawn_with(app.environment.clone(), &[campusg::settings::Role::Timer]).await;
    app.create_user("cust_replicas", Some("pm_card_visa")).await;
    let mut placed = Vec::new();
    for _ in 0..6 {
        placed.push(app.place_order("cust_replicas", 5.0, 0.5).await);
    }
    for (saga_id, _) in &placed {
        assert_eq!(app.saga_when_finished(saga_id).await["status"], "COMPLETED");
    }

    app.advance_clock(window_passed());

    for (saga_id, order_id) in &placed {
        let saga = app.saga_when(saga_id, |s| s["status"] == "CANCELLED").await;
        assert_cancelled_and_refunded(&app, &saga, order_id).await;
    }
    // One expiry message per timer. On the embedded log both processes relay
    // the shared outbox, so a record may be published twice (at least once);
    // a duplicate carries the same message id, and consumers skip it.
    let expiries = app.records(&["timer_events"]).await;
    for (_, order_id) in &placed {
        let mut fired: Vec<&str> = expiries
            .iter()
            .filter(|r| r.header("type") == Some("timer.expired") && r.key.as_deref() == Some(order_id.as_str()))
            .filter_map(|r| r.header("id"))
            .collect();
        fired.sort_unstable();
        fired.dedup();
        assert_eq!(fired.len(), 1, "order {order_id}: {fired:?}");
    }
    second_timer_service.stop().await;
}

/// A timer's payload is kept as it is given, inside the timer's event, two
/// levels deeper than in the request: one nested near the parser's limit
/// would be stored where it no longer reads back. It is refused, and nothing
/// is scheduled.
#[rstest]
#[tokio::test]
async fn a_timer_payload_nested_too_deep_is_refused_and_schedules_nothing(
    #[values(Backend::Embedded)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let nested = (0..120).fold(json!("deep"), |inner, _| json!([inner]));
    let timer_id = uuid::Uuid::new_v4().to_string();
    let (status, body) = app
        .post(
            "/schedule",
            &json!({"timer_id": timer_id, "event_type": "x", "entity_id": "y", "delay_seconds": 60, "payload": nested}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("nest"), "{body}");
    let (status, body) = app.get(&format!("/events/{timer_id}")).await;
    assert_eq!(status, 404, "{body}");
}

#[rstest]
#[tokio::test]
async fn a_timer_scheduled_through_the_api_fires_once_and_is_then_past_cancelling(
    #[values(Backend::Embedded)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (status, timer) = app
        .post(
            "/schedule",
            &json!({"event_type": "delivery_reminder", "entity_id": "order-42", "delay_seconds": 600, "payload": {"note": "ring twice"}}),
        )
        .await;
    assert_eq!(status, 201, "{timer}");
    assert_eq!(timer["status"], "SCHEDULED");
    let timer_id = timer["id"].as_str().unwrap().to_string();
    let (status, other) = app
        .post(
            "/schedule",
            &json!({"event_type": "delivery_reminder", "entity_id": "order-43", "delay_seconds": 900}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, cancelled) = app
        .post(
            &format!("/events/{}/cancel", other["id"].as_str().unwrap()),
            &json!({"reason": "not needed"}),
        )
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");

    app.advance_clock(Duration::minutes(11));
    let expired = app
        .record_when("timer_events", |r| {
            r.header("type") == Some("timer.expired") && r.value.contains(&timer_id)
        })
        .await;
    let envelope: Value = serde_json::from_str(&expired.value).unwrap();
    assert_eq!(envelope["payload"]["payload"]["note"], "ring twice");

    let (_, fired) = app.get("/events?status=fired").await;
    assert_eq!(fired["events"].as_array().unwrap().len(), 1, "{fired}");
    assert_eq!(fired["events"][0]["id"], timer_id.as_str());
    let (status, body) = app.post(&format!("/events/{timer_id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (_, cancelled_list) = app.get("/events?status=CANCELLED&event_type=delivery_reminder").await;
    assert_eq!(cancelled_list["events"].as_array().unwrap().len(), 1);
    let (status, _) = app.get("/events?status=LATE").await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post("/schedule", &json!({"event_type": "x", "entity_id": "y"}))
        .await;
    assert_eq!(status, 422, "a time is required");
    let expiries = app
        .records(&["timer_events"])
        .await
        .into_iter()
        .filter(|r| r.header("type") == Some("timer.expired"))
        .count();
    assert_eq!(expiries, 1, "the cancelled timer never fires");
}
