//! `/v1/groups/{id}/windows[/next]` and `/v1/windows/{id}`: maintenance
//! windows of groups, inherited by every group and host below them. The
//! arithmetic is `craton::windows`; "now" is the clock in [`AppState`], so
//! tests can set it.
//!
//! Tenancy as for groups: a group or window of another project is a 404,
//! checked before the role (403).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use craton::model::Snapshot;
use craton::store::tokens::Role;
use craton::store::windows::{self as ws, NewWindow, WindowRecord};
use craton::windows::{common, Common, Window, WindowKind, SEARCH_DAYS};
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::groups::in_group;
use super::query::Query;
use super::resource::{created, object_body, object_fields, parse_id, store_error, FieldReader, RawBody};
use crate::state::AppState;

const ONE_PARAMS: [&str; 1] = ["project"];
const FIELDS: [&str; 5] = ["name", "kind", "expression", "time_zone", "duration_s"];

object_fields!(WindowBody, ["name", "kind", "expression", "time_zone", "duration_s"]);

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn window_json(snap: &Snapshot, w: &WindowRecord, for_group: i64) -> Value {
    let group = snap.groups.binary_search_by_key(&w.group_id, |g| g.id).ok().map(|g| snap.groups[g].name.clone());
    json!({
        "id": w.id,
        "name": w.name,
        "kind": w.kind,
        "expression": w.expression,
        "time_zone": w.time_zone,
        "duration_s": w.duration_s,
        "created_at": w.created_at,
        "group": {"id": w.group_id, "name": group},
        "inherited": w.group_id != for_group,
    })
}

/// The parsed windows of project `pid`, by group index in `snap`.
pub(crate) fn windows_by_group(
    snap: &Snapshot,
    records: &[WindowRecord],
) -> Result<HashMap<usize, Vec<(i64, Window)>>, ApiError> {
    let mut out: HashMap<usize, Vec<(i64, Window)>> = HashMap::new();
    for r in records {
        let Ok(g) = snap.groups.binary_search_by_key(&r.group_id, |g| g.id) else { continue };
        let w = r.window().map_err(|e| ApiError::internal(format!("stored window {} does not parse: {e}", r.id)))?;
        out.entry(g).or_default().push((r.id, w));
    }
    Ok(out)
}

/// The distinct window sets of `hosts` (each host's windows come from all
/// its groups and their ancestors); hosts with the same set count once.
pub(crate) fn host_window_sets(
    snap: &Snapshot,
    by_group: &HashMap<usize, Vec<(i64, Window)>>,
    hosts: &[usize],
) -> Vec<Vec<Window>> {
    let mut sets: BTreeMap<Vec<i64>, Vec<Window>> = BTreeMap::new();
    for &h in hosts {
        let mut ids = Vec::new();
        let mut set = Vec::new();
        for g in snap.host_groups(h) {
            for (id, w) in by_group.get(&g).into_iter().flatten() {
                ids.push(*id);
                set.push(w.clone());
            }
        }
        sets.entry(ids).or_insert(set);
    }
    sets.into_values().collect()
}

#[utoipa::path(get, path = "/v1/groups/{id}/windows", tag = "windows", security(("bearer" = [])),
    summary = "A group's maintenance windows: its own and those inherited from its ancestors",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The windows, each with the group it comes from", body = crate::api::openapi::WindowList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    in_group(&state, caller, &id, raw.as_deref(), |x| {
        let above: Vec<i64> = x.snap.ancestors(x.g).into_iter().map(|a| x.snap.groups[a].id).collect();
        let items: Vec<Value> = ws::project_windows(x.conn, x.project.id)?
            .iter()
            .filter(|w| above.contains(&w.group_id))
            .map(|w| window_json(&x.snap, w, x.id))
            .collect();
        Ok(Json(json!({ "windows": items })))
    })
    .await
}

#[utoipa::path(get, path = "/v1/windows", tag = "windows", security(("bearer" = [])),
    summary = "Every maintenance window of the project, each with its own next opening (the queue page's view)",
    params(crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The windows, soonest next opening first", body = crate::api::openapi::ProjectWindowList),
        crate::api::openapi::ReadErrors))]
pub async fn list_all(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let requested = q.get("project").map(str::to_string);
    let st = state.clone();
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let snap = st.snapshot(conn, &project)?;
            let now = st.clock.now();
            let mut items: Vec<(Option<DateTime<Utc>>, Value)> = Vec::new();
            for r in ws::project_windows(conn, project.id)? {
                let w = r
                    .window()
                    .map_err(|e| ApiError::internal(format!("stored window {} does not parse: {e}", r.id)))?;
                let mut v = window_json(&snap, &r, r.group_id);
                let _ = v.as_object_mut().map(|m| m.remove("inherited"));
                // Open now: the interval it is in; else its next occurrence.
                let next = w
                    .containing(now)
                    .map(|i| (i.start, i.end, true))
                    .or_else(|| w.next_opening(now).map(|s| (s, s + w.duration(), false)));
                v["open_now"] = json!(next.is_some_and(|n| n.2));
                v["opens_at"] = json!(next.map(|n| ts(n.0)));
                v["closes_at"] = json!(next.map(|n| ts(n.1)));
                items.push((next.map(|n| n.0), v));
            }
            // Soonest first; windows that never open again last.
            items.sort_by_key(|(t, _)| (t.is_none(), *t));
            Ok(Json(json!({"now": ts(now), "windows": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>()})))
        })
        .await
}

fn new_window(body: &[u8]) -> Result<NewWindow, ApiError> {
    let obj = object_body::<WindowBody>(body)?;
    let mut r = FieldReader::new(&obj);
    let name = r.string("name");
    let name = r.require("name", name);
    let kind = r.string("kind");
    let kind = r.require("kind", kind).and_then(|k| match k.parse::<WindowKind>() {
        Ok(k) => Some(k),
        Err(e) => {
            r.error(e.field, e.message);
            None
        }
    });
    let expression = r.string("expression");
    let expression = r.require("expression", expression);
    let time_zone = r.nullable_string("time_zone").flatten();
    let duration_s = r.nullable_int("duration_s").flatten();
    let duration_s = r.require("duration_s", duration_s);
    r.finish()?;
    match (name, kind, expression, duration_s) {
        (Some(name), Some(kind), Some(expression), Some(duration_s)) => {
            Ok(NewWindow { name, kind, expression, time_zone, duration_s })
        }
        // `require` noted each missing one (a null duration_s included).
        _ => Err(ApiError::fields(vec![super::error::FieldError {
            field: "duration_s".into(),
            message: "is required".into(),
        }])),
    }
}

#[utoipa::path(post, path = "/v1/groups/{id}/windows", tag = "windows", security(("bearer" = [])),
    summary = "Add a maintenance window to a group (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::NewMaintenanceWindow,
    responses((status = 201, description = "Created", body = crate::api::openapi::MaintenanceWindow), crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let project_name = Query::parse(raw.as_deref(), &ONE_PARAMS)?.get("project").map(str::to_string);
    let (wid, body) = in_group(&state, caller.clone(), &id, raw.as_deref(), move |x| {
        caller.require(Role::Editor)?;
        let new = new_window(&body)?;
        let rec = ws::create_window(x.conn, x.project.id, x.id, &new).map_err(|e| store_error(e, &FIELDS))?;
        Ok((rec.id, window_json(&x.snap, &rec, x.id)))
    })
    .await?;
    Ok(created(super::resource::location("/v1/windows", wid, project_name.as_deref()), body))
}

#[utoipa::path(delete, path = "/v1/windows/{id}", tag = "windows", security(("bearer" = [])),
    summary = "Delete a maintenance window (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("window", &id)?;
    state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            ws::get_window(conn, project.id, id)?;
            caller.require(Role::Editor)?;
            Ok(ws::delete_window(conn, project.id, id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// When the hosts of group `g`'s subtree are next all inside a window,
/// at `now`. A subtree without hosts answers for the group's own windows.
pub(crate) fn next_for_group(
    snap: &Snapshot,
    records: &[WindowRecord],
    g: usize,
    now: DateTime<Utc>,
) -> Result<(usize, Common), ApiError> {
    let by_group = windows_by_group(snap, records)?;
    let mut hosts: Vec<usize> = snap.subtree(g).iter().flat_map(|&x| snap.groups[x].hosts.iter().copied()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let sets = if hosts.is_empty() {
        let own: Vec<Window> = snap
            .ancestors(g)
            .iter()
            .flat_map(|a| by_group.get(a).into_iter().flatten().map(|(_, w)| w.clone()))
            .collect();
        vec![own]
    } else {
        host_window_sets(snap, &by_group, &hosts)
    };
    Ok((hosts.len(), common(&sets, now)))
}

#[utoipa::path(get, path = "/v1/groups/{id}/windows/next", tag = "windows", security(("bearer" = [])),
    summary = "When every host below the group is next inside a maintenance window, and until when",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The next common window (or that there is none)", body = crate::api::openapi::NextWindow), crate::api::openapi::ReadErrors))]
pub async fn next(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    in_group(&state, caller, &id, raw.as_deref(), |x| {
        let records = ws::project_windows(x.conn, x.project.id)?;
        let now = x.state.clock.now();
        let (hosts, answer) = next_for_group(&x.snap, &records, x.g, now)?;
        let id = x.id;
        let mut out = json!({
            "group_id": id,
            "now": ts(now),
            "hosts": hosts,
            "has_windows": answer != Common::NoWindows,
            "open_now": matches!(answer, Common::Open(_)),
            "opens_at": null,
            "closes_at": null,
            "search_days": SEARCH_DAYS,
        });
        match answer {
            Common::NoWindows => {
                out["message"] = json!("no maintenance window applies to this group or its hosts");
            }
            Common::Open(i) | Common::Opens(i) => {
                out["opens_at"] = json!(ts(i.start));
                out["closes_at"] = json!(ts(i.end));
            }
            Common::Never { searched_until } => {
                out["message"] =
                    json!(format!("the hosts are not all inside a window at once before {}", ts(searched_until)));
            }
        }
        Ok(Json(out))
    })
    .await
}
