//! Ansible's `toml` inventory plugin (`ansible/plugins/inventory/toml.py`):
//! top-level tables are groups with `vars` (a table), `children` (a list of
//! group names) and `hosts` (a table of host patterns to variable tables).
//! It is one of ansible-core's default plugins, so a `.toml` inventory is as
//! much an Ansible inventory as an INI file.
//!
//! Values are what Python's `tomllib` gives and `ansible-inventory --list`
//! prints, keys in document order; dates and datetimes are kept typed
//! (`{"__craton_timestamp": isoformat}`, see [`crate::typed`]), times of day
//! as their `isoformat()` text. The `toml` crate follows TOML 1.1,
//! a little more than Python 3.11's `tomllib` (1.0) accepts.

use serde_json::Value;

use super::builder::{ParseError, ParsedInventory};
use super::hostrange::parse_host_pattern;

/// Python's `type(v)` as the plugin's messages print it.
fn class(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "<class 'str'>",
        toml::Value::Integer(_) => "<class 'int'>",
        toml::Value::Float(_) => "<class 'float'>",
        toml::Value::Boolean(_) => "<class 'bool'>",
        toml::Value::Datetime(d) => match (d.date, d.time) {
            (Some(_), Some(_)) => "<class 'datetime.datetime'>",
            (Some(_), None) => "<class 'datetime.date'>",
            _ => "<class 'datetime.time'>",
        },
        toml::Value::Array(_) => "<class 'list'>",
        toml::Value::Table(_) => "<class 'dict'>",
    }
}

/// `datetime.isoformat()` of what tomllib builds (microseconds, truncated).
fn isoformat(d: &toml::value::Datetime) -> String {
    let mut s = String::new();
    if let Some(date) = d.date {
        s.push_str(&format!("{:04}-{:02}-{:02}", date.year, date.month, date.day));
    }
    if let Some(t) = d.time {
        if d.date.is_some() {
            s.push('T');
        }
        s.push_str(&format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second));
        let micros = t.nanosecond / 1000;
        if micros != 0 {
            s.push_str(&format!(".{micros:06}"));
        }
    }
    match d.offset {
        None => {}
        Some(toml::value::Offset::Z) => s.push_str("+00:00"),
        Some(toml::value::Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            s.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
        }
    }
    s
}

fn to_json(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("the float {f} cannot be stored (JSON has no NaN or infinity)"))?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        // tomllib gives a datetime/date (typed, as from YAML) or a time,
        // which no YAML loader can build again: kept as its text.
        toml::Value::Datetime(d) if d.date.is_some() => crate::typed::timestamp(&isoformat(d)),
        toml::Value::Datetime(d) => Value::String(isoformat(d)),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| Ok((k.clone(), to_json(v)?))).collect::<Result<_, String>>()?)
        }
    })
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `InventoryModule.parse`: fills `inv` from TOML `text`; what the plugin
/// only warns about goes to `warnings`.
pub fn parse_toml_inventory(
    text: &str,
    inv: &mut ParsedInventory,
    warnings: &mut Vec<String>,
) -> Result<(), ParseError> {
    let data: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ParseError::new(line, format!("TOML file is invalid: {}", e.message()))
    })?;
    if data.is_empty() {
        return Err(ParseError::new(None, "Parsed empty TOML file"));
    }
    let truthy = |v: &toml::Value| match v {
        toml::Value::String(s) => !s.is_empty(),
        toml::Value::Integer(i) => *i != 0,
        toml::Value::Float(f) => *f != 0.0,
        toml::Value::Boolean(b) => *b,
        toml::Value::Array(a) => !a.is_empty(),
        toml::Value::Table(t) => !t.is_empty(),
        toml::Value::Datetime(_) => true,
    };
    if data.get("plugin").is_some_and(truthy) {
        return Err(ParseError::new(None, "Plugin configuration TOML file, not TOML inventory"));
    }
    for (name, group) in &data {
        parse_group(inv, name, Some(group), warnings).map_err(|m| ParseError::new(None, m))?;
    }
    Ok(())
}

/// `_parse_group`; `None` stands for the `{}` children are parsed with.
fn parse_group(
    inv: &mut ParsedInventory,
    group: &str,
    data: Option<&toml::Value>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let table = match data {
        None => None,
        Some(toml::Value::Table(t)) => Some(t),
        Some(_) => {
            warnings.push(format!("Skipping '{group}' as this is not a valid group definition"));
            return Ok(());
        }
    };
    inv.add_group(group)?;
    for (key, value) in table.into_iter().flatten() {
        match key.as_str() {
            "vars" => {
                let toml::Value::Table(vars) = value else {
                    return Err(format!(
                        "Invalid \"vars\" entry for \"{group}\" group, requires a dict, found \"{}\" instead.",
                        class(value)
                    ));
                };
                for (k, v) in vars {
                    super::set_variable(inv, group, k, to_json(v)?)?;
                }
            }
            "children" => {
                let toml::Value::Array(children) = value else {
                    return Err(format!(
                        "Invalid \"children\" entry for \"{group}\" group, requires a list, found \"{}\" instead.",
                        class(value)
                    ));
                };
                for child in children {
                    let toml::Value::String(child) = child else {
                        return Err(format!(
                            "Invalid group name supplied, expected a string but got {} for {child:?}",
                            class(child)
                        ));
                    };
                    parse_group(inv, child, None, warnings)?;
                    inv.add_child(group, child)?;
                }
            }
            "hosts" => {
                let toml::Value::Table(hosts) = value else {
                    return Err(format!(
                        "Invalid \"hosts\" entry for \"{group}\" group, requires a dict, found \"{}\" instead.",
                        class(value)
                    ));
                };
                for (pattern, vars) in hosts {
                    let (names, port) = parse_host_pattern(pattern)?;
                    // _populate_host_vars: the value must be a mapping.
                    let toml::Value::Table(vars) = vars else {
                        return Err(format!(
                            "Invalid data from file, expected dictionary and got:\n\n{}",
                            to_json(vars)?
                        ));
                    };
                    for host in &names {
                        let port = port.filter(|&p| p != 0 && !inv.hosts.contains_key(host));
                        inv.add_host(host, Some(group), port)?;
                        for (k, v) in vars {
                            super::set_variable(inv, host, k, to_json(v)?)?;
                        }
                    }
                }
            }
            other => warnings.push(format!(
                "Skipping unexpected key \"{other}\" in group \"{group}\", only \"vars\", \"children\" and \"hosts\" are valid"
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> (ParsedInventory, Vec<String>) {
        let mut inv = ParsedInventory::new();
        let mut w = Vec::new();
        parse_toml_inventory(text, &mut inv, &mut w).unwrap();
        (inv, w)
    }

    #[test]
    fn toml_inventory_groups_hosts_vars_children() {
        let (inv, w) = parse(
            "[all.vars]\nhas_java = false\n\n[web]\nchildren = [\"apache\", \"nginx\"]\nvars = { http_port = 8080, \
             myvar = 23 }\n\n[web.hosts]\nhost1 = {}\n\"host2:2222\" = { ansible_port = 222 }\n\n[apache.hosts]\n\
             \"tomcat[1:2]\" = { t = 1979-05-27T07:32:00.9999999Z }\n\n[nginx.hosts]\njenkins1 = {}\n[odd]\nextra = 1\n",
        );
        assert_eq!(inv.groups.keys().collect::<Vec<_>>(), ["all", "ungrouped", "web", "apache", "nginx", "odd"]);
        assert_eq!(inv.groups["web"].children.iter().collect::<Vec<_>>(), ["apache", "nginx"]);
        assert_eq!(inv.groups["web"].vars["http_port"], json!(8080));
        assert_eq!(inv.hosts["host2"].vars["ansible_port"], json!(222));
        assert_eq!(inv.hosts["tomcat2"].vars["t"], json!({"__craton_timestamp": "1979-05-27T07:32:00.999999+00:00"}));
        assert_eq!(inv.groups["all"].vars["has_java"], json!(false));
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn toml_dates_are_typed_and_times_are_text() {
        let (inv, _) = parse("[g.hosts.h]\nd = 1979-05-27\nl = 1979-05-27T07:32:00\nt = 07:32:00.5\n");
        let v = &inv.hosts["h"].vars;
        assert_eq!(v["d"], json!({"__craton_timestamp": "1979-05-27"}));
        assert_eq!(v["l"], json!({"__craton_timestamp": "1979-05-27T07:32:00"}));
        assert_eq!(v["t"], json!("07:32:00.500000"));
    }

    #[test]
    fn toml_inventory_errors() {
        let err = |t: &str| {
            let mut inv = ParsedInventory::new();
            parse_toml_inventory(t, &mut inv, &mut Vec::new()).unwrap_err()
        };
        assert_eq!(err("").message, "Parsed empty TOML file");
        assert_eq!(err("plugin = \"x\"\n").message, "Plugin configuration TOML file, not TOML inventory");
        assert_eq!(err("a = 1\nb = \n").line, Some(2));
        assert_eq!(
            err("[g]\nvars = [1]\n").message,
            "Invalid \"vars\" entry for \"g\" group, requires a dict, found \"<class 'list'>\" instead."
        );
        assert!(err("[g.hosts]\nh = 1\n").message.starts_with("Invalid data from file"));
        assert!(err("[g.vars]\nx = nan\n").message.contains("cannot be stored"));
    }
}
