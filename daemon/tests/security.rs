//! The daemon's security findings of issue 7, each as its own regression
//! test: the repository URL policy (cross-project reads, SSRF, the status
//! text of failed fetches) through the router, and, against a live
//! `cratond serve` over loopback, the webhook's memory bound, the
//! connection timeouts and cap, and immediate token revocation across two
//! processes on one database.
// The router harness (`common`) and the process fixtures (`fixtures`) each
// bring the shared database helper.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../../tests/common/mod.rs"]
mod fixtures;

#[path = "../../tests/common/git.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Harness;
use craton::store::tokens::Role;
use cratond::api::{app, Limits};
use cratond::repo_policy::{ProjectPolicy, RepoPolicy};
use cratond::sync::{Outcome, SyncHub, SyncSettings};
use fixtures::Server;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Router side: the repository URL policy.

struct Env {
    h: Harness,
    hub: Arc<SyncHub>,
    _cache: tempfile::TempDir,
}

fn env(b: common::Backend, policy: RepoPolicy) -> Env {
    let cache = tempfile::tempdir().unwrap();
    let mut settings = SyncSettings::with_cache(cache.path().to_path_buf());
    settings.policy = policy;
    let hub = SyncHub::new(settings);
    let Harness { app: _, state, url, db, scratch } = Harness::new(b);
    let state = state.with_sync(hub.clone());
    let h = Harness { app: app(state.clone(), Limits::default()), state, url, db, scratch };
    Env { h, hub, _cache: cache }
}

/// A sync engine over the same database with another policy (what a
/// restart with a changed config file gives).
fn syncer_with(policy: RepoPolicy) -> (cratond::sync::Syncer, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let mut settings = SyncSettings::with_cache(cache.path().to_path_buf());
    settings.policy = policy;
    (cratond::sync::Syncer::new(settings), cache)
}

fn policy(rules: &[(&str, Vec<String>)]) -> RepoPolicy {
    let mut p = RepoPolicy::default();
    for (name, allow) in rules {
        p.projects.insert(name.to_string(), ProjectPolicy { allow: allow.clone(), credentials: None });
    }
    p
}

fn seeded() -> upstream::Upstream {
    let up = upstream::Upstream::new();
    up.write("inv/hosts.yml", "all:\n  children:\n    web:\n      hosts:\n        w1:\n");
    up.write("inv/group_vars/web.yml", "secret_of_a: 42\n");
    up.commit_push("initial");
    up
}

fn failure(o: &Outcome) -> String {
    match o {
        Outcome::Failed(f) => f.to_string(),
        other => panic!("expected a failed sync, got {other:?}"),
    }
}

#[tokio::test]
async fn cross_project_repository_read() {
    for b in common::backends() {
        let up = seeded();
        let a_repo = format!("{}/**", up.dir.path().display());
        let e = env(b, policy(&[("a", vec![a_repo.clone()]), ("b", vec!["https://git.example.net/b/*".into()])]));
        let h = &e.h;
        let editor_a = h.token(Some("a"), Role::Editor);
        let editor_b = h.token(Some("b"), Role::Editor);
        let editor_c = h.token(Some("c"), Role::Editor);
        let root = h.token(None, Role::Root);
        let body = json!({"url": up.url(), "ref": "main", "path": "inv"});

        // A's editor may use A's repository (its allow-list names it).
        let id_a = h.create("/v1/config-refs", &editor_a, body.clone()).await;
        assert!(matches!(e.hub.syncer.sync(&mut h.conn(), id_a, false).unwrap(), Outcome::Applied { .. }), "{b:?}");

        // B's editor may not: 403 naming B's allow-list and the URL.
        let r = h.expect(403, "POST", "/v1/config-refs", &editor_b, Some(body.clone())).await;
        let msg = r.body["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("projects.\"b\".git_url_allow") && msg.contains(&up.url()), "{b:?}: {msg}");
        // A project without rules: local repositories are root-only.
        let r = h.expect(403, "POST", "/v1/config-refs", &editor_c, Some(body.clone())).await;
        let msg = r.body["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains("root-only") && msg.contains("projects.\"c\".git_url_allow"), "{b:?}: {msg}");
        let listed = h.expect(200, "GET", "/v1/config-refs", &editor_b, None).await;
        assert_eq!(listed.body["items"], json!([]), "{b:?}: a refused ref was stored");

        // Root may (and the sync honours root's choice).
        let id_root = h.create("/v1/config-refs?project=c", &root, body.clone()).await;
        assert!(matches!(e.hub.syncer.sync(&mut h.conn(), id_root, false).unwrap(), Outcome::Applied { .. }));

        // A policy change reaches existing refs at their next sync: A's
        // ref, created by an editor, is refused once A's allow-list no
        // longer names it; nothing it synced is touched. Root's ref of c
        // still syncs.
        let (strict, _cache) = syncer_with(policy(&[("a", vec!["https://git.example.net/a/*".into()])]));
        up.write("inv/group_vars/web.yml", "secret_of_a: 43\n");
        up.commit_push("change");
        let f = failure(&strict.sync(&mut h.conn(), id_a, false).unwrap());
        assert!(f.contains("projects.\"a\".git_url_allow") && f.contains("refused"), "{b:?}: {f}");
        let st = h.expect(200, "GET", &format!("/v1/config-refs/{id_a}"), &editor_a, None).await;
        assert_eq!(st.body["status"]["result"], "error", "{}", st.text);
        let groups = h.expect(200, "GET", "/v1/groups?name=web", &editor_a, None).await;
        let gid = groups.body["items"][0]["id"].as_i64().unwrap();
        let vars = h.expect(200, "GET", &format!("/v1/groups/{gid}/variables"), &editor_a, None).await;
        assert_eq!(vars.body["variables"], json!({"secret_of_a": 42}), "{b:?}");
        assert!(matches!(strict.sync(&mut h.conn(), id_root, false).unwrap(), Outcome::Applied { .. }), "{b:?}");
    }
}

/// A TCP service on loopback that answers every connection with an HTTP
/// error carrying a banner, counting connections.
fn banner_service() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            s.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 418 I'm a teapot\r\nServer: internal-banner-7\r\nContent-Length: 19\r\n\r\nredis_version:7.2.4",
            );
        }
    });
    (port, seen)
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn ssrf_through_ref_urls() {
    let e = env(common::Backend::Sqlite, RepoPolicy::default());
    let h = &e.h;
    let editor = h.token(Some("default"), Role::Editor);
    let root = h.token(None, Role::Root);
    let (port, seen) = banner_service();
    for url in [
        format!("http://127.0.0.1:{port}/x.git"),
        format!("http://localhost:{port}/x.git"),
        format!("http://[::1]:{port}/x.git"),
        format!("http://[::ffff:127.0.0.1]:{port}/x.git"),
        format!("http://2130706433:{port}/x.git"),
        format!("http://0.0.0.0:{port}/x.git"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "https://10.0.0.1/x.git".to_string(),
        "https://192.168.1.1/x.git".to_string(),
        "https://100.64.0.1/x.git".to_string(),
        "https://[fd00::1]/x.git".to_string(),
        "https://[fe80::1]/x.git".to_string(),
        "ssh://git@127.0.0.1/x.git".to_string(),
        "git@127.0.0.1:x.git".to_string(),
    ] {
        let r = h.expect(403, "POST", "/v1/config-refs", &editor, Some(json!({"url": url, "ref": "main"}))).await;
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.contains("public addresses only") && msg.contains(&url), "{url}: {msg}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the daemon connected to the internal service");

    // Root may point at internal services; a failed fetch then tells a
    // class, not what the peer said.
    let teapot = h
        .create("/v1/config-refs", &root, json!({"url": format!("http://127.0.0.1:{port}/x.git"), "ref": "main"}))
        .await;
    let closed = h
        .create(
            "/v1/config-refs",
            &root,
            json!({"url": format!("http://127.0.0.1:{}/x.git", closed_port()), "ref": "main"}),
        )
        .await;
    let t = failure(&e.hub.syncer.sync(&mut h.conn(), teapot, false).unwrap());
    let c = failure(&e.hub.syncer.sync(&mut h.conn(), closed, false).unwrap());
    eprintln!("status texts: {t:?} / {c:?}");
    for text in [&t, &c] {
        for leak in ["418", "teapot", "banner", "redis", "EOF", "refused", "status code"] {
            assert!(!text.to_lowercase().contains(&leak.to_lowercase()), "status echoes the peer ({leak}): {text}");
        }
    }
    assert!(t.ends_with("fetch failed: remote answered with an error"), "{t}");
    assert!(c.ends_with("fetch failed: could not connect"), "{c}");
    let st = h.expect(200, "GET", &format!("/v1/config-refs/{teapot}"), &editor, None).await;
    assert!(!st.text.contains("418"), "{}", st.text);
}

// ---------------------------------------------------------------------------
// Live daemon.

/// The status line and head of a response read from `s`.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Whether the peer closed `s` within `within` (reads until EOF/reset).
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return None
            }
            Err(_) => return Some(start.elapsed()),
        }
    }
}

fn webhook_head(len: usize, signature: Option<&str>) -> String {
    let sig = signature.map(|s| format!("X-Hub-Signature-256: {s}\r\n")).unwrap_or_default();
    format!(
        "POST /v1/webhooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: 00000000-0000-0000-0000-000000000001\r\n{sig}Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

#[test]
fn webhook_memory_pressure() {
    let db = fixtures::TestDb::new(fixtures::Backend::Sqlite);
    let server = Server::start(&db, &["--no-sync"], &[("CRATON_WEBHOOK_SECRET", "hook-secret")]);
    const BIG: usize = 24 << 20;
    let before = server.rss_kib();

    // 40 unsigned 24 MB posts at once: each is answered 401 from its
    // headers alone, before a byte of its body is sent.
    let answers: Vec<String> = (0..40)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(webhook_head(BIG, None).as_bytes()).unwrap();
            s
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|mut s| read_head(&mut s))
        .collect();
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 401"), "an unsigned post was not refused from its headers: {a:?}");
    }

    // Well-formed but wrong signatures must read the body to be checked:
    // at most 4 bodies at once and 64 MiB together (2 of 24 MB), the rest
    // 503 with Retry-After, at once, without their bodies.
    let fake = format!("sha256={}", "0".repeat(64));
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(webhook_head(BIG, Some(&fake)).as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = 0;
    for _ in 0..20 {
        let mut s = server.connect();
        s.write_all(webhook_head(BIG, Some(&fake)).as_bytes()).unwrap();
        let head = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 503"), "beyond the budget: {head:?}");
        assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head:?}");
        refused += 1;
    }
    // The two admitted bodies are sent in full: read, checked, refused.
    let threads: Vec<_> = held
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let chunk = vec![b' '; 1 << 20];
                for _ in 0..24 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
                read_head(&mut s)
            })
        })
        .collect();
    for t in threads {
        let head = t.join().unwrap();
        assert!(head.starts_with("HTTP/1.1 401"), "{head:?}");
    }
    // And then 40 concurrent unsigned senders that push their whole body
    // regardless: the daemon stops reading, its memory stays put.
    let pushers: Vec<_> = (0..40)
        .map(|_| {
            let mut s = server.connect();
            std::thread::spawn(move || {
                let _ = s.write_all(webhook_head(BIG, None).as_bytes());
                let chunk = vec![b'x'; 1 << 20];
                for _ in 0..24 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    let after = server.rss_kib();
    eprintln!("webhook: RSS {before} KiB before, {after} KiB after; {refused} refused with 503");
    assert!(after < before + 100 * 1024, "RSS grew from {before} KiB to {after} KiB");
}

#[test]
fn slowloris_and_idle_connections() {
    let db = fixtures::TestDb::new(fixtures::Backend::Sqlite);
    let server = Server::start(
        &db,
        &["--no-sync", "--header-read-timeout", "1", "--idle-timeout", "2", "--max-connections", "4"],
        &[],
    );

    // Slowloris: a request head dribbled a byte at a time is cut off at
    // the header-read timeout.
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(200));
            if w.write_all(b"X").is_err() {
                break;
            }
        }
    });
    let closed = closed_within(&mut s, Duration::from_secs(6));
    let closed = closed.expect("a slowloris connection stayed open for 6 s");
    eprintln!("slowloris closed after {closed:?}");
    assert!(closed < Duration::from_secs(3), "{closed:?}");

    // An idle keep-alive connection is closed after the idle timeout.
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
    let idle = closed_within(&mut s, Duration::from_secs(8)).expect("an idle connection stayed open for 8 s");
    eprintln!("idle keep-alive closed after {idle:?}");
    assert!(idle >= Duration::from_millis(1500) && idle < Duration::from_secs(4), "{idle:?}");

    // Cap: 4 silent connections hold every slot; a fifth, legitimate one
    // waits until the header timeout frees them, then is served.
    let squatters: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let mut s = server.connect();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut b = [0u8; 1];
    let early = s.read(&mut b);
    assert!(early.is_err(), "served while 4 of 4 slots were taken: {early:?}");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = read_head(&mut s);
    let waited = start.elapsed();
    eprintln!("at the cap: served after {waited:?}");
    assert!(head.starts_with("TTP/1.1 200") || head.starts_with("HTTP/1.1 200"), "{head:?}");
    assert!(waited >= Duration::from_millis(500) && waited < Duration::from_secs(5), "{waited:?}");
    drop(squatters);
}

fn http(port: u16, method: &str, path: &str, token: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("http://127.0.0.1:{port}{path}");
    let auth = format!("Bearer {token}");
    let mut resp = match method {
        "GET" => agent.get(&url).header("authorization", &auth).call().unwrap(),
        "DELETE" => agent.delete(&url).header("authorization", &auth).call().unwrap(),
        _ => unreachable!(),
    };
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, body)
}

#[test]
fn revoked_token_refused_at_once_by_other_process() {
    for b in fixtures::backends() {
        let db = fixtures::TestDb::new(b);
        let create = |role: &str| {
            fixtures::ok(fixtures::cratond(&db).args(["token", "create", "--project", "default", "--role", role]))
                .trim()
                .to_string()
        };
        let admin = create("admin");
        let reader = create("reader");
        let one = Server::start(&db, &["--no-sync"], &[]);
        let two = Server::start(&db, &["--no-sync"], &[]);
        let (s, tokens) = http(one.port, "GET", "/v1/tokens", &admin);
        assert_eq!(s, 200, "{tokens}");
        let id = tokens["tokens"]
            .as_array()
            .or(tokens["items"].as_array())
            .unwrap()
            .iter()
            .find(|t| reader.starts_with(t["prefix"].as_str().unwrap()) && t["role"] == "reader")
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        // Warm process two with the reader token.
        for _ in 0..3 {
            assert_eq!(http(two.port, "GET", "/v1/hosts", &reader).0, 200);
        }
        let (s, body) = http(one.port, "DELETE", &format!("/v1/tokens/{id}"), &admin);
        assert_eq!(s, 204, "{body}");
        let (s, body) = http(two.port, "GET", "/v1/hosts", &reader);
        assert_eq!(s, 401, "{b:?}: process two accepted a token process one revoked: {body}");
        assert_eq!(http(one.port, "GET", "/v1/hosts", &reader).0, 401);
    }
}
