//! axum's extractors with their rejections answered as [`ApiError`], so
//! that every refusal, down to a path that is not UTF-8 or a body of the
//! wrong media type, leaves with the one JSON error body. Handlers use
//! these instead of axum's own `Path` and `Bytes`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};
use super::query::Query;

/// A path parameter; a segment that cannot be decoded or parsed is a 400
/// naming it.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| Path(p.0)).map_err(path_rejection)
    }
}

/// The one mapping of axum's path rejections.
pub fn path_rejection(e: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let field = match &e {
        PathRejection::FailedToDeserializePathParams(d) => match d.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => Some(key.clone()),
            ErrorKind::ParseErrorAtKey { key, .. } => Some(key.clone()),
            ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
            _ => None,
        },
        _ => None,
    };
    match (e.status(), field) {
        (StatusCode::INTERNAL_SERVER_ERROR, _) => ApiError::internal(e.body_text()),
        (_, Some(field)) => ApiError::fields(vec![FieldError { field, message: e.body_text() }]),
        (_, None) => ApiError::bad(e.body_text()),
    }
}

/// For routes that take no query parameters: any one is a 400 naming it,
/// as on the routes that take some.
pub struct NoQuery;

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::parse(parts.uri.query(), &[]).map(|_| NoQuery)
    }
}

/// Whether `headers` let a body be read as JSON: no Content-Type (curl
/// `--data-binary` without `-H`), `application/json` or any `+json` type.
fn json_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {:?} is not supported: send application/json",
            ct.to_str().unwrap_or("(not text)")
        )))
    }
}

/// The one mapping of axum's body rejections: past the limit is 413.
pub fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad(format!("reading the body: {e}"))
    }
}

/// A request body read whole, meant as JSON: a non-empty body of another
/// media type is a 415.
pub async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let media = json_media_type(req.headers());
    let bytes = Bytes::from_request(req, state).await.map_err(bytes_rejection)?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        media?;
    }
    Ok(bytes)
}
