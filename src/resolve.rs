//! Ansible's inventory variable precedence, as a pure function of a
//! [`Snapshot`]. No database, no I/O: the store loads, this decides.
//!
//! Order, lowest to highest (ansible-core `VariableManager.get_vars` with the
//! default `VARIABLE_PRECEDENCE`, then `Host.get_vars` and host_vars):
//! inline `all` vars, inline vars of each group sorted by (depth,
//! `ansible_group_priority`, name), `group_vars/all` files, `group_vars/*`
//! files in the same group order, inline host vars, `host_vars/*` files.
//! A later value replaces an earlier one whole (dicts are not merged).

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::{OwnVars, Snapshot, Tier};

/// Who supplied a resolved value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    All,
    Group(usize),
    Host(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub value: &'a RawValue,
    pub owner: Owner,
    pub tier: Tier,
}

pub type ResolvedVars<'a> = IndexMap<&'a str, Resolved<'a>>;

/// The part of a host's resolution that depends only on its groups; shared by
/// every host with the same direct groups (most hosts of a fleet).
pub type GroupPart<'a> = Rc<ResolvedVars<'a>>;

/// One owner's "blame" entry, for consumers that want to know where a value came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Blame {
    /// `all`, `group` or `host`.
    pub owner_type: &'static str,
    pub owner: String,
    pub tier: Tier,
}

pub struct Resolver<'a> {
    snap: &'a Snapshot,
    depth: &'a [u32],
    ungrouped: Option<usize>,
    cache: HashMap<Vec<usize>, GroupPart<'a>, foldhash::fast::RandomState>,
}

fn overlay<'a>(out: &mut ResolvedVars<'a>, vars: &'a OwnVars, tier: Tier, owner: Owner) {
    for (k, v) in vars.iter().filter(|(_, v)| v.tier == tier) {
        out.insert(k.as_str(), Resolved { value: &v.value, owner, tier });
    }
}

impl<'a> Resolver<'a> {
    pub fn new(snap: &'a Snapshot) -> Self {
        Resolver { snap, depth: snap.depths(), ungrouped: snap.group_index("ungrouped"), cache: HashMap::default() }
    }

    pub fn snapshot(&self) -> &'a Snapshot {
        self.snap
    }

    /// The host's direct groups as Ansible ends up with them: a host with no
    /// group is in `ungrouped`, and one with other groups is taken out of it
    /// (`InventoryData.reconcile_inventory`).
    pub fn effective_groups(&self, host: usize) -> Vec<usize> {
        let direct = &self.snap.hosts[host].groups;
        match self.ungrouped {
            Some(u) => {
                let others: Vec<usize> = direct.iter().copied().filter(|&g| g != u).collect();
                if others.is_empty() {
                    vec![u]
                } else {
                    others
                }
            }
            None => direct.clone(),
        }
    }

    /// The host's groups and all their ancestors (without `all`), in
    /// Ansible's `sort_groups` order: depth, then priority, then name.
    pub fn sorted_ancestry(&self, direct: &[usize]) -> Vec<usize> {
        let mut seen = vec![false; self.snap.groups.len()];
        let mut stack: Vec<usize> = direct.to_vec();
        let mut all = Vec::new();
        while let Some(g) = stack.pop() {
            if !std::mem::replace(&mut seen[g], true) {
                all.push(g);
                stack.extend(self.snap.groups[g].parents.iter().copied());
            }
        }
        all.sort_by(|&a, &b| {
            let (ga, gb) = (&self.snap.groups[a], &self.snap.groups[b]);
            (self.depth[a], ga.priority.unwrap_or(1), &ga.name).cmp(&(
                self.depth[b],
                gb.priority.unwrap_or(1),
                &gb.name,
            ))
        });
        all
    }

    /// Everything a host gets from `all` and its groups, before its own vars.
    pub fn group_part(&mut self, host: usize) -> GroupPart<'a> {
        let direct = self.effective_groups(host);
        if let Some(p) = self.cache.get(&direct) {
            return p.clone();
        }
        let order = self.sorted_ancestry(&direct);
        let snap = self.snap;
        let mut out = ResolvedVars::new();
        for tier in [Tier::Inventory, Tier::VarsFile] {
            overlay(&mut out, &snap.all_vars, tier, Owner::All);
            for &g in &order {
                overlay(&mut out, &snap.groups[g].vars, tier, Owner::Group(g));
            }
        }
        let part = Rc::new(out);
        self.cache.insert(direct, part.clone());
        part
    }

    /// The host's variables exactly as `ansible-inventory --list` shows them
    /// in `_meta.hostvars`, with the owner of each.
    pub fn resolve(&mut self, host: usize) -> ResolvedVars<'a> {
        let mut out = (*self.group_part(host)).clone();
        let vars = &self.snap.hosts[host].vars;
        overlay(&mut out, vars, Tier::Inventory, Owner::Host(host));
        overlay(&mut out, vars, Tier::VarsFile, Owner::Host(host));
        out
    }

    /// One key of the resolved map, without building the rest.
    pub fn resolve_key(&mut self, host: usize, key: &str) -> Option<Resolved<'a>> {
        let h = &self.snap.hosts[host];
        if let Some(v) = h.vars.get(key) {
            return Some(Resolved { value: &v.value, owner: Owner::Host(host), tier: v.tier });
        }
        self.group_part(host).get(key).copied()
    }

    pub fn blame(&self, owner: Owner, tier: Tier) -> Blame {
        let (owner_type, name) = match owner {
            Owner::All => ("all", "all".to_string()),
            Owner::Group(g) => ("group", self.snap.groups[g].name.clone()),
            Owner::Host(h) => ("host", self.snap.hosts[h].name.clone()),
        };
        Blame { owner_type, owner: name, tier }
    }
}
