//! Config refs: a git repository, a ref and a path whose `group_vars/`,
//! `host_vars/` (and optional inventory files) are kept in a project, or in
//! one group's subtree. This module stores the refs, their status and their
//! lease; [`super::ref_apply`] writes what a ref provides.
//!
//! Ownership: every variable row a ref wrote carries its id in
//! `variables.source_id`. The API refuses to change or delete such a key
//! (a conflict naming the ref, see [`refuse_ref_owned`]), an import leaves
//! it alone, and deleting the ref deletes its rows.
//!
//! Credentials never come here: a URL with a password or token in it is
//! refused, the git layer takes them from the environment.

use diesel::prelude::*;
use serde::Serialize;

use super::edit::{begin_write, chunked};
use super::schema::{config_refs, inventory_groups, variables};
use super::{now_ms, DbConn, StoreError};

/// Default seconds between two polls of a ref.
pub const DEFAULT_POLL_SECS: i32 = 60;
/// Bounds of `poll_interval`.
pub const MIN_POLL_SECS: i64 = 1;
pub const MAX_POLL_SECS: i64 = 7 * 24 * 3600;

/// What a failed sync says: which file (relative to the repository root),
/// which line, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncFailure {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl SyncFailure {
    pub fn msg(message: impl Into<String>) -> Self {
        SyncFailure { file: None, line: None, message: message.into() }
    }
    pub fn at(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        SyncFailure { file: Some(file.into()), line, message: message.into() }
    }
}

impl std::fmt::Display for SyncFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Variables created, updated and removed by the last successful sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VarCounts {
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
}

impl VarCounts {
    pub fn is_zero(&self) -> bool {
        self.created + self.updated + self.removed == 0
    }
}

type RefRow = (
    (i64, i64, Option<i64>, String, String, String, i32),
    (Option<String>, Option<i64>, Option<i64>, Option<String>, Option<String>, Option<String>, Option<i32>),
    (i32, i32, i32, i32, i64, Option<i64>, Option<String>, Option<i64>, i64, i64, bool),
);

/// One config ref with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRef {
    pub id: i64,
    pub project_id: i64,
    pub group_id: Option<i64>,
    pub url: String,
    pub git_ref: String,
    pub path: String,
    pub poll_interval_secs: i32,
    /// The commit of the last successful sync.
    pub last_commit: Option<String>,
    pub last_synced_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    /// "ok", "error", or None before the first attempt.
    pub last_result: Option<String>,
    pub last_error: Option<SyncFailure>,
    pub counts: VarCounts,
    pub failures: i32,
    pub next_poll_at: i64,
    pub sync_requested_at: Option<i64>,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Created by a root token or the CLI: the repository URL policy is
    /// checked with root's privilege at every sync.
    pub created_by_root: bool,
}

impl ConfigRef {
    fn from_row(r: RefRow) -> ConfigRef {
        let ((id, project_id, group_id, url, git_ref, path, poll_interval_secs), s, c) = r;
        let (last_commit, last_synced_at, last_attempt_at, last_result, last_error, error_file, error_line) = s;
        let (
            created,
            updated,
            removed,
            failures,
            next_poll_at,
            sync_requested_at,
            lease_holder,
            lease_expires_at,
            created_at,
            updated_at,
            created_by_root,
        ) = c;
        ConfigRef {
            id,
            project_id,
            group_id,
            url,
            git_ref,
            path,
            poll_interval_secs,
            last_commit,
            last_synced_at,
            last_attempt_at,
            last_result,
            last_error: last_error.map(|message| SyncFailure {
                file: error_file,
                line: error_line.and_then(|l| usize::try_from(l).ok()),
                message,
            }),
            counts: VarCounts {
                created: created.max(0) as usize,
                updated: updated.max(0) as usize,
                removed: removed.max(0) as usize,
            },
            failures,
            next_poll_at,
            sync_requested_at,
            lease_holder,
            lease_expires_at,
            created_at,
            updated_at,
            created_by_root,
        }
    }

    /// True when the last attempt succeeded on `commit`: syncing it again
    /// would change nothing.
    pub fn is_current(&self, commit: &str) -> bool {
        self.last_result.as_deref() == Some("ok") && self.last_commit.as_deref() == Some(commit)
    }

    /// A short human name: `url@ref` plus the path when there is one.
    pub fn describe(&self) -> String {
        if self.path.is_empty() {
            format!("{}@{}", self.url, self.git_ref)
        } else {
            format!("{}@{}:{}", self.url, self.git_ref, self.path)
        }
    }

    /// The local directory of a `file://` or plain-path repository.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        local_path(&self.url)
    }
}

/// The local directory a repository URL names, if it is local.
pub fn local_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(std::path::PathBuf::from(rest));
    }
    url.starts_with('/').then(|| std::path::PathBuf::from(url))
}

macro_rules! ref_columns {
    () => {
        (
            (
                config_refs::id,
                config_refs::project_id,
                config_refs::group_id,
                config_refs::url,
                config_refs::git_ref,
                config_refs::path,
                config_refs::poll_interval_secs,
            ),
            (
                config_refs::last_commit,
                config_refs::last_synced_at,
                config_refs::last_attempt_at,
                config_refs::last_result,
                config_refs::last_error,
                config_refs::error_file,
                config_refs::error_line,
            ),
            (
                config_refs::vars_created,
                config_refs::vars_updated,
                config_refs::vars_removed,
                config_refs::failures,
                config_refs::next_poll_at,
                config_refs::sync_requested_at,
                config_refs::lease_holder,
                config_refs::lease_expires_at,
                config_refs::created_at,
                config_refs::updated_at,
                config_refs::created_by_root,
            ),
        )
    };
}

/// Checks a repository URL: https, http, ssh, scp-like `user@host:path`,
/// `file://` or an absolute local path, without credentials in it.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("must not be empty".into());
    }
    if url.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    if url.starts_with('/') {
        return Ok(());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git" | "file") {
            return Err(format!("unsupported scheme {scheme:?} (use https, ssh, file:// or an absolute path)"));
        }
        if scheme == "file" {
            return if rest.starts_with('/') { Ok(()) } else { Err("a file:// URL needs an absolute path".into()) };
        }
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if userinfo.contains(':') || (scheme.starts_with("http") && !userinfo.is_empty()) {
                return Err("must not carry credentials: set CRATON_GIT_TOKEN or CRATON_GIT_SSH_KEY instead".into());
            }
        }
        if authority.is_empty() {
            return Err("has no host".into());
        }
        return Ok(());
    }
    // scp-like: [user@]host:path
    match url.split_once(':') {
        Some((host, path)) if !host.is_empty() && !path.is_empty() && !host.contains('/') => {
            if host.split_once('@').is_some_and(|(u, _)| u.contains(':')) {
                return Err("must not carry credentials".into());
            }
            Ok(())
        }
        _ => Err("is not a repository URL (use https://, ssh://, user@host:path, file:// or an absolute path)".into()),
    }
}

/// Checks a ref: a branch, tag, full `refs/...` name or commit id.
pub fn check_git_ref(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("must not be empty".into());
    }
    if r.len() > 255 {
        return Err("is longer than 255 characters".into());
    }
    let bad = r.chars().any(|c| c.is_control() || c == ' ' || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad || r.contains("..") || r.contains("@{") || r.starts_with('/') || r.ends_with('/') || r.ends_with(".lock") {
        return Err(format!("{r:?} is not a valid git ref name"));
    }
    Ok(())
}

/// Normalizes a path inside the repository: relative, `/`-separated, no
/// `.` or `..` parts, no trailing slash ("" is the root).
pub fn normalize_path(path: &str) -> Result<String, String> {
    if path.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    if path.starts_with('/') {
        return Err("must be relative to the repository root".into());
    }
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("must not contain \"..\"".into()),
            p if p.chars().any(|c| c.is_control()) => return Err("must not contain control characters".into()),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A new ref, checked by [`create`].
#[derive(Debug, Clone)]
pub struct NewRef {
    pub url: String,
    pub git_ref: String,
    pub path: String,
    pub group_id: Option<i64>,
    pub poll_interval_secs: Option<i64>,
    /// See [`ConfigRef::created_by_root`].
    pub created_by_root: bool,
}

/// Creates a ref in project `pid`; refusals name the request field
/// (`url: ...`, as [`super::edit::invalid`]).
pub fn create(conn: &mut DbConn, pid: i64, new: &NewRef) -> Result<ConfigRef, StoreError> {
    use super::edit::invalid;
    check_url(&new.url).map_err(|m| invalid("url", m))?;
    check_git_ref(&new.git_ref).map_err(|m| invalid("ref", m))?;
    let path = normalize_path(&new.path).map_err(|m| invalid("path", m))?;
    let poll = new.poll_interval_secs.unwrap_or(DEFAULT_POLL_SECS as i64);
    if !(MIN_POLL_SECS..=MAX_POLL_SECS).contains(&poll) {
        return Err(invalid("poll_interval", format!("must be between {MIN_POLL_SECS} and {MAX_POLL_SECS} seconds")));
    }
    super::tx::write(conn, |conn| {
        if let Some(g) = new.group_id {
            let found = inventory_groups::table
                .filter(inventory_groups::project_id.eq(pid))
                .filter(inventory_groups::id.eq(g))
                .select(inventory_groups::id)
                .first::<i64>(conn)
                .optional()?;
            if found.is_none() {
                return Err(invalid("group", format!("no group id {g} in this project")));
            }
        }
        let now = now_ms();
        diesel::insert_into(config_refs::table)
            .values((
                config_refs::project_id.eq(pid),
                config_refs::group_id.eq(new.group_id),
                config_refs::url.eq(&new.url),
                config_refs::git_ref.eq(&new.git_ref),
                config_refs::path.eq(&path),
                config_refs::poll_interval_secs.eq(poll as i32),
                config_refs::created_at.eq(now),
                config_refs::updated_at.eq(now),
                config_refs::created_by_root.eq(new.created_by_root),
            ))
            .execute(conn)?;
        let id = config_refs::table
            .filter(config_refs::project_id.eq(pid))
            .order(config_refs::id.desc())
            .select(config_refs::id)
            .first::<i64>(conn)?;
        let r = get(conn, Some(pid), id)?.ok_or_else(|| StoreError::NotFound(format!("config ref {id}")))?;
        super::audit::note(pid, "config_ref", &format!("#{id}"), None, Some(&audit_json(&r)));
        Ok(r)
    })
}

/// A config ref's settings as the audit trail keeps them.
fn audit_json(r: &ConfigRef) -> serde_json::Value {
    serde_json::json!({"url": r.url, "ref": r.git_ref, "path": r.path, "group_id": r.group_id,
        "poll_interval_secs": r.poll_interval_secs})
}

/// Ref `id`, within project `pid` when given (another project's ref is
/// exactly as absent as one never made).
pub fn get(conn: &mut DbConn, pid: Option<i64>, id: i64) -> Result<Option<ConfigRef>, StoreError> {
    let mut q = config_refs::table.filter(config_refs::id.eq(id)).into_boxed();
    if let Some(pid) = pid {
        q = q.filter(config_refs::project_id.eq(pid));
    }
    Ok(q.select(ref_columns!()).first::<RefRow>(conn).optional()?.map(ConfigRef::from_row))
}

/// The refs of project `pid` (all projects when None), by id.
pub fn list(conn: &mut DbConn, pid: Option<i64>) -> Result<Vec<ConfigRef>, StoreError> {
    let mut q = config_refs::table.order(config_refs::id.asc()).into_boxed();
    if let Some(pid) = pid {
        q = q.filter(config_refs::project_id.eq(pid));
    }
    Ok(q.select(ref_columns!()).load::<RefRow>(conn)?.into_iter().map(ConfigRef::from_row).collect())
}

/// Group names by id for the refs' `group` field.
pub fn group_names(conn: &mut DbConn, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in chunked(ids) {
        out.extend(
            inventory_groups::table
                .filter(inventory_groups::id.eq_any(chunk))
                .select((inventory_groups::id, inventory_groups::name))
                .load::<(i64, String)>(conn)?,
        );
    }
    Ok(out)
}

/// Deletes ref `id` of project `pid` and the variables and secrets it owns, in one
/// transaction. Returns false when there was no such ref.
pub fn delete(conn: &mut DbConn, pid: i64, id: i64) -> Result<bool, StoreError> {
    super::tx::write(conn, |conn| {
        let Some(r) = get(conn, Some(pid), id)? else {
            return Ok(false);
        };
        super::audit::note(pid, "config_ref", &format!("#{id}"), Some(&audit_json(&r)), None);
        let owned: i64 = variables::table
            .filter(variables::project_id.eq(pid))
            .filter(variables::source_id.eq(id))
            .count()
            .get_result(conn)?;
        if owned > 0 {
            begin_write(conn, pid)?;
            diesel::delete(variables::table.filter(variables::project_id.eq(pid)).filter(variables::source_id.eq(id)))
                .execute(conn)?;
        }
        // Its secrets too: they are the ref's by `created_by`, which a later
        // ref given the same id must not inherit.
        if super::secrets::imported::delete_created_by(conn, pid, &super::secrets::imported::ref_actor(id))? > 0 {
            super::bump_revision(conn, pid)?;
        }
        diesel::delete(config_refs::table.find(id)).execute(conn)?;
        Ok(true)
    })
}

/// Asks for a sync of ref `id` as soon as possible (any cratond process
/// polling the database picks it up).
pub fn request_sync(conn: &mut DbConn, id: i64) -> Result<i64, StoreError> {
    let now = now_ms();
    super::tx::write(conn, |conn| {
        diesel::update(config_refs::table.find(id)).set(config_refs::sync_requested_at.eq(now)).execute(conn)
    })?;
    Ok(now)
}

/// Takes (or renews) the lease on ref `id` for `holder` until now + `ttl_ms`,
/// if nobody else holds a live one. One UPDATE: atomic on every backend.
pub fn try_lease(conn: &mut DbConn, id: i64, holder: &str, ttl_ms: i64) -> Result<bool, StoreError> {
    let now = now_ms();
    let n = super::tx::write(conn, |conn| {
        diesel::update(
            config_refs::table.filter(config_refs::id.eq(id)).filter(
                config_refs::lease_holder
                    .is_null()
                    .or(config_refs::lease_holder.eq(holder))
                    .or(config_refs::lease_expires_at.lt(now)),
            ),
        )
        .set((config_refs::lease_holder.eq(holder), config_refs::lease_expires_at.eq(now + ttl_ms)))
        .execute(conn)
    })?;
    Ok(n == 1)
}

/// Gives the lease back (no-op if `holder` does not hold it).
pub fn release_lease(conn: &mut DbConn, id: i64, holder: &str) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        diesel::update(config_refs::table.filter(config_refs::id.eq(id)).filter(config_refs::lease_holder.eq(holder)))
            .set((config_refs::lease_holder.eq(None::<String>), config_refs::lease_expires_at.eq(None::<i64>)))
            .execute(conn)
    })?;
    Ok(())
}

/// Clears a "sync now" request made before `started` (a write only when
/// there is one).
pub fn clear_request(conn: &mut DbConn, id: i64, started: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        diesel::update(
            config_refs::table.filter(config_refs::id.eq(id)).filter(config_refs::sync_requested_at.le(started)),
        )
        .set(config_refs::sync_requested_at.eq(None::<i64>))
        .execute(conn)
    })?;
    Ok(())
}

/// Seconds to wait after `failures` failures in a row: the interval,
/// doubled per failure, at most an hour (or the interval when longer).
pub fn backoff_secs(interval: i32, failures: i32) -> i64 {
    let interval = i64::from(interval.max(1));
    let exp = (failures.max(1) - 1).min(16) as u32;
    (interval.saturating_mul(1i64 << exp)).min(interval.max(3600))
}

/// Records a failed attempt in one small write: the error, one more
/// failure, the backoff, the lease given back. Skipped when another
/// process holds a live lease (its own outcome is the one to show).
pub fn record_failure(
    conn: &mut DbConn,
    r: &ConfigRef,
    holder: &str,
    started: i64,
    failure: &SyncFailure,
) -> Result<(), StoreError> {
    let now = now_ms();
    let failures = r.failures.saturating_add(1);
    let next = now + backoff_secs(r.poll_interval_secs, failures) * 1000;
    let line = failure.line.and_then(|l| i32::try_from(l).ok());
    super::tx::write(conn, |conn| {
        diesel::update(
            config_refs::table.filter(config_refs::id.eq(r.id)).filter(
                config_refs::lease_holder
                    .is_null()
                    .or(config_refs::lease_holder.eq(holder))
                    .or(config_refs::lease_expires_at.lt(now)),
            ),
        )
        .set((
            config_refs::last_attempt_at.eq(started),
            config_refs::last_result.eq("error"),
            config_refs::last_error.eq(&failure.message),
            config_refs::error_file.eq(failure.file.as_deref()),
            config_refs::error_line.eq(line),
            config_refs::failures.eq(config_refs::failures + 1),
            config_refs::next_poll_at.eq(next),
            config_refs::lease_holder.eq(None::<String>),
            config_refs::lease_expires_at.eq(None::<i64>),
            config_refs::updated_at.eq(now),
        ))
        .execute(conn)?;
        clear_request(conn, r.id, started)
    })
}

/// Records a successful sync of `commit` (inside the transaction that
/// applied it). Fails with [`StoreError::Conflict`] when `holder` lost the
/// lease meanwhile, which rolls the whole sync back.
pub fn record_success(
    conn: &mut DbConn,
    id: i64,
    holder: &str,
    started: i64,
    commit: &str,
    counts: VarCounts,
) -> Result<(), StoreError> {
    let now = now_ms();
    let n =
        diesel::update(config_refs::table.filter(config_refs::id.eq(id)).filter(config_refs::lease_holder.eq(holder)))
            .set((
                config_refs::last_commit.eq(commit),
                config_refs::last_synced_at.eq(now),
                config_refs::last_attempt_at.eq(started),
                config_refs::last_result.eq("ok"),
                config_refs::last_error.eq(None::<String>),
                config_refs::error_file.eq(None::<String>),
                config_refs::error_line.eq(None::<i32>),
                config_refs::vars_created.eq(counts.created.min(i32::MAX as usize) as i32),
                config_refs::vars_updated.eq(counts.updated.min(i32::MAX as usize) as i32),
                config_refs::vars_removed.eq(counts.removed.min(i32::MAX as usize) as i32),
                config_refs::failures.eq(0),
                config_refs::next_poll_at.eq(0),
                config_refs::lease_holder.eq(None::<String>),
                config_refs::lease_expires_at.eq(None::<i64>),
                config_refs::updated_at.eq(now),
            ))
            .execute(conn)?;
    if n != 1 {
        return Err(StoreError::Conflict(format!(
            "config ref {id}: the sync lease was lost; another process took over"
        )));
    }
    clear_request(conn, id, started)
}

/// The keys among `keys` of one owner that a config ref owns, with that
/// ref (rows whose ref no longer exists count as not owned).
pub fn owned_keys(
    conn: &mut DbConn,
    pid: i64,
    owner_kind: i32,
    owner_id: i64,
    keys: &[&str],
) -> Result<Vec<(String, ConfigRef)>, StoreError> {
    let mut rows: Vec<(String, i64)> = Vec::new();
    for chunk in chunked(keys) {
        rows.extend(
            variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(owner_kind))
                .filter(variables::owner_id.eq(owner_id))
                .filter(variables::var_key.eq_any(chunk))
                .filter(variables::source_id.is_not_null())
                .select((variables::var_key, variables::source_id.assume_not_null()))
                .load::<(String, i64)>(conn)?,
        );
    }
    let mut out = Vec::new();
    let mut refs: std::collections::HashMap<i64, Option<ConfigRef>> = std::collections::HashMap::new();
    for (key, source) in rows {
        if let std::collections::hash_map::Entry::Vacant(e) = refs.entry(source) {
            e.insert(get(conn, Some(pid), source)?);
        }
        if let Some(Some(r)) = refs.get(&source) {
            out.push((key, r.clone()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The API's rule for keys a ref owns: they change in git, not here. A
/// conflict naming the first such key and its ref.
pub fn refuse_ref_owned(
    conn: &mut DbConn,
    pid: i64,
    owner_kind: i32,
    owner_id: i64,
    keys: &[&str],
) -> Result<(), StoreError> {
    if let Some((key, r)) = owned_keys(conn, pid, owner_kind, owner_id, keys)?.into_iter().next() {
        return Err(StoreError::Conflict(format!(
            "variable {key:?} is managed by config ref {} ({}): change it in git, or delete the ref",
            r.id,
            r.describe()
        )));
    }
    Ok(())
}

/// The group and host names of project `pid` (what a ref's vars files may
/// name besides what it declares).
pub fn project_names(conn: &mut DbConn, pid: i64) -> Result<(Vec<String>, Vec<String>), StoreError> {
    use super::schema::hosts;
    let groups = inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .select(inventory_groups::name)
        .load::<String>(conn)?;
    let hosts = hosts::table.filter(hosts::project_id.eq(pid)).select(hosts::name).load::<String>(conn)?;
    Ok((groups, hosts))
}
