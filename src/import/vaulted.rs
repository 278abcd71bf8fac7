//! Vault-encrypted input: the passwords an import is given (`--vault-id
//! label@file`, `--vault-password-file file`, read as Ansible reads them) and
//! what they open, so that vaulted values become Craton secrets instead of
//! plain variables.
//!
//! Two forms exist, and Ansible treats their values differently:
//!
//! - a whole vault-encrypted `group_vars`/`host_vars` file: Ansible decrypts
//!   it and then treats its values as if the file were plain (strings are
//!   templated, any type is allowed);
//! - an inline `!vault` value: one encrypted string, which Ansible 2.19 does
//!   not template.
//!
//! A Craton secret comes back out as a vaulted string, so only what a
//! vaulted string can say without changing what Ansible sees becomes one: a
//! string of a vaulted file without Jinja syntax (or marked `!unsafe`), and
//! any inline `!vault` value. Everything else in a vaulted file is refused,
//! naming the file, the line in its decrypted text and the key.
//!
//! Decrypted text is held in [`Zeroizing`] buffers and [`Secret`]s; the
//! copies the YAML parser makes on the way are not wiped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use indexmap::IndexMap;
use serde_json::Value;

use super::builder::ParsedInventory;
use super::command::{self, Limits};
use super::yaml11::{self, Node, NodeKind};
use super::ImportError;
use crate::secrets::pem::{self, SecretKind};
use crate::secrets::vault::{self, VaultError, VaultPassword};
use crate::secrets::{Secret, Zeroizing};

/// The vault id of `--vault-password-file` and of a `--vault-id` without a
/// label (Ansible's `DEFAULT_VAULT_IDENTITY`).
pub const DEFAULT_LABEL: &str = vault::DEFAULT_VAULT_ID;

/// One `--vault-id [label@]source` (or `--vault-password-file source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultIdSpec {
    pub label: String,
    pub source: PathBuf,
}

impl VaultIdSpec {
    /// Ansible's `split_vault_id`: `label@source`, or a bare source for the
    /// `default` label. Prompting (`@prompt`) needs a terminal Craton does
    /// not ask on, so it is refused.
    pub fn parse(arg: &str) -> Result<VaultIdSpec, String> {
        let (label, source) = match arg.split_once('@') {
            Some((l, s)) => (l, s),
            None => (DEFAULT_LABEL, arg),
        };
        if label.is_empty() || label.chars().any(|c| c == ';' || c.is_whitespace() || c.is_control()) {
            return Err(format!("vault id {arg:?}: the label must be non-empty, without ';' or white space"));
        }
        if source.is_empty() {
            return Err(format!("vault id {arg:?}: no password file after '@'"));
        }
        if source == "prompt" || source == "prompt_ask_vault_pass" {
            return Err(format!(
                "vault id {arg:?}: Craton does not prompt for vault passwords; put the password in a file (mode 0600) \
                 or a password script and name it"
            ));
        }
        Ok(VaultIdSpec { label: label.to_string(), source: PathBuf::from(source) })
    }

    /// A `--vault-password-file`: the `default` label.
    pub fn password_file(source: impl Into<PathBuf>) -> VaultIdSpec {
        VaultIdSpec { label: DEFAULT_LABEL.to_string(), source: source.into() }
    }
}

/// The passwords an import may use, in the order Ansible tries them (each
/// `--vault-id` in order, then each `--vault-password-file`). Empty: vaulted
/// files are refused and inline `!vault` values stay vaulted variables.
#[derive(Clone, Default)]
pub struct VaultIds {
    ids: Vec<(String, VaultPassword)>,
}

impl std::fmt::Debug for VaultIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids.iter().map(|(l, _)| l)).finish()
    }
}

/// Python's `bytes.strip()` (ASCII white space, vertical tab included).
fn py_strip(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// `bytes.strip(b'\r\n')`: what Ansible keeps of a password script's output.
fn strip_crlf(b: &[u8]) -> &[u8] {
    let nl = |c: &u8| matches!(c, b'\r' | b'\n');
    let start = b.iter().position(|c| !nl(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !nl(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Ansible's `script_is_client`: `NAME-client` or `NAME-client.EXT`.
fn is_client(path: &Path) -> bool {
    path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.ends_with("-client"))
}

/// Reads one password as Ansible's `get_file_vault_secret` does: an
/// executable file is run (a `*-client` script with `--vault-id LABEL`) and
/// its stdout is the password; any other file's contents are.
fn read_password(spec: &VaultIdSpec, limits: &Limits) -> Result<VaultPassword, String> {
    let p = &spec.source;
    let shown = p.display();
    let meta = std::fs::metadata(p).map_err(|e| format!("vault password file {shown}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("vault password file {shown} is a directory"));
    }
    let bytes = if super::is_executable(p) {
        let program = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let mut cmd = Command::new(program);
        if is_client(p) {
            cmd.args(["--vault-id", &spec.label]);
        }
        let done = command::run(&mut cmd, limits).map_err(|e| format!("vault password script {shown} {e}"))?;
        let stdout = Zeroizing::new(done.stdout);
        if is_client(p) && done.status.code() == Some(2) {
            return Err(format!(
                "vault password client script {shown} did not find a secret for vault-id={}: {}",
                spec.label,
                command::stderr_tail(&done.stderr, 300)
            ));
        }
        if !done.status.success() {
            return Err(format!(
                "vault password script {shown} returned non-zero ({}): {}",
                done.status.code().map_or_else(|| done.status.to_string(), |c| c.to_string()),
                command::stderr_tail(&done.stderr, 300)
            ));
        }
        Zeroizing::new(strip_crlf(&stdout).to_vec())
    } else {
        let raw = Zeroizing::new(std::fs::read(p).map_err(|e| format!("vault password file {shown}: {e}"))?);
        let text = py_strip(&raw);
        if text.starts_with(b"$ANSIBLE_VAULT") {
            return Err(format!(
                "vault password file {shown} is itself vault-encrypted; Craton reads only plain password files"
            ));
        }
        Zeroizing::new(strip_crlf(text).to_vec())
    };
    if bytes.is_empty() {
        return Err(format!("Invalid vault password was provided from {shown}: it is empty"));
    }
    Ok(VaultPassword::new(bytes.to_vec()))
}

impl VaultIds {
    /// Reads every password now (a missing file fails before anything is
    /// parsed); scripts run within `limits`.
    pub fn load(specs: &[VaultIdSpec], limits: &Limits) -> Result<VaultIds, String> {
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            ids.push((spec.label.clone(), read_password(spec, limits)?));
        }
        Ok(VaultIds { ids })
    }

    /// Passwords given directly (tests, embedders).
    pub fn from_passwords(ids: Vec<(String, VaultPassword)>) -> VaultIds {
        VaultIds { ids }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn labels(&self) -> String {
        self.ids.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// Decrypts a vault text as `VaultLib.decrypt` does: the password of
    /// the text's own vault id first, then every other one in order (the id
    /// in a header is a hint, not a check). The error says why, never what.
    pub fn open(&self, vaulttext: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let header = vault::header_of(vaulttext).map_err(|e| e.to_string())?;
        let own = self.ids.iter().filter(|(l, _)| *l == header.vault_id);
        let others = self.ids.iter().filter(|(l, _)| *l != header.vault_id);
        for (_, pw) in own.chain(others) {
            match vault::decrypt(pw, vaulttext) {
                Ok(plain) => return Ok(plain),
                Err(VaultError::Mac | VaultError::Padding) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let plural = if self.ids.len() == 1 { "" } else { "s" };
        Err(format!(
            "Decryption failed: no vault password given opens it (it is encrypted for vault id {:?}; tried vault \
             id{plural} {}): a wrong password, or a tampered text",
            header.vault_id,
            self.labels()
        ))
    }
}

/// Where an inline value or a key of a vaulted file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: Option<usize>,
}

impl Origin {
    fn at(file: &Path, line: Option<usize>) -> Origin {
        Origin { file: file.display().to_string(), line }
    }

    pub fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError { file: self.file.clone(), line: self.line, message: message.into() }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// A variable of a vault-encrypted vars file, decrypted.
#[derive(Debug, Clone)]
pub struct FileSecret {
    pub value: Secret,
    pub origin: Origin,
}

/// What the import's passwords opened: each inline ciphertext once, with
/// where it was first seen.
#[derive(Debug, Default)]
pub struct Book {
    ids: VaultIds,
    opened: HashMap<String, (Secret, Origin)>,
}

/// The Jinja delimiters that make Ansible template a string.
fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Whether `name` can be a secret's name (an Ansible variable name).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The kind a decrypted value is stored as: what its text parses as.
pub fn kind_of(value: &[u8]) -> SecretKind {
    if pem::check(SecretKind::Certificate, value).is_ok() {
        return SecretKind::Certificate;
    }
    if pem::check(SecretKind::Pem, value).is_ok() {
        return SecretKind::Pem;
    }
    match std::str::from_utf8(value) {
        Ok(s) => {
            let body = s.strip_suffix('\n').map(|b| b.strip_suffix('\r').unwrap_or(b)).unwrap_or(s);
            if body.contains(['\n', '\r']) {
                SecretKind::Opaque
            } else {
                SecretKind::Password
            }
        }
        Err(_) => SecretKind::Opaque,
    }
}

/// Checks that a decrypted value can be a secret named `name`.
pub fn check_secret(origin: &Origin, name: &str, value: &[u8]) -> Result<(), ImportError> {
    if !is_identifier(name) {
        return Err(origin.error(format!(
            "variable {name:?} holds a vaulted value, and a secret must have an Ansible variable name (letters, \
             digits and _, not starting with a digit)"
        )));
    }
    if value.is_empty() {
        return Err(origin.error(format!(
            "variable {name:?}: its vaulted value is empty, and a Craton secret cannot be empty; give it a value or \
             make it a plain variable"
        )));
    }
    Ok(())
}

impl Book {
    pub fn new(ids: VaultIds) -> Book {
        Book { ids, opened: HashMap::new() }
    }

    /// True when the import has passwords.
    pub fn can_open(&self) -> bool {
        !self.ids.is_empty()
    }

    /// The plaintext of an inline ciphertext seen while parsing.
    pub fn inline(&self, ciphertext: &str) -> Option<&(Secret, Origin)> {
        self.opened.get(ciphertext)
    }

    fn open_inline(&mut self, ciphertext: &str, origin: Origin) -> Result<(), ImportError> {
        if !self.can_open() || self.opened.contains_key(ciphertext) {
            return Ok(());
        }
        let plain = self.ids.open(ciphertext).map_err(|m| origin.error(format!("!vault value: {m}")))?;
        self.opened.insert(ciphertext.to_string(), (Secret::from(plain), origin));
        Ok(())
    }

    /// Opens every `!vault` value of a loaded YAML or JSON file, nested ones
    /// included, so that a wrong password fails at its line.
    pub fn visit_node(&mut self, file: &Path, node: &Node) -> Result<(), ImportError> {
        match &node.kind {
            NodeKind::Vault(ct) => self.open_inline(ct, Origin::at(file, Some(node.line))),
            NodeKind::Seq(items) => items.iter().try_for_each(|n| self.visit_node(file, n)),
            NodeKind::Map(pairs) => pairs.iter().try_for_each(|(k, v)| {
                self.visit_node(file, k)?;
                self.visit_node(file, v)
            }),
            _ => Ok(()),
        }
    }

    fn visit_value(&mut self, file: &Path, v: &Value) -> Result<(), ImportError> {
        match v {
            Value::Object(m) if m.len() == 1 => match m.get("__ansible_vault") {
                Some(Value::String(ct)) => self.open_inline(ct, Origin::at(file, None)),
                _ => m.values().try_for_each(|x| self.visit_value(file, x)),
            },
            Value::Object(m) => m.values().try_for_each(|x| self.visit_value(file, x)),
            Value::Array(a) => a.iter().try_for_each(|x| self.visit_value(file, x)),
            _ => Ok(()),
        }
    }

    /// Opens the vaulted values of script output (which has no lines).
    pub fn visit_inventory(&mut self, file: &Path, inv: &ParsedInventory) -> Result<(), ImportError> {
        if !self.can_open() {
            return Ok(());
        }
        for g in inv.groups.values() {
            g.vars.values().try_for_each(|v| self.visit_value(file, v))?;
        }
        for h in inv.hosts.values() {
            h.vars.values().try_for_each(|v| self.visit_value(file, v))?;
        }
        Ok(())
    }

    /// Decrypts a whole vault-encrypted vars file to its text.
    pub fn open_file(&self, file: &Path, bytes: &[u8]) -> Result<Zeroizing<String>, ImportError> {
        let origin = Origin::at(file, None);
        let text = std::str::from_utf8(bytes).map_err(|_| origin.error("a vault header, but not ASCII text"))?;
        let plain = self.ids.open(text).map_err(|m| origin.error(format!("vault-encrypted file: {m}")))?;
        let s = std::str::from_utf8(&plain)
            .map_err(|e| {
                origin.error(format!(
                    "vault-encrypted file: its decrypted text is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ))
            })?
            .to_string();
        Ok(Zeroizing::new(s))
    }

    /// The variables of a decrypted vars file as secrets: each value must be
    /// a string a vaulted string can stand for (see the module doc).
    pub fn file_secrets(&self, file: &Path, root: &Node) -> Result<IndexMap<String, FileSecret>, ImportError> {
        let NodeKind::Map(pairs) = &root.kind else {
            return Err(Origin::at(file, Some(root.line)).error("a vars file must hold a dictionary"));
        };
        let mut out = IndexMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let origin = Origin::at(file, Some(v.line));
            let key = yaml11::json_key(k).map_err(|e| Origin::at(file, e.line).error(e.message))?;
            let refuse = |why: String| {
                origin.error(format!(
                    "variable {key:?} of this vault-encrypted file (line of its decrypted text) cannot become a \
                     Craton secret: {why}"
                ))
            };
            let value =
                match &v.kind {
                    NodeKind::Str(s) if has_template_syntax(s) => return Err(refuse(
                        "it holds Jinja syntax ({{, {% or {#), which Ansible templates in a vault-encrypted file but \
                         not in a vaulted string, as a secret comes back out; move it to a plain vars file, or mark \
                         it !unsafe if it is meant literally"
                            .into(),
                    )),
                    NodeKind::Str(s) | NodeKind::Unsafe(s) => Secret::new(s.as_bytes()),
                    NodeKind::Vault(ct) => match self.inline(ct) {
                        Some((plain, _)) => plain.clone(),
                        None => return Err(origin.error("a !vault value that was not opened")),
                    },
                    _ => {
                        return Err(refuse(format!(
                        "it is a {}, and a secret comes back out as a vaulted string, which would change its type; \
                         move it to a plain vars file, or vault only the strings (ansible-vault encrypt_string)",
                        v.py_type()
                    )))
                    }
                };
            check_secret(&origin, &key, value.expose())?;
            out.insert(key, FileSecret { value, origin });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_id_arguments_as_ansible_splits_them() {
        assert_eq!(
            VaultIdSpec::parse("lab@/run/pw").unwrap(),
            VaultIdSpec { label: "lab".into(), source: "/run/pw".into() }
        );
        assert_eq!(VaultIdSpec::parse("/run/pw").unwrap().label, "default");
        assert_eq!(VaultIdSpec::parse("a@b@c").unwrap().source, PathBuf::from("b@c"));
        assert!(VaultIdSpec::parse("lab@prompt").unwrap_err().contains("does not prompt"));
        assert!(VaultIdSpec::parse("@x").is_err() && VaultIdSpec::parse("lab@").is_err());
    }

    #[test]
    fn kinds_from_the_text() {
        assert_eq!(kind_of(b"hunter2"), SecretKind::Password);
        assert_eq!(kind_of(b"hunter2\n"), SecretKind::Password);
        assert_eq!(kind_of(b"a\nb\n"), SecretKind::Opaque);
        assert_eq!(kind_of(b"\xff\xfe"), SecretKind::Opaque);
        assert_eq!(kind_of(b"-----BEGIN PRIVATE KEY-----\nnot der\n-----END PRIVATE KEY-----\n"), SecretKind::Opaque);
    }

    #[test]
    fn passwords_are_stripped_as_ansible_strips_them() {
        assert_eq!(py_strip(b" \x0b pw \t\n"), b"pw");
        assert_eq!(strip_crlf(b"\r\n pw \n"), b" pw ");
        assert!(is_client(Path::new("/x/craton-client")) && is_client(Path::new("/x/v-client.py")));
        assert!(!is_client(Path::new("/x/client")));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "\n  \n").unwrap();
        let e = VaultIds::load(&[VaultIdSpec::password_file(&f)], &Limits::default()).unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = VaultIds::load(&[VaultIdSpec::password_file(dir.path().join("none"))], &Limits::default());
        assert!(e.unwrap_err().contains("none"));
    }

    #[test]
    fn the_texts_own_id_is_tried_first_then_the_others() {
        let a = VaultPassword::new("first-pw-QX");
        let b = VaultPassword::new("second-pw-QY");
        let text = vault::encrypt(&b, b"x", "lab", None).unwrap();
        let ids = VaultIds::from_passwords(vec![("default".into(), a.clone()), ("other".into(), b.clone())]);
        assert_eq!(&ids.open(&text).unwrap()[..], b"x", "a label is a hint: every password is tried");
        let wrong = VaultIds::from_passwords(vec![("lab".into(), a)]);
        let e = wrong.open(&text).unwrap_err();
        assert!(e.contains("\"lab\"") && e.contains("wrong password"), "{e}");
        assert!(!e.contains("-QX"), "{e}");
    }
}
