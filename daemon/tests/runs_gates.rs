//! The gates before the queue, with real ansible-playbook, two runners on
//! one database, on every backend: a run submitted with `"approval":
//! "required"` waits (holding and reserving no host) until an admin other
//! than its submitter approves it through either daemon, or ends
//! `canceled` when denied or when its `approval_timeout_s` passes on the
//! daemon's clock; a run with `after` waits for those runs, and is
//! `skipped` when one of them did not succeed (`require: success`) or
//! runs anyway (`require: finished`).

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

mod queue_env;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{backends, Harness};
use craton::clock::ManualClock;
use craton::store::tokens::Role;
use queue_env::{call, env, is_final, ms};
use serde_json::{json, Value};

const FAILS: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: no\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_another_admins_and_a_denial_cancels() {
    for b in backends() {
        let e = env(b, 30_000).await;
        // Root may use the test's file:// repository; it submits, and a
        // project admin approves.
        let (submitter_id, submitter) = e.h.token_with_id(None, Role::Root);
        let other = e.h.token(Some("default"), Role::Admin);
        let editor = e.h.token(Some("default"), Role::Editor);
        let body = e.body("quick.yml", "left", json!({"approval": "required"}));
        let r = call(&e.a.app, "POST", "/v1/runs", &submitter, Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), 201, "{b:?}: {}", r.text);
        let gated = r.body["id"].as_i64().unwrap();
        let w = e.wait_for(&e.b, gated, "showed why it waits", |r| r.get("waiting_for").is_some()).await;
        assert_eq!(
            w["waiting_for"],
            json!({"approval": {"requested_by": format!("token {submitter_id}"), "expires_at": null}}),
            "{b:?}: {w}"
        );
        // It holds and reserves nothing: a later run on the same hosts
        // passes it (the project's cap is one run at a time).
        let later = e.submit(&e.b, "quick.yml", "left", json!({})).await;
        assert_eq!(e.wait_for(&e.b, later, "finished", is_final).await["status"], "successful", "{b:?}");
        assert_eq!(e.run(&e.a, gated).await["status"], "queued", "{b:?}");
        // Not by its submitter, whatever the role; not by an editor.
        let own = format!("/v1/runs/{gated}/approve");
        let r = call(&e.a.app, "POST", &own, &submitter, None).await;
        assert_eq!(r.status.as_u16(), 403, "{b:?}: {}", r.text);
        assert!(r.text.contains("another admin"), "{b:?}: {}", r.text);
        let r = call(&e.a.app, "POST", &own, &editor, None).await;
        assert_eq!(r.status.as_u16(), 403, "{b:?}: {}", r.text);
        assert_eq!(e.run(&e.a, gated).await["status"], "queued", "{b:?}");
        let r = call(&e.b.app, "POST", &own, &other, Some(json!({"comment": 5}))).await;
        assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["comment".to_string()]), "{b:?}: {}", r.text);
        // The one-field bodies of approve and cancel: another field, or a
        // bad value, is a 400 naming it; nothing changes.
        let cancel = format!("/v1/runs/{gated}/cancel");
        for (uri, body, named) in [
            (own.as_str(), json!({"note": "x"}), "note"),
            (cancel.as_str(), json!({"mode": "soft"}), "mode"),
            (cancel.as_str(), json!({"mode": "graceful", "why": 1}), "why"),
        ] {
            let r = call(&e.b.app, "POST", uri, &other, Some(body)).await;
            assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec![named.to_string()]), "{b:?}: {}", r.text);
        }
        let r = call(&e.b.app, "POST", &cancel, &other, Some(json!(["graceful"]))).await;
        assert_eq!(r.status.as_u16(), 400, "{b:?}: {}", r.text);
        assert_eq!(e.run(&e.a, gated).await["status"], "queued", "{b:?}");
        // Approved through the daemon that does not hold it.
        let r = call(&e.b.app, "POST", &own, &other, Some(json!({"comment": "looks fine"}))).await;
        assert_eq!(r.status.as_u16(), 200, "{b:?}: {}", r.text);
        assert_eq!(r.body["approval"]["decision"], "approved", "{b:?}: {}", r.text);
        assert_eq!(r.body["approval"]["comment"], "looks fine", "{b:?}: {}", r.text);
        assert!(r.body.get("waiting_for").is_none(), "{b:?}: {}", r.text);
        let done = e.wait_for(&e.a, gated, "finished", is_final).await;
        assert_eq!(done["status"], "successful", "{b:?}: {done}");
        let r = call(&e.b.app, "POST", &own, &other, None).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        assert!(r.text.contains("already decided: approved"), "{b:?}: {}", r.text);
        // A denial ends it at once, with the comment as the reason.
        let r = call(&e.a.app, "POST", "/v1/runs", &submitter, Some(body.clone())).await;
        let denied = r.body["id"].as_i64().unwrap();
        let r =
            call(&e.b.app, "POST", &format!("/v1/runs/{denied}/deny"), &e.root, Some(json!({"comment": "not today"})))
                .await;
        assert_eq!(r.status.as_u16(), 200, "{b:?}: {}", r.text);
        assert_eq!(r.body["status"], "canceled", "{b:?}: {}", r.text);
        let reason = r.body["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("denied by token ") && reason.ends_with(": not today"), "{b:?}: {reason}");
        assert_eq!(r.body["approval"]["decision"], "denied", "{b:?}");
        // The holding daemon lets it go and it never starts.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let d = e.run(&e.a, denied).await;
        assert_eq!((d["status"].as_str(), d["started_at"].clone()), (Some("canceled"), Value::Null), "{b:?}: {d}");
        // Ungated runs have nothing to approve; other projects see no run.
        let r = call(&e.a.app, "POST", &format!("/v1/runs/{later}/approve"), &other, None).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        let r = call(&e.a.app, "POST", "/v1/runs/999999/approve", &other, None).await;
        assert_eq!(r.status.as_u16(), 404, "{b:?}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_approval_times_out_on_the_daemon_clock() {
    for b in backends() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let h = Harness::with_clock(b, clock.clone());
        let root = h.token(None, Role::Root);
        let host = h.create("/v1/hosts", &root, json!({"name": "h1"})).await;
        let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
        let vars = json!({"ansible_connection": "local", "ansible_python_interpreter": python});
        h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &root, Some(vars)).await;
        let repo = upstream::Upstream::new();
        repo.write("quick.yml", queue_env::QUICK);
        repo.commit_push("playbooks");
        let body = json!({"playbook": "quick.yml", "repo": repo.url(), "ref": "main",
            "approval": "required", "approval_timeout_s": 60});
        let r = h.expect(201, "POST", "/v1/runs", &root, Some(body)).await;
        let id = r.body["id"].as_i64().unwrap();
        let wait = |what: &'static str, done: fn(&Value) -> bool| {
            let (h, root) = (&h, &root);
            async move {
                let start = Instant::now();
                loop {
                    let r = h.get(&format!("/v1/runs/{id}"), root).await.body;
                    if done(&r) {
                        return r;
                    }
                    assert!(start.elapsed() < Duration::from_secs(30), "{b:?}: run {id} never {what}: {r}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let w = wait("waited", |r| r.get("waiting_for").is_some()).await;
        let expires = t0.timestamp_millis() + 60_000;
        assert_eq!(w["waiting_for"]["approval"]["expires_at"], expires, "{b:?}: {w}");
        // Real time passing changes nothing; the daemon's clock does.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(h.get(&format!("/v1/runs/{id}"), &root).await.body["status"], "queued", "{b:?}");
        clock.advance(chrono::Duration::seconds(61));
        let r = wait("timed out", is_final).await;
        assert_eq!(
            (r["status"].as_str(), r["reason"].as_str()),
            (Some("canceled"), Some("approval timed out")),
            "{b:?}: {r}"
        );
        assert_eq!(r["started_at"], Value::Null, "{b:?}: {r}");
        let other = h.token(Some("default"), Role::Admin);
        let r = h.call("POST", &format!("/v1/runs/{id}/approve"), &other, None).await;
        assert_eq!(r.status.as_u16(), 409, "{b:?}: {}", r.text);
        assert!(r.text.contains("expired"), "{b:?}: {}", r.text);
        // Retention takes the approval record with the run.
        assert_eq!(craton::store::runs::prune(&mut h.conn(), i64::MAX).unwrap(), 1, "{b:?}");
        assert_eq!(craton::store::gates::approval(&mut h.conn(), id).unwrap(), None, "{b:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_waits_then_runs_or_skips() {
    for b in backends() {
        let e = env(b, 30_000).await;
        e.repo.write("fails.yml", FAILS);
        e.repo.commit_push("a failing playbook");
        e.set_max(5).await;
        let first = e.gated(&e.a, "gh1", "first").await;
        e.wait_for(&e.a, first, "started", |r| r["status"] == "running").await;
        let next = e.submit(&e.b, "quick.yml", "gh2", json!({"after": [first]})).await;
        let w = e.wait_for(&e.a, next, "showed why it waits", |r| r.get("waiting_for").is_some()).await;
        assert_eq!(w["waiting_for"], json!({"after": {"runs": [first], "require": "success"}}), "{b:?}: {w}");
        let failed = e.submit(&e.a, "fails.yml", "gh3", json!({})).await;
        assert_eq!(e.wait_for(&e.a, failed, "finished", is_final).await["status"], "failed", "{b:?}");
        let skipped = e.submit(&e.b, "quick.yml", "gh4", json!({"after": [first, failed]})).await;
        let anyway = e.submit(&e.a, "quick.yml", "gh4", json!({"after": [failed], "require": "finished"})).await;
        // A failed requirement decides at once, while `first` still runs.
        let s = e.wait_for(&e.a, skipped, "ended", is_final).await;
        assert_eq!(
            (s["status"].as_str(), s["reason"].clone(), s["started_at"].clone()),
            (Some("skipped"), json!(format!("run {failed} ended failed (require: success)")), Value::Null),
            "{b:?}: {s}"
        );
        assert_eq!(e.wait_for(&e.b, anyway, "finished", is_final).await["status"], "successful", "{b:?}");
        assert_eq!(e.run(&e.b, next).await["status"], "queued", "{b:?}");
        e.open("first");
        let f = e.wait_for(&e.a, first, "finished", is_final).await;
        let n = e.wait_for(&e.b, next, "finished", is_final).await;
        assert_eq!(n["status"], "successful", "{b:?}: {n}");
        assert!(ms(&n, "started_at") >= ms(&f, "finished_at"), "{b:?}: after means after: {f}\n{n}");
        // Only existing runs of the project, named once.
        let r = call(
            &e.a.app,
            "POST",
            "/v1/runs",
            &e.root,
            Some(e.body("quick.yml", "gh1", json!({"after": [first, 999999]}))),
        )
        .await;
        assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["after[1]".to_string()]), "{b:?}: {}", r.text);
        let p = call(&e.a.app, "POST", "/v1/projects", &e.root, Some(json!({"name": "other"}))).await;
        assert_eq!(p.status.as_u16(), 201, "{b:?}: {}", p.text);
        let elsewhere = json!({"playbook": "quick.yml", "repo": e.repo.url(), "ref": "main", "after": [first]});
        let r = call(&e.a.app, "POST", "/v1/runs?project=other", &e.root, Some(elsewhere)).await;
        assert_eq!(r.status.as_u16(), 400, "{b:?}: {}", r.text);
        assert!(r.text.contains(&format!("no run {first} in this project")), "{b:?}: {}", r.text);
    }
}
