//! Who is calling: a bearer token (`Authorization: Bearer T` or
//! `X-Auth-Token: T`) resolved to a grant (project and role). A project
//! token sees only its own project; anything else answers 404, exactly as
//! if it did not exist, so tenants cannot probe each other.
//!
//! Revocation is immediate in every cratond process on the same database:
//! every request checks in the database that its token is still live. The
//! check rides on the request's first database hop ([`AppState::db`]) rather
//! than costing one of its own: a second hop through the blocking pool per
//! request halved the throughput of a one-host GET. The per-process grant
//! cache only spares the hash lookup and never decides alone; a request that
//! makes no database hop is checked by [`confirm_grant`] before it answers.
//!
//! With `--auth keystone`, a token that does not start with `craton_` (every
//! Craton token does) is a Keystone token, validated by [`crate::keystone`]
//! (cached: a revoked Keystone token works until its cache entry expires).
//! Such a caller has no token row, so it never enters the confirmation above.

use std::cell::Cell;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use craton::model::Project;
use craton::store::tokens::{self, Grant, Role};
use craton::store::{self, DbConn};

use super::error::ApiError;
use crate::keystone::KeystoneIdentity;
use crate::state::{AppState, AuthMode};

#[derive(Debug, Clone)]
pub struct Caller {
    pub grant: Grant,
    /// Who the grant belongs to. For anyone but [`Who::Token`],
    /// `grant.token_id` is 0, which no token row has.
    pub who: Who,
}

/// The principal behind a request, for records that name who did what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A Craton API token (its id).
    Token(i64),
    /// A Keystone token's user and project.
    Keystone(Arc<KeystoneIdentity>),
    /// No token: `--insecure-no-auth` or a command on the database itself.
    Local,
}

/// The prefix of every Craton token (`craton::store::tokens`): with
/// Keystone on, anything else is a Keystone token.
const CRATON_TOKEN_PREFIX: &str = "craton_";

fn bearer(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(|t| t.trim().to_string())
}

tokio::task_local! {
    /// The token id of this request's cached grant, until a database hop
    /// has confirmed that the token is still live.
    static UNCONFIRMED: Cell<Option<i64>>;
}

tokio::task_local! {
    /// Who this request writes as, for the audit trail: the route from the
    /// middleware, the principal once [`Caller`] resolved it.
    static AUDIT: std::cell::RefCell<AuditSlot>;
}

#[derive(Default, Clone)]
struct AuditSlot {
    via: String,
    actor: Option<craton::store::audit::Actor>,
}

/// This request's writer for the audit trail ([`AppState::db`] installs it
/// around the blocking work). None outside a request or before the caller
/// is known.
pub(crate) fn audit_actor() -> Option<craton::store::audit::Actor> {
    AUDIT.try_with(|s| s.borrow().actor.clone()).ok().flatten()
}

fn note_caller(caller: &Caller) {
    let _ = AUDIT.try_with(|s| {
        let mut s = s.borrow_mut();
        let via = s.via.clone();
        s.actor = Some(caller.audit_actor(via));
    });
}

/// Takes this request's unconfirmed token id, for [`AppState::db`] to
/// check on the connection it runs on. None outside a request.
pub(crate) fn take_unconfirmed() -> Option<i64> {
    UNCONFIRMED.try_with(Cell::take).ok().flatten()
}

/// Refuses the request when its token was revoked (by any process) since
/// the grant was cached.
pub(crate) fn confirm(conn: &mut DbConn, token_id: i64) -> Result<(), ApiError> {
    if tokens::is_live(conn, token_id)? {
        Ok(())
    } else {
        Err(revoked())
    }
}

fn revoked() -> ApiError {
    ApiError::Unauthorized("invalid or revoked token".into())
}

/// Middleware around every route: the scope in which a cached grant waits
/// for its confirmation, and the confirmation itself for a handler that
/// answered without touching the database.
pub async fn confirm_grant(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let via = format!("{} {}", req.method(), req.uri().path());
    let slot = std::cell::RefCell::new(AuditSlot { via, actor: None });
    AUDIT
        .scope(
            slot,
            UNCONFIRMED.scope(Cell::new(None), async move {
                let resp = next.run(req).await;
                match UNCONFIRMED.with(Cell::take) {
                    None => resp,
                    Some(id) => match state.db(move |c| confirm(c, id)).await {
                        Ok(()) => resp,
                        Err(e) => e.into_response(),
                    },
                }
            }),
        )
        .await
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Self::resolve(parts, state).await?;
        note_caller(&caller);
        Ok(caller)
    }
}

impl Caller {
    async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if state.auth == AuthMode::InsecureNoAuth {
            return Ok(Caller::local());
        }
        let secret = bearer(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("missing token: send Authorization: Bearer TOKEN".into()))?;
        if let (AuthMode::Keystone, Some(ks)) = (state.auth, &state.keystone) {
            if !secret.starts_with(CRATON_TOKEN_PREFIX) {
                return keystone_caller(state, ks, &secret).await;
            }
        }
        let hash = tokens::hash_secret(&secret);
        if let Some(grant) = state.cached_grant(&hash) {
            // Outside the confirming scope (a router built without it) the
            // cache is not used at all.
            if UNCONFIRMED.try_with(|c| c.set(Some(grant.token_id))).is_ok() {
                return Ok(Caller { who: Who::Token(grant.token_id), grant });
            }
        }
        let grant = state.db(move |c| Ok(tokens::authenticate(c, &secret)?)).await?.ok_or_else(revoked)?;
        state.cache_grant(hash, grant.clone());
        Ok(Caller { who: Who::Token(grant.token_id), grant })
    }
}

/// A Keystone token's caller: its Craton project must exist (403 naming
/// both projects otherwise; its id is then cached with the verdict).
async fn keystone_caller(
    state: &AppState,
    ks: &Arc<crate::keystone::Keystone>,
    secret: &str,
) -> Result<Caller, ApiError> {
    let v = ks.validate(secret).await?;
    let project_id = match v.project_id {
        Some(id) => id,
        None => {
            let name = v.identity.craton_project.clone();
            let found = state.db(move |c| Ok(store::find_project(c, &name)?)).await?;
            let id = found
                .ok_or_else(|| {
                    ApiError::Forbidden(format!(
                        "Keystone project {:?} maps to Craton project {:?}, which does not exist",
                        v.identity.project_name, v.identity.craton_project
                    ))
                })?
                .id;
            ks.remember_project(&v.key, id);
            id
        }
    };
    let grant = Grant { token_id: 0, project_id: Some(project_id), role: v.identity.role, secrets_scope: false };
    Ok(Caller { grant, who: Who::Keystone(v.identity) })
}

impl Caller {
    /// This caller as the writer of an audit change set made through `via`.
    pub fn audit_actor(&self, via: String) -> craton::store::audit::Actor {
        use craton::store::audit::Actor;
        match &self.who {
            Who::Token(id) => Actor::api("token", id.to_string(), None, via),
            Who::Keystone(k) => Actor::api("keystone", k.user_id.clone(), Some(k.user_name.clone()), via),
            Who::Local => Actor::api("local", "root", None, via),
        }
    }

    /// Root without a token: `--insecure-no-auth` and commands run on the
    /// database by its operator.
    pub fn local() -> Caller {
        Caller {
            grant: Grant { token_id: 0, project_id: None, role: Role::Root, secrets_scope: true },
            who: Who::Local,
        }
    }

    /// The Craton token behind this request, if it is one.
    pub fn token_id(&self) -> Option<i64> {
        match self.who {
            Who::Token(id) => Some(id),
            _ => None,
        }
    }

    /// Who this is, for records (`secrets.created_by`, audit):
    /// `token:ID:ROLE`, `keystone:USER_ID:ROLE` or `local:root`.
    pub fn actor(&self) -> String {
        let role = self.grant.role.as_str();
        match &self.who {
            Who::Token(id) => format!("token:{id}:{role}"),
            Who::Keystone(k) => format!("keystone:{}:{role}", k.user_id),
            Who::Local => format!("local:{role}"),
        }
    }

    pub fn is_root(&self) -> bool {
        self.grant.role == Role::Root
    }

    /// Refuses callers below `role` (root passes everything).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.grant.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("this needs the {} role", role.as_str())))
        }
    }

    /// The project a request works on: the token's own (a different
    /// `requested` name is reported as not found), or for root the named
    /// project, `default` when none is named.
    pub fn project(&self, conn: &mut DbConn, requested: Option<&str>) -> Result<Project, ApiError> {
        let not_found = |n: &str| ApiError::NotFound(format!("project {n:?} not found"));
        match self.grant.project_id {
            Some(pid) => {
                let p = store::project_by_id(conn, pid)?.ok_or_else(|| not_found("?"))?;
                match requested {
                    Some(r) if r != p.name => Err(not_found(r)),
                    _ => Ok(p),
                }
            }
            None => {
                let name = requested.unwrap_or(craton::DEFAULT_PROJECT);
                store::find_project(conn, name)?.ok_or_else(|| not_found(name))
            }
        }
    }

    /// Whether this caller may see project `id` at all.
    pub fn sees_project(&self, id: i64) -> bool {
        self.grant.project_id.is_none_or(|p| p == id)
    }
}
