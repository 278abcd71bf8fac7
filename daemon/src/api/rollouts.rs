//! A rolling run's batches (`GET /v1/runs/{id}/batches`) and the resume
//! of a stopped rollout (`POST /v1/runs/{id}/resume`, docs/rollouts.md).
//!
//! A resume is a new run, not the old one brought back: a final status
//! never changes, and the new run's history (who resumed it, when, its own
//! events) stays its own. It takes the old run's spec, its recorded bundle
//! (the same bytes, the same ETag) and its commit, and the batches that did
//! not finish, numbered as they were; the old run then names it
//! (`resumed_by`), so a rollout is resumed at most once.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Json;
use craton::runs::{Approval, Source};
use craton::store::rollouts;
use craton::store::runs::{self as store_runs, NewRun};
use craton::store::tokens::Role;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::query::Query;
use super::resource::{created, location, parse_id};
use super::runs::{check_source_policy, created_by, hub, identity, not_found, of_visible_run};
use crate::repo_policy::Actor;
use crate::runner::run::{run_json, Launch};
use crate::state::AppState;

/// The run's rollout as JSON: its batches and the runs it resumes or was
/// resumed by (absent: not a rolling run).
pub(crate) fn rollout_json(rollout: &rollouts::RolloutRow, batches: &[rollouts::BatchRow]) -> Value {
    json!({
        "resumed_from": rollout.resumed_from,
        "resumed_by": rollout.resumed_by,
        "batches": batches.iter().map(rollouts::BatchRow::json).collect::<Vec<_>>(),
    })
}

#[utoipa::path(get, path = "/v1/runs/{id}/batches", tag = "runs", security(("bearer" = [])),
    summary = "A rolling run's batches: hosts, status, failed hosts, and the runs it resumes or was resumed by",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 200, description = "The batches in order (empty for a run without batch)", body = crate::api::openapi::RolloutDoc),
        crate::api::openapi::ReadErrors))]
pub async fn batches(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (id, (rollout, batches)) = of_visible_run(&state, caller, raw.as_deref(), &id, |conn, id| {
        Ok((rollouts::rollout(conn, id)?, rollouts::of_run(conn, id)?))
    })
    .await?;
    let rollout = rollout.unwrap_or(rollouts::RolloutRow {
        run_id: id,
        requested_by: String::new(),
        resumed_from: None,
        resumed_by: None,
    });
    Ok(Json(rollout_json(&rollout, &batches)))
}

#[utoipa::path(post, path = "/v1/runs/{id}/resume", tag = "runs", security(("bearer" = [])),
    summary = "Resume a stopped rollout (editor): a new run of the batches that did not finish, on the same bundle and commit",
    params(crate::api::openapi::IdPath, crate::api::openapi::ProjectQuery),
    responses((status = 201, description = "The new run, queued (409: not a finished rolling run with batches left, or already resumed)", body = crate::api::openapi::RunDoc),
        crate::api::openapi::WriteErrors))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project"])?;
    let id = parse_id("run", &id)?;
    let hub = hub(&state)?;
    let requested = q.get("project").map(str::to_string);
    let who = created_by(&caller);
    let resumer = identity(&caller);
    let actor = Actor::root_if(caller.is_root());
    let (holder, ttl) = (hub.settings.holder.clone(), hub.settings.lease_ttl_ms);
    // The repository policy as for a new submit, for whoever resumes (a
    // root's local repository stays root's), before anything is stored.
    let (c, r) = (caller.clone(), requested.clone());
    let (project_name, old_spec) = state
        .db(move |conn| {
            let project = c.project(conn, r.as_deref())?;
            c.require(Role::Editor)?;
            let old = store_runs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            Ok((project.name, old.spec()?))
        })
        .await?;
    let h = hub.clone();
    tokio::task::spawn_blocking(move || check_source_policy(&h, &project_name, actor, &old_spec))
        .await
        .map_err(|e| ApiError::internal(format!("policy check failed: {e}")))??;
    // As for a submit: after the run is known to exist and the caller may
    // resume it, so an unknown run is a 404 on any daemon.
    hub.settings.resolve_playbook_binary().map_err(ApiError::Missing)?;
    let (run, project, spec, config_ref, bundle, commit) = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            caller.require(Role::Editor)?;
            let old = store_runs::get(conn, Some(project.id), id)?.ok_or_else(|| not_found(id))?;
            if !old.status().is_final() {
                return Err(ApiError::Conflict(format!(
                    "run {id} is {}: a rollout is resumed once it has stopped",
                    old.status
                )));
            }
            let batches = rollouts::of_run(conn, id)?;
            if batches.is_empty() {
                return Err(ApiError::Conflict(format!("run {id} is not a rolling run (it has no batch)")));
            }
            let left: Vec<&rollouts::BatchRow> = batches.iter().filter(|b| b.status().resumable()).collect();
            let Some(first) = left.first() else {
                return Err(ApiError::Conflict(format!("every batch of run {id} ran: there is nothing to resume")));
            };
            let bytes = store_runs::bundle(conn, id)?
                .ok_or_else(|| ApiError::Conflict(format!("run {id}'s bundle is gone")))?;
            // Its client password was the old run's alone and is not kept.
            let vaulted = craton::bundle::tgz_holds(&bytes, "craton-vault-client")
                .map_err(|e| ApiError::internal(format!("reading run {id}'s bundle: {e}")))?;
            if vaulted {
                return Err(ApiError::Conflict(format!(
                    "run {id}'s bundle carries vaulted secrets, whose password only that run had: submit a new run"
                )));
            }
            let mut spec = old.spec()?;
            // Whoever resumes answers for it now: no inherited approval or
            // dependency (they were passed when the rollout started); its
            // batches still wait for approval with approve_each_batch.
            spec.options.approval = Approval::None;
            spec.options.approval_timeout_s = None;
            spec.options.after.clear();
            let config_ref = match &spec.source {
                Source::ConfigRef { config_ref } => Some(
                    craton::store::config_refs::get(conn, Some(project.id), *config_ref)?
                        .ok_or_else(|| ApiError::Conflict(format!("run {id}'s config ref {config_ref} is gone")))?,
                ),
                Source::Repo { .. } => None,
            };
            let plan: Vec<Vec<String>> = left.iter().map(|b| b.host_names()).collect();
            let hosts = plan.concat();
            let etag = old.bundle_etag.clone().unwrap_or_default();
            let new = NewRun {
                project_id: project.id,
                spec: &spec,
                created_by: &who,
                bundle: &bytes,
                bundle_etag: &etag,
                hosts: &hosts,
                inventory_revision: store_runs::inventory_revision(conn, id)?,
                holder: &holder,
                lease_ttl_ms: ttl,
            };
            let first_seq = first.seq;
            let run = craton::store::tx::write(conn, |conn| {
                let run = store_runs::create(conn, &new)?;
                rollouts::create(conn, run.id, first_seq, &plan, &resumer, Some(id))?;
                rollouts::mark_resumed(conn, id, run.id)?;
                Ok::<_, craton::store::StoreError>(run)
            })?;
            let bundle = Arc::new(craton::bundle::Bundle { bytes, etag });
            Ok((run, project.name, spec, config_ref, bundle, old.git_commit))
        })
        .await?;
    let json = run_json(&run, &project);
    hub.emit_hook(crate::hooks::RUN_QUEUED, &run, &json);
    hub.launch(
        state.pool.clone(),
        Launch {
            run: run.clone(),
            spec,
            project: project.clone(),
            actor,
            config_ref,
            bundle,
            vault_password: None,
            pin_commit: commit,
        },
    );
    Ok(created(location("/v1/runs", run.id, q.get("project")), json))
}
