//! The only code that knows Ansible's script inventory JSON: `--list` and
//! `--host` documents, for the CLI, the REST API and bundles alike.
//!
//! Group variables stay on groups and host variables in `_meta`, so Ansible
//! applies precedence itself and `--list --export` keeps the structure. The
//! script contract has only one tier, though, while Ansible ranks
//! `group_vars/` files above all inline group vars; and `--group` drops the
//! groups outside a subtree. Both are handled the same way: the emitted
//! structure is resolved exactly as Ansible will resolve it, compared with the
//! true resolution, and any key where the two differ is emitted as a host var
//! of the hosts concerned ("lifted"), which Ansible ranks above every group.
//!
//! Script JSON has no int keys or datetimes, so typed envelopes (see
//! [`crate::typed`]) are printed as `ansible-inventory --list` prints the
//! original; bundles ([`Layout::Files`]) keep them to write them in YAML.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;

use indexmap::IndexMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::model::{GroupNode, HostNode, OwnVars, Snapshot, Tier, Var};
use crate::names::file_safe;
use crate::resolve::Resolver;
use crate::typed;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("group {0:?} not found in project {1:?}")]
    UnknownGroup(String, String),
    #[error("host {0:?} not found in project {1:?}")]
    UnknownHost(String, String),
    #[error("a group named {0:?} cannot be expressed in Ansible's inventory JSON (reserved name)")]
    ReservedGroup(String),
    /// The inventory holds a name a bundle cannot carry faithfully.
    #[error("cannot bundle: {0}")]
    NotBundlable(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Which hosts to emit.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only the hosts of this group's subtree (each keeps the variables it has
    /// in the whole inventory).
    pub group: Option<String>,
    /// Hosts whose resolved value of key equals the JSON value (type-strict);
    /// all terms must match.
    pub filters: Vec<(String, Value)>,
    /// Also emit hosts marked inactive.
    pub include_inactive: bool,
}

/// Parses a `key=value` filter term; the value is JSON, or a plain string
/// when it is not valid JSON (`env=prod` means `env="prod"`).
pub fn parse_filter(term: &str) -> Result<(String, Value), String> {
    let (k, v) = term.split_once('=').ok_or_else(|| format!("filter {term:?} is not of the form key=value"))?;
    if k.is_empty() {
        return Err(format!("filter {term:?} has an empty key"));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `_meta.hostvars` carries each host's fully resolved variables instead
    /// of its own (plus lifted) ones.
    pub resolved: bool,
    pub pretty: bool,
    pub layout: Layout,
}

/// How the output will reach Ansible, which decides the tiers available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// Script JSON: one tier; every variable is emitted inline.
    #[default]
    Script,
    /// An inventory file plus `group_vars/` and `host_vars/` files (bundles):
    /// both tiers kept, except for names that cannot be file names.
    Files,
}

/// The structure to emit (all variables on the inventory tier, exactly what
/// Ansible will read) and, per emitted host, its `_meta.hostvars` entry.
pub struct Emitted<'a> {
    /// All vars on the tiers they will be emitted on.
    pub structure: Snapshot,
    /// Parallel to `structure.hosts`: each host's own vars plus lifted ones,
    /// on the tier they will be emitted on. Borrowed from the snapshot when
    /// nothing changes (most hosts): 100,000 values are not copied.
    pub hostvars: Vec<Cow<'a, OwnVars>>,
}

const RESERVED: [&str; 2] = ["all", "_meta"];

/// An owner's vars as they will be emitted: kept on their tiers where the
/// layout can express it, else all inline.
fn emitted_vars(vars: &OwnVars, layout: Layout, name: &str) -> OwnVars {
    if layout == Layout::Files && file_safe(name) {
        return vars.clone();
    }
    merged_tiers(vars, false)
}

/// A group as it will be emitted: its priority and vars. Inline, a
/// vars-file `ansible_group_priority` can only be written as the group's
/// priority (Ansible's `Group.set_variable` takes it for one, not for a
/// variable), and that is how `ansible-inventory --export` shows the file
/// value of the original too: in the group's `vars`. So an integer file
/// value becomes the emitted priority, and lifting repairs the rest: the
/// variable itself on the hosts that see it (a priority is no variable),
/// and whatever the new order changes. A value Ansible could not take as
/// a priority is only dropped, and lifted where it shows.
fn emitted_group(src: &GroupNode, layout: Layout) -> (Option<i64>, OwnVars) {
    if layout == Layout::Files && file_safe(&src.name) {
        return (src.priority, src.vars.clone());
    }
    let priority = match src.vars.get(PRIORITY_KEY).filter(|v| v.tier == Tier::VarsFile) {
        Some(v) => serde_json::from_str::<i64>(v.value.get()).ok().or(src.priority),
        None => src.priority,
    };
    (priority, merged_tiers(&src.vars, true))
}

const PRIORITY_KEY: &str = "ansible_group_priority";

fn merged_tiers(vars: &OwnVars, drop_file_priority: bool) -> OwnVars {
    vars.iter()
        .filter(|(k, v)| !(drop_file_priority && v.tier == Tier::VarsFile && *k == PRIORITY_KEY))
        .map(|(k, v)| (k.clone(), Var { value: v.value.clone(), tier: Tier::Inventory }))
        .collect()
}

/// Picks hosts and groups, and computes what to emit for them.
pub fn emit<'a>(snap: &'a Snapshot, sel: &Selection, opts: Options) -> Result<Emitted<'a>, RenderError> {
    if let Some(g) = snap.groups.iter().find(|g| RESERVED.contains(&g.name.as_str())) {
        return Err(RenderError::ReservedGroup(g.name.clone()));
    }
    let group_set: Vec<usize> = match &sel.group {
        None => (0..snap.groups.len()).collect(),
        Some(name) => {
            let g = snap
                .group_index(name)
                .ok_or_else(|| RenderError::UnknownGroup(name.clone(), snap.project.name.clone()))?;
            snap.subtree(g)
        }
    };
    let mut in_set = vec![None; snap.groups.len()];
    for (new, &old) in group_set.iter().enumerate() {
        in_set[old] = Some(new);
    }

    let mut full = Resolver::new(snap);
    let mut hosts: Vec<usize> = Vec::new();
    'host: for (h, host) in snap.hosts.iter().enumerate() {
        if !host.active && !sel.include_inactive {
            continue;
        }
        if sel.group.is_some() && !host.groups.iter().any(|&g| in_set[g].is_some()) {
            continue;
        }
        for (k, want) in &sel.filters {
            // Compared as --list shows the value (a timestamp as its text).
            let got = full.resolve_key(h, k).and_then(|r| {
                let v = serde_json::from_str::<Value>(r.value.get()).ok()?;
                Some(if typed::may_hold(r.value.get()) { typed::to_plain(&v) } else { v })
            });
            if got.as_ref() != Some(want) {
                continue 'host;
            }
        }
        hosts.push(h);
    }

    // The structure Ansible will see.
    let mut groups: Vec<GroupNode> = group_set
        .iter()
        .map(|&g| {
            let src = &snap.groups[g];
            let (priority, vars) = emitted_group(src, opts.layout);
            GroupNode {
                id: src.id,
                name: src.name.clone(),
                kind: src.kind.clone(),
                description: None,
                priority,
                all_position: if sel.group.is_some() { None } else { src.all_position },
                parents: src.parents.iter().filter_map(|&p| in_set[p]).collect(),
                children: src.children.iter().filter_map(|&c| in_set[c]).collect(),
                hosts: Vec::new(),
                vars,
            }
        })
        .collect();
    let mut host_new = vec![None; snap.hosts.len()];
    for (new, &h) in hosts.iter().enumerate() {
        host_new[h] = Some(new);
    }
    // Members in the stored (input) order: Ansible runs hosts in inventory order.
    for (new, &old) in group_set.iter().enumerate() {
        groups[new].hosts = snap.groups[old].hosts.iter().filter_map(|&h| host_new[h]).collect();
    }
    let mut out_hosts = Vec::with_capacity(hosts.len());
    for &h in &hosts {
        let src = &snap.hosts[h];
        let member_of: Vec<usize> = src.groups.iter().filter_map(|&g| in_set[g]).collect();
        out_hosts.push(HostNode {
            id: src.id,
            name: src.name.clone(),
            ip_address: None,
            active: true,
            parent: None,
            labels: Vec::new(),
            groups: member_of,
            vars: OwnVars::default(),
        });
    }
    let structure = Snapshot {
        project: snap.project.clone(),
        all_vars: emitted_vars(&snap.all_vars, opts.layout, "all"),
        groups,
        hosts: out_hosts,
        depth_memo: Default::default(),
    };

    let mut naive = Resolver::new(&structure);
    // Keyed by the host's groups in the full and the emitted structure: hosts
    // with the same groups need the same lifts.
    type Lifts = Vec<(String, Box<RawValue>)>;
    let mut lifts_cache: HashMap<(Vec<usize>, Vec<usize>), Lifts> = HashMap::new();
    let mut hostvars = Vec::with_capacity(hosts.len());
    for (new, &h) in hosts.iter().enumerate() {
        let src = &snap.hosts[h];
        let own = &src.vars;
        // Script output ignores tiers, and file-safe names keep theirs, so
        // only unsafe names in files need a flattened copy.
        let keeps_tiers = opts.layout == Layout::Script || file_safe(&src.name);
        let mut hv: Cow<OwnVars> = if keeps_tiers { Cow::Borrowed(own) } else { Cow::Owned(merged_tiers(own, false)) };
        // Lifted values must beat every group var: the host's top tier.
        let lift_tier =
            if opts.layout == Layout::Files && file_safe(&src.name) { Tier::VarsFile } else { Tier::Inventory };
        if opts.resolved {
            for (k, r) in full.group_part(h).iter() {
                if !own.contains_key(*k) {
                    hv.to_mut().insert(k.to_string(), Var { value: r.value.to_owned(), tier: lift_tier });
                }
            }
        } else {
            let key = (full.effective_groups(h), naive.effective_groups(new));
            if !lifts_cache.contains_key(&key) {
                let truth = full.group_part(h);
                let seen = naive.group_part(new);
                let lifts = truth
                    .iter()
                    .filter(|(k, t)| seen.get(**k).map(|n| n.value.get()) != Some(t.value.get()))
                    .map(|(k, t)| (k.to_string(), t.value.to_owned()))
                    .collect();
                lifts_cache.insert(key.clone(), lifts);
            }
            for (k, v) in &lifts_cache[&key] {
                if !own.contains_key(k) {
                    hv.to_mut().insert(k.clone(), Var { value: v.clone(), tier: lift_tier });
                }
            }
        }
        hostvars.push(hv);
    }
    let mut e = Emitted { structure, hostvars };
    if opts.layout == Layout::Script {
        unwrap_envelopes(&mut e);
    }
    Ok(e)
}

/// Script JSON has no int keys or datetimes: typed envelopes become what
/// `ansible-inventory --list` prints for the original (see [`typed`]).
/// Bundles keep them, to write them in YAML.
fn unwrap_envelopes(e: &mut Emitted) {
    fn plain_vars(vars: &mut OwnVars) {
        for v in vars.values_mut() {
            if let Some(p) = typed::plain_raw(&v.value) {
                v.value = p;
            }
        }
    }
    plain_vars(&mut e.structure.all_vars);
    for g in &mut e.structure.groups {
        plain_vars(&mut g.vars);
    }
    for hv in &mut e.hostvars {
        if hv.values().any(|v| typed::may_hold(v.value.get())) {
            plain_vars(hv.to_mut());
        }
    }
}

#[derive(Serialize)]
struct GroupOut<'a> {
    /// Ansible takes a group dict with none of hosts/vars/children for a
    /// host of that name, so every group carries `hosts` (even empty)
    /// except `all`, which always carries `children`.
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    children: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    vars: IndexMap<&'a str, &'a RawValue>,
}

struct ListOut<'a>(&'a Emitted<'a>, Vec<(&'a str, GroupOut<'a>)>);

#[derive(Serialize)]
struct Meta<'a> {
    hostvars: IndexMap<&'a str, IndexMap<&'a str, &'a RawValue>>,
}

impl Serialize for ListOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len() + 1))?;
        for (name, g) in &self.1 {
            m.serialize_entry(name, g)?;
        }
        let hostvars = self
            .0
            .structure
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .zip(self.0.hostvars.iter().map(|v| vars_out(v, None)))
            .collect();
        m.serialize_entry("_meta", &Meta { hostvars })?;
        m.end()
    }
}

fn vars_out<'a>(vars: &'a OwnVars, priority: Option<&'a RawValue>) -> IndexMap<&'a str, &'a RawValue> {
    let mut out: IndexMap<&str, &RawValue> = vars.iter().map(|(k, v)| (k.as_str(), &*v.value)).collect();
    if let Some(p) = priority {
        out.insert(PRIORITY_KEY, p);
    }
    out
}

fn write_json<W: Write, T: Serialize>(out: W, doc: &T, pretty: bool) -> Result<(), RenderError> {
    let res = if pretty {
        // Raw values are copied verbatim by the serializer; re-parse them so
        // the pretty form is indented all the way down.
        let v = serde_json::to_value(doc).map_err(std::io::Error::other)?;
        serde_json::to_writer_pretty(out, &v)
    } else {
        serde_json::to_writer(out, doc)
    };
    res.map_err(|e| match e.io_error_kind() {
        Some(kind) => RenderError::Io(std::io::Error::new(kind, e)),
        None => RenderError::Io(std::io::Error::other(e)),
    })
}

/// Writes the `--list` document.
pub fn write_list<W: Write>(e: &Emitted, opts: Options, out: W) -> Result<(), RenderError> {
    let s = &e.structure;
    let priorities: Vec<Option<Box<RawValue>>> = s
        .groups
        .iter()
        .map(|g| g.priority.map(|p| RawValue::from_string(p.to_string()).expect("an integer is JSON")))
        .collect();
    let ungrouped_hosts: Vec<&str> = s.hosts.iter().filter(|h| h.groups.is_empty()).map(|h| h.name.as_str()).collect();
    let has_ungrouped_group = s.groups.iter().any(|g| g.name == "ungrouped");
    // `all`'s children as Ansible lists them: the ones named there in the
    // input, in order, then every other group without a parent.
    let mut listed: Vec<&GroupNode> = s.groups.iter().filter(|g| g.all_position.is_some()).collect();
    listed.sort_by_key(|g| g.all_position);
    let mut roots: Vec<&str> = listed.iter().map(|g| g.name.as_str()).collect();
    roots.extend(s.groups.iter().filter(|g| g.parents.is_empty() && g.all_position.is_none()).map(|g| g.name.as_str()));
    if !ungrouped_hosts.is_empty() && !has_ungrouped_group {
        roots.push("ungrouped");
    }
    let mut entries = vec![("all", GroupOut { hosts: None, children: Some(roots), vars: vars_out(&s.all_vars, None) })];
    for (g, p) in s.groups.iter().zip(&priorities) {
        let mut hosts: Vec<&str> = g.hosts.iter().map(|&h| s.hosts[h].name.as_str()).collect();
        if g.name == "ungrouped" {
            hosts.extend(ungrouped_hosts.iter().copied());
        }
        entries.push((
            g.name.as_str(),
            GroupOut {
                hosts: Some(hosts),
                children: Some(g.children.iter().map(|&c| s.groups[c].name.as_str()).collect())
                    .filter(|c: &Vec<_>| !c.is_empty()),
                vars: vars_out(&g.vars, p.as_deref()),
            },
        ));
    }
    if !ungrouped_hosts.is_empty() && !has_ungrouped_group {
        entries.push(("ungrouped", GroupOut { hosts: Some(ungrouped_hosts), children: None, vars: IndexMap::new() }));
    }
    write_json(out, &ListOut(e, entries), opts.pretty)
}

/// Writes the `--host NAME` document: the host's entry of `_meta.hostvars`.
pub fn write_host<W: Write>(e: &Emitted, name: &str, opts: Options, out: W) -> Result<(), RenderError> {
    let i = e
        .structure
        .hosts
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| RenderError::UnknownHost(name.to_string(), e.structure.project.name.clone()))?;
    write_json(out, &vars_out(&e.hostvars[i], None), opts.pretty)
}
