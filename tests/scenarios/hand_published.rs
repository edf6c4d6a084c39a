//! What an operator publishes by hand drives the system like the API does; what
//! cannot be handled ends in the dead-letter topic with its reason.

use rstest::rstest;
use serde_json::{json, Value};

use campusg_runtime::envelope::Envelope;

use crate::backends::Backend;
use crate::helpers::TestApp;

fn seeds_create_order(correlation_id: &str, customer_id: &str) -> Value {
    json!({
        "type": "create_order",
        "correlation_id": correlation_id,
        "timestamp": "2026-11-21T11:59:00.123456",
        "payload": {
            "customer_id": customer_id,
            "order_details": {
                "foodItems": [{"name": "Burger", "price": 12.99, "quantity": 1}],
                "deliveryLocation": "North Campus"
            }
        }
    })
}

#[rstest]
#[tokio::test]
async fn a_create_order_in_the_seeds_format_runs_the_whole_saga(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_123", Some("pm_card_visa")).await;
    let saga_id = uuid::Uuid::new_v4().to_string();

    app.publish("order_commands", &seeds_create_order(&saga_id, "cust_123"))
        .await;

    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let order_id = saga["order_id"].as_str().unwrap();
    assert_eq!(app.order(order_id).await["status"], "CREATED");
    assert_eq!(app.escrows_of(order_id).await[0]["amount_cents"], 1299);
}

#[rstest]
#[tokio::test]
async fn the_same_command_published_twice_creates_one_order_and_one_authorization(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_twice", Some("pm_card_visa")).await;
    let saga_id = uuid::Uuid::new_v4().to_string();
    let command = seeds_create_order(&saga_id, "cust_twice");

    app.publish("order_commands", &command).await;
    app.publish("order_commands", &command).await;
    let saga = app.saga_when_finished(&saga_id).await;
    // A second, later copy, after the saga has finished.
    app.publish("order_commands", &command).await;
    let marker = uuid::Uuid::new_v4().to_string();
    app.publish("order_commands", &seeds_create_order(&marker, "cust_twice"))
        .await;
    app.saga_when_finished(&marker).await;

    assert_eq!(saga["status"], "COMPLETED");
    let (_, orders) = app.get("/api/orders?customer_id=cust_twice").await;
    assert_eq!(
        orders["orders"].as_array().unwrap().len(),
        2,
        "one order per saga: {orders}"
    );
    assert_eq!(app.sandbox.ledger().authorizations, 2, "one authorization per order");
    let (_, sagas) = app.get("/api/sagas").await;
    assert_eq!(sagas["sagas"].as_array().unwrap().len(), 2);
}

#[rstest]
#[tokio::test]
async fn a_malformed_record_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_after_poison", Some("pm_card_visa")).await;

    app.produce_raw("order_commands", "k1", "this is not json").await;
    app.produce_raw(
        "order_commands",
        "k2",
        &json!({"type": "create_order", "correlation_id": "c", "payload": {"customer_id": "x"}}).to_string(),
    )
    .await;
    app.produce_raw(
        "order_commands",
        "k3",
        &json!({"type": "authorize_payment", "correlation_id": "c", "payload": {}}).to_string(),
    )
    .await;
    let saga_id = uuid::Uuid::new_v4().to_string();
    app.publish("order_commands", &seeds_create_order(&saga_id, "cust_after_poison"))
        .await;

    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    let dead_letters = app.records(&["dead_letters"]).await;
    let reasons: Vec<(String, String)> = dead_letters
        .iter()
        .map(|record| {
            let value: Value = serde_json::from_str(&record.value).unwrap();
            (
                value["payload"]["original_key"].as_str().unwrap_or("").to_string(),
                value["payload"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Each key has its own partition, so the dead letters may come in any order.
    let mut reasons = reasons;
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].0 == "k1" && reasons[0].1.contains("not JSON"), "{reasons:?}");
    assert!(
        reasons[1].0 == "k2" && reasons[1].1.contains("order_details"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].0 == "k3" && reasons[2].1.contains("does not match"),
        "{reasons:?}"
    );
    for dead_letter in &dead_letters {
        assert_eq!(dead_letter.header("original_topic"), Some("order_commands"));
        assert!(dead_letter.header("original_offset").is_some());
    }
}

#[rstest]
#[tokio::test]
async fn a_message_on_the_wrong_topic_is_refused_by_publish_and_dead_lettered_by_consumers(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let misplaced = json!({"type": "cancel_order", "correlation_id": "c", "payload": {"order_id": uuid::Uuid::new_v4(), "reason": "x"}});
    let refused = campusg::operate::publish(
        app.bus.as_ref(),
        &app.contracts,
        "payment_commands",
        &misplaced.to_string(),
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("it goes on `order_commands`"), "{refused}");

    app.produce_raw("payment_commands", "k", &misplaced.to_string()).await;
    let dead = app.record_when("dead_letters", |_| true).await;
    let value: Value = serde_json::from_str(&dead.value).unwrap();
    assert!(value["payload"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not belong on topic `payment_commands`"));
}

#[rstest]
#[tokio::test]
async fn every_message_the_system_produces_matches_its_schema_and_topic(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_schema", Some("pm_card_visa")).await;
    app.create_user("cust_schema_declined", Some("pm_card_chargeDeclined"))
        .await;
    let (happy, _) = app.place_order("cust_schema", 12.99, 1.0).await;
    let (declined, _) = app.place_order("cust_schema_declined", 12.99, 1.0).await;
    let (too_big, _) = app.place_order("cust_schema", 600.0, 0.0).await;
    for saga in [&happy, &declined, &too_big] {
        app.saga_when_finished(saga).await;
    }

    let topics: Vec<String> = app.contracts.topics.topics().iter().map(|t| t.name.clone()).collect();
    let records = app
        .records(&topics.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let mut types = std::collections::BTreeSet::new();
    for record in &records {
        let envelope = Envelope::parse(&record.value, &app.contracts.schemas, chrono::Utc::now())
            .unwrap_or_else(|e| panic!("{}@{}: {e}\n{}", record.topic, record.offset, record.value));
        let topic = app.contracts.topics.get(&record.topic).unwrap();
        assert!(
            topic.messages.contains(&envelope.message_type),
            "{} on {}",
            envelope.message_type,
            record.topic
        );
        envelope.decode().unwrap();
        assert_eq!(record.header("type"), Some(envelope.message_type.as_str()));
        assert_eq!(record.header("correlation_id"), Some(envelope.correlation_id.as_str()));
        assert!(record.header("traceparent").is_some_and(|t| t.starts_with("00-")));
        types.insert(envelope.message_type);
    }
    for expected in [
        "order.created",
        "order.cancelled",
        "payment.authorized",
        "payment.failed",
        "payment.voided",
        "escrow.funds_held",
        "escrow.hold_failed",
        "saga.completed",
        "saga.compensated",
    ] {
        assert!(types.contains(expected), "no {expected} among {types:?}");
    }
}

/// Produces records with kafka-python, a client that shares no code with campusg.
fn produce_with_a_plain_kafka_client(bootstrap: &str, topic: &str, records: &[(&str, String)]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/produce.py");
    let mut command = std::process::Command::new("python3");
    command.args([script, bootstrap, topic]);
    for (key, value) in records {
        command.args([*key, value.as_str()]);
    }
    let output = command
        .output()
        .expect("python3 runs (scripts/test installs kafka-python)");
    assert!(
        output.status.success(),
        "kafka-python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_seeds_format_message_from_a_plain_kafka_client_is_processed_and_a_malformed_one_dead_lettered() {
    let app = TestApp::spawn_on(Backend::Kafka).await;
    let bootstrap = app.environment.broker.as_ref().unwrap().address.clone();
    app.create_user("cust_python", Some("pm_card_visa")).await;
    let saga_id = uuid::Uuid::new_v4().to_string();

    produce_with_a_plain_kafka_client(
        &bootstrap,
        "order_commands",
        &[
            (
                "garbage",
                "{\"type\": \"create_order\", \"correlation_id\": \"x\", \"payload\": {\"nope\": 1}".to_string(),
            ),
            ("cust_python", seeds_create_order(&saga_id, "cust_python").to_string()),
        ],
    );

    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    let dead = app
        .record_when("dead_letters", |record| record.key.as_deref() == Some("garbage"))
        .await;
    let value: Value = serde_json::from_str(&dead.value).unwrap();
    assert!(
        value["payload"]["reason"].as_str().unwrap().contains("not JSON"),
        "{value}"
    );
    assert_eq!(value["payload"]["original_topic"], "order_commands");
}
