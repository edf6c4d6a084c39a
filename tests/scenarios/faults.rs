//! Faults lose nothing (SPEC section 10): a request retried after its answer
//! was lost causes nothing new.

use std::sync::Arc;

use rstest::rstest;
use serde_json::{json, Value};

use campusg_runtime::access::Role;

use crate::backends::{Backend, Environment};
use crate::helpers::TestApp;

fn an_order(customer: &str, item: &str) -> Value {
    json!({"customer_id": customer, "order_details": {
        "foodItems": [{"name": item, "price": 12.99, "quantity": 1}], "deliveryLocation": "Hall 7"}})
}

/// POSTs `body` to `path` as `token` under `key`; the status, the answer and
/// whether it was replayed.
async fn post_keyed(app: &TestApp, path: &str, body: &Value, token: &str, key: &str) -> (u16, Value, bool) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, response.json().await.unwrap_or(Value::Null), replayed)
}

/// Finding 6: a client that retried `POST /api/orders` after a lost answer
/// placed a second order, with a second card authorization. Under an
/// `Idempotency-Key` the retry, even after a restart, gets the first answer.
#[rstest]
#[tokio::test]
async fn an_order_retried_under_its_idempotency_key_is_placed_once(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Arc::new(Environment::new(backend));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.create_user("cust_retry", Some("pm_card_visa")).await;
    let token = app.token("cust_retry", Role::Customer);
    let order = an_order("cust_retry", "Laksa");

    let (status, first, replayed) = post_keyed(&app, "/api/orders", &order, &token, "order-7f3a").await;
    assert_eq!((status, replayed), (202, false), "{first}");
    let (status, again, replayed) = post_keyed(&app, "/api/orders", &order, &token, "order-7f3a").await;
    assert_eq!((status, replayed), (202, true), "{again}");
    assert_eq!(again, first, "the first answer, word for word");

    // The key is kept across a restart.
    let environment = app.stop().await;
    let app = TestApp::spawn_with(environment, &[]).await;
    let token = app.token("cust_retry", Role::Customer);
    let (status, after_restart, replayed) = post_keyed(&app, "/api/orders", &order, &token, "order-7f3a").await;
    assert_eq!((status, replayed), (202, true));
    assert_eq!(after_restart["saga_id"], first["saga_id"]);

    // The process died after running the request and before keeping its
    // answer: the claim is gone, and the retry runs the request again. It
    // finds the saga its first run started, by the key.
    lose_the_answer(&app, "cust_retry:order-7f3a").await;
    let (status, rerun, replayed) = post_keyed(&app, "/api/orders", &order, &token, "order-7f3a").await;
    assert_eq!((status, replayed), (202, false), "{rerun}");
    assert_eq!(rerun["saga_id"], first["saga_id"]);
    assert_eq!(rerun["order_id"], first["order_id"]);

    // The same key for another request is a conflict; another key is another order.
    let other = an_order("cust_retry", "Satay");
    let (status, body, _) = post_keyed(&app, "/api/orders", &other, &token, "order-7f3a").await;
    assert_eq!(status, 409, "{body}");
    let (status, second, _) = post_keyed(&app, "/api/orders", &other, &token, "order-8b1c").await;
    assert_eq!(status, 202, "{second}");
    assert_ne!(second["saga_id"], first["saga_id"]);

    let saga_id = first["saga_id"].as_str().unwrap();
    assert_eq!(app.saga_when_finished(saga_id).await["status"], "COMPLETED");
    let order_id = first["order_id"].as_str().unwrap();
    assert_eq!(app.payments_of(order_id).await.len(), 1, "one authorization");
    let (_, listed) = app.get("/api/orders?customer_id=cust_retry").await;
    assert_eq!(listed["orders"].as_array().unwrap().len(), 2, "{listed}");
}

/// Fault injection: gives back the key `request_key` (the caller's id and
/// key) with its answer, as if the process had died before keeping it and
/// the claim had lapsed.
async fn lose_the_answer(app: &TestApp, request_key: &str) {
    use campusg_domain::idempotency::{IdempotencyCommand, IdempotentRequest};
    use campusg_runtime::aggregate::{execute, load};
    use campusg_runtime::store::{Cause, UnitOfWork};

    let store = campusg::backends::open_store(&app.environment.backends(), campusg::startup::API_STORE)
        .await
        .unwrap();
    let mut loaded = load::<IdempotentRequest>(store.as_ref(), request_key).await.unwrap();
    let release = IdempotencyCommand::Release { at: chrono::Utc::now() };
    let events = execute(&mut loaded, release, &()).await.unwrap();
    let mut unit = UnitOfWork::new(Cause::request("test".into(), "test", chrono::Utc::now()));
    unit.append_unpublished(&mut loaded, &events);
    store.commit(unit).await.unwrap();
}

/// A key is the caller's own: another caller's request under the same key is
/// theirs, and a key that is not one is a 400.
#[tokio::test]
async fn an_idempotency_key_belongs_to_its_caller() {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    for customer in ["cust_key_a", "cust_key_b"] {
        app.create_user(customer, Some("pm_card_visa")).await;
    }
    let a = app.token("cust_key_a", Role::Customer);
    let b = app.token("cust_key_b", Role::Customer);
    let (_, of_a, _) = post_keyed(&app, "/api/orders", &an_order("cust_key_a", "Tea"), &a, "k1").await;
    let (status, of_b, replayed) = post_keyed(&app, "/api/orders", &an_order("cust_key_b", "Tea"), &b, "k1").await;
    assert_eq!((status, replayed), (202, false), "{of_b}");
    assert_ne!(of_a["saga_id"], of_b["saga_id"]);
    let (status, _, _) = post_keyed(&app, "/api/orders", &an_order("cust_key_a", "Tea"), &a, "two words").await;
    assert_eq!(status, 400);
}

fn an_update(user: &str, name: &str) -> Value {
    json!({"type": "update_user", "correlation_id": format!("ops-{user}-{name}"),
           "payload": {"user_id": user, "name": name}})
}

async fn user_name(app: &TestApp, user: &str) -> Value {
    app.get(&format!("/users/{user}")).await.1["name"].clone()
}

/// Finding 1: once a record of a key was dead-lettered, the key's later
/// records were handled as if nothing had happened, out of order. Now the key
/// is parked for its group: its later records wait, in order, while other
/// keys flow, until an operator retries them (handled in order) or drops them.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_be_handled_is_parked_and_its_records_wait_in_order(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("alive", None).await;
    // Two updates of a user who does not exist yet: the first cannot be
    // handled, the second must not overtake it.
    app.publish("user_commands", &an_update("ghost", "Casper")).await;
    app.publish("user_commands", &an_update("ghost", "Casper the Second"))
        .await;
    app.publish("user_commands", &an_update("alive", "Still Here")).await;
    crate::helpers::eventually("another key never flowed", || async {
        match user_name(&app, "alive").await {
            name if name == "Still Here" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
    let parked = crate::helpers::eventually("the key was never parked with both records", || async {
        let (_, listed) = app.get("/api/parked-keys").await;
        let held = listed["parked_keys"][0]["held"].as_array().map_or(0, Vec::len);
        if held == 2 {
            Ok(listed)
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    let key = &parked["parked_keys"][0];
    assert_eq!(key["key"], "ghost");
    assert_eq!(key["group"], "user-service");
    assert!(
        key["first_failure"].as_str().unwrap().contains("does not exist"),
        "{key}"
    );

    // The cause is fixed; the held records are handled in order.
    app.create_user("ghost", None).await;
    let customer = app.token("alive", Role::Customer);
    let (status, _) = app
        .post_as("/api/parked-keys/ghost/retry", &json!({}), Some(&customer))
        .await;
    assert_eq!(status, 403, "operators only");
    let (status, answer) = app.post("/api/parked-keys/ghost/retry", &json!({})).await;
    assert_eq!(status, 200, "{answer}");
    crate::helpers::eventually("the held records were never handled", || async {
        let (_, listed) = app.get("/api/parked-keys").await;
        let name = user_name(&app, "ghost").await;
        if listed["parked_keys"] == json!([]) && name == "Casper the Second" {
            Ok(())
        } else {
            Err(format!("{name} {listed}"))
        }
    })
    .await;
    // Freed, the key's next record is handled at once.
    app.publish("user_commands", &an_update("ghost", "Casper the Third"))
        .await;
    crate::helpers::eventually("the freed key's record was never handled", || async {
        match user_name(&app, "ghost").await {
            name if name == "Casper the Third" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;

    // Dropped: the held records are never handled, and the key is free.
    app.publish("user_commands", &an_update("phantom", "Boo")).await;
    crate::helpers::eventually("phantom was never parked", || async {
        let (_, listed) = app.get("/api/parked-keys").await;
        if listed["parked_keys"][0]["key"] == "phantom" {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    let (status, dropped) = app
        .post("/api/parked-keys/phantom/drop", &json!({"reason": "a test user"}))
        .await;
    assert_eq!(status, 200, "{dropped}");
    assert_eq!(dropped["groups"], json!(["user-service"]));
    assert_eq!(app.get("/api/parked-keys").await.1["parked_keys"], json!([]));
    assert_eq!(app.post("/api/parked-keys/phantom/drop", &json!({})).await.0, 404);
    app.create_user("phantom", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        user_name(&app, "phantom").await,
        "phantom",
        "the dropped update never ran"
    );
}

/// Finding 2 (in part): the handled-message marks grew forever. They are kept
/// for the dedupe window (14 days), then forgotten.
#[rstest]
#[tokio::test]
async fn handled_marks_are_forgotten_after_the_dedupe_window(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let environment = Arc::new(Environment::new(backend));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.create_user("marked", None).await;
    app.publish("user_commands", &an_update("marked", "Marked Once")).await;
    let record = app
        .record_when("user_commands", |r| r.value.contains("Marked Once"))
        .await;
    let message_id = record.header("id").unwrap().to_string();
    let store = campusg::backends::open_store(&environment.backends(), "user")
        .await
        .unwrap();
    crate::helpers::eventually("the update was never handled", || async {
        match store.has_handled("user-service", &message_id).await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Thirteen days on, it is still remembered; past the window (14 days), the
    // next sweep (one runs at start) forgets it.
    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(13));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(store.has_handled("user-service", &message_id).await.unwrap());
    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(2));
    let _app = TestApp::spawn_with(environment, &[]).await;
    crate::helpers::eventually("the mark was never forgotten", || async {
        match store.has_handled("user-service", &message_id).await {
            Ok(false) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// A released parked key is history: kept as long as its dead letters (30
/// days, so that retrying a letter its key's retry handled is still refused),
/// then forgotten. A key still parked is kept whatever its age: its records wait.
#[rstest]
#[tokio::test]
async fn released_parked_keys_are_forgotten_with_their_dead_letters_and_parked_ones_kept(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    use campusg_runtime::parking::{parked_key_id, ParkedKey};
    use cqrs_es::Aggregate;

    let environment = Arc::new(Environment::new(backend));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.publish("user_commands", &an_update("ghost", "Casper")).await;
    app.publish("user_commands", &an_update("phantom", "Boo")).await;
    crate::helpers::eventually("the keys were never parked", || async {
        let (_, listed) = app.get("/api/parked-keys?page_size=1&page=2").await;
        match listed["parked_keys"].as_array().map(Vec::len) {
            Some(1) if listed["page_size"] == 1 => Ok(()),
            _ => Err(listed.to_string()),
        }
    })
    .await;
    app.create_user("ghost", None).await;
    assert_eq!(app.post("/api/parked-keys/ghost/retry", &json!({})).await.0, 200);
    let store = campusg::backends::open_store(&environment.backends(), "user")
        .await
        .unwrap();
    let status = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .state(ParkedKey::TYPE, &parked_key_id("user-service", key))
                .await
                .unwrap()
                .map(|(_, state)| state["status"].as_str().unwrap_or_default().to_string())
        }
    };
    crate::helpers::eventually("ghost was never released", || async {
        match status("ghost").await.as_deref() {
            Some("RELEASED") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Past the dedupe window (14 days) it is kept; past its dead letters' (30), forgotten.
    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(15));
    let app = TestApp::spawn_with(environment, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(status("ghost").await.as_deref(), Some("RELEASED"));
    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(16));
    let app = TestApp::spawn_with(environment, &[]).await;
    crate::helpers::eventually("the released key was never forgotten", || async {
        match status("ghost").await {
            None => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(status("phantom").await.as_deref(), Some("PARKED"));
    let (_, listed) = app.get("/api/parked-keys").await;
    assert_eq!(listed["parked_keys"][0]["key"], "phantom", "{listed}");
    assert_eq!(app.get("/api/parked-keys?page_size=101").await.0, 400);
}

/// Finding 4: the PostgreSQL outbox lease was a session lock that a frozen or
/// cut-off holder kept until the server noticed (hours). Now it is a lease
/// with a deadline: renewed, it stays; unrenewed, another replica takes it.
#[tokio::test]
async fn an_outbox_lease_left_unrenewed_passes_to_another_replica() {
    use campusg_adapters::postgres_store::PostgresEventStore;
    use campusg_runtime::store::EventStore;

    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("lease_{}", uuid::Uuid::new_v4().simple());
    let term = std::time::Duration::from_millis(800);
    let first = PostgresEventStore::open(&url, &schema)
        .await
        .unwrap()
        .with_lease_term(term);
    let second = PostgresEventStore::open(&url, &schema)
        .await
        .unwrap()
        .with_lease_term(term);

    assert!(first.claim_outbox().await.unwrap(), "a free lease is taken");
    assert!(!second.claim_outbox().await.unwrap(), "one relay at a time");
    // Renewed within its term, it stays with its holder.
    for _ in 0..3 {
        tokio::time::sleep(term / 2).await;
        assert!(first.claim_outbox().await.unwrap());
        assert!(!second.claim_outbox().await.unwrap());
    }
    // The holder freezes: its lease lapses and the other replica takes it.
    tokio::time::sleep(term + std::time::Duration::from_millis(300)).await;
    assert!(second.claim_outbox().await.unwrap(), "a lapsed lease passes on");
    assert!(!first.claim_outbox().await.unwrap(), "the old holder, back, stands by");
    // A replica restarted under its instance id takes its own lease back at once.
    let named = |store: PostgresEventStore| {
        store
            .with_lease_term(std::time::Duration::from_secs(30))
            .leasing_as("order-2")
    };
    let before_restart = named(PostgresEventStore::open(&url, &schema).await.unwrap());
    tokio::time::sleep(term + std::time::Duration::from_millis(300)).await;
    assert!(before_restart.claim_outbox().await.unwrap());
    drop(before_restart);
    let after_restart = named(PostgresEventStore::open(&url, &schema).await.unwrap());
    assert!(after_restart.claim_outbox().await.unwrap(), "its own lease, at once");
    assert!(!second.claim_outbox().await.unwrap());
    PostgresEventStore::drop_schema(&url, &schema).await.unwrap();
}

/// Finding 5: outbox rows took their ids at insert, not at commit, so a
/// transaction could commit a row with a larger id while one with a smaller id
/// was still in flight: the relay saw the rows of a later commit first, and the
/// earlier one's appeared behind them. Many committers at once, and a reader
/// that must never see a new row below one it has seen already.
#[tokio::test]
async fn outbox_rows_become_visible_in_commit_order() {
    use campusg_adapters::postgres_store::PostgresEventStore;
    use campusg_runtime::bus::OutgoingRecord;
    use campusg_runtime::store::{Cause, EventStore, UnitOfWork};

    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("order_{}", uuid::Uuid::new_v4().simple());
    let store: Arc<dyn EventStore> = Arc::new(PostgresEventStore::open(&url, &schema).await.unwrap());

    let committers: Vec<_> = (0..8)
        .map(|committer| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..60 {
                    let mut unit =
                        UnitOfWork::new(Cause::request(format!("c{committer}-{n}"), "test", chrono::Utc::now()));
                    unit.outbox.push(OutgoingRecord {
                        topic: "order_events".into(),
                        key: Some(format!("order-{committer}")),
                        value: format!("{{\"n\": {n}}}"),
                        headers: Vec::new(),
                    });
                    store.commit_batch(vec![unit]).await.unwrap();
                }
            })
        })
        .collect();

    let mut highest_seen = 0;
    let mut seen = std::collections::HashSet::new();
    let mut out_of_order = Vec::new();
    while seen.len() < 8 * 60 {
        let batch = store.outbox_batch(10_000).await.unwrap();
        let mut newest_in_batch = highest_seen;
        for (id, _) in batch {
            if seen.insert(id) {
                if id < highest_seen {
                    out_of_order.push((id, highest_seen));
                }
                newest_in_batch = newest_in_batch.max(id);
            }
        }
        highest_seen = newest_in_batch;
        tokio::task::yield_now().await;
    }
    for committer in committers {
        committer.await.unwrap();
    }
    PostgresEventStore::drop_schema(&url, &schema).await.unwrap();
    assert!(
        out_of_order.is_empty(),
        "rows appeared below rows already seen (id, highest seen before): {out_of_order:?}"
    );
}

/// Finding 2 (in part): the embedded log kept every record whatever
/// `topics.toml` said. Past a topic's retention (7 days for the commands and
/// events) its records are deleted, and the system goes on from what is left.
#[tokio::test]
async fn the_embedded_log_keeps_a_topic_s_records_for_its_retention() {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.create_user("cust_old", Some("pm_card_visa")).await;
    let (saga_id, _) = app.place_order("cust_old", 9.0, 1.0).await;
    app.saga_when_finished(&saga_id).await;
    assert!(!app.records(&["order_commands"]).await.is_empty());

    let environment = app.stop().await;
    let stopped_at = chrono::Utc::now();
    environment.clock.advance(chrono::Duration::days(8));
    let app = TestApp::spawn_with(environment, &[]).await;
    // What the restart causes (the order's acceptance window ran out meanwhile)
    // is new; everything from before is past its retention.
    crate::helpers::eventually("the old records were never deleted", || async {
        let records = app.records(&["order_commands", "payment_events"]).await;
        match records.iter().filter(|r| r.timestamp < stopped_at).count() {
            0 => Ok(()),
            left => Err(format!("{left} old records left")),
        }
    })
    .await;
    // The groups start from what is left, and a new order goes through.
    let (saga_id, _) = app.place_order("cust_old", 9.0, 1.0).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
}

/// The API's idempotent requests are kept for the dedupe window, then
/// forgotten, so that they do not grow forever.
#[tokio::test]
async fn idempotent_requests_are_forgotten_after_the_dedupe_window() {
    use campusg_domain::idempotency::IdempotentRequest;
    use campusg_runtime::aggregate::load;

    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.create_user("cust_window", Some("pm_card_visa")).await;
    let token = app.token("cust_window", Role::Customer);
    let order = an_order("cust_window", "Kaya toast");
    assert_eq!(post_keyed(&app, "/api/orders", &order, &token, "kaya").await.0, 202);
    let store = campusg::backends::open_store(&environment.backends(), campusg::startup::API_STORE)
        .await
        .unwrap();
    let kept = load::<IdempotentRequest>(store.as_ref(), "cust_window:kaya")
        .await
        .unwrap();
    assert!(kept.aggregate.answer.is_some());

    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(15));
    let _app = TestApp::spawn_with(environment, &[]).await;
    crate::helpers::eventually("the idempotent request was never forgotten", || async {
        match load::<IdempotentRequest>(store.as_ref(), "cust_window:kaya").await {
            Ok(loaded) if loaded.version == 0 => Ok(()),
            other => Err(format!("{:?}", other.map(|l| l.version))),
        }
    })
    .await;
}

/// Found in review: an answer was kept whole for its key, and an error quoted
/// the input that broke it, so a customer could store 120 KB per request with a
/// long bad field. An error message is at most 500 characters now, and an
/// answer kept for a key at most 16 KiB.
#[tokio::test]
async fn an_answer_kept_for_a_key_does_not_grow_with_the_input() {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    app.create_user("cust_long", Some("pm_card_visa")).await;
    let token = app.token("cust_long", Role::Customer);
    let long = "x".repeat(60_000);
    let order = json!({"customer_id": "cust_long", "order_details": {
        "foodItems": [{"name": "Tea", "price": 1, "quantity": long}], "deliveryLocation": "Hall 7"}});

    let (status, refused, _) = post_keyed(&app, "/api/orders", &order, &token, "long-1").await;

    assert!((400..500).contains(&status), "{status}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.chars().count() <= 501, "{} characters", message.chars().count());
    let (_, again, replayed) = post_keyed(&app, "/api/orders", &order, &token, "long-1").await;
    assert!(replayed, "a short answer is kept and replayed");
    assert_eq!(again, refused);
}

/// Found in review: after the dedupe window, a customer who reused a key for
/// another order was answered with the key's first order, and nothing placed.
#[tokio::test]
async fn a_key_reused_for_another_order_after_the_window_is_a_conflict() {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.create_user("cust_reuse", Some("pm_card_visa")).await;
    let token = app.token("cust_reuse", Role::Customer);
    let first = an_order("cust_reuse", "Roti");
    assert_eq!(post_keyed(&app, "/api/orders", &first, &token, "k1").await.0, 202);

    let environment = app.stop().await;
    environment.clock.advance(chrono::Duration::days(15));
    let app = TestApp::spawn_with(environment, &[]).await;
    let token = app.token("cust_reuse", Role::Customer);
    let other = an_order("cust_reuse", "Prata");
    let (status, body, _) = post_keyed(&app, "/api/orders", &other, &token, "k1").await;
    assert_eq!(status, 409, "{body}");
    // The same order under the same key still finds its saga.
    let (status, _, _) = post_keyed(&app, "/api/orders", &first, &token, "k1").await;
    assert_eq!(status, 202);
}

/// Found in review: dropping a key while it was being retried answered 500.
/// It is a conflict, and no group's key is changed.
#[tokio::test]
async fn dropping_a_key_being_retried_is_a_conflict() {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_with(environment.clone(), &[]).await;
    app.publish("user_commands", &an_update("ghost", "Casper")).await;
    crate::helpers::eventually("the key was never parked", || async {
        let (_, listed) = app.get("/api/parked-keys").await;
        if listed["parked_keys"][0]["key"] == "ghost" {
            Ok(())
        } else {
            Err(listed.to_string())
        }
    })
    .await;
    // Only the API runs: nobody takes the retry up, so it stays RETRYING.
    let environment = app.stop().await;
    let app = TestApp::spawn_with(environment, &[campusg::settings::Role::Api]).await;
    assert_eq!(app.post("/api/parked-keys/ghost/retry", &json!({})).await.0, 200);

    let (status, refused) = app.post("/api/parked-keys/ghost/drop", &json!({"reason": "x"})).await;

    assert_eq!(status, 409, "{refused}");
    let (_, listed) = app.get("/api/parked-keys").await;
    assert_eq!(listed["parked_keys"][0]["status"], "RETRYING", "{listed}");
}
