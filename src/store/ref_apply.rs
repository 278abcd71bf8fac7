//! Writes what a config ref provides into its project: the only code that
//! writes a sync. One transaction holds everything (declared groups and
//! hosts, the ref's variables, its status), so a failure or a kill in the
//! middle leaves the previous state; a commit that changes nothing in the
//! inventory costs one small status write and no revision bump.
//!
//! Rules:
//! - the variables a ref owns are exactly its rows (`source_id` = ref id):
//!   keys it no longer provides are removed, and no other row is touched;
//! - a key the ref provides that another source (the API, an import or
//!   another ref) already set on the same owner fails the sync;
//! - a group or host the ref names must exist in the project or be declared
//!   by the ref's inventory files; declared ones are created (never removed:
//!   groups and hosts have no owner);
//! - a ref limited to a group touches only that group's subtree: declared
//!   top-level groups become its children, declared ungrouped hosts its
//!   members, and `group_vars/all` is refused;
//! - the secrets a ref owns (its vaulted values, decrypted with the
//!   project's vault passwords) are those it created (`created_by` =
//!   `config-ref:ID`): written in the same transaction, removed when the ref
//!   no longer provides them; a secret or a variable of another source under
//!   the same owner and name fails the sync, as for variables.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use indexmap::IndexMap;

use super::config_refs::{record_success, ConfigRef, SyncFailure, VarCounts};
use super::edit::begin_write;
use super::load::load_project;
use super::schema::{hosts, inventory_groups, variables};
use super::secrets::imported::{self as si, OwnerNames, PreparedKey, SecretCounts};
use super::secrets::{Secrets, SecretsError};
use super::{now_ms, project_by_id, DbConn, StoreError, CHUNK};
use crate::desired::{Desired, DesiredGroup, DesiredHost, DesiredSecret, SecretOwner};
use crate::model::{OwnVars, OwnerKind, Snapshot};

/// One owner's variables from a ref, and where they came from (for errors).
#[derive(Debug, Clone, Default)]
pub struct EntityVars {
    pub vars: OwnVars,
    /// Repository-relative file or directory that provided them.
    pub origin: String,
}

/// What a ref provides at one commit, as read from its tree.
#[derive(Debug, Clone, Default)]
pub struct RefPlan {
    /// Groups and hosts the ref's inventory files declare (structure only:
    /// their variables are in `groups`/`hosts`).
    pub declared: Desired,
    /// Where the declarations came from (the inventory directory).
    pub inventory_origin: String,
    pub all_vars: Option<EntityVars>,
    pub groups: IndexMap<String, EntityVars>,
    pub hosts: IndexMap<String, EntityVars>,
    /// Vaulted variables, decrypted: the ref's secrets (never also in the
    /// `vars` above).
    pub secrets: Vec<crate::desired::DesiredSecret>,
}

impl RefPlan {
    pub fn variable_count(&self) -> usize {
        self.all_vars.as_ref().map_or(0, |v| v.vars.len())
            + self.groups.values().map(|g| g.vars.len()).sum::<usize>()
            + self.hosts.values().map(|h| h.vars.len()).sum::<usize>()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefApplyError {
    /// The ref's content cannot be applied (unknown name, conflict, scope).
    #[error("{0}")]
    Failed(SyncFailure),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for RefApplyError {
    fn from(e: diesel::result::Error) -> Self {
        RefApplyError::Store(StoreError::Query(e))
    }
}

/// A refusal of the secrets store (a key provider that is down, a value it
/// refuses) fails the sync with its message; database errors stay such.
impl From<SecretsError> for RefApplyError {
    fn from(e: SecretsError) -> Self {
        match e {
            SecretsError::Store(s) => RefApplyError::Store(s),
            other => RefApplyError::Failed(SyncFailure::msg(format!("secrets: {other}"))),
        }
    }
}

impl super::tx::TxError for RefApplyError {
    fn is_transient(&self) -> bool {
        matches!(self, RefApplyError::Store(e) if e.is_transient())
    }
    fn from_store(e: StoreError) -> Self {
        RefApplyError::Store(e)
    }
}

/// What a successful sync changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub counts: VarCounts,
    /// Groups, hosts or relations were created or changed.
    pub structure: bool,
    pub secrets: SecretCounts,
}

type Key = (i32, i64, String);

/// The ref's scope: its group and the groups and hosts below it.
struct Scope {
    group: usize,
    groups: HashSet<usize>,
    hosts: HashSet<usize>,
}

fn scope_of(snap: &Snapshot, r: &ConfigRef) -> Result<Option<Scope>, SyncFailure> {
    let Some(gid) = r.group_id else {
        return Ok(None);
    };
    let g = snap
        .groups
        .iter()
        .position(|x| x.id == gid)
        .ok_or_else(|| SyncFailure::msg(format!("the ref's group (id {gid}) no longer exists")))?;
    let groups: HashSet<usize> = snap.subtree(g).into_iter().collect();
    let hosts = groups.iter().flat_map(|&x| snap.groups[x].hosts.iter().copied()).collect();
    Ok(Some(Scope { group: g, groups, hosts }))
}

/// Checks the plan against the project and builds the structural part to
/// merge. Returns it and whether anything in it is new.
fn structure(snap: &Snapshot, r: &ConfigRef, plan: &RefPlan) -> Result<(Desired, bool), SyncFailure> {
    let scope = scope_of(snap, r)?;
    let gix: HashMap<&str, usize> = snap.groups.iter().enumerate().map(|(i, g)| (g.name.as_str(), i)).collect();
    let hix: HashMap<&str, usize> = snap.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();
    let origin = plan.inventory_origin.as_str();
    let scope_name = |s: &Scope| snap.groups[s.group].name.clone();
    let mut out = Desired::default();
    let mut changed = false;

    let mut declared_groups: IndexMap<String, DesiredGroup> = plan.declared.groups.clone();
    // Vars for `ungrouped` need the group to exist, as the importer stores it.
    if plan.groups.contains_key("ungrouped") && !gix.contains_key("ungrouped") {
        declared_groups.entry("ungrouped".into()).or_default();
    }
    let mut next_all_position = snap.groups.iter().filter_map(|g| g.all_position).max().map_or(0, |p| p + 1);
    let child_of_declared: HashSet<&str> =
        declared_groups.values().flat_map(|g| g.children.iter().map(String::as_str)).collect();
    let member_of_declared: HashSet<&str> =
        declared_groups.values().flat_map(|g| g.hosts.iter().map(String::as_str)).collect();

    for (name, dg) in &declared_groups {
        let existing = gix.get(name.as_str()).copied();
        if let (Some(s), Some(i)) = (&scope, existing) {
            if !s.groups.contains(&i) {
                return Err(SyncFailure::at(
                    origin,
                    None,
                    format!(
                        "group {name:?} is outside the subtree of group {:?}, which this ref is limited to",
                        scope_name(s)
                    ),
                ));
            }
        }
        let mut g = DesiredGroup::default();
        match existing {
            Some(i) => {
                let cur = &snap.groups[i];
                g.priority = dg.priority.or(cur.priority);
                g.all_position = cur.all_position;
                if dg.priority.is_some() && dg.priority != cur.priority {
                    changed = true;
                }
                g.children = cur.children.iter().map(|&c| snap.groups[c].name.clone()).collect();
                g.hosts = cur.hosts.iter().map(|&h| snap.hosts[h].name.clone()).collect();
            }
            None => {
                changed = true;
                g.priority = dg.priority;
                if scope.is_none() && !child_of_declared.contains(name.as_str()) {
                    g.all_position = Some(next_all_position);
                    next_all_position += 1;
                }
            }
        }
        for c in &dg.children {
            if !g.children.contains(c) {
                g.children.push(c.clone());
                changed = true;
            }
        }
        for h in &dg.hosts {
            if !g.hosts.contains(h) {
                g.hosts.push(h.clone());
                changed = true;
            }
        }
        out.groups.insert(name.clone(), g);
    }

    for (name, dh) in &plan.declared.hosts {
        let existing = hix.get(name.as_str()).copied();
        if let (Some(s), Some(i)) = (&scope, existing) {
            if !s.hosts.contains(&i) {
                return Err(SyncFailure::at(
                    origin,
                    None,
                    format!(
                        "host {name:?} is outside the subtree of group {:?}, which this ref is limited to",
                        scope_name(s)
                    ),
                ));
            }
        }
        match existing {
            Some(i) => {
                let cur = &snap.hosts[i];
                if dh.ip_address.is_some() && dh.ip_address != cur.ip_address {
                    changed = true;
                }
                let cur_parent = cur.parent.map(|p| snap.hosts[p].name.clone());
                if dh.parent.is_some() && dh.parent != cur_parent {
                    changed = true;
                }
            }
            None => changed = true,
        }
        out.hosts.insert(
            name.clone(),
            DesiredHost { ip_address: dh.ip_address.clone(), parent: dh.parent.clone(), vars: OwnVars::default() },
        );
    }

    // A group ref hangs what it declares below its group.
    if let Some(s) = &scope {
        let top: Vec<String> =
            declared_groups.keys().filter(|n| !child_of_declared.contains(n.as_str())).cloned().collect();
        let loose: Vec<String> =
            plan.declared.hosts.keys().filter(|n| !member_of_declared.contains(n.as_str())).cloned().collect();
        if !top.is_empty() || !loose.is_empty() {
            let cur = &snap.groups[s.group];
            let entry = out.groups.entry(cur.name.clone()).or_insert_with(|| DesiredGroup {
                priority: cur.priority,
                all_position: cur.all_position,
                vars: OwnVars::default(),
                children: cur.children.iter().map(|&c| snap.groups[c].name.clone()).collect(),
                hosts: cur.hosts.iter().map(|&h| snap.hosts[h].name.clone()).collect(),
            });
            for c in top.into_iter().filter(|c| c != &cur.name) {
                if !entry.children.contains(&c) {
                    entry.children.push(c);
                    changed = true;
                }
            }
            for h in loose {
                if !entry.hosts.contains(&h) {
                    entry.hosts.push(h);
                    changed = true;
                }
            }
        }
    }

    // Every owner of the ref's variables must exist (or be declared) and be
    // in scope.
    if let (Some(s), Some(sec)) = (&scope, plan.secrets.iter().find(|x| x.owner == SecretOwner::Project)) {
        return Err(SyncFailure::at(
            &sec.file,
            sec.line,
            format!(
                "this ref is limited to group {:?}: it cannot set project-wide secrets (group_vars/all)",
                scope_name(s)
            ),
        ));
    }
    if let Some(all) = &plan.all_vars {
        if let Some(s) = &scope {
            if !all.vars.is_empty() {
                return Err(SyncFailure::at(
                    &all.origin,
                    None,
                    format!(
                        "this ref is limited to group {:?}: it cannot set project-wide variables (group_vars/all)",
                        scope_name(s)
                    ),
                ));
            }
        }
    }
    let scoped = |set: fn(&Scope) -> &HashSet<usize>| scope.as_ref().map(|s| (set(s), scope_name(s)));
    check_owners("group", &plan.groups, &gix, scoped(|s| &s.groups), |n| out.groups.contains_key(n))?;
    check_owners("host", &plan.hosts, &hix, scoped(|s| &s.hosts), |n| out.hosts.contains_key(n))?;
    Ok((out, changed))
}

/// Every group (host) the ref sets variables on must exist in the project or
/// be declared by the ref, and lie inside the ref's group subtree if it has one.
fn check_owners(
    what: &str,
    owners: &IndexMap<String, EntityVars>,
    index: &HashMap<&str, usize>,
    scope: Option<(&HashSet<usize>, String)>,
    declared: impl Fn(&str) -> bool,
) -> Result<(), SyncFailure> {
    for (name, ev) in owners {
        let message = match (index.get(name.as_str()), &scope) {
            (Some(i), Some((inside, group))) if !inside.contains(i) => {
                format!("{what} {name:?} is outside the subtree of group {group:?}, which this ref is limited to")
            }
            (Some(_), _) => continue,
            (None, _) if declared(name) => continue,
            (None, _) => {
                format!("no {what} named {name:?} in the project, and no inventory file of this ref declares it")
            }
        };
        return Err(SyncFailure::at(&ev.origin, None, message));
    }
    Ok(())
}

/// The differences between what the ref provides and the rows it owns.
#[derive(Default)]
struct VarDiff {
    insert: Vec<(Key, String, i32)>,
    update: Vec<(Key, String, i32)>,
    remove: Vec<Key>,
}

impl VarDiff {
    fn counts(&self) -> VarCounts {
        VarCounts { created: self.insert.len(), updated: self.update.len(), removed: self.remove.len() }
    }
}

/// Group and host ids by name.
type OwnerIds = (HashMap<String, i64>, HashMap<String, i64>);

fn owner_ids(conn: &mut DbConn, pid: i64) -> Result<OwnerIds, StoreError> {
    let groups = inventory_groups::table
        .filter(inventory_groups::project_id.eq(pid))
        .select((inventory_groups::name, inventory_groups::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    let hosts = hosts::table
        .filter(hosts::project_id.eq(pid))
        .select((hosts::name, hosts::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    Ok((groups, hosts))
}

/// Compares the plan's variables with the ref's rows. `snap` holds every
/// existing key (for the conflict check); owners are looked up by name in
/// `groups`/`hosts` (which include what the structure step created).
fn var_diff(
    conn: &mut DbConn,
    r: &ConfigRef,
    plan: &RefPlan,
    snap: &Snapshot,
    groups: &HashMap<String, i64>,
    hosts: &HashMap<String, i64>,
) -> Result<VarDiff, RefApplyError> {
    let pid = r.project_id;
    let owned: HashMap<Key, (String, i32)> = variables::table
        .filter(variables::project_id.eq(pid))
        .filter(variables::source_id.eq(r.id))
        .select((variables::owner_kind, variables::owner_id, variables::var_key, variables::var_value, variables::tier))
        .load::<(i32, i64, String, String, i32)>(conn)?
        .into_iter()
        .map(|(k, o, key, v, t)| ((k, o, key), (v, t)))
        .collect();

    // Every key that exists now, by owner, from the snapshot.
    let mut existing: HashSet<(i32, i64, &str)> = HashSet::new();
    existing.extend(snap.all_vars.keys().map(|k| (OwnerKind::Project as i32, pid, k.as_str())));
    for g in &snap.groups {
        existing.extend(g.vars.keys().map(|k| (OwnerKind::Group as i32, g.id, k.as_str())));
    }
    for h in &snap.hosts {
        existing.extend(h.vars.keys().map(|k| (OwnerKind::Host as i32, h.id, k.as_str())));
    }

    let mut owners: Vec<(OwnerKind, i64, &str, &EntityVars)> = Vec::new();
    if let Some(all) = &plan.all_vars {
        owners.push((OwnerKind::Project, pid, "all", all));
    }
    for (name, ev) in &plan.groups {
        let id = *groups.get(name).ok_or_else(|| StoreError::NotFound(format!("group {name:?}")))?;
        owners.push((OwnerKind::Group, id, name, ev));
    }
    for (name, ev) in &plan.hosts {
        let id = *hosts.get(name).ok_or_else(|| StoreError::NotFound(format!("host {name:?}")))?;
        owners.push((OwnerKind::Host, id, name, ev));
    }

    let mut diff = VarDiff::default();
    let mut wanted: HashSet<Key> = HashSet::new();
    for (kind, id, name, ev) in owners {
        for (key, var) in &ev.vars {
            let k: Key = (kind as i32, id, key.clone());
            let value = var.value.get();
            let tier = var.tier as i32;
            match owned.get(&k) {
                Some((v, t)) if v == value && *t == tier => {}
                Some(_) => diff.update.push((k.clone(), value.to_string(), tier)),
                None if existing.contains(&(kind as i32, id, key.as_str())) => {
                    let source: Option<i64> = variables::table
                        .filter(variables::project_id.eq(pid))
                        .filter(variables::owner_kind.eq(kind as i32))
                        .filter(variables::owner_id.eq(id))
                        .filter(variables::var_key.eq(key))
                        .select(variables::source_id)
                        .first::<Option<i64>>(conn)
                        .optional()?
                        .flatten();
                    let by = match source {
                        Some(s) => format!("by config ref {s}"),
                        None => "through the API or an import".to_string(),
                    };
                    let what = match kind {
                        OwnerKind::Project => "the project (group \"all\")".to_string(),
                        OwnerKind::Group => format!("group {name:?}"),
                        OwnerKind::Host => format!("host {name:?}"),
                    };
                    return Err(RefApplyError::Failed(SyncFailure::at(
                        &ev.origin,
                        None,
                        format!(
                            "variable {key:?} of {what} is already set {by}; a key has one source: remove it there, or from this ref"
                        ),
                    )));
                }
                None => diff.insert.push((k.clone(), value.to_string(), tier)),
            }
            wanted.insert(k);
        }
    }
    let mut remove: Vec<Key> = owned.into_keys().filter(|k| !wanted.contains(k)).collect();
    remove.sort();
    diff.remove = remove;
    Ok(diff)
}

fn write_vars(conn: &mut DbConn, r: &ConfigRef, diff: &VarDiff) -> Result<(), StoreError> {
    let pid = r.project_id;
    let now = now_ms();
    for chunk in diff.insert.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|((kind, owner, key), value, tier)| {
                (
                    variables::project_id.eq(pid),
                    variables::owner_kind.eq(*kind),
                    variables::owner_id.eq(*owner),
                    variables::var_key.eq(key.as_str()),
                    variables::var_value.eq(value.as_str()),
                    variables::tier.eq(*tier),
                    variables::source_id.eq(Some(r.id)),
                    variables::created_at.eq(now),
                    variables::updated_at.eq(now),
                )
            })
            .collect();
        batch_insert!(conn, variables::table, &rows)?;
    }
    for ((kind, owner, key), value, tier) in &diff.update {
        diesel::update(
            variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(*kind))
                .filter(variables::owner_id.eq(*owner))
                .filter(variables::var_key.eq(key))
                .filter(variables::source_id.eq(r.id)),
        )
        .set((variables::var_value.eq(value), variables::tier.eq(*tier), variables::updated_at.eq(now)))
        .execute(conn)?;
    }
    for (kind, owner, key) in &diff.remove {
        diesel::delete(
            variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(*kind))
                .filter(variables::owner_id.eq(*owner))
                .filter(variables::var_key.eq(key))
                .filter(variables::source_id.eq(r.id)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// The owner of each plain variable of the plan, with where it came from.
fn plain_owners(plan: &RefPlan) -> impl Iterator<Item = (SecretOwner, &EntityVars)> {
    let all = plan.all_vars.iter().map(|ev| (SecretOwner::Project, ev));
    let groups = plan.groups.iter().map(|(n, ev)| (SecretOwner::Group(n.clone()), ev));
    let hosts = plan.hosts.iter().map(|(n, ev)| (SecretOwner::Host(n.clone()), ev));
    all.chain(groups).chain(hosts)
}

/// True when the ref's stored secrets are exactly the plan's, values
/// included (read only, outside any write).
fn secrets_unchanged(
    conn: &mut DbConn,
    r: &ConfigRef,
    plan: &RefPlan,
    keys: Option<(&Secrets<'_>, &PreparedKey)>,
) -> Result<bool, RefApplyError> {
    let actor = si::ref_actor(r.id);
    let names = OwnerNames::load(conn, r.project_id)?;
    let (mine, others): (Vec<_>, Vec<_>) =
        si::project_secrets(conn, &names)?.into_iter().partition(|(_, m)| m.created_by == actor);
    // A plain value of the ref under another source's secret: a conflict
    // the write path reports.
    let others: HashSet<(SecretOwner, String)> = others.into_iter().map(|(o, m)| (o, m.name)).collect();
    if plain_owners(plan).any(|(o, ev)| ev.vars.keys().any(|k| others.contains(&(o.clone(), k.clone())))) {
        return Ok(false);
    }
    let mine: HashMap<(SecretOwner, String), _> = mine.into_iter().map(|(o, m)| ((o, m.name.clone()), m)).collect();
    if mine.len() != plan.secrets.len() {
        return Ok(false);
    }
    let Some((store, prepared)) = keys else {
        return Ok(plan.secrets.is_empty());
    };
    let warm = si::warm_only(store, prepared);
    for s in &plan.secrets {
        let (Some(m), Some((owner, _, _))) = (mine.get(&(s.owner.clone(), s.name.clone())), names.resolve(&s.owner))
        else {
            return Ok(false);
        };
        if !si::unchanged(conn, owner, m, s, &warm)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn secret_conflict(s: &DesiredSecret, message: String) -> RefApplyError {
    RefApplyError::Failed(SyncFailure::at(&s.file, s.line, message))
}

/// Inside the sync's transaction, after its variables: writes the plan's
/// secrets and removes those the ref no longer provides, failing on a key
/// another source holds (as a secret or as a variable).
fn write_ref_secrets(
    conn: &mut DbConn,
    r: &ConfigRef,
    plan: &RefPlan,
    keys: Option<(&Secrets<'_>, &PreparedKey)>,
) -> Result<SecretCounts, RefApplyError> {
    let actor = si::ref_actor(r.id);
    let pid = r.project_id;
    let names = OwnerNames::load(conn, pid)?;
    let existing = si::project_secrets(conn, &names)?;
    let by_key: HashMap<(SecretOwner, &str), &super::secrets::SecretMeta> =
        existing.iter().map(|(o, m)| ((o.clone(), m.name.as_str()), m)).collect();
    let other = |by: &str| match by.strip_prefix("config-ref:") {
        Some(id) => format!("by config ref {id}"),
        None => format!("through the API or an import ({by})"),
    };
    for (o, ev) in plain_owners(plan) {
        for key in ev.vars.keys() {
            match by_key.get(&(o.clone(), key.as_str())) {
                Some(m) if m.created_by != actor => {
                    return Err(RefApplyError::Failed(SyncFailure::at(
                        &ev.origin,
                        None,
                        format!(
                            "variable {key:?} of {o}: a secret of that name exists, created {}; a key has one \
                             source: delete the secret, or remove the key from this ref",
                            other(&m.created_by)
                        ),
                    )));
                }
                _ => {}
            }
        }
    }
    let mut counts = SecretCounts::default();
    if !plan.secrets.is_empty() {
        let (store, prepared) = keys.ok_or_else(|| {
            RefApplyError::Failed(SyncFailure::msg(
                "the ref holds vaulted values, and no secrets key provider is set up",
            ))
        })?;
        let warm = store.warm(conn, pid, prepared)?;
        for s in &plan.secrets {
            let (owner, vk, id) = names.resolve(&s.owner).ok_or_else(|| {
                secret_conflict(
                    s,
                    format!("no {} in the project, and no inventory file of this ref declares it", s.owner),
                )
            })?;
            if let Some(m) = by_key.get(&(s.owner.clone(), s.name.as_str())) {
                if m.created_by != actor {
                    return Err(secret_conflict(
                        s,
                        format!(
                            "secret {:?} of {} already exists, created {}; a key has one source: delete it there, \
                             or remove it from this ref",
                            s.name,
                            s.owner,
                            other(&m.created_by)
                        ),
                    ));
                }
            }
            // The ref's own plain row of this key went with its variables.
            let source: Option<Option<i64>> = variables::table
                .filter(variables::project_id.eq(pid))
                .filter(variables::owner_kind.eq(vk as i32))
                .filter(variables::owner_id.eq(id))
                .filter(variables::var_key.eq(&s.name))
                .select(variables::source_id)
                .first(conn)
                .optional()?;
            if let Some(source) = source {
                let by = match source {
                    Some(s) => format!("by config ref {s}"),
                    None => "through the API or an import".to_string(),
                };
                return Err(secret_conflict(
                    s,
                    format!(
                        "variable {:?} of {} is already set {by}, and this ref holds it vaulted; a key has one \
                         source: remove it there, or from this ref",
                        s.name, s.owner
                    ),
                ));
            }
            si::write_one(conn, store, &warm, owner, s, &actor, &mut counts)?;
        }
    }
    let wanted: HashSet<(&SecretOwner, &str)> = plan.secrets.iter().map(|s| (&s.owner, s.name.as_str())).collect();
    for (o, m) in &existing {
        if m.created_by == actor && !wanted.contains(&(o, m.name.as_str())) {
            let (owner, _, _) = names.resolve(o).expect("listed owners exist");
            super::secrets::delete(conn, owner, &m.name, &actor)?;
            counts.removed += 1;
        }
    }
    Ok(counts)
}

/// Applies `plan` (read from `commit`) for ref `r`, whose lease `holder`
/// holds, and records the success in the same transaction. `secrets` is
/// needed when the plan holds secrets (the key provider is called before
/// the transaction).
pub fn apply_ref(
    conn: &mut DbConn,
    r: &ConfigRef,
    plan: &RefPlan,
    commit: &str,
    holder: &str,
    started: i64,
    secrets: Option<&Secrets<'_>>,
) -> Result<Applied, RefApplyError> {
    let project =
        project_by_id(conn, r.project_id)?.ok_or_else(|| StoreError::NotFound(format!("project {}", r.project_id)))?;
    let prepared = match secrets {
        Some(s) if !plan.secrets.is_empty() => Some(s.prepare_key(conn, Some(r.project_id))?),
        _ => None,
    };
    let keys = secrets.zip(prepared.as_ref());

    // Read first, outside any write lock: most new commits change nothing
    // that is stored (a README, another path), and those cost one status
    // write without a revision bump.
    let snap = load_project(conn, project.clone())?;
    let (_, structure_changed) = structure(&snap, r, plan).map_err(RefApplyError::Failed)?;
    if !structure_changed {
        let (groups, hosts) = owner_ids(conn, r.project_id)?;
        let diff = var_diff(conn, r, plan, &snap, &groups, &hosts)?;
        if diff.counts().is_zero() && secrets_unchanged(conn, r, plan, keys)? {
            super::tx::write(conn, |conn| record_success(conn, r.id, holder, started, commit, VarCounts::default()))?;
            return Ok(Applied::default());
        }
    }

    let actor = super::audit::Actor::sync(&r.git_ref, &r.url, commit);
    super::audit::with_actor(actor, || {
        super::tx::write(conn, |conn| {
            // The project's write lock first, then everything again under it.
            begin_write(conn, r.project_id).map_err(RefApplyError::Store)?;
            let project = project_by_id(conn, r.project_id)?
                .ok_or_else(|| StoreError::NotFound(format!("project {}", r.project_id)))?;
            let snap = load_project(conn, project.clone())?;
            let (desired, structure_changed) = structure(&snap, r, plan).map_err(RefApplyError::Failed)?;
            if structure_changed {
                super::apply::apply(conn, &project.name, &desired, false, &|_, _, _| {})?;
            }
            let (groups, hosts) = owner_ids(conn, r.project_id)?;
            let diff = var_diff(conn, r, plan, &snap, &groups, &hosts)?;
            write_vars(conn, r, &diff)?;
            let secrets = write_ref_secrets(conn, r, plan, keys)?;
            let counts = diff.counts();
            record_success(conn, r.id, holder, started, commit, counts)?;
            Ok(Applied { counts, structure: structure_changed, secrets })
        })
    })
}

/// Protects ref-owned rows from an import: the keys refs own are taken out
/// of `desired` (the ref's value stays) and, when the import replaces the
/// project, put back with their current value so that they are not
/// removed. Returns how many keys were left to their refs.
pub fn keep_ref_owned(
    conn: &mut DbConn,
    project: &str,
    desired: &mut Desired,
    replace: bool,
) -> Result<usize, StoreError> {
    let Some(p) = super::find_project(conn, project)? else {
        return Ok(0);
    };
    let rows: Vec<(i32, i64, String, String, i32)> = variables::table
        .filter(variables::project_id.eq(p.id))
        .filter(variables::source_id.is_not_null())
        .select((variables::owner_kind, variables::owner_id, variables::var_key, variables::var_value, variables::tier))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (groups, hosts) = owner_ids(conn, p.id)?;
    let group_names: HashMap<i64, String> = groups.into_iter().map(|(n, i)| (i, n)).collect();
    let host_names: HashMap<i64, String> = hosts.into_iter().map(|(n, i)| (i, n)).collect();
    let mut kept = 0;
    for (kind, owner, key, value, tier) in rows {
        let target: Option<&mut OwnVars> = match OwnerKind::from_i32(kind) {
            Some(OwnerKind::Project) => Some(&mut desired.all_vars),
            Some(OwnerKind::Group) => {
                group_names.get(&owner).and_then(|n| desired.groups.get_mut(n)).map(|g| &mut g.vars)
            }
            Some(OwnerKind::Host) => host_names.get(&owner).and_then(|n| desired.hosts.get_mut(n)).map(|h| &mut h.vars),
            None => None,
        };
        let Some(vars) = target else {
            continue;
        };
        let had = vars.shift_remove(&key).is_some();
        if replace {
            let raw = crate::model::raw_from_string(value)
                .map_err(|e| StoreError::Invalid(format!("variable {key:?} holds invalid JSON: {e}")))?;
            vars.insert(key, crate::model::Var { value: raw, tier: crate::model::Tier::from_i32(tier) });
        }
        if had {
            kept += 1;
        }
    }
    Ok(kept)
}
