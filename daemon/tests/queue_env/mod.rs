//! The fixture of the run-queue tests (runs_queue.rs, runs_gates.rs):
//! hosts h1..h4 with local connection, a playbook repository, and two
//! runners ("daemons") over one database, as two `cratond` processes.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use craton::store::tokens::Role;
use craton::store::{self, DbUrl};
use cratond::api::{app, Limits};
use cratond::state::{AppState, AuthMode};
use serde_json::{json, Value};

use crate::common::{Backend, Harness, Resp};
use crate::upstream::Upstream;

pub const QUICK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: hi\n";
/// Runs until the file `gate` (an extra var) exists.
pub const GATED: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for:\n        path: \"{{ gate }}\"\n        timeout: 120\n";

/// One runner over the shared database: its own holder, work directory
/// and git cache, and its lost-run sweeper.
pub struct Daemon {
    pub app: Router,
    _state: AppState,
    _scratch: tempfile::TempDir,
}

pub fn daemon(url: &DbUrl, holder: &str, lease_ttl_ms: i64) -> Daemon {
    let pool = store::pool::build(url, 4).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let sync = cratond::sync::SyncHub::new(cratond::sync::SyncSettings::with_cache(scratch.path().join("git")));
    let mut settings = cratond::runner::RunSettings::with(
        scratch.path().join("runs"),
        crate::common::ansible_playbook(),
        holder.into(),
    );
    settings.lease_ttl_ms = lease_ttl_ms;
    let runs = cratond::runner::RunHub::new(settings, sync).unwrap();
    runs.start_sweeper(pool.clone());
    let keys = craton::secrets::FileKeyProvider::open_or_create(&scratch.path().join("master.key")).unwrap();
    let state = AppState::new(pool, AuthMode::Tokens).with_runs(runs).with_key_provider(std::sync::Arc::new(keys));
    Daemon { app: app(state.clone(), Limits::default()), _state: state, _scratch: scratch }
}

pub struct Env {
    pub h: Harness,
    pub a: Daemon,
    pub b: Daemon,
    pub root: String,
    pub repo: Upstream,
    pub gate: tempfile::TempDir,
}

/// Hosts h1..h4 (local connection); groups left = h1 h2, right = h2 h3,
/// four = h4, and one group per host.
pub async fn env(backend: Backend, lease_ttl_ms: i64) -> Env {
    let h = Harness::new(backend);
    let root = h.token(None, Role::Root);
    let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let mut ids = Vec::new();
    for n in ["h1", "h2", "h3", "h4"] {
        let g = h.create("/v1/groups", &root, json!({"name": format!("g{n}")})).await;
        let host = h.create("/v1/hosts", &root, json!({"name": n, "groups": [g]})).await;
        h.expect(
            200,
            "PUT",
            &format!("/v1/hosts/{host}/variables"),
            &root,
            Some(json!({"ansible_connection": "local", "ansible_python_interpreter": python})),
        )
        .await;
        ids.push(host);
    }
    for (name, members) in [("left", vec![ids[0], ids[1]]), ("right", vec![ids[1], ids[2]]), ("four", vec![ids[3]])] {
        let g = h.create("/v1/groups", &root, json!({"name": name})).await;
        for m in members {
            let r = h.call("GET", &format!("/v1/hosts/{m}"), &root, None).await;
            let mut groups: Vec<Value> = r.body["groups"].as_array().cloned().unwrap_or_default();
            groups.push(json!(g));
            h.expect(200, "PATCH", &format!("/v1/hosts/{m}"), &root, Some(json!({"groups": groups}))).await;
        }
    }
    let repo = Upstream::new();
    repo.write("quick.yml", QUICK);
    repo.write("gated.yml", GATED);
    repo.commit_push("playbooks");
    let a = daemon(&h.url, "daemon-a", lease_ttl_ms);
    let b = daemon(&h.url, "daemon-b", lease_ttl_ms);
    Env { h, a, b, root, repo, gate: tempfile::tempdir().unwrap() }
}

pub async fn call(app: &Router, method: &str, uri: &str, token: &str, body: Option<Value>) -> Resp {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req =
        axum::http::Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    let bytes = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            serde_json::to_vec(&b).unwrap()
        }
        None => Vec::new(),
    };
    let resp = app.clone().oneshot(req.body(axum::body::Body::from(bytes)).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

impl Env {
    pub fn gate_file(&self, name: &str) -> PathBuf {
        self.gate.path().join(name)
    }

    pub fn body(&self, playbook: &str, group: &str, extra: Value) -> Value {
        let mut body = json!({"playbook": playbook, "repo": self.repo.url(), "ref": "main", "group": group});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    pub async fn submit(&self, on: &Daemon, playbook: &str, group: &str, extra: Value) -> i64 {
        let r = call(&on.app, "POST", "/v1/runs", &self.root, Some(self.body(playbook, group, extra))).await;
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
        r.body["id"].as_i64().unwrap()
    }

    pub async fn gated(&self, on: &Daemon, group: &str, gate: &str) -> i64 {
        let g = self.gate_file(gate).to_string_lossy().into_owned();
        self.submit(on, "gated.yml", group, json!({"extra_vars": {"gate": g}})).await
    }

    pub fn open(&self, gate: &str) {
        std::fs::write(self.gate_file(gate), b"go").unwrap();
    }

    pub async fn run(&self, on: &Daemon, id: i64) -> Value {
        let r = call(&on.app, "GET", &format!("/v1/runs/{id}"), &self.root, None).await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        r.body
    }

    pub async fn wait_for(&self, on: &Daemon, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.run(on, id).await;
            if done(&r) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(50), "run {id} never {what}: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn set_max(&self, n: i64) {
        let p = self.h.call("GET", "/v1/projects?name=default", &self.root, None).await;
        let pid = p.body["items"][0]["id"].as_i64().unwrap();
        let r = self
            .h
            .expect(200, "PATCH", &format!("/v1/projects/{pid}"), &self.root, Some(json!({"max_concurrent_runs": n})))
            .await;
        assert_eq!(r.body["max_concurrent_runs"], n, "{}", r.text);
    }
}

pub fn is_final(r: &Value) -> bool {
    !matches!(r["status"].as_str(), Some("queued") | Some("running"))
}

pub fn ms(r: &Value, k: &str) -> i64 {
    r[k].as_i64().unwrap_or_else(|| panic!("no {k} in {r}"))
}
