//! A stopped or killed system finishes every saga when it starts again.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rstest::rstest;
use serde_json::json;

use crate::backends::{Backend, Environment};
use crate::helpers::{eventually, TestApp};
use crate::processes::{free_port, get_json, operator_client, wait_until_healthy, Process};

#[rstest]
#[tokio::test]
async fn a_saga_stopped_midway_finishes_after_a_restart(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let environment = Arc::new(Environment::new(backend));
    let app = TestApp::spawn_with(environment, &crate::helpers::WITHOUT_PAYMENTS).await;
    app.create_user("cust_restart", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_restart", 12.99, 1.0).await;
    app.saga_when(&saga_id, |saga| saga["current_step"] == "authorize_payment")
        .await;
    let environment = app.stop().await;

    let app = TestApp::spawn_with(environment, &[]).await;
    let saga = app.saga_when_finished(&saga_id).await;

    assert_eq!(saga["status"], "COMPLETED", "{saga}");
    assert_eq!(app.order(&order_id).await["status"], "CREATED");
    assert_eq!(app.sandbox.ledger().authorizations, 1);
}

#[rstest]
#[tokio::test]
async fn an_event_published_by_hand_drives_the_saga_and_the_real_duplicate_changes_nothing(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Arc::new(Environment::new(backend));
    let app = TestApp::spawn_with(environment, &crate::helpers::WITHOUT_PAYMENTS).await;
    app.create_user("cust_simulated", Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order("cust_simulated", 12.99, 1.0).await;
    app.saga_when(&saga_id, |saga| saga["current_step"] == "authorize_payment")
        .await;

    // An operator simulates the payment service.
    app.publish(
        "payment_events",
        &json!({
            "type": "payment.authorized",
            "correlation_id": saga_id,
            "payload": {
                "payment_id": uuid::Uuid::new_v4(),
                "order_id": order_id,
                "customer_id": "cust_simulated",
                "amount_cents": 1399,
                "currency": "SGD",
                "payment_method": "pm_card_visa",
                "gateway_reference": "simulated",
                "authorized_at": "2026-11-21T12:00:00Z"
            }
        }),
    )
    .await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    let environment = app.stop().await;

    // The real payment service comes back and answers the waiting command.
    let app = TestApp::spawn_with(environment, &[]).await;
    app.record_when("payment_events", |record| {
        record.header("type") == Some("payment.authorized")
            && !record.value.contains(r#""gateway_reference":"simulated""#)
    })
    .await;
    let marker = {
        app.create_user("cust_marker", Some("pm_card_visa")).await;
        app.place_order("cust_marker", 1.0, 0.0).await.0
    };
    app.saga_when_finished(&marker).await;

    let saga = app.saga_when_finished(&saga_id).await;
    assert_eq!(saga["status"], "COMPLETED");
    let authorized_steps = saga["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "create_order_saga.payment_authorized")
        .count();
    assert_eq!(authorized_steps, 1, "{saga}");
}

fn start_campusg(environment: &Environment, port: u16) -> Process {
    start_campusg_with(environment, port, &[])
}

fn start_campusg_with(environment: &Environment, port: u16, env: &[(&str, &str)]) -> Process {
    let mut args = vec!["up".to_string()];
    args.extend(environment.flags());
    // Restarted under the same name, as a supervisor restarts a replica: on
    // Kafka it takes its partitions back at once (static membership). tansu
    // does not reliably expire the members of a process killed with SIGKILL,
    // and then gives the newcomer nothing (ADR 04).
    args.extend([
        "--port".to_string(),
        port.to_string(),
        "--instance-id".to_string(),
        "restarted".to_string(),
    ]);
    Process::start_with_env("campusg", &args, Stdio::null(), env)
}

#[rstest]
#[tokio::test]
async fn sagas_killed_with_sigkill_all_finish_after_a_restart_and_nothing_is_doubled(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Environment::new(backend);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = operator_client(environment.data_dir.path());
    let mut child = start_campusg(&environment, port);
    wait_until_healthy(&client, &base).await;
    let sagas = place_orders(&client, &base, "cust_kill", 30, 3.5).await;
    child.kill();

    let _child = start_campusg(&environment, port);
    wait_until_healthy(&client, &base).await;
    for (saga_id, order_id) in &sagas {
        let mut status = String::new();
        for _ in 0..1200 {
            let saga = get_json(&client, &format!("{base}/api/sagas/{saga_id}")).await;
            status = saga["status"].as_str().unwrap_or_default().to_string();
            if status == "COMPLETED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, "COMPLETED", "saga {saga_id}");
        let payments = get_json(&client, &format!("{base}/payments?order_id={order_id}")).await;
        assert_eq!(payments["payments"].as_array().unwrap().len(), 1);
        let escrows = get_json(&client, &format!("{base}/escrow?order_id={order_id}")).await;
        assert_eq!(escrows["escrows"].as_array().unwrap().len(), 1);
        assert_eq!(escrows["escrows"][0]["amount_cents"], 350);
    }
    let orders = get_json(
        &client,
        &format!("{base}/api/orders?customer_id=cust_kill&page_size=200"),
    )
    .await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 30);
}

/// Finding 3: a crash between two writes in two places (a consumer's store
/// commit and its offset commit; the relay's produce and its outbox deletion)
/// must lose nothing and do nothing twice. A SIGKILL from outside rarely lands
/// there; these crash points abort the process exactly there, one time in
/// twelve, and a supervisor (this test) restarts it whenever it dies, until
/// every saga has finished.
#[rstest]
#[tokio::test]
async fn a_process_that_dies_between_two_writes_loses_nothing_and_does_nothing_twice(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    const ORDERS: usize = 12;
    let crashing = [("CAMPUSG_CRASH_POINTS", "after-store-commit=12,after-produce=12")];
    let environment = Environment::new(backend);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = operator_client(environment.data_dir.path());

    // The orders are placed, then the process dies before it gets far.
    let mut child = start_campusg(&environment, port);
    wait_until_healthy(&client, &base).await;
    let sagas: Vec<String> = place_orders(&client, &base, "cust_crash", ORDERS, 2.5)
        .await
        .into_iter()
        .map(|(saga_id, _)| saga_id)
        .collect();
    child.kill();

    // Every saga finishes, through as many crashes as it takes.
    let mut child = start_campusg_with(&environment, port, &crashing);
    let mut crashes = 0;
    for saga_id in &sagas {
        let mut status = String::new();
        for _ in 0..1200 {
            if child.has_exited() {
                crashes += 1;
                child = start_campusg_with(&environment, port, &crashing);
            }
            // The process may die under the request: that is the point.
            if let Ok(answer) = client.get(format!("{base}/api/sagas/{saga_id}")).send().await {
                let saga: serde_json::Value = answer.json().await.unwrap_or_default();
                status = saga["status"].as_str().unwrap_or_default().to_string();
                if status == "COMPLETED" {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, "COMPLETED", "saga {saga_id} after {crashes} crashes");
    }
    assert!(crashes > 0, "the crash points never fired: the test proved nothing");
    eprintln!("{backend:?}: every saga finished through {crashes} crashes");

    // The checks run on a process that no longer crashes.
    child.kill();
    let _child = start_campusg(&environment, port);
    wait_until_healthy(&client, &base).await;
    let orders = get_json(
        &client,
        &format!("{base}/api/orders?customer_id=cust_crash&page_size=200"),
    )
    .await;
    let orders = orders["orders"].as_array().unwrap().clone();
    assert_eq!(orders.len(), ORDERS);
    for order in &orders {
        let order_id = order["order_id"].as_str().unwrap();
        let payments = get_json(&client, &format!("{base}/payments?order_id={order_id}")).await;
        assert_eq!(payments["payments"].as_array().unwrap().len(), 1, "{payments}");
        let escrows = get_json(&client, &format!("{base}/escrow?order_id={order_id}")).await;
        assert_eq!(escrows["escrows"].as_array().unwrap().len(), 1, "{escrows}");
        // The notification service may still be catching up after the restart.
        let told = eventually(&format!("order {order_id} was never notified"), || async {
            let told = get_json(
                &client,
                &format!("{base}/api/notifications/order/{order_id}?page_size=100"),
            )
            .await;
            match told["notifications"].as_array() {
                Some(notifications) if !notifications.is_empty() => Ok(told),
                _ => Err(told.to_string()),
            }
        })
        .await;
        let mut kinds: Vec<(String, String)> = told["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["user_id"].to_string(), n["kind"].to_string()))
            .collect();
        let told_at_all = kinds.len();
        kinds.sort();
        kinds.dedup();
        assert_eq!(
            kinds.len(),
            told_at_all,
            "a notification doubled after {crashes} crashes: {told}"
        );
    }
}

/// Registers `customer` and places `count` orders of one item at `price` for
/// them; each order's saga id and order id.
async fn place_orders(
    client: &reqwest::Client,
    base: &str,
    customer: &str,
    count: usize,
    price: f64,
) -> Vec<(String, String)> {
    let user = json!({"user_id": customer, "name": "C", "email": format!("{customer}@campus.edu"), "payment_method": "pm_card_visa"});
    let created = client.post(format!("{base}/users")).json(&user).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let mut placed = Vec::new();
    for i in 0..count {
        let body = json!({"customer_id": customer, "order_details": {"foodItems": [{"name": format!("item {i}"), "price": price, "quantity": 1}], "deliveryLocation": "Hall 1"}});
        let answer: serde_json::Value = client
            .post(format!("{base}/api/orders"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = |field: &str| {
            answer[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field}: {answer}"))
                .to_string()
        };
        placed.push((id("saga_id"), id("order_id")));
    }
    placed
}
