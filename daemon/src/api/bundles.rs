//! `GET /v1/inventory.tgz|.zip` and `GET /v1/inventory/{group}.tgz|.zip`:
//! inventory bundles that `ansible-playbook` runs as unpacked. Bytes are
//! deterministic, so the ETag is a hash of them; bundles are cached by
//! project revision and query, so repeated downloads cost nothing.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use craton::bundle::{self, Bundle, Format};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::inventory::{parse, render_error};
use super::vault_out;
use crate::state::AppState;

fn split_format(file: &str) -> Option<(&str, Format)> {
    if let Some(g) = file.strip_suffix(".tgz") {
        Some((g, Format::Tgz))
    } else {
        file.strip_suffix(".zip").map(|g| (g, Format::Zip))
    }
}

async fn serve_bundle(
    state: AppState,
    caller: Caller,
    group: Option<String>,
    format: Format,
    raw: Option<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut q = parse(raw.as_deref(), &["vault"])?;
    let client = match super::query::Query::parse(raw.as_deref(), &ALLOWED)?.get("vault") {
        None => false,
        Some("client") => true,
        Some(other) => {
            return Err(ApiError::fields(vec![super::error::FieldError {
                field: "vault".into(),
                message: format!("{other:?}: the only mode is vault=client"),
            }]))
        }
    };
    let ask = vault_out::ask(&headers, client)?;
    if group.is_some() {
        if q.selection.group.is_some() {
            return Err(ApiError::bad("give the group in the path or in ?group=, not both"));
        }
        q.selection.group = group;
    }
    let st = state.clone();
    let key_query = raw.unwrap_or_default();
    let (bundle, omitted): (Arc<Bundle>, usize) = state
        .db(move |conn| {
            let project = caller.project(conn, q.project.as_deref())?;
            if let Some(at) = q.at {
                let (snap, omitted) = super::inventory::snapshot_at(conn, &project, at, &ask)?;
                return Ok((Arc::new(bundle::build(&snap, &q.selection, format).map_err(render_error)?), omitted));
            }
            if ask.wants_secrets() {
                let out = vault_out::prepare(&st, conn, &caller, &project, &ask)?;
                return Ok((Arc::new(build_vaulted(&out, &q.selection, format)?), 0));
            }
            let omitted = craton::store::secrets::count(conn, project.id)?;
            Ok((build_cached(&st, conn, &project, &q.selection, format, &key_query)?, omitted))
        })
        .await?;
    if super::compression::if_none_match(&headers, &bundle.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, bundle.etag.clone())]).into_response());
    }
    let mut r = (
        [
            (header::CONTENT_TYPE, format.media_type().to_string()),
            (header::ETAG, bundle.etag.clone()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"inventory.{}\"", format.extension())),
        ],
        bundle.bytes.clone(),
    )
        .into_response();
    super::inventory::omitted_header(&mut r, omitted);
    Ok(r)
}

const ALLOWED: [&str; 8] = ["project", "group", "vars", "resolved", "pretty", "include_inactive", "vault", "at"];

/// A bundle with secrets, from a prepared output. Not cached: building it
/// opened the secrets (and recorded that), which a cache hit would skip;
/// its bytes are still a pure function of revision and password, so
/// If-None-Match works.
pub(crate) fn build_vaulted(
    out: &vault_out::Output,
    sel: &craton::render::Selection,
    format: Format,
) -> Result<Bundle, ApiError> {
    let vault = out.key.as_ref().map(|key| bundle::Vault { key, client: out.client.clone() });
    bundle::build_with(&out.snap, sel, format, vault.as_ref()).map_err(render_error)
}

/// The bundle of `sel` at the project's current revision, built once per
/// revision and query (`key_query` tells queries apart). Runs use it too,
/// so a run's bundle is byte for byte what the bundle routes serve.
pub(crate) fn build_cached(
    st: &AppState,
    conn: &mut craton::store::DbConn,
    project: &craton::model::Project,
    sel: &craton::render::Selection,
    format: Format,
    key_query: &str,
) -> Result<Arc<Bundle>, ApiError> {
    let key = format!(
        "{}:{}:{}:{}:{}",
        project.id,
        project.revision,
        format.extension(),
        sel.group.as_deref().unwrap_or(""),
        key_query
    );
    if let Some(b) = st.cached_bundle(&key) {
        return Ok(b);
    }
    let snap = st.snapshot(conn, project)?;
    let b = Arc::new(bundle::build(&snap, sel, format).map_err(render_error)?);
    st.cache_bundle(key, b.clone());
    Ok(b)
}

/// The whole project: `/v1/inventory.tgz` or `/v1/inventory.zip`.
#[utoipa::path(get, path = "/v1/inventory.tgz", tag = "inventory", security(("bearer" = [])),
    summary = "The project as a bundle (ansible.cfg + hosts/), gzipped tar",
    params(crate::api::openapi::InventoryQuery, crate::api::openapi::BundleVaultQuery, crate::api::openapi::VaultHeaders, crate::api::openapi::ConditionalHeaders),
    responses((status = 200, description = "The bundle; its ETag is a hash of the bytes",
            content((crate::api::openapi::Binary = "application/gzip")),
            headers(("ETag" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Unchanged since the If-None-Match ETag", headers(("ETag" = String))),
        crate::api::openapi::RenderErrors))]
pub async fn project_tgz(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_bundle(state, caller, None, Format::Tgz, raw, headers).await
}

#[utoipa::path(get, path = "/v1/inventory.zip", tag = "inventory", security(("bearer" = [])),
    summary = "The project as a bundle (ansible.cfg + hosts/), zip",
    params(crate::api::openapi::InventoryQuery, crate::api::openapi::BundleVaultQuery, crate::api::openapi::VaultHeaders, crate::api::openapi::ConditionalHeaders),
    responses((status = 200, description = "The bundle; its ETag is a hash of the bytes",
            content((crate::api::openapi::Binary = "application/zip")),
            headers(("ETag" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Unchanged since the If-None-Match ETag", headers(("ETag" = String))),
        crate::api::openapi::RenderErrors))]
pub async fn project_zip(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_bundle(state, caller, None, Format::Zip, raw, headers).await
}

/// One group's subtree: `/v1/inventory/{group}.tgz` or `.zip`.
#[utoipa::path(get, path = "/v1/inventory/{bundle}", tag = "inventory", security(("bearer" = [])),
    summary = "A group's subtree as a bundle: GROUP.tgz or GROUP.zip",
    params(crate::api::openapi::BundlePath, crate::api::openapi::InventoryQuery, crate::api::openapi::BundleVaultQuery, crate::api::openapi::VaultHeaders, crate::api::openapi::ConditionalHeaders),
    responses((status = 200, description = "The bundle; its ETag is a hash of the bytes",
            content((crate::api::openapi::Binary = "application/gzip"), (crate::api::openapi::Binary = "application/zip")),
            headers(("ETag" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Unchanged since the If-None-Match ETag", headers(("ETag" = String))),
        crate::api::openapi::RenderErrors))]
pub async fn group(
    State(state): State<AppState>,
    caller: Caller,
    Path(file): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (group, format) =
        split_format(&file).ok_or_else(|| ApiError::NotFound(format!("{file:?}: ask for GROUP.tgz or GROUP.zip")))?;
    serve_bundle(state, caller, Some(group.to_string()), format, raw, headers).await
}
