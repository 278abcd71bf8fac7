//! `/v1/schedules`: run templates fired on a recurrence (issue 10). The
//! template is exactly a `POST /v1/runs` body, checked by
//! `craton::runs::parse_request` when the schedule is written; the rule is
//! an RRULE or a cron line with a time zone (`craton::windows::Recurrence`).
//! Firing is `crate::schedules` (the ticker of every cratond process).
//!
//! Authority: a fired run is submitted as the schedule's creator at fire
//! time (its token re-read: revoked, or below editor, and the firing
//! records the refusal instead of a run). Keystone tokens cannot be
//! re-checked later, so schedules need a Craton token (or the CLI).
//! Tenancy as for runs: another project's schedule is a 404.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::DateTime;
use craton::schedules::CatchUp;
use craton::store::schedules::{self as ss, Creator, Firing, NewSchedule, SchedulePatch, ScheduleRecord};
use craton::store::tokens::Role;
use craton::windows::WindowKind;
use serde_json::{json, Map, Value};

use super::auth::{Caller, Who};
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, delete_in_project, in_project, list_body, location, marker_page, object_body, object_fields, parse_id,
    project_list, store_error, FieldReader, Page, RawBody,
};
use super::windows::ts;
use crate::state::AppState;

const ONE_PARAMS: [&str; 1] = ["project"];
const FIELDS: [&str; 8] =
    ["name", "template", "kind", "expression", "time_zone", "enabled", "catch_up", "after_schedules"];

object_fields!(
    ScheduleBody,
    ["name", "template", "kind", "expression", "time_zone", "enabled", "catch_up", "after_schedules"]
);
object_fields!(
    SchedulePatchBody,
    ["template", "kind", "expression", "time_zone", "enabled", "catch_up", "after_schedules"]
);

fn ms_ts(ms: i64) -> Value {
    DateTime::from_timestamp_millis(ms).map_or(Value::Null, |t| json!(ts(t)))
}

pub(crate) fn schedule_json(s: &ScheduleRecord) -> Value {
    let template: Value = serde_json::from_str(&s.template).unwrap_or(Value::Null);
    json!({
        "id": s.id,
        "name": s.name,
        "template": template,
        "kind": s.kind,
        "expression": s.expression,
        "time_zone": s.time_zone,
        "enabled": s.enabled,
        "catch_up": s.catch_up,
        "after_schedules": s.after_schedules,
        "next_run": s.next_run_at.map_or(Value::Null, ms_ts),
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

pub(crate) fn firing_json(f: &Firing) -> Value {
    json!({
        "id": f.id,
        "occurrence": ms_ts(f.occurrence),
        "status": f.status,
        "missed": f.missed,
        "run_id": f.run_id,
        "error": f.error,
        "holder": f.holder,
        "fired_at": f.fired_at,
    })
}

/// The template: a JSON object that `POST /v1/runs` would accept in form
/// (its fields' problems are named `template.FIELD`).
pub(crate) fn check_template(v: Option<&Value>, r: &mut FieldReader) -> Option<String> {
    match v {
        None => None,
        Some(Value::Object(m)) => match craton::runs::parse_request(m) {
            Ok(_) => Some(Value::Object(m.clone()).to_string()),
            Err(ps) => {
                for p in ps {
                    r.error(&format!("template.{}", p.field), p.message);
                }
                None
            }
        },
        Some(_) => {
            r.error("template", "must be a POST /v1/runs body (a JSON object)");
            None
        }
    }
}

/// `after_schedules`: a list of schedule ids (the store checks that they
/// are the project's and make no cycle).
fn after_schedules(v: Option<&Value>, r: &mut FieldReader) -> Option<Vec<i64>> {
    let items = match v? {
        Value::Null => return Some(Vec::new()),
        Value::Array(a) => a,
        _ => {
            r.error("after_schedules", "must be a list of schedule ids");
            return None;
        }
    };
    let ids: Option<Vec<i64>> = items.iter().map(|v| v.as_i64().filter(|i| *i > 0)).collect();
    if ids.is_none() {
        r.error("after_schedules", "must be a list of schedule ids");
    }
    ids
}

fn kind(r: &mut FieldReader) -> Option<WindowKind> {
    let k = r.string("kind")?;
    match k.parse::<WindowKind>() {
        Ok(k) => Some(k),
        Err(e) => {
            r.error(e.field, e.message);
            None
        }
    }
}

fn catch_up(r: &mut FieldReader) -> Option<CatchUp> {
    let c = r.string("catch_up")?;
    match c.parse::<CatchUp>() {
        Ok(c) => Some(c),
        Err(e) => {
            r.error(e.field, e.message);
            None
        }
    }
}

/// What a template names must be usable when the schedule is written (a
/// typo or a refused repository is caught now, not when it fires at night):
/// its group exists, its repository URL and ref are well-formed and the
/// repository policy lets the writer use them, as at submit, which checks
/// all of it again then.
pub(crate) fn check_target(
    state: &AppState,
    conn: &mut craton::store::DbConn,
    project: &craton::model::Project,
    caller: &Caller,
    template: &str,
) -> Result<(), ApiError> {
    let v: Value = serde_json::from_str(template).unwrap_or(Value::Null);
    // parse_request problems were reported already (check_template).
    if let Some(Ok(spec)) = v.as_object().map(craton::runs::parse_request) {
        super::runs::check_source_fields(&spec).map_err(in_template)?;
        if let Some(hub) = &state.runs {
            let actor = crate::repo_policy::Actor::root_if(caller.is_root());
            super::runs::check_source_policy(hub, &project.name, actor, &spec)?;
        }
    }
    if let Some(g) = v.get("group").and_then(Value::as_str) {
        let snap = state.snapshot(conn, project)?;
        if !snap.groups.iter().any(|x| x.name == g) {
            return Err(ApiError::fields(vec![super::error::FieldError {
                field: "template.group".into(),
                message: format!("no group named {g:?} in project {:?}", project.name),
            }]));
        }
    }
    Ok(())
}

/// A run request's field errors as the template's (`template.FIELD`).
fn in_template(e: ApiError) -> ApiError {
    match e {
        ApiError::BadRequest { details, .. } => ApiError::fields(
            details
                .into_iter()
                .map(|d| super::error::FieldError { field: format!("template.{}", d.field), message: d.message })
                .collect(),
        ),
        other => other,
    }
}

/// Who the schedule's runs act as (see the module doc).
pub(crate) fn creator(caller: &Caller) -> Result<Creator, ApiError> {
    let role = caller.grant.role.as_str().to_string();
    match &caller.who {
        Who::Token(id) => Ok(Creator { kind: "token".into(), token_id: Some(*id), role }),
        Who::Local => Ok(Creator { kind: "local".into(), token_id: None, role }),
        Who::Keystone(_) => Err(ApiError::Forbidden(
            "schedules need a Craton API token: a Keystone token cannot be checked again when the schedule fires"
                .into(),
        )),
    }
}

fn new_schedule(obj: &Map<String, Value>, caller: &Caller) -> Result<NewSchedule, ApiError> {
    let mut r = FieldReader::new(obj);
    let name = r.string("name");
    let name = r.require("name", name);
    let template = check_template(obj.get("template"), &mut r);
    if !obj.contains_key("template") {
        r.error("template", "is required");
    }
    let kind = kind(&mut r);
    if !obj.contains_key("kind") {
        r.error("kind", "is required");
    }
    let expression = r.string("expression");
    let expression = r.require("expression", expression);
    let time_zone = r.nullable_string("time_zone").flatten();
    let enabled = r.bool("enabled").unwrap_or(true);
    let catch_up = catch_up(&mut r).unwrap_or_default();
    let after = after_schedules(obj.get("after_schedules"), &mut r).unwrap_or_default();
    r.finish()?;
    let (Some(name), Some(template), Some(kind), Some(expression)) = (name, template, kind, expression) else {
        return Err(ApiError::bad("name, template, kind and expression are required"));
    };
    Ok(NewSchedule {
        name,
        template,
        kind,
        expression,
        time_zone,
        enabled,
        catch_up,
        created_by: super::runs::created_by(caller),
        creator: creator(caller)?,
        after_schedules: after,
    })
}

#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", security(("bearer" = [])),
    summary = "Add a schedule: a run template fired on an RRULE or cron line in a time zone (editor)",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::NewScheduleDoc,
    responses((status = 201, description = "Created", body = crate::api::openapi::ScheduleDoc,
            headers(("Location" = String, description = "Where to read it"))),
        crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let project_name = q.get("project").map(str::to_string);
    let now = state.clock.now().timestamp_millis();
    let st = state.clone();
    let rec = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            caller.require(Role::Editor)?;
            let obj = object_body::<ScheduleBody>(&body)?;
            let new = new_schedule(&obj, &caller)?;
            check_target(&st, conn, &project, &caller, &new.template)?;
            ss::create(conn, project.id, &new, now).map_err(|e| store_error(e, &FIELDS))
        })
        .await?;
    Ok(created(location("/v1/schedules", rec.id, project_name.as_deref()), schedule_json(&rec)))
}

#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", security(("bearer" = [])),
    summary = "List the project's schedules with their next run; limit + marker paging",
    params(crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::ScheduleList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    project_list(&state, caller, raw, "/v1/schedules", ss::list, |s| s.id, schedule_json).await
}

async fn visible(state: &AppState, caller: Caller, q: &Query, id: i64) -> Result<ScheduleRecord, ApiError> {
    in_project(state, caller, q, id, ss::get).await
}

#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    summary = "One schedule: template, rule, enabled, catch_up, next run",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The schedule", body = crate::api::openapi::ScheduleDoc), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("schedule", &id)?;
    Ok(Json(schedule_json(&visible(&state, caller, &q, id).await?)))
}

fn patch_of(obj: &Map<String, Value>, old: &ScheduleRecord) -> Result<SchedulePatch, ApiError> {
    let mut r = FieldReader::new(obj);
    let template = check_template(obj.get("template"), &mut r);
    let rule_given = ["kind", "expression", "time_zone"].iter().any(|f| obj.contains_key(*f));
    let kind = kind(&mut r);
    let expression = r.string("expression");
    let time_zone = r.nullable_string("time_zone");
    let enabled = r.bool("enabled");
    let catch_up = catch_up(&mut r);
    let after = after_schedules(obj.get("after_schedules"), &mut r);
    r.finish()?;
    let rule = rule_given.then(|| {
        // A rule is replaced whole; fields not given keep their values,
        // except the time zone of an RRULE, which its DTSTART names.
        let kind = kind.unwrap_or_else(|| old.kind.parse().unwrap_or(WindowKind::Cron));
        let expression = expression.unwrap_or_else(|| old.expression.clone());
        let time_zone = match time_zone {
            Some(z) => z,
            None if kind == WindowKind::Cron => Some(old.time_zone.clone()),
            None => None,
        };
        (kind, expression, time_zone)
    });
    Ok(SchedulePatch { template, rule, enabled, catch_up, after_schedules: after })
}

#[utoipa::path(patch, path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    summary = "Change a schedule: enable/disable, rule, template, catch_up (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::SchedulePatchDoc,
    responses((status = 200, description = "The changed schedule", body = crate::api::openapi::ScheduleDoc), crate::api::openapi::WriteErrors))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("schedule", &id)?;
    let now = state.clock.now().timestamp_millis();
    let st = state.clone();
    let rec = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let old = ss::get(conn, Some(project.id), id)?;
            caller.require(Role::Editor)?;
            let obj = object_body::<SchedulePatchBody>(&body)?;
            let patch = patch_of(&obj, &old)?;
            if let Some(t) = &patch.template {
                check_target(&st, conn, &project, &caller, t)?;
            }
            ss::update(conn, project.id, id, &patch, now).map_err(|e| store_error(e, &FIELDS))
        })
        .await?;
    Ok(Json(schedule_json(&rec)))
}

#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules", security(("bearer" = [])),
    summary = "Delete a schedule and its firing log (editor; its runs stay)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    delete_in_project(&state, caller, raw, "schedule", &id, ss::get, ss::delete).await
}

#[utoipa::path(get, path = "/v1/schedules/{id}/firings", tag = "schedules", security(("bearer" = [])),
    summary = "A schedule's handled occurrences, newest first: the run each started or why none",
    params(crate::api::openapi::IdPath, crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::FiringList), crate::api::openapi::ReadErrors))]
pub async fn firings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "limit", "marker"])?;
    let id = parse_id("schedule", &id)?;
    let page = Page::from_query(&q)?;
    let requested = q.get("project").map(str::to_string);
    let rows = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            ss::get(conn, Some(project.id), id)?;
            Ok(ss::firings(conn, id, page.marker, page.limit as i64 + 1)?)
        })
        .await?;
    let (rows, links) = marker_page(&format!("/v1/schedules/{id}/firings"), &q, page, rows, |f| f.id);
    let items: Vec<Value> = rows.iter().map(firing_json).collect();
    Ok(list_body(items, links))
}
