//! Service endpoints: health (with a database round trip), Prometheus
//! metrics, and the OpenAPI document (generated in [`super::openapi`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use diesel_check::ping;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::NoQuery;
use crate::state::AppState;

mod diesel_check {
    use craton::store::{DbConn, StoreError};

    /// One trivial query: proves a pooled connection works end to end.
    pub fn ping(c: &mut DbConn) -> Result<(), StoreError> {
        craton::store::find_project(c, craton::DEFAULT_PROJECT).map(|_| ())
    }
}

/// Health, with a database round trip.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The database answers", body = super::openapi::Health),
        super::openapi::PublicErrors))]
pub async fn healthz(State(state): State<AppState>, _: NoQuery) -> Result<Response, ApiError> {
    state.db(|c| Ok(ping(c)?)).await?;
    Ok((StatusCode::OK, Json(json!({"status": "ok"}))).into_response())
}

/// Prometheus metrics (names, labels and units: docs/observability.md).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 400, description = "An unknown query parameter", body = super::openapi::ApiErrorBody)))]
pub async fn metrics(State(state): State<AppState>, _: NoQuery) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}

/// The OpenAPI document as JSON (see [`super::openapi`]).
pub fn openapi_document() -> Value {
    serde_json::to_value(super::openapi::document()).expect("the OpenAPI document serializes")
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = super::openapi::JsonObject),
        super::openapi::PublicErrors))]
pub async fn openapi(_: NoQuery) -> impl IntoResponse {
    Json(openapi_document())
}
