//! `/v1/projects`: root lists, creates, renames and deletes projects; a
//! project token sees its own project only, in the list and by id, and
//! cannot change it (another project is a 404, its own a 403).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::model::Project;
use craton::store::tokens::Role;
use craton::store::variables::{self, VarOwner};
use craton::store::{self, project_admin, DbConn};
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, links, list_body, object_body, object_fields, parse_id, store_error, vars_map, window, with_vars,
    FieldReader, Mode, Page, RawBody,
};
use crate::state::AppState;

const LIST_PARAMS: [&str; 4] = ["name", "details", "limit", "marker"];
const FIELDS: [&str; 2] = ["name", "max_concurrent_runs"];

object_fields!(ProjectBody, ["name", "max_concurrent_runs"]);

/// The project's record with its run queue setting.
fn with_queue(conn: &mut DbConn, mut v: Value, pid: i64) -> Result<Value, ApiError> {
    if let Value::Object(m) = &mut v {
        m.insert("max_concurrent_runs".into(), store::queue::max_concurrent(conn, pid)?.into());
    }
    Ok(v)
}

/// The project with its variables (the `all` group's) from the cached
/// snapshot.
fn project_json(state: &AppState, conn: &mut DbConn, p: &Project, with_variables: bool) -> Result<Value, ApiError> {
    if !with_variables {
        let v = with_vars::<_, ()>(p, None)?;
        return with_queue(conn, v, p.id);
    }
    let snap = state.snapshot(conn, p)?;
    let v = with_vars(p, Some(&vars_map(&snap.all_vars)))?;
    with_queue(conn, v, p.id)
}

/// Project `id` if the caller may see it; otherwise not found, exactly as
/// for an id never used.
pub(crate) fn visible_project(conn: &mut DbConn, caller: &Caller, id: i64) -> Result<Project, ApiError> {
    store::project_by_id(conn, id)?
        .filter(|p| caller.sees_project(p.id))
        .ok_or_else(|| ApiError::NotFound(format!("project {id} not found")))
}

#[utoipa::path(get, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    summary = "List projects (root: all; a project token: its own)",
    params(crate::api::openapi::ProjectListQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::ProjectList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &LIST_PARAMS)?;
    let page = Page::from_query(&q)?;
    let details = q.flag("details")?;
    let st = state.clone();
    state
        .db(move |conn| {
            let visible: Vec<Project> =
                project_admin::list_projects(conn)?.into_iter().filter(|p| caller.sees_project(p.id)).collect();
            let ids: Vec<i64> = visible.iter().map(|p| p.id).collect();
            let name = q.get("name");
            let w = window(&ids, page, |i| name.is_none_or(|n| visible[i].name == n));
            let items =
                w.items.iter().map(|&i| project_json(&st, conn, &visible[i], details)).collect::<Result<_, _>>()?;
            Ok(list_body(items, links("/v1/projects", &q, page, &w)))
        })
        .await
}

#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    summary = "One project with its variables",
    params(crate::api::openapi::IdPath),
    responses((status = 200, description = "The project, with its variables", body = crate::api::openapi::Project), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Query::parse(raw.as_deref(), &[])?;
    let id = parse_id("project", &id)?;
    let st = state.clone();
    state
        .db(move |conn| {
            let p = visible_project(conn, &caller, id)?;
            Ok(Json(project_json(&st, conn, &p, true)?))
        })
        .await
}

/// The body's name and `max_concurrent_runs` (a replace or create
/// without it: the default, one).
fn name_of(body: &[u8], mode: Mode) -> Result<(Option<String>, Option<i64>), ApiError> {
    let obj = object_body::<ProjectBody>(body)?;
    let mut r = FieldReader::new(&obj);
    let name = r.string("name");
    let name = if mode == Mode::Patch { name } else { r.require("name", name) };
    if let Some(n) = &name {
        r.check("name", craton::import::check_name("project", n));
    }
    let max = r.nullable_int("max_concurrent_runs");
    let max = match max {
        Some(Some(n)) if !(1..=store::queue::MAX_CONCURRENT).contains(&n) => {
            r.error("max_concurrent_runs", format!("must be from 1 to {}", store::queue::MAX_CONCURRENT));
            None
        }
        Some(n) => Some(n.unwrap_or(1)),
        None if mode == Mode::Patch => None,
        None => Some(1),
    };
    r.finish()?;
    Ok((name, max))
}

#[utoipa::path(post, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    summary = "Create a project (root)",
    request_body = crate::api::openapi::ProjectWrite,
    responses((status = 201, description = "Created, with its variables", body = crate::api::openapi::Project, headers(("Location" = String, description = "Where to read it"))), crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    Query::parse(raw.as_deref(), &[])?;
    caller.require(Role::Root)?;
    let (name, max) = name_of(&body, Mode::Create)?;
    let name = name.unwrap_or_default();
    let body = state
        .db(move |conn| {
            let p = project_admin::create_project(conn, &name).map_err(|e| store_error(e, &FIELDS))?;
            if let Some(m) = max.filter(|m| *m != 1) {
                store::queue::set_max_concurrent(conn, p.id, m)?;
            }
            let body = with_vars(&p, Some(&serde_json::Map::new()))?;
            Ok((p.id, with_queue(conn, body, p.id)?))
        })
        .await?;
    let (pid, body) = body;
    Ok(created(format!("/v1/projects/{pid}"), body))
}

async fn update(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    body: RawBody,
    mode: Mode,
) -> Result<Json<Value>, ApiError> {
    Query::parse(raw.as_deref(), &[])?;
    let id = parse_id("project", &id)?;
    state
        .db(move |conn| {
            let current = visible_project(conn, &caller, id)?;
            caller.require(Role::Root)?;
            let (name, max) = name_of(&body.0, mode)?;
            let p = match name {
                Some(name) => project_admin::rename_project(conn, id, &name).map_err(|e| store_error(e, &FIELDS))?,
                None => current,
            };
            if let Some(m) = max {
                store::queue::set_max_concurrent(conn, p.id, m)?;
            }
            let vars = variables::own_vars(conn, p.id, VarOwner::Project)?;
            let v = with_vars(&p, Some(&vars))?;
            Ok(Json(with_queue(conn, v, p.id)?))
        })
        .await
}

super::resource::patch_and_put!(
    update,
    "/v1/projects/{id}",
    "projects",
    "Rename a project (root)",
    "Replace a project's fields (root)",
    NoParams,
    ProjectPatch,
    ProjectWrite,
    Project
);

#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    summary = "Delete a project with everything in it (root)",
    params(crate::api::openapi::IdPath),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    Query::parse(raw.as_deref(), &[])?;
    let id = parse_id("project", &id)?;
    state
        .db(move |conn| {
            visible_project(conn, &caller, id)?;
            caller.require(Role::Root)?;
            Ok(project_admin::delete_project(conn, id)?)
        })
        .await?;
    // The project's tokens are gone: stop trusting their cached grants now.
    state.forget_grants();
    Ok(StatusCode::NO_CONTENT)
}
