//! Outbound webhooks (issue 10) on every backend: the REST API (field
//! errors, roles, the URL rule, paging, the write-only secret), deliveries
//! of a real ansible-playbook run to a loopback receiver that checks every
//! signature and fails the first attempt (the retry comes when the test
//! moves the manual clock: no waiting for wall time), a delivery pending
//! when its daemon stops delivered by the next one, two daemons that
//! never send one delivery twice, and a run swept `lost` reported finished.

mod common;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use chrono::{TimeZone, Utc};
use common::{backends, Harness};
use craton::clock::{Clock, ManualClock};
use craton::store::tokens::Role;
use cratond::hooks::{HookHub, HookSettings};
use cratond::sync::webhook::{sign, signature_ok};
use serde_json::{json, Value};
use upstream::Upstream;

const SECRET: &str = "hook-s3cr3t-value";
const BACKOFF_MS: i64 = 60_000;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

/// A loopback HTTP receiver: answers 500 to the first `fail_first`
/// requests (while `down` is false), 503 to all while `down`, 401 to a
/// missing or wrong signature, else 200; records everything.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    fail_first: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    base: String,
}

async fn receiver(fail_first: usize) -> Receiver {
    let r = Receiver {
        got: Arc::default(),
        fail_first: Arc::new(AtomicUsize::new(fail_first)),
        down: Arc::new(AtomicBool::new(false)),
        base: String::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let rr = r.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
        let rr = rr.clone();
        async move {
            let sig = headers.get("x-craton-signature-256").and_then(|v| v.to_str().ok()).unwrap_or("");
            let answered = if rr.down.load(Ordering::SeqCst) {
                503
            } else if !signature_ok(SECRET.as_bytes(), &body, sig) {
                401
            } else if rr.fail_first.load(Ordering::SeqCst) > 0 {
                rr.fail_first.fetch_sub(1, Ordering::SeqCst);
                500
            } else {
                200
            };
            rr.got.lock().unwrap().push(Got { path: uri.path().to_string(), headers, body: body.to_vec(), answered });
            StatusCode::from_u16(answered).unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { base, ..r }
}

impl Receiver {
    fn got(&self, path: &str) -> Vec<Got> {
        self.got.lock().unwrap().iter().filter(|g| g.path == path).cloned().collect()
    }
}

fn settings(holder: &str) -> HookSettings {
    let mut s = HookSettings::with(holder.into());
    s.retry.base_ms = BACKOFF_MS;
    s.retry.max_attempts = 3;
    s.poll = Duration::from_millis(50);
    s.timeout = Duration::from_secs(5);
    s
}

/// A harness whose hooks use `holder` and the harness clock, delivering.
fn with_hooks(mut h: Harness, holder: &str) -> (Harness, Arc<HookHub>, tokio::task::JoinHandle<()>) {
    let hub = HookHub::new(h.state.pool.clone(), settings(holder));
    h.state = h.state.clone().with_hooks(hub.clone());
    h.app = cratond::api::app(h.state.clone(), cratond::api::Limits::default());
    let task = hub.start();
    (h, hub, task)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()))
}

async fn wait_until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_rest_checks_fields_roles_urls_and_never_shows_the_secret() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let admin = h.token(Some("default"), Role::Admin);
        let editor = h.token(Some("default"), Role::Editor);
        let reader = h.token(Some("default"), Role::Reader);
        let mut texts = Vec::new();
        let ok = json!({"url": "http://8.8.8.8/hook", "secret": SECRET, "events": ["run.finished"]});

        let r = h.expect(400, "POST", "/v1/hooks", &admin, Some(json!({}))).await;
        assert_eq!(r.detail_fields(), ["url", "secret", "events"], "{b:?}: {}", r.text);
        for (field, change) in [
            ("url", json!({"url": "ftp://8.8.8.8/x"})),
            ("url", json!({"url": "http://user:pw@8.8.8.8/x"})),
            ("secret", json!({"secret": "short"})),
            ("events", json!({"events": ["run.done"]})),
            ("events", json!({"events": []})),
            ("active", json!({"active": "yes"})),
            ("token", json!({"token": "x"})),
        ] {
            let mut body = ok.clone();
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let r = h.expect(400, "POST", "/v1/hooks", &admin, Some(body)).await;
            assert_eq!(r.detail_fields(), [field], "{b:?} {change}: {}", r.text);
            texts.push(r.text);
        }
        // Loopback and private addresses: root only.
        for url in ["http://127.0.0.1:9/h", "http://10.0.0.1/h", "http://[::1]:9/h", "http://localhost:9/h"] {
            let mut body = ok.clone();
            body["url"] = json!(url);
            let r = h.expect(400, "POST", "/v1/hooks", &admin, Some(body.clone())).await;
            assert!(r.text.contains("not a public address"), "{b:?} {url}: {}", r.text);
            let r = h.expect(201, "POST", "/v1/hooks", &root, Some(body)).await;
            assert_eq!(r.body["created_by_root"], true);
            texts.push(r.text);
        }
        // Admin only, reading included.
        h.expect(403, "POST", "/v1/hooks", &editor, Some(ok.clone())).await;
        h.expect(403, "GET", "/v1/hooks", &reader, None).await;
        let r = h.expect(201, "POST", "/v1/hooks", &admin, Some(ok.clone())).await;
        let id = r.body["id"].as_i64().unwrap();
        assert_eq!(
            (r.body["url"].clone(), r.body["events"].clone(), r.body["active"].clone(), r.body["project"].clone()),
            (json!("http://8.8.8.8/hook"), json!(["run.finished"]), json!(true), json!("default"))
        );
        assert!(r.body.get("secret").is_none(), "{}", r.text);
        assert_eq!(r.headers["location"], format!("/v1/hooks/{id}"));
        texts.push(r.text);
        h.expect(403, "GET", &format!("/v1/hooks/{id}"), &editor, None).await;
        h.expect(403, "DELETE", &format!("/v1/hooks/{id}"), &editor, None).await;
        h.expect(403, "GET", &format!("/v1/hooks/{id}/deliveries"), &reader, None).await;

        // Paging: 5 hooks, 2 a page.
        let mut seen = Vec::new();
        let mut next = Some("/v1/hooks?limit=2".to_string());
        while let Some(uri) = next {
            let r = h.expect(200, "GET", &uri, &root, None).await;
            seen.extend(r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()));
            next = r.body["links"]["next"].as_str().map(str::to_string);
            texts.push(r.text);
        }
        assert_eq!(seen.len(), 5, "{b:?}: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]));

        // PATCH: each field alone; a new secret is not echoed either.
        let path = format!("/v1/hooks/{id}");
        let r = h.expect(200, "PATCH", &path, &admin, Some(json!({"events": ["*"], "active": false}))).await;
        assert_eq!((r.body["events"].clone(), r.body["active"].clone()), (json!(["*"]), json!(false)));
        texts.push(r.text);
        let r = h.expect(200, "PATCH", &path, &admin, Some(json!({"secret": "another-s3cr3t"}))).await;
        assert_eq!(r.body["url"], "http://8.8.8.8/hook");
        texts.push(r.text);
        let r = h.expect(400, "PATCH", &path, &admin, Some(json!({"url": "http://127.0.0.1/x"}))).await;
        assert_eq!(r.detail_fields(), ["url"]);
        let r = h.expect(200, "GET", &path, &admin, None).await;
        texts.push(r.text);
        let r = h.expect(200, "GET", &format!("{path}/deliveries"), &admin, None).await;
        assert_eq!(r.body["items"], json!([]));
        h.expect(204, "DELETE", &path, &admin, None).await;
        h.expect(404, "GET", &path, &admin, None).await;
        h.expect(404, "GET", &format!("{path}/deliveries"), &admin, None).await;
        h.expect(404, "PATCH", "/v1/hooks/abc", &admin, Some(json!({}))).await;

        for t in &texts {
            assert!(!t.contains(SECRET) && !t.contains("another-s3cr3t"), "{b:?}: a response shows the secret: {t}");
        }
    }
}

const QUICK: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: hi\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_is_delivered_signed_in_order_and_retried_on_the_clock() {
    for b in backends() {
        let clock = clock();
        let (h, _hub, _task) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
        let rx = receiver(1).await;
        let root = h.token(None, Role::Root);
        let python = format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
        let g = h.create("/v1/groups", &root, json!({"name": "cell"})).await;
        let host = h.create("/v1/hosts", &root, json!({"name": "h1", "groups": [g]})).await;
        let vars = json!({"ansible_connection": "local", "ansible_python_interpreter": python});
        h.expect(200, "PUT", &format!("/v1/hosts/{host}/variables"), &root, Some(vars)).await;
        let good = h
            .create("/v1/hooks", &root, json!({"url": format!("{}/good", rx.base), "secret": SECRET, "events": ["*"]}))
            .await;
        // Signed with another secret: the receiver refuses it.
        let bad = h
            .create(
                "/v1/hooks",
                &root,
                json!({"url": format!("{}/bad", rx.base), "secret": "not-the-receivers", "events": ["run.finished"]}),
            )
            .await;
        let repo = Upstream::new();
        repo.write("quick.yml", QUICK);
        repo.commit_push("playbook");
        let r = h
            .expect(
                201,
                "POST",
                "/v1/runs",
                &root,
                Some(json!({"playbook": "quick.yml", "repo": repo.url(), "ref": "main", "group": "cell"})),
            )
            .await;
        let run = r.body["id"].as_i64().unwrap();
        let deliveries = |hook: i64| {
            let (h, root) = (&h, &root);
            async move { h.expect(200, "GET", &format!("/v1/hooks/{hook}/deliveries"), root, None).await.body }
        };
        let final_run = wait_until("the run finished", async || {
            let r = h.expect(200, "GET", &format!("/v1/runs/{run}"), &root, None).await.body;
            (!matches!(r["status"].as_str(), Some("queued" | "running"))).then_some(r)
        })
        .await;
        assert_eq!(final_run["status"], "successful", "{b:?}: {final_run}");
        // All three queued; the first attempt of run.queued failed (500) and
        // its retry waits for the clock, holding the run's later events.
        let now = clock.now().timestamp_millis();
        let d = wait_until("three deliveries, the first one tried", async || {
            let d = deliveries(good).await;
            let items = d["items"].as_array().unwrap().clone();
            (items.len() == 3 && items[2]["attempts"] == 1).then_some(items)
        })
        .await;
        let events: Vec<&str> = d.iter().map(|i| i["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["run.finished", "run.started", "run.queued"], "{b:?}: newest first");
        assert_eq!(
            (d[2]["state"].clone(), d[2]["last_status"].clone(), d[2]["next_attempt_at"].clone()),
            (json!("pending"), json!(500), json!(now + BACKOFF_MS)),
            "{b:?}: {}",
            d[2]
        );
        assert_eq!((d[0]["attempts"].clone(), d[1]["attempts"].clone()), (json!(0), json!(0)), "{b:?}");
        assert_eq!(rx.got("/good").len(), 1, "{b:?}: nothing more is sent while the clock stands");
        // The wrong signature was refused and is logged as such.
        let bd = wait_until("the bad hook tried", async || {
            let d = deliveries(bad).await;
            (d["items"][0]["attempts"] == 1).then_some(d)
        })
        .await;
        assert_eq!(bd["items"][0]["log"][0]["status_code"], 401, "{b:?}: {bd}");
        assert_eq!(bd["items"][0]["log"][0]["error"], "answered HTTP 401");

        clock.advance(chrono::Duration::milliseconds(BACKOFF_MS));
        let d = wait_until("all delivered", async || {
            let d = deliveries(good).await;
            let items = d["items"].as_array().unwrap().clone();
            items.iter().all(|i| i["state"] == "delivered").then_some(items)
        })
        .await;
        let log = &d[2]["log"];
        assert_eq!(
            (log[0]["attempt"].clone(), log[0]["status_code"].clone(), log[0]["error"].clone()),
            (json!(1), json!(500), json!("answered HTTP 500")),
            "{b:?}: {log}"
        );
        assert_eq!((log[1]["attempt"].clone(), log[1]["status_code"].clone()), (json!(2), json!(200)));
        assert_eq!(d[0]["log"].as_array().unwrap().len(), 1);

        // What the receiver got: queued (refused), queued, started, finished,
        // each signed over its exact body, each body the run as the API shows it.
        let got = rx.got("/good");
        let seen: Vec<(String, u16)> =
            got.iter().map(|g| (g.headers["x-craton-event"].to_str().unwrap().to_string(), g.answered)).collect();
        let want = [("run.queued", 500), ("run.queued", 200), ("run.started", 200), ("run.finished", 200)];
        assert_eq!(seen, want.map(|(e, s)| (e.to_string(), s)), "{b:?}");
        assert_eq!(got[0].body, got[1].body, "a retry sends the same bytes");
        for (g, status) in got.iter().zip(["queued", "queued", "running", "successful"]) {
            let sig = g.headers["x-craton-signature-256"].to_str().unwrap();
            assert_eq!(sig, sign(SECRET.as_bytes(), &g.body));
            assert!(!signature_ok(b"another secret", &g.body, sig));
            let mut tampered = g.body.clone();
            tampered[10] ^= 1;
            assert!(!signature_ok(SECRET.as_bytes(), &tampered, sig));
            assert!(!signature_ok(SECRET.as_bytes(), &g.body, ""));
            let v: Value = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(v["event"], g.headers["x-craton-event"].to_str().unwrap());
            assert_eq!(v["delivery"].to_string(), g.headers["x-craton-delivery"].to_str().unwrap());
            assert_eq!((v["run"]["id"].clone(), v["run"]["status"].clone()), (json!(run), json!(status)), "{v}");
            assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        let v: Value = serde_json::from_slice(&got[3].body).unwrap();
        let api = h.expect(200, "GET", &format!("/v1/runs/{run}"), &root, None).await.body;
        assert_eq!(v["run"], api, "{b:?}: run.finished carries the run as GET shows it");
        let d = deliveries(good).await.to_string();
        assert!(!d.contains(SECRET), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_restart_and_two_daemons_send_each_once() {
    for b in backends() {
        let clock = clock();
        let (h, hub_a, task_a) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
        let rx = receiver(0).await;
        rx.down.store(true, Ordering::SeqCst);
        let root = h.token(None, Role::Root);
        let hook = h
            .create(
                "/v1/hooks",
                &root,
                json!({"url": format!("{}/r", rx.base), "secret": SECRET, "events": ["run.queued"]}),
            )
            .await;
        let pid = craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().id;
        hub_a.emit(pid, cratond::hooks::RUN_QUEUED, "run:1".into(), &json!({"id": 1, "status": "queued"}));
        let path = format!("/v1/hooks/{hook}/deliveries");
        wait_until("the first attempt", async || {
            let d = h.expect(200, "GET", &path, &root, None).await.body;
            (d["items"][0]["attempts"] == 1).then_some(())
        })
        .await;
        // Daemon A stops (as `cratond serve` does: deliverer gone, claims
        // dropped); the delivery stays pending in the database.
        task_a.abort();
        hub_a.release_claims().await;
        rx.down.store(false, Ordering::SeqCst);

        // Daemon B: another pool, another holder, on the same database.
        let url = craton::store::DbUrl::parse(&h.db.url).unwrap();
        let pool = craton::store::pool::build(&url, 4).unwrap();
        let hub_b = HookHub::new(pool.clone(), settings("daemon-b"));
        hub_b.set_clock(clock.clone());
        let task_b = hub_b.start();
        clock.advance(chrono::Duration::milliseconds(BACKOFF_MS));
        let d = wait_until("delivered by daemon B", async || {
            let d = h.expect(200, "GET", &path, &root, None).await.body;
            (d["items"][0]["state"] == "delivered").then_some(d)
        })
        .await;
        let log = &d["items"][0]["log"];
        assert_eq!(
            (log[0]["status_code"].clone(), log[1]["status_code"].clone(), log[1]["attempt"].clone()),
            (json!(503), json!(200), json!(2)),
            "{b:?}: {d}"
        );
        let got = rx.got("/r");
        assert_eq!(got.iter().map(|g| g.answered).collect::<Vec<_>>(), [503, 200], "{b:?}");

        // Two daemons at once (A again, on its own pool): 20 deliveries,
        // each received exactly once.
        let hub_c = HookHub::new(h.state.pool.clone(), settings("daemon-c"));
        hub_c.set_clock(clock.clone());
        let task_c = hub_c.start();
        for i in 0..20 {
            let hub = if i % 2 == 0 { &hub_b } else { &hub_c };
            hub.emit(pid, cratond::hooks::RUN_QUEUED, format!("run:{}", 100 + i), &json!({"id": 100 + i}));
        }
        // Once flushed, every emitted event is a row (whatever its state).
        assert!(hub_b.flush(Duration::from_secs(10)).await && hub_c.flush(Duration::from_secs(10)).await);
        let d = h.expect(200, "GET", &path, &root, None).await.body;
        assert_eq!(d["items"].as_array().unwrap().len(), 21, "{b:?}");
        wait_until("20 more delivered", async || (rx.got("/r").len() >= 22).then_some(())).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut per: HashMap<String, usize> = HashMap::new();
        for g in rx.got("/r").iter().skip(2) {
            *per.entry(g.headers["x-craton-delivery"].to_str().unwrap().to_string()).or_default() += 1;
        }
        assert_eq!(per.len(), 20, "{b:?}: {per:?}");
        assert!(per.values().all(|&n| n == 1), "{b:?}: a delivery was sent twice: {per:?}");
        task_b.abort();
        task_c.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_run_is_reported_finished() {
    for b in backends() {
        let clock = clock();
        let (h, _hub, _task) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
        let rx = receiver(0).await;
        let root = h.token(None, Role::Root);
        h.create("/v1/hooks", &root, json!({"url": format!("{}/lost", rx.base), "secret": SECRET, "events": ["*"]}))
            .await;
        let g = h.create("/v1/groups", &root, json!({"name": "cell"})).await;
        h.create("/v1/hosts", &root, json!({"name": "h1", "groups": [g]})).await;
        // A run whose daemon died: its lease already expired.
        let pid = craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().id;
        let spec = craton::runs::parse_request(
            json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main", "group": "cell"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let new = craton::store::runs::NewRun {
            project_id: pid,
            spec: &spec,
            created_by: "test",
            bundle: b"x",
            bundle_etag: "\"e\"",
            hosts: &["h1".to_string()],
            inventory_revision: None,
            holder: "a-dead-daemon",
            lease_ttl_ms: -60_000,
        };
        let run = craton::store::runs::create(&mut h.conn(), &new).unwrap().id;
        h.state.runs.as_ref().unwrap().start_sweeper(h.state.pool.clone());
        let got = wait_until("run.finished of the lost run", async || {
            let g = rx.got("/lost");
            (!g.is_empty()).then_some(g)
        })
        .await;
        let v: Value = serde_json::from_slice(&got[0].body).unwrap();
        assert_eq!(
            (v["event"].clone(), v["run"]["id"].clone(), v["run"]["status"].clone()),
            (json!("run.finished"), json!(run), json!("lost")),
            "{b:?}: {v}"
        );
        assert_eq!(got[0].headers["x-craton-signature-256"].to_str().unwrap(), sign(SECRET.as_bytes(), &got[0].body));
    }
}

/// A run canceled while it waits in the queue (here for its maintenance
/// window, so it never claims its hosts) ends with `run.finished` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_canceled_in_the_queue_is_reported_finished() {
    let b = backends()[0];
    let clock = clock();
    let (h, _hub, _task) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
    let rx = receiver(0).await;
    let root = h.token(None, Role::Root);
    h.create("/v1/hooks", &root, json!({"url": format!("{}/queued", rx.base), "secret": SECRET, "events": ["*"]}))
        .await;
    let g = h.create("/v1/groups", &root, json!({"name": "cell"})).await;
    h.create("/v1/hosts", &root, json!({"name": "h1", "groups": [g]})).await;
    let window =
        json!({"name": "new year", "kind": "cron", "expression": "0 3 1 1 *", "time_zone": "UTC", "duration_s": 60});
    h.expect(201, "POST", &format!("/v1/groups/{g}/windows"), &root, Some(window)).await;
    let run = h
        .create(
            "/v1/runs",
            &root,
            json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main", "group": "cell"}),
        )
        .await;
    let events = |g: &[Got]| -> Vec<(String, String)> {
        g.iter()
            .map(|x| {
                let v: Value = serde_json::from_slice(&x.body).unwrap();
                (v["event"].as_str().unwrap().to_string(), v["run"]["status"].as_str().unwrap().to_string())
            })
            .collect()
    };
    wait_until("run.queued", async || (!rx.got("/queued").is_empty()).then_some(())).await;
    h.expect(202, "POST", &format!("/v1/runs/{run}/cancel"), &root, Some(json!({"mode": "immediate"}))).await;
    let got = wait_until("run.finished of the canceled run", async || {
        let g = rx.got("/queued");
        (g.len() >= 2).then_some(g)
    })
    .await;
    assert_eq!(
        events(&got),
        [("run.queued".to_string(), "queued".to_string()), ("run.finished".to_string(), "canceled".to_string())],
        "{b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_run_is_announced_and_a_denial_and_a_skip_are_reported() {
    let b = backends()[0];
    let clock = clock();
    let (h, _hub, _task) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
    let rx = receiver(0).await;
    let root = h.token(None, Role::Root);
    let admin = h.token(Some("default"), Role::Admin);
    h.create("/v1/hooks", &root, json!({"url": format!("{}/gates", rx.base), "secret": SECRET, "events": ["*"]})).await;
    h.create("/v1/hosts", &root, json!({"name": "h1"})).await;
    let run = json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main"});
    let mut gated = run.clone();
    gated["approval"] = json!("required");
    let gated = h.create("/v1/runs", &root, gated).await;
    let mut after = run.clone();
    after["after"] = json!([gated]);
    let after = h.create("/v1/runs", &root, after).await;
    let seen = |n: usize| {
        let rx = rx.clone();
        async move {
            wait_until(&format!("{n} deliveries"), async || {
                let g = rx.got("/gates");
                (g.len() >= n).then_some(g)
            })
            .await
        }
    };
    let events = |g: &[Got]| -> Vec<(String, i64, String)> {
        let mut e: Vec<(String, i64, String)> = g
            .iter()
            .map(|x| {
                let v: Value = serde_json::from_slice(&x.body).unwrap();
                let r = &v["run"];
                (v["event"].as_str().unwrap().into(), r["id"].as_i64().unwrap(), r["status"].as_str().unwrap().into())
            })
            .collect();
        e.sort();
        e
    };
    let q = |e: &str, id: i64, s: &str| (e.to_string(), id, s.to_string());
    let got = seen(3).await;
    assert_eq!(
        events(&got),
        [
            q("run.queued", gated, "queued"),
            q("run.queued", after, "queued"),
            q("run.waiting_for_approval", gated, "queued")
        ],
        "{b:?}"
    );
    h.expect(200, "POST", &format!("/v1/runs/{gated}/deny"), &admin, None).await;
    let got = seen(5).await;
    let e = events(&got);
    assert!(e.contains(&q("run.finished", gated, "canceled")), "{b:?}: {e:?}");
    assert!(e.contains(&q("run.finished", after, "skipped")), "{b:?}: {e:?}");
    let r = h.get(&format!("/v1/runs/{after}"), &root).await;
    assert_eq!(r.body["reason"], format!("run {gated} ended canceled (require: success)"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_firing_is_announced_with_its_run_or_its_refusal() {
    let b = backends()[0];
    let clock = clock();
    let (h, _hub, _task) = with_hooks(Harness::with_clock(b, clock.clone()), "daemon-a");
    let rx = receiver(0).await;
    let root = h.token(None, Role::Root);
    let hook = json!({"url": format!("{}/fired", rx.base), "secret": SECRET, "events": ["schedule.fired"]});
    h.create("/v1/hooks", &root, hook).await;
    h.create("/v1/hosts", &root, json!({"name": "h1"})).await;
    let schedule = |name: &str, template: Value| json!({"name": name, "kind": "cron", "expression": "0 * * * *", "time_zone": "UTC", "template": template});
    let ok = h
        .create(
            "/v1/schedules",
            &root,
            schedule("ok", json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main"})),
        )
        .await;
    // Refused at fire time: no such config ref.
    let refused =
        h.create("/v1/schedules", &root, schedule("refused", json!({"playbook": "site.yml", "config_ref": 999}))).await;
    clock.set(Utc.with_ymd_and_hms(2026, 11, 2, 1, 0, 1).unwrap());
    assert_eq!(cratond::schedules::tick(&h.state).await.unwrap(), 1, "{b:?}");
    let got = wait_until("two schedule.fired", async || {
        let g = rx.got("/fired");
        (g.len() >= 2).then_some(g)
    })
    .await;
    let mut by_id: HashMap<i64, Value> = HashMap::new();
    for g in &got {
        let v: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(v["event"], "schedule.fired", "{v}");
        by_id.insert(v["schedule"]["id"].as_i64().unwrap(), v["schedule"].clone());
    }
    let f = &by_id[&ok]["firing"];
    assert_eq!(f["occurrence"], "2026-11-02T01:00:00Z", "{f}");
    let run = f["run_id"].as_i64().unwrap_or_else(|| panic!("{f}"));
    h.expect(200, "GET", &format!("/v1/runs/{run}"), &root, None).await;
    let f = &by_id[&refused]["firing"];
    assert_eq!(f["run_id"], Value::Null, "{f}");
    assert!(f["error"].as_str().unwrap_or_default().contains("config_ref"), "{f}");
}
