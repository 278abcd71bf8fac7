//! API tokens: created with a random secret shown once, stored only as a
//! SHA-256 hash, scoped to one project (or root), revocable.

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::schema::{api_tokens, projects};
use super::{now_ms, DbConn, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Editor,
    Admin,
    Root,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, StoreError> {
        match s {
            "reader" => Ok(Role::Reader),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            "root" => Ok(Role::Root),
            other => Err(StoreError::Invalid(format!("unknown role {other:?}: use reader, editor or admin"))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Root => "root",
        }
    }
}

/// Longest token description: `api_tokens.description` is VARCHAR(191).
pub const MAX_DESCRIPTION_CHARS: usize = 191;

/// What a token grants, as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub token_id: i64,
    /// `None` for root tokens.
    pub project_id: Option<i64>,
    pub role: Role,
    /// May read secret plaintexts whatever the role (issue 9).
    pub secrets_scope: bool,
}

/// A token as listed (never with its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub project: Option<String>,
    pub role: Role,
    pub description: String,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Invalid(format!("no randomness available: {e}")))?;
    Ok(format!("craton_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// Creates a token; returns its id and the secret, which is not stored.
pub fn create(
    conn: &mut DbConn,
    project_id: Option<i64>,
    role: Role,
    description: &str,
) -> Result<(i64, String), StoreError> {
    create_scoped(conn, project_id, role, description, false)
}

/// [`create`], with the `secrets` scope (plaintext reads below admin).
pub fn create_scoped(
    conn: &mut DbConn,
    project_id: Option<i64>,
    role: Role,
    description: &str,
    secrets_scope: bool,
) -> Result<(i64, String), StoreError> {
    if (role == Role::Root) != project_id.is_none() {
        return Err(StoreError::Invalid(
            "root tokens have no project; project tokens are reader, editor or admin".into(),
        ));
    }
    super::text_field("description", description, MAX_DESCRIPTION_CHARS)?;
    let secret = new_secret()?;
    let hash = hash_secret(&secret);
    let id = super::tx::write(conn, |conn| {
        diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::project_id.eq(project_id),
                api_tokens::role.eq(role.as_str()),
                api_tokens::description.eq(description),
                api_tokens::token_hash.eq(&hash),
                api_tokens::prefix.eq(&secret[..14]),
                api_tokens::created_at.eq(now_ms()),
                api_tokens::secrets_scope.eq(secrets_scope),
            ))
            .execute(conn)?;
        let id: i64 = api_tokens::table.filter(api_tokens::token_hash.eq(&hash)).select(api_tokens::id).first(conn)?;
        // Project tokens go to their project's trail (root tokens belong to
        // none); never the secret, only what identifies the token.
        if let Some(pid) = project_id {
            let after =
                serde_json::json!({"role": role.as_str(), "description": description, "secrets_scope": secrets_scope});
            super::audit::note(pid, "token", &id.to_string(), None, Some(&after));
        }
        Ok::<_, StoreError>(id)
    })?;
    Ok((id, secret))
}

/// The grant of a presented secret, if it is a live token.
pub fn authenticate(conn: &mut DbConn, secret: &str) -> Result<Option<Grant>, StoreError> {
    let row: Option<(i64, Option<i64>, String, bool)> = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_secret(secret)))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, api_tokens::project_id, api_tokens::role, api_tokens::secrets_scope))
        .first(conn)
        .optional()?;
    row.map(|(token_id, project_id, role, secrets_scope)| {
        Ok(Grant { token_id, project_id, role: Role::parse(&role)?, secrets_scope })
    })
    .transpose()
}

/// The grant of live token `id` (a schedule's creator, read again when
/// the schedule fires); `None` when it is revoked or gone.
pub fn grant_of(conn: &mut DbConn, id: i64) -> Result<Option<Grant>, StoreError> {
    let row: Option<(i64, Option<i64>, String, bool)> = api_tokens::table
        .filter(api_tokens::id.eq(id))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, api_tokens::project_id, api_tokens::role, api_tokens::secrets_scope))
        .first(conn)
        .optional()?;
    row.map(|(token_id, project_id, role, secrets_scope)| {
        Ok(Grant { token_id, project_id, role: Role::parse(&role)?, secrets_scope })
    })
    .transpose()
}

/// Whether the token `id` exists and is not revoked: the per-request
/// confirmation of a cached grant (a primary-key lookup).
pub fn is_live(conn: &mut DbConn, id: i64) -> Result<bool, StoreError> {
    let n: i64 = api_tokens::table
        .filter(api_tokens::id.eq(id))
        .filter(api_tokens::revoked_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(n == 1)
}

/// Tokens of a project (or all tokens for `None` = root's view).
pub fn list(conn: &mut DbConn, project_id: Option<i64>) -> Result<Vec<TokenInfo>, StoreError> {
    let mut q = api_tokens::table
        .left_join(projects::table)
        .select((
            api_tokens::id,
            projects::name.nullable(),
            api_tokens::role,
            api_tokens::description,
            api_tokens::prefix,
            api_tokens::created_at,
            api_tokens::revoked_at,
        ))
        .order(api_tokens::id.asc())
        .into_boxed();
    if let Some(p) = project_id {
        q = q.filter(api_tokens::project_id.eq(p));
    }
    type Row = (i64, Option<String>, String, String, String, i64, Option<i64>);
    let rows: Vec<Row> = q.load(conn)?;
    rows.into_iter()
        .map(|(id, project, role, description, prefix, created_at, revoked_at)| {
            Ok(TokenInfo { id, project, role: Role::parse(&role)?, description, prefix, created_at, revoked_at })
        })
        .collect()
}

/// Revokes token `id` if it belongs to `project_id` (any token for `None`).
/// Returns false when there is no such live token.
pub fn revoke(conn: &mut DbConn, id: i64, project_id: Option<i64>) -> Result<bool, StoreError> {
    super::tx::write(conn, |conn| {
        let mut q = diesel::update(api_tokens::table)
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null())
            .into_boxed();
        if let Some(p) = project_id {
            q = q.filter(api_tokens::project_id.eq(p));
        }
        if q.set(api_tokens::revoked_at.eq(now_ms())).execute(conn)? != 1 {
            return Ok(false);
        }
        let (pid, role, description): (Option<i64>, String, String) = api_tokens::table
            .find(id)
            .select((api_tokens::project_id, api_tokens::role, api_tokens::description))
            .first(conn)?;
        if let Some(pid) = pid {
            let before = serde_json::json!({"role": role, "description": description});
            super::audit::note(pid, "token", &id.to_string(), Some(&before), None);
        }
        Ok(true)
    })
}
