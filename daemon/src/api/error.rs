//! The one error type of the HTTP API. Every failure leaves as
//! `{"error": {"status", "message", "details"}}`; not-found is 404, pool
//! and connection trouble 503 (with `Retry-After`: an outage or contention
//! that outlived the store's retries, not a fault of the request), and
//! anything unexpected is logged once here and answered with a generic 500
//! body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use craton::store::StoreError;
use serde::Serialize;

/// Seconds a client should wait after a 503: the pool's connection timeout
/// is 5 s, and a database that is back is found within one checkout.
const RETRY_AFTER_SECS: &str = "1";

/// One problem with one field of a request.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request took too long")]
    Timeout,
    #[error("{0}")]
    Unavailable(String),
    /// Something outside the database the request needs is not there: the
    /// identity service cannot be asked (Keystone down, refusing the
    /// service credentials), or ansible-playbook is not installed. A 503
    /// whose message says which, unlike [`ApiError::Unavailable`]'s generic
    /// one. Never carries a token.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), details: Vec::new() }
    }
    pub fn fields(details: Vec<FieldError>) -> Self {
        let names: Vec<&str> = details.iter().map(|d| d.field.as_str()).collect();
        ApiError::BadRequest { message: format!("invalid fields: {}", names.join(", ")), details }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into())
    }
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) | ApiError::Missing(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() || e.is_transient() {
            // The driver's text goes to the log (see into_response), not to
            // the client.
            return ApiError::Unavailable(e.to_string());
        }
        match e {
            StoreError::UnknownProject(_) | StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Invalid(m) | StoreError::BadUrl(m) => ApiError::bad(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            e if e.is_not_found() => ApiError::NotFound("not found".into()),
            e if e.is_unique_violation() => ApiError::Conflict("already exists".into()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The error body; also its schema in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorInner)]
struct Inner<'a> {
    /// The HTTP status again.
    status: u16,
    message: &'a str,
    /// One entry per bad field (query parameter, body field, path
    /// parameter); absent when the error is about no field.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(required = false)]
    details: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                "internal server error".to_string()
            }
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "service unavailable");
                "service unavailable: the database cannot serve the request now, retry later".to_string()
            }
            other => other.to_string(),
        };
        let details = match &self {
            ApiError::BadRequest { details, .. } => details.as_slice(),
            _ => &[],
        };
        let body = Body { error: Inner { status: status.as_u16(), message: &message, details } };
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        resp
    }
}
