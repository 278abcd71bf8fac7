//! What real ansible-core computes from Craton's output must equal what it
//! computes from the original inventory, to the value and to the order of
//! hosts and children. Each test runs `ansible-inventory` on both sides.

mod common;

use std::path::PathBuf;

use common::{ansible_list, ansible_via_craton, backends, bin, cat_script, cratond, ok, TestDb};
use serde_json::Value;

/// OpenStack-Ansible's own dynamic inventory output for its test config
/// (openstack-ansible, Apache-2.0; a copy of ../shared/testdata/osa-test).
fn osa_json() -> PathBuf {
    common::repo_root().join("tests/data/openstack_inventory.json")
}

#[test]
fn openstack_ansible_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let original = ansible_list(&cat_script(dir.path(), &osa_json()), "script", false, &[]);
    let original_export = ansible_list(&cat_script(dir.path(), &osa_json()), "script", true, &[]);
    assert_eq!(original["_meta"]["hostvars"].as_object().unwrap().len(), 16);
    for b in backends() {
        let db = TestDb::new(b);
        ok(cratond(&db).args(["import", "ansible"]).arg(osa_json()));
        assert_eq!(ansible_via_craton(&db, false, &[]), original, "{b:?}: --list differs");
        assert_eq!(ansible_via_craton(&db, true, &[]), original_export, "{b:?}: --list --export differs");
        // Containers hang off their physical host.
        let mut c = db.conn();
        let snap = craton::store::load::load_snapshot(&mut c, "default").unwrap();
        let containers: Vec<_> = snap.hosts.iter().filter(|h| h.name.contains("-container-")).collect();
        assert!(containers.len() >= 10, "{b:?}");
        for h in containers {
            let parent = h.parent.map(|p| snap.hosts[p].name.as_str());
            assert_eq!(parent, Some("infra1"), "{b:?}: {}", h.name);
        }
        assert!(snap.hosts[snap.host_index("infra1").unwrap()].parent.is_none());
        // Importing again changes nothing.
        let again = ok(cratond(&db).args(["import", "ansible"]).arg(osa_json()));
        assert!(again.contains("(no changes)"), "{b:?}: {again}");
    }
}

#[test]
fn resolved_output_equals_ansibles_hostvars() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.json");
    std::fs::write(&f, include_str!("data/precedence.json")).unwrap();
    let original = ansible_list(&cat_script(dir.path(), &f), "script", false, &[]);
    for b in backends() {
        let db = TestDb::new(b);
        ok(cratond(&db).args(["import", "ansible"]).arg(&f));
        assert_eq!(ansible_via_craton(&db, false, &[]), original, "{b:?}");
        let ours: Value = serde_json::from_str(&ok(common::inventory(&db).args(["--list", "--resolved"]))).unwrap();
        assert_eq!(ours["_meta"]["hostvars"], original["_meta"]["hostvars"], "{b:?}: resolver differs from ansible");
    }
}

#[test]
fn group_subtree_hosts_keep_their_whole_inventory_values() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.json");
    std::fs::write(&f, include_str!("data/precedence.json")).unwrap();
    let original = ansible_list(&cat_script(dir.path(), &f), "script", false, &[]);
    let db = TestDb::new(common::Backend::Sqlite);
    ok(cratond(&db).args(["import", "ansible"]).arg(&f));
    // Ansible passes no arguments, so the group comes through a wrapper.
    use std::os::unix::fs::PermissionsExt;
    for group in ["cell_a", "racks", "region_b"] {
        let w = dir.path().join(format!("craton-{group}"));
        std::fs::write(&w, format!("#!/bin/sh\nexec '{}' --group {group} \"$@\"\n", bin("craton-inventory").display()))
            .unwrap();
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sub = ansible_list(&w, "script", false, &[("CRATON_DATABASE_URL", &db.url)]);
        let hv = sub["_meta"]["hostvars"].as_object().unwrap();
        assert!(!hv.is_empty(), "{group}");
        for (h, vars) in hv {
            assert_eq!(vars, &original["_meta"]["hostvars"][h], "{group}: host {h}");
        }
    }
}
