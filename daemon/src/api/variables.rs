//! `/v1/{projects|groups|hosts}/{id}/variables`: an owner's own variables
//! (GET), merged key by key (PUT), deleted key by key (DELETE). For a host,
//! `?resolved=true` gives what Ansible ends up with, and per key the owner
//! that supplied it (the "blame"), from the same resolver as the inventory.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::model::Project;
use craton::resolve::{Blame, Resolver};
use craton::store::tokens::Role;
use craton::store::variables::{self, key_problem, VarOwner};
use craton::store::DbConn;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::groups::group_index;
use super::hosts::{host_index, resolved_map};
use super::projects::visible_project;
use super::query::Query;
use super::resource::{object_body, object_fields, parse_id, vars_map, FieldReader, RawBody};
use crate::state::AppState;

/// Which resource's variables a route is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Project,
    Group,
    Host,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::Group => "group",
            Kind::Host => "host",
        }
    }

    /// Query parameters: project routes are addressed by the path id, the
    /// others within the caller's project (root: `?project=NAME`).
    fn params(self, extra: &'static [&'static str]) -> Vec<&'static str> {
        let base: &[&str] = if self == Kind::Project { &[] } else { &["project"] };
        base.iter().chain(extra).copied().collect()
    }

    fn owner(self, id: i64) -> VarOwner {
        match self {
            Kind::Project => VarOwner::Project,
            Kind::Group => VarOwner::Group(id),
            Kind::Host => VarOwner::Host(id),
        }
    }
}

object_fields!(KeysBody, ["keys"]);

/// The project a route works in; for project routes, project `id` if the
/// caller sees it.
fn project_of(conn: &mut DbConn, caller: &Caller, kind: Kind, id: i64, q: &Query) -> Result<Project, ApiError> {
    match kind {
        Kind::Project => visible_project(conn, caller, id),
        _ => caller.project(conn, q.get("project")),
    }
}

#[derive(Serialize)]
struct VarsOut<'a> {
    variables: IndexMap<&'a str, &'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blame: Option<IndexMap<&'a str, Blame>>,
}

fn json_bytes(out: &VarsOut) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(out).map_err(|e| ApiError::internal(format!("serializing variables: {e}")))
}

async fn get_vars(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    raw: Option<String>,
) -> Result<Response, ApiError> {
    let extra: &[&str] = if kind == Kind::Host { &["resolved"] } else { &[] };
    let q = Query::parse(raw.as_deref(), &kind.params(extra))?;
    let id = parse_id(kind.what(), &id)?;
    let resolved = kind == Kind::Host && q.flag("resolved")?;
    let st = state.clone();
    let body = state
        .db(move |conn| {
            let project = project_of(conn, &caller, kind, id, &q)?;
            let snap = st.snapshot(conn, &project)?;
            match kind {
                Kind::Project => json_bytes(&VarsOut { variables: vars_map(&snap.all_vars), blame: None }),
                Kind::Group => {
                    let g = group_index(&snap, id)?;
                    json_bytes(&VarsOut { variables: vars_map(&snap.groups[g].vars), blame: None })
                }
                Kind::Host if resolved => {
                    let h = host_index(&snap, id)?;
                    let mut resolver = Resolver::new(&snap);
                    let r = resolver.resolve(h);
                    let blame = r.iter().map(|(k, v)| (*k, resolver.blame(v.owner, v.tier))).collect();
                    json_bytes(&VarsOut { variables: resolved_map(&r), blame: Some(blame) })
                }
                Kind::Host => {
                    let h = host_index(&snap, id)?;
                    json_bytes(&VarsOut { variables: vars_map(&snap.hosts[h].vars), blame: None })
                }
            }
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A PUT body: a JSON object of variable names to any JSON values, each
/// name checked.
fn vars_of(body: &[u8], owner: VarOwner) -> Result<IndexMap<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(format!("body is not valid JSON (line {}, column {}): {e}", e.line(), e.column()))
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad("body must be a JSON object of variable names to values"));
    };
    // A malformed typed envelope (`__craton_map`, `__craton_timestamp`) is
    // refused naming the variable, as a bad key is.
    let details: Vec<FieldError> = obj
        .iter()
        .filter_map(|(k, v)| {
            key_problem(owner, k)
                .or_else(|| craton::typed::check(v).err())
                .map(|message| FieldError { field: k.clone(), message })
        })
        .collect();
    if !details.is_empty() {
        return Err(ApiError::fields(details));
    }
    Ok(obj.into_iter().collect())
}

/// The owner a write is about: visible to the caller (else 404), then the
/// editor role (else 403), in that order like every resource handler.
fn writable_owner(
    conn: &mut DbConn,
    caller: &Caller,
    kind: Kind,
    id: i64,
    q: &Query,
) -> Result<(Project, VarOwner), ApiError> {
    let project = project_of(conn, caller, kind, id, q)?;
    let owner = kind.owner(id);
    variables::check_owner(conn, project.id, owner)?;
    caller.require(Role::Editor)?;
    Ok((project, owner))
}

async fn put_vars(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    raw: Option<String>,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &kind.params(&[]))?;
    let id = parse_id(kind.what(), &id)?;
    state
        .db(move |conn| {
            let (project, owner) = writable_owner(conn, &caller, kind, id, &q)?;
            let vars = vars_of(&body.0, owner)?;
            let now = variables::merge_vars(conn, project.id, owner, &vars)?;
            Ok(Json(json!({ "variables": now })))
        })
        .await
}

/// The keys a DELETE names: `?key=` terms and the body's `keys`.
fn keys_of(body: &[u8], q: &Query) -> Result<Vec<String>, ApiError> {
    let mut keys: Vec<String> = q.all("key").map(str::to_string).collect();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let obj = object_body::<KeysBody>(body)?;
        let mut r = FieldReader::new(&obj);
        let listed = r.strings("keys");
        r.finish()?;
        keys.extend(listed.unwrap_or_default());
    }
    if keys.is_empty() {
        return Err(ApiError::fields(vec![FieldError {
            field: "keys".into(),
            message: "name the keys to delete: a body {\"keys\": [...]} or ?key=NAME".into(),
        }]));
    }
    Ok(keys)
}

async fn delete_vars(
    state: AppState,
    caller: Caller,
    kind: Kind,
    id: String,
    raw: Option<String>,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    let q = Query::parse(raw.as_deref(), &kind.params(&["key"]))?;
    let id = parse_id(kind.what(), &id)?;
    state
        .db(move |conn| {
            let (project, owner) = writable_owner(conn, &caller, kind, id, &q)?;
            let keys = keys_of(&body.0, &q)?;
            variables::delete_vars(conn, project.id, owner, &keys)?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The nine handlers, three per owner kind, with their OpenAPI
/// annotations: route, tag, and the query parameters of GET, PUT and
/// DELETE (names in `crate::api::openapi`).
macro_rules! handlers {
    ($kind:expr, $get:ident, $put:ident, $delete:ident, $path:tt, $tag:tt, $what:tt, $get_q:ident, $put_q:ident, $delete_q:ident) => {
        #[utoipa::path(get, path = $path, tag = $tag, security(("bearer" = [])),
                            summary = $what,
                            params(crate::api::openapi::IdPath, crate::api::openapi::$get_q),
                            responses((status = 200, description = "The variables (and with resolved=true the blame)",
                                body = crate::api::openapi::Variables), crate::api::openapi::ReadErrors))]
        pub async fn $get(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
        ) -> Result<Response, ApiError> {
            get_vars(state, caller, $kind, id, raw).await
        }

        #[utoipa::path(put, path = $path, tag = $tag, security(("bearer" = [])),
                            summary = "Merge variables in, key by key (editor)",
                            params(crate::api::openapi::IdPath, crate::api::openapi::$put_q),
                            request_body = crate::api::openapi::VariablesWrite,
                            responses((status = 200, description = "The owner's variables after the merge",
                                body = crate::api::openapi::Variables), crate::api::openapi::WriteErrors))]
        pub async fn $put(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<Json<Value>, ApiError> {
            put_vars(state, caller, $kind, id, raw, body).await
        }

        #[utoipa::path(delete, path = $path, tag = $tag, security(("bearer" = [])),
                            summary = "Delete the listed variables (editor): body keys and/or ?key=",
                            params(crate::api::openapi::IdPath, crate::api::openapi::$delete_q),
                            request_body(content = crate::api::openapi::KeysBody, description = "Optional: the keys to delete, with or instead of ?key="),
                            responses((status = 204, description = "Deleted"), crate::api::openapi::WriteErrors))]
        pub async fn $delete(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<StatusCode, ApiError> {
            delete_vars(state, caller, $kind, id, raw, body).await
        }
    };
}

handlers!(
    Kind::Project,
    get_project,
    put_project,
    delete_project,
    "/v1/projects/{id}/variables",
    "projects",
    "The project's own variables (the `all` group's)",
    NoParams,
    NoParams,
    ProjectKeysQuery
);
handlers!(
    Kind::Group,
    get_group,
    put_group,
    delete_group,
    "/v1/groups/{id}/variables",
    "groups",
    "The group's own variables",
    ProjectQuery,
    ProjectQuery,
    KeysQuery
);
handlers!(
    Kind::Host,
    get_host,
    put_host,
    delete_host,
    "/v1/hosts/{id}/variables",
    "hosts",
    "The host's own variables, or (resolved=true) resolved with blame",
    ResolvedQuery,
    ProjectQuery,
    KeysQuery
);
