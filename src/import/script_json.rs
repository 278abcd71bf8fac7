//! The JSON an inventory script (or `ansible-inventory --list`) prints,
//! read the way ansible-core's `script` inventory plugin
//! (`plugins/inventory/script.py`, 2.19) reads it:
//!
//! * `_meta` must be a dict with a dict `hostvars` (an `_meta` without
//!   `hostvars` is an error); without `_meta` at all, each host's variables
//!   come from running the script with `--host NAME`.
//! * A group given as a list (`{"web": ["h1"]}`) is its host list; a dict
//!   without `hosts`, `vars` or `children` is a "malformed group": the group
//!   gets one host of its own name, and the dict becomes its variables.
//! * Trust (the `inventory_legacy` JSON profile): only strings under
//!   `GROUP.vars` and `_meta.hostvars.HOST` may be templates. Anything else
//!   that ends up as a variable, i.e. the variables of a malformed group, is
//!   untrusted, which Craton keeps as the `{"__ansible_unsafe": s}` envelope
//!   Ansible itself prints. `--host` output is trusted throughout.
//! * `{"__ansible_unsafe": s}` and `{"__ansible_vault": s}` objects are the
//!   decoder's tagged values; other keys of such an object are dropped.

use serde_json::{Map, Value};

use super::builder::{ParseError, ParsedInventory};

/// Script output has `_meta` or groups whose `hosts` is a list; the YAML
/// inventory structure (which JSON can also spell) has mappings there.
pub fn looks_like_script_output(text: &str) -> bool {
    match serde_json::from_str::<Map<String, Value>>(text) {
        Ok(m) => {
            m.contains_key("_meta")
                || m.values().any(|g| {
                    g.get("hosts").is_some_and(Value::is_array) || g.get("children").is_some_and(Value::is_array)
                })
        }
        Err(_) => false,
    }
}

fn json_error(e: serde_json::Error) -> ParseError {
    ParseError::new(Some(e.line()).filter(|&l| l > 0), format!("invalid JSON: {e}"))
}

/// Python's `native_type_name` of the value json.loads would give.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// The decoder's object hook (tagged values) and, for `untrusted` values,
/// the trust the `inventory_legacy` profile withholds.
fn decode(v: Value, untrusted: bool) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if untrusted => unsafe_str(s),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| decode(i, untrusted)).collect::<Result<_, _>>()?),
        Value::Object(mut m) => {
            for key in ["__ansible_unsafe", "__ansible_vault"] {
                if let Some(inner) = m.shift_remove(key) {
                    let Value::String(s) = inner else {
                        return Err(format!("{key} is <class '{}'> not <class 'str'>", type_name(&inner)));
                    };
                    return Ok(Value::Object(Map::from_iter([(key.to_string(), Value::String(s))])));
                }
            }
            if m.contains_key("__ansible_type") {
                return Err("tagged values (__ansible_type) are not allowed by the inventory_legacy profile".into());
            }
            Value::Object(m.into_iter().map(|(k, v)| Ok((k, decode(v, untrusted)?))).collect::<Result<_, String>>()?)
        }
        other => other,
    })
}

fn unsafe_str(s: String) -> Value {
    Value::Object(Map::from_iter([("__ansible_unsafe".to_string(), Value::String(s))]))
}

/// Asks the script for one host's variables (`SCRIPT --host NAME`),
/// returning its stdout.
pub type AskHost<'a> = &'a mut dyn FnMut(&str) -> Result<String, ParseError>;

/// What reading script output found besides the inventory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScriptRead {
    /// The output had no `_meta` and nothing could be asked with `--host`:
    /// the hosts got no variables of their own.
    pub hostvars_missing: bool,
}

/// Reads script output `text` into `inv`. Without `_meta`, `ask_host` is
/// called once per host, as Ansible runs `--host`; without a script to ask
/// (stdin, a saved file) the hosts get no variables and the result says so.
pub fn parse_script_json(
    text: &str,
    inv: &mut ParsedInventory,
    mut ask_host: Option<AskHost>,
) -> Result<ScriptRead, ParseError> {
    let doc: Value = serde_json::from_str(text).map_err(json_error)?;
    let err = |m: String| ParseError::new(None, m);
    let Value::Object(doc) = doc else {
        return Err(err(format!("Value is '{}' instead of 'dict'.", type_name(&doc))));
    };
    // detect_profile_name, before anything is read.
    if let Some(meta) = doc.get("_meta") {
        let Value::Object(meta) = meta else {
            return Err(err(format!("Value contains '_meta' which is '{}' instead of 'dict'.", type_name(meta))));
        };
        match meta.get("profile") {
            None => {}
            Some(Value::String(p)) if p == "inventory_legacy" => {}
            Some(Value::String(p)) if !p.starts_with("inventory_") => {
                return Err(err(format!("Non-inventory profile '{p}' is not allowed.")));
            }
            Some(Value::String(p)) => return Err(err(format!("Unable to get JSON decoder for profile '{p}'."))),
            Some(other) => {
                return Err(err(format!(
                    "Value contains '_meta.profile' which is '{}' instead of 'str'.",
                    type_name(other)
                )))
            }
        }
    }
    let mut hosts_seen: indexmap::IndexSet<String> = indexmap::IndexSet::new();
    let mut hostvars: Option<Map<String, Value>> = None;
    for (group, data) in doc {
        if group == "_meta" {
            match data.get("hostvars") {
                Some(Value::Object(m)) => hostvars = Some(m.clone()),
                other => {
                    let found = other.map(type_name).unwrap_or("NoneType");
                    return Err(err(format!("Value contains '_meta.hostvars' which is '{found}' instead of 'dict'.")));
                }
            }
            continue;
        }
        parse_group(inv, &group, data, &mut hosts_seen).map_err(err)?;
    }
    let mut read = ScriptRead::default();
    for host in &hosts_seen {
        let got = match (&hostvars, ask_host.as_mut()) {
            (Some(meta), _) => decode(meta.get(host).cloned().unwrap_or_else(|| Value::Object(Map::new())), false),
            (None, Some(ask)) => {
                let out = ask(host)?;
                if out.trim().is_empty() {
                    Ok(Value::Object(Map::new()))
                } else {
                    let v: Value = serde_json::from_str(&out).map_err(|e| {
                        err(format!("Inventory script result for host '{host}' could not be parsed as JSON: {e}"))
                    })?;
                    decode(v, false)
                }
            }
            (None, None) => {
                read.hostvars_missing = true;
                Ok(Value::Object(Map::new()))
            }
        }
        .map_err(err)?;
        // BaseInventoryPlugin._populate_host_vars([host], got).
        let Value::Object(vars) = got else {
            return Err(err(format!("Invalid data from file, expected dictionary and got:\n\n{got}")));
        };
        for (k, v) in vars {
            super::set_variable(inv, host, &k, v).map_err(err)?;
        }
    }
    Ok(read)
}

/// `InventoryModule._parse_group`.
fn parse_group(
    inv: &mut ParsedInventory,
    group: &str,
    data: Value,
    hosts_seen: &mut indexmap::IndexSet<String>,
) -> Result<(), String> {
    inv.add_group(group)?;
    let (hosts, vars, children) = match data {
        Value::Object(mut m) if ["hosts", "vars", "children"].iter().any(|k| m.contains_key(*k)) => {
            let vars = m.shift_remove("vars").map(|v| decode(v, false)).transpose()?;
            (m.shift_remove("hosts"), vars, m.shift_remove("children"))
        }
        // A malformed group: the sole host of that group, its variables
        // untrusted ("cannot be templated").
        Value::Object(m) => {
            (Some(Value::Array(vec![Value::String(group.to_string())])), Some(decode(Value::Object(m), true)?), None)
        }
        other => (Some(other), None, None),
    };
    if let Some(hosts) = hosts {
        let Value::Array(hosts) = hosts else {
            return Err(format!("Value contains '{group}.hosts' which is '{}' instead of 'list'.", type_name(&hosts)));
        };
        for h in hosts {
            let Value::String(h) = h else {
                return Err(format!("Invalid host name supplied, expected a string but got {} for {h}", type_name(&h)));
            };
            inv.add_host(&h, Some(group), None)?;
            hosts_seen.insert(h);
        }
    }
    if let Some(vars) = vars {
        let Value::Object(vars) = vars else {
            return Err(format!("Value contains '{group}.vars' which is '{}' instead of 'dict'.", type_name(&vars)));
        };
        for (k, v) in vars {
            super::set_variable(inv, group, &k, v)?;
        }
    }
    if let Some(children) = children {
        // `for child_name in data['children']`: whatever Python iterates.
        let names: Vec<Value> = match children {
            Value::Array(items) => items,
            Value::Object(m) => m.into_iter().map(|(k, _)| Value::String(k)).collect(),
            Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
            other => return Err(format!("'{}' object is not iterable", type_name(&other))),
        };
        for c in names {
            let Value::String(c) = c else {
                return Err(format!(
                    "Invalid group name supplied, expected a string but got {} for {c}",
                    type_name(&c)
                ));
            };
            inv.add_group(&c)?;
            inv.add_child(group, &c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> ParsedInventory {
        let mut inv = ParsedInventory::new();
        parse_script_json(text, &mut inv, None).unwrap();
        inv
    }

    #[test]
    fn reads_list_output() {
        let text = r#"{"all": {"children": ["ungrouped", "web"], "vars": {"env": "lab"}},
            "web": {"hosts": ["w1"], "vars": {"ansible_group_priority": 3, "p": 80}},
            "ungrouped": {"hosts": ["u1"]},
            "_meta": {"hostvars": {"w1": {"a": [1, {"b": null}]}, "ghost": {"x": 1}}}}"#;
        assert!(looks_like_script_output(text));
        let inv = parse(text);
        assert_eq!(inv.groups["web"].priority, Some(3));
        assert_eq!(inv.hosts["w1"].vars["a"], json!([1, {"b": null}]));
        assert!(!inv.hosts.contains_key("ghost"), "hosts only in hostvars are dropped, as Ansible does");
        assert_eq!(inv.groups["all"].vars["env"], json!("lab"));
    }

    #[test]
    fn errors_name_the_line() {
        let mut inv = ParsedInventory::new();
        let e = parse_script_json("{\n \"web\": {\"hosts\": [\"a\",]}\n}", &mut inv, None).unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
        let e = parse_script_json(r#"{"web": {"hosts": {"a": 1}}}"#, &mut inv, None).unwrap_err();
        assert_eq!(e.message, "Value contains 'web.hosts' which is 'dict' instead of 'list'.");
    }

    #[test]
    fn script_list_form_group() {
        let inv = parse(r#"{"web": ["h1", "h2"], "_meta": {"hostvars": {}}}"#);
        assert_eq!(inv.groups["web"].hosts.iter().collect::<Vec<_>>(), ["h1", "h2"]);
    }

    #[test]
    fn script_malformed_group_vars_are_unsafe() {
        let inv = parse(
            r#"{"_meta": {"hostvars": {"foobar": {}}}, "all": {"hosts": ["foobar"]},
                "vars": {"foobar": ["barfoo", 1, {"__ansible_unsafe": "u", "x": 2}, {"k": "{{ t }}"}]}}"#,
        );
        assert_eq!(inv.groups["vars"].hosts.iter().collect::<Vec<_>>(), ["vars"]);
        // The host shares the group's name: Ansible's set_variable gives
        // the variables to the group.
        assert_eq!(
            inv.groups["vars"].vars["foobar"],
            json!([{"__ansible_unsafe": "barfoo"}, 1, {"__ansible_unsafe": "u"}, {"k": {"__ansible_unsafe": "{{ t }}"}}])
        );
        let trusted = parse(r#"{"g": {"vars": {"v": "{{ t }}"}}, "_meta": {"hostvars": {}}}"#);
        assert_eq!(trusted.groups["g"].vars["v"], json!("{{ t }}"));
    }

    #[test]
    fn meta_without_hostvars_is_an_error_and_no_meta_asks_each_host() {
        let mut inv = ParsedInventory::new();
        let e = parse_script_json(r#"{"_meta": {}, "web": ["a"]}"#, &mut inv, None).unwrap_err();
        assert_eq!(e.message, "Value contains '_meta.hostvars' which is 'NoneType' instead of 'dict'.");
        let mut inv = ParsedInventory::new();
        let mut asked = Vec::new();
        let mut ask = |h: &str| {
            asked.push(h.to_string());
            Ok(if h == "a" { format!("{{\"me\": \"{h}\"}}") } else { " \n".to_string() })
        };
        let read = parse_script_json(r#"{"web": ["a", "b"], "db": ["a"]}"#, &mut inv, Some(&mut ask)).unwrap();
        assert_eq!(read, ScriptRead::default());
        assert_eq!(asked, ["a", "b"]);
        assert_eq!(inv.hosts["a"].vars["me"], json!("a"));
        assert!(inv.hosts["b"].vars.is_empty());
        let mut inv = ParsedInventory::new();
        let read = parse_script_json(r#"{"web": ["a"]}"#, &mut inv, None).unwrap();
        assert!(read.hostvars_missing);
    }

    #[test]
    fn python_iteration_of_children_and_type_names() {
        let inv =
            parse(r#"{"p": {"children": {"c1": 1, "c2": 2}}, "q": {"children": "xy"}, "_meta": {"hostvars": {}}}"#);
        assert_eq!(inv.groups["p"].children.iter().collect::<Vec<_>>(), ["c1", "c2"]);
        assert_eq!(inv.groups["q"].children.iter().collect::<Vec<_>>(), ["x", "y"]);
        let mut inv = ParsedInventory::new();
        let e = parse_script_json(r#"{"g": {"vars": null}}"#, &mut inv, None).unwrap_err();
        assert_eq!(e.message, "Value contains 'g.vars' which is 'NoneType' instead of 'dict'.");
        let e = parse_script_json("[1]", &mut inv, None).unwrap_err();
        assert_eq!(e.message, "Value is 'list' instead of 'dict'.");
    }
}
