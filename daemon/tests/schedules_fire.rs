//! Schedules fired for real: two daemons (two AppStates, each with its
//! own runner and ticker) over one PostgreSQL database share one manual
//! clock; the test moves the clock over several occurrences and every
//! occurrence yields exactly one run, which a real ansible-playbook runs
//! to `successful`. Then a downtime (a clock jump over several
//! occurrences): `catch_up: once` runs once for the latest, `skip` none.
//! MariaDB too with `CRATON_TEST_HEAVY=1` (the claim is the same SQL).

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::{ansible_playbook, Backend, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use cratond::state::{AppState, AuthMode};
use serde_json::{json, Value};
use upstream::Upstream;

const QUICK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: scheduled\n";
/// Wall time between ticks of each daemon.
const TICK: Duration = Duration::from_millis(50);

/// A second daemon over the harness's database: its own pool, runner
/// (another lease holder) and scratch directories, the same clock.
fn peer(h: &Harness, clock: Arc<ManualClock>, scratch: &std::path::Path) -> AppState {
    let pool = craton::store::pool::build(&h.url, 4).unwrap();
    let sync = cratond::sync::SyncHub::new(cratond::sync::SyncSettings::with_cache(scratch.join("git")));
    let settings =
        cratond::runner::RunSettings::with(scratch.join("runs"), ansible_playbook(), sync.settings().holder.clone());
    let runs = cratond::runner::RunHub::new(settings, sync).unwrap();
    let keys = craton::secrets::FileKeyProvider::open_or_create(&scratch.join("master.key")).unwrap();
    AppState::new(pool, AuthMode::Tokens).with_runs(runs).with_key_provider(Arc::new(keys)).with_clock(clock)
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, h, m, s).unwrap()
}

struct Env {
    h: Harness,
    other: AppState,
    clock: Arc<ManualClock>,
    ed: String,
    repo: Upstream,
    _scratch: tempfile::TempDir,
}

async fn env(backend: Backend) -> Env {
    let clock = Arc::new(ManualClock::new(at(9, 30, 0)));
    let h = Harness::with_clock(backend, clock.clone());
    let scratch = tempfile::tempdir().unwrap();
    let other = peer(&h, clock.clone(), scratch.path());
    let root = h.token(None, Role::Root);
    // Root: the playbooks come from a file:// repository, which the
    // repository policy allows root only.
    let ed = root.clone();
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
    let repo = Upstream::new();
    repo.write("quick.yml", QUICK);
    repo.commit_push("playbooks");
    cratond::schedules::start(h.state.clone(), TICK);
    cratond::schedules::start(other.clone(), TICK);
    Env { h, other, clock, ed, repo, _scratch: scratch }
}

impl Env {
    fn schedule(&self, name: &str, catch_up: &str) -> Value {
        json!({"name": name, "kind": "cron", "expression": "0 * * * *", "time_zone": "UTC", "catch_up": catch_up,
            "template": {"playbook": "quick.yml", "repo": self.repo.url(), "ref": "main", "group": "cell"}})
    }

    async fn firings(&self, id: i64) -> Vec<Value> {
        let r = self.h.expect(200, "GET", &format!("/v1/schedules/{id}/firings"), &self.ed, None).await;
        r.body["items"].as_array().unwrap().clone()
    }

    /// Waits until schedule `id` has `n` firings, none of them still being
    /// submitted.
    async fn wait_firings(&self, id: i64, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let f = self.firings(id).await;
            if f.len() >= n && f.iter().all(|x| x["status"] != "claimed") {
                return f;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "schedule {id}: wanted {n} firings: {f:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_final(&self, run: i64) -> Value {
        let start = Instant::now();
        loop {
            let r = self.h.expect(200, "GET", &format!("/v1/runs/{run}"), &self.ed, None).await.body;
            if !matches!(r["status"].as_str(), Some("queued") | Some("running")) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "run {run} never ended: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn runs(&self) -> Vec<Value> {
        self.h.expect(200, "GET", "/v1/runs?limit=100", &self.ed, None).await.body["items"].as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_fire_each_occurrence_once_and_catch_up_after_downtime() {
    let mut backends = vec![Backend::Postgres];
    if common::heavy() {
        backends.push(Backend::Mysql);
    }
    for b in backends {
        two_daemons(b).await;
    }
}

async fn two_daemons(backend: Backend) {
    let e = env(backend).await;
    let id = e.h.create("/v1/schedules", &e.ed, e.schedule("hourly", "skip")).await;
    // Three occurrences, 10:00, 11:00 and 12:00. Both tickers run; the test
    // also ticks both daemons at the same moment, so the claim is raced.
    for (k, hour) in [10, 11, 12].into_iter().enumerate() {
        e.clock.set(at(hour, 0, 1));
        let (first, second) = if k % 2 == 0 { (&e.h.state, &e.other) } else { (&e.other, &e.h.state) };
        let (a, b) = tokio::join!(cratond::schedules::tick(first), cratond::schedules::tick(second));
        a.unwrap();
        b.unwrap();
        let f = e.wait_firings(id, k + 1).await;
        assert_eq!(f.len(), k + 1, "{f:?}");
        assert_eq!(f[0]["occurrence"], format!("2026-11-02T{hour}:00:00Z"));
        assert_eq!(f[0]["status"], "submitted", "{f:?}");
    }
    // More ticks at the last instant change nothing.
    tokio::time::sleep(TICK * 6).await;
    let f = e.firings(id).await;
    assert_eq!(f.len(), 3, "{f:?}");
    let mut run_ids: Vec<i64> = f.iter().map(|x| x["run_id"].as_i64().unwrap()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    assert_eq!(run_ids.len(), 3, "{f:?}");
    let runs = e.runs().await;
    assert_eq!(runs.len(), 3, "exactly one run per occurrence: {runs:?}");
    let holders: std::collections::BTreeSet<&str> = f.iter().map(|x| x["holder"].as_str().unwrap()).collect();
    eprintln!("occurrences claimed by {} daemon(s): {holders:?}", holders.len());
    for run in &run_ids {
        let r = e.wait_final(*run).await;
        assert_eq!(r["status"], "successful", "{r}");
        let by = r["created_by"].as_str().unwrap();
        assert!(by.starts_with(&format!("schedule:{id} token ")) && by.ends_with("(root)"), "{by}");
    }
    e.h.expect(200, "PATCH", &format!("/v1/schedules/{id}"), &e.ed, Some(json!({"enabled": false}))).await;

    // Downtime: created at 12:00:01 (next 13:00), the clock jumps to 15:20
    // (13, 14 and 15 o'clock missed).
    let once = e.h.create("/v1/schedules", &e.ed, e.schedule("once", "once")).await;
    let skip = e.h.create("/v1/schedules", &e.ed, e.schedule("skip", "skip")).await;
    e.clock.set(at(15, 20, 0));
    let f = e.wait_firings(once, 1).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0]["occurrence"].as_str(), f[0]["missed"].as_i64()), (Some("2026-11-02T15:00:00Z"), Some(2)));
    assert_eq!(f[0]["status"], "submitted", "{f:?}");
    let f_skip = e.wait_firings(skip, 1).await;
    assert_eq!(f_skip.len(), 1, "{f_skip:?}");
    assert_eq!((f_skip[0]["status"].as_str(), f_skip[0]["missed"].as_i64()), (Some("skipped"), Some(3)));
    assert_eq!(f_skip[0]["run_id"], Value::Null);
    tokio::time::sleep(TICK * 6).await;
    assert_eq!(e.firings(once).await.len(), 1);
    assert_eq!(e.firings(skip).await.len(), 1);
    assert_eq!(e.runs().await.len(), 4, "one run for the catch-up, none for skip");
    let r = e.wait_final(f[0]["run_id"].as_i64().unwrap()).await;
    assert_eq!(r["status"], "successful", "{r}");
    for s in [once, skip] {
        let body = e.h.expect(200, "GET", &format!("/v1/schedules/{s}"), &e.ed, None).await.body;
        assert_eq!(body["next_run"], "2026-11-02T16:00:00Z", "{body}");
    }
}
