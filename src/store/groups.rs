//! Groups as a resource: one group at a time, with its parents and children
//! (the nesting DAG, kept acyclic), for the REST API. Bulk writes go
//! through [`super::apply`] instead.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::apply::find_cycle;
use super::edit::{
    begin_write, conflict_on_unique, delete_vars_of, group_ids, insert_edges, invalid, Ref, RESERVED_GROUPS,
};
use super::schema::{group_edges, inventory_groups, memberships};
use super::{now_ms, DbConn, StoreError};
use crate::model::{OwnerKind, Snapshot};

/// Longest `kind` the schema holds.
pub const MAX_KIND_CHARS: usize = 64;

/// Longest description: MySQL's TEXT holds 65,535 bytes, which is this many
/// characters of up to four bytes each.
pub const MAX_DESCRIPTION_CHARS: usize = 16_383;

/// A group as the API shows it; relations by name, parents in creation
/// order, children in their stored order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupRecord {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    /// `ansible_group_priority`; `None` is Ansible's default, 1.
    pub priority: Option<i64>,
    pub parents: Vec<String>,
    pub children: Vec<String>,
}

impl GroupRecord {
    /// Group `g` (an index into `snap.groups`).
    pub fn from_snapshot(snap: &Snapshot, g: usize) -> GroupRecord {
        let node = &snap.groups[g];
        GroupRecord {
            id: node.id,
            name: node.name.clone(),
            kind: node.kind.clone(),
            description: node.description.clone(),
            priority: node.priority,
            parents: node.parents.iter().map(|&p| snap.groups[p].name.clone()).collect(),
            children: node.children.iter().map(|&c| snap.groups[c].name.clone()).collect(),
        }
    }
}

/// What a create or update sets; `None` leaves a field as it is (on
/// create: its default). `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<Option<String>>,
    pub priority: Option<Option<i64>>,
    pub parents: Option<Vec<Ref>>,
    pub children: Option<Vec<Ref>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = inventory_groups)]
struct GroupSet<'a> {
    name: Option<&'a str>,
    kind: Option<&'a str>,
    description: Option<Option<&'a str>>,
    priority: Option<Option<i32>>,
    updated_at: i64,
}

/// A name a group may have: storable, and not one Ansible reserves.
pub fn check_group_name(name: &str) -> Result<(), StoreError> {
    crate::names::check_name("group", name).map_err(|m| invalid("name", m))?;
    if RESERVED_GROUPS.contains(&name) {
        return Err(invalid("name", format!("{name:?} is reserved by Ansible")));
    }
    Ok(())
}

/// The priority as the schema stores it (an INTEGER).
pub fn priority_i32(p: Option<i64>) -> Result<Option<i32>, StoreError> {
    p.map(|v| i32::try_from(v).map_err(|_| invalid("priority", format!("{v} is out of range")))).transpose()
}

fn check_change(c: &GroupChange) -> Result<(), StoreError> {
    if let Some(n) = &c.name {
        check_group_name(n)?;
    }
    if let Some(k) = &c.kind {
        super::text_field("kind", k, MAX_KIND_CHARS)?;
    }
    if let Some(Some(d)) = &c.description {
        super::text_field("description", d, MAX_DESCRIPTION_CHARS)?;
    }
    if let Some(p) = c.priority {
        priority_i32(p)?;
    }
    Ok(())
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("group {id}"))
}

type GroupRow = (i64, String, String, Option<String>, Option<i32>);

fn group_row(conn: &mut DbConn, pid: i64, id: i64) -> Result<Option<GroupRow>, StoreError> {
    Ok(inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .filter(inventory_groups::id.eq(id))
        .select((
            inventory_groups::id,
            inventory_groups::name,
            inventory_groups::kind,
            inventory_groups::description,
            inventory_groups::priority,
        ))
        .first(conn)
        .optional()?)
}

fn id_by_name(conn: &mut DbConn, pid: i64, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .filter(inventory_groups::name.eq(name))
        .select(inventory_groups::id)
        .first(conn)
        .optional()?)
}

/// Group `id` of project `pid`, read from the database.
pub fn get_group(conn: &mut DbConn, pid: i64, id: i64) -> Result<GroupRecord, StoreError> {
    super::tx::read(conn, |conn| read_group(conn, pid, id))
}

fn read_group(conn: &mut DbConn, pid: i64, id: i64) -> Result<GroupRecord, StoreError> {
    let (id, name, kind, description, priority) = group_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
    let parents: Vec<String> = group_edges::table
        .inner_join(inventory_groups::table.on(inventory_groups::id.eq(group_edges::parent_id)))
        .filter(group_edges::child_id.eq(id))
        .order(inventory_groups::id.asc())
        .select(inventory_groups::name)
        .load(conn)?;
    let mut children: Vec<(i32, i64, String)> = group_edges::table
        .inner_join(inventory_groups::table.on(inventory_groups::id.eq(group_edges::child_id)))
        .filter(group_edges::parent_id.eq(id))
        .select((group_edges::position, inventory_groups::id, inventory_groups::name))
        .load(conn)?;
    children.sort_unstable();
    Ok(GroupRecord {
        id,
        name,
        kind,
        description,
        priority: priority.map(i64::from),
        parents,
        children: children.into_iter().map(|(_, _, n)| n).collect(),
    })
}

/// Makes `parents` the parents of `id`: edges that stay keep their
/// position, new ones go last among their parent's children.
fn set_parents(conn: &mut DbConn, id: i64, parents: &[i64]) -> Result<(), StoreError> {
    let current: HashSet<i64> = group_edges::table
        .filter(group_edges::child_id.eq(id))
        .select(group_edges::parent_id)
        .load(conn)?
        .into_iter()
        .collect();
    let wanted: HashSet<i64> = parents.iter().copied().collect();
    let gone: Vec<i64> = current.difference(&wanted).copied().collect();
    if !gone.is_empty() {
        diesel::delete(
            group_edges::table.filter(group_edges::child_id.eq(id)).filter(group_edges::parent_id.eq_any(&gone)),
        )
        .execute(conn)?;
    }
    let mut rows = Vec::new();
    for &p in parents.iter().filter(|p| !current.contains(p)) {
        let last: Option<i32> = group_edges::table
            .filter(group_edges::parent_id.eq(p))
            .select(diesel::dsl::max(group_edges::position))
            .first(conn)?;
        rows.push((p, id, last.map_or(0, |l| l + 1)));
    }
    insert_edges(conn, &rows)
}

/// Makes `children` the children of `id`, in that order.
fn set_children(conn: &mut DbConn, id: i64, children: &[i64]) -> Result<(), StoreError> {
    diesel::delete(group_edges::table.filter(group_edges::parent_id.eq(id))).execute(conn)?;
    let rows: Vec<(i64, i64, i32)> = children.iter().enumerate().map(|(pos, &c)| (id, c, pos as i32)).collect();
    insert_edges(conn, &rows)
}

/// Resolves and writes the relations of group `id` named in `change`.
fn write_relations(conn: &mut DbConn, pid: i64, id: i64, name: &str, change: &GroupChange) -> Result<(), StoreError> {
    let parents = change.parents.as_deref().map(|r| group_ids(conn, pid, "parents", r)).transpose()?;
    let children = change.children.as_deref().map(|r| group_ids(conn, pid, "children", r)).transpose()?;
    if parents.as_ref().is_some_and(|p| p.contains(&id)) {
        return Err(StoreError::Conflict(format!("group {name:?} cannot be its own parent")));
    }
    if children.as_ref().is_some_and(|c| c.contains(&id)) {
        return Err(StoreError::Conflict(format!("group {name:?} cannot be its own child")));
    }
    if let Some(p) = &parents {
        set_parents(conn, id, p)?;
    }
    if let Some(c) = &children {
        set_children(conn, id, c)?;
    }
    if parents.is_some() || children.is_some() {
        check_cycles(conn, pid)?;
    }
    Ok(())
}

/// Refuses the nesting of project `pid` as it now stands (inside the
/// write's transaction) if it has a cycle.
fn check_cycles(conn: &mut DbConn, pid: i64) -> Result<(), StoreError> {
    let edges: Vec<(i64, i64)> = group_edges::table
        .inner_join(inventory_groups::table.on(inventory_groups::id.eq(group_edges::child_id)))
        .filter(inventory_groups::project_id.eq(pid))
        .select((group_edges::parent_id, group_edges::child_id))
        .load(conn)?;
    let Some(cycle) = find_cycle(&edges) else {
        return Ok(());
    };
    let names: HashMap<i64, String> = inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .select((inventory_groups::id, inventory_groups::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let path: Vec<&str> = cycle.iter().map(|i| names.get(i).map_or("?", String::as_str)).collect();
    Err(StoreError::Conflict(format!("group nesting would form a cycle: {}", path.join(" -> "))))
}

/// Creates a group in project `pid`; `change.name` is required.
pub fn create_group(conn: &mut DbConn, pid: i64, change: &GroupChange) -> Result<GroupRecord, StoreError> {
    let name = change.name.as_deref().ok_or_else(|| invalid("name", "is required"))?;
    check_change(change)?;
    let priority = priority_i32(change.priority.flatten())?;
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        let taken = || format!("group {name:?} already exists");
        if id_by_name(conn, pid, name)?.is_some() {
            return Err(StoreError::Conflict(taken()));
        }
        let now = now_ms();
        diesel::insert_into(inventory_groups::table)
            .values((
                inventory_groups::project_id.eq(pid),
                inventory_groups::name.eq(name),
                inventory_groups::kind.eq(change.kind.as_deref().unwrap_or("")),
                inventory_groups::description.eq(change.description.clone().flatten()),
                inventory_groups::priority.eq(priority),
                inventory_groups::all_position.eq(None::<i32>),
                inventory_groups::created_at.eq(now),
                inventory_groups::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        let id = id_by_name(conn, pid, name)?.ok_or_else(|| StoreError::NotFound(format!("group {name:?}")))?;
        write_relations(conn, pid, id, name, change)?;
        get_group(conn, pid, id)
    })
}

/// Changes group `id` of project `pid` as `change` says.
pub fn update_group(conn: &mut DbConn, pid: i64, id: i64, change: &GroupChange) -> Result<GroupRecord, StoreError> {
    check_change(change)?;
    let priority = change.priority.map(priority_i32).transpose()?;
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        let (_, current_name, ..) = group_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
        let name = change.name.as_deref().unwrap_or(&current_name);
        let taken = || format!("group {name:?} already exists");
        if name != current_name && id_by_name(conn, pid, name)?.is_some() {
            return Err(StoreError::Conflict(taken()));
        }
        let set = GroupSet {
            name: change.name.as_deref(),
            kind: change.kind.as_deref(),
            description: change.description.as_ref().map(|d| d.as_deref()),
            priority,
            updated_at: now_ms(),
        };
        diesel::update(inventory_groups::table.find(id))
            .set(&set)
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        write_relations(conn, pid, id, name, change)?;
        get_group(conn, pid, id)
    })
}

/// Deletes group `id` of project `pid` with its variables, nesting edges
/// and memberships (its hosts and child groups stay).
pub fn delete_group(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        group_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
        delete_vars_of(conn, pid, OwnerKind::Group as i32, &[id])?;
        // Secrets name their owner without a foreign key (issue 9).
        #[cfg(feature = "secrets")]
        super::secrets::delete_owner(
            conn,
            super::secrets::Owner { project_id: pid, kind: crate::secrets::OwnerKind::Group, id },
        )?;
        diesel::delete(group_edges::table.filter(group_edges::parent_id.eq(id).or(group_edges::child_id.eq(id))))
            .execute(conn)?;
        diesel::delete(memberships::table.filter(memberships::group_id.eq(id))).execute(conn)?;
        diesel::delete(inventory_groups::table.find(id)).execute(conn)?;
        Ok(())
    })
}
