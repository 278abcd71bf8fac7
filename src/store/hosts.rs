//! Hosts as a resource: one host at a time, with its labels, group
//! memberships and parent host (the chain kept acyclic), for the REST API.

use std::collections::HashSet;
use std::net::IpAddr;

use diesel::prelude::*;
use serde::Serialize;

use super::edit::{
    begin_write, conflict_on_unique, delete_vars_of, group_ids, host_id, insert_labels, insert_memberships, invalid,
    Ref,
};
use super::schema::{host_labels, hosts, inventory_groups, memberships};
use super::{now_ms, DbConn, StoreError};
use crate::model::{OwnerKind, Snapshot};

/// A host as the API shows it; relations by name, labels sorted, groups in
/// creation order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostRecord {
    pub id: i64,
    pub name: String,
    pub ip_address: Option<String>,
    pub active: bool,
    pub parent: Option<String>,
    pub labels: Vec<String>,
    pub groups: Vec<String>,
}

impl HostRecord {
    /// Host `h` (an index into `snap.hosts`).
    pub fn from_snapshot(snap: &Snapshot, h: usize) -> HostRecord {
        let node = &snap.hosts[h];
        HostRecord {
            id: node.id,
            name: node.name.clone(),
            ip_address: node.ip_address.clone(),
            active: node.active,
            parent: node.parent.map(|p| snap.hosts[p].name.clone()),
            labels: node.labels.clone(),
            groups: node.groups.iter().map(|&g| snap.groups[g].name.clone()).collect(),
        }
    }
}

/// What a create or update sets; `None` leaves a field as it is (on
/// create: its default). `Some(None)` clears a nullable field.
#[derive(Debug, Clone, Default)]
pub struct HostChange {
    pub name: Option<String>,
    pub ip_address: Option<Option<String>>,
    pub active: Option<bool>,
    pub parent: Option<Option<Ref>>,
    pub labels: Option<Vec<String>>,
    pub groups: Option<Vec<Ref>>,
}

#[derive(AsChangeset)]
#[diesel(table_name = hosts)]
struct HostSet<'a> {
    name: Option<&'a str>,
    ip_address: Option<Option<&'a str>>,
    active: Option<bool>,
    updated_at: i64,
}

/// An IP address in its canonical text form.
pub fn normalize_ip(text: &str) -> Result<String, StoreError> {
    text.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| invalid("ip_address", format!("{text:?} is not an IPv4 or IPv6 address")))
}

/// Labels as stored: each a valid name, each once, sorted.
pub fn normalize_labels(labels: &[String]) -> Result<Vec<String>, StoreError> {
    for l in labels {
        crate::names::check_name("label", l).map_err(|m| invalid("labels", m))?;
    }
    let mut out: Vec<String> = labels.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound(format!("host {id}"))
}

type HostRow = (i64, String, Option<String>, bool, Option<i64>);

fn host_row(conn: &mut DbConn, pid: i64, id: i64) -> Result<Option<HostRow>, StoreError> {
    Ok(hosts::table
        .filter(hosts::project_id.eq(pid))
        .filter(hosts::id.eq(id))
        .select((hosts::id, hosts::name, hosts::ip_address, hosts::active, hosts::parent_id))
        .first(conn)
        .optional()?)
}

fn id_by_name(conn: &mut DbConn, pid: i64, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(hosts::table
        .filter(hosts::project_id.eq(pid))
        .filter(hosts::name.eq(name))
        .select(hosts::id)
        .first(conn)
        .optional()?)
}

/// Host `id` of project `pid`, read from the database.
pub fn get_host(conn: &mut DbConn, pid: i64, id: i64) -> Result<HostRecord, StoreError> {
    super::tx::read(conn, |conn| read_host(conn, pid, id))
}

fn read_host(conn: &mut DbConn, pid: i64, id: i64) -> Result<HostRecord, StoreError> {
    let (id, name, ip_address, active, parent_id) = host_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
    let parent = match parent_id {
        Some(p) => hosts::table.find(p).select(hosts::name).first::<String>(conn).optional()?,
        None => None,
    };
    let mut labels: Vec<String> =
        host_labels::table.filter(host_labels::host_id.eq(id)).select(host_labels::label).load(conn)?;
    // Byte order, as the snapshot has them, whatever the database collation.
    labels.sort();
    let groups: Vec<String> = memberships::table
        .inner_join(inventory_groups::table)
        .filter(memberships::host_id.eq(id))
        .order(inventory_groups::id.asc())
        .select(inventory_groups::name)
        .load(conn)?;
    Ok(HostRecord { id, name, ip_address, active, parent, labels, groups })
}

/// Refuses `parent` as the parent of `id` when that would close a loop:
/// a host cannot be its own parent, nor the child of its descendant.
fn check_parent(conn: &mut DbConn, pid: i64, id: i64, name: &str, parent: i64) -> Result<(), StoreError> {
    if parent == id {
        return Err(StoreError::Conflict(format!("host {name:?} cannot be its own parent")));
    }
    let mut seen = HashSet::from([parent]);
    let mut cur = parent;
    loop {
        let up: Option<Option<i64>> = hosts::table
            .filter(hosts::project_id.eq(pid))
            .filter(hosts::id.eq(cur))
            .select(hosts::parent_id)
            .first(conn)
            .optional()?;
        match up.flatten() {
            Some(next) if next == id => {
                return Err(StoreError::Conflict(format!(
                    "host {name:?} cannot be the child of its own descendant (the parent chain would form a cycle)"
                )))
            }
            Some(next) if seen.insert(next) => cur = next,
            _ => return Ok(()),
        }
    }
}

/// Makes `groups` the groups of host `id`: memberships that stay keep their
/// position, new ones go last in their group.
fn set_groups(conn: &mut DbConn, id: i64, groups: &[i64]) -> Result<(), StoreError> {
    let current: HashSet<i64> = memberships::table
        .filter(memberships::host_id.eq(id))
        .select(memberships::group_id)
        .load(conn)?
        .into_iter()
        .collect();
    let wanted: HashSet<i64> = groups.iter().copied().collect();
    let gone: Vec<i64> = current.difference(&wanted).copied().collect();
    if !gone.is_empty() {
        diesel::delete(
            memberships::table.filter(memberships::host_id.eq(id)).filter(memberships::group_id.eq_any(&gone)),
        )
        .execute(conn)?;
    }
    let mut rows = Vec::new();
    for &g in groups.iter().filter(|g| !current.contains(g)) {
        let last: Option<i32> = memberships::table
            .filter(memberships::group_id.eq(g))
            .select(diesel::dsl::max(memberships::position))
            .first(conn)?;
        rows.push((g, id, last.map_or(0, |l| l + 1)));
    }
    insert_memberships(conn, &rows)
}

/// Resolves and writes the parent, labels and groups named in `change`.
fn write_relations(conn: &mut DbConn, pid: i64, id: i64, name: &str, change: &HostChange) -> Result<(), StoreError> {
    if let Some(parent) = &change.parent {
        let parent = parent.as_ref().map(|r| host_id(conn, pid, "parent", r)).transpose()?;
        if let Some(p) = parent {
            check_parent(conn, pid, id, name, p)?;
        }
        diesel::update(hosts::table.find(id)).set(hosts::parent_id.eq(parent)).execute(conn)?;
    }
    if let Some(labels) = &change.labels {
        let labels = normalize_labels(labels)?;
        diesel::delete(host_labels::table.filter(host_labels::host_id.eq(id))).execute(conn)?;
        insert_labels(conn, id, &labels)?;
    }
    if let Some(groups) = &change.groups {
        let groups = group_ids(conn, pid, "groups", groups)?;
        set_groups(conn, id, &groups)?;
    }
    Ok(())
}

fn check_change(c: &HostChange) -> Result<Option<Option<String>>, StoreError> {
    if let Some(n) = &c.name {
        crate::names::check_name("host", n).map_err(|m| invalid("name", m))?;
    }
    if let Some(labels) = &c.labels {
        normalize_labels(labels)?;
    }
    c.ip_address.as_ref().map(|ip| ip.as_deref().map(normalize_ip).transpose()).transpose()
}

/// Creates a host in project `pid`; `change.name` is required.
pub fn create_host(conn: &mut DbConn, pid: i64, change: &HostChange) -> Result<HostRecord, StoreError> {
    let name = change.name.as_deref().ok_or_else(|| invalid("name", "is required"))?;
    let ip = check_change(change)?.flatten();
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        let taken = || format!("host {name:?} already exists");
        if id_by_name(conn, pid, name)?.is_some() {
            return Err(StoreError::Conflict(taken()));
        }
        let now = now_ms();
        diesel::insert_into(hosts::table)
            .values((
                hosts::project_id.eq(pid),
                hosts::name.eq(name),
                hosts::ip_address.eq(ip.as_deref()),
                hosts::active.eq(change.active.unwrap_or(true)),
                hosts::parent_id.eq(None::<i64>),
                hosts::created_at.eq(now),
                hosts::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, taken))?;
        let id = id_by_name(conn, pid, name)?.ok_or_else(|| StoreError::NotFound(format!("host {name:?}")))?;
        write_relations(conn, pid, id, name, change)?;
        get_host(conn, pid, id)
    })
}

/// Changes host `id` of project `pid` as `change` says.
pub fn update_host(conn: &mut DbConn, pid: i64, id: i64, change: &HostChange) -> Result<HostRecord, StoreError> {
    let ip = check_change(change)?;
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        let (_, current_name, ..) = host_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
        let name = change.name.as_deref().unwrap_or(&current_name);
        let taken = || format!("host {name:?} already exists");
        if name != current_name && id_by_name(conn, pid, name)?.is_some() {
            return Err(StoreError::Conflict(taken()));
        }
        let set = HostSet {
            name: change.name.as_deref(),
            ip_address: ip.as_ref().map(|i| i.as_deref()),
            active: change.active,
            updated_at: now_ms(),
        };
        diesel::update(hosts::table.find(id)).set(&set).execute(conn).map_err(|e| conflict_on_unique(e, taken))?;
        write_relations(conn, pid, id, name, change)?;
        get_host(conn, pid, id)
    })
}

/// Deletes host `id` of project `pid` with its variables, labels and
/// memberships; its child hosts lose their parent.
pub fn delete_host(conn: &mut DbConn, pid: i64, id: i64) -> Result<(), StoreError> {
    super::tx::write(conn, |conn| {
        begin_write(conn, pid)?;
        host_row(conn, pid, id)?.ok_or_else(|| not_found(id))?;
        delete_vars_of(conn, pid, OwnerKind::Host as i32, &[id])?;
        // Secrets name their owner without a foreign key (issue 9).
        #[cfg(feature = "secrets")]
        super::secrets::delete_owner(
            conn,
            super::secrets::Owner { project_id: pid, kind: crate::secrets::OwnerKind::Host, id },
        )?;
        diesel::delete(host_labels::table.filter(host_labels::host_id.eq(id))).execute(conn)?;
        diesel::delete(memberships::table.filter(memberships::host_id.eq(id))).execute(conn)?;
        diesel::update(hosts::table.filter(hosts::project_id.eq(pid)).filter(hosts::parent_id.eq(id)))
            .set(hosts::parent_id.eq(None::<i64>))
            .execute(conn)?;
        diesel::delete(hosts::table.find(id)).execute(conn)?;
        Ok(())
    })
}
