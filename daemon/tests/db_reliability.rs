//! Database reliability through the router and a real pool: a connection
//! cut by a TCP proxy (findings 7 and 8), a dropped database (8),
//! deadlocks between projects (10) and text the database would refuse
//! (11). The proxy is a few threads of this file between the pool and the
//! real PostgreSQL or MariaDB server: cutting it closes every proxied
//! socket and refuses new connections, as a network partition does.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{backends, Backend, Harness, Resp, TestDb};
use craton::store::tokens::Role;
use craton::store::{self, DbUrl};
use cratond::api::{app, Limits};
use cratond::state::{AppState, AuthMode};
use serde_json::json;

/// A loopback TCP proxy that can be cut and restored.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    socks: Arc<Mutex<Vec<TcpStream>>>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let socks: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (c, s, k) = (cut.clone(), stop.clone(), socks.clone());
        std::thread::spawn(move || {
            let mut listener = Some(first);
            while !s.load(Ordering::SeqCst) {
                if c.load(Ordering::SeqCst) {
                    // Closed listener: connections are refused.
                    listener = None;
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let l = listener.get_or_insert_with(|| TcpListener::bind(("127.0.0.1", port)).unwrap());
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(upstream) else { continue };
                        let mut list = k.lock().unwrap();
                        list.push(client.try_clone().unwrap());
                        list.push(server.try_clone().unwrap());
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        std::thread::spawn(move || pipe(client, server));
                        std::thread::spawn(move || pipe(s2, c2));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => {}
                }
            }
        });
        Proxy { port, cut, stop, socks }
    }

    /// Closes every proxied connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.socks.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// `url` with its host:port replaced by the proxy's, and the address it named.
fn via_proxy(url: &str) -> (SocketAddr, impl FnOnce(u16) -> String + '_) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, hostpath) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let (hostport, path) = hostpath.split_once('/').unwrap();
    let addr = hostport.to_socket_addrs().unwrap().next().unwrap();
    (addr, move |port| format!("{scheme}://{auth}127.0.0.1:{port}/{path}"))
}

/// The router over a pool that reaches the database through a proxy; the
/// harness's own connections (tokens, fixtures) go direct.
fn proxied(backend: Backend) -> (Arc<Harness>, Proxy) {
    let db = TestDb::new(backend);
    let url = DbUrl::parse(&db.url).unwrap();
    store::migrate(&mut store::connect(&url).unwrap()).unwrap();
    let (upstream, rewrite) = via_proxy(&db.url);
    let proxy = Proxy::start(upstream);
    let pool = store::pool::build(&DbUrl::parse(&rewrite(proxy.port)).unwrap(), 4).unwrap();
    let state = AppState::new(pool, AuthMode::Tokens);
    (
        Arc::new(Harness {
            app: app(state.clone(), Limits::default()),
            state,
            url,
            db,
            scratch: tempfile::tempdir().unwrap(),
        }),
        proxy,
    )
}

fn server_backends() -> Vec<Backend> {
    backends().into_iter().filter(|b| *b != Backend::Sqlite).collect()
}

/// A 503 as the API must give it: JSON error body and `Retry-After`.
fn assert_unavailable(r: &Resp, what: &str) {
    assert_eq!(r.status.as_u16(), 503, "{what}: {}", r.text);
    assert_eq!(r.body["error"]["status"], 503, "{what}: {}", r.text);
    assert!(r.headers.get("retry-after").is_some(), "{what}: 503 without Retry-After");
}

/// Findings 7 and 8: cut the proxy for 5 s (every request meanwhile must be
/// a 503, never a 500), restore it, and every request, /healthz included,
/// must succeed again within 3 s, and keep succeeding (no stale pooled
/// connection may fail a later request).
async fn recovers_after_connection_drop(backend: Backend) {
    let (h, proxy) = proxied(backend);
    let root = h.token(None, Role::Root);
    h.expect(201, "POST", "/v1/hosts?project=default", &root, Some(json!({"name": "before"}))).await;
    // Fill the pool: four connections, all in use once.
    for r in concurrent_gets(&h, &root, 8).await {
        assert_eq!(r.status.as_u16(), 200, "{backend:?}: {}", r.text);
    }

    let cut_at = Instant::now();
    proxy.cut();
    let mut during = Vec::new();
    while cut_at.elapsed() < Duration::from_secs(5) {
        let r = h.raw("GET", "/healthz", None, Vec::new()).await;
        assert_unavailable(&r, &format!("{backend:?}: /healthz during the cut"));
        let r = h.get("/v1/hosts?project=default", &root).await;
        assert_unavailable(&r, &format!("{backend:?}: /v1/hosts during the cut"));
        during.push(r.status.as_u16());
    }
    proxy.restore();
    let back = Instant::now();
    let recovered = loop {
        let health = h.raw("GET", "/healthz", None, Vec::new()).await;
        let list = h.get("/v1/hosts?project=default", &root).await;
        if health.status == 200 && list.status == 200 {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "{backend:?}: not recovered 3 s after the database came back: /healthz {} {}, /v1/hosts {} {}",
            health.status,
            health.text,
            list.status,
            list.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("{backend:?}: {} requests answered 503 during the cut; recovered {recovered:?} after it", during.len());
    // Every pooled connection again, reads and writes.
    for r in concurrent_gets(&h, &root, 12).await {
        assert_eq!(r.status.as_u16(), 200, "{backend:?} after recovery: {}", r.text);
    }
    h.expect(201, "POST", "/v1/hosts?project=default", &root, Some(json!({"name": "after"}))).await;
}

/// `n` host listings at once: as many pooled connections in use as the pool has.
async fn concurrent_gets(h: &Arc<Harness>, token: &str, n: usize) -> Vec<Resp> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (h, token) = (h.clone(), token.to_string());
            tokio::spawn(async move { h.get("/v1/hosts?project=default", &token).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_recovers_after_connection_drop() {
    if server_backends().contains(&Backend::Mysql) {
        recovers_after_connection_drop(Backend::Mysql).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_recovers_after_connection_drop() {
    if server_backends().contains(&Backend::Postgres) {
        recovers_after_connection_drop(Backend::Postgres).await;
    }
}

/// Finding 8: a database dropped under a running daemon (PostgreSQL with
/// FORCE, which terminates the daemon's connections; MariaDB's DROP) is an
/// outage: 503 with Retry-After, /healthz included, not 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_database_answers_503() {
    for b in server_backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        h.expect(200, "GET", "/v1/hosts?project=default", &root, None).await;
        let name = h.url.to_string().rsplit('/').next().unwrap().to_string();
        let admin = match b {
            Backend::Postgres => "postgres://postgres@127.0.0.1:5432/postgres",
            _ => "mysql://root@127.0.0.1:3306/mysql",
        };
        let drop_sql = match b {
            Backend::Postgres => format!("DROP DATABASE {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE {name}"),
        };
        let mut c = store::connect(&DbUrl::parse(admin).unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(&mut c, &drop_sql).unwrap();
        for _ in 0..3 {
            let r = h.get("/v1/hosts?project=default", &root).await;
            assert_unavailable(&r, &format!("{b:?}: /v1/hosts on a dropped database"));
            let r = h.raw("GET", "/healthz", None, Vec::new()).await;
            assert_unavailable(&r, &format!("{b:?}: /healthz on a dropped database"));
        }
    }
}

/// Finding 10: hosts with labels created in two projects at once deadlocked
/// on MariaDB (insert-intention locks on host_labels) and answered 500. The
/// store retries deadlocks and serialization failures; no request may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_deadlocks_are_retried() {
    for b in backends() {
        let h = Arc::new(Harness::new(b));
        let tokens = [h.token(Some("p1"), Role::Editor), h.token(Some("p2"), Role::Editor)];
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (h, token) = (h.clone(), tokens[w % 2].clone());
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..25 {
                    let body =
                        json!({"name": format!("w{w}h{i}"), "labels": ["a", "b", format!("l{i}"), format!("w{w}")]});
                    let r = h.call("POST", "/v1/hosts", &token, Some(body)).await;
                    statuses.push((r.status.as_u16(), r.text));
                }
                statuses
            }));
        }
        let mut failed = Vec::new();
        let mut total = 0;
        for t in tasks {
            for (status, text) in t.await.unwrap() {
                total += 1;
                if status != 201 {
                    failed.push(format!("{status} {text}"));
                }
            }
        }
        eprintln!("{b:?}: {total} concurrent host creations, {} failed", failed.len());
        assert!(
            failed.is_empty(),
            "{b:?}: {} of {total} failed, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
    }
}

/// Finding 11: text the database refuses (a token description over 191
/// characters on PostgreSQL and MariaDB, NUL anywhere on PostgreSQL) was a
/// 500. Every backend now answers the same 400 naming the field.
#[tokio::test]
async fn database_refused_input_is_400() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let admin = h.token(Some("default"), Role::Admin);
        let host = h.create("/v1/hosts", &admin, json!({"name": "h"})).await;
        let long = "x".repeat(192);
        let cases: Vec<(&str, String, Option<serde_json::Value>, &str, &str)> = vec![
            (
                "POST",
                "/v1/tokens".into(),
                Some(json!({"role": "reader", "description": long})),
                "description",
                "long description",
            ),
            (
                "POST",
                "/v1/tokens".into(),
                Some(json!({"role": "reader", "description": "a\u{0}b"})),
                "description",
                "NUL description",
            ),
            ("POST", "/v1/hosts".into(), Some(json!({"name": "h2", "parent": "a\u{0}b"})), "parent", "NUL parent"),
            (
                "POST",
                "/v1/hosts".into(),
                Some(json!({"name": "h3", "parent": "p".repeat(300)})),
                "parent",
                "long parent",
            ),
            ("POST", "/v1/hosts".into(), Some(json!({"name": "h4", "groups": ["g\u{0}"]})), "groups", "NUL group"),
            (
                "POST",
                "/v1/groups".into(),
                Some(json!({"name": "g1", "parents": ["x\u{0}"]})),
                "parents",
                "NUL parent group",
            ),
            (
                "POST",
                "/v1/groups".into(),
                Some(json!({"name": "g2", "children": ["\u{0}"]})),
                "children",
                "NUL child group",
            ),
            (
                "DELETE",
                format!("/v1/hosts/{host}/variables"),
                Some(json!({"keys": ["k\u{0}"]})),
                "keys",
                "NUL key (body)",
            ),
            // The query parameter is `key`: the 400 names the parameter as sent.
            ("DELETE", format!("/v1/hosts/{host}/variables?key=k%00"), None, "key", "NUL key (query)"),
        ];
        for (method, uri, body, field, what) in cases {
            let r = h.call(method, &uri, &admin, body).await;
            assert_eq!(r.status.as_u16(), 400, "{b:?}: {what}: {}", r.text);
            let message = r.body["error"]["message"].as_str().unwrap_or("");
            assert!(
                r.detail_fields().iter().any(|f| f == field) || message.starts_with(&format!("{field}: ")),
                "{b:?}: {what}: the 400 must name {field:?}: {}",
                r.text
            );
        }
        let r = h.get("/v1/hosts?project=a%00b", &root).await;
        assert_eq!(r.status.as_u16(), 400, "{b:?}: NUL ?project=: {}", r.text);
        assert!(r.text.contains("project"), "{b:?}: {}", r.text);
        // Nothing was written by the refused requests.
        let hosts = h.get("/v1/hosts", &admin).await;
        assert_eq!(hosts.names(), ["h"], "{b:?}");
    }
}
