//! `cratond secrets rotate|reencrypt` as operators run them: the built
//! binary next to a live `cratond serve` whose clients keep reading and
//! writing secret values all along, on every backend. Exit codes, output
//! lines and one-line errors; a reencrypt stopped at `--max` and one killed
//! in its grace period, both finished by the next run; transit rotation
//! against a real OpenBao whose old key version is then retired.

#[path = "../../tests/common/mod.rs"]
mod fixtures;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use fixtures::{backends, cratond, ok, Backend, Server, TestDb};
use serde_json::{json, Value};

use craton::store::schema::{secret_data_keys, secret_versions, secrets};

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let auth = format!("Bearer {token}");
    let r = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("POST", Some(b)) => agent.post(&url).header("Authorization", &auth).send_json(&b),
        ("PUT", Some(b)) => agent.put(&url).header("Authorization", &auth).send_json(&b),
        _ => unreachable!(),
    };
    match r {
        Ok(mut r) => {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

fn db_conn(db: &TestDb) -> craton::store::DbConn {
    craton::store::connect(&craton::store::DbUrl::parse(&db.url).unwrap()).unwrap()
}

/// One value a client reads: its `.../value` path, the project's token, the value.
#[derive(Clone)]
struct Value1 {
    path: String,
    token: String,
    value: String,
}

/// A database, a live daemon over it and secrets in two projects (on hosts,
/// groups and the project), created through the API.
struct Live {
    db: TestDb,
    server: Server,
    /// (project name, id, admin token)
    projects: Vec<(String, i64, String)>,
    values: Vec<Value1>,
    /// The `counter` secret the writer keeps updating.
    counter: (String, String),
    env: Vec<(String, String)>,
}

impl Live {
    fn new(b: Backend, env: &[(&str, &str)]) -> Live {
        let db = TestDb::new(b);
        ok(cratond(&db).arg("migrate"));
        craton::store::ensure_project(&mut db_conn(&db), "p2").unwrap();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let server = Server::start(&db, &["--no-sync"], &envs);
        let mut projects = vec![];
        let mut values = vec![];
        let mut counter = None;
        for name in ["default", "p2"] {
            let token =
                ok(cratond(&db).args(["token", "create", "--project", name, "--role", "admin"])).trim().to_string();
            let pid = craton::store::find_project(&mut db_conn(&db), name).unwrap().unwrap().id;
            let make = |path: &str, body: Value| -> i64 {
                let (s, text) = call(&server.base, &token, "POST", path, Some(body));
                assert_eq!(s, 201, "{b:?} POST {path}: {text}");
                serde_json::from_str::<Value>(&text).unwrap()["id"].as_i64().unwrap_or(0)
            };
            let host = make("/v1/hosts", json!({"name": "web1"}));
            let group = make("/v1/groups", json!({"name": "web"}));
            for (coll, secret, versions) in [
                (format!("/v1/hosts/{host}/secrets"), "db_password", 3),
                (format!("/v1/groups/{group}/secrets"), "api_token", 2),
                (format!("/v1/projects/{pid}/secrets"), "deploy_key", 1),
            ] {
                let mut value = String::new();
                for v in 1..=versions {
                    value = format!("{name}:{secret}:v{v}");
                    if v == 1 {
                        make(&coll, json!({"name": secret, "kind": "password", "value": value}));
                    } else {
                        let (s, text) = call(
                            &server.base,
                            &token,
                            "PUT",
                            &format!("{coll}/{secret}"),
                            Some(json!({"value": value})),
                        );
                        assert_eq!(s, 200, "{text}");
                    }
                }
                values.push(Value1 { path: format!("{coll}/{secret}/value"), token: token.clone(), value });
            }
            if counter.is_none() {
                let coll = format!("/v1/hosts/{host}/secrets");
                make(&coll, json!({"name": "counter", "kind": "opaque", "value": "counter-0"}));
                counter = Some((format!("{coll}/counter"), token.clone()));
            }
            projects.push((name.to_string(), pid, token));
        }
        Live { db, server, projects, values, counter: counter.unwrap(), env }
    }

    /// `cratond secrets ARGS` with the daemon's key provider environment.
    fn secrets(&self, args: &[&str]) -> Output {
        let mut c = cratond(&self.db);
        c.arg("secrets").args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        fixtures::run(&mut c)
    }

    /// (project id, active, key id) of every data key.
    fn keys(&self) -> Vec<(i64, bool, i64)> {
        secret_data_keys::table
            .select((secret_data_keys::project_id, secret_data_keys::active, secret_data_keys::id))
            .order((secret_data_keys::project_id, secret_data_keys::id))
            .load(&mut db_conn(&self.db))
            .unwrap()
    }

    fn active(&self, pid: i64) -> i64 {
        let a: Vec<i64> = self.keys().into_iter().filter(|k| k.0 == pid && k.1).map(|k| k.2).collect();
        assert_eq!(a.len(), 1, "project {pid}: one active key");
        a[0]
    }

    /// The data keys the project's versions are sealed under.
    fn version_keys(&self, pid: i64) -> BTreeSet<i64> {
        secret_versions::table
            .inner_join(secrets::table)
            .filter(secrets::project_id.eq(pid))
            .select(secret_versions::data_key_id)
            .load::<i64>(&mut db_conn(&self.db))
            .unwrap()
            .into_iter()
            .collect()
    }

    fn versions(&self, pid: i64) -> usize {
        secret_versions::table
            .inner_join(secrets::table)
            .filter(secrets::project_id.eq(pid))
            .count()
            .get_result::<i64>(&mut db_conn(&self.db))
            .unwrap() as usize
    }

    /// Every value read once through the daemon.
    fn check_values(&self, what: &str) {
        for v in &self.values {
            let (s, text) = call(&self.server.base, &v.token, "GET", &v.path, None);
            assert_eq!(s, 200, "{what}: {}: {text}", v.path);
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["value"], json!(v.value), "{what}: {}", v.path);
        }
    }
}

/// Clients of the daemon: two readers of every value and a writer of the
/// counter, until stopped; every failure kept.
struct Load {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(live: &Live) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (reads, writes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let errors = Arc::new(Mutex::new(vec![]));
        let mut threads = vec![];
        for _ in 0..2 {
            let (base, values) = (live.server.base.clone(), live.values.clone());
            let (stop, reads, errors) = (stop.clone(), reads.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for v in &values {
                        let (s, text) = call(&base, &v.token, "GET", &v.path, None);
                        let got = serde_json::from_str::<Value>(&text).ok().map(|j| j["value"].clone());
                        if s != 200 || got != Some(json!(v.value)) {
                            errors.lock().unwrap().push(format!("GET {}: {s} {text}", v.path));
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let (base, (path, token)) = (live.server.base.clone(), live.counter.clone());
        let (stop2, writes2, errors2) = (stop.clone(), writes.clone(), errors.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop2.load(Ordering::Relaxed) {
                i += 1;
                let (s, text) = call(&base, &token, "PUT", &path, Some(json!({"value": format!("counter-{i}")})));
                if s != 200 {
                    errors2.lock().unwrap().push(format!("PUT {path}: {s} {text}"));
                }
                writes2.fetch_add(1, Ordering::Relaxed);
            }
        }));
        Load { stop, reads, writes, errors, threads }
    }

    /// Waits until `n` more reads and writes happened.
    fn go_on(&self, n: usize) {
        let (r, w) = (self.reads.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.reads.load(Ordering::Relaxed) < r + n || self.writes.load(Ordering::Relaxed) < w + n.min(3) {
            assert!(Instant::now() < deadline, "the clients stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self, what: &str) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let e = self.errors.lock().unwrap();
        assert!(e.is_empty(), "{what}: {} client requests failed, first: {:?}", e.len(), &e[..e.len().min(5)]);
        (self.reads.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
    }
}

fn lines(o: &Output) -> Vec<String> {
    fixtures::stdout(o).lines().map(str::to_string).collect()
}

/// The cutoff a reencrypt prints on its first line.
fn cutoff(first: &str) -> i64 {
    first
        .strip_prefix("reencrypt: replacing the data keys created before ")
        .and_then(|r| r.strip_suffix(" (Unix ms)"))
        .unwrap_or_else(|| panic!("first line: {first}"))
        .parse()
        .unwrap()
}

/// Parses `project P: [new ]data key N replaces M: K versions resealed, data key M deleted`.
fn done_line(line: &str, project: &str, new: bool, old: i64) -> (i64, usize) {
    let head = format!("project {project}: {}data key ", if new { "new " } else { "" });
    let rest = line.strip_prefix(&head).unwrap_or_else(|| panic!("{line:?} does not start with {head:?}"));
    let (key, rest) = rest.split_once(&format!(" replaces {old}: ")).unwrap_or_else(|| panic!("{line}"));
    let (n, rest) = rest.split_once(" versions resealed, ").unwrap_or_else(|| panic!("{line}"));
    assert_eq!(rest, format!("data key {old} deleted"), "{line}");
    (key.parse().unwrap(), n.parse().unwrap())
}

fn one_line_error(o: &Output, what: &str) -> String {
    assert_eq!(o.status.code(), Some(1), "{what}: {}", fixtures::stderr(o));
    let err = fixtures::stderr(o);
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    assert!(err.starts_with("cratond: error: "), "{what}: {err}");
    err
}

#[test]
fn reencrypt_and_rotate_from_the_cli_under_a_live_daemon() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        let live = Live::new(b, &[("CRATON_MASTER_KEY_FILE", key.to_str().unwrap())]);
        let old: Vec<i64> = live.projects.iter().map(|p| live.active(p.1)).collect();
        let load = Load::start(&live);
        load.go_on(20);

        let o = live.secrets(&["reencrypt", "--grace", "1"]);
        assert!(o.status.success(), "{b:?}: {}", fixtures::stderr(&o));
        let out = lines(&o);
        assert_eq!(out.len(), 4, "{b:?}: {out:?}");
        let t = cutoff(&out[0]);
        let mut total = 0;
        let mut new = vec![];
        for (i, (name, pid, _)) in live.projects.iter().enumerate() {
            let line = out.iter().find(|l| l.starts_with(&format!("project {name}: "))).unwrap();
            let (k, n) = done_line(line, name, true, old[i]);
            assert_eq!(k, live.active(*pid), "{b:?}: {line}");
            // p2 has no writer: exactly its 6 versions. default also has the
            // counter's under the old key, unless the writer pruned them first.
            if name == "p2" {
                assert_eq!(n, 6, "{b:?}: {line}");
            } else {
                assert!(n >= 6, "{b:?}: {line}");
            }
            assert_eq!(live.version_keys(*pid), BTreeSet::from([k]), "{b:?}");
            total += n;
            new.push(k);
        }
        assert_eq!(
            out[3],
            format!("reencrypt: 2 projects rekeyed, 0 unchanged; {total} versions resealed, 2 old data keys deleted"),
            "{b:?}"
        );
        assert_eq!(live.keys(), [(live.projects[0].1, true, new[0]), (live.projects[1].1, true, new[1])], "{b:?}");
        load.go_on(20);

        // The same job again: a no-op.
        let o = live.secrets(&["reencrypt", "--before", &t.to_string()]);
        assert!(o.status.success(), "{}", fixtures::stderr(&o));
        assert_eq!(
            lines(&o),
            [
                format!("reencrypt: replacing the data keys created before {t} (Unix ms)"),
                format!("project default: data key {}: created after {t}, unchanged", new[0]),
                format!("project p2: data key {}: created after {t}, unchanged", new[1]),
                "reencrypt: 0 projects rekeyed, 2 unchanged; 0 versions resealed, 0 old data keys deleted".to_string(),
            ],
            "{b:?}"
        );

        // rotate with the file provider: one key version, nothing to rewrap.
        let o = live.secrets(&["rotate"]);
        assert!(o.status.success(), "{}", fixtures::stderr(&o));
        let out = lines(&o);
        assert_eq!(
            out[..2],
            [
                format!("project default: data key {}: file key version 1, current", new[0]),
                format!("project p2: data key {}: file key version 1, current", new[1]),
            ]
        );
        assert!(
            out[2].starts_with("rotate: file key version 1: 0 data keys rewrapped, 2 already current (the file provider has a single key version"),
            "{b:?}: {out:?}"
        );
        let (reads, writes) = load.finish(&format!("{b:?}"));
        live.check_values(&format!("{b:?} afterwards"));
        eprintln!(
            "{b:?}: {reads} reads and {writes} writes through the daemon during reencrypt and rotate, none failed"
        );

        // Failures: one line, exit 1, nothing changed.
        let keys = live.keys();
        let other = dir.path().join("other.key");
        craton::secrets::FileKeyProvider::open_or_create(&other).unwrap();
        let mut c = cratond(&live.db);
        c.args(["secrets", "reencrypt"]).env("CRATON_MASTER_KEY_FILE", &other);
        let o = fixtures::run(&mut c);
        let err = one_line_error(&o, "wrong key file");
        assert!(
            err.contains("reencrypt stopped (run it again with --before ")
                && err.contains("cannot unwrap the data key"),
            "{err}"
        );
        assert!(err.contains("other.key"), "{err}");
        assert_eq!(live.keys(), keys, "{b:?}: a wrong master key changes nothing");
        let mut c = cratond(&live.db);
        c.args(["secrets", "rotate"]).env("CRATON_MASTER_KEY_FILE", dir.path().join("missing.key"));
        let err = one_line_error(&fixtures::run(&mut c), "missing key file");
        assert!(err.contains("missing.key does not exist"), "{err}");
        assert!(!dir.path().join("missing.key").exists(), "{b:?}: no new key file made");
        let err = one_line_error(&live.secrets(&["reencrypt", "--project", "nope"]), "unknown project");
        assert!(err.contains("project \"nope\" not found"), "{err}");
        live.check_values(&format!("{b:?} at the end"));
    }
}

#[test]
fn a_stopped_or_killed_reencrypt_is_finished_by_the_next_run() {
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        let live = Live::new(b, &[("CRATON_MASTER_KEY_FILE", key.to_str().unwrap())]);
        let (p1, p2) = (live.projects[0].1, live.projects[1].1);
        let old = (live.active(p1), live.active(p2));
        let load = Load::start(&live);
        load.go_on(10);

        // --max 2: the first two versions of the first project, then stop.
        let o = live.secrets(&["reencrypt", "--max", "2"]);
        assert!(o.status.success(), "{}", fixtures::stderr(&o));
        let out = lines(&o);
        let t = cutoff(&out[0]);
        let new1 = live.active(p1);
        let left = live.versions(p1) - 2;
        assert!(
            out[1].starts_with(&format!(
                "project default: new data key {new1} replaces {}: 2 versions resealed, ",
                old.0
            )),
            "{out:?}"
        );
        assert!(out[1].ends_with(" left (--max)"), "{out:?}");
        assert!(out[3].contains(&format!("run it again with --before {t} to go on")), "{out:?}");
        assert_eq!(live.version_keys(p1), BTreeSet::from([old.0, new1]), "{b:?}: a mix");
        assert!(left > 0);
        load.go_on(10);

        // Go on, and kill it while it waits out the grace period: every
        // version is resealed, the old keys still there.
        let mut c = cratond(&live.db);
        c.args(["secrets", "reencrypt", "--before", &t.to_string(), "--grace", "120"])
            .env("CRATON_MASTER_KEY_FILE", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert_eq!(cutoff(first.trim_end()), t);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let k = live.keys();
            let settled = k.len() == 4
                && [p1, p2].iter().all(|&p| {
                    let a = k.iter().find(|x| x.0 == p && x.1).map(|x| x.2);
                    a.is_some() && live.version_keys(p) == BTreeSet::from([a.unwrap()])
                });
            if settled {
                break;
            }
            assert!(Instant::now() < deadline, "{b:?}: reencrypt did not get to its grace period: {k:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let new2 = live.active(p2);
        assert_eq!(live.active(p1), new1, "{b:?}: the interrupted run made no second key");
        assert_eq!(live.keys(), [(p1, false, old.0), (p1, true, new1), (p2, false, old.1), (p2, true, new2)]);
        load.go_on(20);

        // The next run with the same cutoff deletes the old keys, makes none.
        let o = live.secrets(&["reencrypt", "--before", &t.to_string(), "--grace", "1"]);
        assert!(o.status.success(), "{}", fixtures::stderr(&o));
        let out = lines(&o);
        assert_eq!(done_line(&out[1], "default", false, old.0).0, new1, "{out:?}");
        assert_eq!(done_line(&out[2], "p2", false, old.1).0, new2, "{out:?}");
        assert!(out[3].starts_with("reencrypt: 2 projects rekeyed, 0 unchanged; "), "{out:?}");
        assert_eq!(live.keys(), [(p1, true, new1), (p2, true, new2)], "{b:?}");
        load.go_on(10);
        load.finish(&format!("{b:?}"));
        live.check_values(&format!("{b:?} afterwards"));
    }
}

#[test]
fn transit_rotate_from_the_cli_under_a_live_daemon() {
    let Some(mut bao) = fixtures::openbao::OpenBao::start() else { return };
    bao.ok(&["secrets", "enable", "transit"]);
    let mut lives = vec![];
    for b in backends() {
        let tkey = format!("craton-{b:?}").to_lowercase();
        bao.ok(&["write", "-f", &format!("transit/keys/{tkey}")]);
        let env = [
            ("CRATON_KEY_PROVIDER", "transit"),
            ("CRATON_VAULT_ADDR", bao.addr.as_str()),
            ("CRATON_VAULT_TOKEN", bao.token.as_str()),
            ("CRATON_VAULT_TRANSIT_KEY", tkey.as_str()),
        ];
        let live = Live::new(b, &env);
        let keys: Vec<i64> = live.projects.iter().map(|p| live.active(p.1)).collect();
        let load = Load::start(&live);
        load.go_on(10);

        bao.ok(&["write", "-f", &format!("transit/keys/{tkey}/rotate")]);
        let o = live.secrets(&["rotate"]);
        assert!(o.status.success(), "{b:?}: {}", fixtures::stderr(&o));
        assert_eq!(
            lines(&o),
            [
                format!("project default: data key {}: transit key version 1 -> 2", keys[0]),
                format!("project p2: data key {}: transit key version 1 -> 2", keys[1]),
                "rotate: transit key version 2: 2 data keys rewrapped, 0 already current".to_string(),
            ],
            "{b:?}"
        );
        // Version 1 retired: the daemon keeps serving every value.
        bao.ok(&["write", &format!("transit/keys/{tkey}/config"), "min_decryption_version=2"]);
        load.go_on(20);

        let o = live.secrets(&["rotate", "--new-key-version", "--project", "p2"]);
        assert!(o.status.success(), "{b:?}: {}", fixtures::stderr(&o));
        assert_eq!(
            lines(&o),
            [
                "rotate: transit key version 3 is now the newest".to_string(),
                format!("project p2: data key {}: transit key version 2 -> 3", keys[1]),
                "rotate: transit key version 3: 1 data key rewrapped, 0 already current".to_string(),
            ],
            "{b:?}"
        );
        let stored: Vec<String> = secret_data_keys::table
            .select(secret_data_keys::wrapped)
            .order(secret_data_keys::project_id)
            .load(&mut db_conn(&live.db))
            .unwrap();
        assert!(stored[0].starts_with("vault:v2:") && stored[1].starts_with("vault:v3:"), "{b:?}: {stored:?}");

        let o = live.secrets(&["reencrypt", "--grace", "1"]);
        assert!(o.status.success(), "{b:?}: {}", fixtures::stderr(&o));
        assert!(lines(&o)[3].starts_with("reencrypt: 2 projects rekeyed, 0 unchanged; "), "{:?}", lines(&o));
        load.go_on(10);
        load.finish(&format!("{b:?} transit"));
        live.check_values(&format!("{b:?} afterwards"));
        lives.push(live);
    }
    // OpenBao down: rotate fails in one line, naming the provider, not the token.
    bao.stop();
    for live in &lives {
        let err = one_line_error(&live.secrets(&["rotate"]), "transit down");
        assert!(err.contains("key provider transit is unavailable") && !err.contains(&bao.token), "{err}");
    }
}
