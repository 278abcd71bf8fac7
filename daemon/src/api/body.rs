//! JSON request bodies: size-limited (413), of a JSON media type (415), and validated field by field so
//! that a 400 names every unknown or server-owned field at once instead of
//! the first one serde trips on.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// The fields a request body may carry.
pub trait Fields {
    const FIELDS: &'static [&'static str];
}

/// Fields the server owns: sending them is a 400.
pub const SERVER_OWNED: &[&str] = &["id", "created_at", "updated_at", "revision"];

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Fields,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = super::extract::json_bytes(req, state).await?;
        Ok(ApiJson(parse_body(&bytes)?))
    }
}

/// Parses and checks a JSON object body against `T::FIELDS`.
pub fn parse_body<T: DeserializeOwned + Fields>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad(format!("body is not valid JSON (line {}, column {}): {e}", e.line(), e.column()))
    })?;
    let obj = value.as_object().ok_or_else(|| ApiError::bad("body must be a JSON object"))?;
    let mut details = Vec::new();
    for k in obj.keys() {
        if SERVER_OWNED.contains(&k.as_str()) {
            details.push(FieldError { field: k.clone(), message: "is set by the server".into() });
        } else if !T::FIELDS.contains(&k.as_str()) {
            details.push(FieldError {
                field: k.clone(),
                message: format!("unknown field (allowed: {})", T::FIELDS.join(", ")),
            });
        } else if has_nul(&obj[k]) {
            details.push(FieldError { field: k.clone(), message: NUL_MESSAGE.into() });
        }
    }
    if !details.is_empty() {
        return Err(ApiError::fields(details));
    }
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        // serde names the field in "invalid type ... for key `x`"-style
        // messages only sometimes; report the whole message under "body".
        ApiError::fields(vec![FieldError { field: "body".into(), message: msg }])
    })
}

/// PostgreSQL text cannot hold NUL, so no field may carry one (on any
/// backend, to behave the same on all three): a name with NUL could only
/// fail deep in the store.
pub const NUL_MESSAGE: &str = "contains a NUL character";

/// Whether a string anywhere in `v` contains NUL.
fn has_nul(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
