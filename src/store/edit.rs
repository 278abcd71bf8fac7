//! What the resource writes (projects, groups, hosts, variables) share: the
//! per-project write lock, references to groups and hosts by id or name,
//! errors that name the request field they concern, and batch inserts.
//!
//! Every lookup here is scoped by project id, so the id of another
//! project's object is exactly as unknown as an id that was never used.

use std::collections::HashSet;
use std::fmt;

use diesel::prelude::*;

use super::schema::{group_edges, host_labels, hosts, inventory_groups, memberships, projects, variables};
use super::{now_ms, DbConn, StoreError, CHUNK};

/// Group names Ansible's inventory JSON reserves for itself.
pub const RESERVED_GROUPS: [&str; 2] = ["all", "_meta"];

/// A group or host named in a request: by id (a JSON number) or by name (a
/// JSON string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Id(i64),
    Name(String),
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Id(id) => write!(f, "id {id}"),
            Ref::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// A refusal about one field of a request, as `"FIELD: message"`; the API
/// turns the prefix back into the field it names ([`split_field`]).
pub fn invalid(field: &str, message: impl fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{field}: {message}"))
}

/// The field and message of an [`invalid`] error, if `message` starts with
/// one of `fields`.
pub fn split_field<'m>(message: &'m str, fields: &[&'m str]) -> Option<(&'m str, &'m str)> {
    fields.iter().find_map(|f| message.strip_prefix(f).and_then(|r| r.strip_prefix(": ")).map(|rest| (*f, rest)))
}

/// Starts a write to project `pid`: bumps its revision first. The row lock
/// this takes (PostgreSQL, MariaDB) or the write lock (SQLite) serializes
/// the project's writers for the rest of the transaction, which the
/// duplicate and cycle checks rely on; a rolled-back write takes its bump
/// with it.
pub fn begin_write(conn: &mut DbConn, pid: i64) -> Result<(), StoreError> {
    let n = diesel::update(projects::table.find(pid))
        .set((projects::revision.eq(projects::revision + 1), projects::updated_at.eq(now_ms())))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("project {pid}")));
    }
    // Under the lock just taken: the audit's "before" cannot miss a
    // writer that committed in between.
    super::audit::track(conn, pid)
}

/// A unique-constraint failure reported as the conflict it is (two writers
/// raced past the duplicate check); other errors unchanged.
pub fn conflict_on_unique(e: diesel::result::Error, message: impl FnOnce() -> String) -> StoreError {
    let e = StoreError::Query(e);
    if e.is_unique_violation() {
        StoreError::Conflict(message())
    } else {
        e
    }
}

/// [`super::text_field`] with an optional limit (kept for the API's
/// up-front field checks).
pub fn check_text(field: &str, text: &str, max_chars: Option<usize>) -> Result<(), StoreError> {
    super::text_field(field, text, max_chars.unwrap_or(usize::MAX))
}

/// The id of group `r` in project `pid`.
pub fn group_id(conn: &mut DbConn, pid: i64, field: &str, r: &Ref) -> Result<i64, StoreError> {
    if let Ref::Name(n) = r {
        super::name_field(field, "group", n)?;
    }
    let q = inventory_groups::table.filter(inventory_groups::project_id.eq(pid)).select(inventory_groups::id);
    let found = match r {
        Ref::Id(id) => q.filter(inventory_groups::id.eq(*id)).first::<i64>(conn).optional()?,
        Ref::Name(n) => q.filter(inventory_groups::name.eq(n)).first::<i64>(conn).optional()?,
    };
    found.ok_or_else(|| invalid(field, format!("no group {r} in this project")))
}

/// The id of host `r` in project `pid`.
pub fn host_id(conn: &mut DbConn, pid: i64, field: &str, r: &Ref) -> Result<i64, StoreError> {
    if let Ref::Name(n) = r {
        super::name_field(field, "host", n)?;
    }
    let q = hosts::table.filter(hosts::project_id.eq(pid)).select(hosts::id);
    let found = match r {
        Ref::Id(id) => q.filter(hosts::id.eq(*id)).first::<i64>(conn).optional()?,
        Ref::Name(n) => q.filter(hosts::name.eq(n)).first::<i64>(conn).optional()?,
    };
    found.ok_or_else(|| invalid(field, format!("no host {r} in this project")))
}

/// Group ids of `refs`, in order, each once.
pub fn group_ids(conn: &mut DbConn, pid: i64, field: &str, refs: &[Ref]) -> Result<Vec<i64>, StoreError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let id = group_id(conn, pid, field, r)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

pub fn insert_edges(conn: &mut DbConn, rows: &[(i64, i64, i32)]) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&(p, c, pos)| {
                (group_edges::parent_id.eq(p), group_edges::child_id.eq(c), group_edges::position.eq(pos))
            })
            .collect();
        batch_insert!(conn, group_edges::table, &values)?;
    }
    Ok(())
}

pub fn insert_memberships(conn: &mut DbConn, rows: &[(i64, i64, i32)]) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&(g, h, pos)| {
                (memberships::group_id.eq(g), memberships::host_id.eq(h), memberships::position.eq(pos))
            })
            .collect();
        batch_insert!(conn, memberships::table, &values)?;
    }
    Ok(())
}

pub fn insert_labels(conn: &mut DbConn, host: i64, labels: &[String]) -> Result<(), StoreError> {
    for chunk in labels.chunks(CHUNK) {
        let values: Vec<_> =
            chunk.iter().map(|l| (host_labels::host_id.eq(host), host_labels::label.eq(l.as_str()))).collect();
        batch_insert!(conn, host_labels::table, &values)?;
    }
    Ok(())
}

/// One new variable row: (owner kind, owner id, key, JSON text, tier).
pub type VarRow<'a> = (i32, i64, &'a str, &'a str, i32);

pub fn insert_vars(conn: &mut DbConn, pid: i64, rows: &[VarRow]) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<_> = chunk
            .iter()
            .map(|&(kind, owner, key, value, tier)| {
                (
                    variables::project_id.eq(pid),
                    variables::owner_kind.eq(kind),
                    variables::owner_id.eq(owner),
                    variables::var_key.eq(key),
                    variables::var_value.eq(value),
                    variables::tier.eq(tier),
                    variables::created_at.eq(now),
                    variables::updated_at.eq(now),
                )
            })
            .collect();
        batch_insert!(conn, variables::table, &values)?;
    }
    Ok(())
}

/// Deletes every variable of the given owners.
pub fn delete_vars_of(conn: &mut DbConn, pid: i64, kind: i32, owners: &[i64]) -> Result<(), StoreError> {
    for chunk in owners.chunks(CHUNK) {
        diesel::delete(
            variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(kind))
                .filter(variables::owner_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(())
}

pub(crate) fn chunked<T>(items: &[T]) -> std::slice::Chunks<'_, T> {
    items.chunks(CHUNK)
}
