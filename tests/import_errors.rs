//! Bad input: every import error names the file and line and writes
//! nothing, on every backend.

mod common;

use std::path::Path;

use common::{backends, cratond, inventory, run, stderr, TestDb};

/// Imports `files` (written under a temp dir; the first is the source) and
/// asserts the import fails mentioning each needle, leaving the project as
/// it was.
fn refused(db: &TestDb, files: &[(&str, &str)], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
    }
    let before = run(inventory(db).args(["--list"]));
    let o = run(cratond(db).args(["import", "ansible"]).arg(dir.path().join(files[0].0)));
    assert!(!o.status.success(), "{:?} should be refused", files[0]);
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    assert!(err.contains("nothing was written") || err.contains(&dir.path().display().to_string()), "{err}");
    let after = run(inventory(db).args(["--list"]));
    assert_eq!(before.stdout, after.stdout, "a refused import changed the inventory");
}

fn seeded(b: common::Backend) -> TestDb {
    let db = TestDb::new(b);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ok.yml");
    std::fs::write(&f, "all:\n  children:\n    web:\n      hosts:\n        w1:\n          x: 1\n").unwrap();
    common::ok(cratond(&db).args(["import", "ansible"]).arg(&f));
    db
}

#[test]
fn malformed_inputs_name_file_and_line_and_write_nothing() {
    for b in backends() {
        let db = seeded(b);
        refused(&db, &[("bad.yml", "all:\n  hosts:\n    a: {x: 1\n    b:\n")], &["bad.yml:"]);
        refused(&db, &[("dup.yml", "all:\n  vars:\n    x: 1\n    x: 2\n")], &["dup.yml:4", "duplicate"]);
        refused(&db, &[("bad.json", "{\n \"web\": {\"hosts\": [\"a\",]}\n}\n")], &["bad.json:2"]);
        refused(&db, &[("nan.yml", "all:\n  vars:\n    x: .nan\n")], &["nan.yml:3"]);
        refused(
            &db,
            &[("hosts.yml", "all:\n  hosts:\n    h1:\n"), ("group_vars/all.yml", "a: 1\nb: [1, 2\n")],
            &["group_vars/all.yml:"],
        );
        refused(
            &db,
            &[("hosts.yml", "all:\n  hosts:\n    h1:\n"), ("host_vars/h1.yml", "- a\n- b\n")],
            &["host_vars/h1.yml"],
        );
        refused(
            &db,
            &[("cycle.json", r#"{"a": {"children": ["b"]}, "b": {"children": ["a"]}}"#)],
            &["cycle.json", "recursive dependency loop"],
        );
        refused(&db, &[("vault.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")], &["vault.yml", "vault"]);
    }
}

#[test]
fn ini_errors_name_the_line() {
    let db = seeded(common::Backend::Sqlite);
    refused(&db, &[("hosts.ini", "[web]\nw1\n[web:children]\nnot_defined_anywhere\n")], &["hosts.ini"]);
    refused(&db, &[("hosts.ini", "[web]\nw1 ansible_port\n")], &["hosts.ini:2"]);
}

#[test]
fn missing_path_and_cycles_across_imports() {
    for b in backends() {
        let db = seeded(b);
        let o = run(cratond(&db).args(["import", "ansible", "/nonexistent/inventory.yml"]));
        assert!(!o.status.success());
        assert!(stderr(&o).contains("/nonexistent/inventory.yml: no such file or directory"), "{}", stderr(&o));
        // web exists; a new input nesting web above its own parent closes a loop.
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.yml");
        std::fs::write(&one, "region:\n  children:\n    web:\n").unwrap();
        common::ok(cratond(&db).args(["import", "ansible"]).arg(&one));
        let two = dir.path().join("two.yml");
        std::fs::write(&two, "web:\n  children:\n    region:\n").unwrap();
        let o = run(cratond(&db).args(["import", "ansible"]).arg(&two));
        assert!(!o.status.success(), "{b:?}");
        let err = stderr(&o);
        assert!(err.contains("cycle") && err.contains("nothing was written"), "{b:?}: {err}");
        assert!(Path::new(&two).exists());
    }
}
