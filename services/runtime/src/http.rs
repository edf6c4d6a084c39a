//! The HTTP API's error shape, `{"error": {"code", "message"}}`, and a JSON body
//! extractor that answers malformed bodies in that shape.
//!
//! 400: the request is malformed (not JSON, a bad path id). 404: an unknown id.
//! 409: the request conflicts with the current state. 422: valid JSON that
//! breaks a rule (a missing field, a negative quantity). 503: try again.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
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
            other => ApiError::bad_request(other.body_text()),
        }
    }
}
