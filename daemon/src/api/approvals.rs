//! `POST /v1/runs/{id}/approve` and `/deny`: the approval gate of a run
//! submitted with `"approval": "required"` (docs/run-gates.md). Admins of
//! the run's project answer; the submitter never answers its own run (an
//! approval is a second pair of eyes), whatever its role. The answer is
//! stored (`craton::store::gates`), so the process holding the run picks it
//! up at its next dispatch; a denial ends the run `canceled` at once.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::store::gates::{self, Answered, Decision, MAX_COMMENT_CHARS};
use craton::store::tokens::Role;
use serde_json::Value;

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::query::Query;
use super::resource::{one_field_body, parse_id, RawBody};
use super::runs::{created_by, identity};
use crate::runner::run::run_json;
use crate::state::AppState;

/// The optional body: `{"comment": "..."}`.
fn comment(body: &[u8]) -> Result<Option<String>, ApiError> {
    let bad = |m: &str| ApiError::fields(vec![FieldError { field: "comment".into(), message: m.into() }]);
    match one_field_body(body, "comment")?.as_ref() {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_COMMENT_CHARS => {
            Err(bad(&format!("is longer than {MAX_COMMENT_CHARS} characters")))
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => Err(bad("must not contain control characters")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("must be a string")),
    }
}

async fn answer(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    body: axum::body::Bytes,
    decision: Decision,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("run", &id)?;
    let comment = comment(&body)?;
    let requested = q.get("project").map(str::to_string);
    let clock_ms = state.clock.now().timestamp_millis();
    let (by, label) = (identity(&caller), created_by(&caller));
    let (run, approval, project) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            caller.require(Role::Admin)?;
            match gates::decide(conn, project.id, id, decision, &by, &label, comment.as_deref(), clock_ms)? {
                Answered::Done(run, approval) => Ok((run, approval, project.name)),
                Answered::NoSuchRun => Err(ApiError::NotFound(format!("run {id} not found"))),
                Answered::OwnRun => Err(ApiError::Forbidden(format!(
                    "run {id} was submitted by {by}: another admin must approve or deny it"
                ))),
            }
        })
        .await?;
    tracing::info!(run = id, decision = ?decision, "run approval answered");
    if let Some(hub) = &state.runs {
        hub.wake();
    }
    let mut json = run_json(&run, &project);
    json["approval"] = approval.to_json();
    Ok((StatusCode::OK, Json(json)).into_response())
}

#[utoipa::path(post, path = "/v1/runs/{id}/approve", tag = "runs", security(("bearer" = [])),
    summary = "Approve a run waiting for approval (admin; not the run's submitter): it joins the queue",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::ApprovalBody,
    responses((status = 200, description = "Approved; the run with its approval record", body = crate::api::openapi::RunDoc),
        crate::api::openapi::WriteErrors))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    answer(state, caller, id, raw, body, Decision::Approve).await
}

#[utoipa::path(post, path = "/v1/runs/{id}/deny", tag = "runs", security(("bearer" = [])),
    summary = "Deny a run waiting for approval (admin; not the run's submitter): it ends canceled",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::ApprovalBody,
    responses((status = 200, description = "Denied; the run (canceled) with its approval record", body = crate::api::openapi::RunDoc),
        crate::api::openapi::WriteErrors))]
pub async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    answer(state, caller, id, raw, body, Decision::Deny).await
}
