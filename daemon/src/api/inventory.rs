//! `GET /v1/inventory` (the `--list` document), `GET /v1/inventory/hosts/{name}`
//! (`--host`), rendered by the same code as `craton-inventory`, so both
//! print the same bytes for the same data.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use craton::render::{self, Options, Selection};
use craton::source::SECRETS_OMITTED_HEADER;
use craton::store::history::{self, At};
use craton::store::StoreError;

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::query::Query;
use super::vault_out;
use crate::state::AppState;

const PARAMS: [&str; 7] = ["project", "group", "vars", "resolved", "pretty", "include_inactive", "at"];

pub(crate) struct InventoryQuery {
    pub project: Option<String>,
    pub selection: Selection,
    pub options: Options,
    /// `at=`: the inventory as of a past instant or revision.
    pub at: Option<At>,
}

fn at_field(message: impl Into<String>) -> ApiError {
    ApiError::fields(vec![FieldError { field: "at".into(), message: message.into() }])
}

/// The project as of `at`, from the audit trail (never cached: the
/// rebuild is cheap next to a render, see docs/history.md). Secrets are
/// not rebuilt: `ask` must not want them.
pub(crate) fn snapshot_at(
    conn: &mut craton::store::DbConn,
    project: &craton::model::Project,
    at: At,
    ask: &vault_out::Ask,
) -> Result<(craton::model::Snapshot, usize), ApiError> {
    if ask.wants_secrets() {
        return Err(at_field("the inventory as of a past time is served without secrets: drop the vault password"));
    }
    let asof = history::snapshot_at(conn, &project.name, at).map_err(|e| match e {
        StoreError::Invalid(m) => at_field(m.strip_prefix("at: ").unwrap_or(&m).to_string()),
        other => other.into(),
    })?;
    Ok((asof.snapshot, asof.secrets))
}

pub(crate) fn parse(raw: Option<&str>, extra: &[&str]) -> Result<InventoryQuery, ApiError> {
    let allowed: Vec<&str> = PARAMS.iter().chain(extra).copied().collect();
    let q = Query::parse(raw, &allowed)?;
    Ok(InventoryQuery {
        project: q.get("project").map(str::to_string),
        selection: Selection {
            group: q.get("group").map(str::to_string),
            filters: q.var_filters()?,
            include_inactive: q.flag("include_inactive")?,
        },
        options: Options { resolved: q.flag("resolved")?, pretty: q.flag("pretty")?, ..Options::default() },
        at: q.get("at").map(At::parse).transpose().map_err(at_field)?,
    })
}

/// The document with its ETag, or 304 when the client already holds these
/// bytes: an unchanged inventory costs the collection plugin's cached
/// reload one 304 instead of the whole document.
fn json_response(headers: &HeaderMap, body: Vec<u8>, omitted: usize) -> Response {
    let etag = craton::bundle::etag(&body);
    if super::compression::if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut r = ([(header::CONTENT_TYPE, "application/json".to_string()), (header::ETAG, etag)], body).into_response();
    omitted_header(&mut r, omitted);
    r
}

/// `X-Craton-Secrets-Omitted: N` when an output left out N > 0 secrets.
pub(crate) fn omitted_header(r: &mut Response, omitted: usize) {
    if omitted > 0 {
        r.headers_mut().insert(SECRETS_OMITTED_HEADER, omitted.into());
    }
}

/// Renders `--list` (host `None`) or `--host NAME` for the caller's project.
async fn render_doc(
    state: AppState,
    caller: Caller,
    raw: Option<String>,
    host: Option<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = parse(raw.as_deref(), &[])?;
    let ask = vault_out::ask(&headers, false)?;
    let st = state.clone();
    let (body, omitted) = state
        .db(move |conn| {
            let project = caller.project(conn, q.project.as_deref())?;
            let (snap, omitted) = match q.at {
                Some(at) => {
                    let (snap, omitted) = snapshot_at(conn, &project, at, &ask)?;
                    (std::sync::Arc::new(snap), omitted)
                }
                None => {
                    let prepared = vault_out::prepare(&st, conn, &caller, &project, &ask)?;
                    (prepared.snap, prepared.omitted)
                }
            };
            let e = render::emit(&snap, &q.selection, q.options).map_err(render_error)?;
            let mut out = Vec::with_capacity(1 << 16);
            match &host {
                Some(h) => render::write_host(&e, h, q.options, &mut out),
                None => render::write_list(&e, q.options, &mut out),
            }
            .map_err(render_error)?;
            Ok((out, omitted))
        })
        .await?;
    Ok(json_response(&headers, body, omitted))
}

pub(crate) fn render_error(e: render::RenderError) -> ApiError {
    match e {
        render::RenderError::UnknownGroup(..) | render::RenderError::UnknownHost(..) => {
            ApiError::NotFound(e.to_string())
        }
        render::RenderError::ReservedGroup(_) | render::RenderError::NotBundlable(_) => {
            ApiError::Conflict(e.to_string())
        }
        render::RenderError::Io(e) => ApiError::internal(e.to_string()),
    }
}

#[utoipa::path(get, path = "/v1/inventory", tag = "inventory", security(("bearer" = [])),
    summary = "The inventory as `craton-inventory --list` prints it",
    params(crate::api::openapi::InventoryQuery, crate::api::openapi::VaultHeaders, crate::api::openapi::ConditionalHeaders),
    responses((status = 200, description = "Ansible's --list JSON; its ETag is a hash of the bytes", body = crate::api::openapi::JsonObject, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the If-None-Match ETag", headers(("ETag" = String))),
        crate::api::openapi::RenderErrors))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    render_doc(state, caller, raw, None, headers).await
}

#[utoipa::path(get, path = "/v1/inventory/hosts/{name}", tag = "inventory", security(("bearer" = [])),
    summary = "One host's variables as `craton-inventory --host` prints them",
    params(crate::api::openapi::HostNamePath, crate::api::openapi::InventoryQuery, crate::api::openapi::VaultHeaders, crate::api::openapi::ConditionalHeaders),
    responses((status = 200, description = "Ansible's --host JSON; its ETag is a hash of the bytes", body = crate::api::openapi::JsonObject, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the If-None-Match ETag", headers(("ETag" = String))),
        crate::api::openapi::RenderErrors))]
pub async fn host(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    render_doc(state, caller, raw, Some(name), headers).await
}

#[utoipa::path(get, path = "/v1/inventory/diff", tag = "inventory", security(("bearer" = [])),
    summary = "What changed between two points (admin): groups, hosts, memberships, children and resolved variables per host, with the change sets in between as blame",
    params(crate::api::openapi::InventoryDiffQuery),
    responses((status = 200, description = "The diff (see docs/history.md)", body = crate::api::openapi::JsonObject), crate::api::openapi::AdminReadErrors))]
pub async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["project", "from", "to"])?;
    caller.require(craton::store::tokens::Role::Admin)?;
    let field = |name: &str, m: String| ApiError::fields(vec![FieldError { field: name.into(), message: m }]);
    let from = q
        .get("from")
        .ok_or_else(|| field("from", "required: an RFC 3339 instant, a revision or run:ID".into()))
        .and_then(|f| history::Since::parse(f).map_err(|m| field("from", m)))?;
    let to = q.get("to").map(history::Since::parse).transpose().map_err(|m| field("to", m))?;
    let requested = q.get("project").map(str::to_string);
    let d = state
        .db(move |conn| {
            let project = caller.project(conn, requested.as_deref())?;
            let from = from.resolve(conn, project.id).map_err(|m| field("from", m))?;
            let to = to.map(|t| t.resolve(conn, project.id)).transpose().map_err(|m| field("to", m))?;
            history::diff(conn, &project.name, from, to).map_err(|e| match e {
                StoreError::Invalid(m) => match craton::store::edit::split_field(&m, &["from", "to"]) {
                    Some((f, rest)) => field(f, rest.to_string()),
                    None => ApiError::bad(m),
                },
                other => other.into(),
            })
        })
        .await?;
    Ok(axum::Json(serde_json::to_value(d).map_err(|e| ApiError::internal(e.to_string()))?))
}
