//! Ansible's INI inventory plugin (`ansible/plugins/inventory/ini.py`),
//! line for line.
//!
//! It exists because INI inventories are still the most common kind, and
//! what Ansible makes of one is decided by that plugin's particular rules
//! rather than by any INI standard: an implicit `[ungrouped]` section before
//! the first header, `shlex` splitting of host lines (quotes vanish, `#`
//! starts a comment even inside a word), `literal_eval` for every value
//! (which is why `x="1"` is an int on a host line but the string "1" in a
//! `[g:vars]` section), children and `:vars` allowed before their group exists
//! (checked at the end of the file), and host variables that land on a
//! group when the host shares its name. Everything goes through
//! [`ParsedInventory`], which mirrors Ansible's `InventoryData`.

use indexmap::IndexMap;
use serde_json::Value;

use super::builder::{ParseError, ParsedInventory};
use super::hostrange::{is_py_space, is_py_word, parse_host_pattern, py_repr};
use super::pyliteral::parse_value;

/// Ansible's INI inventory plugin: reads `text` into `inv` the way
/// `InventoryModule.parse` does, or fails with the 1-based line Ansible was
/// on and a message close to Ansible's.
pub fn parse_ini_inventory(text: &str, inv: &mut ParsedInventory) -> Result<(), ParseError> {
    let mut parser = IniParser { inv, pending: IndexMap::new() };
    let mut groupname = "ungrouped".to_string();
    let mut state = State::Hosts;

    for (index, raw) in py_splitlines(text).into_iter().enumerate() {
        let lineno = index + 1;
        let at = |message: String| ParseError::at(lineno, message);
        let line = raw.trim_matches(is_py_space);
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }

        if let Some((name, tag)) = match_section(line) {
            // ini.py calls `to_safe_group_name` from ansible.inventory.group,
            // which changes nothing unless TRANSFORM_INVALID_GROUP_CHARS is
            // set: with the default ('never') `[web-1]` stays `web-1`.
            groupname = name.to_string();
            state = match tag.unwrap_or("hosts") {
                "hosts" => State::Hosts,
                "children" => State::Children,
                "vars" => State::Vars,
                other => {
                    return Err(at(format!("Section [{name}:{other}] has unknown type: {other}")));
                }
            };
            if !parser.inv.groups.contains_key(&groupname) {
                // [g:vars] alone does not declare g: remember to check that
                // something else does before the end of the file.
                if state == State::Vars && !parser.pending.contains_key(&groupname) {
                    parser
                        .pending
                        .insert(groupname.clone(), Pending { line: lineno, state: State::Vars, parents: Vec::new() });
                }
                parser.inv.add_group(&groupname).map_err(at)?;
            }
            if state != State::Vars {
                match parser.pending.get(&groupname).map(|p| p.state) {
                    Some(State::Children) => parser.add_pending_children(&groupname).map_err(at)?,
                    Some(_) => {
                        parser.pending.shift_remove(&groupname);
                    }
                    None => {}
                }
            }
            continue;
        } else if line.starts_with('[') && line.ends_with(']') {
            return Err(at(format!(
                "Invalid section entry: '{line}'. Please make sure that there are no spaces in the section \
                 entry, and that there are no other invalid characters"
            )));
        }

        match state {
            State::Hosts => {
                let (hosts, port, variables) = parse_host_definition(line).map_err(at)?;
                parser.populate_host_vars(&hosts, &variables, &groupname, port).map_err(at)?;
            }
            State::Vars => {
                let (key, value) = parse_variable_definition(line).map_err(at)?;
                parser.set_variable(&groupname, &key, value).map_err(at)?;
            }
            State::Children => {
                let child = parse_group_name(line).ok_or_else(|| at(format!("Expected group name, got: {line}")))?;
                if parser.inv.groups.contains_key(child) {
                    parser.inv.add_child(&groupname, child).map_err(at)?;
                } else {
                    // A child may be declared later in the file.
                    match parser.pending.get_mut(child) {
                        Some(p) => p.parents.push(groupname.clone()),
                        None => {
                            parser.pending.insert(
                                child.to_string(),
                                Pending { line: lineno, state: State::Children, parents: vec![groupname.clone()] },
                            );
                        }
                    }
                }
            }
        }
    }

    // Only the first unresolved reference is reported, at the line that
    // made it.
    if let Some((name, decl)) = parser.pending.first() {
        let message = match decl.state {
            State::Vars => format!("Section [{name}:vars] not valid for undefined group {}.", py_repr(name)),
            _ => {
                let parent = decl.parents.last().map(String::as_str).unwrap_or_default();
                format!("Section [{parent}:children] includes undefined group {}.", py_repr(name))
            }
        };
        return Err(ParseError::at(decl.line, message));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
}

/// A group named before it was declared, as in `pending_declarations`.
#[derive(Debug)]
struct Pending {
    line: usize,
    state: State,
    parents: Vec<String>,
}

struct IniParser<'a> {
    inv: &'a mut ParsedInventory,
    pending: IndexMap<String, Pending>,
}

impl IniParser<'_> {
    /// `_add_pending_children`: attach `group` to the parents that named it,
    /// and (recursively) any parent that was itself waiting as a child.
    fn add_pending_children(&mut self, group: &str) -> Result<(), String> {
        let mut stack = vec![group.to_string()];
        let mut guard = 0usize;
        while let Some(g) = stack.pop() {
            guard += 1;
            if guard > 100_000 {
                return Err("maximum recursion depth exceeded resolving pending children".into());
            }
            let parents = match self.pending.get(&g) {
                Some(p) => p.parents.clone(),
                None => continue,
            };
            let mut recurse = Vec::new();
            for parent in &parents {
                self.inv.add_child(parent, &g)?;
                if self.pending.get(parent).is_some_and(|p| p.state == State::Children) {
                    recurse.push(parent.clone());
                }
            }
            self.pending.shift_remove(&g);
            stack.extend(recurse.into_iter().rev());
        }
        Ok(())
    }

    /// `_populate_host_vars` through `InventoryData.add_host` and
    /// `set_variable`.
    fn populate_host_vars(
        &mut self,
        hosts: &[String],
        variables: &IndexMap<String, Value>,
        group: &str,
        port: Option<u16>,
    ) -> Result<(), String> {
        for host in hosts {
            // `Host(name, port)` only runs for a new host, and `if port:`
            // skips port 0.
            let port = if self.inv.hosts.contains_key(host) { None } else { port.filter(|&p| p != 0) };
            if host.is_empty() {
                return Err("Invalid empty host name provided: ".into());
            }
            self.inv.add_host(host, Some(group), port)?;
            for (k, v) in variables {
                self.set_variable(host, k, v.clone())?;
            }
        }
        Ok(())
    }

    /// `InventoryData.set_variable`.
    fn set_variable(&mut self, entity: &str, key: &str, value: Value) -> Result<(), String> {
        super::set_variable(self.inv, entity, key, value)
    }
}

/// `_parse_host_definition`: host pattern, port and inline variables.
#[allow(clippy::type_complexity)]
fn parse_host_definition(line: &str) -> Result<(Vec<String>, Option<u16>, IndexMap<String, Value>), String> {
    let tokens = shlex_split(line).map_err(|e| format!("Error parsing host definition '{line}': {e}"))?;
    let Some(pattern) = tokens.first() else {
        return Err("list index out of range".into());
    };
    let (hostnames, port) = expand_hostpattern(pattern)?;
    let mut variables = IndexMap::new();
    for t in &tokens[1..] {
        let Some((k, v)) = t.split_once('=') else {
            return Err(format!("Expected key=value host variable assignment, got: {t}"));
        };
        variables.insert(k.to_string(), parse_value(v)?);
    }
    Ok((hostnames, port, variables))
}

/// The INI plugin's `_expand_hostpattern`: the common expansion plus two
/// checks of its own.
fn expand_hostpattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let (hostnames, port) = parse_host_pattern(pattern)?;
    if pattern.trim_matches(is_py_space).ends_with(':') && port.is_none() {
        return Err(format!(
            "Invalid host pattern '{pattern}' supplied, ending in ':' is not allowed, this character is reserved \
             to provide a port."
        ));
    }
    if hostnames.iter().any(|h| h.trim_matches(is_py_space) == "---") {
        return Err(format!(
            "Invalid host pattern '{pattern}' supplied, '---' is normally a sign this is a YAML file."
        ));
    }
    Ok((hostnames, port))
}

/// `_parse_variable_definition`: everything after the first `=` is the
/// value (comments included), read with literal_eval like host variables.
fn parse_variable_definition(line: &str) -> Result<(String, Value), String> {
    let Some((k, v)) = line.split_once('=') else {
        return Err(format!("Expected key=value, got: {line}"));
    };
    Ok((k.trim_matches(is_py_space).to_string(), parse_value(v.trim_matches(is_py_space))?))
}

/// The `section` pattern: `^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:\#.*)?$`.
fn match_section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let name_len = rest.find(|c: char| c == ':' || c == ']' || is_py_space(c)).unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let (name, mut rest) = rest.split_at(name_len);
    let mut tag = None;
    if let Some(after) = rest.strip_prefix(':') {
        let word_len = after.find(|c: char| !is_py_word(c)).unwrap_or(after.len());
        if word_len == 0 {
            return None;
        }
        tag = Some(&after[..word_len]);
        rest = &after[word_len..];
    }
    let rest = rest.strip_prefix(']')?.trim_start_matches(is_py_space);
    (rest.is_empty() || rest.starts_with('#')).then_some((name, tag))
}

/// The `groupname` pattern: `^([^:\]\s]+)\s*(?:\#.*)?$`, including the
/// backtracking that lets `a#b:c` be the group `a` with a comment.
fn parse_group_name(line: &str) -> Option<&str> {
    let run = line.find(|c: char| c == ':' || c == ']' || is_py_space(c)).unwrap_or(line.len());
    if run == 0 {
        return None;
    }
    let tail = line[run..].trim_start_matches(is_py_space);
    if tail.is_empty() || tail.starts_with('#') {
        return Some(&line[..run]);
    }
    match line[..run].rfind('#') {
        Some(k) if k > 0 => Some(&line[..k]),
        _ => None,
    }
}

/// `str.splitlines()`: every line boundary Python knows, `\r\n` as one.
fn py_splitlines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break =
            matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}');
        if !is_break {
            continue;
        }
        lines.push(&text[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = chars.peek() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// `shlex.split(line, comments=True)` in POSIX mode: quotes group and
/// vanish, a backslash escapes (inside double quotes only before `"` and
/// `\`), and `#` starts a comment even in the middle of a word.
fn shlex_split(s: &str) -> Result<Vec<String>, &'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Between,
        Word,
        Quote(char),
        Escape(Option<char>),
    }
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    let mut state = St::Between;
    let mut chars = s.chars();
    loop {
        let next = chars.next();
        match state {
            St::Between | St::Word => match next {
                None => {
                    if state == St::Word || quoted {
                        tokens.push(std::mem::take(&mut token));
                    }
                    return Ok(tokens);
                }
                Some(c) if is_ws(c) => {
                    if state == St::Word || quoted {
                        tokens.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = St::Between;
                }
                Some('#') => {
                    // readline(): the rest of the line is gone.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                    if state == St::Word || quoted {
                        tokens.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = St::Between;
                }
                Some('\\') => state = St::Escape(None),
                Some(q @ ('\'' | '"')) => state = St::Quote(q),
                Some(c) => {
                    token.push(c);
                    state = St::Word;
                }
            },
            St::Quote(q) => {
                quoted = true;
                match next {
                    None => return Err("No closing quotation"),
                    Some(c) if c == q => state = St::Word,
                    Some('\\') if q == '"' => state = St::Escape(Some(q)),
                    Some(c) => token.push(c),
                }
            }
            St::Escape(in_quote) => {
                let Some(c) = next else {
                    return Err("No escaped character");
                };
                if in_quote.is_some_and(|q| c != '\\' && c != q) {
                    token.push('\\');
                }
                token.push(c);
                state = match in_quote {
                    Some(q) => St::Quote(q),
                    None => St::Word,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> ParsedInventory {
        let mut inv = ParsedInventory::new();
        parse_ini_inventory(text, &mut inv).unwrap();
        inv
    }

    fn error(text: &str) -> ParseError {
        let mut inv = ParsedInventory::new();
        parse_ini_inventory(text, &mut inv).unwrap_err()
    }

    fn names(set: &indexmap::IndexSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    #[test]
    fn sections_hosts_and_the_implicit_ungrouped() {
        let inv = parse(
            "# comment\n; also a comment\nlone\n\n[web]\nweb[01:02] ansible_port=22\n\
             [db:children]\nweb\n[db:vars]\nflag=yes\n",
        );
        assert_eq!(names(&inv.groups["ungrouped"].hosts), ["lone"]);
        assert_eq!(names(&inv.groups["web"].hosts), ["web01", "web02"]);
        assert_eq!(names(&inv.groups["db"].children), ["web"]);
        assert_eq!(inv.groups["db"].vars["flag"], json!("yes"));
        assert_eq!(inv.hosts["web01"].vars["ansible_port"], json!(22));
        assert_eq!(inv.groups.keys().collect::<Vec<_>>(), ["all", "ungrouped", "web", "db"]);
    }

    #[test]
    fn quotes_decide_types_differently_on_host_lines_and_in_vars() {
        let inv = parse("h x=\"1\" y='\"1\"' z=[1,2] w=\"a b\" c=v#comment\n[all:vars]\nx=\"1\"\ny=1 # trailing\n");
        let h = &inv.hosts["h"].vars;
        // shlex removes the quotes before literal_eval sees the value.
        assert_eq!(h["x"], json!(1));
        assert_eq!(h["y"], json!("1"));
        assert_eq!(h["z"], json!([1, 2]));
        assert_eq!(h["w"], json!("a b"));
        assert_eq!(h["c"], json!("v"));
        let all = &inv.groups["all"].vars;
        assert_eq!(all["x"], json!("1"));
        // A comment is Python syntax to literal_eval.
        assert_eq!(all["y"], json!(1));
    }

    #[test]
    fn forward_references_resolve_or_fail_at_the_end() {
        let inv = parse("[parent:children]\nkid\n[kid:vars]\nv=1\n[kid]\nh\n");
        assert_eq!(names(&inv.groups["parent"].children), ["kid"]);
        assert_eq!(inv.groups["kid"].vars["v"], json!(1));

        let e = error("[a:children]\nmissing\n[b:children]\nmissing\n");
        assert_eq!(e, ParseError::at(2, "Section [b:children] includes undefined group 'missing'."));
        let e = error("[g:vars]\nx=1\n");
        assert_eq!(e, ParseError::at(1, "Section [g:vars] not valid for undefined group 'g'."));
    }

    #[test]
    fn ports_apply_once_and_port_zero_is_ignored() {
        let inv = parse("h:2222\nh:3333\nz:0\n[::1]:22\n");
        assert_eq!(inv.hosts["h"].vars["ansible_port"], json!(2222));
        assert!(!inv.hosts["z"].vars.contains_key("ansible_port"));
        assert_eq!(inv.hosts["::1"].vars["ansible_port"], json!(22));
    }

    #[test]
    fn a_host_named_like_a_group_gives_its_variables_to_the_group() {
        let inv = parse("[web]\nweb x=1 ansible_group_priority=\"1_0\"\n");
        assert_eq!(inv.groups["web"].vars["x"], json!(1));
        assert_eq!(inv.groups["web"].priority, Some(10));
        assert!(inv.hosts["web"].vars.is_empty());
    }

    #[test]
    fn group_names_are_kept_as_written() {
        let inv = parse("[web-1]\nh\n[1st:children]\nweb-1\n[café]\n");
        assert_eq!(names(&inv.groups["1st"].children), ["web-1"]);
        assert!(inv.groups.contains_key("café"));
        // `#` ends the name only where the rest cannot be part of it.
        let inv = parse("[web]\n[p:children]\nweb#x\n[web#x]\n[q:children]\nweb#x:y\n");
        assert_eq!(names(&inv.groups["p"].children), ["web#x"]);
        assert_eq!(names(&inv.groups["q"].children), ["web"]);
    }

    #[test]
    fn ansible_errors_with_their_lines() {
        let cases: &[(&str, usize, &str)] = &[
            ("[g:nope]\n", 1, "Section [g:nope] has unknown type: nope"),
            ("\n[a b]\n", 2, "Invalid section entry: '[a b]'. Please make sure that there are no spaces in the section entry, and that there are no other invalid characters"),
            ("[g:vars]\nnovalue\n", 2, "Expected key=value, got: novalue"),
            ("[g:children]\na:b\n", 2, "Expected group name, got: a:b"),
            ("[g:children]\na ; c\n", 2, "Expected group name, got: a ; c"),
            ("h x=1 ; c\n", 1, "Expected key=value host variable assignment, got: ;"),
            ("h x='1\n", 1, "Error parsing host definition 'h x='1': No closing quotation"),
            ("h\\\n", 1, "Error parsing host definition 'h\\': No escaped character"),
            ("host:\n", 1, "Invalid host pattern 'host:' supplied, ending in ':' is not allowed, this character is reserved to provide a port."),
            ("---\n", 1, "Invalid host pattern '---' supplied, '---' is normally a sign this is a YAML file."),
            ("ok\nh[a:3]\n", 2, "invalid literal for int() with base 10: 'a'"),
            ("h x={[]:1}\n", 1, "unhashable type: 'list' as a dict key"),
            ("\u{feff}[web]\n", 1, "host range must be begin:end or begin:end:step"),
        ];
        for (text, line, message) in cases {
            assert_eq!(error(text), ParseError::at(*line, *message), "{text:?}");
        }
    }

    #[test]
    fn cycles_and_self_children_fail() {
        assert_eq!(error("[a:children]\nb\n[b:children]\na\n").line, Some(4));
        assert_eq!(error("[a:children]\na\n").line, Some(2));
        assert_eq!(error("[a:children]\nall\n").line, Some(2));
    }

    #[test]
    fn python_line_splitting_and_stripping() {
        let inv = parse("a\r\nb\x0bc\u{2028}\x1f[g]\x1f\nd\n");
        assert_eq!(names(&inv.groups["ungrouped"].hosts), ["a", "b", "c"]);
        assert_eq!(names(&inv.groups["g"].hosts), ["d"]);
        assert_eq!(error("a\r\n\r\n[x y]").line, Some(3));
    }

    #[test]
    fn shlex_rules() {
        let split = |s: &str| shlex_split(s).unwrap();
        assert_eq!(split(r#"a "b c" 'd e'f x=\"y\" g#h i"#), ["a", "b c", "d ef", "x=\"y\"", "g"]);
        assert_eq!(split(r#""a\"b\n" '' x="""#), ["a\"b\\n", "", "x="]);
        assert_eq!(split(r"a\ b\#c"), ["a b#c"]);
        assert_eq!(split("a\x0cb\tc"), ["a\x0cb", "c"]);
    }
}
