//! An owner's own variables as a resource: read, merged key by key, and
//! deleted key by key. Values written here are JSON on the inventory tier,
//! exactly what an inline inventory variable is. A key that a config ref
//! owns is refused with a conflict naming the ref (it changes in git).

use std::collections::HashSet;

use diesel::helper_types::{Eq as EqTo, Filter};
use diesel::prelude::*;
use indexmap::IndexMap;
use serde_json::Value;

use super::edit::{begin_write, chunked, insert_vars, VarRow};
use super::schema::{hosts, inventory_groups, variables};
use super::{now_ms, DbConn, StoreError};
use crate::model::{raw_from_string, raw_from_value, OwnerKind, Raw, Tier};

/// Whose variables: the project's (its `all` group), a group's or a host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarOwner {
    Project,
    Group(i64),
    Host(i64),
}

impl VarOwner {
    fn kind(self) -> OwnerKind {
        match self {
            VarOwner::Project => OwnerKind::Project,
            VarOwner::Group(_) => OwnerKind::Group,
            VarOwner::Host(_) => OwnerKind::Host,
        }
    }

    /// The `owner_id` column: project variables are owned by the project.
    fn id(self, pid: i64) -> i64 {
        match self {
            VarOwner::Project => pid,
            VarOwner::Group(id) | VarOwner::Host(id) => id,
        }
    }
}

/// Why `key` cannot be set on `owner`, if it cannot.
pub fn key_problem(owner: VarOwner, key: &str) -> Option<String> {
    if let Err(m) = crate::names::check_name("variable", key) {
        return Some(m);
    }
    // Ansible's Group.set_variable turns this key into the group's priority
    // and keeps no variable of that name, so storing one would show a value
    // Ansible never has.
    if key == "ansible_group_priority" && !matches!(owner, VarOwner::Host(_)) {
        return Some("is not a variable in Ansible: set the group's `priority` field".into());
    }
    None
}

/// Fails with not-found unless `owner` exists in project `pid`.
pub fn check_owner(conn: &mut DbConn, pid: i64, owner: VarOwner) -> Result<(), StoreError> {
    let found = match owner {
        VarOwner::Project => super::project_by_id(conn, pid)?.is_some(),
        VarOwner::Group(id) => inventory_groups::table
            .filter(inventory_groups::project_id.eq(pid))
            .filter(inventory_groups::id.eq(id))
            .select(inventory_groups::id)
            .first::<i64>(conn)
            .optional()?
            .is_some(),
        VarOwner::Host(id) => hosts::table
            .filter(hosts::project_id.eq(pid))
            .filter(hosts::id.eq(id))
            .select(hosts::id)
            .first::<i64>(conn)
            .optional()?
            .is_some(),
    };
    if found {
        return Ok(());
    }
    Err(StoreError::NotFound(match owner {
        VarOwner::Project => format!("project {pid}"),
        VarOwner::Group(id) => format!("group {id}"),
        VarOwner::Host(id) => format!("host {id}"),
    }))
}

/// The rows of one owner, as a query to refine.
type OwnerRows = Filter<
    Filter<Filter<variables::table, EqTo<variables::project_id, i64>>, EqTo<variables::owner_kind, i32>>,
    EqTo<variables::owner_id, i64>,
>;

fn owner_rows(pid: i64, owner: VarOwner) -> OwnerRows {
    variables::table
        .filter(variables::project_id.eq(pid))
        .filter(variables::owner_kind.eq(owner.kind() as i32))
        .filter(variables::owner_id.eq(owner.id(pid)))
}

/// The owner's own variables, in key order (as in a snapshot).
pub fn own_vars(conn: &mut DbConn, pid: i64, owner: VarOwner) -> Result<IndexMap<String, Raw>, StoreError> {
    check_owner(conn, pid, owner)?;
    let rows: Vec<(String, String)> = owner_rows(pid, owner)
        .order(variables::var_key.asc())
        .select((variables::var_key, variables::var_value))
        .load(conn)?;
    rows.into_iter()
        .map(|(k, v)| {
            let raw = raw_from_string(v)
                .map_err(|e| StoreError::Invalid(format!("variable {k:?} holds invalid JSON: {e}")))?;
            Ok((k, raw))
        })
        .collect()
}

/// Sets each key of `vars` on the owner (others untouched); returns the
/// owner's variables afterwards.
pub fn merge_vars(
    conn: &mut DbConn,
    pid: i64,
    owner: VarOwner,
    vars: &IndexMap<String, Value>,
) -> Result<IndexMap<String, Raw>, StoreError> {
    if let Some((k, m)) = vars.keys().find_map(|k| key_problem(owner, k).map(|m| (k, m))) {
        return Err(StoreError::Invalid(format!("variable {k:?}: {m}")));
    }
    if let Some((k, m)) = vars.iter().find_map(|(k, v)| crate::typed::check(v).err().map(|m| (k, m))) {
        return Err(StoreError::Invalid(format!("variable {k:?}: {m}")));
    }
    let texts: Vec<(&str, Raw)> = vars.iter().map(|(k, v)| (k.as_str(), raw_from_value(v))).collect();
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        check_owner(conn, pid, owner)?;
        let keys: Vec<&str> = texts.iter().map(|(k, _)| *k).collect();
        // A key a config ref owns changes in git only (409 naming the ref).
        super::config_refs::refuse_ref_owned(conn, pid, owner.kind() as i32, owner.id(pid), &keys)?;
        let mut existing: HashSet<String> = HashSet::new();
        for chunk in chunked(&keys) {
            existing.extend(
                owner_rows(pid, owner)
                    .filter(variables::var_key.eq_any(chunk))
                    .select(variables::var_key)
                    .load::<String>(conn)?,
            );
        }
        let now = now_ms();
        let mut new_rows: Vec<VarRow> = Vec::new();
        for (k, v) in &texts {
            if existing.contains(*k) {
                diesel::update(owner_rows(pid, owner).filter(variables::var_key.eq(*k)))
                    .set((
                        variables::var_value.eq(v.get()),
                        variables::tier.eq(Tier::Inventory as i32),
                        // A row left by a deleted ref becomes the API's.
                        variables::source_id.eq(None::<i64>),
                        variables::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            } else {
                new_rows.push((owner.kind() as i32, owner.id(pid), k, v.get(), Tier::Inventory as i32));
            }
        }
        insert_vars(conn, pid, &new_rows)?;
        own_vars(conn, pid, owner)
    })
}

/// Deletes the listed keys of the owner (missing keys are fine); returns
/// how many were there.
pub fn delete_vars(conn: &mut DbConn, pid: i64, owner: VarOwner, keys: &[String]) -> Result<usize, StoreError> {
    for k in keys {
        super::name_field("keys", "variable", k)?;
    }
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        check_owner(conn, pid, owner)?;
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        super::config_refs::refuse_ref_owned(conn, pid, owner.kind() as i32, owner.id(pid), &names)?;
        let mut n = 0;
        for chunk in chunked(keys) {
            n += diesel::delete(owner_rows(pid, owner).filter(variables::var_key.eq_any(chunk))).execute(conn)?;
        }
        Ok(n)
    })
}
