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

use std::cell::Cell;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use craton::model::Project;
use craton::store::tokens::{self, Grant, Role};
use craton::store::{self, DbConn};

use super::error::ApiError;
use crate::state::{AppState, AuthMode};

#[derive(Debug, Clone)]
pub struct Caller {
    pub grant: Grant,
}

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
    UNCONFIRMED
        .scope(Cell::new(None), async move {
            let resp = next.run(req).await;
            match UNCONFIRMED.with(Cell::take) {
                None => resp,
                Some(id) => match state.db(move |c| confirm(c, id)).await {
                    Ok(()) => resp,
                    Err(e) => e.into_response(),
                },
            }
        })
        .await
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.auth == AuthMode::InsecureNoAuth {
            return Ok(Caller {
                grant: Grant { token_id: 0, project_id: None, role: Role::Root, secrets_scope: true },
            });
        }
        let secret = bearer(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("missing token: send Authorization: Bearer TOKEN".into()))?;
        let hash = tokens::hash_secret(&secret);
        if let Some(grant) = state.cached_grant(&hash) {
            // Outside the confirming scope (a router built without it) the
            // cache is not used at all.
            if UNCONFIRMED.try_with(|c| c.set(Some(grant.token_id))).is_ok() {
                return Ok(Caller { grant });
            }
        }
        let grant = state.db(move |c| Ok(tokens::authenticate(c, &secret)?)).await?.ok_or_else(revoked)?;
        state.cache_grant(hash, grant.clone());
        Ok(Caller { grant })
    }
}

impl Caller {
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
