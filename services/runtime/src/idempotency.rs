//! `Idempotency-Key`: a POST, PUT or PATCH retried under the same key by the
//! same caller gets the first answer and causes nothing new (SPEC section 10),
//! across restarts and replicas: the claims and answers are
//! [`IdempotentRequest`] aggregates in the API's own event store.
//!
//! Every mutating route declared through [`crate::access::Routes`] runs
//! [`replay_or_run`] once its rule has admitted the caller; the store comes
//! from the request's extensions (`Extension<Arc<IdempotentRequests>>`, set by
//! the API), and without one requests pass as they are.
//!
//! The request is claimed before it runs (a claim is an append, so two
//! replicas racing on one key cannot both win), and answered after. A retry
//! while the first still runs, or under a key used for another request, is a
//! 409. A 5xx is not kept: the retry runs again. If the process dies between
//! running and answering, the claim lapses after a minute and the retry runs
//! again; the routes whose repeat would not be harmless derive their new ids
//! from the key ([`RequestKey`]), so that running again finds what the first
//! run made.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::access::Authentication;
use crate::aggregate::{run_alone, NotRun};
use crate::clock::Clock;
use crate::http::{ApiError, RequestKey};
use crate::store::{Cause, EventStore, StoreError};
use campusg_domain::idempotency::{Answer, IdempotencyCommand, IdempotencyError, IdempotentRequest, MAX_KEY_CHARS};
use campusg_domain::limits::MAX_BODY_BYTES;

/// The header a client names its request with.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Set on an answer replayed from an earlier request.
pub const REPLAYED: &str = "idempotent-replayed";

/// The largest answer read back from a route.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The largest answer kept for replay: an order, a saga or an error fits many
/// times over. A larger one (a long page of a list) is sent but not kept, and
/// the key is given back, so a retry runs again: storage per key stays small
/// whatever a caller sends.
const MAX_KEPT_ANSWER_BYTES: usize = 16 * 1024;

pub struct IdempotentRequests {
    pub store: Arc<dyn EventStore>,
    pub clock: Arc<dyn Clock>,
}

/// Claims, replays or passes a mutating request that names a key.
pub async fn replay_or_run(request: Request, next: Next) -> Response {
    let Some(requests) = request.extensions().get::<Arc<IdempotentRequests>>().cloned() else {
        return next.run(request).await;
    };
    let mutating = matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH);
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).filter(|_| mutating).cloned() else {
        return next.run(request).await;
    };
    // Unauthenticated: the route's rule answers 401 before anything runs.
    let Some(Authentication::Caller(caller)) = request.extensions().get::<Authentication>().cloned() else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(key) if (1..=MAX_KEY_CHARS).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            key.to_string()
        }
        _ => {
            return ApiError::bad_request(format!(
                "an Idempotency-Key is 1 to {MAX_KEY_CHARS} visible ASCII characters"
            ))
            .into_response()
        }
    };
    let (mut parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::payload_too_large().into_response();
    };
    let id = format!("{}:{key}", caller.user);
    let fingerprint = fingerprint(
        &parts.method,
        parts.uri.path_and_query().map_or("", |p| p.as_str()),
        &body,
    );
    let claim = IdempotencyCommand::Claim {
        fingerprint,
        at: requests.clock.now(),
    };
    match requests.record(&id, claim).await {
        Ok(()) => {}
        Err(Refusal::Refused(IdempotencyError::Replay(answer))) => return replay(answer),
        Err(Refusal::Refused(IdempotencyError::Mismatch)) => {
            return ApiError::conflict(IdempotencyError::Mismatch.to_string()).into_response()
        }
        // Another replica claimed it a moment ago: it is running.
        Err(Refusal::Refused(_) | Refusal::Store(StoreError::Conflict { .. })) => {
            return ApiError::conflict(IdempotencyError::InFlight.to_string()).into_response()
        }
        Err(Refusal::Store(error)) => return ApiError::from(error).into_response(),
    }
    parts.extensions.insert(RequestKey(id.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    requests.keep(&id, response).await
}

/// The request as the key stands for it: method, path and query, and body.
fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(path_and_query.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

type Refusal = NotRun<IdempotencyError>;

impl IdempotentRequests {
    async fn record(&self, id: &str, command: IdempotencyCommand) -> Result<(), Refusal> {
        let cause = Cause::request(uuid::Uuid::new_v4().to_string(), "api", self.clock.now());
        run_alone::<IdempotentRequest>(self.store.as_ref(), id, command, &(), cause)
            .await
            .map(|_| ())
    }

    /// Keeps the answer for the retries (a 5xx gives the key back instead)
    /// and returns it. Keeping it may fail; the client still gets it, and a
    /// retry runs again once the claim lapses.
    async fn keep(&self, id: &str, response: Response) -> Response {
        let at = self.clock.now();
        if response.status().is_server_error() {
            if let Err(error) = self.record(id, IdempotencyCommand::Release { at }).await {
                tracing::warn!(error = %refusal(error), "an Idempotency-Key was not given back");
            }
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_ANSWER_BYTES).await else {
            let _ = self.record(id, IdempotencyCommand::Release { at }).await;
            return ApiError::internal("an answer too large to send").into_response();
        };
        if body.len() > MAX_KEPT_ANSWER_BYTES {
            if let Err(error) = self.record(id, IdempotencyCommand::Release { at }).await {
                tracing::warn!(error = %refusal(error), "an Idempotency-Key was not given back");
            }
            return Response::from_parts(parts, Body::from(body));
        }
        let answer = Answer {
            status: parts.status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        if let Err(error) = self.record(id, IdempotencyCommand::Answer { answer, at }).await {
            tracing::warn!(error = %refusal(error), "an answer was not kept for its Idempotency-Key");
        }
        Response::from_parts(parts, Body::from(body))
    }
}

fn refusal(refusal: Refusal) -> String {
    match refusal {
        Refusal::Refused(error) => error.to_string(),
        Refusal::Store(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_tells_requests_apart_by_method_path_and_body() {
        let order = fingerprint(&Method::POST, "/api/orders", b"{\"a\":1}");
        assert_eq!(order, fingerprint(&Method::POST, "/api/orders", b"{\"a\":1}"));
        assert_ne!(order, fingerprint(&Method::POST, "/api/orders", b"{\"a\":2}"));
        assert_ne!(order, fingerprint(&Method::PUT, "/api/orders", b"{\"a\":1}"));
        assert_ne!(order, fingerprint(&Method::POST, "/api/orders?x=1", b"{\"a\":1}"));
        assert_eq!(order.len(), 64);
    }
}
