//! `/v1/runs`: playbook runs of the caller's project (root: `?project=`).
//! Readers list and read runs, their hosts, events (JSON pages or a
//! Server-Sent Events stream), stdout and bundle; editors start and cancel
//! them. Another project's run is a 404, exactly as an id never used.
//!
//! A new run is checked completely before anything is stored: the body's
//! fields (400 naming each), the repository policy (403 naming the rule),
//! the target (400 naming `group`/`filter` when it is unknown or selects
//! no host), and that `ansible-playbook` exists (503). Then the run is
//! stored with the bundle of its target, exactly the bytes
//! `GET /v1/inventory/{group}.tgz` serves, and started in the background.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::bundle::Format;
use craton::render::{self, Options, Selection};
use craton::runs::{self as core_runs, RunStatus, Source};
use craton::store::config_refs;
use craton::store::runs::{self as store_runs, ListFilter, NewRun, Run};
use craton::store::tokens::Role;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::auth::{Caller, Who};
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::inventory::render_error;
use super::query::Query;
use super::resource::{created, list_body, location, marker_page, one_field_body, parse_id, Page, RawBody};
use crate::repo_policy::Actor;
use crate::runner::run::{run_json, Launch};
use crate::runner::{CancelMode, RunHub};
use crate::state::AppState;

pub(crate) fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("run {id} not found"))
}

/// What `load` reads of run `id` (the path's text) of the caller's project,
/// for the read routes under `/v1/runs/{id}/` that take only `?project=`:
/// a bad id is a 400, another project's run or none a 404. Returns the id
/// with it.
pub(crate) async fn of_visible_run<T: Send + 'static>(
    state: &AppState,
    caller: Caller,
    raw: Option<&str>,
    id: &str,
    load: impl FnOnce(&mut craton::store::DbConn, i64) -> Result<T, ApiError> + Send + 'static,
) -> Result<(i64, T), ApiError> {
    let q = Query::parse(raw, &["project"])?;
    let id = parse_id("run", id)?;
    let requested = q.get("project").map(str::to_string);
    let got = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            store_runs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            load(conn, id)
        })
        .await?;
    Ok((id, got))
}

fn field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::fields(vec![FieldError { field: field.into(), message: message.into() }])
}

pub(crate) fn hub(state: &AppState) -> Result<Arc<RunHub>, ApiError> {
    state.runs.clone().ok_or_else(|| ApiError::Unavailable("this cratond process does not run playbooks".into()))
}

/// Who started a run, as recorded.
pub(crate) fn created_by(caller: &Caller) -> String {
    let role = caller.grant.role.as_str();
    match &caller.who {
        Who::Token(id) => format!("token {id} ({role})"),
        // No token row to point at: the Keystone user and project, as
        // Keystone names them.
        Who::Keystone(k) => format!(
            "keystone user {} ({}) project {} ({}) ({role})",
            k.user_name, k.user_id, k.project_name, k.project_id
        ),
        Who::Local => format!("local ({role})"),
    }
}

/// Who a caller is, whatever its role: the key an approval compares
/// against the submitter's (an admin may not approve its own run).
pub(crate) fn identity(caller: &Caller) -> String {
    match &caller.who {
        Who::Token(id) => format!("token {id}"),
        Who::Keystone(k) => format!("keystone user {}", k.user_id),
        Who::Local => "local".into(),
    }
}

/// Reads a run of the caller's project.
async fn visible_run(state: &AppState, caller: Caller, q: &Query, id: i64) -> Result<(Run, String), ApiError> {
    let requested = q.get("project").map(str::to_string);
    state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let run = store_runs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            Ok((run, project.name))
        })
        .await
}

#[utoipa::path(post, path = "/v1/runs", tag = "runs", security(("bearer" = [])),
    summary = "Start a playbook run on a group or filter of the project (editor)",
    params(crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::NewRun,
    responses((status = 201, description = "Created and queued: it starts when it may claim its hosts (docs/run-queue.md)", body = crate::api::openapi::RunDoc,
            headers(("Location" = String, description = "Where to read it"))),
        crate::api::openapi::WriteErrors))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let obj: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(ApiError::bad("the body must be a JSON object")),
        Err(e) => return Err(ApiError::bad(format!("the body is not valid JSON: {e}"))),
    };
    let who = created_by(&caller);
    let (run, project) = submit(&state, caller, q.get("project").map(str::to_string), &obj, who).await?;
    let body = run_json(&run, &project);
    let loc = location("/v1/runs", run.id, q.get("project"));
    Ok(created(loc, body))
}

/// A repository source's URL and ref as fields (400 naming `repo`, `ref`).
pub(crate) fn check_source_fields(spec: &core_runs::RunSpec) -> Result<(), ApiError> {
    if let Source::Repo { repo, git_ref } = &spec.source {
        let mut problems = Vec::new();
        if let Err(m) = config_refs::check_url(repo) {
            problems.push(FieldError { field: "repo".into(), message: m });
        }
        if let Err(m) = config_refs::check_git_ref(git_ref) {
            problems.push(FieldError { field: "ref".into(), message: m });
        }
        if !problems.is_empty() {
            return Err(ApiError::fields(problems));
        }
    }
    Ok(())
}

/// Whether the repository policy lets `actor` run playbooks of a
/// repository source in `project` (403 otherwise). Blocking: the policy
/// may resolve the URL's host.
pub(crate) fn check_source_policy(
    hub: &RunHub,
    project: &str,
    actor: Actor,
    spec: &core_runs::RunSpec,
) -> Result<(), ApiError> {
    match &spec.source {
        Source::Repo { repo, .. } => hub
            .sync
            .settings()
            .policy
            .check_repo_url(project, repo, actor)
            .map_err(|e| ApiError::Forbidden(e.to_string())),
        Source::ConfigRef { .. } => Ok(()),
    }
}

/// Checks a run request (a `POST /v1/runs` body), stores the run and
/// launches it on this process's runner; returns it and its project's
/// name. The one path of the API and of `cratond run --local`.
pub async fn submit(
    state: &AppState,
    caller: Caller,
    requested_project: Option<String>,
    obj: &Map<String, Value>,
    who: String,
) -> Result<(Run, String), ApiError> {
    let hub = hub(state)?;
    let spec = core_runs::parse_request(&obj).map_err(|ps| {
        ApiError::fields(ps.into_iter().map(|p| FieldError { field: p.field, message: p.message }).collect())
    })?;
    check_source_fields(&spec)?;
    // Role before anything about the project's contents.
    let (c, requested) = (caller.clone(), requested_project.clone());
    let project = state
        .db(move |conn| {
            let p = c.project(conn, requested.as_deref())?;
            c.require(Role::Editor)?;
            Ok(p)
        })
        .await?;
    let actor = Actor::root_if(caller.is_root());
    let (h, name, sp) = (hub.clone(), project.name.clone(), spec.clone());
    tokio::task::spawn_blocking(move || check_source_policy(&h, &name, actor, &sp))
        .await
        .map_err(|e| ApiError::internal(format!("policy check failed: {e}")))??;
    hub.settings.resolve_playbook_binary().map_err(ApiError::Missing)?;
    let st = state.clone();
    let (sp, holder, ttl) = (spec.clone(), hub.settings.holder.clone(), hub.settings.lease_ttl_ms);
    let again = requested_project;
    let submitter = identity(&caller);
    let approval_expires =
        spec.options.approval_timeout_s.map(|t| state.clock.now().timestamp_millis() + (t as i64) * 1000);
    let (run, config_ref, bundle, vault_password) = state
        .db(move |conn| {
            let project = caller.project(conn, again.as_deref())?;
            if let Some((i, id)) = craton::store::gates::missing_after(conn, project.id, &sp.options.after)? {
                return Err(field(&format!("after[{i}]"), format!("no run {id} in this project")));
            }
            let config_ref = match &sp.source {
                Source::ConfigRef { config_ref } => Some(
                    config_refs::get(conn, Some(project.id), *config_ref)?
                        .ok_or_else(|| field("config_ref", format!("no config ref {config_ref} in this project")))?,
                ),
                Source::Repo { .. } => None,
            };
            let mut filters = Vec::new();
            for f in &sp.target.filter {
                filters.push(render::parse_filter(f).map_err(|m| field("filter", m))?);
            }
            let sel = Selection { group: sp.target.group.clone(), filters, include_inactive: false };
            let snap = st.snapshot(conn, &project)?;
            if let Some(g) = &sel.group {
                if !snap.groups.iter().any(|x| &x.name == g) {
                    return Err(field("group", format!("no group named {g:?} in project {:?}", project.name)));
                }
            }
            let emitted = render::emit(&snap, &sel, Options::default()).map_err(render_error)?;
            let hosts: Vec<String> = emitted.structure.hosts.iter().map(|h| h.name.clone()).collect();
            // A rolling run's batches, cut now from the target as resolved now.
            let plan = sp.options.batch.as_ref().map(|sizes| {
                let order = craton::rollout::inventory_order(&emitted.structure, sel.group.as_deref());
                let seed = craton::store::now_ms() as u64 ^ u64::from(std::process::id());
                craton::rollout::plan(&craton::rollout::ordered(order, sp.options.order, seed), sizes)
            });
            if hosts.is_empty() {
                let f = if sel.filters.is_empty() { "group" } else { "filter" };
                return Err(field(f, "the target selects no hosts"));
            }
            if let Some(plan) = &plan {
                for b in plan {
                    craton::rollout::limit_file(b).map_err(|m| field("batch", m))?;
                }
            }
            if sp.options.if_busy == core_runs::IfBusy::Refuse {
                busy(conn, project.id, &hosts)?;
            }
            // The same cache key as GET /v1/inventory/{group}.tgz?vars=...
            let key: String = sel.filters.iter().map(|(k, v)| format!("vars={k}:{v}&")).collect();
            // Secrets go into a run only when its submitter may read them (a
            // playbook can print any variable): under the client-mode
            // password, which the run's craton-vault-client reads from a file
            // of the run's own directory.
            let out = match super::secrets::may_read_values(&caller) {
                Ok(()) => {
                    Some(super::vault_out::prepare(&st, conn, &caller, &project, &super::vault_out::Ask::Client)?)
                }
                Err(_) => None,
            };
            let (bundle, vault_password) = match out {
                Some(out) if out.key.is_some() => {
                    (Arc::new(super::bundles::build_vaulted(&out, &sel, Format::Tgz)?), out.password)
                }
                _ => {
                    (super::bundles::build_cached(&st, conn, &project, &sel, Format::Tgz, &format!("run:{key}"))?, None)
                }
            };
            let new = NewRun {
                project_id: project.id,
                spec: &sp,
                created_by: &who,
                bundle: &bundle.bytes,
                bundle_etag: &bundle.etag,
                hosts: &hosts,
                inventory_revision: Some(snap.project.revision),
                holder: &holder,
                lease_ttl_ms: ttl,
            };
            // The run and its approval request together: a gated run is
            // never stored ungated.
            let run = craton::store::tx::write(conn, |conn| {
                let run = store_runs::create(conn, &new)?;
                if let Some(plan) = &plan {
                    craton::store::rollouts::create(conn, run.id, 1, plan, &submitter, None)?;
                }
                if sp.options.approval == core_runs::Approval::Required {
                    craton::store::gates::request_approval(conn, run.id, &submitter, approval_expires)?;
                }
                Ok::<_, craton::store::StoreError>(run)
            })?;
            Ok((run, config_ref, bundle, vault_password))
        })
        .await?;
    let json = run_json(&run, &project.name);
    hub.emit_hook(crate::hooks::RUN_QUEUED, &run, &json);
    if spec.options.approval == core_runs::Approval::Required {
        hub.emit_hook(craton::hooks::RUN_WAITING_FOR_APPROVAL, &run, &json);
    }
    hub.launch(
        state.pool.clone(),
        Launch {
            run: run.clone(),
            spec,
            project: project.name.clone(),
            actor,
            config_ref,
            bundle,
            vault_password,
            pin_commit: None,
        },
    );
    Ok((run, project.name))
}

/// `"if_busy": "refuse"`: a 409 naming the runs that hold any of `hosts`
/// (claimed or running) and a few of the hosts.
fn busy(conn: &mut craton::store::DbConn, pid: i64, hosts: &[String]) -> Result<(), ApiError> {
    let held = craton::store::queue::holders(conn, pid, hosts)?;
    if held.is_empty() {
        return Ok(());
    }
    let mut runs: Vec<i64> = held.iter().map(|(r, _)| *r).collect();
    runs.dedup();
    let few: Vec<&str> = held.iter().take(5).map(|(_, h)| h.as_str()).collect();
    let more = if held.len() > few.len() { format!(" and {} more", held.len() - few.len()) } else { String::new() };
    let ids: Vec<String> = runs.iter().map(|r| r.to_string()).collect();
    Err(ApiError::Conflict(format!(
        "if_busy is refuse and its hosts are held by run {}: {}{more}",
        ids.join(", "),
        few.join(", ")
    )))
}

#[utoipa::path(get, path = "/v1/runs", tag = "runs", security(("bearer" = [])),
    summary = "List runs, newest first; filters status, group, since (ms); limit + marker paging",
    params(crate::api::openapi::RunListQuery),
    responses((status = 200, description = "One page", body = crate::api::openapi::RunList), crate::api::openapi::ReadErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "status", "group", "since", "limit", "marker"])?;
    let page = Page::from_query(&q)?;
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            field("status", format!("{s:?} is not one of {}", all.join(", ")))
        })?),
    };
    let since = match q.get("since") {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| field("since", "must be milliseconds since the epoch"))?),
    };
    let filter = ListFilter {
        status,
        group: q.get("group").map(str::to_string),
        since,
        before_id: page.marker,
        limit: page.limit as i64 + 1,
    };
    let requested = q.get("project").map(str::to_string);
    let (runs, project) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            Ok((store_runs::list(conn, project.id, &filter)?, project.name))
        })
        .await?;
    let (runs, links) = marker_page("/v1/runs", &q, page, runs, |r| r.id);
    let items: Vec<Value> = runs.iter().map(|r| run_json(r, &project)).collect();
    Ok(list_body(items, links))
}

#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", security(("bearer" = [])),
    summary = "One run: status, rc, reason, source commit, target, options, bundle ETag, counts",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The run", body = crate::api::openapi::RunDoc), crate::api::openapi::ReadErrors))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("run", &id)?;
    let (run, project) = visible_run(&state, caller, &q, id).await?;
    Ok(Json(run_json(&run, &project)))
}

#[utoipa::path(get, path = "/v1/runs/{id}/hosts", tag = "runs", security(("bearer" = [])),
    summary = "Per-host results of a run: status and the recap counters",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "Every host of the run's target", body = crate::api::openapi::RunHostList), crate::api::openapi::ReadErrors))]
pub async fn hosts(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (id, rows) =
        of_visible_run(&state, caller, raw.as_deref(), &id, |conn, id| Ok(store_runs::hosts_of(conn, id)?)).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|h| {
            json!({"host": h.host, "status": h.status, "ok": h.ok, "changed": h.changed, "failures": h.failures,
                "unreachable": h.unreachable, "skipped": h.skipped, "rescued": h.rescued, "ignored": h.ignored,
                "task": h.last_task, "updated_at": h.updated_at})
        })
        .collect();
    Ok(Json(json!({"items": items, "links": {"self": format!("/v1/runs/{id}/hosts")}})))
}

/// Most events per JSON page or SSE read.
const EVENT_PAGE: i64 = 1000;

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("text/event-stream")))
}

#[utoipa::path(get, path = "/v1/runs/{id}/events", tag = "runs", security(("bearer" = [])),
    summary = "A run's events in counter order: JSON pages (after, limit), or with Accept: text/event-stream a live SSE stream resumable by Last-Event-ID, ending with `event: end`",
    params(crate::api::openapi::IdPath, crate::api::openapi::EventsQuery),
    responses((status = 200, description = "A page of events, or an event stream",
            content((crate::api::openapi::EventPage = "application/json"), (String = "text/event-stream"))),
        crate::api::openapi::ReadErrors))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "after", "limit"])?;
    let id = parse_id("run", &id)?;
    let mut after = match q.get("after") {
        None => 0,
        Some(a) => {
            a.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| field("after", "must be an event counter"))?
        }
    };
    if let Some(l) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        after = l.trim().parse::<i64>().map_err(|_| ApiError::bad("Last-Event-ID must be an event counter"))?;
    }
    let limit = match q.get("limit") {
        None => 500,
        Some(l) => l.parse::<i64>().map(|l| l.clamp(1, EVENT_PAGE)).unwrap_or(500),
    };
    // A Craton token's stream ends when it is revoked; a Keystone token
    // has no row to watch.
    let token = caller.token_id();
    let (run, project) = visible_run(&state, caller, &q, id).await?;
    if wants_sse(&headers) {
        let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(256);
        let task = tokio::spawn(pump(state.clone(), run, project, after, tx));
        if let Some(token) = token {
            tokio::spawn(end_when_revoked(state.clone(), token, task));
        }
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        return Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response());
    }
    let events = state.db(move |conn| Ok(store_runs::events(conn, id, after, limit + 1)?)).await?;
    let more = events.len() as i64 > limit;
    let items: Vec<&serde_json::value::RawValue> = events
        .iter()
        .take(limit as usize)
        .filter_map(|(_, d)| serde_json::from_str::<&serde_json::value::RawValue>(d).ok())
        .collect();
    let last = events.iter().take(limit as usize).last().map(|(c, _)| *c);
    let mut links = Map::new();
    links.insert("self".into(), json!(format!("/v1/runs/{id}/events?after={after}&limit={limit}")));
    if let (true, Some(l)) = (more, last) {
        links.insert("next".into(), json!(format!("/v1/runs/{id}/events?after={l}&limit={limit}")));
    }
    let finished = run.status().is_final();
    Ok(Json(json!({"items": items, "finished": finished && !more, "links": links})).into_response())
}

/// Feeds one SSE client: stored events first, then live ones, each once,
/// in counter order; `status` when the run's counts or status change;
/// `end` after the last event of a finished run. Reads the process's live
/// feed when this process runs the run, else the database.
/// How often a long-lived stream confirms that its token is still live.
const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// A stream lives longer than any request: it ends (its pump is dropped,
/// which closes the response) within [`TOKEN_RECHECK`] of its token being
/// revoked.
async fn end_when_revoked(state: AppState, token: i64, mut task: tokio::task::JoinHandle<()>) {
    loop {
        tokio::select! {
            _ = &mut task => return,
            _ = tokio::time::sleep(TOKEN_RECHECK) => {
                let live = state.db(move |conn| Ok(craton::store::tokens::is_live(conn, token)?)).await;
                if matches!(live, Ok(false)) {
                    tracing::info!(token, "token revoked: ending its event stream");
                    task.abort();
                    return;
                }
            }
        }
    }
}

async fn pump(state: AppState, run: Run, project: String, mut last: i64, tx: mpsc::Sender<Result<Event, Infallible>>) {
    let id = run.id;
    let mut seen_run: Option<Value> = None;
    let hub = state.runs.clone();
    loop {
        let feed = hub.as_ref().and_then(|h| h.feed(id));
        let mut wake = feed.as_ref().map(|f| f.subscribe());
        let (events, run_now): (Vec<(i64, Arc<str>)>, Option<Value>) = match &feed {
            Some(f) => {
                let u = f.since(last, EVENT_PAGE as usize);
                if u.gap_before {
                    (stored_events(&state, id, last).await, u.run)
                } else {
                    (u.events, u.run)
                }
            }
            None if hub.as_ref().is_some_and(|h| h.settings.redis_url.is_some()) && !run.status().is_final() => {
                let url = hub.as_ref().and_then(|h| h.settings.redis_url.clone()).expect("redis url");
                match follow_redis(&state, &url, id, &project, &mut last, &tx).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(run = id, error = %e, "following a run through redis failed; reading the database");
                        (stored_events(&state, id, last).await, None)
                    }
                }
            }
            None => {
                let evs = stored_events(&state, id, last).await;
                let p = project.clone();
                let r = state
                    .db(move |conn| Ok(store_runs::get(conn, None, id)?))
                    .await
                    .ok()
                    .flatten()
                    .map(|r| run_json(&r, &p));
                (evs, r)
            }
        };
        let full_page = events.len() as i64 >= EVENT_PAGE;
        for (c, data) in events {
            if c <= last {
                continue;
            }
            let ev = Event::default().id(c.to_string()).event("run_event").data(&*data);
            if tx.send(Ok(ev)).await.is_err() {
                return;
            }
            last = c;
        }
        let finished = run_now
            .as_ref()
            .and_then(|r| r.get("status"))
            .and_then(Value::as_str)
            .and_then(RunStatus::parse)
            .is_some_and(RunStatus::is_final);
        if let Some(r) = &run_now {
            if seen_run.as_ref() != Some(r) && !finished {
                if tx.send(Ok(Event::default().event("status").data(r.to_string()))).await.is_err() {
                    return;
                }
                seen_run = Some(r.clone());
            }
        }
        if finished && !full_page {
            // A finished run's events are all stored or in the feed: one
            // more read makes sure none arrived between the two reads.
            let rest = match &feed {
                Some(f) => f.since(last, usize::MAX).events,
                None => stored_events(&state, id, last).await,
            };
            for (c, data) in rest {
                if c > last {
                    let _ = tx.send(Ok(Event::default().id(c.to_string()).event("run_event").data(&*data))).await;
                    last = c;
                }
            }
            let r = run_now.expect("finished run");
            let _ = tx.send(Ok(Event::default().event("end").data(r.to_string()))).await;
            return;
        }
        if full_page {
            continue;
        }
        match wake.as_mut() {
            Some(w) => {
                tokio::select! {
                    _ = w.changed() => {},
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    _ = tx.closed() => return,
                }
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {},
                    _ = tx.closed() => return,
                }
            }
        }
    }
}

/// Serves the stream of a run another process runs from its Redis
/// messages: stored events first (subscribed before reading, so nothing
/// falls between), then live ones in counter order; a gap (a message
/// Redis dropped, or events stored before the subscription) is filled
/// from the database. Returns when the run ended or the client left.
async fn follow_redis(
    state: &AppState,
    url: &str,
    id: i64,
    project: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<(), String> {
    use tokio_stream::StreamExt;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut ps = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    ps.subscribe(crate::runner::publish::run_channel(id)).await.map_err(|e| e.to_string())?;
    let mut msgs = ps.on_message();
    let send = |c: i64, data: &str| Ok(Event::default().id(c.to_string()).event("run_event").data(data));
    let mut pending: std::collections::BTreeMap<i64, String> = Default::default();
    let mut gap_since: Option<tokio::time::Instant> = None;
    let mut fill = true;
    loop {
        if fill {
            loop {
                let evs = stored_events(state, id, *last).await;
                let n = evs.len() as i64;
                for (c, d) in evs {
                    if tx.send(send(c, &d)).await.is_err() {
                        return Ok(());
                    }
                    *last = c;
                }
                if n < EVENT_PAGE {
                    break;
                }
            }
            pending.retain(|c, _| *c > *last);
            fill = false;
            gap_since = None;
            let p = project.to_string();
            let run = state.db(move |conn| Ok(store_runs::get(conn, None, id)?)).await.map_err(|e| e.to_string())?;
            if let Some(r) = run.filter(|r| r.status().is_final()) {
                let _ = tx.send(Ok(Event::default().event("end").data(run_json(&r, &p).to_string()))).await;
                return Ok(());
            }
        }
        while let Some(entry) = pending.first_entry() {
            if *entry.key() != *last + 1 {
                break;
            }
            let (c, d) = entry.remove_entry();
            if tx.send(send(c, &d)).await.is_err() {
                return Ok(());
            }
            *last = c;
        }
        if !pending.is_empty() && gap_since.is_none() {
            gap_since = Some(tokio::time::Instant::now());
        }
        let gap_deadline = gap_since.map(|t| t + Duration::from_millis(500));
        tokio::select! {
            m = msgs.next() => {
                let Some(m) = m else { return Err("redis subscription closed".into()) };
                let payload: String = m.get_payload().map_err(|e| e.to_string())?;
                let v: Value = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
                match v["type"].as_str() {
                    Some("event") => {
                        if let Some(c) = v["event"]["counter"].as_i64().filter(|c| *c > *last) {
                            pending.insert(c, v["event"].to_string());
                        }
                    }
                    Some("status") => {
                        if tx.send(Ok(Event::default().event("status").data(v["run"].to_string()))).await.is_err() {
                            return Ok(());
                        }
                    }
                    // Sent after the run's last batch is stored.
                    Some("end") => fill = true,
                    _ => {}
                }
            }
            _ = async { tokio::time::sleep_until(gap_deadline.expect("gap")).await }, if gap_deadline.is_some() => fill = true,
            _ = tokio::time::sleep(Duration::from_secs(5)) => fill = true,
            _ = tx.closed() => return Ok(()),
        }
    }
}

async fn stored_events(state: &AppState, id: i64, after: i64) -> Vec<(i64, Arc<str>)> {
    state
        .db(move |conn| Ok(store_runs::events(conn, id, after, EVENT_PAGE)?))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(c, d)| (c, Arc::from(d)))
        .collect()
}

#[utoipa::path(get, path = "/v1/runs/{id}/stdout", tag = "runs", security(("bearer" = [])),
    summary = "ansible-playbook's output (stdout and stderr) as stored; ?tail=BYTES for the end only",
    params(crate::api::openapi::IdPath, crate::api::openapi::StdoutQuery),
    responses((status = 200, description = "The output; X-Craton-Truncated: true when the cap cut it",
            content((String = "text/plain")), headers(("X-Craton-Truncated" = String))),
        crate::api::openapi::ReadErrors))]
pub async fn stdout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "tail"])?;
    let id = parse_id("run", &id)?;
    let tail = match q.get("tail") {
        None => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| field("tail", "must be a number of bytes"))?),
    };
    let (run, _) = visible_run(&state, caller, &q, id).await?;
    let mut text = state.db(move |conn| Ok(store_runs::stdout(conn, id)?)).await?;
    if let Some(t) = tail {
        if text.len() > t {
            let mut cut = text.len() - t;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text = text.split_off(cut);
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::HeaderName::from_static("x-craton-truncated"), run.stdout_truncated.to_string()),
        ],
        text,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/runs/{id}/bundle", tag = "runs", security(("bearer" = [])),
    summary = "The inventory bundle (.tgz) the run's ansible-playbook read, byte for byte",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The bundle; its ETag is the run's bundle_etag",
            content((crate::api::openapi::Binary = "application/gzip")), headers(("ETag" = String))),
        crate::api::openapi::ReadErrors))]
pub async fn bundle(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("run", &id)?;
    let (run, _) = visible_run(&state, caller, &q, id).await?;
    let bytes = state.db(move |conn| Ok(store_runs::bundle(conn, id)?)).await?.ok_or_else(|| not_found(id))?;
    Ok((
        [
            (header::CONTENT_TYPE, Format::Tgz.media_type().to_string()),
            (header::ETAG, run.bundle_etag.unwrap_or_default()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"run-{id}-inventory.tgz\"")),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs", security(("bearer" = [])),
    summary = "Cancel a run (editor): {\"mode\": \"graceful\"} (SIGINT: Ansible stops after the current task, the default) or \"immediate\" (SIGKILL of the process group)",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    request_body = crate::api::openapi::CancelBody,
    responses((status = 202, description = "Asked; the run ends `canceled`", body = crate::api::openapi::RunDoc),
        crate::api::openapi::WriteErrors))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("run", &id)?;
    let mode = match one_field_body(&body, "mode")? {
        None => CancelMode::Graceful,
        Some(v) => v
            .as_str()
            .and_then(CancelMode::parse)
            .ok_or_else(|| field("mode", "must be \"graceful\" or \"immediate\""))?,
    };
    let requested = q.get("project").map(str::to_string);
    let (run, project) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            caller.require(Role::Editor)?;
            let run = store_runs::request_cancel(conn, project.id, id, mode.as_str())?.ok_or_else(|| not_found(id))?;
            Ok((run, project.name))
        })
        .await?;
    if let Some(h) = &state.runs {
        h.cancel_local(id, mode);
    }
    Ok((StatusCode::ACCEPTED, Json(run_json(&run, &project))).into_response())
}
