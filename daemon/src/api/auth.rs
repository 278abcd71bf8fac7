//! Who is calling: a bearer token (`Authorization: Bearer T` or
//! `X-Auth-Token: T`) resolved to a grant (project and role). A project
//! token sees only its own project; anything else answers 404, exactly as
//! if it did not exist, so tenants cannot probe each other.
//!
//! Every request looks its token up in the database (one indexed query):
//! a revocation, made by any cratond process on the same database, refuses
//! the very next request everywhere. A per-process cache would need a
//! cross-process invalidation signal that costs the same round trip.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.auth == AuthMode::InsecureNoAuth {
            return Ok(Caller { grant: Grant { token_id: 0, project_id: None, role: Role::Root } });
        }
        let secret = bearer(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("missing token: send Authorization: Bearer TOKEN".into()))?;
        let grant = state
            .db(move |c| Ok(tokens::authenticate(c, &secret)?))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid or revoked token".into()))?;
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
