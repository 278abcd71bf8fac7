//! The REST API v1: the route table, the middleware every request passes
//! (compression, metrics, timeout, body limit) and `app()`, which tests
//! call without a socket.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod body;
pub mod bundles;
pub mod compression;
pub mod config_refs;
pub mod error;
pub mod extract;
pub mod groups;
pub mod hooks;
pub mod hosts;
pub mod inventory;
pub mod meta;
pub mod openapi;
pub mod projects;
pub mod query;
pub mod resource;
pub mod rollouts;
pub mod runs;
pub mod schedules;
pub mod secrets;
pub mod tokens;
pub mod variables;
pub mod vault_out;
pub mod webhook_rules;
pub mod webhooks;
pub mod windows;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// One route of the API; [`ROUTES`] feeds the OpenAPI document, and a test
/// checks it against the router.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Reachable without a token.
    pub public: bool,
}

const fn r(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route { method, path, summary, public: false }
}

const fn public(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route { method, path, summary, public: true }
}

pub const ROUTES: &[Route] = &[
    public("GET", "/healthz", "Health, with a database round trip"),
    public("GET", "/metrics", "Prometheus metrics"),
    public("GET", "/v1/openapi.json", "This document"),
    r("GET", "/v1/inventory", "The inventory as `craton-inventory --list` prints it"),
    r("GET", "/v1/inventory/hosts/{name}", "One host's variables as `craton-inventory --host` prints them"),
    r(
        "GET",
        "/v1/inventory/diff",
        "What changed between two points (admin): hosts, groups, memberships, resolved variables, blame",
    ),
    r("GET", "/v1/inventory.tgz", "The project as a bundle (ansible.cfg + hosts/), gzipped tar"),
    r("GET", "/v1/inventory.zip", "The project as a bundle (ansible.cfg + hosts/), zip"),
    r("GET", "/v1/inventory/{bundle}", "A group's subtree as a bundle: GROUP.tgz or GROUP.zip"),
    r("GET", "/v1/vault-password", "A client-mode bundle's vault password (admin, root, secrets scope); recorded"),
    r("GET", "/v1/tokens", "List API tokens (admin)"),
    r("POST", "/v1/tokens", "Create an API token (admin); the secret is returned once"),
    r("DELETE", "/v1/tokens/{id}", "Revoke an API token (admin)"),
    r("GET", "/v1/projects", "List projects (root: all; a project token: its own)"),
    r("POST", "/v1/projects", "Create a project (root)"),
    r("GET", "/v1/projects/{id}", "One project with its variables"),
    r("PATCH", "/v1/projects/{id}", "Rename a project (root)"),
    r("PUT", "/v1/projects/{id}", "Replace a project's fields (root)"),
    r("DELETE", "/v1/projects/{id}", "Delete a project with everything in it (root)"),
    r("GET", "/v1/projects/{id}/variables", "The project's own variables (the `all` group's)"),
    r("PUT", "/v1/projects/{id}/variables", "Merge variables into the project's (editor)"),
    r("DELETE", "/v1/projects/{id}/variables", "Delete listed variables of the project (editor)"),
    r("GET", "/v1/groups", "List groups; filters name, kind; limit + marker paging"),
    r("POST", "/v1/groups", "Create a group (editor)"),
    r("GET", "/v1/groups/{id}", "One group with its variables"),
    r("PATCH", "/v1/groups/{id}", "Change some fields of a group (editor)"),
    r("PUT", "/v1/groups/{id}", "Replace a group's fields (editor)"),
    r("DELETE", "/v1/groups/{id}", "Delete a group (editor)"),
    r("GET", "/v1/groups/{id}/variables", "The group's own variables"),
    r("PUT", "/v1/groups/{id}/variables", "Merge variables into the group's (editor)"),
    r("DELETE", "/v1/groups/{id}/variables", "Delete listed variables of the group (editor)"),
    r(
        "GET",
        "/v1/hosts",
        "List hosts; filters name, group, label, parent, active, vars, last_run_status; limit + marker paging",
    ),
    r("POST", "/v1/hosts", "Create a host (editor)"),
    r("GET", "/v1/hosts/{id}", "One host with its own or (resolved=true) resolved variables"),
    r("PATCH", "/v1/hosts/{id}", "Change some fields of a host (editor)"),
    r("PUT", "/v1/hosts/{id}", "Replace a host's fields (editor)"),
    r("DELETE", "/v1/hosts/{id}", "Delete a host (editor)"),
    r("GET", "/v1/hosts/{id}/variables", "The host's own variables, or (resolved=true) resolved with blame"),
    r("PUT", "/v1/hosts/{id}/variables", "Merge variables into the host's (editor)"),
    r("DELETE", "/v1/hosts/{id}/variables", "Delete listed variables of the host (editor)"),
    r("GET", "/v1/config-refs", "List git config refs with their sync status"),
    r("POST", "/v1/config-refs", "Add a git config ref: {url, ref, path, group, poll_interval} (editor)"),
    r("GET", "/v1/config-refs/{id}", "One config ref: last synced commit, time, result, error (file:line), counts"),
    r("DELETE", "/v1/config-refs/{id}", "Delete a config ref and the variables it owns (editor)"),
    r("POST", "/v1/config-refs/{id}/sync", "Sync a config ref now, in the background: 202 (editor)"),
    r("POST", "/v1/runs", "Start a playbook run on a group or filter of the project (editor)"),
    r("GET", "/v1/runs", "List runs, newest first; filters status, group, since (ms); limit + marker paging"),
    r("GET", "/v1/runs/{id}", "One run: status, rc, reason, source commit, target, options, bundle ETag, counts"),
    r("GET", "/v1/runs/{id}/hosts", "Per-host results of a run: status and the recap counters"),
    r("GET", "/v1/runs/{id}/events", "A run's events: JSON pages, or a live SSE stream (Accept: text/event-stream)"),
    r("GET", "/v1/runs/{id}/stdout", "ansible-playbook's output as stored; ?tail=BYTES for the end only"),
    r("GET", "/v1/runs/{id}/bundle", "The inventory bundle (.tgz) the run's ansible-playbook read"),
    r("POST", "/v1/runs/{id}/cancel", "Cancel a run: graceful (SIGINT) or immediate (SIGKILL) (editor)"),
    r("POST", "/v1/runs/{id}/approve", "Approve a run waiting for approval (admin, not its submitter)"),
    r("POST", "/v1/runs/{id}/deny", "Deny a run waiting for approval: it ends canceled (admin, not its submitter)"),
    r("GET", "/v1/runs/{id}/batches", "A rolling run's batches: hosts, status, failed hosts; resumed from/by"),
    r("POST", "/v1/runs/{id}/resume", "Resume a stopped rollout: a new run of its unfinished batches (editor)"),
    r("GET", "/v1/runs/{id}/commit-statuses", "The GitHub commit statuses a rule's run posts, with their delivery"),
    // Audit trail (issue 12).
    r("GET", "/v1/audit", "Change sets of the audit trail, newest first (admin)"),
    r("GET", "/v1/audit/{id}", "One change set with its changes before and after (admin)"),
    // Maintenance windows (issue 10).
    r("GET", "/v1/groups/{id}/windows", "A group's maintenance windows, own and inherited (each names its group)"),
    r(
        "POST",
        "/v1/groups/{id}/windows",
        "Add a maintenance window (RRULE or cron, time zone, duration) to a group (editor)",
    ),
    r(
        "GET",
        "/v1/groups/{id}/windows/next",
        "When all hosts below the group are next inside a window at once, and until when",
    ),
    r("GET", "/v1/windows", "Every maintenance window of the project with its own next opening"),
    r("DELETE", "/v1/windows/{id}", "Delete a maintenance window (editor)"),
    // Schedules (issue 10).
    r("POST", "/v1/schedules", "Add a schedule: a run template fired on an RRULE or cron line in a time zone (editor)"),
    r("GET", "/v1/schedules", "List the project's schedules with their next run; limit + marker paging"),
    r("GET", "/v1/schedules/{id}", "One schedule: template, rule, enabled, catch_up, next run"),
    r("PATCH", "/v1/schedules/{id}", "Change a schedule: enable/disable, rule, template, catch_up (editor)"),
    r("DELETE", "/v1/schedules/{id}", "Delete a schedule and its firing log (editor; its runs stay)"),
    r(
        "GET",
        "/v1/schedules/{id}/firings",
        "A schedule's handled occurrences, newest first: the run each started or why none",
    ),
    // Webhook rules (issue 10, "Choreography").
    r(
        "POST",
        "/v1/webhook-rules",
        "Add a webhook rule: a GitHub push or pull request that submits a run template (editor)",
    ),
    r("GET", "/v1/webhook-rules", "List the project's webhook rules; limit + marker paging"),
    r("GET", "/v1/webhook-rules/{id}", "One webhook rule: what it matches, its template, sync, enabled"),
    r("PATCH", "/v1/webhook-rules/{id}", "Change a webhook rule: match fields, template, sync, enabled (editor)"),
    r(
        "DELETE",
        "/v1/webhook-rules/{id}",
        "Delete a webhook rule and its match log (editor; its runs and the deliveries stay)",
    ),
    r(
        "GET",
        "/v1/webhook-rules/{id}/deliveries",
        "The GitHub deliveries a rule matched, newest first: the run each submitted or why none",
    ),
    r("POST", "/v1/hooks", "Add an outbound webhook: {url, secret, events, active} (admin); the secret is write-only"),
    r("GET", "/v1/hooks", "List the project's outbound webhooks (admin); limit + marker paging"),
    r("GET", "/v1/hooks/{id}", "One outbound webhook (admin); never its secret"),
    r("PATCH", "/v1/hooks/{id}", "Change an outbound webhook's url, secret, events or active (admin)"),
    r("DELETE", "/v1/hooks/{id}", "Delete an outbound webhook with its delivery log (admin)"),
    r("GET", "/v1/hooks/{id}/deliveries", "A hook's deliveries with every attempt's response code or error (admin)"),
    // Secrets (issue 9).
    r("GET", "/v1/hosts/{id}/secrets", "A host's secrets, metadata only; ?expiring_within=30d"),
    r("POST", "/v1/hosts/{id}/secrets", "Create a secret of a host: {name, kind, value} (editor)"),
    r("GET", "/v1/hosts/{id}/secrets/{name}", "One secret of a host: metadata and kept versions"),
    r("PUT", "/v1/hosts/{id}/secrets/{name}", "A new version of a host's secret (editor)"),
    r("DELETE", "/v1/hosts/{id}/secrets/{name}", "Delete a host's secret (editor)"),
    r("GET", "/v1/hosts/{id}/secrets/{name}/value", "A host secret's plaintext (admin, root); recorded"),
    r("GET", "/v1/groups/{id}/secrets", "A group's secrets, metadata only; ?expiring_within=30d"),
    r("POST", "/v1/groups/{id}/secrets", "Create a secret of a group: {name, kind, value} (editor)"),
    r("GET", "/v1/groups/{id}/secrets/{name}", "One secret of a group: metadata and kept versions"),
    r("PUT", "/v1/groups/{id}/secrets/{name}", "A new version of a group's secret (editor)"),
    r("DELETE", "/v1/groups/{id}/secrets/{name}", "Delete a group's secret (editor)"),
    r("GET", "/v1/groups/{id}/secrets/{name}/value", "A group secret's plaintext (admin, root); recorded"),
    r("GET", "/v1/projects/{id}/secrets", "A project's own secrets, metadata only; ?expiring_within=30d"),
    r("POST", "/v1/projects/{id}/secrets", "Create a secret of the project: {name, kind, value} (editor)"),
    r("GET", "/v1/projects/{id}/secrets/{name}", "One secret of the project: metadata and kept versions"),
    r("PUT", "/v1/projects/{id}/secrets/{name}", "A new version of a project's secret (editor)"),
    r("DELETE", "/v1/projects/{id}/secrets/{name}", "Delete a project's secret (editor)"),
    r("GET", "/v1/projects/{id}/secrets/{name}/value", "A project secret's plaintext (admin, root); recorded"),
    public(
        "POST",
        "/v1/webhooks/github",
        "GitHub push webhook, verified by X-Hub-Signature-256 (CRATON_WEBHOOK_SECRET); 202, sync in background",
    ),
];

/// GitHub sends push payloads of up to 25 MB.
const WEBHOOK_BODY_BYTES: usize = 25 << 20;

/// Default limits, overridable by `serve` flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub timeout: Duration,
    /// Compress responses ([`compression`]); off behind a proxy that
    /// compresses itself (`--no-compression`).
    pub compress: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { body_bytes: 1 << 20, timeout: Duration::from_secs(30), compress: true }
    }
}

/// Where [`matched_route`] leaves the route for [`record`], which runs
/// outside the router (so that it also sees the answers of the deadline
/// and the fallback) and so cannot read `MatchedPath` itself.
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<MatchedPath>>);

async fn matched_route(req: Request, next: Next) -> Response {
    if let (Some(slot), Some(path)) = (req.extensions().get::<RouteSlot>(), req.extensions().get::<MatchedPath>()) {
        let _ = slot.0.set(path.clone());
    }
    next.run(req).await
}

/// Metrics and the debug log line of every request.
async fn record(State(metrics): State<Arc<crate::metrics::Metrics>>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let _in_flight = metrics.http.start();
    let method = req.method().clone();
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    let route = slot.0.get().map_or("unmatched", MatchedPath::as_str);
    metrics.http.observe(&method, route, resp.status(), start.elapsed());
    tracing::debug!(%method, %route, status = resp.status().as_u16(), micros = start.elapsed().as_micros() as u64, "request");
    resp
}

async fn fallback() -> error::ApiError {
    error::ApiError::NotFound("no such route".into())
}

/// Answers 408 with the JSON error body when the handler takes longer than
/// `timeout` (tower-http's timeout layer answers with an empty body).
async fn deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    match tokio::time::timeout(timeout, next.run(req)).await {
        // The timer may fire a tick late: an answer ready after the
        // deadline is late all the same.
        Ok(_) if start.elapsed() >= timeout => error::ApiError::Timeout.into_response(),
        Ok(resp) => resp,
        Err(_) => error::ApiError::Timeout.into_response(),
    }
}

/// A known route asked with a method it does not have; axum adds the
/// `Allow` header.
async fn method_not_allowed() -> error::ApiError {
    error::ApiError::MethodNotAllowed
}

pub fn app(state: AppState, limits: Limits) -> Router {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .route("/v1/openapi.json", get(meta::openapi))
        .route("/v1/inventory", get(inventory::list))
        .route("/v1/inventory/hosts/{name}", get(inventory::host))
        .route("/v1/inventory/diff", get(inventory::diff))
        .route("/v1/inventory.tgz", get(bundles::project_tgz))
        .route("/v1/inventory.zip", get(bundles::project_zip))
        .route("/v1/inventory/{bundle}", get(bundles::group))
        .route("/v1/vault-password", get(vault_out::password))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .route("/v1/projects", get(projects::list).post(projects::create))
        .route(
            "/v1/projects/{id}",
            get(projects::get_one).patch(projects::patch).put(projects::put).delete(projects::delete),
        )
        .route(
            "/v1/projects/{id}/variables",
            get(variables::get_project).put(variables::put_project).delete(variables::delete_project),
        )
        .route("/v1/groups", get(groups::list).post(groups::create))
        .route("/v1/groups/{id}", get(groups::get_one).patch(groups::patch).put(groups::put).delete(groups::delete))
        .route(
            "/v1/groups/{id}/variables",
            get(variables::get_group).put(variables::put_group).delete(variables::delete_group),
        )
        .route("/v1/hosts", get(hosts::list).post(hosts::create))
        .route("/v1/hosts/{id}", get(hosts::get_one).patch(hosts::patch).put(hosts::put).delete(hosts::delete))
        .route(
            "/v1/hosts/{id}/variables",
            get(variables::get_host).put(variables::put_host).delete(variables::delete_host),
        )
        .route("/v1/config-refs", get(config_refs::list).post(config_refs::create))
        .route("/v1/config-refs/{id}", get(config_refs::get_one).delete(config_refs::delete))
        .route("/v1/config-refs/{id}/sync", post(config_refs::trigger))
        .route("/v1/runs", get(runs::list).post(runs::create))
        .route("/v1/runs/{id}", get(runs::get_one))
        .route("/v1/runs/{id}/hosts", get(runs::hosts))
        .route("/v1/runs/{id}/events", get(runs::events))
        .route("/v1/runs/{id}/stdout", get(runs::stdout))
        .route("/v1/runs/{id}/bundle", get(runs::bundle))
        .route("/v1/runs/{id}/cancel", post(runs::cancel))
        .route("/v1/runs/{id}/approve", post(approvals::approve))
        .route("/v1/runs/{id}/deny", post(approvals::deny))
        .route("/v1/runs/{id}/batches", get(rollouts::batches))
        .route("/v1/runs/{id}/commit-statuses", get(webhook_rules::commit_statuses))
        .route("/v1/runs/{id}/resume", post(rollouts::resume))
        // Audit trail (issue 12).
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/{id}", get(audit::get_one))
        // Maintenance windows (issue 10).
        .route("/v1/groups/{id}/windows", get(windows::list).post(windows::create))
        .route("/v1/groups/{id}/windows/next", get(windows::next))
        .route("/v1/windows", get(windows::list_all))
        .route("/v1/windows/{id}", delete(windows::delete))
        // Schedules (issue 10).
        .route("/v1/schedules", get(schedules::list).post(schedules::create))
        .route("/v1/schedules/{id}", get(schedules::get_one).patch(schedules::patch).delete(schedules::delete))
        .route("/v1/schedules/{id}/firings", get(schedules::firings))
        // Webhook rules (issue 10).
        .route("/v1/webhook-rules", get(webhook_rules::list).post(webhook_rules::create))
        .route(
            "/v1/webhook-rules/{id}",
            get(webhook_rules::get_one).patch(webhook_rules::patch).delete(webhook_rules::delete),
        )
        .route("/v1/webhook-rules/{id}/deliveries", get(webhook_rules::deliveries))
        .route("/v1/hooks", get(hooks::list).post(hooks::create))
        .route("/v1/hooks/{id}", get(hooks::get_one).patch(hooks::patch).delete(hooks::delete))
        .route("/v1/hooks/{id}/deliveries", get(hooks::deliveries))
        // Secrets (issue 9).
        .route("/v1/hosts/{id}/secrets", get(secrets::list_host).post(secrets::create_host))
        .route(
            "/v1/hosts/{id}/secrets/{name}",
            get(secrets::get_host).put(secrets::put_host).delete(secrets::delete_host),
        )
        .route("/v1/hosts/{id}/secrets/{name}/value", get(secrets::value_host))
        .route("/v1/groups/{id}/secrets", get(secrets::list_group).post(secrets::create_group))
        .route(
            "/v1/groups/{id}/secrets/{name}",
            get(secrets::get_group).put(secrets::put_group).delete(secrets::delete_group),
        )
        .route("/v1/groups/{id}/secrets/{name}/value", get(secrets::value_group))
        .route("/v1/projects/{id}/secrets", get(secrets::list_project).post(secrets::create_project))
        .route(
            "/v1/projects/{id}/secrets/{name}",
            get(secrets::get_project).put(secrets::put_project).delete(secrets::delete_project),
        )
        .route("/v1/projects/{id}/secrets/{name}/value", get(secrets::value_project))
        .route("/v1/webhooks/github", post(webhooks::github).layer(DefaultBodyLimit::max(WEBHOOK_BODY_BYTES)))
        // The web page is not API: merged, not `.route`d here, so it stays
        // out of ROUTES and the OpenAPI document (their test reads this file).
        .merge(crate::ui::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::confirm_grant))
        .route_layer(middleware::from_fn(matched_route))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(middleware::from_fn_with_state(limits.timeout, deadline))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), record))
        .layer(compression::layer(limits.compress))
        .layer(middleware::from_fn(compression::weak_etags))
        .with_state(state)
}
