//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Its paths come from the routes: each route declares its path, its
//! operation's name and who may call it ([`crate::startup::route_table`]).
//! What each operation takes and answers (parameters, request body, answers,
//! error statuses) is written here by hand, by operation name; the tests check
//! that every route's operation is described and every description is a
//! route's.
//!
//! Each `json!` call stays small (one schema, one operation) and the pieces are
//! put together with [`Map`] inserts, so no macro hits the recursion limit.

use serde_json::{json, Map, Value};

use campusg_domain::idempotency::MAX_KEY_CHARS;
use campusg_runtime::access::{Access, RouteRule};

use crate::dead_letters::PARKED_KEYS_PAGE;

use campusg_domain::limits::{
    MAX_AMOUNT_CHARS, MAX_BODY_BYTES, MAX_ITEMS_PER_ORDER, MAX_ITEM_QUANTITY, MAX_NAME_CHARS, MAX_PAGE,
    MAX_QUERY_DURATION_SECONDS, MAX_TEXT_CHARS,
};

/// An example saga id, order id and so on, used across the document.
const SAGA_ID: &str = "7d3c2b1a-5e4f-4a3b-9c8d-1e2f3a4b5c6d";
const ORDER_ID: &str = "0f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";
const PAYMENT_ID: &str = "3b9f0c7e-2d1a-5e8f-9a6b-4c3d2e1f0a9b";
const ESCROW_ID: &str = "8a7b6c5d-4e3f-5a2b-8c1d-0e9f8a7b6c5d";
/// An accept-order saga's id (derived from the order id and the acceptance round).
const ACCEPT_SAGA_ID: &str = "2e1d0c9b-8a7f-5e6d-9c4b-3a2f1e0d9c8b";
const TIMER_ID: &str = "5c4b3a29-1807-4f6e-8d5c-4b3a29180716";
/// A complete-order saga's id (derived from the order id: an order completes once).
const COMPLETE_SAGA_ID: &str = "9e8d7c6b-5a49-5f3e-8d2c-1b0a9f8e7d6c";
const NOTIFICATION_ID: &str = "6d5c4b3a-2918-4e7d-9c6b-5a4938271605";

/// The OpenAPI document of the HTTP API.
pub fn document() -> Value {
    let mut document = Map::new();
    document.insert("openapi".into(), json!("3.1.0"));
    document.insert("info".into(), info());
    document.insert("tags".into(), tags());
    let table = crate::startup::route_table();
    let mut paths = paths_of(&table, operations());
    add_common_answers(&mut paths);
    add_access(&mut paths, &table);
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        if let Some(inline) = operation.pointer_mut("/requestBody/content/application~1json/schema") {
            optional_properties_take_null(inline);
        }
    }
    let mut schemas = schemas();
    let request_schemas = schemas_referenced_by_request_bodies(&paths, &schemas);
    for name in request_schemas {
        if let Some(schema) = schemas.get_mut(&name) {
            optional_properties_take_null(schema);
        }
    }
    document.insert("paths".into(), Value::Object(paths));
    document.insert(
        "components".into(),
        json!({
            "schemas": Value::Object(schemas),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT with `sub` (the user), `role` (customer, runner or operator), `iss`, `aud` and `exp`. Embedded: `campusg token --user ID --role ROLE` mints one."
                }
            }
        }),
    );
    Value::Object(document)
}

fn info() -> Value {
    json!({
        "title": "campusg",
        "version": env!("CARGO_PKG_VERSION"),
        "summary": "Campus food delivery: orders, runners, sagas, users, ratings, notifications, payments, payouts, escrow, the ledger and timers.",
        "description": concat!(
            "Event-sourced services that talk over a message log. Placing an order starts a ",
            "create-order saga that creates the order, looks up the customer's payment method, ",
            "authorizes the payment, holds the total in escrow, marks the order `CREATED` and ",
            "starts a 30-minute acceptance timer; a failed step is undone by compensations. ",
            "Until a runner accepts, the order can still be cancelled (by the customer, or by the ",
            "timer expiring with no runner), even once the create-order saga has completed: the ",
            "saga then refunds the escrow, voids the payment and ends `CANCELLED`. A runner ",
            "accepting an order starts an accept-order saga, which stops the timer and tells the ",
            "customer. The runner then reports each delivery stage in turn (`ON_SITE`, `PURCHASED`, ",
            "`COLLECTED`, `ON_THE_WAY`, `DELIVERED`); `DELIVERED` starts a complete-order saga that ",
            "captures the payment (the pivot), releases the escrow to the runner, marks the order ",
            "`COMPLETED` and pays the runner out to their payout account, and nothing pays twice. ",
            "Every money event is posted to a double-entry ledger (`GET /api/ledger`). Once the ",
            "order is `COMPLETED`, the customer and the runner rate each other. Customers and ",
            "runners are told of every step through notifications, one per event and recipient. ",
            "Writes are answered once they are recorded; follow a saga ",
            "with `GET /api/sagas/{saga_id}`, or live with ",
            "`GET /saga/complete/orderUpdateStream/{saga_id}`. To debug, read an order's whole story ",
            "by order or saga id with `GET /api/orders/{id}/trace`, find the sagas that stopped ",
            "moving with `campusg sagas list --stuck-for`, see an aggregate as it was at an event or a ",
            "time with `campusg replay --as-of`, and list, retry or drop dead letters with ",
            "`campusg dlq`.\n\n",
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
        { "name": "runners", "description": "Runners find the orders waiting for them, accept one or give it back, and report each delivery stage." },
        { "name": "sagas", "description": "The create-order, accept-order and complete-order sagas: their state, history and live updates." },
        { "name": "users", "description": "Customers and runners." },
        { "name": "ratings", "description": "After an order is completed, its customer and runner rate each other." },
        { "name": "notifications", "description": "What customers and runners are told at every step: created from the events, once per event and recipient." },
        { "name": "payments", "description": "Card authorizations through the sandbox processor, and the runners' payouts to their payout accounts." },
        { "name": "escrow", "description": "Order totals held until delivery, then released or refunded." },
        { "name": "ledger", "description": "The double-entry ledger: every money event as balanced entries between named accounts." },
        { "name": "timers", "description": "Durable timers: the scheduler API of the seeds." },
        { "name": "debugging", "description": "An order's whole story from the trace index, for a UI; the `campusg trace`, `sagas`, `replay` and `dlq` commands do the same from a terminal." },
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
            &format!("The page to return, from 1 to {MAX_PAGE} (default 1); anything else is a 400."),
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1 }),
        ),
        query_param(
            "page_size",
            &format!("Items per page, from 1 to {max_size} (default {default_size}); anything else is a 400."),
            json!({ "type": "integer", "minimum": 1, "maximum": max_size, "default": default_size }),
        ),
    ]
}

/// The component schemas a request body uses, directly or through another.
fn schemas_referenced_by_request_bodies(paths: &Map<String, Value>, schemas: &Map<String, Value>) -> Vec<String> {
    fn refs_in(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    found.push(name.to_string());
                }
                map.values().for_each(|v| refs_in(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs_in(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for operation in paths
        .values()
        .filter_map(Value::as_object)
        .flat_map(|item| item.values())
    {
        if let Some(body) = operation.get("requestBody") {
            refs_in(body, &mut found);
        }
    }
    let mut seen: Vec<String> = Vec::new();
    while let Some(name) = found.pop() {
        if seen.contains(&name) {
            continue;
        }
        if let Some(schema) = schemas.get(&name) {
            refs_in(schema, &mut found);
        }
        seen.push(name);
    }
    seen
}

/// A property a request may leave out may also be sent as `null`, which the
/// server reads as left out (serde's `Option`). Saying so once here keeps every
/// request schema true to the server.
fn optional_properties_take_null(schema: &mut Value) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        match property.get_mut("type") {
            Some(Value::String(single)) if single != "null" => {
                let single = single.clone();
                property["type"] = json!([single, "null"]);
                if let Some(Value::Array(values)) = property.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            Some(Value::Array(types)) => {
                if !types.contains(&json!("null")) {
                    types.push(json!("null"));
                }
                if let Some(Value::Array(values)) = property.get_mut("enum") {
                    if !values.contains(&Value::Null) {
                        values.push(Value::Null);
                    }
                }
            }
            _ => {
                let description = property.get("description").cloned();
                let mut shape = property.clone();
                if let Some(shape) = shape.as_object_mut() {
                    shape.remove("description");
                }
                let mut nullable = json!({ "anyOf": [shape, { "type": "null" }] });
                if let Some(description) = description {
                    nullable["description"] = description;
                }
                *property = nullable;
            }
        }
    }
}

/// Adds the answers every operation of a kind may give, so that each is
/// declared once: 413 and 400 (malformed JSON) where there is a request body,
/// 400 where a path or query parameter may not parse.
fn add_common_answers(paths: &mut Map<String, Value>) {
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        let has_body = operation.contains_key("requestBody");
        let has_parameters = operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|parameters| !parameters.is_empty());
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        if has_body {
            responses.entry("413").or_insert_with(|| {
                error(&format!(
                    "The body is over {MAX_BODY_BYTES} bytes (code `payload_too_large`)."
                ))
            });
        }
        if has_body || has_parameters {
            responses.entry("400").or_insert_with(|| {
                error("The request is malformed: not JSON, or a path or query value that does not parse or is out of range (code `bad_request` or `malformed_json`).")
            });
        }
    }
}

/// Says on each operation who may call it, from the rule its route declares
/// ([`crate::startup::route_table`]): the bearer scheme, the roles (as
/// `x-campusg-roles`), and the 401, 403 and 429 a guarded route may give.
fn add_access(paths: &mut Map<String, Value>, table: &[RouteRule]) {
    for rule in table {
        let method = rule.method.as_str().to_ascii_lowercase();
        let Some(operation) = paths
            .get_mut(rule.path)
            .and_then(|item| item.get_mut(&method))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let key_required = operation
            .remove(IDEMPOTENCY_KEY_REQUIRED)
            .is_some_and(|required| required.as_bool() == Some(true));
        let roles: Vec<&str> = rule.access.roles().iter().map(|role| role.as_str()).collect();
        operation.insert("x-campusg-roles".into(), json!(roles));
        if rule.access == Access::Public {
            operation.insert("security".into(), json!([]));
            continue;
        }
        operation.insert("security".into(), json!([{"bearer": []}]));
        let mutating = matches!(method.as_str(), "post" | "put" | "patch");
        if mutating {
            let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
            if let Some(parameters) = parameters.as_array_mut() {
                parameters.push(idempotency_key(key_required));
            }
        }
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        responses.entry("401").or_insert_with(|| {
            error("No bearer token, or one that does not hold: tampered, expired, for another audience or issuer (code `unauthorized`).")
        });
        responses.entry("403").or_insert_with(|| {
            error(&format!(
                "The caller may not do this: this route admits {}; a customer or runner acts only for themselves (code `forbidden`).",
                roles.join(", ")
            ))
        });
        if mutating {
            responses.entry("409").or_insert_with(|| {
                error("A request under this Idempotency-Key is still running, or the key was used for another request (code `conflict`).")
            });
        }
        responses.entry("429").or_insert_with(|| {
            error("Too many requests from this caller or address; see `Retry-After` (code `too_many_requests`).")
        });
    }
}

/// The marker an operation sets (to `true`) when it refuses a request without
/// an `Idempotency-Key`; [`add_access`] reads it, removes it and makes the
/// operation's header required.
const IDEMPOTENCY_KEY_REQUIRED: &str = "x-campusg-idempotency-key-required";

/// The `Idempotency-Key` header every mutating operation takes; `required` for
/// an operation that refuses a request without one.
fn idempotency_key(required: bool) -> Value {
    let always = "Names this request, so that a retry (after a lost answer, a dropped connection) gets the first answer and causes nothing new, across restarts. The caller's own: another caller's key never meets it. A retry while the first runs, or the key on another request, is a 409; the replayed answer carries `Idempotent-Replayed: true`.";
    let description = if required {
        format!("Required here: a request without one is a 400 (code `bad_request`). {always}")
    } else {
        always.to_string()
    };
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[!-~]+$"},
        "example": "order-2026-11-29-7f3a"
    })
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

fn nullable_number(description: &str) -> Value {
    json!({ "type": ["number", "null"], "description": description })
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

/// Every operation's description, by its `operationId`. Each route names
/// its operation where it is declared (`Routes::get(path, operation_id, ..)`),
/// and [`paths_of`] files it under the route's path and method: a path is
/// written once, on its route.
fn operations() -> Map<String, Value> {
    let mut operations = Map::new();
    for item in operation_items() {
        let Value::Object(methods) = item else {
            continue;
        };
        for (_, operation) in methods {
            if let Some(id) = operation["operationId"].as_str() {
                operations.insert(id.to_string(), operation);
            }
        }
    }
    operations
}

/// Every operation's description, grouped as they are written (by path).
fn operation_items() -> Vec<Value> {
    vec![
        health_path(),
        openapi_path(),
        metrics_path(),
        orders_path(),
        available_orders_path(),
        order_path(),
        accept_order_path(),
        cancel_acceptance_path(),
        cancel_order_path(),
        order_stage_path(),
        rating_path(),
        refund_path(),
        order_trace_path(),
        trace_path(),
        sagas_path(),
        saga_path(),
        saga_history_path(),
        cancel_saga_path(),
        complete_order_path(),
        saga_update_stream_path(),
        users_path(),
        user_path(),
        send_notification_path(),
        user_notifications_path(),
        order_notifications_path(),
        mark_notification_read_path(),
        payments_path(),
        payment_authorize_path(),
        payment_release_path(),
        payment_capture_path(),
        payment_path(),
        payouts_path(),
        retry_payout_path(),
        ledger_path(),
        escrows_path(),
        escrow_hold_path(),
        escrow_release_path(),
        escrow_cancel_path(),
        escrow_path(),
        schedule_path(),
        timers_path(),
        timer_path(),
        cancel_timer_path(),
        parked_keys_path(),
        retry_parked_key_path(),
        drop_parked_key_path(),
    ]
}

/// The document's paths: each route's operation under its path and method.
/// A route whose operation is not described is left out, and the tests say so.
fn paths_of(table: &[RouteRule], mut operations: Map<String, Value>) -> Map<String, Value> {
    let mut paths = Map::new();
    for rule in table {
        let Some(operation) = operations.remove(rule.operation_id) else {
            continue;
        };
        let item = paths
            .entry(rule.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(rule.method.as_str().to_ascii_lowercase(), operation);
        }
    }
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

fn metrics_path() -> Value {
    let ok = json!({
        "description": "Every metric in Prometheus' text format (docs/operations.md lists them).",
        "content": { "text/plain": { "schema": { "type": "string" } } }
    });
    json!({
        "get": {
            "tags": ["system"],
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "description": "Sagas started and ended, step latency, consumer lag per partition, outbox depth, dead letters, parked keys, HTTP requests. For operators: a scraper carries an operator's bearer token.",
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
        ("403", error("The runner is the order's customer: nobody delivers their own order (code `forbidden`).")),
        ("404", error("No order has this id.")),
        (
            "409",
            error("Another runner has already accepted the order, or the order is not `CREATED` (still `PENDING`, already `CANCELLED`, ...); the message says why."),
        ),
        (
            "422",
            error("`runner_id` is missing or not a valid user id."),
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

/// The example order once `runner_456` has reported it `DELIVERED`.
fn delivered_order_example() -> Value {
    let mut order = accepted_order_example();
    order["status"] = json!("DELIVERED");
    order["status_times"]["ON_SITE"] = json!("2026-11-21T12:12:00Z");
    order["status_times"]["PURCHASED"] = json!("2026-11-21T12:18:00Z");
    order["status_times"]["COLLECTED"] = json!("2026-11-21T12:20:00Z");
    order["status_times"]["ON_THE_WAY"] = json!("2026-11-21T12:21:00Z");
    order["status_times"]["DELIVERED"] = json!("2026-11-21T12:35:00Z");
    order
}

fn order_stage_path() -> Value {
    let ok = answer_with_example(
        "The order is at the stage reported. `saga_id` is the saga of the runner's acceptance, or, for `DELIVERED`, the complete-order saga the report started. Reporting the current stage again gets this answer again.",
        schema_ref("OrderDecision"),
        json!({ "success": true, "saga_id": COMPLETE_SAGA_ID, "order": delivered_order_example() }),
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
            error("The order is assigned to another runner (\"the order is assigned to another runner, not ...\"), or the stage skips one or goes back (\"an order cannot go from ... to ...\"); the message says why."),
        ),
        (
            "422",
            error("`runner_id` or `status` is missing, `runner_id` is not a valid user id, or `status` is not a delivery stage (e.g. `COMPLETED`, `CREATED`)."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["runners"],
            "operationId": "reportDeliveryStage",
            "summary": "Report a delivery stage",
            "description": concat!(
                "The assigned runner, and only that runner, reports the order's next delivery stage, ",
                "one at a time and in order: `ACCEPTED` → `ON_SITE` → `PURCHASED` → `COLLECTED` → ",
                "`ON_THE_WAY` → `DELIVERED`. The order decides at once. Reporting the stage the order ",
                "is already at answers as the first time and changes nothing. `DELIVERED` starts the ",
                "order's complete-order saga: capture the payment, release the escrow to the runner, ",
                "mark the order `COMPLETED`, pay the runner out; follow it with `GET /api/sagas/{saga_id}` or ",
                "`GET /saga/complete/orderUpdateStream/{saga_id}`."
            ),
            "parameters": [order_id_param()],
            "requestBody": request_body(
                "The runner and the stage reached.",
                schema_ref("DeliveryStageRequest"),
                json!({ "runner_id": "runner_456", "status": "DELIVERED" })
            ),
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
            "Only sagas of this type (every type when left out).",
            schema_ref("SagaType"),
        ),
        query_param(
            "status",
            "Only sagas in this status (case-insensitive).",
            schema_ref("SagaStatus"),
        ),
        query_param(
            "order_id",
            "Only the sagas of this order: its create-order saga, one accept-order saga per acceptance, and its complete-order saga.",
            json!({ "type": "string", "format": "uuid" }),
        ),
        query_param(
            "customer_id",
            "Only the create-order sagas of this customer's orders (the other sagas do not name the customer).",
            schema_ref("UserId"),
        ),
        query_param(
            "runner_id",
            "Only the sagas that name this runner (accepting, completing).",
            schema_ref("UserId"),
        ),
        query_param(
            "stuck_for",
            &format!("Where is this saga stuck? Only sagas that are not final (`STARTED`, `COMPENSATING`, `CANCELLING`) and whose last step is at least this many seconds old; 0 to {MAX_QUERY_DURATION_SECONDS}."),
            json!({ "type": "integer", "minimum": 0, "maximum": MAX_QUERY_DURATION_SECONDS }),
        ),
        query_param(
            "anomalies",
            "Only sagas that recorded a reply they did not take (`true`).",
            json!({ "type": "boolean" }),
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
            error("`saga_type` is not a saga type, `status` is not a saga status, `stuck_for` is not a whole number of seconds in its range, `anomalies` is not `true` or `false`, or `page`/`page_size` is out of its range."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["sagas"],
            "operationId": "listSagas",
            "summary": "List sagas",
            "description": "Create-order, accept-order and complete-order sagas by type, status, order, customer and runner, only those stuck for a while (`stuck_for`), or only those that did not take a reply (`anomalies`); the filters combine. The most recently started first.",
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn saga_id_param() -> Value {
    path_param(
        "saga_id",
        "The saga's id, as `POST /api/orders` (a create-order saga), `POST /api/orders/{order_id}/accept` (an accept-order saga), or `POST /api/orders/{order_id}/status` with `DELIVERED` or `POST /saga/complete/completeOrder` (a complete-order saga) returned it.",
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
            "description": "The saga's type, status, current step, error, amounts (and, for a complete-order saga, what it captured and paid out), the payment, escrow and timer it made, the runner, why and by whom it was cancelled, the compensations still to run, and every step it recorded.",
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

fn complete_order_path() -> Value {
    let accepted = answer_with_example(
        "The complete-order saga is started (or was already); follow it with `GET /api/sagas/{saga_id}` or `GET /saga/complete/orderUpdateStream/{saga_id}`.",
        schema_ref("CompleteOrderAccepted"),
        json!({ "success": true, "saga_id": COMPLETE_SAGA_ID, "order_id": ORDER_ID }),
    );
    let responses = store_responses(vec![
        ("202", accepted),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        ("404", error("No order has this id.")),
        (
            "409",
            error("The order is not `DELIVERED` (e.g. \"order ... is ON_THE_WAY; only a DELIVERED order can be completed\"). An order its complete-order saga has already made `COMPLETED` is answered 202 with that saga."),
        ),
        ("422", error("`orderId` is missing or not a UUID.")),
    ]);
    json!({
        "post": {
            "tags": ["sagas"],
            "operationId": "completeOrder",
            "summary": "Complete a delivered order",
            "description": concat!(
                "Starts the complete-order saga of a `DELIVERED` order: capture the payment (the ",
                "pivot), release the escrow to the runner (the food cost they paid plus the delivery ",
                "fee), mark the order `COMPLETED`, get the runner's payout account and pay the ",
                "released amount out to it. A runner with no payout account does not hold the saga ",
                "up: the payout waits and goes out when they add one; a payout declined on every ",
                "attempt is parked for an operator (`GET /api/payouts`). The runner reporting ",
                "`DELIVERED` starts the same ",
                "saga, so this route is needed only if that did not happen; an order completes once, ",
                "so calling it again (or after the `DELIVERED` report) answers with the same saga and ",
                "nothing is captured or paid twice."
            ),
            "requestBody": request_body(
                "The order to complete.",
                schema_ref("CompleteOrderRequest"),
                json!({ "orderId": ORDER_ID })
            ),
            "responses": responses
        }
    })
}

/// What `GET /saga/complete/orderUpdateStream/{saga_id}` sends for a
/// complete-order saga that runs to the end.
fn saga_stream_example() -> String {
    let steps = [
        (1, "started", "STARTED", "2026-11-21T12:35:00Z"),
        (2, "payment_captured", "STARTED", "2026-11-21T12:35:01Z"),
        (3, "funds_released", "STARTED", "2026-11-21T12:35:01Z"),
        (4, "order_completed", "STARTED", "2026-11-21T12:35:02Z"),
        (5, "payout_account_retrieved", "STARTED", "2026-11-21T12:35:02Z"),
        (6, "payout_settled", "STARTED", "2026-11-21T12:35:03Z"),
        (7, "completed", "COMPLETED", "2026-11-21T12:35:03Z"),
    ];
    let mut text = String::new();
    for (sequence, step, status, at) in steps {
        text.push_str(&format!(
            "event: update\ndata: {{\"saga_id\":\"{COMPLETE_SAGA_ID}\",\"saga_type\":\"complete_order\",\"sequence\":{sequence},\"step\":\"{step}\",\"status\":\"{status}\",\"at\":\"{at}\"}}\n\n"
        ));
    }
    text.push_str(&format!(
        "event: end\ndata: {{\"saga_id\":\"{COMPLETE_SAGA_ID}\",\"status\":\"COMPLETED\"}}\n\n"
    ));
    text
}

fn saga_update_stream_path() -> Value {
    let ok = json!({
        "description": concat!(
            "A stream of server-sent events. An `update` event for each step the saga records, ",
            "from its first, whose data is a `SagaUpdateEvent`; then, once the saga reaches a final ",
            "status, an `end` event whose data is a `SagaEndEvent`, and the stream closes. Lines ",
            "starting with `:` keep the connection alive and carry nothing. Should the saga become ",
            "unreadable mid-stream, an `error` event carries the message and the stream closes."
        ),
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One server-sent event: `event:` and `data:` lines, a blank line after each event. `update` and `end` carry the saga as JSON in `data`; `error` carries a message.",
                    "required": ["data"],
                    "properties": {
                        "data": { "type": "string", "contentMediaType": "application/json" },
                        "event": { "type": "string", "enum": ["update", "end", "error", "message"] },
                        "id": { "type": "string" },
                        "retry": { "type": "integer" }
                    }
                },
                "example": saga_stream_example()
            }
        }
    });
    let responses = store_responses(vec![
        ("200", ok),
        ("400", error("`saga_id` is not a UUID.")),
        (
            "404",
            error("No saga has this id, after waiting up to 3 seconds for a saga started a moment ago."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["sagas"],
            "operationId": "streamSagaUpdates",
            "summary": "Follow a saga live",
            "description": concat!(
                "Server-sent events of a saga's progress, for a saga of any type (create-order, ",
                "accept-order, complete-order). Every step the saga has recorded is sent, the earlier ",
                "ones first, so none is missed however fast the saga runs; each `update` carries the ",
                "saga's status after that step. The stream ends with an `end` event once the saga is ",
                "`COMPLETED`, `COMPENSATED`, `FAILED` or `CANCELLED`; a saga already final sends its ",
                "whole history, then `end`. A saga started a moment ago (e.g. by a `DELIVERED` ",
                "report) may not be recorded yet, so an unknown id is waited for up to 3 seconds ",
                "before the answer is 404."
            ),
            "parameters": [saga_id_param()],
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

fn rating_path() -> Value {
    let created = answer_with_example(
        "The rating is recorded; the answer gives the rated user's new average in the role they played.",
        schema_ref("RatingRecorded"),
        json!({ "success": true, "user_id": "runner_456", "role": "runner", "score": 5, "rating": 4.5, "ratings": 2 }),
    );
    let responses = store_responses(vec![
        ("201", created),
        (
            "400",
            error("`order_id` is not a UUID, or the body is not JSON (or is sent without `Content-Type: application/json`)."),
        ),
        ("404", error("No order has this id, or the user to rate does not exist.")),
        (
            "409",
            error("The order is not `COMPLETED`, the rater is neither its customer nor its runner, or the rater has already rated for this order; the message says why."),
        ),
        (
            "422",
            error("`rater_id` or `score` is missing, `rater_id` is not a valid user id, or `score` is not a whole number from 1 to 5."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["ratings"],
            "operationId": "rateOrder",
            "summary": "Rate the other party of a completed order",
            "description": concat!(
                "Once the order is `COMPLETED`, its customer rates the runner and its runner rates the ",
                "customer, once each per order; the order says who is who. A user's rating in a role ",
                "is the average of every rating received in that role, shown on the user ",
                "(`runner_rating`, `customer_rating`)."
            ),
            "parameters": [order_id_param()],
            "requestBody": request_body(
                "Who rates, and the score.",
                schema_ref("RatingRequest"),
                json!({ "rater_id": "cust_123", "score": 5 })
            ),
            "responses": responses
        }
    })
}

fn refund_path() -> Value {
    let started = answer_with_example(
        "The refund saga has started: `GET /api/sagas/{saga_id}` follows it, and the payment shows the refund once made.",
        schema_ref("RefundStarted"),
        json!({ "success": true, "saga_id": SAGA_ID, "refund_id": SAGA_ID, "order_id": ORDER_ID, "amount_cents": 450, "status": "STARTED" }),
    );
    let responses = store_responses(vec![
        ("202", started),
        (
            "400",
            error("The `Idempotency-Key` header is missing (code `bad_request`): a refund double-clicked without a key would refund twice, so a refund is refused without one. Or `order_id` is not a UUID, or the body is not JSON (or is sent without `Content-Type: application/json`)."),
        ),
        ("404", error("No order has this id.")),
        (
            "409",
            error("The order's payment is not captured (nothing to refund yet, or it was voided or declined) or is refunded in full, or the Idempotency-Key started another refund."),
        ),
        (
            "422",
            error("`amount` is missing, not an amount, not more than zero, or more than what is left to refund of the capture; the message says how much is left."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["payments"],
            "operationId": "refundOrder",
            "summary": "Refund part or all of an order's captured payment",
            "description": concat!(
                "Any number of refunds, each at most what is left of the capture. A refund saga ",
                "refunds at the card processor under the refund's id, so a retried request (same ",
                "`Idempotency-Key`) or a redelivered command refunds once; the payment becomes ",
                "`PARTIALLY_REFUNDED` or `REFUNDED`, and the customer is told (`refund_issued`). A ",
                "processor that is away is retried until it answers; a refusal ends the saga `FAILED`. ",
                "The `Idempotency-Key` header is required here: without one, a double-clicked ",
                "refund would refund twice. A refund made after the runner was paid out is the ",
                "platform's: the runner keeps what they were paid (see `GET /api/ledger`)."
            ),
            IDEMPOTENCY_KEY_REQUIRED: true,
            "parameters": [order_id_param()],
            "requestBody": request_body(
                "How much to refund, and why.",
                schema_ref("RefundRequest"),
                json!({ "amount": "4.50", "reason": "the drink was missing" })
            ),
            "responses": responses
        }
    })
}

fn refund_request_schema() -> Value {
    object(
        "The body of `POST /api/orders/{order_id}/refunds`.",
        &["amount"],
        vec![
            (
                "amount",
                described_ref(
                    "AmountInput",
                    "How much to refund, in major units: more than zero, at most what is left of the capture.",
                ),
            ),
            (
                "reason",
                json!({ "type": ["string", "null"], "maxLength": MAX_TEXT_CHARS, "description": "Why; the customer is told. `refunded by an operator` when left out." }),
            ),
        ],
    )
}

fn refund_started_schema() -> Value {
    object(
        "A refund saga started.",
        &["success", "saga_id", "refund_id", "order_id", "amount_cents", "status"],
        vec![
            ("success", json!({ "type": "boolean" })),
            ("saga_id", uuid("The refund saga.")),
            ("refund_id", uuid("The refund, as the payment records it.")),
            ("order_id", uuid("The order refunded.")),
            ("amount_cents", cents("The amount to refund, in cents.")),
            ("status", schema_ref("SagaStatus")),
        ],
    )
}

/// The example order's story as the trace index tells it: the create-order saga's
/// first command and the order service's answer.
fn trace_example() -> Value {
    let command = json!({
        "topic": "order_commands",
        "partition": 3,
        "offset": 41,
        "key": ORDER_ID,
        "logged_at": "2026-11-21T12:00:00.012Z",
        "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "type": "create_order",
        "correlation_id": SAGA_ID,
        "causation_id": null,
        "source": "saga-orchestrator",
        "timestamp": "2026-11-21T12:00:00.010Z",
        "payload": { "order_id": ORDER_ID, "customer_id": "cust_123", "order_details": place_order_example()["order_details"] },
        "since_start_ms": 0
    });
    let event = json!({
        "topic": "order_events",
        "partition": 3,
        "offset": 57,
        "key": ORDER_ID,
        "logged_at": "2026-11-21T12:00:00.047Z",
        "id": "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a",
        "type": "order.created",
        "correlation_id": SAGA_ID,
        "causation_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "source": "order-service",
        "timestamp": "2026-11-21T12:00:00.045Z",
        "payload": {
            "order_id": ORDER_ID,
            "customer_id": "cust_123",
            "items": [{ "name": "Burger", "price_cents": 1299, "quantity": 1 }],
            "store_location": null,
            "delivery_location": "North Campus",
            "food_fee_cents": 1299,
            "delivery_fee_cents": 0,
            "total_cents": 1299,
            "currency": "SGD",
            "status": "PENDING",
            "created_at": "2026-11-21T12:00:00.045Z"
        },
        "since_start_ms": 35
    });
    json!({ "id": ORDER_ID, "records": [command, event] })
}

fn trace_description() -> &'static str {
    concat!(
        "Every record on every topic about the order, commands and events alike, readable or not, ",
        "each with where it is in the log, its envelope and its payload. The records are in causal ",
        "and time order: sorted by when each happened, each moved after the message that caused ",
        "it. The trace index (role `trace`) files every record under its order and its correlation ",
        "id as the log is consumed, so a trace is one lookup, not a scan; a record appears a moment ",
        "after it is published. Given a saga id, the answer is the story of the order(s) that saga ",
        "touched."
    )
}

/// `GET /api/orders/{id}/trace` and its alias `GET /api/trace/{id}`.
fn trace(operation_id: &str, summary: &str, description: String) -> Value {
    let ok = answer_with_example(
        "The story: every record indexed under the id, in causal and time order.",
        schema_ref("Trace"),
        trace_example(),
    );
    let responses = store_responses(vec![
        ("200", ok),
        (
            "404",
            error("Nothing is indexed under the id (\"nothing is indexed under ...; give an order id or a saga id\"): it is neither an order id nor a saga id, or its first record is not indexed yet."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["debugging"],
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": [path_param(
                "id",
                "An order id, or a saga id (then the story of the order(s) that saga touched).",
                json!({ "type": "string" })
            )],
            "responses": responses
        }
    })
}

fn order_trace_path() -> Value {
    trace("traceOrder", "An order's whole story", trace_description().to_string())
}

fn trace_path() -> Value {
    trace(
        "trace",
        "The whole story of an order or a saga",
        format!(
            "The same as `GET /api/orders/{{id}}/trace`, for any id. {}",
            trace_description()
        ),
    )
}

fn notification_example() -> Value {
    json!({
        "notification_id": NOTIFICATION_ID,
        "user_id": "cust_123",
        "order_id": ORDER_ID,
        "kind": "order_accepted",
        "title": "Runner on the way",
        "message": "Bob Lim accepted your order.",
        "created_at": "2026-11-21T12:05:00Z",
        "read": false,
        "read_at": null
    })
}

fn send_notification_path() -> Value {
    let example = json!({
        "user_id": "runner_456",
        "title": "Gate closed",
        "message": "The north gate is closed tonight; use the east entrance.",
        "order_id": ORDER_ID,
        "notification_id": "4a3b2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"
    });
    let responses = store_responses(vec![
        ("201", answer("The notification was created.", schema_ref("Notification"))),
        (
            "200",
            answer("A notification with this `notification_id` already exists: it is answered as it stands and nothing is sent twice.", schema_ref("Notification")),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        (
            "422",
            error("`user_id` or `message` is missing, the message is empty, or a field is invalid (e.g. `user_id` is not a valid user id, `order_id` or `notification_id` is not a UUID)."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["notifications"],
            "operationId": "sendNotification",
            "summary": "Send a notification",
            "description": "Tells a user something outside the flow of an order's events. Name the notification with `notification_id` to make the request safe to repeat.",
            "requestBody": request_body("Whom to tell, and what.", schema_ref("SendNotificationRequest"), example),
            "responses": responses
        }
    })
}

fn user_notifications_path() -> Value {
    let mut parameters = vec![
        user_id_param(),
        query_param(
            "unread_only",
            "Only the notifications not read yet.",
            json!({ "type": "boolean", "default": false }),
        ),
    ];
    parameters.extend(paging(20, 200));
    let responses = store_responses(vec![
        (
            "200",
            answer_with_example(
                "A page of the user's notifications, newest first, and how many are unread in all.",
                schema_ref("UserNotifications"),
                json!({ "user_id": "cust_123", "notifications": [notification_example()], "unread": 1, "page": 1, "page_size": 20 }),
            ),
        ),
        (
            "400",
            error("`user_id` is not a valid user id, `unread_only` is not a boolean, or `page`/`page_size` is not an integer."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["notifications"],
            "operationId": "listUserNotifications",
            "summary": "List a user's notifications",
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn order_notifications_path() -> Value {
    let mut parameters = vec![order_id_param()];
    parameters.extend(paging(50, 500));
    let responses = store_responses(vec![
        (
            "200",
            answer(
                "A page of everything told about the order, to anyone, oldest first.",
                schema_ref("OrderNotifications"),
            ),
        ),
        (
            "400",
            error("`order_id` is not a UUID, or `page`/`page_size` is not an integer."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["notifications"],
            "operationId": "listOrderNotifications",
            "summary": "List an order's notifications",
            "description": "The notifications about an order, to its customer and its runner alike, oldest first: the order's story as they were told it.",
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn mark_notification_read_path() -> Value {
    let mut read = notification_example();
    read["read"] = json!(true);
    read["read_at"] = json!("2026-11-21T12:06:00Z");
    let responses = store_responses(vec![
        (
            "200",
            answer_with_example(
                "The notification, now read. Marking a read notification again changes nothing.",
                schema_ref("Notification"),
                read,
            ),
        ),
        ("400", error("`notification_id` is not a UUID.")),
        ("404", error("No notification has this id.")),
    ]);
    json!({
        "post": {
            "tags": ["notifications"],
            "operationId": "markNotificationRead",
            "summary": "Mark a notification read",
            "parameters": [path_param(
                "notification_id",
                "The notification's id.",
                json!({ "type": "string", "format": "uuid" })
            )],
            "responses": responses
        }
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
        ("200", answer("The payment is `AUTHORIZED`. Repeating the same request answers with the payment as it stands; nothing is charged twice.", schema_ref("Payment"))),
        ("400", error("The body is not JSON, or is sent without `Content-Type: application/json`.")),
        ("402", answer("The processor declined the card: the payment is `FAILED` and `failure_reason` says why.", schema_ref("Payment"))),
        ("409", error("The order's payment was already attempted for another amount, customer, currency or payment method (an order has one payment), or the processor refused the operation for good.")),
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

fn payout_example() -> Value {
    json!({
        "order_id": ORDER_ID,
        "runner_id": "runner_456",
        "amount_cents": 1299,
        "status": "SENT",
        "payout_account": "acct_runner_456",
        "reference": format!("po_payout_{ORDER_ID}_1"),
        "attempts": 1,
        "last_error": null,
        "requested_at": "2026-11-21T12:35:03Z",
        "updated_at": "2026-11-21T12:35:03Z",
        "requested": true
    })
}

fn payouts_description() -> &'static str {
    concat!(
        "A payout is one per order: what the escrow released to the order's runner, sent to their ",
        "payout account by the complete-order saga once the order is `COMPLETED`. It is `WAITING` ",
        "while the runner has no payout account, and goes out by itself when they add one (a ",
        "`payout_account` in `PUT` or `PATCH /users/{user_id}`). A transfer the processor declines ",
        "is tried 3 times in all, then the payout is `PARKED` for an operator, who retries it with ",
        "`POST /api/payouts/{order_id}/retry`. The sandbox processor sends to any account but one ",
        "starting with `acct_declined`, which it declines."
    )
}

fn payouts_path() -> Value {
    let mut parameters = vec![
        query_param(
            "status",
            "Only payouts in this status (case-insensitive; anything else is a 400).",
            schema_ref("PayoutStatus"),
        ),
        query_param(
            "runner_id",
            "Only payouts to this runner. A runner or customer may name only themselves (anyone else is a 403); an operator may name anyone.",
            schema_ref("UserId"),
        ),
        query_param(
            "order_id",
            "Only the payout of this order.",
            json!({ "type": "string", "format": "uuid" }),
        ),
    ];
    parameters.extend(paging(20, 200));
    let responses = store_responses(vec![
        (
            "200",
            answer_with_example(
                "A page of payouts.",
                schema_ref("PayoutList"),
                json!({ "payouts": [payout_example()], "page": 1, "page_size": 20 }),
            ),
        ),
        (
            "400",
            error("`status` is not a payout status, `runner_id` is not a valid user id, `order_id` is not a UUID, or `page`/`page_size` is out of its range."),
        ),
        (
            "403",
            error("`runner_id` names someone other than the caller, who is not an operator (code `forbidden`)."),
        ),
    ]);
    json!({
        "get": {
            "tags": ["payments"],
            "operationId": "listPayouts",
            "summary": "List payouts",
            "description": format!(
                "Payouts by status, runner and order; the filters combine. Operators see every payout; a runner or customer sees only the payouts to themselves. {}",
                payouts_description()
            ),
            "parameters": parameters,
            "responses": responses
        }
    })
}

fn retry_payout_path() -> Value {
    let mut parked_again = payout_example();
    parked_again["status"] = json!("PARKED");
    parked_again["payout_account"] = json!("acct_declined_456");
    parked_again["reference"] = json!(null);
    parked_again["attempts"] = json!(4);
    parked_again["last_error"] = json!("the payout account declined the transfer (closed account)");
    parked_again["updated_at"] = json!("2026-11-22T09:00:00Z");
    let ok = answer_with_example(
        "The payout after the attempt: `SENT`, or `PARKED` again with `attempts` one higher and `last_error` saying why.",
        schema_ref("Payout"),
        parked_again,
    );
    let responses = store_responses(vec![
        ("200", ok),
        ("400", error("`order_id` is not a UUID.")),
        ("404", error("No payout for this order.")),
        (
            "409",
            error("The payout is already `SENT`, or `WAITING` while the runner still has no payout account: only a parked payout is retried, or a waiting one once the runner has an account."),
        ),
    ]);
    json!({
        "post": {
            "tags": ["payments"],
            "operationId": "retryPayout",
            "summary": "Retry a parked payout",
            "description": format!(
                "An operator retries a `PARKED` payout once, to the runner's current payout account, or to the account it was declined by when the runner has none; a `WAITING` payout whose runner has an account by now goes out the same way. The answer is the payout after that one attempt. {}",
                payouts_description()
            ),
            "parameters": [order_id_param()],
            "responses": responses
        }
    })
}

fn ledger_example() -> Value {
    let entry = |source: &str, debit: &str, credit: &str, at: &str| {
        json!({
            "source": source,
            "kind": source,
            "debit": debit,
            "credit": credit,
            "amount_cents": 1299,
            "occurred_at": at
        })
    };
    json!({
        "order_id": ORDER_ID,
        "customer_id": "cust_123",
        "runner_id": "runner_456",
        "entries": [
            entry("payment.authorized", "authorizations", "customer_card", "2026-11-21T12:00:00Z"),
            entry("payment.captured", "escrow", "authorizations", "2026-11-21T12:35:01Z"),
            entry("escrow.released", "runner_payable", "escrow", "2026-11-21T12:35:01Z"),
            entry("payout.sent", "paid_out", "runner_payable", "2026-11-21T12:35:03Z")
        ],
        "balances": {
            "authorizations": 0,
            "customer_card": -1299,
            "escrow": 0,
            "paid_out": 1299,
            "runner_payable": 0
        }
    })
}

fn ledger_path() -> Value {
    let mut order_id = query_param(
        "order_id",
        "The order whose ledger to show.",
        json!({ "type": "string", "format": "uuid" }),
    );
    order_id["required"] = json!(true);
    let responses = store_responses(vec![
        (
            "200",
            answer_with_example(
                "The order's entries, in the order they were posted, and the balance of each account they touch.",
                schema_ref("OrderLedger"),
                ledger_example(),
            ),
        ),
        ("400", error("`order_id` is missing or not a UUID.")),
        (
            "403",
            error("The caller is not an operator, nor the order's customer or runner (code `forbidden`). A caller who is not an operator learns nothing of an order that is not theirs, not even whether anything is posted for it."),
        ),
        ("404", error("Nothing is posted for the order yet.")),
    ]);
    json!({
        "get": {
            "tags": ["ledger"],
            "operationId": "getLedger",
            "summary": "An order's ledger",
            "description": concat!(
                "Every money event of the order as a balanced entry: an amount debited to one ",
                "account and credited to another. `payment.authorized` debits `authorizations` and ",
                "credits `customer_card`; `payment.voided` debits `customer_card` and credits ",
                "`authorizations`; `payment.captured` debits `escrow` and credits `authorizations`; ",
                "`escrow.released` debits `runner_payable` and credits `escrow`; `payout.sent` debits ",
                "`paid_out` and credits `runner_payable`; `payment.refunded` debits `customer_card` ",
                "and credits `refunds` (the platform bears a refund made after the runner was paid: ",
                "the runner keeps what they were paid). A balance is debits minus credits, so all ",
                "the balances of an order sum to zero. Each entry is posted once, however often its ",
                "event is delivered. Operators, and the order's customer and runner, may read it."
            ),
            "parameters": [order_id],
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
            error("A missing field, an invalid id, an amount with more than two decimals, a negative fee, or a total that is not more than zero or is above the per-order limit (500.00 by default)."),
        ),
        (
            "409",
            error("Funds for this order were already held for another amount, customer or currency, or released, or refunded (code `conflict`)."),
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
                "The funds are `RELEASED` to the runner. Repeating the request for the same runner answers the same.",
                schema_ref("Escrow"),
            ),
        ),
        (
            "400",
            error("The body is not JSON, or is sent without `Content-Type: application/json`."),
        ),
        ("404", error("No order has this id.")),
        (
            "409",
            error("The order is not `DELIVERED` (or `COMPLETED`), `runner_id` is not its assigned runner, its payment is not captured, no funds are held for it, or they are already refunded or released to someone else: money moves only to the order's own runner, and only out of money captured."),
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
            error(&format!("Both or neither of `scheduled_time` and `delay_seconds` are given, `delay_seconds` is negative, `event_type` or `entity_id` is missing or empty, `payload` nests deeper than {} levels, or a field has the wrong type (e.g. `scheduled_time` is not RFC 3339, `timer_id` is not a UUID).", campusg_domain::limits::MAX_JSON_DEPTH)),
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

fn parked_key_param() -> Value {
    path_param(
        "key",
        "The parked key: the record key its records share (an order id, a user id).",
        json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}),
    )
}

fn group_scope_param() -> Value {
    query_param(
        "group",
        "Only in this consumer group; in every group that parked the key when left out.",
        json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}),
    )
}

fn parked_keys_path() -> Value {
    let ok = answer(
        "The keys parked now, in every consumer group.",
        schema_ref("ParkedKeyList"),
    );
    json!({
        "get": {
            "tags": ["debugging"],
            "operationId": "listParkedKeys",
            "summary": "Parked keys",
            "description": "A record that cannot be handled parks its key for its consumer group: it and every later record of that key are held, in order, while other keys flow. Each parked key with its first and last failure and the records it holds, oldest park first; `campusg dlq list` shows the same.",
            "parameters": paging(PARKED_KEYS_PAGE.0, PARKED_KEYS_PAGE.1),
            "responses": store_responses(vec![
                ("200", ok),
                ("400", error("`page` or `page_size` is not an integer in its range.")),
            ])
        }
    })
}

fn retry_parked_key_path() -> Value {
    let ok = answer(
        "The groups that will handle the key's held records again.",
        schema_ref("ParkedKeyAction"),
    );
    json!({
        "post": {
            "tags": ["debugging"],
            "operationId": "retryParkedKey",
            "summary": "Retry a parked key",
            "description": "Once the cause is fixed: each consumer group that parked the key handles its held records again, oldest first, and frees the key when none is left; the first that still fails parks it again. `campusg dlq retry <key>` does the same.",
            "parameters": [parked_key_param(), group_scope_param()],
            "responses": store_responses(vec![
                ("200", ok),
                ("404", error("The key is parked in no consumer group.")),
                ("422", error("The key is over 200 characters.")),
            ])
        }
    })
}

fn drop_parked_key_path() -> Value {
    let ok = answer(
        "The groups whose held records of the key were dropped.",
        schema_ref("ParkedKeyAction"),
    );
    json!({
        "post": {
            "tags": ["debugging"],
            "operationId": "dropParkedKey",
            "summary": "Drop a parked key's records",
            "description": "Drops the key's held records, which are then never handled, and frees the key; who and why stay in the key's history. `campusg dlq drop <key> --reason ...` does the same.",
            "parameters": [parked_key_param(), group_scope_param()],
            "requestBody": request_body(
                "Why, for the record; a blank reason is `dropped by an operator`.",
                schema_ref("DropParkedKeyRequest"),
                json!({ "reason": "a test order; nothing to recover" })
            ),
            "responses": store_responses(vec![
                ("200", ok),
                ("404", error("The key is parked in no consumer group.")),
                ("409", error("The key is being retried in a group; nothing was dropped in any group.")),
                ("422", error("The body is JSON of the wrong shape, the reason is over 1000 characters, or the key over 200.")),
            ])
        }
    })
}

fn parked_key_schema() -> Value {
    let held = object(
        "One held record: where it was read and its type, when readable.",
        &["topic", "partition", "offset"],
        vec![
            ("topic", string("Its topic.")),
            ("partition", integer("Its partition.")),
            ("offset", integer("Its offset.")),
            (
                "type",
                nullable_string("Its message type, or null when it is not readable."),
            ),
        ],
    );
    object(
        "A key parked in one consumer group.",
        &["service", "group", "key", "status", "first_failure", "held"],
        vec![
            ("service", string("The service whose store keeps it.")),
            ("group", string("The consumer group that parked it.")),
            ("key", string("The record key.")),
            (
                "status",
                json!({"type": "string", "enum": ["PARKED", "RETRYING"], "description": "PARKED until an operator retries; RETRYING while its records are handled again."}),
            ),
            ("parked_at", nullable_timestamp("When it was parked.")),
            (
                "first_failure",
                nullable_string("Why the first record could not be handled."),
            ),
            ("last_failure", nullable_string("Why the latest attempt failed.")),
            (
                "held",
                json!({"type": "array", "description": "The records held, oldest first.", "items": held}),
            ),
        ],
    )
}

// ---------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------

fn schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    let entries: Vec<(&str, Value)> = vec![
        ("Error", error_schema()),
        ("ParkedKey", parked_key_schema()),
        (
            "ParkedKeyList",
            page_of(
                "A page of the keys parked now, in every group.",
                "parked_keys",
                "ParkedKey",
            ),
        ),
        (
            "ParkedKeyAction",
            object(
                "What was done to a parked key.",
                &["key", "groups", "status", "by"],
                vec![
                    ("key", string("The key.")),
                    (
                        "groups",
                        json!({"type": "array", "items": {"type": "string"}, "description": "The consumer groups it applied in."}),
                    ),
                    ("status", json!({"type": "string", "enum": ["retrying", "dropped"]})),
                    ("by", string("The operator who asked.")),
                ],
            ),
        ),
        (
            "DropParkedKeyRequest",
            object(
                "Why the records are dropped.",
                &[],
                vec![(
                    "reason",
                    json!({"type": "string", "maxLength": MAX_TEXT_CHARS, "description": "Why, for the record."}),
                )],
            ),
        ),
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
        ("DeliveryStage", delivery_stage_schema()),
        ("DeliveryStageRequest", delivery_stage_request_schema()),
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
        ("CompleteOrderRequest", complete_order_request_schema()),
        ("CompleteOrderAccepted", complete_order_accepted_schema()),
        ("SagaUpdateEvent", saga_update_event_schema()),
        ("SagaEndEvent", saga_end_event_schema()),
        ("User", user_schema()),
        ("CreateUserRequest", create_user_request_schema()),
        ("UpdateUserRequest", update_user_request_schema()),
        ("UserList", page_of("A page of users.", "users", "User")),
        ("OrderRole", order_role_schema()),
        ("RatingRequest", rating_request_schema()),
        ("RefundRequest", refund_request_schema()),
        ("RefundStarted", refund_started_schema()),
        ("RatingRecorded", rating_recorded_schema()),
        ("Notification", notification_schema()),
        ("SendNotificationRequest", send_notification_request_schema()),
        ("UserNotifications", user_notifications_schema()),
        ("OrderNotifications", order_notifications_schema()),
        ("PaymentStatus", payment_status_schema()),
        ("Payment", payment_schema()),
        ("AuthorizePaymentRequest", authorize_payment_request_schema()),
        ("ReleasePaymentRequest", release_payment_request_schema()),
        ("CapturePaymentRequest", capture_payment_request_schema()),
        ("PaymentList", page_of("A page of payments.", "payments", "Payment")),
        ("PayoutStatus", payout_status_schema()),
        ("Payout", payout_schema()),
        ("PayoutList", page_of("A page of payouts.", "payouts", "Payout")),
        ("LedgerAccount", ledger_account_schema()),
        ("LedgerEntry", ledger_entry_schema()),
        ("OrderLedger", order_ledger_schema()),
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
        ("TracedRecord", traced_record_schema()),
        ("Trace", trace_schema()),
    ];
    for (name, schema) in entries {
        schemas.insert(name.to_string(), schema);
    }
    schemas
}

fn error_schema() -> Value {
    let codes = json!({
        "type": "string",
        "enum": ["bad_request", "malformed_json", "unauthorized", "forbidden", "not_found", "conflict", "payload_too_large", "rule_violation", "too_many_requests", "retry", "internal"],
        "description": "What went wrong: `bad_request`/`malformed_json` (400), `unauthorized` (401), `forbidden` (403), `not_found` (404), `conflict` (409), `payload_too_large` (413), `rule_violation` (422), `too_many_requests` (429), `retry` (503), `internal` (500)."
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
        "description": "An amount in major units (dollars), as a JSON number or a decimal string; at most two decimals (more are refused, never rounded), at most 10000.00.",
        "oneOf": [
            { "type": "number", "minimum": 0, "maximum": 10000 },
            { "type": "string", "maxLength": MAX_AMOUNT_CHARS, "pattern": "^[0-9]{1,5}(\\.[0-9]{1,2})?$" }
        ],
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
                json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "description": "What to buy." }),
            ),
            ("price", described_ref("AmountInput", "The price of one, at least 0.")),
            (
                "quantity",
                json!({ "type": "integer", "minimum": 1, "maximum": MAX_ITEM_QUANTITY, "description": "How many." }),
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
                json!({ "type": "array", "minItems": 1, "maxItems": MAX_ITEMS_PER_ORDER, "items": schema_ref("FoodItem"), "description": "What to buy; the whole order costs at most 10000.00." }),
            ),
            (
                "storeLocation",
                json!({ "type": "string", "maxLength": MAX_NAME_CHARS, "description": "Where to buy it, if it matters." }),
            ),
            (
                "deliveryLocation",
                json!({ "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "description": "Where to deliver." }),
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
        "The answer to a runner accepting an order, giving it back, or reporting a delivery stage: the order as the decision left it.",
        &["success", "saga_id", "order"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            (
                "saga_id",
                uuid("The accept-order saga of this acceptance round: it stops the acceptance timer, or restarts it when the order is given back. For a `DELIVERED` report, the complete-order saga the report started."),
            ),
            ("order", schema_ref("Order")),
        ],
    )
}

fn delivery_stage_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["ON_SITE", "PURCHASED", "COLLECTED", "ON_THE_WAY", "DELIVERED"],
        "description": "A delivery stage the runner reports, in this order after `ACCEPTED`: at the store (`ON_SITE`), food bought (`PURCHASED`), food picked up (`COLLECTED`), heading to the customer (`ON_THE_WAY`), handed over (`DELIVERED`)."
    })
}

fn delivery_stage_request_schema() -> Value {
    object(
        "The body of `POST /api/orders/{order_id}/status`.",
        &["runner_id", "status"],
        vec![
            (
                "runner_id",
                described_ref("UserId", "The runner reporting: the order's assigned runner."),
            ),
            (
                "status",
                described_ref(
                    "DeliveryStage",
                    "The stage reached: the one after the order's current status, or the current one again.",
                ),
            ),
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
        "enum": ["create_order", "get_payment_info", "authorize_payment", "hold_funds", "mark_order_created", "start_timer", "compensate", "done", "stop_timer", "restart_timer", "capture_payment", "release_escrow", "mark_order_completed", "get_payout_account", "pay_out", "refund_payment"],
        "description": concat!(
            "The step a saga is at. A create-order saga runs `create_order`, `get_payment_info`, ",
            "`authorize_payment`, `hold_funds`, `mark_order_created` and `start_timer` (step 6: start ",
            "the 30-minute acceptance timer; the saga is `COMPLETED` once the timer has started), then ",
            "`done`; `compensate` while it undoes earlier steps. An accept-order saga runs `stop_timer` ",
            "(stop the acceptance timer), then `done`; `restart_timer` when the runner gives the order ",
            "back and a fresh acceptance timer starts. A complete-order saga runs `capture_payment` ",
            "(the pivot), `release_escrow` (release the escrow to the runner), `mark_order_completed`, ",
            "`get_payout_account` (ask the user service for the runner's payout account: ",
            "`payout_account_retrieved` or `payout_account_missing`) and `pay_out` (pay the released ",
            "amount out to it: `payout_settled`, with the payout `SENT`, `WAITING` for an account, or ",
            "`PARKED` for an operator), then `done`; it never undoes a capture. A refund saga runs ",
            "`refund_payment`, then `done`."
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
                json!({ "type": "string", "description": "What happened.", "examples": ["create_order_saga.started", "create_order_saga.payment_authorized", "create_order_saga.compensation_started", "accept_order_saga.started", "complete_order_saga.payment_captured", "complete_order_saga.payout_settled"] }),
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
        "captured_cents": null,
        "payout_cents": null,
        "pending_compensations": [],
        "anomalies": [],
        "created_at": "2026-11-21T12:00:00Z",
        "updated_at": "2026-11-21T12:00:01Z"
    })
}

fn saga_type_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["create_order", "accept_order", "complete_order", "refund_order"],
        "description": "`create_order`: places an order (payment, escrow, acceptance timer) and undoes it if the order is cancelled before a runner accepts. `accept_order`: follows one runner's acceptance of an order (stops the acceptance timer, or starts a fresh one if the runner gives the order back). `complete_order`: completes a delivered order (captures the payment, releases the escrow to the runner, marks the order `COMPLETED`, then pays the runner out to their payout account); an order has at most one. `refund_order`: an operator's refund of part or all of a captured payment."
    })
}

fn saga_schema() -> Value {
    let schema = object(
        concat!(
            "A create-order, accept-order or complete-order saga. Fields a saga's type does not use ",
            "are null (an accept-order saga has no customer, amounts, payment, escrow or ",
            "compensations; a complete-order saga has no customer, total, payment, escrow, timer or ",
            "compensations, but has `captured_cents`, `payout_cents`, `payout_account` and ",
            "`payout_status`). `history` is present only in `GET /api/sagas/{saga_id}`."
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
            "captured_cents",
            "payout_cents",
            "pending_compensations",
            "created_at",
            "updated_at",
        ],
        vec![
            ("saga_id", uuid("The saga's id.")),
            ("saga_type", schema_ref("SagaType")),
            ("order_id", uuid("The order the saga places (create-order), follows (accept-order) or completes (complete-order).")),
            (
                "customer_id",
                json!({ "anyOf": [schema_ref("UserId"), { "type": "null" }], "description": "The customer who placed the order (create-order sagas)." }),
            ),
            (
                "runner_id",
                json!({ "type": ["string", "null"], "description": "The runner who accepted the order (accept-order sagas), or who delivered it and is paid (complete-order sagas)." }),
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
                "captured_cents",
                json!({ "type": ["integer", "null"], "description": "What the saga captured from the customer's card, in cents (complete-order sagas; 0 until the capture)." }),
            ),
            (
                "payout_cents",
                json!({ "type": ["integer", "null"], "description": "What the saga released from escrow to the runner, in cents (complete-order sagas; 0 until the release)." }),
            ),
            (
                "payout_account",
                nullable_string("The runner's payout account, once the user service named one (complete-order sagas; null while the runner has none)."),
            ),
            (
                "payout_status",
                json!({ "type": ["string", "null"], "enum": ["SENT", "WAITING", "PARKED", null], "description": "Where the runner's payout ended for the saga (complete-order sagas): `SENT`, `WAITING` for a payout account, or `PARKED` for an operator; null until the payment service answered. `GET /api/payouts?order_id=...` follows it after." }),
            ),
            (
                "refund_cents",
                json!({ "type": ["integer", "null"], "description": "What the saga refunds, in cents (refund sagas only)." }),
            ),
            (
                "refund_reason",
                nullable_string("Why the customer is refunded (refund sagas only)."),
            ),
            (
                "pending_compensations",
                json!({ "type": ["array", "null"], "items": schema_ref("Compensation"), "description": "Undo actions still to run (null for an accept-order saga)." }),
            ),
            (
                "anomalies",
                json!({ "type": "array", "items": { "type": "string" }, "description": "Replies the saga did not take because they disagreed with its own state (an amount, currency, customer, runner or order), each with why; an operator looks into them." }),
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

fn complete_order_request_schema() -> Value {
    object(
        "The body of `POST /saga/complete/completeOrder`. `order_id` is accepted as an alias of `orderId`.",
        &["orderId"],
        vec![("orderId", uuid("The `DELIVERED` order to complete."))],
    )
}

fn complete_order_accepted_schema() -> Value {
    object(
        "The answer to `POST /saga/complete/completeOrder`: the order's complete-order saga.",
        &["success", "saga_id", "order_id"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            (
                "saga_id",
                uuid("The complete-order saga's id; an order has one, so it is the same however often it is started."),
            ),
            ("order_id", uuid("The order being completed.")),
        ],
    )
}

fn saga_update_event_schema() -> Value {
    object(
        "The data of an `update` event of `GET /saga/complete/orderUpdateStream/{saga_id}`: one step the saga recorded.",
        &["saga_id", "saga_type", "sequence", "step", "status", "at"],
        vec![
            ("saga_id", uuid("The saga's id.")),
            ("saga_type", schema_ref("SagaType")),
            (
                "sequence",
                integer("The step's position in the saga's history, from 1."),
            ),
            (
                "step",
                json!({ "type": "string", "description": "What the saga recorded: the history entry's event without its saga prefix.", "examples": ["started", "payment_captured", "funds_released", "order_completed", "payout_account_retrieved", "payout_account_missing", "payout_settled", "completed"] }),
            ),
            (
                "status",
                described_ref("SagaStatus", "The saga's status after this step."),
            ),
            ("at", timestamp("When the step was recorded.")),
        ],
    )
}

fn saga_end_event_schema() -> Value {
    object(
        "The data of the `end` event of `GET /saga/complete/orderUpdateStream/{saga_id}`, sent once the saga reaches a final status; the stream then closes.",
        &["saga_id", "status"],
        vec![
            ("saga_id", uuid("The saga's id.")),
            (
                "status",
                json!({ "type": "string", "enum": ["COMPLETED", "COMPENSATED", "FAILED", "CANCELLED"], "description": "The saga's final status." }),
            ),
        ],
    )
}

fn user_schema() -> Value {
    let rated_for_entry = object(
        "One order the user was rated for, and the part they played in it.",
        &["order_id", "role"],
        vec![("order_id", uuid("The order.")), ("role", schema_ref("OrderRole"))],
    );
    let rated_for = json!({
        "type": "array",
        "description": "The orders and roles the user was rated for (each is rated once).",
        "items": rated_for_entry
    });
    let schema = object(
        "A customer or runner. `email`, `phone`, `payment_method`, `payout_account` and `rated_for` are shown only to the user and to operators.",
        &[
            "user_id",
            "name",
            "customer_rating",
            "customer_ratings",
            "runner_rating",
            "runner_ratings",
            "created_at",
            "updated_at",
        ],
        vec![
            ("user_id", schema_ref("UserId")),
            ("name", string("The user's name.")),
            (
                "email",
                json!({ "type": "string", "pattern": "^[^@ ]+@[^@ ]*\\.[^@ ]*$", "maxLength": MAX_NAME_CHARS, "description": "`local@domain`, with a dot in the domain and no space." }),
            ),
            ("phone", nullable_string("The user's phone number.")),
            (
                "payment_method",
                nullable_string(&format!(
                    "The card a customer pays with, as the processor names it. {}",
                    sandbox_methods()
                )),
            ),
            ("payout_account", nullable_string("Where a runner is paid.")),
            (
                "customer_rating",
                nullable_number(
                    "The average of the ratings received as a customer, from 1 to 5; null before the first.",
                ),
            ),
            (
                "customer_ratings",
                integer("How many ratings the user received as a customer."),
            ),
            (
                "runner_rating",
                nullable_number("The average of the ratings received as a runner, from 1 to 5; null before the first."),
            ),
            (
                "runner_ratings",
                integer("How many ratings the user received as a runner."),
            ),
            ("rated_for", rated_for),
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
            "customer_rating": null,
            "customer_ratings": 0,
            "runner_rating": null,
            "runner_ratings": 0,
            "rated_for": [],
            "created_at": "2026-11-21T11:00:00Z",
            "updated_at": null
        }),
    )
}

fn order_role_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["customer", "runner"],
        "description": "The part a user played in an order: its `customer` or its `runner`."
    })
}

fn rating_request_schema() -> Value {
    object(
        "The body of `POST /api/orders/{order_id}/rating`.",
        &["rater_id", "score"],
        vec![
            (
                "rater_id",
                described_ref(
                    "UserId",
                    "Who rates: the order's customer (rating the runner) or its runner (rating the customer).",
                ),
            ),
            (
                "score",
                json!({ "type": "integer", "minimum": 1, "maximum": 5, "description": "From 1 (worst) to 5 (best)." }),
            ),
        ],
    )
}

fn rating_recorded_schema() -> Value {
    object(
        "The answer to a rating: the rated user's new average in the role they played.",
        &["success", "user_id", "role", "score", "rating", "ratings"],
        vec![
            ("success", json!({ "type": "boolean", "const": true })),
            ("user_id", described_ref("UserId", "The user rated.")),
            (
                "role",
                described_ref("OrderRole", "The part the rated user played in the order."),
            ),
            ("score", integer("The score given.")),
            (
                "rating",
                json!({ "type": "number", "description": "The rated user's new average in this role." }),
            ),
            (
                "ratings",
                integer("How many ratings the rated user has received in this role, this one included."),
            ),
        ],
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
            (
                "email",
                json!({ "type": "string", "pattern": "^[^@ ]+@[^@ ]*\\.[^@ ]*$", "maxLength": MAX_NAME_CHARS, "description": "`local@domain`, with a dot in the domain and no space." }),
            ),
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
    let schema = object(
        "The body of `PUT`/`PATCH /users/{user_id}`: any of the user's details. The id comes from the path; naming none changes nothing.",
        &[],
        vec![
            (
                "name",
                json!({ "type": "string", "minLength": 1, "description": "Not blank." }),
            ),
            ("email", json!({ "type": "string", "pattern": "^[^@ ]+@[^@ ]*\\.[^@ ]*$", "maxLength": MAX_NAME_CHARS, "description": "`local@domain`, with a dot in the domain and no space." })),
            ("phone", string("The user's phone number.")),
            (
                "payment_method",
                string(&format!("The card a customer pays with. {}", sandbox_methods())),
            ),
            ("payout_account", string("Where a runner is paid.")),
        ],
    );
    schema
}

fn notification_schema() -> Value {
    let kind = json!({
        "type": "string",
        "description": concat!(
            "What the notification is about. The system creates `order_placed`, ",
            "`payment_authorized`, `payment_failed`, `funds_held`, `order_listed`, ",
            "`order_accepted`, `acceptance_cancelled`, `runner_on_site`, `food_purchased`, ",
            "`food_collected`, `on_the_way`, `delivered`, `receipt`, `payout`, `order_completed`, ",
            "`order_cancelled`, `order_timed_out`, `refunded`, `refund_issued`, `payment_released`, ",
            "`payout_sent` (the runner's payout went to their payout account), `payout_waiting` ",
            "(the runner's payout waits for a payout account), `payout_declined` (the runner's ",
            "payout account declined every attempt) and, to operators, `payout_parked` and ",
            "`saga_anomaly`; a notification sent through ",
            "`POST /api/notifications/send` has the kind it was given (`message` by default)."
        ),
        "examples": ["order_accepted", "receipt", "message"]
    });
    let schema = object(
        "Something a customer or runner is told.",
        &[
            "notification_id",
            "user_id",
            "order_id",
            "kind",
            "title",
            "message",
            "created_at",
            "read",
            "read_at",
        ],
        vec![
            ("notification_id", uuid("The notification's id.")),
            ("user_id", described_ref("UserId", "The user told.")),
            ("order_id", nullable_uuid("The order it is about, if any.")),
            ("kind", kind),
            ("title", string("A short headline.")),
            ("message", string("What the user is told.")),
            (
                "created_at",
                timestamp("When what it tells of happened (for one sent through the API, when it was sent)."),
            ),
            (
                "read",
                json!({ "type": "boolean", "description": "Whether the user has read it." }),
            ),
            (
                "read_at",
                nullable_timestamp("When it was first marked read; null while unread."),
            ),
        ],
    );
    with_example(schema, notification_example())
}

fn send_notification_request_schema() -> Value {
    object(
        "The body of `POST /api/notifications/send`.",
        &["user_id", "message"],
        vec![
            ("user_id", described_ref("UserId", "Whom to tell.")),
            (
                "message",
                json!({ "type": "string", "minLength": 1, "pattern": "\\S", "description": "What to tell; not blank." }),
            ),
            (
                "title",
                json!({ "type": "string", "default": "Message", "description": "A short headline." }),
            ),
            (
                "kind",
                json!({ "type": "string", "default": "message", "description": "What the notification is about." }),
            ),
            ("order_id", uuid("The order it is about, if any.")),
            (
                "notification_id",
                uuid("Names the notification, so the request is safe to repeat: the same id sent twice is one notification (the second answer is 200). A fresh id when left out."),
            ),
        ],
    )
}

fn user_notifications_schema() -> Value {
    object(
        "A page of a user's notifications.",
        &["user_id", "notifications", "unread", "page", "page_size"],
        vec![
            ("user_id", schema_ref("UserId")),
            (
                "notifications",
                array_of("Notification", "The notifications on this page, newest first."),
            ),
            (
                "unread",
                integer("How many of the user's notifications are unread, on every page."),
            ),
            ("page", integer("The page returned, from 1.")),
            ("page_size", integer("The page size used.")),
        ],
    )
}

fn order_notifications_schema() -> Value {
    object(
        "A page of the notifications about an order.",
        &["order_id", "notifications", "page", "page_size"],
        vec![
            ("order_id", uuid("The order.")),
            (
                "notifications",
                array_of("Notification", "The notifications on this page, oldest first."),
            ),
            ("page", integer("The page returned, from 1.")),
            ("page_size", integer("The page size used.")),
        ],
    )
}

fn payment_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["AUTHORIZED", "CAPTURED", "VOIDED", "PARTIALLY_REFUNDED", "REFUNDED", "FAILED"],
        "description": "`AUTHORIZED`: held on the card. `CAPTURED`: charged. `VOIDED`: released, nothing charged. `PARTIALLY_REFUNDED`: charged, part given back. `REFUNDED`: charged, all given back. `FAILED`: declined."
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
            (
                "captured_cents",
                cents("What was captured, in cents (0 until the capture)."),
            ),
            (
                "refunded_cents",
                cents("What has been refunded of the capture so far, in cents."),
            ),
            (
                "refunds",
                json!({ "type": "array", "items": { "type": "object" }, "description": "Every refund made (`payment.refunded` payloads), oldest first." }),
            ),
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

fn payout_status_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["WAITING", "SENT", "PARKED"],
        "description": "`WAITING`: the runner has no payout account yet; the payout goes out when they add one. `SENT`: the processor sent it to the runner's payout account. `PARKED`: every attempt was declined; it waits for an operator's retry."
    })
}

fn payout_schema() -> Value {
    let schema = object(
        "An order's payout to its runner (one per order). Amounts here are in cents. A payout the runner's payout account arrived for before the complete-order saga asked for it has only an account: its `status` is null and `requested` false.",
        &[
            "order_id",
            "runner_id",
            "amount_cents",
            "status",
            "payout_account",
            "reference",
            "attempts",
            "last_error",
            "requested_at",
            "updated_at",
            "requested",
        ],
        vec![
            ("order_id", nullable_uuid("The order paid out for.")),
            (
                "runner_id",
                json!({ "anyOf": [schema_ref("UserId"), { "type": "null" }], "description": "The runner paid." }),
            ),
            (
                "amount_cents",
                cents("What the escrow released to the runner, in cents (0 while only an account is known)."),
            ),
            (
                "status",
                json!({ "anyOf": [schema_ref("PayoutStatus"), { "type": "null" }], "description": "Where the payout is; null while only an account is known." }),
            ),
            (
                "payout_account",
                nullable_string("The account it goes to: the one it was sent to, the one last declined, or the one the runner added."),
            ),
            (
                "reference",
                nullable_string("The processor's reference of the transfer, once it is `SENT`."),
            ),
            (
                "attempts",
                json!({ "type": "integer", "minimum": 0, "description": "How many transfers were tried (0 while it waits for an account). A payout is parked once 3 are declined, and each operator's retry tries one more." }),
            ),
            (
                "last_error",
                nullable_string("Why the processor declined the latest attempt, if it did."),
            ),
            (
                "requested_at",
                nullable_timestamp("When the complete-order saga asked for the payout."),
            ),
            ("updated_at", nullable_timestamp("When the payout last changed.")),
            (
                "requested",
                json!({ "type": "boolean", "description": "Whether the complete-order saga has asked for the payout (and so its amount is known)." }),
            ),
        ],
    );
    with_example(schema, payout_example())
}

fn ledger_account_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["customer_card", "authorizations", "escrow", "runner_payable", "paid_out", "refunds"],
        "description": concat!(
            "An account of the ledger. Its balance (debits minus credits) says where the money is: ",
            "`customer_card` is minus what the customer's card gave (held or taken), ",
            "`authorizations` what is held on the card, `escrow` what the platform holds for the ",
            "order, `runner_payable` what it owes the runner, `paid_out` what reached the runner, ",
            "and `refunds` minus what went back to the customer."
        )
    })
}

fn ledger_entry_schema() -> Value {
    object(
        "One balanced entry: `amount_cents` debited to `debit` and credited to `credit`.",
        &["source", "kind", "debit", "credit", "amount_cents", "occurred_at"],
        vec![
            (
                "source",
                json!({ "type": "string", "description": "What posted it, unique within the order: the event type, and the refund for a refund.", "examples": ["payment.captured", "payment.refunded:4a3b2c1d-0e9f-4a8b-9c7d-6e5f4a3b2c1d"] }),
            ),
            (
                "kind",
                json!({ "type": "string", "description": "The message type that posted it.", "examples": ["payment.authorized", "payment.voided", "payment.captured", "escrow.released", "payout.sent", "payment.refunded"] }),
            ),
            ("debit", described_ref("LedgerAccount", "The account debited.")),
            ("credit", described_ref("LedgerAccount", "The account credited.")),
            (
                "amount_cents",
                json!({ "type": "integer", "minimum": 1, "description": "The amount moved, in cents; more than zero." }),
            ),
            ("occurred_at", timestamp("When the money event happened.")),
        ],
    )
}

fn order_ledger_schema() -> Value {
    let balances = json!({
        "type": "object",
        "description": "The balance of each account the entries touch: debits minus credits, in cents. They sum to zero.",
        "propertyNames": schema_ref("LedgerAccount"),
        "additionalProperties": { "type": "integer" }
    });
    let schema = object(
        "An order's ledger: its entries and the balances they leave.",
        &["order_id", "customer_id", "runner_id", "entries", "balances"],
        vec![
            ("order_id", uuid("The order.")),
            (
                "customer_id",
                json!({ "anyOf": [schema_ref("UserId"), { "type": "null" }], "description": "The order's customer, once an entry names them." }),
            ),
            (
                "runner_id",
                json!({ "anyOf": [schema_ref("UserId"), { "type": "null" }], "description": "The order's runner, once an entry names them." }),
            ),
            (
                "entries",
                array_of(
                    "LedgerEntry",
                    "Every entry posted for the order, in the order they were posted.",
                ),
            ),
            ("balances", balances),
        ],
    );
    with_example(schema, ledger_example())
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
                json!({ "description": format!("Any JSON nested at most {} levels deep, handed back in `timer.expired`; null when left out.", campusg_domain::limits::MAX_JSON_DEPTH) }),
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

fn traced_record_schema() -> Value {
    object(
        "One record of a story: where it is in the log, its envelope and its payload. The envelope fields are null for a record that is not a readable envelope.",
        &[
            "topic",
            "partition",
            "offset",
            "key",
            "logged_at",
            "id",
            "type",
            "correlation_id",
            "causation_id",
            "source",
            "timestamp",
            "payload",
            "since_start_ms",
        ],
        vec![
            ("topic", string("The topic the record is on.")),
            ("partition", integer("The partition it is on.")),
            ("offset", integer("Its offset in the partition.")),
            (
                "key",
                nullable_string("The record key: the order id, for everything about an order."),
            ),
            ("logged_at", timestamp("When the log took the record.")),
            ("id", nullable_string("The message id.")),
            (
                "type",
                nullable_string("The message type; null for a record that is not a readable envelope."),
            ),
            ("correlation_id", nullable_string("The saga id.")),
            (
                "causation_id",
                nullable_string("The id of the message that caused it."),
            ),
            ("source", nullable_string("The service that published it.")),
            (
                "timestamp",
                nullable_timestamp("When the message says it happened."),
            ),
            (
                "payload",
                json!({ "description": "The message's payload, or the raw value as a string if the record is not an envelope." }),
            ),
            (
                "since_start_ms",
                integer("Milliseconds since the story's first record."),
            ),
        ],
    )
}

fn trace_schema() -> Value {
    let schema = object(
        "An order's whole story, from the trace index.",
        &["id", "records"],
        vec![
            ("id", string("The id asked for: an order id or a saga id.")),
            (
                "records",
                array_of(
                    "TracedRecord",
                    "Every record indexed under the id, in causal and time order: sorted by when each happened, each moved after the message that caused it.",
                ),
            ),
        ],
    );
    with_example(schema, trace_example())
}

#[cfg(test)]
mod tests {
    use super::document;

    /// Every route declares who may call it, and the document says so for
    /// every operation: one source, no operation left out.
    #[test]
    fn every_route_rule_is_an_operation_and_every_operation_has_one() {
        let document = document();
        let table = crate::startup::route_table();
        let mut declared: Vec<(String, String)> = table
            .iter()
            .map(|rule| (rule.path.to_string(), rule.method.as_str().to_ascii_lowercase()))
            .collect();
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
                    .map(move |method| (path.clone(), method.clone()))
            })
            .collect();
        declared.sort();
        documented.sort();
        assert_eq!(declared, documented);
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation.get("security").is_some(),
                    "{method} {path} says nothing of who may call it"
                );
            }
        }
    }

    /// No two descriptions share an operation name: the second would
    /// silently replace the first.
    #[test]
    fn every_operation_is_described_once() {
        let mut ids: Vec<String> = super::operation_items()
            .iter()
            .filter_map(serde_json::Value::as_object)
            .flat_map(|item| item.values())
            .map(|operation| {
                operation["operationId"]
                    .as_str()
                    .expect("every operation is named")
                    .to_string()
            })
            .collect();
        let all = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all, "an operationId is described twice");
    }

    /// Every operation described belongs to a route: none is left over
    /// from a route that was renamed or removed.
    #[test]
    fn every_operation_described_is_a_route_s() {
        let table = crate::startup::route_table();
        let named: Vec<&str> = table.iter().map(|rule| rule.operation_id).collect();
        for id in super::operations().keys() {
            assert!(
                named.contains(&id.as_str()),
                "operation {id} is described but no route names it"
            );
        }
        let version = document()["openapi"]
            .as_str()
            .expect("`openapi` is a string")
            .to_string();
        assert!(version.starts_with("3.1"), "the document is OpenAPI {version}, not 3.1");
    }
}
