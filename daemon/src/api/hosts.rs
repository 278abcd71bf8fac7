//! `/v1/hosts`: hosts of the caller's project (root: `?project=NAME`) with
//! labels, group memberships and parent host. Lists filter on the cached
//! snapshot, `vars=key:json` terms on each host's resolved value (the
//! resolver Ansible's output is checked against), so filtering behaves the
//! same on every backend.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::model::Snapshot;
use craton::resolve::{ResolvedVars, Resolver};
use craton::store::edit::Ref;
use craton::store::hosts::{self, normalize_ip, normalize_labels, HostChange, HostRecord};
use craton::store::runs::{self as store_runs, HostRunState};
use craton::store::tokens::Role;
use craton::store::variables::{self, VarOwner};
use indexmap::IndexMap;
use serde_json::value::RawValue;
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

const LIST_PARAMS: [&str; 12] = [
    "project",
    "name",
    "group",
    "label",
    "parent",
    "active",
    "vars",
    "details",
    "resolved",
    "last_run_status",
    "limit",
    "marker",
];
const GET_PARAMS: [&str; 2] = ["project", "resolved"];
const WRITE_PARAMS: [&str; 1] = ["project"];
const FIELDS: [&str; 6] = ["name", "ip_address", "active", "parent", "labels", "groups"];

object_fields!(HostBody, ["name", "ip_address", "active", "parent", "labels", "groups"]);

/// Index of host `id` in the snapshot (hosts are sorted by id).
pub(crate) fn host_index(snap: &Snapshot, id: i64) -> Result<usize, ApiError> {
    snap.hosts.binary_search_by_key(&id, |h| h.id).map_err(|_| ApiError::NotFound(format!("host {id} not found")))
}

/// A resolved map as JSON values.
pub(crate) fn resolved_map<'a>(r: &ResolvedVars<'a>) -> IndexMap<&'a str, &'a RawValue> {
    r.iter().map(|(k, v)| (*k, v.value)).collect()
}

fn host_json(
    snap: &Snapshot,
    resolver: &mut Resolver,
    h: usize,
    vars: bool,
    resolved: bool,
) -> Result<Value, ApiError> {
    let rec = HostRecord::from_snapshot(snap, h);
    if !vars {
        return with_vars::<_, ()>(&rec, None);
    }
    if resolved {
        let r = resolver.resolve(h);
        return with_vars(&rec, Some(&resolved_map(&r)));
    }
    with_vars(&rec, Some(&vars_map(&snap.hosts[h].vars)))
}

/// A group or host named in a query: by name, else by id.
fn find_by_name_or_id<T>(items: &[T], raw: &str, name: impl Fn(&T) -> &str, id: impl Fn(&T) -> i64) -> Option<usize> {
    items.iter().position(|x| name(x) == raw).or_else(|| {
        let want: i64 = raw.parse().ok()?;
        items.binary_search_by_key(&want, id).ok()
    })
}

/// The list filters of a request; each is ANDed with the others.
struct Filters {
    name: Option<String>,
    labels: Vec<String>,
    /// Hosts of groups in the subtree (`None`: no filter).
    in_groups: Option<Vec<bool>>,
    /// `Some(None)`: the named parent does not exist, nothing matches.
    parent: Option<Option<usize>>,
    active: Option<bool>,
    vars: Vec<(String, Value)>,
    /// Ids of the hosts whose last run left them in the asked status.
    last_run: Option<std::collections::HashSet<i64>>,
}

/// A host's reachability from the last run that targeted it (not a
/// variable: the inventory never changes because a run happened).
fn last_run_json(s: Option<&HostRunState>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => serde_json::json!({
            "run": s.last_run_id,
            "status": s.last_run_status,
            "at": s.last_run_at,
            "reachable_at": s.last_reachable_at,
            "unreachable_at": s.last_unreachable_at,
        }),
    }
}

/// Adds `last_run` to host objects (one query for the page).
fn add_last_run(conn: &mut craton::store::DbConn, items: &mut [Value]) -> Result<(), ApiError> {
    let ids: Vec<i64> = items.iter().filter_map(|v| v["id"].as_i64()).collect();
    let states = store_runs::host_states(conn, &ids)?;
    for v in items {
        if let (Some(id), Value::Object(m)) = (v["id"].as_i64(), &mut *v) {
            m.insert("last_run".into(), last_run_json(states.get(&id)));
        }
    }
    Ok(())
}

impl Filters {
    fn parse(q: &Query, snap: &Snapshot, conn: &mut craton::store::DbConn) -> Result<Filters, ApiError> {
        let in_groups = q.get("group").map(|g| {
            let mut set = vec![false; snap.groups.len()];
            if let Some(i) = find_by_name_or_id(&snap.groups, g, |x| &x.name, |x| x.id) {
                for s in snap.subtree(i) {
                    set[s] = true;
                }
            }
            set
        });
        let parent = q.get("parent").map(|p| find_by_name_or_id(&snap.hosts, p, |x| &x.name, |x| x.id));
        let active = if q.get("active").is_some() { Some(q.flag("active")?) } else { None };
        let last_run = match q.get("last_run_status") {
            None => None,
            Some(s) => {
                let known = ["ok", "changed", "failed", "unreachable", "skipped"];
                if !known.contains(&s) {
                    return Err(ApiError::fields(vec![super::error::FieldError {
                        field: "last_run_status".into(),
                        message: format!("{s:?} is not one of {}", known.join(", ")),
                    }]));
                }
                Some(store_runs::hosts_with_status(conn, snap.project.id, s)?.into_iter().collect())
            }
        };
        Ok(Filters {
            name: q.get("name").map(str::to_string),
            labels: q.all("label").map(str::to_string).collect(),
            in_groups,
            parent,
            active,
            vars: q.var_filters()?,
            last_run,
        })
    }

    fn matches(&self, snap: &Snapshot, resolver: &mut Resolver, h: usize) -> bool {
        let host = &snap.hosts[h];
        self.name.as_ref().is_none_or(|n| &host.name == n)
            && self.active.is_none_or(|a| host.active == a)
            && self.labels.iter().all(|l| host.labels.binary_search(l).is_ok())
            && self.in_groups.as_ref().is_none_or(|set| host.groups.iter().any(|&g| set[g]))
            && self.parent.is_none_or(|p| p.is_some() && host.parent == p)
            && self.last_run.as_ref().is_none_or(|ids| ids.contains(&host.id))
            && self.vars.iter().all(|(k, want)| {
                // Type-strict: the resolved JSON value must equal the term's.
                resolver
                    .resolve_key(h, k)
                    .and_then(|r| serde_json::from_str::<Value>(r.value.get()).ok())
                    .is_some_and(|got| &got == want)
            })
    }
}

#[utoipa::path(get, path = "/v1/hosts", tag = "hosts", security(("bearer" = [])),
    summary = "List hosts; filters name, group, label, parent, active, vars, last_run_status; limit + marker paging",
    params(crate::api::openapi::HostListQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::HostList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &LIST_PARAMS)?;
    let page = Page::from_query(&q)?;
    let resolved = q.flag("resolved")?;
    let details = q.flag("details")? || resolved;
    let st = state.clone();
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let snap = st.snapshot(conn, &project)?;
            let filters = Filters::parse(&q, &snap, conn)?;
            let mut resolver = Resolver::new(&snap);
            let ids: Vec<i64> = snap.hosts.iter().map(|h| h.id).collect();
            let w = window(&ids, page, |i| filters.matches(&snap, &mut resolver, i));
            let mut items: Vec<Value> = w
                .items
                .iter()
                .map(|&i| host_json(&snap, &mut resolver, i, details, resolved))
                .collect::<Result<_, _>>()?;
            if details {
                add_last_run(conn, &mut items)?;
            }
            Ok(list_body(items, links("/v1/hosts", &q, page, &w)))
        })
        .await
}

#[utoipa::path(get, path = "/v1/hosts/{id}", tag = "hosts", security(("bearer" = [])),
    summary = "One host with its own or (resolved=true) resolved variables",
    params(crate::api::openapi::IdPath, crate::api::openapi::ResolvedQuery),
    responses((status = 200, description = "The host, with its variables", body = crate::api::openapi::Host), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &GET_PARAMS)?;
    let id = parse_id("host", &id)?;
    let resolved = q.flag("resolved")?;
    let st = state.clone();
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let snap = st.snapshot(conn, &project)?;
            let h = host_index(&snap, id)?;
            let mut resolver = Resolver::new(&snap);
            let mut one = [host_json(&snap, &mut resolver, h, true, resolved)?];
            add_last_run(conn, &mut one)?;
            let [host] = one;
            Ok(Json(host))
        })
        .await
}

/// The change a body asks for, every field checked.
fn change_of(body: &[u8], mode: Mode) -> Result<HostChange, ApiError> {
    let obj = object_body::<HostBody>(body)?;
    let mut r = FieldReader::new(&obj);
    let name = r.string("name");
    let name = if mode == Mode::Patch { name } else { r.require("name", name) };
    if let Some(n) = &name {
        r.check("name", craton::import::check_name("host", n));
    }
    let ip_address = match r.nullable_string("ip_address") {
        Some(Some(ip)) => r.validated(normalize_ip(&ip)).map(Some),
        other => other,
    };
    let active = r.bool("active");
    let parent = r.nullable_ref("parent");
    let labels = r.strings("labels");
    if let Some(l) = &labels {
        r.validated(normalize_labels(l));
    }
    let groups = r.refs("groups");
    let change = HostChange {
        name,
        ip_address: r.or_default(mode, ip_address, || None),
        active: r.or_default(mode, active, || true),
        parent: r.or_default(mode, parent, || None),
        labels: r.or_default(mode, labels, Vec::new),
        groups: r.or_default(mode, groups, Vec::<Ref>::new),
    };
    r.finish()?;
    Ok(change)
}

/// The host as written, with its variables, read back from the store.
fn written(conn: &mut craton::store::DbConn, pid: i64, rec: HostRecord) -> Result<Value, ApiError> {
    let vars = variables::own_vars(conn, pid, VarOwner::Host(rec.id))?;
    with_vars(&rec, Some(&vars))
}

#[utoipa::path(post, path = "/v1/hosts", tag = "hosts", security(("bearer" = [])),
    summary = "Create a host (editor)",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::HostWrite,
    responses((status = 201, description = "Created, with its variables", body = crate::api::openapi::Host, headers(("Location" = String, description = "Where to read it"))), crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &WRITE_PARAMS)?;
    let project = q.get("project").map(str::to_string);
    let (id, body) = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            caller.require(Role::Editor)?;
            let change = change_of(&body, Mode::Create)?;
            let rec = hosts::create_host(conn, project.id, &change).map_err(|e| store_error(e, &FIELDS))?;
            Ok((rec.id, written(conn, project.id, rec)?))
        })
        .await?;
    Ok(created(location("/v1/hosts", id, project.as_deref()), body))
}

async fn update(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    body: RawBody,
    mode: Mode,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &WRITE_PARAMS)?;
    let id = parse_id("host", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            hosts::get_host(conn, project.id, id)?;
            caller.require(Role::Editor)?;
            let change = change_of(&body.0, mode)?;
            let rec = hosts::update_host(conn, project.id, id, &change).map_err(|e| store_error(e, &FIELDS))?;
            Ok(Json(written(conn, project.id, rec)?))
        })
        .await
}

super::resource::patch_and_put!(
    update,
    "/v1/hosts/{id}",
    "hosts",
    "Change some fields of a host (editor)",
    "Replace a host's fields (editor)",
    ProjectQuery,
    HostPatch,
    HostWrite,
    Host
);

#[utoipa::path(delete, path = "/v1/hosts/{id}", tag = "hosts", security(("bearer" = [])),
    summary = "Delete a host (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let q = Query::parse(raw.as_deref(), &WRITE_PARAMS)?;
    let id = parse_id("host", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            hosts::get_host(conn, project.id, id)?;
            caller.require(Role::Editor)?;
            Ok(hosts::delete_host(conn, project.id, id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
