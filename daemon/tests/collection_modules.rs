//! The collection's modules (`craton.craton.group`, `.host`, `.variables`,
//! `.secret`, issue 11) as operators get them: the collection built with
//! `ansible-galaxy collection build`, installed with `ansible-galaxy
//! collection install` into a collections path of its own, and run by the
//! venv's real ansible-playbook against a real `cratond serve` over
//! loopback. A playbook builds a region > cell > host tree with variables
//! and a secret: check mode reports every task changed and writes nothing,
//! the first run changes every task, the second none, a changed secret
//! value is seen by its fingerprint alone, and `state: absent` takes it all
//! back down (then changes nothing). The secret's value never reaches
//! ansible's output, not even with `--diff -v`.
//!
//! Also here: the vendored client in `plugins/module_utils` must be the
//! bytes of `clients/python/craton_client/__init__.py`.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fixtures::{ansible, ansible_env, backends_light, cratond, ok, repo_root, run, stderr, stdout, Server, TestDb};
use serde_json::Value;

const COLLECTION: &str = "ansible/ansible_collections/craton/craton";
const VENDORED: &str = "ansible/ansible_collections/craton/craton/plugins/module_utils/craton_client.py";
const CLIENT: &str = "clients/python/craton_client/__init__.py";

/// Seven module tasks (and an assert); the connection comes from
/// CRATON_URL / CRATON_TOKEN, the modules' environment fallbacks.
const PRESENT: &str = r#"- name: Craton tree
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: region
      craton.craton.group:
        name: region1
        kind: region
        description: Region one
    - name: cell
      craton.craton.group:
        name: cell1
        kind: cell
        parents: [region1]
    - name: host
      craton.craton.host:
        name: node1
        ip_address: 10.0.0.1
        groups: [cell1]
        labels: [rack-a, compute]
    - name: region variables
      craton.craton.variables:
        group: region1
        variables:
          ntp: ntp.region1
          dns: {domain: r1.example, search: [a, b]}
    - name: host variables
      craton.craton.variables:
        host: node1
        variables:
          disks: [sda, sdb]
          port: 8080
    - name: project variables
      craton.craton.variables:
        variables:
          site: lab
    - name: host secret
      craton.craton.secret:
        host: node1
        name: db_password
        kind: password
        value: "{{ secret_value }}"
      register: sec
    - name: the secret's metadata, never its value
      ansible.builtin.assert:
        that:
          - sec.secret.fingerprint is match('sha256:[0-9a-f]{64}$')
          - "'value' not in sec.secret"
          - sec.owner.kind == 'host'
"#;
const PRESENT_TASKS: i64 = 7;

const ABSENT: &str = r#"- name: Craton tree gone
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: secret
      craton.craton.secret:
        host: node1
        name: db_password
        state: absent
    - name: project variable
      craton.craton.variables:
        keys: [site]
        state: absent
    - name: host variable
      craton.craton.variables:
        host: node1
        variables: {disks: null}
        state: absent
    - name: host
      craton.craton.host:
        name: node1
        state: absent
    - name: cell
      craton.craton.group:
        name: cell1
        state: absent
    - name: region
      craton.craton.group:
        name: region1
        state: absent
"#;
const ABSENT_TASKS: i64 = 6;

const SECRET: &str = "hunter2-correct-horse";

#[test]
fn vendored_client_is_the_clients_bytes() {
    let client = std::fs::read(repo_root().join(CLIENT)).unwrap();
    let vendored = std::fs::read(repo_root().join(VENDORED)).unwrap();
    assert!(
        client == vendored,
        "{VENDORED} differs from {CLIENT}; refresh the collection's copy:\n  cp {CLIENT} {VENDORED}"
    );
}

/// The collection built and installed into a collections path of its own
/// (the directory to put in ANSIBLE_COLLECTIONS_PATH).
fn build_and_install(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    let dist = dir.join("dist");
    let mut build = Command::new(ansible("ansible-galaxy"));
    ansible_env(&mut build, &home)
        .args(["collection", "build", "--output-path"])
        .arg(&dist)
        .arg(repo_root().join(COLLECTION));
    ok(&mut build);
    let tarball = std::fs::read_dir(&dist)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "gz"))
        .expect("ansible-galaxy built no tarball");
    let path = dir.join("collections");
    let mut install = Command::new(ansible("ansible-galaxy"));
    ansible_env(&mut install, &home).args(["collection", "install", "-p"]).arg(&path).arg(&tarball);
    ok(&mut install);
    let installed = path.join("ansible_collections/craton/craton/plugins/modules/secret.py");
    assert!(installed.exists(), "not installed: {}", installed.display());
    path
}

/// One ansible-playbook run: its PLAY RECAP counters for localhost, and
/// everything it printed.
fn play(
    collections: &Path,
    server: &Server,
    token: &str,
    playbook: &Path,
    args: &[&str],
) -> (BTreeMap<String, i64>, String) {
    let home = tempfile::tempdir().unwrap();
    let python = ansible("python");
    let mut cmd = Command::new(ansible("ansible-playbook"));
    ansible_env(&mut cmd, home.path())
        .env("ANSIBLE_COLLECTIONS_PATH", collections)
        .env("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
        .env("CRATON_URL", &server.base)
        .env("CRATON_TOKEN", token)
        .env_remove("CRATON_PROJECT")
        .args(["-i", "localhost,", "-e"])
        .arg(format!("ansible_python_interpreter={}", python.display()))
        .arg("-e")
        .arg(format!("secret_value={SECRET}"))
        .args(args)
        .arg(playbook);
    let o = run(&mut cmd);
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{} {args:?} failed:\n{text}", playbook.display());
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.starts_with("localhost"))
        .unwrap_or_else(|| panic!("no recap in:\n{text}"));
    let recap = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    (recap, text)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let mut r = agent()
        .get(format!("{}{path}", server.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

/// The one object a `?name=` list finds, with its variables, or None.
fn find(server: &Server, token: &str, collection: &str, name: &str) -> Option<Value> {
    let (s, v) = get(server, token, &format!("/v1/{collection}?name={name}&details=true"));
    assert_eq!(s, 200, "{collection}: {v}");
    v["items"].as_array().unwrap().first().cloned()
}

fn project_vars(server: &Server, token: &str) -> Value {
    let (_, projects) = get(server, token, "/v1/projects?details=true");
    projects["items"][0]["variables"].clone()
}

fn changed(recap: &BTreeMap<String, i64>) -> i64 {
    assert_eq!(recap["failed"], 0, "{recap:?}");
    recap["changed"]
}

#[test]
fn modules_build_a_tree_idempotently_in_check_mode_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let collections = build_and_install(dir.path());
    let present = dir.path().join("present.yml");
    let absent = dir.path().join("absent.yml");
    std::fs::write(&present, PRESENT).unwrap();
    std::fs::write(&absent, ABSENT).unwrap();
    // The modules speak REST only; the API tests cover each backend, so the
    // default run takes the first (CRATON_TEST_HEAVY=1: all).
    for b in backends_light() {
        let started = Instant::now();
        let db = TestDb::new(b);
        ok(cratond(&db).arg("migrate"));
        // A project token (admin: editor for the writes, and the secret's
        // value can be read back to check it).
        let t =
            ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "admin"])).trim().to_string();
        let key = dir.path().join(format!("master-{b:?}.key"));
        let server = Server::start(&db, &["--no-sync"], &[("CRATON_MASTER_KEY_FILE", key.to_str().unwrap())]);
        let mut output = String::new();

        // Check mode (with a diff): every task would change, nothing does.
        let (recap, text) = play(&collections, &server, &t, &present, &["--check", "--diff"]);
        assert_eq!(changed(&recap), PRESENT_TASKS, "{b:?} check mode:\n{text}");
        assert!(text.contains("+++ after") && text.contains("\"region1\""), "{b:?}: no diff:\n{text}");
        assert!(find(&server, &t, "groups", "region1").is_none(), "{b:?}: check mode created a group");
        assert!(find(&server, &t, "hosts", "node1").is_none(), "{b:?}: check mode created a host");
        assert_eq!(project_vars(&server, &t), serde_json::json!({}), "{b:?}: check mode set variables");
        output.push_str(&text);

        // The first run changes every task.
        let (recap, text) = play(&collections, &server, &t, &present, &["--diff", "-v"]);
        assert_eq!(changed(&recap), PRESENT_TASKS, "{b:?} first run:\n{text}");
        output.push_str(&text);
        let region = find(&server, &t, "groups", "region1").expect("region1");
        assert_eq!((region["kind"].as_str(), region["description"].as_str()), (Some("region"), Some("Region one")));
        assert_eq!(region["children"], serde_json::json!(["cell1"]), "{region}");
        assert_eq!(
            region["variables"],
            serde_json::json!({"ntp": "ntp.region1", "dns": {"domain": "r1.example", "search": ["a", "b"]}})
        );
        let cell = find(&server, &t, "groups", "cell1").expect("cell1");
        assert_eq!(cell["parents"], serde_json::json!(["region1"]));
        let host = find(&server, &t, "hosts", "node1").expect("node1");
        assert_eq!(host["ip_address"], "10.0.0.1");
        assert_eq!(host["groups"], serde_json::json!(["cell1"]));
        let mut labels: Vec<&str> = host["labels"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        labels.sort();
        assert_eq!(labels, ["compute", "rack-a"]);
        assert_eq!(host["variables"], serde_json::json!({"disks": ["sda", "sdb"], "port": 8080}));
        assert_eq!(project_vars(&server, &t), serde_json::json!({"site": "lab"}));
        let hid = host["id"].as_i64().unwrap();
        let secret_path = format!("/v1/hosts/{hid}/secrets/db_password");
        let (s, secret) = get(&server, &t, &format!("{secret_path}/value"));
        assert_eq!(s, 200, "{secret}");
        assert_eq!(
            (secret["value"].as_str(), secret["kind"].as_str(), secret["version"].as_i64()),
            (Some(SECRET), Some("password"), Some(1))
        );

        // The second run changes nothing.
        let (recap, text) = play(&collections, &server, &t, &present, &[]);
        assert_eq!(changed(&recap), 0, "{b:?} second run:\n{text}");
        assert_eq!(recap["ok"], PRESENT_TASKS + 1, "{recap:?}");
        output.push_str(&text);

        // A new secret value is a change, told by the fingerprint; in check
        // mode it is not stored.
        let (recap, text) = play(&collections, &server, &t, &present, &["--check", "-e", "secret_value=another-one"]);
        assert_eq!(changed(&recap), 1, "{b:?} new secret value:\n{text}");
        let (_, meta) = get(&server, &t, &secret_path);
        assert_eq!(meta["version"], 1, "{b:?}: check mode stored a version: {meta}");

        // state: absent takes it all down, once.
        let (recap, text) = play(&collections, &server, &t, &absent, &["--diff"]);
        assert_eq!(changed(&recap), ABSENT_TASKS, "{b:?} absent:\n{text}");
        output.push_str(&text);
        assert!(find(&server, &t, "groups", "region1").is_none() && find(&server, &t, "groups", "cell1").is_none());
        assert!(find(&server, &t, "hosts", "node1").is_none());
        assert_eq!(project_vars(&server, &t), serde_json::json!({}));
        let (recap, text) = play(&collections, &server, &t, &absent, &[]);
        assert_eq!(changed(&recap), 0, "{b:?} absent again:\n{text}");

        assert!(!output.contains(SECRET), "{b:?}: the secret's value reached ansible's output");
        assert!(!output.contains(&t), "{b:?}: the token reached ansible's output");
        eprintln!("{b:?}: {:.1} s", started.elapsed().as_secs_f64());
    }
}
