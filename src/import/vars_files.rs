//! `group_vars/` and `host_vars/` next to an inventory, found and merged
//! exactly as ansible-core's `host_group_vars` plugin and
//! `DataLoader.find_vars_files` do.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::builder::{ParseError, ParsedInventory};
use super::{read_text, yaml11, ImportError};

/// Extensions Ansible tries, in order (`''` first, so a directory named like
/// the group wins over files).
const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

#[derive(Debug, Default)]
pub struct VarsFiles {
    pub groups: HashMap<String, IndexMap<String, Value>>,
    pub hosts: HashMap<String, IndexMap<String, Value>>,
}

/// Every file of a vars directory, recursively, sorted; hidden and backup
/// files skipped, only known extensions or none.
fn dir_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ImportError::msg(dir, format!("cannot read directory: {e}")))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    names.sort();
    for name in names {
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let p = dir.join(&name);
        let ext = p.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
        if p.is_dir() && ext.is_empty() {
            dir_files(&p, out)?;
        } else if p.is_file() && EXTENSIONS.contains(&ext.as_str()) {
            out.push(p);
        }
    }
    Ok(())
}

/// `DataLoader.find_vars_files(path, name)`.
fn find_vars_files(base: &Path, name: &str) -> Result<Vec<PathBuf>, ImportError> {
    for ext in EXTENSIONS {
        let p = base.join(format!("{name}{ext}"));
        if p.is_dir() {
            let mut out = Vec::new();
            dir_files(&p, &mut out)?;
            return Ok(out);
        }
        if p.exists() {
            return Ok(vec![p]);
        }
    }
    Ok(Vec::new())
}

fn load_entity(base: &Path, name: &str) -> Result<Option<IndexMap<String, Value>>, ImportError> {
    let mut merged: Option<IndexMap<String, Value>> = None;
    for file in find_vars_files(base, name)? {
        let text = read_text(&file)?;
        match yaml11::load_data(&text).map_err(|e| ImportError::new(&file, e))? {
            None => {}
            Some(Value::Object(m)) => merged.get_or_insert_with(IndexMap::new).extend(m),
            Some(_) => {
                return Err(ImportError::new(&file, ParseError::new(Some(1), "a vars file must hold a dictionary")));
            }
        }
    }
    Ok(merged)
}

/// Names a vars directory could be about (file stems and directory names).
fn entries(base: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = rd
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .filter(|n| !n.starts_with('.') && !n.ends_with('~'))
        .map(|n| {
            let stem = EXTENSIONS[1..].iter().find_map(|e| n.strip_suffix(e)).unwrap_or(&n).to_string();
            (stem, n)
        })
        .collect();
    out.sort();
    out
}

pub fn load(dir: &Path, inv: &ParsedInventory, warnings: &mut Vec<String>) -> Result<VarsFiles, ImportError> {
    let mut out = VarsFiles::default();
    for (kind, names, target) in [
        ("group_vars", inv.groups.keys().collect::<Vec<_>>(), &mut out.groups),
        ("host_vars", inv.hosts.keys().collect::<Vec<_>>(), &mut out.hosts),
    ] {
        let base = dir.join(kind);
        if !base.is_dir() {
            continue;
        }
        let known: HashSet<&str> = names.iter().map(|s| s.as_str()).collect();
        for name in names {
            // Ansible skips entities whose name starts with a path separator.
            if name.starts_with('/') {
                continue;
            }
            if let Some(vars) = load_entity(&base, name)? {
                for k in vars.keys() {
                    super::check_name("variable", k)
                        .map_err(|m| ImportError::new(&base.join(name), ParseError::new(None, m)))?;
                }
                target.insert(name.clone(), vars);
            }
        }
        for (stem, file) in entries(&base) {
            if !known.contains(stem.as_str()) {
                warnings.push(format!(
                    "{}: no {} named {stem:?} in the inventory; ignored, as Ansible does",
                    base.join(file).display(),
                    if kind == "group_vars" { "group" } else { "host" }
                ));
            }
        }
    }
    Ok(out)
}
