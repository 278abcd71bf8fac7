//! Reading existing Ansible inventories: YAML, INI, the JSON a script or
//! `ansible-inventory --list` prints, and directories of those with
//! `group_vars/` and `host_vars/`. Parsing produces a [`Desired`] inventory
//! and touches no database; bad input stops here, naming file and line.
//!
//! Ansible itself is the specification: each parser mirrors the ansible-core
//! plugin of the same format, all of them feed [`builder::ParsedInventory`]
//! (a mirror of Ansible's `InventoryData`), and vars files are found and
//! merged as the `host_group_vars` plugin does.

pub mod builder;
pub mod hostrange;
pub mod ini;
pub mod pyliteral;
pub mod script_json;
pub mod vars_files;
pub mod yaml11;
pub mod yaml_inventory;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::desired::{Desired, DesiredGroup, DesiredHost};
use crate::model::{raw_from_value, OwnVars, Tier, Var};
pub use crate::names::check_name;
use builder::{ParseError, ParsedInventory};

/// An import failure: which file, which line (where the format has lines), what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ImportError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ImportError {
    pub fn new(file: &Path, e: ParseError) -> Self {
        ImportError { file: file.display().to_string(), line: e.line, message: e.message }
    }
    fn msg(file: &Path, message: impl Into<String>) -> Self {
        ImportError { file: file.display().to_string(), line: None, message: message.into() }
    }
}

/// The result of reading an input.
#[derive(Debug, Default)]
pub struct Imported {
    pub desired: Desired,
    /// Things Ansible would also have skipped, worth telling the operator.
    pub warnings: Vec<String>,
}

/// Files Ansible skips in an inventory directory (`INVENTORY_IGNORE_EXTS`
/// and the always-ignored names).
fn ignored_in_dir(name: &str) -> bool {
    const EXTS: [&str; 12] =
        [".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

fn read_text(path: &Path) -> Result<String, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::msg(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        ImportError { file: path.display().to_string(), line: Some(line), message: "not valid UTF-8".into() }
    })
}

/// Parses one inventory file into `inv`, choosing the format as Ansible's
/// plugin chain would (script JSON is recognised by its shape).
fn parse_file(path: &Path, inv: &mut ParsedInventory) -> Result<(), ImportError> {
    let text = read_text(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    if ext == ".toml" {
        return Err(ImportError::msg(path, "TOML inventories are not supported; convert to YAML or INI"));
    }
    if text.trim_start().starts_with('{') && script_json::looks_like_script_output(&text) {
        return script_json::parse_script_json(&text, inv).map_err(|e| ImportError::new(path, e));
    }
    let yaml_ext = matches!(ext.as_str(), ".yml" | ".yaml" | ".json");
    if yaml_ext || ext.is_empty() {
        // Ansible's yaml plugin reads through its DataLoader: JSON first.
        match yaml11::load_data_node(&text) {
            Ok(Some(root)) if matches!(root.kind, yaml11::NodeKind::Map(_)) => {
                return yaml_inventory::parse_yaml_inventory(&root, inv).map_err(|e| ImportError::new(path, e));
            }
            Ok(None) if yaml_ext => return Ok(()),
            Ok(_) if yaml_ext => {
                return Err(ImportError::msg(path, "YAML inventory has invalid structure, it should be a dictionary"));
            }
            Err(e) if yaml_ext => return Err(ImportError::new(path, e)),
            // No extension and not a YAML mapping: Ansible's next plugin is INI.
            _ => {}
        }
    }
    ini::parse_ini_inventory(&text, inv).map_err(|e| ImportError::new(path, e))
}

fn parse_source(path: &Path, inv: &mut ParsedInventory) -> Result<(), ImportError> {
    if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|e| ImportError::msg(path, format!("cannot read directory: {e}")))?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        names.sort();
        for name in names.into_iter().filter(|n| !ignored_in_dir(n)) {
            parse_source(&path.join(name), inv)?;
        }
        Ok(())
    } else {
        parse_file(path, inv)
    }
}

/// Reads an inventory: a file, a directory, or `-` for script JSON on stdin.
pub fn import_path(path: &str) -> Result<Imported, ImportError> {
    let mut inv = ParsedInventory::new();
    let mut warnings = Vec::new();
    let vars_dir: Option<PathBuf> = if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| ImportError::msg(Path::new("<stdin>"), format!("cannot read: {e}")))?;
        script_json::parse_script_json(&text, &mut inv).map_err(|e| ImportError::new(Path::new("<stdin>"), e))?;
        None
    } else {
        let p = Path::new(path);
        if !p.exists() {
            return Err(ImportError::msg(p, "no such file or directory"));
        }
        if p.is_dir() {
            vars_files::confine_inventory_dir(p)?;
        }
        parse_source(p, &mut inv)?;
        Some(if p.is_dir() { p.to_path_buf() } else { p.parent().map(Path::to_path_buf).unwrap_or_default() })
    };
    let files = match &vars_dir {
        Some(dir) => vars_files::load(dir, &inv, &mut warnings)?,
        None => vars_files::VarsFiles::default(),
    };
    Ok(Imported { desired: to_desired(inv, files), warnings })
}

fn own_vars(inline: &indexmap::IndexMap<String, Value>, files: Option<&indexmap::IndexMap<String, Value>>) -> OwnVars {
    let mut out: OwnVars =
        inline.iter().map(|(k, v)| (k.clone(), Var { value: raw_from_value(v), tier: Tier::Inventory })).collect();
    // A vars file value always beats the same owner's inline value in
    // Ansible, so one row per key (the file's, on the file tier) is lossless.
    for (k, v) in files.into_iter().flatten() {
        out.insert(k.clone(), Var { value: raw_from_value(v), tier: Tier::VarsFile });
    }
    out
}

/// Turns Ansible's view of the input into what Craton stores: `all` becomes
/// the project's variables, `ungrouped` is implicit unless it carries
/// variables, and a host whose `physical_host` names another host gets it as
/// parent (OpenStack-Ansible containers).
fn to_desired(inv: ParsedInventory, files: vars_files::VarsFiles) -> Desired {
    let mut d = Desired::default();
    let all = &inv.groups["all"];
    d.all_vars = own_vars(&all.vars, files.groups.get("all"));
    for (name, g) in &inv.groups {
        if name == "all" {
            continue;
        }
        let file_vars = files.groups.get(name);
        // `ungrouped` is implicit in Ansible; it is stored only when the
        // input gives it something of its own.
        if name == "ungrouped"
            && g.vars.is_empty()
            && file_vars.is_none()
            && g.priority.is_none()
            && g.children.is_empty()
            && g.hosts.is_empty()
        {
            continue;
        }
        d.groups.insert(
            name.clone(),
            DesiredGroup {
                priority: g.priority,
                all_position: all.children.get_index_of(name).map(|i| i as i32),
                vars: own_vars(&g.vars, file_vars),
                children: g.children.iter().cloned().collect(),
                hosts: g.hosts.iter().cloned().collect(),
            },
        );
    }
    for (name, h) in &inv.hosts {
        let vars = own_vars(&h.vars, files.hosts.get(name));
        let text = |k: &str| vars.get(k).and_then(|v| serde_json::from_str::<String>(v.value.get()).ok());
        let ip_address = text("ansible_host").filter(|a| a.parse::<IpAddr>().is_ok());
        let parent = text("physical_host").filter(|p| p != name && inv.hosts.contains_key(p));
        d.hosts.insert(name.clone(), DesiredHost { ip_address, parent, vars });
    }
    d
}
