//! `/v1/audit` and `/v1/audit/{id}`: the audit trail of change sets
//! (`craton::store::audit`), for admins. A project token sees its own
//! project's change sets only (another project's id is a 404, as missing);
//! root sees every project, or the one `project` names.

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use craton::store::audit::{self, Change, ChangeSet, Filter};
use craton::store::tokens::Role;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::query::Query;
use super::resource::{list_body, marker_page, parse_id, Page};
use crate::state::AppState;

const LIST_PARAMS: [&str; 14] = [
    "project",
    "object_kind",
    "object",
    "host",
    "group",
    "owner",
    "key",
    "actor",
    "source",
    "since",
    "until",
    "limit",
    "marker",
    "changes",
];

fn field(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::fields(vec![FieldError { field: name.into(), message: message.into() }])
}

/// An instant as RFC 3339 or milliseconds since the epoch.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("{s:?} is neither RFC 3339 (2026-11-30T12:00:00Z) nor milliseconds since the epoch"))
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn stored(v: &Option<String>) -> Value {
    match v {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

pub fn change_json(c: &Change) -> Value {
    json!({
        "object": {"kind": c.object_kind, "name": c.object_name},
        "attr_kind": c.attr_kind,
        "attr": c.attr,
        "before": stored(&c.before),
        "after": stored(&c.after),
    })
}

pub fn changeset_json(cs: &ChangeSet, with_changes: bool) -> Value {
    let mut v = json!({
        "id": cs.id,
        "project": cs.project,
        "at": rfc3339(cs.at),
        "at_ms": cs.at,
        "actor": {"kind": cs.actor.kind, "id": cs.actor.id, "note": cs.actor.note},
        "source": cs.actor.source,
        "via": cs.actor.via,
        "revision": {"before": cs.rev_before, "after": cs.rev_after},
        "n_changes": cs.n_changes,
    });
    if with_changes {
        v["changes"] = Value::Array(cs.changes.iter().map(change_json).collect());
    }
    v
}

/// The filter of a list query (project scope set by the caller).
pub fn filter_of(q: &Query) -> Result<Filter, ApiError> {
    let mut f = Filter::default();
    let object = |kind: &str, name: &str| (Some(kind.to_string()), Some(name.to_string()));
    if let Some(h) = q.get("host") {
        (f.object_kind, f.object_name) = object("host", h);
    }
    if let Some(g) = q.get("group") {
        (f.object_kind, f.object_name) = object("group", g);
    }
    if let Some(o) = q.get("owner") {
        let (k, n) = o.split_once(':').ok_or_else(|| field("owner", format!("{o:?} is not KIND:NAME (host:web1)")))?;
        (f.object_kind, f.object_name) = object(k, n);
    }
    if let Some(k) = q.get("object_kind") {
        f.object_kind = Some(k.to_string());
    }
    if let Some(n) = q.get("object") {
        f.object_name = Some(n.to_string());
    }
    if let Some(k) = &f.object_kind {
        if !craton::store::audit::OBJECT_KINDS.contains(&k.as_str()) {
            let kinds = craton::store::audit::OBJECT_KINDS.join(", ");
            return Err(field("object_kind", format!("{k:?} is not one of {kinds}")));
        }
    }
    f.key = q.get("key").map(str::to_string);
    f.actor = q.get("actor").map(str::to_string);
    f.source = q.get("source").map(str::to_string);
    f.since = q.get("since").map(parse_instant).transpose().map_err(|m| field("since", m))?;
    f.until = q.get("until").map(parse_instant).transpose().map_err(|m| field("until", m))?;
    Ok(f)
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])),
    summary = "Change sets of the audit trail, newest first (admin); filters object, owner, key, actor, source, since/until; limit + marker paging",
    params(crate::api::openapi::AuditListQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::AuditList), crate::api::openapi::AdminReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &LIST_PARAMS)?;
    caller.require(Role::Admin)?;
    let page = Page::from_query(&q)?;
    let mut f = filter_of(&q)?;
    let with_changes = q.flag("changes")? || f.key.is_some() || f.object_name.is_some() || f.object_kind.is_some();
    f.before_id = page.marker;
    f.limit = page.limit + 1;
    let requested = q.get("project").map(str::to_string);
    let scoped = caller.grant.project_id.is_some();
    let sets = state
        .db(move |conn| {
            if scoped || requested.is_some() {
                f.project_id = Some(caller.project(conn, requested.as_deref())?.id);
            }
            let mut sets = audit::list(conn, &f)?;
            if with_changes {
                for cs in sets.iter_mut().filter(|cs| cs.changes.is_empty()) {
                    if let Some(full) = audit::get(conn, cs.id, None)? {
                        cs.changes = full.changes;
                    }
                }
            }
            Ok(sets)
        })
        .await?;
    let (sets, links) = marker_page("/v1/audit", &q, page, sets, |cs| cs.id);
    let items: Vec<Value> = sets.iter().map(|cs| changeset_json(cs, with_changes)).collect();
    Ok(list_body(items, links))
}

#[utoipa::path(get, path = "/v1/audit/{id}", tag = "audit", security(("bearer" = [])),
    summary = "One change set with every change: fields, variable keys, memberships before and after (admin)",
    params(crate::api::openapi::IdPath),
    responses((status = 200, description = "The change set", body = crate::api::openapi::AuditChangeSet), crate::api::openapi::AdminReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Query::parse(raw.as_deref(), &[])?;
    let id = parse_id("change set", &id)?;
    let scope = caller.grant.project_id;
    let cs = state.db(move |conn| Ok(audit::get(conn, id, scope)?)).await?;
    // Another project's change set does not exist for this caller, whatever
    // its role.
    let cs = cs.ok_or_else(|| ApiError::NotFound(format!("change set {id} not found")))?;
    caller.require(Role::Admin)?;
    Ok(Json(changeset_json(&cs, true)))
}
