//! Reads what a config ref provides from a directory holding its tree (the
//! git layer writes the commit's files there): the ref's path is an Ansible
//! inventory directory, read with the importer's own parsers, so files,
//! formats, merging and errors are exactly those of `cratond import` and of
//! Ansible's `host_group_vars` plugin.
//!
//! The difference with an import: `group_vars/` and `host_vars/` may name
//! any group or host of the project, not only those the directory's
//! inventory files declare, and a file naming neither fails the read
//! (Ansible would skip it with a warning; a sync that silently drops a
//! file is worse than one that says why it stopped).
//!
//! With the project's vault passwords (`vault_password_file`, `vault_ids`
//! in the config file), vaulted vars files and inline `!vault` values
//! become the ref's secrets, exactly as `cratond import` makes them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use crate::desired::{DesiredSecret, SecretOwner};
use crate::import::builder::ParsedInventory;
use crate::import::vars_files::{self, Root};
use crate::import::vaulted::{Book, FileSecret, VaultIds};
use crate::import::{import_with, take_secrets, ImportError, ImportOptions};
use crate::model::{raw_from_value, OwnVars, Tier, Var};
use crate::store::config_refs::SyncFailure;
use crate::store::ref_apply::{EntityVars, RefPlan};

/// The names a ref's vars files may use besides what it declares.
#[derive(Debug, Clone, Default)]
pub struct ProjectNames {
    pub groups: Vec<String>,
    pub hosts: Vec<String>,
}

/// Extensions Ansible's inventory directory loader ignores
/// (`INVENTORY_IGNORE_EXTS`).
const IGNORED_EXTS: [&str; 12] =
    [".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"];

fn relative(root: &Path, file: &str) -> String {
    let prefix = format!("{}/", root.display());
    file.strip_prefix(&prefix).unwrap_or(file).to_string()
}

fn failure(root: &Path, e: ImportError) -> SyncFailure {
    SyncFailure { file: Some(relative(root, &e.file)), line: e.line, message: e.message }
}

fn join(rel: &str, tail: &str) -> String {
    if rel.is_empty() {
        tail.to_string()
    } else {
        format!("{rel}/{tail}")
    }
}

/// Names a vars directory's entries are about: (stem, file name).
fn entries(base: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = rd
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .filter(|n| !n.starts_with('.') && !IGNORED_EXTS.iter().any(|x| n.ends_with(x)))
        .map(|n| {
            let stem = [".yml", ".yaml", ".json"].iter().find_map(|e| n.strip_suffix(e)).unwrap_or(&n).to_string();
            (stem, n)
        })
        .collect();
    out.sort();
    out
}

fn file_vars(m: &IndexMap<String, Value>) -> OwnVars {
    m.iter().map(|(k, v)| (k.clone(), Var { value: raw_from_value(v), tier: Tier::VarsFile })).collect()
}

/// Reads the inventory directory `rel` (repository-relative, "" for the
/// root) under `root`, opening vaulted values with `vault` (none: vaulted
/// files fail the read, inline values stay vaulted variables). Errors and
/// warnings name repository-relative files.
pub fn read_ref(
    root: &Path,
    rel: &str,
    names: &ProjectNames,
    vault: &VaultIds,
) -> Result<(RefPlan, Vec<String>), SyncFailure> {
    if Path::new(rel).components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(SyncFailure::msg(format!("path {rel:?} must be a relative path inside the repository")));
    }
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    // The path (and everything the importer reads below it, which
    // `import_path` and `vars_files::load` check) must stay in the tree.
    let checkout = Root::new(root).map_err(|e| SyncFailure::msg(e.message))?;
    if !checkout.admits(&dir).map_err(|_| SyncFailure::msg(format!("path {rel:?} leads outside the repository")))? {
        return Err(SyncFailure::msg(format!("path {rel:?} is not a directory at this commit")));
    }
    if !dir.is_dir() {
        return Err(SyncFailure::msg(format!("path {rel:?} is not a directory at this commit")));
    }
    let dir_str = dir.to_str().ok_or_else(|| SyncFailure::msg("the cache path is not UTF-8"))?;
    let opts = ImportOptions { vault: vault.clone(), ..ImportOptions::default() };
    let imported = import_with(dir_str, &opts).map_err(|e| failure(root, e))?;
    let vars_dirs = [format!("{}/group_vars", dir.display()), format!("{}/host_vars", dir.display())];
    let warnings: Vec<String> = imported
        .warnings
        .iter()
        .filter(|w| !vars_dirs.iter().any(|d| w.starts_with(d.as_str())))
        .map(|w| relative(root, w))
        .collect();
    let mut declared = imported.desired;

    // Every name a vars file may use: the project's and the declared ones.
    let mut universe = ParsedInventory::new();
    for g in names.groups.iter().chain(declared.groups.keys()) {
        universe.groups.entry(g.clone()).or_default();
    }
    for h in names.hosts.iter().chain(declared.hosts.keys()) {
        universe.hosts.entry(h.clone()).or_default();
    }
    for (kind, what) in [("group_vars", "group"), ("host_vars", "host")] {
        for (stem, file) in entries(&dir.join(kind)) {
            let known = if kind == "group_vars" {
                universe.groups.contains_key(&stem)
            } else {
                universe.hosts.contains_key(&stem)
            };
            if !known {
                return Err(SyncFailure::at(
                    join(rel, &format!("{kind}/{file}")),
                    None,
                    format!("no {what} named {stem:?} in the project, and no inventory file of this ref declares it"),
                ));
            }
        }
    }
    let mut ignored = Vec::new();
    let mut book = Book::new(vault.clone());
    let mut files = vars_files::load(&dir, &universe, &mut ignored, &mut book).map_err(|e| failure(root, e))?;

    let inventory_origin = if rel.is_empty() { ".".to_string() } else { rel.to_string() };
    let mut plan = RefPlan { inventory_origin: inventory_origin.clone(), ..RefPlan::default() };

    // Inline variables of what the inventory files declare (the importer
    // already merged the vars files of those, file values winning).
    let mut all = EntityVars { vars: std::mem::take(&mut declared.all_vars), origin: inventory_origin.clone() };
    let mut groups: HashMap<String, EntityVars> = HashMap::new();
    let mut hosts: HashMap<String, EntityVars> = HashMap::new();
    for (name, g) in declared.groups.iter_mut() {
        let vars = std::mem::take(&mut g.vars);
        if !vars.is_empty() {
            groups.insert(name.clone(), EntityVars { vars, origin: inventory_origin.clone() });
        }
    }
    for (name, h) in declared.hosts.iter_mut() {
        let vars = std::mem::take(&mut h.vars);
        if !vars.is_empty() {
            hosts.insert(name.clone(), EntityVars { vars, origin: inventory_origin.clone() });
        }
    }
    // Vars files of every name, on the vars-file tier.
    for (name, m) in &files.groups {
        let origin = join(rel, &format!("group_vars/{name}"));
        let target = if name == "all" {
            &mut all
        } else {
            groups
                .entry(name.clone())
                .or_insert_with(|| EntityVars { vars: OwnVars::default(), origin: origin.clone() })
        };
        target.origin = origin;
        target.vars.extend(file_vars(m));
    }
    for (name, m) in &files.hosts {
        let origin = join(rel, &format!("host_vars/{name}"));
        let target = hosts
            .entry(name.clone())
            .or_insert_with(|| EntityVars { vars: OwnVars::default(), origin: origin.clone() });
        target.origin = origin;
        target.vars.extend(file_vars(m));
    }
    // Secrets: those the import found for what the inventory files declare
    // (inline `!vault` values among them), then those of every vars file,
    // which win for the same owner and key as file values do.
    let mut secrets: IndexMap<(SecretOwner, String), DesiredSecret> = IndexMap::new();
    let mut more = Vec::new();
    let mut take = |owner: SecretOwner, ev: &mut EntityVars, fs: Option<IndexMap<String, FileSecret>>| {
        take_secrets(owner, &mut ev.vars, fs.as_ref(), &book, &mut more).map_err(|e| failure(root, e))
    };
    take(SecretOwner::Project, &mut all, files.group_secrets.remove("all"))?;
    for (name, ev) in groups.iter_mut() {
        take(SecretOwner::Group(name.clone()), ev, files.group_secrets.remove(name))?;
    }
    for (name, ev) in hosts.iter_mut() {
        take(SecretOwner::Host(name.clone()), ev, files.host_secrets.remove(name))?;
    }
    // Owners whose vars files hold only secrets.
    for (kind, left) in [
        ("group_vars", std::mem::take(&mut files.group_secrets)),
        ("host_vars", std::mem::take(&mut files.host_secrets)),
    ] {
        for (name, fs) in left {
            let origin = join(rel, &format!("{kind}/{name}"));
            let mut ev = EntityVars { vars: OwnVars::default(), origin };
            let owner =
                if kind == "group_vars" { SecretOwner::Group(name.clone()) } else { SecretOwner::Host(name.clone()) };
            take(owner, &mut ev, Some(fs))?;
            if kind == "group_vars" {
                groups.insert(name, ev);
            } else {
                hosts.insert(name, ev);
            }
        }
    }
    for mut s in imported.secrets.into_iter().chain(more) {
        s.file = relative(root, &s.file);
        secrets.insert((s.owner.clone(), s.name.clone()), s);
    }
    plan.secrets = secrets.into_values().collect();
    if !all.vars.is_empty() {
        plan.all_vars = Some(all);
    }
    // Deterministic order: declared first (input order), then by name.
    let order = |declared_names: Vec<&String>, map: &HashMap<String, EntityVars>| -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for n in declared_names {
            if map.contains_key(n) && seen.insert(n) {
                out.push(n.clone());
            }
        }
        let mut rest: Vec<&String> = map.keys().filter(|n| !seen.contains(n.as_str())).collect();
        rest.sort();
        out.extend(rest.into_iter().cloned());
        out
    };
    for n in order(declared.groups.keys().collect(), &groups) {
        let ev = groups.remove(&n).expect("listed");
        plan.groups.insert(n, ev);
    }
    for n in order(declared.hosts.keys().collect(), &hosts) {
        let ev = hosts.remove(&n).expect("listed");
        plan.hosts.insert(n, ev);
    }
    plan.declared = declared;
    Ok((plan, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
        }
        dir
    }

    /// A project host named like a path, a ref path leading out of the
    /// checkout, and links out of it: nothing outside is read, and the
    /// outcome is the same whether the outside file exists or not.
    #[test]
    fn vars_file_path_traversal_in_sync() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.yml");
        let repo = tree(&[("inv/hosts.yml", "web:\n  hosts:\n    w1:\n"), ("inv/host_vars/w1.yml", "a: 1\n")]);
        std::os::unix::fs::symlink(outside.path(), repo.path().join("out")).unwrap();
        std::os::unix::fs::symlink(&secret, repo.path().join("inv/group_vars")).unwrap();
        let ups = "../".repeat(repo.path().components().count() + 3);
        let evil = format!("{ups}{}", outside.path().join("secret").display().to_string().trim_start_matches('/'));
        let names = ProjectNames { groups: vec![], hosts: vec![evil.clone()] };
        let mut outcomes = Vec::new();
        for present in [true, false] {
            if present {
                std::fs::write(&secret, "stolen: 1\n").unwrap();
            } else {
                std::fs::remove_file(&secret).unwrap();
            }
            let mut seen = Vec::new();
            for rel in ["inv", "out", "../x", "inv/../.."] {
                seen.push(match read_ref(repo.path(), rel, &names, &VaultIds::default()) {
                    Ok((plan, _)) => format!("ok {:?}", plan.hosts.keys().collect::<Vec<_>>()),
                    Err(e) => format!("{:?} {:?} {}", e.file, e.line, e.message),
                });
            }
            assert!(seen.iter().all(|s| !s.contains("stolen")), "{seen:?}");
            outcomes.push(seen);
        }
        assert_eq!(outcomes[0], outcomes[1], "the outcome tells whether the outside file exists");
        assert!(outcomes[0][0].contains("inv/group_vars") && outcomes[0][0].contains("symbolic link"), "{outcomes:?}");
        assert!(outcomes[0][1].contains("leads outside"), "{outcomes:?}");
        assert!(outcomes[0][2].contains("relative path inside"), "{outcomes:?}");

        // Without the link, the host named like a path simply has no vars file.
        std::fs::remove_file(repo.path().join("inv/group_vars")).unwrap();
        std::fs::write(&secret, "stolen: 1\n").unwrap();
        let (plan, _) = read_ref(repo.path(), "inv", &names, &VaultIds::default()).unwrap();
        assert!(!plan.hosts.contains_key(&evil), "{:?}", plan.hosts.keys());
        assert!(plan.hosts.contains_key("w1"));
    }
}
