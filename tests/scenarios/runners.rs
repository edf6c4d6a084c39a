//! Runners and the accept-order saga: exactly one of many racing runners wins
//! an order, a runner may give an order back, and an acceptance racing the
//! acceptance window's end leaves the order either accepted or cancelled, with
//! the money where it belongs.

use std::sync::Arc;

use chrono::Duration;
use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::{eventually, TestApp};

/// Runs every future at once, each on its own task, and returns their outputs in order.
async fn all_at_once<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.expect("the request task does not panic"));
    }
    outputs
}

async fn orders_waiting_for_runners(app: &TestApp, customer: &str, how_many: usize) -> Vec<(String, String)> {
    app.create_user(customer, Some("pm_card_visa")).await;
    let mut placed = Vec::new();
    for _ in 0..how_many {
        placed.push(app.place_order(customer, 9.99, 1.5).await);
    }
    for (saga_id, _) in &placed {
        let saga = app.saga_when_finished(saga_id).await;
        assert_eq!(saga["status"], "COMPLETED", "{saga}");
    }
    placed
}

async fn accept(app: &TestApp, order_id: &str, runner_id: &str) -> (u16, Value) {
    app.post(
        &format!("/api/orders/{order_id}/accept"),
        &json!({"runner_id": runner_id}),
    )
    .await
}

async fn timers_of(app: &TestApp, order_id: &str) -> Vec<Value> {
    let (_, body) = app.get(&format!("/events?order_id={order_id}")).await;
    body["events"].as_array().cloned().unwrap_or_default()
}

#[rstest]
#[tokio::test]
async fn of_runners_racing_for_an_order_exactly_one_wins_and_the_rest_get_409(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = Arc::new(TestApp::spawn_on(backend).await);
    let orders = orders_waiting_for_runners(&app, "cust_raced", 8).await;
    let runners = ["runner_a", "runner_b", "runner_c", "runner_d"];

    // Every runner accepts every order, all at once.
    let mut attempts = Vec::new();
    for (_, order_id) in &orders {
        for runner in runners {
            let (app, order_id) = (app.clone(), order_id.clone());
            attempts.push(async move {
                let outcome = accept(&app, &order_id, runner).await;
                (order_id, runner.to_string(), outcome)
            });
        }
    }
    let outcomes = all_at_once(attempts).await;

    for (_, order_id) in &orders {
        let mine: Vec<_> = outcomes.iter().filter(|(o, _, _)| o == order_id).collect();
        let winners: Vec<_> = mine.iter().filter(|(_, _, (status, _))| *status == 200).collect();
        assert_eq!(winners.len(), 1, "{mine:?}");
        for (_, _, (status, body)) in &mine {
            if *status != 200 {
                assert_eq!(*status, 409, "{body}");
                assert_eq!(
                    body["error"]["message"],
                    "another runner has already accepted the order"
                );
            }
        }
        let (_, winner, (_, won)) = winners[0];
        let order = app.order(order_id).await;
        assert_eq!(order["status"], "ACCEPTED");
        assert_eq!(
            order["runner_id"],
            winner.as_str(),
            "the loser never touches the winner's order"
        );
        let saga_id = won["saga_id"].as_str().unwrap();
        let saga = app.saga_when_finished(saga_id).await;
        assert_eq!(saga["status"], "COMPLETED", "{saga}");
        assert_eq!(saga["saga_type"], "accept_order");
        assert_eq!(saga["runner_id"], winner.as_str());
        let timers = timers_of(&app, order_id).await;
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0]["status"], "CANCELLED", "the acceptance stopped the timer");
        // One acceptance happened, so one accept-order saga exists for the order.
        let (_, sagas) = app
            .get(&format!("/api/sagas?order_id={order_id}&saga_type=accept_order"))
            .await;
        assert_eq!(sagas["sagas"].as_array().unwrap().len(), 1, "{sagas}");
    }
}

#[rstest]
#[tokio::test]
async fn a_runner_gives_an_order_back_and_another_runner_takes_it(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let orders = orders_waiting_for_runners(&app, "cust_given_back", 1).await;
    let order_id = &orders[0].1;

    let (status, first) = accept(&app, order_id, "runner_first").await;
    assert_eq!(status, 200, "{first}");
    app.saga_when_finished(first["saga_id"].as_str().unwrap()).await;
    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/cancel-acceptance"),
            &json!({"runner_id": "runner_other"}),
        )
        .await;
    assert_eq!(status, 403, "only the assigned runner gives an order back: {body}");

    let (status, body) = app
        .post(
            &format!("/api/orders/{order_id}/cancel-acceptance"),
            &json!({"runner_id": "runner_first"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["saga_id"], first["saga_id"]);
    let given_back = app
        .saga_when(first["saga_id"].as_str().unwrap(), |s| s["status"] == "CANCELLED")
        .await;
    assert_eq!(given_back["current_step"], "done", "{given_back}");

    let order = app.order(order_id).await;
    assert_eq!(order["status"], "CREATED");
    assert_eq!(order["runner_id"], Value::Null);
    let (_, available) = app.get("/api/orders/available").await;
    let listed: Vec<_> = available["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_string())
        .collect();
    assert!(listed.contains(order_id), "{available}");
    let timers = timers_of(&app, order_id).await;
    let statuses: Vec<_> = timers.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["CANCELLED", "SCHEDULED"], "a fresh timer: {timers:?}");

    let (status, second) = accept(&app, order_id, "runner_second").await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["saga_id"], first["saga_id"], "a new acceptance is a new saga");
    assert_eq!(
        app.saga_when_finished(second["saga_id"].as_str().unwrap()).await["status"],
        "COMPLETED"
    );
    assert_eq!(app.order(order_id).await["runner_id"], "runner_second");
}

#[rstest]
#[tokio::test]
async fn an_acceptance_racing_the_end_of_the_window_either_wins_or_is_refused_never_both(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = Arc::new(TestApp::spawn_on(backend).await);
    let orders = orders_waiting_for_runners(&app, "cust_racing_clock", 8).await;

    // The window ends at the moment every order is being accepted.
    app.advance_clock(Duration::minutes(31));
    let acceptances = all_at_once(orders.iter().map(|(_, order_id)| {
        let (app, order_id) = (app.clone(), order_id.clone());
        async move { accept(&app, &order_id, "runner_racer").await }
    }))
    .await;

    for ((saga_id, order_id), (status, body)) in orders.iter().zip(acceptances) {
        // The timer either fired or was stopped by the acceptance first.
        let timer = eventually("the timer neither fired nor stopped", || async {
            let timers = timers_of(&app, order_id).await;
            match timers.first() {
                Some(timer) if timer["status"] != "SCHEDULED" => Ok(timer.clone()),
                _ => Err(format!("{timers:?}")),
            }
        })
        .await;
        // A fired timer makes the saga ask to cancel; the order refuses if it
        // was accepted first.
        let saga = app
            .saga_when(saga_id, |s| {
                let asked = s["history"].as_array().is_some_and(|h| {
                    h.iter()
                        .any(|e| e["event"] == "create_order_saga.cancellation_requested")
                });
                let settled = matches!(s["status"].as_str(), Some("COMPLETED" | "CANCELLED"));
                settled && (asked || timer["status"] == "CANCELLED")
            })
            .await;
        let order = app.order(order_id).await;
        let payments = app.payments_of(order_id).await;
        let escrows = app.escrows_of(order_id).await;
        match status {
            200 => {
                assert_eq!(order["status"], "ACCEPTED", "{body}");
                assert_eq!(saga["status"], "COMPLETED", "{saga}");
                assert_eq!(payments[0]["status"], "AUTHORIZED");
                assert_eq!(escrows[0]["status"], "HELD");
            }
            409 => {
                assert_eq!(order["status"], "CANCELLED", "{body}");
                assert_eq!(order["runner_id"], Value::Null);
                assert_eq!(saga["status"], "CANCELLED", "{saga}");
                assert_eq!(payments[0]["status"], "VOIDED");
                assert_eq!(escrows[0]["status"], "REFUNDED");
            }
            other => panic!("accepting answered {other}: {body}"),
        }
        assert_eq!(escrows[0]["amount_cents"], 1149, "no money is lost");
    }
}

#[rstest]
#[tokio::test]
async fn a_runner_cannot_accept_their_own_order_or_an_unknown_one(#[values(Backend::Embedded)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let orders = orders_waiting_for_runners(&app, "cust_self", 1).await;

    let (status, body) = accept(&app, &orders[0].1, "cust_self").await;
    assert_eq!(status, 403, "not the customer's to do: {body}");
    let (status, body) = accept(&app, "00000000-0000-0000-0000-000000000001", "runner_x").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .post(&format!("/api/orders/{}/accept", orders[0].1), &json!({}))
        .await;
    assert_eq!(status, 422, "{body}");
}

/// Found in review: a runner "giving back" an order still being paid for put it
/// up for runners before the card was authorized. Only an order a runner holds
/// can be given back; an unpaid one stays out of the list.
#[rstest]
#[tokio::test]
async fn a_runner_cannot_put_up_an_order_that_is_not_paid_for(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Arc::new(crate::backends::Environment::new(backend));
    // No payment service: the order stays PENDING, its card not yet authorized.
    let app = TestApp::spawn_with(environment, &crate::helpers::WITHOUT_PAYMENTS).await;
    app.create_user("cust_unpaid", Some("pm_card_visa")).await;
    app.create_user("runner_eager", None).await;
    let (saga_id, order_id) = app.place_order("cust_unpaid", 12.99, 2.0).await;
    app.saga_when(&saga_id, |saga| saga["current_step"] == "authorize_payment")
        .await;
    let runner = app.token("runner_eager", campusg_runtime::access::Role::Runner);

    let (status, body) = app
        .post_as(
            &format!("/api/orders/{order_id}/cancel-acceptance"),
            &json!({"runner_id": "runner_eager"}),
            Some(&runner),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(app.order(&order_id).await["status"], "PENDING");
    let (_, available) = app.get_as("/api/orders/available", Some(&runner)).await;
    assert_eq!(available["orders"], json!([]), "{available}");
}
