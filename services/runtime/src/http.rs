//! The HTTP API's error shape, `{"error": {"code", "message"}}`, and the body,
//! path and query extractors that answer what they refuse in that shape.
//!
//! 400: the request is malformed (not JSON, a bad path id, a query value out of
//! range). 404: an unknown id. 409: the request conflicts with the current
//! state. 401: no token, or one that does not hold. 403: the caller may not do
//! this. 413: the body is over [`MAX_BODY_BYTES`]. 422: valid JSON that breaks a
//! rule (a missing field, a negative quantity). 429: slow down. 503: try again.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use campusg_domain::ids::{OrderId, UserId};
use campusg_domain::limits::{MAX_BODY_BYTES, MAX_PAGE, MAX_TEXT_CHARS};

use crate::consumer::HandlerError;
use crate::store::{EventStore, StateQuery, StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// No credentials, or credentials that do not hold (SPEC section 11).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    pub fn too_many_requests(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_requests",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn payload_too_large() -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("the body is over the limit of {MAX_BODY_BYTES} bytes"),
        }
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "rule_violation",
            message: message.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the request failed; see the server log".to_string(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if let StoreError::Permanent(reason) = &error {
            return ApiError::unprocessable(format!("this cannot be stored: {reason}"));
        }
        if error.is_transient() {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "retry",
                message: error.to_string(),
            }
        } else {
            ApiError::internal(error)
        }
    }
}

/// A command the API ran as a consumer would: a refusal for good is a 422, a
/// passing failure a 503 that says to retry.
impl From<HandlerError> for ApiError {
    fn from(error: HandlerError) -> ApiError {
        match error {
            HandlerError::Rejected(reason) => ApiError::unprocessable(reason),
            HandlerError::Store(error) => error.into(),
            HandlerError::Unavailable(reason) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "retry",
                message: reason,
            },
        }
    }
}

/// A 422 naming `field` when `text` is longer than `max_chars` characters
/// (the bounds are in `campusg_domain::limits`).
pub fn text_within(field: &str, text: &str, max_chars: usize) -> Result<(), ApiError> {
    if campusg_domain::limits::within(text, max_chars) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "{field} is longer than {max_chars} characters"
        )))
    }
}

/// The reason a person gave, or `default` when they gave none or a blank one;
/// a 422 past [`MAX_TEXT_CHARS`].
pub fn reason_or(reason: Option<String>, default: &str) -> Result<String, ApiError> {
    let reason = reason
        .filter(|reason| !reason.trim().is_empty())
        .unwrap_or_else(|| default.to_string());
    text_within("reason", &reason, MAX_TEXT_CHARS)?;
    Ok(reason)
}

/// One aggregate's read model, or a 404 that names what was not found.
pub async fn read_model(store: &dyn EventStore, aggregate_type: &str, id: &str, noun: &str) -> Result<Value, ApiError> {
    let (_, state) = store
        .state(aggregate_type, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{noun} {id} does not exist")))?;
    Ok(state)
}

/// The pagination of a list endpoint: `?page=1&page_size=20`.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
pub struct Page {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

impl Page {
    /// Limits `query` to the requested page (1 to [`MAX_PAGE`]; `page_size` 1 to
    /// `max_size`) and returns the page and page size used. A value out of range
    /// is a 400 that names the range, never a clamp the caller cannot see.
    pub fn apply(&self, query: &mut StateQuery, default_size: i64, max_size: i64) -> Result<(i64, i64), ApiError> {
        let page = self.page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::bad_request(format!(
                "page runs from 1 to {MAX_PAGE}, not {page}"
            )));
        }
        let page_size = self.page_size.unwrap_or(default_size);
        if !(1..=max_size).contains(&page_size) {
            return Err(ApiError::bad_request(format!(
                "page_size runs from 1 to {max_size}, not {page_size}"
            )));
        }
        query.limit = Some(page_size);
        query.offset = (page - 1) * page_size;
        Ok((page, page_size))
    }
}

/// The filters of the money lists (`/payments`, `/escrow`): by order, customer
/// or status (any case). An id that does not parse is a 400, like a path id.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct MoneyFilters {
    pub order_id: Option<OrderId>,
    pub customer_id: Option<UserId>,
    pub status: Option<String>,
}

impl MoneyFilters {
    /// The filters as read-model fields; a status not among `statuses` is a 400.
    pub fn fields(self, statuses: &[&str]) -> Result<[(&'static str, Option<String>); 3], ApiError> {
        Ok([
            ("order_id", self.order_id.map(|id| id.to_string())),
            ("customer_id", self.customer_id.map(|id| id.to_string())),
            ("status", status_filter(self.status, statuses)?),
        ])
    }
}

/// A `status` query parameter, in any case, as the read models write it; one
/// not among `statuses` is a 400.
pub fn status_filter(status: Option<String>, statuses: &[&str]) -> Result<Option<String>, ApiError> {
    match status.map(|s| s.to_ascii_uppercase()) {
        Some(status) if !statuses.contains(&status.as_str()) => Err(ApiError::bad_request(format!(
            "`{status}` is not a status here (one of {})",
            statuses.join(", ")
        ))),
        status => Ok(status),
    }
}

/// A page of read models of one aggregate type, each field in `filters` that is
/// given matched exactly, as `{"<plural>": [...], "page", "page_size"}`.
pub async fn list_read_models(
    store: &dyn EventStore,
    aggregate_type: &str,
    filters: &[(&str, Option<String>)],
    page: Page,
    plural: &str,
) -> Result<Value, ApiError> {
    let mut query = StateQuery::default();
    filter_by(&mut query, filters);
    let (page, page_size) = page.apply(&mut query, 20, 200)?;
    let models = store.query_states(aggregate_type, &query).await?;
    Ok(json!({plural: models, "page": page, "page_size": page_size}))
}

/// Adds an equality filter on a read-model field for each parameter given.
pub fn filter_by(query: &mut StateQuery, filters: &[(&str, Option<String>)]) {
    for (field, value) in filters {
        if let Some(value) = value {
            query.equals.push((field.to_string(), value.clone()));
        }
    }
}

/// The longest error message sent: a message may quote the input that broke a
/// rule, and an answer must not grow with the input (its copy is kept for the
/// request's `Idempotency-Key`).
const MAX_ERROR_MESSAGE_CHARS: usize = 500;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = campusg_domain::limits::shortened(&self.message, MAX_ERROR_MESSAGE_CHARS);
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": message}})),
        )
            .into_response();
        // RFC 6750: a 401 names the scheme the route wants.
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The caller's id and `Idempotency-Key` of a request that named one, for a
/// route that derives the ids it makes from it, so that the same request run
/// again (its first answer lost with a crashed process) makes nothing new.
#[derive(Clone, Debug)]
pub struct RequestKey(pub String);

/// A request body that may be empty (then `T::default()`), or JSON.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => ApiError::unprocessable(error.to_string()),
        _ => ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_json",
            message: error.to_string(),
        },
    })
}

/// A JSON request body. Rejections come back as [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::JsonDataError(error) => ApiError::unprocessable(error.body_text()),
            JsonRejection::JsonSyntaxError(error) => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "malformed_json",
                message: error.body_text(),
            },
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::bad_request("the body must be JSON, with `Content-Type: application/json`")
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

/// The request body limit every route shares: [`MAX_BODY_BYTES`], answered 413
/// by [`JsonBody`] and [`Body`] alike.
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// A raw request body within [`body_limit`], for routes whose body is optional.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::payload_too_large()),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// Path parameters; one that does not parse is a 400 in the API's error shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

/// Query parameters; one that does not parse is a 400 in the API's error shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}
