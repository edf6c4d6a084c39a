//! What an operator's monitoring sees: `GET /metrics` scraped after real sagas.

use rstest::rstest;
use serde_json::json;

use campusg_domain::ids::SagaId;
use campusg_payment::sandbox::DECLINED_TEST_METHOD;
use campusg_runtime::access::Role as CallerRole;

use crate::backends::Backend;
use crate::helpers::{eventually, TestApp};

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[rstest]
#[tokio::test]
async fn metrics_count_the_sagas_by_outcome_their_steps_the_requests_and_show_each_groups_lag(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_metrics", Some("pm_card_visa")).await;
    app.create_user("cust_declined", Some(DECLINED_TEST_METHOD)).await;
    let mut sagas = Vec::new();
    for _ in 0..2 {
        sagas.push(app.place_order("cust_metrics", 9.5, 2.0).await.0);
    }
    sagas.push(app.place_order("cust_declined", 9.5, 2.0).await.0);
    let mut outcomes = Vec::new();
    for saga in &sagas {
        let saga = app.saga_when_finished(saga).await;
        outcomes.push(saga["status"].as_str().unwrap().to_lowercase());
    }
    assert_eq!(outcomes[..2], ["completed", "completed"]);
    let declined = outcomes[2].clone();
    assert_ne!(declined, "completed");

    // The sagas' last progress is counted once the relay has published it.
    let text = eventually("every saga's end counted on /metrics", || async {
        let text = scrape(&app, &app.operator_token())
            .await
            .map_err(|status| status.to_string())?;
        let ended = |outcome: &str| {
            sample(
                &text,
                &format!(r#"campusg_sagas_ended_total{{outcome="{outcome}",saga_type="create_order"}}"#),
            )
        };
        let expected = if declined == "completed" { 3.0 } else { 2.0 };
        if ended("completed") == Some(expected) && ended(&declined) == Some(1.0) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;

    assert_eq!(
        sample(&text, r#"campusg_sagas_started_total{saga_type="create_order"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"campusg_http_requests_total{method="POST",route="/api/orders",status="202"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // Each completed saga reached its step `completed` once, after its start.
    assert_eq!(
        sample(
            &text,
            r#"campusg_saga_step_seconds_count{saga_type="create_order",step="completed"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"campusg_saga_step_seconds_sum{saga_type="create_order",step="completed"}"#
        )
        .is_some_and(|seconds| seconds > 0.0),
        "{text}"
    );
    // The order service's group has read its commands: its lag on each
    // partition of order_commands is a number, and none is negative.
    let lags: Vec<f64> = text
        .lines()
        .filter(|line| {
            line.starts_with(r#"campusg_consumer_lag_records{group="order-service""#)
                && line.contains(r#"topic="order_commands""#)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(lags.len(), 6, "one gauge per partition of order_commands: {text}");
    assert!(lags.iter().all(|lag| *lag >= 0.0), "{text}");
    assert!(
        sample(&text, r#"campusg_outbox_depth{store="order"}"#).is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"campusg_parked_keys{status="parked",store="order"}"#),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_for_operators_only() {
    let app = TestApp::spawn_on(Backend::Embedded).await;
    let customer = app.token("cust_curious", CallerRole::Customer);
    let runner = app.token("runner_curious", CallerRole::Runner);

    assert_eq!(scrape(&app, &customer).await.err(), Some(403));
    assert_eq!(scrape(&app, &runner).await.err(), Some(403));
    let (status, _) = app.get_as("/metrics", None).await;
    assert_eq!(status, 401);
    assert!(scrape(&app, &app.operator_token()).await.is_ok());
}

/// `/metrics` as text, or the status it answered instead.
async fn scrape(app: &TestApp, token: &str) -> Result<String, u16> {
    let response = reqwest::Client::new()
        .get(format!("{}/metrics", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    if status != 200 {
        return Err(status);
    }
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Ok(response.text().await.unwrap())
}

#[rstest]
#[tokio::test]
async fn a_saga_is_one_trace_from_its_request_through_every_service_it_crossed(
    #[values(Backend::Embedded, Backend::Kafka)] backend: Backend,
) {
    let app = TestApp::spawn_on(backend).await;
    app.create_user("cust_traced", Some("pm_card_visa")).await;
    // Under an Idempotency-Key the saga's id, which is its trace's, is known
    // before the request.
    let key = uuid::Uuid::new_v4().to_string();
    let saga_id = SagaId::for_request(&format!("cust_traced:{key}"));
    crate::traces::watch(saga_id.0);
    let body = json!({
        "customer_id": "cust_traced",
        "order_details": {"foodItems": [{"name": "Soup", "price": 6.0, "quantity": 1}], "deliveryLocation": "Library"}
    });
    // The caller's own trace: the request's span is linked to it, and
    // nothing of the saga goes into it.
    let callers_trace = uuid::Uuid::new_v4();
    crate::traces::watch(callers_trace);
    let response = reqwest::Client::new()
        .post(format!("{}/api/orders", app.address))
        .bearer_auth(app.token("cust_traced", CallerRole::Customer))
        .header("idempotency-key", &key)
        .header(
            "traceparent",
            format!("00-{}-00f067aa0ba902b7-01", callers_trace.simple()),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let saga = app.saga_when_finished(&saga_id.to_string()).await;
    assert_eq!(saga["status"], "COMPLETED", "{saga}");

    // Each command handled by its service, and each reply by the saga.
    let expected = [
        "order-service create_order",
        "create-order-saga order.created",
        "user-service get_payment_info",
        "create-order-saga user.payment_info_retrieved",
        "payment-service authorize_payment",
        "create-order-saga payment.authorized",
        "escrow-service hold_funds",
        "create-order-saga escrow.funds_held",
        "order-service update_order_status",
        "create-order-saga order.status_updated",
        "timer-service start_order_timer",
        "create-order-saga timer.started",
    ];
    let spans = eventually("a span for every step of the saga", || async {
        let spans = crate::traces::spans_of(saga_id.0);
        let names: Vec<String> = spans.iter().map(|span| span.name.to_string()).collect();
        match expected.iter().find(|name| !names.iter().any(|n| n == *name)) {
            None => Ok(spans),
            Some(missing) => Err(format!("no span `{missing}` among {names:?}")),
        }
    })
    .await;

    // One tree: a single root, where the request started the saga, linked to
    // the request's own span; every other span's parent is in the trace.
    let roots: Vec<_> = spans
        .iter()
        .filter(|span| span.parent_span_id == opentelemetry::trace::SpanId::INVALID)
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "{:?}",
        roots.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert_eq!(roots[0].name, "create_order saga");
    assert_eq!(roots[0].links.links.len(), 1, "linked to the HTTP request's span");
    let ids: std::collections::HashSet<_> = spans.iter().map(|span| span.span_context.span_id()).collect();
    for span in &spans {
        assert!(
            span.parent_span_id == opentelemetry::trace::SpanId::INVALID || ids.contains(&span.parent_span_id),
            "`{}` has a parent outside the trace",
            span.name
        );
    }
    // A step's span descends from the span that sent its message: the order
    // service's `create_order` from the saga's start, the user service's
    // `get_payment_info` from the saga handling `order.created`.
    let named = |name: &str| spans.iter().find(|span| span.name == name).unwrap();
    let descends_from = |name: &str, ancestor: &str| {
        let ancestor = match ancestor {
            "the root" => roots[0].span_context.span_id(),
            name => named(name).span_context.span_id(),
        };
        let mut parent = named(name).parent_span_id;
        while parent != opentelemetry::trace::SpanId::INVALID {
            if parent == ancestor {
                return true;
            }
            parent = spans
                .iter()
                .find(|span| span.span_context.span_id() == parent)
                .map_or(opentelemetry::trace::SpanId::INVALID, |span| span.parent_span_id);
        }
        false
    };
    assert!(descends_from("order-service create_order", "the root"));
    assert!(descends_from(
        "user-service get_payment_info",
        "create-order-saga order.created"
    ));
    assert!(descends_from(
        "create-order-saga timer.started",
        "timer-service start_order_timer"
    ));
    assert!(!descends_from(
        "user-service get_payment_info",
        "payment-service authorize_payment"
    ));
    let groups: std::collections::HashSet<String> = spans
        .iter()
        .filter_map(|span| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == "group")
                .map(|kv| kv.value.to_string())
        })
        .collect();
    assert!(
        groups.len() >= 6,
        "spans from the services the saga crossed: {groups:?}"
    );
}

/// A process that runs one service and no API answers `/health` and, for
/// operators, `/metrics` on its admin port: its own consumers' lag and its
/// own store.
#[tokio::test]
async fn a_service_process_serves_its_health_and_metrics_on_its_admin_port() {
    let environment = std::sync::Arc::new(crate::backends::Environment::new(Backend::Embedded));
    let payments = TestApp::spawn_configured(environment, &[campusg::settings::Role::Payment], |settings| {
        settings.admin_port = Some(0);
    })
    .await;

    let (status, health) = payments.get_as("/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert!(health["consumers"]["payment-service"].is_object(), "{health}");
    let text = eventually("the payment service's lag on /metrics", || async {
        let text = scrape(&payments, &payments.operator_token())
            .await
            .map_err(|status| status.to_string())?;
        if text
            .contains(r#"campusg_consumer_lag_records{group="payment-service",partition="0",topic="payment_commands"}"#)
        {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    assert!(
        sample(&text, r#"campusg_outbox_depth{store="payment"}"#).is_some(),
        "{text}"
    );
    assert!(
        !text.contains(r#"group="order-service""#),
        "only its own consumers: {text}"
    );
    let customer = payments.token("cust_nosy", CallerRole::Customer);
    assert_eq!(scrape(&payments, &customer).await.err(), Some(403));
    assert_eq!(payments.get_as("/metrics", None).await.0, 401);
    assert_eq!(payments.get("/api/orders/available").await.0, 404, "no API here");
}
