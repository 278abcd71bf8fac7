//! `group_vars/` and `host_vars/` next to an inventory, found and merged
//! exactly as ansible-core's `host_group_vars` plugin and
//! `DataLoader.find_vars_files` do, with two deliberate differences, both
//! because an inventory may come from someone who must not read the
//! server's files (a config ref's repository):
//!
//! - a group or host name that is not a safe file name
//!   ([`crate::names::path_safe`], the rule bundles use to write these files)
//!   never becomes a path: `../../etc/x` is not looked up (Ansible would
//!   read `group_vars/../../etc/x.yml`); a warning says so, whether or not
//!   such a file exists;
//! - every path read is proven to lie inside the inventory directory after
//!   resolving symbolic links ([`Root`]); a link leading out (or nowhere) is
//!   refused, naming the link, never its target.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::builder::{ParseError, ParsedInventory};
use super::{read_text, yaml11, ImportError};
use crate::names::path_safe;

/// Extensions Ansible tries, in order (`''` first, so a directory named like
/// the group wins over files).
const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

#[derive(Debug, Default)]
pub struct VarsFiles {
    pub groups: HashMap<String, IndexMap<String, Value>>,
    pub hosts: HashMap<String, IndexMap<String, Value>>,
}

/// The directory an import may read from, resolved: every path read is
/// checked against it after resolving symbolic links.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: &Path) -> Result<Root, ImportError> {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let canon =
            dir.canonicalize().map_err(|e| ImportError::msg(dir, format!("cannot resolve the directory: {e}")))?;
        Ok(Root(canon))
    }

    /// `Ok(true)` when `path` exists and resolves inside the root, `Ok(false)`
    /// when there is no entry at `path`, and an error naming `path` when it
    /// is a symbolic link leading outside the root or nowhere. The error is
    /// the same in both cases, so it does not tell whether a file outside
    /// exists.
    pub fn admits(&self, path: &Path) -> Result<bool, ImportError> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(false);
        }
        match path.canonicalize() {
            Ok(canon) if canon.starts_with(&self.0) => Ok(true),
            _ => Err(ImportError::msg(
                path,
                "symbolic link that does not lead to a file inside the inventory directory; refused \
                 (Craton reads nothing outside the inventory it imports)",
            )),
        }
    }
}

/// Checks every entry Ansible's inventory directory loader would read under
/// `dir` (the inventory files; `group_vars/` and `host_vars/` are checked as
/// [`load`] reads them) before anything is parsed.
pub fn confine_inventory_dir(dir: &Path) -> Result<(), ImportError> {
    let root = Root::new(dir)?;
    confine_walk(&root, dir, &mut HashSet::new())
}

/// Refuses to enter a directory that is already being walked (a link back
/// up the tree would make every recursive walk endless); the caller removes
/// the returned path when done with the directory.
fn enter(dir: &Path, seen: &mut HashSet<PathBuf>) -> Result<PathBuf, ImportError> {
    let canon = dir.canonicalize().map_err(|e| ImportError::msg(dir, format!("cannot resolve: {e}")))?;
    if !seen.insert(canon.clone()) {
        return Err(ImportError::msg(dir, "symbolic link loop: this directory contains itself"));
    }
    Ok(canon)
}

fn confine_walk(root: &Root, dir: &Path, seen: &mut HashSet<PathBuf>) -> Result<(), ImportError> {
    let here = enter(dir, seen)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ImportError::msg(dir, format!("cannot read directory: {e}")))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .filter(|n| !super::ignored_in_dir(n))
        .collect();
    names.sort();
    for name in names {
        let p = dir.join(name);
        if root.admits(&p)? && p.is_dir() {
            confine_walk(root, &p, seen)?;
        }
    }
    seen.remove(&here);
    Ok(())
}

/// Every file of a vars directory, recursively, sorted; hidden and backup
/// files skipped, only known extensions or none.
fn dir_files(root: &Root, dir: &Path, seen: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let here = enter(dir, seen)?;
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
        if !(ext.is_empty() || EXTENSIONS.contains(&ext.as_str())) || !root.admits(&p)? {
            continue;
        }
        if p.is_dir() && ext.is_empty() {
            dir_files(root, &p, seen, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    seen.remove(&here);
    Ok(())
}

/// `DataLoader.find_vars_files(path, name)`, for a [`path_safe`] name.
fn find_vars_files(root: &Root, base: &Path, name: &str) -> Result<Vec<PathBuf>, ImportError> {
    debug_assert!(path_safe(name));
    for ext in EXTENSIONS {
        let p = base.join(format!("{name}{ext}"));
        if !root.admits(&p)? {
            continue;
        }
        if p.is_dir() {
            let mut out = Vec::new();
            dir_files(root, &p, &mut HashSet::new(), &mut out)?;
            return Ok(out);
        }
        return Ok(vec![p]);
    }
    Ok(Vec::new())
}

/// Python's truth value of a loaded document (`if new_data:`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn load_entity(root: &Root, base: &Path, name: &str) -> Result<Option<IndexMap<String, Value>>, ImportError> {
    let mut merged: Option<IndexMap<String, Value>> = None;
    for file in find_vars_files(root, base, name)? {
        let text = read_text(&file)?;
        // `host_group_vars` skips every empty document (`if new_data:`):
        // no document, `---` with only comments, `{}`, `[]`, `""`, `0`...
        match yaml11::load_data(&text).map_err(|e| ImportError::new(&file, e))? {
            None => {}
            Some(v) if !truthy(&v) => {}
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

/// The vars files of every group and host of `inv`, from `dir/group_vars/`
/// and `dir/host_vars/`; nothing outside `dir` is read.
pub fn load(dir: &Path, inv: &ParsedInventory, warnings: &mut Vec<String>) -> Result<VarsFiles, ImportError> {
    let root = Root::new(dir)?;
    let mut out = VarsFiles::default();
    for (kind, what, names, target) in [
        ("group_vars", "group", inv.groups.keys().collect::<Vec<_>>(), &mut out.groups),
        ("host_vars", "host", inv.hosts.keys().collect::<Vec<_>>(), &mut out.hosts),
    ] {
        let base = dir.join(kind);
        if !root.admits(&base)? || !base.is_dir() {
            continue;
        }
        let known: HashSet<&str> = names.iter().map(|s| s.as_str()).collect();
        for name in names {
            // Ansible skips entities whose name starts with a path separator.
            if name.starts_with('/') {
                continue;
            }
            if !path_safe(name) {
                warnings.push(format!(
                    "{what} {name:?}: the name is not a safe file name, so {kind}/ is not searched for it \
                     (Ansible would look up the path it spells; Craton never does)"
                ));
                continue;
            }
            if let Some(vars) = load_entity(&root, &base, name)? {
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
                    what
                ));
            }
        }
    }
    Ok(out)
}
