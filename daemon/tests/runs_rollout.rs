//! Rolling runs with real ansible-playbook, on every backend: `batch` cuts
//! the target into batches (Ansible's `serial` sizes) that run one
//! ansible-playbook each over the run's bundle, with one contiguous event
//! sequence; a batch over `max_fail_percentage` stops the rollout (the rest
//! `skipped`); `POST /v1/runs/{id}/resume` runs the rest as a new run on
//! the same bundle and commit, once. `pause_s` waits on the daemon's clock,
//! and a cancel during the pause stops the rollout there; a window that
//! ends mid-rollout stops it at the batch boundary (graceful) or at once;
//! `approve_each_batch` holds each later batch for another admin's answer.

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{backends, Backend, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use serde_json::{json, Value};

/// Fails on the hosts named in `fail_on`; the rest go on.
const FAILS_ON: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: chosen\n      when: inventory_hostname in fail_on\n    - debug:\n        msg: hi\n";

struct Env {
    h: Harness,
    root: String,
    repo: upstream::Upstream,
}

/// Hosts h1..h5 with local connection, in groups cell1 (h1 h2) and cell2
/// (h3 h4 h5), both children of `region`; the repository has FAILS_ON.
async fn env(b: Backend, clock: Option<Arc<ManualClock>>) -> Env {
    let h = match clock {
        Some(c) => Harness::with_clock(b, c),
        None => Harness::new(b),
    };
    let root = h.token(None, Role::Root);
    let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let region = h.create("/v1/groups", &root, json!({"name": "region"})).await;
    // cell2 first in id order: the batches follow the tree, not the ids.
    let cell2 = h.create("/v1/groups", &root, json!({"name": "cell2", "parents": [region]})).await;
    let cell1 = h.create("/v1/groups", &root, json!({"name": "cell1", "parents": [region]})).await;
    h.expect(200, "PATCH", &format!("/v1/groups/{region}"), &root, Some(json!({"children": [cell1, cell2]}))).await;
    for (n, g) in [("h3", cell2), ("h1", cell1), ("h2", cell1), ("h4", cell2), ("h5", cell2)] {
        let host = h.create("/v1/hosts", &root, json!({"name": n, "groups": [g]})).await;
        let vars = json!({"ansible_connection": "local", "ansible_python_interpreter": python});
        h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &root, Some(vars)).await;
    }
    let repo = upstream::Upstream::new();
    repo.write("fails.yml", FAILS_ON);
    repo.commit_push("playbooks");
    Env { h, root, repo }
}

impl Env {
    fn body(&self, extra: Value) -> Value {
        let mut body = json!({"playbook": "fails.yml", "repo": self.repo.url(), "ref": "main", "group": "region"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    async fn wait(&self, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.h.get(&format!("/v1/runs/{id}"), &self.root).await.body;
            if done(&r) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(90), "run {id} never {what}: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn batches(&self, id: i64) -> Value {
        self.h.expect(200, "GET", &format!("/v1/runs/{id}/batches"), &self.root, None).await.body
    }

    async fn host_statuses(&self, id: i64) -> Vec<(String, String)> {
        let r = self.h.expect(200, "GET", &format!("/v1/runs/{id}/hosts"), &self.root, None).await;
        let mut v: Vec<(String, String)> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["host"].as_str().unwrap().to_string(), h["status"].as_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    }

    async fn counters(&self, id: i64) -> Vec<i64> {
        let r = self.h.expect(200, "GET", &format!("/v1/runs/{id}/events?limit=1000"), &self.root, None).await;
        r.body["items"].as_array().unwrap().iter().map(|e| e["counter"].as_i64().unwrap()).collect()
    }
}

fn is_final(r: &Value) -> bool {
    !matches!(r["status"].as_str(), Some("queued") | Some("running"))
}

fn summary(batches: &Value) -> Vec<(Vec<String>, String, i64)> {
    batches["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let hosts = b["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect();
            (hosts, b["status"].as_str().unwrap().to_string(), b["failed"].as_i64().unwrap())
        })
        .collect()
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_stops_the_rollout_and_resume_runs_the_rest_once() {
    for b in backends() {
        let e = env(b, None).await;
        // Ansible's serial [1, "40%"] over 5 hosts: 1, 2, 2.
        let body = e.body(json!({"batch": [1, "40%"], "max_fail_percentage": 40, "extra_vars": {"fail_on": ["h2"]}}));
        let r = e.h.expect(201, "POST", "/v1/runs", &e.root, Some(body)).await;
        let id = r.body["id"].as_i64().unwrap();
        let run = e.wait(id, "finished", is_final).await;
        assert_eq!(run["status"], "failed", "{b:?}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(
            reason.contains("rollout stopped: batch 2 1 of 2 hosts failed (50% > max_fail_percentage 40%)"),
            "{b:?}: {reason}"
        );
        assert!(reason.contains("batch 3 was not run"), "{b:?}: {reason}");
        // The tree's order: cell1 (h1 h2) before cell2 (h3 h4 h5).
        let got = summary(&e.batches(id).await);
        assert_eq!(
            got,
            vec![
                (names(&["h1"]), "done".into(), 0),
                (names(&["h2", "h3"]), "done".into(), 1),
                (names(&["h4", "h5"]), "skipped".into(), 0),
            ],
            "{b:?}"
        );
        assert_eq!(
            e.host_statuses(id).await,
            [("h1", "ok"), ("h2", "failed"), ("h3", "ok"), ("h4", "not_run"), ("h5", "not_run")]
                .map(|(h, s)| (h.to_string(), s.to_string())),
            "{b:?}"
        );
        // Two ansible-playbook processes, one event sequence: 1..N.
        let counters = e.counters(id).await;
        assert_eq!(counters, (1..=counters.len() as i64).collect::<Vec<_>>(), "{b:?}");
        assert!(counters.len() > 10, "{b:?}: {counters:?}");
        let stdout = e.h.expect(200, "GET", &format!("/v1/runs/{id}/stdout"), &e.root, None).await.text;
        assert_eq!(stdout.matches("PLAY RECAP").count(), 2, "{b:?}: {stdout}");

        // The repository moves on: a resume still runs the old commit.
        e.repo.write("fails.yml", &FAILS_ON.replace("msg: hi", "msg: \"{{ undefined_var }}\""));
        e.repo.commit_push("breaks every host");
        // The repository policy holds for whoever resumes: an editor may
        // not run a local repository, and nothing is stored.
        let editor = e.h.token(Some("default"), Role::Editor);
        let r = e.h.expect(403, "POST", &format!("/v1/runs/{id}/resume"), &editor, None).await;
        assert!(r.text.contains("root-only"), "{b:?}: {}", r.text);
        assert_eq!(e.batches(id).await["resumed_by"], Value::Null, "{b:?}");
        let r = e.h.expect(201, "POST", &format!("/v1/runs/{id}/resume"), &e.root, None).await;
        let resumed = r.body["id"].as_i64().unwrap();
        let again = e.wait(resumed, "finished", is_final).await;
        assert_eq!(again["status"], "successful", "{b:?}: {again}");
        assert_eq!(again["bundle_etag"], run["bundle_etag"], "{b:?}");
        assert_eq!(again["source"]["commit"], run["source"]["commit"], "{b:?}");
        let rb = e.batches(resumed).await;
        assert_eq!(rb["resumed_from"], id, "{b:?}: {rb}");
        assert_eq!(rb["batches"][0]["seq"], 3, "{b:?}: {rb}");
        assert_eq!(summary(&rb), vec![(names(&["h4", "h5"]), "done".into(), 0)], "{b:?}");
        assert_eq!(e.batches(id).await["resumed_by"], resumed, "{b:?}");
        assert_eq!(
            e.host_statuses(resumed).await,
            [("h4", "ok"), ("h5", "ok")].map(|(h, s)| (h.to_string(), s.to_string())),
            "{b:?}"
        );
        // Once; and nothing is left of the resumed one.
        let r = e.h.expect(409, "POST", &format!("/v1/runs/{id}/resume"), &e.root, None).await;
        assert!(r.text.contains(&format!("already resumed by run {resumed}")), "{b:?}: {}", r.text);
        let r = e.h.expect(409, "POST", &format!("/v1/runs/{resumed}/resume"), &e.root, None).await;
        assert!(r.text.contains("nothing to resume"), "{b:?}: {}", r.text);
        // A reader may not; another project's run does not exist.
        let reader = e.h.token(Some("default"), Role::Reader);
        e.h.expect(403, "POST", &format!("/v1/runs/{id}/resume"), &reader, None).await;
        e.h.create("/v1/projects", &e.root, json!({"name": "other"})).await;
        let stranger = e.h.token(Some("other"), Role::Admin);
        e.h.expect(404, "POST", &format!("/v1/runs/{id}/resume"), &stranger, None).await;
        e.h.expect(404, "GET", &format!("/v1/runs/{id}/batches"), &stranger, None).await;
        // A run without batch is no rollout.
        let body = json!({"playbook": "fails.yml", "repo": e.repo.url(), "ref": "main", "group": "cell1",
            "extra_vars": {"fail_on": []}});
        let plain = e.h.expect(201, "POST", "/v1/runs", &e.root, Some(body)).await.body["id"].as_i64().unwrap();
        e.wait(plain, "finished", is_final).await;
        assert_eq!(e.batches(plain).await["batches"], json!([]), "{b:?}");
        let r = e.h.expect(409, "POST", &format!("/v1/runs/{plain}/resume"), &e.root, None).await;
        assert!(r.text.contains("not a rolling run"), "{b:?}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_are_on_the_daemon_clock_and_a_cancel_in_one_stops_the_rollout() {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let e = env(Backend::Sqlite, Some(clock.clone())).await;
    let body = e.body(json!({"batch": 2, "pause_s": 3600, "order": "reverse", "extra_vars": {"fail_on": []}}));
    let id = e.h.expect(201, "POST", "/v1/runs", &e.root, Some(body)).await.body["id"].as_i64().unwrap();
    // Reverse of the tree's order h1 h2 h3 h4 h5, by two.
    let start = Instant::now();
    loop {
        let b = summary(&e.batches(id).await);
        if b[0].1 == "done" {
            assert_eq!(b[0].0, names(&["h5", "h4"]));
            assert_eq!(b[1], (names(&["h3", "h2"]), "pending".into(), 0));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "batch 1 never ran: {b:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Real time passing does not end the pause; the clock does.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(summary(&e.batches(id).await)[1].1, "pending");
    assert_eq!(e.h.get(&format!("/v1/runs/{id}"), &e.root).await.body["status"], "running");
    clock.advance(chrono::Duration::seconds(3601));
    let start = Instant::now();
    loop {
        let b = summary(&e.batches(id).await);
        if b[1].1 == "done" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "batch 2 never ran: {b:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // In the second pause: a cancel ends it there.
    e.h.expect(202, "POST", &format!("/v1/runs/{id}/cancel"), &e.root, None).await;
    let run = e.wait(id, "finished", is_final).await;
    assert_eq!(run["status"], "canceled", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(reason.contains("canceled between batches") && reason.contains("batch 3 was not run"), "{reason}");
    let b = summary(&e.batches(id).await);
    assert_eq!(b[2], (names(&["h1"]), "skipped".into(), 0));
    assert_eq!(e.host_statuses(id).await.iter().filter(|(_, s)| s == "ok").count(), 4);
}

/// Three one-second steps per batch.
const SLOW: &str =
    "- hosts: all\n  gather_facts: false\n  tasks:\n    - raw: sleep 1\n    - raw: sleep 1\n    - raw: sleep 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_ends_mid_rollout_stops_it_at_the_batch_boundary_or_at_once() {
    for (shutdown, first) in [("graceful", "done"), ("immediate", "stopped")] {
        // Saturday 2026-11-07 02:59 UTC, a minute before region's window
        // (Saturdays 01:00-03:00) ends.
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 7, 2, 59, 0).unwrap()));
        let e = env(Backend::Sqlite, Some(clock.clone())).await;
        let groups = e.h.expect(200, "GET", "/v1/groups?name=region", &e.root, None).await;
        let region = groups.body["items"][0]["id"].as_i64().unwrap();
        let window = json!({"name": "sat", "kind": "cron", "expression": "0 1 * * SAT", "time_zone": "UTC",
            "duration_s": 7200});
        e.h.create(&format!("/v1/groups/{region}/windows"), &e.root, window).await;
        e.repo.write("slow.yml", SLOW);
        e.repo.commit_push("slow");
        let body = json!({"playbook": "slow.yml", "repo": e.repo.url(), "ref": "main", "group": "region",
            "batch": 2, "shutdown": shutdown});
        let id = e.h.expect(201, "POST", "/v1/runs", &e.root, Some(body)).await.body["id"].as_i64().unwrap();
        // Inside batch 1's play, the window ends.
        e.wait(id, "started its play", |r| r["events"]["received"].as_i64().unwrap_or(0) >= 3).await;
        clock.set(Utc.with_ymd_and_hms(2026, 11, 7, 3, 0, 0).unwrap());
        let run = e.wait(id, "finished", is_final).await;
        assert_eq!(run["status"], "canceled", "{shutdown}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(reason.contains("maintenance window ended at 2026-11-07T03:00:00Z"), "{shutdown}: {reason}");
        assert!(reason.contains("batches 2-3 were not run"), "{shutdown}: {reason}");
        let b = summary(&e.batches(id).await);
        let statuses: Vec<&str> = b.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(statuses, [first, "skipped", "skipped"], "{shutdown}: {b:?}");
        let out = e.h.call("GET", &format!("/v1/runs/{id}/stdout"), &e.root, None).await.text;
        let tasks = out.matches("TASK [").count();
        if shutdown == "graceful" {
            // The batch ran to its end (its recap), and no other started.
            assert_eq!((tasks, out.matches("PLAY RECAP").count()), (3, 1), "{out}");
        } else {
            assert!(tasks < 3, "{tasks} tasks: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_waits_for_another_admins_approval_and_a_denial_stops_the_rollout() {
    for b in backends() {
        let e = env(b, None).await;
        let (submitter_id, submitter) = e.h.token_with_id(None, Role::Root);
        let admin = e.h.token(Some("default"), Role::Admin);
        let body = e.body(json!({"batch": 2, "approve_each_batch": true, "extra_vars": {"fail_on": []}}));
        let id = e.h.expect(201, "POST", "/v1/runs", &submitter, Some(body)).await.body["id"].as_i64().unwrap();
        let approve = format!("/v1/runs/{id}/approve");
        // Batch 1 runs at once; batch 2 waits, and the run says so.
        let w = e.wait(id, "waited for batch 2", |r| r.get("waiting_for").is_some()).await;
        assert_eq!(w["status"], "running", "{b:?}: {w}");
        assert_eq!(
            w["waiting_for"],
            json!({"batch_approval": {"seq": 2, "requested_by": format!("token {submitter_id}")}}),
            "{b:?}: {w}"
        );
        let got = summary(&e.batches(id).await);
        assert_eq!((got[0].1.as_str(), got[1].1.as_str()), ("done", "pending"), "{b:?}: {got:?}");
        // Real time passing changes nothing; not by its submitter.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(summary(&e.batches(id).await)[1].1, "pending", "{b:?}");
        let r = e.h.expect(403, "POST", &approve, &submitter, None).await;
        assert!(r.text.contains("another admin"), "{b:?}: {}", r.text);
        let r = e.h.expect(200, "POST", &approve, &admin, Some(json!({"comment": "cell1 looks fine"}))).await;
        assert_eq!(r.body["approval"]["decision"], "approved", "{b:?}: {}", r.text);
        // Batch 2 runs, then batch 3 waits; a denial ends the rollout.
        let start = Instant::now();
        loop {
            let r = e.h.get(&format!("/v1/runs/{id}"), &e.root).await.body;
            if r["waiting_for"]["batch_approval"]["seq"] == 3 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{b:?}: batch 3 never waited: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(summary(&e.batches(id).await)[1].1, "done", "{b:?}");
        e.h.expect(200, "POST", &format!("/v1/runs/{id}/deny"), &admin, Some(json!({"comment": "enough"}))).await;
        let run = e.wait(id, "finished", is_final).await;
        assert_eq!(run["status"], "canceled", "{b:?}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(reason.contains("batch 3 denied by token") && reason.contains(": enough"), "{b:?}: {reason}");
        assert!(run.get("waiting_for").is_none(), "{b:?}: {run}");
        let bs = e.batches(id).await;
        assert_eq!(bs["batches"][1]["approval"]["comment"], "cell1 looks fine", "{b:?}: {bs}");
        assert_eq!(bs["batches"][2]["approval"]["status"], "denied", "{b:?}: {bs}");
        assert_eq!(bs["batches"][2]["status"], "skipped", "{b:?}: {bs}");
        // Nothing waits any more.
        let r = e.h.expect(409, "POST", &approve, &admin, None).await;
        assert!(r.text.contains("approval"), "{b:?}: {}", r.text);
    }
}

/// A host whose name an Ansible limit file would read as an exclusion or
/// intersection (`!h6`, `&h7`) cannot be a batch: the submit is a 400
/// naming `batch` and the host, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_run_refuses_host_names_a_limit_file_would_widen() {
    let e = env(Backend::Sqlite, None).await;
    let cell = e.h.get("/v1/groups?name=cell2", &e.root).await.body["items"][0]["id"].as_i64().unwrap();
    for n in ["!h6", "&h7"] {
        e.h.create("/v1/hosts", &e.root, json!({"name": n, "groups": [cell]})).await;
    }
    let r = e.h.expect(400, "POST", "/v1/runs", &e.root, Some(e.body(json!({"batch": 2})))).await;
    let d = &r.body["error"]["details"][0];
    assert_eq!(d["field"], "batch", "{}", r.body);
    assert!(d["message"].as_str().unwrap().contains("\"!h6\""), "{}", r.body);
    let runs = e.h.expect(200, "GET", "/v1/runs", &e.root, None).await.body;
    assert_eq!(runs["items"], json!([]), "nothing queued: {runs}");
}
