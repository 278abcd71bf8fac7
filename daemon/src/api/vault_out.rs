//! Secrets in what the inventory routes serve. A caller asks for them with
//! a vault password (`X-Craton-Vault-Password`), or for bundles with
//! `?vault=client` (the password is then derived by cratond and asked for by
//! the bundle's `craton-vault-client` at run time). Without either, secrets
//! are left out and `X-Craton-Secrets-Omitted` says how many. Asking needs
//! what reading a value needs (admin, root or the secrets scope): a vault
//! value is a plaintext to whoever holds the password.

use std::sync::Arc;

use axum::http::HeaderMap;
use craton::model::{Project, Snapshot};
use craton::secrets::{VaultKey, VaultPassword};
use craton::source::VAULT_PASSWORD_HEADER;
use craton::store::secrets::{self as ss, Secrets};
use craton::store::DbConn;

use super::auth::Caller;
use super::error::ApiError;
use super::secrets::{actor, may_read_values, secrets_error};
use crate::state::AppState;

/// What the caller asked for.
pub(crate) enum Ask {
    /// No secrets.
    Leave,
    /// Under the caller's password.
    Password(VaultPassword),
    /// Under the password cratond derives (bundles only).
    Client,
}

impl Ask {
    pub fn wants_secrets(&self) -> bool {
        !matches!(self, Ask::Leave)
    }
}

/// Reads the password header, and `vault=client` when the route has it.
pub(crate) fn ask(headers: &HeaderMap, client: bool) -> Result<Ask, ApiError> {
    let pw = match headers.get(VAULT_PASSWORD_HEADER) {
        None => None,
        Some(v) if v.is_empty() => return Err(ApiError::bad(format!("{VAULT_PASSWORD_HEADER} is empty"))),
        Some(v) => Some(VaultPassword::new(v.as_bytes())),
    };
    match (pw, client) {
        (Some(_), true) => {
            Err(ApiError::bad(format!("give either {VAULT_PASSWORD_HEADER} or ?vault=client, not both")))
        }
        (Some(pw), false) => Ok(Ask::Password(pw)),
        (None, true) => Ok(Ask::Client),
        (None, false) => Ok(Ask::Leave),
    }
}

/// A snapshot ready to render, with what its vault values need.
pub(crate) struct Output {
    pub snap: Arc<Snapshot>,
    /// The key the injected values are sealed under.
    pub key: Option<VaultKey>,
    /// Client mode: what the bundle's client script asks for.
    pub client: Option<craton::bundle::Client>,
    /// Client mode: the derived password (a run writes it to its own file).
    pub password: Option<VaultPassword>,
    /// Secrets left out (no password given).
    pub omitted: usize,
}

/// The project's snapshot, with its secrets injected when `ask` wants them.
pub(crate) fn prepare(
    st: &AppState,
    conn: &mut DbConn,
    caller: &Caller,
    project: &Project,
    ask: &Ask,
) -> Result<Output, ApiError> {
    let plain = |conn: &mut DbConn, omitted| -> Result<Output, ApiError> {
        Ok(Output { snap: st.snapshot(conn, project)?, key: None, client: None, password: None, omitted })
    };
    if ask.wants_secrets() {
        may_read_values(caller)?;
    }
    // No secrets, no key provider: a project without any is served even
    // when the provider is down.
    let n = ss::count(conn, project.id)?;
    if !ask.wants_secrets() || n == 0 {
        return plain(conn, if ask.wants_secrets() { 0 } else { n });
    }
    let provider = st.key_provider()?;
    let secrets = Secrets::new(provider.as_ref());
    let load =
        |conn: &mut DbConn, p: &Project| st.snapshot(conn, p).map_err(|e| ss::SecretsError::Invalid(e.to_string()));
    match ask {
        Ask::Leave => unreachable!("handled above"),
        Ask::Password(pw) => {
            let (snap, key, _) =
                ss::inject_output(&secrets, conn, project, pw, &actor(caller), load).map_err(secrets_error)?;
            Ok(Output { snap: Arc::new(snap), key: Some(key), client: None, password: None, omitted: 0 })
        }
        Ask::Client => {
            let mut derived = None;
            let (snap, key, _) = ss::inject_output_with(&secrets, conn, project, &actor(caller), load, |conn, rev| {
                let (key_id, pw) = secrets
                    .client_password(conn, project.id, rev, None)?
                    .ok_or_else(|| ss::SecretsError::Invalid(format!("project {:?} has no data key", project.name)))?;
                derived = Some((rev, key_id, pw.clone()));
                Ok(pw)
            })
            .map_err(secrets_error)?;
            let (revision, data_key, pw) = derived.expect("the password was derived");
            Ok(Output {
                snap: Arc::new(snap),
                key: Some(key),
                client: Some(craton::bundle::Client { project: project.name.clone(), revision, data_key }),
                password: Some(pw),
                omitted: 0,
            })
        }
    }
}

/// `GET /v1/vault-password`'s query.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PasswordQuery {
    /// The project's name (a project token may name only its own).
    pub project: String,
    /// The revision the bundle is of.
    pub revision: i64,
    /// The data key the bundle's password was derived under.
    pub data_key: i64,
}

#[utoipa::path(get, path = "/v1/vault-password", tag = "secrets", security(("bearer" = [])),
    summary = "The vault password of a client-mode bundle (what craton-vault-client asks); admin, root or the secrets scope; recorded",
    params(PasswordQuery),
    responses((status = 200, description = "`{\"password\": ...}`; 404 also for a data key replaced by `cratond secrets reencrypt` (download the bundle again)", body = crate::api::openapi::JsonObject),
        crate::api::openapi::AdminReadErrors))]
pub async fn password(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let q = super::query::Query::parse(raw.as_deref(), &["project", "revision", "data_key"])?;
    let int = |name: &str| -> Result<i64, ApiError> {
        let v = q.get(name).ok_or_else(|| field(name, "required"))?;
        v.parse().map_err(|_| field(name, &format!("{v:?} is not an integer")))
    };
    let (revision, data_key) = (int("revision")?, int("data_key")?);
    let name = q.get("project").ok_or_else(|| field("project", "required"))?.to_string();
    let st = state.clone();
    state
        .db(move |conn| {
            let project = caller.project(conn, Some(&name))?;
            may_read_values(&caller)?;
            if revision < 1 || revision > project.revision {
                return Err(ApiError::NotFound(format!("project {name:?} has no revision {revision}")));
            }
            let provider = st.key_provider()?;
            let secrets = Secrets::new(provider.as_ref());
            let (_, pw) = secrets
                .client_password(conn, project.id, revision, Some(data_key))
                .map_err(secrets_error)?
                .ok_or_else(|| ApiError::NotFound(format!("data key {data_key}")))?;
            ss::record_access(conn, project.id, "vault_password", &actor(&caller))?;
            let text = std::str::from_utf8(pw.expose()).map_err(|_| ApiError::internal("derived password"))?;
            Ok(axum::Json(serde_json::json!({ "password": text })))
        })
        .await
}

fn field(name: &str, message: &str) -> ApiError {
    ApiError::fields(vec![super::error::FieldError { field: name.into(), message: message.into() }])
}
