//! `/v1/config-refs`: git config refs of the caller's project (root:
//! `?project=NAME`). Readers list and read them with their sync status;
//! editors create, delete and trigger them. Another project's ref is a 404,
//! exactly as an id never used.
//!
//! Order of checks on the writes by id (DELETE, POST .../sync): role (403),
//! then visibility (404). The role is a property of the token alone, so
//! answering it first tells nothing about other projects.
//!
//! A new ref's URL must pass the repository policy (`crate::repo_policy`)
//! for the caller: 403 naming the rule otherwise. Every sync checks it
//! again with the creator's privilege.
//!
//! Deleting a ref deletes the variables it owns. A variable a ref owns
//! cannot be changed or deleted through `/variables` (409 naming the ref).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::store::config_refs::{self, ConfigRef, NewRef};
use craton::store::edit::{group_id, Ref};
use craton::store::now_ms;
use craton::store::tokens::Role;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, links, list_body, location, object_body, object_fields, parse_id, store_error, window, FieldReader, Page,
    RawBody,
};
use crate::repo_policy::Actor;
use crate::state::AppState;

const LIST_PARAMS: [&str; 3] = ["project", "limit", "marker"];
const FIELDS: [&str; 5] = ["url", "ref", "path", "group", "poll_interval"];

object_fields!(RefBody, ["url", "ref", "path", "group", "poll_interval"]);
object_fields!(SyncBody, ["force"]);

/// A ref as the API shows it.
pub fn ref_json(r: &ConfigRef, group: Option<&str>) -> Value {
    let now = now_ms();
    json!({
        "id": r.id,
        "url": r.url,
        "ref": r.git_ref,
        "path": r.path,
        "group": group,
        "poll_interval": r.poll_interval_secs,
        "status": {
            "result": r.last_result,
            "commit": r.last_commit,
            "synced_at": r.last_synced_at,
            "attempted_at": r.last_attempt_at,
            "error": r.last_error,
            "counts": r.counts,
            "failures": r.failures,
            "next_poll_at": r.next_poll_at,
            "sync_requested": r.sync_requested_at.is_some(),
            "in_progress": r.lease_holder.is_some() && r.lease_expires_at.is_some_and(|t| t > now),
        },
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

fn refs_json(conn: &mut craton::store::DbConn, refs: &[&ConfigRef]) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<i64> = refs.iter().filter_map(|r| r.group_id).collect();
    let names = config_refs::group_names(conn, &ids)?;
    Ok(refs.iter().map(|r| ref_json(r, r.group_id.and_then(|g| names.get(&g)).map(String::as_str))).collect())
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("config ref {id} not found"))
}

/// The repository policy's verdict on a new ref's URL: 403 naming the
/// rule and the URL. It may resolve the URL's host (which a hostile DNS
/// server can make slow), so it runs on a blocking thread of its own,
/// holding no database connection. A URL the field checks will refuse is
/// left to them (400 naming the field).
async fn check_policy_first(
    state: &AppState,
    caller: &Caller,
    requested: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let url = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("url")?.as_str().map(str::to_string));
    let Some(url) = url.filter(|u| config_refs::check_url(u).is_ok()) else {
        return Ok(());
    };
    let (c, requested) = (caller.clone(), requested.map(str::to_string));
    let project = state
        .db(move |conn| {
            let p = c.project(conn, requested.as_deref())?;
            c.require(Role::Editor)?;
            Ok(p.name)
        })
        .await?;
    let policy = state.sync.as_ref().map(|h| h.settings().policy.clone()).unwrap_or_default();
    let actor = Actor::root_if(caller.is_root());
    tokio::task::spawn_blocking(move || policy.check_repo_url(&project, &url, actor))
        .await
        .map_err(|e| ApiError::internal(format!("policy check failed: {e}")))?
        .map_err(|e| ApiError::Forbidden(e.to_string()))
}

#[utoipa::path(get, path = "/v1/config-refs", tag = "config-refs", security(("bearer" = [])),
    summary = "List git config refs with their sync status",
    params(crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::ConfigRefList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &LIST_PARAMS)?;
    let page = Page::from_query(&q)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let refs = config_refs::list(conn, Some(project.id))?;
            let ids: Vec<i64> = refs.iter().map(|r| r.id).collect();
            let w = window(&ids, page, |_| true);
            let shown: Vec<&ConfigRef> = w.items.iter().map(|&i| &refs[i]).collect();
            let items = refs_json(conn, &shown)?;
            Ok(list_body(items, links("/v1/config-refs", &q, page, &w)))
        })
        .await
}

#[utoipa::path(get, path = "/v1/config-refs/{id}", tag = "config-refs", security(("bearer" = [])),
    summary = "One config ref: last synced commit, time, result, error (file:line), counts",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The ref with its status", body = crate::api::openapi::ConfigRef), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("config ref", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let r = config_refs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            Ok(Json(refs_json(conn, &[&r])?.remove(0)))
        })
        .await
}

#[utoipa::path(post, path = "/v1/config-refs", tag = "config-refs", security(("bearer" = [])),
    summary = "Add a git config ref (editor); it is synced at once in the background",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::NewConfigRef,
    responses((status = 201, description = "Created", body = crate::api::openapi::ConfigRef,
            headers(("Location" = String, description = "Where to read it"))),
        crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let named = q.get("project").map(str::to_string);
    let hub = state.sync.clone();
    check_policy_first(&state, &caller, q.get("project"), &body).await?;
    let r = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            caller.require(Role::Editor)?;
            let obj = object_body::<RefBody>(&body)?;
            let mut f = FieldReader::new(&obj);
            let url = f.string("url");
            let url = f.require("url", url);
            let git_ref = f.string("ref");
            let git_ref = f.require("ref", git_ref);
            let path = f.string("path").unwrap_or_default();
            let group = f.nullable_ref("group").flatten();
            let poll = f.nullable_int("poll_interval").flatten();
            if let Some(u) = &url {
                f.check("url", config_refs::check_url(u));
            }
            if let Some(r) = &git_ref {
                f.check("ref", config_refs::check_git_ref(r));
            }
            f.check("path", config_refs::normalize_path(&path).map(|_| ()));
            let gid = match &group {
                Some(g) => f.validated(group_id(conn, project.id, "group", g)),
                None => None,
            };
            f.finish()?;
            let new = NewRef {
                url: url.unwrap_or_default(),
                git_ref: git_ref.unwrap_or_default(),
                path,
                group_id: gid,
                poll_interval_secs: poll,
                created_by_root: caller.is_root(),
            };
            let r = config_refs::create(conn, project.id, &new).map_err(|e| store_error(e, &FIELDS))?;
            let group_name = match &group {
                Some(Ref::Name(n)) => Some(n.clone()),
                Some(Ref::Id(_)) => r.group_id.and_then(|g| config_refs::group_names(conn, &[g]).ok()?.remove(&g)),
                None => None,
            };
            Ok((r, group_name))
        })
        .await?;
    // A new ref is synced at once by this process's workers.
    if let Some(hub) = hub {
        hub.request(r.0.id, false);
    }
    Ok(created(location("/v1/config-refs", r.0.id, named.as_deref()), ref_json(&r.0, r.1.as_deref())))
}

#[utoipa::path(delete, path = "/v1/config-refs/{id}", tag = "config-refs", security(("bearer" = [])),
    summary = "Delete a config ref and the variables it owns (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    caller.require(Role::Editor)?;
    let id = parse_id("config ref", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            if !config_refs::delete(conn, project.id, id)? {
                return Err(not_found(id));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks for a sync now (`?force=true` or `{"force": true}`: apply the
/// commit again even if it was synced already). Answers 202 at once; the
/// sync runs in the background (the ref's status tells how it went).
#[utoipa::path(post, path = "/v1/config-refs/{id}/sync", tag = "config-refs", security(("bearer" = [])),
    summary = "Sync a config ref now, in the background (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::SyncQuery),
    request_body(content = crate::api::openapi::SyncRequest, description = "Optional: force, as ?force= does"),
    responses((status = 202, description = "Sync requested; the ref's status tells how it went", body = crate::api::openapi::SyncAccepted),
        crate::api::openapi::WriteErrors))]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "force"])?;
    caller.require(Role::Editor)?;
    let id = parse_id("config ref", &id)?;
    let mut force = q.flag("force")?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let obj = object_body::<SyncBody>(&body)?;
        let mut f = FieldReader::new(&obj);
        force |= f.bool("force").unwrap_or(false);
        f.finish()?;
    }
    let requested_at = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            config_refs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            Ok(config_refs::request_sync(conn, id)?)
        })
        .await?;
    if let Some(hub) = &state.sync {
        hub.request(id, force);
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id, "sync_requested_at": requested_at, "force": force})))
        .into_response())
}
