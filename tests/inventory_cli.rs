//! `craton-inventory` as Ansible and AWX run it: the JSON contract, flags,
//! configuration from the environment, and every failure being one stderr
//! line with an empty stdout.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{backends, bin, cratond, inventory, ok, run, stderr, stdout, TestDb};
use serde_json::{json, Value};

/// A small inventory as script JSON: nested and multi-parent groups,
/// priority, an ungrouped host and an inactive-free fleet.
const FIXTURE: &str = r#"{
  "all": {"vars": {"env": "lab", "port": 1}},
  "region1": {"children": ["cell1", "cell2"], "vars": {"ntp": "ntp.r1", "port": 2}},
  "cell1": {"hosts": ["c1n1", "c1n2"], "vars": {"port": 3, "ansible_group_priority": 10}},
  "cell2": {"hosts": ["c2n1"], "vars": {"cell": 2}},
  "compute": {"hosts": ["c1n1", "c2n1"], "vars": {"role": "compute", "port": 4}},
  "ungrouped": {"hosts": ["lonely"]},
  "_meta": {"hostvars": {"c1n1": {"ansible_host": "10.0.0.1", "port": 5}, "lonely": {"x": [1, 2]}}}
}"#;

fn seeded(b: common::Backend) -> TestDb {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.json");
    std::fs::write(&f, FIXTURE).unwrap();
    ok(cratond(&db).args(["import", "ansible"]).arg(&f));
    db
}

fn json_of(cmd: &mut Command) -> Value {
    let o = run(cmd);
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "stderr must be empty on success: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(&o)))
}

/// Asserts the failure contract: non-zero, one stderr line, nothing on stdout.
fn fails(cmd: &mut Command, needle: &str) -> String {
    let o = run(cmd);
    assert!(!o.status.success(), "{cmd:?} should fail");
    assert!(o.stdout.is_empty(), "stdout must be empty on failure: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "exactly one stderr line: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    err
}

#[test]
fn list_has_the_script_contract_shape() {
    for b in backends() {
        let db = seeded(b);
        let v = json_of(inventory(&db).arg("--list"));
        assert_eq!(v["all"]["vars"], json!({"env": "lab", "port": 1}), "{b:?}");
        assert_eq!(v["region1"]["children"], json!(["cell1", "cell2"]));
        assert_eq!(v["cell1"]["hosts"], json!(["c1n1", "c1n2"]));
        assert_eq!(v["cell1"]["vars"]["ansible_group_priority"], json!(10));
        assert_eq!(v["ungrouped"]["hosts"], json!(["lonely"]), "{b:?}: ungrouped hosts must be reachable");
        assert_eq!(v["_meta"]["hostvars"]["c1n1"], json!({"ansible_host": "10.0.0.1", "port": 5}));
        assert_eq!(v["_meta"]["hostvars"]["c2n1"], json!({}), "{b:?}: group vars stay on groups");
        assert!(v["all"]["children"].as_array().unwrap().contains(&json!("region1")));
    }
}

#[test]
fn host_and_resolved_and_pretty() {
    let db = seeded(backends()[0]);
    assert_eq!(json_of(inventory(&db).args(["--host", "lonely"])), json!({"x": [1, 2]}));
    let v = json_of(inventory(&db).args(["--list", "--resolved"]));
    // c2n1: all < compute (depth 1) < region1 (depth 1, later by name) < cell2 (depth 2).
    assert_eq!(
        v["_meta"]["hostvars"]["c2n1"],
        json!({"env": "lab", "port": 2, "ntp": "ntp.r1", "cell": 2, "role": "compute"})
    );
    // c1n2: cell1 has priority 10 but only its own groups count.
    assert_eq!(v["_meta"]["hostvars"]["c1n2"]["port"], json!(3));
    let o = run(inventory(&db).args(["--list", "--pretty"]));
    assert!(stdout(&o).contains("\n  \"all\": {\n"), "pretty output is indented");
    fails(inventory(&db).args(["--host", "nope"]), "host \"nope\" not found");
}

#[test]
fn group_subtree_keeps_each_hosts_variables() {
    for b in backends() {
        let db = seeded(b);
        let full = json_of(inventory(&db).args(["--list", "--resolved"]));
        let v = json_of(inventory(&db).args(["--list", "--group", "cell2"]));
        let groups: Vec<&String> = v.as_object().unwrap().keys().filter(|k| *k != "_meta").collect();
        assert_eq!(groups, ["all", "cell2"], "{b:?}: only the subtree");
        assert_eq!(v["cell2"]["hosts"], json!(["c2n1"]));
        // c2n1 is also in compute and region1: their values still apply,
        // lifted into its host vars since those groups are not emitted.
        let hv = &v["_meta"]["hostvars"]["c2n1"];
        assert_eq!(hv["role"], json!("compute"), "{b:?}: {hv}");
        assert_eq!(hv["port"], full["_meta"]["hostvars"]["c2n1"]["port"]);
        assert_eq!(hv["ntp"], json!("ntp.r1"));
        fails(inventory(&db).args(["--list", "--group", "nope"]), "group \"nope\" not found");
    }
}

#[test]
fn filters_are_type_strict_on_resolved_values() {
    let db = seeded(backends()[0]);
    let hosts = |filter: &[&str]| -> Vec<String> {
        let mut c = inventory(&db);
        c.arg("--list");
        for f in filter {
            c.args(["--filter", f]);
        }
        let v = json_of(&mut c);
        let mut h: Vec<String> = v["_meta"]["hostvars"].as_object().unwrap().keys().cloned().collect();
        h.sort();
        h
    };
    assert_eq!(hosts(&["role=compute"]), ["c1n1", "c2n1"]);
    assert_eq!(hosts(&["role=\"compute\""]), ["c1n1", "c2n1"]);
    assert_eq!(hosts(&["port=5"]), ["c1n1"]);
    assert_eq!(hosts(&["port=\"5\""]), Vec::<String>::new(), "type-strict");
    // Overrides hide inherited matches: nobody ends up with compute's port 4.
    assert_eq!(hosts(&["port=4"]), Vec::<String>::new());
    assert_eq!(hosts(&["port=2"]), ["c2n1"]);
    assert_eq!(hosts(&["role=compute", "cell=2"]), ["c2n1"]);
    assert_eq!(hosts(&["x=[1,2]"]), ["lonely"]);
}

#[test]
fn failures_are_one_line_with_empty_stdout() {
    let db = seeded(backends()[0]);
    fails(inventory(&db).args(["--list", "--project", "nope"]), "project \"nope\" not found");
    fails(inventory(&db).arg("--list").env("CRATON_PROJECT", "nope"), "project \"nope\" not found");
    fails(inventory(&db).arg("--bogus"), "unknown argument");
    fails(&mut inventory(&db), "--list or --host");
    fails(
        inventory(&db).arg("--list").env("CRATON_DATABASE_URL", "postgres://craton@127.0.0.1:1/craton"),
        "cannot connect",
    );
    fails(inventory(&db).arg("--list").env("CRATON_DATABASE_URL", "mysql://root@127.0.0.1:1/craton"), "cannot connect");
    let dir = tempfile::tempdir().unwrap();
    let stray = dir.path().join("typo.db");
    fails(
        inventory(&db).arg("--list").env("CRATON_DATABASE_URL", stray.to_str().unwrap()),
        "unsupported database URL scheme",
    );
    assert!(!stray.exists(), "an unknown scheme must not create a SQLite file");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "project = \"x\"\nbogus = 1\n").unwrap();
    fails(inventory(&db).arg("--list").env("CRATON_CONFIG", &cfg), "bad.toml:2");
}

#[test]
fn config_file_is_read() {
    let db = seeded(backends()[0]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("craton.toml");
    std::fs::write(&cfg, format!("database_url = \"{}\"\nproject = \"nope\"\n", db.url)).unwrap();
    let mut c = Command::new(bin("craton-inventory"));
    c.arg("--list")
        .env_remove("CRATON_DATABASE_URL")
        .env_remove("CRATON_PROJECT")
        .env_remove("CRATON_URL")
        .env("CRATON_CONFIG", &cfg);
    fails(&mut c, "project \"nope\" not found");
    c.env("CRATON_PROJECT", "default");
    assert!(json_of(&mut c)["cell1"].is_object(), "environment beats the file, the file gives the URL");
}

#[test]
fn embedded_sqlite_default_is_created_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(bin("craton-inventory"));
    c.arg("--list")
        .env_remove("CRATON_DATABASE_URL")
        .env_remove("CRATON_PROJECT")
        .env_remove("CRATON_URL")
        .env("CRATON_CONFIG", "/dev/null")
        .env("CRATON_DATA_DIR", dir.path());
    let v = json_of(&mut c);
    assert_eq!(v, json!({"all": {"children": []}, "_meta": {"hostvars": {}}}));
    assert!(dir.path().join("craton.sqlite3").exists());
}

#[test]
fn broken_pipe_is_not_a_crash() {
    let db = TestDb::new(common::Backend::Sqlite);
    let mut big = serde_json::Map::new();
    let hosts: Vec<String> = (0..20000).map(|i| format!("host{i:05}.example.com")).collect();
    big.insert("g".into(), json!({ "hosts": hosts }));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.json");
    std::fs::write(&f, Value::Object(big).to_string()).unwrap();
    ok(cratond(&db).args(["import", "ansible"]).arg(&f));
    let mut child = inventory(&db).arg("--list").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "exit {:?}", o.status);
    assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn stdin_import_and_summary() {
    let db = TestDb::new(common::Backend::Sqlite);
    let mut child = cratond(&db)
        .args(["import", "ansible", "-", "--project", "fromstdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(FIXTURE.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("groups 5 created") && out.contains("hosts 4 created"), "{out}");
    let v = json_of(inventory(&db).args(["--list", "--project", "fromstdin"]));
    assert_eq!(v["cell2"]["hosts"], json!(["c2n1"]));
}
