//! Which names Craton stores: the rules every front door shares.

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
