//! `POST /v1/webhooks/github`: GitHub push events. Public (GitHub sends no
//! token) and authenticated by `X-Hub-Signature-256`, the HMAC-SHA256 of
//! the body with `CRATON_WEBHOOK_SECRET`: without a configured secret every
//! delivery is refused, and a missing or wrong signature gets 401 with
//! nothing changed. A push to a tracked repository and ref asks for a sync
//! of those refs (stored on the ref, so any cratond process honours it) and
//! is answered 202 at once; the sync runs in the background.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::store::config_refs;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::NoQuery;
use super::resource::RawBody;
use crate::state::AppState;
use crate::sync::webhook::{matching_refs, signature_ok};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[utoipa::path(post, path = "/v1/webhooks/github", tag = "webhooks",
    summary = "GitHub push webhook, verified by X-Hub-Signature-256 (CRATON_WEBHOOK_SECRET); sync in background",
    params(crate::api::openapi::WebhookHeaders),
    request_body(content = crate::api::openapi::JsonObject, description = "GitHub's event payload"),
    responses((status = 200, description = "A ping answered", body = crate::api::openapi::WebhookAnswer),
        (status = 202, description = "A push accepted (the matching refs will sync) or another event ignored",
            body = crate::api::openapi::WebhookAnswer),
        crate::api::openapi::WebhookErrors))]
pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: NoQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let Some(secret) = state.sync.as_ref().and_then(|h| h.settings().webhook_secret.clone()) else {
        return Err(ApiError::Unauthorized(
            "webhooks are disabled: no webhook secret is configured (CRATON_WEBHOOK_SECRET)".into(),
        ));
    };
    let Some(signature) = header(&headers, "x-hub-signature-256") else {
        return Err(ApiError::Unauthorized("missing X-Hub-Signature-256 header".into()));
    };
    if !signature_ok(&secret, &body, signature) {
        return Err(ApiError::Unauthorized("invalid X-Hub-Signature-256 signature".into()));
    }
    let event = header(&headers, "x-github-event").unwrap_or("");
    match event {
        "ping" => return Ok((StatusCode::OK, Json(json!({"status": "pong"}))).into_response()),
        "push" => {}
        other => return Ok((StatusCode::ACCEPTED, Json(json!({"status": "ignored", "event": other}))).into_response()),
    }
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!("body is not valid JSON (line {}, column {}): {e}", e.line(), e.column()))
    })?;
    let ids = state
        .db(move |conn| {
            let refs = config_refs::list(conn, None)?;
            let ids: Vec<i64> = matching_refs(&payload, &refs).iter().map(|r| r.id).collect();
            for id in &ids {
                config_refs::request_sync(conn, *id)?;
            }
            Ok(ids)
        })
        .await?;
    if let Some(hub) = &state.sync {
        for id in &ids {
            hub.request(*id, false);
        }
    }
    tracing::info!(refs = ?ids, "github push received");
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted", "refs": ids}))).into_response())
}
