//! Which names Craton stores, and which of them may become file names: the
//! rules every front door shares.

/// Longest name the database accepts for projects, groups, hosts and variable
/// keys (VARCHAR(191): the utf8mb4 length that fits every MySQL/MariaDB index).
pub const MAX_NAME_CHARS: usize = 191;

/// Refuses names the database or Ansible could not hold faithfully.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("empty {what} name"));
    }
    if name.contains('\0') {
        return Err(format!("{what} name {name:?} contains a NUL character"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("{what} name {name:?} is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.trim() != name {
        return Err(format!("{what} name {name:?} has leading or trailing white space"));
    }
    Ok(())
}

/// True when `name` can be the extension-less file name of its vars under
/// `group_vars/` or `host_vars/`: it cannot leave that directory, is not
/// skipped by Ansible, and cannot be found by another name's lookup
/// (Ansible tries `NAME`, then `NAME.yml`, `NAME.yaml`, `NAME.json`).
///
/// One rule for both directions: bundles write vars files only for such
/// names, and the importer (`cratond import`, config-ref sync) looks up vars
/// files only for such names, so an inventory can never make Craton read a
/// path its names spell (`../../etc/x`). Ansible itself would follow them.
pub fn file_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && !name.ends_with('~')
        && ![".yml", ".yaml", ".json"].iter().any(|e| name.ends_with(e))
        && name.len() <= 200
}
