//! `Secrets::reencrypt` and `Secrets::rotate` on every backend: every kept
//! version resealed under a new data key and still revealing its exact
//! plaintext, old keys deleted, a repeat a no-op; an interrupted run
//! finished by the next; one active key per project under concurrent first
//! writes; readers and writers that never fail while keys change; and
//! rotation against a real OpenBao whose old key versions are then retired.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use common::{backends, TestDb};
use craton::secrets::pem::SecretKind;
use craton::secrets::{
    FileKeyProvider, KeyProvider, OwnerKind, Secret, TransitAuth, TransitConfig, TransitKeyProvider, Zeroizing,
};
use craton::store::secrets::{self as ss, Owner, ReencryptOptions, ReencryptOutcome, Secrets};
use craton::store::{self, schema, DbConn, DbUrl};
use diesel::prelude::*;

/// One kept version and the plaintext it must reveal.
#[derive(Debug, Clone)]
struct Expect {
    owner: Owner,
    name: String,
    version: i64,
    value: String,
}

/// A project with secrets on two hosts, a group and the project itself,
/// some with several versions: 7 versions in all.
fn fleet(c: &mut DbConn, s: &Secrets, project: &str) -> Vec<Expect> {
    use craton::store::{groups, hosts};
    let p = store::ensure_project(c, project).unwrap();
    let h1 =
        hosts::create_host(c, p.id, &hosts::HostChange { name: Some("web1".into()), ..Default::default() }).unwrap();
    let h2 =
        hosts::create_host(c, p.id, &hosts::HostChange { name: Some("web2".into()), ..Default::default() }).unwrap();
    let g =
        groups::create_group(c, p.id, &groups::GroupChange { name: Some("web".into()), ..Default::default() }).unwrap();
    let owners = [
        (Owner { project_id: p.id, kind: OwnerKind::Host, id: h1.id }, "db_password", 3),
        (Owner { project_id: p.id, kind: OwnerKind::Host, id: h2.id }, "db_password", 1),
        (Owner { project_id: p.id, kind: OwnerKind::Group, id: g.id }, "api_token", 2),
        (Owner { project_id: p.id, kind: OwnerKind::Project, id: p.id }, "deploy_key", 1),
    ];
    let mut out = vec![];
    for (owner, name, versions) in owners {
        for v in 1..=versions {
            // Distinct per project, owner and version, so a value resealed
            // for the wrong row could not pass for the right one.
            let value = format!("{project}/{}/{}/{name}/v{v}", owner.kind.as_str(), owner.id);
            s.put(c, owner, name, SecretKind::Password, &Secret::new(value.clone()), "alice", None).unwrap();
            out.push(Expect { owner, name: name.into(), version: v, value });
        }
    }
    out
}

/// Every expected version reveals its exact plaintext.
fn check_all(c: &mut DbConn, s: &Secrets, expect: &[Expect], what: &str) {
    for e in expect {
        let (_, plain) = s
            .reveal(c, e.owner, &e.name, Some(e.version), "check")
            .unwrap_or_else(|err| panic!("{what}: {} v{}: {err}", e.name, e.version));
        assert_eq!(plain.expose(), e.value.as_bytes(), "{what}: {} v{}", e.name, e.version);
    }
}

/// The project's data keys: (id, active).
fn keys(c: &mut DbConn, pid: i64) -> Vec<(i64, bool)> {
    schema::secret_data_keys::table
        .filter(schema::secret_data_keys::project_id.eq(pid))
        .select((schema::secret_data_keys::id, schema::secret_data_keys::active))
        .order(schema::secret_data_keys::id)
        .load(c)
        .unwrap()
}

/// The distinct data keys the project's versions are sealed under.
fn version_keys(c: &mut DbConn, pid: i64) -> BTreeSet<i64> {
    schema::secret_versions::table
        .inner_join(schema::secrets::table)
        .filter(schema::secrets::project_id.eq(pid))
        .select(schema::secret_versions::data_key_id)
        .load::<i64>(c)
        .unwrap()
        .into_iter()
        .collect()
}

/// Every version's ciphertext, by (secret id, version).
fn ciphertexts(c: &mut DbConn) -> BTreeMap<(i64, i64), Vec<u8>> {
    schema::secret_versions::table
        .select((
            schema::secret_versions::secret_id,
            schema::secret_versions::version,
            schema::secret_versions::ciphertext,
        ))
        .load::<(i64, i64, Vec<u8>)>(c)
        .unwrap()
        .into_iter()
        .map(|(s, v, ct)| ((s, v), ct))
        .collect()
}

fn opts() -> ReencryptOptions {
    ReencryptOptions { grace: Duration::ZERO, ..ReencryptOptions::new("test") }
}

fn active(c: &mut DbConn, pid: i64) -> i64 {
    let k = keys(c, pid);
    let a: Vec<i64> = k.iter().filter(|k| k.1).map(|k| k.0).collect();
    assert_eq!(a.len(), 1, "project {pid}: exactly one active key, have {k:?}");
    a[0]
}

#[test]
fn reencrypt_reseals_every_version_under_a_new_key() {
    let tmp = tempfile::tempdir().unwrap();
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let fp = FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap();
        let s = Secrets::new(&fp);
        let mut expect = fleet(&mut c, &s, "p1");
        expect.extend(fleet(&mut c, &s, "p2"));
        let pids: Vec<i64> = ["p1", "p2"].iter().map(|p| store::find_project(&mut c, p).unwrap().unwrap().id).collect();
        let old: Vec<i64> = pids.iter().map(|&p| active(&mut c, p)).collect();
        let before_ct = ciphertexts(&mut c);

        let o = opts();
        let mut seen = vec![];
        let done = s.reencrypt(&mut c, &o, &mut |r| seen.push(r.clone())).unwrap();
        assert_eq!(done, seen, "{b:?}: each project reported once, as returned");
        assert_eq!(done.len(), 2, "{b:?}: {done:?}");
        for (i, r) in done.iter().enumerate() {
            assert_eq!((r.project_id, r.project.as_str()), (pids[i], ["p1", "p2"][i]), "{b:?}");
            assert_eq!(r.outcome, ReencryptOutcome::Done, "{b:?}: {r:?}");
            assert!(r.created && r.key_id != old[i], "{b:?}: {r:?}");
            assert_eq!((r.old_keys.clone(), r.deleted.clone(), r.resealed), (vec![old[i]], vec![old[i]], 7), "{b:?}");
            assert_eq!(keys(&mut c, pids[i]), [(r.key_id, true)], "{b:?}: the old key row is gone");
            assert_eq!(version_keys(&mut c, pids[i]), BTreeSet::from([r.key_id]), "{b:?}: every version under it");
        }
        check_all(&mut c, &s, &expect, &format!("{b:?} after reencrypt"));
        let after_ct = ciphertexts(&mut c);
        assert_eq!(after_ct.len(), 14, "{b:?}");
        assert!(after_ct.iter().all(|(k, ct)| before_ct[k] != *ct), "{b:?}: every version was resealed");

        // Again with the same cutoff: nothing to do, nothing touched.
        let again = s.reencrypt(&mut c, &o, &mut |_| {}).unwrap();
        assert!(again.iter().all(|r| r.outcome == ReencryptOutcome::Unchanged && r.resealed == 0), "{again:?}");
        assert_eq!(ciphertexts(&mut c), after_ct, "{b:?}: a repeat is a no-op");
        assert_eq!(keys(&mut c, pids[0]), [(done[0].key_id, true)]);

        // New writes use the new key; the audit has one reencrypt row.
        let e = &expect[0];
        s.update(&mut c, e.owner, &e.name, SecretKind::Password, &Secret::new("v-new"), "bob").unwrap();
        assert_eq!(version_keys(&mut c, pids[0]), BTreeSet::from([done[0].key_id]), "{b:?}");
        let log = ss::access_log(&mut c, pids[0], 100).unwrap();
        let re: Vec<_> = log.iter().filter(|a| a.action == "reencrypt").collect();
        assert_eq!(re.len(), 1, "{b:?}");
        assert_eq!((re[0].name.as_str(), re[0].actor.as_str(), re[0].secret_id), ("*", "test", None));

        // --project: only that one; a later cutoff replaces again.
        let only = ReencryptOptions { project_id: Some(pids[1]), before: store::now_ms() + 1, ..opts() };
        let r = s.reencrypt(&mut c, &only, &mut |_| {}).unwrap();
        assert_eq!(r.len(), 1, "{b:?}");
        assert_eq!((r[0].project_id, r[0].old_keys.clone()), (pids[1], vec![done[1].key_id]));
        assert_eq!(keys(&mut c, pids[0]), [(done[0].key_id, true)], "{b:?}: p1 untouched");
        check_all(&mut c, &s, &expect[1..], &format!("{b:?} after the second reencrypt"));
    }
}

#[test]
fn an_interrupted_reencrypt_is_finished_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let fp = FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap();
        let s = Secrets::new(&fp);
        let mut expect = fleet(&mut c, &s, "p1");
        expect.extend(fleet(&mut c, &s, "p2"));
        let pids: Vec<i64> = ["p1", "p2"].iter().map(|p| store::find_project(&mut c, p).unwrap().unwrap().id).collect();
        let old: Vec<i64> = pids.iter().map(|&p| active(&mut c, p)).collect();

        // Stopped after 3 versions, as a kill between two batches leaves it.
        let first = ReencryptOptions { max_versions: Some(3), batch: 2, ..opts() };
        let r = s.reencrypt(&mut c, &first, &mut |_| {}).unwrap();
        assert_eq!(r[0].outcome, ReencryptOutcome::Stopped { left: 4 }, "{b:?}: {r:?}");
        assert_eq!(r[1].outcome, ReencryptOutcome::Stopped { left: 7 }, "{b:?}: {r:?}");
        let new: Vec<i64> = r.iter().map(|r| r.key_id).collect();
        for i in 0..2 {
            assert_eq!(keys(&mut c, pids[i]), [(old[i], false), (new[i], true)], "{b:?}: both keys kept");
        }
        assert_eq!(version_keys(&mut c, pids[0]), BTreeSet::from([old[0], new[0]]), "{b:?}: a mix");
        check_all(&mut c, &s, &expect, &format!("{b:?} mid-way"));
        // A write meanwhile goes under the new key.
        let e = expect.iter().find(|e| e.owner.project_id == pids[1]).unwrap().clone();
        s.update(&mut c, e.owner, &e.name, SecretKind::Password, &Secret::new("meanwhile"), "bob").unwrap();

        // The next run (same cutoff) makes no second key and goes on.
        let second = ReencryptOptions { max_versions: Some(5), before: first.before, ..opts() };
        let r = s.reencrypt(&mut c, &second, &mut |_| {}).unwrap();
        let p1 = r.iter().find(|r| r.project_id == pids[0]).unwrap();
        let p2 = r.iter().find(|r| r.project_id == pids[1]).unwrap();
        assert_eq!((p1.outcome, p1.created, p1.key_id, p1.resealed), (ReencryptOutcome::Done, false, new[0], 4));
        assert_eq!(p1.deleted, [old[0]], "{b:?}");
        assert_eq!((p2.outcome, p2.created, p2.resealed), (ReencryptOutcome::Stopped { left: 6 }, false, 1));
        // Even without the cutoff: a project mid-way is finished, not restarted.
        let r = s.reencrypt(&mut c, &opts(), &mut |_| {}).unwrap();
        let p2 = r.iter().find(|r| r.project_id == pids[1]).unwrap();
        assert_eq!((p2.outcome, p2.created, p2.key_id, p2.resealed), (ReencryptOutcome::Done, false, new[1], 6));
        assert_eq!(keys(&mut c, pids[1]), [(new[1], true)], "{b:?}");
        assert_eq!(version_keys(&mut c, pids[1]), BTreeSet::from([new[1]]), "{b:?}");
        check_all(&mut c, &s, &expect, &format!("{b:?} after finishing"));
        let (_, v) = s.reveal(&mut c, e.owner, &e.name, None, "check").unwrap();
        assert_eq!(v.expose(), b"meanwhile");

        // A version that does not open stops the run with a clear error and
        // keeps its key; nothing else is lost.
        let (sid, ver, mut bad): (i64, i64, Vec<u8>) = schema::secret_versions::table
            .inner_join(schema::secrets::table)
            .filter(schema::secrets::project_id.eq(pids[0]))
            .select((
                schema::secret_versions::secret_id,
                schema::secret_versions::version,
                schema::secret_versions::ciphertext,
            ))
            .order((schema::secret_versions::secret_id, schema::secret_versions::version))
            .first(&mut c)
            .unwrap();
        let n = bad.len() - 1;
        bad[n] ^= 1;
        diesel::update(
            schema::secret_versions::table
                .filter(schema::secret_versions::secret_id.eq(sid))
                .filter(schema::secret_versions::version.eq(ver)),
        )
        .set(schema::secret_versions::ciphertext.eq(&bad))
        .execute(&mut c)
        .unwrap();
        let later = ReencryptOptions { project_id: Some(pids[0]), before: store::now_ms() + 1, ..opts() };
        let err = s.reencrypt(&mut c, &later, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("does not open under its data key") && err.contains("version 1"), "{b:?}: {err}");
        assert_eq!(keys(&mut c, pids[0]).len(), 2, "{b:?}: the old key stays while a version names it");
        check_all(&mut c, &s, &expect[1..7], &format!("{b:?} after the failed run"));
    }
}

#[test]
fn concurrent_first_writes_make_one_active_key() {
    let tmp = tempfile::tempdir().unwrap();
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let fp = Arc::new(FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap());
        for round in 0..4 {
            let pid = store::ensure_project(&mut c, &format!("race{round}")).unwrap().id;
            let n = 6;
            let barrier = Arc::new(Barrier::new(n));
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (url, fp, barrier) = (db.url.clone(), fp.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut c = store::connect(&DbUrl::parse(&url).unwrap()).unwrap();
                        let s = Secrets::new(fp.as_ref());
                        let owner = Owner { project_id: pid, kind: OwnerKind::Project, id: pid };
                        barrier.wait();
                        s.create(
                            &mut c,
                            owner,
                            &format!("s{i}"),
                            SecretKind::Opaque,
                            &Secret::new(format!("v{i}")),
                            "t",
                        )
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().unwrap_or_else(|e| panic!("{b:?}: a first write failed: {e}"));
            }
            let k = active(&mut c, pid);
            assert_eq!(keys(&mut c, pid), [(k, true)], "{b:?} round {round}: no loser's key left behind");
            assert_eq!(version_keys(&mut c, pid), BTreeSet::from([k]), "{b:?}");
            let s = Secrets::new(fp.as_ref());
            let owner = Owner { project_id: pid, kind: OwnerKind::Project, id: pid };
            for i in 0..n {
                assert_eq!(
                    s.reveal(&mut c, owner, &format!("s{i}"), None, "t").unwrap().1.expose(),
                    format!("v{i}").as_bytes()
                );
            }
        }
        // The database itself refuses a second active key.
        let pid = store::find_project(&mut c, "race0").unwrap().unwrap().id;
        let e = diesel::insert_into(schema::secret_data_keys::table)
            .values((
                schema::secret_data_keys::project_id.eq(pid),
                schema::secret_data_keys::provider.eq("file"),
                schema::secret_data_keys::key_version.eq(1i64),
                schema::secret_data_keys::wrapped.eq("x"),
                schema::secret_data_keys::active.eq(true),
                schema::secret_data_keys::created_at.eq(0i64),
                schema::secret_data_keys::updated_at.eq(0i64),
            ))
            .execute(&mut c)
            .unwrap_err();
        assert!(store::StoreError::from(e).is_unique_violation(), "{b:?}");
    }
}

/// Readers (reveal, open_all) and a writer that run until `stop`, counting
/// what they did and keeping every failure.
struct Load {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    writes: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The writer's last stored value.
    last: Arc<Mutex<Option<String>>>,
}

impl Load {
    fn start(url: &str, provider: Arc<dyn KeyProvider>, expect: &[Expect], writer: Owner) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (reads, writes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let errors = Arc::new(Mutex::new(vec![]));
        let last = Arc::new(Mutex::new(None));
        let mut threads = vec![];
        for t in 0..2 {
            let (url, provider, expect) = (url.to_string(), provider.clone(), expect.to_vec());
            let (stop, reads, errors) = (stop.clone(), reads.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                let mut c = store::connect(&DbUrl::parse(&url).unwrap()).unwrap();
                let s = Secrets::new(provider.as_ref());
                let projects: BTreeSet<i64> = expect.iter().map(|e| e.owner.project_id).collect();
                while !stop.load(Ordering::Relaxed) {
                    for e in &expect {
                        match s.reveal(&mut c, e.owner, &e.name, Some(e.version), "load") {
                            Ok((_, v)) if v.expose() == e.value.as_bytes() => {}
                            Ok(_) => errors.lock().unwrap().push(format!("{} v{}: wrong value", e.name, e.version)),
                            Err(err) => {
                                errors.lock().unwrap().push(format!("reader {t}: {} v{}: {err}", e.name, e.version))
                            }
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                    for &p in &projects {
                        if let Err(err) = s.open_all(&mut c, p, "load") {
                            errors.lock().unwrap().push(format!("reader {t}: open_all {p}: {err}"));
                        }
                    }
                }
            }));
        }
        {
            let (url, provider) = (url.to_string(), provider.clone());
            let (stop, writes, errors, last) = (stop.clone(), writes.clone(), errors.clone(), last.clone());
            threads.push(std::thread::spawn(move || {
                let mut c = store::connect(&DbUrl::parse(&url).unwrap()).unwrap();
                let s = Secrets::new(provider.as_ref());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let v = format!("counter-{i}");
                    match s.put(&mut c, writer, "counter", SecretKind::Opaque, &Secret::new(v.clone()), "load", None) {
                        Ok(_) => *last.lock().unwrap() = Some(v),
                        Err(err) => errors.lock().unwrap().push(format!("writer: {err}")),
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        Load { stop, reads, writes, errors, threads, last }
    }

    /// Stops the threads; panics with the failures, if any.
    fn finish(self, what: &str) -> (usize, usize, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "{what}: {} failures under load, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        );
        let last = self.last.lock().unwrap().clone();
        (self.reads.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed), last)
    }
}

fn wait_for(what: &str, n: &AtomicUsize, at_least: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while n.load(Ordering::Relaxed) < at_least {
        assert!(std::time::Instant::now() < deadline, "{what}: load never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reencrypt_and_rotate_under_load_lose_no_read_or_write() {
    let tmp = tempfile::tempdir().unwrap();
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let fp: Arc<dyn KeyProvider> =
            Arc::new(FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap());
        let s = Secrets::new(fp.as_ref());
        let mut expect = fleet(&mut c, &s, "p1");
        expect.extend(fleet(&mut c, &s, "p2"));
        let writer = expect[0].owner;
        let pids: Vec<i64> = ["p1", "p2"].iter().map(|p| store::find_project(&mut c, p).unwrap().unwrap().id).collect();

        let load = Load::start(&db.url, fp.clone(), &expect, writer);
        wait_for(&format!("{b:?}"), &load.writes, 3);
        let reads_before = load.reads.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        // A grace longer than a write's window, as in production (smaller).
        let o = ReencryptOptions { batch: 1, grace: Duration::from_millis(300), ..opts() };
        let done = s.reencrypt(&mut c, &o, &mut |_| {}).unwrap();
        let took = started.elapsed();
        let rot = s.rotate(&mut c, None, &mut |_| {}).unwrap();
        assert_eq!((rot.rewrapped, rot.current), (0, 2), "{b:?}: the file provider has one key version");
        wait_for(&format!("{b:?}"), &load.reads, load.reads.load(Ordering::Relaxed) + 20);
        let (reads, writes, last) = load.finish(&format!("{b:?}"));
        assert!(reads > reads_before, "{b:?}: no read during reencrypt");
        eprintln!("{b:?}: reencrypt took {took:?} under load; {reads} reads, {writes} writes, none failed");

        for (i, r) in done.iter().enumerate() {
            assert_eq!(r.outcome, ReencryptOutcome::Done, "{b:?}: {r:?}");
            assert_eq!(keys(&mut c, pids[i]), [(r.key_id, true)], "{b:?}");
            assert_eq!(version_keys(&mut c, pids[i]), BTreeSet::from([r.key_id]), "{b:?}: no version left behind");
        }
        check_all(&mut c, &s, &expect, &format!("{b:?} after load"));
        let (_, v) = s.reveal(&mut c, writer, "counter", None, "check").unwrap();
        assert_eq!(Some(String::from_utf8(v.expose().to_vec()).unwrap()), last, "{b:?}: the last write is the value");
    }
}

fn transit(bao: &common::openbao::OpenBao, key: &str) -> TransitKeyProvider {
    TransitKeyProvider::new(TransitConfig {
        addr: bao.addr.clone(),
        mount: "transit".into(),
        key: key.into(),
        auth: TransitAuth::Token(Zeroizing::new(bao.token.clone())),
        timeout: Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap()
}

fn stored_versions(c: &mut DbConn) -> Vec<(i64, i64, String)> {
    schema::secret_data_keys::table
        .select((
            schema::secret_data_keys::project_id,
            schema::secret_data_keys::key_version,
            schema::secret_data_keys::wrapped,
        ))
        .order(schema::secret_data_keys::project_id)
        .load(c)
        .unwrap()
}

#[test]
fn transit_rotate_rewraps_so_old_versions_can_be_retired() {
    let Some(bao) = common::openbao::OpenBao::start() else { return };
    bao.ok(&["secrets", "enable", "transit"]);
    let tmp = tempfile::tempdir().unwrap();
    for b in backends() {
        let key = format!("craton-{b:?}").to_lowercase();
        bao.ok(&["write", "-f", &format!("transit/keys/{key}")]);
        let tp: Arc<dyn KeyProvider> = Arc::new(transit(&bao, &key));
        let db = TestDb::new(b);
        let mut c = db.conn();
        let s = Secrets::new(tp.as_ref());
        let mut expect = fleet(&mut c, &s, "p1");
        expect.extend(fleet(&mut c, &s, "p2"));
        let pids: Vec<i64> = ["p1", "p2"].iter().map(|p| store::find_project(&mut c, p).unwrap().unwrap().id).collect();
        assert!(stored_versions(&mut c).iter().all(|k| k.1 == 1 && k.2.starts_with("vault:v1:")), "{b:?}");

        // Rotated in OpenBao, then rewrapped while readers and a writer go on.
        bao.ok(&["write", "-f", &format!("transit/keys/{key}/rotate")]);
        let load = Load::start(&db.url, tp.clone(), &expect, expect[0].owner);
        wait_for(&format!("{b:?}"), &load.writes, 2);
        let mut lines = vec![];
        let sum = s.rotate(&mut c, None, &mut |k| lines.push(k.clone())).unwrap();
        wait_for(&format!("{b:?}"), &load.reads, load.reads.load(Ordering::Relaxed) + 10);
        load.finish(&format!("{b:?} transit rotate"));
        assert_eq!((sum.provider.as_str(), sum.key_version, sum.rewrapped, sum.current), ("transit", 2, 2, 0), "{b:?}");
        let got: Vec<(i64, i64, i64)> = lines.iter().map(|k| (k.project_id, k.from_version, k.to_version)).collect();
        assert_eq!(got, [(pids[0], 1, 2), (pids[1], 1, 2)], "{b:?}");
        assert!(stored_versions(&mut c).iter().all(|k| k.1 == 2 && k.2.starts_with("vault:v2:")), "{b:?}");
        let again = s.rotate(&mut c, None, &mut |_| {}).unwrap();
        assert_eq!((again.rewrapped, again.current), (0, 2), "{b:?}: resumable: nothing left");

        // Version 1 retired in OpenBao: only a real rewrap keeps these readable.
        bao.ok(&["write", &format!("transit/keys/{key}/config"), "min_decryption_version=2"]);
        check_all(&mut c, &s, &expect, &format!("{b:?} after retiring v1"));

        // --project: only that project's key moves to the next version.
        assert_eq!(tp.rotate().unwrap(), 3);
        let sum = s.rotate(&mut c, Some(pids[1]), &mut |_| {}).unwrap();
        assert_eq!(sum.rewrapped, 1, "{b:?}");
        let v: Vec<i64> = stored_versions(&mut c).iter().map(|k| k.1).collect();
        assert_eq!(v, [2, 3], "{b:?}");

        // Reencrypt under transit: new keys wrapped at the newest version.
        let done = s.reencrypt(&mut c, &opts(), &mut |_| {}).unwrap();
        assert!(done.iter().all(|r| r.outcome == ReencryptOutcome::Done), "{b:?}: {done:?}");
        assert!(stored_versions(&mut c).iter().all(|k| k.1 == 3), "{b:?}");
        check_all(&mut c, &s, &expect, &format!("{b:?} after transit reencrypt"));

        // Another provider's keys: a clear error before anything changes.
        let before = stored_versions(&mut c);
        let fp = FileKeyProvider::open_or_create(&tmp.path().join(format!("{b:?}.key"))).unwrap();
        let e = Secrets::new(&fp).rotate(&mut c, None, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("wrapped by key provider \"transit\", not by the configured \"file\""), "{b:?}: {e}");
        let e = Secrets::new(&fp).reencrypt(&mut c, &opts(), &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("cannot unwrap"), "{b:?}: {e}");
        assert_eq!(stored_versions(&mut c), before, "{b:?}: nothing rewritten by the wrong provider");
    }
}
