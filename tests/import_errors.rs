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

/// Writes `files` under `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
    }
}

/// A host named like a path (`../../../../<tmp>/secret`) with a
/// `host_vars/` directory present must not make the import read
/// `<tmp>/secret.yml`, and what the import says must be the same whether or
/// not that file exists.
#[test]
fn vars_file_path_traversal() {
    for b in backends() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.yml");
        let dir = tempfile::tempdir().unwrap();
        let ups = "../".repeat(dir.path().components().count() + 2);
        let spelled = outside.path().join("secret").display().to_string();
        let host = format!("{ups}{}", spelled.trim_start_matches('/'));
        let group = format!("../{host}");
        write_tree(
            dir.path(),
            &[
                ("hosts.yml", &format!("all:\n  hosts:\n    h1:\n    {host:?}:\n  children:\n    {group:?}:\n")),
                ("host_vars/h1.yml", "own: 1\n"),
                ("group_vars/all.yml", "a: 1\n"),
            ],
        );
        let mut said = Vec::new();
        for present in [true, false] {
            let db = TestDb::new(b);
            if present {
                std::fs::write(&secret, "stolen: the secret\n").unwrap();
            } else {
                std::fs::remove_file(&secret).unwrap();
            }
            let o = run(cratond(&db).args(["import", "ansible"]).arg(dir.path()));
            assert!(o.status.success(), "{b:?}: {}", stderr(&o));
            let list = common::stdout(&run(inventory(&db).args(["--list"])));
            assert!(!list.contains("stolen"), "{b:?}: the outside file was read: {list}");
            assert!(list.contains("\"own\":1") || list.contains("\"own\": 1"), "{b:?}: {list}");
            let err = stderr(&o);
            assert!(err.contains("not a safe file name"), "{b:?}: {err}");
            said.push((o.status.code(), err, common::stdout(&o)));
        }
        assert_eq!(said[0], said[1], "{b:?}: the import tells whether the outside file exists");
    }
}

/// A symbolic link in `group_vars/` (or an inventory file) leading out of
/// the inventory directory is refused, naming the link and not its target,
/// with the same message whether the target exists or not.
#[test]
fn vars_file_symlink_escape() {
    let db = seeded(common::Backend::Sqlite);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("secret.yml");
    for (link, file_arg) in [("group_vars/all.yml", true), ("group_vars/web/x.yml", true), ("more.ini", false)] {
        let mut said = Vec::new();
        for present in [true, false] {
            if present {
                std::fs::write(&target, "stolen: 1\n").unwrap();
            } else {
                std::fs::remove_file(&target).unwrap();
            }
            let dir = tempfile::tempdir().unwrap();
            write_tree(dir.path(), &[("hosts.yml", "web:\n  hosts:\n    w1:\n")]);
            let l = dir.path().join(link);
            std::fs::create_dir_all(l.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&target, &l).unwrap();
            let src = if file_arg { dir.path().join("hosts.yml") } else { dir.path().to_path_buf() };
            let before = run(inventory(&db).args(["--list"]));
            let o = run(cratond(&db).args(["import", "ansible"]).arg(&src));
            assert!(!o.status.success(), "{link}: a link out of the inventory was followed");
            let err = stderr(&o);
            assert!(err.contains(&l.display().to_string()) && err.contains("symbolic link"), "{link}: {err}");
            assert!(!err.contains(&outside.path().display().to_string()), "{link}: names the target: {err}");
            assert_eq!(before.stdout, run(inventory(&db).args(["--list"])).stdout);
            said.push(err.replace(&dir.path().display().to_string(), "DIR"));
        }
        assert_eq!(said[0], said[1], "{link}: the error tells whether the target exists");
    }
    // A link back up the tree is refused rather than walked forever.
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("hosts.yml", "web:\n  hosts:\n    w1:\n"), ("group_vars/web/a.yml", "x: 1\n")]);
    std::os::unix::fs::symlink("..", dir.path().join("group_vars/web/up")).unwrap();
    let o = run(cratond(&db).args(["import", "ansible"]).arg(dir.path().join("hosts.yml")));
    assert!(!o.status.success() && stderr(&o).contains("loop"), "{}", stderr(&o));
    std::os::unix::fs::symlink(".", dir.path().join("sub")).unwrap();
    let o = run(cratond(&db).args(["import", "ansible"]).arg(dir.path()));
    assert!(!o.status.success() && stderr(&o).contains("loop"), "{}", stderr(&o));
    // A link that stays inside is followed, as Ansible does.
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("hosts.yml", "web:\n  hosts:\n    w1:\n"), ("shared/web.yml", "inside: 1\n")]);
    std::fs::create_dir_all(dir.path().join("group_vars")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("shared/web.yml"), dir.path().join("group_vars/web.yml")).unwrap();
    common::ok(cratond(&db).args(["import", "ansible"]).arg(dir.path().join("hosts.yml")));
    assert!(common::stdout(&run(inventory(&db).args(["--list"]))).contains("inside"));
}

/// `group_vars/all.yml` holding only `---` and comments (kubespray's sample
/// inventory) is no variables, as in Ansible, like every empty document.
#[test]
fn vars_file_null_document() {
    let db = seeded(common::Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("hosts.yml", "web:\n  hosts:\n    w9:\n"),
            ("group_vars/all.yml", "---\n# all settings commented out\n"),
            ("group_vars/web.yml", "{}\n"),
            ("host_vars/w9/a.yml", "---\n"),
            ("host_vars/w9/b.yml", "[]\n"),
            ("host_vars/w9/c.yml", "kept: 1\n"),
        ],
    );
    let o = run(cratond(&db).args(["import", "ansible"]).arg(dir.path().join("hosts.yml")));
    assert!(o.status.success(), "{}", stderr(&o));
    let host: serde_json::Value =
        serde_json::from_str(&common::stdout(&run(inventory(&db).args(["--host", "w9"])))).unwrap();
    assert_eq!(host, serde_json::json!({"kept": 1}));
}
