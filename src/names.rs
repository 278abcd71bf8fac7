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

/// True when `name` can become a file name inside a vars directory
/// (`group_vars/NAME`, `NAME.yml`, ...) without the path leaving it or
/// naming the directory itself: not empty, no `/` or `\\`, not starting with
/// `.` (so not `..`), no control characters, at most 200 bytes.
///
/// The one rule for both directions: the importer (`cratond import`,
/// config-ref sync) looks up vars files only for such names, so an
/// inventory can never make Craton read a path its names spell
/// (`../../etc/x`; Ansible itself would), and bundles write vars files only
/// for such names ([`file_safe`] adds what a bundle needs on top).
pub fn path_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name.len() <= 200
}

/// True when `name` can be the extension-less file name of its vars under
/// `group_vars/` or `host_vars/` in a bundle: [`path_safe`], not skipped by
/// Ansible (`~` backups), and not found by another name's lookup (Ansible
/// tries `NAME`, then `NAME.yml`, `NAME.yaml`, `NAME.json`).
pub fn file_safe(name: &str) -> bool {
    path_safe(name) && !name.ends_with('~') && ![".yml", ".yaml", ".json"].iter().any(|e| name.ends_with(e))
}
