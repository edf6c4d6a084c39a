//! Who may do what (SPEC section 11): every route refuses a request without a
//! token (401) and a caller its rule does not admit (403); customers and
//! runners act only for themselves; money moves by hand only for operators;
//! tokens that do not hold are refused, whoever signed them; and the guard's
//! rate limits and CORS.

use std::sync::Arc;

use rstest::rstest;
use serde_json::{json, Value};

use campusg::identity::LocalKey;
use campusg_domain::ids::UserId;
use campusg_runtime::access::Role;
use campusg_runtime::clock::Clock;

use crate::backends::{Backend, Environment};
use crate::helpers::TestApp;

/// A customer with a card whose order is placed and paid for (authorized,
/// escrow held), waiting for a runner; returns the order id.
async fn a_paid_order(app: &TestApp, customer: &str) -> String {
    app.create_user(customer, Some("pm_card_visa")).await;
    let (saga_id, order_id) = app.place_order(customer, 40.0, 10.0).await;
    assert_eq!(app.saga_when_finished(&saga_id).await["status"], "COMPLETED");
    order_id
}

/// Every operation of the OpenAPI document: no token is a 401 (naming the
/// bearer scheme), a role its rule does not admit a 403, and a role it admits
/// neither; the public ones answer without a token.
#[tokio::test]
async fn every_route_refuses_no_token_and_the_roles_it_does_not_admit() {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    let (status, document) = app.get_as("/openapi.json", None).await;
    assert_eq!(status, 200);
    let mut walked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let admitted: Vec<&str> = operation["x-campusg-roles"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares no roles"))
                .iter()
                .map(|role| role.as_str().unwrap())
                .collect();
            walked += 1;
            if admitted.is_empty() {
                assert_eq!(call(&app, method, path, "nobody", None).await.0, 200, "{method} {path}");
                continue;
            }
            let (status, headers) = call(&app, method, path, "nobody", None).await;
            assert_eq!(status, 401, "{method} {path} without a token");
            assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
            for role in Role::ALL {
                let user = format!("walker_{role}");
                let token = app.token(&user, role);
                let (status, _) = call(&app, method, path, &user, Some(&token)).await;
                if admitted.contains(&role.as_str()) {
                    assert!(
                        status != 401 && status != 403,
                        "{method} {path} refused a {role} it admits: {status}"
                    );
                } else {
                    assert_eq!(status, 403, "{method} {path} let a {role} in");
                }
            }
        }
    }
    assert!(walked > 40, "only {walked} operations walked");
}

/// Calls `method path` as `user` (their id fills a `{user_id}`, a fresh UUID
/// any other id) with an empty JSON body; returns the status and headers.
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    user: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap) {
    let mut concrete = path.replace("{user_id}", user);
    while let (Some(open), Some(close)) = (concrete.find('{'), concrete.find('}')) {
        concrete.replace_range(open..=close, &uuid::Uuid::new_v4().to_string());
    }
    let url = format!("{}{concrete}", app.address);
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut request = app.client.request(method.clone(), url);
    if method != reqwest::Method::GET {
        request = request.json(&json!({}));
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    (response.status().as_u16(), response.headers().clone())
}

/// Findings 1–3: the escrow and payment routes moved anyone's money for
/// anyone. Now no token is a 401, a customer or runner a 403, and nothing moves.
#[rstest]
#[tokio::test]
async fn nobody_but_an_operator_moves_money_by_hand(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = a_paid_order(&app, "cust_money").await;
    app.create_user("mallory", None).await;
    let mallory = app.token("mallory", Role::Runner);
    let customer = app.token("cust_money", Role::Customer);

    let release = json!({"order_id": order_id, "runner_id": "mallory"});
    let void = json!({"order_id": order_id});
    let cheaper =
        json!({"order_id": order_id, "customer_id": "cust_money", "amount": 0.01, "payment_method": "pm_card_visa"});
    let smaller_hold = json!({"order_id": order_id, "customer_id": "cust_money", "food_fee": 0.01});
    for (path, body) in [
        ("/escrow/release", &release),
        ("/payments/release", &void),
        ("/payments/capture", &void),
        ("/escrow/cancel", &void),
        ("/payments/authorize", &cheaper),
        ("/escrow/hold", &smaller_hold),
    ] {
        assert_eq!(app.post_as(path, body, None).await.0, 401, "{path} without a token");
        assert_eq!(
            app.post_as(path, body, Some(&mallory)).await.0,
            403,
            "{path} as a runner"
        );
        assert_eq!(
            app.post_as(path, body, Some(&customer)).await.0,
            403,
            "{path} as the customer"
        );
    }

    let payments = app.payments_of(&order_id).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["status"], "AUTHORIZED");
    assert_eq!(payments[0]["amount_cents"], 5000);
    let escrows = app.escrows_of(&order_id).await;
    assert_eq!(escrows.len(), 1, "{escrows:?}");
    assert_eq!(escrows[0]["status"], "HELD");
    assert_eq!(escrows[0]["amount_cents"], 5000);
}

/// Finding 4: anyone acted for anyone. Now a customer acts only on their own
/// orders and record, a runner only as themselves, and another's details stay
/// private.
#[rstest]
#[tokio::test]
async fn customers_and_runners_act_only_for_themselves(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let order_id = a_paid_order(&app, "cust_alice").await;
    app.create_user("cust_eve", Some("pm_card_visa")).await;
    app.create_user("runner_bob", None).await;
    app.create_user("runner_mallory", None).await;
    let eve = app.token("cust_eve", Role::Customer);
    let alice = app.token("cust_alice", Role::Customer);
    let bob = app.token("runner_bob", Role::Runner);
    let mallory = app.token("runner_mallory", Role::Runner);

    // Another customer can neither cancel Alice's order nor order in her name.
    let cancel = format!("/api/orders/{order_id}/cancel");
    assert_eq!(app.post_as(&cancel, &json!({}), Some(&eve)).await.0, 403);
    let in_her_name = json!({"customer_id": "cust_alice"});
    assert_eq!(app.post_as(&cancel, &in_her_name, Some(&eve)).await.0, 403);
    let order_for_alice = json!({"customer_id": "cust_alice", "order_details": {
        "foodItems": [{"name": "Burger", "price": 5, "quantity": 1}], "deliveryLocation": "Hall 1"}});
    assert_eq!(app.post_as("/api/orders", &order_for_alice, Some(&eve)).await.0, 403);
    assert_eq!(app.order(&order_id).await["status"], "CREATED");

    // Nor read her order, her details, or everyone's.
    assert_eq!(app.get_as(&format!("/api/orders/{order_id}"), Some(&eve)).await.0, 403);
    let (status, listed) = app.get_as("/api/orders?customer_id=cust_alice", Some(&eve)).await;
    assert_eq!(status, 403, "{listed}");
    let (status, own) = app.get_as("/api/orders", Some(&eve)).await;
    assert_eq!(status, 200);
    assert_eq!(own["orders"], json!([]), "a customer's list is their own");
    assert_eq!(app.get_as("/users", Some(&eve)).await.0, 403);
    let (status, seen) = app.get_as("/users/cust_alice", Some(&eve)).await;
    assert_eq!(status, 200);
    for private in ["email", "phone", "payment_method", "payout_account", "rated_for"] {
        assert!(seen.get(private).is_none(), "{private} shown to another user: {seen}");
    }
    let (_, herself) = app.get_as("/users/cust_alice", Some(&alice)).await;
    assert_eq!(herself["payment_method"], "pm_card_visa");
    let hijack = json!({"payout_account": "EVE-666", "payment_method": "pm_card_visa"});
    let response = app
        .client
        .patch(format!("{}/users/cust_alice", app.address))
        .bearer_auth(&eve)
        .json(&hijack)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(app.get("/users/cust_alice").await.1["payout_account"], Value::Null);

    // A runner accepts only as themselves, and moves only the orders they hold.
    let accept = format!("/api/orders/{order_id}/accept");
    assert_eq!(
        app.post_as(&accept, &json!({"runner_id": "runner_bob"}), Some(&mallory))
            .await
            .0,
        403
    );
    let (status, accepted) = app
        .post_as(&accept, &json!({"runner_id": "runner_bob"}), Some(&bob))
        .await;
    assert_eq!(status, 200, "{accepted}");
    let status_path = format!("/api/orders/{order_id}/status");
    let stage = json!({"runner_id": "runner_mallory", "status": "ON_SITE"});
    assert_eq!(app.post_as(&status_path, &stage, Some(&mallory)).await.0, 403);
    let give_back = format!("/api/orders/{order_id}/cancel-acceptance");
    assert_eq!(
        app.post_as(&give_back, &json!({"runner_id": "runner_mallory"}), Some(&mallory))
            .await
            .0,
        403
    );
    assert_eq!(
        app.get_as(&format!("/api/orders/{order_id}"), Some(&mallory)).await.0,
        403
    );
    let order = app.order(&order_id).await;
    assert_eq!(order["status"], "ACCEPTED");
    assert_eq!(order["runner_id"], "runner_bob");
    // The parties see the order.
    assert_eq!(
        app.get_as(&format!("/api/orders/{order_id}"), Some(&alice)).await.0,
        200
    );
    assert_eq!(app.get_as(&format!("/api/orders/{order_id}"), Some(&bob)).await.0, 200);
}

enum BadToken {
    Tampered,
    Expired,
    SignedWithAnotherKey,
    ForAnotherAudience,
    Unsigned,
    NotBearer,
}

/// A token that does not hold is a 401, whatever is wrong with it.
#[rstest]
#[case::tampered(BadToken::Tampered)]
#[case::expired(BadToken::Expired)]
#[case::signed_with_another_key(BadToken::SignedWithAnotherKey)]
#[case::for_another_audience(BadToken::ForAnotherAudience)]
#[case::unsigned(BadToken::Unsigned)]
#[case::not_a_bearer_token(BadToken::NotBearer)]
#[tokio::test]
async fn a_token_that_does_not_hold_is_refused(#[case] bad: BadToken) {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    let runner = UserId::parse("runner_tok").unwrap();
    let now = app.environment.clock.now();
    let good = app.token("runner_tok", Role::Runner);
    assert_eq!(app.get_as("/api/orders/available", Some(&good)).await.0, 200);

    let header = match bad {
        BadToken::Tampered => {
            // The payload says operator now; the signature is the runner's.
            let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
            let operator = app.token("runner_tok", Role::Operator);
            parts[1] = operator.split('.').nth(1).unwrap().to_string();
            format!("Bearer {}", parts.join("."))
        }
        BadToken::Expired => {
            let then = now - chrono::Duration::hours(2);
            let token = app
                .key
                .mint(&runner, Role::Runner, chrono::Duration::hours(1), "campusg", then)
                .unwrap();
            format!("Bearer {token}")
        }
        BadToken::SignedWithAnotherKey => {
            let elsewhere = tempfile::tempdir().unwrap();
            let other = LocalKey::load_or_create(elsewhere.path()).unwrap();
            let token = other
                .mint(&runner, Role::Runner, chrono::Duration::hours(1), "campusg", now)
                .unwrap();
            format!("Bearer {token}")
        }
        BadToken::ForAnotherAudience => {
            let token = app
                .key
                .mint(&runner, Role::Runner, chrono::Duration::hours(1), "other-app", now)
                .unwrap();
            format!("Bearer {token}")
        }
        BadToken::Unsigned => {
            let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
            let claims = json!({"sub": "runner_tok", "role": "operator", "iss": "campusg-local", "aud": "campusg",
                "exp": (now + chrono::Duration::hours(1)).timestamp()});
            format!("Bearer {header}.{}.", base64_url(&claims.to_string()))
        }
        BadToken::NotBearer => format!("Basic {good}"),
    };
    let response = app
        .client
        .get(format!("{}/api/orders/available", app.address))
        .header("authorization", header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
}

/// Base64url without padding, as JWTs spell their parts.
fn base64_url(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_token_signed_by_the_oidc_issuer_is_accepted_and_no_other() {
    let issuer = crate::oidc::Issuer::start().await;
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let configured_issuer = issuer.url.clone();
    let app = TestApp::spawn_configured(environment, &[], move |settings| {
        settings.guard.oidc_issuer = Some(configured_issuer);
    })
    .await;
    let signed = |kid: &str, role: &str| issuer.token("runner_oidc", role, kid);

    let (status, body) = app
        .get_as("/api/orders/available", Some(&signed("test-key-1", "runner")))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.get_as("/users", Some(&signed("test-key-1", "runner"))).await;
    assert_eq!(status, 403, "the issuer's runner is still a runner");
    let (status, body) = app
        .get_as("/api/orders/available", Some(&signed("no-such-key", "runner")))
        .await;
    assert_eq!(status, 401, "{body}");
    // The local key signs nothing here.
    let (status, _) = app.get_as("/api/orders/available", Some(&app.operator_token())).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_caller_past_the_rate_limit_is_told_to_wait_and_others_go_on() {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_configured(environment, &[], |settings| {
        settings.guard.rate_limit_per_subject = 3;
    })
    .await;
    let greedy = app.token("runner_greedy", Role::Runner);
    for _ in 0..3 {
        assert_eq!(app.get_as("/api/orders/available", Some(&greedy)).await.0, 200);
    }
    let response = app
        .client
        .get(format!("{}/api/orders/available", app.address))
        .bearer_auth(&greedy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=21).contains(&wait), "Retry-After: {wait}");
    let patient = app.token("runner_patient", Role::Runner);
    assert_eq!(app.get_as("/api/orders/available", Some(&patient)).await.0, 200);
}

/// A browser's preflight from an origin is answered only when the origin is
/// configured; with none configured, pages elsewhere cannot call the API.
#[rstest]
#[case::none_configured(None, "https://app.campus.example", false)]
#[case::configured(Some("https://app.campus.example"), "https://app.campus.example", true)]
#[case::another_origin(Some("https://app.campus.example"), "https://evil.example", false)]
#[tokio::test]
async fn cors_is_closed_unless_an_origin_is_configured(
    #[case] configured: Option<&'static str>,
    #[case] origin: &str,
    #[case] allowed: bool,
) {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    let app = TestApp::spawn_configured(environment, &[], move |settings| {
        settings.guard.cors_origins = configured.into_iter().map(str::to_string).collect();
    })
    .await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/orders", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    let allow = response.headers().get("access-control-allow-origin");
    assert_eq!(allow.is_some(), allowed, "{:?}", response.headers());
    if allowed {
        assert_eq!(allow.unwrap(), origin);
    }
}

/// Found in review: a caller could hold any number of update streams open,
/// each polling the store. Now eight at once; the ninth waits for one to close.
#[tokio::test]
async fn a_caller_holds_at_most_eight_update_streams() {
    let environment = Arc::new(Environment::new(Backend::Embedded));
    // No payment service: the saga waits at its authorization, never final.
    let app = TestApp::spawn_with(environment, &crate::helpers::WITHOUT_PAYMENTS).await;
    app.create_user("cust_streams", Some("pm_card_visa")).await;
    let (saga_id, _) = app.place_order("cust_streams", 12.99, 2.0).await;
    let customer = app.token("cust_streams", Role::Customer);
    let open = |token: String| {
        let request = app
            .client
            .get(format!("{}/saga/complete/orderUpdateStream/{saga_id}", app.address))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let mut streams = Vec::new();
    for _ in 0..8 {
        let stream = open(customer.clone()).await;
        assert_eq!(stream.status().as_u16(), 200);
        streams.push(stream);
    }
    assert_eq!(open(customer.clone()).await.status().as_u16(), 429);
    assert_eq!(
        open(app.operator_token()).await.status().as_u16(),
        200,
        "another caller's own eight"
    );
    drop(streams.pop());
    crate::helpers::eventually("a closed stream is never given back", || async {
        match open(customer.clone()).await.status().as_u16() {
            200 => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
}
