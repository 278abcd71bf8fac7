//! Reading existing Ansible inventories: YAML, INI, TOML, the JSON a script
//! or `ansible-inventory --list` prints, executable inventory scripts, and
//! directories of those with `group_vars/` and `host_vars/`. Parsing
//! produces a [`Desired`] inventory and touches no database; bad input stops
//! here, naming file and line.
//!
//! Ansible itself is the specification: each parser mirrors the ansible-core
//! plugin of the same format, all of them feed [`builder::ParsedInventory`]
//! (a mirror of Ansible's `InventoryData`), a file goes through the plugins
//! in Ansible's default order (`script`, `auto`, `yaml`, `ini`, `toml`), each
//! declining or failing in turn, and vars files are found and merged as the
//! `host_group_vars` plugin does. Given vault passwords, vault-encrypted
//! vars files and inline `!vault` values are decrypted and become secrets
//! ([`vaulted`]). What Craton cannot read natively (inventory plugins,
//! vault-encrypted inventory files) can go through the installed
//! `ansible-inventory` with [`via_ansible`].

pub mod builder;
pub mod command;
pub mod hostrange;
pub mod ini;
pub mod pyliteral;
pub mod script_json;
pub mod toml_inventory;
pub mod vars_files;
pub mod vaulted;
pub mod yaml11;
pub mod yaml_inventory;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use indexmap::IndexMap;
use serde_json::Value;

use crate::desired::{Desired, DesiredGroup, DesiredHost, DesiredSecret, SecretOwner};
use crate::model::{raw_from_value, OwnVars, Tier, Var};
pub use crate::names::check_name;
use builder::{ParseError, ParsedInventory};
use vaulted::{Book, FileSecret};

/// An import failure: which file, which line (where the format has lines), what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ImportError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ImportError {
    pub fn new(file: &Path, e: ParseError) -> Self {
        ImportError { file: file.display().to_string(), line: e.line, message: e.message }
    }
    fn msg(file: &Path, message: impl Into<String>) -> Self {
        ImportError { file: file.display().to_string(), line: None, message: message.into() }
    }
}

/// The result of reading an input.
#[derive(Debug, Default)]
pub struct Imported {
    pub desired: Desired,
    /// The variables the input holds vault-encrypted, decrypted (only with
    /// [`ImportOptions::vault`]); `desired` does not hold them.
    pub secrets: Vec<DesiredSecret>,
    /// Things Ansible would also have skipped, worth telling the operator.
    pub warnings: Vec<String>,
}

/// What an import may do beyond reading files. The default runs nothing:
/// config ref syncs read repositories project editors control.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Run executable inventory files as Ansible's `script` plugin does
    /// (`FILE --list`, then `FILE --host NAME` per host without `_meta`).
    pub run_scripts: bool,
    pub limits: command::Limits,
    /// Vault passwords: vaulted vars files and inline `!vault` values are
    /// decrypted into [`Imported::secrets`]. Without any, vaulted files are
    /// refused and inline values stay vaulted variables.
    pub vault: vaulted::VaultIds,
}

/// `--via-ansible`: which `ansible-inventory` to run and how.
#[derive(Debug, Clone)]
pub struct ViaAnsible {
    /// The program (`CRATON_ANSIBLE_INVENTORY`, default `ansible-inventory`
    /// on PATH).
    pub program: PathBuf,
    /// Passed on as `--vault-id` and `--vault-password-file`, in that order.
    pub vault_ids: Vec<String>,
    pub vault_password_files: Vec<PathBuf>,
    pub limits: command::Limits,
}

/// Files Ansible skips in an inventory directory (`INVENTORY_IGNORE_EXTS`
/// and the always-ignored names).
fn ignored_in_dir(name: &str) -> bool {
    const EXTS: [&str; 12] =
        [".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry"];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

/// Ansible's `is_encrypted`: the vault header, on pure-ASCII data only.
fn is_vault(bytes: &[u8]) -> bool {
    bytes.starts_with(b"$ANSIBLE_VAULT") && bytes.is_ascii()
}

fn vault_refused(path: &Path) -> ImportError {
    ImportError::msg(
        path,
        "this file is vault-encrypted and no vault password was given: give it (`cratond import`: \
         --vault-password-file FILE or --vault-id LABEL@FILE; config refs: `vault_password_file` of the project in \
         the config file) and its strings become Craton secrets, or import through Ansible with `cratond import \
         ansible PATH --via-ansible --vault-password-file FILE` (values stored in plain text)",
    )
}

/// A vault-encrypted inventory file (not a vars file): its groups and hosts
/// would become plain rows anyway, so Craton does not decrypt it.
fn vault_inventory_refused(path: &Path) -> ImportError {
    ImportError::msg(
        path,
        "this inventory file is vault-encrypted; Craton decrypts vault-encrypted group_vars/host_vars files and \
         inline !vault values (they become secrets), not whole inventory files, whose groups and hosts are not \
         secret in Craton: decrypt it and keep the secrets in vaulted vars files or !vault values, or import \
         through Ansible with --via-ansible",
    )
}

/// An inventory file's bytes; vault-encrypted ones are refused.
fn read_bytes(path: &Path, book: &Book) -> Result<Vec<u8>, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::msg(path, format!("cannot read: {e}")))?;
    if is_vault(&bytes) {
        return Err(if book.can_open() { vault_inventory_refused(path) } else { vault_refused(path) });
    }
    Ok(bytes)
}

/// The 1-based line of the first byte that is not UTF-8.
fn bad_utf8_line(bytes: &[u8], e: &std::str::Utf8Error) -> usize {
    bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A vars file's UTF-8 text, and whether it was vault-encrypted (then it is
/// decrypted with the import's passwords, or refused without any).
fn read_vars_text(path: &Path, book: &Book) -> Result<(crate::secrets::Zeroizing<String>, bool), ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::msg(path, format!("cannot read: {e}")))?;
    if is_vault(&bytes) {
        if !book.can_open() {
            return Err(vault_refused(path));
        }
        return Ok((book.open_file(path, &bytes)?, true));
    }
    let text = String::from_utf8(bytes).map_err(|e| ImportError {
        file: path.display().to_string(),
        line: Some(bad_utf8_line(e.as_bytes(), &e.utf8_error())),
        message: "not valid UTF-8".into(),
    })?;
    Ok((crate::secrets::Zeroizing::new(text), false))
}

/// What `ansible-inventory --list` prints for text the INI plugin decoded
/// with `surrogateescape`: each run of undecodable bytes becomes one `?`
/// (Display's `_replacing_warning_handler` replaces a run of lone
/// surrogates at once). The line of the first such byte comes with it.
fn decode_like_ansible_display(bytes: &[u8]) -> (String, Option<usize>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(e) => {
            let line = bad_utf8_line(bytes, &e);
            let mut out = String::with_capacity(bytes.len());
            let mut in_run = false;
            for chunk in bytes.utf8_chunks() {
                if !chunk.valid().is_empty() {
                    out.push_str(chunk.valid());
                    in_run = false;
                }
                if !chunk.invalid().is_empty() && !in_run {
                    out.push('?');
                    in_run = true;
                }
            }
            (out, Some(line))
        }
    }
}

/// `InventoryData.set_variable(entity, key, value)`: a group of that name
/// wins over a host, so a host named like a group gives its variables to the
/// group; `ansible_group_priority` of a group goes through Python's `int()`.
pub(crate) fn set_variable(inv: &mut ParsedInventory, entity: &str, key: &str, value: Value) -> Result<(), String> {
    if inv.groups.contains_key(entity) {
        // `Group.set_priority(int(value))`: Python's int() of a string
        // allows what a Rust parse does not (`1_0`, Unicode digits).
        let value = match value {
            Value::String(s) if key == "ansible_group_priority" => {
                let n = hostrange::py_int(&s)
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or_else(|| format!("invalid literal for int() with base 10: {}", hostrange::py_repr(&s)))?;
                Value::from(n)
            }
            other => other,
        };
        inv.set_group_var(entity, key, value)
    } else {
        inv.set_host_var(entity, key, value)
    }
}

/// `os.access(path, X_OK)`, as the `script` plugin's `verify_file` asks.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    path.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

/// Would exec(2) run this file? Python's subprocess fails with "Exec format
/// error" on anything else (no `/bin/sh` fallback), so the plugin chain
/// moves on; checking the header keeps Craton from ever trying.
fn has_exec_header(bytes: &[u8]) -> bool {
    bytes.starts_with(b"#!") || bytes.starts_with(b"\x7fELF")
}

/// Runs an inventory script with `args`, as the `script` plugin's
/// `run_command` does: its stdout, UTF-8, or an error naming the script.
fn run_script(path: &Path, args: &[&str], limits: &command::Limits) -> Result<String, ParseError> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    // An absolute path: a bare name must not be looked up on PATH.
    let program = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let done = command::run(Command::new(program).args(args), limits)
        .map_err(|e| ParseError::new(None, format!("inventory script `{shown}` {e}")))?;
    if !done.status.success() {
        let code = done.status.code().map(|c| c.to_string()).unwrap_or_else(|| format!("{}", done.status));
        let tail = command::stderr_tail(&done.stderr, 500);
        let stderr = if tail.is_empty() { String::new() } else { format!("; its stderr: {tail}") };
        return Err(ParseError::new(
            None,
            format!("Inventory script `{shown}` returned non-zero exit code {code}{stderr}"),
        ));
    }
    String::from_utf8(done.stdout).map_err(|_| {
        ParseError::new(
            None,
            format!("Inventory script `{shown}` result contained characters that cannot be interpreted as UTF-8."),
        )
    })
}

/// Runs one plugin on a copy of `inv`, keeping the result only on success.
fn attempt(
    inv: &mut ParsedInventory,
    f: &mut dyn FnMut(&mut ParsedInventory) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut copy = inv.clone();
    f(&mut copy).map(|()| *inv = copy)
}

/// One plugin's failure on one file.
struct Failure {
    plugin: &'static str,
    error: ParseError,
}

/// Every plugin failed: one error listing each failure. The plugin the
/// file was most likely meant for (a script for a runnable file, else the
/// one of its extension) comes first and gives the `file:line` prefix; the
/// others follow in Ansible's order.
fn all_failed(path: &Path, failures: Vec<Failure>, meant_for: &str) -> ImportError {
    // Identical failures (auto and yaml load the file the same way) once.
    let mut grouped: Vec<(Vec<&'static str>, ParseError)> = Vec::new();
    for f in failures {
        match grouped.iter_mut().find(|(_, e)| *e == f.error) {
            Some((plugins, _)) => plugins.push(f.plugin),
            None => grouped.push((vec![f.plugin], f.error)),
        }
    }
    let primary = grouped.iter().position(|(p, _)| p.contains(&meant_for)).unwrap_or(0);
    let line = grouped.get(primary).and_then(|(_, e)| e.line);
    let describe = |(plugins, e): &(Vec<&str>, ParseError), with_line: bool| {
        let who = format!("{} plugin{}", plugins.join(", "), if plugins.len() > 1 { "s" } else { "" });
        match e.line {
            Some(l) if with_line => format!("{who}: line {l}: {}", e.message),
            _ => format!("{who}: {}", e.message),
        }
    };
    let mut parts = vec![describe(&grouped[primary], false)];
    parts.extend(grouped.iter().enumerate().filter(|(i, _)| *i != primary).map(|(_, g)| describe(g, true)));
    let message = if parts.len() == 1 {
        parts.remove(0)
    } else {
        format!("{}; no other inventory plugin could read it either ({})", parts[0], parts[1..].join("; "))
    };
    ImportError { file: path.display().to_string(), line, message }
}

/// Parses one inventory file into `inv` the way Ansible's default plugin
/// chain does: each plugin whose `verify_file` takes the file tries in turn
/// on a copy (a failed attempt leaves nothing behind), and the first that
/// succeeds wins.
fn parse_file(
    path: &Path,
    inv: &mut ParsedInventory,
    opts: &ImportOptions,
    warnings: &mut Vec<String>,
    book: &mut Book,
) -> Result<(), ImportError> {
    let bytes = read_bytes(path, book)?;
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    let text = std::str::from_utf8(&bytes);
    let mut failures: Vec<Failure> = Vec::new();

    // script: any executable file.
    let runnable = is_executable(path) && has_exec_header(&bytes);
    if is_executable(path) {
        if !has_exec_header(&bytes) {
            failures.push(Failure { plugin: "script", error: ParseError::new(None, "[Errno 8] Exec format error") });
        } else if !opts.run_scripts {
            return Err(ImportError::msg(
                path,
                "this is an executable inventory script; only `cratond import ansible` runs scripts (config ref \
                 syncs never execute files from a repository)",
            ));
        } else {
            let limits = opts.limits;
            let listed = run_script(path, &["--list"], &limits);
            let r = listed.and_then(|out| {
                attempt(inv, &mut |copy| {
                    let mut ask = |host: &str| run_script(path, &["--host", host], &limits);
                    script_json::parse_script_json(&out, copy, Some(&mut ask)).map(|_| ())
                })
            });
            match r {
                Ok(()) => return book.visit_inventory(path, inv),
                Err(error) => failures.push(Failure { plugin: "script", error }),
            }
        }
    }

    // Craton's own extension: saved script or `--list` output, recognised
    // by its shape (Ansible's yaml plugin would refuse it).
    if let Ok(text) = text {
        if text.trim_start().starts_with('{') && script_json::looks_like_script_output(text) {
            let read = script_json::parse_script_json(text, inv, None).map_err(|e| ImportError::new(path, e))?;
            if read.hostvars_missing {
                warnings.push(format!(
                    "{}: no _meta.hostvars and no script to ask with --host: the hosts get no variables of their own",
                    path.display()
                ));
            }
            return book.visit_inventory(path, inv);
        }
    }

    let not_utf8 = |e: &std::str::Utf8Error| {
        // What PyYAML says of the surrogates Ansible's decoding left.
        ParseError::at(bad_utf8_line(&bytes, e), "YAML parsing failed: not valid UTF-8")
    };
    // auto: `.yml`/`.yaml` naming an inventory plugin in `plugin:`.
    if matches!(ext.as_str(), ".yml" | ".yaml") {
        match text.map_err(|e| not_utf8(&e)).and_then(yaml11::load_data_node) {
            Ok(Some(root)) if root.get("plugin").is_some_and(yaml11::Node::is_truthy) => {
                let name = root.get("plugin").map(yaml11::py_str).unwrap_or_default();
                return Err(ImportError::msg(
                    path,
                    format!(
                        "an inventory plugin configuration (plugin: {name}); Craton runs inventory plugins only \
                         through Ansible: `cratond import ansible PATH --via-ansible`"
                    ),
                ));
            }
            Ok(_) => failures.push(Failure {
                plugin: "auto",
                error: ParseError::new(
                    None,
                    "no root 'plugin' key found, it is not a valid YAML inventory plugin config file",
                ),
            }),
            Err(error) => failures.push(Failure { plugin: "auto", error }),
        }
    }

    // yaml: no extension, `.yml`, `.yaml`, `.json`.
    if matches!(ext.as_str(), "" | ".yml" | ".yaml" | ".json") {
        let r = text.map_err(|e| not_utf8(&e)).and_then(|text| {
            let root = yaml11::load_data_node(text)?;
            let root = root.unwrap_or(yaml11::Node { line: 1, kind: yaml11::NodeKind::Null });
            attempt(inv, &mut |copy| yaml_inventory::parse_yaml_inventory(&root, copy)).map(|()| root)
        });
        match r {
            Ok(root) => return book.visit_node(path, &root),
            Err(error) => failures.push(Failure { plugin: "yaml", error }),
        }
    }

    // ini: anything but `.toml`, decoded as Ansible does.
    if ext != ".toml" {
        let (text, lossy_line) = decode_like_ansible_display(&bytes);
        match attempt(inv, &mut |copy| ini::parse_ini_inventory(&text, copy)) {
            Ok(()) => {
                if let Some(line) = lossy_line {
                    warnings.push(format!(
                        "{}:{line}: not valid UTF-8; read as Ansible reads it, each run of undecodable bytes \
                         becoming \"?\" as ansible-inventory prints it",
                        path.display()
                    ));
                }
                return Ok(());
            }
            Err(error) => failures.push(Failure { plugin: "ini", error }),
        }
    }

    // toml: `.toml` only.
    if ext == ".toml" {
        let r = text.map_err(|e| ParseError::at(bad_utf8_line(&bytes, &e), "not valid UTF-8")).and_then(|text| {
            let mut skipped = Vec::new();
            attempt(inv, &mut |copy| toml_inventory::parse_toml_inventory(text, copy, &mut skipped))?;
            warnings.extend(skipped.into_iter().map(|w| format!("{}: {w}", path.display())));
            Ok(())
        });
        match r {
            Ok(()) => return Ok(()),
            Err(error) => failures.push(Failure { plugin: "toml", error }),
        }
    }
    let meant_for = match ext.as_str() {
        _ if runnable => "script",
        "" | ".yml" | ".yaml" | ".json" => "yaml",
        ".toml" => "toml",
        _ => "ini",
    };
    Err(all_failed(path, failures, meant_for))
}

fn parse_source(
    path: &Path,
    inv: &mut ParsedInventory,
    opts: &ImportOptions,
    warnings: &mut Vec<String>,
    book: &mut Book,
) -> Result<(), ImportError> {
    if path.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(path)
            .map_err(|e| ImportError::msg(path, format!("cannot read directory: {e}")))?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        names.sort();
        for name in names.into_iter().filter(|n| !ignored_in_dir(n)) {
            parse_source(&path.join(name), inv, opts, warnings, book)?;
        }
        Ok(())
    } else {
        parse_file(path, inv, opts, warnings, book)
    }
}

/// Reads an inventory: a file, a directory, or `-` for script JSON on
/// stdin. Runs nothing (see [`import_with`]).
pub fn import_path(path: &str) -> Result<Imported, ImportError> {
    import_with(path, &ImportOptions::default())
}

/// [`import_path`] with options (`cratond import` runs scripts).
pub fn import_with(path: &str, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let mut inv = ParsedInventory::new();
    let mut warnings = Vec::new();
    let mut book = Book::new(opts.vault.clone());
    let vars_dir: Option<PathBuf> = if path == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| ImportError::msg(Path::new("<stdin>"), format!("cannot read: {e}")))?;
        if is_vault(&bytes) {
            let stdin = Path::new("<stdin>");
            return Err(if book.can_open() { vault_inventory_refused(stdin) } else { vault_refused(stdin) });
        }
        let text = String::from_utf8(bytes).map_err(|_| ImportError::msg(Path::new("<stdin>"), "not valid UTF-8"))?;
        let read = script_json::parse_script_json(&text, &mut inv, None)
            .map_err(|e| ImportError::new(Path::new("<stdin>"), e))?;
        if read.hostvars_missing {
            warnings.push(
                "<stdin>: no _meta.hostvars and no script to ask with --host: the hosts get no variables of their own"
                    .into(),
            );
        }
        book.visit_inventory(Path::new("<stdin>"), &inv)?;
        None
    } else {
        let p = Path::new(path);
        if !p.exists() {
            return Err(ImportError::msg(p, "no such file or directory"));
        }
        if p.is_dir() {
            vars_files::confine_inventory_dir(p)?;
        }
        parse_source(p, &mut inv, opts, &mut warnings, &mut book)?;
        Some(if p.is_dir() { p.to_path_buf() } else { p.parent().map(Path::to_path_buf).unwrap_or_default() })
    };
    let files = match &vars_dir {
        Some(dir) => vars_files::load(dir, &inv, &mut warnings, &mut book)?,
        None => vars_files::VarsFiles::default(),
    };
    let (desired, secrets) = to_desired(inv, files, &book)?;
    Ok(Imported { desired, secrets, warnings })
}

/// Environment variables `ansible-inventory` gets besides `ANSIBLE_*` and
/// those named in `CRATON_ANSIBLE_PASS_ENV`: what Python, TLS and proxies
/// need. Craton's own settings (database URL, tokens) never reach it.
const PASSED_ENV: [&str; 17] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// The environment for `ansible-inventory`, from `vars` (the process's).
fn ansible_env(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
    let extra: Vec<String> = vars
        .iter()
        .find(|(k, _)| k == "CRATON_ANSIBLE_PASS_ENV")
        .and_then(|(_, v)| v.to_str())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    // A source Ansible cannot parse must fail the import, not yield an
    // empty inventory that --replace would apply; the caller may override.
    let mut env: Vec<(OsString, OsString)> = vec![
        ("ANSIBLE_INVENTORY_UNPARSED_FAILED".into(), "true".into()),
        ("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED".into(), "true".into()),
        ("ANSIBLE_NOCOLOR".into(), "1".into()),
    ];
    for (k, v) in vars {
        let Some(name) = k.to_str() else { continue };
        let passed = PASSED_ENV.iter().any(|p| p.eq_ignore_ascii_case(name))
            || name.starts_with("ANSIBLE_")
            || extra.iter().any(|e| e == name);
        if passed && !name.starts_with("CRATON_") {
            env.retain(|(ek, _)| ek != &k);
            env.push((k, v));
        }
    }
    env
}

/// `--via-ansible`: runs `ansible-inventory -i PATH --list --export` (as
/// AWX imports) and reads its output as script JSON, so anything Ansible
/// reads (inventory plugins, vault with a password file) can be imported.
/// What Ansible does not print is lost: which values came from vars files,
/// and the files themselves.
pub fn via_ansible(path: &str, opts: &ViaAnsible) -> Result<Imported, ImportError> {
    let source = Path::new(path);
    let mut cmd = Command::new(&opts.program);
    cmd.arg("-i").arg(source).args(["--list", "--export"]);
    for id in &opts.vault_ids {
        cmd.arg("--vault-id").arg(id);
    }
    for f in &opts.vault_password_files {
        cmd.arg("--vault-password-file").arg(f);
    }
    cmd.env_clear().envs(ansible_env(std::env::vars_os()));
    let shown = format!("{} -i {} --list --export", opts.program.display(), source.display());
    let done = command::run(&mut cmd, &opts.limits).map_err(|e| ImportError::msg(source, format!("`{shown}` {e}")))?;
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    if !done.status.success() {
        let code = done.status.code().map(|c| c.to_string()).unwrap_or_else(|| format!("{}", done.status));
        return Err(ImportError::msg(
            source,
            format!("`{shown}` failed with exit code {code}: {}", command::stderr_tail(&done.stderr, 2000)),
        ));
    }
    let text = String::from_utf8(done.stdout)
        .map_err(|_| ImportError::msg(source, format!("`{shown}` printed output that is not UTF-8")))?;
    let mut inv = ParsedInventory::new();
    let shown_path = PathBuf::from(format!("<{shown}>"));
    script_json::parse_script_json(&text, &mut inv, None).map_err(|e| ImportError::new(&shown_path, e))?;
    // Ansible's own warnings (a `[WARNING]:` or `[DEPRECATION WARNING]:`
    // line and what follows it) are worth passing on, one line each.
    let mut warnings: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with('[') || warnings.is_empty() {
            warnings.push(format!("ansible-inventory: {}", line.trim()));
        } else if !line.trim().is_empty() {
            let last = warnings.last_mut().expect("not empty");
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    // Inline `!vault` values stay vaulted variables: Ansible printed them
    // encrypted, and this mode has no passwords of its own.
    let (desired, secrets) = to_desired(inv, vars_files::VarsFiles::default(), &Book::default())?;
    Ok(Imported { desired, secrets, warnings })
}

fn own_vars(inline: &indexmap::IndexMap<String, Value>, files: Option<&indexmap::IndexMap<String, Value>>) -> OwnVars {
    let mut out: OwnVars =
        inline.iter().map(|(k, v)| (k.clone(), Var { value: raw_from_value(v), tier: Tier::Inventory })).collect();
    // A vars file value always beats the same owner's inline value in
    // Ansible, so one row per key (the file's, on the file tier) is lossless.
    for (k, v) in files.into_iter().flatten() {
        out.insert(k.clone(), Var { value: raw_from_value(v), tier: Tier::VarsFile });
    }
    out
}

/// The ciphertext of a variable whose whole value is an inline `!vault`.
fn inline_ciphertext(raw: &str) -> Option<String> {
    if !raw.starts_with("{\"__ansible_vault\"") {
        return None;
    }
    let m: std::collections::HashMap<String, String> = serde_json::from_str(raw).ok()?;
    (m.len() == 1).then(|| m.into_values().next()).flatten()
}

/// Moves an owner's vaulted variables from `vars` to `out`: the keys of its
/// vault-encrypted vars files (a file value beats an inline one, as the
/// plain ones do) and, with passwords, every variable that is one inline
/// `!vault` value. A vaulted value nested in a dict or list cannot be a
/// secret of its own: it stays a vaulted value inside the variable.
pub(crate) fn take_secrets(
    owner: SecretOwner,
    vars: &mut OwnVars,
    file_secrets: Option<&IndexMap<String, FileSecret>>,
    book: &Book,
    out: &mut Vec<DesiredSecret>,
) -> Result<(), ImportError> {
    let mut push = |name: String, value: &crate::secrets::Secret, origin: &vaulted::Origin, tier: Tier| {
        out.push(DesiredSecret {
            owner: owner.clone(),
            kind: vaulted::kind_of(value.expose()),
            value: value.clone(),
            tier,
            file: origin.file.clone(),
            line: origin.line,
            name,
        })
    };
    for (k, s) in file_secrets.into_iter().flatten() {
        vars.shift_remove(k);
        push(k.clone(), &s.value, &s.origin, Tier::VarsFile);
    }
    if !book.can_open() {
        return Ok(());
    }
    let inline: Vec<(String, String, Tier)> = vars
        .iter()
        .filter_map(|(k, v)| inline_ciphertext(v.value.get()).map(|ct| (k.clone(), ct, v.tier)))
        .filter(|(_, ct, _)| book.inline(ct).is_some())
        .collect();
    for (k, ct, tier) in inline {
        let (plain, origin) = book.inline(&ct).expect("filtered on it");
        vaulted::check_secret(origin, &k, plain.expose())?;
        vars.shift_remove(&k);
        push(k, plain, origin, tier);
    }
    Ok(())
}

/// Turns Ansible's view of the input into what Craton stores: `all` becomes
/// the project's variables, `ungrouped` is implicit unless it carries
/// variables, and a host whose `physical_host` names another host gets it as
/// parent (OpenStack-Ansible containers). Vaulted variables become secrets
/// of the same owner ([`take_secrets`]).
fn to_desired(
    inv: ParsedInventory,
    files: vars_files::VarsFiles,
    book: &Book,
) -> Result<(Desired, Vec<DesiredSecret>), ImportError> {
    let mut d = Desired::default();
    let mut secrets = Vec::new();
    let all = &inv.groups["all"];
    d.all_vars = own_vars(&all.vars, files.groups.get("all"));
    take_secrets(SecretOwner::Project, &mut d.all_vars, files.group_secrets.get("all"), book, &mut secrets)?;
    for (name, g) in &inv.groups {
        if name == "all" {
            continue;
        }
        let file_vars = files.groups.get(name);
        let file_secrets = files.group_secrets.get(name);
        // `ungrouped` is implicit in Ansible; it is stored only when the
        // input gives it something of its own.
        if name == "ungrouped"
            && g.vars.is_empty()
            && file_vars.is_none()
            && file_secrets.is_none()
            && g.priority.is_none()
            && g.children.is_empty()
            && g.hosts.is_empty()
        {
            continue;
        }
        let mut vars = own_vars(&g.vars, file_vars);
        take_secrets(SecretOwner::Group(name.clone()), &mut vars, file_secrets, book, &mut secrets)?;
        d.groups.insert(
            name.clone(),
            DesiredGroup {
                priority: g.priority,
                all_position: all.children.get_index_of(name).map(|i| i as i32),
                vars,
                children: g.children.iter().cloned().collect(),
                hosts: g.hosts.iter().cloned().collect(),
            },
        );
    }
    for (name, h) in &inv.hosts {
        let mut vars = own_vars(&h.vars, files.hosts.get(name));
        take_secrets(SecretOwner::Host(name.clone()), &mut vars, files.host_secrets.get(name), book, &mut secrets)?;
        let text = |k: &str| vars.get(k).and_then(|v| serde_json::from_str::<String>(v.value.get()).ok());
        let ip_address = text("ansible_host").filter(|a| a.parse::<IpAddr>().is_ok());
        let parent = text("physical_host").filter(|p| p != name && inv.hosts.contains_key(p));
        d.hosts.insert(name.clone(), DesiredHost { ip_address, parent, vars });
    }
    Ok((d, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn executable(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn config_ref_sync_never_runs_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("#!/bin/sh\ntouch '{}'\necho '{{\"web\": [\"h1\"]}}'\n", marker.display());
        executable(dir.path(), "inventory.sh", &script);
        // import_path is what config ref syncs use.
        let e = import_path(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.message.contains("only `cratond import ansible` runs scripts"), "{e}");
        assert!(!marker.exists(), "the script ran");
        let opts = ImportOptions { run_scripts: true, ..ImportOptions::default() };
        let imported = import_with(dir.path().to_str().unwrap(), &opts).unwrap();
        assert!(marker.exists());
        assert_eq!(imported.desired.groups["web"].hosts, ["h1"]);
    }

    #[test]
    fn executable_files_without_a_header_go_to_the_next_plugin() {
        // Python's subprocess gets ENOEXEC and the chain moves on; nothing
        // is handed to /bin/sh.
        let dir = tempfile::tempdir().unwrap();
        let p = executable(dir.path(), "hosts", "[web]\nw1\n");
        let opts = ImportOptions { run_scripts: true, ..ImportOptions::default() };
        let imported = import_with(p.to_str().unwrap(), &opts).unwrap();
        assert_eq!(imported.desired.groups["web"].hosts, ["w1"]);
    }

    #[test]
    fn non_utf8_runs_become_one_question_mark() {
        assert_eq!(decode_like_ansible_display(b"ok"), ("ok".to_string(), None));
        assert_eq!(decode_like_ansible_display(b"a\n\xe9\xe9b\xe2\x82\n\xffc"), ("a\n?b?\n?c".to_string(), Some(2)));
    }

    #[test]
    fn vault_header_only_on_ascii_data() {
        assert!(is_vault(b"$ANSIBLE_VAULT;1.1;AES256\n6162\n"));
        assert!(!is_vault("$ANSIBLE_VAULT;1.1;AES256\n\u{e9}\n".as_bytes()));
        assert!(!is_vault(b" $ANSIBLE_VAULT;1.1;AES256\n"));
    }

    #[test]
    fn ansible_inventory_gets_no_craton_settings() {
        let env = ansible_env(
            [("PATH", "/bin"), ("CRATON_DATABASE_URL", "postgres://u:pw@db"), ("ANSIBLE_HOME", "/h"), ("OTHER", "x")]
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let names: Vec<&str> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert!(names.contains(&"PATH") && names.contains(&"ANSIBLE_HOME"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("CRATON_") || *n == "OTHER"), "{names:?}");
    }
}
