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
//!
//! A vault-encrypted vars file is decrypted with the import's passwords and
//! its keys are kept apart, as secrets ([`super::vaulted`]); where files of
//! one entity disagree, the later file wins whichever kind it is.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::builder::{ParseError, ParsedInventory};
use super::vaulted::{Book, FileSecret};
use super::{read_vars_text, yaml11, ImportError};
use crate::names::path_safe;

/// Extensions Ansible tries, in order (`''` first, so a directory named like
/// the group wins over files).
const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

#[derive(Debug, Default)]
pub struct VarsFiles {
    pub groups: HashMap<String, IndexMap<String, Value>>,
    pub hosts: HashMap<String, IndexMap<String, Value>>,
    /// The keys of vault-encrypted files (never also in `groups`/`hosts`).
    pub group_secrets: HashMap<String, IndexMap<String, FileSecret>>,
    pub host_secrets: HashMap<String, IndexMap<String, FileSecret>>,
}

/// One entity's merged vars files.
#[derive(Debug, Default)]
struct Entity {
    vars: IndexMap<String, Value>,
    secrets: IndexMap<String, FileSecret>,
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

fn load_entity(root: &Root, base: &Path, name: &str, book: &mut Book) -> Result<Option<Entity>, ImportError> {
    let mut merged: Option<Entity> = None;
    for file in find_vars_files(root, base, name)? {
        let (text, vaulted) = read_vars_text(&file, book)?;
        let node = yaml11::load_data_node(&text).map_err(|e| ImportError::new(&file, e))?;
        drop(text);
        // `host_group_vars` skips every empty document (`if new_data:`):
        // no document, `---` with only comments, `{}`, `[]`, `""`, `0`...
        let Some(node) = node.filter(yaml11::Node::is_truthy) else {
            continue;
        };
        book.visit_node(&file, &node)?;
        if vaulted {
            let secrets = book.file_secrets(&file, &node)?;
            let e = merged.get_or_insert_with(Entity::default);
            for (k, s) in secrets {
                e.vars.shift_remove(&k);
                e.secrets.insert(k, s);
            }
            continue;
        }
        match node.to_json().map_err(|e| ImportError::new(&file, e))? {
            Value::Object(m) => {
                let e = merged.get_or_insert_with(Entity::default);
                for k in m.keys() {
                    e.secrets.shift_remove(k);
                }
                e.vars.extend(m);
            }
            _ => {
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
/// and `dir/host_vars/`; nothing outside `dir` is read. Vault-encrypted
/// files open with `book`'s passwords (or are refused without any).
pub fn load(
    dir: &Path,
    inv: &ParsedInventory,
    warnings: &mut Vec<String>,
    book: &mut Book,
) -> Result<VarsFiles, ImportError> {
    let root = Root::new(dir)?;
    let mut out = VarsFiles::default();
    for (kind, what, names, target, secret_target) in [
        ("group_vars", "group", inv.groups.keys().collect::<Vec<_>>(), &mut out.groups, &mut out.group_secrets),
        ("host_vars", "host", inv.hosts.keys().collect::<Vec<_>>(), &mut out.hosts, &mut out.host_secrets),
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
            if let Some(entity) = load_entity(&root, &base, name, book)? {
                for k in entity.vars.keys().chain(entity.secrets.keys()) {
                    super::check_name("variable", k)
                        .map_err(|m| ImportError::new(&base.join(name), ParseError::new(None, m)))?;
                }
                if !entity.vars.is_empty() {
                    target.insert(name.clone(), entity.vars);
                }
                if !entity.secrets.is_empty() {
                    secret_target.insert(name.clone(), entity.secrets);
                }
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
