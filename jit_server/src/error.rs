//! The one error type of the HTTP API: a code, a message that says what to do next, and the
//! HTTP status that goes with the code. Internal failures are logged with their cause and
//! answered with a generic message, so no SQL or file path leaks to a client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jit_proto::api::{ErrorBody, ErrorCode, ErrorResponse};

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub until: Option<i64>,
    /// Seconds for the `Retry-After` header of a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            until: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After: secs`: the caller sent too many requests.
    pub fn rate_limited(message: impl Into<String>, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotAllowed, message)
    }

    pub fn exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AlreadyExists, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn with_until(mut self, until: i64) -> Self {
        self.until = Some(until);
        self
    }

    /// Logs `cause` and answers 500 without details. A serialization failure is marked so
    /// that the request runs again ([`crate::retry`]) instead of being answered.
    pub fn internal<E: std::fmt::Display + 'static>(cause: E) -> Self {
        let any = &cause as &dyn std::any::Any;
        let conflict = any
            .downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_serialization_failure)
            || any
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::store::is_serialization_failure);
        if conflict {
            crate::retry::note_conflict();
            tracing::debug!(%cause, "transaction undone by a concurrent one");
        } else {
            tracing::error!(%cause, "internal error");
        }
        Self::new(
            ErrorCode::Internal,
            "internal server error; the server log has the details",
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<jit_proto::NameError> for ApiError {
    fn from(e: jit_proto::NameError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<crate::rules::RuleError> for ApiError {
    fn from(e: crate::rules::RuleError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorResponse {
            error: ErrorBody {
                code: self.code,
                message: self.message,
                until: self.until,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
