//! `/v1/tokens`: project admins manage their project's tokens, root
//! manages all. The secret is returned once, on creation.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use craton::store::tokens::{self, Role};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::body::ApiJson;
use super::error::ApiError;
use super::extract::{NoQuery, Path};
use super::query::Query;
use super::resource::parse_id;
use crate::state::AppState;

/// List API tokens (admin).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])),
    params(crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The tokens, never with their secrets", body = crate::api::openapi::TokenList),
        crate::api::openapi::AdminReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let project = q.get("project").map(str::to_string);
    let list = state
        .db(move |c| {
            let scope = if caller.is_root() && project.is_none() {
                None
            } else {
                Some(caller.project(c, project.as_deref())?.id)
            };
            Ok(tokens::list(c, scope)?)
        })
        .await?;
    Ok(Json(json!({ "tokens": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: String,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub description: String,
}

impl super::body::Fields for NewToken {
    const FIELDS: &'static [&'static str] = &["role", "project", "description"];
}

/// Create an API token (admin); the secret is returned once.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", security(("bearer" = [])),
    request_body = crate::api::openapi::NewToken,
    responses((status = 201, description = "The new token with its secret", body = crate::api::openapi::CreatedToken),
        crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    _: NoQuery,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let role = Role::parse(&body.role).map_err(ApiError::from)?;
    if role == Role::Root && !caller.is_root() {
        return Err(ApiError::Forbidden("only root can create root tokens".into()));
    }
    let (id, secret) = state
        .db(move |c| {
            let project = if role == Role::Root { None } else { Some(caller.project(c, body.project.as_deref())?.id) };
            Ok(tokens::create(c, project, role, &body.description)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "token": secret, "role": role }))))
}

/// Revoke an API token (admin).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(crate::api::openapi::IdPath),
    responses((status = 204, description = "Revoked"), crate::api::openapi::DeleteErrors))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    _: NoQuery,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id("token", &id)?;
    let scope = caller.grant.project_id;
    let done = state.db(move |c| Ok(tokens::revoke(c, id, scope)?)).await?;
    if !done {
        return Err(ApiError::NotFound(format!("token {id} not found")));
    }
    state.forget_grants();
    Ok(StatusCode::NO_CONTENT)
}
