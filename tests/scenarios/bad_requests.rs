//! Bad requests get a clear error in `{"error": {"code", "message"}}` and change nothing.

use rstest::rstest;
use serde_json::{json, Value};

use crate::backends::Backend;
use crate::helpers::TestApp;

fn order_with(details: Value) -> Value {
    json!({"customer_id": "cust_123", "order_details": details})
}

#[rstest]
#[case::missing_customer(json!({"order_details": {"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A"}}), 422, "customer_id")]
#[case::missing_items(order_with(json!({"deliveryLocation": "A"})), 422, "foodItems")]
#[case::negative_quantity(order_with(json!({"foodItems": [{"name": "B", "price": 1, "quantity": -2}], "deliveryLocation": "A"})), 422, "quantity -2")]
#[case::negative_delivery_fee(order_with(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A", "deliveryFee": -1})), 422, "at least 0")]
#[case::fee_above_limit(order_with(json!({"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A", "deliveryFee": 99})), 422, "above the limit")]
#[case::three_decimals(order_with(json!({"foodItems": [{"name": "B", "price": 1.005, "quantity": 1}], "deliveryLocation": "A"})), 422, "more than two decimals")]
#[case::no_items(order_with(json!({"foodItems": [], "deliveryLocation": "A"})), 422, "at least one food item")]
#[case::bad_customer_id(json!({"customer_id": "not ok!", "order_details": {"foodItems": [{"name": "B", "price": 1, "quantity": 1}], "deliveryLocation": "A"}}), 422, "user id")]
#[tokio::test]
async fn an_order_that_breaks_a_rule_is_refused_before_any_saga_starts(
    #[case] body: Value,
    #[case] status: u16,
    #[case] message_part: &str,
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (answer_status, answer) = app.post("/api/orders", &body).await;
    assert_eq!(answer_status, status, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "`{message}` should mention `{message_part}`"
    );
    let (_, sagas) = app.get("/api/sagas").await;
    assert_eq!(sagas["sagas"], json!([]), "no saga may start");
}

#[rstest]
#[tokio::test]
async fn malformed_json_is_a_400(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let (status, answer) = app.post_raw("/api/orders", "{\"customer_id\": ").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "malformed_json");
}

#[rstest]
#[case("/api/sagas/00000000-0000-4000-8000-000000000000", 404)]
#[case("/api/sagas/not-a-uuid", 400)]
#[case("/api/orders/00000000-0000-4000-8000-000000000000", 404)]
#[case("/api/orders/nope", 400)]
#[case("/users/nobody_here", 404)]
#[case("/payments/00000000-0000-4000-8000-000000000000", 404)]
#[case("/escrow/00000000-0000-4000-8000-000000000000", 404)]
#[case("/no/such/endpoint", 404)]
#[tokio::test]
async fn unknown_ids_are_404_and_malformed_ids_400(
    #[case] path: &str,
    #[case] status: u16,
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    let (answer_status, answer) = app.get(path).await;
    assert_eq!(answer_status, status, "{answer}");
    assert!(
        answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
}

#[rstest]
#[tokio::test]
async fn a_user_is_created_once_and_can_be_updated(#[values(Backend::Embedded, Backend::Kafka)] backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_update", None).await;
    let (status, answer) = app
        .post(
            "/users",
            &json!({"user_id": "cust_update", "name": "Again", "email": "a@b.co"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");

    let response = app
        .client
        .patch(format!("{}/users/cust_update", app.address))
        .bearer_auth(app.operator_token())
        .json(&json!({"payment_method": "pm_card_visa", "payout_account": "DBS-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, user) = app.get("/users/cust_update").await;
    assert_eq!(user["payment_method"], "pm_card_visa");
    assert_eq!(user["payout_account"], "DBS-123");

    let (status, answer) = app
        .post("/users", &json!({"user_id": "cust_bad", "name": "X", "email": "nope"}))
        .await;
    assert_eq!(status, 422, "{answer}");
}
