//! What the system tells its operators about itself over HTTP: `GET /metrics`
//! in Prometheus' text format, and the middleware that counts every request
//! by its route's template and runs it in a span (linked to the caller's
//! `traceparent`, when it sends one).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use campusg_runtime::access::{Access, Routes};
use campusg_runtime::health::HealthBoard;
use campusg_runtime::metrics::Metrics;
use campusg_runtime::store::EventStore;

/// What `/metrics` reads: the counters, the consumers' lag, and every store
/// this process relays (for outbox depth and parked keys).
#[derive(Clone)]
pub struct Observed {
    pub metrics: Metrics,
    pub health: HealthBoard,
    pub stores: Vec<(&'static str, Arc<dyn EventStore>)>,
}

/// `GET /metrics`, for operators: a scraper carries an operator's token
/// (Prometheus' `authorization` setting), as every other caller does.
pub fn routes() -> Routes<Observed> {
    Routes::new().get("/metrics", "metrics", Access::Operators, scrape)
}

async fn scrape(State(observed): State<Observed>) -> Response {
    let text = observed.metrics.render(&observed.health, &observed.stores).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Counts each answered request under its method, its route's template
/// (`/api/orders/{order_id}`: never the path as written, which would make a
/// series per order) and its status, and runs it in an `http_request` span.
pub async fn observe_requests(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = known_method(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!(
        "http_request",
        http.request.method = method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.kind = "server",
        otel.name = %format_args!("{method} {route}"),
    );
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    campusg_runtime::telemetry::link_remote(&span, traceparent);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    metrics.answered(method, &route, status, started.elapsed().as_secs_f64());
    response
}

/// The method as a label: one of the few the API knows, else `other`, so a
/// caller cannot mint label values.
fn known_method(method: &Method) -> &'static str {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .iter()
    .zip(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    .find(|(known, _)| *known == method)
    .map_or("other", |(_, label)| label)
}
