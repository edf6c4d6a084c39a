//! The operator's debugging tools, run as the `campusg` binary and through
//! HTTP against a running system: trace an order's story, list sagas, work the
//! dead letters, replay an aggregate.

use std::time::Duration;

use rstest::rstest;
use serde_json::Value;

use crate::backends::Backend;
use crate::cli::campusg;
use crate::helpers::{eventually, TestApp};

/// Waits until the trace index holds a record of `message_type` for `id`.
async fn traced(app: &TestApp, id: &str, message_type: &str) -> Value {
    traced_when(app, id, &format!("{message_type} never traced"), |r| {
        r["type"] == message_type
    })
    .await
}

/// Waits until the trace index holds a record under `id` that `wanted` accepts.
async fn traced_when(app: &TestApp, id: &str, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let wanted = &wanted;
    eventually(what, || async move {
        let (status, story) = app.get(&format!("/api/orders/{id}/trace")).await;
        let has = story["records"]
            .as_array()
            .is_some_and(|records| records.iter().any(wanted));
        if status == 200 && has {
            Ok(story)
        } else {
            Err(story.to_string())
        }
    })
    .await
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

    // By saga id, the same records, payloads and all: the saga's own stream
    // only names its order, whose stream has them.
    let (ok, by_saga, stderr) =
        tokio::task::block_in_place(|| campusg(&app, &["trace", &saga_id, "--format", "json"], None));
    assert!(ok, "{stderr}");
    let by_saga: Value = serde_json::from_str(&by_saga).expect("the JSON form parses");
    let positions = |story: &Value| -> Vec<(String, i64, i64)> {
        let mut found: Vec<_> = story["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["topic"].as_str().unwrap().to_string(),
                    r["partition"].as_i64().unwrap(),
                    r["offset"].as_i64().unwrap(),
                )
            })
            .collect();
        found.sort();
        found
    };
    assert_eq!(positions(&by_saga), positions(&story));
    assert!(
        by_saga["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["payload"].is_null()),
        "{by_saga}"
    );
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

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_list_finds_a_saga_whose_participant_was_stopped(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let without_payments = [
        crate::helpers::WITHOUT_PAYMENTS.as_slice(),
        &[campusg::settings::Role::Trace],
    ]
    .concat();
    let app = TestApp::spawn_with(
        std::sync::Arc::new(crate::backends::Environment::new(backend)),
        &without_payments,
    )
    .await;
    app.create_user("cust_stuck", Some("pm_card_visa")).await;
    let (stuck_saga, _) = app.place_order("cust_stuck", 7.0, 1.0).await;
    app.saga_when(&stuck_saga, |s| s["current_step"] == "authorize_payment")
        .await;

    let (_, fresh) = app.get("/api/sagas?stuck_for=300").await;
    assert_eq!(fresh["sagas"].as_array().unwrap().len(), 0, "not stuck yet: {fresh}");
    app.advance_clock(chrono::Duration::minutes(6));
    let (_, stuck) = app.get("/api/sagas?stuck_for=300").await;
    let ids: Vec<&str> = stuck["sagas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [stuck_saga.as_str()], "{stuck}");

    let (ok, stdout, stderr) =
        tokio::task::block_in_place(|| campusg(&app, &["sagas", "list", "--stuck-for", "0s", "--json"], None));
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed[0]["saga_id"], stuck_saga.as_str(), "{listed}");
    assert_eq!(listed[0]["current_step"], "authorize_payment");
    let (ok, shown, stderr) = tokio::task::block_in_place(|| campusg(&app, &["sagas", "show", &stuck_saga], None));
    assert!(ok, "{stderr}");
    assert!(shown.contains("authorize_payment"), "{shown}");
    assert!(shown.contains("create_order_saga.payment_info_retrieved"), "{shown}");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_retried_after_its_cause_is_fixed_is_processed_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    // An update for a user who does not exist yet: refused, dead-lettered.
    let update = serde_json::json!({
        "type": "update_user",
        "correlation_id": "ops-fix-1",
        "payload": {"user_id": "ghost", "name": "Casper"}
    });
    app.publish("user_commands", &update).await;
    app.record_when("dead_letters", |r| r.value.contains("ghost")).await;

    let (ok, stdout, stderr) = tokio::task::block_in_place(|| campusg(&app, &["dlq", "list", "--json"], None));
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    // The user's key is parked in the user service's group, the update held.
    let parked = &listed["parked_keys"];
    assert_eq!(parked[0]["key"], "ghost", "{listed}");
    assert_eq!(parked[0]["group"], "user-service");
    assert_eq!(parked[0]["held"].as_array().unwrap().len(), 1, "{parked}");
    let letters = &listed["dead_letters"];
    let letter = letters
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["dead_letter"]["original_value"]
                .as_str()
                .unwrap_or("")
                .contains("ghost")
        })
        .unwrap_or_else(|| panic!("{letters}"))
        .clone();
    assert_eq!(letter["status"], "PENDING");
    assert!(
        letter["dead_letter"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{letter}"
    );
    let offset = letter["offset"].to_string();

    // The fix: the user now exists.
    app.create_user("ghost", None).await;
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| campusg(&app, &["dlq", "retry", &offset], None));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("its key ghost is parked"), "{stdout}");
    eventually("the dead letter was never retried", || async {
        let (_, user) = app.get("/users/ghost").await;
        if user["name"] == "Casper" {
            Ok(())
        } else {
            Err(user.to_string())
        }
    })
    .await;
    let (ok, _, stderr) = tokio::task::block_in_place(|| campusg(&app, &["dlq", "retry", &offset], None));
    assert!(!ok, "a second retry would handle the record twice");
    assert!(
        stderr.contains("was parked in user-service and is RELEASED"),
        "{stderr}"
    );
    let (ok, shown, stderr) = tokio::task::block_in_place(|| campusg(&app, &["dlq", "show", &offset], None));
    assert!(ok, "{stderr}");
    assert!(shown.contains("dead_letter.retried"), "{shown}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let updates = app
        .records(&["user_events"])
        .await
        .iter()
        .filter(|r| r.header("type") == Some("user.updated") && r.key.as_deref() == Some("ghost"))
        .count();
    assert_eq!(updates, 1, "processed once");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_as_of_each_event_gives_the_order_as_it_was(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_replayed", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_replayed", 8.0, 2.0).await;
    app.saga_when_finished(&saga_id).await;
    // The order as the API showed it after each change.
    let mut seen = vec![app.order(&order_id).await];
    let (_, accepted) = app
        .post(
            &format!("/api/orders/{order_id}/accept"),
            &serde_json::json!({"runner_id": "runner_replay"}),
        )
        .await;
    seen.push(accepted["order"].clone());
    for stage in ["ON_SITE", "PURCHASED"] {
        let (_, moved) = app
            .post(
                &format!("/api/orders/{order_id}/status"),
                &serde_json::json!({"runner_id": "runner_replay", "status": stage}),
            )
            .await;
        seen.push(moved["order"].clone());
    }

    // Events 1 (PENDING) and 2 (CREATED) precede what was seen; 2 is seen[0].
    for (index, then) in seen.iter().enumerate() {
        let event = (index + 2).to_string();
        let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
            campusg(&app, &["replay", "order", &order_id, "--as-of", &event, "--json"], None)
        });
        assert!(ok, "{stderr}");
        let replayed: Value = serde_json::from_str(&stdout).unwrap();
        let state = &replayed["state"];
        for field in ["status", "runner_id", "status_times", "total_cents"] {
            assert_eq!(state[field], then[field], "{field} as of event {event}: {replayed}");
        }
        assert_eq!(replayed["events"].as_array().unwrap().len(), index + 2);
    }
    let (ok, stdout, _) =
        tokio::task::block_in_place(|| campusg(&app, &["replay", "order", &order_id, "--as-of", "1", "--json"], None));
    assert!(ok);
    let first: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(first["state"]["status"], "PENDING");

    // As of a position in the log: the order when its ACCEPTED event was logged.
    let story = traced_when(&app, &order_id, "PURCHASED never traced", |r| {
        r["type"] == "order.status_updated" && r["payload"]["status"] == "PURCHASED"
    })
    .await;
    let accepted = story["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "order.status_updated" && r["payload"]["status"] == "ACCEPTED")
        .unwrap();
    let position = format!(
        "{}[{}]@{}",
        accepted["topic"].as_str().unwrap(),
        accepted["partition"],
        accepted["offset"]
    );
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        campusg(
            &app,
            &["replay", "order", &order_id, "--as-of", &position, "--json"],
            None,
        )
    });
    assert!(ok, "{stderr}");
    let then: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(then["state"]["status"], "ACCEPTED", "as of {position}: {then}");
    assert_eq!(then["state"]["runner_id"], "runner_replay");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_rebuilt_while_the_system_runs_comes_back_from_its_events(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    use campusg_runtime::store::{AggregateChange, Cause, UnitOfWork};

    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_rebuilt", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_rebuilt", 9.0, 1.0).await;
    app.saga_when_finished(&saga_id).await;
    let before = app.order(&order_id).await;

    // A read model gone wrong (a bug, a bad migration): its events are intact.
    let store = campusg::backends::open_store(&app.environment.backends(), "order")
        .await
        .unwrap();
    let (version, _) = store.state("order", &order_id).await.unwrap().unwrap();
    let mut unit = UnitOfWork::new(Cause::request("test".into(), "test", chrono::Utc::now()));
    unit.changes.push(AggregateChange {
        aggregate_type: "order".into(),
        aggregate_id: order_id.clone(),
        expected_version: version,
        events: Vec::new(),
        state: serde_json::json!({"status": "GARBLED"}).into(),
    });
    store.commit(unit).await.unwrap();
    let (status, _) = app.get(&format!("/api/orders/{order_id}")).await;
    assert_ne!(status, 200, "the read model is broken");

    for _ in 0..2 {
        let (ok, stdout, stderr) =
            tokio::task::block_in_place(|| campusg(&app, &["replay", "--rebuild", "order"], None));
        assert!(ok, "{stderr}");
        assert!(stdout.contains("rebuilt the read models of 1 order"), "{stdout}");
        assert_eq!(app.order(&order_id).await, before);
    }
}
