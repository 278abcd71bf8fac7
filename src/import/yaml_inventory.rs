//! The semantics of Ansible's `yaml` inventory plugin, on a loaded YAML tree.
//!
//! `ansible/plugins/inventory/yaml.py` decides a lot beyond "groups with
//! hosts, vars and children": strings stand for one-entry mappings, empty
//! sections and non-mapping entries are skipped, host keys are patterns with
//! ranges and ports, a port only counts when the host is first seen, and host
//! variables land on a *group* when a group has the host's name. Importing an
//! inventory must reproduce all of it, so this module walks the [`Node`] tree
//! in the plugin's order and makes the same `InventoryData` calls on a
//! [`ParsedInventory`]. What the plugin only warns about is skipped silently;
//! what makes Ansible fail is a [`ParseError`] at the line of the node.

use super::builder::{ParseError, ParsedInventory};
use super::hostrange::parse_host_pattern;
use super::yaml11::{json_key, py_repr, py_str, Node, NodeKind};

const SECTIONS: [&str; 3] = ["vars", "children", "hosts"];

fn class(n: &Node) -> String {
    format!("<class '{}'>", n.py_type())
}

fn is_mapping_or_none(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Map(_) | NodeKind::Null)
}

fn pairs(n: &Node) -> &[(Node, Node)] {
    match &n.kind {
        NodeKind::Map(p) => p,
        _ => &[],
    }
}

/// True when Ansible's `yaml` plugin would take this document without
/// skipping any top-level entry: a non-empty mapping of string keys to
/// mappings or nothing, and no `plugin:` key (that marks a plugin config).
pub fn looks_like_yaml_inventory(root: &Node) -> bool {
    let NodeKind::Map(top) = &root.kind else {
        return false;
    };
    !top.is_empty()
        && !root.get("plugin").is_some_and(Node::is_truthy)
        && top.iter().all(|(k, v)| k.as_str().is_some() && is_mapping_or_none(v))
}

/// `InventoryModule.parse` of the `yaml` plugin: fills `inv` from the loaded
/// document `root`.
pub fn parse_yaml_inventory(root: &Node, inv: &mut ParsedInventory) -> Result<(), ParseError> {
    if !root.is_truthy() {
        return Err(ParseError::at(root.line, "Parsed empty YAML file"));
    }
    let NodeKind::Map(top) = &root.kind else {
        return Err(ParseError::at(
            root.line,
            format!("YAML inventory has invalid structure, it should be a dictionary, got: {}", class(root)),
        ));
    };
    if let Some(plugin) = root.get("plugin").filter(|p| p.is_truthy()) {
        return Err(ParseError::at(plugin.line, "Plugin configuration YAML file, not YAML inventory"));
    }
    for (name, data) in top {
        parse_group(inv, name, data)?;
    }
    Ok(())
}

/// `InventoryData.add_group`, including its checks on the key's type.
fn add_group(inv: &mut ParsedInventory, key: &Node) -> Result<String, ParseError> {
    let reason = if !key.is_truthy() {
        Some(format!("Invalid empty/false group name provided: {}", py_str(key)))
    } else {
        match key.as_str() {
            None => Some(format!(
                "Invalid group name supplied, expected a string but got {} for {}",
                class(key),
                py_str(key)
            )),
            Some(name) => inv.add_group(name).err(),
        }
    };
    match (reason, key.as_str()) {
        (Some(e), _) => Err(ParseError::at(key.line, format!("Unable to add group {}: {e}", py_str(key)))),
        (None, Some(name)) => Ok(name.to_string()),
        (None, None) => Err(ParseError::at(key.line, "group name is not a string")),
    }
}

/// `_parse_group`: a group entry whose value is a mapping or empty defines
/// the group; anything else is skipped (Ansible warns).
fn parse_group(inv: &mut ParsedInventory, key: &Node, data: &Node) -> Result<(), ParseError> {
    if !is_mapping_or_none(data) {
        return Ok(());
    }
    let group = add_group(inv, key)?;
    let NodeKind::Map(entries) = &data.kind else {
        return Ok(());
    };

    // The plugin first rewrites a string section into `{string: None}` and
    // checks all three sections, before walking any entry.
    let mut converted: Vec<(usize, Node)> = Vec::new();
    for section in SECTIONS {
        let Some(index) = entries.iter().position(|(k, _)| k.as_str() == Some(section)) else {
            continue;
        };
        let value = &entries[index].1;
        if value.as_str().is_some() {
            let null = Node { line: value.line, kind: NodeKind::Null };
            let map = NodeKind::Map(vec![(value.clone(), null)]);
            converted.push((index, Node { line: value.line, kind: map }));
        } else if !is_mapping_or_none(value) {
            return Err(ParseError::at(
                value.line,
                format!(
                    "Invalid \"{section}\" entry for \"{group}\" group, requires a dictionary, found \"{}\" instead.",
                    class(value)
                ),
            ));
        }
    }

    for (index, (key, original)) in entries.iter().enumerate() {
        let value = converted.iter().find(|(i, _)| *i == index).map_or(original, |(_, v)| v);
        // Non-mapping entries are skipped with a warning, empty ones quietly.
        let NodeKind::Map(items) = &value.kind else {
            continue;
        };
        match key.as_str() {
            Some("vars") => {
                for (var, val) in items {
                    set_group_variable(inv, &group, var, val)?;
                }
            }
            Some("children") => {
                for (sub, sub_data) in items {
                    parse_group(inv, sub, sub_data)?;
                    // A skipped child still gets added: fine if it names an
                    // existing group or host, an error otherwise.
                    let child = sub.as_str().ok_or_else(|| {
                        ParseError::at(sub.line, format!("{} is not a known host nor group", py_str(sub)))
                    })?;
                    inv.add_child(&group, child).map_err(|e| ParseError::at(sub.line, e))?;
                }
            }
            Some("hosts") => {
                for (pattern, host_vars) in items {
                    let (hosts, port) = parse_host(pattern)?;
                    populate_host_vars(inv, pattern, &hosts, host_vars, &group, port)?;
                }
            }
            // Any other key is skipped with a warning.
            _ => {}
        }
    }
    Ok(())
}

/// `_parse_host` / `_expand_hostpattern`.
fn parse_host(pattern: &Node) -> Result<(Vec<String>, Option<u16>), ParseError> {
    let Some(text) = pattern.as_str() else {
        return Err(ParseError::at(
            pattern.line,
            format!("Host pattern {} must be a string. Enclose integers/floats in quotation marks.", py_str(pattern)),
        ));
    };
    parse_host_pattern(text).map_err(|e| ParseError::at(pattern.line, e))
}

/// `_populate_host_vars`: `variables or {}` must then be a mapping.
fn populate_host_vars(
    inv: &mut ParsedInventory,
    pattern: &Node,
    hosts: &[String],
    variables: &Node,
    group: &str,
    port: Option<u16>,
) -> Result<(), ParseError> {
    let vars = if variables.is_truthy() { pairs(variables) } else { &[] };
    if variables.is_truthy() && !matches!(variables.kind, NodeKind::Map(_)) {
        return Err(ParseError::at(
            variables.line,
            format!("Invalid data from file, expected dictionary and got:\n\n{}", py_str(variables)),
        ));
    }
    for host in hosts {
        // `Host(name, port)` applies `if port:` only when the host is created.
        let port = port.filter(|p| *p != 0 && !inv.hosts.contains_key(host.as_str()));
        inv.add_host(host, Some(group), port).map_err(|e| ParseError::at(pattern.line, e))?;
        for (key, value) in vars {
            // `InventoryData.set_variable` looks the name up among groups
            // first: a host named like a group gives its vars to the group.
            if inv.groups.contains_key(host.as_str()) {
                set_group_variable(inv, host, key, value)?;
            } else {
                let name = json_key(key)?;
                let value = value.to_json()?;
                inv.set_host_var(host, &name, value).map_err(|e| ParseError::at(key.line, e))?;
            }
        }
    }
    Ok(())
}

/// `Group.set_variable`. Ansible keeps non-string names (`1:`, `~:`) as they
/// are and prints them the way `json.dumps` does; so does Craton.
fn set_group_variable(inv: &mut ParsedInventory, group: &str, key: &Node, value: &Node) -> Result<(), ParseError> {
    let name = json_key(key)?;
    let value = value.to_json()?;
    inv.set_group_var(group, &name, value)
        .map_err(|e| ParseError::at(key.line, format!("{e} (variable {})", py_repr(key))))
}

#[cfg(test)]
mod tests {
    use super::super::yaml11::load;
    use super::*;
    use serde_json::json;

    fn inventory(src: &str) -> Result<ParsedInventory, ParseError> {
        let root = load(src)?.ok_or_else(|| ParseError::new(None, "empty"))?;
        let mut inv = ParsedInventory::new();
        parse_yaml_inventory(&root, &mut inv)?;
        Ok(inv)
    }

    #[test]
    fn documented_example() {
        let inv = inventory(
            "all:\n  hosts:\n    test1:\n    test2:\n      host_var: value\n  vars:\n    group_all_var: value\n  children:\n    other_group:\n      children:\n        group_x:\n          hosts:\n            test5\n        group_y:\n          hosts:\n            test6:\n      vars:\n        g2_var2: value3\n      hosts:\n        test4:\n          ansible_host: 127.0.0.1\n    last_group:\n      hosts:\n        test1\n      vars:\n        group_last_var: value\n",
        )
        .unwrap();
        assert_eq!(inv.hosts["test2"].vars["host_var"], json!("value"));
        assert_eq!(inv.groups["all"].vars["group_all_var"], json!("value"));
        assert!(inv.groups["group_x"].hosts.contains("test5"));
        assert!(inv.groups["other_group"].children.contains("group_y"));
        assert!(inv.groups["last_group"].hosts.contains("test1"));
        assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), ["test1", "test2", "test5", "test6", "test4"]);
    }

    #[test]
    fn ports_only_count_for_new_hosts() {
        let inv = inventory("a:\n  hosts:\n    h1:22:\n    h2:0:\nb:\n  hosts:\n    h1:33:\n      x: 1\n").unwrap();
        assert_eq!(inv.hosts["h1"].vars["ansible_port"], json!(22));
        assert!(!inv.hosts["h2"].vars.contains_key("ansible_port"));
    }

    #[test]
    fn host_vars_go_to_a_group_of_the_same_name() {
        let inv = inventory("web:\n  vars: {gv: 1}\nb:\n  hosts:\n    web: {v: 1}\n").unwrap();
        assert_eq!(inv.groups["web"].vars["v"], json!(1));
        assert!(inv.hosts["web"].vars.is_empty());
    }

    #[test]
    fn skipped_entries_and_odd_keys() {
        let inv = inventory(
            "g:\n  hosts: h1\n  children: c1\n  foo: bar\n  vars:\n    1: one\n    ~: n\nskipped: [1, 2]\nc:\n  children:\n    h1: \"str\"\n",
        )
        .unwrap();
        assert!(!inv.groups.contains_key("skipped"));
        assert!(inv.groups["g"].children.contains("c1"));
        assert_eq!(inv.groups["g"].vars["1"], json!("one"));
        assert_eq!(inv.groups["g"].vars["null"], json!("n"));
        // A skipped child naming a known host adds the host.
        assert!(inv.groups["c"].hosts.contains("h1"));
    }

    #[test]
    fn errors_carry_lines() {
        let e = inventory("g:\n  hosts: [a, b]\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("Invalid \"hosts\" entry"), "{}", e.message);
        let e = inventory("g:\n  hosts:\n    1:\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("must be a string"));
        let e = inventory("g:\n  hosts:\n    h: text\n").unwrap_err();
        assert!(e.message.contains("expected dictionary"));
        let e = inventory("g:\n  children:\n    nope: 1\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("not a known host nor group"));
        let e = inventory("1: {}\n").unwrap_err();
        assert!(e.message.contains("expected a string"));
        assert!(inventory("plugin: foo\n").unwrap_err().message.contains("Plugin configuration"));
        assert!(inventory("{}").unwrap_err().message.contains("empty"));
        assert!(inventory("- a\n").unwrap_err().message.contains("invalid structure"));
        let e = inventory("g:\n  children:\n    g:\n").unwrap_err();
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn detection() {
        let yes = load("all:\n  hosts: {a: }\n").unwrap().unwrap();
        assert!(looks_like_yaml_inventory(&yes));
        let no = load("plugin: aws_ec2\n").unwrap().unwrap();
        assert!(!looks_like_yaml_inventory(&no));
    }
}
