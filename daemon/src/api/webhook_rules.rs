//! `/v1/webhook-rules`: which GitHub events (pushes, pull requests) of
//! which repository submit which run (issue 10, "Choreography"). A rule
//! matches on `event`, `repository` (GitHub's `owner/name`), `branches` /
//! `tags` globs and `matchers` on the payload
//! (`craton::webhook_rules::RuleSpec`); its `template` is a `POST /v1/runs`
//! body without `ref` (the event's commit is the ref) and is checked when
//! the rule is written through the same checks as a schedule's template
//! (`api::schedules::check_template` and `check_target`: the request's form,
//! URL and ref, repository policy, group), so a typo is a 400 now rather
//! than a refused run at the next push. What fires rules is
//! `crate::webhook_rules`, called by `POST /v1/webhooks/github`.
//!
//! Authority as for schedules: a rule's runs are submitted as its creator
//! at event time (a token re-read: revoked, or below editor, and the match
//! records the refusal instead of a run); Keystone tokens cannot be
//! re-checked later, so rules need a Craton token (or the CLI). Editors
//! write, readers read; another project's rule is a 404.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::store::schedules::Creator;
use craton::store::tokens::Role;
use craton::store::webhook_rules::{self as wr, Delivery, NewRule, RuleMatch, RulePatch, RuleRecord};
use craton::webhook_rules::{RuleSpec, PLACEHOLDER_SHA};
use serde_json::{json, Map, Value};

use super::auth::{Caller, Who};
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{
    created, delete_in_project, in_project, list_body, location, marker_page, object_body, object_fields, parse_id,
    project_list, store_error, FieldReader, Page, RawBody,
};
use super::schedules::{check_target, check_template};
use crate::state::AppState;

const ONE_PARAMS: [&str; 1] = ["project"];
const FIELDS: [&str; 11] = [
    "name",
    "event",
    "repository",
    "branches",
    "tags",
    "matchers",
    "sync",
    "template",
    "enabled",
    "commit_status",
    "status_context",
];
/// The fields that say what a rule matches.
const MATCH_FIELDS: [&str; 5] = ["event", "repository", "branches", "tags", "matchers"];

object_fields!(
    RuleBody,
    [
        "name",
        "event",
        "repository",
        "branches",
        "tags",
        "matchers",
        "sync",
        "template",
        "enabled",
        "commit_status",
        "status_context"
    ]
);
object_fields!(
    RulePatchBody,
    [
        "event",
        "repository",
        "branches",
        "tags",
        "matchers",
        "sync",
        "template",
        "enabled",
        "commit_status",
        "status_context"
    ]
);

pub(crate) fn rule_json(r: &RuleRecord) -> Value {
    let template: Value = serde_json::from_str(&r.template).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "name": r.name,
        "event": r.event,
        "repository": r.repository,
        "branches": r.branches,
        "tags": r.tags,
        "matchers": r.matchers,
        "sync": r.sync,
        "template": template,
        "enabled": r.enabled,
        "commit_status": r.commit_status,
        "status_context": r.context(),
        "created_by": r.created_by,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

fn match_json(m: &RuleMatch, d: &Delivery) -> Value {
    json!({
        "id": m.id,
        "delivery": d.delivery,
        "event": d.event,
        "repository": d.repository,
        "ref": d.git_ref,
        "sha": m.sha,
        "received_at": d.received_at,
        "status": m.status,
        "simulation": m.simulation,
        "run_id": m.run_id,
        "error": m.error,
        "updated_at": m.updated_at,
    })
}

/// The match fields of `obj`, each problem reported on `r`.
fn spec_of(obj: &Map<String, Value>, r: &mut FieldReader) -> Option<RuleSpec> {
    match RuleSpec::parse(obj) {
        Ok(s) => Some(s),
        Err(ps) => {
            for p in ps {
                r.error(&p.field, p.message);
            }
            None
        }
    }
}

/// The template: a `POST /v1/runs` body with a `repo` and no `ref` (the
/// event's commit is the ref), checked as a schedule's with a placeholder
/// commit; returns its JSON text (without the placeholder).
fn template_of(v: Option<&Value>, r: &mut FieldReader) -> Option<String> {
    let m = match v {
        None => return None,
        Some(Value::Object(m)) => m,
        Some(_) => {
            r.error("template", "must be a POST /v1/runs body (a JSON object) without ref");
            return None;
        }
    };
    let mut ok = true;
    if m.contains_key("ref") {
        r.error("template.ref", "is not given: the run's ref is the event's commit");
        ok = false;
    }
    if !m.contains_key("repo") {
        r.error("template.repo", "is required: a rule runs the event's commit of a repository");
        ok = false;
    }
    if !ok {
        return None;
    }
    let mut probe = m.clone();
    probe.insert("ref".into(), json!(PLACEHOLDER_SHA));
    check_template(Some(&Value::Object(probe)), r).map(|_| Value::Object(m.clone()).to_string())
}

/// The template with the placeholder commit, for `check_target`.
fn probe(template: &str) -> String {
    let mut v: Value = serde_json::from_str(template).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("ref".into(), json!(PLACEHOLDER_SHA));
    }
    v.to_string()
}

/// Who the rule's runs act as (see the module doc).
fn creator(caller: &Caller) -> Result<Creator, ApiError> {
    if matches!(caller.who, Who::Keystone(_)) {
        return Err(ApiError::Forbidden(
            "webhook rules need a Craton API token: a Keystone token cannot be checked again when an event fires the rule"
                .into(),
        ));
    }
    super::schedules::creator(caller)
}

/// `status_context`: a context string, or null for the default
/// (`craton/<name>`); absent: `None`.
fn status_context_of(r: &mut FieldReader) -> Option<Option<String>> {
    let c = r.nullable_string("status_context")?;
    if let Some(c) = &c {
        r.check("status_context", craton::commit_status::check_context(c));
    }
    Some(c)
}

fn new_rule(obj: &Map<String, Value>, caller: &Caller) -> Result<NewRule, ApiError> {
    let mut r = FieldReader::new(obj);
    let name = r.string("name");
    let name = r.require("name", name);
    let spec = spec_of(obj, &mut r);
    let template = template_of(obj.get("template"), &mut r);
    if !obj.contains_key("template") {
        r.error("template", "is required");
    }
    let sync = r.bool("sync").unwrap_or(true);
    let enabled = r.bool("enabled").unwrap_or(true);
    let commit_status = r.bool("commit_status").unwrap_or(false);
    let status_context = status_context_of(&mut r).flatten();
    r.finish()?;
    let (Some(name), Some(spec), Some(template)) = (name, spec, template) else {
        return Err(ApiError::bad("name, event, repository and template are required"));
    };
    Ok(NewRule {
        name,
        spec,
        sync,
        template,
        enabled,
        commit_status,
        status_context,
        created_by: super::runs::created_by(caller),
        creator: creator(caller)?,
    })
}

#[utoipa::path(post, path = "/v1/webhook-rules", tag = "webhook-rules", security(("bearer" = [])),
    summary = "Add a webhook rule: a GitHub push or pull request that submits a run template (editor)",
    params(crate::api::openapi::ProjectQuery),
    request_body = doc::NewWebhookRule,
    responses((status = 201, description = "Created", body = doc::WebhookRule,
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
            let obj = object_body::<RuleBody>(&body)?;
            let new = new_rule(&obj, &caller)?;
            check_target(&st, conn, &project, &caller, &probe(&new.template))?;
            wr::create(conn, project.id, &new, now).map_err(|e| store_error(e, &FIELDS))
        })
        .await?;
    Ok(created(location("/v1/webhook-rules", rec.id, project_name.as_deref()), rule_json(&rec)))
}

#[utoipa::path(get, path = "/v1/webhook-rules", tag = "webhook-rules", security(("bearer" = [])),
    summary = "List the project's webhook rules; limit + marker paging",
    params(crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = doc::WebhookRuleList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    project_list(&state, caller, raw, "/v1/webhook-rules", wr::list, |r| r.id, rule_json).await
}

async fn visible(state: &AppState, caller: Caller, q: &Query, id: i64) -> Result<RuleRecord, ApiError> {
    in_project(state, caller, q, id, wr::get).await
}

#[utoipa::path(get, path = "/v1/webhook-rules/{id}", tag = "webhook-rules", security(("bearer" = [])),
    summary = "One webhook rule: what it matches, its template, sync, enabled",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The rule", body = doc::WebhookRule), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("webhook rule", &id)?;
    Ok(Json(rule_json(&visible(&state, caller, &q, id).await?)))
}

/// A change: match fields given are merged into the old ones and the
/// result checked whole (a rule changed to `pull_request` loses no check
/// a new one would have).
fn patch_of(obj: &Map<String, Value>, old: &RuleRecord) -> Result<RulePatch, ApiError> {
    let mut r = FieldReader::new(obj);
    let spec = if MATCH_FIELDS.iter().any(|f| obj.contains_key(*f)) {
        let o = old.spec();
        let mut merged = json!({"event": o.event, "repository": o.repository, "branches": o.branches,
            "tags": o.tags, "matchers": o.matchers});
        for f in MATCH_FIELDS {
            if let Some(v) = obj.get(f) {
                merged[f] = v.clone();
            }
        }
        spec_of(merged.as_object().expect("an object"), &mut r)
    } else {
        None
    };
    let template = template_of(obj.get("template"), &mut r);
    let sync = r.bool("sync");
    let enabled = r.bool("enabled");
    let commit_status = r.bool("commit_status");
    let status_context = status_context_of(&mut r);
    r.finish()?;
    Ok(RulePatch { spec, sync, template, enabled, commit_status, status_context })
}

#[utoipa::path(patch, path = "/v1/webhook-rules/{id}", tag = "webhook-rules", security(("bearer" = [])),
    summary = "Change a webhook rule: match fields, template, sync, enabled (editor)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = doc::WebhookRulePatch,
    responses((status = 200, description = "The changed rule", body = doc::WebhookRule), crate::api::openapi::WriteErrors))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &ONE_PARAMS)?;
    let id = parse_id("webhook rule", &id)?;
    let now = state.clock.now().timestamp_millis();
    let st = state.clone();
    let rec = state
        .db(move |conn| {
            let project = caller.project(conn, q.get("project"))?;
            let old = wr::get(conn, Some(project.id), id)?;
            caller.require(Role::Editor)?;
            let obj = object_body::<RulePatchBody>(&body)?;
            let patch = patch_of(&obj, &old)?;
            if let Some(t) = &patch.template {
                check_target(&st, conn, &project, &caller, &probe(t))?;
            }
            wr::update(conn, project.id, id, &patch, now).map_err(|e| store_error(e, &FIELDS))
        })
        .await?;
    Ok(Json(rule_json(&rec)))
}

#[utoipa::path(delete, path = "/v1/webhook-rules/{id}", tag = "webhook-rules", security(("bearer" = [])),
    summary = "Delete a webhook rule and its match log (editor; its runs and the deliveries stay)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    delete_in_project(&state, caller, raw, "webhook rule", &id, wr::get, wr::delete).await
}

#[utoipa::path(get, path = "/v1/webhook-rules/{id}/deliveries", tag = "webhook-rules", security(("bearer" = [])),
    summary = "The GitHub deliveries a rule matched, newest first: the run each submitted or why none",
    params(crate::api::openapi::IdPath, crate::api::openapi::PageQuery),
    responses((status = 200, description = "One page", body = doc::RuleDeliveryList), crate::api::openapi::ReadErrors))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "limit", "marker"])?;
    let id = parse_id("webhook rule", &id)?;
    let page = Page::from_query(&q)?;
    let requested = q.get("project").map(str::to_string);
    let rows = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            wr::get(conn, Some(project.id), id)?;
            Ok(wr::rule_deliveries(conn, id, page.marker, page.limit as i64 + 1)?)
        })
        .await?;
    let (rows, links) = marker_page(&format!("/v1/webhook-rules/{id}/deliveries"), &q, page, rows, |(m, _)| m.id);
    let items: Vec<Value> = rows.iter().map(|(m, d)| match_json(m, d)).collect();
    Ok(list_body(items, links))
}

/// The OpenAPI side of these routes (merged into the served document).
pub mod doc {
    use serde::Deserialize;
    use utoipa::{OpenApi, ToSchema};

    use crate::api::openapi::{JsonObject, Links, NewRun};

    #[derive(OpenApi)]
    #[openapi(paths(super::create, super::list, super::get_one, super::patch, super::delete, super::deliveries))]
    pub struct WebhookRulesDoc;

    /// One condition on the event's payload.
    #[derive(Deserialize, ToSchema)]
    pub struct PayloadMatcher {
        /// A dotted path into the payload (`pull_request.user.login`; a
        /// number indexes an array).
        pub field: String,
        /// `equals` (strings; numbers and booleans as JSON text),
        /// `contains` (a substring, or an element of an array) or `glob`
        /// (`*`, `?`).
        pub op: String,
        pub value: String,
    }

    #[derive(Deserialize, ToSchema)]
    pub struct NewWebhookRule {
        /// Unique within the project; commit statuses are `craton/NAME`.
        pub name: String,
        /// `push` or `pull_request` (actions opened, synchronize, reopened:
        /// a check + diff run on the head commit).
        pub event: String,
        /// The GitHub repository, `owner/name`.
        pub repository: String,
        /// Globs on the pushed branch, or a pull request's base branch
        /// (none: any). A push rule names branches or tags (`["*"]`: all).
        #[schema(required = false)]
        pub branches: Vec<String>,
        /// Globs on the pushed tag (push rules only).
        #[schema(required = false)]
        pub tags: Vec<String>,
        /// All must hold.
        #[schema(required = false)]
        pub matchers: Vec<PayloadMatcher>,
        /// Default true: sync the project's config refs that follow the
        /// pushed repository and ref first, and submit only after that
        /// succeeded.
        #[schema(required = false)]
        pub sync: bool,
        /// A `POST /v1/runs` body with `repo` and without `ref` (the
        /// event's commit is the ref); checked now, its problems named
        /// `template.FIELD`.
        pub template: NewRun,
        /// Default true.
        #[schema(required = false)]
        pub enabled: bool,
        /// Default false: report the rule's runs on the commit as GitHub
        /// commit statuses (`pending` when queued, then `success`,
        /// `failure` or `error`); needs `CRATON_GITHUB_TOKEN` on the daemon.
        #[schema(required = false)]
        pub commit_status: bool,
        /// The statuses' context, 1 to 255 characters; null or absent:
        /// `craton/NAME`.
        #[schema(required = false, max_length = 255)]
        pub status_context: Option<String>,
    }

    /// Fields not given keep their value; the match fields given are merged
    /// into the old ones and checked together.
    #[derive(Deserialize, ToSchema)]
    pub struct WebhookRulePatch {
        #[schema(required = false)]
        pub event: String,
        #[schema(required = false)]
        pub repository: String,
        #[schema(required = false)]
        pub branches: Vec<String>,
        #[schema(required = false)]
        pub tags: Vec<String>,
        #[schema(required = false)]
        pub matchers: Vec<PayloadMatcher>,
        #[schema(required = false)]
        pub sync: bool,
        #[schema(required = false)]
        pub template: NewRun,
        #[schema(required = false)]
        pub enabled: bool,
        #[schema(required = false)]
        pub commit_status: bool,
        /// null: back to `craton/NAME`.
        #[schema(required = false, max_length = 255)]
        pub status_context: Option<String>,
    }

    #[derive(Deserialize, ToSchema)]
    pub struct WebhookRule {
        pub id: i64,
        pub name: String,
        pub event: String,
        pub repository: String,
        pub branches: Vec<String>,
        pub tags: Vec<String>,
        pub matchers: Vec<PayloadMatcher>,
        pub sync: bool,
        pub template: JsonObject,
        pub enabled: bool,
        /// Whether its runs are reported as GitHub commit statuses.
        pub commit_status: bool,
        /// The context they carry (`craton/NAME` unless set).
        pub status_context: String,
        /// Who created it; its runs show `webhook-rule:ID` and the creator
        /// as `created_by`, and act with the creator's token as it is when
        /// the event comes.
        pub created_by: String,
        /// Unix ms.
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Deserialize, ToSchema)]
    pub struct WebhookRuleList {
        pub items: Vec<WebhookRule>,
        pub links: Links,
    }

    /// One delivery a rule matched and what the rule did with it.
    #[derive(Deserialize, ToSchema)]
    pub struct RuleDelivery {
        pub id: i64,
        /// GitHub's `X-GitHub-Delivery`.
        pub delivery: String,
        pub event: String,
        #[schema(required)]
        pub repository: Option<String>,
        /// The pushed ref, or a pull request's base branch.
        #[schema(required)]
        pub r#ref: Option<String>,
        /// The commit the run runs.
        #[schema(required)]
        pub sha: Option<String>,
        /// Unix ms.
        pub received_at: i64,
        /// `pending`, `syncing`, `submitted`, `refused` or `sync_failed`.
        pub status: String,
        /// A pull request's check + diff run.
        pub simulation: bool,
        #[schema(required)]
        pub run_id: Option<i64>,
        /// Why no run was submitted (or, for a submitted run of a
        /// `commit_status` rule, why no commit status is sent).
        #[schema(required)]
        pub error: Option<String>,
        pub updated_at: i64,
    }

    #[derive(Deserialize, ToSchema)]
    pub struct RuleDeliveryList {
        pub items: Vec<RuleDelivery>,
        pub links: Links,
    }
}

#[utoipa::path(get, path = "/v1/runs/{id}/commit-statuses", tag = "runs", security(("bearer" = [])),
    summary = "The GitHub commit statuses a rule's run posts (pending, then its result): state, delivery, attempts, last response",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "Oldest first (empty for a run no rule with commit_status submitted)", body = crate::api::openapi::CommitStatusList),
        crate::api::openapi::ReadErrors))]
pub async fn commit_statuses(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (_, items) = super::runs::of_visible_run(&state, caller, raw.as_deref(), &id, |conn, id| {
        Ok(craton::store::commit_statuses::of_run(conn, id)?)
    })
    .await?;
    Ok(Json(json!({ "items": items })))
}
