//! Service endpoints: health (with a database round trip), Prometheus
//! metrics, and the OpenAPI document generated from the route table.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use diesel_check::ping;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::ROUTES;
use crate::state::AppState;

mod diesel_check {
    use craton::store::{DbConn, StoreError};

    /// One trivial query: proves a pooled connection works end to end.
    pub fn ping(c: &mut DbConn) -> Result<(), StoreError> {
        craton::store::find_project(c, craton::DEFAULT_PROJECT).map(|_| ())
    }
}

pub async fn healthz(State(state): State<AppState>) -> Result<Response, ApiError> {
    state.db(|c| Ok(ping(c)?)).await?;
    Ok((StatusCode::OK, Json(json!({"status": "ok"}))).into_response())
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The OpenAPI 3 document: every route of [`ROUTES`] with its summary.
pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let path = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "responses": {
                "200": {"description": "success"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"}
            }
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !r.public {
            op["security"] = json!([{"bearer": []}]);
        }
        path[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Craton API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {
                "description": "error",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "status": {"type": "integer"}, "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object", "properties": {
                            "field": {"type": "string"}, "message": {"type": "string"}}}}}}}
                }}}
            }}
        }
    })
}

pub async fn openapi() -> impl IntoResponse {
    Json(openapi_document())
}
