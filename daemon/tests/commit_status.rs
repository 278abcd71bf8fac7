//! GitHub commit statuses of webhook-rule runs (issue 10, "Choreography"),
//! on every backend: signed pushes to `POST /v1/webhooks/github` over the
//! real router, a local bare repository over file:// (playbooks and the
//! config ref's inventory), a real ansible-playbook, and a loopback
//! "GitHub" (axum on 127.0.0.1:0) that checks method, path, bearer token
//! and body of every status it gets.
//!
//! A `commit_status` rule's run shows `pending` then `success` on the
//! pushed commit; the first attempt is answered 500 and the retry comes
//! when the test moves the manual clock (the final status waits behind
//! it, so GitHub never shows `pending` over a result); a failing playbook
//! is a `failure` under the rule's own context; a rule without
//! `commit_status` sends nothing; a daemon without a token sends nothing
//! and the match row says so; a run already final when its `pending`
//! row is written still gets its result, once; the rule fields are checked.

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{TimeZone, Utc};
use common::{backends, Backend, Harness, Resp};
use craton::clock::ManualClock;
use craton::store::commit_statuses as store_cs;
use craton::store::tokens::Role;
use cratond::api::{app, Limits};
use cratond::hooks::commit_status::{GitHubSettings, NO_TOKEN};
use cratond::hooks::{HookHub, HookSettings};
use cratond::sync::webhook::sign;
use cratond::sync::{SyncHub, SyncSettings};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use upstream::Upstream;

const SECRET: &str = "status-webhook-secret";
const TOKEN: &str = "ghp_test-token-0123456789";
const REPO: &str = "acme/deploy";
const PUBLIC: &str = "https://craton.example/";
const BACKOFF_MS: i64 = 60_000;
const SITE: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: ok\n";
const FAIL: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - fail:\n        msg: broken\n";

/// One status the fake GitHub got, and what it answered.
#[derive(Debug, Clone)]
struct Got {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
    answered: u16,
}

/// A loopback GitHub: 401 without `Bearer TOKEN`, 500 to the first
/// `fail_first` statuses, else 201 (as GitHub answers); records all.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    base: String,
}

async fn receiver(fail_first: usize) -> Receiver {
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let fail = Arc::new(AtomicUsize::new(fail_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // An Enterprise-style base with a path: it must be kept.
    let base = format!("http://{}/api/v3", listener.local_addr().unwrap());
    let (g, f) = (got.clone(), fail.clone());
    let app = axum::Router::new().fallback(
        move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                let answered = if auth != format!("Bearer {TOKEN}") {
                    401
                } else if f.load(Ordering::SeqCst) > 0 {
                    f.fetch_sub(1, Ordering::SeqCst);
                    500
                } else {
                    201
                };
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                g.lock().unwrap().push(Got { method, path: uri.path().to_string(), headers, body, answered });
                (StatusCode::from_u16(answered).unwrap(), "{}")
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { got, base }
}

impl Receiver {
    fn for_sha(&self, sha: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.path.ends_with(&format!("/statuses/{sha}"))).cloned().collect()
    }
    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

struct Env {
    h: Harness,
    clock: Arc<ManualClock>,
    root: String,
    up: Upstream,
    _hooks: tokio::task::JoinHandle<()>,
    _cache: tempfile::TempDir,
}

/// A daemon with sync (the webhook secret), the manual clock and hooks
/// whose GitHub settings are `github`, delivering; the upstream holds the
/// playbooks and under `inv/` the inventory (group `cell`, a local host).
async fn env(b: Backend, github: GitHubSettings) -> Env {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()));
    let cache = tempfile::tempdir().unwrap();
    let mut sync_settings = SyncSettings::with_cache(cache.path().to_path_buf());
    sync_settings.webhook_secret = Some(SECRET.as_bytes().to_vec());
    let sync = SyncHub::new(sync_settings);
    let Harness { app: _, state, url, db, scratch } = Harness::with_clock(b, clock.clone());
    let mut hs = HookSettings::with("status-daemon".into());
    hs.retry.base_ms = BACKOFF_MS;
    hs.retry.max_attempts = 3;
    hs.poll = Duration::from_millis(50);
    hs.timeout = Duration::from_secs(5);
    hs.github = github;
    let hooks = HookHub::new(state.pool.clone(), hs);
    let state = state.with_sync(sync.clone()).with_hooks(hooks.clone());
    let task = hooks.start();
    let h = Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch };
    let root = h.token(None, Role::Root);
    let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    let up = Upstream::new();
    up.write("site.yml", SITE);
    up.write("fail.yml", FAIL);
    up.write("inv/hosts.yml", "all:\n  children:\n    cell:\n      hosts:\n        h1:\n");
    up.write("inv/host_vars/h1.yml", &format!("ansible_connection: local\nansible_python_interpreter: {python}\n"));
    up.commit_push("initial");
    let config_ref = h.create("/v1/config-refs", &root, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;
    let o = sync.syncer.sync(&mut h.conn(), config_ref, false).unwrap();
    assert!(matches!(o, cratond::sync::Outcome::Applied { .. }), "{o:?}");
    Env { h, clock, root, up, _hooks: task, _cache: cache }
}

fn github(rx: &Receiver) -> GitHubSettings {
    GitHubSettings { token: Some(TOKEN.into()), api_base: rx.base.clone(), public_url: Some(PUBLIC.into()) }
}

async fn post(app: &axum::Router, delivery: &str, body: &[u8]) -> Resp {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/webhooks/github")
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body));
    let resp = app.clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

async fn wait_until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Env {
    fn rule(&self, name: &str, branch: &str, playbook: &str, extra: Value) -> Value {
        let mut r = json!({"name": name, "event": "push", "repository": REPO, "branches": [branch], "sync": false,
            "template": {"playbook": playbook, "repo": self.up.url(), "group": "cell"}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    /// Pushes `sha` to `branch` (delivery `guid`) and returns the match
    /// row once handled, and the run once final.
    async fn push(&self, rule: i64, guid: &str, branch: &str, sha: &str) -> (Value, Value) {
        let body = serde_json::to_vec(&json!({
            "ref": format!("refs/heads/{branch}"), "before": "0000000000000000000000000000000000000000",
            "after": sha, "repository": {"full_name": REPO, "clone_url": self.up.url()},
            "pusher": {"name": "alice"}, "head_commit": {"id": sha, "message": "deploy"},
        }))
        .unwrap();
        let r = post(&self.h.app, guid, &body).await;
        assert_eq!((r.status.as_u16(), r.body["rules"].clone()), (202, json!([rule])), "{}", r.text);
        let m = wait_until("the rule handled the push", async || {
            let path = format!("/v1/webhook-rules/{rule}/deliveries");
            let d = self.h.expect(200, "GET", &path, &self.root, None).await.body;
            let m = d["items"].as_array().unwrap().iter().find(|m| m["delivery"] == guid).cloned()?;
            (m["status"] == "submitted").then_some(m)
        })
        .await;
        let run = m["run_id"].as_i64().unwrap();
        let r = wait_until("the run ended", async || {
            let r = self.h.expect(200, "GET", &format!("/v1/runs/{run}"), &self.root, None).await.body;
            (!matches!(r["status"].as_str(), Some("queued" | "running"))).then_some(r)
        })
        .await;
        (m, r)
    }

    fn statuses(&self, run: i64) -> Vec<store_cs::CommitStatus> {
        store_cs::of_run(&mut self.h.conn(), run).unwrap()
    }
}

/// Checks one status request: method, path, headers, body.
fn check(g: &Got, sha: &str, state: &str, context: &str, run: i64) {
    assert_eq!(g.method, Method::POST);
    assert_eq!(g.path, format!("/api/v3/repos/{REPO}/statuses/{sha}"));
    assert_eq!(g.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(g.headers["accept"], "application/vnd.github+json");
    assert_eq!(g.headers["user-agent"], "craton");
    assert_eq!(g.body["state"], state, "{}", g.body);
    assert_eq!(g.body["context"], context, "{}", g.body);
    assert_eq!(g.body["target_url"], format!("https://craton.example/ui/#/runs/{run}"), "{}", g.body);
    let d = g.body["description"].as_str().unwrap();
    assert!(d.contains(&format!("run {run}")) && d.chars().count() <= 140, "{d}");
    assert_eq!(g.body.as_object().unwrap().len(), 4, "{}", g.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_runs_report_pending_then_their_result_retried_on_the_clock() {
    for b in backends() {
        let rx = receiver(1).await;
        let e = env(b, github(&rx)).await;
        let deploy =
            e.h.create(
                "/v1/webhook-rules",
                &e.root,
                e.rule("deploy-main", "main", "site.yml", json!({"commit_status": true})),
            )
            .await;

        // A successful run: pending (refused with 500), then nothing more
        // while the clock stands; the final status waits behind it.
        let c1 = e.up.head();
        let (m, r) = e.push(deploy, "s-1", "main", &c1).await;
        let run = r["id"].as_i64().unwrap();
        assert_eq!(r["status"], "successful", "{b:?}: {r}");
        assert_eq!(m["error"], Value::Null, "{b:?}: {m}");
        let first = wait_until("the pending status tried", async || {
            let g = rx.for_sha(&c1);
            (!g.is_empty()).then_some(g)
        })
        .await;
        check(&first[0], &c1, "pending", "craton/deploy-main", run);
        assert_eq!(first[0].answered, 500);
        wait_until("the final status queued", async || (e.statuses(run).len() == 2).then_some(())).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rx.for_sha(&c1).len(), 1, "{b:?}: sent before the clock moved: {:?}", rx.for_sha(&c1));
        let s = e.statuses(run);
        assert_eq!(
            (s[0].event.as_str(), s[0].delivery.as_str(), s[0].attempts, s[0].last_status),
            ("run.queued", "pending", 1, Some(500)),
            "{b:?}: {s:?}"
        );
        assert!(s[0].last_error.as_deref().unwrap().starts_with("answered HTTP 500"), "{s:?}");
        assert_eq!((s[1].event.as_str(), s[1].state.as_str(), s[1].attempts), ("run.finished", "success", 0));

        e.clock.advance(chrono::Duration::milliseconds(BACKOFF_MS));
        let got = wait_until("pending and success delivered", async || {
            let g = rx.for_sha(&c1);
            (g.len() == 3).then_some(g)
        })
        .await;
        let seen: Vec<(&str, u16)> = got.iter().map(|g| (g.body["state"].as_str().unwrap(), g.answered)).collect();
        assert_eq!(seen, [("pending", 500), ("pending", 201), ("success", 201)], "{b:?}");
        check(&got[1], &c1, "pending", "craton/deploy-main", run);
        check(&got[2], &c1, "success", "craton/deploy-main", run);
        assert_eq!(got[0].body, got[1].body, "a retry sends the same status");
        let s = wait_until("both recorded delivered", async || {
            let s = e.statuses(run);
            s.iter().all(|s| s.delivery == "delivered").then_some(s)
        })
        .await;
        assert_eq!((s[0].attempts, s[1].attempts), (2, 1), "{b:?}: {s:?}");
        // The same record through the API, and none of it for another project.
        let api = e.h.expect(200, "GET", &format!("/v1/runs/{run}/commit-statuses"), &e.root, None).await.body;
        assert_eq!(api["items"], serde_json::to_value(&s).unwrap(), "{b:?}");
        assert_eq!(api["items"][0]["last_status"], 201, "{b:?}: {api}");
        let other = e.h.token(Some("other"), Role::Admin);
        e.h.expect(404, "GET", &format!("/v1/runs/{run}/commit-statuses"), &other, None).await;

        // A failing playbook: failure, under the rule's own context.
        let broken =
            e.h.create(
                "/v1/webhook-rules",
                &e.root,
                e.rule(
                    "broken",
                    "fail",
                    "fail.yml",
                    json!({"commit_status": true, "status_context": "ci/craton-fail"}),
                ),
            )
            .await;
        e.up.git(&["checkout", "-q", "-b", "fail"]);
        e.up.write("fail.yml", &format!("{FAIL}# 2\n"));
        let c2 = e.up.commit_push("fail");
        let (_, r) = e.push(broken, "s-2", "fail", &c2).await;
        let run2 = r["id"].as_i64().unwrap();
        assert_eq!(r["status"], "failed", "{b:?}: {r}");
        let got = wait_until("pending and failure delivered", async || {
            let g = rx.for_sha(&c2);
            (g.len() == 2).then_some(g)
        })
        .await;
        check(&got[0], &c2, "pending", "ci/craton-fail", run2);
        check(&got[1], &c2, "failure", "ci/craton-fail", run2);
        assert!(got[1].body["description"].as_str().unwrap().contains("failed"), "{}", got[1].body);

        // A rule without commit_status: GitHub hears nothing of its run.
        let quiet = e.h.create("/v1/webhook-rules", &e.root, e.rule("quiet", "quiet", "site.yml", json!({}))).await;
        e.up.git(&["checkout", "-q", "-b", "quiet"]);
        e.up.write("site.yml", &format!("{SITE}# 3\n"));
        let c3 = e.up.commit_push("quiet");
        let before = rx.all().len();
        let (m, r) = e.push(quiet, "s-3", "quiet", &c3).await;
        assert_eq!((r["status"].as_str(), m["error"].clone()), (Some("successful"), Value::Null), "{b:?}: {r}");
        e.clock.advance(chrono::Duration::milliseconds(10 * BACKOFF_MS));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(rx.all().len(), before, "{b:?}: a rule without commit_status sent {:?}", rx.for_sha(&c3));
        assert!(e.statuses(r["id"].as_i64().unwrap()).is_empty());
        assert!(rx.all().iter().all(|g| g.answered != 401), "every status carried the token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_nothing_is_sent_and_the_match_says_so() {
    let b = backends()[0];
    let rx = receiver(0).await;
    let e = env(b, GitHubSettings { token: None, ..github(&rx) }).await;
    let rule = e
        .h
        .create("/v1/webhook-rules", &e.root, e.rule("deploy-main", "main", "site.yml", json!({"commit_status": true})))
        .await;
    let head = e.up.head();
    let (m, r) = e.push(rule, "t-1", "main", &head).await;
    assert_eq!(r["status"], "successful", "{r}");
    assert_eq!(m["error"], NO_TOKEN, "{m}");
    e.clock.advance(chrono::Duration::milliseconds(10 * BACKOFF_MS));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.all().is_empty(), "{:?}", rx.all());
    assert!(e.statuses(r["id"].as_i64().unwrap()).is_empty());
}

#[tokio::test]
async fn commit_status_fields_are_checked_and_shown() {
    for b in backends() {
        let rx = receiver(0).await;
        let e = env(b, github(&rx)).await;
        for (extra, field) in [
            (json!({"commit_status": "yes"}), "commit_status"),
            (json!({"status_context": ""}), "status_context"),
            (json!({"status_context": "x".repeat(256)}), "status_context"),
            (json!({"status_context": "a\nb"}), "status_context"),
            (json!({"status_context": 3}), "status_context"),
        ] {
            let r =
                e.h.call("POST", "/v1/webhook-rules", &e.root, Some(e.rule("x", "main", "site.yml", extra.clone())))
                    .await;
            assert_eq!(
                (r.status.as_u16(), r.detail_fields()),
                (400, vec![field.to_string()]),
                "{b:?} {extra}: {}",
                r.text
            );
        }
        let id = e.h.create("/v1/webhook-rules", &e.root, e.rule("plain", "main", "site.yml", json!({}))).await;
        let path = format!("/v1/webhook-rules/{id}");
        let r = e.h.expect(200, "GET", &path, &e.root, None).await;
        assert_eq!(
            (r.body["commit_status"].clone(), r.body["status_context"].clone()),
            (json!(false), json!("craton/plain")),
            "{b:?}: {}",
            r.text
        );
        let r =
            e.h.expect(200, "PATCH", &path, &e.root, Some(json!({"commit_status": true, "status_context": "ci/x"})))
                .await;
        assert_eq!((r.body["commit_status"].clone(), r.body["status_context"].clone()), (json!(true), json!("ci/x")));
        let r = e.h.call("PATCH", &path, &e.root, Some(json!({"status_context": ""}))).await;
        assert_eq!((r.status.as_u16(), r.detail_fields()), (400, vec!["status_context".to_string()]), "{}", r.text);
        let r = e.h.expect(200, "PATCH", &path, &e.root, Some(json!({"status_context": null}))).await;
        assert_eq!(
            (r.body["commit_status"].clone(), r.body["status_context"].clone()),
            (json!(true), json!("craton/plain"))
        );
        let r = e.h.expect(200, "GET", "/v1/webhook-rules", &e.root, None).await;
        assert_eq!(r.body["items"][0]["commit_status"], true, "{}", r.text);
    }
}

/// The submitter's side of the race: a run that is already final when its
/// `pending` row is written gets its result queued by the submitter (the
/// runner's `run.finished` came before there was a row to follow), and
/// the two still go out in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_final_before_its_pending_row_still_gets_its_result() {
    let b = backends()[0];
    let rx = receiver(0).await;
    let e = env(b, github(&rx)).await;
    let rule = e.h.create("/v1/webhook-rules", &e.root, e.rule("late", "main", "site.yml", json!({}))).await;
    let head = e.up.head();
    let (_, r) = e.push(rule, "l-1", "main", &head).await;
    let run = r["id"].as_i64().unwrap();
    assert_eq!(r["status"], "successful", "{r}");
    assert!(e.statuses(run).is_empty());
    // As if the rule had commit_status and its submitter were this late.
    let mut rec = craton::store::webhook_rules::get(&mut e.h.conn(), None, rule).unwrap();
    rec.commit_status = true;
    let note = cratond::hooks::commit_status::submitted(&e.h.state, &rec, run, &head, false).await;
    assert_eq!(note, None);
    let got = wait_until("pending and success delivered", async || {
        let g = rx.for_sha(&head);
        (g.len() == 2).then_some(g)
    })
    .await;
    check(&got[0], &head, "pending", "craton/late", run);
    check(&got[1], &head, "success", "craton/late", run);
    // Queued again (a second finisher, a replayed submit): still one each.
    let again = cratond::hooks::commit_status::submitted(&e.h.state, &rec, run, &head, false).await;
    assert_eq!(again, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.statuses(run).len(), 2);
    assert_eq!(rx.for_sha(&head).len(), 2);
    // Retention: the run's statuses go with it.
    assert_eq!(craton::store::runs::prune(&mut e.h.conn(), i64::MAX).unwrap(), 1);
    assert!(e.statuses(run).is_empty());
}
