//! The inventory as of a past time (issue 12, stage 2) on every backend: a
//! sequence of writes through the API (groups, hosts, variables put and
//! deleted, children, memberships, a priority, a label, a deactivation, a
//! delete), an import, and a project variable; after each step the live
//! `craton-inventory --list`, one `--host` and `GET /v1/inventory` are
//! captured with the time and revision. Then, for every captured instant
//! and revision, `--at` and `?at=` must print the captured bytes, and (on
//! the first backend) `ansible-inventory --list` over the as-of output
//! must equal it over the live one. Refusals: a malformed `at` (400 naming
//! the field; one stderr line, nothing on stdout), an instant before the
//! project existed, ahead, or before a pruned trail, and `at` with a vault
//! password.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{backends, Harness};
use craton::store::history::format_rfc3339;
use craton::store::now_ms;
use craton::store::tokens::Role;
use serde_json::{json, Value};

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|p| p.join("Cargo.lock").exists()).unwrap().to_path_buf()
}

fn craton_inventory() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    let profile = std::env::var("CRATON_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    let p = target.join(profile).join("craton-inventory");
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` first", p.display());
    p
}

fn inventory(h: &Harness, args: &[&str]) -> Output {
    Command::new(craton_inventory())
        .args(args)
        .env("CRATON_DATABASE_URL", &h.db.url)
        .env("CRATON_CONFIG", "/dev/null")
        .env_remove("CRATON_URL")
        .env_remove("CRATON_PROJECT")
        .env_remove("CRATON_VAULT_PASSWORD_FILE")
        .output()
        .unwrap()
}

fn inventory_ok(h: &Harness, args: &[&str]) -> Vec<u8> {
    let o = inventory(h, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "{args:?}: stderr {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// The failure contract: exit 1, one stderr line containing `want`, no stdout.
fn inventory_refused(h: &Harness, args: &[&str], want: &str) {
    let o = inventory(h, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: stdout {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
}

fn cratond_out(h: &Harness, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cratond"))
        .args(args)
        .env("CRATON_DATABASE_URL", &h.db.url)
        .env("CRATON_CONFIG", "/dev/null")
        .env_remove("CRATON_PROJECT")
        .output()
        .unwrap();
    assert!(o.status.success(), "cratond {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn cratond(h: &Harness, args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_cratond"))
        .args(args)
        .env("CRATON_DATABASE_URL", &h.db.url)
        .env("CRATON_CONFIG", "/dev/null")
        .env_remove("CRATON_PROJECT")
        .output()
        .unwrap();
    assert!(o.status.success(), "cratond {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// `ansible-inventory --list` over a script that prints `doc`.
fn ansible_sees(dir: &Path, name: &str, doc: &[u8]) -> Value {
    let json = dir.join(format!("{name}.json"));
    std::fs::write(&json, doc).unwrap();
    let script = dir.join(format!("{name}.sh"));
    std::fs::write(
        &script,
        format!("#!/bin/sh\nif [ \"$1\" = --list ]; then cat '{}'; else echo '{{}}'; fi\n", json.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(repo_root().join(".venv/bin/ansible-inventory"))
        .arg("-i")
        .arg(&script)
        .arg("--list")
        .env("ANSIBLE_HOME", dir.join(".ansible"))
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible/tmp"))
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_INVENTORY_ENABLED", "script")
        .env("ANSIBLE_CONFIG", {
            let cfg = dir.join("ansible.cfg");
            std::fs::write(&cfg, "[defaults]\n").unwrap();
            cfg
        })
        .output()
        .unwrap();
    assert!(o.status.success(), "ansible-inventory: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

struct Captured {
    step: &'static str,
    at_ms: i64,
    revision: i64,
    list: Vec<u8>,
    host: Option<Vec<u8>>,
    rest: String,
}

fn revision(h: &Harness) -> i64 {
    craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().revision
}

async fn capture(h: &Harness, reader: &str, step: &'static str, out: &mut Vec<Captured>) {
    let list = inventory_ok(h, &["--list"]);
    let host = {
        let o = inventory(h, &["--host", "web1"]);
        o.status.success().then_some(o.stdout)
    };
    let rest = h.expect(200, "GET", "/v1/inventory", reader, None).await.text;
    let revision = revision(h);
    let at_ms = now_ms();
    out.push(Captured { step, at_ms, revision, list, host, rest });
    // The next write's change set must be stamped after this instant.
    std::thread::sleep(std::time::Duration::from_millis(3));
}

#[tokio::test]
async fn inventory_as_of_every_captured_instant_is_the_captured_bytes() {
    let scratch = tempfile::tempdir().unwrap();
    let import = scratch.path().join("import.yml");
    std::fs::write(
        &import,
        "all:\n  vars: {site: lab}\n  children:\n    web:\n      hosts:\n        web1: {port: 8443}\n        web9: {}\n      \
         vars: {tier: front}\n    db:\n      children:\n        pg: {hosts: {db1: {}}}\n",
    )
    .unwrap();
    for (n, b) in backends().into_iter().enumerate() {
        let h = Harness::new(b);
        let ed = h.token(Some("default"), Role::Editor);
        let reader = h.token(Some("default"), Role::Reader);
        let admin = h.token(Some("default"), Role::Admin);
        let mut caps = Vec::new();
        let before_any = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(3));
        capture(&h, &reader, "empty", &mut caps).await;

        let web = h.create("/v1/groups", &ed, json!({"name": "web"})).await;
        capture(&h, &reader, "group web", &mut caps).await;
        let db = h.create("/v1/groups", &ed, json!({"name": "db", "priority": 5})).await;
        let web1 = h.create("/v1/hosts", &ed, json!({"name": "web1", "groups": [web], "labels": ["x"]})).await;
        capture(&h, &reader, "db, web1", &mut caps).await;
        let web2 = h.create("/v1/hosts", &ed, json!({"name": "web2", "groups": [web, db]})).await;
        let db1 = h.create("/v1/hosts", &ed, json!({"name": "db1", "groups": [db]})).await;
        capture(&h, &reader, "web2, db1", &mut caps).await;
        h.expect(
            200,
            "PUT",
            &format!("/v1/hosts/{web1}/variables"),
            &ed,
            Some(json!({"port": 80, "z": [1, {"a": null}]})),
        )
        .await;
        h.expect(200, "PUT", &format!("/v1/groups/{web}/variables"), &ed, Some(json!({"port": 8080, "tier": "front"})))
            .await;
        capture(&h, &reader, "vars", &mut caps).await;
        h.expect(204, "DELETE", &format!("/v1/hosts/{web1}/variables?key=port"), &ed, None).await;
        capture(&h, &reader, "var deleted", &mut caps).await;
        let app = h.create("/v1/groups", &ed, json!({"name": "app"})).await;
        h.expect(200, "PATCH", &format!("/v1/groups/{db}"), &ed, Some(json!({"children": [app, web]}))).await;
        capture(&h, &reader, "children", &mut caps).await;
        h.expect(200, "PATCH", &format!("/v1/hosts/{web1}"), &ed, Some(json!({"groups": [db, app]}))).await;
        h.expect(200, "PATCH", &format!("/v1/hosts/{web2}"), &ed, Some(json!({"active": false}))).await;
        capture(&h, &reader, "memberships", &mut caps).await;
        h.expect(204, "DELETE", &format!("/v1/hosts/{db1}"), &ed, None).await;
        capture(&h, &reader, "host deleted", &mut caps).await;
        cratond(&h, &["import", "ansible", import.to_str().unwrap()]);
        capture(&h, &reader, "import", &mut caps).await;
        let def = craton::store::find_project(&mut h.conn(), "default").unwrap().unwrap().id;
        h.expect(200, "PUT", &format!("/v1/projects/{def}/variables"), &ed, Some(json!({"site": "prod", "n": 1})))
            .await;
        h.expect(204, "DELETE", &format!("/v1/groups/{app}"), &ed, None).await;
        capture(&h, &reader, "project var, group deleted", &mut caps).await;

        // Every step changed the output: the test would notice a rebuild
        // that answers with the wrong step.
        for w in caps.windows(2) {
            assert_ne!(w[0].list, w[1].list, "{b:?}: {} and {} print the same", w[0].step, w[1].step);
        }

        let ansible_dir = tempfile::tempdir().unwrap();
        for (i, c) in caps.iter().enumerate() {
            let t = format_rfc3339(c.at_ms);
            let what = format!("{b:?} step {i} {:?} at {t}", c.step);
            let got = inventory_ok(&h, &["--list", "--at", &t]);
            assert!(got == c.list, "{what}: --at\n{}\nlive then:\n{}", lossy(&got), lossy(&c.list));
            let rev = c.revision.to_string();
            let got = inventory_ok(&h, &["--list", "--at", &rev]);
            assert!(got == c.list, "{what}: --at {rev}\n{}\nlive then:\n{}", lossy(&got), lossy(&c.list));
            match &c.host {
                Some(host) => assert_eq!(&inventory_ok(&h, &["--host", "web1", "--at", &t]), host, "{what}: --host"),
                None => inventory_refused(&h, &["--host", "web1", "--at", &t], "web1"),
            }
            // An offset instead of Z, URL-encoded.
            let r = h.expect(200, "GET", &format!("/v1/inventory?at={}", enc(&t)), &reader, None).await;
            assert_eq!(r.text, c.rest, "{what}: ?at=");
            if n == 0 {
                let live = ansible_sees(ansible_dir.path(), &format!("live{i}"), &c.list);
                let then = ansible_sees(
                    ansible_dir.path(),
                    &format!("asof{i}"),
                    &inventory_ok(&h, &["--list", "--at", &format!("{}+01:00", &shift_hour(&t))]),
                );
                assert_eq!(live, then, "{what}: ansible-inventory");
            }
        }

        // Bundles take at too (same code path).
        let mid = &caps[4];
        let r = h.raw("GET", &format!("/v1/inventory.tgz?at={}", mid.revision), Some(&reader), Vec::new()).await;
        assert_eq!(r.status.as_u16(), 200, "{b:?}: bundle at: {}", r.text);

        // Refusals.
        let r = h.expect(400, "GET", "/v1/inventory?at=yesterday", &reader, None).await;
        assert_eq!(r.detail_fields(), ["at"], "{}", r.text);
        inventory_refused(&h, &["--list", "--at", "yesterday"], "--at");
        let ahead = format_rfc3339(now_ms() + 3_600_000);
        let r = h.expect(400, "GET", &format!("/v1/inventory?at={}", enc(&ahead)), &reader, None).await;
        assert!(r.text.contains("lies ahead"), "{}", r.text);
        inventory_refused(&h, &["--list", "--at", &format!("{}", caps.last().unwrap().revision + 100)], "not reached");
        // Before the project existed (the default project is created by
        // the migration, just before the harness starts).
        inventory_refused(&h, &["--list", "--at", "2000-01-01T00:00:00Z"], "2000-01-01T00:00:00.000Z");
        let _ = before_any;
        let pw = scratch.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let o = Command::new(craton_inventory())
            .args(["--list", "--at", &caps[1].revision.to_string()])
            .env("CRATON_DATABASE_URL", &h.db.url)
            .env("CRATON_CONFIG", "/dev/null")
            .env("CRATON_VAULT_PASSWORD_FILE", &pw)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.is_empty());
        assert!(String::from_utf8_lossy(&o.stderr).contains("without secrets"));

        // The diff between "web2, db1" and "var deleted": web1 got z and,
        // its own port deleted, the group's; web2 only the group's. Blame:
        // the three sets that touched port on web1 or its group, one on web2.
        let (r3, r5) = (caps[3].revision, caps[5].revision);
        let path = format!("/v1/inventory/diff?from={r3}&to={}", enc(&format_rfc3339(caps[5].at_ms)));
        h.expect(403, "GET", &path, &reader, None).await;
        let d = h.expect(200, "GET", &path, &admin, None).await.body;
        assert_eq!(d["from"]["revision"], r3, "{b:?}: {d}");
        assert_eq!(d["to"]["revision"], r5, "{b:?}: {d}");
        let web1v = &d["variables"]["web1"];
        assert_eq!(
            (web1v["port"]["before"].clone(), web1v["port"]["after"].clone()),
            (Value::Null, json!(8080)),
            "{d}"
        );
        assert_eq!(web1v["z"]["after"], json!([1, {"a": null}]), "{d}");
        assert_eq!(web1v["port"]["blame"].as_array().unwrap().len(), 3, "{b:?}: {d}");
        let web2b = d["variables"]["web2"]["port"]["blame"].as_array().unwrap().clone();
        assert_eq!(web2b.len(), 1, "{b:?}: {d}");
        assert!(d["variables"].get("db1").is_none(), "{b:?}: db1 changed nothing: {d}");
        let ids: Vec<Value> = d["changesets"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
        assert!(ids.contains(&web2b[0]), "{d}");
        assert_eq!(ids.len(), 3, "{b:?}: {d}");
        let d =
            h.expect(200, "GET", &format!("/v1/inventory/diff?from={}&to={r3}", caps[2].revision), &admin, None).await;
        assert_eq!(d.body["hosts"]["added"], json!(["db1", "web2"]), "{}", d.text);
        assert_eq!(
            d.body["memberships"]["added"],
            json!([{"from": "db1", "to": "db"}, {"from": "web2", "to": "db"}, {"from": "web2", "to": "web"}]),
            "{}",
            d.text
        );
        let r = h.expect(400, "GET", "/v1/inventory/diff", &admin, None).await;
        assert_eq!(r.detail_fields(), ["from"], "{}", r.text);
        let text = cratond_out(&h, &["diff", "--from", &r3.to_string(), "--to", &r5.to_string()]);
        assert!(text.contains(&format!("~ web2 port: (unset) -> 8080 [#{}]", web2b[0])), "{b:?}: {text}");

        // Pruning the trail: instants before what is kept are refused,
        // naming the instant; later ones still answer.
        let keep_from = caps[6].at_ms;
        prune(&h, keep_from);
        let old = format_rfc3339(caps[3].at_ms);
        let r = h.expect(400, "GET", &format!("/v1/inventory?at={}", enc(&old)), &admin, None).await;
        assert!(r.text.contains(&old) && r.text.contains("pruned"), "{b:?}: {}", r.text);
        inventory_refused(&h, &["--list", "--at", &old], &old);
        inventory_refused(&h, &["--list", "--at", &caps[3].revision.to_string()], "pruned");
        let r = h.expect(400, "GET", &format!("/v1/inventory/diff?from={r3}"), &admin, None).await;
        assert_eq!(r.detail_fields(), ["from"], "{}", r.text);
        for c in &caps[7..] {
            assert!(inventory_ok(&h, &["--list", "--at", &format_rfc3339(c.at_ms)]) == c.list, "{b:?}: after prune");
        }
    }
}

fn prune(h: &Harness, before_ms: i64) {
    let n = craton::store::audit::prune(&mut h.conn(), before_ms, None).unwrap();
    assert!(n > 0);
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// `2026-12-04T19:50:00.123Z` as the same instant written at +01:00
/// (without the zone suffix; the caller appends it).
fn shift_hour(t: &str) -> String {
    let ms = craton::store::history::parse_rfc3339(t).unwrap() + 3_600_000;
    format_rfc3339(ms).trim_end_matches('Z').to_string()
}
