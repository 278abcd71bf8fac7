//! The store on every backend: migrations, import plans applied
//! transactionally, re-import as a no-op, --replace, cycles, and values that
//! come back exactly as given.

mod common;

use common::{backends, TestDb};
use craton::desired::{Desired, DesiredGroup, DesiredHost};
use craton::model::{raw_from_value, OwnVars, Tier, Var};
use craton::store::{self, apply, load, DbUrl};
use serde_json::{json, Value};

fn vars(pairs: &[(&str, Value)], tier: Tier) -> OwnVars {
    pairs.iter().map(|(k, v)| (k.to_string(), Var { value: raw_from_value(v), tier })).collect()
}

fn sample() -> Desired {
    let mut d = Desired { all_vars: vars(&[("env", json!("lab"))], Tier::Inventory), ..Default::default() };
    d.groups.insert(
        "region1".into(),
        DesiredGroup {
            children: vec!["cell1".into()],
            vars: vars(&[("ntp", json!("ntp.r1"))], Tier::VarsFile),
            ..Default::default()
        },
    );
    d.groups.insert(
        "cell1".into(),
        DesiredGroup { priority: Some(5), hosts: vec!["b".into(), "a".into()], ..Default::default() },
    );
    d.hosts.insert(
        "a".into(),
        DesiredHost {
            ip_address: Some("10.0.0.1".into()),
            vars: vars(&[("x", json!(1))], Tier::Inventory),
            ..Default::default()
        },
    );
    d.hosts.insert("b".into(), DesiredHost { parent: Some("a".into()), ..Default::default() });
    d
}

fn noop(_: &str, _: usize, _: usize) {}

#[test]
fn migrate_is_idempotent() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = store::connect(&DbUrl::parse(&db.url).unwrap()).unwrap();
        assert!(store::has_pending_migrations(&mut c).unwrap(), "{b:?}");
        let folders = std::fs::read_dir(common::repo_root().join("migrations/sqlite")).unwrap().count();
        assert_eq!(store::migrate(&mut c).unwrap().len(), folders, "{b:?}: every migration applied");
        for backend in ["postgres", "mysql"] {
            let n = std::fs::read_dir(common::repo_root().join("migrations").join(backend)).unwrap().count();
            assert_eq!(n, folders, "migrations/{backend} is not in step with migrations/sqlite");
        }
        assert!(store::migrate(&mut c).unwrap().is_empty(), "{b:?}");
        assert!(!store::has_pending_migrations(&mut c).unwrap());
        assert!(store::find_project(&mut c, "default").unwrap().is_some(), "{b:?}: default project");
    }
}

#[test]
fn apply_then_reapply_is_a_noop_and_order_is_kept() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let s = apply::apply(&mut c, "p1", &sample(), false, &noop).unwrap();
        assert_eq!((s.groups.created, s.hosts.created, s.variables.created), (2, 2, 3), "{b:?}");
        let again = apply::apply(&mut c, "p1", &sample(), false, &noop).unwrap();
        assert!(again.is_noop(), "{b:?}: {again:?}");
        let snap = load::load_snapshot(&mut c, "p1").unwrap();
        let cell = &snap.groups[snap.group_index("cell1").unwrap()];
        let members: Vec<&str> = cell.hosts.iter().map(|&h| snap.hosts[h].name.as_str()).collect();
        assert_eq!(members, ["b", "a"], "{b:?}: member order is the input's");
        assert_eq!(cell.priority, Some(5));
        let bh = &snap.hosts[snap.host_index("b").unwrap()];
        assert_eq!(bh.parent.map(|p| snap.hosts[p].name.as_str()), Some("a"), "{b:?}");
        let region = &snap.groups[snap.group_index("region1").unwrap()];
        assert_eq!(region.vars["ntp"].tier, Tier::VarsFile, "{b:?}");
        assert_eq!(snap.hosts[snap.host_index("a").unwrap()].ip_address.as_deref(), Some("10.0.0.1"));
    }
}

#[test]
fn values_round_trip_exactly() {
    let values = [
        json!(0),
        json!(-9223372036854775808i64),
        json!(18446744073709551615u64),
        json!(1.5),
        json!(1e-300),
        json!(0.1),
        json!(true),
        json!(null),
        json!(""),
        json!("ünïcödé ✓ 𝄞 \u{0} \"quoted\" \\ back"),
        json!([1, "two", [3.0], {"four": null}]),
        json!({"z": 1, "a": {"nested": [true, false]}, "m": "order kept"}),
        json!("x".repeat(100_000)),
    ];
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let mut d = Desired::default();
        let pairs: Vec<(String, Value)> =
            values.iter().enumerate().map(|(i, v)| (format!("k{i}"), v.clone())).collect();
        let refs: Vec<(&str, Value)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        d.hosts.insert("h".into(), DesiredHost { vars: vars(&refs, Tier::Inventory), ..Default::default() });
        apply::apply(&mut c, "default", &d, false, &noop).unwrap();
        let snap = load::load_snapshot(&mut c, "default").unwrap();
        let h = &snap.hosts[0];
        for (k, v) in &pairs {
            let got: Value = serde_json::from_str(h.vars[k].value.get()).unwrap();
            assert_eq!(&got, v, "{b:?} {k}");
            assert_eq!(
                h.vars[k].value.get(),
                serde_json::to_string(v).unwrap(),
                "{b:?} {k}: same text, same key order"
            );
        }
    }
}

#[test]
fn replace_makes_the_project_match() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        apply::apply(&mut c, "p", &sample(), false, &noop).unwrap();
        let mut smaller = Desired::default();
        smaller.groups.insert("cell1".into(), DesiredGroup { hosts: vec!["a".into()], ..Default::default() });
        smaller.hosts.insert("a".into(), DesiredHost::default());
        // Merge keeps what the input does not mention.
        let merged = apply::apply(&mut c, "p", &smaller, false, &noop).unwrap();
        assert_eq!(merged.groups.removed + merged.hosts.removed + merged.variables.removed, 0, "{b:?}");
        let s = apply::apply(&mut c, "p", &smaller, true, &noop).unwrap();
        assert_eq!((s.groups.removed, s.hosts.removed), (1, 1), "{b:?}: {s:?}");
        assert_eq!(s.variables.removed, 3, "{b:?}: {s:?}");
        let snap = load::load_snapshot(&mut c, "p").unwrap();
        assert_eq!(snap.groups.len(), 1);
        assert_eq!(snap.hosts.len(), 1);
        assert!(snap.all_vars.is_empty() && snap.hosts[0].vars.is_empty() && snap.groups[0].priority.is_none());
        assert!(apply::apply(&mut c, "p", &smaller, true, &noop).unwrap().is_noop(), "{b:?}");
    }
}

#[test]
fn cycles_are_refused_and_nothing_is_written() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        apply::apply(&mut c, "p", &sample(), false, &noop).unwrap();
        // cell1 is region1's child; making region1 cell1's child closes a loop.
        let mut d = Desired::default();
        d.groups.insert("cell1".into(), DesiredGroup { children: vec!["region1".into()], ..Default::default() });
        d.groups.insert(
            "region1".into(),
            DesiredGroup { vars: vars(&[("new", json!(1))], Tier::Inventory), ..Default::default() },
        );
        d.hosts.insert("zz".into(), DesiredHost::default());
        let e = apply::apply(&mut c, "p", &d, false, &noop).unwrap_err().to_string();
        assert!(e.contains("cycle") && e.contains("region1") && e.contains("cell1"), "{b:?}: {e}");
        let snap = load::load_snapshot(&mut c, "p").unwrap();
        assert!(snap.host_index("zz").is_none(), "{b:?}: the failed import wrote a host");
        assert_eq!(snap.hosts.len(), 2);

        let mut d = Desired::default();
        d.hosts.insert("a".into(), DesiredHost { parent: Some("b".into()), ..Default::default() });
        let e = apply::apply(&mut c, "p", &d, false, &noop).unwrap_err().to_string();
        assert!(e.contains("parent hosts form a cycle"), "{b:?}: {e}");
    }
}

#[test]
fn names_are_case_sensitive_and_unicode_safe() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let mut d = Desired::default();
        for h in ["Web", "web", "wéb", "w\u{00e9}b2", "日本"] {
            d.hosts.insert(h.into(), DesiredHost::default());
        }
        d.groups.insert("G".into(), DesiredGroup { hosts: vec!["Web".into()], ..Default::default() });
        d.groups.insert("g".into(), DesiredGroup { hosts: vec!["web".into()], ..Default::default() });
        apply::apply(&mut c, "p", &d, false, &noop).unwrap();
        let snap = load::load_snapshot(&mut c, "p").unwrap();
        assert_eq!(snap.hosts.len(), 5, "{b:?}");
        assert_eq!(snap.groups.len(), 2, "{b:?}");
        assert!(apply::apply(&mut c, "p", &d, false, &noop).unwrap().is_noop(), "{b:?}");
    }
}

#[test]
fn unknown_project_is_an_error() {
    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        let e = load::load_snapshot(&mut c, "nope").unwrap_err().to_string();
        assert_eq!(e, "project \"nope\" not found", "{b:?}");
    }
}

#[test]
fn unmigrated_server_database_is_reported() {
    for b in backends().into_iter().filter(|b| *b != common::Backend::Sqlite) {
        let db = TestDb::new(b);
        let e = store::connect_ready(&DbUrl::parse(&db.url).unwrap()).err().expect("must fail").to_string();
        assert!(e.contains("cratond migrate"), "{b:?}: {e}");
    }
}

/// Finding 9: the snapshot loader ran one autocommit query per table, so a
/// group and its first host committed together between the groups query
/// and the memberships query came back as a host without its group (then
/// served under `ungrouped`). A writer creates hosts, each atomically with
/// a new group and a label; a reader loads snapshots meanwhile; no snapshot
/// may show such a host without them.
#[test]
fn torn_reads() {
    use craton::store::edit::Ref;
    use craton::store::groups::{self, GroupChange};
    use craton::store::hosts::{self, HostChange};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    for b in backends() {
        let db = TestDb::new(b);
        let mut c = db.conn();
        // Enough rows that a load spends milliseconds between its queries.
        let mut d = Desired::default();
        let names: Vec<String> = (0..1500).map(|i| format!("base{i:04}")).collect();
        for n in &names {
            d.hosts.insert(n.clone(), DesiredHost::default());
        }
        d.groups.insert("base".into(), DesiredGroup { hosts: names, ..Default::default() });
        apply::apply(&mut c, "p", &d, false, &noop).unwrap();
        let pid = store::find_project(&mut c, "p").unwrap().unwrap().id;

        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (done, url) = (done.clone(), DbUrl::parse(&db.url).unwrap());
            std::thread::spawn(move || {
                let mut c = store::connect(&url).unwrap();
                let (mut loads, mut torn, mut seen) = (0u32, 0u32, 0usize);
                while !done.load(Ordering::SeqCst) {
                    let snap = load::load_snapshot(&mut c, "p").unwrap();
                    loads += 1;
                    let new: Vec<_> = snap.hosts.iter().filter(|h| h.name.starts_with('w')).collect();
                    seen = seen.max(new.len());
                    torn += new.iter().filter(|h| h.groups.is_empty() || h.labels.is_empty()).count() as u32;
                }
                (loads, torn, seen)
            })
        };
        let start = Instant::now();
        let mut written = 0;
        while start.elapsed() < Duration::from_secs(4) && written < 400 {
            let (g, h) = (format!("g{written}"), format!("w{written}"));
            store::tx::write(&mut c, |c| {
                groups::create_group(c, pid, &GroupChange { name: Some(g.clone()), ..Default::default() })?;
                hosts::create_host(
                    c,
                    pid,
                    &HostChange {
                        name: Some(h.clone()),
                        labels: Some(vec!["l".into()]),
                        groups: Some(vec![Ref::Name(g.clone())]),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
            written += 1;
        }
        done.store(true, Ordering::SeqCst);
        let (loads, torn, seen) = reader.join().unwrap();
        eprintln!("{b:?}: {written} hosts written, {loads} snapshots loaded, {torn} torn host views");
        assert!(loads > 5 && seen > 0, "{b:?}: the reader must overlap the writer ({loads} loads, {seen} seen)");
        assert_eq!(torn, 0, "{b:?}: {torn} hosts seen without their group or label in {loads} snapshots");
    }
}
