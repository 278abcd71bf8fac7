//! Loads one project's whole inventory into a [`Snapshot`] with one query
//! per table, whatever the number of hosts, all inside one read
//! transaction ([`super::tx::read`]) so the tables agree with each other
//! and with the revision the snapshot carries.

use std::collections::HashMap;

use diesel::prelude::*;

use super::schema::{group_edges, host_labels, hosts, inventory_groups, memberships, variables};
use super::{find_project, project_by_id, DbConn, StoreError};
use crate::model::{raw_from_string, GroupNode, HostNode, OwnVars, OwnerKind, Project, Snapshot, Tier, Var};

type GroupRow = (i64, String, String, Option<String>, Option<i32>, Option<i32>);
type HostRow = (i64, String, Option<String>, bool, Option<i64>);
type VarRow = (i32, i64, String, String, i32);

pub fn load_snapshot(conn: &mut DbConn, project: &str) -> Result<Snapshot, StoreError> {
    super::tx::read(conn, |conn| {
        let project = find_project(conn, project)?.ok_or_else(|| StoreError::UnknownProject(project.to_string()))?;
        load_rows(conn, project)
    })
}

/// Loads `project`; the snapshot carries the project row (and revision) read
/// in the same transaction as its contents, which may be newer than the
/// `project` passed in.
pub fn load_project(conn: &mut DbConn, project: Project) -> Result<Snapshot, StoreError> {
    super::tx::read(conn, |conn| {
        let project =
            project_by_id(conn, project.id)?.ok_or_else(|| StoreError::UnknownProject(project.name.clone()))?;
        load_rows(conn, project)
    })
}

fn load_rows(conn: &mut DbConn, project: Project) -> Result<Snapshot, StoreError> {
    let pid = project.id;
    let group_rows: Vec<GroupRow> = inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .order(inventory_groups::id.asc())
        .select((
            inventory_groups::id,
            inventory_groups::name,
            inventory_groups::kind,
            inventory_groups::description,
            inventory_groups::priority,
            inventory_groups::all_position,
        ))
        .load(conn)?;
    let mut edges: Vec<(i64, i64, i32)> = group_edges::table
        .inner_join(inventory_groups::table.on(inventory_groups::id.eq(group_edges::child_id)))
        .filter(inventory_groups::project_id.eq(pid))
        .select((group_edges::parent_id, group_edges::child_id, group_edges::position))
        .load(conn)?;
    let host_rows: Vec<HostRow> = hosts::table
        .filter(hosts::project_id.eq(pid))
        .order(hosts::id.asc())
        .select((hosts::id, hosts::name, hosts::ip_address, hosts::active, hosts::parent_id))
        .load(conn)?;
    let mut members: Vec<(i64, i64, i32)> = memberships::table
        .inner_join(hosts::table)
        .filter(hosts::project_id.eq(pid))
        .select((memberships::group_id, memberships::host_id, memberships::position))
        .load(conn)?;
    let labels: Vec<(i64, String)> = host_labels::table
        .inner_join(hosts::table)
        .filter(hosts::project_id.eq(pid))
        .select((host_labels::host_id, host_labels::label))
        .load(conn)?;
    let group_ix: HashMap<i64, usize> = group_rows.iter().enumerate().map(|(i, g)| (g.0, i)).collect();
    let host_ix: HashMap<i64, usize> = host_rows.iter().enumerate().map(|(i, h)| (h.0, i)).collect();

    let mut groups: Vec<GroupNode> = group_rows
        .into_iter()
        .map(|(id, name, kind, description, priority, all_position)| GroupNode {
            id,
            name,
            kind,
            description,
            priority: priority.map(i64::from),
            all_position,
            parents: Vec::new(),
            children: Vec::new(),
            hosts: Vec::new(),
            vars: OwnVars::default(),
        })
        .collect();
    let mut hosts: Vec<HostNode> = host_rows
        .iter()
        .map(|(id, name, ip, active, _)| HostNode {
            id: *id,
            name: name.clone(),
            ip_address: ip.clone(),
            active: *active,
            parent: None,
            labels: Vec::new(),
            groups: Vec::new(),
            vars: OwnVars::default(),
        })
        .collect();
    for (i, (_, _, _, _, parent)) in host_rows.iter().enumerate() {
        hosts[i].parent = parent.and_then(|p| host_ix.get(&p).copied());
    }
    // Children and members in their stored order (input order), ties by creation.
    edges.sort_unstable_by_key(|&(p, c, pos)| (p, pos, c));
    members.sort_unstable_by_key(|&(g, h, pos)| (g, pos, h));
    for (p, c, _) in edges {
        if let (Some(&p), Some(&c)) = (group_ix.get(&p), group_ix.get(&c)) {
            groups[p].children.push(c);
            groups[c].parents.push(p);
        }
    }
    for (g, h, _) in members {
        if let (Some(&g), Some(&h)) = (group_ix.get(&g), host_ix.get(&h)) {
            groups[g].hosts.push(h);
            hosts[h].groups.push(g);
        }
    }
    for (h, label) in labels {
        if let Some(&h) = host_ix.get(&h) {
            hosts[h].labels.push(label);
        }
    }
    for g in &mut groups {
        g.parents.sort_unstable();
    }
    for h in &mut hosts {
        h.groups.sort_unstable();
        h.labels.sort();
    }

    let mut all_vars = OwnVars::default();
    // Rows come grouped by owner (primary key order): look each owner up once.
    let mut last: Option<((i32, i64), Option<usize>)> = None;
    // Streamed: 100,000 rows never sit in a Vec next to the maps they fill.
    let var_rows = variables::table
        .filter(variables::project_id.eq(pid))
        // The primary key order: a range scan, no sort.
        .order((variables::owner_kind.asc(), variables::owner_id.asc(), variables::var_key.asc()))
        .select((variables::owner_kind, variables::owner_id, variables::var_key, variables::var_value, variables::tier))
        .load_iter::<VarRow, diesel::connection::DefaultLoadingMode>(conn)?;
    for row in var_rows {
        let (kind, owner, key, value, tier) = row?;
        let value = raw_from_string(value)
            .map_err(|e| StoreError::Invalid(format!("variable {key:?} holds invalid JSON: {e}")))?;
        let var = Var { value, tier: Tier::from_i32(tier) };
        let index = match last {
            Some((k, i)) if k == (kind, owner) => i,
            _ => {
                let i = match OwnerKind::from_i32(kind) {
                    Some(OwnerKind::Project) => Some(0),
                    Some(OwnerKind::Group) => group_ix.get(&owner).copied(),
                    Some(OwnerKind::Host) => host_ix.get(&owner).copied(),
                    None => None,
                };
                last = Some(((kind, owner), i));
                i
            }
        };
        let target = match (OwnerKind::from_i32(kind), index) {
            (Some(OwnerKind::Project), _) => &mut all_vars,
            (Some(OwnerKind::Group), Some(i)) => &mut groups[i].vars,
            (Some(OwnerKind::Host), Some(i)) => &mut hosts[i].vars,
            _ => continue,
        };
        target.insert(key, var);
    }
    // Each owner's keys in byte order whatever the collation (a PostgreSQL
    // database in a language's collation, MariaDB's PAD SPACE): the output
    // is the same on every backend, and the inventory as of a past time
    // (super::history), rebuilt from the trail, orders them the same way.
    // Already sorted under C / binary collations: one pass, no sort.
    for vars in std::iter::once(&mut all_vars)
        .chain(groups.iter_mut().map(|g| &mut g.vars))
        .chain(hosts.iter_mut().map(|h| &mut h.vars))
    {
        if !vars.keys().is_sorted() {
            vars.sort_unstable_keys();
        }
    }
    Ok(Snapshot { project, all_vars, groups, hosts, depth_memo: Default::default() })
}
