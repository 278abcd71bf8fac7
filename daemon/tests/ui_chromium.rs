//! The web page (issue 8) as a person sees it: a real `cratond serve`, a
//! real `ansible-playbook` run over 12 local hosts and one unreachable, and
//! the page in a real headless Chromium driven by playwright-core
//! (`tests/ui/run_page.mjs`). What the page shows, while the run moves and
//! at its end, is compared with the API and with ansible's own PLAY RECAP.
//!
//! Chromium, node and `tests/ui/node_modules` come from tests/run.sh; with
//! CI=true their absence fails the test, elsewhere it is skipped with a
//! message.
// The router harness (`common`) and the process fixtures (`fixtures`) each
// bring the shared database helper.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../../tests/common/mod.rs"]
mod fixtures;

#[path = "../../tests/common/git.rs"]
mod upstream;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use fixtures::{cratond, ok, Server, TestDb};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

// ---------------------------------------------------------------------------
// The files themselves, through the router.

async fn get(h: &common::Harness, uri: &str, headers: &[(&str, &str)]) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = h.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn page_files_are_served_with_a_strict_policy_and_no_token() {
    let h = common::Harness::new(common::backends()[0]);
    for (uri, ty, needle) in [
        ("/ui/", "text/html; charset=utf-8", "<script src=\"app.js\""),
        ("/ui/index.html", "text/html; charset=utf-8", "id=\"login-form\""),
        ("/ui/app.js", "text/javascript; charset=utf-8", "text/event-stream"),
        ("/ui/app.css", "text/css; charset=utf-8", "content-visibility"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let (status, headers, body) = get(&h, uri, &[]).await;
        assert_eq!(status, 200, "{uri}");
        let hv = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(hv("content-type"), ty, "{uri}");
        assert!(hv("content-security-policy").starts_with("default-src 'self';"), "{uri}: {:?}", headers);
        assert!(!hv("content-security-policy").contains("unsafe"), "{uri}");
        assert_eq!(hv("cache-control"), "no-cache", "{uri}");
        assert_eq!(hv("x-content-type-options"), "nosniff", "{uri}");
        assert!(String::from_utf8_lossy(&body).contains(needle), "{uri} lacks {needle:?}");
        // Revalidation answers 304 without the body.
        let etag = hv("etag");
        assert!(etag.starts_with('"') && etag.len() > 10, "{uri}: etag {etag:?}");
        let (status, headers, body) = get(&h, uri, &[("if-none-match", &etag)]).await;
        assert_eq!((status, body.len()), (304, 0), "{uri}");
        assert!(headers.contains_key("content-security-policy"), "{uri}: 304 without CSP");
    }
    let (status, headers, _) = get(&h, "/ui", &[]).await;
    assert_eq!((status, headers.get("location").unwrap().to_str().unwrap()), (308, "/ui/"));
    let (status, _, body) = get(&h, "/ui/secrets.txt", &[]).await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no such file"), "{}", String::from_utf8_lossy(&body));
    // Not an API route: nothing about it in the OpenAPI document.
    let doc = cratond::api::meta::openapi_document();
    assert!(doc["paths"].as_object().unwrap().keys().all(|p| !p.starts_with("/ui")));
}

// ---------------------------------------------------------------------------
// The run page in Chromium.

struct Tools {
    chromium: String,
    ui_dir: PathBuf,
}

/// Chromium, node and playwright-core, or None (skip) when one is missing
/// outside CI.
fn browser_tools() -> Option<Tools> {
    let chromium = std::env::var("CRATON_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ui_dir = fixtures::repo_root().join("daemon/tests/ui");
    let mut missing = Vec::new();
    if !std::path::Path::new(&chromium).exists() {
        missing.push(format!("{chromium} (apt-get install chromium)"));
    }
    if !Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        missing.push("node (apt-get install nodejs npm)".into());
    }
    if !ui_dir.join("node_modules/playwright-core/package.json").exists() {
        missing.push(format!("{}/node_modules (npm ci --prefix daemon/tests/ui)", ui_dir.display()));
    }
    if missing.is_empty() {
        return Some(Tools { chromium, ui_dir });
    }
    let msg = format!("the browser test needs {}; tests/run.sh installs them", missing.join(", "));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// The node driver; killed on drop so a failed assertion leaves no browser.
struct Driver {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Driver {
    fn line(&self, what: &str, within: Duration) -> Value {
        let line = self.lines.recv_timeout(within).unwrap_or_else(|_| panic!("run_page.mjs said nothing ({what})"));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("run_page.mjs printed no JSON for {what} ({e}): {line}"));
        assert!(
            v.get("error").is_none(),
            "run_page.mjs failed at {what}: {}
{}",
            v["error"].as_str().unwrap_or(""),
            v["errors"]
        );
        v
    }

    fn send(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn api(base: &str, token: &str, path: &str) -> Value {
    let mut r = agent().get(format!("{base}{path}")).header("authorization", format!("Bearer {token}")).call().unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
}

fn api_text(base: &str, token: &str, path: &str) -> String {
    let mut r = agent().get(format!("{base}{path}")).header("authorization", format!("Bearer {token}")).call().unwrap();
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.body_mut().read_to_string().unwrap()
}

/// `GET /v1/runs/{id}/hosts`, a plain list or every page of one.
fn run_hosts(base: &str, token: &str, id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(format!("/v1/runs/{id}/hosts"));
    while let Some(path) = next.take() {
        let page = api(base, token, &path);
        if let Some(a) = page.as_array() {
            return a.clone();
        }
        out.extend(page["items"].as_array().unwrap_or_else(|| panic!("no items: {page}")).iter().cloned());
        next = page["links"]["next"].as_str().map(str::to_string);
    }
    out
}

/// ansible's PLAY RECAP: host -> {ok, changed, unreachable, failed, skipped, rescued, ignored}.
fn recap(stdout: &str) -> BTreeMap<String, BTreeMap<String, i64>> {
    let start = stdout.rfind("PLAY RECAP").unwrap_or_else(|| panic!("no PLAY RECAP in stdout:\n{stdout}"));
    let mut out = BTreeMap::new();
    for line in stdout[start..].lines().skip(1) {
        let Some((host, rest)) = line.split_once(" : ") else { continue };
        let nums = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse::<i64>().unwrap()))
            .collect();
        out.insert(host.trim().to_string(), nums);
    }
    out
}

const PLAYBOOK: &str = r#"- name: the page test
  hosts: all
  gather_facts: false
  tasks:
    - name: change something on web
      ansible.builtin.command: "true"
      changed_when: "'web' in group_names"
    - name: only on db
      ansible.builtin.debug:
        msg: db
      when: "'db' in group_names"
    - name: let the page be watched
      ansible.builtin.pause:
        seconds: 1
    - name: break h03
      ansible.builtin.fail:
        msg: the chosen failure
      when: inventory_hostname == 'h03'
    - name: an ignored failure
      ansible.builtin.command: "false"
      ignore_errors: true
      when: inventory_hostname == 'h04'
    - name: take a little while
      ansible.builtin.command: sleep 1
      changed_when: false
    - name: done
      ansible.builtin.debug:
        msg: done
"#;

/// Final status of each host, as the playbook makes them.
fn expected_status(host: &str) -> &'static str {
    match host {
        "h03" => "failed",
        "ghost" => "unreachable",
        "h01" | "h02" | "h04" | "h05" | "h06" => "changed",
        _ => "ok",
    }
}

fn inventory_yaml() -> String {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let python = fixtures::ansible("python");
    let hosts = |r: std::ops::RangeInclusive<u32>| r.map(|i| format!("            h{i:02}:\n")).collect::<String>();
    format!(
        "all:\n  children:\n    fleet:\n      vars:\n        ansible_connection: local\n        \
         ansible_python_interpreter: {python}\n      children:\n        web:\n          hosts:\n{web}            \
         ghost:\n              ansible_connection: ssh\n              ansible_host: 127.0.0.1\n              \
         ansible_port: {closed}\n              ansible_user: craton\n              \
         ansible_ssh_common_args: -o ConnectTimeout=3 -o BatchMode=yes -o StrictHostKeyChecking=no\n        \
         db:\n          hosts:\n{db}    \
         later:\n      vars:\n        ansible_connection: local\n      hosts:\n        l01:\n",
        python = python.display(),
        web = hosts(1..=6),
        db = hosts(7..=12),
    )
}

#[test]
fn run_page_follows_a_real_run_in_chromium() {
    let Some(tools) = browser_tools() else { return };
    // One backend: the page sees the API, whose backends have tests of their own.
    let db = TestDb::new(fixtures::backends()[0]);
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yml");
    std::fs::write(&inv, inventory_yaml()).unwrap();
    ok(cratond(&db).args(["import", "ansible"]).arg(&inv));
    let root = ok(cratond(&db).args(["token", "create", "--root", "--description", "ui test"])).trim().to_string();
    let repo = upstream::Upstream::new();
    repo.write("site.yml", PLAYBOOK);
    repo.commit_push("the page test's playbook");
    let runs_dir = dir.path().join("runs");
    let playbook = fixtures::ansible("ansible-playbook");
    let server = Server::start(
        &db,
        &["--no-sync"],
        &[("CRATON_RUNS_DIR", runs_dir.to_str().unwrap()), ("CRATON_ANSIBLE_PLAYBOOK", playbook.to_str().unwrap())],
    );

    let screenshot = std::env::var("CRATON_UI_SCREENSHOT").unwrap_or_else(|_| "/tmp/ui-run.png".into());
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new("node")
        .arg(tools.ui_dir.join("run_page.mjs"))
        .current_dir(&tools.ui_dir)
        .env("CRATON_UI_BASE", &server.base)
        .env("CRATON_UI_TOKEN", &root)
        .env("CRATON_TEST_CHROMIUM", &tools.chromium)
        .env("CRATON_UI_SCREENSHOT", &screenshot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let (tx, lines) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut driver = Driver { child, lines };
    let ready = driver.line("login", Duration::from_secs(60));
    assert_eq!(ready, json!({"ready": true, "token_in_session_storage": true}));

    // A run that waits in the queue for its maintenance window (on a host
    // of its own, next 1 January): the list must say so.
    let later = api(&server.base, &root, "/v1/groups?name=later");
    let later_id = later["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no group later: {later}"));
    let mut r = agent()
        .post(format!("{}/v1/groups/{later_id}/windows", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"name": "new year", "kind": "cron", "expression": "0 3 1 1 *", "time_zone": "UTC", "duration_s": 3600}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "window: {}", r.body_mut().read_to_string().unwrap());
    let mut r = agent()
        .post(format!("{}/v1/runs", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"playbook": "site.yml", "repo": repo.url(), "ref": "main", "group": "later"}))
        .unwrap();
    let waits: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let waits = waits["id"].as_i64().unwrap_or_else(|| panic!("POST /v1/runs (later): {waits}"));

    // The page is logged in and waiting: start the run now, so it is
    // watched from its first event.
    let mut r = agent()
        .post(format!("{}/v1/runs", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"playbook": "site.yml", "repo": repo.url(), "ref": "main", "group": "fleet", "forks": 13}))
        .unwrap();
    let status = r.status().as_u16();
    let created: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 201, "POST /v1/runs: {created}");
    let id = created["id"].as_i64().unwrap();
    // A run waiting for approval, submitted by another root token than the
    // page's (no one approves their own run); on the `later` group, so
    // once approved it waits for its window and runs nothing.
    let other_root =
        ok(cratond(&db).args(["token", "create", "--root", "--description", "ui submitter"])).trim().to_string();
    let mut r = agent()
        .post(format!("{}/v1/runs", server.base))
        .header("authorization", format!("Bearer {other_root}"))
        .send_json(json!({"playbook": "site.yml", "repo": repo.url(), "ref": "main", "group": "later",
            "approval": "required"}))
        .unwrap();
    let gated: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let gated = gated["id"].as_i64().unwrap_or_else(|| panic!("POST /v1/runs (gated): {gated}"));
    let w = {
        let start = std::time::Instant::now();
        loop {
            let w = api(&server.base, &root, &format!("/v1/runs/{gated}"));
            if w.get("waiting_for").is_some() || start.elapsed() > Duration::from_secs(30) {
                break w;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(w["waiting_for"].get("approval").is_some(), "{w}");
    driver.send(&format!("{id} {gated}"));
    // A rollout over web by three: h03 fails in the first batch, which is
    // over max_fail_percentage 0, so the other two batches are skipped. It
    // waits for the first run's hosts, then the page watches it end.
    let mut r = agent()
        .post(format!("{}/v1/runs", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"playbook": "site.yml", "repo": repo.url(), "ref": "main", "group": "web",
            "batch": 3, "max_fail_percentage": 0}))
        .unwrap();
    let rolled: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let rolled = rolled["id"].as_i64().unwrap_or_else(|| panic!("POST /v1/runs (rollout): {rolled}"));
    driver.send(&rolled.to_string());
    let page = driver.line("the run page", Duration::from_secs(360));

    let run = api(&server.base, &root, &format!("/v1/runs/{id}"));
    let hosts = run_hosts(&server.base, &root, id);
    let stdout = api_text(&server.base, &root, &format!("/v1/runs/{id}/stdout"));
    let report = format!("run {run}\nhosts {hosts:?}\npage {page}");
    assert!(page["errors"].as_array().unwrap().is_empty(), "browser errors: {}", page["errors"]);
    assert_eq!(run["status"], "failed", "{report}");

    // The API itself: what the playbook does to each host.
    let api_status: BTreeMap<String, String> = hosts
        .iter()
        .map(|h| (h["host"].as_str().unwrap().to_string(), h["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(api_status.len(), 13, "{report}");
    for (host, status) in &api_status {
        assert_eq!(status, expected_status(host), "{host}: {report}");
    }
    // ... matches ansible's recap.
    let recap = recap(&stdout);
    assert_eq!(recap.keys().collect::<Vec<_>>(), api_status.keys().collect::<Vec<_>>(), "{stdout}");
    for h in &hosts {
        let name = h["host"].as_str().unwrap();
        for (api_key, recap_key) in [
            ("ok", "ok"),
            ("changed", "changed"),
            ("unreachable", "unreachable"),
            ("failures", "failed"),
            ("skipped", "skipped"),
            ("rescued", "rescued"),
            ("ignored", "ignored"),
        ] {
            assert_eq!(h[api_key].as_i64(), Some(recap[name][recap_key]), "{name} {api_key}: {h} vs recap {stdout}");
        }
    }

    // The page's hosts: the stored statuses; what it derived from the event
    // stream alone (before re-reading them at the end) agrees, both from
    // the task results (`live`, before the recap) and with the recap.
    let page_hosts = page["hosts"].as_array().unwrap();
    let shown: BTreeMap<String, String> = page_hosts
        .iter()
        .map(|h| (h["host"].as_str().unwrap().to_string(), h["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(shown, api_status, "{report}");
    for h in page_hosts {
        assert_eq!(h["derived"], h["status"], "derived from events: {h}\n{report}");
        assert_eq!(h["live"], h["status"], "derived from the task results: {h}\n{report}");
    }
    // Its counters: the tally of the hosts, and the run's own counts.
    let mut tally: BTreeMap<&str, i64> = BTreeMap::new();
    for s in api_status.values() {
        *tally.entry(s.as_str()).or_default() += 1;
    }
    let counts = &page["final"]["counts"];
    assert_eq!(counts["hosts"], 13, "{report}");
    for s in ["ok", "changed", "failed", "unreachable", "skipped", "running", "pending", "not_run"] {
        assert_eq!(counts[s].as_i64(), Some(tally.get(s).copied().unwrap_or(0)), "{s}: {report}");
    }
    for s in ["hosts", "ok", "changed", "failed", "unreachable"] {
        assert_eq!(counts[s], run["counts"][s], "{s}: the page vs the run's counts\n{report}");
    }
    assert_eq!(page["final"]["status"], run["status"]);
    // The bar's segments add up to the whole.
    let widths: f64 = page["bar"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_str().unwrap().trim_end_matches('%').parse::<f64>().unwrap_or(0.0))
        .sum();
    assert!((widths - 100.0).abs() < 0.1, "bar widths {}", page["bar"]);
    assert!(page["stdout"].as_str().unwrap().contains("PLAY RECAP"), "stdout tail: {}", page["stdout"]);

    // It moved: distinct counters before the end, some with hosts not done.
    let snaps = page["snapshots"].as_array().unwrap();
    let undone = |s: &Value| s["counts"]["running"].as_i64().unwrap() + s["counts"]["pending"].as_i64().unwrap() > 0;
    assert!(snaps.len() >= 2, "the counters never moved: {snaps:?}");
    assert!(snaps.iter().filter(|s| undone(s)).count() >= 2, "{snaps:?}");
    // h03's failure showed while other hosts still ran, not only at the recap.
    assert!(snaps.iter().any(|s| undone(s) && s["counts"]["failed"] == 1), "{snaps:?}");
    // The deliberate drop: the page came back with Last-Event-ID, and (above)
    // still derived every host right.
    let reqs = page["event_requests"].as_array().unwrap();
    assert!(!page["drop"].is_null(), "the stream was never dropped: {page}");
    assert!(page["connects"].as_i64().unwrap() >= 2, "{page}");
    assert!(reqs[0].is_null() && reqs.len() >= 2, "{reqs:?}");
    let resumed: i64 = reqs[1].as_str().expect("reconnect without Last-Event-ID").parse().unwrap();
    assert!(resumed >= 1 && resumed < run["events"]["received"].as_i64().unwrap(), "{reqs:?} {run}");

    // The runs list shows the run.
    let list = &page["list"];
    assert_eq!(list["status"], run["status"]);
    assert_eq!(list["playbook"], "site.yml");
    assert_eq!(list["href"], format!("#/runs/{id}"));
    for s in ["hosts", "ok", "changed", "failed", "unreachable"] {
        assert_eq!(list[s].as_str().unwrap(), run["counts"][s].to_string(), "list {s}: {list}");
    }

    // The queue column: the window wait is shown (with the opening, in the
    // page's local time), a finished run shows none.
    let queue = page["queue"].as_array().unwrap();
    let row =
        |run: i64| queue.iter().find(|q| q["run"] == run).unwrap_or_else(|| panic!("run {run} not listed: {queue:?}"));
    assert_eq!(row(waits)["status"], "queued", "{queue:?}");
    let shown = row(waits)["waiting"].as_str().unwrap();
    assert!(shown.starts_with("window at ") && shown.contains("-01-01 "), "run {waits} waits: {shown:?}");
    assert_eq!(row(id)["waiting"], "", "{queue:?}");
    // The windows the queue waits for, as the page lists them.
    let windows = page["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{windows:?}");
    assert_eq!((windows[0]["name"].as_str(), windows[0]["group"].as_str()), (Some("new year"), Some("later")));
    assert!(windows[0]["opens"].as_str().unwrap().contains("-01-01 "), "{windows:?}");
    let mut r = agent()
        .post(format!("{}/v1/runs/{waits}/cancel", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"mode": "immediate"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "cancel: {}", r.body_mut().read_to_string().unwrap());

    // The approval, from the page: it said what the run waited for, and
    // after the click the run is approved and waits for its window.
    let approval = &page["approval"];
    let before = approval["before"].as_str().unwrap_or_default();
    assert!(before.starts_with("approval by an admin (submitted by token "), "{approval}");
    assert_eq!(approval["status"], "queued", "{approval}");
    // Past the gate: it waits for its window now (as the API says too).
    let start = std::time::Instant::now();
    let g = loop {
        let g = api(&server.base, &root, &format!("/v1/runs/{gated}"));
        if g["waiting_for"].get("window").is_some() || start.elapsed() > Duration::from_secs(30) {
            break g;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((g["status"].as_str(), g["waiting_for"].get("window").is_some()), (Some("queued"), true), "{g}");
    let shown_after = approval["after"].as_str().unwrap_or_default();
    assert!(!shown_after.starts_with("approval"), "{approval}");
    let mut r = agent()
        .post(format!("{}/v1/runs/{gated}/cancel", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"mode": "immediate"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "cancel: {}", r.body_mut().read_to_string().unwrap());

    // The rollout's page showed its batches as the API has them, and its
    // Resume button made the run of the rest.
    let rollout = &page["rollout"];
    let statuses: Vec<&str> =
        rollout["before"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["done", "skipped", "skipped"], "{rollout}");
    assert_eq!(rollout["before"][0]["hosts"], "h01, h02, h03", "{rollout}");
    let resumed = rollout["resumed"].as_i64().unwrap();
    assert_eq!(api(&server.base, &root, &format!("/v1/runs/{rolled}/batches"))["resumed_by"], resumed, "{rollout}");
    let seqs: Vec<i64> = rollout["after"].as_array().unwrap().iter().map(|b| b["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [2, 3], "{rollout}");
    assert_eq!(rollout["note"], format!("resumes #{rolled}"), "{rollout}");
    let mut r = agent()
        .post(format!("{}/v1/runs/{resumed}/cancel", server.base))
        .header("authorization", format!("Bearer {root}"))
        .send_json(json!({"mode": "immediate"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "cancel: {}", r.body_mut().read_to_string().unwrap());

    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{screenshot} is no PNG");
    eprintln!(
        "ui: {} snapshots, drop at {}, perf {}, screenshot {screenshot}",
        snaps.len(),
        page["drop"]["counts"],
        page["perf"]
    );
}
