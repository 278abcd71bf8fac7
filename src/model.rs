//! Plain inventory types shared by the store, the resolver, the renderer and
//! the importers. A [`Snapshot`] is one project's whole inventory in memory,
//! indexed so that resolution never goes back to the database.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::value::RawValue;

/// A variable value: JSON text exactly as stored. Kept raw so that rendering
/// copies bytes instead of parsing and re-serializing 100,000 values.
pub type Raw = Box<RawValue>;

/// Which of Ansible's two inventory tiers a variable lives in. Ansible ranks
/// every `group_vars/` (`host_vars/`) file value above every inline group
/// (host) value, whatever the group depth, so the tier is part of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Variables written in the inventory itself (or set through Craton's API).
    Inventory = 0,
    /// Variables from `group_vars/` and `host_vars/` files.
    VarsFile = 1,
}

impl Tier {
    pub fn from_i32(v: i32) -> Tier {
        if v == 1 {
            Tier::VarsFile
        } else {
            Tier::Inventory
        }
    }
}

/// The owner kinds of a variable row (`variables.owner_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Project = 0,
    Group = 1,
    Host = 2,
}

impl OwnerKind {
    pub fn from_i32(v: i32) -> Option<OwnerKind> {
        match v {
            0 => Some(OwnerKind::Project),
            1 => Some(OwnerKind::Group),
            2 => Some(OwnerKind::Host),
            _ => None,
        }
    }
}

/// One variable of one owner.
#[derive(Debug, Clone)]
pub struct Var {
    pub value: Raw,
    pub tier: Tier,
}

/// An owner's own variables, one per key. Hashed with foldhash: a snapshot
/// builds 100,000 of these entries, and SipHash was a tenth of `--list`.
pub type OwnVars = IndexMap<String, Var, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    /// Bumped by every write to the project's inventory.
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct GroupNode {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    /// `ansible_group_priority` as set inline; Ansible's default is 1.
    pub priority: Option<i64>,
    /// Position among the explicit children of `all`, if listed there.
    pub all_position: Option<i32>,
    /// Indexes into [`Snapshot::groups`], ascending (creation order).
    pub parents: Vec<usize>,
    /// Indexes into [`Snapshot::groups`], in stored order (the input's).
    pub children: Vec<usize>,
    /// Indexes into [`Snapshot::hosts`], in stored order (the input's).
    pub hosts: Vec<usize>,
    pub vars: OwnVars,
}

#[derive(Debug, Clone)]
pub struct HostNode {
    pub id: i64,
    pub name: String,
    pub ip_address: Option<String>,
    pub active: bool,
    /// Index into [`Snapshot::hosts`] of the physical host / chassis.
    pub parent: Option<usize>,
    pub labels: Vec<String>,
    /// Direct groups, indexes into [`Snapshot::groups`], ascending.
    pub groups: Vec<usize>,
    pub vars: OwnVars,
}

/// One project's inventory, ordered by creation (ids ascending).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub project: Project,
    /// Variables of the `all` group.
    pub all_vars: OwnVars,
    pub groups: Vec<GroupNode>,
    pub hosts: Vec<HostNode>,
    /// [`Snapshot::depths`], computed on first use: the daemon serves many
    /// requests from one cached snapshot, and recomputing the depths of
    /// every group was a tenth of a one-host request. Build with
    /// `Default::default()`; groups must not change once it is filled.
    pub depth_memo: std::sync::OnceLock<Vec<u32>>,
}

impl Snapshot {
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// Each group's Ansible depth: `all` is 0, a group with no parent is 1
    /// (Ansible makes it a child of `all`), otherwise one more than its
    /// deepest parent.
    pub fn depths(&self) -> &[u32] {
        self.depth_memo.get_or_init(|| self.compute_depths())
    }

    fn compute_depths(&self) -> Vec<u32> {
        let mut depth = vec![0u32; self.groups.len()];
        let mut done = vec![false; self.groups.len()];
        // Iterative post-order: the DAG may be deep enough to hurt recursion.
        for start in 0..self.groups.len() {
            let mut stack = vec![(start, false)];
            while let Some((g, expanded)) = stack.pop() {
                if done[g] {
                    continue;
                }
                if expanded {
                    depth[g] = self.groups[g].parents.iter().map(|&p| depth[p] + 1).max().unwrap_or(1);
                    done[g] = true;
                } else {
                    stack.push((g, true));
                    stack.extend(self.groups[g].parents.iter().filter(|&&p| !done[p]).map(|&p| (p, false)));
                }
            }
        }
        depth
    }

    /// `g` and every group below it, in ascending index order.
    pub fn subtree(&self, g: usize) -> Vec<usize> {
        let mut seen = vec![false; self.groups.len()];
        let mut stack = vec![g];
        while let Some(x) = stack.pop() {
            if !std::mem::replace(&mut seen[x], true) {
                stack.extend(self.groups[x].children.iter().copied());
            }
        }
        (0..self.groups.len()).filter(|&i| seen[i]).collect()
    }

    /// The groups host `h` is in, directly or through a child group: its
    /// direct groups and all their ancestors, in ascending index order.
    pub fn host_groups(&self, h: usize) -> Vec<usize> {
        let mut seen = vec![false; self.groups.len()];
        for &g in &self.hosts[h].groups {
            for a in self.ancestors(g) {
                seen[a] = true;
            }
        }
        (0..self.groups.len()).filter(|&i| seen[i]).collect()
    }

    /// `g` and every group above it, in ascending index order.
    pub fn ancestors(&self, g: usize) -> Vec<usize> {
        let mut seen = vec![false; self.groups.len()];
        let mut stack = vec![g];
        while let Some(x) = stack.pop() {
            if !std::mem::replace(&mut seen[x], true) {
                stack.extend(self.groups[x].parents.iter().copied());
            }
        }
        (0..self.groups.len()).filter(|&i| seen[i]).collect()
    }
}

/// Parses JSON text into a [`Raw`] value; used for values coming from the
/// database, which were validated on the way in.
pub fn raw_from_string(text: String) -> Result<Raw, serde_json::Error> {
    RawValue::from_string(text)
}

/// Serializes a JSON value into its stored form (compact, key order kept).
pub fn raw_from_value(v: &serde_json::Value) -> Raw {
    // Serializing a Value cannot fail: its keys are strings and numbers finite.
    RawValue::from_string(serde_json::to_string(v).expect("serializing a Value")).expect("valid JSON")
}
