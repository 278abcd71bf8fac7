//! Host locks across two real `cratond serve` processes on one PostgreSQL:
//! a run submitted to daemon B on hosts daemon A's run holds waits with
//! `waiting_for: {"run": id}`; daemon A is killed (SIGKILL) mid-run, its
//! claim expires with its lease (B's sweeper marks the run `lost` and
//! frees its hosts in one transaction), and B's run then starts and
//! succeeds. Leases of 2 s keep it short.

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::time::{Duration, Instant};

use fixtures::{ansible, cratond, ok, Backend, Server, TestDb};
use serde_json::{json, Value};
use upstream::Upstream;

const QUICK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: hi\n";
const GATED: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for:\n        path: \"{{ gate }}\"\n        timeout: 120\n";

struct Daemon {
    server: Server,
    _runs: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

fn start(db: &TestDb, home: &std::path::Path) -> Daemon {
    let (runs, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let playbook = ansible("ansible-playbook");
    let envs = [
        ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap()),
        ("CRATON_RUNS_DIR", runs.path().to_str().unwrap()),
        ("CRATON_GIT_CACHE_DIR", cache.path().to_str().unwrap()),
        ("HOME", home.to_str().unwrap()),
        ("CRATON_RUN_LEASE_SECS", "2"),
    ];
    Daemon { server: Server::start(db, &["--no-sync"], &envs), _runs: runs, _cache: cache }
}

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let url = format!("{base}{path}");
    let mut resp = match (method, body) {
        ("POST", Some(b)) => a.post(&url).header("Authorization", &auth).send_json(b).unwrap(),
        _ => a.get(&url).header("Authorization", &auth).call().unwrap(),
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn wait_for(base: &str, token: &str, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (s, r) = call(base, token, "GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(s, 200, "{r}");
        if done(&r) {
            return r;
        }
        assert!(start.elapsed() < Duration::from_secs(50), "run {id} never {what}: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_daemons_hosts_are_freed_with_its_lease() {
    let db = TestDb::new(Backend::Postgres);
    let home = tempfile::tempdir().unwrap();
    let python = ansible("python");
    let inv = home.path().join("fleet.yml");
    std::fs::write(
        &inv,
        format!(
            "all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: {}\n  children:\n    web:\n      hosts:\n        h1: {{}}\n        h2: {{}}\n",
            python.display()
        ),
    )
    .unwrap();
    ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
    let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
    let repo = Upstream::new();
    repo.write("quick.yml", QUICK);
    repo.write("gated.yml", GATED);
    repo.commit_push("playbooks");
    let gate = home.path().join("gate");

    let mut a = start(&db, home.path());
    let b = start(&db, home.path());
    let (ab, bb) = (a.server.base.clone(), b.server.base.clone());
    let body = |playbook: &str, extra: Value| json!({"playbook": playbook, "repo": repo.url(), "ref": "main", "group": "web", "extra_vars": extra});
    let (s, first) = call(&ab, &root, "POST", "/v1/runs", Some(body("gated.yml", json!({"gate": gate}))));
    assert_eq!(s, 201, "{first}");
    let first = first["id"].as_i64().unwrap();
    wait_for(&ab, &root, first, "started", |r| r["status"] == "running");
    let (s, second) = call(&bb, &root, "POST", "/v1/runs", Some(body("quick.yml", json!({}))));
    assert_eq!(s, 201, "{second}");
    let second = second["id"].as_i64().unwrap();
    let r = wait_for(&bb, &root, second, "waited", |r| r.get("waiting_for").is_some());
    assert_eq!(r["waiting_for"], json!({"run": first}), "{r}");
    // Still waiting a lease later: A is alive and renews.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(wait_for(&bb, &root, second, "read", |_| true)["status"], "queued");

    a.server.child.kill().unwrap();
    a.server.child.wait().unwrap();
    // The orphaned playbook ends on its own (nobody records it).
    std::fs::write(&gate, b"go").unwrap();
    let s2 = wait_for(&bb, &root, second, "finished", |r| !matches!(r["status"].as_str(), Some("queued" | "running")));
    assert_eq!(s2["status"], "successful", "{s2}");
    let f = wait_for(&bb, &root, first, "read", |_| true);
    assert_eq!(f["status"], "lost", "{f}");
    assert!(s2["started_at"].as_i64().unwrap() >= f["finished_at"].as_i64().unwrap(), "{f}\n{s2}");
}
