//! The audit trail (issue 12) on every backend: API writes (variables,
//! hosts, groups, memberships, secrets) each leave one change set naming the
//! token and the route, with before and after; `cratond import` leaves one
//! naming its path (rows for a small import, one document for a large one),
//! and a failing import leaves neither change nor entry; a config-ref sync
//! names ref and commit; secrets appear only as fingerprints; the routes
//! are admin-only; `cratond audit prune` removes old change sets only; a
//! `cratond import` killed (SIGKILL) while it writes leaves its change and
//! its entry together or neither.

mod common;

#[path = "../../tests/common/git.rs"]
mod upstream;

use std::process::Command;

use common::{backends, Harness};
use craton::store::audit::{self, Filter};
use craton::store::schema::{audit_changes, audit_changesets, hosts};
use craton::store::tokens::Role;
use diesel::prelude::*;
use serde_json::{json, Value};

fn count_sets(h: &Harness) -> i64 {
    audit_changesets::table.count().get_result(&mut h.conn()).unwrap()
}

fn count_hosts(h: &Harness) -> i64 {
    hosts::table.count().get_result(&mut h.conn()).unwrap()
}

/// Every text the audit tables hold, concatenated.
fn audit_text(h: &Harness) -> String {
    let mut c = h.conn();
    let sets: Vec<(String, Option<String>, String, Option<String>)> = audit_changesets::table
        .select((
            audit_changesets::actor,
            audit_changesets::actor_note,
            audit_changesets::via,
            audit_changesets::document,
        ))
        .load(&mut c)
        .unwrap();
    let changes: Vec<(String, String, Option<String>, Option<String>)> = audit_changes::table
        .select((audit_changes::object_name, audit_changes::attr, audit_changes::old_value, audit_changes::new_value))
        .load(&mut c)
        .unwrap();
    format!("{sets:?}{changes:?}")
}

/// The newest change set (through the API), with its changes.
async fn newest(h: &Harness, admin: &str) -> Value {
    let r = h.expect(200, "GET", "/v1/audit?limit=1", admin, None).await;
    let id = r.body["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no change set: {}", r.text));
    h.expect(200, "GET", &format!("/v1/audit/{id}"), admin, None).await.body
}

/// The changes of `cs` as (kind, name, attr_kind, attr, before, after).
fn changes(cs: &Value) -> Vec<(String, String, String, String, Value, Value)> {
    cs["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["object"]["kind"].as_str().unwrap().to_string(),
                c["object"]["name"].as_str().unwrap().to_string(),
                c["attr_kind"].as_str().unwrap().to_string(),
                c["attr"].as_str().unwrap().to_string(),
                c["before"].clone(),
                c["after"].clone(),
            )
        })
        .collect()
}

fn ch(k: &str, n: &str, ak: &str, a: &str, b: Value, af: Value) -> (String, String, String, String, Value, Value) {
    (k.into(), n.into(), ak.into(), a.into(), b, af)
}

#[tokio::test]
async fn api_writes_leave_one_change_set_each() {
    for b in backends() {
        let h = Harness::new(b);
        let (ed_id, ed) = h.token_with_id(Some("default"), Role::Editor);
        let admin = h.token(Some("default"), Role::Admin);
        let start = count_sets(&h);

        let g = h.create("/v1/groups", &ed, json!({"name": "web"})).await;
        assert_eq!(count_sets(&h), start + 1, "{b:?}: group create");
        let cs = newest(&h, &admin).await;
        assert_eq!(changes(&cs), [ch("group", "web", "object", "", Value::Null, json!({"id": g}))], "{b:?}");

        let host = h.create("/v1/hosts", &ed, json!({"name": "web1", "groups": [g], "labels": ["x"]})).await;
        let cs = newest(&h, &admin).await;
        assert_eq!(
            changes(&cs),
            [
                ch("host", "web1", "group", "web", Value::Null, json!({"after": null})),
                ch("host", "web1", "label", "x", Value::Null, json!(true)),
                ch("host", "web1", "object", "", Value::Null, json!({"id": host})),
            ],
            "{b:?}"
        );

        // A variable write: before and after, the token and the route.
        let vars = format!("/v1/hosts/{host}/variables");
        h.expect(200, "PUT", &vars, &ed, Some(json!({"port": 80, "name": "a"}))).await;
        h.expect(200, "PUT", &vars, &ed, Some(json!({"port": 8080}))).await;
        assert_eq!(count_sets(&h), start + 4, "{b:?}");
        let cs = newest(&h, &admin).await;
        assert_eq!(changes(&cs), [ch("host", "web1", "var", "port", json!(80), json!(8080))], "{b:?}");
        assert_eq!(cs["actor"], json!({"kind": "token", "id": ed_id.to_string(), "note": "test"}), "{b:?}");
        assert_eq!((cs["source"].clone(), cs["via"].clone()), (json!("api"), json!(format!("PUT {vars}"))));
        let (rb, ra) = (cs["revision"]["before"].as_i64().unwrap(), cs["revision"]["after"].as_i64().unwrap());
        assert_eq!(ra, rb + 1, "{b:?}: {cs}");

        // Filters: key, host, actor; paging newest first.
        let r = h.expect(200, "GET", "/v1/audit?key=port", &admin, None).await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{}", r.text);
        assert_eq!(items[1]["changes"][0]["after"], 80);
        let r = h.expect(200, "GET", "/v1/audit?host=web1&limit=2", &admin, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
        let next = r.body["links"]["next"].as_str().unwrap_or_else(|| panic!("no next page: {}", r.text)).to_string();
        let r2 = h.expect(200, "GET", &next, &admin, None).await;
        assert_eq!(r2.body["items"].as_array().unwrap().len(), 1, "{}", r2.text);
        assert!(r2.body["links"]["next"].is_null());
        let r = h.expect(200, "GET", &format!("/v1/audit?actor=token:{ed_id}"), &admin, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 4);
        let r = h.expect(200, "GET", "/v1/audit?group=web", &admin, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);

        // Membership removed, then the host and the group deleted.
        h.expect(200, "PATCH", &format!("/v1/hosts/{host}"), &ed, Some(json!({"groups": []}))).await;
        let cs = newest(&h, &admin).await;
        assert_eq!(changes(&cs), [ch("host", "web1", "group", "web", json!({"after": null}), Value::Null)], "{b:?}");
        h.expect(204, "DELETE", &format!("/v1/hosts/{host}"), &ed, None).await;
        let cs = newest(&h, &admin).await;
        let c = changes(&cs);
        assert!(c.contains(&ch("host", "web1", "var", "port", json!(8080), Value::Null)), "{b:?}: {cs}");
        assert!(c.contains(&ch("host", "web1", "object", "", json!({"id": host}), Value::Null)), "{b:?}: {cs}");
        assert!(c.iter().all(|x| x.5.is_null()), "{b:?}: a deletion only removes: {cs}");
        h.expect(204, "DELETE", &format!("/v1/groups/{g}"), &ed, None).await;
        assert_eq!(count_sets(&h), start + 7, "{b:?}");

        // A refused write leaves nothing.
        h.expect(400, "POST", "/v1/hosts", &ed, Some(json!({"name": "x", "groups": [999999]}))).await;
        assert_eq!(count_sets(&h), start + 7, "{b:?}: a refused write was audited");

        // Admin only.
        let reader = h.token(Some("default"), Role::Reader);
        h.expect(403, "GET", "/v1/audit", &ed, None).await;
        h.expect(403, "GET", "/v1/audit", &reader, None).await;
        let id = h.expect(200, "GET", "/v1/audit?limit=1", &admin, None).await.body["items"][0]["id"].as_i64().unwrap();
        h.expect(403, "GET", &format!("/v1/audit/{id}"), &ed, None).await;
        // Another project's admin: not found.
        let other = h.token(Some("other"), Role::Admin);
        h.expect(404, "GET", &format!("/v1/audit/{id}"), &other, None).await;
        // It sees its own project's trail only: the creation of its token.
        let r = h.expect(200, "GET", "/v1/audit?changes=true", &other, None).await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", r.text);
        assert_eq!(
            (items[0]["project"].as_str(), items[0]["changes"][0]["object"]["kind"].as_str()),
            (Some("other"), Some("token")),
            "{}",
            r.text
        );
        h.expect(400, "GET", "/v1/audit?since=yesterday", &admin, None).await;
    }
}

#[tokio::test]
async fn secrets_are_fingerprints_only() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let admin = h.token(Some("default"), Role::Admin);
        let host = h.create("/v1/hosts", &root, json!({"name": "db1"})).await;
        const PLAIN: &str = "pl41n-Secret-VALUE-1";
        const PLAIN2: &str = "pl41n-Secret-VALUE-2";
        let path = format!("/v1/hosts/{host}/secrets");
        h.expect(201, "POST", &path, &root, Some(json!({"name": "db_pw", "kind": "password", "value": PLAIN}))).await;
        let cs = newest(&h, &admin).await;
        let c = changes(&cs);
        assert_eq!(c.len(), 1, "{b:?}: {cs}");
        let (k, n, ak, a, before, after) = &c[0];
        assert_eq!(
            (k.as_str(), n.as_str(), ak.as_str(), a.as_str(), before),
            ("host", "db1", "secret", "db_pw", &Value::Null)
        );
        assert_eq!(after["version"], 1, "{cs}");
        let fp1 = after["sha256"].as_str().unwrap().to_string();
        assert_eq!(fp1.len(), 16);
        h.expect(200, "PUT", &format!("{path}/db_pw"), &root, Some(json!({"value": PLAIN2}))).await;
        let cs = newest(&h, &admin).await;
        let c = changes(&cs);
        assert_eq!((c[0].4["sha256"].as_str(), c[0].5["version"].clone()), (Some(fp1.as_str()), json!(2)), "{cs}");
        assert_ne!(c[0].5["sha256"].as_str(), Some(fp1.as_str()));
        let r = h.expect(200, "GET", "/v1/audit?key=db_pw", &admin, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{}", r.text);
        let all = audit_text(&h);
        assert!(all.contains("db_pw"), "the scan reads the audit tables");
        assert!(!all.contains(PLAIN) && !all.contains(PLAIN2), "{b:?}: a secret value is in the audit tables");

        // Projects: created, renamed, deleted; root sees every project.
        let pid = h.create("/v1/projects", &root, json!({"name": "p2"})).await;
        let cs = newest(&h, &root).await;
        assert_eq!(cs["project"], "p2");
        assert_eq!(changes(&cs), [ch("project", "p2", "object", "", Value::Null, json!({"id": pid}))], "{b:?}");
        h.expect(200, "PUT", &format!("/v1/projects/{pid}/variables"), &root, Some(json!({"v": 1}))).await;
        h.expect(204, "DELETE", &format!("/v1/projects/{pid}"), &root, None).await;
        let cs = newest(&h, &root).await;
        assert_eq!((cs["project"].clone(), cs["revision"]["after"].clone()), (json!("p2"), Value::Null), "{cs}");
        let c = changes(&cs);
        assert!(c.contains(&ch("project", "p2", "var", "v", json!(1), Value::Null)), "{b:?}: {cs}");
        let r = h.expect(200, "GET", "/v1/audit?project=default", &root, None).await;
        assert!(r.body["items"].as_array().unwrap().iter().all(|cs| cs["project"] == "default"), "{}", r.text);
    }
}

fn cratond(h: &Harness, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cratond"))
        .args(args)
        .env("CRATON_DATABASE_URL", &h.db.url)
        .env("USER", "audit-tester")
        .output()
        .unwrap();
    out
}

fn inventory(dir: &std::path::Path, file: &str, hosts: usize) -> String {
    let mut ini = String::from("[web]\n");
    for i in 0..hosts {
        ini.push_str(&format!("web{i} port={i}\n"));
    }
    ini.push_str("[web:vars]\nhttp=1\n");
    let p = dir.join(file);
    std::fs::write(&p, ini).unwrap();
    p.canonicalize().unwrap().display().to_string()
}

#[tokio::test]
async fn imports_write_one_change_set_and_failures_none() {
    for b in backends() {
        let h = Harness::new(b);
        let admin = h.token(Some("default"), Role::Admin);
        // The token's own change set (tokens are audited too).
        let base = count_sets(&h);
        let dir = tempfile::tempdir().unwrap();

        // Small: change rows.
        let small = inventory(dir.path(), "small.ini", 20);
        let out = cratond(&h, &["import", "ansible", &small]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(count_sets(&h), base + 1, "{b:?}");
        let cs = newest(&h, &admin).await;
        assert_eq!((cs["source"].clone(), cs["via"].clone()), (json!("import"), json!(small)), "{cs}");
        assert_eq!(cs["actor"], json!({"kind": "import", "id": "audit-tester", "note": null}));
        // 20 hosts (object, membership, port) + the group (object, http).
        assert_eq!(cs["n_changes"], 62, "{b:?}");
        assert_eq!(cs["changes"].as_array().unwrap().len(), 62);

        // Large: one change set, its changes one document, still filterable.
        let large = inventory(dir.path(), "large.ini", 1200);
        let out = cratond(&h, &["import", "ansible", &large]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(count_sets(&h), base + 2, "{b:?}: one change set per import");
        let n: i64 = audit_changes::table
            .filter(audit_changes::attr_kind.ne("bulk"))
            .filter(audit_changes::object_kind.ne("token"))
            .count()
            .get_result(&mut h.conn())
            .unwrap();
        assert_eq!(n, 62, "{b:?}: the large import wrote change rows");
        let cs = newest(&h, &admin).await;
        assert_eq!((cs["via"].clone(), cs["n_changes"].clone()), (json!(large), json!(1180 * 3)), "{b:?}");
        let r = h.expect(200, "GET", "/v1/audit?host=web1199", &admin, None).await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{}", r.text);
        assert_eq!(items[0]["changes"].as_array().unwrap().len(), 3);
        let r = h.expect(200, "GET", "/v1/audit?host=web5", &admin, None).await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{b:?}: web5 was created by the small import only: {}", r.text);
        let cli = cratond(&h, &["audit", "--key", "port", "--host", "web1199", "--json"]);
        let text = String::from_utf8_lossy(&cli.stdout);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"after\":1199"), "{text}");

        // A failing import: merged into what is stored, its group edge
        // b -> a closes a cycle with the stored a -> b, which only the store
        // sees, after it wrote the new host: neither change nor entry.
        let ab = dir.path().join("ab.ini");
        std::fs::write(&ab, "[a]\nm1\n[b]\nm2\n[a:children]\nb\n").unwrap();
        let out = cratond(&h, &["import", "ansible", ab.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (hosts_before, sets_before) = (count_hosts(&h), count_sets(&h));
        let bad = dir.path().join("bad.ini");
        std::fs::write(&bad, "[a]\n[b]\nnew1 port=1\n[b:children]\na\n[web]\nweb0 port=99\n").unwrap();
        let out = cratond(&h, &["import", "ansible", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("cycle"), "{b:?}: the cycle was imported: {err}");
        assert_eq!((count_hosts(&h), count_sets(&h)), (hosts_before, sets_before), "{b:?}");
        let r = h.expect(200, "GET", "/v1/audit?host=web0&key=port", &admin, None).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);

        // Retention: only what is older than the cutoff goes.
        diesel::update(audit_changesets::table.filter(audit_changesets::via.eq(&small)))
            .set(audit_changesets::at.eq(1_000i64))
            .execute(&mut h.conn())
            .unwrap();
        let out = cratond(&h, &["audit", "prune", "--older-than", "1d"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pruned 1 change sets", "{b:?}");
        assert_eq!(count_sets(&h), base + 2);
        let left = audit::list(&mut h.conn(), &Filter { limit: 10, ..Default::default() }).unwrap();
        let vias: Vec<&str> =
            left.iter().filter(|cs| cs.actor.source == "import").map(|cs| cs.actor.via.as_str()).collect();
        assert_eq!(vias, [ab.canonicalize().unwrap().to_str().unwrap(), large.as_str()], "{b:?}");
        let n: i64 = audit_changes::table
            .filter(audit_changes::attr_kind.ne("bulk"))
            .filter(audit_changes::object_kind.ne("token"))
            .count()
            .get_result(&mut h.conn())
            .unwrap();
        assert_eq!(n, 7, "{b:?}: the ab import's 7 rows stay, the pruned set's 62 go");
    }
}

#[tokio::test]
async fn a_sync_names_its_ref_and_commit() {
    for b in backends() {
        let h = Harness::new(b);
        let admin = h.token(Some("default"), Role::Admin);
        let up = upstream::Upstream::new();
        up.write("inv/hosts.yml", "all:\n  children:\n    web:\n      hosts:\n        w1:\n");
        up.write("inv/group_vars/web.yml", "http_port: 80\n");
        let first = up.commit_push("initial");
        let id = {
            let mut c = h.conn();
            let pid = craton::store::find_project(&mut c, "default").unwrap().unwrap().id;
            craton::store::config_refs::create(
                &mut c,
                pid,
                &craton::store::config_refs::NewRef {
                    url: up.url(),
                    git_ref: "main".into(),
                    path: "inv".into(),
                    group_id: None,
                    poll_interval_secs: Some(60),
                    created_by_root: true,
                },
            )
            .unwrap()
            .id
        };
        let cache = tempfile::tempdir().unwrap();
        let mut settings = cratond::sync::SyncSettings::with_cache(cache.path().to_path_buf());
        settings.policy = cratond::repo_policy::RepoPolicy::default();
        let tmp = std::env::temp_dir().to_str().unwrap().trim_end_matches('/').to_string();
        settings.policy.projects.insert(
            "default".into(),
            cratond::repo_policy::ProjectPolicy { allow: vec![format!("{tmp}/**")], credentials: None },
        );
        let hub = cratond::sync::SyncHub::new(settings);
        hub.syncer.sync(&mut h.conn(), id, false).unwrap();
        let cs = newest(&h, &admin).await;
        assert_eq!(cs["source"], "sync", "{b:?}: {cs}");
        assert_eq!(cs["actor"]["note"], json!(first), "{cs}");
        assert_eq!(cs["via"], json!(format!("{}#main@{first}", up.url())), "{cs}");
        assert!(changes(&cs).contains(&ch("group", "web", "file_var", "http_port", Value::Null, json!(80))), "{cs}");

        up.write("inv/group_vars/web.yml", "http_port: 81\n");
        let second = up.commit_push("port");
        let before = count_sets(&h);
        hub.syncer.sync(&mut h.conn(), id, false).unwrap();
        assert_eq!(count_sets(&h), before + 1, "{b:?}");
        let cs = newest(&h, &admin).await;
        assert_eq!(changes(&cs), [ch("group", "web", "file_var", "http_port", json!(80), json!(81))], "{b:?}");
        assert_eq!(cs["actor"]["note"], json!(second));
    }
}

#[tokio::test]
async fn tokens_windows_schedules_config_refs_and_approvals_are_audited() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let admin = h.token(Some("default"), Role::Admin);
        let of = |kind: &'static str| {
            let (h, admin) = (&h, &admin);
            async move {
                let r = h.expect(200, "GET", &format!("/v1/audit?object_kind={kind}&changes=true"), admin, None).await;
                r.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|cs| cs["changes"].as_array().unwrap().clone())
                    .map(|c| (c["object"]["name"].clone(), c["before"].clone(), c["after"].clone()))
                    .collect::<Vec<_>>()
            }
        };
        // A token: created and revoked, never its secret.
        let (tid, secret) = h.token_with_id(Some("default"), Role::Editor);
        h.expect(204, "DELETE", &format!("/v1/tokens/{tid}"), &root, None).await;
        let t: Vec<_> = of("token").await.into_iter().filter(|c| c.0 == json!(tid.to_string())).collect();
        assert_eq!(t.len(), 2, "{b:?}: {t:?}");
        assert_eq!((t[0].1["role"].clone(), t[0].2.clone()), (json!("editor"), Value::Null), "{b:?}: newest first");
        assert_eq!((t[1].1.clone(), t[1].2["role"].clone()), (Value::Null, json!("editor")), "{b:?}");
        assert!(!audit_text(&h).contains(&secret), "{b:?}: a token secret in the trail");
        // A window, created and deleted.
        let g = h.create("/v1/groups", &root, json!({"name": "cell"})).await;
        let w = json!({"name": "nightly", "kind": "cron", "expression": "0 2 * * *", "time_zone": "UTC", "duration_s": 3600});
        let wid = h.create(&format!("/v1/groups/{g}/windows"), &root, w).await;
        h.expect(204, "DELETE", &format!("/v1/windows/{wid}"), &root, None).await;
        let w = of("window").await;
        assert_eq!(w.len(), 2, "{b:?}: {w:?}");
        assert_eq!((w[1].2["expression"].clone(), w[0].2.clone()), (json!("0 2 * * *"), Value::Null), "{b:?}: {w:?}");
        // A schedule: created, changed (before and after), deleted.
        let s = json!({"name": "hourly", "kind": "cron", "expression": "0 * * * *", "time_zone": "UTC",
            "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main"}});
        let sid = h.create("/v1/schedules", &root, s).await;
        h.expect(200, "PATCH", &format!("/v1/schedules/{sid}"), &root, Some(json!({"enabled": false}))).await;
        h.expect(204, "DELETE", &format!("/v1/schedules/{sid}"), &root, None).await;
        let s = of("schedule").await;
        assert_eq!(s.len(), 3, "{b:?}: {s:?}");
        assert_eq!((s[1].1["enabled"].clone(), s[1].2["enabled"].clone()), (json!(true), json!(false)), "{b:?}: {s:?}");
        // A config ref, added and deleted.
        let repo = tempfile::tempdir().unwrap();
        let url = format!("file://{}", repo.path().display());
        let rid = h.create("/v1/config-refs", &root, json!({"url": url, "ref": "main", "path": "", "group": g})).await;
        h.expect(204, "DELETE", &format!("/v1/config-refs/{rid}"), &root, None).await;
        let c = of("config_ref").await;
        assert_eq!(c.len(), 2, "{b:?}: {c:?}");
        assert_eq!((c[1].2["url"].clone(), c[0].1["ref"].clone()), (json!(url), json!("main")), "{b:?}: {c:?}");
        // A hook: its settings, never its secret (a new one is "replaced").
        let hook = json!({"url": "http://127.0.0.1:9/hook", "secret": "hook-s3cr3t-one", "events": ["*"]});
        let hid = h.create("/v1/hooks", &root, hook).await;
        let patch = json!({"secret": "hook-s3cr3t-two", "active": false});
        h.expect(200, "PATCH", &format!("/v1/hooks/{hid}"), &root, Some(patch)).await;
        h.expect(204, "DELETE", &format!("/v1/hooks/{hid}"), &root, None).await;
        let k = of("hook").await;
        assert_eq!(k.len(), 3, "{b:?}: {k:?}");
        assert_eq!((k[1].1["active"].clone(), k[1].2["active"].clone()), (json!(true), json!(false)), "{b:?}: {k:?}");
        assert_eq!((k[1].1.get("secret"), k[1].2["secret"].clone()), (None, json!("replaced")), "{b:?}: {k:?}");
        let text = audit_text(&h);
        assert!(!text.contains("hook-s3cr3t"), "{b:?}: a hook secret in the trail");
        // A webhook rule: created, changed, deleted.
        let rule = json!({"name": "deploy-main", "event": "push", "repository": "acme/ops", "branches": ["main"],
            "template": {"playbook": "site.yml", "repo": "file:///nonexistent", "group": "cell"}});
        let wr = h.create("/v1/webhook-rules", &root, rule).await;
        h.expect(200, "PATCH", &format!("/v1/webhook-rules/{wr}"), &root, Some(json!({"branches": ["release/*"]})))
            .await;
        h.expect(204, "DELETE", &format!("/v1/webhook-rules/{wr}"), &root, None).await;
        let r = of("webhook_rule").await;
        assert_eq!(r.len(), 3, "{b:?}: {r:?}");
        assert_eq!(r[2].2["repository"], "acme/ops", "{b:?}: {r:?}");
        assert_eq!((r[1].1["branches"].clone(), r[1].2["branches"].clone()), (json!(["main"]), json!(["release/*"])));
        assert_eq!((r[0].0.clone(), r[0].2.clone()), (json!("deploy-main"), Value::Null), "{b:?}: {r:?}");
        // A run's approval: who answered it.
        h.create("/v1/hosts", &root, json!({"name": "h1"})).await;
        let run = h
            .create(
                "/v1/runs",
                &root,
                json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main",
                "approval": "required"}),
            )
            .await;
        h.expect(200, "POST", &format!("/v1/runs/{run}/deny"), &admin, Some(json!({"comment": "freeze"}))).await;
        let a = of("run").await;
        assert_eq!(a.len(), 1, "{b:?}: {a:?}");
        assert_eq!(
            (a[0].0.clone(), a[0].2["approval"]["decision"].clone()),
            (json!(format!("#{run}")), json!("denied")),
            "{b:?}"
        );
        assert_eq!(a[0].2["approval"]["comment"], "freeze", "{b:?}");
    }
}

/// Change sets written by `cratond import`.
fn import_sets(h: &Harness) -> i64 {
    audit_changesets::table.filter(audit_changesets::source.eq("import")).count().get_result(&mut h.conn()).unwrap()
}

/// kill -9 of `cratond import` while it writes: its hosts and its change
/// set are both there or neither (the trail is written in the import's own
/// transaction), and the next import of the same file is whole.
#[tokio::test]
async fn a_killed_import_leaves_change_and_entry_together_or_neither() {
    const HOSTS: i64 = 6000;
    for b in backends() {
        let h = Harness::new(b);
        let dir = tempfile::tempdir().unwrap();
        let big = inventory(dir.path(), "big.ini", HOSTS as usize);
        // How long a whole import takes here, into a scratch database.
        let scratch = Harness::new(b);
        let start = std::time::Instant::now();
        assert!(cratond(&scratch, &["import", "ansible", &big]).status.success());
        let whole = start.elapsed();
        let mut killed_mid = 0;
        let mut done = false;
        // Kills from a third of the way to just before its end: in the write.
        for fraction in [0.35, 0.5, 0.65, 0.8, 0.9, 0.95] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_cratond"))
                .args(["import", "ansible", &big])
                .env("CRATON_DATABASE_URL", &h.db.url)
                .env("USER", "audit-tester")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(whole.mul_f64(fraction));
            let _ = child.kill();
            let status = child.wait().unwrap();
            let state = (count_hosts(&h), import_sets(&h));
            assert!(state == (0, 0) || state == (HOSTS, 1), "{b:?}: after a kill at {fraction}: {state:?}");
            if state == (HOSTS, 1) {
                done = true;
                break;
            }
            if !status.success() {
                killed_mid += 1;
            }
        }
        assert!(killed_mid > 0, "{b:?}: no kill landed before the import committed ({whole:?} for a whole one)");
        if !done {
            let out = cratond(&h, &["import", "ansible", &big]);
            assert!(out.status.success(), "{b:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!((count_hosts(&h), import_sets(&h)), (HOSTS, 1), "{b:?}");
    }
}

/// A run records the revision its inventory was built from, and
/// `from=run:ID` diffs from there: "what changed since that run".
#[tokio::test]
async fn what_changed_since_a_run_is_one_call() {
    for b in backends() {
        let h = Harness::new(b);
        let root = h.token(None, Role::Root);
        let admin = h.token(Some("default"), Role::Admin);
        let web1 = h.create("/v1/hosts", &root, json!({"name": "web1"})).await;
        h.expect(200, "PUT", &format!("/v1/hosts/{web1}/variables"), &root, Some(json!({"port": 80}))).await;
        // The run's playbook never exists: it ends `error`, its inventory recorded all the same.
        let body = json!({"playbook": "site.yml", "repo": "file:///nonexistent", "ref": "main"});
        let project = h.expect(200, "GET", "/v1/projects?name=default", &root, None).await;
        let rev = project.body["items"][0]["revision"].clone();
        let run = h.expect(201, "POST", "/v1/runs", &root, Some(body)).await.body["id"].as_i64().unwrap();
        h.expect(200, "PUT", &format!("/v1/hosts/{web1}/variables"), &root, Some(json!({"port": 8080}))).await;
        h.create("/v1/hosts", &root, json!({"name": "web2"})).await;
        let d = h.expect(200, "GET", &format!("/v1/inventory/diff?from=run:{run}"), &admin, None).await.body;
        assert_eq!(d["from"]["revision"], rev, "{b:?}: {d}");
        assert_eq!(d["hosts"]["added"], json!(["web2"]), "{b:?}: {d}");
        let port = &d["variables"]["web1"]["port"];
        assert_eq!((port["before"].clone(), port["after"].clone()), (json!(80), json!(8080)), "{b:?}: {d}");
        let r = h.expect(400, "GET", "/v1/inventory/diff?from=run:999999", &admin, None).await;
        assert_eq!(r.detail_fields(), ["from"], "{b:?}: {}", r.text);
        let r = h.expect(400, "GET", &format!("/v1/inventory/diff?from=0&to=run:x{run}"), &admin, None).await;
        assert_eq!(r.detail_fields(), ["to"], "{b:?}: {}", r.text);
        // The CLI takes the same points.
        let out = cratond(&h, &["diff", "--from", &format!("run:{run}")]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("+ host web2"), "{b:?}: {text}");
    }
}
