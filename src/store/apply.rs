//! Writes a [`Desired`] inventory into a project: the only code that writes an
//! import (and later a sync). One transaction; it computes the difference
//! with what is stored and writes only that, so applying the same input twice
//! writes nothing the second time. Groups and hosts it deletes take their
//! secrets with them (secrets themselves are written by
//! [`super::secrets::imported`]).

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;

use super::load::load_project;
use super::schema::{group_edges, host_labels, hosts, inventory_groups, memberships, variables};
use super::{ensure_project, now_ms, DbConn, StoreError, CHUNK};
use crate::desired::Desired;
use crate::model::{OwnVars, OwnerKind};

#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        self.created + self.updated + self.removed == 0
    }
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub project: String,
    pub groups: Counts,
    pub hosts: Counts,
    pub variables: Counts,
    /// Group nesting edges and host memberships (updated is always 0).
    pub relations: Counts,
}

impl Summary {
    pub fn is_noop(&self) -> bool {
        self.groups.is_zero() && self.hosts.is_zero() && self.variables.is_zero() && self.relations.is_zero()
    }
}

/// Progress callbacks for long imports: (stage, done, total).
pub type Progress<'a> = &'a dyn Fn(&str, usize, usize);

#[derive(Insertable)]
#[diesel(table_name = inventory_groups, treat_none_as_default_value = false)]
struct NewGroup<'a> {
    project_id: i64,
    name: &'a str,
    kind: &'a str,
    priority: Option<i32>,
    all_position: Option<i32>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = hosts, treat_none_as_default_value = false)]
struct NewHost<'a> {
    project_id: i64,
    name: &'a str,
    ip_address: Option<&'a str>,
    active: bool,
    created_at: i64,
    updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = variables)]
struct NewVar<'a> {
    project_id: i64,
    owner_kind: i32,
    owner_id: i64,
    var_key: &'a str,
    var_value: &'a str,
    tier: i32,
    created_at: i64,
    updated_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = group_edges)]
struct NewEdge {
    parent_id: i64,
    child_id: i64,
    position: i32,
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
struct NewMembership {
    group_id: i64,
    host_id: i64,
    position: i32,
}

fn priority_i32(p: Option<i64>, group: &str) -> Result<Option<i32>, StoreError> {
    p.map(|v| {
        i32::try_from(v)
            .map_err(|_| StoreError::Invalid(format!("group {group:?}: ansible_group_priority {v} is out of range")))
    })
    .transpose()
}

fn add_counts(into: &mut Counts, c: Counts) {
    into.created += c.created;
    into.updated += c.updated;
    into.removed += c.removed;
}

/// Brings a (pair -> position) relation table from `old` to `want`: inserts
/// the missing pairs, moves the ones whose position changed, and (with
/// `replace`) deletes the rest. `change` updates a pair's position (`Some`)
/// or deletes it (`None`).
fn sync_relation(
    conn: &mut DbConn,
    old: &HashMap<(i64, i64), i32>,
    want: &HashMap<(i64, i64), i32>,
    replace: bool,
    insert: impl Fn(&mut DbConn, &[(i64, i64, i32)]) -> QueryResult<usize>,
    change: impl Fn(&mut DbConn, (i64, i64), Option<i32>) -> QueryResult<usize>,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    let mut rows: Vec<(i64, i64, i32)> =
        want.iter().filter(|(k, _)| !old.contains_key(*k)).map(|(&(a, b), &pos)| (a, b, pos)).collect();
    rows.sort_unstable();
    for chunk in rows.chunks(CHUNK) {
        counts.created += insert(conn, chunk)?;
    }
    for (k, &pos) in want {
        if old.get(k).is_some_and(|&p| p != pos) {
            counts.updated += change(conn, *k, Some(pos))?;
        }
    }
    if replace {
        for k in old.keys().filter(|k| !want.contains_key(*k)) {
            counts.removed += change(conn, *k, None)?;
        }
    }
    Ok(counts)
}

/// Finds a cycle in parent -> child edges; returns it as a list of nodes.
pub fn find_cycle<N: Copy + Eq + std::hash::Hash + Ord>(edges: &[(N, N)]) -> Option<Vec<N>> {
    let mut adj: HashMap<N, Vec<N>> = HashMap::new();
    for &(p, c) in edges {
        adj.entry(p).or_default().push(c);
    }
    let mut nodes: Vec<N> = adj.keys().copied().collect();
    nodes.sort();
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state: HashMap<N, u8> = HashMap::new();
    for start in nodes {
        if state.get(&start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path = vec![start];
        let mut iters = vec![0usize];
        state.insert(start, 1);
        while let Some(&node) = path.last() {
            let i = *iters.last().expect("parallel stacks");
            let next = adj.get(&node).and_then(|v| v.get(i)).copied();
            *iters.last_mut().expect("parallel stacks") += 1;
            match next {
                Some(n) => match state.get(&n).copied().unwrap_or(0) {
                    0 => {
                        state.insert(n, 1);
                        path.push(n);
                        iters.push(0);
                    }
                    1 => {
                        let from = path.iter().position(|&x| x == n).expect("on path");
                        let mut cycle = path[from..].to_vec();
                        cycle.push(n);
                        return Some(cycle);
                    }
                    _ => {}
                },
                None => {
                    state.insert(node, 2);
                    path.pop();
                    iters.pop();
                }
            }
        }
    }
    None
}

fn delete_vars_of(conn: &mut DbConn, pid: i64, kind: OwnerKind, ids: &[i64]) -> Result<usize, StoreError> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        n += diesel::delete(
            variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(kind as i32))
                .filter(variables::owner_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    Ok(n)
}

/// Applies `desired` to project `project` (created if missing). Without
/// `replace` the input is merged in (nothing absent from it is removed);
/// with it the project ends up matching the input exactly.
pub fn apply(
    conn: &mut DbConn,
    project: &str,
    desired: &Desired,
    replace: bool,
    progress: Progress,
) -> Result<Summary, StoreError> {
    super::tx::write(conn, |conn| apply_in_tx(conn, project, desired, replace, progress))
}

fn apply_in_tx(
    conn: &mut DbConn,
    project: &str,
    desired: &Desired,
    replace: bool,
    progress: Progress,
) -> Result<Summary, StoreError> {
    let now = now_ms();
    let project = ensure_project(conn, project)?;
    let pid = project.id;
    let mut summary = Summary { project: project.name.clone(), ..Summary::default() };
    let snap = load_project(conn, project)?;
    super::audit::track_snapshot(conn, &snap, snap.project.revision)?;

    // Groups.
    let existing_groups: HashMap<&str, usize> =
        snap.groups.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    let mut new_groups = Vec::new();
    for (name, g) in &desired.groups {
        let priority = priority_i32(g.priority, name)?;
        match existing_groups.get(name.as_str()) {
            None => new_groups.push(NewGroup {
                project_id: pid,
                name,
                kind: "",
                priority,
                all_position: g.all_position,
                created_at: now,
                updated_at: now,
            }),
            Some(&i) if snap.groups[i].priority != g.priority || snap.groups[i].all_position != g.all_position => {
                diesel::update(inventory_groups::table.find(snap.groups[i].id))
                    .set((
                        inventory_groups::priority.eq(priority),
                        inventory_groups::all_position.eq(g.all_position),
                        inventory_groups::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                summary.groups.updated += 1;
            }
            Some(_) => {}
        }
    }
    for chunk in new_groups.chunks(CHUNK) {
        summary.groups.created += batch_insert!(conn, inventory_groups::table, chunk)?;
    }
    if replace {
        let gone: Vec<i64> =
            snap.groups.iter().filter(|g| !desired.groups.contains_key(&g.name)).map(|g| g.id).collect();
        summary.variables.removed += delete_vars_of(conn, pid, OwnerKind::Group, &gone)?;
        super::secrets::imported::delete_owners(conn, pid, crate::secrets::OwnerKind::Group, &gone)?;
        for chunk in gone.chunks(CHUNK) {
            summary.groups.removed +=
                diesel::delete(inventory_groups::table.filter(inventory_groups::id.eq_any(chunk))).execute(conn)?;
        }
    }
    let group_ids: HashMap<String, i64> = inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .select((inventory_groups::name, inventory_groups::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    progress("groups", desired.groups.len(), desired.groups.len());

    // Hosts.
    let existing_hosts: HashMap<&str, usize> =
        snap.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
    let mut new_hosts = Vec::new();
    for (name, h) in &desired.hosts {
        match existing_hosts.get(name.as_str()) {
            None => new_hosts.push(NewHost {
                project_id: pid,
                name,
                ip_address: h.ip_address.as_deref(),
                active: true,
                created_at: now,
                updated_at: now,
            }),
            Some(&i) => {
                let cur = &snap.hosts[i];
                let want_ip =
                    if replace || h.ip_address.is_some() { h.ip_address.clone() } else { cur.ip_address.clone() };
                if want_ip != cur.ip_address {
                    diesel::update(hosts::table.find(cur.id))
                        .set((hosts::ip_address.eq(want_ip), hosts::updated_at.eq(now)))
                        .execute(conn)?;
                    summary.hosts.updated += 1;
                }
            }
        }
    }
    let total_hosts = new_hosts.len();
    for (n, chunk) in new_hosts.chunks(CHUNK).enumerate() {
        summary.hosts.created += batch_insert!(conn, hosts::table, chunk)?;
        progress("hosts", ((n + 1) * CHUNK).min(total_hosts), total_hosts);
    }
    if replace {
        let gone: Vec<i64> = snap.hosts.iter().filter(|h| !desired.hosts.contains_key(&h.name)).map(|h| h.id).collect();
        summary.variables.removed += delete_vars_of(conn, pid, OwnerKind::Host, &gone)?;
        super::secrets::imported::delete_owners(conn, pid, crate::secrets::OwnerKind::Host, &gone)?;
        for chunk in gone.chunks(CHUNK) {
            diesel::delete(host_labels::table.filter(host_labels::host_id.eq_any(chunk))).execute(conn)?;
            summary.hosts.removed += diesel::delete(hosts::table.filter(hosts::id.eq_any(chunk))).execute(conn)?;
        }
    }
    let host_ids: HashMap<String, i64> = hosts::table
        .filter(hosts::project_id.eq(pid))
        .select((hosts::name, hosts::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    let host_id_set: HashSet<i64> = host_ids.values().copied().collect();
    let group_id_set: HashSet<i64> = group_ids.values().copied().collect();
    let host_names: HashMap<i64, &str> = host_ids.iter().map(|(n, &i)| (i, n.as_str())).collect();

    // Parent hosts, checked for cycles over the final mapping.
    let mut parent_of: HashMap<i64, Option<i64>> = HashMap::new();
    for h in &snap.hosts {
        if host_id_set.contains(&h.id) {
            parent_of.insert(h.id, h.parent.map(|p| snap.hosts[p].id).filter(|p| host_id_set.contains(p)));
        }
    }
    let mut parent_updates = Vec::new();
    for (name, h) in &desired.hosts {
        let id = host_ids[name];
        let want = match &h.parent {
            Some(p) => Some(*host_ids.get(p).ok_or_else(|| {
                StoreError::Invalid(format!("host {name:?}: parent host {p:?} is not in the inventory"))
            })?),
            None if replace => None,
            None => parent_of.get(&id).copied().flatten(),
        };
        if want == Some(id) {
            return Err(StoreError::Invalid(format!("host {name:?} cannot be its own parent")));
        }
        if parent_of.get(&id).copied().flatten() != want {
            parent_updates.push((id, want));
        }
        parent_of.insert(id, want);
    }
    let parent_edges: Vec<(i64, i64)> = parent_of.iter().filter_map(|(&c, &p)| p.map(|p| (p, c))).collect();
    if let Some(cycle) = find_cycle(&parent_edges) {
        let names: Vec<&str> = cycle.iter().map(|i| host_names[i]).collect();
        return Err(StoreError::Invalid(format!("parent hosts form a cycle: {}", names.join(" -> "))));
    }
    for (id, parent) in &parent_updates {
        diesel::update(hosts::table.find(*id))
            .set((hosts::parent_id.eq(*parent), hosts::updated_at.eq(now)))
            .execute(conn)?;
    }
    let newly_created: HashSet<&str> = new_hosts.iter().map(|h| h.name).collect();
    summary.hosts.updated += parent_updates.iter().filter(|(id, _)| !newly_created.contains(host_names[id])).count();

    // Group nesting and membership, with their input order.
    let old_edges: HashMap<(i64, i64), i32> = group_edges::table
        .inner_join(inventory_groups::table.on(inventory_groups::id.eq(group_edges::child_id)))
        .filter(inventory_groups::project_id.eq(pid))
        .select((group_edges::parent_id, group_edges::child_id, group_edges::position))
        .load::<(i64, i64, i32)>(conn)?
        .into_iter()
        .map(|(p, c, pos)| ((p, c), pos))
        .collect();
    let mut want_edges: HashMap<(i64, i64), i32> = HashMap::new();
    for (p, g) in &desired.groups {
        for (pos, c) in g.children.iter().enumerate() {
            let child = group_ids.get(c).ok_or_else(|| {
                StoreError::Invalid(format!("group {p:?}: child group {c:?} is not in the inventory"))
            })?;
            want_edges.insert((group_ids[p], *child), pos as i32);
        }
    }
    let final_edges: Vec<(i64, i64)> = if replace {
        want_edges.keys().copied().collect()
    } else {
        old_edges.keys().chain(want_edges.keys()).copied().collect::<HashSet<_>>().into_iter().collect()
    };
    if let Some(cycle) = find_cycle(&final_edges) {
        let by_id: HashMap<i64, &str> = group_ids.iter().map(|(n, &i)| (i, n.as_str())).collect();
        let names: Vec<&str> = cycle.iter().map(|i| by_id[i]).collect();
        return Err(StoreError::Invalid(format!("group nesting forms a cycle: {}", names.join(" -> "))));
    }
    let rel = sync_relation(
        conn,
        &old_edges,
        &want_edges,
        replace,
        |conn, rows: &[(i64, i64, i32)]| {
            let rows: Vec<NewEdge> =
                rows.iter().map(|&(parent_id, child_id, position)| NewEdge { parent_id, child_id, position }).collect();
            batch_insert!(conn, group_edges::table, &rows)
        },
        |conn, (p, c), pos| match pos {
            Some(pos) => {
                diesel::update(group_edges::table.find((p, c))).set(group_edges::position.eq(pos)).execute(conn)
            }
            None => diesel::delete(group_edges::table.find((p, c))).execute(conn),
        },
    )?;
    add_counts(&mut summary.relations, rel);

    let old_members: HashMap<(i64, i64), i32> = memberships::table
        .inner_join(hosts::table)
        .filter(hosts::project_id.eq(pid))
        .select((memberships::group_id, memberships::host_id, memberships::position))
        .load::<(i64, i64, i32)>(conn)?
        .into_iter()
        .map(|(g, h, pos)| ((g, h), pos))
        .collect();
    let mut want_members: HashMap<(i64, i64), i32> = HashMap::new();
    for (g, d) in &desired.groups {
        for (pos, h) in d.hosts.iter().enumerate() {
            let host = host_ids
                .get(h)
                .ok_or_else(|| StoreError::Invalid(format!("group {g:?}: host {h:?} is not in the inventory")))?;
            want_members.insert((group_ids[g], *host), pos as i32);
        }
    }
    let rel = sync_relation(
        conn,
        &old_members,
        &want_members,
        replace,
        |conn, rows: &[(i64, i64, i32)]| {
            let rows: Vec<NewMembership> = rows
                .iter()
                .map(|&(group_id, host_id, position)| NewMembership { group_id, host_id, position })
                .collect();
            batch_insert!(conn, memberships::table, &rows)
        },
        |conn, (g, h), pos| match pos {
            Some(pos) => {
                diesel::update(memberships::table.find((g, h))).set(memberships::position.eq(pos)).execute(conn)
            }
            None => diesel::delete(memberships::table.find((g, h))).execute(conn),
        },
    )?;
    add_counts(&mut summary.relations, rel);

    // Variables.
    let mut old_vars: HashMap<(i32, i64, &str), (&str, i32)> = HashMap::new();
    let mut owners: Vec<(OwnerKind, i64, &OwnVars)> = vec![(OwnerKind::Project, pid, &snap.all_vars)];
    owners
        .extend(snap.groups.iter().filter(|g| group_id_set.contains(&g.id)).map(|g| (OwnerKind::Group, g.id, &g.vars)));
    owners.extend(snap.hosts.iter().filter(|h| host_id_set.contains(&h.id)).map(|h| (OwnerKind::Host, h.id, &h.vars)));
    for (kind, id, vars) in owners {
        for (k, v) in vars {
            old_vars.insert((kind as i32, id, k.as_str()), (v.value.get(), v.tier as i32));
        }
    }
    let mut want_vars: Vec<(OwnerKind, i64, &OwnVars)> = vec![(OwnerKind::Project, pid, &desired.all_vars)];
    want_vars.extend(desired.groups.iter().map(|(n, g)| (OwnerKind::Group, group_ids[n], &g.vars)));
    want_vars.extend(desired.hosts.iter().map(|(n, h)| (OwnerKind::Host, host_ids[n], &h.vars)));
    let mut new_vars = Vec::new();
    let mut wanted_keys: HashSet<(i32, i64, &str)> = HashSet::new();
    for (kind, id, vars) in &want_vars {
        for (k, v) in vars.iter() {
            let key = (*kind as i32, *id, k.as_str());
            wanted_keys.insert(key);
            match old_vars.get(&key) {
                None => new_vars.push(NewVar {
                    project_id: pid,
                    owner_kind: *kind as i32,
                    owner_id: *id,
                    var_key: k,
                    var_value: v.value.get(),
                    tier: v.tier as i32,
                    created_at: now,
                    updated_at: now,
                }),
                Some(&(value, tier)) if value != v.value.get() || tier != v.tier as i32 => {
                    diesel::update(
                        variables::table
                            .filter(variables::project_id.eq(pid))
                            .filter(variables::owner_kind.eq(key.0))
                            .filter(variables::owner_id.eq(key.1))
                            .filter(variables::var_key.eq(key.2)),
                    )
                    .set((
                        variables::var_value.eq(v.value.get()),
                        variables::tier.eq(v.tier as i32),
                        variables::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                    summary.variables.updated += 1;
                }
                Some(_) => {}
            }
        }
    }
    let total_vars = new_vars.len();
    for (n, chunk) in new_vars.chunks(CHUNK).enumerate() {
        summary.variables.created += batch_insert!(conn, variables::table, chunk)?;
        progress("variables", ((n + 1) * CHUNK).min(total_vars), total_vars);
    }
    if replace {
        for (kind, id, key) in old_vars.keys().filter(|k| !wanted_keys.contains(*k)) {
            summary.variables.removed += diesel::delete(
                variables::table
                    .filter(variables::project_id.eq(pid))
                    .filter(variables::owner_kind.eq(*kind))
                    .filter(variables::owner_id.eq(*id))
                    .filter(variables::var_key.eq(*key)),
            )
            .execute(conn)?;
        }
    }
    if !summary.is_noop() {
        super::bump_revision(conn, pid)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::find_cycle;

    #[test]
    fn cycles() {
        assert_eq!(find_cycle(&[(1, 2), (2, 3)]), None);
        assert_eq!(find_cycle(&[(1, 2), (2, 3), (3, 1)]), Some(vec![1, 2, 3, 1]));
        assert_eq!(find_cycle(&[(5, 5)]), Some(vec![5, 5]));
        assert_eq!(find_cycle(&[(1, 2), (1, 3), (2, 4), (3, 4)]), None);
    }
}
