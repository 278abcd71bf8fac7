//! Inventory bundles: one archive (`.tgz` or `.zip`) holding a static
//! inventory that `ansible-playbook` and `ansible-inventory` use as unpacked,
//! with no Craton binary, database or network at run time (air-gapped
//! sites, CI artifacts, keeping the exact inventory a run used).
//!
//! Unpacked in an empty directory it gives what `craton-inventory --list`
//! gives for the same data and selection, to the value and to the order of
//! hosts and children:
//!
//! ```text
//! ansible.cfg              [defaults] inventory = ./hosts
//! hosts/inventory.json     the YAML inventory structure, in JSON syntax
//! hosts/group_vars/NAME    file-tier group vars (`all` for the all group)
//! hosts/host_vars/NAME     file-tier host vars
//! ```
//!
//! Why not ship the script JSON: a script needs a run bit (lost by many
//! unzip tools) and has one variable tier. The YAML plugin reads `.json`
//! files through the JSON decoder first (about 5x faster than YAML syntax
//! for 10,000 hosts), and `group_vars/`/`host_vars/` beside it restore
//! Ansible's second tier, so most values keep their owner instead of being
//! lifted onto hosts. [`render::emit`] with [`Layout::Files`] decides what is
//! inline and what goes to files; this module only lays it out the way the
//! YAML plugin will read it back exactly as the script plugin reads
//! [`render::write_list`].
//!
//! Values tagged `{"__ansible_unsafe": ...}` or `{"__ansible_vault": ...}`
//! need no YAML tags (`!unsafe`, `!vault`): ansible-core reads inventory and
//! vars files through the same legacy JSON decoder as script output, which
//! turns them back into unsafe and vaulted values (checked against 2.19 in
//! `tests/bundle.rs`), so JSON syntax is used throughout.
//!
//! Values with typed envelopes (int map keys, timestamps; see
//! [`crate::typed`]) cannot be written in JSON syntax. A vars file holding
//! one is written as YAML (flow style, every value, so tags and typed keys
//! work throughout). Inline ones are left out of `inventory.json` and
//! written to a second source read after it, `hosts/typed.yml`, which sets
//! them on the same group (or on the host, through a group it is already in)
//! on the same tier: Ansible's inventory directory loads its files in name
//! order, and neither file repeats a key of the other, so only the types
//! differ from a JSON-only bundle.
//!
//! The bytes are a pure function of the data: fixed entry order, times,
//! owners and modes, and compression settings, so the ETag changes exactly
//! when the inventory does.

use std::io::{self, Cursor, Write};

use sha2::{Digest, Sha256};

use crate::model::{OwnVars, Snapshot, Tier};
use crate::names::file_safe;
use crate::render::{self, Emitted, Layout, Options, RenderError, Selection};
use crate::resolve::Resolver;
use crate::secrets::inject::{self, VAULT_ID};
use crate::secrets::{VaultKey, Zeroizing};
use crate::typed;

/// Makes `inventory = ./hosts` apply: Ansible reads `./ansible.cfg` from the
/// working directory (unless `ANSIBLE_CONFIG` points elsewhere).
const ANSIBLE_CFG: &[u8] = b"[defaults]\ninventory = ./hosts\n";
const INVENTORY: &str = "hosts/inventory.json";
const GROUP_VARS: &str = "hosts/group_vars/";
const HOST_VARS: &str = "hosts/host_vars/";
/// Inline values with typed envelopes, in YAML; sorts after `inventory.json`.
const TYPED: &str = "hosts/typed.yml";
/// An owner with secrets gets a directory instead of a file: Ansible's
/// `host_group_vars` stops at the first of `NAME`, `NAME.yml`… that exists,
/// and loads every file of a directory in name order. The two files never
/// share a key.
const VARS_IN_DIR: &str = "vars";
const SECRETS_FILE: &str = "secrets.yml";
/// PEM secrets as files, beside a playbook run from the bundle's root.
const FILES: &str = "files/";
/// The vault-id client script (`--vault-id craton@./craton-vault-client`)
/// and what it asks for.
const CLIENT_SCRIPT: &str = "craton-vault-client";
const CLIENT_SOURCE: &[u8] = include_bytes!("../ansible/vault/craton-vault-client");
const CLIENT_META: &str = "craton-bundle.json";
/// Always present, even when empty, so that every bundle has one layout.
const DIRS: [&str; 3] = ["hosts/", GROUP_VARS, HOST_VARS];
/// Deflate level for both formats; part of the byte format, never change it
/// without expecting every ETag to change.
const LEVEL: u32 = 6;
/// Zip members smaller than this are stored, not deflated (also part of the
/// byte format).
const STORE_BELOW: usize = 1024;
const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;

/// The YAML plugin refuses a whole file whose top-level `plugin` key is
/// truthy (it takes it for a plugin configuration), so a group of that name
/// cannot be defined at top level.
const PLUGIN_KEY: &str = "plugin";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A gzip-compressed tar archive.
    Tgz,
    /// A zip archive (deflate; members under 1 KiB stored).
    Zip,
}

impl Format {
    /// The usual file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Tgz => "tgz",
            Format::Zip => "zip",
        }
    }

    /// The media type for HTTP responses.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Tgz => "application/gzip",
            Format::Zip => "application/zip",
        }
    }
}

/// How a bundle carries secrets.
pub struct Vault<'a> {
    /// The key the injected values were encrypted under; the files are too.
    pub key: &'a VaultKey,
    /// Ship `craton-vault-client` and name it in `ansible.cfg`
    /// (`vault_identity_list`): the password is then asked of cratond (or
    /// read from `CRATON_VAULT_PASSWORD_FILE`) when Ansible needs it.
    pub client: Option<Client>,
}

/// What `craton-vault-client` asks cratond for: the password derived for
/// this project, revision and data key (`GET /v1/vault-password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub project: String,
    pub revision: i64,
    pub data_key: i64,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub bytes: Vec<u8>,
    /// A quoted strong ETag: the SHA-256 of `bytes`, in hex.
    pub etag: String,
}

/// Builds the bundle of the hosts `sel` picks from `snap`.
///
/// Fails like [`render::emit`], and when a host name would not survive the
/// YAML plugin, which reads host keys as patterns (`web[1:3]`, `db:5432`):
/// such a bundle would silently hold other hosts.
pub fn build(snap: &Snapshot, sel: &Selection, format: Format) -> Result<Bundle, RenderError> {
    build_with(snap, sel, format, None)
}

/// [`build`] for a snapshot whose secrets were injected under `vault.key`
/// ([`crate::secrets::inject`]): each owner's secrets move from its vars
/// file into a vault-encrypted `secrets.yml` beside it, and every PEM value
/// a host resolves is also written, vault-encrypted, to
/// `files/HOST/NAME.pem`, so that `copy: decrypt: true` can ship it.
pub fn build_with(
    snap: &Snapshot,
    sel: &Selection,
    format: Format,
    vault: Option<&Vault<'_>>,
) -> Result<Bundle, RenderError> {
    let entries = layout(snap, sel, format, vault)?;
    let bytes = match format {
        Format::Tgz => tgz(&entries)?,
        Format::Zip => zip(&entries)?,
    };
    let etag = etag(&bytes);
    Ok(Bundle { bytes, etag })
}

/// Unpacks a `.tgz` bundle into `dest` (which must exist), as
/// `ansible-playbook` will read it. Members are checked the way the tar
/// crate's `unpack_in` does: none may leave `dest`.
pub fn unpack_tgz(bytes: &[u8], dest: &std::path::Path) -> io::Result<()> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in a.entries()? {
        let mut entry = entry?;
        if !entry.unpack_in(dest)? {
            return Err(io::Error::other(format!("bundle member {:?} leaves the directory", entry.path()?)));
        }
    }
    Ok(())
}

/// Whether a `.tgz` bundle holds a member whose file name is `name` (a
/// vaulted bundle's `craton-vault-client`).
pub fn tgz_holds(bytes: &[u8], name: &str) -> io::Result<bool> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in a.entries()? {
        if entry?.path()?.file_name().is_some_and(|f| f == name) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One archive member; `data` is `None` for a directory.
#[derive(Debug)]
struct Entry {
    path: String,
    data: Option<Vec<u8>>,
    /// Mode 0755 instead of 0644 (the vault client script).
    exec: bool,
}

impl Entry {
    fn file(path: String, data: Vec<u8>) -> Self {
        Entry { path, data: Some(data), exec: false }
    }

    fn dir(path: String) -> Self {
        Entry { path, data: None, exec: false }
    }
}

fn invalid(message: String) -> RenderError {
    RenderError::NotBundlable(message)
}

/// Every member of the bundle, sorted by path (a directory before its
/// contents), each path checked.
fn layout(snap: &Snapshot, sel: &Selection, format: Format, vault: Option<&Vault>) -> Result<Vec<Entry>, RenderError> {
    let e = render::emit(snap, sel, Options { layout: Layout::Files, ..Options::default() })?;
    let s = &e.structure;
    let host_files = host_files(&e);
    let mut entries: Vec<Entry> = DIRS.iter().map(|d| Entry::dir(d.to_string())).collect();
    entries.push(Entry::file(INVENTORY.into(), inventory_json(&e, &host_files)?));
    if let Some(data) = typed_overlay(&e, &host_files)? {
        entries.push(Entry::file(TYPED.into(), data));
    }
    let mut with_secrets = false;
    let mut vars_entries = |entries: &mut Vec<Entry>, base: String, vars: &OwnVars| -> Result<(), RenderError> {
        let split = vault.map(|v| split_secrets(vars, v.key)).transpose()?.flatten();
        match split {
            None => {
                if let Some(data) = vars_file(vars, &[]) {
                    entries.push(Entry::file(base, data));
                }
            }
            Some((keys, secrets_yml)) => {
                with_secrets = true;
                let key = vault.expect("split only with a vault").key;
                entries.push(Entry::dir(format!("{base}/")));
                if let Some(data) = vars_file(vars, &keys) {
                    entries.push(Entry::file(format!("{base}/{VARS_IN_DIR}"), data));
                }
                let sealed = key.encrypt(&secrets_yml, VAULT_ID).map_err(|e| invalid(e.to_string()))?;
                entries.push(Entry::file(format!("{base}/{SECRETS_FILE}"), sealed.into_bytes()));
            }
        }
        Ok(())
    };

    // `all` cannot collide with a group: render refuses a group of that name.
    let groups = std::iter::once(("all", &s.all_vars)).chain(s.groups.iter().map(|g| (g.name.as_str(), &g.vars)));
    for (name, vars) in groups {
        if !vars.values().any(|v| v.tier == Tier::VarsFile) {
            continue;
        }
        // render keeps the file tier only for file-safe names; anything else
        // here is a bug upstream, and must not become a path.
        if !file_safe(name) {
            return Err(invalid(format!(
                "vars file for group {name:?} requested, but that name cannot be a file name"
            )));
        }
        // Unlike a host's, a group's vars cannot move inline here without
        // changing precedence; better no bundle than one that unzips wrong.
        if format == Format::Zip && !portable(name) {
            return Err(invalid(format!(
                "group {name:?} has group_vars file values, but unzip drops control characters from file names; \
                 use the tgz format"
            )));
        }
        vars_entries(&mut entries, format!("{GROUP_VARS}{name}"), vars)?;
    }
    for (h, vars) in e.hostvars.iter().enumerate().filter(|&(h, _)| host_files[h]) {
        vars_entries(&mut entries, format!("{HOST_VARS}{}", s.hosts[h].name), vars)?;
    }
    if let Some(v) = vault {
        let pems = pem_files(snap, &e, v.key)?;
        with_secrets |= !pems.is_empty();
        entries.extend(pems);
    }
    let client = vault.and_then(|v| v.client.as_ref()).filter(|_| with_secrets);
    match client {
        None => entries.push(Entry::file("ansible.cfg".into(), ANSIBLE_CFG.to_vec())),
        Some(c) => {
            let mut cfg = ANSIBLE_CFG.to_vec();
            cfg.extend_from_slice(format!("vault_identity_list = {VAULT_ID}@./{CLIENT_SCRIPT}\n").as_bytes());
            entries.push(Entry::file("ansible.cfg".into(), cfg));
            entries.push(Entry { path: CLIENT_SCRIPT.into(), data: Some(CLIENT_SOURCE.to_vec()), exec: true });
            let meta = serde_json::json!({"project": c.project, "revision": c.revision, "data_key": c.data_key});
            entries.push(Entry::file(CLIENT_META.into(), format!("{meta}\n").into_bytes()));
        }
    }
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(invalid(format!("two bundle members named {:?}", pair[0].path)));
        }
    }
    for en in &entries {
        check_entry_path(&en.path)?;
    }
    Ok(entries)
}

/// A name that every common extractor writes as given: Info-ZIP `unzip`
/// drops ASCII control characters from member names (`a\x01b` becomes
/// `ab`), which would detach the file from its owner.
fn portable(name: &str) -> bool {
    !name.chars().any(char::is_control)
}

/// Per emitted host: whether its file-tier vars go to `host_vars/NAME`
/// (else they are written inline with the rest). For a host the tier does
/// not change any value: both host tiers rank above every group value and
/// a host has one value per key. So a host gets a file only when its name
/// is file-safe, portable, and unique ignoring case (two names differing
/// only in case would be one file on macOS or Windows).
fn host_files(e: &Emitted) -> Vec<bool> {
    let s = &e.structure;
    let has_file_vars = |h: usize| e.hostvars[h].values().any(|v| v.tier == Tier::VarsFile);
    let mut out: Vec<bool> = (0..s.hosts.len())
        .map(|h| has_file_vars(h) && file_safe(&s.hosts[h].name) && portable(&s.hosts[h].name))
        .collect();
    let mut folded: Vec<(String, usize)> =
        (0..s.hosts.len()).filter(|&h| out[h]).map(|h| (s.hosts[h].name.to_lowercase(), h)).collect();
    folded.sort();
    for pair in folded.windows(2) {
        if pair[0].0 == pair[1].0 {
            out[pair[0].1] = false;
            out[pair[1].1] = false;
        }
    }
    out
}

/// Defence in depth for archive member names: relative, no `.`/`..` or
/// empty components, no NUL or backslash, so no extractor can be led
/// outside the directory it unpacks into.
fn check_entry_path(path: &str) -> Result<(), RenderError> {
    let body = path.strip_suffix('/').unwrap_or(path);
    let ok = !body.is_empty()
        && !path.starts_with('/')
        && !path.contains(['\0', '\\'])
        && body.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("refusing bundle member name {path:?}")))
    }
}

/// True when the YAML inventory plugin reads the host key `name` back as
/// exactly that one host. It passes keys through `_expand_hostpattern`:
/// any `[` may start a range (expanded, or an error), and `HEAD:DIGITS`
/// with a colon-free HEAD becomes HEAD plus `ansible_port` (Python's `$`
/// also matches before a final newline). Ansible keeps the name whole when
/// HEAD is not a valid host name; this check refuses those too, to stay
/// simple and on the safe side.
fn literal_host_name(name: &str) -> bool {
    if name.contains('[') {
        return false;
    }
    let body = name.strip_suffix('\n').unwrap_or(name);
    match body.rsplit_once(':') {
        Some((head, port)) => port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || head.contains([':', ']']),
        None => true,
    }
}

/// `{"k": v, ...}` for the file-tier vars, one per line; `None` when there
/// are none (Ansible ignores empty vars files, so none are written). In
/// YAML syntax when a value holds a typed envelope.
fn vars_file(vars: &OwnVars, except: &[&str]) -> Option<Vec<u8>> {
    let file_vars = || vars.iter().filter(|(k, v)| v.tier == Tier::VarsFile && !except.contains(&k.as_str()));
    let yaml = file_vars().any(|(_, v)| typed::holds_envelope(v.value.get()));
    let mut out = Vec::new();
    for (k, v) in file_vars() {
        out.extend_from_slice(if out.is_empty() { b"{\n  " } else { b",\n  " });
        push_str(&mut out, k);
        out.extend_from_slice(b": ");
        if yaml {
            push_yaml(&mut out, &v.value);
        } else {
            out.extend_from_slice(v.value.get().as_bytes());
        }
    }
    if out.is_empty() {
        return None;
    }
    out.extend_from_slice(b"\n}\n");
    Some(out)
}

/// The keys of `vars` that are this output's own secrets, and the plain
/// YAML of `secrets.yml` holding them (to be vault-encrypted whole);
/// `None` when there are none. A value that is not UTF-8 cannot be a YAML
/// string and stays where it is, as an inline vault value.
#[allow(clippy::type_complexity)]
fn split_secrets<'v>(
    vars: &'v OwnVars,
    key: &VaultKey,
) -> Result<Option<(Vec<&'v str>, Zeroizing<Vec<u8>>)>, RenderError> {
    let mut keys = Vec::new();
    let mut yml = Zeroizing::new(Vec::new());
    for (k, v) in vars.iter().filter(|(_, v)| v.tier == Tier::VarsFile) {
        let Some(plain) = inject::own_plaintext(&v.value, key) else { continue };
        let Ok(text) = std::str::from_utf8(&plain) else { continue };
        keys.push(k.as_str());
        // JSON strings are YAML double-quoted scalars: one syntax to escape.
        push_str(&mut yml, k);
        yml.extend_from_slice(b": ");
        push_str(&mut yml, text);
        yml.push(b'\n');
    }
    Ok((!keys.is_empty()).then_some((keys, yml)))
}

/// `files/HOST/NAME.pem` for every PEM secret each emitted host resolves
/// (whichever owner supplied it), vault-encrypted. Hosts whose names
/// cannot be directory names get none.
fn pem_files(snap: &Snapshot, e: &Emitted, key: &VaultKey) -> Result<Vec<Entry>, RenderError> {
    let mut out = Vec::new();
    let mut resolver = Resolver::new(snap);
    for host in &e.structure.hosts {
        if !file_safe(&host.name) || !portable(&host.name) {
            continue;
        }
        let Some(h) = snap.host_index(&host.name) else { continue };
        let mut dir_written = false;
        for (name, r) in resolver.resolve(h) {
            let Some(plain) = inject::own_plaintext(r.value, key) else { continue };
            if !plain.starts_with(b"-----BEGIN ") || !file_safe(name) {
                continue;
            }
            if !dir_written {
                if out.is_empty() {
                    out.push(Entry::dir(FILES.into()));
                }
                out.push(Entry::dir(format!("{FILES}{}/", host.name)));
                dir_written = true;
            }
            let sealed = key.encrypt(&plain, VAULT_ID).map_err(|e| invalid(e.to_string()))?;
            out.push(Entry::file(format!("{FILES}{}/{name}.pem", host.name), sealed.into_bytes()));
        }
    }
    Ok(out)
}

/// Appends `s` as a JSON string. Hand-rolled so that writing into a `Vec`
/// has no error path; escapes what JSON requires, nothing else.
fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Where the body of the group named `plugin` is written instead of at top
/// level: under the first `children` that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    All,
    Group(usize),
}

/// Writes `hosts/inventory.json`, mirroring [`render::write_list`] member
/// for member so that the YAML plugin makes the same calls in the same order
/// as the script plugin does on the script JSON: `all` first with its
/// children, then every group at top level in stored order (`hosts`, then
/// `vars`, then `children`, the order the script plugin applies them), then
/// the implicit `ungrouped`. Groups stay out of `all.children` unless they
/// are roots there, or Ansible would list them as children of `all`.
struct Doc<'a> {
    e: &'a Emitted<'a>,
    out: Vec<u8>,
    /// Hosts whose inline vars are already written (at first occurrence).
    written: Vec<bool>,
    /// Hosts with a host_vars file; the others get all their vars inline.
    host_files: &'a [bool],
    /// Hosts in no group, which `write_list` puts in `ungrouped`.
    ungrouped_hosts: Vec<usize>,
    /// The group named `plugin`, and where its body goes.
    plugin: Option<(usize, Home)>,
    /// Per-dict duplicate guard (a JSON object keeps only the last of
    /// duplicate keys, which would drop a host's vars): `mark[i] == stamp`.
    host_mark: Vec<u32>,
    group_mark: Vec<u32>,
    stamp: u32,
}

/// An entry of `all.children` or of the top level: a stored group, or the
/// implicit `ungrouped` that `write_list` adds for hosts in no group.
#[derive(Clone, Copy)]
enum Ref {
    Group(usize),
    Ungrouped,
}

fn inventory_json(e: &Emitted, host_files: &[bool]) -> Result<Vec<u8>, RenderError> {
    let s = &e.structure;
    if let Some(h) = s.hosts.iter().find(|h| !literal_host_name(&h.name)) {
        return Err(invalid(format!(
            "host {:?} cannot be written in a YAML inventory: Ansible would read it as a host pattern \
             (a [range] or a :port)",
            h.name
        )));
    }
    let ungrouped_hosts: Vec<usize> = (0..s.hosts.len()).filter(|&h| s.hosts[h].groups.is_empty()).collect();
    let has_ungrouped_group = s.groups.iter().any(|g| g.name == "ungrouped");
    // `all.children` exactly as write_list computes it.
    let mut listed: Vec<usize> = (0..s.groups.len()).filter(|&g| s.groups[g].all_position.is_some()).collect();
    listed.sort_by_key(|&g| s.groups[g].all_position);
    let mut roots: Vec<Ref> = listed.into_iter().map(Ref::Group).collect();
    roots.extend(
        (0..s.groups.len())
            .filter(|&g| s.groups[g].parents.is_empty() && s.groups[g].all_position.is_none())
            .map(Ref::Group),
    );
    let synthetic_ungrouped = !ungrouped_hosts.is_empty() && !has_ungrouped_group;
    if synthetic_ungrouped {
        roots.push(Ref::Ungrouped);
    }

    let plugin = match s.groups.iter().position(|g| g.name == PLUGIN_KEY) {
        None => None,
        Some(p) => {
            let home = if roots.iter().any(|r| matches!(r, Ref::Group(g) if *g == p)) {
                Some(Home::All)
            } else {
                s.groups.iter().position(|g| g.children.contains(&p)).map(Home::Group)
            };
            match home {
                Some(home) => Some((p, home)),
                // Neither a root nor anyone's child cannot come out of
                // emit; refuse rather than write an unreadable file.
                None => return Err(invalid(format!("group {PLUGIN_KEY:?} is referenced nowhere"))),
            }
        }
    };

    // About 40 bytes of structure per membership, plus the values.
    let value_bytes: usize = e.hostvars.iter().flat_map(|v| v.values()).map(|v| v.value.get().len() + 16).sum();
    let members: usize = s.groups.iter().map(|g| g.hosts.len() + g.children.len()).sum();
    let mut doc = Doc {
        e,
        out: Vec::with_capacity(value_bytes + 40 * members + 4096),
        written: vec![false; s.hosts.len()],
        host_files,
        ungrouped_hosts,
        plugin,
        host_mark: vec![0; s.hosts.len()],
        group_mark: vec![0; s.groups.len()],
        stamp: 0,
    };

    doc.out.extend_from_slice(b"{\"all\": {");
    let all_vars: Vec<(&str, &str)> = inline(&s.all_vars).collect();
    // `children` always, as write_list does for `all`.
    if doc.vars_section(&all_vars, false) {
        doc.out.extend_from_slice(b", ");
    }
    doc.out.extend_from_slice(b"\"children\": {");
    doc.next_stamp();
    // Kept: a nested body below moves `doc.stamp` on.
    let stamp = doc.stamp;
    let mut first = true;
    for r in &roots {
        let (name, nested) = match *r {
            Ref::Group(g) => {
                if std::mem::replace(&mut doc.group_mark[g], stamp) == stamp {
                    continue;
                }
                (s.groups[g].name.as_str(), doc.plugin == Some((g, Home::All)))
            }
            Ref::Ungrouped => ("ungrouped", false),
        };
        doc.key(&mut first, name);
        match *r {
            Ref::Group(g) if nested => doc.group_body(g),
            _ => doc.out.extend_from_slice(b"null"),
        }
    }
    doc.out.extend_from_slice(b"}}");

    for g in 0..s.groups.len() {
        doc.out.extend_from_slice(b",\n");
        push_str(&mut doc.out, &s.groups[g].name);
        doc.out.extend_from_slice(b": ");
        match doc.plugin {
            // Its body lives under `home`; `null` here still creates the
            // group at this point, as the script plugin's top-level entry
            // would.
            Some((p, _)) if p == g => doc.out.extend_from_slice(b"null"),
            _ => doc.group_body(g),
        }
    }
    if synthetic_ungrouped {
        doc.out.extend_from_slice(b",\n\"ungrouped\": {");
        let hosts = std::mem::take(&mut doc.ungrouped_hosts);
        doc.hosts_section(hosts.iter().copied());
        doc.out.push(b'}');
    }
    doc.out.extend_from_slice(b"\n}\n");
    Ok(doc.out)
}

/// An owner's inline (inventory-tier) vars that JSON can carry, as keys and
/// JSON texts (the others go to `typed.yml`).
fn inline(vars: &OwnVars) -> impl Iterator<Item = (&str, &str)> {
    vars.iter()
        .filter(|(_, v)| v.tier == Tier::Inventory && !typed::holds_envelope(v.value.get()))
        .map(|(k, v)| (k.as_str(), v.value.get()))
}

/// A stored value as YAML (valid JSON, checked on every write path).
fn push_yaml(out: &mut Vec<u8>, raw: &serde_json::value::RawValue) {
    match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(v) => typed::write_yaml(&v, out),
        Err(_) => out.extend_from_slice(raw.get().as_bytes()),
    }
}

/// `hosts/typed.yml`: each owner's inline vars that hold typed envelopes,
/// as a YAML inventory that only sets variables on existing groups and
/// hosts; `None` when there are none.
fn typed_overlay(e: &Emitted, host_files: &[bool]) -> Result<Option<Vec<u8>>, RenderError> {
    let s = &e.structure;
    let typed_inline = |vars: &OwnVars, all_tiers: bool| -> Vec<(String, Box<serde_json::value::RawValue>)> {
        vars.iter()
            .filter(|(_, v)| (all_tiers || v.tier == Tier::Inventory) && typed::holds_envelope(v.value.get()))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    };
    // Group name -> (its typed vars, typed vars of hosts set through it).
    type Vars = Vec<(String, Box<serde_json::value::RawValue>)>;
    let mut groups: Vec<(&str, Vars, Vec<(&str, Vars)>)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let owners = std::iter::once(("all", &s.all_vars)).chain(s.groups.iter().map(|g| (g.name.as_str(), &g.vars)));
    for (name, vars) in owners {
        let t = typed_inline(vars, false);
        if t.is_empty() {
            continue;
        }
        if name == PLUGIN_KEY {
            return Err(invalid(format!(
                "group {PLUGIN_KEY:?} has inline values of types JSON cannot carry (int keys, timestamps), \
                 which a bundle sets at top level of a YAML file, where Ansible reads `plugin` as a plugin name"
            )));
        }
        index.insert(name, groups.len());
        groups.push((name, t, Vec::new()));
    }
    for (h, host) in s.hosts.iter().enumerate() {
        let t = typed_inline(&e.hostvars[h], !host_files[h]);
        if t.is_empty() {
            continue;
        }
        // Through a group the host is already in: no membership changes.
        let via = match host.groups.iter().map(|&g| s.groups[g].name.as_str()).find(|n| *n != PLUGIN_KEY) {
            Some(n) => n,
            None if host.groups.is_empty() => "ungrouped",
            None => {
                return Err(invalid(format!(
                    "host {:?} has inline values of types JSON cannot carry and is only in group {PLUGIN_KEY:?}",
                    host.name
                )))
            }
        };
        let i = *index.entry(via).or_insert_with(|| {
            groups.push((via, Vec::new(), Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push((host.name.as_str(), t));
    }
    if groups.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let object = |out: &mut Vec<u8>, vars: &Vars| {
        out.push(b'{');
        for (i, (k, v)) in vars.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            typed::yaml_str(k, out);
            out.extend_from_slice(b": ");
            push_yaml(out, v);
        }
        out.push(b'}');
    };
    for (name, vars, hosts) in &groups {
        typed::yaml_str(name, &mut out);
        out.extend_from_slice(b": {");
        if !vars.is_empty() {
            out.extend_from_slice(b"\"vars\": ");
            object(&mut out, vars);
        }
        if !hosts.is_empty() {
            if !vars.is_empty() {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"\"hosts\": {");
            for (i, (h, hv)) in hosts.iter().enumerate() {
                out.extend_from_slice(if i > 0 { b",\n  " } else { b"\n  " });
                typed::yaml_str(h, &mut out);
                out.extend_from_slice(b": ");
                object(&mut out, hv);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }
    Ok(Some(out))
}

impl Doc<'_> {
    fn next_stamp(&mut self) {
        self.stamp += 1;
    }

    /// Writes `"name": ` after a separator when not the first member.
    fn key(&mut self, first: &mut bool, name: &str) {
        if !std::mem::replace(first, false) {
            self.out.extend_from_slice(b", ");
        }
        push_str(&mut self.out, name);
        self.out.extend_from_slice(b": ");
    }

    /// `"vars": {...}` when there are any; returns whether it wrote.
    fn vars_section(&mut self, vars: &[(&str, &str)], leading_sep: bool) -> bool {
        if vars.is_empty() {
            return false;
        }
        if leading_sep {
            self.out.extend_from_slice(b", ");
        }
        self.out.extend_from_slice(b"\"vars\": ");
        self.object(vars.iter().copied());
        true
    }

    /// `{"k": v, ...}` from keys and JSON texts.
    fn object<'v>(&mut self, vars: impl Iterator<Item = (&'v str, &'v str)>) {
        self.out.push(b'{');
        let mut first = true;
        for (k, v) in vars {
            self.key(&mut first, k);
            self.out.extend_from_slice(v.as_bytes());
        }
        self.out.push(b'}');
    }

    /// `"hosts": {...}`, one host per line, each with its inline vars at
    /// its first occurrence in the document and `null` after.
    fn hosts_section(&mut self, hosts: impl Iterator<Item = usize>) -> bool {
        let e = self.e;
        self.next_stamp();
        let mut wrote = false;
        for h in hosts {
            if std::mem::replace(&mut self.host_mark[h], self.stamp) == self.stamp {
                continue;
            }
            self.out.extend_from_slice(if wrote { b",\n  " } else { b"\"hosts\": {\n  " });
            wrote = true;
            push_str(&mut self.out, &e.structure.hosts[h].name);
            self.out.extend_from_slice(b": ");
            let all_tiers = !self.host_files[h];
            let mut vars = e.hostvars[h]
                .iter()
                .filter(|(_, v)| (all_tiers || v.tier == Tier::Inventory) && !typed::holds_envelope(v.value.get()))
                .map(|(k, v)| (k.as_str(), v.value.get()))
                .peekable();
            if !std::mem::replace(&mut self.written[h], true) && vars.peek().is_some() {
                self.object(vars);
            } else {
                self.out.extend_from_slice(b"null");
            }
        }
        if wrote {
            self.out.push(b'}');
        }
        wrote
    }

    /// A group's dict: `hosts`, `vars` (inline, plus its priority as
    /// write_list adds it), `children`; empty sections left out (the YAML
    /// plugin takes `{}` for a group with nothing, unlike the script one).
    fn group_body(&mut self, g: usize) {
        let e = self.e;
        let s = &e.structure;
        let group = &s.groups[g];
        self.out.push(b'{');
        let extra: Vec<usize> =
            if group.name == "ungrouped" { std::mem::take(&mut self.ungrouped_hosts) } else { Vec::new() };
        let mut sep = self.hosts_section(group.hosts.iter().copied().chain(extra));

        let mut vars: Vec<(&str, &str)> = inline(&group.vars).collect();
        // The same text, at the same place, as write_list's vars_out gives it.
        let priority = group.priority.map(|p| p.to_string());
        if let Some(p) = &priority {
            match vars.iter_mut().find(|(k, _)| *k == "ansible_group_priority") {
                Some(slot) => slot.1 = p,
                None => vars.push(("ansible_group_priority", p)),
            }
        }
        sep |= self.vars_section(&vars, sep);

        if !group.children.is_empty() {
            if sep {
                self.out.extend_from_slice(b", ");
            }
            self.out.extend_from_slice(b"\"children\": {");
            self.next_stamp();
            let stamp = self.stamp;
            let mut first = true;
            for &c in &group.children {
                if std::mem::replace(&mut self.group_mark[c], stamp) == stamp {
                    continue;
                }
                self.key(&mut first, &s.groups[c].name);
                if self.plugin == Some((c, Home::Group(g))) {
                    self.group_body(c);
                } else {
                    self.out.extend_from_slice(b"null");
                }
            }
            self.out.push(b'}');
        }
        self.out.push(b'}');
    }
}

fn tgz(entries: &[Entry]) -> Result<Vec<u8>, RenderError> {
    let size: usize = entries.iter().map(|e| 1024 + e.data.as_ref().map_or(0, Vec::len)).sum();
    // mtime 0, no file name, OS byte fixed by flate2: a reproducible header.
    let gz = flate2::GzBuilder::new().mtime(0).write(Vec::with_capacity(size / 4), flate2::Compression::new(LEVEL));
    let mut tar = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match &e.data {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if e.exec { EXEC_MODE } else { FILE_MODE });
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, &e.path, data.as_slice())?;
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(DIR_MODE);
                h.set_size(0);
                tar.append_data(&mut h, &e.path, io::empty())?;
            }
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

fn zip_error(e: zip::result::ZipError) -> RenderError {
    match e {
        zip::result::ZipError::Io(e) => RenderError::Io(e),
        other => RenderError::Io(io::Error::other(other)),
    }
}

fn zip(entries: &[Entry]) -> Result<Vec<u8>, RenderError> {
    use zip::write::SimpleFileOptions;
    let size: usize = entries.iter().map(|e| 128 + 2 * e.path.len() + e.data.as_ref().map_or(0, Vec::len)).sum();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::with_capacity(size / 4)));
    // 1980-01-01 00:00, the zip epoch; set explicitly because the crate's
    // default is "now" when its `time` feature is on. No extra fields are
    // added for these options (no zip64: a bundle is far below 4 GiB).
    let base = SimpleFileOptions::default().last_modified_time(zip::DateTime::default()).large_file(false);
    let file = base
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(i64::from(LEVEL)))
        .unix_permissions(FILE_MODE);
    let dir = base.compression_method(zip::CompressionMethod::Stored).unix_permissions(DIR_MODE);
    let small = base.compression_method(zip::CompressionMethod::Stored).unix_permissions(FILE_MODE);
    for e in entries {
        match &e.data {
            Some(data) => {
                // Deflating a few hundred bytes saves little (no shared
                // dictionary across zip members) and setting up a deflate
                // stream per member costs most of the time for 10,000
                // host_vars files.
                let opts = if data.len() < STORE_BELOW { small } else { file };
                let opts = if e.exec { opts.unix_permissions(EXEC_MODE) } else { opts };
                w.start_file(e.path.as_str(), opts).map_err(zip_error)?;
                w.write_all(data)?;
            }
            None => w.add_directory(e.path.as_str(), dir).map_err(zip_error)?,
        }
    }
    Ok(w.finish().map_err(zip_error)?.into_inner())
}

/// A strong ETag of `bytes` (quoted SHA-256 hex): bundles and the
/// `--list`/`--host` documents of the REST API name their bytes with it.
pub fn etag(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(2 + 2 * digest.len());
    s.push('"');
    for b in digest {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{raw_from_value, GroupNode, HostNode, Project, Var};
    use serde_json::{json, Value};
    use std::io::Read;

    fn vars(pairs: &[(&str, Value, Tier)]) -> OwnVars {
        pairs.iter().map(|(k, v, t)| (k.to_string(), Var { value: raw_from_value(v), tier: *t })).collect()
    }

    fn group(id: i64, name: &str, v: OwnVars) -> GroupNode {
        GroupNode {
            id,
            name: name.into(),
            kind: "group".into(),
            description: None,
            priority: None,
            all_position: None,
            parents: vec![],
            children: vec![],
            hosts: vec![],
            vars: v,
        }
    }

    fn host(id: i64, name: &str, v: OwnVars) -> HostNode {
        HostNode {
            id,
            name: name.into(),
            ip_address: None,
            active: true,
            parent: None,
            labels: vec![],
            groups: vec![],
            vars: v,
        }
    }

    fn snapshot(all_vars: OwnVars, groups: Vec<GroupNode>, hosts: Vec<HostNode>) -> Snapshot {
        Snapshot {
            project: Project { id: 1, name: "t".into(), revision: 0, created_at: 0, updated_at: 0 },
            all_vars,
            groups,
            hosts,
            depth_memo: Default::default(),
        }
    }

    fn link(s: &mut Snapshot, parent: usize, child: usize) {
        s.groups[parent].children.push(child);
        s.groups[child].parents.push(parent);
        s.groups[child].parents.sort();
    }

    fn member(s: &mut Snapshot, g: usize, h: usize) {
        s.groups[g].hosts.push(h);
        s.hosts[h].groups.push(g);
        s.hosts[h].groups.sort();
    }

    /// Paths and contents of a built archive, read back with the crates.
    fn members(b: &Bundle, format: Format) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        match format {
            Format::Tgz => {
                let mut a = tar::Archive::new(flate2::read::GzDecoder::new(b.bytes.as_slice()));
                for en in a.entries().expect("tar entries") {
                    let mut en = en.expect("tar entry");
                    let h = en.header();
                    assert_eq!(h.mtime().expect("mtime"), 0);
                    assert_eq!((h.uid().expect("uid"), h.gid().expect("gid")), (0, 0));
                    let dir = h.entry_type().is_dir();
                    assert_eq!(h.mode().expect("mode"), if dir { 0o755 } else { 0o644 });
                    let path = String::from_utf8(en.path_bytes().into_owned()).expect("utf-8 path");
                    let mut data = Vec::new();
                    en.read_to_end(&mut data).expect("tar data");
                    out.push((if dir { format!("{}/", path.trim_end_matches('/')) } else { path }, data));
                }
            }
            Format::Zip => {
                let mut a = zip::ZipArchive::new(Cursor::new(b.bytes.as_slice())).expect("zip");
                for i in 0..a.len() {
                    let mut f = a.by_index(i).expect("zip entry");
                    assert!(f.extra_data().is_none_or(|d| d.is_empty()), "extra field in {}", f.name());
                    assert_eq!(f.last_modified().map(|t| (t.year(), t.month(), t.day())), Some((1980, 1, 1)));
                    let mut data = Vec::new();
                    f.read_to_end(&mut data).expect("zip data");
                    out.push((f.name().to_string(), data));
                }
            }
        }
        out
    }

    fn file<'a>(m: &'a [(String, Vec<u8>)], path: &str) -> Option<&'a [u8]> {
        m.iter().find(|(p, _)| p == path).map(|(_, d)| d.as_slice())
    }

    fn inventory(m: &[(String, Vec<u8>)]) -> Value {
        serde_json::from_slice(file(m, INVENTORY).expect("inventory.json")).expect("inventory.json is JSON")
    }

    #[test]
    fn hostile_names_never_become_paths() {
        let f = Tier::VarsFile;
        let names = [
            "../../etc/x",
            "/abs",
            "a\0b",
            "..",
            ".",
            "x/../../y",
            "C:\\evil",
            ".hidden",
            "tail~",
            "web.yml",
            "h.json",
        ];
        let long = "l".repeat(250);
        let groups: Vec<GroupNode> = names
            .iter()
            .enumerate()
            .map(|(i, n)| group(i as i64 + 1, n, vars(&[("gv", json!(format!("g{i}")), f)])))
            .collect();
        let mut hosts: Vec<HostNode> = names
            .iter()
            .chain([&long.as_str()])
            .enumerate()
            .map(|(i, n)| host(i as i64 + 1, n, vars(&[("hv", json!(i), f), ("hi", json!("inline"), Tier::Inventory)])))
            .collect();
        hosts.push(host(100, "fine", vars(&[("hv", json!("file"), f)])));
        let mut s = snapshot(vars(&[("av", json!(1), f)]), groups, hosts);
        for h in 0..s.hosts.len() {
            member(&mut s, h % names.len(), h);
        }
        for format in [Format::Tgz, Format::Zip] {
            let b = build(&s, &Selection::default(), format).expect("build");
            let m = members(&b, format);
            let paths: Vec<&str> = m.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "ansible.cfg",
                    "hosts/",
                    "hosts/group_vars/",
                    "hosts/group_vars/all",
                    "hosts/host_vars/",
                    "hosts/host_vars/fine",
                    "hosts/inventory.json",
                ],
                "{format:?}"
            );
            // Their vars went inline (render lifted the file-tier ones onto hosts).
            let inv = inventory(&m);
            assert_eq!(inv["../../etc/x"]["vars"]["gv"], json!("g0"));
            assert_eq!(inv["a\0b"]["hosts"]["a\0b"]["hv"], json!(2));
            // A group's file-tier vars that cannot have a file stay on the group, inline.
            assert_eq!(inv["/abs"]["vars"]["gv"], json!("g1"));
            assert_eq!(inv["/abs"]["hosts"]["/abs"], json!({"hv": 1, "hi": "inline"}));
        }
    }

    #[test]
    fn unportable_host_names_get_no_file() {
        let f = Tier::VarsFile;
        let names = ["a\u{1}b", "tab\tx", "Web", "web", "ok", "c1\u{85}"];
        let hosts = names
            .iter()
            .enumerate()
            .map(|(i, n)| host(i as i64, n, vars(&[("hf", json!(i), f), ("hi", json!("i"), Tier::Inventory)])))
            .collect();
        let mut s = snapshot(OwnVars::default(), vec![group(1, "g", OwnVars::default())], hosts);
        for h in 0..names.len() {
            member(&mut s, 0, h);
        }
        for format in [Format::Tgz, Format::Zip] {
            let m = members(&build(&s, &Selection::default(), format).expect("build"), format);
            let files: Vec<&str> =
                m.iter().filter_map(|(p, _)| p.strip_prefix(HOST_VARS)).filter(|p| !p.is_empty()).collect();
            assert_eq!(files, ["ok"], "{format:?}");
            let inv = inventory(&m);
            for (i, n) in names.iter().enumerate().filter(|(_, n)| **n != "ok") {
                assert_eq!(inv["g"]["hosts"][n], json!({"hf": i, "hi": "i"}), "{n:?}");
            }
            assert_eq!(inv["g"]["hosts"]["ok"], json!({"hi": "i"}));
        }
        // A group name with a control character is not file-safe: its file
        // values go inline (lifted where needed) and no group_vars file names it.
        s.groups[0].name = "g\u{1}".into();
        s.groups[0].vars = vars(&[("gf", json!(1), f)]);
        for format in [Format::Tgz, Format::Zip] {
            let m = members(&build(&s, &Selection::default(), format).expect("build"), format);
            assert!(m.iter().all(|(p, _)| !p.contains('\u{1}')), "{format:?}");
        }
    }

    #[test]
    fn long_file_names_survive_tar() {
        let name = "n".repeat(200);
        assert!(file_safe(&name));
        let mut s = snapshot(
            OwnVars::default(),
            vec![group(1, "g", OwnVars::default())],
            vec![host(1, &name, OwnVars::default())],
        );
        s.hosts[0].vars = vars(&[("k", json!("v"), Tier::VarsFile)]);
        member(&mut s, 0, 0);
        for format in [Format::Tgz, Format::Zip] {
            let b = build(&s, &Selection::default(), format).expect("build");
            let m = members(&b, format);
            let data = file(&m, &format!("hosts/host_vars/{name}")).expect("long host_vars file");
            assert_eq!(serde_json::from_slice::<Value>(data).expect("json"), json!({"k": "v"}));
        }
    }

    #[test]
    fn host_patterns_are_refused() {
        for (name, literal) in [
            ("web1", true),
            ("web1.example.com", true),
            ("::1", true),
            ("fe80::1:22", true),
            ("a:b", true),
            ("a:", true),
            ("a]:22", true),
            ("web[1:3]", false),
            ("web[", false),
            ("[::1]:22", false),
            ("db:5432", false),
            ("10.0.0.1:22", false),
            ("db:22\n", false),
            ("we b:22", false),
        ] {
            assert_eq!(literal_host_name(name), literal, "{name:?}");
        }
        let mut s = snapshot(
            OwnVars::default(),
            vec![group(1, "g", OwnVars::default())],
            vec![host(1, "db:5432", OwnVars::default())],
        );
        member(&mut s, 0, 0);
        let err = build(&s, &Selection::default(), Format::Tgz).expect_err("host pattern");
        assert!(err.to_string().contains("db:5432"), "{err}");
    }

    #[test]
    fn structure_mirrors_write_list() {
        let i = Tier::Inventory;
        // r1 (listed under all at 1) > mid > plugin; r0 (at 0); lonely in no group.
        let mut s = snapshot(
            vars(&[("a", json!(1), i)]),
            vec![
                group(1, "mid", vars(&[("m", json!("m"), i)])),
                group(2, "r1", OwnVars::default()),
                group(3, "plugin", vars(&[("p", json!("p"), i)])),
                group(4, "r0", OwnVars::default()),
                group(5, "empty", OwnVars::default()),
            ],
            vec![
                host(1, "h1", vars(&[("x", json!(1), i)])),
                host(2, "h2", OwnVars::default()),
                host(3, "lonely", vars(&[("y", json!(2), i)])),
            ],
        );
        s.groups[1].all_position = Some(1);
        s.groups[3].all_position = Some(0);
        s.groups[2].priority = Some(5);
        link(&mut s, 1, 0);
        link(&mut s, 0, 2);
        link(&mut s, 1, 4);
        member(&mut s, 2, 0);
        member(&mut s, 0, 0);
        member(&mut s, 2, 1);
        let b = build(&s, &Selection::default(), Format::Zip).expect("build");
        let inv = inventory(&members(&b, Format::Zip));
        let text = String::from_utf8(file(&members(&b, Format::Zip), INVENTORY).expect("inv").to_vec()).expect("utf8");
        assert_eq!(
            inv["all"],
            json!({"vars": {"a": 1}, "children": {"r0": null, "r1": null, "ungrouped": null}}),
            "{text}"
        );
        // plugin's body sits under its first parent, `null` at top level.
        assert_eq!(inv["plugin"], Value::Null);
        // h1's vars at its first occurrence in the document (mid's hosts).
        assert_eq!(
            inv["mid"],
            json!({"hosts": {"h1": {"x": 1}}, "vars": {"m": "m"},
                   "children": {"plugin": {"hosts": {"h1": null, "h2": null},
                                           "vars": {"p": "p", "ansible_group_priority": 5}}}})
        );
        assert_eq!(inv["r1"], json!({"children": {"mid": null, "empty": null}}));
        assert_eq!(inv["empty"], json!({}));
        assert_eq!(inv["ungrouped"], json!({"hosts": {"lonely": {"y": 2}}}));
        // Top-level order: all, groups in stored order, ungrouped.
        let top: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("object");
        let keys: Vec<&str> = top.keys().map(String::as_str).collect();
        assert_eq!(keys, ["all", "mid", "r1", "plugin", "r0", "empty", "ungrouped"]);
    }

    #[test]
    fn bytes_are_deterministic() {
        let f = Tier::VarsFile;
        let mut s = snapshot(
            vars(&[("a", json!(1), f)]),
            vec![group(1, "g", vars(&[("k", json!("v"), f)]))],
            vec![host(1, "h", vars(&[("x", json!([1, 2]), f)]))],
        );
        member(&mut s, 0, 0);
        for format in [Format::Tgz, Format::Zip] {
            let a = build(&s, &Selection::default(), format).expect("build");
            let b = build(&s.clone(), &Selection::default(), format).expect("build");
            assert_eq!(a.bytes, b.bytes, "{format:?}");
            assert_eq!(a.etag, b.etag);
            assert!(a.etag.starts_with('"') && a.etag.ends_with('"') && a.etag.len() == 66, "{}", a.etag);
            let mut t = s.clone();
            t.hosts[0].vars["x"].value = raw_from_value(&json!([1, 3]));
            assert_ne!(build(&t, &Selection::default(), format).expect("build").etag, a.etag);
        }
        // gzip header: no FNAME/FEXTRA flags, mtime 0.
        let gz = build(&s, &Selection::default(), Format::Tgz).expect("build").bytes;
        assert_eq!(&gz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn json_strings_escape_like_serde() {
        for s in ["plain", "q\"b\\s", "ctl\u{0}\u{1f}\n\r\t", "ünï ✓ 𝄞", "\u{7f}"] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(serde_json::from_slice::<String>(&out).expect("valid JSON"), s);
        }
    }

    /// `cargo test --release -p craton --lib bundle::tests::timing_10k -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn timing_10k() {
        // Half of each owner's vars inline, half in vars files: every host
        // gets a host_vars file, the costly case for the archive.
        let split = |k: usize| if k < 5 { Tier::Inventory } else { Tier::VarsFile };
        let var_set = |prefix: &str, n: usize, tier: &dyn Fn(usize) -> Tier| -> OwnVars {
            (0..10)
                .map(|k| {
                    let v = json!({"name": format!("{prefix}-{n}-{k}"), "port": 1000 + k, "on": k % 2 == 0});
                    (format!("var_{k}"), Var { value: raw_from_value(&v), tier: tier(k) })
                })
                .collect()
        };
        let mut groups: Vec<GroupNode> =
            (0..100).map(|g| group(g as i64, &format!("group_{g}"), var_set("g", g, &split))).collect();
        for (g, node) in groups.iter_mut().enumerate().skip(10) {
            node.parents = vec![g % 10];
        }
        for g in 10..100 {
            groups[g % 10].children.push(g);
        }
        let hosts: Vec<HostNode> =
            (0..10_000).map(|h| host(h as i64, &format!("host-{h:05}.example.com"), var_set("h", h, &split))).collect();
        let mut s = snapshot(var_set("a", 0, &|_| Tier::Inventory), groups, hosts);
        for h in 0..10_000 {
            member(&mut s, 10 + h % 90, h);
            member(&mut s, 10 + (h * 7 + 3) % 90, h);
        }
        let t = std::time::Instant::now();
        let _ = render::emit(&s, &Selection::default(), Options { layout: Layout::Files, ..Options::default() })
            .expect("emit");
        let t_emit = t.elapsed();
        let t = std::time::Instant::now();
        let entries = layout(&s, &Selection::default(), Format::Tgz, None).expect("layout");
        let t_layout = t.elapsed();
        let files = entries.iter().filter(|e| e.data.is_some()).count();
        let raw: usize = entries.iter().filter_map(|e| e.data.as_ref()).map(Vec::len).sum();
        eprintln!("emit {t_emit:?}; emit + layout {t_layout:?}: {files} files, {raw} bytes");
        for format in [Format::Tgz, Format::Zip] {
            let t = std::time::Instant::now();
            let b = build(&s, &Selection::default(), format).expect("build");
            eprintln!("{format:?}: build {:?}, {} bytes", t.elapsed(), b.bytes.len());
        }
    }
}
