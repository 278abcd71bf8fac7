//! The run queue's claims in the database, on every backend: overlapping
//! claims are refused and disjoint ones allowed, the project's cap holds,
//! priorities and FIFO order, a queued run is never overtaken by a later
//! one on its hosts, finishing or losing a run frees its hosts (the lost
//! sweep of a dead holder in the same transaction), and a queued run is
//! canceled straight in the database. Two holders on one database stand
//! for two `cratond` processes.

mod common;

use std::collections::HashMap;

use common::{backends, TestDb};
use craton::runs::{Options, RunSpec, RunStatus, Source, Target};
use craton::store::queue::{self, holders};
use craton::store::runs::{self as store_runs, Finish, NewRun};
use craton::store::{self, DbConn, DbUrl};
use serde_json::{json, Value};

const TTL: i64 = 60_000;

fn conn(db: &TestDb) -> DbConn {
    let mut c = store::connect(&DbUrl::parse(&db.url).unwrap()).unwrap();
    store::migrate(&mut c).unwrap();
    c
}

fn submit(c: &mut DbConn, pid: i64, holder: &str, hosts: &[&str], priority: i32) -> i64 {
    let spec = RunSpec {
        playbook: "site.yml".into(),
        source: Source::Repo { repo: "https://example.invalid/r.git".into(), git_ref: "main".into() },
        target: Target::default(),
        options: Options { priority, ..Options::default() },
    };
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let new = NewRun {
        project_id: pid,
        spec: &spec,
        created_by: "test",
        bundle: b"",
        bundle_etag: "e",
        hosts: &hosts,
        inventory_revision: None,
        holder,
        lease_ttl_ms: TTL,
    };
    store_runs::create(c, &new).unwrap().id
}

fn dispatch(c: &mut DbConn, pid: i64, holder: &str) -> Vec<i64> {
    queue::dispatch(c, pid, holder, &HashMap::new(), craton::store::now_ms()).unwrap()
}

fn waiting(c: &mut DbConn, id: i64) -> Option<Value> {
    let r = store_runs::get(c, None, id).unwrap().unwrap();
    r.waiting_for.map(|w| serde_json::from_str(&w).unwrap())
}

fn finish(c: &mut DbConn, id: i64, holder: &str) {
    let f = Finish { status: RunStatus::Successful, rc: Some(0), reason: None, events_lost: false };
    assert!(store_runs::start(c, id, holder, Some("abc")).unwrap(), "run {id} starts after its claim");
    assert!(store_runs::finish(c, id, holder, &f).unwrap());
}

fn project(c: &mut DbConn, name: &str) -> i64 {
    store::ensure_project(c, name).unwrap().id
}

#[test]
fn overlapping_claims_wait_and_disjoint_ones_run_side_by_side() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = conn(&db);
        let pid = project(&mut c, "p");
        queue::set_max_concurrent(&mut c, pid, 10).unwrap();
        let first = submit(&mut c, pid, "daemon-a", &["h1", "h2"], 0);
        let second = submit(&mut c, pid, "daemon-b", &["h2", "h3"], 0);
        let third = submit(&mut c, pid, "daemon-b", &["h4"], 0);
        assert_eq!(dispatch(&mut c, pid, "daemon-a"), [first], "{b:?}");
        // Daemon b: its overlapping run waits for the first, the disjoint one runs.
        assert_eq!(dispatch(&mut c, pid, "daemon-b"), [third], "{b:?}");
        assert_eq!(waiting(&mut c, second), Some(json!({"run": first})), "{b:?}");
        assert_eq!(holders(&mut c, pid, &["h2".into(), "h3".into()]).unwrap(), [(first, "h2".to_string())], "{b:?}");
        // A run that has not claimed cannot start.
        assert!(!store_runs::start(&mut c, second, "daemon-b", None).unwrap(), "{b:?}");
        // The first's end frees h2 in its own transaction.
        finish(&mut c, first, "daemon-a");
        assert!(holders(&mut c, pid, &["h1".into(), "h2".into()]).unwrap().is_empty(), "{b:?}");
        assert_eq!(dispatch(&mut c, pid, "daemon-b"), [second], "{b:?}");
        assert_eq!(waiting(&mut c, second), None, "{b:?}");
        // Another project's hosts of the same names are not locked.
        let other = project(&mut c, "q");
        let o = submit(&mut c, other, "daemon-a", &["h2"], 0);
        assert_eq!(dispatch(&mut c, other, "daemon-a"), [o], "{b:?}");
    }
}

#[test]
fn the_cap_priorities_and_no_overtaking() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = conn(&db);
        let pid = project(&mut c, "p");
        // Default: one at a time.
        let low = submit(&mut c, pid, "a", &["h1"], 0);
        let high = submit(&mut c, pid, "a", &["h2"], 5);
        let high2 = submit(&mut c, pid, "a", &["h3"], 5);
        assert_eq!(dispatch(&mut c, pid, "a"), [high], "{b:?}: the highest priority first");
        assert_eq!(waiting(&mut c, high2), Some(json!({"concurrency": {"max": 1, "running": [high]}})), "{b:?}");
        assert_eq!(waiting(&mut c, low), Some(json!({"concurrency": {"max": 1, "running": [high]}})), "{b:?}");
        assert!(dispatch(&mut c, pid, "a").is_empty(), "{b:?}: the cap holds");
        finish(&mut c, high, "a");
        assert_eq!(dispatch(&mut c, pid, "a"), [high2], "{b:?}: FIFO within a priority");
        finish(&mut c, high2, "a");
        assert_eq!(dispatch(&mut c, pid, "a"), [low], "{b:?}");
        finish(&mut c, low, "a");

        // A raised cap; a waiting run keeps its hosts from later runs.
        queue::set_max_concurrent(&mut c, pid, 3).unwrap();
        assert_eq!(queue::max_concurrent(&mut c, pid).unwrap(), 3);
        let holder = submit(&mut c, pid, "a", &["x"], 0);
        assert_eq!(dispatch(&mut c, pid, "a"), [holder], "{b:?}");
        let blocked = submit(&mut c, pid, "a", &["x", "y"], 0);
        let later = submit(&mut c, pid, "a", &["y"], 9);
        let disjoint = submit(&mut c, pid, "a", &["z"], 0);
        // `later` (priority 9) is planned before `blocked` and y is free:
        // it goes first; the disjoint one backfills past `blocked`...
        let got = dispatch(&mut c, pid, "a");
        assert_eq!(got, [later, disjoint], "{b:?}: higher priority first, disjoint backfills");
        assert_eq!(waiting(&mut c, blocked), Some(json!({"run": holder})), "{b:?}");
        // ...while an equal-priority newcomer on `blocked`'s hosts waits behind it.
        let newcomer = submit(&mut c, pid, "a", &["y"], 0);
        finish(&mut c, later, "a");
        assert!(dispatch(&mut c, pid, "a").is_empty(), "{b:?}");
        assert_eq!(waiting(&mut c, newcomer), Some(json!({"run": blocked})), "{b:?}: not overtaken");
        finish(&mut c, holder, "a");
        assert_eq!(dispatch(&mut c, pid, "a"), [blocked], "{b:?}");
    }
}

#[test]
fn an_expired_lease_frees_the_hosts_and_a_queued_run_cancels_at_once() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = conn(&db);
        let pid = project(&mut c, "p");
        let dead = submit(&mut c, pid, "dead", &["h1"], 0);
        assert_eq!(dispatch(&mut c, pid, "dead"), [dead]);
        assert!(store_runs::start(&mut c, dead, "dead", None).unwrap());
        let waits = submit(&mut c, pid, "alive", &["h1"], 0);
        let canceled = submit(&mut c, pid, "alive", &["h9"], 0);
        assert!(dispatch(&mut c, pid, "alive").is_empty(), "{b:?}");
        // Canceled while queued: final at once, no process involved.
        let r = store_runs::request_cancel(&mut c, pid, canceled, "graceful").unwrap().unwrap();
        assert_eq!((r.status.as_str(), r.reason.as_deref()), ("canceled", Some("canceled while queued")), "{b:?}");
        // Only the live holder renews; the dead one's lease runs out.
        assert_eq!(queue::renew_queued(&mut c, &[waits, canceled], "alive", TTL).unwrap(), [waits].into());
        let swept = store_runs::sweep_lost(&mut c, store::now_ms() + TTL / 2).unwrap();
        assert!(swept.is_empty(), "{b:?}: nothing expired yet");
        // Later: the dead daemon's lease has expired, the live one renews.
        queue::renew_queued(&mut c, &[waits], "alive", 2 * TTL).unwrap();
        let swept = store_runs::sweep_lost(&mut c, store::now_ms() + TTL + 1000).unwrap();
        assert_eq!(swept, [dead], "{b:?}");
        assert!(holders(&mut c, pid, &["h1".into()]).unwrap().is_empty(), "{b:?}: released with the lease");
        assert_eq!(dispatch(&mut c, pid, "alive"), [waits], "{b:?}");
    }
}
