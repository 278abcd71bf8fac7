//! Observability and transport of a real `cratond serve` over loopback:
//! `/metrics` scraped and parsed (text format 0.0.4) around requests, a
//! config ref sync and a playbook run, with the counters moving by exactly
//! what was done; a live event stream that stays uncompressed and
//! unbuffered; and craton-inventory's REST backend asking for gzip (seen
//! through a recording proxy) and printing what the database source prints.

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fixtures::{ansible, cratond, inventory, ok, Backend, Server, TestDb};
use serde_json::{json, Value};
use upstream::Upstream;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One scrape: every sample by its name and sorted labels.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

/// `name{k="v",...}` with the labels sorted, as [`Scrape`] keys samples.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    l.sort();
    format!("{name}{{{}}}", l.join(","))
}

/// Parses the Prometheus text exposition format (what this test needs of
/// it: HELP/TYPE comments, label values with escapes, float values).
fn parse(text: &str) -> Scrape {
    let mut samples = BTreeMap::new();
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = Vec::new();
                let mut chars = rest.chars().peekable();
                while chars.peek().is_some() {
                    let k: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut v = String::new();
                    loop {
                        match chars.next().unwrap_or_else(|| panic!("unterminated value: {line}")) {
                            '\\' => match chars.next() {
                                Some('n') => v.push('\n'),
                                Some(c) => v.push(c),
                                None => panic!("{line}"),
                            },
                            '"' => break,
                            c => v.push(c),
                        }
                    }
                    labels.push((k, v));
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (name, labels)
            }
        };
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(samples.insert(key(name, &l), value).is_none(), "duplicate series: {line}");
    }
    Scrape { samples, types }
}

impl Scrape {
    /// A sample's value; 0 when the series does not exist yet.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples.get(&key(name, labels)).copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.contains_key(&key(name, labels))
    }
}

fn scrape(server: &Server) -> Scrape {
    let mut resp = agent().get(format!("{}/metrics", server.base)).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    parse(&resp.body_mut().read_to_string().unwrap())
}

/// The fleet: h1 in web, local, with the venv's Python.
fn inventory_yaml() -> String {
    format!(
        "all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: {}\n  children:\n    web:\n      hosts:\n        h1: {{}}\n",
        ansible("python").display()
    )
}

/// A task, then two seconds of work: the stream is read mid-run.
const SITE: &str = r#"- name: site
  hosts: web
  gather_facts: false
  tasks:
    - name: hello
      debug:
        msg: hello
    - name: work
      raw: sleep 2
"#;

fn get_json(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let mut resp = agent()
        .get(format!("{}{path}", server.base))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null))
}

fn post_json(server: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let mut resp = agent()
        .post(format!("{}{path}", server.base))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(body)
        .unwrap();
    let status = resp.status().as_u16();
    (status, serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null))
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not {what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Every histogram's buckets are cumulative and end at its count.
fn histograms_are_consistent(s: &Scrape) {
    for (name, kind) in &s.types {
        if kind != "histogram" {
            continue;
        }
        let prefix = format!("{name}_bucket{{");
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (k, v) in s.samples.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
            let labels = &k[prefix.len()..k.len() - 1];
            let (rest, le): (Vec<&str>, Vec<&str>) = labels.split(',').partition(|l| !l.starts_with("le="));
            let le = le[0].trim_start_matches("le=").trim_matches('"');
            let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
            by_series.entry(rest.join(",")).or_default().push((le, *v));
        }
        assert!(!by_series.is_empty() || s.samples.keys().all(|k| !k.starts_with(&format!("{name}_count"))), "{name}");
        for (labels, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{name}{{{labels}}}: not cumulative");
            let count = s.samples[&format!("{name}_count{{{labels}}}")];
            assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count), "{name}{{{labels}}}");
        }
    }
}

#[test]
fn metrics_count_requests_a_sync_a_run_and_its_events() {
    let db = TestDb::new(Backend::Sqlite);
    let scratch = tempfile::tempdir().unwrap();
    let inv = scratch.path().join("fleet.yml");
    std::fs::write(&inv, inventory_yaml()).unwrap();
    ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
    let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
    let reader =
        ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "reader"])).trim().to_string();
    let up = Upstream::new();
    up.write("site.yml", SITE);
    up.write("inv/group_vars/web.yml", "http_port: 8080\n");
    up.commit_push("site and vars");
    let (runs_dir, cache_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let playbook = ansible("ansible-playbook");
    let server = Server::start(
        &db,
        &[],
        &[
            ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap()),
            ("CRATON_RUNS_DIR", runs_dir.path().to_str().unwrap()),
            ("CRATON_GIT_CACHE_DIR", cache_dir.path().to_str().unwrap()),
            ("HOME", scratch.path().to_str().unwrap()),
        ],
    );

    // Nothing happened yet (labelled families appear with their first
    // series; see the end for every name and type).
    let s0 = scrape(&server);
    assert_eq!(s0.get("http_server_active_requests", &[]), 1.0, "the scrape itself is in flight");
    assert_eq!(s0.get("craton_db_pool_max_connections", &[]), 8.0);

    // Requests: a warm-up (the token's first use), then 3 listings, 2
    // unknown hosts, 1 unknown route.
    let (st, _) = get_json(&server, &reader, "/v1/hosts");
    assert_eq!(st, 200);
    let s1 = scrape(&server);
    for _ in 0..3 {
        assert_eq!(get_json(&server, &reader, "/v1/hosts").0, 200);
    }
    for _ in 0..2 {
        assert_eq!(get_json(&server, &reader, "/v1/hosts/999999").0, 404);
    }
    assert_eq!(get_json(&server, &reader, "/v1/no-such-route").0, 404);
    let s2 = scrape(&server);
    let delta = |name: &str, labels: &[(&str, &str)]| s2.get(name, labels) - s1.get(name, labels);
    let dur = "http_server_request_duration_seconds_count";
    assert_eq!(delta(dur, &[("method", "GET"), ("route", "/v1/hosts"), ("status_class", "2xx")]), 3.0);
    assert_eq!(delta(dur, &[("method", "GET"), ("route", "/v1/hosts/{id}"), ("status_class", "4xx")]), 2.0);
    assert_eq!(delta(dur, &[("method", "GET"), ("route", "unmatched"), ("status_class", "4xx")]), 1.0);
    assert_eq!(delta(dur, &[("method", "GET"), ("route", "/metrics"), ("status_class", "2xx")]), 1.0, "scrape s1");
    let req = "craton_http_requests_total";
    assert_eq!(delta(req, &[("method", "GET"), ("route", "/v1/hosts/{id}"), ("status", "404")]), 2.0);
    assert_eq!(delta(req, &[("method", "GET"), ("route", "/v1/hosts"), ("status", "200")]), 3.0);
    assert!(
        s2.get(
            "http_server_request_duration_seconds_sum",
            &[("method", "GET"), ("route", "/v1/hosts"), ("status_class", "2xx")]
        ) > 0.0
    );
    // Each listing and lookup is one database call; the unknown route none.
    assert_eq!(delta("craton_db_pool_wait_seconds_count", &[]), 5.0);
    assert_eq!(s2.get("http_server_active_requests", &[]), 1.0, "in-flight requests were all taken off");
    assert_eq!(s2.get("craton_db_pool_pending_requests", &[]), 0.0);
    let (in_use, idle) = (
        s2.get("craton_db_pool_connections", &[("state", "in_use")]),
        s2.get("craton_db_pool_connections", &[("state", "idle")]),
    );
    assert!(idle >= 1.0 && in_use + idle <= 8.0, "in use {in_use}, idle {idle}");
    histograms_are_consistent(&s2);

    // A config ref: its first sync applies the commit.
    let before_sync = unix_now();
    let (st, r) = post_json(
        &server,
        &root,
        "/v1/config-refs",
        json!({"url": up.url(), "ref": "main", "path": "inv", "poll_interval": 3600}),
    );
    assert_eq!(st, 201, "{r}");
    let ref_id = r["id"].as_i64().unwrap();
    wait_until("synced", Duration::from_secs(60), || {
        get_json(&server, &root, &format!("/v1/config-refs/{ref_id}")).1["status"]["result"] == "ok"
    });
    let s3 = scrape(&server);
    assert_eq!(s3.get("craton_syncs_total", &[("outcome", "applied")]), 1.0);
    assert_eq!(s3.get("craton_sync_duration_seconds_count", &[("outcome", "applied")]), 1.0);
    for outcome in ["failed", "error"] {
        assert_eq!(s3.get("craton_syncs_total", &[("outcome", outcome)]), 0.0, "{outcome}");
    }
    let last = s3.get("craton_sync_last_success_timestamp_seconds", &[]);
    assert!(last >= before_sync && last <= unix_now(), "last success {last}, sync started {before_sync}");
    // "Sync now" of the same commit: unchanged, still a success.
    let unchanged = s3.get("craton_syncs_total", &[("outcome", "unchanged")]);
    let (st, r) = post_json(&server, &root, &format!("/v1/config-refs/{ref_id}/sync"), json!({}));
    assert_eq!(st, 202, "{r}");
    wait_until("synced again", Duration::from_secs(60), || {
        scrape(&server).get("craton_syncs_total", &[("outcome", "unchanged")]) == unchanged + 1.0
    });
    let s4 = scrape(&server);
    assert_eq!(s4.get("craton_syncs_total", &[("outcome", "applied")]), 1.0);
    assert!(s4.get("craton_sync_last_success_timestamp_seconds", &[]) >= last);

    // A run, whose event stream is read while it runs.
    let (st, run) = post_json(
        &server,
        &root,
        "/v1/runs",
        json!({"playbook": "site.yml", "repo": up.url(), "ref": "main", "group": "web"}),
    );
    assert_eq!(st, 201, "{run}");
    let id = run["id"].as_i64().unwrap();
    let (head, first_event_at) = read_stream_head_and_first_event(&server, &root, id);
    let head_l = head.to_ascii_lowercase();
    assert!(head_l.contains("content-type: text/event-stream"), "{head}");
    assert!(!head_l.contains("content-encoding"), "the event stream is never compressed: {head}");
    let (_, r) = get_json(&server, &root, &format!("/v1/runs/{id}"));
    assert_eq!(r["status"], "running", "the first event came {first_event_at:?} in, before the run ended: {r}");
    let s5 = scrape(&server);
    assert_eq!(s5.get("craton_runs_active", &[("status", "running")]), 1.0);
    let mut done = Value::Null;
    wait_until("finished", Duration::from_secs(120), || {
        done = get_json(&server, &root, &format!("/v1/runs/{id}")).1;
        !matches!(done["status"].as_str(), Some("queued" | "running"))
    });
    assert_eq!(done["status"], "successful", "{done}");
    let received = done["events"]["received"].as_f64().unwrap();
    assert!(received >= 6.0, "{done}");
    let s6 = scrape(&server);
    assert_eq!(s6.get("craton_runs_finished_total", &[("status", "successful")]), 1.0);
    assert_eq!(s6.get("craton_runs_active", &[("status", "running")]), 0.0);
    assert_eq!(s6.get("craton_runs_active", &[("status", "queued")]), 0.0);
    assert!(s6.has("craton_runs_active", &[("status", "queued")]), "the run was queued first");
    assert_eq!(s6.get("craton_run_events_received_total", &[]), received);
    assert_eq!(s6.get("craton_run_events_stored_total", &[]), received);
    assert_eq!(s6.get("craton_run_events_lost_total", &[]), 0.0);
    assert!(s6.get("craton_run_event_batch_write_seconds_count", &[]) >= 1.0);
    // Every family, with its type.
    for (name, kind) in [
        ("http_server_request_duration_seconds", "histogram"),
        ("craton_http_requests_total", "counter"),
        ("http_server_active_requests", "gauge"),
        ("craton_db_pool_connections", "gauge"),
        ("craton_db_pool_max_connections", "gauge"),
        ("craton_db_pool_wait_seconds", "histogram"),
        ("craton_db_pool_pending_requests", "gauge"),
        ("craton_db_pool_checkout_failures_total", "counter"),
        ("craton_syncs_total", "counter"),
        ("craton_sync_duration_seconds", "histogram"),
        ("craton_sync_last_success_timestamp_seconds", "gauge"),
        ("craton_runs_active", "gauge"),
        ("craton_runs_finished_total", "counter"),
        ("craton_run_events_received_total", "counter"),
        ("craton_run_events_stored_total", "counter"),
        ("craton_run_events_lost_total", "counter"),
        ("craton_run_event_batch_write_seconds", "histogram"),
    ] {
        assert_eq!(s6.types.get(name).map(String::as_str), Some(kind), "{name}: {:?}", s6.types);
    }
    // Conventional names: counters end in _total, and nothing else does.
    for (name, kind) in &s6.types {
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name} is a {kind}");
    }
    histograms_are_consistent(&s6);
}

/// GETs a run's events as SSE over a raw connection asking for gzip and
/// zstd; returns the response head and when the first playbook event
/// arrived.
fn read_stream_head_and_first_event(server: &Server, token: &str, id: i64) -> (String, Duration) {
    let start = Instant::now();
    let mut s = server.connect();
    write!(
        s,
        "GET /v1/runs/{id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\nAccept-Encoding: gzip, zstd\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("the stream answers within the read timeout");
        assert!(n > 0, "the stream closed before an event: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            // A playbook event (the stream may open with the run's state).
            if body.lines().any(|l| l.starts_with("data: ") && l.contains("\"counter\"")) {
                let _ = s.shutdown(Shutdown::Both);
                return (head.to_string(), start.elapsed());
            }
        }
    }
}

/// A loopback proxy to `upstream` that keeps every request and response
/// head passing through it.
fn recording_proxy(upstream: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let h = heads.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                let h = h.clone();
                std::thread::spawn(move || {
                    // Until the first head is whole (one request per connection).
                    let mut first = Some(Vec::new());
                    let mut buf = [0u8; 8192];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if let Some(f) = &mut first {
                            f.extend_from_slice(&buf[..n]);
                            if let Some((head, _)) = String::from_utf8_lossy(f).split_once("\r\n\r\n") {
                                h.lock().unwrap().push(head.to_string());
                                first = None;
                            }
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        }
    });
    (format!("http://127.0.0.1:{port}"), heads)
}

#[test]
fn craton_inventory_over_rest_asks_for_gzip_and_prints_the_same_bytes() {
    let db = TestDb::new(Backend::Sqlite);
    ok(cratond(&db).args(["import", "ansible"]).arg(fixtures::repo_root().join("tests/data/openstack_inventory.json")));
    let t = ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "reader"])).trim().to_string();
    let server = Server::start(&db, &["--no-sync"], &[]);
    let (proxy, heads) = recording_proxy(server.port);
    for args in [vec!["--list"], vec!["--list", "--pretty"], vec!["--host", "compute1"]] {
        heads.lock().unwrap().clear();
        let direct = ok(inventory(&db).args(&args));
        let over_rest = ok(inventory(&db)
            .args(&args)
            .env_remove("CRATON_DATABASE_URL")
            .env("CRATON_URL", &proxy)
            .env("CRATON_TOKEN", &t));
        assert_eq!(over_rest, direct, "{args:?}");
        let heads = heads.lock().unwrap().clone();
        let request = heads.iter().find(|h| h.starts_with("GET ")).unwrap_or_else(|| panic!("{heads:?}"));
        let response = heads.iter().find(|h| h.starts_with("HTTP/1.1 ")).unwrap_or_else(|| panic!("{heads:?}"));
        let request = request.to_ascii_lowercase();
        assert!(request.lines().any(|l| l.starts_with("accept-encoding:") && l.contains("gzip")), "{request}");
        let big = direct.len() > 1024;
        assert_eq!(
            response.to_ascii_lowercase().lines().any(|l| l == "content-encoding: gzip"),
            big,
            "{args:?} ({} bytes): {response}",
            direct.len()
        );
    }
}
