//! What an input says a project should contain: the output of every importer
//! (and later of a git sync), the input of the one code path that writes it
//! ([`crate::store::apply`]). Building it touches no database, so bad input
//! stops here with nothing written.

use indexmap::IndexMap;

use crate::model::OwnVars;
#[cfg(feature = "secrets")]
use crate::secrets::pem::SecretKind;
#[cfg(feature = "secrets")]
use crate::secrets::Secret;

#[derive(Debug, Clone, Default)]
pub struct DesiredGroup {
    pub priority: Option<i64>,
    /// Position among the explicit children of `all`, if listed there.
    pub all_position: Option<i32>,
    pub vars: OwnVars,
    /// Child group names, in input order.
    pub children: Vec<String>,
    /// Member host names, in input order.
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DesiredHost {
    pub ip_address: Option<String>,
    /// Name of the parent host (a container's physical host).
    pub parent: Option<String>,
    pub vars: OwnVars,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Variables of the `all` group (the project's own).
    pub all_vars: OwnVars,
    pub groups: IndexMap<String, DesiredGroup>,
    pub hosts: IndexMap<String, DesiredHost>,
}

impl Desired {
    pub fn variable_count(&self) -> usize {
        self.all_vars.len()
            + self.groups.values().map(|g| g.vars.len()).sum::<usize>()
            + self.hosts.values().map(|h| h.vars.len()).sum::<usize>()
    }
}

/// Who a secret read from the input belongs to, by name: the project
/// (Ansible's group `all`), a group or a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretOwner {
    Project,
    Group(String),
    Host(String),
}

impl std::fmt::Display for SecretOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretOwner::Project => f.write_str("the project (group \"all\")"),
            SecretOwner::Group(g) => write!(f, "group {g:?}"),
            SecretOwner::Host(h) => write!(f, "host {h:?}"),
        }
    }
}

#[cfg(feature = "secrets")]
/// A variable the input holds vault-encrypted: it is stored as a secret of
/// its owner (through [`crate::store::secrets`]), never as a plain variable.
#[derive(Debug, Clone)]
pub struct DesiredSecret {
    pub owner: SecretOwner,
    /// The Ansible variable name.
    pub name: String,
    pub kind: SecretKind,
    pub value: Secret,
    /// The tier its source has in Ansible: vars file, or inline (a `!vault`
    /// value in an inventory file).
    pub tier: crate::model::Tier,
    /// Where the input holds it, for messages: the file, and the line
    /// where the format has lines (of the decrypted text, for a vaulted file).
    pub file: String,
    pub line: Option<usize>,
}

#[cfg(feature = "secrets")]
impl DesiredSecret {
    /// `file` or `file:line`.
    pub fn origin(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}
