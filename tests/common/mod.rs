//! Shared test fixtures: a fresh database per test on each backend, the
//! real binaries, and the real ansible-core from the project's venv.
//!
//! Backends come from `CRATON_TEST_BACKENDS` (default `sqlite,postgres,mysql`);
//! one that is listed but unreachable fails the test rather than skipping it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

mod db;
pub mod openbao;
mod rng;
mod server;
pub use db::*;
#[allow(unused_imports)]
pub use rng::Rng;
#[allow(unused_imports)]
pub use server::Server;

/// The workspace root (these fixtures are also used by the daemon's tests).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|p| p.join("Cargo.lock").exists()).map(PathBuf::from).unwrap_or(manifest)
}

/// A workspace binary, built by `cargo build --workspace` before the tests
/// (the test command in README.rst does that).
pub fn bin(name: &str) -> PathBuf {
    // CRATON_TEST_PROFILE=release runs the tests (and benchmarks) against release builds.
    let profile = std::env::var("CRATON_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    built_bin(&profile, name)
}

/// A binary under `target/SUBDIR` (a profile, or `TRIPLE/PROFILE` for a
/// cross build), built by tests/run.sh and not older than its sources.
pub fn built_bin(subdir: &str, name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let p = target.join(subdir).join(name);
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` first (tests/run.sh does)", p.display());
    let built = std::fs::metadata(&p).and_then(|m| m.modified()).expect("binary mtime");
    // Only the sources the binary is built from: cargo does not relink
    // craton-inventory when just the daemon changed.
    let own = if name == "cratond" { "daemon/src" } else { "inventory-plugin/src" };
    let newest = ["src", own, "migrations"].iter().filter_map(|d| newest_mtime(&repo_root().join(d))).max();
    assert!(
        newest.is_none_or(|n| n <= built),
        "{} is older than the sources: run `cargo build --workspace` first (tests/run.sh does)",
        p.display()
    );
    p
}

/// The newest modification time of any file below `dir`.
fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() { newest_mtime(&path) } else { entry.metadata().and_then(|m| m.modified()).ok() };
        newest = newest.max(t);
    }
    newest
}

/// A tool from the venv that holds the real ansible-core.
pub fn ansible(name: &str) -> PathBuf {
    let dir =
        std::env::var("CRATON_TEST_ANSIBLE_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join(".venv/bin"));
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: tests/run.sh installs ansible-core into .venv", p.display());
    p
}

/// Environment that keeps ansible quiet, strict and out of $HOME.
pub fn ansible_env<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env("ANSIBLE_HOME", home.join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", home.join(".ansible/tmp"))
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
        .env("ANSIBLE_CONFIG", home.join("no-ansible.cfg"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed, returning stdout.
pub fn ok(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?} failed: {}\n{}", o.status, stderr(&o));
    stdout(&o)
}

/// `cratond` pointed at a database.
pub fn cratond(db: &TestDb) -> Command {
    let mut c = Command::new(bin("cratond"));
    c.env("CRATON_DATABASE_URL", &db.url).env_remove("CRATON_PROJECT").env("CRATON_CONFIG", "/dev/null");
    c
}

/// `craton-inventory` pointed at a database.
pub fn inventory(db: &TestDb) -> Command {
    let mut c = Command::new(bin("craton-inventory"));
    c.env("CRATON_DATABASE_URL", &db.url)
        .env_remove("CRATON_PROJECT")
        .env_remove("CRATON_URL")
        .env("CRATON_CONFIG", "/dev/null");
    c
}

/// `ansible-inventory --list [--export]` over a source, with only `plugins`
/// enabled.
pub fn ansible_list(source: &Path, plugins: &str, export: bool, env: &[(&str, &str)]) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(ansible("ansible-inventory"));
    ansible_env(&mut c, home.path()).env("ANSIBLE_INVENTORY_ENABLED", plugins).arg("-i").arg(source).arg("--list");
    if export {
        c.arg("--export");
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.env("CRATON_CONFIG", "/dev/null").env_remove("CRATON_URL").env_remove("CRATON_PROJECT");
    let out = ok(&mut c);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ansible-inventory printed no JSON ({e}): {out}"))
}

/// ansible-inventory over `craton-inventory` reading `db`.
pub fn ansible_via_craton(db: &TestDb, export: bool, extra: &[(&str, &str)]) -> Value {
    let mut env = vec![("CRATON_DATABASE_URL", db.url.as_str())];
    env.extend_from_slice(extra);
    ansible_list(&bin("craton-inventory"), "script", export, &env)
}

/// A script that prints a fixed JSON document, as an inventory source.
pub fn cat_script(dir: &Path, json_file: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let s = dir.join("inventory.sh");
    std::fs::write(&s, format!("#!/bin/sh\nexec cat '{}'\n", json_file.display())).unwrap();
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    s
}
