//! Live progress across processes: several `cratond serve` on one
//! database, a run started on one, its event stream read on the others
//! (through Redis, and through the database alone), resumed with
//! Last-Event-ID, while a stuck client holds a stream it never reads.
//!
//! The run's `ansible-playbook` is `benches/event_producer.py`, which
//! speaks the callback's wire format at a fixed rate: the streams, not
//! Ansible, are under test here (daemon/tests/runs.rs runs real plays).

#[path = "../../tests/common/mod.rs"]
mod fixtures;
#[path = "../../tests/common/git.rs"]
mod upstream;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use fixtures::{backends, cratond, ok, repo_root, Server, TestDb};
use serde_json::{json, Value};

const EVENTS: i64 = 3000;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// One SSE stream read to its `end`: the counters of `run_event`s in
/// arrival order and the final run.
fn read_stream(base: &str, token: &str, id: i64, last_event_id: Option<i64>) -> (Vec<i64>, Value) {
    let mut req = agent()
        .get(format!("{base}/v1/runs/{id}/events"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "text/event-stream");
    if let Some(l) = last_event_id {
        req = req.header("Last-Event-ID", l.to_string());
    }
    let resp = req.call().unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers().get("content-type").unwrap().to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let reader = BufReader::new(resp.into_body().into_reader());
    let (mut counters, mut event, mut id_line) = (Vec::new(), String::new(), None::<i64>);
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(i) = line.strip_prefix("id: ") {
            id_line = Some(i.parse().unwrap());
        } else if let Some(d) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(d).unwrap();
            match event.as_str() {
                "run_event" => {
                    assert_eq!(Some(v["counter"].as_i64().unwrap()), id_line, "id: is the counter");
                    counters.push(v["counter"].as_i64().unwrap());
                }
                "end" => return (counters, v),
                _ => {}
            }
        }
    }
    panic!("stream of run {id} on {base} closed without `end` after {} events", counters.len());
}

fn submit(base: &str, token: &str, repo: &str) -> i64 {
    let body = json!({"playbook": "site.yml", "repo": repo, "ref": "main",
        "extra_vars": {"bench_events": EVENTS, "bench_hosts": 5, "bench_rate": 1500}});
    let mut r = agent()
        .post(format!("{base}/v1/runs"))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(&body)
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status(), 201, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["id"].as_i64().unwrap()
}

#[test]
fn every_process_streams_every_run_in_order() {
    for b in backends() {
        let db = TestDb::new(b);
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("inv.ini");
        std::fs::write(&inv, "[fleet]\nh0000[0:4]\n").unwrap();
        ok(cratond(&db).arg("migrate"));
        ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
        let token = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
        let up = upstream::Upstream::new();
        up.write("site.yml", "- hosts: all\n  tasks: []\n");
        up.commit_push("playbook");
        let producer = repo_root().join("benches/event_producer.py");
        let (runs, git) = (dir.path().join("runs"), dir.path().join("git"));
        let common = [
            ("CRATON_ANSIBLE_PLAYBOOK", producer.to_str().unwrap()),
            ("CRATON_RUNS_DIR", runs.to_str().unwrap()),
            ("CRATON_GIT_CACHE_DIR", git.to_str().unwrap()),
        ];
        let with_redis: Vec<(&str, &str)> =
            common.iter().copied().chain([("CRATON_REDIS_URL", "redis://127.0.0.1:6379")]).collect();
        let runner = Server::start(&db, &["--no-sync"], &with_redis);
        let via_redis = Server::start(&db, &["--no-sync"], &with_redis);
        let via_db = Server::start(&db, &["--no-sync"], &common);

        let id = submit(&runner.base, &token, &up.url());
        // A client that never reads: its stream fills and stalls, nothing else.
        let mut stuck = runner.connect();
        std::io::Write::write_all(
            &mut stuck,
            format!(
                "GET /v1/runs/{id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut first = [0u8; 64];
        let _ = stuck.read(&mut first).unwrap();

        let started = Instant::now();
        let readers: Vec<_> = [&runner.base, &via_redis.base, &via_db.base]
            .into_iter()
            .map(|base| {
                let (base, token) = (base.clone(), token.clone());
                std::thread::spawn(move || read_stream(&base, &token, id, None))
            })
            .collect();
        for (i, r) in readers.into_iter().enumerate() {
            let (counters, end) = r.join().unwrap();
            let want: Vec<i64> = (1..=EVENTS + 1).collect();
            assert_eq!(counters.len(), want.len(), "{b:?} reader {i}: count");
            assert_eq!(counters, want, "{b:?} reader {i}: every counter once, in order");
            assert_eq!(end["status"], "successful", "{b:?} reader {i}: {end}");
            assert_eq!(end["events"], json!({"received": EVENTS + 1, "lost": false}), "{b:?} reader {i}");
        }
        // 3,001 events at 1,500/s take two seconds; the stuck client must
        // not have held the run back.
        assert!(started.elapsed() < Duration::from_secs(30), "{b:?}: {:?}", started.elapsed());

        // Resuming from the middle gives exactly the rest, from every process.
        for base in [&runner.base, &via_redis.base, &via_db.base] {
            let (counters, _) = read_stream(base, &token, id, Some(EVENTS / 3));
            assert_eq!(counters, (EVENTS / 3 + 1..=EVENTS + 1).collect::<Vec<_>>(), "{b:?} {base}: resume");
        }
        drop(stuck);
    }
}

/// A stream outlives any request: revoking its token ends it within
/// seconds, while the run goes on.
#[test]
fn a_revoked_token_ends_its_stream() {
    let db = TestDb::new(backends()[0]);
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.ini");
    std::fs::write(&inv, "[fleet]\nh0000[0:4]\n").unwrap();
    ok(cratond(&db).arg("migrate"));
    ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
    let root = ok(cratond(&db).args(["token", "create", "--root"])).trim().to_string();
    let reader =
        ok(cratond(&db).args(["token", "create", "--project", "default", "--role", "reader"])).trim().to_string();
    let up = upstream::Upstream::new();
    up.write("site.yml", "- hosts: all\n  tasks: []\n");
    up.commit_push("playbook");
    let producer = repo_root().join("benches/event_producer.py");
    let (runs, git) = (dir.path().join("runs"), dir.path().join("git"));
    let server = Server::start(
        &db,
        &["--no-sync"],
        &[
            ("CRATON_ANSIBLE_PLAYBOOK", producer.to_str().unwrap()),
            ("CRATON_RUNS_DIR", runs.to_str().unwrap()),
            ("CRATON_GIT_CACHE_DIR", git.to_str().unwrap()),
        ],
    );
    // 600 events at 20/s: half a minute of run.
    let body = json!({"playbook": "site.yml", "repo": up.url(), "ref": "main",
        "extra_vars": {"bench_events": 600, "bench_hosts": 5, "bench_rate": 20}});
    let mut r = agent()
        .post(format!("{}/v1/runs", server.base))
        .header("Authorization", format!("Bearer {root}"))
        .send_json(&body)
        .unwrap();
    let id = serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap()["id"].as_i64().unwrap();
    let resp = agent()
        .get(format!("{}/v1/runs/{id}/events", server.base))
        .header("Authorization", format!("Bearer {reader}"))
        .header("Accept", "text/event-stream")
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut lines = BufReader::new(resp.into_body().into_reader()).lines();
    // The stream is live: events arrive.
    let first = lines.by_ref().map(|l| l.unwrap()).find(|l| l.starts_with("event: run_event"));
    assert!(first.is_some(), "no event before the revocation");
    let mut tokens = agent()
        .get(format!("{}/v1/tokens", server.base))
        .header("Authorization", format!("Bearer {root}"))
        .call()
        .unwrap();
    let list: Value = serde_json::from_str(&tokens.body_mut().read_to_string().unwrap()).unwrap();
    let reader_id = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "reader")
        .and_then(|t| t["id"].as_i64())
        .expect("the reader token is listed");
    let revoked = agent()
        .delete(format!("{}/v1/tokens/{reader_id}", server.base))
        .header("Authorization", format!("Bearer {root}"))
        .call()
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let at = Instant::now();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(at.elapsed() < Duration::from_secs(15), "the stream outlived its token by {:?}", at.elapsed());
    assert!(!rest.iter().any(|l| l.starts_with("event: end")), "the stream ended normally, not by the revocation");
    let mut run = agent()
        .get(format!("{}/v1/runs/{id}", server.base))
        .header("Authorization", format!("Bearer {root}"))
        .call()
        .unwrap();
    let run: Value = serde_json::from_str(&run.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(run["status"], "running", "the run goes on: {run}");
}
