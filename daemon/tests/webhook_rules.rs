//! Webhook rules end to end (issue 10, "Choreography"), on every backend:
//! signed GitHub deliveries to `POST /v1/webhooks/github` over the real
//! router, a local bare repository over file:// holding both the playbook
//! and the config ref's inventory, and a real ansible-playbook.
//!
//! A matching push syncs the config ref first (the run prints the variable
//! of the pushed commit) and runs exactly the pushed commit; a replayed
//! `X-GitHub-Delivery` does nothing; a push no rule matches is recorded and
//! ignored; a failed sync submits nothing; matchers decide; a pull request
//! gets a check + diff run of its head commit; bad rule bodies name their
//! fields; two daemons over one PostgreSQL agree on a delivery.

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::{ansible_playbook, backends, Backend, Harness, Resp};
use craton::store::tokens::Role;
use craton::store::webhook_rules as wr;
use cratond::api::{app, Limits};
use cratond::state::{AppState, AuthMode};
use cratond::sync::webhook::sign;
use cratond::sync::{SyncHub, SyncSettings};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use upstream::Upstream;

const SECRET: &str = "rules-webhook-secret";
const REPO: &str = "acme/deploy";
const SITE: &str =
    "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: \"marker={{ marker }}\"\n";

struct Env {
    h: Harness,
    hub: Arc<SyncHub>,
    root: String,
    up: Upstream,
    config_ref: i64,
    _cache: tempfile::TempDir,
}

fn hub_for(cache: &std::path::Path) -> Arc<SyncHub> {
    let mut settings = SyncSettings::with_cache(cache.to_path_buf());
    settings.webhook_secret = Some(SECRET.as_bytes().to_vec());
    SyncHub::new(settings)
}

/// The upstream: the playbook, and under `inv/` the inventory the config
/// ref keeps in the project (group `cell` with a local host, `marker`).
async fn env(b: Backend) -> Env {
    let cache = tempfile::tempdir().unwrap();
    let hub = hub_for(cache.path());
    let Harness { app: _, state, url, db, scratch } = Harness::new(b);
    let state = state.with_sync(hub.clone());
    let h = Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch };
    // Root: file:// repositories are root's under the default policy.
    let root = h.token(None, Role::Root);
    let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let up = Upstream::new();
    up.write("site.yml", SITE);
    up.write("inv/hosts.yml", "all:\n  children:\n    cell:\n      hosts:\n        h1:\n");
    up.write("inv/host_vars/h1.yml", &format!("ansible_connection: local\nansible_python_interpreter: {python}\n"));
    up.write("inv/group_vars/cell.yml", "marker: one\n");
    up.commit_push("initial");
    let config_ref = h.create("/v1/config-refs", &root, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;
    let o = hub.syncer.sync(&mut h.conn(), config_ref, false).unwrap();
    assert!(matches!(o, cratond::sync::Outcome::Applied { .. }), "{o:?}");
    Env { h, hub, root, up, config_ref, _cache: cache }
}

async fn post(app: &axum::Router, event: &str, delivery: Option<&str>, body: &[u8]) -> Resp {
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body));
    if let Some(d) = delivery {
        req = req.header("x-github-delivery", d);
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

impl Env {
    fn push(&self, git_ref: &str, sha: &str, pusher: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "ref": git_ref, "before": "0000000000000000000000000000000000000000", "after": sha,
            "repository": {"full_name": REPO, "clone_url": self.up.url()},
            "pusher": {"name": pusher}, "head_commit": {"id": sha, "message": "deploy it"},
        }))
        .unwrap()
    }

    fn rule(&self, name: &str, extra: Value) -> Value {
        let mut r = json!({"name": name, "event": "push", "repository": REPO, "branches": ["main"],
            "template": {"playbook": "site.yml", "repo": self.up.url(), "group": "cell"}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    async fn deliveries(&self, rule: i64) -> Vec<Value> {
        let r = self.h.expect(200, "GET", &format!("/v1/webhook-rules/{rule}/deliveries"), &self.root, None).await;
        r.body["items"].as_array().unwrap().clone()
    }

    /// Waits until rule `rule` has `n` deliveries, none still being handled.
    async fn wait_deliveries(&self, rule: i64, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let d = self.deliveries(rule).await;
            if d.len() >= n && d.iter().all(|x| x["status"] != "pending" && x["status"] != "syncing") {
                return d;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "rule {rule}: wanted {n} deliveries: {d:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_final(&self, run: i64) -> Value {
        let start = Instant::now();
        loop {
            let r = self.h.expect(200, "GET", &format!("/v1/runs/{run}"), &self.root, None).await.body;
            if !matches!(r["status"].as_str(), Some("queued") | Some("running")) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(90), "run {run} never ended: {r}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn runs(&self) -> Vec<Value> {
        self.h.expect(200, "GET", "/v1/runs?limit=100", &self.root, None).await.body["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn stdout(&self, run: i64) -> String {
        self.h.raw("GET", &format!("/v1/runs/{run}/stdout"), Some(&self.root), Vec::new()).await.text
    }

    fn delivery(&self, guid: &str) -> wr::Delivery {
        wr::delivery_by_guid(&mut self.h.conn(), guid)
            .unwrap()
            .unwrap_or_else(|| panic!("delivery {guid} not recorded"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_push_syncs_then_runs_the_pushed_commit_once() {
    for b in backends() {
        let e = env(b).await;
        let rule = e.h.create("/v1/webhook-rules", &e.root, e.rule("deploy-main", json!({}))).await;

        // A new commit changes the config ref's variable: the run must see it.
        e.up.write("inv/group_vars/cell.yml", "marker: two\n");
        let c2 = e.up.commit_push("two");
        let body = e.push("refs/heads/main", &c2, "alice");
        let r = post(&e.h.app, "push", Some("d-1"), &body).await;
        assert_eq!(r.status, 202, "{b:?}: {}", r.text);
        assert_eq!((r.body["rules"].clone(), r.body["refs"].clone()), (json!([rule]), json!([e.config_ref])));
        let d = e.wait_deliveries(rule, 1).await;
        assert_eq!(d[0]["status"], "submitted", "{b:?}: {d:?}");
        assert_eq!(
            (d[0]["sha"].as_str(), d[0]["delivery"].as_str(), d[0]["simulation"].as_bool()),
            (Some(&*c2), Some("d-1"), Some(false))
        );
        let run = d[0]["run_id"].as_i64().unwrap();
        let ref_row = craton::store::config_refs::get(&mut e.h.conn(), None, e.config_ref).unwrap().unwrap();
        assert_eq!(ref_row.last_commit.as_deref(), Some(&*c2), "{b:?}: the ref was synced to the push");
        let r = e.wait_final(run).await;
        assert_eq!(r["status"], "successful", "{b:?}: {r}");
        assert_eq!(r["source"]["commit"], c2, "{b:?}: the run ran the pushed commit: {r}");
        assert_eq!(r["source"]["ref"], c2, "{b:?}: {r}");
        let by = r["created_by"].as_str().unwrap();
        assert!(by.starts_with(&format!("webhook-rule:{rule} token ")) && by.ends_with("(root)"), "{by}");
        let out = e.stdout(run).await;
        assert!(out.contains("marker=two"), "{b:?}: the sync came before the run: {out}");
        let rec = e.delivery("d-1");
        let outcome: Value = serde_json::from_str(&rec.outcome).unwrap();
        assert_eq!(outcome["status"], "matched", "{outcome}");
        assert_eq!(outcome["rules"][0]["run_id"], run, "{outcome}");
        assert_eq!(
            (rec.event.as_str(), rec.repository.as_deref(), rec.sha.as_deref()),
            ("push", Some(REPO), Some(&*c2))
        );
        assert_eq!(rec.git_ref.as_deref(), Some("refs/heads/main"));

        // The same delivery again: nothing new.
        let r = post(&e.h.app, "push", Some("d-1"), &body).await;
        assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("duplicate")), "{}", r.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(e.deliveries(rule).await.len(), 1);
        assert_eq!(e.runs().await.len(), 1, "{b:?}: a replay submitted a run");

        // Another branch: recorded, no rule matched, nothing run.
        let feature = e.push("refs/heads/feature", &c2, "alice");
        let r = post(&e.h.app, "push", Some("d-2"), &feature).await;
        assert_eq!((r.status.as_u16(), r.body["rules"].clone()), (202, json!([])), "{}", r.text);
        let outcome: Value = serde_json::from_str(&e.delivery("d-2").outcome).unwrap();
        assert_eq!(outcome["status"], "no rule matched", "{outcome}");
        // A disabled rule does not fire.
        e.h.expect(200, "PATCH", &format!("/v1/webhook-rules/{rule}"), &e.root, Some(json!({"enabled": false}))).await;
        let r = post(&e.h.app, "push", Some("d-3"), &body).await;
        assert_eq!((r.status.as_u16(), r.body["rules"].clone()), (202, json!([])), "{}", r.text);
        assert_eq!(e.runs().await.len(), 1);
        assert_eq!(e.deliveries(rule).await.len(), 1);

        // Without X-GitHub-Delivery: 400 naming it, nothing recorded.
        let r = post(&e.h.app, "push", None, &body).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("X-GitHub-Delivery"), "{}", r.text);
        assert_eq!(wr::deliveries(&mut e.h.conn(), None, 100).unwrap().len(), 3);
        let _ = &e.hub;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_submits_nothing_and_matchers_decide() {
    for b in backends() {
        let e = env(b).await;
        let rule =
            e.h.create(
                "/v1/webhook-rules",
                &e.root,
                e.rule(
                    "alice-only",
                    json!({"matchers": [
                    {"field": "pusher.name", "op": "equals", "value": "alice"},
                    {"field": "head_commit.message", "op": "contains", "value": "deploy"},
                    {"field": "ref", "op": "glob", "value": "refs/heads/ma*"}]}),
                ),
            )
            .await;
        let head = e.up.head();
        let r = post(&e.h.app, "push", Some("m-1"), &e.push("refs/heads/main", &head, "bob")).await;
        assert_eq!((r.status.as_u16(), r.body["rules"].clone()), (202, json!([])), "{b:?}: {}", r.text);

        // A commit whose inventory does not parse: the sync fails, no run.
        e.up.write("inv/group_vars/cell.yml", "marker: [unclosed\n");
        let bad = e.up.commit_push("bad");
        let r = post(&e.h.app, "push", Some("m-2"), &e.push("refs/heads/main", &bad, "alice")).await;
        assert_eq!(r.body["rules"], json!([rule]), "{b:?}: {}", r.text);
        let d = e.wait_deliveries(rule, 1).await;
        assert_eq!(d[0]["status"], "sync_failed", "{b:?}: {d:?}");
        assert!(d[0]["error"].as_str().unwrap().contains("cell.yml"), "{d:?}");
        assert_eq!(d[0]["run_id"], Value::Null);
        assert!(e.runs().await.is_empty(), "{b:?}: a failed sync submitted a run");

        // `sync: false`: the run goes ahead without syncing (the refused
        // run of a bad template is the creator's problem, not the sync's).
        e.h.expect(200, "PATCH", &format!("/v1/webhook-rules/{rule}"), &e.root, Some(json!({"sync": false}))).await;
        let r = post(&e.h.app, "push", Some("m-3"), &e.push("refs/heads/main", &bad, "alice")).await;
        assert_eq!(r.body["rules"], json!([rule]), "{}", r.text);
        let d = e.wait_deliveries(rule, 2).await;
        assert_eq!(d[0]["status"], "submitted", "{b:?}: {d:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_a_check_and_diff_run_of_its_head() {
    for b in backends() {
        let e = env(b).await;
        let rule =
            e.h.create(
                "/v1/webhook-rules",
                &e.root,
                json!({"name": "pr-check", "event": "pull_request", "repository": REPO, "branches": ["main"],
                    "template": {"playbook": "site.yml", "repo": e.up.url(), "group": "cell"}}),
            )
            .await;
        e.up.git(&["checkout", "-q", "-b", "feature"]);
        e.up.write("site.yml", &SITE.replace("marker=", "pr marker="));
        let head = e.up.commit_push("feature work");
        let pr = |action: &str, base: &str| {
            serde_json::to_vec(&json!({"action": action, "number": 12,
                "repository": {"full_name": REPO, "clone_url": e.up.url()},
                "pull_request": {"number": 12, "base": {"ref": base}, "head": {"sha": head, "ref": "feature"}}}))
            .unwrap()
        };
        let r = post(&e.h.app, "pull_request", Some("p-0"), &pr("closed", "main")).await;
        assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (202, Some("ignored")), "{}", r.text);
        let r = post(&e.h.app, "pull_request", Some("p-1"), &pr("opened", "develop")).await;
        assert_eq!(r.body["rules"], json!([]), "another base branch: {}", r.text);
        let r = post(&e.h.app, "pull_request", Some("p-2"), &pr("opened", "main")).await;
        assert_eq!((r.status.as_u16(), r.body["rules"].clone()), (202, json!([rule])), "{b:?}: {}", r.text);
        let d = e.wait_deliveries(rule, 1).await;
        assert_eq!((d[0]["status"].as_str(), d[0]["simulation"].as_bool()), (Some("submitted"), Some(true)), "{d:?}");
        let run = d[0]["run_id"].as_i64().unwrap();
        let r = e.wait_final(run).await;
        assert_eq!(r["status"], "successful", "{b:?}: {r}");
        assert_eq!(r["source"]["commit"], head, "{b:?}: the head commit: {r}");
        assert_eq!((r["options"]["check"].as_bool(), r["options"]["diff"].as_bool()), (Some(true), Some(true)), "{r}");
        let by = r["created_by"].as_str().unwrap();
        assert!(by.starts_with(&format!("webhook-rule:{rule} simulation pr#12 ")), "{by}");
        assert!(e.stdout(run).await.contains("pr marker=one"), "the PR's playbook ran");
    }
}

#[tokio::test]
async fn bad_rule_bodies_name_their_fields() {
    for b in backends() {
        let e = env(b).await;
        let t = json!({"playbook": "site.yml", "repo": e.up.url(), "group": "cell"});
        for (body, fields) in [
            (json!({}), vec!["name", "event", "repository", "template"]),
            (
                json!({"name": "x", "event": "issues", "repository": REPO, "branches": ["*"], "template": t}),
                vec!["event"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": "not a repo", "branches": ["*"], "template": t}),
                vec!["repository"],
            ),
            (json!({"name": "x", "event": "push", "repository": REPO, "template": t}), vec!["branches"]),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": [1], "template": t}),
                vec!["branches[0]"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"], "template": t,
                "matchers": [{"field": "a", "op": "regex", "value": "x"}]}),
                vec!["matchers[0].op"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"], "template": t, "sync": "yes"}),
                vec!["sync"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"],
                "template": {"playbook": "site.yml", "repo": e.up.url(), "ref": "main"}}),
                vec!["template.ref"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"],
                "template": {"playbook": "site.yml", "config_ref": e.config_ref}}),
                vec!["template.repo"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"],
                "template": {"playbook": "../site.yml", "repo": e.up.url()}}),
                vec!["template.playbook"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"],
                "template": {"playbook": "site.yml", "repo": "https://user:pw@example.com/r.git"}}),
                vec!["template.repo"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"],
                "template": {"playbook": "site.yml", "repo": e.up.url(), "group": "nope"}}),
                vec!["template.group"],
            ),
            (
                json!({"name": "x", "event": "push", "repository": REPO, "branches": ["*"], "template": t, "extra": 1}),
                vec!["extra"],
            ),
        ] {
            let r = e.h.call("POST", "/v1/webhook-rules", &e.root, Some(body.clone())).await;
            assert_eq!(r.status, 400, "{b:?} {body}: {}", r.text);
            assert_eq!(r.detail_fields(), fields, "{b:?} {body}: {}", r.text);
        }
        // A reader cannot write; an editor's file:// repository is refused
        // by the repository policy at write time (403), as at submit.
        let reader = e.h.token(Some("default"), Role::Reader);
        let ok = e.rule("ok", json!({}));
        e.h.expect(403, "POST", "/v1/webhook-rules", &reader, Some(ok.clone())).await;
        let editor = e.h.token(Some("default"), Role::Editor);
        e.h.expect(403, "POST", "/v1/webhook-rules", &editor, Some(ok.clone())).await;
        let id = e.h.create("/v1/webhook-rules", &e.root, ok.clone()).await;
        e.h.expect(409, "POST", "/v1/webhook-rules", &e.root, Some(ok)).await;
        let r = e.h.expect(200, "GET", &format!("/v1/webhook-rules/{id}"), &reader, None).await;
        assert_eq!((r.body["sync"].as_bool(), r.body["enabled"].as_bool()), (Some(true), Some(true)), "{}", r.text);
        let r =
            e.h.call(
                "PATCH",
                &format!("/v1/webhook-rules/{id}"),
                &e.root,
                Some(json!({"event": "pull_request", "tags": ["v*"]})),
            )
            .await;
        assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["tags".to_string()]), "{}", r.text);
        let r = e.h.expect(200, "PATCH", &format!("/v1/webhook-rules/{id}"), &e.root,
            Some(json!({"branches": ["release/*"], "matchers": [{"field": "pusher.name", "op": "glob", "value": "a*"}]}))).await;
        assert_eq!(
            (r.body["event"].as_str(), r.body["branches"].clone()),
            (Some("push"), json!(["release/*"])),
            "{}",
            r.text
        );
        e.h.expect(204, "DELETE", &format!("/v1/webhook-rules/{id}"), &e.root, None).await;
        e.h.expect(404, "GET", &format!("/v1/webhook-rules/{id}"), &e.root, None).await;
    }
}

/// A second daemon over the harness's database, with its own sync hub.
fn peer(h: &Harness, scratch: &std::path::Path) -> axum::Router {
    let pool = craton::store::pool::build(&h.url, 4).unwrap();
    let sync = hub_for(&scratch.join("git"));
    let settings =
        cratond::runner::RunSettings::with(scratch.join("runs"), ansible_playbook(), sync.settings().holder.clone());
    let runs = cratond::runner::RunHub::new(settings, sync.clone()).unwrap();
    let keys = craton::secrets::FileKeyProvider::open_or_create(&scratch.join("master.key")).unwrap();
    let state: AppState =
        AppState::new(pool, AuthMode::Tokens).with_runs(runs).with_key_provider(Arc::new(keys)).with_sync(sync);
    app(state, Limits::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_handle_a_delivery_once() {
    let mut bs = vec![Backend::Postgres];
    if common::heavy() {
        bs.push(Backend::Mysql);
    }
    for b in bs {
        let e = env(b).await;
        let scratch = tempfile::tempdir().unwrap();
        let other = peer(&e.h, scratch.path());
        let rule = e.h.create("/v1/webhook-rules", &e.root, e.rule("once", json!({"sync": false}))).await;
        let head = e.up.head();
        for k in 0..5 {
            let guid = format!("race-{k}");
            let body = e.push("refs/heads/main", &head, "alice");
            let (a, c) =
                tokio::join!(post(&e.h.app, "push", Some(&guid), &body), post(&other, "push", Some(&guid), &body));
            let mut codes = [a.status.as_u16(), c.status.as_u16()];
            codes.sort_unstable();
            assert_eq!(codes, [200, 202], "{b:?} {guid}: {} / {}", a.text, c.text);
        }
        let d = e.wait_deliveries(rule, 5).await;
        assert_eq!(d.len(), 5, "{d:?}");
        let mut runs: Vec<i64> = d.iter().map(|x| x["run_id"].as_i64().unwrap()).collect();
        runs.sort_unstable();
        runs.dedup();
        assert_eq!(runs.len(), 5, "{d:?}");
        assert_eq!(e.runs().await.len(), 5, "{b:?}: exactly one run per delivery");
    }
}
