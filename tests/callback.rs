//! The run-events callback (`ansible/callback/craton_events.py`, issue 8)
//! under real ansible-playbook, with a Unix-socket peer in a thread standing
//! in for the daemon: the wire format of notes/runs-design.md, the recap from
//! events equal to ansible's own PLAY RECAP, no_log results never on the
//! socket, capped results, and a play that finishes whatever the peer does.
//!
//! `CRATON_TEST_ANSIBLE_DIR` points these at another ansible-core's bin/ (the
//! plugin is meant for 2.16 .. 2.20).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{ansible, ansible_env, repo_root, run, stderr, stdout};
use serde_json::{json, Value};

const SECRET: &str = "PLANTED-SECRET-7f3a";
const ITEM_SECRET: &str = "ITEM-SECRET-c41d";
const CENSORED: &str = "the output has been hidden due to the fact that 'no_log: true' was specified for this result";
/// Every event carries exactly these keys (notes/runs-design.md).
const FIELDS: &[&str] = &[
    "counter",
    "uuid",
    "parent_uuid",
    "event",
    "created",
    "host",
    "play",
    "play_uuid",
    "task",
    "task_uuid",
    "task_path",
    "changed",
    "ignore_errors",
    "item",
    "res",
    "duration_ms",
    "stats",
];
const HOST_RESULTS: &[&str] = &["runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"];

/// Six local hosts and one whose ssh port is closed; a play exercising every
/// kind of host result, and a second play that matches no host.
fn playbook() -> String {
    format!(
        r#"
- name: events test
  hosts: all
  gather_facts: false
  tasks:
    - name: change on web
      command: "true"
      changed_when: inventory_hostname in groups.web
      notify: restart thing
    - name: skip on db
      debug: {{msg: hi}}
      when: inventory_hostname not in groups.db
    - name: fail on h2
      fail: {{msg: boom}}
      when: inventory_hostname == 'h2'
    - name: a block
      block:
        - name: fail in block on h3
          fail: {{msg: block boom}}
          when: inventory_hostname == 'h3'
      rescue:
        - name: rescued
          debug: {{msg: rescued}}
    - name: loop
      debug: {{msg: "{{{{ item }}}}"}}
      loop: [a, b, c]
    - name: custom loop var
      debug: {{msg: "{{{{ pkg }}}}"}}
      loop: [nginx]
      loop_control: {{loop_var: pkg}}
      when: inventory_hostname == 'h1'
    - name: loop with failed and skipped items
      fail: {{msg: "bad {{{{ item }}}}"}}
      when: inventory_hostname == 'h1' and item == 'b'
      loop: [a, b]
      ignore_errors: true
    - name: ignored failure on h4
      fail: {{msg: ignored}}
      when: inventory_hostname == 'h4'
      ignore_errors: true
    - name: secret
      debug: {{msg: "{SECRET}"}}
      no_log: true
    - name: secret loop
      debug: {{msg: "{{{{ item }}}}"}}
      loop: ["{ITEM_SECRET}", "visible"]
      no_log: "{{{{ item != 'visible' }}}}"
    - name: big result
      debug: {{msg: "{{{{ 'x' * 100000 }}}}"}}
      when: inventory_hostname == 'h1'
    - name: retry
      command: /bin/false
      register: r
      until: r.rc == 0
      retries: 2
      delay: 0
      when: inventory_hostname == 'h5'
      ignore_errors: true
  handlers:
    - name: restart thing
      debug: {{msg: restarted}}

- name: nobody
  hosts: no_such_group
  gather_facts: false
  tasks:
    - debug: {{msg: never}}
"#
    )
}

struct Fixture {
    dir: tempfile::TempDir,
    inventory: PathBuf,
    playbook: PathBuf,
    callback: PathBuf,
}

impl Fixture {
    fn new(playbook_text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on: bound once by us, then released.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let python = ansible("python");
        let inventory = dir.path().join("hosts");
        std::fs::write(
            &inventory,
            format!(
                "[web]\nh1\nh2\nh3\n[db]\nh4\nh5\nh6\n[down]\n\
                 dead ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={closed} ansible_user=nobody\n\
                 [all:vars]\nansible_connection=local\nansible_python_interpreter={}\n",
                python.display()
            ),
        )
        .unwrap();
        let playbook = dir.path().join("play.yml");
        std::fs::write(&playbook, playbook_text).unwrap();
        // Laid out as the daemon does: the committed file copied into the
        // run's work directory.
        let callback = dir.path().join("callback");
        std::fs::create_dir(&callback).unwrap();
        std::fs::copy(repo_root().join("ansible/callback/craton_events.py"), callback.join("craton_events.py"))
            .unwrap();
        Fixture { dir, inventory, playbook, callback }
    }

    fn summary_path(&self) -> PathBuf {
        self.dir.path().join("events.summary.json")
    }

    fn command(&self, socket: Option<&Path>) -> Command {
        let home = self.dir.path().join("home");
        let mut c = Command::new(ansible("ansible-playbook"));
        ansible_env(&mut c, &home)
            .env("ANSIBLE_CALLBACK_PLUGINS", &self.callback)
            .env("ANSIBLE_CALLBACKS_ENABLED", "craton_events")
            .env("CRATON_EVENTS_SUMMARY", self.summary_path())
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("CRATON_EVENTS_MAX_RESULT_BYTES")
            .arg("-i")
            .arg(&self.inventory)
            .arg(&self.playbook);
        match socket {
            Some(s) => c.env("CRATON_EVENTS_SOCKET", s),
            None => c.env_remove("CRATON_EVENTS_SOCKET"),
        };
        c
    }

    fn summary(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.summary_path()).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {text}")))
    }
}

/// The daemon's end of the socket: accepts one connection and keeps what it
/// reads (visible while it reads), or hangs up after `close_after` lines.
struct Peer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<()>,
}

impl Peer {
    fn listen(dir: &Path, close_after: Option<usize>) -> Peer {
        let path = dir.join("events.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (stop2, got2) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            let mut stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if stop2.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let n = stream.read(&mut chunk).expect("reading the event socket");
                if n == 0 {
                    break;
                }
                let mut got = got2.lock().unwrap();
                got.extend_from_slice(&chunk[..n]);
                if close_after.is_some_and(|k| got.iter().filter(|&&b| b == b'\n').count() >= k) {
                    break;
                }
            }
        });
        Peer { path, stop, got, thread }
    }

    /// The whole lines received so far.
    fn so_far(&self) -> Vec<Value> {
        let got = self.got.lock().unwrap();
        let end = got.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        lines(&got[..end])
    }

    fn received(self) -> Vec<u8> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("peer thread");
        Arc::try_unwrap(self.got).unwrap().into_inner().unwrap()
    }
}

/// stderr with line wrapping undone (2.16 wraps warnings at 80 columns).
fn warnings(o: &Output) -> String {
    stderr(o).split_whitespace().collect::<Vec<_>>().join(" ")
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn lines(raw: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(raw).expect("the event stream is UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "the stream ends with a whole line");
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1)))
        .collect()
}

/// Per host: the numbers of ansible's own PLAY RECAP, named as in our stats.
fn recap(out: &str) -> BTreeMap<String, Value> {
    let text = out.split("PLAY RECAP").nth(1).unwrap_or_else(|| panic!("no PLAY RECAP in: {out}"));
    let mut hosts = BTreeMap::new();
    for line in text.lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else {
            if hosts.is_empty() {
                continue;
            }
            break;
        };
        let mut m = serde_json::Map::new();
        for kv in counts.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("recap field {kv:?} in {line:?}"));
            let k = if k == "failed" { "failures" } else { k };
            m.insert(k.to_string(), json!(v.parse::<u64>().unwrap()));
        }
        hosts.insert(host.trim().to_string(), Value::Object(m));
    }
    hosts
}

struct Run {
    out: Output,
    raw: Vec<u8>,
    events: Vec<Value>,
    summary: Option<Value>,
}

fn play(fx: &Fixture, close_after: Option<usize>) -> Run {
    let peer = Peer::listen(fx.dir.path(), close_after);
    let out = run(&mut fx.command(Some(&peer.path)));
    let raw = peer.received();
    let events = lines(&raw);
    Run { out, raw, events, summary: fx.summary() }
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

fn one<'a>(events: &'a [Value], name: &str, host: &str, task: &str) -> &'a Value {
    let found: Vec<_> =
        events.iter().filter(|e| e["event"] == name && e["host"] == host && e["task"] == task).collect();
    assert_eq!(found.len(), 1, "one {name} for {host} in {task:?}: {found:?}");
    found[0]
}

#[test]
fn events_follow_the_contract() {
    let fx = Fixture::new(&playbook());
    let started = now_ms();
    let r = play(&fx, None);
    let finished = now_ms();
    let (out, err) = (stdout(&r.out), stderr(&r.out));
    // One host failed, one unreachable: ansible's rc for unreachable hosts.
    assert_eq!(r.out.status.code(), Some(4), "{out}\n{err}");
    // The stdout callback still prints beside ours.
    assert!(out.contains("TASK [change on web]") && out.contains("PLAY RECAP"), "{out}");
    assert!(!err.contains("craton_events"), "the plugin warned: {err}");

    // Counters 1..N, N is what the summary says was emitted, nothing lost.
    let ev = &r.events;
    let counters: Vec<u64> = ev.iter().map(|e| e["counter"].as_u64().unwrap()).collect();
    assert_eq!(counters, (1..=ev.len() as u64).collect::<Vec<_>>());
    assert_eq!(r.summary, Some(json!({"emitted": ev.len(), "dropped": 0})));

    let mut uuids = HashSet::new();
    for e in ev {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = FIELDS.to_vec();
        want.sort();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort();
        assert_eq!(keys_sorted, want, "fields of {e}");
        let uuid = e["uuid"].as_str().unwrap();
        assert!(uuid.len() == 36 && uuid.as_bytes()[14] == b'4', "uuid4: {uuid}");
        assert!(uuids.insert(uuid.to_string()), "uuid {uuid} repeats");
        let created = e["created"].as_i64().unwrap();
        assert!((started..=finished).contains(&created), "created {created} is outside the run: {e}");
    }

    // The order: playbook, play, task, host results under their task.
    assert_eq!(ev[0]["event"], "playbook_on_start");
    assert_eq!(ev.last().unwrap()["event"], "playbook_on_stats");
    assert_eq!(events_named(ev, "playbook_on_stats").len(), 1);
    let playbook_uuid = ev[0]["uuid"].clone();
    let mut plays = HashSet::new();
    let mut tasks: HashMap<String, Value> = HashMap::new();
    let mut running: HashSet<(String, String)> = HashSet::new();
    let mut finished_hosts: HashSet<(String, String)> = HashSet::new();
    for e in ev {
        let name = e["event"].as_str().unwrap();
        match name {
            "playbook_on_start" | "playbook_on_stats" => {}
            "playbook_on_play_start" => {
                assert_eq!(e["parent_uuid"], playbook_uuid, "{e}");
                assert!(e["play"].is_string() && e["play_uuid"].is_string(), "{e}");
                plays.insert(e["play_uuid"].as_str().unwrap().to_string());
            }
            "playbook_on_no_hosts_matched" => assert_eq!(e["play"], "nobody", "{e}"),
            "playbook_on_task_start" | "playbook_on_handler_task_start" => {
                assert!(plays.contains(e["play_uuid"].as_str().unwrap()), "task before its play: {e}");
                assert_eq!(e["parent_uuid"], e["play_uuid"], "{e}");
                let path = e["task_path"].as_str().unwrap();
                assert!(path.starts_with(fx.playbook.to_str().unwrap()) && path.contains(':'), "task_path {path}");
                tasks.insert(e["task_uuid"].as_str().unwrap().to_string(), e.clone());
            }
            _ => {
                let task_uuid = e["task_uuid"].as_str().unwrap_or_else(|| panic!("no task_uuid: {e}"));
                let start = tasks.get(task_uuid).unwrap_or_else(|| panic!("host result before its task start: {e}"));
                assert_eq!(e["parent_uuid"], e["task_uuid"], "{e}");
                assert_eq!(
                    (&e["task"], &e["task_path"], &e["play_uuid"]),
                    (&start["task"], &start["task_path"], &start["play_uuid"])
                );
                let host = e["host"].as_str().unwrap().to_string();
                let key = (host, task_uuid.to_string());
                if name == "runner_on_start" {
                    assert!(running.insert(key), "started twice: {e}");
                    continue;
                }
                assert!(running.contains(&key), "{name} before runner_on_start: {e}");
                assert!(!finished_hosts.contains(&key), "{name} after the host's final result: {e}");
                assert!(e["duration_ms"].as_u64().is_some(), "duration_ms: {e}");
                assert!(e["changed"].is_boolean(), "{e}");
                assert_eq!(e["ignore_errors"].is_boolean(), name == "runner_on_failed", "{e}");
                if HOST_RESULTS.contains(&name) {
                    finished_hosts.insert(key);
                } else {
                    assert!(name.starts_with("runner_item_on_") || name == "runner_retry", "unknown event {name}");
                }
            }
        }
    }
    assert_eq!(running, finished_hosts, "every started host has one final result");
    assert_eq!(events_named(ev, "playbook_on_play_start").len(), 2);
    assert_eq!(events_named(ev, "playbook_on_no_hosts_matched").len(), 1);

    // The results the playbook was written to produce.
    for h in ["h1", "h2", "h3"] {
        assert_eq!(one(ev, "runner_on_ok", h, "change on web")["changed"], true);
    }
    for h in ["h4", "h5", "h6"] {
        assert_eq!(one(ev, "runner_on_ok", h, "change on web")["changed"], false);
        one(ev, "runner_on_skipped", h, "skip on db");
    }
    let dead = one(ev, "runner_on_unreachable", "dead", "change on web");
    assert_eq!(dead["res"]["unreachable"], true, "{dead}");
    assert_eq!(one(ev, "runner_on_failed", "h2", "fail on h2")["ignore_errors"], false);
    assert_eq!(one(ev, "runner_on_failed", "h3", "fail in block on h3")["ignore_errors"], false);
    one(ev, "runner_on_ok", "h3", "rescued");
    assert_eq!(one(ev, "runner_on_failed", "h4", "ignored failure on h4")["ignore_errors"], true);
    let items: Vec<&Value> =
        ev.iter().filter(|e| e["event"] == "runner_item_on_ok" && e["host"] == "h1" && e["task"] == "loop").collect();
    assert_eq!(items.iter().map(|e| e["item"].clone()).collect::<Vec<_>>(), vec![json!("a"), json!("b"), json!("c")]);
    assert_eq!(items[0]["res"]["msg"], "a");
    assert_eq!(one(ev, "runner_item_on_ok", "h1", "custom loop var")["item"], "nginx");
    assert_eq!(one(ev, "runner_item_on_failed", "h1", "loop with failed and skipped items")["item"], "b");
    assert_eq!(one(ev, "runner_item_on_skipped", "h1", "loop with failed and skipped items")["item"], "a");
    assert_eq!(one(ev, "runner_on_failed", "h1", "loop with failed and skipped items")["ignore_errors"], true);
    let retries: Vec<_> = ev.iter().filter(|e| e["event"] == "runner_retry").collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(retries.iter().all(|e| e["host"] == "h5" && e["task"] == "retry"));
    assert_eq!(one(ev, "runner_on_failed", "h5", "retry")["ignore_errors"], true);
    let handler = events_named(ev, "playbook_on_handler_task_start");
    assert_eq!(handler.len(), 1);
    assert_eq!(handler[0]["task"], "restart thing");
    let handled: HashSet<&str> = ev
        .iter()
        .filter(|e| e["event"] == "runner_on_ok" && e["task"] == "restart thing")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    // h2 changed too, but failed before handlers run.
    assert_eq!(handled, HashSet::from(["h1", "h3"]));
    // Internal keys stay in the process.
    assert!(!String::from_utf8_lossy(&r.raw).contains("\"_ansible_"), "an _ansible_ key on the socket");

    // no_log: censored results (and items), the secrets nowhere.
    for h in ["h1", "h3", "h4", "h5", "h6"] {
        assert_eq!(one(ev, "runner_on_ok", h, "secret")["res"], json!({"censored": CENSORED}));
        let items: Vec<_> = ev
            .iter()
            .filter(|e| e["event"] == "runner_item_on_ok" && e["host"] == h && e["task"] == "secret loop")
            .collect();
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0]["res"], json!({"censored": CENSORED}), "{}", items[0]);
        assert_eq!(items[0]["item"], json!({"censored": CENSORED}), "{}", items[0]);
        assert_eq!(items[1]["item"], "visible");
    }
    let raw = String::from_utf8_lossy(&r.raw);
    assert!(!raw.contains(SECRET) && !raw.contains(ITEM_SECRET), "a no_log secret went over the socket");

    // Over the cap (default 65536): the size instead of the result.
    let big = one(ev, "runner_on_ok", "h1", "big result");
    let shown: String = big["res"].to_string().chars().take(200).collect();
    assert_eq!(big["res"]["truncated"], true, "res of the big result: {shown}");
    assert!(big["res"]["bytes"].as_u64().unwrap() > 100_000, "{shown}");
    assert!(r.raw.split(|&b| b == b'\n').all(|l| l.len() < 70_000), "a line over the cap");

    // The recap from events is ansible's own.
    let stats = ev.last().unwrap()["stats"].as_object().unwrap().clone();
    let stats: BTreeMap<String, Value> = stats.into_iter().collect();
    assert_eq!(stats, recap(&out), "stats event vs PLAY RECAP");
    assert_eq!(stats["h2"]["failures"], 1);
    assert_eq!(stats["h3"]["rescued"], 1);
    assert_eq!(stats["h4"]["ignored"], 1);
    assert_eq!(stats["dead"]["unreachable"], 1);
    assert_eq!(stats["h1"]["changed"], 1);
}

#[test]
fn a_peer_that_hangs_up_costs_events_not_the_play() {
    let fx = Fixture::new(&playbook());
    let whole = play(&fx, None);
    std::fs::remove_file(fx.summary_path()).unwrap();
    std::fs::remove_file(fx.dir.path().join("events.sock")).unwrap();
    let cut = play(&fx, Some(5));
    assert_eq!(cut.out.status.code(), whole.out.status.code(), "{}", stderr(&cut.out));
    assert_eq!(recap(&stdout(&cut.out)), recap(&stdout(&whole.out)));
    let summary = cut.summary.expect("summary after a broken socket");
    let emitted = summary["emitted"].as_u64().unwrap();
    assert_eq!(emitted, whole.events.len() as u64, "the same events were emitted: {summary}");
    assert!(summary["dropped"].as_u64().unwrap() > 0, "{summary}");
    assert!((cut.events.len() as u64) < emitted, "the peer read only the first lines");
    assert!(warnings(&cut.out).contains("craton_events: the event socket broke"), "{}", stderr(&cut.out));
}

#[test]
fn without_a_listener_the_play_still_finishes() {
    let fx = Fixture::new(&playbook());
    let out = run(&mut fx.command(Some(&fx.dir.path().join("nobody-listens.sock"))));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(warnings(&out).contains("cannot connect to"), "{}", stderr(&out));
    let summary = fx.summary().expect("summary without a listener");
    assert!(summary["emitted"].as_u64().unwrap() > 100, "{summary}");
    assert_eq!(summary["dropped"], summary["emitted"], "{summary}");
    assert_eq!(recap(&stdout(&out))["h2"]["failures"], 1);

    // Without the socket variable the plugin only warns.
    let out = run(&mut fx.command(None));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(warnings(&out).matches("CRATON_EVENTS_SOCKET is not set").count(), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("PLAY RECAP"));
}

#[test]
fn an_interrupted_play_still_writes_the_summary() {
    let fx = Fixture::new(
        "- hosts: h1,h2\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n    - name: slow\n      command: sleep 60\n",
    );
    let peer = Peer::listen(fx.dir.path(), None);
    let mut c = fx.command(Some(&peer.path));
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Interrupt once the slow task is running on both hosts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while peer.so_far().iter().filter(|e| e["event"] == "runner_on_start" && e["task"] == "slow").count() < 2 {
        assert!(Instant::now() < deadline, "the slow task never started");
        assert!(child.try_wait().unwrap().is_none(), "ansible-playbook ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let rc = child.wait().unwrap();
    let events = lines(&peer.received());
    let summary = fx.summary().expect("summary after Ctrl-C");
    assert_eq!(summary, json!({"emitted": events.len(), "dropped": 0}), "rc {rc:?}");
    let counters: Vec<u64> = events.iter().map(|e| e["counter"].as_u64().unwrap()).collect();
    assert_eq!(counters, (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(events.iter().any(|e| e["event"] == "playbook_on_task_start" && e["task"] == "slow"), "{events:?}");
}

#[test]
fn the_cap_comes_from_the_environment() {
    let fx = Fixture::new(
        "- hosts: h1\n  gather_facts: false\n  tasks:\n    - name: medium\n      debug: {msg: \"{{ 'y' * 300 }}\"}\n",
    );
    let res = |cap: &str| {
        let peer = Peer::listen(fx.dir.path(), None);
        let out = run(fx.command(Some(&peer.path)).env("CRATON_EVENTS_MAX_RESULT_BYTES", cap));
        assert!(out.status.success(), "{}", stderr(&out));
        let events = lines(&peer.received());
        std::fs::remove_file(fx.dir.path().join("events.sock")).unwrap();
        (one(&events, "runner_on_ok", "h1", "medium")["res"].clone(), warnings(&out))
    };
    let (small, _) = res("100");
    assert_eq!(small["truncated"], true, "{small}");
    assert!(small["bytes"].as_u64().unwrap() > 300, "{small}");
    let (roomy, _) = res("1000");
    assert_eq!(roomy["msg"], "y".repeat(300));
    // A value that is no number: the default cap and a warning, events still flow.
    let (default, err) = res("lots");
    assert_eq!(default["msg"], "y".repeat(300));
    assert!(err.contains("is not an integer"), "{err}");
}

/// `CRATON_EVENTS_RUNNER_START=0` (what cratond sets by default) drops the
/// per-host start events, and only those: results keep their durations.
#[test]
fn runner_start_events_can_be_switched_off() {
    let fx = Fixture::new(
        "- hosts: h1,h2\n  gather_facts: false\n  tasks:\n    - name: a\n      debug: {msg: hi}\n    - name: b\n      command: \"true\"\n",
    );
    let events = |on: &str| {
        let peer = Peer::listen(fx.dir.path(), None);
        let out = run(fx.command(Some(&peer.path)).env("CRATON_EVENTS_RUNNER_START", on));
        assert!(out.status.success(), "{}", stderr(&out));
        let events = lines(&peer.received());
        std::fs::remove_file(fx.dir.path().join("events.sock")).unwrap();
        events
    };
    let names =
        |evs: &[Value]| -> Vec<String> { evs.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect() };
    let with = events("1");
    let without = events("0");
    let starts = |evs: &[Value]| evs.iter().filter(|e| e["event"] == "runner_on_start").count();
    assert_eq!((starts(&with), starts(&without)), (4, 0));
    let mut rest = names(&with);
    rest.retain(|n| n != "runner_on_start");
    assert_eq!(names(&without), rest, "only the start events differ");
    for e in without.iter().filter(|e| e["event"] == "runner_on_ok") {
        assert!(e["duration_ms"].as_u64().is_some(), "duration without start events: {e}");
    }
    let counters: Vec<u64> = without.iter().map(|e| e["counter"].as_u64().unwrap()).collect();
    assert_eq!(counters, (1..=without.len() as u64).collect::<Vec<_>>(), "no gaps in the counter");
}

#[test]
fn ansible_doc_reads_the_plugin() {
    let fx = Fixture::new("[]");
    let home = fx.dir.path().join("home");
    let mut c = Command::new(ansible("ansible-doc"));
    ansible_env(&mut c, &home).env("ANSIBLE_CALLBACK_PLUGINS", &fx.callback).args(["-t", "callback", "craton_events"]);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = stdout(&out);
    for want in ["CRATON_EVENTS_SOCKET", "CRATON_EVENTS_SUMMARY", "CRATON_EVENTS_MAX_RESULT_BYTES", "notification"] {
        assert!(doc.contains(want), "{want} missing from ansible-doc: {doc}");
    }
}
