//! Bad input never stops or crashes the system (SPEC sections 8 and 10): every
//! input has a limit, the same over HTTP and on the topics; a record that can
//! never be handled is dead-lettered at once and the orders behind it flow; a
//! consumer stuck on a record shows on `/health`.
//!
//! Each test is one finding of issue 12, as it was seen from outside.

use std::time::Duration;

use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::TestApp;

/// Long enough for any answer the system owes at once; the findings were
/// answers that took more than 30 seconds or never came.
const PROMPTLY: Duration = Duration::from_secs(10);

fn order_of(items: Value) -> Value {
    json!({
        "customer_id": "cust_limits",
        "order_details": {"foodItems": items, "deliveryLocation": "North Campus"}
    })
}

/// A customer places an order after the bad input, and it goes all the way.
async fn a_normal_order_still_completes(app: &TestApp, customer: &str) {
    app.create_user(customer, Some("pm_card_visa")).await;
    let (saga_id, _) = app.place_order(customer, 12.99, 2.0).await;
    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
}

/// The dead letter of the record whose value contains `marker`.
async fn dead_letter_of(app: &TestApp, marker: &str) -> Value {
    let record = app
        .record_when("dead_letters", |record| record.value.contains(marker))
        .await;
    serde_json::from_str(&record.value).unwrap()
}

#[rstest]
#[case::stuck_for_past_a_duration("/api/sagas?stuck_for=10000000000000000", "stuck_for")]
#[case::negative_stuck_for("/api/sagas?stuck_for=-1", "stuck_for")]
#[case::page_that_overflows(
    "/api/notifications/order/0f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f?page=2305843009213693951",
    "page"
)]
#[case::negative_page("/api/orders?customer_id=cust_1&page=-31941", "page")]
#[case::page_zero("/payments?page=0", "page")]
#[case::page_size_over_its_maximum("/escrow?page_size=201", "page_size")]
#[case::page_that_is_not_a_number("/api/sagas?page=abc", "page")]
#[tokio::test]
async fn a_query_value_out_of_range_is_a_400_in_the_error_shape(
    #[case] path: &str,
    #[case] names: &str,
    #[values(Backend::Embedded)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;

    let (status, answer) = tokio::time::timeout(PROMPTLY, app.get(path)).await.expect("answered");

    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(names), "`{message}` should name `{names}`");
}

#[rstest]
#[case::huge_exponent_of_zero(json!([{"name": "B", "price": "0e2147483647", "quantity": 1}]), "costs nothing")]
#[case::huge_exponent(json!([{"name": "B", "price": "1e2147483647", "quantity": 1}]), "too large")]
#[case::long_amount(json!([{"name": "B", "price": "1".repeat(40), "quantity": 1}]), "at most 32 characters")]
#[case::too_many_items(json!(vec![json!({"name": "B", "price": 1, "quantity": 1}); 51]), "at most 50 food items")]
#[case::quantity_over_its_maximum(json!([{"name": "B", "price": 1, "quantity": 101}]), "at most 100 of an item")]
#[case::long_name(json!([{"name": "n".repeat(201), "price": 1, "quantity": 1}]), "longer than 200")]
#[case::total_over_its_maximum(json!([{"name": "B", "price": 5000, "quantity": 3}]), "above the limit of 10000.00")]
#[tokio::test]
async fn an_order_past_a_limit_is_refused_at_once_and_starts_nothing(
    #[case] items: Value,
    #[case] message_part: &str,
    #[values(Backend::Embedded)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;

    let (status, answer) = tokio::time::timeout(PROMPTLY, app.post("/api/orders", &order_of(items)))
        .await
        .expect("answered at once");

    assert_eq!(status, 422, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "`{message}` should say `{message_part}`"
    );
    let (_, sagas) = app.get("/api/sagas").await;
    assert_eq!(sagas["sagas"], json!([]), "no saga may start");
}

#[rstest]
#[tokio::test]
async fn a_body_over_the_limit_is_a_413_and_starts_nothing(#[values(Backend::Embedded)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let items = vec![json!({"name": "n".repeat(150), "price": 1, "quantity": 1}); 10_000];

    let (status, answer) = app.post("/api/orders", &order_of(json!(items))).await;

    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    let (status, answer) = app
        .post(
            "/api/orders/0f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f/cancel",
            &json!({"reason": "r".repeat(70_000)}),
        )
        .await;
    assert_eq!(status, 413, "a body read as raw bytes has the same limit: {answer}");
    let (_, sagas) = app.get("/api/sagas").await;
    assert_eq!(sagas["sagas"], json!([]));
}

#[rstest]
#[tokio::test]
async fn a_timer_delay_past_its_limit_is_refused_and_every_later_order_still_gets_its_timer(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = "5a5a5a5a-0000-4000-8000-00000000d1a7";
    app.try_publish(
        "timer_commands",
        &json!({
            "type": "start_order_timer",
            "correlation_id": "5a5a5a5a-0000-4000-8000-00000000c0c0",
            "payload": {"order_id": order_id, "delay_seconds": 9_000_000_000_000_i64}
        }),
    )
    .await
    .expect_err("campusg publish checks the schema's maximum");
    // A client that does not check, as an operator's own tool might.
    let value = json!({
        "id": "5a5a5a5a-0000-4000-8000-0000000000d1",
        "type": "start_order_timer",
        "correlation_id": "5a5a5a5a-0000-4000-8000-00000000c0c0",
        "timestamp": "2026-11-29T10:00:00Z",
        "payload": {"order_id": order_id, "delay_seconds": 9_000_000_000_000_i64}
    });
    app.produce_raw("timer_commands", order_id, &value.to_string()).await;

    let dead = dead_letter_of(&app, "9000000000000").await;
    let reason = dead["payload"]["reason"].as_str().unwrap();
    assert!(reason.contains("delay_seconds"), "{reason}");
    let (status, answer) = app
        .post(
            "/schedule",
            &json!({"event_type": "reminder", "entity_id": "e1", "delay_seconds": 9_000_000_000_000_i64}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("2592000"),
        "{answer}"
    );
    a_normal_order_still_completes(&app, "cust_after_bad_timer").await;
}

#[rstest]
#[tokio::test]
async fn an_oversized_order_published_by_hand_is_dead_lettered_and_the_orders_behind_it_flow(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = "5a5a5a5a-0000-4000-8000-0000000b16b1";
    let items = vec![json!({"name": "n".repeat(180), "price": 1, "quantity": 1}); 4_000];
    let value = json!({
        "id": "5a5a5a5a-0000-4000-8000-0000000b16b2",
        "type": "create_order",
        "correlation_id": "5a5a5a5a-0000-4000-8000-0000000b16b3",
        "timestamp": "2026-11-29T10:00:00Z",
        "payload": {
            "order_id": order_id,
            "customer_id": "cust_big",
            "order_details": {"foodItems": items, "deliveryLocation": "North Campus"}
        }
    })
    .to_string();
    assert!(
        value.len() > 800_000,
        "close to the broker's limit: {} bytes",
        value.len()
    );
    app.produce_raw("order_commands", order_id, &value).await;

    let dead = dead_letter_of(&app, "0000000b16b2").await;
    let payload = &dead["payload"];
    assert!(payload["reason"].as_str().unwrap().contains("foodItems"), "{payload}");
    assert_eq!(payload["original_size_bytes"], value.len());
    assert!(
        payload["original_value"].as_str().unwrap().len() <= 64 * 1024,
        "a dead letter quotes the beginning of a large record, so it fits on the bus"
    );
    a_normal_order_still_completes(&app, "cust_after_big_order").await;
}

#[rstest]
#[tokio::test]
async fn a_value_the_store_can_never_hold_is_dead_lettered_and_the_consumer_goes_on(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    // PostgreSQL's JSON refuses `\u0000`; SQLite keeps it.
    app.publish(
        "user_commands",
        &json!({
            "type": "create_user",
            "correlation_id": "5a5a5a5a-0000-4000-8000-0000000000a0",
            "payload": {"user_id": "cust_nul", "name": "a\u{0}b", "email": "nul@campus.edu"}
        }),
    )
    .await;
    let (status, answer) = app
        .post(
            "/users",
            &json!({"user_id": "cust_nul_api", "name": "a\u{0}b", "email": "nul2@campus.edu"}),
        )
        .await;

    match backend {
        Backend::Embedded => {
            assert_eq!(status, 201, "{answer}");
            let user = app
                .record_when("user_events", |record| record.value.contains("\"cust_nul\""))
                .await;
            assert!(user.value.contains("user.created"), "{}", user.value);
        }
        Backend::Kafka => {
            assert_eq!(status, 422, "never a 500 for what a caller sends: {answer}");
            let dead = dead_letter_of(&app, "cust_nul\\").await;
            let reason = dead["payload"]["reason"].as_str().unwrap();
            assert!(reason.contains("refuses it"), "{reason}");
        }
    }
    a_normal_order_still_completes(&app, "cust_after_nul").await;
}

#[rstest]
#[tokio::test]
async fn health_reports_each_consumer_and_a_stalled_one_makes_it_503(#[values(Backend::Embedded)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_stalled", Some("pm_card_visa")).await;
    crate::helpers::eventually("every consumer reports how far behind it is", || async {
        let (status, health) = app.get("/health").await;
        let reported = ["order-service", "create-order-saga", "timer-service"]
            .iter()
            .all(|group| health["consumers"][group]["records_behind"].is_i64());
        match (status, reported) {
            (200, true) => Ok(()),
            _ => Err(format!("{status} {health}")),
        }
    })
    .await;

    // Hold the user service's store so that its consumer fails for now.
    let store = app.environment.data_dir.path().join("user.db");
    let blocker = rusqlite::Connection::open(&store).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The create-order saga asks the user service for the payment method.
    let (saga_id, _) = app.place_order("cust_stalled", 12.99, 0.0).await;
    crate::helpers::eventually("the user consumer fails for now", || async {
        let (_, health) = app.get("/health").await;
        match health["consumers"]["user-service"]["failing_since"].is_string() {
            true => Ok(()),
            false => Err(health.to_string()),
        }
    })
    .await;
    app.advance_clock(chrono::Duration::seconds(31));
    let (status, health) = app.get("/health").await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["consumers"]["user-service"]["state"], "stalled", "{health}");
    assert_eq!(health["consumers"]["order-service"]["state"], "running", "{health}");

    blocker.execute_batch("ROLLBACK").unwrap();
    crate::helpers::eventually("the user consumer recovers", || async {
        let (status, health) = app.get("/health").await;
        match status {
            200 => Ok(()),
            _ => Err(health.to_string()),
        }
    })
    .await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
}

#[rstest]
#[tokio::test]
async fn a_record_with_a_huge_key_and_a_nul_is_dead_lettered_within_the_bus_size_and_orders_flow(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let key = format!("k\u{0}{}", "k".repeat(600_000));
    let correlation_id = format!("c\u{0}{}", "c".repeat(300_000));
    let value = json!({
        "type": "update_user",
        "correlation_id": correlation_id,
        "payload": {"user_id": "nobody_huge_key", "name": "n"}
    });
    app.produce_raw("user_commands", &key, &value.to_string()).await;

    let dead = app
        .record_when("dead_letters", |record| {
            record.header("original_topic") == Some("user_commands")
        })
        .await;
    assert!(
        dead.value.len() < 100_000,
        "a dead letter is bounded: {} bytes",
        dead.value.len()
    );
    let key_kept = dead.key.as_deref().unwrap_or_default();
    assert!(
        key_kept.chars().count() <= 201 && !key_kept.contains('\u{0}'),
        "{key_kept:?}"
    );
    a_normal_order_still_completes(&app, "cust_after_huge_key").await;
}
