//! The daemon as operators run it: a real `cratond serve` process over
//! loopback, the REST backend of `craton-inventory`, bundles downloaded with a
//! real HTTP client and run by real ansible-core, and graceful shutdown.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use fixtures::{
    ansible, ansible_env, ansible_list, backends, bin, cratond, inventory, ok, run, stderr, Server, TestDb,
};
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn token(db: &TestDb, role: &str) -> String {
    ok(cratond(db).args(["token", "create", "--project", "default", "--role", role])).trim().to_string()
}

fn seeded(b: fixtures::Backend) -> TestDb {
    let db = TestDb::new(b);
    let f = fixtures::repo_root().join("tests/data/precedence.json");
    ok(cratond(&db).args(["import", "ansible"]).arg(f));
    db
}

#[test]
fn rest_backend_prints_the_same_bytes_as_the_database() {
    for b in backends() {
        let db = seeded(b);
        let t = token(&db, "reader");
        let server = Server::start(&db, &[], &[]);
        for args in [
            vec!["--list"],
            vec!["--list", "--pretty"],
            vec!["--list", "--resolved"],
            vec!["--list", "--group", "region_b"],
            vec!["--list", "--filter", "k2=\"cell_c\""],
            vec!["--host", "h3"],
        ] {
            let direct = ok(inventory(&db).args(&args));
            let over_rest = ok(inventory(&db)
                .args(&args)
                .env_remove("CRATON_DATABASE_URL")
                .env("CRATON_URL", &server.base)
                .env("CRATON_TOKEN", &t));
            assert_eq!(direct, over_rest, "{b:?} {args:?}");
        }
        // The API's own document is the same bytes too.
        let mut resp = agent().get(format!("{}/v1/inventory", server.base)).header("X-Auth-Token", &t).call().unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        assert_eq!(format!("{body}\n"), ok(inventory(&db).arg("--list")), "{b:?}");

        // --at passes through as ?at=: after another import, the REST
        // backend prints the inventory as it was, as the database one does.
        let (then_list, then_host) = (ok(inventory(&db).arg("--list")), ok(inventory(&db).args(["--host", "h3"])));
        let then = craton::store::history::format_rfc3339(craton::store::now_ms());
        std::thread::sleep(Duration::from_millis(3));
        let dir = tempfile::tempdir().unwrap();
        let more = dir.path().join("more.yml");
        std::fs::write(&more, "all:\n  hosts:\n    h3: {k1: later}\n    h99: {}\n").unwrap();
        ok(cratond(&db).args(["import", "ansible"]).arg(&more));
        assert_ne!(ok(inventory(&db).arg("--list")), then_list, "{b:?}: the import changed nothing");
        for (args, want) in [(vec!["--list"], &then_list), (vec!["--host", "h3"], &then_host)] {
            let over_rest = ok(inventory(&db)
                .args(&args)
                .args(["--at", &then])
                .env_remove("CRATON_DATABASE_URL")
                .env("CRATON_URL", &server.base)
                .env("CRATON_TOKEN", &t));
            assert_eq!(&over_rest, want, "{b:?} {args:?} --at {then}");
        }
        fails(
            inventory(&db)
                .args(["--list", "--at", "soon"])
                .env_remove("CRATON_DATABASE_URL")
                .env("CRATON_URL", &server.base)
                .env("CRATON_TOKEN", &t),
            "HTTP 400",
        );
    }
}

/// Asserts the failure contract of craton-inventory: non-zero exit, one
/// stderr line naming the problem, nothing on stdout.
fn fails(cmd: &mut Command, needle: &str) {
    let o = run(cmd);
    assert!(!o.status.success(), "{cmd:?} should fail");
    assert!(o.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

#[test]
fn rest_backend_failures_are_one_line() {
    let db = seeded(fixtures::Backend::Sqlite);
    let t = token(&db, "reader");
    let server = Server::start(&db, &[], &[]);
    let rest = |url: &str, tok: &str| {
        let mut c = inventory(&db);
        c.arg("--list").env_remove("CRATON_DATABASE_URL").env("CRATON_URL", url).env("CRATON_TOKEN", tok);
        c
    };
    fails(&mut rest(&server.base, "craton_wrong"), "HTTP 401");
    fails(rest(&server.base, &t).env("CRATON_PROJECT", "nope"), "HTTP 404");
    fails(rest(&server.base, &t).arg("--group").arg("nope"), "HTTP 404");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fails(&mut rest(&format!("http://127.0.0.1:{closed}"), &t), "Connection refused");
    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let started = Instant::now();
    fails(rest(&format!("http://{addr}"), &t).env("CRATON_TIMEOUT", "1"), "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    fails(&mut rest("ftp://example", &t), "must start with http");
}

#[test]
fn bundle_over_http_runs_ansible() {
    for b in backends() {
        let db = TestDb::new(b);
        let t_admin = ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "editor"]));
        let t = t_admin.trim();
        let server = Server::start(&db, &[], &[]);
        let a = agent();
        let call = |method: &str, path: &str, body: Value| -> Value {
            let url = format!("{}{path}", server.base);
            let req = match method {
                "POST" => a.post(&url),
                "PUT" => a.put(&url),
                _ => unreachable!(),
            };
            let mut resp = req.header("Authorization", format!("Bearer {t}")).send_json(&body).unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
            assert!(status == 200 || status == 201, "{method} {path}: {status} {v}");
            v
        };
        // all < region < cell < host, with a role group across the tree.
        let projects: Value = {
            let mut r = a.get(format!("{}/v1/projects", server.base)).header("X-Auth-Token", t).call().unwrap();
            r.body_mut().read_json().unwrap()
        };
        let pid = projects["items"][0]["id"].as_i64().unwrap();
        call(
            "PUT",
            &format!("/v1/projects/{pid}/variables"),
            json!({"ansible_connection": "local", "level": "all", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}),
        );
        let region = call("POST", "/v1/groups", json!({"name": "region1", "kind": "region"}))["id"].as_i64().unwrap();
        call("PUT", &format!("/v1/groups/{region}/variables"), json!({"level": "region", "ntp": "ntp.r1"}));
        let cell = call("POST", "/v1/groups", json!({"name": "cell1", "kind": "cell", "parents": ["region1"]}))["id"]
            .as_i64()
            .unwrap();
        call("PUT", &format!("/v1/groups/{cell}/variables"), json!({"level": "cell", "cell": 1}));
        call("POST", "/v1/groups", json!({"name": "compute", "kind": "role"}));
        let h1 =
            call("POST", "/v1/hosts", json!({"name": "n1", "groups": ["cell1", "compute"]}))["id"].as_i64().unwrap();
        call("POST", "/v1/hosts", json!({"name": "n2", "groups": ["cell1"]}));
        call("POST", "/v1/hosts", json!({"name": "other", "groups": ["compute"]}));
        call("PUT", &format!("/v1/hosts/{h1}/variables"), json!({"level": "host", "disks": [{"dev": "sda"}]}));

        let url = format!("{}/v1/inventory/region1.tgz", server.base);
        let mut resp = a.get(&url).header("X-Auth-Token", t).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let etag = resp.headers().get("etag").unwrap().to_str().unwrap().to_string();
        let bytes = resp.body_mut().read_to_vec().unwrap();
        let again = a.get(&url).header("X-Auth-Token", t).header("If-None-Match", &etag).call().unwrap();
        assert_eq!(again.status().as_u16(), 304, "{b:?}: same data, same ETag");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.tgz"), &bytes).unwrap();
        ok(Command::new("tar").arg("-xzf").arg("b.tgz").current_dir(dir.path()));
        std::fs::remove_file(dir.path().join("b.tgz")).unwrap();
        // What ansible sees in the unpacked bundle equals craton-inventory --group.
        let home = tempfile::tempdir().unwrap();
        let mut c = Command::new(ansible("ansible-inventory"));
        ansible_env(&mut c, home.path()).env_remove("ANSIBLE_CONFIG").arg("--list").current_dir(dir.path());
        let in_bundle: Value = serde_json::from_str(&ok(&mut c)).unwrap();
        let wrapper = dir.path().join("../wrapper.sh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nexec '{}' --group region1 \"$@\"\n", bin("craton-inventory").display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let via_script = ansible_list(&wrapper, "script", false, &[("CRATON_DATABASE_URL", &db.url)]);
        assert_eq!(in_bundle, via_script, "{b:?}");
        assert!(in_bundle["_meta"]["hostvars"].get("other").is_none(), "only the subtree");

        // And a playbook run there prints each level's values.
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(
            dir.path().join("play.yml"),
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy:\n        dest: \"{{ out }}/{{ inventory_hostname }}.json\"\n        content: \"{{ {'level': level, 'ntp': ntp, 'cell': cell, 'disks': disks | default(None), 'groups': group_names} | to_json }}\"\n",
        )
        .unwrap();
        let mut p = Command::new(ansible("ansible-playbook"));
        ansible_env(&mut p, home.path())
            .env_remove("ANSIBLE_CONFIG")
            .args(["play.yml", "-e"])
            .arg(format!("out={}", out.display()))
            .current_dir(dir.path());
        ok(&mut p);
        let read = |h: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("{h}.json"))).unwrap()).unwrap()
        };
        assert_eq!(
            read("n1"),
            json!({"level": "host", "ntp": "ntp.r1", "cell": 1, "disks": [{"dev": "sda"}], "groups": ["cell1", "region1"]}),
            "{b:?}: only the subtree's groups"
        );
        assert_eq!(
            read("n2"),
            json!({"level": "cell", "ntp": "ntp.r1", "cell": 1, "disks": null, "groups": ["cell1", "region1"]}),
            "{b:?}"
        );
        assert!(!out.join("other.json").exists());
    }
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let db = seeded(fixtures::Backend::Sqlite);
    let mut server = Server::start(&db, &[], &[]);
    let health = agent().get(format!("{}/healthz", server.base)).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    ok(Command::new("kill").args(["-TERM", &server.child.id().to_string()]));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "cratond did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn insecure_mode_is_loopback_only() {
    let db = TestDb::new(fixtures::Backend::Sqlite);
    let o = run(cratond(&db).args(["serve", "--insecure-no-auth", "--listen", "0.0.0.0:0"]));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("loopback"), "{}", stderr(&o));
    // On loopback it serves without a token.
    let server = Server::start(&db, &["--insecure-no-auth"], &[]);
    let r = agent().get(format!("{}/v1/inventory", server.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
