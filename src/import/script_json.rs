//! The JSON an inventory script (or `ansible-inventory --list`) prints,
//! read the way ansible-core's `script` inventory plugin reads it.

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

fn json_error(text: &str, e: serde_json::Error) -> ParseError {
    let _ = text;
    ParseError::new(Some(e.line()).filter(|&l| l > 0), format!("invalid JSON: {e}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

pub fn parse_script_json(text: &str, inv: &mut ParsedInventory) -> Result<(), ParseError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| json_error(text, e))?;
    let Value::Object(doc) = doc else {
        return Err(ParseError::new(None, format!("inventory JSON is a {} instead of a dict", type_name(&doc))));
    };
    let err = |m: String| ParseError::new(None, m);
    let mut listed_hosts: Vec<String> = Vec::new();
    let mut hostvars: Option<&Map<String, Value>> = None;
    for (group, data) in &doc {
        if group == "_meta" {
            match data.get("hostvars") {
                Some(Value::Object(m)) => hostvars = Some(m),
                Some(other) => {
                    return Err(err(format!("'_meta.hostvars' is a {} instead of a dict", type_name(other))))
                }
                None => {}
            }
            continue;
        }
        inv.add_group(group).map_err(err)?;
        let data = match data {
            Value::Object(m) if ["hosts", "vars", "children"].iter().any(|k| m.contains_key(*k)) => data.clone(),
            Value::Object(_) => serde_json::json!({"hosts": [group], "vars": data}),
            other => serde_json::json!({ "hosts": other }),
        };
        if let Some(hosts) = data.get("hosts") {
            let Value::Array(hosts) = hosts else {
                return Err(err(format!("'{group}.hosts' is a {} instead of a list", type_name(hosts))));
            };
            for h in hosts {
                let h = h
                    .as_str()
                    .ok_or_else(|| err(format!("'{group}.hosts' holds a {} instead of a host name", type_name(h))))?;
                listed_hosts.push(h.to_string());
                inv.add_host(h, Some(group), None).map_err(err)?;
            }
        }
        if let Some(vars) = data.get("vars") {
            let Value::Object(vars) = vars else {
                return Err(err(format!("'{group}.vars' is a {} instead of a dict", type_name(vars))));
            };
            for (k, v) in vars {
                inv.set_group_var(group, k, v.clone()).map_err(err)?;
            }
        }
        if let Some(children) = data.get("children") {
            let Value::Array(children) = children else {
                return Err(err(format!("'{group}.children' is a {} instead of a list", type_name(children))));
            };
            for c in children {
                let c = c.as_str().ok_or_else(|| err(format!("'{group}.children' holds a {}", type_name(c))))?;
                inv.add_group(c).map_err(err)?;
                inv.add_child(group, c).map_err(err)?;
            }
        }
    }
    let empty = Map::new();
    for h in listed_hosts {
        match hostvars.unwrap_or(&empty).get(&h) {
            None => {}
            Some(Value::Object(vars)) => {
                for (k, v) in vars {
                    inv.set_host_var(&h, k, v.clone()).map_err(err)?;
                }
            }
            Some(other) => return Err(err(format!("hostvars of {h:?} are a {} instead of a dict", type_name(other)))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_list_output() {
        let mut inv = ParsedInventory::new();
        let text = r#"{"all": {"children": ["ungrouped", "web"], "vars": {"env": "lab"}},
            "web": {"hosts": ["w1"], "vars": {"ansible_group_priority": 3, "p": 80}},
            "ungrouped": {"hosts": ["u1"]},
            "_meta": {"hostvars": {"w1": {"a": [1, {"b": null}]}, "ghost": {"x": 1}}}}"#;
        assert!(looks_like_script_output(text));
        parse_script_json(text, &mut inv).unwrap();
        assert_eq!(inv.groups["web"].priority, Some(3));
        assert_eq!(inv.hosts["w1"].vars["a"], json!([1, {"b": null}]));
        assert!(!inv.hosts.contains_key("ghost"), "hosts only in hostvars are dropped, as Ansible does");
        assert_eq!(inv.groups["all"].vars["env"], json!("lab"));
    }

    #[test]
    fn errors_name_the_line() {
        let mut inv = ParsedInventory::new();
        let e = parse_script_json("{\n \"web\": {\"hosts\": [\"a\",]}\n}", &mut inv).unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
        let e = parse_script_json(r#"{"web": {"hosts": {"a": 1}}}"#, &mut inv).unwrap_err();
        assert!(e.message.contains("instead of a list"), "{e:?}");
    }
}
