//! Playbook runs end to end (issue 8) against a real `cratond serve`, real
//! ansible-core, real Redis, with the playbooks in a local bare git
//! repository over file:// (submitted with a root token: local repositories
//! are root-only).
//!
//! The recap test runs on every backend (it is what storage changes); the
//! process checks (SSE, Redis, cancel, timeout, crash, bad input) run on
//! SQLite only, the lost-run check on every backend (the lease sweep is SQL).

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fixtures::{ansible, ansible_env, backends, cratond, ok, Backend, Server, TestDb};
use serde_json::{json, Value};
use upstream::Upstream;

/// The hosts: web h01-h15, db h16-h30, cache h31-h39 (all local), and
/// edge's h40 over ssh to a closed loopback port.
fn inventory_yaml() -> String {
    let python = ansible("python");
    let hosts = |r: std::ops::RangeInclusive<u32>| -> String {
        r.map(|i| format!("        h{i:02}: {{}}\n")).collect::<String>()
    };
    format!(
        "all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: {py}\n  children:\n    fleet:\n      children:\n        web:\n          hosts:\n{web}        db:\n          hosts:\n{db}        cache:\n          hosts:\n{cache}        edge:\n          hosts:\n            h40:\n              ansible_connection: ssh\n              ansible_host: 127.0.0.1\n              ansible_port: {port}\n              ansible_ssh_timeout: 2\n              ansible_timeout: 2\n",
        py = python.display(),
        web = hosts(1..=15).replace("        h", "            h"),
        db = hosts(16..=30).replace("        h", "            h"),
        cache = hosts(31..=39).replace("        h", "            h"),
        port = closed_port(),
    )
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Changes, skips, fails on chosen hosts, a block/rescue, a loop, a handler,
/// an ignored failure; `raw` reaches every host (and finds h40 unreachable).
/// Only `raw` starts a process per host: the rest run in the controller.
const SITE: &str = r#"- name: fleet play
  hosts: fleet
  gather_facts: false
  tasks:
    - name: reach
      raw: "true"
      changed_when: false
    - name: change on web
      debug:
        msg: changing
      changed_when: "'web' in group_names"
    - name: skip on db
      debug:
        msg: not db
      when: "'db' not in group_names"
    - name: fail on chosen hosts
      fail:
        msg: chosen to fail
      when: inventory_hostname in ['h05', 'h20']
    - name: guarded
      block:
        - name: fail in block on cache
          fail:
            msg: cache fails here
          when: "'cache' in group_names"
      rescue:
        - name: rescue it
          debug:
            msg: rescued
    - name: loop
      debug:
        msg: "item {{ item }}"
      loop: [1, 2, 3]
      changed_when: item == 2 and 'db' in group_names
    - name: notify on web
      debug:
        msg: notifying
      changed_when: true
      notify: restart
      when: "'web' in group_names"
    - name: ignored failure on db
      fail:
        msg: ignored
      ignore_errors: true
      when: "'db' in group_names"
  handlers:
    - name: restart
      debug:
        msg: handled
"#;

/// Four steps of about a second each, for cancels, timeouts and streams
/// joined mid-run.
const SLOW: &str = r#"- name: slow play
  hosts: all
  gather_facts: false
  tasks:
    - name: step 1
      raw: sleep 1
    - name: step 2
      raw: sleep 1
    - name: step 3
      raw: sleep 1
    - name: step 4
      raw: sleep 1
"#;

/// A step that would take 30 s: cancels and timeouts must not wait for it.
const HANG: &str = r#"- name: hanging play
  hosts: all
  gather_facts: false
  tasks:
    - name: first
      debug:
        msg: first
    - name: hang
      raw: sleep 30
    - name: after the hang
      debug:
        msg: never
"#;

/// Not a playbook ansible can parse.
const BOGUS: &str = "- name: broken\n  hosts: all\n  tasks: [ {\n";
/// Writes h01's secret where the test reads it back.
const SECRET: &str = "- hosts: h01\n  gather_facts: false\n  tasks:\n    - copy:\n        content: \"{{ run_secret }}\"\n        dest: \"{{ out }}\"\n";

fn playbook_repo() -> Upstream {
    let up = Upstream::new();
    up.write("site.yml", SITE);
    up.write("slow.yml", SLOW);
    up.write("bogus.yml", BOGUS);
    up.write("hang.yml", HANG);
    up.write("secret.yml", SECRET);
    up.commit_push("playbooks");
    up
}

/// One daemon over one database with the fleet imported, a root token and
/// the playbook repository.
struct Env {
    server: Server,
    db: TestDb,
    root: String,
    repo: Upstream,
    runs_dir: tempfile::TempDir,
    cache_dir: tempfile::TempDir,
    home: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

impl Env {
    fn new(b: Backend, extra_env: &[(&str, &str)]) -> Env {
        let db = TestDb::new(b);
        let scratch = tempfile::tempdir().unwrap();
        let inv = scratch.path().join("fleet.yml");
        std::fs::write(&inv, inventory_yaml()).unwrap();
        ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
        let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
        let (runs_dir, cache_dir, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), scratch);
        let extra_env = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut env =
            Env { server: dummy_server(), db, root, repo: playbook_repo(), runs_dir, cache_dir, home, extra_env };
        env.server = env.start();
        env
    }

    fn start(&self) -> Server {
        let playbook = ansible("ansible-playbook");
        let mut envs: Vec<(&str, &str)> = vec![
            ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap()),
            ("CRATON_RUNS_DIR", self.runs_dir.path().to_str().unwrap()),
            ("CRATON_GIT_CACHE_DIR", self.cache_dir.path().to_str().unwrap()),
            ("HOME", self.home.path().to_str().unwrap()),
        ];
        envs.extend(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Server::start(&self.db, &["--no-sync"], &envs)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let a = agent();
        let auth = format!("Bearer {}", self.root);
        let mut resp = match body {
            Some(b) => a.post(self.url(path)).header("Authorization", &auth).send_json(b).unwrap(),
            None if method == "POST" => a.post(self.url(path)).header("Authorization", &auth).send_empty().unwrap(),
            None => a.get(self.url(path)).header("Authorization", &auth).call().unwrap(),
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn get(&self, path: &str) -> Value {
        let (s, v) = self.call("GET", path, None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    fn bytes(&self, path: &str) -> Vec<u8> {
        let mut resp =
            agent().get(self.url(path)).header("Authorization", format!("Bearer {}", self.root)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap()
    }

    /// POST /v1/runs of `playbook` on `extra` (group etc.); returns the run.
    fn submit(&self, playbook: &str, extra: Value) -> Value {
        let mut body = json!({"playbook": playbook, "repo": self.repo.url(), "ref": "main"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (s, run) = self.call("POST", "/v1/runs", Some(body));
        assert_eq!(s, 201, "POST /v1/runs: {run}");
        run
    }

    fn run(&self, id: i64) -> Value {
        self.get(&format!("/v1/runs/{id}"))
    }

    /// Polls the run until `done` holds for it.
    fn wait_for(&self, id: i64, within: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let r = self.run(id);
            if done(&r) {
                return r;
            }
            assert!(Instant::now() < deadline, "run {id}: not {what} within {within:?}: {r}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_final(&self, id: i64, within: Duration) -> Value {
        self.wait_for(id, within, "finished", |r| !matches!(r["status"].as_str(), Some("queued") | Some("running")))
    }

    /// Every stored event of a run (JSON pages).
    fn events(&self, id: i64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.get(&format!("/v1/runs/{id}/events?after={after}&limit=1000"));
            let items = page["items"].as_array().unwrap().clone();
            if items.is_empty() {
                return out;
            }
            after = items.last().unwrap()["counter"].as_i64().unwrap();
            out.extend(items);
        }
    }

    /// Live processes of this daemon's runs: those whose environment has a
    /// CRATON_EVENTS_SOCKET under its runs directory (ansible's workers are
    /// in sessions of their own, so the process group alone misses them).
    fn run_procs(&self) -> Vec<(i32, i32, String)> {
        let needle = format!("CRATON_EVENTS_SOCKET={}", self.runs_dir.path().display());
        procs()
            .into_iter()
            .filter(|(pid, _, _)| {
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                env.split(|b| *b == 0).any(|kv| kv.starts_with(needle.as_bytes()))
            })
            .collect()
    }

    /// The process groups ansible-playbook leads (its workers lead groups
    /// of their own: the playbook's is the one whose parent is no run's).
    fn playbook_groups(&self) -> Vec<i32> {
        let procs = self.run_procs();
        let pids: std::collections::HashSet<i32> = procs.iter().map(|p| p.0).collect();
        let mut g: Vec<i32> = procs
            .iter()
            .filter(|(pid, pgrp, _)| pid == pgrp && !pids.contains(&ppid(*pid)))
            .map(|(_, g, _)| *g)
            .collect();
        g.sort();
        g.dedup();
        g
    }
}

fn dummy_server() -> Server {
    // Replaced at once by Env::new; a child that exits by itself.
    Server { child: Command::new("true").spawn().unwrap(), port: 0, base: String::new() }
}

/// (pid, process group, command line) of every process.
fn procs() -> Vec<(i32, i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so from the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        let pgrp: i32 = fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push((pid, pgrp, cmd));
    }
    out
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

fn group_alive(pgrp: i32) -> Vec<(i32, String)> {
    procs().into_iter().filter(|(_, g, _)| *g == pgrp).map(|(p, _, c)| (p, c)).collect()
}

fn kill_pid(pid: i32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct SseEvent {
    id: Option<i64>,
    event: String,
    data: String,
}

struct SseStream {
    lines: std::io::Lines<BufReader<Box<dyn Read + Send>>>,
}

impl SseStream {
    fn open(env: &Env, id: i64, last_event_id: Option<i64>) -> SseStream {
        let mut req = agent()
            .get(env.url(&format!("/v1/runs/{id}/events")))
            .header("Authorization", format!("Bearer {}", env.root))
            .header("Accept", "text/event-stream");
        if let Some(l) = last_event_id {
            req = req.header("Last-Event-ID", l.to_string());
        }
        let resp = req.call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        SseStream { lines: BufReader::new(reader).lines() }
    }

    fn next(&mut self) -> Option<SseEvent> {
        let (mut id, mut event, mut data) = (None, String::from("message"), Vec::<String>::new());
        let mut any = false;
        for line in self.lines.by_ref() {
            let line = line.ok()?;
            if line.is_empty() {
                if any {
                    return Some(SseEvent { id, event, data: data.join("\n") });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (k, v) =
                line.split_once(':').map(|(k, v)| (k, v.strip_prefix(' ').unwrap_or(v))).unwrap_or((&line, ""));
            any = true;
            match k {
                "id" => id = v.parse().ok(),
                "event" => event = v.to_string(),
                "data" => data.push(v.to_string()),
                _ => {}
            }
        }
        None
    }

    /// Reads to the end: the run events' counters, and the `end` run.
    fn drain(&mut self, mut on_event: impl FnMut(&Value)) -> (Vec<i64>, Option<Value>) {
        let mut counters = Vec::new();
        while let Some(e) = self.next() {
            match e.event.as_str() {
                "run_event" => {
                    let v: Value = serde_json::from_str(&e.data).unwrap();
                    assert_eq!(e.id, v["counter"].as_i64(), "SSE id is the counter: {e:?}");
                    counters.push(e.id.unwrap());
                    on_event(&v);
                }
                "end" => {
                    assert!(self.next().is_none(), "nothing after `end`");
                    return (counters, Some(serde_json::from_str(&e.data).unwrap()));
                }
                "status" => {}
                other => panic!("unexpected SSE event {other:?}: {e:?}"),
            }
        }
        (counters, None)
    }
}

/// The PLAY RECAP of ansible-playbook's default output, by host.
fn parse_recap(out: &str) -> BTreeMap<String, BTreeMap<String, i64>> {
    let tail = out.rsplit_once("PLAY RECAP").unwrap_or_else(|| panic!("no PLAY RECAP in:\n{out}")).1;
    let mut m = BTreeMap::new();
    for line in tail.lines().skip(1) {
        let Some((host, counters)) = line.split_once(" : ") else { continue };
        let c: BTreeMap<String, i64> = counters
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (if k == "failed" { "failures".to_string() } else { k.to_string() }, v.parse().unwrap()))
            .collect();
        m.insert(host.trim().to_string(), c);
    }
    m
}

const COUNTERS: [&str; 7] = ["ok", "changed", "unreachable", "failures", "skipped", "rescued", "ignored"];

/// The recap Craton recorded (GET /v1/runs/{id}/hosts), as parse_recap's.
fn recorded_recap(env: &Env, id: i64) -> BTreeMap<String, BTreeMap<String, i64>> {
    let hosts = env.get(&format!("/v1/runs/{id}/hosts"));
    hosts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let c = COUNTERS.iter().map(|k| (k.to_string(), h[*k].as_i64().unwrap())).collect();
            (h["host"].as_str().unwrap().to_string(), c)
        })
        .collect()
}

/// ansible-playbook without Craton on an unpacked bundle, in the checked-out
/// repository: (rc, recap).
fn direct_ansible(bundle: &[u8], repo: &Path, playbook: &str) -> (i32, BTreeMap<String, BTreeMap<String, i64>>) {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir(&inv).unwrap();
    craton::bundle::unpack_tgz(bundle, &inv).unwrap();
    let mut cmd = Command::new(ansible("ansible-playbook"));
    ansible_env(&mut cmd, dir.path())
        .current_dir(repo)
        .env("HOME", dir.path())
        .arg("-i")
        .arg(inv.join("hosts"))
        .args(["--forks=40", playbook]);
    let o = fixtures::run(&mut cmd);
    (o.status.code().unwrap(), parse_recap(&fixtures::stdout(&o)))
}

#[test]
fn recorded_results_equal_ansibles_recap_on_every_backend() {
    let mut direct: Option<(Vec<u8>, i32, BTreeMap<String, BTreeMap<String, i64>>)> = None;
    for b in backends() {
        let t0 = Instant::now();
        let env = Env::new(b, &[]);
        let run = env.submit("site.yml", json!({"group": "fleet", "forks": 40}));
        let id = run["id"].as_i64().unwrap();
        assert_eq!(run["status"], "queued", "{run}");
        assert_eq!(run["counts"]["hosts"], 40, "{run}");
        // The whole stream, from the start: every counter once, in order, then `end`.
        let mut stream = SseStream::open(&env, id, None);
        let (counters, end) = stream.drain(|_| {});
        let end = end.unwrap_or_else(|| panic!("{b:?}: the stream ended without `end`"));
        let run = env.run(id);
        let n = run["events"]["received"].as_i64().unwrap();
        assert_eq!(counters, (1..=n).collect::<Vec<_>>(), "{b:?}: SSE counters");
        assert_eq!(end["status"], run["status"], "{b:?}: end carries the final run");
        assert_eq!(run["events"]["lost"], false, "{b:?}: {run}");
        let events = env.events(id);
        assert_eq!(events.last().unwrap()["counter"].as_i64(), Some(n), "{b:?}: received = last counter");
        assert_eq!(events.last().unwrap()["event"], "playbook_on_stats");

        let bundle = env.bytes(&format!("/v1/runs/{id}/bundle"));
        let (rc, recap) = match &direct {
            Some((bytes, rc, recap)) if *bytes == bundle => (*rc, recap.clone()),
            _ => {
                let (rc, recap) = direct_ansible(&bundle, &env.repo.work, "site.yml");
                direct = Some((bundle.clone(), rc, recap.clone()));
                (rc, recap)
            }
        };
        assert_eq!(recap.len(), 40, "{recap:?}");
        assert_eq!(recorded_recap(&env, id), recap, "{b:?}: Craton's per-host results vs PLAY RECAP");
        assert_eq!(run["rc"].as_i64(), Some(rc as i64), "{b:?}: rc: {run}");
        assert_eq!(run["status"], if rc == 0 { "successful" } else { "failed" }, "{b:?}: {run}");
        // Counts are hosts by their worst result.
        assert_eq!(
            (&run["counts"]["failed"], &run["counts"]["unreachable"], &run["counts"]["changed"]),
            (&json!(2), &json!(1), &json!(28)),
            "{b:?}: {run}"
        );
        let hosts = env.get(&format!("/v1/runs/{id}/hosts"));
        let status: BTreeMap<&str, &str> = hosts["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["host"].as_str().unwrap(), h["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            (status["h40"], status["h05"], status["h01"], status["h31"]),
            ("unreachable", "failed", "changed", "ok")
        );

        // Resume from a middle Last-Event-ID: exactly the rest.
        let mid = n / 2;
        let (rest, end) = SseStream::open(&env, id, Some(mid)).drain(|_| {});
        assert_eq!(rest, (mid + 1..=n).collect::<Vec<_>>(), "{b:?}: resumed stream");
        assert!(end.is_some());

        // Reachability of every targeted host, from this run.
        reachability(&env, id, b);
        eprintln!("{b:?}: recap run in {:?}", t0.elapsed());
    }
}

/// Every targeted host's last run status and reachable/unreachable time.
fn reachability(env: &Env, id: i64, b: Backend) {
    use diesel::prelude::*;
    let mut conn = env.db.conn();
    let rows: Vec<(String, i64)> = {
        use craton::store::schema::hosts;
        hosts::table.select((hosts::name, hosts::id)).load(&mut conn).unwrap()
    };
    let ids: Vec<i64> = rows.iter().map(|(_, i)| *i).collect();
    let states = craton::store::runs::host_states(&mut conn, &ids).unwrap();
    assert_eq!(states.len(), 40, "{b:?}: every targeted host has a last run");
    for (name, hid) in &rows {
        let s = &states[hid];
        assert_eq!(s.last_run_id, id, "{b:?}: {name}");
        if name == "h40" {
            assert_eq!(s.last_run_status, "unreachable", "{b:?}");
            assert!(s.last_unreachable_at.is_some() && s.last_reachable_at.is_none(), "{b:?}: {s:?}");
        } else {
            assert!(s.last_reachable_at.is_some() && s.last_unreachable_at.is_none(), "{b:?}: {name}: {s:?}");
        }
    }
    // On the API: GET /v1/hosts/{id} and the last_run_status filter.
    let h40 = rows.iter().find(|(n, _)| n == "h40").unwrap().1;
    let host = env.get(&format!("/v1/hosts/{h40}"));
    assert_eq!(host["last_run"]["status"], "unreachable", "{b:?}: {host}");
    assert_eq!(host["last_run"]["run"], id, "{b:?}: {host}");
    let unreachable = env.get("/v1/hosts?last_run_status=unreachable");
    let names: Vec<&str> =
        unreachable["items"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["h40"], "{b:?}: {unreachable}");
}

/// Task names of a run's stored events.
fn tasks_started(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "playbook_on_task_start")
        .map(|e| e["task"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Redis messages on `craton:runs:*` while the subscription lives.
fn redis_subscriber() -> (mpsc::Receiver<(String, String)>, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let s = stop.clone();
    std::thread::spawn(move || {
        let client = redis::Client::open("redis://127.0.0.1:6379/").unwrap();
        let mut conn = client.get_connection().expect("redis at 127.0.0.1:6379");
        let mut ps = conn.as_pubsub();
        ps.psubscribe("craton:runs:*").unwrap();
        ps.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        ready_tx.send(()).unwrap();
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            match ps.get_message() {
                Ok(m) => {
                    let payload: String = m.get_payload().unwrap();
                    if tx.send((m.get_channel_name().to_string(), payload)).is_err() {
                        return;
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => panic!("redis subscription: {e}"),
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("subscribed to redis");
    (rx, stop)
}

/// A stream joined mid-run gets the stored events, then the live ones, no
/// gap, no duplicate; a graceful cancel stops after the current task; Redis
/// subscribers see every event in counter order and the end.
#[test]
fn live_stream_redis_and_graceful_cancel() {
    let (redis_rx, stop) = redis_subscriber();
    let env = Env::new(Backend::Sqlite, &[("CRATON_REDIS_URL", "redis://127.0.0.1:6379/")]);
    let run = env.submit("slow.yml", json!({"group": "web", "limit": "h01"}));
    let id = run["id"].as_i64().unwrap();
    let created_at = run["created_at"].clone();
    // Join once step 1 is stored.
    env.wait_for(id, Duration::from_secs(60), "in step 1", |r| r["events"]["received"].as_i64().unwrap_or(0) >= 3);
    let mut stream = SseStream::open(&env, id, None);
    let mut canceled = false;
    let (counters, end) = stream.drain(|e| {
        if e["event"] == "playbook_on_task_start" && e["task"] == "step 2" && !canceled {
            let (s, r) = env.call("POST", &format!("/v1/runs/{id}/cancel"), Some(json!({"mode": "graceful"})));
            assert_eq!(s, 202, "{r}");
            canceled = true;
        }
    });
    assert!(canceled, "step 2 started");
    let end = end.expect("`end` after the last event");
    let run = env.wait_final(id, Duration::from_secs(30));
    assert_eq!(run["status"], "canceled", "{run}");
    assert_eq!(end["status"], "canceled");
    assert_eq!(run["rc"], 99, "ansible-playbook's rc for an interrupt: {run}");
    let n = run["events"]["received"].as_i64().unwrap();
    assert_eq!(counters, (1..=n).collect::<Vec<_>>(), "stored then live, no gap, no duplicate");
    let events = env.events(id);
    assert_eq!(events.len() as i64, n);
    let tasks = tasks_started(&events);
    assert!(tasks.contains(&"step 2".to_string()), "{tasks:?}");
    assert!(!tasks.iter().any(|t| t == "step 3" || t == "step 4"), "a task after the current one ran: {tasks:?}");

    // Redis: this run's messages (other test processes may publish on the same
    // channel names: keep only this run's events and end).
    let uuids: std::collections::HashSet<String> =
        events.iter().map(|e| e["uuid"].as_str().unwrap().to_string()).collect();
    let channel = format!("craton:runs:{id}");
    let (mut seen, mut ended) = (Vec::new(), None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ended.is_none() && Instant::now() < deadline {
        let Ok((ch, payload)) = redis_rx.recv_timeout(Duration::from_millis(500)) else { continue };
        if ch != channel {
            continue;
        }
        let m: Value = serde_json::from_str(&payload).unwrap();
        match m["type"].as_str().unwrap() {
            "event" if uuids.contains(m["event"]["uuid"].as_str().unwrap_or("")) => {
                seen.push(m["event"]["counter"].as_i64().unwrap())
            }
            "end" if m["run"]["created_at"] == created_at => ended = Some(m["run"].clone()),
            _ => {}
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "Redis: every event once, in counter order");
    let ended = ended.expect("Redis: an end message");
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended, run, "Redis end payload = the REST run");
}

/// Bad input is a 400 naming the field, with nothing queued.
#[test]
fn bad_input_is_a_400_naming_the_field() {
    let env = Env::new(Backend::Sqlite, &[]);

    // Bad input first: nothing may be queued by it.
    let base = json!({"playbook": "site.yml", "repo": env.repo.url(), "ref": "main", "group": "fleet"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("group", json!("nope")), "group"),
        (with("playbook", json!("../x.yml")), "playbook"),
        (with("bogus_field", json!(1)), "bogus_field"),
        (with("repo", json!("ftp://example.invalid/x")), "repo"),
        (with("repo", json!("not a url")), "repo"),
        (with("filter", json!(["nosuchkey=1"])), "filter"),
    ] {
        let (s, r) = env.call("POST", "/v1/runs", Some(body.clone()));
        assert_eq!(s, 400, "{body}: {r}");
        let fields: Vec<&str> =
            r["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body}: {fields:?} should name {field}: {r}");
    }
    assert_eq!(env.get("/v1/runs")["items"], json!([]), "bad requests queued nothing");

    // A daemon without ansible-playbook says so at submit time (a 503 that
    // names it, not the database's generic one), and still answers 404 for a
    // run that does not exist, whatever the route.
    let bare = Env::new(Backend::Sqlite, &[("CRATON_ANSIBLE_PLAYBOOK", "/nonexistent/ansible-playbook")]);
    let (s, r) = bare.call("POST", "/v1/runs", Some(base.clone()));
    assert_eq!(s, 503, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("ansible-playbook not found") && message.contains("CRATON_ANSIBLE_PLAYBOOK"), "{r}");
    for route in ["/v1/runs/987654/resume", "/v1/runs/987654/cancel", "/v1/runs/-9223372036854775808/resume"] {
        let (s, r) = bare.call("POST", route, None);
        assert_eq!(s, 404, "POST {route}: {r}");
    }
    assert_eq!(bare.get("/v1/runs")["items"], json!([]), "a daemon without ansible-playbook queued nothing");
}

/// A run sees its project's secrets through the bundle's vault client,
/// whose password file lives only in the run's directory: the play opens
/// the value, and neither the password nor the value is in the stored
/// stdout, the events or the bundle in clear.
#[test]
fn a_run_opens_the_projects_secrets() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("master.key");
    let env = Env::new(Backend::Sqlite, &[("CRATON_MASTER_KEY_FILE", key_file.to_str().unwrap())]);
    let hosts = env.get("/v1/hosts?limit=1000");
    let h01 = hosts["items"].as_array().unwrap().iter().find(|h| h["name"] == "h01").unwrap()["id"].clone();
    let value = "run-s3cret-\u{e9}t\u{e9}";
    let (s, r) = env.call(
        "POST",
        &format!("/v1/hosts/{h01}/secrets"),
        Some(json!({"name": "run_secret", "kind": "password", "value": value})),
    );
    assert_eq!(s, 201, "{r}");
    let out = env.home.path().join("secret.out");
    let run = env.submit("secret.yml", json!({"group": "web", "extra_vars": {"out": out.to_str().unwrap()}}));
    let id = run["id"].as_i64().unwrap();
    let done = env.wait_final(id, Duration::from_secs(120));
    let stdout = String::from_utf8(env.bytes(&format!("/v1/runs/{id}/stdout"))).unwrap();
    assert_eq!(done["status"], "successful", "{done}\n{stdout}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), value, "what the play wrote");
    let events = serde_json::to_string(&env.events(id)).unwrap();
    let bundle = env.bytes(&format!("/v1/runs/{id}/bundle"));
    for (what, text) in [("stdout", stdout.as_str()), ("events", events.as_str())] {
        assert!(!text.contains("run-s3cret"), "{what} shows the value");
    }
    let dir = tempfile::tempdir().unwrap();
    craton::bundle::unpack_tgz(&bundle, dir.path()).unwrap();
    let secrets_yml = std::fs::read_to_string(dir.path().join("hosts/host_vars/h01/secrets.yml")).unwrap();
    assert!(secrets_yml.starts_with("$ANSIBLE_VAULT;1.2;AES256;craton\n"), "{secrets_yml}");
    assert!(dir.path().join("craton-vault-client").exists(), "the bundle ships the client");
}

/// Immediate cancel kills everything the run started at once (ansible's
/// workers are in sessions of their own); `timeout_s` ends `error`; an
/// unparsable playbook ends `error` with its rc.
#[test]
fn immediate_cancel_timeout_and_crash() {
    let env = Env::new(Backend::Sqlite, &[]);

    // Immediate: ends quickly, nothing of it left.
    let id = env.submit("hang.yml", json!({"group": "web", "limit": "h01"}))["id"].as_i64().unwrap();
    // playbook and play start, "first" (start, ok), the hang's task start.
    env.wait_for(id, Duration::from_secs(60), "in the hang", |r| r["events"]["received"].as_i64().unwrap_or(0) >= 5);
    let groups = env.playbook_groups();
    assert_eq!(groups.len(), 1, "one ansible-playbook process group: {groups:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.run_procs().iter().any(|(_, _, c)| c.contains("sleep 30")) {
        assert!(Instant::now() < deadline, "the hang's sleep never started: {:?}", env.run_procs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let procs_before = env.run_procs();
    assert!(procs_before.len() >= 3, "ansible-playbook, a worker and its sleep: {procs_before:?}");
    let t = Instant::now();
    let (s, r) = env.call("POST", &format!("/v1/runs/{id}/cancel"), Some(json!({"mode": "immediate"})));
    assert_eq!(s, 202, "{r}");
    let run = env.wait_final(id, Duration::from_secs(10));
    let took = t.elapsed();
    assert_eq!(run["status"], "canceled", "{run}");
    // Under 4 s: without killing the setsid workers it waits out the 5 s drain.
    assert!(took < Duration::from_secs(4), "immediate cancel took {took:?}");
    assert!(run["rc"].is_null(), "killed: no rc: {run}");
    std::thread::sleep(Duration::from_millis(200));
    let left = group_alive(groups[0]);
    assert!(left.is_empty(), "processes of the run's group left: {left:?}");
    let left = env.run_procs();
    assert!(left.is_empty(), "processes of the run left (workers have their own sessions): {left:?}");
    let tasks = tasks_started(&env.events(id));
    assert!(!tasks.contains(&"after the hang".to_string()), "{tasks:?}");

    // timeout_s: error with the reason, long before the hang would end.
    let t = Instant::now();
    let id = env.submit("hang.yml", json!({"group": "web", "limit": "h01", "timeout_s": 2}))["id"].as_i64().unwrap();
    let run = env.wait_final(id, Duration::from_secs(60));
    assert!(t.elapsed() < Duration::from_secs(20), "timed out after {:?}", t.elapsed());
    assert_eq!(run["status"], "error", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("timed out"), "{run}");
    let tasks = tasks_started(&env.events(id));
    assert!(!tasks.contains(&"after the hang".to_string()), "{tasks:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(env.run_procs().is_empty(), "a timed-out run left processes: {:?}", env.run_procs());

    // A playbook ansible cannot parse: error, with its rc.
    let id = env.submit("bogus.yml", json!({"group": "web"}))["id"].as_i64().unwrap();
    let run = env.wait_final(id, Duration::from_secs(60));
    assert_eq!(run["status"], "error", "{run}");
    let rc = run["rc"].as_i64().expect("an rc");
    assert_ne!(rc, 0, "{run}");
    assert!(run["reason"].as_str().unwrap().contains(&format!("code {rc}")), "{run}");
    let stdout = String::from_utf8(env.bytes(&format!("/v1/runs/{id}/stdout"))).unwrap();
    assert!(stdout.contains("bogus.yml"), "ansible's error is in the stdout: {stdout}");
    assert!(env.run_procs().is_empty(), "nothing of the runs left");
}

/// A daemon killed mid-run: after a restart the run is `lost`, never
/// `running` forever.
#[test]
fn daemon_killed_mid_run_leaves_a_lost_run() {
    for b in backends() {
        let mut env = Env::new(b, &[("CRATON_RUN_LEASE_SECS", "2")]);
        let id = env.submit("slow.yml", json!({"group": "web", "limit": "h01"}))["id"].as_i64().unwrap();
        env.wait_for(id, Duration::from_secs(60), "running", |r| r["status"] == "running");
        env.server.child.kill().unwrap();
        env.server.child.wait().unwrap();
        // The orphaned ansible-playbook is not the daemon's any more.
        for (pid, _, _) in env.run_procs() {
            kill_pid(pid);
        }
        env.server = env.start();
        let run = env.wait_final(id, Duration::from_secs(20));
        assert_eq!(run["status"], "lost", "{b:?}: {run}");
        assert!(run["reason"].as_str().unwrap().contains("lease"), "{b:?}: {run}");
        assert!(run["finished_at"].is_i64(), "{b:?}: {run}");
    }
}

/// `cratond run` over HTTP and `--local`, and `cratond runs ...`: the exit
/// code is ansible-playbook's, the summary names the counts.
#[test]
fn cli_runs_submit_follow_local_and_manage() {
    let env = Env::new(Backend::Sqlite, &[]);
    let playbook = ansible("ansible-playbook");
    let cli = || {
        let mut c = cratond(&env.db);
        c.env("CRATON_URL", &env.server.base)
            .env("CRATON_TOKEN", &env.root)
            .env("CRATON_ANSIBLE_PLAYBOOK", &playbook)
            .env("CRATON_RUNS_DIR", env.runs_dir.path())
            .env("CRATON_GIT_CACHE_DIR", env.cache_dir.path())
            .env("HOME", env.home.path());
        c
    };
    let repo = env.repo.url();
    // Over HTTP, following the stream: h05 fails, so ansible's rc is 2.
    let o = fixtures::run(
        cli()
            .args(["run", "site.yml", "--repo", &repo, "--ref", "main", "--group", "fleet"])
            .args(["--limit", "h05,h01", "--follow"]),
    );
    let (out, err) = (fixtures::stdout(&o), fixtures::stderr(&o));
    assert_eq!(o.status.code(), Some(2), "stdout {out} stderr {err}");
    let remote_id: i64 = out.trim().parse().unwrap_or_else(|_| panic!("the run id on stdout: {out:?}"));
    assert!(err.contains("TASK [fail on chosen hosts]"), "plain lines off a terminal: {err}");
    assert!(err.contains("failed: [h05]"), "{err}");
    assert!(
        err.contains(&format!("run {remote_id} failed: hosts 2 ok 0 changed 1 failed 1 unreachable 0 rc 2")),
        "{err}"
    );
    // Without --follow: the id at once, exit 0.
    let o = fixtures::run(
        cli().args(["run", "slow.yml", "--repo", &repo, "--ref", "main", "--group", "web", "--limit", "h01"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", fixtures::stderr(&o));
    let queued: i64 = fixtures::stdout(&o).trim().parse().unwrap();
    assert_eq!(env.wait_final(queued, Duration::from_secs(60))["status"], "successful");
    // Bad input names the field and queues nothing.
    let o = fixtures::run(cli().args(["run", "../x.yml", "--repo", &repo, "--group", "web"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(fixtures::stderr(&o).contains("playbook"), "{}", fixtures::stderr(&o));
    let o = fixtures::run(cli().args(["run", "site.yml", "--repo", &repo, "--group", "web", "--extra-vars", "[1]"]));
    assert!(fixtures::stderr(&o).contains("--extra-vars must be a JSON object"), "{}", fixtures::stderr(&o));

    // In process, on the database: same result, same exit code.
    let o = fixtures::run(
        cli()
            .env_remove("CRATON_URL")
            .args(["run", "site.yml", "--local", "--repo", &repo, "--ref", "main", "--group", "fleet"])
            .args(["--limit", "h05,h01"])
            .args(["--extra-vars", r#"{"x": 1}"#]),
    );
    let (out, err) = (fixtures::stdout(&o), fixtures::stderr(&o));
    assert_eq!(o.status.code(), Some(2), "stdout {out} stderr {err}");
    let local_id: i64 = out.trim().parse().unwrap();
    assert!(err.contains(&format!("run {local_id} failed: hosts 2")), "{err}");
    let run = env.run(local_id);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["created_by"].as_str().unwrap().starts_with("cli:"), "{run}");
    assert_eq!(run["options"]["extra_vars"], json!({"x": 1}));
    assert_eq!(recorded_recap(&env, local_id), recorded_recap(&env, remote_id), "--local and HTTP record alike");

    let list = ok(cli().args(["runs", "list"]));
    let ids: Vec<&str> = list.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(ids, [local_id.to_string(), queued.to_string(), remote_id.to_string()], "{list}");
    let failed = ok(cli().args(["runs", "list", "--status", "failed", "--limit", "1"]));
    assert_eq!(failed.lines().count(), 1, "{failed}");
    let show: Value = serde_json::from_str(&ok(cli().args(["runs", "show", &remote_id.to_string()]))).unwrap();
    assert_eq!(show["status"], "failed");
    assert_eq!(show["hosts"].as_array().unwrap().iter().filter(|h| h["status"] == "failed").count(), 1, "{show}");
    let o = fixtures::run(cli().args(["runs", "cancel", &remote_id.to_string()]));
    assert!(!o.status.success() && fixtures::stderr(&o).contains("already ended"), "{}", fixtures::stderr(&o));
    assert_eq!(ok(cli().args(["runs", "prune", "--older-than", "30d"])).trim(), "pruned 0 runs");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(ok(cli().args(["runs", "prune", "--older-than", "0s"])).trim(), "pruned 3 runs");
    assert_eq!(ok(cli().args(["runs", "list"])), "");
}

/// A TCP proxy to the daemon that cuts the first event stream passing
/// through it once `cut` bytes of it have come back (mid-stream); the rest
/// pass. Returns its base URL and how many streams it cut.
fn cutting_proxy(upstream: u16, cut: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cuts = std::sync::Arc::new(AtomicUsize::new(0));
    let c = cuts.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let c = c.clone();
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                // Bytes of the stream passed, once this connection carries one to cut.
                let mut streaming: Option<usize> = None;
                loop {
                    let k = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => k,
                    };
                    if streaming.is_none()
                        && buf[..k].windows(17).any(|w| w == b"text/event-stream")
                        && c.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                    {
                        streaming = Some(0);
                    }
                    let k = match streaming {
                        Some(sent) => k.min(cut.saturating_sub(sent)),
                        None => k,
                    };
                    if k == 0 || c_write.write_all(&buf[..k]).is_err() {
                        break;
                    }
                    if let Some(sent) = &mut streaming {
                        *sent += k;
                    }
                }
                let _ = c_write.shutdown(Shutdown::Both);
                let _ = s_read.shutdown(Shutdown::Both);
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), cuts)
}

/// `cratond run --follow` whose stream is cut mid-run resumes with
/// Last-Event-ID: every task line once, in order, and ansible's exit code.
#[test]
fn cli_follow_resumes_a_cut_stream() {
    let env = Env::new(Backend::Sqlite, &[]);
    let (proxy, cuts) = cutting_proxy(env.server.port, 6000);
    let o = fixtures::run(
        cratond(&env.db)
            .env("CRATON_URL", &proxy)
            .env("CRATON_TOKEN", &env.root)
            .args(["run", "site.yml", "--repo", &env.repo.url(), "--ref", "main", "--group", "fleet"])
            .args(["--limit", "h05,h01,h31", "--follow"]),
    );
    let (out, err) = (fixtures::stdout(&o), fixtures::stderr(&o));
    assert_eq!(o.status.code(), Some(2), "stdout {out} stderr {err}");
    assert_eq!(cuts.load(std::sync::atomic::Ordering::SeqCst), 1, "the stream was cut");
    let id: i64 = out.trim().parse().unwrap();
    let shown: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("TASK [")?.strip_suffix(']')).collect();
    let stored: Vec<String> = env
        .events(id)
        .iter()
        .filter(|e| e["event"] == "playbook_on_task_start" || e["event"] == "playbook_on_handler_task_start")
        .map(|e| e["task"].as_str().unwrap().to_string())
        .collect();
    assert!(stored.contains(&"restart".to_string()), "{stored:?}");
    assert_eq!(shown, stored, "every task shown once, in order, across the cut");
    assert!(err.contains(&format!("run {id} failed: hosts 3")), "{err}");
}
