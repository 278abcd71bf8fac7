//! Runs and maintenance windows with real ansible-playbook, in process,
//! with a manual clock the test moves (no waiting for wall time): a run
//! submitted outside its hosts' window stays queued with `waiting_for` and
//! starts when the clock reaches the window; a running run is stopped when
//! the window ends and says why; `"window": "ignore"` starts at once.
//! SQLite (the runner's process side does not depend on the backend; the
//! window store is covered on all three by api_windows).

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{Backend, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use serde_json::{json, Value};
use upstream::Upstream;

const QUICK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: hi\n";
/// Long enough for the test to move the clock past the window's end.
const SLOW: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - raw: sleep 1\n    - raw: sleep 1\n    - raw: sleep 1\n    - raw: sleep 1\n    - raw: sleep 1\n    - raw: sleep 1\n";

struct Env {
    h: Harness,
    clock: Arc<ManualClock>,
    root: String,
    repo: Upstream,
}

async fn env() -> Env {
    // Monday 2026-11-02 00:00 UTC; the window: Saturdays 01:00-03:00 UTC.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()));
    let h = Harness::with_clock(Backend::Sqlite, clock.clone());
    let root = h.token(None, Role::Root);
    let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let g = h.create("/v1/groups", &root, json!({"name": "cell"})).await;
    let host = h.create("/v1/hosts", &root, json!({"name": "h1", "groups": [g]})).await;
    h.expect(
        200,
        "PUT",
        &format!("/v1/hosts/{host}/variables"),
        &root,
        Some(json!({"ansible_connection": "local", "ansible_python_interpreter": python})),
    )
    .await;
    h.create(
        &format!("/v1/groups/{g}/windows"),
        &root,
        json!({"name": "sat", "kind": "cron", "expression": "0 1 * * SAT", "time_zone": "UTC", "duration_s": 7200}),
    )
    .await;
    let repo = Upstream::new();
    repo.write("quick.yml", QUICK);
    repo.write("slow.yml", SLOW);
    repo.commit_push("playbooks");
    Env { h, clock, root, repo }
}

impl Env {
    async fn submit(&self, playbook: &str, extra: Value) -> i64 {
        let mut body = json!({"playbook": playbook, "repo": self.repo.url(), "ref": "main", "group": "cell"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.h.call("POST", "/v1/runs", &self.root, Some(body)).await;
        assert!(r.status.is_success(), "{}", r.text);
        r.body["id"].as_i64().unwrap()
    }

    async fn run(&self, id: i64) -> Value {
        self.h.expect(200, "GET", &format!("/v1/runs/{id}"), &self.root, None).await.body
    }

    async fn wait_for(&self, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.run(id).await;
            if done(&r) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "run {id} never {what}: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn is_final(r: &Value) -> bool {
    !matches!(r["status"].as_str(), Some("queued") | Some("running"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waits_for_its_window_and_then_succeeds() {
    let e = env().await;
    let id = e.submit("quick.yml", json!({})).await;
    let r = e.wait_for(id, "showed what it waits for", |r| r.get("waiting_for").is_some()).await;
    assert_eq!(r["status"], "queued");
    assert_eq!(
        r["waiting_for"],
        json!({"window": {"opens_at": "2026-11-07T01:00:00Z", "closes_at": "2026-11-07T03:00:00Z"}})
    );
    // Wall time passes, the clock does not: still waiting.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(e.run(id).await["status"], "queued");
    e.clock.set(Utc.with_ymd_and_hms(2026, 11, 7, 1, 0, 0).unwrap());
    let r = e.wait_for(id, "finished", is_final).await;
    assert_eq!(r["status"], "successful", "{r}");
    assert!(r.get("waiting_for").is_none(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_starts_at_once() {
    let e = env().await;
    let id = e.submit("quick.yml", json!({"window": "ignore"})).await;
    let r = e.wait_for(id, "finished", is_final).await;
    assert_eq!(r["status"], "successful", "{r}");
    let r =
        e.h.call(
            "POST",
            "/v1/runs",
            &e.root,
            Some(json!({"playbook": "quick.yml", "repo": e.repo.url(), "ref": "main", "window": "sometimes"})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["window".to_string()]), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_when_its_window_ends() {
    for (shutdown, rc) in [("graceful", json!(99)), ("immediate", Value::Null)] {
        let e = env().await;
        e.clock.set(Utc.with_ymd_and_hms(2026, 11, 7, 2, 59, 0).unwrap());
        let id = e.submit("slow.yml", json!({"shutdown": shutdown})).await;
        // Inside the play (its first task has begun), then the window ends.
        e.wait_for(id, "started its play", |r| r["events"]["received"].as_i64().unwrap_or(0) >= 3).await;
        let started = Instant::now();
        e.clock.set(Utc.with_ymd_and_hms(2026, 11, 7, 3, 0, 0).unwrap());
        let r = e.wait_for(id, "finished", is_final).await;
        assert_eq!(r["status"], "canceled", "{shutdown}: {r}");
        // Graceful is SIGINT: ansible-playbook exits 99 (user interrupt);
        // immediate kills the process group: no exit code.
        assert_eq!(r["rc"], rc, "{shutdown}: {r}");
        let reason = r["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("maintenance window ended at 2026-11-07T03:00:00Z"), "{shutdown}: {r}");
        // Six one-second steps: it did not run to the end.
        let out = e.h.call("GET", &format!("/v1/runs/{id}/stdout"), &e.root, None).await.text;
        let tasks = out.matches("TASK [").count();
        assert!(tasks < 6, "{shutdown}: {tasks} tasks ran in {:?}: {out}", started.elapsed());
    }
}
