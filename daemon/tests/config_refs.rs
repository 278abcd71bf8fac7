//! Git config refs through the API and the sync engine, on every backend,
//! with a local bare repository over file:// as the upstream: the initial
//! sync, pushes that change, add and remove variables, a tag, a force-push,
//! a malformed file and its fix, a deleted branch, an unchanged commit (no
//! write at all), API writes to ref-owned keys (409), conflicts and group
//! scopes, webhooks (signatures), and the workers reacting to a trigger, a
//! webhook and a change on disk.

mod common;

#[path = "../../tests/common/git.rs"]
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::{backends, Harness, Resp};
use craton::store::config_refs;
use craton::store::tokens::Role;
use cratond::api::{app, Limits};
use cratond::sync::{Outcome, SyncHub, SyncSettings};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use upstream::Upstream;

/// The upstreams live in the temporary directory: the project's allow-list
/// names it (and /srv for refs that never sync), as an operator would for
/// local repositories editors may use.
fn temp_dir_allowed(project: &str) -> cratond::repo_policy::RepoPolicy {
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_str().unwrap().trim_end_matches('/');
    let mut policy = cratond::repo_policy::RepoPolicy::default();
    policy.projects.insert(
        project.to_string(),
        cratond::repo_policy::ProjectPolicy { allow: vec![format!("{tmp}/**"), "/srv/**".into()], credentials: None },
    );
    policy
}

/// A harness whose state carries a sync hub (cache in its own temp dir).
struct Env {
    h: Harness,
    hub: Arc<SyncHub>,
    _cache: tempfile::TempDir,
}

fn env(b: common::Backend, secret: Option<&str>) -> Env {
    let cache = tempfile::tempdir().unwrap();
    let mut settings = SyncSettings::with_cache(cache.path().to_path_buf());
    settings.webhook_secret = secret.map(|s| s.as_bytes().to_vec());
    settings.tick_ms = 100;
    settings.policy = temp_dir_allowed("default");
    let hub = SyncHub::new(settings);
    let Harness { app: _, state, url, db, scratch } = Harness::new(b);
    let state = state.with_sync(hub.clone());
    let h = Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch };
    Env { h, hub, _cache: cache }
}

impl Env {
    fn sync(&self, id: i64) -> Outcome {
        self.hub.syncer.sync(&mut self.h.conn(), id, false).unwrap()
    }

    fn revision(&self) -> i64 {
        craton::store::find_project(&mut self.h.conn(), "default").unwrap().unwrap().revision
    }

    fn ref_row(&self, id: i64) -> config_refs::ConfigRef {
        config_refs::get(&mut self.h.conn(), None, id).unwrap().unwrap()
    }
}

fn applied(o: &Outcome) -> config_refs::VarCounts {
    match o {
        Outcome::Applied { applied, .. } => applied.counts,
        other => panic!("expected a successful sync, got {other:?}"),
    }
}

fn failed(o: &Outcome) -> config_refs::SyncFailure {
    match o {
        Outcome::Failed(f) => f.clone(),
        other => panic!("expected a failed sync, got {other:?}"),
    }
}

fn counts(c: u64, u: u64, r: u64) -> config_refs::VarCounts {
    config_refs::VarCounts { created: c as usize, updated: u as usize, removed: r as usize }
}

const HOSTS: &str =
    "all:\n  children:\n    web:\n      hosts:\n        w1:\n        w2:\n    db:\n      hosts:\n        d1:\n";

/// An upstream with an inventory directory `inv/`: hosts.yml declaring
/// web (w1, w2) and db (d1), and vars files.
fn seeded() -> Upstream {
    let up = Upstream::new();
    up.write("README.md", "config\n");
    up.write("inv/hosts.yml", HOSTS);
    up.write("inv/group_vars/all.yml", "ntp: pool.ntp.org\n");
    up.write("inv/group_vars/web.yml", "http_port: 80\nworkers: 4\n");
    up.write("inv/host_vars/w1.yml", "rack: r1\n");
    up.commit_push("initial");
    up
}

async fn group_vars(h: &Harness, token: &str, name: &str) -> Value {
    let groups = h.expect(200, "GET", &format!("/v1/groups?name={name}"), token, None).await;
    let id = groups.body["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no group {name}: {}", groups.text));
    h.expect(200, "GET", &format!("/v1/groups/{id}/variables"), token, None).await.body["variables"].clone()
}

async fn host_vars(h: &Harness, token: &str, name: &str) -> Value {
    let hosts = h.expect(200, "GET", &format!("/v1/hosts?name={name}"), token, None).await;
    let id = hosts.body["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no host {name}: {}", hosts.text));
    h.expect(200, "GET", &format!("/v1/hosts/{id}/variables"), token, None).await.body["variables"].clone()
}

#[tokio::test]
async fn a_ref_follows_pushes_tags_force_pushes_and_survives_bad_commits() {
    for b in backends() {
        let e = env(b, None);
        let h = &e.h;
        let editor = h.token(Some("default"), Role::Editor);
        let reader = h.token(Some("default"), Role::Reader);
        let up = seeded();

        // Create (editor), read (reader).
        let body = json!({"url": up.url(), "ref": "main", "path": "inv/", "poll_interval": 30});
        h.expect(403, "POST", "/v1/config-refs", &reader, Some(body.clone())).await;
        let id = h.create("/v1/config-refs", &editor, body).await;
        let r = h.expect(200, "GET", &format!("/v1/config-refs/{id}"), &reader, None).await;
        assert_eq!((r.body["path"].clone(), r.body["poll_interval"].clone()), (json!("inv"), json!(30)));
        assert_eq!(r.body["status"]["result"], Value::Null);

        // Initial sync: groups and hosts declared, variables on the file tier.
        let head = up.head();
        assert_eq!(applied(&e.sync(id)), counts(4, 0, 0), "{b:?}");
        let r = h.expect(200, "GET", &format!("/v1/config-refs/{id}"), &reader, None).await;
        assert_eq!(r.body["status"]["result"], "ok", "{}", r.text);
        assert_eq!(r.body["status"]["commit"], head.as_str());
        assert_eq!(r.body["status"]["counts"], json!({"created": 4, "updated": 0, "removed": 0}));
        assert!(r.body["status"]["synced_at"].as_i64().is_some());
        assert_eq!(group_vars(h, &reader, "web").await, json!({"http_port": 80, "workers": 4}));
        assert_eq!(host_vars(h, &reader, "w1").await, json!({"rack": "r1"}));
        let list = h.expect(200, "GET", "/v1/config-refs", &reader, None).await;
        assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

        // The same commit again: nothing written, not even the ref's row.
        let (rev, row) = (e.revision(), e.ref_row(id));
        assert!(matches!(e.sync(id), Outcome::Unchanged { .. }));
        assert_eq!((e.revision(), e.ref_row(id)), (rev, row), "{b:?}: a no-op sync wrote");

        // A commit that touches nothing stored: status only, no revision bump.
        up.write("README.md", "config, edited\n");
        up.commit_push("docs");
        assert_eq!(applied(&e.sync(id)), counts(0, 0, 0));
        assert_eq!(e.revision(), rev, "{b:?}: a README commit bumped the revision");

        // Change, add, remove.
        up.write("inv/group_vars/web.yml", "http_port: 8080\n");
        up.write("inv/host_vars/d1.yml", "role: primary\n");
        assert!(matches!(e.sync(id), Outcome::Unchanged { .. }), "not pushed yet");
        up.commit_push("change");
        assert_eq!(applied(&e.sync(id)), counts(1, 1, 1), "{b:?}");
        assert!(e.revision() > rev);
        assert_eq!(group_vars(h, &reader, "web").await, json!({"http_port": 8080}));
        assert_eq!(host_vars(h, &reader, "d1").await, json!({"role": "primary"}));

        // A malformed file: the error is recorded with file and line, the
        // inventory keeps the previous good state.
        let rev = e.revision();
        up.write("inv/group_vars/web.yml", "http_port: 9090\nlist: [a, b\n");
        up.commit_push("broken");
        let f = failed(&e.sync(id));
        assert_eq!(f.file.as_deref(), Some("inv/group_vars/web.yml"), "{f:?}");
        assert!(f.line.is_some(), "{f:?}");
        let r = h.expect(200, "GET", &format!("/v1/config-refs/{id}"), &reader, None).await;
        assert_eq!(r.body["status"]["result"], "error");
        assert_eq!(r.body["status"]["error"]["file"], "inv/group_vars/web.yml");
        assert_eq!(r.body["status"]["failures"], 1);
        assert_ne!(r.body["status"]["commit"], up.head().as_str(), "last_commit only moves on success");
        assert_eq!(e.revision(), rev);
        assert_eq!(group_vars(h, &reader, "web").await, json!({"http_port": 8080}));
        // Fixed: back to ok, failures reset.
        up.write("inv/group_vars/web.yml", "http_port: 9090\n");
        up.commit_push("fixed");
        assert_eq!(applied(&e.sync(id)), counts(0, 1, 0));
        let r = h.expect(200, "GET", &format!("/v1/config-refs/{id}"), &reader, None).await;
        assert_eq!((r.body["status"]["result"].clone(), r.body["status"]["failures"].clone()), (json!("ok"), json!(0)));
        assert_eq!(r.body["status"]["error"], Value::Null);

        // A vars file for a group nobody declares fails the sync.
        up.write("inv/group_vars/nowhere.yml", "a: 1\n");
        up.commit_push("unknown group");
        let f = failed(&e.sync(id));
        assert_eq!(f.file.as_deref(), Some("inv/group_vars/nowhere.yml"));
        assert!(f.message.contains("no group named \"nowhere\""), "{f:?}");
        up.remove("inv/group_vars/nowhere.yml");
        up.commit_push("drop it");
        assert_eq!(applied(&e.sync(id)), counts(0, 0, 0));

        // Force-push: the branch moves to a commit that is not a descendant.
        up.write("inv/group_vars/web.yml", "http_port: 5050\n");
        up.commit_push("to be force-pushed away");
        assert_eq!(applied(&e.sync(id)), counts(0, 1, 0));
        let old = up.head();
        let new = up.force_push_replacing_head(&[("inv/group_vars/web.yml", "http_port: 7070\n")], "rewritten");
        assert_ne!(old, new);
        assert_eq!(applied(&e.sync(id)), counts(0, 1, 0), "{b:?}");
        assert_eq!(e.ref_row(id).last_commit.as_deref(), Some(new.as_str()));
        assert_eq!(group_vars(h, &reader, "web").await, json!({"http_port": 7070}));

        // A tag: deleting the branch ref removes its variables; a ref on the
        // tag brings the tagged content back.
        up.tag("v1");
        up.write("inv/group_vars/web.yml", "http_port: 6060\n");
        up.commit_push("after the tag");
        h.expect(204, "DELETE", &format!("/v1/config-refs/{id}"), &editor, None).await;
        h.expect(404, "GET", &format!("/v1/config-refs/{id}"), &reader, None).await;
        assert_eq!(group_vars(h, &reader, "web").await, json!({}));
        assert_eq!(host_vars(h, &reader, "d1").await, json!({}));
        let tag = h.create("/v1/config-refs", &editor, json!({"url": up.url(), "ref": "v1", "path": "inv"})).await;
        assert_eq!(applied(&e.sync(tag)), counts(4, 0, 0));
        assert_eq!(group_vars(h, &reader, "web").await, json!({"http_port": 7070}));

        // A deleted branch: the sync fails, the state stays.
        h.expect(204, "DELETE", &format!("/v1/config-refs/{tag}"), &editor, None).await;
        up.checkout_new_branch("feature");
        up.write("inv/group_vars/db.yml", "engine: pg\n");
        up.commit_push("feature");
        let fid = h.create("/v1/config-refs", &editor, json!({"url": up.url(), "ref": "feature", "path": "inv"})).await;
        applied(&e.sync(fid));
        assert_eq!(group_vars(h, &reader, "db").await, json!({"engine": "pg"}));
        up.checkout("main");
        up.delete_remote_branch("feature");
        let rev = e.revision();
        let f = failed(&e.sync(fid));
        assert!(f.message.contains("not found"), "{f:?}");
        assert_eq!(group_vars(h, &reader, "db").await, json!({"engine": "pg"}));
        assert_eq!(e.revision(), rev);
    }
}

#[tokio::test]
async fn api_writes_to_ref_owned_keys_are_conflicts_naming_the_ref() {
    for b in backends() {
        let e = env(b, None);
        let h = &e.h;
        let editor = h.token(Some("default"), Role::Editor);
        let up = seeded();
        let id = h.create("/v1/config-refs", &editor, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;
        applied(&e.sync(id));
        let groups = h.expect(200, "GET", "/v1/groups?name=web", &editor, None).await;
        let web = groups.body["items"][0]["id"].as_i64().unwrap();
        let path = format!("/v1/groups/{web}/variables");

        let r = h.expect(409, "PUT", &path, &editor, Some(json!({"http_port": 1, "other": 2}))).await;
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("config ref {id}")) && msg.contains("http_port"), "{msg}");
        assert!(msg.contains(&up.url()), "{msg}");
        let r = h.expect(409, "DELETE", &format!("{path}?key=workers"), &editor, None).await;
        assert!(r.body["error"]["message"].as_str().unwrap().contains(&format!("config ref {id}")));
        // Nothing of the refused requests was written; other keys are free.
        assert_eq!(group_vars(h, &editor, "web").await, json!({"http_port": 80, "workers": 4}));
        h.expect(200, "PUT", &path, &editor, Some(json!({"other": 2}))).await;
        let pid = h.expect(200, "GET", "/v1/projects", &editor, None).await.body["items"][0]["id"].as_i64().unwrap();
        h.expect(409, "PUT", &format!("/v1/projects/{pid}/variables"), &editor, Some(json!({"ntp": "x"}))).await;

        // The API's key is not the ref's: the ref may not take it over.
        up.write("inv/group_vars/web.yml", "http_port: 80\nworkers: 4\nother: 3\n");
        up.commit_push("collides");
        let f = failed(&e.sync(id));
        assert_eq!(f.file.as_deref(), Some("inv/group_vars/web"));
        assert!(f.message.contains("\"other\"") && f.message.contains("through the API"), "{f:?}");
        assert_eq!(group_vars(h, &editor, "web").await, json!({"http_port": 80, "workers": 4, "other": 2}));

        // Once the ref is gone, its keys are the API's to set.
        h.expect(204, "DELETE", &format!("/v1/config-refs/{id}"), &editor, None).await;
        h.expect(200, "PUT", &path, &editor, Some(json!({"http_port": 1}))).await;
        assert_eq!(group_vars(h, &editor, "web").await, json!({"http_port": 1, "other": 2}));
    }
}

#[tokio::test]
async fn a_group_ref_stays_in_its_subtree() {
    for b in backends() {
        let e = env(b, None);
        let h = &e.h;
        let editor = h.token(Some("default"), Role::Editor);
        let region = h.create("/v1/groups", &editor, json!({"name": "region"})).await;
        h.create("/v1/groups", &editor, json!({"name": "cell", "parents": [region]})).await;
        h.create("/v1/groups", &editor, json!({"name": "elsewhere"})).await;
        h.create("/v1/hosts", &editor, json!({"name": "c1", "groups": ["cell"]})).await;
        h.create("/v1/hosts", &editor, json!({"name": "far", "groups": ["elsewhere"]})).await;

        let up = Upstream::new();
        up.write("group_vars/cell.yml", "tier: cell\n");
        up.write("group_vars/region.yml", "tier: region\n");
        up.write("host_vars/c1.yml", "n: 1\n");
        up.write("new.yml", "all:\n  children:\n    rack:\n      hosts:\n        r1:\n  hosts:\n    loose:\n");
        up.commit_push("scoped");
        let body = json!({"url": up.url(), "ref": "main", "group": "region"});
        let id = h.create("/v1/config-refs", &editor, body).await;
        let r = h.expect(200, "GET", &format!("/v1/config-refs/{id}"), &editor, None).await;
        assert_eq!(r.body["group"], "region");
        assert_eq!(applied(&e.sync(id)), counts(3, 0, 0), "{b:?}");
        // Declared groups and loose hosts hang below the ref's group.
        let rack = h.expect(200, "GET", "/v1/groups?name=rack", &editor, None).await;
        assert_eq!(rack.body["items"][0]["parents"], json!(["region"]), "{}", rack.text);
        let loose = h.expect(200, "GET", "/v1/hosts?name=loose", &editor, None).await;
        assert_eq!(loose.body["items"][0]["groups"], json!(["region"]), "{}", loose.text);

        for (file, content, what) in [
            ("group_vars/elsewhere.yml", "x: 1\n", "outside the subtree"),
            ("host_vars/far.yml", "x: 1\n", "outside the subtree"),
            ("group_vars/all.yml", "x: 1\n", "project-wide"),
        ] {
            up.write(file, content);
            up.commit_push("out of scope");
            let f = failed(&e.sync(id));
            assert!(f.message.contains(what), "{b:?} {file}: {f:?}");
            up.remove(file);
            up.commit_push("back");
            applied(&e.sync(id));
        }
        assert_eq!(group_vars(h, &editor, "elsewhere").await, json!({}));
    }
}

async fn post_raw(e: &Env, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = Request::builder().method("POST").uri(uri).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    // Every delivery is recorded once by its id (GitHub's is a UUID).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    req = req.header("x-github-delivery", format!("config-refs-{}-{n}", std::process::id()));
    let resp = e.h.app.clone().oneshot(req.body(Body::from(body.to_vec())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

fn push_payload(url: &str, git_ref: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": git_ref,
        "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {"clone_url": url, "full_name": "acme/config"},
    }))
    .unwrap()
}

#[tokio::test]
async fn webhooks_need_a_valid_signature() {
    use cratond::sync::webhook::sign;
    for b in backends() {
        let secret = "s3cret-webhook";
        let e = env(b, Some(secret));
        let editor = e.h.token(Some("default"), Role::Editor);
        let up = seeded();
        let id = e.h.create("/v1/config-refs", &editor, json!({"url": up.url(), "ref": "main", "path": "inv"})).await;
        e.hub.syncer.sync(&mut e.h.conn(), id, false).unwrap();
        let body = push_payload(&up.url(), "refs/heads/main");
        let good = sign(secret.as_bytes(), &body);
        let bad = sign(b"wrong", &body);
        let push = ("x-github-event", "push");

        for (what, headers) in [
            ("missing", vec![push]),
            ("bad", vec![push, ("x-hub-signature-256", bad.as_str())]),
            ("garbage", vec![push, ("x-hub-signature-256", "sha256=zz")]),
            ("sha1", vec![push, ("x-hub-signature", "sha1=00")]),
        ] {
            let r = post_raw(&e, "/v1/webhooks/github", &headers, &body).await;
            assert_eq!(r.status, 401, "{b:?} {what}: {}", r.text);
            assert!(e.ref_row(id).sync_requested_at.is_none(), "{what}: a refused delivery changed something");
        }
        // Tampered body with a signature of the original.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let r = post_raw(&e, "/v1/webhooks/github", &[push, ("x-hub-signature-256", &good)], &tampered).await;
        assert_eq!(r.status, 401);

        let ping = br#"{"zen": "hi"}"#;
        let r = post_raw(
            &e,
            "/v1/webhooks/github",
            &[("x-github-event", "ping"), ("x-hub-signature-256", &sign(secret.as_bytes(), ping))],
            ping,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);

        // Another branch: accepted, nothing to do.
        let other = push_payload(&up.url(), "refs/heads/other");
        let r = post_raw(
            &e,
            "/v1/webhooks/github",
            &[push, ("x-hub-signature-256", &sign(secret.as_bytes(), &other))],
            &other,
        )
        .await;
        assert_eq!((r.status.as_u16(), r.body["refs"].clone()), (202, json!([])));

        let r = post_raw(&e, "/v1/webhooks/github", &[push, ("x-hub-signature-256", &good)], &body).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["refs"], json!([id]));
        assert!(e.ref_row(id).sync_requested_at.is_some());

        // Without a configured secret, even a "valid" delivery is refused.
        let e2 = env(b, None);
        let r = post_raw(&e2, "/v1/webhooks/github", &[push, ("x-hub-signature-256", &good)], &body).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("CRATON_WEBHOOK_SECRET"));
    }
}

/// Waits until ref `id` reports `commit` as synced; returns how long it took.
async fn wait_synced(e: &Env, id: i64, commit: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = e.ref_row(id);
        if r.last_commit.as_deref() == Some(commit) && r.last_result.as_deref() == Some("ok") {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "ref {id} did not reach {commit} in {limit:?}: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_sync_on_start_trigger_webhook_and_file_change() {
    use cratond::sync::webhook::sign;
    for b in backends() {
        let secret = "hook";
        let e = env(b, Some(secret));
        let editor = e.h.token(Some("default"), Role::Editor);
        let up = seeded();
        // Polls only hourly: every sync below comes from a trigger.
        let body = json!({"url": up.url(), "ref": "main", "path": "inv", "poll_interval": 3600});
        let id = e.h.create("/v1/config-refs", &editor, body).await;
        let workers = cratond::sync::worker::start(e.hub.clone(), e.h.state.pool.clone());
        wait_synced(&e, id, &up.head(), Duration::from_secs(20)).await;

        // POST .../sync answers 202 at once.
        up.write("inv/group_vars/web.yml", "http_port: 1\n");
        let c1 = up.commit_push("one");
        let t = Instant::now();
        let r = e.h.expect(202, "POST", &format!("/v1/config-refs/{id}/sync"), &editor, None).await;
        assert_eq!(r.body["id"], id);
        let api = wait_synced(&e, id, &c1, Duration::from_secs(20)).await;
        let _ = t;

        // A signed push webhook.
        up.write("inv/group_vars/web.yml", "http_port: 2\n");
        let c2 = up.commit_push("two");
        let payload = push_payload(&up.url(), "refs/heads/main");
        let sig = sign(secret.as_bytes(), &payload);
        let r =
            post_raw(&e, "/v1/webhooks/github", &[("x-github-event", "push"), ("x-hub-signature-256", &sig)], &payload)
                .await;
        assert_eq!(r.status, 202, "{}", r.text);
        let hook = wait_synced(&e, id, &c2, Duration::from_secs(20)).await;

        // A push to the local repository, seen by the file watcher alone.
        up.write("inv/group_vars/web.yml", "http_port: 3\n");
        let c3 = up.commit_push("three");
        let watch = wait_synced(&e, id, &c3, Duration::from_secs(20)).await;
        eprintln!("{b:?}: change-to-database latency: trigger {api:?}, webhook {hook:?}, file watch {watch:?}");
        assert!(watch < Duration::from_secs(3), "{b:?}: file watch took {watch:?}");
        assert_eq!(group_vars(&e.h, &editor, "web").await, json!({"http_port": 3}));
        workers.abort();
    }
}

#[tokio::test]
async fn leases_exclude_other_holders_until_they_expire() {
    for b in backends() {
        let e = env(b, None);
        let editor = e.h.token(Some("default"), Role::Editor);
        let id = e.h.create("/v1/config-refs", &editor, json!({"url": "/srv/none", "ref": "main"})).await;
        let mut c = e.h.conn();
        assert!(config_refs::try_lease(&mut c, id, "a", 60_000).unwrap());
        assert!(!config_refs::try_lease(&mut c, id, "b", 60_000).unwrap(), "{b:?}: two holders");
        assert!(config_refs::try_lease(&mut c, id, "a", 60_000).unwrap(), "renewal");
        config_refs::release_lease(&mut c, id, "a").unwrap();
        assert!(config_refs::try_lease(&mut c, id, "b", 1).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        // b died without giving it back: its lease has expired.
        assert!(config_refs::try_lease(&mut c, id, "a", 60_000).unwrap(), "{b:?}: expired lease not taken over");
        // A success recorded by someone who lost the lease is refused.
        let err = config_refs::record_success(&mut c, id, "b", 0, "abc", Default::default()).unwrap_err();
        assert!(err.to_string().contains("lease was lost"), "{err}");
    }
}

#[tokio::test]
async fn bad_config_ref_bodies_name_their_fields() {
    let e = env(common::Backend::Sqlite, None);
    let editor = e.h.token(Some("default"), Role::Editor);
    for (body, field) in [
        (json!({"ref": "main"}), "url"),
        (json!({"url": "https://u:tok@example.com/r.git", "ref": "main"}), "url"),
        (json!({"url": "relative/path", "ref": "main"}), "url"),
        (json!({"url": "/srv/r", "ref": "a..b"}), "ref"),
        (json!({"url": "/srv/r", "ref": "main", "path": "../x"}), "path"),
        (json!({"url": "/srv/r", "ref": "main", "group": "nope"}), "group"),
        (json!({"url": "/srv/r", "ref": "main", "poll_interval": 0}), "poll_interval"),
        (json!({"url": "/srv/r", "ref": "main", "token": "x"}), "token"),
    ] {
        let r = e.h.expect(400, "POST", "/v1/config-refs", &editor, Some(body.clone())).await;
        assert_eq!(r.detail_fields(), vec![field.to_string()], "{body}: {}", r.text);
    }
}
