//! An in-memory inventory shaped exactly like Ansible's `InventoryData`.
//!
//! Every parser (YAML, INI, script JSON) feeds this builder through the same
//! calls Ansible's own inventory plugins make (`add_group`, `add_host`,
//! `add_child`, `set_variable`), so the quirks that decide what Ansible sees
//! (priority handling, ports, cycle refusal, insertion order) live in one
//! place instead of once per format.

use indexmap::{IndexMap, IndexSet};
use serde_json::Value;

pub use crate::names::{check_name, MAX_NAME_CHARS};

/// A problem found while reading one input, with the 1-based line where the
/// format has lines. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

impl ParseError {
    pub fn new(line: Option<usize>, message: impl Into<String>) -> Self {
        ParseError { line, message: message.into() }
    }
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        Self::new(Some(line), message)
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedGroup {
    /// Inline (inventory-tier) variables, `ansible_group_priority` excluded.
    pub vars: IndexMap<String, Value>,
    /// `ansible_group_priority` as Ansible's `Group.set_priority(int(v))` saw it.
    pub priority: Option<i64>,
    pub children: IndexSet<String>,
    pub hosts: IndexSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedHost {
    /// Inline (inventory-tier) variables.
    pub vars: IndexMap<String, Value>,
}

/// Groups and hosts in order of first appearance. `all` and `ungrouped`
/// always exist, as in Ansible.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedInventory {
    pub groups: IndexMap<String, ParsedGroup>,
    pub hosts: IndexMap<String, ParsedHost>,
}

impl Default for ParsedInventory {
    fn default() -> Self {
        Self::new()
    }
}

/// Ansible's `int(value)` for `ansible_group_priority`.
fn priority_of(value: &Value) -> Result<i64, String> {
    let bad = || format!("ansible_group_priority must be an integer, got {value}");
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)).ok_or_else(bad),
        Value::Bool(b) => Ok(*b as i64),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

impl ParsedInventory {
    pub fn new() -> Self {
        let mut groups = IndexMap::new();
        groups.insert("all".to_string(), ParsedGroup::default());
        groups.insert("ungrouped".to_string(), ParsedGroup::default());
        ParsedInventory { groups, hosts: IndexMap::new() }
    }

    /// Creates the group if it is new; returns its name.
    pub fn add_group(&mut self, name: &str) -> Result<(), String> {
        if !self.groups.contains_key(name) {
            check_name("group", name)?;
            self.groups.insert(name.to_string(), ParsedGroup::default());
        }
        Ok(())
    }

    /// Ansible's `InventoryData.add_host(host, group, port)`: creates the host
    /// if new, sets `ansible_port` when a port is given, and adds it to `group`.
    pub fn add_host(&mut self, name: &str, group: Option<&str>, port: Option<u16>) -> Result<(), String> {
        if let Some(g) = group {
            if !self.groups.contains_key(g) {
                return Err(format!("could not find group {g:?} in inventory"));
            }
        }
        if !self.hosts.contains_key(name) {
            check_name("host", name)?;
            self.hosts.insert(name.to_string(), ParsedHost::default());
            // Ansible's `Host(name, port)` sets the port only on creation,
            // and only a non-zero one.
            if let Some(p) = port.filter(|&p| p != 0) {
                self.set_host_var(name, "ansible_port", Value::from(p))?;
            }
        }
        if let Some(g) = group {
            self.groups[g].hosts.insert(name.to_string());
        }
        Ok(())
    }

    /// Ansible's `InventoryData.add_child(group, child)`: `child` is a group
    /// (nested, refusing cycles) or else a known host.
    pub fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if !self.groups.contains_key(parent) {
            return Err(format!("{parent:?} is not a known group"));
        }
        if self.groups.contains_key(child) {
            if child == "all" {
                return Err(format!("group \"all\" cannot be a child of {parent:?}"));
            }
            if child == parent || self.is_descendant(parent, child) {
                return Err(format!(
                    "adding group {child:?} as child to {parent:?} creates a recursive dependency loop"
                ));
            }
            self.groups[parent].children.insert(child.to_string());
            Ok(())
        } else if self.hosts.contains_key(child) {
            self.groups[parent].hosts.insert(child.to_string());
            Ok(())
        } else {
            Err(format!("{child:?} is not a known host nor group"))
        }
    }

    /// True when `node` is reachable from `root` through `children` edges.
    fn is_descendant(&self, node: &str, root: &str) -> bool {
        let mut stack = vec![root];
        let mut seen = IndexSet::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            for c in &self.groups[g].children {
                if c == node {
                    return true;
                }
                stack.push(c.as_str());
            }
        }
        false
    }

    /// Ansible's `Group.set_variable`: `ansible_group_priority` becomes the
    /// group's priority and is not kept as a variable.
    pub fn set_group_var(&mut self, group: &str, key: &str, value: Value) -> Result<(), String> {
        check_name("variable", key)?;
        let g = self.groups.get_mut(group).ok_or_else(|| format!("{group:?} is not a known group"))?;
        if key == "ansible_group_priority" {
            g.priority = Some(priority_of(&value)?);
        } else {
            g.vars.insert(key.to_string(), value);
        }
        Ok(())
    }

    pub fn set_host_var(&mut self, host: &str, key: &str, value: Value) -> Result<(), String> {
        check_name("variable", key)?;
        let h = self.hosts.get_mut(host).ok_or_else(|| format!("{host:?} is not a known host"))?;
        h.vars.insert(key.to_string(), value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn priority_is_not_a_variable() {
        let mut inv = ParsedInventory::new();
        inv.add_group("web").unwrap();
        inv.set_group_var("web", "ansible_group_priority", json!("7")).unwrap();
        inv.set_group_var("web", "x", json!(1)).unwrap();
        assert_eq!(inv.groups["web"].priority, Some(7));
        assert!(!inv.groups["web"].vars.contains_key("ansible_group_priority"));
    }

    #[test]
    fn cycles_are_refused() {
        let mut inv = ParsedInventory::new();
        for g in ["a", "b", "c"] {
            inv.add_group(g).unwrap();
        }
        inv.add_child("a", "b").unwrap();
        inv.add_child("b", "c").unwrap();
        let e = inv.add_child("c", "a").unwrap_err();
        assert!(e.contains("recursive dependency loop"), "{e}");
        assert!(inv.add_child("a", "a").is_err());
        assert!(inv.add_child("a", "all").is_err());
    }

    #[test]
    fn port_sets_ansible_port_and_membership_keeps_order() {
        let mut inv = ParsedInventory::new();
        inv.add_group("g").unwrap();
        inv.add_host("h2", Some("g"), Some(2222)).unwrap();
        inv.add_host("h1", Some("g"), None).unwrap();
        assert_eq!(inv.hosts["h2"].vars["ansible_port"], json!(2222));
        assert_eq!(inv.groups["g"].hosts.iter().collect::<Vec<_>>(), ["h2", "h1"]);
        assert!(inv.add_host(" bad", None, None).is_err());
    }
}
