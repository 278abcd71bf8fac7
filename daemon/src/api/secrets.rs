//! `/v1/{hosts|groups|projects}/{id}/secrets[/{name}[/value]]`: secrets
//! owned by a host, a group or the project. Listings and GET show metadata
//! only (name, kind, version, fingerprint, expiry, who and when); the
//! plaintext only from `.../value`, for admin and root tokens and for
//! tokens with the `secrets` scope (`cratond token create --secrets-scope`). Writes need
//! the editor role.
//!
//! Order of checks: visibility first (another project's owner is a 404,
//! exactly as an id never used), then the role (403). Every plaintext read
//! and every write is recorded by the store (`secret_access`). Values never
//! reach the log: errors name the secret and the check that failed only.
//!
//! The key provider may be remote (transit): its calls run on the blocking
//! thread of [`AppState::db`]; a provider that is down is a 503.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craton::model::Project;
use craton::secrets::pem::SecretKind;
use craton::secrets::{OwnerKind, Secret};
use craton::store::secrets::{self as ss, Owner, SecretMeta, Secrets, SecretsError};
use craton::store::tokens::Role;
use craton::store::{now_ms, DbConn};
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, FieldError};
use super::extract::Path;
use super::query::Query;
use super::resource::{created, object_body, object_fields, parse_id, FieldReader, RawBody};
use crate::state::AppState;

object_fields!(CreateBody, ["name", "kind", "value"]);
object_fields!(UpdateBody, ["kind", "value"]);

fn what(kind: OwnerKind) -> &'static str {
    kind.as_str()
}

fn collection(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::Host => "/v1/hosts",
        OwnerKind::Group => "/v1/groups",
        OwnerKind::Project => "/v1/projects",
    }
}

/// Project routes are addressed by the path id; the others within the
/// caller's project (root: `?project=NAME`).
fn params(kind: OwnerKind, extra: &'static [&'static str]) -> Vec<&'static str> {
    let base: &[&str] = if kind == OwnerKind::Project { &[] } else { &["project"] };
    base.iter().chain(extra).copied().collect()
}

/// The owner the path names, if the caller sees it: 404 otherwise.
fn owner(conn: &mut DbConn, caller: &Caller, kind: OwnerKind, id: i64, q: &Query) -> Result<Owner, ApiError> {
    let project: Project = match kind {
        OwnerKind::Project => super::projects::visible_project(conn, caller, id)?,
        _ => caller.project(conn, q.get("project"))?,
    };
    let owner = Owner { project_id: project.id, kind, id };
    if !ss::owner_exists(conn, owner)? {
        return Err(ApiError::NotFound(format!("{} {id} not found", what(kind))));
    }
    Ok(owner)
}

/// Plaintexts (and vault values, which are plaintexts to whoever holds the
/// password) are for admin and root tokens, and tokens with the secrets scope.
pub(crate) fn may_read_values(caller: &Caller) -> Result<(), ApiError> {
    if caller.grant.secrets_scope {
        return Ok(());
    }
    caller
        .require(Role::Admin)
        .map_err(|_| ApiError::Forbidden("reading secret values needs the admin role or the secrets scope".into()))
}

pub(crate) fn actor(caller: &Caller) -> String {
    caller.actor()
}

fn meta_json(m: &SecretMeta) -> Value {
    json!({
        "name": m.name,
        "kind": m.kind,
        "version": m.current_version,
        "fingerprint": m.fingerprint,
        "not_after": m.not_after,
        // Where the secret ranks as a variable: `vars_file` (group_vars/,
        // host_vars/), or `inventory` (an imported inline `!vault` value).
        "tier": craton::model::Tier::from_i32(m.tier),
        "created_by": m.created_by,
        "updated_by": m.updated_by,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    })
}

/// Store and key errors as the API answers them; never with a value.
pub(crate) fn secrets_error(e: SecretsError) -> ApiError {
    match e {
        SecretsError::Store(s) => s.into(),
        SecretsError::Key(k) if k.is_unavailable() => ApiError::Unavailable(format!("secrets are unavailable: {k}")),
        SecretsError::Key(k) => ApiError::internal(format!("secrets key provider: {k}")),
        SecretsError::Value { source, .. } => {
            ApiError::fields(vec![FieldError { field: "value".into(), message: source.to_string() }])
        }
        SecretsError::Invalid(m) => ApiError::fields(vec![FieldError { field: "name".into(), message: m }]),
        e @ SecretsError::Envelope { .. } => ApiError::internal(e.to_string()),
    }
}

/// `30d`, `12h`, `90m`, `3600s` or plain seconds.
fn parse_within(raw: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::fields(vec![FieldError {
            field: "expiring_within".into(),
            message: format!("{raw:?} is not a duration such as 30d, 12h, 90m or 3600s"),
        }])
    };
    let (num, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let n: i64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(secs * 1000).filter(|v| *v >= 0).ok_or_else(bad)
}

fn kind_field(f: &mut FieldReader<'_>) -> Option<SecretKind> {
    let k = f.string("kind")?;
    match SecretKind::parse(&k) {
        Some(k) => Some(k),
        None => {
            f.error("kind", "expected pem, certificate, password or opaque");
            None
        }
    }
}

pub async fn list(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    raw: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &["expiring_within"]))?;
    let within = q.get("expiring_within").map(parse_within).transpose()?;
    let id = parse_id(what(kind), &id)?;
    state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            let items = ss::list(conn, owner, within.map(|w| now_ms() + w))?;
            Ok(Json(json!({"secrets": items.iter().map(meta_json).collect::<Vec<_>>()})))
        })
        .await
}

pub async fn create(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    raw: Option<String>,
    body: RawBody,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &[]))?;
    let id = parse_id(what(kind), &id)?;
    let st = state.clone();
    let (m, loc) = state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            caller.require(Role::Editor)?;
            let obj = object_body::<CreateBody>(&body.0)?;
            let mut f = FieldReader::new(&obj);
            let name = f.string("name");
            let name = f.require("name", name);
            let sk = kind_field(&mut f);
            let sk = f.require("kind", sk);
            let value = f.string("value").map(Secret::new);
            let value = f.require("value", value);
            f.finish()?;
            let (name, sk, value) = (name.unwrap_or_default(), sk.unwrap_or(SecretKind::Opaque), value.unwrap());
            let provider = st.key_provider()?;
            let m = Secrets::new(provider.as_ref())
                .create(conn, owner, &name, sk, &value, &actor(&caller))
                .map_err(secrets_error)?;
            let mut loc = format!("{}/{id}/secrets/{}", collection(kind), m.name);
            if let (Some(p), true) = (q.get("project"), kind != OwnerKind::Project) {
                loc.push_str(&format!("?project={p}"));
            }
            Ok((m, loc))
        })
        .await?;
    Ok(created(loc, meta_json(&m)))
}

pub async fn get_one(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    name: String,
    raw: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &[]))?;
    let id = parse_id(what(kind), &id)?;
    state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            let m = ss::get(conn, owner, &name)?;
            let mut v = meta_json(&m);
            v["versions"] = json!(ss::versions(conn, m.id)?);
            Ok(Json(v))
        })
        .await
}

pub async fn put(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    name: String,
    raw: Option<String>,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &[]))?;
    let id = parse_id(what(kind), &id)?;
    let st = state.clone();
    state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            caller.require(Role::Editor)?;
            let obj = object_body::<UpdateBody>(&body.0)?;
            let mut f = FieldReader::new(&obj);
            let sk = kind_field(&mut f);
            let value = f.string("value").map(Secret::new);
            let value = f.require("value", value);
            f.finish()?;
            let current = ss::get(conn, owner, &name)?;
            let sk = sk.or_else(|| SecretKind::parse(&current.kind)).unwrap_or(SecretKind::Opaque);
            let provider = st.key_provider()?;
            let m = Secrets::new(provider.as_ref())
                .update(conn, owner, &name, sk, &value.unwrap(), &actor(&caller))
                .map_err(secrets_error)?;
            Ok(Json(meta_json(&m)))
        })
        .await
}

pub async fn delete(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    name: String,
    raw: Option<String>,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &[]))?;
    let id = parse_id(what(kind), &id)?;
    state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            caller.require(Role::Editor)?;
            ss::delete(conn, owner, &name, &actor(&caller))?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn value(
    state: AppState,
    caller: Caller,
    kind: OwnerKind,
    id: String,
    name: String,
    raw: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &params(kind, &[]))?;
    let id = parse_id(what(kind), &id)?;
    let st = state.clone();
    state
        .db(move |conn| {
            let owner = owner(conn, &caller, kind, id, &q)?;
            may_read_values(&caller)?;
            let provider = st.key_provider()?;
            let (m, plain) = Secrets::new(provider.as_ref())
                .reveal(conn, owner, &name, None, &actor(&caller))
                .map_err(secrets_error)?;
            let mut v = meta_json(&m);
            v["value"] = json!(String::from_utf8_lossy(plain.expose()));
            Ok(Json(v))
        })
        .await
}

/// The six handlers of one owner kind, with their OpenAPI annotations.
macro_rules! handlers {
    ($kind:expr, $coll:tt, $item:tt, $val:tt, $tag:tt, $list_q:ident, $q:ident,
     $list:ident, $create:ident, $get:ident, $put:ident, $delete:ident, $value:ident) => {
        #[utoipa::path(get, path = $coll, tag = $tag, security(("bearer" = [])),
            summary = "List secrets (metadata only); ?expiring_within=30d for certificates expiring soon",
            params(crate::api::openapi::IdPath, crate::api::openapi::$list_q),
            responses((status = 200, description = "The owner's secrets", body = crate::api::openapi::SecretList),
                crate::api::openapi::ReadErrors))]
        pub async fn $list(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
        ) -> Result<Json<Value>, ApiError> {
            list(state, caller, $kind, id, raw).await
        }

        #[utoipa::path(post, path = $coll, tag = $tag, security(("bearer" = [])),
            summary = "Create a secret (editor): {name, kind, value}",
            params(crate::api::openapi::IdPath, crate::api::openapi::$q),
            request_body = crate::api::openapi::NewSecret,
            responses((status = 201, description = "Created (metadata)", body = crate::api::openapi::SecretInfo,
                headers(("Location" = String, description = "Where to read it"))),
                crate::api::openapi::WriteErrors))]
        pub async fn $create(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<Response, ApiError> {
            create(state, caller, $kind, id, raw, body).await
        }

        #[utoipa::path(get, path = $item, tag = $tag, security(("bearer" = [])),
            summary = "One secret's metadata and kept versions (never the value)",
            params(crate::api::openapi::SecretPath, crate::api::openapi::$q),
            responses((status = 200, description = "The secret", body = crate::api::openapi::SecretInfo),
                crate::api::openapi::ReadErrors))]
        pub async fn $get(
            State(state): State<AppState>,
            caller: Caller,
            Path((id, name)): Path<(String, String)>,
            RawQuery(raw): RawQuery,
        ) -> Result<Json<Value>, ApiError> {
            get_one(state, caller, $kind, id, name, raw).await
        }

        #[utoipa::path(put, path = $item, tag = $tag, security(("bearer" = [])),
            summary = "Store a new version of a secret (editor): {value, kind?}",
            params(crate::api::openapi::SecretPath, crate::api::openapi::$q),
            request_body = crate::api::openapi::SecretUpdate,
            responses((status = 200, description = "The secret after the write", body = crate::api::openapi::SecretInfo),
                crate::api::openapi::WriteErrors))]
        pub async fn $put(
            State(state): State<AppState>,
            caller: Caller,
            Path((id, name)): Path<(String, String)>,
            RawQuery(raw): RawQuery,
            body: RawBody,
        ) -> Result<Json<Value>, ApiError> {
            put(state, caller, $kind, id, name, raw, body).await
        }

        #[utoipa::path(delete, path = $item, tag = $tag, security(("bearer" = [])),
            summary = "Delete a secret with all its versions (editor)",
            params(crate::api::openapi::SecretPath, crate::api::openapi::$q),
            responses((status = 204, description = "Deleted"), crate::api::openapi::DeleteErrors))]
        pub async fn $delete(
            State(state): State<AppState>,
            caller: Caller,
            Path((id, name)): Path<(String, String)>,
            RawQuery(raw): RawQuery,
        ) -> Result<Response, ApiError> {
            delete(state, caller, $kind, id, name, raw).await
        }

        #[utoipa::path(get, path = $val, tag = $tag, security(("bearer" = [])),
            summary = "A secret's plaintext (admin or root); recorded in the access log",
            params(crate::api::openapi::SecretPath, crate::api::openapi::$q),
            responses((status = 200, description = "Metadata and value", body = crate::api::openapi::SecretValue),
                crate::api::openapi::AdminReadErrors))]
        pub async fn $value(
            State(state): State<AppState>,
            caller: Caller,
            Path((id, name)): Path<(String, String)>,
            RawQuery(raw): RawQuery,
        ) -> Result<Json<Value>, ApiError> {
            value(state, caller, $kind, id, name, raw).await
        }
    };
}

handlers!(
    OwnerKind::Host,
    "/v1/hosts/{id}/secrets",
    "/v1/hosts/{id}/secrets/{name}",
    "/v1/hosts/{id}/secrets/{name}/value",
    "hosts",
    SecretListQuery,
    ProjectQuery,
    list_host,
    create_host,
    get_host,
    put_host,
    delete_host,
    value_host
);
handlers!(
    OwnerKind::Group,
    "/v1/groups/{id}/secrets",
    "/v1/groups/{id}/secrets/{name}",
    "/v1/groups/{id}/secrets/{name}/value",
    "groups",
    SecretListQuery,
    ProjectQuery,
    list_group,
    create_group,
    get_group,
    put_group,
    delete_group,
    value_group
);
handlers!(
    OwnerKind::Project,
    "/v1/projects/{id}/secrets",
    "/v1/projects/{id}/secrets/{name}",
    "/v1/projects/{id}/secrets/{name}/value",
    "projects",
    SecretListProjectQuery,
    NoParams,
    list_project,
    create_project,
    get_project,
    put_project,
    delete_project,
    value_project
);
