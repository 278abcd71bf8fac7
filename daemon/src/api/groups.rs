//! `/v1/groups`: groups of the caller's project (root: `?project=NAME`),
//! with their parents and children. Reads come from the cached snapshot;
//! writes go to the store, one transaction each.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

use craton::model::Project;
use craton::model::Snapshot;
use craton::store::edit::{check_text, Ref};
use craton::store::groups::{
    self, check_group_name, priority_i32, GroupChange, GroupRecord, MAX_DESCRIPTION_CHARS, MAX_KIND_CHARS,
};
use craton::store::tokens::Role;
use craton::store::variables::{self, VarOwner};
use craton::store::DbConn;
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, links, list_body, location, object_body, object_fields, parse_id, store_error, vars_map, window,
    with_vars, FieldReader, Mode, Page, RawBody,
};
use crate::state::AppState;

const LIST_PARAMS: [&str; 6] = ["project", "name", "kind", "details", "limit", "marker"];
const ONE_PARAMS: [&str; 1] = ["project"];
const FIELDS: [&str; 6] = ["name", "kind", "description", "priority", "parents", "children"];

object_fields!(GroupBody, ["name", "kind", "description", "priority", "parents", "children"]);

/// Index of group `id` in the snapshot (groups are sorted by id).
pub(crate) fn group_index(snap: &Snapshot, id: i64) -> Result<usize, ApiError> {
    snap.groups.binary_search_by_key(&id, |g| g.id).map_err(|_| ApiError::NotFound(format!("group {id} not found")))
}

/// What a handler of `/v1/groups/{id}/...` works on: the caller's project,
/// its snapshot and the group's index in it (404 before anything else).
pub(crate) struct InGroup<'a> {
    pub conn: &'a mut DbConn,
    pub state: &'a AppState,
    pub project: Project,
    pub snap: Arc<Snapshot>,
    pub g: usize,
    pub id: i64,
}

/// The opening every group-scoped route shares: `?project=` only, the path
/// id parsed, then `f` on the blocking pool with the group found.
pub(crate) async fn in_group<T, F>(
    state: &AppState,
    caller: Caller,
    id: &str,
    raw: Option<&str>,
    f: F,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(InGroup<'_>) -> Result<T, ApiError> + Send + 'static,
{
    let q = Query::parse(raw, &ONE_PARAMS)?;
    let id = parse_id("group", id)?;
    let st = state.clone();
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let snap = st.snapshot(conn, &project)?;
            let g = group_index(&snap, id)?;
            f(InGroup { conn, state: &st, project, snap, g, id })
        })
        .await
}

fn group_json(snap: &Snapshot, g: usize, with_variables: bool) -> Result<Value, ApiError> {
    let rec = GroupRecord::from_snapshot(snap, g);
    with_vars(&rec, with_variables.then(|| vars_map(&snap.groups[g].vars)).as_ref())
}

#[utoipa::path(get, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    summary = "List groups; filters name, kind; limit + marker paging",
    params(crate::api::openapi::GroupListQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::GroupList), crate::api::openapi::ReadErrors))]
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
            let project = caller.project(conn, q.get("project"))?;
            let snap = st.snapshot(conn, &project)?;
            let ids: Vec<i64> = snap.groups.iter().map(|g| g.id).collect();
            let (name, kind) = (q.get("name"), q.get("kind"));
            let w = window(&ids, page, |i| {
                let g = &snap.groups[i];
                name.is_none_or(|n| g.name == n) && kind.is_none_or(|k| g.kind == k)
            });
            let items = w.items.iter().map(|&i| group_json(&snap, i, details)).collect::<Result<_, _>>()?;
            Ok(list_body(items, links("/v1/groups", &q, page, &w)))
        })
        .await
}

#[utoipa::path(get, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    summary = "One group with its variables",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The group, with its variables", body = crate::api::openapi::Group), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    in_group(&state, caller, &id, raw.as_deref(), |x| Ok(Json(group_json(&x.snap, x.g, true)?))).await
}

/// The change a body asks for, every field checked.
fn change_of(body: &[u8], mode: Mode) -> Result<GroupChange, ApiError> {
    let obj = object_body::<GroupBody>(body)?;
    let mut r = FieldReader::new(&obj);
    let name = r.string("name");
    let name = if mode == Mode::Patch { name } else { r.require("name", name) };
    if let Some(n) = &name {
        r.validated(check_group_name(n));
    }
    let kind = r.string("kind");
    if let Some(k) = &kind {
        r.validated(check_text("kind", k, Some(MAX_KIND_CHARS)));
    }
    let description = r.nullable_string("description");
    if let Some(Some(d)) = &description {
        r.validated(check_text("description", d, Some(MAX_DESCRIPTION_CHARS)));
    }
    let priority = r.nullable_int("priority");
    if let Some(p) = priority {
        r.validated(priority_i32(p));
    }
    let parents = r.refs("parents");
    let children = r.refs("children");
    let change = GroupChange {
        name,
        kind: r.or_default(mode, kind, String::new),
        description: r.or_default(mode, description, || None),
        priority: r.or_default(mode, priority, || None),
        parents: r.or_default(mode, parents, Vec::<Ref>::new),
        children: r.or_default(mode, children, Vec::<Ref>::new),
    };
    r.finish()?;
    Ok(change)
}

/// The group as written, with its variables, read back from the store.
fn written(conn: &mut craton::store::DbConn, pid: i64, rec: GroupRecord) -> Result<Value, ApiError> {
    let vars = variables::own_vars(conn, pid, VarOwner::Group(rec.id))?;
    with_vars(&rec, Some(&vars))
}

#[utoipa::path(post, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    summary = "Create a group (editor)",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::GroupWrite,
    responses((status = 201, description = "Created, with its variables", body = crate::api::openapi::Group, headers(("Location" = String, description = "Where to read it"))), crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let project = q.get("project").map(str::to_string);
    let (id, body) = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            caller.require(Role::Editor)?;
            let change = change_of(&body, Mode::Create)?;
            let rec = groups::create_group(conn, project.id, &change).map_err(|e| store_error(e, &FIELDS))?;
            Ok((rec.id, written(conn, project.id, rec)?))
        })
        .await?;
    Ok(created(location("/v1/groups", id, project.as_deref()), body))
}

async fn update(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    body: RawBody,
    mode: Mode,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("group", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            groups::get_group(conn, project.id, id)?;
            caller.require(Role::Editor)?;
            let change = change_of(&body.0, mode)?;
            let rec = groups::update_group(conn, project.id, id, &change).map_err(|e| store_error(e, &FIELDS))?;
            Ok(Json(written(conn, project.id, rec)?))
        })
        .await
}

super::resource::patch_and_put!(
    update,
    "/v1/groups/{id}",
    "groups",
    "Change some fields of a group (editor)",
    "Replace a group's fields (editor)",
    ProjectQuery,
    GroupPatch,
    GroupWrite,
    Group
);

#[utoipa::path(delete, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    summary = "Delete a group (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("group", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            groups::get_group(conn, project.id, id)?;
            caller.require(Role::Editor)?;
            Ok(groups::delete_group(conn, project.id, id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
