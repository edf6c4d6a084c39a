//! The operator's debugging tools, run as the `campusg` binary and through
//! HTTP against a running system: trace an order's story, list sagas, work the
//! dead letters, replay an aggregate.

use std::time::Duration;

use rstest::rstest;
use serde_json::Value;

use crate::backends::Backend;
use crate::cli::campusg;
use crate::helpers::TestApp;

/// Waits until the trace index holds a record of `message_type` for `id`.
async fn traced(app: &TestApp, id: &str, message_type: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, story) = app.get(&format!("/api/orders/{id}/trace")).await;
        let has = story["records"]
            .as_array()
            .is_some_and(|records| records.iter().any(|r| r["type"] == message_type));
        if status == 200 && has {
            return story;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{message_type} never traced: {story}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn types(story: &Value) -> Vec<String> {
    story["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Whether `wanted` appears in `all` in this order (not necessarily adjacent).
fn in_order(all: &[String], wanted: &[&str]) -> bool {
    let mut rest = all.iter();
    wanted.iter().all(|w| rest.any(|t| t == w))
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_tells_a_timed_out_order_from_placement_to_refund(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_traced", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_traced", 10.0, 1.0).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    app.advance_clock(chrono::Duration::minutes(31));
    app.saga_when(&saga_id, |s| s["status"] == "CANCELLED").await;
    traced(&app, &order_id, "saga.cancelled").await;
    traced(&app, &order_id, "escrow.refunded").await;

    let (ok, stdout, stderr) =
        tokio::task::block_in_place(|| campusg(&app, &["trace", &order_id, "--format", "json"], None));
    assert!(ok, "{stderr}");
    let story: Value = serde_json::from_str(&stdout).expect("the JSON form parses");
    let story_types = types(&story);
    let placement_to_refund = [
        "create_order",
        "order.created",
        "get_payment_info",
        "user.payment_info_retrieved",
        "authorize_payment",
        "payment.authorized",
        "hold_funds",
        "escrow.funds_held",
        "update_order_status",
        "order.status_updated",
        "start_order_timer",
        "timer.started",
        "timer.expired",
        "cancel_order",
        "order.cancelled",
        "refund_funds",
        "escrow.refunded",
    ];
    assert!(in_order(&story_types, &placement_to_refund), "{story_types:?}");
    for record in story["records"].as_array().unwrap() {
        assert!(record["offset"].as_i64().is_some(), "{record}");
        assert!(record["partition"].as_i64().is_some(), "{record}");
        assert!(record["topic"].as_str().is_some(), "{record}");
    }
    let times: Vec<i64> = story["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["since_start_ms"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");

    let (ok, text, stderr) = tokio::task::block_in_place(|| campusg(&app, &["trace", &saga_id], None));
    assert!(ok, "{stderr}");
    assert!(text.contains("timer.expired"), "{text}");
    assert!(text.contains("requested_by=timeout"), "{text}");
    let (ok, diagram, stderr) =
        tokio::task::block_in_place(|| campusg(&app, &["trace", &order_id, "--format", "mermaid"], None));
    assert!(ok, "{stderr}");
    assert!(diagram.starts_with("sequenceDiagram"), "{diagram}");
    assert!(
        diagram.contains("saga_orchestrator->>order_service: create_order"),
        "{diagram}"
    );

    let (ok, _, stderr) = tokio::task::block_in_place(|| campusg(&app, &["trace", "no-such-order"], None));
    assert!(!ok);
    assert!(stderr.contains("nothing is indexed"), "{stderr}");
}
