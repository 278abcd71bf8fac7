//! The run queue with real ansible-playbook and two `cratond` runners on
//! one database (two in-process AppStates with their own holders, as two
//! processes would be): a run on hosts another daemon's run holds waits
//! with `waiting_for: {"run": id}` and starts only after that run ended;
//! a disjoint run backfills meanwhile; `"if_busy": "refuse"` is a 409
//! naming the holder; priorities order runs under the project's cap; a
//! queued run cancels at once; a dead holder's claim expires with its
//! lease and the waiting run then starts. The first playbook waits for a
//! file the test creates, so no step depends on how fast ansible is. The
//! host locks and the dead claim run on PostgreSQL and on MariaDB.

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

mod queue_env;

use common::Backend;
use craton::store;
use queue_env::{call, env, is_final, ms};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_on_two_daemons_never_run_at_once() {
    // The claim is a transaction of the database: PostgreSQL and MariaDB.
    for b in [Backend::Postgres, Backend::Mysql] {
        let e = env(b, 30_000).await;
        e.set_max(5).await;
        let first = e.gated(&e.a, "left", "first").await;
        e.wait_for(&e.a, first, "started", |r| r["status"] == "running").await;
        let second = e.submit(&e.b, "quick.yml", "right", json!({})).await;
        // Any daemon shows why it waits.
        let r = e.wait_for(&e.a, second, "showed why it waits", |r| r.get("waiting_for").is_some()).await;
        assert_eq!((r["status"].clone(), r["waiting_for"].clone()), (json!("queued"), json!({"run": first})), "{r}");
        let listed = call(&e.b.app, "GET", "/v1/runs?status=queued", &e.root, None).await;
        assert_eq!(listed.body["items"][0]["waiting_for"], json!({"run": first}), "{}", listed.text);
        // Refused instead of queued: 409 naming the holder and the host.
        let r = call(
            &e.b.app,
            "POST",
            "/v1/runs",
            &e.root,
            Some(e.body("quick.yml", "right", json!({"if_busy": "refuse"}))),
        )
        .await;
        assert_eq!(r.status.as_u16(), 409, "{}", r.text);
        let msg = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("run {first}")) && msg.contains("h2"), "{msg}");
        // A run on other hosts backfills while the first holds h1 and h2.
        let disjoint = e.submit(&e.b, "quick.yml", "four", json!({})).await;
        let d = e.wait_for(&e.b, disjoint, "finished", is_final).await;
        assert_eq!(d["status"], "successful", "{d}");
        assert_eq!(e.run(&e.b, second).await["status"], "queued");
        assert_eq!(e.run(&e.a, first).await["status"], "running");
        e.open("first");
        let f = e.wait_for(&e.a, first, "finished", is_final).await;
        assert_eq!(f["status"], "successful", "{f}");
        let s = e.wait_for(&e.b, second, "finished", is_final).await;
        assert_eq!(s["status"], "successful", "{s}");
        assert!(s.get("waiting_for").is_none(), "{s}");
        assert!(ms(&s, "started_at") >= ms(&f, "finished_at"), "never at once: first {f}\nsecond {s}");
        assert!(ms(&d, "finished_at") <= ms(&f, "finished_at"), "the disjoint run ran beside the first");
        // Refuse on free hosts is accepted.
        let free = e.submit(&e.a, "quick.yml", "right", json!({"if_busy": "refuse"})).await;
        assert_eq!(e.wait_for(&e.a, free, "finished", is_final).await["status"], "successful");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priorities_under_the_cap_and_cancel_of_a_queued_run() {
    let e = env(Backend::Postgres, 30_000).await;
    // The default cap: one run of the project at a time.
    let gate = e.gated(&e.a, "gh1", "g").await;
    e.wait_for(&e.a, gate, "started", |r| r["status"] == "running").await;
    let low = e.submit(&e.b, "quick.yml", "gh2", json!({})).await;
    let high = e.submit(&e.a, "quick.yml", "gh3", json!({"priority": 10})).await;
    let canceled = e.submit(&e.b, "quick.yml", "gh4", json!({"priority": 20})).await;
    let r = e.wait_for(&e.b, low, "showed why it waits", |r| r.get("waiting_for").is_some()).await;
    assert_eq!(r["waiting_for"], json!({"concurrency": {"max": 1, "running": [gate]}}), "{r}");
    // Canceled on the other daemon than the one holding it: final at once.
    let c = call(&e.a.app, "POST", &format!("/v1/runs/{canceled}/cancel"), &e.root, None).await;
    assert_eq!(c.status.as_u16(), 202, "{}", c.text);
    assert_eq!(
        (c.body["status"].clone(), c.body["reason"].clone()),
        (json!("canceled"), json!("canceled while queued"))
    );
    e.open("g");
    let l = e.wait_for(&e.b, low, "finished", is_final).await;
    let hi = e.wait_for(&e.a, high, "finished", is_final).await;
    assert_eq!((l["status"].as_str(), hi["status"].as_str()), (Some("successful"), Some("successful")));
    assert!(ms(&hi, "finished_at") <= ms(&l, "started_at"), "higher priority first, one at a time: {hi}\n{l}");
    let c = e.run(&e.b, canceled).await;
    assert_eq!((c["status"].as_str(), c["started_at"].clone()), (Some("canceled"), Value::Null), "{c}");
    let pid = e.h.call("GET", "/v1/projects?name=default", &e.root, None).await.body["items"][0]["id"].clone();
    let r = e.h.call("PATCH", &format!("/v1/projects/{pid}"), &e.root, Some(json!({"max_concurrent_runs": 0}))).await;
    assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["max_concurrent_runs".to_string()]), "{}", r.text);
    let bad = call(
        &e.a.app,
        "POST",
        "/v1/runs",
        &e.root,
        Some(e.body("quick.yml", "gh1", json!({"priority": 1001, "if_busy": "x"}))),
    )
    .await;
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_daemons_claim_expires_and_the_waiting_run_starts() {
    // The claim is a transaction of the database: PostgreSQL and MariaDB.
    for b in [Backend::Postgres, Backend::Mysql] {
        // Short leases: the sweeper runs every second.
        let e = env(b, 2_000).await;
        // A daemon that claimed h1 and then died: its claim is in the database,
        // no process renews its lease.
        let ghost = {
            let mut c = e.h.conn();
            let pid = store::find_project(&mut c, "default").unwrap().unwrap().id;
            let spec = craton::runs::RunSpec {
                playbook: "quick.yml".into(),
                source: craton::runs::Source::Repo { repo: e.repo.url(), git_ref: "main".into() },
                target: Default::default(),
                options: Default::default(),
            };
            let hosts = vec!["h1".to_string()];
            let new = craton::store::runs::NewRun {
                project_id: pid,
                spec: &spec,
                created_by: "ghost",
                bundle: b"",
                bundle_etag: "e",
                hosts: &hosts,
                inventory_revision: None,
                holder: "ghost",
                lease_ttl_ms: 1_500,
            };
            let id = craton::store::runs::create(&mut c, &new).unwrap().id;
            assert_eq!(
                craton::store::queue::dispatch(&mut c, pid, "ghost", &Default::default(), craton::store::now_ms())
                    .unwrap(),
                [id]
            );
            assert!(craton::store::runs::start(&mut c, id, "ghost", None).unwrap());
            id
        };
        let waits = e.submit(&e.b, "quick.yml", "gh1", json!({})).await;
        let r = e.wait_for(&e.b, waits, "showed why it waits", |r| r.get("waiting_for").is_some()).await;
        assert_eq!(r["waiting_for"], json!({"run": ghost}), "{r}");
        let w = e.wait_for(&e.b, waits, "finished", is_final).await;
        assert_eq!(w["status"], "successful", "{w}");
        let g = e.run(&e.a, ghost).await;
        assert_eq!(g["status"], "lost", "{g}");
        // Started after the ghost's claim was swept; the live daemon renewed
        // its own queued run's lease meanwhile (it outlived the 2 s lease).
        assert!(ms(&w, "started_at") >= ms(&g, "finished_at"), "{g}\n{w}");
    }
}
