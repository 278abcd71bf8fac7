//! Config ref sync with the real binaries, on every backend: `cratond sync`
//! against a local bare repository over file://, checked with real
//! `ansible-inventory` (Craton's inventory equals Ansible's own reading of
//! the checked-out directory, at each step); two `cratond` processes syncing
//! one ref at once (the lease lets exactly one apply); `kill -9` in the
//! middle of a sync (the previous state stays whole, the dead holder's lease
//! expires); `cratond import` leaving ref-owned keys to their ref.

mod common;

#[path = "common/git.rs"]
mod upstream;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ansible_list, ansible_via_craton, backends, cratond, ok, run, stderr, stdout, TestDb};
use serde_json::Value;
use upstream::Upstream;

/// `cratond` with its own clone cache (as on another machine).
fn cratond_in(db: &TestDb, cache: &Path) -> Command {
    let mut c = cratond(db);
    c.env("CRATON_GIT_CACHE_DIR", cache).env_remove("CRATON_GIT_TOKEN").env_remove("CRATON_WEBHOOK_SECRET");
    c
}

fn hosts_yml(groups: &[(&str, Vec<String>)]) -> String {
    let mut s = String::from("all:\n  children:\n");
    for (g, hosts) in groups {
        s.push_str(&format!("    {g}:\n      hosts:\n"));
        for h in hosts {
            s.push_str(&format!("        {h}:\n"));
        }
    }
    s
}

/// Ansible's own reading of the work tree's inventory directory.
fn ansible_on_dir(dir: &Path) -> Value {
    ansible_list(dir, "yaml", false, &[])
}

#[test]
fn cratond_sync_matches_ansible_on_the_checkout_at_each_step() {
    for b in backends() {
        let db = TestDb::new(b);
        let cache = tempfile::tempdir().unwrap();
        let up = Upstream::new();
        let web: Vec<String> = (1..=3).map(|i| format!("web{i}")).collect();
        up.write("inv/hosts.yml", &hosts_yml(&[("web", web.clone()), ("db", vec!["db1".into()])]));
        up.write("inv/group_vars/all.yml", "ntp: pool.ntp.org\nlevel: all\n");
        up.write("inv/group_vars/web.yml", "level: web\nport: 80\n");
        up.write("inv/host_vars/web1.yml", "level: host\n");
        up.write("inv/group_vars/db/main.yml", "engine: postgres\n");
        up.write("inv/group_vars/db/tuning.yaml", "buffers: 128MB\n");
        up.commit_push("initial");
        let inv = up.work.join("inv");
        ok(cratond_in(&db, cache.path()).arg("migrate"));
        let id = ok(cratond_in(&db, cache.path()).args([
            "config-ref",
            "add",
            "--url",
            &up.url(),
            "--ref",
            "main",
            "--path",
            "inv",
        ]));
        let id = id.trim();

        let out = ok(cratond_in(&db, cache.path()).arg("sync"));
        assert!(out.contains(&format!("ref {id} (")) && out.contains("synced"), "{b:?}: {out}");
        assert_eq!(ansible_via_craton(&db, false, &[]), ansible_on_dir(&inv), "{b:?}: initial");

        // Unchanged: says so.
        let out = ok(cratond_in(&db, cache.path()).arg("sync"));
        assert!(out.contains("unchanged"), "{out}");

        // Change, add, remove; a new host declared.
        up.write("inv/group_vars/web.yml", "level: web\nport: 8080\n");
        up.remove("inv/group_vars/db/tuning.yaml");
        up.write("inv/host_vars/db1.yml", "replica: false\n");
        up.write("inv/hosts.yml", &hosts_yml(&[("web", web.clone()), ("db", vec!["db1".into(), "db2".into()])]));
        up.commit_push("second");
        let out = ok(cratond_in(&db, cache.path()).args(["sync", "--ref", id]));
        assert!(out.contains("1 created, 1 updated, 1 removed"), "{b:?}: {out}");
        let good = ansible_on_dir(&inv);
        assert_eq!(ansible_via_craton(&db, false, &[]), good, "{b:?}: after a push");

        // A malformed file: exit status 1, file and line named, state kept.
        up.write("inv/host_vars/web2.yml", "a: 1\n  b: 2\n");
        up.commit_push("broken");
        let o = run(cratond_in(&db, cache.path()).arg("sync"));
        assert!(!o.status.success(), "{b:?}: a failed sync exited 0");
        assert!(stdout(&o).contains("inv/host_vars/web2.yml:2:"), "{b:?}: {}", stdout(&o));
        assert!(stderr(&o).contains("failed to sync"), "{}", stderr(&o));
        assert_eq!(ansible_via_craton(&db, false, &[]), good, "{b:?}: a failed sync changed the inventory");
        let list = ok(cratond_in(&db, cache.path()).args(["config-ref", "list"]));
        assert!(list.contains("error: inv/host_vars/web2.yml:2:"), "{list}");

        // Fixed.
        up.write("inv/host_vars/web2.yml", "a: 1\nb: 2\n");
        up.commit_push("fixed");
        ok(cratond_in(&db, cache.path()).arg("sync"));
        assert_eq!(ansible_via_craton(&db, false, &[]), ansible_on_dir(&inv), "{b:?}: after the fix");

        // The clone cache is repaired when corrupt.
        for entry in std::fs::read_dir(cache.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "git") {
                std::fs::remove_dir_all(p.join("objects")).unwrap();
                std::fs::write(p.join("HEAD"), "garbage").unwrap();
            }
        }
        up.write("inv/group_vars/web.yml", "level: web\nport: 9090\n");
        up.commit_push("after corruption");
        let out = ok(cratond_in(&db, cache.path()).arg("sync"));
        assert!(out.contains("synced"), "{b:?}: {out}");
        assert_eq!(ansible_via_craton(&db, false, &[]), ansible_on_dir(&inv), "{b:?}: after re-clone");
    }
}

#[test]
fn import_leaves_keys_owned_by_refs_to_them() {
    for b in backends() {
        let db = TestDb::new(b);
        let cache = tempfile::tempdir().unwrap();
        let up = Upstream::new();
        up.write("hosts.yml", &hosts_yml(&[("web", vec!["w1".into()])]));
        up.write("group_vars/web.yml", "port: 80\n");
        up.commit_push("initial");
        ok(cratond_in(&db, cache.path()).args(["config-ref", "add", "--url", &up.url(), "--ref", "main"]));
        ok(cratond_in(&db, cache.path()).arg("sync"));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("inv.yml");
        std::fs::write(
            &f,
            "all:\n  children:\n    web:\n      hosts:\n        w1:\n      vars:\n        port: 1\n        extra: 2\n",
        )
        .unwrap();
        for replace in [false, true] {
            let mut c = cratond_in(&db, cache.path());
            c.args(["import", "ansible"]).arg(&f);
            if replace {
                c.arg("--replace");
            }
            let o = run(&mut c);
            assert!(o.status.success(), "{b:?}: {}", stderr(&o));
            assert!(stderr(&o).contains("owned by config refs"), "{b:?}: {}", stderr(&o));
            let inv: Value = serde_json::from_str(&ok(common::inventory(&db).arg("--list"))).unwrap();
            assert_eq!(inv["web"]["vars"], serde_json::json!({"port": 80, "extra": 2}), "{b:?} replace={replace}");
        }
        // And the ref still owns it: the next commit updates it.
        up.write("group_vars/web.yml", "port: 81\n");
        up.commit_push("bump");
        ok(cratond_in(&db, cache.path()).arg("sync"));
        let inv: Value = serde_json::from_str(&ok(common::inventory(&db).arg("--list"))).unwrap();
        assert_eq!(inv["web"]["vars"]["port"], 81, "{b:?}");
    }
}

/// An upstream with `n` hosts, each with a host_vars file holding `v`.
fn many_hosts(n: usize, v: u32) -> Upstream {
    let up = Upstream::new();
    let hosts: Vec<String> = (0..n).map(|i| format!("h{i:05}")).collect();
    up.write("hosts.yml", &hosts_yml(&[("fleet", hosts.clone())]));
    for h in &hosts {
        up.write(&format!("host_vars/{h}.yml"), &format!("v: {v}\nname: {h}\n"));
    }
    up.commit_push("many");
    up
}

fn rewrite_all(up: &Upstream, n: usize, v: u32) -> String {
    for i in 0..n {
        let h = format!("h{i:05}");
        up.write(&format!("host_vars/{h}.yml"), &format!("v: {v}\nname: {h}\n"));
    }
    up.commit_push(&format!("v{v}"))
}

/// The distinct values of `v` over the hosts, and the ref's last commit.
fn state(db: &TestDb) -> (Vec<String>, Option<String>) {
    let mut c = db.conn();
    let snap = craton::store::load::load_snapshot(&mut c, "default").unwrap();
    let mut values: Vec<String> =
        snap.hosts.iter().map(|h| h.vars.get("v").map(|v| v.value.get().to_string()).unwrap_or_default()).collect();
    values.sort();
    values.dedup();
    let r = craton::store::config_refs::list(&mut c, None).unwrap();
    (values, r[0].last_commit.clone())
}

#[test]
fn two_processes_never_apply_one_ref_twice() {
    for b in backends() {
        let db = TestDb::new(b);
        let (c1, c2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let up = many_hosts(300, 0);
        ok(cratond_in(&db, c1.path()).arg("migrate"));
        ok(cratond_in(&db, c1.path()).args(["config-ref", "add", "--url", &up.url(), "--ref", "main"]));
        for round in 1..=4u32 {
            let head = if round == 1 { up.head() } else { rewrite_all(&up, 300, round) };
            let spawn = |cache: &Path| {
                cratond_in(&db, cache).arg("sync").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            };
            let (p1, p2) = (spawn(c1.path()), spawn(c2.path()));
            let (o1, o2) = (p1.wait_with_output().unwrap(), p2.wait_with_output().unwrap());
            let outs = [stdout(&o1), stdout(&o2)];
            for o in [&o1, &o2] {
                assert!(o.status.success(), "{b:?} round {round}: {}", stderr(o));
            }
            let synced = outs.iter().filter(|o| o.contains(": synced ")).count();
            assert_eq!(synced, 1, "{b:?} round {round}: exactly one process applies: {outs:?}");
            assert!(outs.iter().any(|o| o.contains("unchanged") || o.contains("another cratond process")), "{outs:?}");
            let want = if round == 1 { "0" } else { &round.to_string() };
            assert_eq!(state(&db), (vec![want.to_string()], Some(head)), "{b:?} round {round}");
        }
    }
}

#[test]
fn a_kill_during_sync_leaves_the_previous_state() {
    const N: usize = 1500;
    for b in backends() {
        let db = TestDb::new(b);
        let cache = tempfile::tempdir().unwrap();
        let up = many_hosts(N, 1);
        ok(cratond_in(&db, cache.path()).arg("migrate"));
        ok(cratond_in(&db, cache.path()).args(["config-ref", "add", "--url", &up.url(), "--ref", "main"]));
        ok(cratond_in(&db, cache.path()).arg("sync"));
        let first = up.head();
        assert_eq!(state(&db), (vec!["1".to_string()], Some(first.clone())));

        // How long a full re-sync takes, to aim the kills inside it.
        let second = rewrite_all(&up, N, 2);
        let t = Instant::now();
        ok(cratond_in(&db, cache.path()).args(["sync", "--force"]));
        let full = t.elapsed();
        assert_eq!(state(&db), (vec!["2".to_string()], Some(second.clone())));

        let mut prev = (vec!["2".to_string()], Some(second));
        for (i, frac) in [0.3, 0.6, 0.8, 0.95].iter().enumerate() {
            let v = 3 + i as u32;
            let head = rewrite_all(&up, N, v);
            let mut child = cratond_in(&db, cache.path())
                .arg("sync")
                .env("CRATON_SYNC_LEASE_SECS", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(full.mul_f64(*frac));
            // SIGKILL: no cleanup, no rollback by the process itself.
            let _ = child.kill();
            let status = child.wait().unwrap();
            let now = state(&db);
            let done = (vec![v.to_string()], Some(head.clone()));
            assert!(now == prev || now == done, "{b:?} kill at {frac}: a partial state {now:?} (status {status})");
            // The dead holder's lease expires; the next sync finishes the job.
            std::thread::sleep(Duration::from_millis(1100));
            ok(cratond_in(&db, cache.path()).arg("sync"));
            assert_eq!(state(&db), done, "{b:?}: after recovery");
            prev = done;
        }
    }
}

/// Benchmark (run with `--ignored --nocapture`): a repository with 1,000
/// host_vars files; initial sync, no-op re-sync (and its writes: none),
/// a one-file change.
#[test]
#[ignore]
fn bench_sync_of_1000_vars_files() {
    const N: usize = 1000;
    for b in backends() {
        let db = TestDb::new(b);
        let cache = tempfile::tempdir().unwrap();
        let up = many_hosts(N, 1);
        ok(cratond_in(&db, cache.path()).arg("migrate"));
        ok(cratond_in(&db, cache.path()).args(["config-ref", "add", "--url", &up.url(), "--ref", "main"]));
        let time = |what: &str| {
            let t = Instant::now();
            let out = ok(cratond_in(&db, cache.path()).arg("sync"));
            eprintln!("{b:?}: {what}: {:?} ({})", t.elapsed(), out.trim());
        };
        time("initial sync (clone + 2000 variables)");
        let rev = |db: &TestDb| craton::store::find_project(&mut db.conn(), "default").unwrap().unwrap().revision;
        let row = |db: &TestDb| craton::store::config_refs::list(&mut db.conn(), None).unwrap();
        let (r0, row0) = (rev(&db), row(&db));
        time("no-op re-sync");
        assert_eq!((rev(&db), row(&db)), (r0, row0), "a no-op sync wrote");
        eprintln!("{b:?}: no-op re-sync: 0 writes (revision and ref row unchanged)");
        up.write("host_vars/h00007.yml", "v: 99\nname: h00007\n");
        up.commit_push("one file");
        time("one-file change");
    }
}
