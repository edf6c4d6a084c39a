//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! It is written by hand: every route the API serves (health, orders, runners,
//! sagas, users, payments, escrow, timers) with its parameters, request body,
//! answers and error statuses. Nothing derives it from the handlers, so a route
//! added to a router must be added here too; the test at the bottom lists every
//! route.
//!
//! Each `json!` call stays small (one schema, one operation) and the pieces are
//! put together with [`Map`] inserts, so no macro hits the recursion limit.

use serde_json::{json, Map, Value};

/// An example saga id, order id and so on, used across the document.
const SAGA_ID: &str = "7d3c2b1a-5e4f-4a3b-9c8d-1e2f3a4b5c6d";
const ORDER_ID: &str = "0f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";
const PAYMENT_ID: &str = "3b9f0c7e-2d1a-5e8f-9a6b-4c3d2e1f0a9b";
const ESCROW_ID: &str = "8a7b6c5d-4e3f-5a2b-8c1d-0e9f8a7b6c5d";
/// An accept-order saga's id (derived from the order id and the acceptance round).
const ACCEPT_SAGA_ID: &str = "2e1d0c9b-8a7f-5e6d-9c4b-3a2f1e0d9c8b";
const TIMER_ID: &str = "5c4b3a29-1807-4f6e-8d5c-4b3a29180716";

/// The OpenAPI document of the HTTP API.
pub fn document() -> Value {
    let mut document = Map::new();
    document.insert("openapi".into(), json!("3.1.0"));
    document.insert("info".into(), info());
    document.insert("tags".into(), tags());
    document.insert("paths".into(), Value::Object(paths()));
    document.insert("components".into(), json!({ "schemas": Value::Object(schemas()) }));
    Value::Object(document)
}

fn info() -> Value {
    json!({
        "title": "campusg",
        "version": env!("CARGO_PKG_VERSION"),
        "summary": "Campus food delivery: orders, runners, sagas, users, payments, escrow and timers.",
        "description": concat!(
            "Event-sourced services that talk over a message log. Placing an order starts a ",
            "create-order saga that creates the order, looks up the customer's payment method, ",
            "authorizes the payment, holds the total in escrow, marks the order `CREATED` and ",
            "starts a 30-minute acceptance timer; a failed step is undone by compensations. ",
            "Until a runner accepts, the order can still be cancelled (by the customer, or by the ",
            "timer expiring with no runner), even once the create-order saga has completed: the ",
            "saga then refunds the escrow, voids the payment and ends `CANCELLED`. A runner ",
            "accepting an order starts an accept-order saga, which stops the timer and tells the ",
            "customer. Writes are answered once they are ",
            "recorded; follow a saga with `GET /api/sagas/{saga_id}`.\n\n",
            "Amounts in request and response bodies are decimal numbers in major units with at ",
            "most two decimals (`12.99`); fields named `*_cents` are integers in minor units. ",
            "The default currency is SGD.\n\n",
            "Every error has the body `{\"error\": {\"code\", \"message\"}}`. 400: the request is ",
            "malformed (not JSON, a bad id in the path, a bad query value). 404: an unknown id. ",
            "409: the request conflicts with the current state. 422: valid JSON that breaks a rule ",
            "(a missing field, a negative quantity). 503: try again. 500: the server log says why."
        )
    })
}

fn tags() -> Value {
    json!([
        { "name": "orders", "description": "Place orders, read them and cancel them." },
        { "name": "runners", "description": "Runners find the orders waiting for them, accept one, or give it back." },
        { "name": "sagas", "description": "The create-order and accept-order sagas: their state and history." },
        { "name": "users", "description": "Customers and runners." },
        { "name": "payments", "description": "Card authorizations through the sandbox processor." },
        { "name": "escrow", "description": "Order totals held until delivery, then released or refunded." },
        { "name": "timers", "description": "Durable timers: the scheduler API of the seeds." },
        { "name": "system", "description": "Health and this document." }
    ])
}

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A reference with its own description (OpenAPI 3.1 allows it beside `$ref`).
fn described_ref(name: &str, description: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}"), "description": description })
}

fn answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn answer_with_example(description: &str, schema: Value, example: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema, "example": example } }
    })
}

fn error(description: &str) -> Value {
    answer(description, schema_ref("Error"))
}

fn request_body(description: &str, schema: Value, example: Value) -> Value {
    json!({
        "description": description,
        "required": true,
        "content": { "application/json": { "schema": schema, "example": example } }
    })
}

/// A request body that may be left out (an empty body counts as absent).
fn optional_request_body(description: &str, schema: Value, example: Value) -> Value {
    let mut body = request_body(description, schema, example);
    body["required"] = json!(false);
    body
}

/// Responses keyed by status code.
fn responses(entries: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (status, response) in entries {
        map.insert(status.to_string(), response);
    }
    Value::Object(map)
}

/// Responses keyed by status code, plus the 500 and 503 every route that reads or
/// writes an event store may give.
fn store_responses(mut entries: Vec<(&str, Value)>) -> Value {
    entries.push((
        "500",
        error("The request failed inside the server; the server log says why (code `internal`)."),
    ));
    entries.push((
        "503",
        error("The event store (or the payment processor) is briefly unavailable; retry the request (code `retry`)."),
    ));
    responses(entries)
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

/// `page` and `page_size`, with the route's default and largest page size.
fn paging(default_size: i64, max_size: i64) -> Vec<Value> {
    vec![
        query_param(
            "page",
            "The page to return, from 1 (default 1; values below 1 count as 1).",
            json!({ "type": "integer", "minimum": 1, "default": 1 }),
        ),
        query_param(
            "page_size",
            &format!("Items per page (default {default_size}; values outside 1 to {max_size} are clamped)."),
            json!({ "type": "integer", "minimum": 1, "maximum": max_size, "default": default_size }),
        ),
    ]
}

/// An object schema from its description, required fields and properties.
fn object(description: &str, required: &[&str], properties: Vec<(&str, Value)>) -> Value {
    let mut props = Map::new();
    for (name, schema) in properties {
        props.insert(name.to_string(), schema);
    }
    json!({ "type": "object", "description": description, "required": required, "properties": Value::Object(props) })
}

fn with_example(mut schema: Value, example: Value) -> Value {
    schema["examples"] = json!([example]);
    schema
}

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn nullable_string(description: &str) -> Value {
    json!({ "type": ["string", "null"], "description": description })
}

fn uuid(description: &str) -> Value {
    json!({ "type": "string", "format": "uuid", "description": description })
}

fn nullable_uuid(description: &str) -> Value {
    json!({ "type": ["string", "null"], "format": "uuid", "description": description })
}

fn timestamp(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": description })
}

fn nullable_timestamp(description: &str) -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "description": description })
}

/// Who asked for a cancellation, or null.
fn cancelled_by(description: &str) -> Value {
    json!({
        "type": ["string", "null"],
        "enum": ["customer", "timeout", "system", null],
        "description": description
    })
}

fn cents(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

fn integer(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

fn array_of(name: &str, description: &str) -> Value {
    json!({ "type": "array", "description": description, "items": schema_ref(name) })
}

/// A page of a list: the items under `key`, and the page asked for.
fn page_of(description: &str, key: &str, item: &str) -> Value {
    object(
        description,
        &[key, "page", "page_size"],
        vec![
            (key, array_of(item, "The items on this page.")),
            ("page", integer("The page returned, from 1.")),
            ("page_size", integer("The page size used.")),
        ],
    )
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

fn paths() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert("/health".into(), health_path());
    paths.insert("/openapi.json".into(), openapi_path());
    paths.insert("/api/orders".into(), orders_path());
    paths.insert("/api/orders/available".into(), available_orders_path());
    paths.insert("/api/orders/{order_id}".into(), order_path());
    paths.insert("/api/orders/{order_id}/accept".into(), accept_order_path());
    paths.insert(
        "/api/orders/{order_id}/cancel-acceptance".into(),
        cancel_acceptance_path(),
    );
    paths.insert("/api/orders/{order_id}/cancel".into(), cancel_order_path());
    paths.insert("/api/sagas".into(), sagas_path());
    paths.insert("/api/sagas/{saga_id}".into(), saga_path());
    paths.insert("/api/sagas/{saga_id}/history".into(), saga_history_path());
    paths.insert("/api/sagas/{saga_id}/cancel".into(), cancel_saga_path());
    paths.insert("/users".into(), users_path());
    paths.insert("/users/{user_id}".into(), user_path());
    paths.insert("/payments".into(), payments_path());
    paths.insert("/payments/authorize".into(), payment_authorize_path());
    paths.insert("/payments/release".into(), payment_release_path());
    paths.insert("/payments/capture".into(), payment_capture_path());
    paths.insert("/payments/{payment_id}".into(), payment_path());
    paths.insert("/escrow".into(), escrows_path());
    paths.insert("/escrow/hold".into(), escrow_hold_path());
    paths.insert("/escrow/release".into(), escrow_release_path());
    paths.insert("/escrow/cancel".into(), escrow_cancel_path());
    paths.insert("/escrow/{escrow_id}".into(), escrow_path());
    paths.insert("/schedule".into(), schedule_path());
    paths.insert("/events".into(), timers_path());
    paths.insert("/events/{timer_id}".into(), timer_path());
    paths.insert("/events/{timer_id}/cancel".into(), cancel_timer_path());
    paths
}

fn health_path() -> Value {
    let ok = answer_with_example("The API is up.", schema_ref("Health"), json!({ "status": "ok" }));
    json!({
        "get": {
            "tags": ["system"],
            "operationId": "health",
            "summary": "Liveness check",
            "description": "Answers as soon as the HTTP API runs; it does not check the log or the stores.",
            "responses": responses(vec![("200", ok)])
        }
    })
}

fn openapi_path() -> Value {
    let ok = answer("This OpenAPI 3.1 document.", json!({ "type": "object" }));
    json!({
        "get": {
            "tags": ["system"],
            "operationId": "openApiDocument",
            "summary": "This OpenAPI document",
            "responses": responses(vec![("200", ok)])
        }
    })
}

fn place_order_example() -> Value {
    json!({
        "customer_id": "cust_123",
        "order_details": {
            "foodItems": [{ "name": "Burger", "price": 12.99, "quantity": 1 }],
            "deliveryLocation": "North Campus"
        }
    })
}

fn place_order() -> Value {
    let accepted = answer_with_example(
        "The saga started. The order is created asynchronously; follow the saga with `GET /api/sagas/{saga_id}` and read the order with `GET /api/orders/{order_id}`.",
        schema_ref("PlaceOrderAccepted"),
        json!({ "success": true, "saga_id": SAGA_ID, "order_id": ORDER_ID, "status": "STARTED" }),
    );
    let responses = store_responses(vec![
        ("202", accepted),
        ("400", error("The body is not JSON, or is sent without `Content-Type: application/json`.")),
        (
            "422",
            error("The JSON breaks a rule: a missing field, an invalid customer id, no food items, an item without a name, a quantity below 1, a negative price or one with more than two decimals, a delivery fee above the limit (20.00 by default), an empty delivery location, or a total of zero."),
        ),
    ]);
    json!({
        "tags": ["orders"],
        "operationId": "placeOrder",
        "summary": "Place an order",
        "description": concat!(
            "Checks the order against the rules, then starts a create-order saga: create the order ",
            "(`PENDING`), get the customer's payment method from the user service, authorize the ",
            "total with the payment processor, hold it in escrow, mark the order `CREATED` ",
            "(available to runners), and start the 30-minute acceptance timer; the saga is ",
            "`COMPLETED` once the timer has started. The customer must be a registered user with a ",
            "`payment_method`; if any step fails the saga undoes the earlier ones and the order ends ",
            "`CANCELLED`. Until a runner accepts, the order can still be cancelled, by the customer ",
            "(`POST /api/orders/{order_id}/cancel`) or by the timer expiring with no runner: the ",
            "saga then refunds the escrow, voids the payment and ends `CANCELLED`."
        ),
        "requestBody": request_body("The customer and the order as they wrote it.", schema_ref("PlaceOrderRequest"), place_order_example()),
        "responses": responses
    })
}

fn list_orders() -> Value {
    let mut parameters = vec![
        query_param(
            "customer_id",
            "Only orders placed by this customer.",
            schema_ref("UserId"),
        ),
        query_param("runner_id", "Only orders taken by this runner.", schema_ref("UserId")),
        query_param(
            "status",
            "Only orders in this status (case-insensitive). `CREATED` lists the orders available to runners; `GET /api/orders/available` lists them longest-waiting first.",
            schema_ref("OrderStatus"),
        ),
    ];
    parameters.extend(paging(20, 200));
    let responses = store_responses(vec![
        (
            "200",
            answer("A page of orders, oldest first.", schema_ref("OrderList")),
        ),
        (
            "400",
            error("`status` is not an order status, or `page`/`page_size` is not an integer."),
        ),
    ]);
    json!({
        "tags": ["orders"],
        "operationId": "listOrders",
        "summary": "List orders",
        "description": "Orders by customer, runner or status; the filters combine. Oldest first.",
        "parameters": parameters,
        "responses": responses
    })
}

fn orders_path() -> Value {
    json!({ "post": place_order(), "get": list_orders() })
}

fn order_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("The order.", schema_ref("Order"))),
        ("400", error("`order_id` is not a UUID.")),
        (
            "404",
            error("No order has this id (yet: the saga creates it shortly after `POST /api/orders` answers)."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["orders"],
            "operationId": "getOrder",
            "summary": "Get an order",
            "parameters": [path_param("order_id", "The order's id.", json!({ "type": "string", "format": "uuid" }))],
            "responses": responses
        }
    })
}

fn order_id_param() -> Value {
    path_param(
        "order_id",
        "The order's id.",
        json!({ "type": "string", "format": "uuid" }),
    )
}

fn available_orders_path() -> Value {
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "A page of orders waiting for a runner, the longest-waiting first.",
                schema_ref("OrderList"),
            ),
        ),
        ("400", error("`page` or `page_size` is not an integer.")),
    ]);
    json!({
        "get": {
            "tags": ["runners"],
            "operationId": "listAvailableOrders",
            "summary": "List the orders waiting for a runner",
            "description": concat!(
                "The orders a runner can accept: `CREATED`, with no runner. The one that has waited ",
                "longest since it became `CREATED` comes first, so no order is left behind; an order ",
                "a runner gave back is listed again, from when it was given back."
            ),
            "parameters": paging(20, 200),
            "responses": responses
        }
    })
}

fn runner_request_example() -> Value {
    json!({ "runner_id": "runner_456" })
}

/// The example order once `runner_456` has accepted it.
fn accepted_order_example() -> Value {
    let mut order = order_example();
    order["runner_id"] = json!("runner_456");
    order["status"] = json!("ACCEPTED");
    order["status_times"]["ACCEPTED"] = json!("2026-11-21T12:05:00Z");
    order
}

fn accept_order_path() -> Value {
    let ok = answer_with_example(
        "The order is `ACCEPTED`, bound to the runner; `saga_id` is the accept-order saga this acceptance started. The same runner accepting again gets this answer again.",
        schema_ref("OrderDecision"),
        json!({ "success": true, "saga_id": ACCEPT_SAGA_ID, "order": accepted_order_example() }),
    );
    let responses = store_responses(vec![
        ("200", ok),
        (
            "400",
            error("`order_id` is not a UUID, or the body is not JSON (or is sent without `Content-Type: application/json`)."),
        ),
        ("404", error("No order has this id.")),
        (
            "409",
            error("Another runner has already accepted the order, or the order is not `CREATED` (still `PENDING`, already `CANCELLED`, ...); the message says why."),
        ),
        (
            "422",
            error("`runner_id` is missing or not a valid user id, or the runner is the order's customer."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["runners"],
            "operationId": "acceptOrder",
            "summary": "Accept an order",
            "description": concat!(
                "A runner takes a `CREATED` order that has no runner. The order decides at once, under ",
                "optimistic concurrency, so of runners racing for the same order exactly one wins and ",
                "the others get 409. The acceptance starts an accept-order saga that stops the order's ",
                "acceptance timer and tells the customer; follow it with `GET /api/sagas/{saga_id}`. ",
                "The same runner accepting again gets the same answer and starts nothing new."
            ),
            "parameters": [order_id_param()],
            "requestBody": request_body("The runner accepting the order.", schema_ref("RunnerRequest"), runner_request_example()),
            "responses": responses
        }
    })
}

fn cancel_acceptance_path() -> Value {
    let ok = answer_with_example(
        "The order is `CREATED` again, with no runner; `saga_id` is the saga of the acceptance given back.",
        schema_ref("OrderDecision"),
        json!({ "success": true, "saga_id": ACCEPT_SAGA_ID, "order": order_example() }),
    );
    let responses = store_responses(vec![
        ("200", ok),
        (
            "400",
            error("`order_id` is not a UUID, or the body is not JSON (or is sent without `Content-Type: application/json`)."),
        ),
        ("404", error("No order has this id.")),
        (
            "409",
            error("The order is assigned to another runner, or it is not in a state that can be given back (not accepted, `PURCHASED` or later, or `CANCELLED`); the message says why."),
        ),
        ("422", error("`runner_id` is missing or not a valid user id.")),
    ]);
    json!({
        "post": {
            "tags": ["runners"],
            "operationId": "cancelAcceptance",
            "summary": "Give an accepted order back",
            "description": concat!(
                "The assigned runner gives the order back before buying the food (while it is ",
                "`ACCEPTED` or `ON_SITE`). The order decides at once: it is `CREATED` again with no ",
                "runner, and listed in `GET /api/orders/available` again. The acceptance's saga then ",
                "starts a fresh acceptance timer and ends `CANCELLED`; the next runner to accept starts ",
                "a new accept-order saga."
            ),
            "parameters": [order_id_param()],
            "requestBody": request_body("The runner giving the order back.", schema_ref("RunnerRequest"), runner_request_example()),
            "responses": responses
        }
    })
}

fn cancel_order_request_example() -> Value {
    json!({ "customer_id": "cust_123", "reason": "changed my mind" })
}

/// The answer to a customer's cancellation of the example order.
fn cancellation_accepted_example() -> Value {
    let mut order = order_example();
    order["status"] = json!("CANCELLED");
    order["cancellation_reason"] = json!("changed my mind");
    order["cancelled_by"] = json!("customer");
    order["status_times"]["CANCELLED"] = json!("2026-11-21T12:03:00Z");
    json!({ "success": true, "saga_id": SAGA_ID, "status": "CANCELLING", "order": order })
}

/// What the two routes a customer cancels an order with answer.
fn customer_cancel_responses(bad_id: &str, not_found: &str, extra_conflict: &str) -> Value {
    let accepted = answer_with_example(
        "The cancellation stands: the order is `CANCELLED`, and the saga that placed it is undoing the payment and the escrow hold (`CANCELLING`); follow it with `GET /api/sagas/{saga_id}`.",
        schema_ref("CancellationAccepted"),
        cancellation_accepted_example(),
    );
    store_responses(vec![
        ("202", accepted),
        ("400", error(&format!("{bad_id}, or the body is not JSON."))),
        ("404", error(not_found)),
        (
            "409",
            error(&format!(
                "A runner has already accepted the order (only an operator can cancel it now), the order is already cancelled, or `customer_id` is not the order's customer{extra_conflict}; the message says why."
            )),
        ),
        (
            "422",
            error("The body is JSON of the wrong shape (e.g. `customer_id` is not a valid user id)."),
        ),
    ])
}

fn customer_cancel_description() -> &'static str {
    concat!(
        "The customer cancels an order no runner has accepted yet (`PENDING` or `CREATED`). The ",
        "order decides at once, under optimistic concurrency, so a cancellation racing a runner's ",
        "acceptance gets a clear answer: one of them wins. The saga that placed the order then ",
        "voids the payment, refunds the escrow, stops the acceptance timer and ends `CANCELLED`. ",
        "The body may be empty; a `customer_id` in it must be the order's customer."
    )
}

fn cancel_order_path() -> Value {
    let responses = customer_cancel_responses("`order_id` is not a UUID", "No order has this id.", "");
    json!({
        "post": {
            "tags": ["orders"],
            "operationId": "cancelOrder",
            "summary": "Cancel an order (customer)",
            "description": format!(
                "{} `saga_id` in the answer is the placing saga; null for an order placed by hand, without a saga.",
                customer_cancel_description()
            ),
            "parameters": [order_id_param()],
            "requestBody": optional_request_body(
                "Who cancels and why; may be empty.",
                schema_ref("CancelOrderRequest"),
                cancel_order_request_example()
            ),
            "responses": responses
        }
    })
}

fn sagas_path() -> Value {
    let mut parameters = vec![
        query_param(
            "saga_type",
            "Only sagas of this type (both types when left out).",
            schema_ref("SagaType"),
        ),
        query_param(
            "status",
            "Only sagas in this status (case-insensitive).",
            schema_ref("SagaStatus"),
        ),
        query_param(
            "order_id",
            "Only the sagas of this order: its create-order saga and one accept-order saga per acceptance.",
            json!({ "type": "string", "format": "uuid" }),
        ),
    ];
    parameters.extend(paging(50, 500));
    let responses = store_responses(vec![
        (
            "200",
            answer("A page of sagas, the most recently started first.", schema_ref("SagaList")),
        ),
        (
            "400",
            error("`saga_type` is not a saga type, `status` is not a saga status, or `page`/`page_size` is not an integer."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["sagas"],
            "operationId": "listSagas",
            "summary": "List sagas",
            "description": "Create-order and accept-order sagas by type, status and order; the filters combine. The most recently started first.",
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn saga_id_param() -> Value {
    path_param(
        "saga_id",
        "The saga's id, as `POST /api/orders` (a create-order saga) or `POST /api/orders/{order_id}/accept` (an accept-order saga) returned it.",
        json!({ "type": "string", "format": "uuid" }),
    )
}

fn saga_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("The saga, with its history.", schema_ref("Saga"))),
        ("400", error("`saga_id` is not a UUID.")),
        ("404", error("No saga has this id.")),
    ]);
    json!({
        "get": {
            "tags": ["sagas"],
            "operationId": "getSaga",
            "summary": "Get a saga",
            "description": "The saga's type, status, current step, error, amounts, the payment, escrow and timer it made, the runner, why and by whom it was cancelled, the compensations still to run, and every step it recorded.",
            "parameters": [saga_id_param()],
            "responses": responses
        }
    })
}

fn saga_history_path() -> Value {
    let responses = store_responses(vec![
        (
            "200",
            answer("The saga's recorded steps, in order.", schema_ref("SagaHistory")),
        ),
        ("400", error("`saga_id` is not a UUID.")),
        ("404", error("No saga has this id.")),
    ]);
    json!({
        "get": {
            "tags": ["sagas"],
            "operationId": "getSagaHistory",
            "summary": "Get a saga's history",
            "parameters": [saga_id_param()],
            "responses": responses
        }
    })
}

fn cancel_saga_path() -> Value {
    let responses = customer_cancel_responses(
        "`saga_id` is not a UUID",
        "No create-order saga has this id. (An accept-order saga is not cancelled: the runner gives the order back with `POST /api/orders/{order_id}/cancel-acceptance`.)",
        ", or the saga has placed no order yet",
    );
    json!({
        "post": {
            "tags": ["sagas"],
            "operationId": "cancelSaga",
            "summary": "Cancel the order a create-order saga placed",
            "description": format!(
                "The same as `POST /api/orders/{{order_id}}/cancel`, addressed by the create-order saga's id. {}",
                customer_cancel_description()
            ),
            "parameters": [saga_id_param()],
            "requestBody": optional_request_body(
                "Who cancels and why; may be empty.",
                schema_ref("CancelOrderRequest"),
                cancel_order_request_example()
            ),
            "responses": responses
        }
    })
}

fn sandbox_methods() -> &'static str {
    concat!(
        "The built-in sandbox processor decides by payment method: `pm_card_visa`, ",
        "`pm_card_mastercard` and `pm_card_amex` are approved; `pm_card_chargeDeclined` is ",
        "declined (card declined); `pm_card_chargeDeclinedInsufficientFunds` is declined ",
        "(insufficient funds); anything else is declined as an unknown payment method."
    )
}

fn create_user() -> Value {
    let example = json!({
        "user_id": "cust_123",
        "name": "Alice Tan",
        "email": "alice@example.edu",
        "phone": "+65 8123 4567",
        "payment_method": "pm_card_visa"
    });
    let responses = store_responses(vec![
        ("201", answer("The user was registered.", schema_ref("User"))),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        ("409", error("A user with this `user_id` already exists.")),
        (
            "422",
            error("A missing field, an invalid `user_id`, an empty name, or an email that is not an address."),
        ),
    ]);
    json!({
        "tags": ["users"],
        "operationId": "createUser",
        "summary": "Register a user",
        "description": format!(
            "Registers a customer or runner under an id the caller chooses. A customer needs a `payment_method` to place orders. {}",
            sandbox_methods()
        ),
        "requestBody": request_body("The new user.", schema_ref("CreateUserRequest"), example),
        "responses": responses
    })
}

fn list_users() -> Value {
    let responses = store_responses(vec![
        ("200", answer("A page of users.", schema_ref("UserList"))),
        ("400", error("`page` or `page_size` is not an integer.")),
    ]);
    json!({
        "tags": ["users"],
        "operationId": "listUsers",
        "summary": "List users",
        "parameters": paging(20, 200),
        "responses": responses
    })
}

fn users_path() -> Value {
    json!({ "get": list_users(), "post": create_user() })
}

fn user_id_param() -> Value {
    path_param("user_id", "The user's id.", schema_ref("UserId"))
}

fn update_user(operation_id: &str, summary: &str) -> Value {
    let responses = store_responses(vec![
        ("200", answer("The user after the update.", schema_ref("User"))),
        (
            "400",
            error("`user_id` is not a valid user id, or the body is not JSON."),
        ),
        ("404", error("No user has this id.")),
        (
            "422",
            error("The update changes nothing, the name is empty, or the email is not an address."),
        ),
    ]);
    json!({
        "tags": ["users"],
        "operationId": operation_id,
        "summary": summary,
        "description": format!(
            "Changes the fields the body names; fields left out stay as they are. PUT and PATCH behave the same. {}",
            sandbox_methods()
        ),
        "parameters": [user_id_param()],
        "requestBody": request_body(
            "The fields to change (at least one).",
            schema_ref("UpdateUserRequest"),
            json!({ "payment_method": "pm_card_mastercard" })
        ),
        "responses": responses
    })
}

fn user_path() -> Value {
    let get_responses = store_responses(vec![
        ("200", answer("The user.", schema_ref("User"))),
        ("400", error("`user_id` is not a valid user id.")),
        ("404", error("No user has this id.")),
    ]);
    let get = json!({
        "tags": ["users"],
        "operationId": "getUser",
        "summary": "Get a user",
        "parameters": [user_id_param()],
        "responses": get_responses
    });
    json!({
        "get": get,
        "put": update_user("updateUser", "Update a user"),
        "patch": update_user("patchUser", "Update some of a user's details")
    })
}

/// `order_id`, `customer_id`, `status` and paging: the filters of the payment and
/// escrow lists.
fn record_filters(status_schema: &str) -> Vec<Value> {
    let mut parameters = vec![
        query_param(
            "order_id",
            "Only the record of this order.",
            json!({ "type": "string", "format": "uuid" }),
        ),
        query_param("customer_id", "Only this customer's records.", schema_ref("UserId")),
        query_param(
            "status",
            "Only records in this status (case-insensitive; an unknown status matches nothing).",
            schema_ref(status_schema),
        ),
    ];
    parameters.extend(paging(20, 200));
    parameters
}

fn payments_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("A page of payments.", schema_ref("PaymentList"))),
        ("400", error("`page` or `page_size` is not an integer.")),
    ]);
    json!({
        "get": {
            "tags": ["payments"],
            "operationId": "listPayments",
            "summary": "List payments",
            "parameters": record_filters("PaymentStatus"),
            "responses": responses
        }
    })
}

fn payment_authorize_path() -> Value {
    let example = json!({
        "order_id": ORDER_ID,
        "customer_id": "cust_123",
        "amount": 12.99,
        "currency": "SGD",
        "payment_method": "pm_card_visa"
    });
    let responses = store_responses(vec![
        ("200", answer("The payment is `AUTHORIZED`. Repeating the request answers with the payment as it stands; nothing is charged twice.", schema_ref("Payment"))),
        ("400", error("The body is not JSON, or is sent without `Content-Type: application/json`.")),
        ("402", answer("The processor declined the card: the payment is `FAILED` and `failure_reason` says why.", schema_ref("Payment"))),
        ("409", error("The processor refused the operation for good.")),
        ("422", error("A missing field, an invalid id, or an amount that is not more than zero or has more than two decimals.")),
    ]);
    json!({
        "post": {
            "tags": ["payments"],
            "operationId": "authorizePayment",
            "summary": "Authorize an order's payment",
            "description": format!(
                "Authorizes (holds, without capturing) the amount on the card. An order has one payment, whose id is derived from the order id. {}",
                sandbox_methods()
            ),
            "requestBody": request_body("What to authorize.", schema_ref("AuthorizePaymentRequest"), example),
            "responses": responses
        }
    })
}

fn payment_release_path() -> Value {
    let example = json!({ "order_id": ORDER_ID, "reason": "customer cancelled" });
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "The payment is `VOIDED`. Repeating the request answers the same.",
                schema_ref("Payment"),
            ),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        (
            "409",
            error("The order has no payment, or its payment is not `AUTHORIZED` (already captured or failed)."),
        ),
        ("422", error("A missing or invalid `order_id`.")),
    ]);
    json!({
        "post": {
            "tags": ["payments"],
            "operationId": "releasePayment",
            "summary": "Release (void) an order's authorization",
            "description": "Voids the authorization, so no money moves.",
            "requestBody": request_body("The order whose authorization to void.", schema_ref("ReleasePaymentRequest"), example),
            "responses": responses
        }
    })
}

fn payment_capture_path() -> Value {
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "The payment is `CAPTURED`. Repeating the request answers the same and captures nothing more.",
                schema_ref("Payment"),
            ),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        (
            "409",
            error("The order has no payment, or its payment is not `AUTHORIZED` (already voided or failed)."),
        ),
        ("422", error("A missing or invalid `order_id`.")),
    ]);
    json!({
        "post": {
            "tags": ["payments"],
            "operationId": "capturePayment",
            "summary": "Capture an order's payment",
            "description": "Captures the whole authorized amount.",
            "requestBody": request_body("The order whose payment to capture.", schema_ref("CapturePaymentRequest"), json!({ "order_id": ORDER_ID })),
            "responses": responses
        }
    })
}

fn payment_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("The payment.", schema_ref("Payment"))),
        ("400", error("`payment_id` is not a UUID.")),
        ("404", error("No payment has this id.")),
    ]);
    json!({
        "get": {
            "tags": ["payments"],
            "operationId": "getPayment",
            "summary": "Get a payment",
            "description": "To find an order's payment, use `GET /payments?order_id=...`.",
            "parameters": [path_param("payment_id", "The payment's id.", json!({ "type": "string", "format": "uuid" }))],
            "responses": responses
        }
    })
}

fn escrows_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("A page of escrows.", schema_ref("EscrowList"))),
        ("400", error("`page` or `page_size` is not an integer.")),
    ]);
    json!({
        "get": {
            "tags": ["escrow"],
            "operationId": "listEscrows",
            "summary": "List escrows",
            "parameters": record_filters("EscrowStatus"),
            "responses": responses
        }
    })
}

fn escrow_hold_path() -> Value {
    let example = json!({
        "order_id": ORDER_ID,
        "customer_id": "cust_123",
        "food_fee": 12.99,
        "delivery_fee": 2.0,
        "currency": "SGD"
    });
    let responses = store_responses(vec![
        ("200", answer("The funds are `HELD`. Repeating the request answers the same; nothing is held twice.", schema_ref("Escrow"))),
        ("400", error("The body is not JSON, or is sent without `Content-Type: application/json`.")),
        (
            "422",
            error("A missing field, an invalid id, an amount with more than two decimals, a negative fee, a total that is not more than zero or is above the per-order limit (500.00 by default), or funds for this order already released or refunded."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["escrow"],
            "operationId": "holdFunds",
            "summary": "Hold an order's funds",
            "description": "Holds the food fee plus the delivery fee for the order. An order has one escrow, whose id is derived from the order id.",
            "requestBody": request_body("What to hold.", schema_ref("HoldFundsRequest"), example),
            "responses": responses
        }
    })
}

fn escrow_release_path() -> Value {
    let example = json!({ "order_id": ORDER_ID, "runner_id": "runner_456" });
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "The funds are `RELEASED` to the runner. Repeating the request answers the same.",
                schema_ref("Escrow"),
            ),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        (
            "409",
            error("No funds are held for this order, or they are already refunded."),
        ),
        ("422", error("A missing field or an invalid id.")),
    ]);
    json!({
        "post": {
            "tags": ["escrow"],
            "operationId": "releaseFunds",
            "summary": "Release an order's funds to the runner",
            "requestBody": request_body("The order and the runner who delivered it.", schema_ref("ReleaseFundsRequest"), example),
            "responses": responses
        }
    })
}

fn escrow_cancel_path() -> Value {
    let example = json!({ "order_id": ORDER_ID, "reason": "order cancelled" });
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "The funds are `REFUNDED` to the customer. Repeating the request answers the same.",
                schema_ref("Escrow"),
            ),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        (
            "409",
            error("No funds are held for this order, or they are already released."),
        ),
        ("422", error("A missing or invalid `order_id`.")),
    ]);
    json!({
        "post": {
            "tags": ["escrow"],
            "operationId": "cancelEscrow",
            "summary": "Cancel an escrow (refund the customer)",
            "requestBody": request_body("The order whose held funds to refund.", schema_ref("CancelEscrowRequest"), example),
            "responses": responses
        }
    })
}

fn escrow_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("The escrow.", schema_ref("Escrow"))),
        ("400", error("`escrow_id` is not a UUID.")),
        ("404", error("No escrow has this id.")),
    ]);
    json!({
        "get": {
            "tags": ["escrow"],
            "operationId": "getEscrow",
            "summary": "Get an escrow",
            "description": "To find an order's escrow, use `GET /escrow?order_id=...`.",
            "parameters": [path_param("escrow_id", "The escrow's id.", json!({ "type": "string", "format": "uuid" }))],
            "responses": responses
        }
    })
}

fn timer_id_param() -> Value {
    path_param(
        "timer_id",
        "The timer's id, as `POST /schedule` returned it.",
        json!({ "type": "string", "format": "uuid" }),
    )
}

fn schedule_example() -> Value {
    json!({
        "event_type": "delivery_reminder",
        "entity_id": ORDER_ID,
        "order_id": ORDER_ID,
        "delay_seconds": 1800,
        "payload": { "note": "remind the runner" },
        "correlation_id": SAGA_ID
    })
}

/// The timer `schedule_example()` schedules.
fn scheduled_timer_example() -> Value {
    let mut timer = timer_example();
    timer["event_type"] = json!("delivery_reminder");
    timer["payload"] = json!({ "note": "remind the runner" });
    timer
}

fn schedule_path() -> Value {
    let responses = store_responses(vec![
        ("201", answer_with_example("The timer is `SCHEDULED`.", schema_ref("Timer"), scheduled_timer_example())),
        (
            "200",
            answer("A timer with this `timer_id` was already scheduled: it is answered as it stands (this request's fields are ignored) and nothing is scheduled twice.", schema_ref("Timer")),
        ),
        ("400", error("The body is not JSON, or is sent without `Content-Type: application/json`.")),
        ("409", error("The timer cannot be scheduled as asked; the message says why.")),
        (
            "422",
            error("Both or neither of `scheduled_time` and `delay_seconds` are given, `delay_seconds` is negative, `event_type` or `entity_id` is missing or empty, or a field has the wrong type (e.g. `scheduled_time` is not RFC 3339, `timer_id` is not a UUID)."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["timers"],
            "operationId": "scheduleTimer",
            "summary": "Schedule a timer",
            "description": concat!(
                "Schedules a durable timer (the seeds' `ScheduledEvent`), due at `scheduled_time` or ",
                "`delay_seconds` from now. It is stored as events, so it survives restarts: when due it ",
                "fires once and publishes `timer.expired` on the `timer_events` topic with its ",
                "`payload`, even if it fell due while the system was down (it then fires as soon as the ",
                "system is back). Name the timer with `timer_id` to make the request safe to repeat. ",
                "The acceptance timers the create-order saga starts are timers of this kind ",
                "(`event_type` `order_acceptance`)."
            ),
            "requestBody": request_body("What to fire, about what, when, with what.", schema_ref("ScheduleRequest"), schedule_example()),
            "responses": responses
        }
    })
}

fn timers_path() -> Value {
    let mut parameters = vec![
        query_param(
            "event_type",
            "Only timers of this type (`timer_type` is accepted as an alias).",
            json!({ "type": "string" }),
        ),
        query_param(
            "entity_id",
            "Only timers about this entity.",
            json!({ "type": "string" }),
        ),
        query_param(
            "order_id",
            "Only the timers of this order.",
            json!({ "type": "string", "format": "uuid" }),
        ),
        query_param(
            "status",
            "Only timers in this status (case-insensitive).",
            schema_ref("TimerStatus"),
        ),
    ];
    parameters.extend(paging(20, 200));
    let responses = store_responses(vec![
        (
            "200",
            answer("A page of timers, the soonest due first.", schema_ref("TimerList")),
        ),
        (
            "400",
            error("`status` is not a timer status, or `page`/`page_size` is not an integer."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["timers"],
            "operationId": "listTimers",
            "summary": "List timers",
            "description": "Timers by type, entity, order and status; the filters combine. The soonest due first.",
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn timer_path() -> Value {
    let responses = store_responses(vec![
        ("200", answer("The timer.", schema_ref("Timer"))),
        ("400", error("`timer_id` is not a UUID.")),
        ("404", error("No timer has this id.")),
    ]);
    json!({
        "get": {
            "tags": ["timers"],
            "operationId": "getTimer",
            "summary": "Get a timer",
            "parameters": [timer_id_param()],
            "responses": responses
        }
    })
}

fn cancel_timer_path() -> Value {
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "The timer is `CANCELLED` and will not fire. Cancelling a cancelled timer again answers with it unchanged.",
                schema_ref("Timer"),
            ),
        ),
        ("400", error("`timer_id` is not a UUID, or the body is not JSON.")),
        ("404", error("No timer has this id.")),
        ("409", error("The timer has already fired; it can no longer be cancelled.")),
        ("422", error("The body is JSON of the wrong shape (e.g. `reason` is not a string).")),
    ]);
    json!({
        "post": {
            "tags": ["timers"],
            "operationId": "cancelTimer",
            "summary": "Cancel a timer",
            "description": "Cancels a `SCHEDULED` timer, which publishes `timer.cancelled` on the `timer_events` topic. The body may be empty.",
            "parameters": [timer_id_param()],
            "requestBody": optional_request_body(
                "Why, for the record; may be empty.",
                schema_ref("CancelTimerRequest"),
                json!({ "reason": "no longer needed" })
            ),
            "responses": responses
        }
    })
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

fn schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    let entries: Vec<(&str, Value)> = vec![
        ("Error", error_schema()),
        ("Health", health_schema()),
        ("UserId", user_id_schema()),
        ("Amount", amount_schema()),
        ("AmountInput", amount_input_schema()),
        ("FoodItem", food_item_schema()),
        ("OrderDetails", order_details_schema()),
        ("PlaceOrderRequest", place_order_request_schema()),
        ("PlaceOrderAccepted", place_order_accepted_schema()),
        ("OrderStatus", order_status_schema()),
        ("OrderItem", order_item_schema()),
        ("Order", order_schema()),
        ("OrderList", page_of("A page of orders.", "orders", "Order")),
        ("RunnerRequest", runner_request_schema()),
        ("OrderDecision", order_decision_schema()),
        ("CancelOrderRequest", cancel_order_request_schema()),
        ("CancellationAccepted", cancellation_accepted_schema()),
        ("SagaType", saga_type_schema()),
        ("SagaStatus", saga_status_schema()),
        ("SagaStep", saga_step_schema()),
        ("Compensation", compensation_schema()),
        ("SagaHistoryEntry", saga_history_entry_schema()),
        ("Saga", saga_schema()),
        ("SagaHistory", saga_history_schema()),
        (
            "SagaList",
            page_of("A page of sagas (without their history).", "sagas", "Saga"),
        ),
        ("User", user_schema()),
        ("CreateUserRequest", create_user_request_schema()),
        ("UpdateUserRequest", update_user_request_schema()),
        ("UserList", page_of("A page of users.", "users", "User")),
        ("PaymentStatus", payment_status_schema()),
        ("Payment", payment_schema()),
        ("AuthorizePaymentRequest", authorize_payment_request_schema()),
        ("ReleasePaymentRequest", release_payment_request_schema()),
        ("CapturePaymentRequest", capture_payment_request_schema()),
        ("PaymentList", page_of("A page of payments.", "payments", "Payment")),
        ("EscrowStatus", escrow_status_schema()),
        ("Escrow", escrow_schema()),
        ("HoldFundsRequest", hold_funds_request_schema()),
        ("ReleaseFundsRequest", release_funds_request_schema()),
        ("CancelEscrowRequest", cancel_escrow_request_schema()),
        ("EscrowList", page_of("A page of escrows.", "escrows", "Escrow")),
        ("TimerStatus", timer_status_schema()),
        ("Timer", timer_schema()),
        ("ScheduleRequest", schedule_request_schema()),
        ("CancelTimerRequest", cancel_timer_request_schema()),
        ("TimerList", page_of("A page of timers.", "events", "Timer")),
    ];
    for (name, schema) in entries {
        schemas.insert(name.to_string(), schema);
    }
    schemas
}

fn error_schema() -> Value {
    let codes = json!({
        "type": "string",
        "enum": ["bad_request", "malformed_json", "not_found", "conflict", "rule_violation", "retry", "internal"],
        "description": "What went wrong: `bad_request`/`malformed_json` (400), `not_found` (404), `conflict` (409), `rule_violation` (422), `retry` (503), `internal` (500)."
    });
    let detail = object(
        "The error.",
        &["code", "message"],
        vec![
            ("code", codes),
            ("message", string("What went wrong, for a person to read.")),
        ],
    );
    with_example(
        object("The body of every error response.", &["error"], vec![("error", detail)]),
        json!({ "error": { "code": "not_found", "message": format!("order {ORDER_ID} does not exist") } }),
    )
}

fn health_schema() -> Value {
    object(
        "The API is up.",
        &["status"],
        vec![("status", json!({ "type": "string", "const": "ok" }))],
    )
}

fn user_id_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^[A-Za-z0-9_.-]{1,64}$",
        "description": "A user's id, chosen when the user registers: 1 to 64 letters, digits, `_`, `-` or `.`.",
        "examples": ["cust_123", "runner_456"]
    })
}

fn amount_schema() -> Value {
    json!({
        "type": "number",
        "description": "An amount in major units (dollars), with at most two decimals.",
        "examples": [12.99]
    })
}

fn amount_input_schema() -> Value {
    json!({
        "description": "An amount in major units (dollars), as a JSON number or a decimal string; at most two decimals (more are refused, never rounded).",
        "oneOf": [{ "type": "number" }, { "type": "string" }],
        "examples": [12.99, "12.99"]
    })
}

fn food_item_schema() -> Value {
    object(
        "One line of an order as the customer wrote it.",
        &["name", "price", "quantity"],
        vec![
            (
                "name",
                json!({ "type": "string", "minLength": 1, "description": "What to buy." }),
            ),
            ("price", described_ref("AmountInput", "The price of one, at least 0.")),
            (
                "quantity",
                json!({ "type": "integer", "minimum": 1, "description": "How many." }),
            ),
        ],
    )
}

fn order_details_schema() -> Value {
    let schema = object(
        "The order as the customer wrote it. Its field names are camelCase.",
        &["foodItems", "deliveryLocation"],
        vec![
            (
                "foodItems",
                json!({ "type": "array", "minItems": 1, "items": schema_ref("FoodItem"), "description": "What to buy." }),
            ),
            ("storeLocation", string("Where to buy it, if it matters.")),
            (
                "deliveryLocation",
                json!({ "type": "string", "minLength": 1, "description": "Where to deliver." }),
            ),
            (
                "deliveryFee",
                described_ref(
                    "AmountInput",
                    "What the runner earns; 0 when left out, at most the configured limit (20.00 by default).",
                ),
            ),
        ],
    );
    with_example(
        schema,
        json!({ "foodItems": [{ "name": "Burger", "price": 12.99, "quantity": 1 }], "deliveryLocation": "North Campus" }),
    )
}

fn place_order_request_schema() -> Value {
    let schema = object(
        "The body of `POST /api/orders`.",
        &["customer_id", "order_details"],
        vec![
            (
                "customer_id",
                described_ref(
                    "UserId",
                    "The customer placing the order; a registered user with a payment method.",
                ),
            ),
            ("order_details", schema_ref("OrderDetails")),
        ],
    );
    with_example(schema, place_order_example())
}

fn place_order_accepted_schema() -> Value {
    object(
        "The answer to `POST /api/orders`: the saga that creates the order.",
        &["success", "saga_id", "order_id", "status"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            ("saga_id", uuid("The create-order saga's id.")),
            ("order_id", uuid("The id the order will have.")),
            (
                "status",
                json!({ "type": "string", "const": "STARTED", "description": "The saga's status." }),
            ),
        ],
    )
}

fn order_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["PENDING", "CREATED", "ACCEPTED", "ON_SITE", "PURCHASED", "COLLECTED", "ON_THE_WAY", "DELIVERED", "COMPLETED", "CANCELLED"],
        "description": "`PENDING`: placed, awaiting payment. `CREATED`: paid and held in escrow, waiting for a runner. `ACCEPTED`, `ON_SITE`, `PURCHASED`, `COLLECTED`, `ON_THE_WAY`, `DELIVERED`: the runner's progress. `COMPLETED` and `CANCELLED` are final."
    })
}

fn order_item_schema() -> Value {
    object(
        "One line of an order.",
        &["name", "price", "price_cents", "quantity"],
        vec![
            ("name", string("What to buy.")),
            ("price", described_ref("Amount", "The price of one.")),
            ("price_cents", cents("The price of one, in cents.")),
            ("quantity", integer("How many.")),
        ],
    )
}

fn order_example() -> Value {
    json!({
        "order_id": ORDER_ID,
        "customer_id": "cust_123",
        "runner_id": null,
        "status": "CREATED",
        "items": [{ "name": "Burger", "price": 12.99, "price_cents": 1299, "quantity": 1 }],
        "store_location": null,
        "delivery_location": "North Campus",
        "food_fee": 12.99,
        "delivery_fee": 0,
        "total": 12.99,
        "food_fee_cents": 1299,
        "delivery_fee_cents": 0,
        "total_cents": 1299,
        "currency": "SGD",
        "cancellation_reason": null,
        "cancelled_by": null,
        "status_times": { "PENDING": "2026-11-21T12:00:00Z", "CREATED": "2026-11-21T12:00:01Z" }
    })
}

fn order_schema() -> Value {
    let status_times = json!({
        "type": "object",
        "description": "When the order entered each status it has been in (the latest time for a status entered twice).",
        "propertyNames": schema_ref("OrderStatus"),
        "additionalProperties": { "type": "string", "format": "date-time" }
    });
    let schema = object(
        "An order. Amounts are given both in major units and in cents.",
        &[
            "order_id",
            "customer_id",
            "runner_id",
            "status",
            "items",
            "store_location",
            "delivery_location",
            "food_fee",
            "delivery_fee",
            "total",
            "food_fee_cents",
            "delivery_fee_cents",
            "total_cents",
            "currency",
            "cancellation_reason",
            "cancelled_by",
            "status_times",
        ],
        vec![
            ("order_id", uuid("The order's id.")),
            (
                "customer_id",
                described_ref("UserId", "The customer who placed the order."),
            ),
            (
                "runner_id",
                json!({ "type": ["string", "null"], "description": "The runner who took the order; null until one does." }),
            ),
            ("status", schema_ref("OrderStatus")),
            ("items", array_of("OrderItem", "What to buy.")),
            ("store_location", nullable_string("Where to buy it.")),
            ("delivery_location", string("Where to deliver.")),
            ("food_fee", described_ref("Amount", "The items' total.")),
            ("delivery_fee", described_ref("Amount", "What the runner earns.")),
            (
                "total",
                described_ref("Amount", "Food fee plus delivery fee: what the customer pays."),
            ),
            ("food_fee_cents", cents("The food fee in cents.")),
            ("delivery_fee_cents", cents("The delivery fee in cents.")),
            ("total_cents", cents("The total in cents.")),
            ("currency", string("ISO 4217 currency code, e.g. SGD.")),
            (
                "cancellation_reason",
                nullable_string("Why the order was cancelled, if it was."),
            ),
            (
                "cancelled_by",
                cancelled_by("Who asked for the cancellation, if the order was cancelled: the customer, the acceptance timer running out (`timeout`), or an operator or a saga's compensation (`system`)."),
            ),
            ("status_times", status_times),
        ],
    );
    with_example(schema, order_example())
}

fn runner_request_schema() -> Value {
    object(
        "The body of `POST /api/orders/{order_id}/accept` and `POST /api/orders/{order_id}/cancel-acceptance`.",
        &["runner_id"],
        vec![(
            "runner_id",
            described_ref(
                "UserId",
                "The runner accepting the order or giving it back; never the order's customer.",
            ),
        )],
    )
}

fn order_decision_schema() -> Value {
    object(
        "The answer to a runner accepting an order or giving it back: the order as the decision left it.",
        &["success", "saga_id", "order"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            (
                "saga_id",
                uuid("The accept-order saga of this acceptance round: it stops the acceptance timer, or restarts it when the order is given back."),
            ),
            ("order", schema_ref("Order")),
        ],
    )
}

fn cancel_order_request_schema() -> Value {
    object(
        "The body of `POST /api/orders/{order_id}/cancel` and `POST /api/sagas/{saga_id}/cancel`. Both fields may be left out, and the body may be empty.",
        &[],
        vec![
            (
                "customer_id",
                described_ref("UserId", "The customer cancelling; when given, it must be the order's customer."),
            ),
            (
                "reason",
                json!({ "type": "string", "default": "cancelled by the customer", "description": "Why, for the record; kept as the order's `cancellation_reason`." }),
            ),
        ],
    )
}

fn cancellation_accepted_schema() -> Value {
    object(
        "The answer to a customer's cancellation: the order is cancelled, and its saga is undoing the payment and the escrow hold.",
        &["success", "saga_id", "status", "order"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            (
                "saga_id",
                nullable_uuid("The create-order saga that placed the order and now undoes it; null for an order placed by hand, without a saga."),
            ),
            (
                "status",
                json!({ "type": "string", "const": "CANCELLING", "description": "The saga's status: it is voiding the payment, refunding the escrow and stopping the timer." }),
            ),
            ("order", schema_ref("Order")),
        ],
    )
}

fn saga_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["STARTED", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED", "CANCELLING", "CANCELLED"],
        "description": "`STARTED`: running. `COMPENSATING`: a step failed and earlier steps are being undone. `COMPLETED`: every step done; a completed saga still moves on if its order is cancelled before a runner accepts (create-order) or given back (accept-order). `CANCELLING`: the order was cancelled or given back and the saga is undoing what it did. `COMPENSATED`, `FAILED` and `CANCELLED` are final."
    })
}

fn saga_step_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["create_order", "get_payment_info", "authorize_payment", "hold_funds", "mark_order_created", "start_timer", "compensate", "done", "stop_timer", "restart_timer"],
        "description": concat!(
            "The step a saga is at. A create-order saga runs `create_order`, `get_payment_info`, ",
            "`authorize_payment`, `hold_funds`, `mark_order_created` and `start_timer` (step 6: start ",
            "the 30-minute acceptance timer; the saga is `COMPLETED` once the timer has started), then ",
            "`done`; `compensate` while it undoes earlier steps. An accept-order saga runs `stop_timer` ",
            "(stop the acceptance timer), then `done`; `restart_timer` when the runner gives the order ",
            "back and a fresh acceptance timer starts."
        )
    })
}

fn compensation_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["cancel_order", "void_payment", "refund_escrow", "stop_timer"],
        "description": "One undo action of a compensating saga."
    })
}

fn saga_history_entry_schema() -> Value {
    object(
        "One step a saga recorded.",
        &["sequence", "event", "recorded_at", "caused_by", "details"],
        vec![
            (
                "sequence",
                integer("The event's position in the saga's history, from 1."),
            ),
            (
                "event",
                json!({ "type": "string", "description": "What happened.", "examples": ["create_order_saga.started", "create_order_saga.payment_authorized", "create_order_saga.compensation_started", "accept_order_saga.started"] }),
            ),
            ("recorded_at", timestamp("When it was recorded.")),
            (
                "caused_by",
                nullable_string(
                    "The id of the message that caused it; null for the HTTP request that started the saga.",
                ),
            ),
            (
                "details",
                json!({ "type": ["object", "null"], "description": "The event's own fields (amounts, ids, the failed step and reason, ...)." }),
            ),
        ],
    )
}

fn saga_example() -> Value {
    json!({
        "saga_id": SAGA_ID,
        "saga_type": "create_order",
        "order_id": ORDER_ID,
        "customer_id": "cust_123",
        "runner_id": null,
        "status": "COMPLETED",
        "current_step": "done",
        "error": null,
        "cancellation_reason": null,
        "cancelled_by": null,
        "total_cents": 1299,
        "payment_id": PAYMENT_ID,
        "escrow_id": ESCROW_ID,
        "timer_id": TIMER_ID,
        "timer_due_at": "2026-11-21T12:30:01Z",
        "pending_compensations": [],
        "created_at": "2026-11-21T12:00:00Z",
        "updated_at": "2026-11-21T12:00:01Z"
    })
}

fn saga_type_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["create_order", "accept_order"],
        "description": "`create_order`: places an order (payment, escrow, acceptance timer) and undoes it if the order is cancelled before a runner accepts. `accept_order`: follows one runner's acceptance of an order (stops the acceptance timer, or starts a fresh one if the runner gives the order back)."
    })
}

fn saga_schema() -> Value {
    let schema = object(
        concat!(
            "A create-order or accept-order saga. Fields a saga's type does not use are null (an ",
            "accept-order saga has no customer, amounts, payment, escrow or compensations). `history` ",
            "is present only in `GET /api/sagas/{saga_id}`."
        ),
        &[
            "saga_id",
            "saga_type",
            "order_id",
            "customer_id",
            "runner_id",
            "status",
            "current_step",
            "error",
            "cancellation_reason",
            "cancelled_by",
            "total_cents",
            "payment_id",
            "escrow_id",
            "timer_id",
            "timer_due_at",
            "pending_compensations",
            "created_at",
            "updated_at",
        ],
        vec![
            ("saga_id", uuid("The saga's id.")),
            ("saga_type", schema_ref("SagaType")),
            ("order_id", uuid("The order the saga places (create-order) or follows (accept-order).")),
            (
                "customer_id",
                json!({ "anyOf": [schema_ref("UserId"), { "type": "null" }], "description": "The customer who placed the order (create-order sagas)." }),
            ),
            (
                "runner_id",
                json!({ "type": ["string", "null"], "description": "The runner who accepted the order (accept-order sagas)." }),
            ),
            ("status", schema_ref("SagaStatus")),
            (
                "current_step",
                json!({ "anyOf": [schema_ref("SagaStep"), { "type": "null" }], "description": "The step the saga is at." }),
            ),
            ("error", nullable_string("Why a step failed, if one did.")),
            (
                "cancellation_reason",
                nullable_string("Why the order was cancelled, if it was (create-order sagas)."),
            ),
            (
                "cancelled_by",
                cancelled_by("Who asked for the cancellation: the customer, the acceptance timer running out (`timeout`), or an operator (`system`)."),
            ),
            (
                "total_cents",
                json!({ "type": ["integer", "null"], "description": "The order total in cents (0 until the order is placed; null for an accept-order saga)." }),
            ),
            (
                "payment_id",
                nullable_uuid("The payment the saga authorized, once it has."),
            ),
            (
                "escrow_id",
                nullable_uuid("The escrow the saga holds funds in, once it does."),
            ),
            (
                "timer_id",
                nullable_uuid("The acceptance timer the saga started (step 6), once it has; see `GET /events/{timer_id}`."),
            ),
            (
                "timer_due_at",
                nullable_timestamp("When the acceptance timer falls due: if no runner has accepted by then, the order is cancelled."),
            ),
            (
                "pending_compensations",
                json!({ "type": ["array", "null"], "items": schema_ref("Compensation"), "description": "Undo actions still to run (null for an accept-order saga)." }),
            ),
            ("created_at", nullable_timestamp("When the saga started.")),
            ("updated_at", nullable_timestamp("When the saga last changed.")),
            (
                "history",
                array_of("SagaHistoryEntry", "Every step the saga recorded, in order."),
            ),
        ],
    );
    with_example(schema, saga_example())
}

fn saga_history_schema() -> Value {
    object(
        "A saga's history.",
        &["saga_id", "history"],
        vec![
            ("saga_id", uuid("The saga's id.")),
            (
                "history",
                array_of("SagaHistoryEntry", "Every step the saga recorded, in order."),
            ),
        ],
    )
}

fn user_schema() -> Value {
    let schema = object(
        "A customer or runner.",
        &[
            "user_id",
            "name",
            "email",
            "phone",
            "payment_method",
            "payout_account",
            "created_at",
            "updated_at",
        ],
        vec![
            ("user_id", schema_ref("UserId")),
            ("name", string("The user's name.")),
            ("email", json!({ "type": "string", "format": "email" })),
            ("phone", nullable_string("The user's phone number.")),
            (
                "payment_method",
                nullable_string(&format!(
                    "The card a customer pays with, as the processor names it. {}",
                    sandbox_methods()
                )),
            ),
            ("payout_account", nullable_string("Where a runner is paid.")),
            ("created_at", nullable_timestamp("When the user registered.")),
            (
                "updated_at",
                nullable_timestamp("When the user last changed; null if never."),
            ),
        ],
    );
    with_example(
        schema,
        json!({
            "user_id": "cust_123",
            "name": "Alice Tan",
            "email": "alice@example.edu",
            "phone": "+65 8123 4567",
            "payment_method": "pm_card_visa",
            "payout_account": null,
            "created_at": "2026-11-21T11:00:00Z",
            "updated_at": null
        }),
    )
}

fn create_user_request_schema() -> Value {
    object(
        "The body of `POST /users`. Optional fields left empty count as absent.",
        &["user_id", "name", "email"],
        vec![
            ("user_id", schema_ref("UserId")),
            (
                "name",
                json!({ "type": "string", "minLength": 1, "description": "Not blank." }),
            ),
            ("email", json!({ "type": "string", "format": "email" })),
            ("phone", string("The user's phone number.")),
            (
                "payment_method",
                string(&format!(
                    "The card a customer pays with; needed to place orders. {}",
                    sandbox_methods()
                )),
            ),
            ("payout_account", string("Where a runner is paid.")),
        ],
    )
}

fn update_user_request_schema() -> Value {
    let mut schema = object(
        "The body of `PUT`/`PATCH /users/{user_id}`: any of the user's details. The id comes from the path.",
        &[],
        vec![
            (
                "name",
                json!({ "type": "string", "minLength": 1, "description": "Not blank." }),
            ),
            ("email", json!({ "type": "string", "format": "email" })),
            ("phone", string("The user's phone number.")),
            (
                "payment_method",
                string(&format!("The card a customer pays with. {}", sandbox_methods())),
            ),
            ("payout_account", string("Where a runner is paid.")),
        ],
    );
    schema["minProperties"] = json!(1);
    schema
}

fn payment_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["AUTHORIZED", "CAPTURED", "VOIDED", "REFUNDED", "FAILED"],
        "description": "`AUTHORIZED`: held on the card. `CAPTURED`: charged. `VOIDED`: released, nothing charged. `FAILED`: declined."
    })
}

fn payment_schema() -> Value {
    let schema = object(
        "An order's payment. Amounts here are in cents.",
        &[
            "payment_id",
            "order_id",
            "customer_id",
            "amount_cents",
            "currency",
            "payment_method",
            "status",
            "gateway_reference",
            "failure_reason",
            "authorized_at",
            "updated_at",
        ],
        vec![
            ("payment_id", uuid("The payment's id, derived from the order id.")),
            ("order_id", uuid("The order paid for.")),
            ("customer_id", described_ref("UserId", "The customer paying.")),
            ("amount_cents", cents("The amount authorized, in cents.")),
            ("currency", string("ISO 4217 currency code, e.g. SGD.")),
            (
                "payment_method",
                string(&format!("The card charged. {}", sandbox_methods())),
            ),
            ("status", schema_ref("PaymentStatus")),
            (
                "gateway_reference",
                nullable_string("The processor's reference for the authorization."),
            ),
            (
                "failure_reason",
                nullable_string("Why the processor declined, when the payment is `FAILED`."),
            ),
            ("authorized_at", nullable_timestamp("When the card was authorized.")),
            ("updated_at", nullable_timestamp("When the payment last changed.")),
        ],
    );
    with_example(
        schema,
        json!({
            "payment_id": PAYMENT_ID,
            "order_id": ORDER_ID,
            "customer_id": "cust_123",
            "amount_cents": 1299,
            "currency": "SGD",
            "payment_method": "pm_card_visa",
            "status": "AUTHORIZED",
            "gateway_reference": "auth_4f1c2d3e4b5a69788796a5b4c3d2e1f0",
            "failure_reason": null,
            "authorized_at": "2026-11-21T12:00:00Z",
            "updated_at": "2026-11-21T12:00:00Z"
        }),
    )
}

fn authorize_payment_request_schema() -> Value {
    object(
        "The body of `POST /payments/authorize`.",
        &["order_id", "customer_id", "amount", "payment_method"],
        vec![
            ("order_id", uuid("The order to pay for.")),
            ("customer_id", described_ref("UserId", "The customer paying.")),
            (
                "amount",
                described_ref("AmountInput", "What to authorize; more than zero."),
            ),
            (
                "currency",
                json!({ "type": "string", "default": "SGD", "description": "ISO 4217 currency code." }),
            ),
            (
                "payment_method",
                string(&format!("The card to authorize. {}", sandbox_methods())),
            ),
        ],
    )
}

fn release_payment_request_schema() -> Value {
    object(
        "The body of `POST /payments/release`.",
        &["order_id"],
        vec![
            ("order_id", uuid("The order whose authorization to void.")),
            (
                "reason",
                json!({ "type": "string", "default": "released through the API", "description": "Why, for the record." }),
            ),
        ],
    )
}

fn capture_payment_request_schema() -> Value {
    object(
        "The body of `POST /payments/capture`.",
        &["order_id"],
        vec![("order_id", uuid("The order whose payment to capture."))],
    )
}

fn escrow_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["HELD", "RELEASED", "REFUNDED"],
        "description": "`HELD`: waiting for delivery. `RELEASED`: paid to the runner. `REFUNDED`: returned to the customer."
    })
}

fn escrow_schema() -> Value {
    let schema = object(
        "The funds held for one order. Amounts here are in cents.",
        &[
            "escrow_id",
            "order_id",
            "customer_id",
            "runner_id",
            "amount_cents",
            "food_fee_cents",
            "delivery_fee_cents",
            "currency",
            "status",
            "held_at",
            "updated_at",
        ],
        vec![
            ("escrow_id", uuid("The escrow's id, derived from the order id.")),
            ("order_id", uuid("The order the funds are for.")),
            (
                "customer_id",
                described_ref("UserId", "The customer whose funds are held."),
            ),
            (
                "runner_id",
                json!({ "type": ["string", "null"], "description": "The runner the funds were released to, once they are." }),
            ),
            ("amount_cents", cents("Food fee plus delivery fee, in cents.")),
            ("food_fee_cents", cents("The food fee, in cents.")),
            ("delivery_fee_cents", cents("The delivery fee, in cents.")),
            ("currency", string("ISO 4217 currency code, e.g. SGD.")),
            ("status", schema_ref("EscrowStatus")),
            ("held_at", nullable_timestamp("When the funds were held.")),
            ("updated_at", nullable_timestamp("When the escrow last changed.")),
        ],
    );
    with_example(
        schema,
        json!({
            "escrow_id": ESCROW_ID,
            "order_id": ORDER_ID,
            "customer_id": "cust_123",
            "runner_id": null,
            "amount_cents": 1299,
            "food_fee_cents": 1299,
            "delivery_fee_cents": 0,
            "currency": "SGD",
            "status": "HELD",
            "held_at": "2026-11-21T12:00:01Z",
            "updated_at": "2026-11-21T12:00:01Z"
        }),
    )
}

fn hold_funds_request_schema() -> Value {
    object(
        "The body of `POST /escrow/hold`.",
        &["order_id", "customer_id", "food_fee"],
        vec![
            ("order_id", uuid("The order the funds are for.")),
            (
                "customer_id",
                described_ref("UserId", "The customer whose funds to hold."),
            ),
            (
                "food_fee",
                described_ref("AmountInput", "The items' total, at least 0."),
            ),
            (
                "delivery_fee",
                described_ref("AmountInput", "The runner's fee, at least 0; 0 when left out."),
            ),
            (
                "currency",
                json!({ "type": "string", "default": "SGD", "description": "ISO 4217 currency code." }),
            ),
        ],
    )
}

fn release_funds_request_schema() -> Value {
    object(
        "The body of `POST /escrow/release`.",
        &["order_id", "runner_id"],
        vec![
            ("order_id", uuid("The order whose funds to release.")),
            (
                "runner_id",
                described_ref("UserId", "The runner who delivered the order."),
            ),
        ],
    )
}

fn cancel_escrow_request_schema() -> Value {
    object(
        "The body of `POST /escrow/cancel`.",
        &["order_id"],
        vec![
            ("order_id", uuid("The order whose held funds to refund.")),
            (
                "reason",
                json!({ "type": "string", "default": "cancelled through the API", "description": "Why, for the record." }),
            ),
        ],
    )
}

fn timer_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["SCHEDULED", "CANCELLED", "FIRED"],
        "description": "`SCHEDULED`: waiting to fall due. `CANCELLED`: stopped before it fell due. `FIRED`: fell due and published `timer.expired`. `CANCELLED` and `FIRED` are final."
    })
}

fn timer_example() -> Value {
    json!({
        "id": TIMER_ID,
        "timer_id": TIMER_ID,
        "event_type": "order_acceptance",
        "entity_id": ORDER_ID,
        "order_id": ORDER_ID,
        "status": "SCHEDULED",
        "scheduled_time": "2026-11-21T12:30:01Z",
        "payload": { "order_created_at": "2026-11-21T12:00:01Z" },
        "correlation_id": SAGA_ID,
        "created_at": "2026-11-21T12:00:01Z",
        "cancelled_at": null,
        "cancel_reason": null,
        "fired_at": null
    })
}

fn timer_schema() -> Value {
    let schema = object(
        "A durable timer, in the seeds' `ScheduledEvent` shape.",
        &[
            "id",
            "timer_id",
            "event_type",
            "entity_id",
            "order_id",
            "status",
            "scheduled_time",
            "payload",
            "correlation_id",
            "created_at",
            "cancelled_at",
            "cancel_reason",
            "fired_at",
        ],
        vec![
            ("id", uuid("The timer's id (the same as `timer_id`).")),
            ("timer_id", uuid("The timer's id.")),
            ("event_type", string("What the timer is for, e.g. `order_acceptance`.")),
            ("entity_id", string("What the timer is about (an order id, ...).")),
            ("order_id", nullable_uuid("The order the timer belongs to, if any.")),
            ("status", schema_ref("TimerStatus")),
            ("scheduled_time", timestamp("When the timer falls due.")),
            (
                "payload",
                json!({ "description": "Any JSON given when the timer was scheduled; handed back in `timer.expired`." }),
            ),
            (
                "correlation_id",
                string("The saga the expiry belongs to: `timer.expired` carries it as its correlation id."),
            ),
            ("created_at", timestamp("When the timer was scheduled.")),
            (
                "cancelled_at",
                nullable_timestamp("When the timer was cancelled, if it was."),
            ),
            (
                "cancel_reason",
                nullable_string("Why the timer was cancelled, if it was."),
            ),
            ("fired_at", nullable_timestamp("When the timer fired, if it has.")),
        ],
    );
    with_example(schema, timer_example())
}

fn schedule_request_schema() -> Value {
    let schema = object(
        "The body of `POST /schedule` (the seeds' `ScheduledEvent`). Give exactly one of `scheduled_time` and `delay_seconds`.",
        &["event_type", "entity_id"],
        vec![
            (
                "event_type",
                json!({ "type": "string", "minLength": 1, "description": "What the timer is for; `timer.expired` carries it back. `timer_type` is accepted as an alias.", "examples": ["delivery_reminder"] }),
            ),
            (
                "entity_id",
                json!({ "type": "string", "minLength": 1, "description": "What the timer is about (an order id, a user id, ...)." }),
            ),
            (
                "scheduled_time",
                timestamp("When the timer falls due (RFC 3339). `due_at` is accepted as an alias. Give this or `delay_seconds`, not both."),
            ),
            (
                "delay_seconds",
                json!({ "type": "integer", "minimum": 0, "description": "Seconds from now until the timer falls due. Give this or `scheduled_time`, not both." }),
            ),
            (
                "payload",
                json!({ "description": "Any JSON, handed back in `timer.expired`; null when left out." }),
            ),
            (
                "order_id",
                uuid("The order the timer belongs to, if any: the timer's messages are keyed by it, and timers can be listed by it."),
            ),
            (
                "timer_id",
                uuid("Names the timer, so the request is safe to repeat: the same id scheduled twice is one timer (the second answer is 200). A fresh id when left out."),
            ),
            (
                "correlation_id",
                string("The saga the expiry belongs to: `timer.expired` carries it as its correlation id. A fresh id when left out."),
            ),
        ],
    );
    with_example(schema, schedule_example())
}

fn cancel_timer_request_schema() -> Value {
    object(
        "The body of `POST /events/{timer_id}/cancel`. It may be empty.",
        &[],
        vec![(
            "reason",
            json!({ "type": "string", "default": "cancelled through the API", "description": "Why, for the record; kept as the timer's `cancel_reason`." }),
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::document;

    #[test]
    fn every_route_the_api_serves_is_documented() {
        let document = document();
        let paths = document["paths"].as_object().expect("the document has a paths object");
        for route in [
            "/health",
            "/openapi.json",
            "/api/orders",
            "/api/orders/available",
            "/api/orders/{order_id}",
            "/api/orders/{order_id}/accept",
            "/api/orders/{order_id}/cancel-acceptance",
            "/api/orders/{order_id}/cancel",
            "/api/sagas",
            "/api/sagas/{saga_id}",
            "/api/sagas/{saga_id}/history",
            "/api/sagas/{saga_id}/cancel",
            "/users",
            "/users/{user_id}",
            "/payments",
            "/payments/authorize",
            "/payments/release",
            "/payments/capture",
            "/payments/{payment_id}",
            "/escrow",
            "/escrow/hold",
            "/escrow/release",
            "/escrow/cancel",
            "/escrow/{escrow_id}",
            "/schedule",
            "/events",
            "/events/{timer_id}",
            "/events/{timer_id}/cancel",
        ] {
            assert!(paths.contains_key(route), "{route} is not documented");
        }
        let version = document["openapi"].as_str().expect("`openapi` is a string");
        assert!(version.starts_with("3.1"), "the document is OpenAPI {version}, not 3.1");
    }
}
