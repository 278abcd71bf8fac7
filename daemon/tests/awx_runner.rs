//! `craton-inventory` as AWX runs it in an execution environment: the
//! REST-only build, static (musl), run by ansible-runner with the command
//! line and environment of AWX's RunInventoryUpdate as a non-root user with
//! an unwritable HOME, against a real `cratond` over loopback; what AWX
//! would import (`output.json`) must equal what `ansible-inventory --list
//! --export` prints over the same script run normally. See docs/awx.md.
//!
//! The static binary is built by tests/run.sh (`REST_ONLY_TARGET` there).

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{ansible_env, cratond, ok, run, stderr, stdout, Backend, Server, TestDb};
use serde_json::Value;

/// The target triple of the static REST-only build (tests/run.sh builds it).
const TARGET: &str = "x86_64-unknown-linux-musl";

/// The venv (tests/run.sh makes it) with ansible-core and ansible-runner
/// on the system python3, which `nobody` can run.
fn awx_venv() -> PathBuf {
    let venv = fixtures::repo_root().join(".venv-awx/bin");
    assert!(venv.join("ansible-runner").exists(), "{} lacks ansible-runner: tests/run.sh installs it", venv.display());
    venv
}

fn rest_only_inventory() -> PathBuf {
    fixtures::built_bin(&format!("{TARGET}/debug"), "craton-inventory")
}

/// The daemon over an imported openstack-ansible inventory (340 nested
/// groups, group and host vars), and a reader token.
fn daemon() -> (TestDb, Server, String) {
    let db = TestDb::new(Backend::Sqlite);
    ok(cratond(&db).args(["import", "ansible"]).arg(fixtures::repo_root().join("tests/data/openstack_inventory.json")));
    let token =
        ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "reader"])).trim().to_string();
    let server = Server::start(&db, &[], &[]);
    (db, server, token)
}

/// `ansible-inventory -i SCRIPT --list --export` as an operator runs it:
/// root, a writable HOME, the credentials in the environment.
fn export_normally(script: &Path, url: &str, token: &str) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(awx_venv().join("ansible-inventory"));
    ansible_env(&mut c, home.path())
        .args(["--list", "--export", "-i"])
        .arg(script)
        .env("CRATON_URL", url)
        .env("CRATON_TOKEN", token)
        .env("CRATON_CONFIG", "/dev/null");
    serde_json::from_str(&ok(&mut c)).unwrap()
}

/// One inventory update through ansible-runner as `nobody`
/// (tests/awx/inventory_update.py): the output.json AWX would import, or
/// the job's output when it failed.
fn awx_inventory_update(script: &Path, url: &str, token: &str) -> Result<Value, String> {
    use std::os::unix::fs::PermissionsExt;
    // An existing HOME the job's user cannot write (root's, 0555).
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o555)).unwrap();
    let venv = awx_venv();
    let path = format!("{}:/usr/bin:/bin", venv.display());
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/awx/inventory_update.py");
    let out = run(Command::new(venv.join("python3"))
        .arg(driver)
        .arg(script)
        .env_clear()
        .env("PATH", path)
        .env("CRATON_URL", url)
        .env("CRATON_TOKEN", token)
        .env("AWX_TEST_HOME", &home));
    match out.status.code() {
        Some(0) => Ok(serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))),
        Some(3) => Err(stderr(&out)),
        _ => panic!("the AWX driver failed: {}\n{}{}", out.status, stdout(&out), stderr(&out)),
    }
}

#[test]
fn awx_inventory_update_imports_what_the_script_exports() {
    let (_db, server, token) = daemon();
    let script = rest_only_inventory();
    let expected = export_normally(&script, &server.base, &token);
    let hosts = expected["_meta"]["hostvars"].as_object().map_or(0, |h| h.len());
    let groups = expected.as_object().unwrap().len();
    assert!(hosts >= 16 && groups > 150, "not the openstack-ansible inventory: {hosts} hosts, {groups} groups");
    let got = awx_inventory_update(&script, &server.base, &token).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, expected, "output.json through ansible-runner differs from ansible-inventory --export");

    // A wrong credential fails the update (ANSIBLE_INVENTORY_UNPARSED_FAILED),
    // with craton-inventory's one-line reason in the job output.
    let e = awx_inventory_update(&script, &server.base, "craton_wrong").unwrap_err();
    assert!(e.contains("craton-inventory") && e.contains("401"), "{e}");
}

/// What an execution environment image needs of the binary: no shared
/// library at all (not even libc: the image's libc does not matter), and it
/// runs as a user that is not root.
#[test]
fn rest_only_inventory_is_static() {
    let bin = rest_only_inventory();
    let o = run(Command::new("readelf").args(["--wide", "--program-headers", "--dynamic"]).arg(&bin));
    assert!(o.status.success(), "readelf (binutils) on {}: {}", bin.display(), stderr(&o));
    let text = stdout(&o);
    let needed: Vec<&str> = text.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(needed.is_empty(), "{} needs shared libraries: {needed:?}", bin.display());
    assert!(!text.contains("INTERP"), "{} asks for a dynamic loader:\n{text}", bin.display());
    let v = ok(Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&bin)
        .arg("--version"));
    assert!(v.starts_with("craton-inventory ") && v.contains("(commit "), "{v}");
}
