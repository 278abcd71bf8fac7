//! `/v1/hooks`: a project's outbound webhooks and their delivery log
//! (`crate::hooks` sends them). Admin only, reading included: a hook sends
//! the project's run data to a URL of its choosing and its log shows what
//! that URL answered. The secret is write-only: no response carries it.
//!
//! URL rule: `http(s)://` only; a hook made (or re-pointed) by root may name
//! any host, one made by a project admin only hosts that resolve to public
//! addresses, checked here and again before every attempt.
//!
//! Tenancy as everywhere: another project's hook is a 404, checked before
//! the role (403).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::store::hooks::{self as store_hooks, HookPatch, HookRecord, NewHook};
use craton::store::tokens::Role;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, links, list_body, location, marker_page, object_body, object_fields, parse_id, store_error, to_json,
    FieldReader, Page, RawBody, Window,
};
use crate::state::AppState;

const FIELDS: [&str; 4] = ["url", "secret", "events", "active"];

object_fields!(HookBody, ["url", "secret", "events", "active"]);

fn hook_json(h: &HookRecord, project: &str) -> Result<Value, ApiError> {
    let mut v = to_json(h)?;
    v["project"] = json!(project);
    Ok(v)
}

fn url_field(message: String) -> ApiError {
    ApiError::fields(vec![FieldError { field: "url".into(), message }])
}

/// The URL rule for a caller that is not root (DNS: on a blocking thread).
async fn check_reachable(url: &str, root: bool) -> Result<(), ApiError> {
    if root {
        return Ok(());
    }
    let u = url.to_string();
    tokio::task::spawn_blocking(move || crate::hooks::url_allowed(&u, false))
        .await
        .map_err(|e| ApiError::internal(format!("URL check failed: {e}")))?
        .map_err(url_field)
}

struct Fields {
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    active: Option<bool>,
}

fn read_body(body: &[u8], create: bool) -> Result<Fields, ApiError> {
    let obj = object_body::<HookBody>(body)?;
    let mut r = FieldReader::new(&obj);
    let url = r.string("url");
    let secret = r.string("secret");
    let events = r.strings("events");
    let active = r.bool("active");
    if create {
        r.require("url", url.as_ref());
        r.require("secret", secret.as_ref());
        r.require("events", events.as_ref());
    }
    if let Some(u) = &url {
        r.validated(store_hooks::check_url(u));
    }
    if let Some(s) = &secret {
        r.validated(store_hooks::check_secret(s));
    }
    if let Some(e) = &events {
        r.check("events", craton::hooks::check_events(e));
    }
    r.finish()?;
    Ok(Fields { url, secret, events, active })
}

#[utoipa::path(post, path = "/v1/hooks", tag = "hooks", security(("bearer" = [])),
    summary = "Add an outbound webhook: {url, secret, events, active} (admin); the secret is never shown again",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::NewHook,
    responses((status = 201, description = "Created", body = crate::api::openapi::Hook,
            headers(("Location" = String, description = "Where to read it"))),
        crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let requested = q.get("project").map(str::to_string);
    let (c, r) = (caller.clone(), requested.clone());
    state
        .db(move |conn| {
            c.project(conn, r.as_deref())?;
            c.require(Role::Admin)
        })
        .await?;
    let f = read_body(&body, true)?;
    let (Some(url), Some(secret), Some(events)) = (f.url, f.secret, f.events) else {
        return Err(ApiError::bad("url, secret and events are required"));
    };
    let root = caller.is_root();
    check_reachable(&url, root).await?;
    let new = NewHook { url, secret, events, active: f.active.unwrap_or(true), created_by_root: root };
    let (id, out) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let h = store_hooks::create(conn, project.id, &new).map_err(|e| store_error(e, &FIELDS))?;
            Ok((h.id, hook_json(&h, &project.name)?))
        })
        .await?;
    Ok(created(location("/v1/hooks", id, q.get("project")), out))
}

#[utoipa::path(get, path = "/v1/hooks", tag = "hooks", security(("bearer" = [])),
    summary = "List the project's outbound webhooks (admin); limit + marker paging",
    params(crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::HookList), crate::api::openapi::AdminReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "limit", "marker"])?;
    let page = Page::from_query(&q)?;
    let requested = q.get("project").map(str::to_string);
    let (hooks, project) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            caller.require(Role::Admin)?;
            Ok((store_hooks::list(conn, project.id, page.marker, page.limit as i64 + 1)?, project.name))
        })
        .await?;
    let more = hooks.len() > page.limit;
    let shown = &hooks[..hooks.len().min(page.limit)];
    let items = shown.iter().map(|h| hook_json(h, &project)).collect::<Result<Vec<_>, _>>()?;
    let w = Window {
        items: (0..shown.len()).collect(),
        next: if more { shown.last().map(|h| h.id) } else { None },
        prev: None,
    };
    Ok(list_body(items, links("/v1/hooks", &q, page, &w)))
}

#[utoipa::path(get, path = "/v1/hooks/{id}", tag = "hooks", security(("bearer" = [])),
    summary = "One outbound webhook (admin): URL, events, active; never the secret",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The hook", body = crate::api::openapi::Hook), crate::api::openapi::AdminReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("hook", &id)?;
    let requested = q.get("project").map(str::to_string);
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let h = store_hooks::get(conn, project.id, id)?;
            caller.require(Role::Admin)?;
            Ok(Json(hook_json(&h, &project.name)?))
        })
        .await
}

#[utoipa::path(patch, path = "/v1/hooks/{id}", tag = "hooks", security(("bearer" = [])),
    summary = "Change some fields of an outbound webhook (admin): url, secret, events, active",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::HookPatch,
    responses((status = 200, description = "The hook as changed", body = crate::api::openapi::Hook), crate::api::openapi::WriteErrors))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("hook", &id)?;
    let requested = q.get("project").map(str::to_string);
    let (c, r) = (caller.clone(), requested.clone());
    state
        .db(move |conn| {
            let project = c.project(conn, r.as_deref())?;
            store_hooks::get(conn, project.id, id)?;
            c.require(Role::Admin)
        })
        .await?;
    let f = read_body(&body, false)?;
    let root = caller.is_root();
    if let Some(u) = &f.url {
        check_reachable(u, root).await?;
    }
    let patch = HookPatch {
        created_by_root: f.url.as_ref().map(|_| root),
        url: f.url,
        secret: f.secret,
        events: f.events,
        active: f.active,
    };
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let h = store_hooks::update(conn, project.id, id, &patch).map_err(|e| store_error(e, &FIELDS))?;
            Ok(Json(hook_json(&h, &project.name)?))
        })
        .await
}

#[utoipa::path(delete, path = "/v1/hooks/{id}", tag = "hooks", security(("bearer" = [])),
    summary = "Delete an outbound webhook with its deliveries and their log (admin)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("hook", &id)?;
    let requested = q.get("project").map(str::to_string);
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            store_hooks::get(conn, project.id, id)?;
            caller.require(Role::Admin)?;
            Ok(store_hooks::delete(conn, project.id, id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/hooks/{id}/deliveries", tag = "hooks", security(("bearer" = [])),
    summary = "A hook's deliveries, newest first, each with its attempts (response code or error) (admin); limit + marker paging",
    params(crate::api::openapi::IdPath, crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::HookDeliveryList), crate::api::openapi::AdminReadErrors))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "limit", "marker"])?;
    let id = parse_id("hook", &id)?;
    let page = Page::from_query(&q)?;
    let requested = q.get("project").map(str::to_string);
    let rows = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            store_hooks::get(conn, project.id, id)?;
            caller.require(Role::Admin)?;
            Ok(store_hooks::deliveries(conn, project.id, id, page.marker, page.limit as i64 + 1)?)
        })
        .await?;
    let (rows, links) = marker_page(&format!("/v1/hooks/{id}/deliveries"), &q, page, rows, |d| d.delivery.id);
    let items = rows.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
    Ok(list_body(items, links))
}
