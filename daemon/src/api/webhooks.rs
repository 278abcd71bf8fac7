//! `POST /v1/webhooks/github`: GitHub push events. Public (GitHub sends no
//! token) and authenticated by `X-Hub-Signature-256`, the HMAC-SHA256 of
//! the body with `CRATON_WEBHOOK_SECRET`: without a configured secret every
//! delivery is refused, and a missing or wrong signature gets 401 with
//! nothing changed. A push to a tracked repository and ref asks for a sync
//! of those refs (stored on the ref, so any cratond process honours it) and
//! is answered 202 at once; the sync runs in the background.
//!
//! Every verified delivery is recorded once, keyed by its
//! `X-GitHub-Delivery` id (required: 400 without it, as without
//! `X-GitHub-Event`). A replayed id does nothing and is answered 200
//! `{"status": "duplicate"}`; the unique key decides, so two daemons over
//! one database agree. Pushes and pull requests then go to the webhook
//! rules ([`crate::webhook_rules`]); the delivery's `outcome` says which
//! rules matched and what each did, or "no rule matched".
//!
//! Anyone can send to this route, so nothing is buffered before the cheap
//! checks: a configured secret, an `X-GitHub-Event` header and a
//! well-formed signature header (401/400 without reading the body), a
//! Content-Length within the per-body maximum (413), then a slot and a
//! share of the byte budget of [`crate::sync::webhook::WebhookGate`] (503
//! with `Retry-After` when full). Only then is the body read and the HMAC
//! checked.

use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

use craton::store::config_refs;
use craton::store::webhook_rules as wr;
use craton::webhook_rules::Facts;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::NoQuery;
use crate::state::AppState;
use crate::sync::webhook::{matching_refs, signature_ok, signature_well_formed};

fn no_secret() -> ApiError {
    ApiError::Unauthorized("webhooks are disabled: no webhook secret is configured (CRATON_WEBHOOK_SECRET)".into())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[utoipa::path(post, path = "/v1/webhooks/github", tag = "webhooks",
    summary = "GitHub webhook, verified by X-Hub-Signature-256 (CRATON_WEBHOOK_SECRET), once per X-GitHub-Delivery: push syncs refs; push and pull_request fire webhook rules",
    params(crate::api::openapi::WebhookHeaders),
    request_body(content = crate::api::openapi::JsonObject, description = "GitHub's event payload"),
    responses((status = 200, description = "A ping answered, or a replayed X-GitHub-Delivery (duplicate: nothing done)", body = crate::api::openapi::WebhookAnswer),
        (status = 202, description = "A push or pull request accepted (the matching refs sync, matching rules fire) or another event ignored",
            body = crate::api::openapi::WebhookAnswer),
        crate::api::openapi::WebhookErrors))]
pub async fn github(State(state): State<AppState>, _: NoQuery, req: Request) -> Result<Response, ApiError> {
    let Some(hub) = state.sync.clone() else {
        return Err(no_secret());
    };
    let Some(secret) = hub.settings().webhook_secret.clone() else {
        return Err(no_secret());
    };
    let headers = req.headers().clone();
    let Some(event) = header(&headers, "x-github-event").map(str::to_string) else {
        return Err(ApiError::bad("missing X-GitHub-Event header"));
    };
    let Some(signature) = header(&headers, "x-hub-signature-256").map(str::to_string) else {
        return Err(ApiError::Unauthorized("missing X-Hub-Signature-256 header".into()));
    };
    if !signature_well_formed(&signature) {
        return Err(ApiError::Unauthorized("invalid X-Hub-Signature-256 signature".into()));
    }
    let Some(guid) = header(&headers, "x-github-delivery").map(|g| g.trim().to_string()) else {
        return Err(ApiError::bad("missing X-GitHub-Delivery header"));
    };
    if guid.is_empty() || guid.chars().count() > wr::MAX_DELIVERY_CHARS {
        return Err(ApiError::bad(format!("X-GitHub-Delivery must be 1 to {} characters", wr::MAX_DELIVERY_CHARS)));
    }
    let gate = &hub.webhook_gate;
    let length = header(&headers, "content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if length.is_some_and(|l| l > gate.limits.body_bytes) {
        return Err(ApiError::PayloadTooLarge);
    }
    let Some(_pass) = gate.try_enter(length) else {
        tracing::debug!("webhook refused: too many webhook bodies being read");
        let mut resp = ApiError::Unavailable("too many webhook deliveries at once; retry later".into()).into_response();
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(resp);
    };
    // A body without Content-Length reserved the per-body maximum; either
    // way no more than that is buffered.
    let limit = length.unwrap_or(gate.limits.body_bytes).min(gate.limits.body_bytes);
    let body = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| ApiError::PayloadTooLarge)?;
    if !signature_ok(&secret, &body, &signature) {
        return Err(ApiError::Unauthorized("invalid X-Hub-Signature-256 signature".into()));
    }
    let parsed = serde_json::from_slice::<Value>(&body);
    let payload = match (event.as_str(), parsed) {
        (_, Ok(v)) => v,
        ("push" | "pull_request", Err(e)) => {
            return Err(ApiError::bad(format!(
                "body is not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            )))
        }
        // Recorded all the same; nothing reads it.
        (_, Err(_)) => Value::Null,
    };
    let facts = Facts::read(&event, &payload);
    let first = json!({"status": match event.as_str() {
        "ping" => "pong",
        "push" | "pull_request" => "received",
        _ => "ignored",
    }})
    .to_string();
    let (g, ev, f, holder) = (guid.clone(), event.clone(), facts.clone(), crate::schedules::holder(&state));
    let received_at = state.clock.now().timestamp_millis();
    let recorded = state
        .db(move |conn| {
            Ok(wr::record_delivery(
                conn,
                &wr::NewDelivery {
                    delivery: &g,
                    event: &ev,
                    repository: f.repository.as_deref(),
                    git_ref: f.git_ref.as_deref(),
                    sha: f.sha.as_deref(),
                    received_at,
                    holder: &holder,
                    outcome: &first,
                },
            )?)
        })
        .await?;
    let Some(delivery_id) = recorded else {
        tracing::info!(delivery = %guid, event, "github delivery replayed: ignored");
        return Ok((StatusCode::OK, Json(json!({"status": "duplicate", "delivery": guid}))).into_response());
    };
    match event.as_str() {
        "ping" => return Ok((StatusCode::OK, Json(json!({"status": "pong", "delivery": guid}))).into_response()),
        "push" | "pull_request" => {}
        other => {
            return Ok((StatusCode::ACCEPTED, Json(json!({"status": "ignored", "event": other, "delivery": guid})))
                .into_response())
        }
    }
    let payload = Arc::new(payload);
    let ids = if event == "push" {
        let p = payload.clone();
        state
            .db(move |conn| {
                let refs = config_refs::list(conn, None)?;
                let ids: Vec<i64> = matching_refs(&p, &refs).iter().map(|r| r.id).collect();
                for id in &ids {
                    config_refs::request_sync(conn, *id)?;
                }
                Ok(ids)
            })
            .await?
    } else {
        Vec::new()
    };
    if let Some(hub) = &state.sync {
        for id in &ids {
            hub.request(*id, false);
        }
    }
    let rules = crate::webhook_rules::dispatch(&state, delivery_id, guid.clone(), facts, payload, ids.clone()).await?;
    tracing::info!(delivery = %guid, event, refs = ?ids, rules = ?rules, "github delivery received");
    let status = if event == "push" || !rules.is_empty() { "accepted" } else { "ignored" };
    let mut answer = json!({"status": status, "delivery": guid, "rules": rules});
    if event == "push" {
        answer["refs"] = json!(ids);
    } else {
        answer["event"] = json!(event);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
