//! End to end: `ansible-playbook -i craton-inventory` runs a play (connection
//! local) that records variables from every level of the example inventory;
//! the recorded values are asserted, and equal what the same play records
//! from the original files.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ansible, ansible_env, backends, bin, cratond, ok, repo_root, TestDb};
use serde_json::{json, Value};

fn play(inventory: &Path, out: &Path, env: &[(&str, &str)]) -> Value {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(ansible("ansible-playbook"));
    ansible_env(&mut c, home.path())
        .env("ANSIBLE_INVENTORY_ENABLED", "script,yaml")
        .env("CRATON_SHOW_VARS_DIR", out)
        .env("CRATON_CONFIG", "/dev/null")
        .arg("-i")
        .arg(inventory)
        .arg(repo_root().join("ansible/examples/show-vars.yml"));
    for (k, v) in env {
        c.env(k, v);
    }
    let stdout = ok(&mut c);
    assert!(stdout.contains("node-b-01: level=host"), "debug output shows the values: {stdout}");
    let mut all = serde_json::Map::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        let host = p.file_stem().unwrap().to_string_lossy().to_string();
        all.insert(host, serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap());
    }
    Value::Object(all)
}

#[test]
fn playbook_sees_every_level() {
    let example = repo_root().join("ansible/examples/inventory");
    let original_out = tempfile::tempdir().unwrap();
    let original = play(&example, original_out.path(), &[]);
    // The values themselves, level by level (all < region < cell < host,
    // group_vars files above inline group vars, host_vars above host).
    assert_eq!(
        original["node-a1-01"],
        json!({"level": "cell", "region": "region-one", "cell": "a", "role": "compute", "ntp_server": "ntp.example.com",
               "dns_servers": ["10.0.0.2", "10.0.0.3"], "maintenance": false,
               "groups": ["cell_a", "compute", "rack_a1", "region_one"]})
    );
    assert_eq!(original["node-a1-03"]["level"], json!("host_vars file"));
    assert_eq!(original["node-a1-03"]["maintenance"], json!(true));
    assert_eq!(original["node-a1-03"]["role"], Value::Null);
    assert_eq!(original["node-b-01"]["level"], json!("host"));
    assert_eq!(original["node-b-01"]["ntp_server"], json!("ntp.cell-b.example.com"));
    for b in backends() {
        let db = TestDb::new(b);
        ok(cratond(&db).args(["import", "ansible"]).arg(&example));
        let out = tempfile::tempdir().unwrap();
        let ours = play(&bin("craton-inventory"), out.path(), &[("CRATON_DATABASE_URL", &db.url)]);
        assert_eq!(ours, original, "{b:?}");
    }
}
